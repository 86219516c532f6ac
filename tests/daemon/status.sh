#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What duet status tells whom; duetd decides it. User B has a task on a
# directory inside its 0700 home-like directory; user A a task of its
# own. A's duet status, JSON and text, holds neither B's directory (nor
# its name), B's task name, pid or uid, and yet counts B's task and
# connections; B sees its own task in full and not A's; root sees both,
# and every user. A client that does not ask for the extended status
# (an older libduet or duet) gets the same filtering, in the old layout,
# which it walks to the end. And this duet status still reads an older
# duetd (a stand-in speaking the old welcome and body).
. "$LIBDIR/lib.sh"
setup 64
A=dpa$$ B=dpb$$
add_user $A
add_user $B
secret=secret-plans-$$
mkdir -m 0755 "$MNT/pub"
mkdir -m 0700 "$MNT/homeb"
mkdir -m 0755 "$MNT/homeb/$secret"
for i in 1 2; do
	dd if=/dev/urandom of="$MNT/pub/f$i" bs=4k count=4 status=none
	dd if=/dev/urandom of="$MNT/homeb/$secret/f$i" bs=4k count=4 status=none
done
chown -R $A "$MNT/pub"
chown -R $B "$MNT/homeb"
AU=$(id -u $A) BU=$(id -u $B)

start_duetd -v
bg_client "$W/b" as $B "$DCLIENT" -o "$W/b" -r "$W/b.ready" -q 300 "$MNT/homeb/$secret"
BPID=$CPID
bg_client "$W/a" as $A "$DCLIENT" -o "$W/a" -r "$W/a.ready" -q 300 "$MNT/pub"
APID=$CPID
wait_file "$W/b.ready" 60 $BPID || die "B did not register: $(cat "$W/b.log")"
wait_file "$W/a.ready" 60 $APID || die "A did not register: $(cat "$W/a.log")"

as $A "$DUET" status --socket "$SOCK" --json >"$W/a.json"
as $A "$DUET" status --socket "$SOCK" >"$W/a.txt"
as $B "$DUET" status --socket "$SOCK" --json >"$W/b.json"
"$DUET" status --socket "$SOCK" --json >"$W/root.json"
"$DUET" status --socket "$SOCK" >"$W/root.txt"
cat "$W/a.txt"
jq -c '.daemon | del(.bounds, .connections)' "$W/a.json"

# A: B's task counted, nothing of it shown.
for f in a.json a.txt; do
	check "$f: not B's directory" [ -z "$(grep -F -e "$secret" -e "$MNT/homeb" "$W/$f")" ]
	check "$f: not B's task name" [ -z "$(grep -F "dclient-$BPID-" "$W/$f")" ]
done
check "a.json: no entry with B's uid or pid" \
	[ -z "$(grep -E "\"(uid|pid)\":($BU|$BPID)[,}]" "$W/a.json")" ]
# The text's tables and the "other users" line (the first, bounds and
# connections lines hold the daemon's own figures).
grep '^  ' "$W/a.txt" | grep -v -e '^  bounds:' -e '^  connections:' >"$W/a.tables"
check "a.txt: no line with B's uid or pid" [ -z "$(grep -wE "$BU|$BPID" "$W/a.tables")" ]
check "A sees its own task in full" \
	[ "$(jq -c "[.daemon.tasks[] | [.uid, .pid, .dir]]" "$W/a.json")" = "[[$AU,$APID,\"$MNT/pub\"]]" ]
check "A sees only its own user" [ "$(jq -c '[.daemon.users[].uid]' "$W/a.json")" = "[$AU]" ]
check "A's status counts B's task: 2 tasks, 1 of another user" \
	[ "$(jq -c '[.daemon.ntasks, .daemon.others.tasks]' "$W/a.json")" = "[2,1]" ]
check "... and B's 2 connections (its task's and its control one)" \
	[ "$(jq .daemon.others.clients "$W/a.json")" = 2 ]
check "a.txt says so" grep -q "other users: 1 tasks, 2 connections (not shown to uid $AU)" "$W/a.txt"
# B: its own, not A's.
check "B sees its own task, directory included" \
	[ "$(jq -c "[.daemon.tasks[] | [.uid, .pid, .dir]]" "$W/b.json")" = "[[$BU,$BPID,\"$MNT/homeb/$secret\"]]" ]
check "B does not see A's" [ -z "$(grep -F -e "$MNT/pub" -e "dclient-$APID-" "$W/b.json")" ]
# Root: both, and every user.
check "root sees both tasks" \
	[ "$(jq -c "[.daemon.tasks[] | .pid] | sort" "$W/root.json")" = "$(echo "[$APID,$BPID]" | jq -c sort)" ]
