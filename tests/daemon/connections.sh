#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duetd's connection bounds. With the defaults (1024 connections, 256 per
# user), user A opens 1,100 connections that each say HELLO and holds
# them: exactly 256 are let in, the other 844 get a DP_ERROR sentence
# (-EMFILE, a user's share) and are closed; A's libduet program is refused
# with duet_strerror's sentence. Meanwhile user B connects, registers a
# task and gets its items (its view equals the page cache), and duet
# status (root) shows A's refused connections. With -c 64 -C 16: root's
# 40 connections are exempt from the share, A gets 16 of 30, B the 8 left
# of 10 (-ENFILE for the rest), and root's next connection is refused
# too (root counts in the total). Descriptors: options that the hard
# RLIMIT_NOFILE cannot hold are refused (exit 2, a sentence), and the soft
# limit is raised to the hard one, so 600 connections work under a soft
# limit of 256.
. "$LIBDIR/lib.sh"
setup 64
A=dca$$ B=dcb$$
add_user $A
add_user $B
mkdir -m 0755 "$MNT/b"
for i in 1 2 3 4; do dd if=/dev/urandom of="$MNT/b/f$i" bs=4k count=$((i * 4)) status=none; done
chown -R $B "$MNT/b"
EMFILE=$(python3 -c 'import errno; print(errno.EMFILE)')
ENFILE=$(python3 -c 'import errno; print(errno.ENFILE)')
count() { grep -c "$1" "$2"; }
clients() {	# clients JSON UID: that user's connections now (0 if none listed)
	jq "[.daemon.users[] | select(.uid == $2) | .clients] | add // 0" "$1"
}

