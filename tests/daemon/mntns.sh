#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A client in another mount namespace than duetd's is refused, in a
# sentence; one in duetd's is served. duetd resolves a task's directory
# in its own namespace, so a client under unshare -m with other/ bound
# over pub/ would be shown pub/'s files as duetd sees them (known, 8
# pages), not its own (decoy). In such a namespace: user A's dclient
# (libduet) fails to open its session with -EXDEV's sentence and exit 1,
# and so does root's in daemon mode; duet status, as A (text and JSON)
# and as root, says duetd refused it (libduet's sentence, then duetd's,
# which names the client's pid and duetd's) and exits 1. In duetd's
# namespace meanwhile A's task on pub/ gets exactly the 8 pages of
# pub/known read after it registered, equal to the page cache, and duet
# status answers. A raw client whose connecting process has exited
# before its HELLO is refused with -ESRCH. The namespaces end with their
# processes; their bind mounts with them.
. "$LIBDIR/lib.sh"
setup 64
command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }

A=dna$$
add_user $A
mkdir -m 0755 "$MNT/pub" "$MNT/other"
dd if=/dev/urandom of="$MNT/pub/known" bs=4k count=8 status=none
dd if=/dev/urandom of="$MNT/other/decoy" bs=4k count=3 status=none
chmod -R a+rX "$MNT/pub" "$MNT/other"
sync
# Out of the cache, so the task's items are exactly what is read later.
python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$MNT/pub/known"
cat "$MNT/other/decoy" >/dev/null
start_duetd -v

# ns_as USER CMD...: CMD as USER (root: as is) in a new mount namespace
# where other/ is bound over pub/, in the foreground. Every step execs,
# so a job started with it has CMD's pid.
ns_as() {
	local u=$1
	shift
	if [ "$u" != root ]; then
		set -- setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"
	fi
	# Not --propagation private: that remounts /, which is no mount point
	# in a chroot (the fresh-machine check). The test's own mount is one:
	# made private inside, the bind stays in the new namespace.
	cd / && exec unshare -m --propagation unchanged sh -c \
		'mount --make-rprivate "$3" && mount --bind "$1" "$2" || exit 99
		shift 3; exec "$@"' sh \
		"$MNT/other" "$MNT/pub" "$MNT" env -u LD_LIBRARY_PATH DUET_SOCKET="$SOCK" "$@"
}
# run_ns NAME USER CMD...: $W/NAME.out, .err, .rc, .pid. One still
# running after 20 s (a dclient that was served) is killed: rc 137.
run_ns() {
	local name=$1 pid n=200
	shift
	(ns_as "$@") >"$W/$name.out" 2>"$W/$name.err" &
	pid=$!
	PIDS="$PIDS $pid"
	echo $pid >"$W/$name.pid"
	while kill -0 $pid 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	kill -KILL $pid 2>/dev/null
	wait $pid
	echo $? >"$W/$name.rc"
}

EXDEV_SAY="the client is in another mount namespace than duetd, which resolves every path in its own: run the client in duetd's mount namespace or start a duetd inside the client's"
# duetd's own sentence for a client of pid $1.
daemon_say() {
	echo "the client (pid $1) is in another mount namespace than duetd, which resolves every path in its own: run it in duetd's (nsenter -m -t $DPID) or start a duetd inside its own"
}

# The namespace is what the test says: decoy in pub/, known not.
run_ns ls root ls "$MNT/pub"
check "inside the namespace pub/ holds other/'s file" [ "$(cat "$W/ls.out")" = decoy ]
check "outside it pub/ still holds its own" [ "$(ls "$MNT/pub")" = known ]

# A's libduet client in the namespace.
run_ns nsa $A "$DCLIENT" -o "$W/nsa" -q 300 "$MNT/pub"
cat "$W/nsa.err"
check "A's dclient in another namespace: exit 1" [ "$(cat "$W/nsa.rc")" = 1 ]
check "... with -EXDEV's sentence" [ "$(cat "$W/nsa.err")" = "dclient: session: $EXDEV_SAY" ]
check "... and no dump (no task)" [ ! -e "$W/nsa" ]
check "duetd's log names it" grep -qF "client pid $(cat "$W/nsa.pid") uid $(id -u $A): $(daemon_say "$(cat "$W/nsa.pid")")" "$W/duetd.log"
# Root's, in daemon mode (root would otherwise read the ring itself).
run_ns nsr root "$DCLIENT" -D -o "$W/nsr" -q 300 "$MNT/pub"
check "root's dclient in another namespace: exit 1, -EXDEV's sentence" \
	[ "$(cat "$W/nsr.rc"):$(cat "$W/nsr.err")" = "1:dclient: session: $EXDEV_SAY" ]