check "root sees both users" \
	[ "$(jq -c "[.daemon.users[].uid | select(. == $AU or . == $BU)] | sort" "$W/root.json")" = "$(echo "[$AU,$BU]" | jq -c sort)" ]
check "root's text shows B's directory" grep -qF "$MNT/homeb/$secret" "$W/root.txt"
check "and nothing is hidden from root" [ "$(jq -c '[.daemon.others.tasks, .daemon.others.clients]' "$W/root.json")" = "[0,0]" ]
check "status says each task's scan is complete" \
	[ "$(jq '[.daemon.tasks[] | .scan_complete and .scan_done == .scan_files] | all' "$W/root.json")" = true ]
check "status estimates each task's memory" \
	[ "$(jq '[.daemon.tasks[] | .memory.total == .memory.input + .memory.output + .memory.pending + .memory.done and .memory.input > 0] | all' "$W/root.json")" = true ]

# An older client (no HELLO flag): the old layout, filtered the same.
as $A python3 - "$SOCK" >"$W/old-client.out" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def hdr(t, n, seq): return struct.pack("<IHHII", 0x54455544, 1, t, n, seq)
def reply():
    h = b""
    while len(h) < 16: h += s.recv(16 - len(h))
    n = struct.unpack("<IHHII", h)[3]
    b = b""
    while len(b) < n: b += s.recv(n - len(b))
    return b
s.sendall(hdr(1, 8, 1) + struct.pack("<II", 1, 0))
w = reply()
s.sendall(hdr(9, 0, 2))
body = reply()[8:]
off, tasks = 56, []
pad = lambda n: (n + 7) & ~7
while off < len(body):
    tid, uid, pid, mask, nl, dl = struct.unpack_from("<IIIIHH", body, off)
    off += 104
    name = body[off:off + nl].decode(); off += pad(nl)
    d = body[off:off + dl].decode(); off += pad(dl)
    tasks.append(f"{uid} {pid} {name} {d}")
print(f"welcome {len(w) - 8} end {off == len(body)}")
print("\n".join(tasks))
EOF
cat "$W/old-client.out"
check "an older client gets the old welcome's fields and walks the body to its end" \
	grep -qx "welcome 32 end True" "$W/old-client.out"
check "... and sees only A's task" \
	[ "$(tail -n +2 "$W/old-client.out")" = "$AU $APID dclient-$APID-0 $MNT/pub" ]

# This duet status against an older duetd: a stand-in with the old
# welcome (24 bytes) and body, for two connections (JSON, then text).
python3 - "$W/old.sock" "$W/old.ready" <<'EOF' &
import os, socket, struct, sys
path = sys.argv[1]
l = socket.socket(socket.AF_UNIX)
l.bind(path)
l.listen(4)
open(sys.argv[2], "w").close()
def msg(t, seq, body): return struct.pack("<IHHII", 0x54455544, 1, t, len(body), seq) + body
def recv(c, n):
    b = b""
    while len(b) < n: b += c.recv(n - len(b))
    return b
for _ in range(2):
    c, _ = l.accept()
    h = recv(c, 16); recv(c, struct.unpack("<IHHII", h)[3])
    c.sendall(msg(64, 1, struct.pack("<iI", 0, 0) + struct.pack("<IIQII", 1, 1, 7, 4242, 262144)))
    recv(c, 16)
    name, d = b"old-task", b"/srv/old"
    pad = lambda b: b + b"\0" * (((len(b) + 7) & ~7) - len(b))
    ti = struct.pack("<IIIIHHI", 3, 1234, 5678, 0x30, len(name), len(d), 0) + struct.pack("<10Q", *range(10))
    dd = struct.pack("<IIIIQQQQQ", 4242, 1, 1, 2, 1000, 2048, 262144, 99, 4096)
    c.sendall(msg(64, 2, struct.pack("<iI", 0, 0) + dd + ti + pad(name) + pad(d)))
    c.close()
EOF
OLDPID=$!
PIDS="$PIDS $OLDPID"
wait_file "$W/old.ready" 10 $OLDPID || die "the stand-in did not start"
"$DUET" status --socket "$W/old.sock" --json >"$W/old.json"
"$DUET" status --socket "$W/old.sock" >"$W/old.txt"
jq -c .daemon "$W/old.json"
tail -2 "$W/old.txt"
check "duet status reads an older duetd's task" \
	[ "$(jq -c '.daemon.tasks[] | [.id, .uid, .pid, .name, .dir, .pending]' "$W/old.json")" = '[3,1234,5678,"old-task","/srv/old",7]' ]
check "... and shows no bounds it was not told" [ "$(jq '.daemon | has("bounds")' "$W/old.json")" = false ]
check "... in text too" grep -q "old-task .* /srv/old" "$W/old.txt"
wait $OLDPID
exit 0