start_duetd -v
bg_client "$W/ah" as $A python3 "$DPROTO" "$SOCK" hold 1100 hello "$W/ah"
AHPID=$CPID
wait_file "$W/ah" 120 $AHPID || die "A's connections: $(cat "$W/ah.log")"
check "A: 256 of 1100 connections let in" [ "$(count '^accepted$' "$W/ah")" = 256 ]
check "A: the other 844 refused with -EMFILE and the sentence" \
	[ "$(count "^refused -$EMFILE uid $(id -u $A) holds 256 connections to duetd, a user's share (--max-connections-per-user)$" "$W/ah")" = 844 ]
as $A "$DCLIENT" -o "$W/never" "$MNT/b" >"$W/a.denied" 2>&1
cat "$W/a.denied"
check "A's libduet program is refused, with the sentence" \
	grep -q "your user holds its share of the daemon's connections (duetd --max-connections-per-user)" "$W/a.denied"

# B is served while A holds its share.
bg_client "$W/b" as $B "$DCLIENT" -o "$W/b" -r "$W/b.ready" "$MNT/b"
BPID=$CPID
wait_file "$W/b.ready" 60 $BPID || die "B did not register: $(cat "$W/b.log")"
cat "$MNT/b/f3" >/dev/null
n=0
snap() { n=$((n + 1)); dump_wait $BPID "$W/b" $n 60; }
SNAP_CMD=snap
settle "$W/res" "$MNT/b" || die "no stable page cache snapshot"
res_under "$W/res" "$MNT/b" >"$W/res.b"
check "B's files are cached (the check has something to see)" [ -s "$W/res.b" ]
check "B's view == the page cache of b/, while A holds its share" same_view B "$W/b" "$W/res.b"
check "B got items" [ "$(hdr "$W/b" items)" -gt 0 ]
"$DUET" status --socket "$SOCK" --json >"$W/st1.json"
"$DUET" status --socket "$SOCK"
jq -c '.daemon.connections, (.daemon.users[])' "$W/st1.json"
check "status: A holds 256 connections" [ "$(clients "$W/st1.json" "$(id -u $A)")" = 256 ]
check "status: A's 845 refused connections (844 held, 1 of its program)" \
	[ "$(jq "[.daemon.users[] | select(.uid == $(id -u $A)) | .refused] | add" "$W/st1.json")" = 845 ]
check "status: 845 refused over a user's share, none over the total" \
	[ "$(jq -c '[.daemon.connections.refused_per_user, .daemon.connections.refused_total]' "$W/st1.json")" = "[845,0]" ]
check "status: B's task" [ "$(jq "[.daemon.tasks[] | select(.uid == $(id -u $B))] | length" "$W/st1.json")" = 1 ]
as $A "$DUET" status --socket "$SOCK" >"$W/a.status" 2>&1
check "A's duet status says why it is refused" grep -q "a user's share" "$W/a.status"
kill $AHPID
wait $AHPID 2>/dev/null
for _ in $(seq 50); do
	"$DUET" status --socket "$SOCK" --json >"$W/st2.json"
	[ "$(clients "$W/st2.json" "$(id -u $A)")" = 0 ] && break
	sleep 0.1
done
check "A's connections are gone once it closes them" [ "$(clients "$W/st2.json" "$(id -u $A)")" = 0 ]
check "A's counters are kept after its last connection (its duet status refused too)" \
	[ "$(jq "[.daemon.users[] | select(.uid == $(id -u $A)) | .refused] | add" "$W/st2.json")" = 846 ]
as $A "$DUET" status --socket "$SOCK" --json >"$W/a.json"
check "A can connect again" [ "$(jq .daemon.viewer_uid "$W/a.json")" = "$(id -u $A)" ]
kill $BPID
wait $BPID 2>/dev/null
kill $DPID
wait $DPID

# The total, and root: exempt from the share, counted in the total.
start_duetd -v -c 64 -C 16
python3 "$DPROTO" "$SOCK" hold 40 hello "$W/rh" >"$W/rh.log" 2>&1 &
RHPID=$!
PIDS="$PIDS $RHPID"
wait_file "$W/rh" 60 $RHPID || die "root's connections: $(cat "$W/rh.log")"
check "root: 40 connections, more than a user's 16" [ "$(count '^accepted$' "$W/rh")" = 40 ]
bg_client "$W/ah2" as $A python3 "$DPROTO" "$SOCK" hold 30 hello "$W/ah2"
AHPID=$CPID
wait_file "$W/ah2" 60 $AHPID || die "A's connections: $(cat "$W/ah2.log")"
check "A: 16 of 30" [ "$(count '^accepted$' "$W/ah2")" = 16 ]
check "A: 14 refused over its share" [ "$(count "^refused -$EMFILE " "$W/ah2")" = 14 ]
bg_client "$W/bh" as $B python3 "$DPROTO" "$SOCK" hold 10 hello "$W/bh"
BHPID=$CPID
wait_file "$W/bh" 60 $BHPID || die "B's connections: $(cat "$W/bh.log")"
check "B: the 8 left of 64" [ "$(count '^accepted$' "$W/bh")" = 8 ]
check "B: 2 refused over the total, with the sentence" \
	[ "$(count "^refused -$ENFILE duetd serves 64 connections, its bound (--max-connections); try again later$" "$W/bh")" = 2 ]
python3 "$DPROTO" "$SOCK" hold 1 hello "$W/r1" >"$W/r1.log" 2>&1 &
R1PID=$!
PIDS="$PIDS $R1PID"
wait_file "$W/r1" 60 $R1PID
check "root is refused too when the total is reached" grep -q "^refused -$ENFILE " "$W/r1"
kill $RHPID $R1PID
wait $RHPID $R1PID 2>/dev/null
for _ in $(seq 50); do
	"$DUET" status --socket "$SOCK" --json >"$W/st3.json" 2>/dev/null &&
		[ "$(clients "$W/st3.json" 0)" -le 1 ] && break
	sleep 0.1
done
jq -c '.daemon.connections, (.daemon.users[])' "$W/st3.json"
check "status: 3 refused over the total, 14 over a share" \
	[ "$(jq -c '[.daemon.connections.refused_total, .daemon.connections.refused_per_user]' "$W/st3.json")" = "[3,14]" ]
for u in "$(id -u $A):14" "$(id -u $B):2" "0:1"; do
	check "status: uid ${u%:*} had ${u#*:} refused" \
		[ "$(jq "[.daemon.users[] | select(.uid == ${u%:*}) | .refused] | add" "$W/st3.json")" = "${u#*:}" ]
done
kill $AHPID $BHPID
wait $AHPID $BHPID 2>/dev/null
kill $DPID
wait $DPID

# Descriptors: what the hard limit cannot hold is refused at start.
(ulimit -n 1024 && exec "$DUETD" -s "$W/fd.sock" -c 2000) >"$W/fd.log" 2>&1
rc=$?
cat "$W/fd.log"
check "duetd -c 2000 under a hard limit of 1024 exits 2" [ $rc = 2 ]
check "and says which limit to raise" grep -q "RLIMIT_NOFILE allows 1024: lower --max-connections, or raise the hard limit" "$W/fd.log"
# The soft limit is raised to the hard one.
(ulimit -Sn 256 && ulimit -Hn 4096 && exec "$DUETD" -s "$SOCK" -v) >>"$W/duetd.log" 2>&1 &
DPID=$!
PIDS="$PIDS $DPID"
for _ in $(seq 100); do
	"$DUET" status --socket "$SOCK" --json 2>/dev/null | grep -q "\"pid\":$DPID" && break
	sleep 0.1
done
check "the soft limit is raised to the hard one" \
	[ "$(awk '/^Max open files/ { print $4 "/" $5 }' /proc/$DPID/limits)" = 4096/4096 ]
python3 "$DPROTO" "$SOCK" hold 600 hello "$W/r600" >"$W/r600.log" 2>&1 &
R6PID=$!
PIDS="$PIDS $R6PID"
wait_file "$W/r600" 60 $R6PID || die "root's 600 connections: $(cat "$W/r600.log")"
check "600 connections under a soft limit of 256" [ "$(count '^accepted$' "$W/r600")" = 600 ]
"$DUET" status --socket "$SOCK" --json >"$W/st4.json"
check "status: the descriptors in force and needed" \
	[ "$(jq '.daemon.bounds.fd_limit == 4096 and .daemon.bounds.fd_need < 4096' "$W/st4.json")" = true ]
exit 0
