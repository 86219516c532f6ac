#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The bound on a task's done marks. With duetd -d 1000, user A's task
# (through libduet: tests/daemon/dmarks) marks 1000 files done, the next
# mark fails with -EDQUOT and duet_strerror()'s sentence, resetting 10
# marks makes room for exactly 10, and at the bound a reset that would
# split a range fails too; duet status shows the task's marks. With the
# default bound (65536), a raw client that tries 1,048,576 marks in
# 1024-mark requests gets exactly 65536, and duetd's memory grows by no
# more than the bound allows; so does one marking page ranges in the
# layout the engine's sets store worst. An in-process session has no
# bound.
. "$LIBDIR/lib.sh"
setup 64
mkdir -m 0755 "$MNT/d"
dd if=/dev/urandom of="$MNT/d/f" bs=4k count=4 status=none
# The files A marks (dmarks: m1 ... m1011, mr), readable by A.
(cd "$MNT/d" && touch mr $(seq -f 'm%g' 1 1011))
A=dma$$
add_user $A
EDQUOT=$(python3 -c 'import errno; print(errno.EDQUOT)')
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DPID/status"; }

start_duetd -v -d 1000
AS_EXEC=1 as $A "$DMARKS" -w "$MNT/d" 1000 >"$W/m.out" 2>"$W/m.err" &
MPID=$!
PIDS="$PIDS $MPID"
for _ in $(seq 300); do grep -q '^waiting' "$W/m.out" 2>/dev/null && break; sleep 0.1; done
cat "$W/m.out" "$W/m.err"
check "1000 marks fit, the next fails with -EDQUOT" grep -qx "set 1000 -$EDQUOT" "$W/m.out"
check "with duet_strerror's sentence" grep -qx "error -$EDQUOT the task holds as many done marks as duetd allows a task (duetd --max-done-marks): reset marks to make room" "$W/m.out"
check "resetting 10 marks makes room for exactly 10" grep -qx "again 10 -$EDQUOT" "$W/m.out"
check "at the bound, a reset that would split a range fails" grep -qx "split -$EDQUOT" "$W/m.out"
check "a reset of the whole range works" grep -qx "whole 0" "$W/m.out"
"$DUET" status --socket "$SOCK" --json >"$W/st.json"
jq -c '.daemon.tasks[]' "$W/st.json"
check "duet status: the bound is 1000 marks" [ "$(jq .daemon.bounds.max_done_marks "$W/st.json")" = 1000 ]
check "duet status: A's task holds 999 marks" \
	[ "$(jq "[.daemon.tasks[] | select(.uid == $(id -u $A)) | .done_marks] | .[0]" "$W/st.json")" = 999 ]
check "duet status: their memory is estimated at 999 marks" \
	[ "$(jq "[.daemon.tasks[] | select(.uid == $(id -u $A))][0].memory.done == 999 * .daemon.mark_bytes" "$W/st.json")" = true ]
kill $MPID
wait $MPID
kill $DPID
wait $DPID

# The default bound against a million marks.
start_duetd -v
"$DUET" status --socket "$SOCK" --json >"$W/st0.json"
check "the default bound is 65536 marks" [ "$(jq .daemon.bounds.max_done_marks "$W/st0.json")" = 65536 ]
python3 "$DPROTO" "$SOCK" marks "$MNT/d" 1048576 "$W/mk.out" "$W/mk.ready" "$W/mk.go" &
KPID=$!
PIDS="$PIDS $KPID"
wait_file "$W/mk.ready" 30 $KPID || die "the marking client did not register"
base=$(rss)
touch "$W/mk.go"
wait_file "$W/mk.out" 300 $KPID || die "the marking client did not finish"
now=$(rss)
cat "$W/mk.out"
"$DUET" status --socket "$SOCK" --json >"$W/st1.json"
mb=$(jq .daemon.mark_bytes "$W/st1.json")
say "duetd RSS: $base KiB with the task registered, $now KiB after 1,048,576 marks tried ($(((now - base) * 1024 / 65536)) bytes a mark kept; estimate $mb)"
check "exactly 65536 of 1,048,576 marks were kept" \
	grep -qx "requested 1048576 ok_requests_marks 65536 first_error -$EDQUOT" "$W/mk.out"
check "duet status: the task holds 65536 marks" \
	[ "$(jq '.daemon.tasks[0].done_marks' "$W/st1.json")" = 65536 ]
# The bound: 65536 marks at the engine's estimate, +25% for the inode
# hash's growth and the allocator, +2 MiB for the requests' buffers.
bound=$((65536 * mb * 5 / 4 / 1024 + 2048))
check "duetd's memory grew by at most the bound ($((now - base)) <= $bound KiB)" \
	[ $((now - base)) -le $bound ]
kill $KPID
wait $KPID 2>/dev/null
kill $DPID
wait $DPID

# Page ranges in the layout roaring stores worst (a page, then 4000 pages
# into the same block): the same bound holds.
start_duetd -v
python3 "$DPROTO" "$SOCK" rangemarks "$MNT/d" 1048576 "$W/rk.out" "$W/rk.ready" "$W/rk.go" &
KPID=$!
PIDS="$PIDS $KPID"
wait_file "$W/rk.ready" 30 $KPID || die "the range-marking client did not register"
base=$(rss)
touch "$W/rk.go"
wait_file "$W/rk.out" 300 $KPID || die "the range-marking client did not finish"
now=$(rss)
cat "$W/rk.out"
say "duetd RSS: $base KiB with the task registered, $now KiB after 1,048,576 range marks tried ($(((now - base) * 1024 / 65536)) bytes a mark kept)"
check "exactly 65536 of 1,048,576 range marks were kept" \
	grep -qx "requested 1048576 ok_requests_marks 65536 first_error -$EDQUOT" "$W/rk.out"
check "duetd's memory grew by at most the bound ($((now - base)) <= $bound KiB)" \
	[ $((now - base)) -le $bound ]
kill $KPID
wait $KPID 2>/dev/null

# In-process: no bound (the marks cost only the process that makes them).
"$DMARKS" -l -f -t 70000 "$MNT/d" 65536 >"$W/l.out" 2>&1
cat "$W/l.out"
check "an in-process task is not bounded: 70000 marks fit" grep -qx "set 70000 0" "$W/l.out"
exit 0
