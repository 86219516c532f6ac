#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duetd's timeouts (request 5 s, the default; idle 8 s here). User A opens
# 100 connections that send half a header and 100 that send HELLO and
# then half of a TASK_NEW payload: each is closed 5 to 7.5 s after its
# last byte. A's 20 control connections (HELLO, then nothing) and 10 that
# never say HELLO are closed 8 to 10.5 s after. Meanwhile user B's task
# keeps working: its connection, idle for longer than the idle timeout
# while waiting for events, is not closed (same task, no LOST), and its
# view equals the page cache. duetd uses no CPU to speak of while the
# connections stall (the check is a timerfd, once a second), disarms it
# once only tasks are left, and status counts every close, per user.
. "$LIBDIR/lib.sh"
setup 64
A=dwa$$ B=dwb$$
add_user $A
add_user $B
mkdir -m 0755 "$MNT/d"
for i in 1 2 3; do dd if=/dev/urandom of="$MNT/d/f$i" bs=4k count=$((i * 4)) status=none; done
chown -R $B "$MNT/d"
cpu() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }	# clock ticks
user_field() {	# user_field JSON UID FIELD
	jq "[.daemon.users[] | select(.uid == $2) | .$3] | add // 0" "$1"
}

start_duetd -v -i 8
bg_client "$W/b" as $B "$DCLIENT" -o "$W/b" -r "$W/b.ready" -q 300 "$MNT/d"
BPID=$CPID
wait_file "$W/b.ready" 60 $BPID || die "B did not register: $(cat "$W/b.log")"
"$DUET" status --socket "$SOCK" --json >"$W/st0.json"
tid=$(jq ".daemon.tasks[] | select(.pid == $BPID) | .id" "$W/st0.json")

for m in halfhdr:100 halfpay:100 hello:20 none:10; do
	bg_client "$W/${m%:*}" as $A python3 "$DPROTO" "$SOCK" hold "${m#*:}" "${m%:*}" "$W/${m%:*}"
done
for m in halfhdr halfpay hello none; do
	wait_file "$W/$m" 30 || die "A's $m connections: $(cat "$W/$m.log")"
done
t0=$(cpu)
# Activity for B's task for a while, then none for longer than the idle
# timeout: its connection waits for READY all that time.
for i in 1 2 3; do
	cat "$MNT/d/f$i" >/dev/null
	dd if=/dev/urandom of="$MNT/d/n$i" bs=4k count=2 status=none
	sleep 0.5
done
for m in halfhdr halfpay hello none; do
	for _ in $(seq 150); do grep -q '^all closed' "$W/$m" && break; sleep 0.1; done
done
t1=$(cpu)
sleep 3
for m in halfhdr:100:5:7.5 halfpay:100:5:7.5 hello:20:8:10.5 none:10:8:10.5; do
	IFS=: read -r name n lo hi <<<"$m"
	check "A's $n $name connections were all let in" grep -qx "open $n" "$W/$name"
	check "... and all closed" grep -q '^all closed' "$W/$name"
	check "... each between $lo and $hi s after its last byte" \
		[ "$(awk -v lo=$lo -v hi=$hi '$1 == "closed" && $3 >= lo && $3 <= hi' "$W/$name" | wc -l)" = $n ]
	awk '$1 == "closed" { print $3 }' "$W/$name" | sort -n | sed -n '1p;$p' | tr '\n' ' '
	echo "(first and last close, $name)"
done
say "duetd used $((t1 - t0)) clock ticks while A's connections stalled"
check "no busy loop: under 0.5 s of CPU while the connections stall" \
	[ $((t1 - t0)) -lt $(($(getconf CLK_TCK) / 2)) ]
"$DUET" status --socket "$SOCK" --json >"$W/st1.json"
jq -c '.daemon.connections, (.daemon.users[])' "$W/st1.json"
check "status: A's 200 connections closed with a request incomplete" \
	[ "$(user_field "$W/st1.json" "$(id -u $A)" closed_partial)" = 200 ]
check "status: A's 30 connections closed idle" \
	[ "$(user_field "$W/st1.json" "$(id -u $A)" closed_idle)" = 30 ]
check "status: 200 in all closed with a request incomplete" \
	[ "$(jq .daemon.connections.closed_partial "$W/st1.json")" = 200 ]
check "status: B lost only its idle control connection, not its task's" \
	[ "$(user_field "$W/st1.json" "$(id -u $B)" closed_idle)" = 1 ]
check "status: the timeouts in force" \
	[ "$(jq -c '[.daemon.bounds.request_timeout_ms, .daemon.bounds.idle_timeout_ms]' "$W/st1.json")" = "[5000,8000]" ]
check "B's task is the same task (its connection was never closed)" \
	[ "$(jq ".daemon.tasks[] | select(.pid == $BPID) | .id" "$W/st1.json")" = "$tid" ]

# B's task still works.
dd if=/dev/urandom of="$MNT/d/late" bs=4k count=3 status=none
cat "$MNT/d/f2" >/dev/null
n=0
snap() { n=$((n + 1)); dump_wait $BPID "$W/b" $n 60; }
SNAP_CMD=snap
settle "$W/res" "$MNT/d" || die "no stable page cache snapshot"
res_under "$W/res" "$MNT/d" >"$W/res.d"
check "B's view == the page cache of d/" same_view B "$W/b" "$W/res.d"
check "B: no LOST (never reconnected)" [ "$(hdr "$W/b" lost)" = 0 ]
check "B: no redundant items" [ "$(hdr "$W/b" redundant)" = 0 ]
# With only a task's connection left, the timer is disarmed: no wakeups.
# duetd's own timer is its first (the event source's readers have one
# each, made at the first task's registration).
tfd=$(ls -l /proc/$DPID/fd | awk '/timerfd/ { print $9 }' | sort -n | head -1)
for _ in $(seq 30); do
	grep -q '^it_value: (0, 0)' "/proc/$DPID/fdinfo/$tfd" && break
	sleep 0.2
done
check "only tasks left: duetd's timer is disarmed" grep -q '^it_value: (0, 0)' "/proc/$DPID/fdinfo/$tfd"
exit 0
