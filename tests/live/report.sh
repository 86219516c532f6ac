#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duet report and scripts/duet-perf-summary.py on a real recording: a
# scripted workload on a loop ext4 with known pages per file, recorded by
# trace-cmd (file version 6) and perf at the same time; both summaries
# must give exactly the expected counts and the same per-file lines. Then
# bad files: each gets a clear error and a non-zero exit, no crash.
# Needs root, trace-cmd, perf, jq: exits 77 otherwise.
set -u
duet=${1:?usage: report.sh path/to/duet path/to/duet-perf-summary.py}
pyscript=${2:?usage: report.sh path/to/duet path/to/duet-perf-summary.py}
. "$(dirname "$0")/lib.sh"
live_require trace-cmd perf jq python3
# trace-cmd record leaves the top-level buffer's tracing_on at 0: restore it.
T=/sys/kernel/tracing
old_on=$(cat $T/tracing_on)
old_kb=$(cat $T/buffer_size_kb)
restore_tracing() {
	echo "$old_on" > $T/tracing_on
	echo "$old_kb" > $T/buffer_size_kb
}
LIVE_CLEANUP_HOOK=restore_tracing
# Recordings and scratch files live off the traced file system.
live_ext4 report 128
m=$base/m
dev=$(mountpoint -d "$m")
maj=${dev%:*}
min=${dev#*:}
kdev=$(( (maj << 20) | min ))
bdi=$(basename "$(readlink /sys/dev/block/$dev/bdi)")
# Own copies of truncate and rm: their comm names the cause exactly.
cp "$(command -v truncate)" "$base/dtrunc$$"
cp "$(command -v rm)" "$base/drm$$"

# Both recorders, kernel-filtered to the loop device (trace-cmd) or not
# (perf: it has no per-event filters here; other devices are ignored).
# trace-cmd writes its default: file version 7, zstd-compressed.
stdbuf -oL trace-cmd record -d --no-filter \
	-e filemap:mm_filemap_add_to_page_cache -f "s_dev == $kdev" \
	-e filemap:mm_filemap_delete_from_page_cache -f "s_dev == $kdev" \
	-e writeback:writeback_dirty_folio -f "name == \"$bdi\"" \
	-e writeback:sb_clear_inode_writeback -f "dev == $kdev" \
	-e vmscan:mm_vmscan_direct_reclaim_begin -e vmscan:mm_vmscan_direct_reclaim_end \
	-e vmscan:mm_vmscan_kswapd_wake \
	-o "$base/t.dat" > "$base/tc.log" 2>&1 &
tp=$!
pids="$tp"
perf record -a -q -m 1024 -e 'filemap:mm_filemap_add_to_page_cache' \
	-e 'filemap:mm_filemap_delete_from_page_cache' -e 'writeback:writeback_dirty_folio' \
	-e 'writeback:sb_clear_inode_writeback' -o "$base/p.data" > "$base/perf.log" 2>&1 &
pp=$!
pids="$pids $pp"
for _ in $(seq 100); do grep -q "Hit Ctrl" "$base/tc.log" && break; sleep 0.1; done
grep -q "Hit Ctrl" "$base/tc.log" || { echo "FAIL: trace-cmd did not start"; cat "$base/tc.log"; exit 1; }
# perf says nothing when it is ready; its events are on within a second.
sleep 1.5

# The workload (short: DAMON evicts page cache idle for ~30 s).
# f: 32 pages written and fsynced (ADDED 32, DIRTIED 32, one inode-level
#    flush), dropped by drop_caches (REMOVED 32), pages 0-7 read back with
#    readahead off (ADDED 8, refaults 8), truncated (REMOVED 8).
# g: 16 pages written, synced (one flush), unlinked (REMOVED 16).
dd if=/dev/zero of="$m/f" bs=4k count=32 conv=fsync status=none
sh -c 'echo 1 > /proc/sys/vm/drop_caches'
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
assert len(os.pread(fd, 8 * 4096, 0)) == 8 * 4096' "$m/f"
fino=$(stat -c %i "$m/f")
"$base/dtrunc$$" -s 0 "$m/f"
dd if=/dev/zero of="$m/g" bs=4k count=16 status=none
sync "$m/g"
gino=$(stat -c %i "$m/g")
"$base/drm$$" "$m/g"
sleep 0.5
kill -INT $tp $pp
wait $tp; wait $pp
pids=""

"$duet" report --json "$base/t.dat" > "$base/r.json" 2> "$base/r.err"
check "duet report exits 0" [ $? = 0 ]
row() { jq -r --arg d "$dev" --argjson i "$1" \
	'.files[] | select(.dev == $d and .ino == $i) | "\(.added) \(.removed) \(.dirtied) \(.flushed) \(.refaults) \(.flush_unit)"' "$base/r.json"; }
check "f: added 40 removed 40 dirtied 32 flushed 1 (inode-level) refaults 8" \
	[ "$(row "$fino")" = "40 40 32 1 8 inode-events" ]
check "g: added 16 removed 16 dirtied 16 flushed 1 refaults 0" \
	[ "$(row "$gino")" = "16 16 16 1 0 inode-events" ]
cause() { jq -c --arg d "$dev" --argjson i "$1" \
	'.files[] | select(.dev == $d and .ino == $i) | .removed_by' "$base/r.json"; }
check "f: 32 pages removed by drop-caches (sh), 8 by truncation" \
	[ "$(cause "$fino")" = '{"drop-caches":32,"truncate/unlink/invalidate":8}' ] ||
	{ cause "$fino"; jq -c .removals "$base/r.json"; }
check "g: 16 pages removed by unlink" \
	[ "$(cause "$gino")" = '{"truncate/unlink/invalidate":16}' ]
bycomm() { jq -r --arg c "$1" '[.removals[] | select(.comm == $c) | "\(.cause) \(.pages)"] | join(",")' "$base/r.json"; }
check "removals of dtrunc$$: exactly 8 pages, truncation" \
	[ "$(bycomm "dtrunc$$")" = "truncate/unlink/invalidate 8" ]
check "removals of drm$$: exactly 16 pages" [ "$(bycomm "drm$$")" = "truncate/unlink/invalidate 16" ]
check "time in cache: every removed page is in the histogram or 'cached before'" \
	[ "$(jq '([.time_in_cache.buckets[].pages] | add) + .time_in_cache.removed_without_add' "$base/r.json")" = "$(jq '[.files[].removed] | add' "$base/r.json")" ]
check "nothing lost" [ "$(jq '.lost + .lost_unknown_pages + .bad_pages' "$base/r.json")" = 0 ]

# The same recording as file version 6, uncompressed: the same report.
check "trace-cmd wrote version 7 with zstd" python3 -c '
import sys
d = open(sys.argv[1], "rb").read(32)
sys.exit(not (d[10:12] == b"7\0" and d[18:23] == b"zstd\0"))' "$base/t.dat"
trace-cmd convert -i "$base/t.dat" --file-version 6 --compression none -o "$base/t6.dat" > /dev/null 2>&1
"$duet" report "$base/t.dat" | tail -n +2 > "$base/r7.txt"
"$duet" report "$base/t6.dat" | tail -n +2 > "$base/r6.txt"
check "version 6 and version 7 (zstd) of one recording give the same report" \
	cmp -s "$base/r6.txt" "$base/r7.txt" || diff "$base/r6.txt" "$base/r7.txt"

# The text section and perf's must agree line for line on the loop device.
"$duet" report "$base/t.dat" > "$base/r.txt"
check "text report has the per-file header" grep -qx 'DEV INO ADDED REMOVED DIRTIED FLUSHED PATH' "$base/r.txt"
check "text row of f" grep -qx "$dev $fino 40 40 32 1 -" "$base/r.txt"
perf script -i "$base/p.data" -s "$pyscript" > "$base/perf.txt" 2> "$base/perf.err"
check "perf script exits 0" [ $? = 0 ]
check "perf script has the per-file header" grep -qx 'DEV INO ADDED REMOVED DIRTIED FLUSHED PATH' "$base/perf.txt"
check "perf row of f" grep -qx "$dev $fino 40 40 32 1 -" "$base/perf.txt"
check "perf row of g" grep -qx "$dev $gino 16 16 16 1 -" "$base/perf.txt"
# The workload's files only: the file system's own metadata (inode 1, the
# journal) is also written by the kernel around the two recorders' start
# and stop, which do not happen at the same instant.
grep -E "^$dev ($fino|$gino) " "$base/r.txt" > "$base/a"
grep -E "^$dev ($fino|$gino) " "$base/perf.txt" > "$base/b"
same_rows() { [ "$(wc -l < "$base/a")" = 2 ] && cmp -s "$base/a" "$base/b"; }
check "duet report and perf script give the same lines for the workload's files" same_rows ||
	diff "$base/a" "$base/b"

# --plot writes an SVG with one line per plotted file.
"$duet" report --plot "$base/r.svg" "$base/t.dat" > /dev/null
check "--plot writes an SVG with polylines" \
	[ "$(head -c 4 "$base/r.svg")" = "<svg" -a "$(grep -c '<polyline' "$base/r.svg")" -ge 2 ]

# Bad files: a sentence on stderr, exit 1, never a signal.
bad() { # bad DESCRIPTION FILE EXPECTED-TEXT
	"$duet" report "$2" > "$base/o" 2> "$base/e"
	local rc=$?
	check "$1: exit 1 ($rc), says \"$3\"" [ $rc = 1 -a ! -s "$base/o" ] && grep -q -- "$3" "$base/e" ||
		cat "$base/e"
}
size=$(stat -c %s "$base/t6.dat")
head -c 100 "$base/t.dat" > "$base/trunc1"
bad "truncated in the header" "$base/trunc1" "truncated"
head -c $((size - 4096)) "$base/t6.dat" > "$base/trunc2"
bad "truncated in the page data (v6)" "$base/trunc2" "beyond the end of the file"
head -c $(($(stat -c %s "$base/t.dat") - 1000)) "$base/t.dat" > "$base/trunc3"
bad "truncated (v7)" "$base/trunc3" "beyond the end"
: > "$base/empty"
bad "empty file" "$base/empty" "empty file"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\x08\x06\0\0\0' > "$base/x.png"
bad "a PNG" "$base/x.png" "not a trace.dat"
bad "a perf.data" "$base/p.data" "perf.data"
# A corrupt event format of ours: the layout check refuses it.
python3 - "$base/t6.dat" "$base/badfmt" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.find(b'field:unsigned long i_ino;')
assert i > 0
d[i:i + 26] = b'field:unsigned long x_ino;'
open(sys.argv[2], 'wb').write(d)
EOF
bad "an event format without i_ino" "$base/badfmt" "cannot be decoded"
# A corrupt page: refused and counted, the rest is reported.
python3 - "$base/t6.dat" "$base/badpage" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.find(b'flyrecord\0') + 10
off, size = struct.unpack_from('<QQ', d, i)
if not size:
    off, size = struct.unpack_from('<QQ', d, i + 16)
struct.pack_into('<Q', d, off + 8, 0x7ffffff)    # commit beyond the page
open(sys.argv[2], 'wb').write(d)
EOF
"$duet" report --json "$base/badpage" > "$base/bp.json" 2> "$base/e"
check "a corrupt page: exit 0, bad_pages 1" [ $? = 0 -a "$(jq .bad_pages "$base/bp.json")" = 1 ]

# A valid recording with no events is an empty report, not an error.
trace-cmd record -d --no-filter --file-version 6 -e filemap:mm_filemap_add_to_page_cache \
	-f 's_dev == 1' -o "$base/none.dat" sleep 0.2 > /dev/null 2>&1
"$duet" report --json "$base/none.dat" > "$base/n.json" 2> "$base/e"
check "empty recording: exit 0, no files, no events" \
	[ $? = 0 -a "$(jq -c '[.events, (.files | length)]' "$base/n.json")" = "[0,0]" ]
"$duet" report "$base/none.dat" > "$base/n.txt" 2> "$base/e"
check "empty recording, text: the header and no rows" \
	[ $? = 0 -a "$(sed -n '/^DEV INO/,/^$/p' "$base/n.txt" | wc -l)" = 2 ]

echo "$fails failed"
[ $fails = 0 ]
