#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duet record's file versions: one scripted workload on a loop ext4
# recorded three times, as the default (trace.dat version 7, zstd), with
# --file-version 6 and with --compression none. Debian's trace-cmd
# (3.1.6) reads each with nothing on stderr, `trace-cmd dump --summary`
# names the version and the compression, and the workload's events are
# the same in all three, line for line once the parts that differ between
# two runs are left out (task, pid, CPU, time, pfn, inode number, the
# flush's jiffies). duet report gives the same per-file rows (ADDED
# REMOVED DIRTIED FLUSHED PATH, and the JSON rows without the inode) for
# the three, equal to what the workload did. The zstd file is smaller
# than the version 6 one (both sizes are printed). The zstd file cut short
# is refused by duet report with a sentence.
# Needs root, tracefs, trace-cmd and jq: exits 77 otherwise.
duet=${1:?usage: record-versions.sh path/to/duet}
. "$(dirname "$0")/lib.sh"
live_require trace-cmd jq
live_ext4 record-versions 128
mkdir "$m/w"
majmin=$(mountpoint -d "$m")
# Its own copy of truncate: its comm names the removals.
cp "$(command -v truncate)" "$base/dtrunc$$"

# a: 32 pages written and fsynced (one inode-level flush), truncated
#    (32 removed). b: 16 pages written and synced. c: 256 pages written,
#    for a recording with enough pages to compress.
workload="
dd if=/dev/urandom of=$m/w/a bs=4k count=32 conv=fsync status=none &&
$base/dtrunc$$ -s 0 $m/w/a &&
dd if=/dev/urandom of=$m/w/b bs=4k count=16 status=none && sync $m/w/b &&
dd if=/dev/zero of=$m/w/c bs=4k count=256 conv=fsync status=none"

# The workload's events as trace-cmd prints them, without what differs
# between runs; inode numbers become the file's name.
events() { # events REPORT INO-A INO-B INO-C
	awk -v dev="$majmin" -v dev2="${majmin/:/,}" -v a="$2" -v b="$3" -v c="$4" '
	BEGIN { n[a] = "a"; n[b] = "b"; n[c] = "c"
		h[sprintf("%x", a)] = "a"; h[sprintf("%x", b)] = "b"; h[sprintf("%x", c)] = "c" }
	$4 ~ /^mm_filemap_/ && $6 == dev && ($8 in h) { print $4, h[$8], $10, $11 }
	$4 == "writeback_dirty_folio:" && $6 == dev":" {
		i = $7; sub("ino=", "", i); if (i in n) print $4, n[i], $8 }
	$4 == "sb_clear_inode_writeback:" && $6 == dev2 && ($8 in n) { print $4, n[$8] }' "$1"
}

