#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Registration through a symlink that flips. A's path lnk/ points now at
# A's own directory, now at B's 0700 directory, flipped atomically by a
# background loop (rename of a prepared link). A registers lnk/ 60 times.
# A speaks the protocol itself (libduet would resolve the link first).
# Each registration must either be refused (EACCES: it resolved to B's
# directory, as A) or have A's directory as its root; before the fix duetd
# checked the path as A and resolved it again as root, so the flip in
# between gave A a task rooted in B's directory.
. "$LIBDIR/lib.sh"
setup 128

A=dya$$ B=dyb$$
add_user $A
add_user $B
mkdir -m 0755 "$MNT/a" "$MNT/links"
mkdir -m 0700 "$MNT/b"
dd if=/dev/urandom of="$MNT/a/mine" bs=4k count=2 status=none
dd if=/dev/urandom of="$MNT/b/secret" bs=4k count=2 status=none
chown -R $A "$MNT/a"
chown -R $B "$MNT/b"
ln -s "$MNT/a" "$MNT/links/to-a"
ln -s "$MNT/b" "$MNT/links/to-b"
ln -s "$MNT/a" "$MNT/links/lnk"
start_duetd -v

python3 - "$MNT/links" "$W/stop" <<'EOF' &
import os, sys
d, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(stop):
    for t in ("to-a", "to-b"):
        os.symlink(os.readlink(f"{d}/{t}"), f"{d}/tmp")
        os.rename(f"{d}/tmp", f"{d}/lnk")
EOF
FPID=$!
PIDS="$PIDS $FPID"

# A raw protocol client: libduet resolves paths itself before it sends
# them, a hostile client need not. It registers lnk/ as A, keeps the
# connection while asking duetd's status for the task's resolved root,
# and prints one line per attempt: "ok ROOT" or "refused ERRNO".
as $A python3 - "$SOCK" "$MNT/links/lnk" "$DUET" >"$W/attempts" 2>"$W/attempts.err" <<'EOF'
import json, os, socket, struct, subprocess, sys
sock, path, duet = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
MAGIC, VER = 0x54455544, 1

def msg(t, payload, seq):
    return struct.pack("<IHHII", MAGIC, VER, t, len(payload), seq) + payload

def reply(s):
    h = b""
    while len(h) < 16:
        h += s.recv(16 - len(h))
    magic, ver, t, n, seq = struct.unpack("<IHHII", h)
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return t, struct.unpack("<i", body[:4])[0], body[8:]

for i in range(60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(msg(1, struct.pack("<II", VER, 0), 1))
    reply(s)
    name = b"flip%d" % i
    s.sendall(msg(2, struct.pack("<IIHHI", 0x30, 0, len(name), len(path), 0) + name + path, 2))
    t, r, body = reply(s)
    if r < 0:
        print("refused", -r)
    else:
        st = json.loads(subprocess.run([duet, "status", "--socket", sock, "--json"],
                                       capture_output=True, text=True).stdout)
        roots = [x["dir"] for x in st["daemon"]["tasks"] if x["name"] == name.decode()]
        print("ok", roots[0] if roots else "?")
    s.close()
EOF
ok=$(grep -c "^ok $MNT/a\$" "$W/attempts")
refused=$(grep -c "^refused 13\$" "$W/attempts")
wrong=$(grep -v -e "^ok $MNT/a\$" -e "^refused 13\$" "$W/attempts" | wc -l)
grep -v -e "^ok $MNT/a\$" -e "^refused 13\$" "$W/attempts" | head -5 >&2
cat "$W/attempts.err" >&2
touch "$W/stop"
wait $FPID
say "registrations through the flipping link: $ok rooted in A's directory, $refused refused, $wrong other"
check "no registration was rooted anywhere but A's own directory" [ $wrong = 0 ]
check "both outcomes happened (the flip raced the registrations)" [ $ok -gt 0 -a $refused -gt 0 ]
exit 0
