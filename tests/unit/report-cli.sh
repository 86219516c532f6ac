#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duet report on the recorded fixtures (tests/data/tracedat/README), no
# root needed: the exact per-file section with paths and devices from a
# sidecar, JSON counts, refaults, causes, an empty recording, and clear
# errors for a bad sidecar and bad files.
set -u
duet=${1:?usage: report-cli.sh path/to/duet DATA-DIR}
data=${2:?usage: report-cli.sh path/to/duet DATA-DIR}/tracedat
command -v jq >/dev/null || { echo "SKIP: jq missing (scripts/setup installs it)"; exit 77; }
fails=0
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); return 1; fi
}
base=$(mktemp -d /tmp/duet-report-cli.XXXXXX)
trap 'rm -rf "$base"' EXIT

for v in 6 7; do
	cp "$data/workload-v$v.dat" "$base/w$v.dat"
	cat > "$base/w$v.dat.duet" <<JSON
{"duet_sidecar":1,"trace":"w$v.dat","clock":"mono",
 "mounts":[{"kdev":7340032,"dev":"7:0","root":"/","mount_point":"/mnt","fstype":"ext4"}],
 "bdis":[{"name":"7:0","kdevs":[7340032]}],
 "files":[{"kdev":7340032,"ino":13,"paths":["/mnt/b"]},
          {"kdev":7340032,"ino":14,"paths":["/mnt/with space/c","/mnt/c2"]}]}
JSON
	"$duet" report "$base/w$v.dat" > "$base/r$v.txt" 2> "$base/e"
	check "v$v: exit 0" [ $? = 0 ] || cat "$base/e"
	sed -n '/^DEV INO/,/^$/p' "$base/r$v.txt" > "$base/sec$v"
	printf '%s\n' 'DEV INO ADDED REMOVED DIRTIED FLUSHED PATH' \
		'7:0 1 2 1 0 0 -' \
		'7:0 13 40 40 32 1 /mnt/b' \
		'7:0 14 16 16 16 1 /mnt/with\040space/c' \
		'7:0 7340032 0 0 9 0 -' '' > "$base/want"
	check "v$v: the per-file section, paths from the sidecar" cmp -s "$base/sec$v" "$base/want" ||
		diff "$base/sec$v" "$base/want"
	"$duet" report --json "$base/w$v.dat" > "$base/r$v.json"
	check "v$v: JSON for ino 13: 40 40 32 1, refaults 8, causes sh 32 / truncate 8" \
		[ "$(jq -c '.files[] | select(.ino == 13) | [.added, .removed, .dirtied, .flushed, .refaults, .removed_by, .path]' "$base/r$v.json")" \
		= '[40,40,32,1,8,{"drop-caches":32,"truncate/unlink/invalidate":8},"/mnt/b"]' ]
	check "v$v: removals by comm" [ "$(jq -c '[.removals[] | [.cause, .comm, .pages]] | sort' "$base/r$v.json")" \
		= '[["drop-caches","sh",33],["truncate/unlink/invalidate","rm",16],["truncate/unlink/invalidate","truncate",8]]' ]
	check "v$v: time in cache covers the 57 pages added and removed" \
		[ "$(jq '[.time_in_cache.buckets[].pages] | add' "$base/r$v.json")" = 57 ]
	check "v$v: top by added" [ "$(jq -c '[.top.added[] | .ino]' "$base/r$v.json")" = '[13,14,1]' ]
	check "v$v: semantics" [ "$(jq -r '"\(.trace_dat_version) \(.flush) \(.paths)"' "$base/r$v.json")" = \
		"$v inode-level (sb_clear_inode_writeback events, not pages) sidecar" ]
done
check "v6 and v7 give the same text (but the header line)" \
	cmp -s <(tail -n +2 "$base/r6.txt") <(tail -n +2 "$base/r7.txt")

# Every removal cause, on the hand-built page of causes-v6.dat.
cp "$data/causes-v6.dat" "$base/c.dat"
"$duet" report --json "$base/c.dat" > "$base/c.json"
check "causes: ino 99 added 11 removed 9 refaults 1" \
	[ "$(jq -c '.files[] | [.ino, .added, .removed, .refaults]' "$base/c.json")" = '[99,11,9,1]' ]
check "causes: per file" [ "$(jq -c '.files[0].removed_by' "$base/c.json")" = \
	'{"kswapd":1,"direct-reclaim":1,"drop-caches":1,"kernel":2,"truncate/unlink/invalidate":4}' ]
check "causes: by task" [ "$(jq -c '[.removals[] | "\(.cause):\(.comm):\(.pages)"] | sort' "$base/c.json")" = \
	'["direct-reclaim:stress:1","drop-caches:bash:1","kernel:kdamond.0:1","kernel:kworker/u8:1:1","kswapd:null:1","truncate/unlink/invalidate:<999>:1","truncate/unlink/invalidate:rm:2","truncate/unlink/invalidate:stress:1"]' ]
check "causes: one kswapd wakeup, one direct reclaim" \
	[ "$(jq -c '.reclaim' "$base/c.json")" = '{"vmscan_recorded":true,"kswapd_wakeups":1,"direct_reclaims":1}' ]
"$duet" report --json --drop-caches-comm rm "$base/c.dat" > "$base/c2.json"
check "--drop-caches-comm rm: rm's and no longer bash's removals are drop-caches" \
	[ "$(jq -c '[.removals[] | select(.cause == "drop-caches") | .comm]' "$base/c2.json")" = '["rm"]' ]

"$duet" report --plot "$base/p.svg" "$base/w6.dat" > /dev/null
check "--plot: an SVG with 3 series" [ "$(grep -c '<polyline' "$base/p.svg")" = 3 ]
check "--plot: escaped names" grep -q '/mnt/with\\040space/c' "$base/p.svg"

cp "$data/empty-v6.dat" "$base/empty.dat"
"$duet" report --json "$base/empty.dat" > "$base/n.json"
check "empty recording: exit 0, no events" [ $? = 0 -a "$(jq -c '[.events, (.files | length)]' "$base/n.json")" = '[0,0]' ]

echo '{"duet_sidecar": 2}' > "$base/w6.dat.duet"
"$duet" report "$base/w6.dat" > "$base/o" 2> "$base/e"
check "a sidecar of another schema: exit 1, says so" [ $? = 1 ] && grep -q 'duet_sidecar' "$base/e"
echo 'not json' > "$base/w6.dat.duet"
"$duet" report "$base/w6.dat" > "$base/o" 2> "$base/e"
check "a sidecar that is not JSON: exit 1, says so" [ $? = 1 ] && grep -q 'not valid JSON' "$base/e"
"$duet" report "$base/missing.dat" > "$base/o" 2> "$base/e"
check "a missing file: exit 1" [ $? = 1 ] && grep -q 'No such file' "$base/e"
"$duet" report > "$base/o" 2> "$base/e"
check "no file: usage, exit 2" [ $? = 2 ]
head -c 3000 "$data/workload-v6.dat" > "$base/cut.dat"
"$duet" report "$base/cut.dat" > "$base/o" 2> "$base/e"
check "a cut file: exit 1, one sentence" [ $? = 1 -a "$(wc -l < "$base/e")" = 1 ]
echo "$fails failed"
[ $fails = 0 ]