for v in v7 v6 none; do
	case $v in
	v7) opts=() ;;
	v6) opts=(--file-version 6) ;;
	none) opts=(--compression none) ;;
	esac
	out=$base/$v.dat
	rm -f "$m"/w/*
	"$duet" record "${opts[@]}" -o "$out" "$m/w" -- sh -c "$workload" 2> "$base/$v.rec"
	rc=$?
	cat "$base/$v.rec"
	check "$v: duet record ${opts[*]:-(the defaults)} exits 0" [ $rc = 0 ]
	check "$v: no LOST events" bash -c "! grep -q LOST '$base/$v.rec'"
	inos=$(stat -c %i "$m/w/a" "$m/w/b" "$m/w/c" | tr '\n' ' ')

	trace-cmd report "$out" > "$base/$v.report" 2> "$base/$v.report.err"
	check "$v: trace-cmd report exits 0" [ $? = 0 ]
	check "$v: trace-cmd report prints nothing on stderr" [ ! -s "$base/$v.report.err" ] ||
		cat "$base/$v.report.err"
	check "$v: trace-cmd report prints only events" bash -c "! grep -vqE \
		'^cpus=[0-9]+\$|^ *.+-[0-9]+ +\[[0-9]{3}\] +[0-9]+\.[0-9]+: [a-z_0-9]+: ' '$base/$v.report'"
	# shellcheck disable=SC2086
	events "$base/$v.report" $inos > "$base/$v.events"
	trace-cmd dump --summary -i "$out" > "$base/$v.dump" 2>&1

	"$duet" report "$out" > "$base/$v.txt" 2> "$base/$v.txt.err"
	check "$v: duet report exits 0, nothing on stderr" [ $? = 0 -a ! -s "$base/$v.txt.err" ]
	awk -v w="$m/w/" 'index($7, w) == 1 { print $3, $4, $5, $6, $7 }' "$base/$v.txt" > "$base/$v.rows"
	"$duet" report --json "$out" > "$base/$v.json"
	jq -c --arg w "$m/w/" '[.files[] | select(.path // "" | startswith($w)) | del(.ino)] | sort_by(.path)' \
		"$base/$v.json" > "$base/$v.jrows"
	jq -r .trace_dat_version "$base/$v.json" > "$base/$v.version"
done

grep -qx $'\t\t7\t\\[Version\\]' "$base/v7.dump" && grep -qx $'\t\tzstd\t\\[Compression algorithm\\]' "$base/v7.dump"
check "default: trace-cmd dump --summary says version 7, zstd" [ $? = 0 ] || cat "$base/v7.dump"
grep -qx $'\t\t6\t\\[Version\\]' "$base/v6.dump" && ! grep -q 'Compression algorithm' "$base/v6.dump"
check "--file-version 6: trace-cmd dump --summary says version 6, no compression" [ $? = 0 ] ||
	cat "$base/v6.dump"
grep -qx $'\t\t7\t\\[Version\\]' "$base/none.dump" && grep -qx $'\t\tnone\t\\[Compression algorithm\\]' "$base/none.dump"
check "--compression none: trace-cmd dump --summary says version 7, none" [ $? = 0 ] ||
	cat "$base/none.dump"
check "duet report --json names the versions (7 6 7)" \
	[ "$(cat "$base/v7.version" "$base/v6.version" "$base/none.version" | tr '\n' ' ')" = "7 6 7 " ]

# What the workload did: a's 32 pages added, dirtied and removed by the
# truncation, one flush; b's 16 added and dirtied, one flush; c's 256.
want="a: 32 added, 32 dirtied, 32 removed, 1 flush; b: 16 16 0 1; c: 256 256 0 1"
count() { # count EVENTS-FILE
	awk '{ k[$1 " " $2]++ }
	END { printf "a: %d added, %d dirtied, %d removed, %d flush; b: %d %d %d %d; c: %d %d %d %d\n",
		k["mm_filemap_add_to_page_cache: a"], k["writeback_dirty_folio: a"],
		k["mm_filemap_delete_from_page_cache: a"], k["sb_clear_inode_writeback: a"],
		k["mm_filemap_add_to_page_cache: b"], k["writeback_dirty_folio: b"],
		k["mm_filemap_delete_from_page_cache: b"], k["sb_clear_inode_writeback: b"],
		k["mm_filemap_add_to_page_cache: c"], k["writeback_dirty_folio: c"],
		k["mm_filemap_delete_from_page_cache: c"], k["sb_clear_inode_writeback: c"] }' "$1"
}
check "v7: trace-cmd's events of the workload are what it did ($want)" \
	[ "$(count "$base/v7.events")" = "$want" ] || count "$base/v7.events"
check "v6 and v7: the same workload events, line for line ($(wc -l < "$base/v7.events") lines)" \
	cmp -s "$base/v6.events" "$base/v7.events" || diff "$base/v6.events" "$base/v7.events" | head
check "v7 uncompressed and v7: the same workload events, line for line" \
	cmp -s "$base/none.events" "$base/v7.events" || diff "$base/none.events" "$base/v7.events" | head

rows="32 32 32 1 $m/w/a
16 0 16 1 $m/w/b
256 0 256 1 $m/w/c"
check "v7: duet report's rows of the workload's files are what it did" \
	[ "$(sort -k5 "$base/v7.rows")" = "$rows" ] || cat "$base/v7.rows"
check "v6 and v7: duet report gives the same rows" cmp -s "$base/v6.rows" "$base/v7.rows" ||
	diff "$base/v6.rows" "$base/v7.rows"
check "v7 uncompressed and v7: duet report gives the same rows" \
	cmp -s "$base/none.rows" "$base/v7.rows" || diff "$base/none.rows" "$base/v7.rows"
check "v6, v7, v7 uncompressed: the same JSON rows (ino left out)" \
	bash -c "cmp -s '$base/v6.jrows' '$base/v7.jrows' && cmp -s '$base/none.jrows' '$base/v7.jrows'" ||
	diff "$base/v6.jrows" "$base/v7.jrows"

s7=$(stat -c %s "$base/v7.dat"); s6=$(stat -c %s "$base/v6.dat"); sn=$(stat -c %s "$base/none.dat")
echo "sizes: v7 (zstd) $s7 bytes, v6 $s6 bytes, v7 uncompressed $sn bytes"
check "the zstd file is smaller than the version 6 one ($s7 < $s6)" [ "$s7" -lt "$s6" ]

# A cut version 7 file: duet report says so and exits 1, never a signal.
for cut in 100 2000 $((s7 - 1000)) $((s7 - 20)); do
	head -c "$cut" "$base/v7.dat" > "$base/cut.dat"
	"$duet" report "$base/cut.dat" > "$base/cut.out" 2> "$base/cut.err"
	rc=$?
	check "v7 cut to $cut bytes: duet report exits 1 saying it is truncated" \
		[ $rc = 1 -a ! -s "$base/cut.out" ] && grep -q 'truncated' "$base/cut.err" ||
		cat "$base/cut.err"
done

# Usage: version 6 has no compression.
"$duet" record --file-version 6 --compression zstd -o "$base/x.dat" -- true 2> "$base/x.err"
check "--file-version 6 --compression zstd is refused (exit 2), no file left" \
	[ $? = 2 -a ! -e "$base/x.dat" ]

echo "$fails failure(s)"
[ $fails = 0 ]
