#!/bin/bash
# duet record round trip: a scripted workload on a loop ext4 recorded with
# `duet record -- sh -c ...` (the default: trace.dat version 7, zstd), read
# back by trace-cmd report (no error, no warning), per-file page counts
# equal to what the workload did, the sidecar's paths, no event of duet
# itself, the command's exit status, and no tracefs instance left behind.
# Needs root, tracefs, trace-cmd and jq: exits 77 otherwise.
set -u
duet=${1:?usage: record.sh path/to/duet}
. "$(dirname "$0")/lib.sh"
live_require jq trace-cmd fincore
T=/sys/kernel/tracing/instances
not() { ! "$@"; }
live_ext4 record 128
mkdir "$m/w" "$m/x" "$m/out"
# The output goes to the traced file system on purpose: nothing of it may
# appear in the trace (it is written after tracing stopped).
out=$m/out/t.dat

# a: 32 pages written and fsynced, dropped, 8 read back (readahead brings
# in more: fincore says how many), truncated. b: 16 pages written. c: 8
# pages outside PATH on the same device (traced, not named).
workload="
dd if=/dev/urandom of=$m/w/a bs=4k count=32 conv=fsync status=none &&
dd if=$m/w/a iflag=nocache count=0 status=none &&
dd if=$m/w/a of=/dev/null bs=4k count=8 status=none &&
fincore -n -b -o PAGES $m/w/a > $base/resident &&
truncate -s 0 $m/w/a &&
dd if=/dev/urandom of=$m/w/b bs=4k count=16 status=none &&
dd if=/dev/urandom of=$m/x/c bs=4k count=8 status=none &&
exit 3"
"$duet" record -o "$out" "$m/w" -- sh -c "$workload" 2> "$base/rec.err" &
dp=$!
wait $dp
rc=$?
cat "$base/rec.err"
check "duet record exits with the command's status (3)" [ $rc = 3 ]
check "no LOST events reported" not grep -q LOST "$base/rec.err"
check "no tracefs instance of duet record left" \
	[ -z "$(ls -d "$T"/duet-"$dp"-* 2>/dev/null)" ]

trace-cmd report "$out" > "$base/report" 2> "$base/report.err"
trc=$?
check "trace-cmd report exits 0" [ $trc = 0 ]
check "trace-cmd report prints nothing on stderr" [ ! -s "$base/report.err" ]
# Every line of its output is the CPU count or an event: no diagnostics.
check "trace-cmd report prints only events" \
	not grep -vqE '^cpus=[0-9]+$|^ *.+-[0-9]+ +\[[0-9]{3}\] +[0-9]+\.[0-9]+: [a-z_0-9]+: ' "$base/report"
cat "$base/report.err"

ia=$(stat -c %i "$m/w/a"); ib=$(stat -c %i "$m/w/b"); ic=$(stat -c %i "$m/x/c")
io=$(stat -c %i "$out")
kdev=$(( ($(stat -c '0x%t' "$loop") << 20) | $(stat -c '0x%T' "$loop") ))
majmin="$(( $(stat -c '0x%t' "$loop") )):$(( $(stat -c '0x%T' "$loop") ))"
resident=$(tr -d ' ' < "$base/resident")

# Pages per file and event, from trace-cmd's text: filemap events print the
# inode in hex and the folio order, writeback_dirty_folio one page in decimal.
pages() { # pages EVENT INO
	awk -v ev="$1:" -v ino="$(printf '%x' "$2")" -v dec="$2" -v dev="$majmin" -v dev2="${majmin/:/,}" '
	$4 == ev && ev ~ /^mm_filemap/ && $6 == dev && $8 == ino {
		o = $NF; sub("order=", "", o); n += 2 ^ o }
	$4 == ev && ev == "writeback_dirty_folio:" && $6 == dev":" && $7 == "ino=" dec { n++ }
	$4 == ev && ev == "sb_clear_inode_writeback:" && $6 == dev2 && $8 == dec { n++ }
	END { print n + 0 }' "$base/report"
}
check "resident after the read back is known ($resident pages)" [ "${resident:-0}" -ge 8 ]
check "a: ADDED 32 + $resident pages" [ "$(pages mm_filemap_add_to_page_cache "$ia")" = $((32 + resident)) ]
check "a: REMOVED 32 + $resident pages" [ "$(pages mm_filemap_delete_from_page_cache "$ia")" = $((32 + resident)) ]
check "a: DIRTY 32 pages" [ "$(pages writeback_dirty_folio "$ia")" = 32 ]
check "a: written back (sb_clear_inode_writeback) after fsync" \
	[ "$(pages sb_clear_inode_writeback "$ia")" -ge 1 ]
check "b: ADDED 16 pages" [ "$(pages mm_filemap_add_to_page_cache "$ib")" = 16 ]
check "b: DIRTY 16 pages" [ "$(pages writeback_dirty_folio "$ib")" = 16 ]
check "b: REMOVED 0 pages" [ "$(pages mm_filemap_delete_from_page_cache "$ib")" = 0 ]
check "c (same device, outside PATH): ADDED 8 pages" \
	[ "$(pages mm_filemap_add_to_page_cache "$ic")" = 8 ]
check "the output file has no event" \
	[ "$(pages mm_filemap_add_to_page_cache "$io")$(pages writeback_dirty_folio "$io")" = 00 ]
check "no event of duet record itself (pid $dp)" not grep -qE -- "-$dp +\[" "$base/report"
check "truncate's removals carry its comm (cmdlines)" \
	[ "$(grep -c "^ *truncate-[0-9]* .*mm_filemap_delete_from_page_cache: dev $majmin ino $(printf '%x' "$ia") " "$base/report")" -ge 1 ]
