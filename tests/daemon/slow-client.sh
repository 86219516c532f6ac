#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A stopped client. duetd runs with a bound of 2048 pending pages per
# task. Client S registers slow/ and is stopped (SIGSTOP); client F
# registers fast/. 8192 pages are written into slow/ and some into fast/:
# F's dump comes back while S is still stopped, and equals the page cache
# of fast/ (S delays nobody); duetd's memory stays under its baseline plus
# the stated bound; duet status shows S's task over its bound with a LOST.
# After SIGCONT, S gets the LOST item, resyncs, and its view equals the
# page cache of slow/, and its scan is complete. Then a raw client's
# scan is cut short by an overflow: after its resync, scan_done equals
# scan_files again.
. "$LIBDIR/lib.sh"
setup 512
mkdir "$MNT/slow" "$MNT/fast"
start_duetd -v -p 2048
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DPID/status"; }
bg_client "$W/s" "$DCLIENT" -D -o "$W/s" -r "$W/s.ready" -q 500 "$MNT/slow"
SPID=$CPID
bg_client "$W/f" "$DCLIENT" -D -o "$W/f" -r "$W/f.ready" -q 500 "$MNT/fast"
FPID=$CPID
wait_file "$W/s.ready" 60 $SPID || die "S did not register"
wait_file "$W/f.ready" 60 $FPID || die "F did not register"
# The daemon's own working set first (reader buffers, record batches):
# a workload S is not stopped for.
for i in $(seq 0 7); do dd if=/dev/urandom of="$MNT/slow/warm$i" bs=4k count=256 status=none; done
sync
dump_wait $SPID "$W/s" 1 30 || die "S did not dump"
base=$(rss)
kill -STOP $SPID
# 8192 pages for S (4x its bound) in 4 KiB writes, then read back after a
# drop, so they come as page events; 64 pages for F.
for i in $(seq 0 15); do
	dd if=/dev/urandom of="$MNT/slow/s$i" bs=4k count=512 status=none
done
for i in 0 1 2 3; do dd if=/dev/urandom of="$MNT/fast/f$i" bs=4k count=16 status=none; done
sync
t0=$(date +%s.%N)
n=0
snapf() { n=$((n + 1)); dump_wait $FPID "$W/f" $n 30; }
SNAP_CMD=snapf
settle "$W/resf" "$MNT/fast" || die "no stable page cache snapshot of fast/"
t1=$(date +%s.%N)
say "F's drained dump took $(echo "$t1 - $t0" | bc) s while S is stopped"
check "S is still stopped" grep -q '^State:.*T' /proc/$SPID/status
res_under "$W/resf" "$MNT/fast" >"$W/resf.d"
check "F's view == page cache of fast/ while S is stopped" same_view F "$W/f" "$W/resf.d"
check "F: no LOST" [ "$(hdr "$W/f" lost)" = 0 ]
check "F: no redundant items" [ "$(hdr "$W/f" redundant)" = 0 ]
"$DUET" status --socket "$SOCK" --json >"$W/st.json"
jq -c '.daemon.tasks[]' "$W/st.json"
check "the engine holds under 1 MiB with S over its bound ($(jq .daemon.engine_bytes "$W/st.json") bytes)" \
	[ "$(jq .daemon.engine_bytes "$W/st.json")" -lt 1048576 ]
check "duet status: S's task is over its bound" \
	[ "$(jq "[.daemon.tasks[] | select(.pid == $SPID and .paused == true and .lost >= 1)] | length" "$W/st.json")" = 1 ]
check "duet status: S's task holds no pending pages" \
	[ "$(jq ".daemon.tasks[] | select(.pid == $SPID) | .pending" "$W/st.json")" = 0 ]
# The bound: 2048 pages at most ~150 B each in the shared table, plus one
# batch of events (~a 64 KiB sub-buffer per CPU: 3000 pages), plus the
# stopped client's buffers (64 KiB in, 1 MiB out at most): 2 MiB in all.
now=$(rss)
say "duetd RSS: $base KiB before, $now KiB with S stopped over its bound"
check "duetd's memory stays under its baseline + 2 MiB ($base + 2048 KiB >= $now KiB)" \
	[ "$now" -le $((base + 2048)) ]
