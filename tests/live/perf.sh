#!/bin/bash
# The perf backend: (1) the same workload watched at the same time by
# `duet watch` on tracefs and on perf gives the same events (the multiset
# of (dev, ino, index, count, type) of the workload's files); (2) a burst
# into a one-page perf ring reports LOST with counts, nothing silent.
# Needs root, tracefs, jq and a duet built with libperf: exits 77 otherwise.
set -u
duet=${1:?usage: perf.sh path/to/duet}
. "$(dirname "$0")/lib.sh"
live_require jq
live_ext4 perf 256
mkdir "$base/empty"
if "$duet" watch --backend=perf --duration 0.1 "$base/empty" 2>&1 >/dev/null | grep -q "without libperf"; then
	echo "SKIP: duet built without libperf (scripts/setup builds it)"; exit 77
fi
mkdir "$m/w"

started() { # started FILE...: wait until each prints its start line
	for f in "$@"; do
		for _ in $(seq 100); do grep -q '"type":"start"' "$f" 2>/dev/null && break; sleep 0.05; done
	done
}

# 1. Both backends at once.
"$duet" watch --json --no-coalesce --duration 4 "$m/w" > "$base/t.json" 2> "$base/t.err" &
tp=$!
"$duet" watch --backend=perf --json --no-coalesce --duration 4 "$m/w" > "$base/p.json" 2> "$base/p.err" &
pp=$!
pids="$tp $pp"
started "$base/t.json" "$base/p.json"
dd if=/dev/urandom of="$m/w/a" bs=4k count=64 conv=fsync status=none
dd if="$m/w/a" iflag=nocache count=0 status=none
dd if="$m/w/a" of=/dev/null bs=4k count=16 status=none
truncate -s 8k "$m/w/a"
dd if=/dev/urandom of="$m/w/b" bs=64k count=4 status=none
sync "$m/w/b"
rm "$m/w/b"
wait $tp; trc=$?
wait $pp; prc=$?
pids=""
check "tracefs watch exits 0" [ $trc = 0 ]
check "perf watch exits 0" [ $prc = 0 ]
check "perf start line says instance perf and the same semantics" \
	[ "$(jq -c 'select(.type=="start") | [.dirty, .flush]' "$base/p.json")" = \
	  "$(jq -c 'select(.type=="start") | [.dirty, .flush]' "$base/t.json")" ]
ev() { jq -r 'select(.type=="event") | "\(.dev) \(.ino) \(.index) \(.count) \(.event)"' "$1" | sort; }
ev "$base/t.json" > "$base/t.ev"
ev "$base/p.json" > "$base/p.ev"
n=$(wc -l < "$base/t.ev")
check "the workload gave events ($n)" [ "$n" -ge 200 ]
check "both backends give the same event multiset" diff "$base/t.ev" "$base/p.ev"
check "perf: no LOST" [ "$(jq -c 'select(.type=="summary") | .lost' "$base/p.json")" = 0 ]
check "perf events are in time order" \
	[ "$(jq -r 'select(.type=="event") | .ts' "$base/p.json" | sort -n -c 2>&1 | wc -l)" = 0 ]
check "no tracefs instance for the perf watch" [ -z "$(ls -d /sys/kernel/tracing/instances/duet-"$pp"-* 2>/dev/null)" ]

# 2. A one-page ring under a burst of 40,000 events: LOST with counts.
# The watch is stopped during the burst, so the ring overflows whatever
# the speed of this machine (a fast reader kept up once, in CI).
"$duet" watch --backend=perf --perf-pages 1 --json "$m/w" > "$base/l.json" 2> "$base/l.err" &
lp=$!
pids=$lp
started "$base/l.json"
kill -STOP $lp
dd if=/dev/zero of="$m/w/big" bs=4k count=20000 status=none
kill -CONT $lp
sleep 0.3
kill -INT $lp
wait $lp
pids=""
lost_lines=$(jq -s '[.[] | select(.type=="lost") | .count] | add // 0' "$base/l.json")
lost_sum=$(jq -c 'select(.type=="summary") | .lost' "$base/l.json")
big=$(jq -s --arg p "$m/w/big" '[.[] | select(.type=="event" and .path==$p and (.event=="ADDED" or .event=="DIRTY")) | .count] | add // 0' "$base/l.json")
check "a one-page ring under a burst reports LOST lines ($lost_lines events)" [ "$lost_lines" -gt 0 ]
check "every LOST line has a known count" \
	[ "$(jq -s '[.[] | select(.type=="lost" and .count_known != true)] | length' "$base/l.json")" = 0 ]
check "the summary's lost equals the LOST lines ($lost_sum)" [ "$lost_sum" = "$lost_lines" ]
check "seen + lost accounts for the 40,000 events ($big + $lost_lines)" \
	[ $((big + lost_lines)) -ge 40000 -a "$big" -le 40000 ]

echo "$fails failure(s)"
[ $fails = 0 ]
