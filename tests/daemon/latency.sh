#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The readers' wake-up policy (duetd --latency-ms). While a client's task
# waits for items (it has fetched all it had), the bound is in force:
# duet_latency_bound_seconds says 0.003 (--latency-ms 3), the instance's
# buffer_percent is 0 (the first event wakes a reader), and with nothing
# happening the readers wake only for the events there are (the
# journal's; no timer of their own). The client's items are exact meanwhile: it
# writes and reads files and its view is the page cache. When the only
# client stops (SIGSTOP) with items pending, nobody waits: a second later
# the readers batch again (bound 0, buffer_percent 50, and they wake
# every 100 ms: at least 10 times per CPU in 3 s). Resumed, it drains
# and waits again: the bound is back. A dataset's task never asks for a
# bound. The figures come from duetd's /metrics (curl) and tracefs.
. "$LIBDIR/lib.sh"
setup 256
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
mkdir "$MNT/d" "$MNT/ds"
py() { /usr/bin/python3 -c "$@"; }
PORT=$(py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT/metrics
NCPU=$(nproc --all)
metric() { curl -sf "$URL" | awk -v k="$1" '$1 == k { print $2 }'; }
bp() { cat /sys/kernel/tracing/instances/duet-"$DPID"-*/buffer_percent 2>/dev/null; }
# state WANT SECONDS: wait until the bound gauge reads WANT
state() {
	local n=$(($2 * 10))
	until [ "$(metric duet_latency_bound_seconds)" = "$1" ]; do
		[ $n -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

start_duetd -v --latency-ms 3 --metrics "127.0.0.1:$PORT" --dataset ds="$MNT/ds"
for _ in $(seq 50); do curl -sf "$URL" >/dev/null && break; sleep 0.1; done
check "a dataset alone asks for no bound" [ "$(metric duet_latency_bound_seconds)" = "0.000000" ]

bg_client "$W/c" "$DCLIENT" -D -o "$W/c" -r "$W/c.ready" -q 300 "$MNT/d"
C=$CPID
wait_file "$W/c.ready" 60 $C || die "the client did not register: $(cat "$W/c.log")"
check "the client waits: the bound is 3 ms" state 0.003000 10
check "... and the readers wake at the first event (buffer_percent 0)" [ "$(bp)" = 0 ]

for i in 1 2 3 4; do dd if=/dev/urandom of="$MNT/d/f$i" bs=4k count=$((i * 3)) status=none; done
cat "$MNT/d/f2" >/dev/null
n=0
snap() { n=$((n + 1)); dump_wait $C "$W/c" $n 30; }
SNAP_CMD=snap
settle "$W/res" "$MNT/d" || die "no stable page cache snapshot"
res_under "$W/res" "$MNT/d" >"$W/res.d"
check "the waiting client's view == the page cache of d/" same_view C "$W/c" "$W/res.d"
check "... with no redundant item" [ "$(hdr "$W/c" redundant)" = 0 ]

sync
sleep 1
events() { curl -sf "$URL" | awk '$1 ~ /^duet_events_total/ { n += $2 } END { print n + 0 }'; }
e0=$(events)
w0=$(metric duet_reader_wakeups_total)
sleep 3
w1=$(metric duet_reader_wakeups_total)
e1=$(events)
say "idle and waited for: wake-ups $w0 -> $w1, events $e0 -> $e1"
# Each event (the journal's, say) may wake its CPU's reader and then
# every reader for its mark: NCPU + 1; one call may still be due.
check "idle and waited for, the readers wake only for events ($((w1 - w0)) wake-ups, $((e1 - e0)) events)" \
	[ $((w1 - w0)) -le $(((e1 - e0) * (NCPU + 1) + NCPU)) ]

# Stopped with items pending: nobody waits.
kill -STOP $C
for i in 1 2 3 4; do dd if=/dev/urandom of="$MNT/d/g$i" bs=4k count=4 status=none; done
check "the client stopped with items pending: the readers batch within 3 s (bound 0)" \
	state 0.000000 3
check "... buffer_percent is 50 again" [ "$(bp)" = 50 ]
w0=$(metric duet_reader_wakeups_total)
sleep 3
w1=$(metric duet_reader_wakeups_total)
say "wake-ups while batching: $w0 -> $w1"
check "batching, each reader wakes every 100 ms ($((w1 - w0)) in 3 s, $NCPU CPUs)" \
	[ $((w1 - w0)) -ge $((NCPU * 10)) ]
kill -CONT $C
check "resumed, it drains and waits: the bound is back" state 0.003000 10
check "no event came after its CPU's mark" [ "$(metric duet_events_late_total)" = 0 ]
exit 0