# duet status in the namespace: A (daemon part only), text and JSON; root.
run_ns sta $A "$DUET" status --socket "$SOCK"
cat "$W/sta.out" "$W/sta.err"
check "A's duet status in another namespace: exit 1" [ "$(cat "$W/sta.rc")" = 1 ]
check "... says duetd refused it" [ "$(cat "$W/sta.out")" = "duetd: refused this client on $SOCK" ]
printf '%s\n' "duet status: duetd on $SOCK refused this client: $EXDEV_SAY" \
	"duet status: duetd said: $(daemon_say "$(cat "$W/sta.pid")")" >"$W/sta.want"
check "... libduet's sentence, then duetd's, on stderr" diff "$W/sta.want" "$W/sta.err"
run_ns staj $A "$DUET" status --socket "$SOCK" --json
check "A's duet status --json: exit 1, daemon null" \
	[ "$(cat "$W/staj.rc"):$(cat "$W/staj.out")" = '1:{"v":1,"daemon":null}' ]
check "... and the sentence on stderr" \
	[ "$(head -1 "$W/staj.err")" = "duet status: duetd on $SOCK refused this client: $EXDEV_SAY" ]
run_ns str root "$DUET" status --socket "$SOCK"
check "root's duet status in another namespace: exit 1" [ "$(cat "$W/str.rc")" = 1 ]
check "... the kernel's part, then the refusal" \
	[ "$(head -1 "$W/str.out" | cut -c1-9):$(tail -1 "$W/str.out")" = "ADDED    :duetd: refused this client on $SOCK" ]
check "... and the sentence on stderr" \
	[ "$(head -1 "$W/str.err")" = "duet status: duetd on $SOCK refused this client: $EXDEV_SAY" ]

# In duetd's namespace A is served: exactly known's 8 pages, read now.
bg_client "$W/a" as $A "$DCLIENT" -o "$W/a" -r "$W/a.ready" -q 300 "$MNT/pub"
APID=$CPID
wait_file "$W/a.ready" 60 $APID || die "A's task did not register: $(cat "$W/a.log")"
# known is pub/'s only file: its DEV INO, in the dump's form.
echo "$("$DRESIDENT" -i "$MNT/pub") 0-7" >"$W/a.want"
check "the expected line names known's inode" \
	[ "$(cut -d' ' -f2 "$W/a.want")" = "$(stat -c %i "$MNT/pub/known")" ]
# The page cache around the dump, unchanged across it; read again if
# DAMON took a page of known meanwhile.
n=0
snapa() { n=$((n + 1)); dump_wait $APID "$W/a" $n 60; }
SNAP_CMD=snapa
for try in 1 2 3; do
	cat "$MNT/pub/known" >/dev/null
	settle "$W/res" "$MNT/pub" || die "no stable page cache snapshot (A: $(cat "$W/a.log"))"
	res_under "$W/res" "$MNT/pub" >"$W/res.d"
	cmp -s "$W/res.d" "$W/a.want" && break
	say "known lost a page to eviction meanwhile (try $try); again"
done
check "the page cache of pub/ is known's pages 0-7" diff "$W/a.want" "$W/res.d"
check "A's task in duetd's namespace: exactly known's pages 0-7, the page cache" \
	same_view A "$W/a" "$W/res.d"
check "A: no LOST, no redundant item" [ "$(hdr "$W/a" lost):$(hdr "$W/a" redundant)" = 0:0 ]
as $A "$DUET" status --socket "$SOCK" --json >"$W/a.json"
check "A's duet status in duetd's namespace: its task" \
	[ "$(jq -c "[.daemon.tasks[] | [.pid, .dir]]" "$W/a.json")" = "[[$APID,\"$MNT/pub\"]]" ]

# The process that connected has exited before HELLO: refused, -ESRCH.
as $A python3 "$DPROTO" "$SOCK" handoff "$W/ho"
wait_file "$W/ho" 30 || die "the handed-off client did not answer"
cat "$W/ho"
check "a connection whose connecting process has exited: -ESRCH and a sentence" \
	grep -qE "^error -3 the process that connected \(pid [0-9]+\) has exited, so its mount namespace cannot be checked: connect from the process that uses the connection$" "$W/ho"
check "duetd read every client's namespace (no warning)" [ -z "$(grep -F "cannot read the mount namespace" "$W/duetd.log")" ]
exit 0