# (Reclaim events of other tasks on this busy VM are not held to it.)
check "no event of the loop device lacks its comm" \
	not grep -qE "<\.\.\.>.*(dev $majmin |bdi $majmin:|dev ${majmin/:/,} )" "$base/report"
# trace-cmd dump, not report: trace-cmd 3.1.6's report --events prints
# nothing for any version 7 file (its own recordings too).
trace-cmd dump --events -i "$out" > "$base/events" 2>&1
for e in mm_vmscan_kswapd_wake mm_vmscan_kswapd_sleep mm_vmscan_direct_reclaim_begin \
	mm_vmscan_direct_reclaim_end mm_filemap_add_to_page_cache \
	mm_filemap_delete_from_page_cache; do
	check "format of $e is in the file" grep -q "^name: $e\$" "$base/events"
done

s=$out.duet
check "sidecar header" [ "$(jq -c '[.duet_sidecar, .trace, .clock]' "$s")" = '[1,"t.dat","mono"]' ]
check "sidecar mount of the loop device" \
	[ "$(jq -c --arg mp "$m" '[.mounts[] | select(.mount_point == $mp) | [.kdev, .dev, .root, .fstype]]' "$s")" = "[[$kdev,\"$majmin\",\"/\",\"ext4\"]]" ]
check "sidecar bdi $majmin maps to the device" \
	[ "$(jq -c --arg n "$majmin" '[.bdis[] | select(.name == $n) | .kdevs]' "$s")" = "[[$kdev]]" ]
check "sidecar files: a and b (created while recording) with their paths, nothing else" \
	[ "$(jq -c '[.files[] | [.kdev, .ino, .paths]] | sort' "$s")" = \
	  "$(printf '[[%d,%d,["%s"]],[%d,%d,["%s"]]]' "$kdev" "$ia" "$m/w/a" "$kdev" "$ib" "$m/w/b" |
	     jq -c 'sort')" ]

# Without a command: until SIGINT, and the file is still complete.
"$duet" record -o "$base/t2.dat" "$m/w" 2> "$base/rec2.err" &
dp=$!
sleep 1
dd if=/dev/urandom of="$m/w/d" bs=4k count=4 status=none
sleep 0.3
kill -INT $dp
wait $dp
rc=$?
check "record without a command stops on SIGINT with status 0" [ $rc = 0 ]
check "no tracefs instance left after SIGINT" [ -z "$(ls -d "$T"/duet-"$dp"-* 2>/dev/null)" ]
check "its trace has d's 4 pages" [ "$(trace-cmd report "$base/t2.dat" 2>&1 |
	grep -c "add_to_page_cache: dev $majmin ino $(printf '%x' "$(stat -c %i "$m/w/d")") ")" = 4 ]

# --events replaces the default set: only adds, and kswapd_wake as an extra.
"$duet" record -o "$base/t5.dat" --events filemap:mm_filemap_add_to_page_cache,vmscan:mm_vmscan_kswapd_wake \
	"$m/w" -- dd if=/dev/urandom of="$m/w/e" bs=4k count=8 conv=fsync status=none 2>/dev/null
trace-cmd report "$base/t5.dat" > "$base/r5" 2> "$base/r5.err"
check "--events: trace-cmd reads it without complaint" [ ! -s "$base/r5.err" ]
check "--events: only the events asked for (8 adds of e)" \
	[ "$(awk '$4 ~ /:$/ { print $4 }' "$base/r5" | sort -u | tr '\n' ' ')" = "mm_filemap_add_to_page_cache: " ] &&
	[ "$(grep -c "add_to_page_cache: dev $majmin ino $(printf '%x' "$(stat -c %i "$m/w/e")") " "$base/r5")" = 8 ]
trace-cmd dump --events -i "$base/t5.dat" 2>/dev/null | grep '^name: ' | sort > "$base/e5"
check "--events: the file has the formats of exactly those two events" \
	[ "$(tr '\n' ' ' < "$base/e5")" = "name: mm_filemap_add_to_page_cache name: mm_vmscan_kswapd_wake " ]

check "--events with an unknown event is refused" \
	bash -c "! '$duet' record -o '$base/t3.dat' --events nosuch:event -- true 2>/dev/null"

# Losses: a 8 KiB ring under 40,000 events. duet record must say LOST
# with the count, and the count must be what trace-cmd finds marked in the
# stored pages (nothing silent, nothing invented). The writer and the
# readers share one CPU, the writer at the highest priority: the readers
# cannot keep up (a fast reader on its own CPU sometimes could, and there
# was nothing to count).
nice -n 19 taskset -c 0 "$duet" record --buffer-kb 8 -o "$base/t4.dat" "$m/w" -- \
	nice -n -39 dd if=/dev/zero of="$m/w/big" bs=4k count=20000 status=none 2> "$base/rec4.err"
cat "$base/rec4.err"
lost=$(sed -n 's/.*LOST \([0-9]*\) events (page marks \([0-9]*\),.*/\2/p' "$base/rec4.err")
dropped=$(trace-cmd report "$base/t4.dat" 2>/dev/null |
	sed -n 's/.*\[\([0-9]*\) EVENTS DROPPED\].*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
check "a burst into a tiny ring reports LOST with a count ($lost)" [ "${lost:-0}" -gt 0 ]
check "trace-cmd finds the same number of dropped events in the pages ($dropped)" \
	[ "$dropped" = "${lost:-x}" ]

echo "$fails failure(s)"
[ $fails = 0 ]
