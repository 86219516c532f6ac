#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Benchmark of duet record's file versions: one workload on a loop ext4,
# CYCLES times (a 256 MiB file written in 4 KiB writes, fsync, its pages
# dropped with fadvise), recorded by `duet record` as each of
#   v6        --file-version 6
#   v7-zstd   the default (version 7, zstd)
#   v7-none   --compression none
# RUNS times each, in turn. Printed: events, file size, and the CPU time
# (user + system) and wall time of duet record alone (it records until
# SIGINT; the workload runs beside it, and its wall time is in), best of
# RUNS: the recording itself costs the same in the three, so the
# difference is the writing. For reference, duet's v7 zstd file rewritten by trace-cmd
# 3.1.6 as its own v7 zstd (`trace-cmd convert`, the same pages): its
# size and time. A human table, then one JSON object as the last line.
#
# usage: tests/bench/bench-record.sh [CYCLES [RUNS]]  (as root; default 3 3)
# Not a test: it asserts nothing. It builds nothing either: run
# scripts/setup (or ninja -C build) first.
set -eu
cycles=${1:-3}
runs=${2:-3}
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench-record: run as root" >&2; exit 1; }
duet=$PWD/build/cli/duet
[ -x "$duet" ] || { echo "bench-record: build first (scripts/setup)" >&2; exit 1; }
base=$(mktemp -d /var/tmp/duet-bench-record.XXXXXX)
img=$base/img
loop=""
tp=""
dp=""
cleanup() {
	if [ -n "$tp" ] && kill -0 "$tp" 2>/dev/null; then
		[ -n "$dp" ] && kill -INT "$dp" 2>/dev/null
		wait "$tp" 2>/dev/null
	fi
	mountpoint -q "$base/m" && umount "$base/m"
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
truncate -s 1G "$img"
mkfs.ext4 -q -F "$img"
loop=$(losetup -f --show "$img")
mkdir "$base/m" "$base/out"
mount "$loop" "$base/m"
m=$base/m

workload="for i in \$(seq $cycles); do
	dd if=/dev/zero of=$m/f bs=4k count=65536 conv=fsync,notrunc status=none &&
	dd if=$m/f iflag=nocache count=0 status=none || exit 1
done"

declare -A cpu wall size events
for v in v6 v7-zstd v7-none; do
	cpu[$v]=""
done
echo "bench-record: $cycles x (256 MiB in 4 KiB writes, fsync, pages dropped) on $(mountpoint -d "$m"), $runs runs each"
for r in $(seq "$runs"); do
	for v in v6 v7-zstd v7-none; do
		case $v in
		v6) opts=(--file-version 6) ;;
		v7-zstd) opts=() ;;
		v7-none) opts=(--compression none) ;;
		esac
		out=$base/out/$v.dat
		# duet alone is timed: it records until SIGINT, the workload runs beside it.
		/usr/bin/time -f "%e %U %S" -o "$base/time" \
			"$duet" record "${opts[@]}" --buffer-kb 65536 -o "$out" "$m" 2> "$base/rec.err" &
		tp=$!
		for _ in $(seq 100); do grep -q 'Ctrl-C to stop' "$base/rec.err" && break; sleep 0.1; done
		dp=$(ps --ppid "$tp" -o pid= | tr -d ' ')
		sh -c "$workload"
		# GNU time ignores SIGINT; duet itself stops on it.
		kill -INT "$dp"
		wait "$tp"
		tp=""
		if grep -q LOST "$base/rec.err"; then
			echo "bench-record: $v run $r lost events:" >&2
			cat "$base/rec.err" >&2
		fi
		read -r d u s < "$base/time"
		c=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
		if [ -z "${cpu[$v]}" ] || [ "$(echo "$c < ${cpu[$v]}" | bc)" = 1 ]; then
			cpu[$v]=$c
			wall[$v]=$d
		fi
		size[$v]=$(stat -c %s "$out")
		events[$v]=$(sed -n 's/.*: \([0-9]*\) events,.*/\1/p' "$base/rec.err")
	done
done
/usr/bin/time -f "%e %U %S" -o "$base/time" \
	trace-cmd convert -i "$base/out/v7-zstd.dat" --file-version 7 --compression zstd \
	-o "$base/out/tc7.dat" > /dev/null 2>&1
read -r tcw tcu tcs < "$base/time"
tccpu=$(awk -v u="$tcu" -v s="$tcs" 'BEGIN { printf "%.2f", u + s }')
tcsize=$(stat -c %s "$base/out/tc7.dat")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-34s %10s %12s %8s %10s %10s\n' "file" "events" "bytes" "v6/this" "cpu s" "wall s"
for v in v6 v7-zstd v7-none; do
	printf '%-34s %10s %12s %8s %10s %10s\n' "duet record ($v)" "${events[$v]}" "${size[$v]}" \
		"$(ratio "${size[v6]}" "${size[$v]}")" "${cpu[$v]}" "${wall[$v]}"
done
printf '%-34s %10s %12s %8s %10s %10s\n' "trace-cmd convert (v7-zstd's pages)" "${events[v7-zstd]}" \
	"$tcsize" "$(ratio "${size[v6]}" "$tcsize")" "$tccpu" "$tcw"
echo "(cpu and wall: best of $runs for duet record; trace-cmd convert once: reading, decompressing, compressing)"
printf '{"bench":"record","cycles":%d,"runs":%d,' "$cycles" "$runs"
for v in v6 v7-zstd v7-none; do
	k=${v//-/_}
	printf '"%s":{"events":%s,"bytes":%s,"cpu_s":%s,"wall_s":%s},' "$k" "${events[$v]}" \
		"${size[$v]}" "${cpu[$v]}" "${wall[$v]}"
done
printf '"trace_cmd_convert_v7_zstd":{"bytes":%s,"cpu_s":%s,"wall_s":%s}}\n' "$tcsize" "$tccpu" "$tcw"