kill -CONT $SPID
n=1
snaps() { n=$((n + 1)); dump_wait $SPID "$W/s" $n 60; }
SNAP_CMD=snaps
settle "$W/ress" "$MNT/slow" || die "no stable page cache snapshot of slow/"
res_under "$W/ress" "$MNT/slow" >"$W/ress.d"
check "S got a LOST item" [ "$(hdr "$W/s" lost)" -ge 1 ]
check "S's view after its resync == page cache of slow/" same_view S "$W/s" "$W/ress.d"
check "S: no redundant items" [ "$(hdr "$W/s" redundant)" = 0 ]
grep -m5 "redundant item" "$W/s.log" >&2
"$DUET" status --socket "$SOCK" --json >"$W/st2.json"
jq -c '.daemon.tasks[]' "$W/st2.json"
check "duet status: S's task resynced once and is no longer over its bound" \
	[ "$(jq "[.daemon.tasks[] | select(.pid == $SPID and .paused == false and .resyncs == 1)] | length" "$W/st2.json")" = 1 ]
check "duet status: S's scan after its overflow is complete (scan_done == scan_files)" \
	[ "$(jq "[.daemon.tasks[] | select(.pid == $SPID and .scan_complete and .scan_done == .scan_files)] | length" "$W/st2.json")" = 1 ]

# An overflow in the middle of a scan. A task that does not fetch has its
# scan of mid/ (64 files, 2048 cached pages) wait at half its bound with
# files left; new pages take it over its bound, which drops the files
# still queued. Once it fetches (LOST, then the resync), scan_done must
# come back to scan_files: the dropped files leave the count.
mkdir "$MNT/mid"
for i in $(seq 1 64); do dd if=/dev/urandom of="$MNT/mid/m$i" bs=4k count=32 status=none; done
python3 "$DPROTO" "$SOCK" overflow "$MNT/mid" "$W/o.ready" "$W/o.go" "$W/o.out" >"$W/o.log" 2>&1 &
OPID=$!
PIDS="$PIDS $OPID"
wait_file "$W/o.ready" 60 $OPID || die "the overflowing client: $(cat "$W/o.log")"
cat "$W/o.ready"
check "its scan waits with files left" \
	python3 -c 'import sys; d = dict(kv.split("=") for kv in open(sys.argv[1]).read().split()); sys.exit(not int(d["scan_done"]) < int(d["scan_files"]))' "$W/o.ready"
for i in $(seq 0 5); do dd if=/dev/urandom of="$MNT/mid/new$i" bs=4k count=512 status=none; done
for _ in $(seq 100); do
	"$DUET" status --socket "$SOCK" --json >"$W/st3.json"
	[ "$(jq "[.daemon.tasks[] | select(.dir == \"$MNT/mid\") | .paused] | .[0]" "$W/st3.json")" = true ] && break
	sleep 0.1
done
check "the new pages took it over its bound (paused)" \
	[ "$(jq "[.daemon.tasks[] | select(.dir == \"$MNT/mid\") | .paused] | .[0]" "$W/st3.json")" = true ]
check "and its scan is not complete while paused" \
	[ "$(jq "[.daemon.tasks[] | select(.dir == \"$MNT/mid\") | .scan_complete] | .[0]" "$W/st3.json")" = false ]
touch "$W/o.go"
wait_file "$W/o.out" 90 $OPID || die "the overflowing client did not finish: $(cat "$W/o.log")"
cat "$W/o.out"
check "it got its LOST and resynced" grep -q "lost_items=1 .*resyncs=1 " "$W/o.out"
check "scan_done == scan_files after the resync" \
	python3 -c 'import sys; d = dict(kv.split("=") for kv in open(sys.argv[1]).read().split()); sys.exit(d["scan_done"] != d["scan_files"] or d["pending"] != "0")' "$W/o.out"
"$DUET" status --socket "$SOCK" --json >"$W/st4.json"
jq -c ".daemon.tasks[] | select(.dir == \"$MNT/mid\")" "$W/st4.json"
check "duet status: its scan is complete" \
	[ "$(jq "[.daemon.tasks[] | select(.dir == \"$MNT/mid\") | .scan_complete and .scan_done == .scan_files] | .[0]" "$W/st4.json")" = true ]
exit 0
