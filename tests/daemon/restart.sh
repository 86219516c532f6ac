#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duetd killed (SIGKILL) under load, then started again. The client (it
# marked one file done) is told (a LOST item), libduet registers its task
# again by itself, replays the done mark, and after the resync the
# client's view equals the page cache (cachestat, past the end of files
# truncated into large folios too), with no redundant item; the done mark still holds
# and no item ever named the done file, although the workload keeps
# reading and writing it. The killed daemon's tracing instance is gone
# once the new one has started.
#
# A second client (tests/daemon/dreplay) first makes about 115,000
# overlapping sets and resets of page ranges on three files (one done as
# a whole minus ranges, one reset as a whole), more while the daemon is
# away, and after the restart every page's duet_task_check_done() is the
# model's, and the new daemon's task holds exactly the model's count of
# marks: the client's compacted log (libduet/marklog.c) replayed. Its
# RSS grows by less than 1 MiB over the marks (a log of every call would
# take about 4.5 MiB), and a range past 2^32 pages set while the daemon
# is away fails with -EOVERFLOW instead of being logged.
. "$LIBDIR/lib.sh"
setup 256
mkdir "$MNT/d"
for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of="$MNT/d/f$i" bs=4k count=$((i * 4)) status=none; done
dd if=/dev/urandom of="$MNT/d/done" bs=4k count=16 status=none
EOVERFLOW=$(python3 -c 'import errno; print(errno.EOVERFLOW)')
mkdir "$MNT/m"
for f in p q r; do dd if=/dev/urandom of="$MNT/m/$f" bs=4k count=4 status=none; done
wait_line() {	# wait_line FILE REGEX SECONDS PID
	local n=$(($3 * 10))
	until grep -qE "$2" "$1" 2>/dev/null; do
		kill -0 "$4" 2>/dev/null && [ $n -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}
task_marks() {	# task_marks PID: the done marks the daemon's task of PID holds
	"$DUET" status --socket "$SOCK" --json | jq "[.daemon.tasks[] | select(.pid == $1)][0].done_marks"
}

start_duetd -v
OLD=$DPID
"$DREPLAY" "$MNT/m" 60000 >"$W/rp.out" 2>"$W/rp.err" &
XPID=$!
PIDS="$PIDS $XPID"
wait_line "$W/rp.out" '^waiting$' 300 $XPID || die "dreplay did not mark: $(cat "$W/rp.err")"
cat "$W/rp.out"
read -r _ calls _ marks _ growth < <(grep '^marked ' "$W/rp.out")
say "dreplay: $calls calls, $marks marks, RSS +$growth KiB"
check "the marks are many calls over few ranges" [ "$calls" -gt 100000 -a "$marks" -lt 1000 ]
check "the client's RSS grew by less than 1 MiB over the calls ($growth KiB)" [ "$growth" -lt 1024 ]
check "the daemon holds the model's count of marks ($marks)" [ "$(task_marks $XPID)" = "$marks" ]
bg_client "$W/r" "$DCLIENT" -D -k "$MNT/d/done" -o "$W/r" -r "$W/r.ready" -q 500 "$MNT/d"
RPID=$CPID
wait_file "$W/r.ready" 60 $RPID || die "the client did not register: $(cat "$W/r.log")"

load() {	# reads, rewrites, drops, new files; the done file too
	local i
	for i in $(seq 1 "$1"); do
		dd if=/dev/urandom of="$MNT/d/f$((i % 8 + 1))" bs=4k count=2 seek=$((i % 5)) conv=notrunc status=none
		cat "$MNT/d/f$(((i + 3) % 8 + 1))" "$MNT/d/done" >/dev/null
		dd if=/dev/urandom of="$MNT/d/done" bs=4k count=1 seek=$((i % 16)) conv=notrunc status=none
		[ $((i % 4)) = 0 ] && dd if=/dev/urandom of="$MNT/d/n$i" bs=4k count=3 status=none
		# A 32 KiB write makes one 8-page folio; truncating it to 4
		# pages keeps pages 4-7 cached past the end with no event,
		# and extending the file again brings them back, also with
		# none: a resync must find them (cachestat past the end).
		if [ $((i % 5)) = 0 ]; then
			dd if=/dev/urandom of="$MNT/d/t$i" bs=32k count=1 status=none
			truncate -s 16k "$MNT/d/t$i"
			[ $((i % 10)) = 0 ] && truncate -s 40k "$MNT/d/t$i"
		fi
		[ $((i % 6)) = 0 ] && python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$MNT/d/f$((i % 8 + 1))"
		sleep 0.02
	done
}
load 30 &
LPID=$!
sleep 0.3
kill -KILL $OLD
wait $OLD 2>/dev/null
check "the killed daemon left its instance behind" ls -d /sys/kernel/tracing/instances/duet-$OLD-* >/dev/null
kill -USR1 $XPID
wait_line "$W/rp.out" '^down ' 30 $XPID || die "dreplay saw no LOST: $(cat "$W/rp.err")"
sleep 0.5
start_duetd -v
kill -USR2 $XPID
wait_line "$W/rp.out" '^checked$' 120 $XPID || die "dreplay did not check: $(cat "$W/rp.err")"
cat "$W/rp.out"
head -20 "$W/rp.err" >&2
marks2=$(awk '$1 == "marks" { m = $2 } END { print m }' "$W/rp.out")
check "while the daemon was away, a range past 2^32 pages failed with -EOVERFLOW" \
	grep -qx "down overflow -$EOVERFLOW" "$W/rp.out"
check "... and the other marks were taken (logged)" grep -qx "down 0" "$W/rp.out"
check "after the replay every page's check_done is the model's" \
	grep -qE '^check [0-9]+ mismatches 0$' "$W/rp.out"
check "the new daemon holds the model's count of marks ($marks2)" [ "$(task_marks $XPID)" = "$marks2" ]
kill $XPID
wait $XPID
check "dreplay exited cleanly" [ $? = 0 ]
check "the new daemon removed the killed one's instance" \
	[ -z "$(ls -d /sys/kernel/tracing/instances/duet-$OLD-* 2>/dev/null)" ]
wait $LPID
load 20
sync
n=0
snap() { n=$((n + 1)); dump_wait $RPID "$W/r" $n 60; }
SNAP_CMD=snap
settle "$W/res" "$MNT/d" || die "no stable page cache snapshot"
res_under "$W/res" "$MNT/d" | awk -v i="$(stat -c %i "$MNT/d/done")" '$2 != i' >"$W/res.d"
check "the client was told: a LOST item" [ "$(hdr "$W/r" lost)" -ge 1 ]
check "its view after the resync == page cache (the done file aside)" same_view R "$W/r" "$W/res.d"
check "the done mark survived the restart" [ "$(hdr "$W/r" done)" = 1 ]
check "no item named the done file" [ "$(hdr "$W/r" doneitems)" = 0 ]
# The resync's scans are applied at their place in the event stream, so
# no page is reported twice and no REMOVED names a page the view lacks.
check "no redundant items across the restart" [ "$(hdr "$W/r" redundant)" = 0 ]
grep -m5 "redundant item" "$W/r.log" >&2
"$DUET" status --socket "$SOCK" --json >"$W/st.json"
check "the new daemon has the client's task again" \
	[ "$(jq "[.daemon.tasks[] | select(.pid == $RPID)] | length" "$W/st.json")" = 1 ]
exit 0
