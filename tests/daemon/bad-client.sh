#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Bad clients through duetd. While a good client's task watches a
# directory under a workload, malformed clients connect: garbage bytes, a
# bad magic, an oversized length, another protocol version (which must be
# told so in a sentence), a request before HELLO, a half message then a
# hang-up. Each is disconnected; the good client's final view equals the
# page cache exactly, with no LOST and no redundant item, and duetd still
# serves a new client afterwards.
. "$LIBDIR/lib.sh"
setup 256
mkdir "$MNT/d"
for i in 1 2 3 4 5 6; do
	dd if=/dev/urandom of="$MNT/d/pre$i" bs=4k count=$((i * 5)) status=none
done
start_duetd -v
bg_client "$W/g" "$DCLIENT" -D -o "$W/g" -r "$W/g.ready" "$MNT/d"
GPID=$CPID
wait_file "$W/g.ready" 60 $GPID || die "the good client did not register: $(cat "$W/g.log")"

# The workload runs while the bad clients come and go.
(
	for i in $(seq 1 40); do
		dd if=/dev/urandom of="$MNT/d/w$i" bs=4k count=$((i % 7 + 1)) status=none
		[ $((i % 5)) = 0 ] && cat "$MNT/d/pre$((i % 6 + 1))" >/dev/null
		[ $((i % 9)) = 0 ] && : >"$MNT/d/w$((i - 3))"	# truncate (an unlink could reuse its inode: docs/testing.md, known gaps)
		sleep 0.02
	done
) &
WPID=$!

python3 - "$SOCK" >"$W/bad.out" 2>&1 <<'EOF'
import socket, struct, sys, time
path = sys.argv[1]
MAGIC, VER = 0x54455544, 1

def hdr(t, n, seq=1, magic=MAGIC, ver=VER):
    return struct.pack("<IHHII", magic, ver, t, n, seq)

def hello(ver=VER):
    return hdr(1, 8) + struct.pack("<II", ver, 0)

def run(name, payload, hangup=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(payload)
    if hangup:
        s.close()
        print(f"{name}: hung up")
        return
    s.settimeout(5)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        print(f"{name}: NOT disconnected")
        return
    text = ""
    if len(got) >= 24:
        magic, ver, t, n, seq = struct.unpack("<IHHII", got[:16])
        if t == 66:  # DP_ERROR
            text = got[24:16 + n].decode(errors="replace")
    print(f"{name}: disconnected; error={text!r}")

run("garbage", bytes(range(256)) * 4)
run("bad magic", hdr(1, 8, magic=0xdeadbeef) + b"\0" * 8)
run("oversized", hello() + hdr(5, 16 * 1024 * 1024))
run("version", hdr(1, 8, ver=7) + struct.pack("<II", 7, 0))
run("hello version", hello(ver=9))
run("before hello", hdr(4, 4) + struct.pack("<I", 16))
run("reply type", hello() + hdr(64, 8) + b"\0" * 8)
run("bad done", hello() + hdr(2, 16 + 3 + 2) + struct.pack("<IIHHI", 0x30, 0, 3, 2, 0) + b"abcx/")
run("half", hello() + hdr(4, 4)[:10], hangup=True)
EOF
cat "$W/bad.out"
for n in garbage "bad magic" oversized version "hello version" "before hello" "reply type"; do
	check "$n: disconnected" grep -q "^$n: disconnected" "$W/bad.out"
done
check "another version is told so" \
	grep -q "^version: disconnected; error='duetd speaks protocol version 1, the client 7'" "$W/bad.out"
check "another HELLO version is told so" \
	grep -q "^hello version: disconnected; error='duetd speaks protocol version 1, the client 9'" "$W/bad.out"
check "a request before HELLO is told so" grep -q "^before hello: .*HELLO" "$W/bad.out"
check "a relative path in TASK_NEW is malformed" grep -q "^bad done: disconnected" "$W/bad.out"
wait $WPID
sync

n=0
snap() { n=$((n + 1)); dump_wait $GPID "$W/g" $n 60; }
SNAP_CMD=snap
settle "$W/res" "$MNT/d" || die "no stable page cache snapshot"
res_under "$W/res" "$MNT/d" >"$W/res.d"
check "the good client's view == the page cache" same_view good "$W/g" "$W/res.d"
check "the good client: no LOST" [ "$(hdr "$W/g" lost)" = 0 ]
check "the good client: no redundant items" [ "$(hdr "$W/g" redundant)" = 0 ]
check "duetd is still running" kill -0 "$DPID"
"$DUET" status --socket "$SOCK" --json >"$W/status.json"
check "duetd still has exactly the good client's task" \
	[ "$(jq '.daemon.tasks | length' "$W/status.json")" = 1 ]
# A new client after all that.
"$DCLIENT" -D -o "$W/late" -r "$W/late.ready" -q 300 "$MNT/d" >"$W/late.log" 2>&1 &
LPID=$!
PIDS="$PIDS $LPID"
wait_file "$W/late.ready" 60 $LPID
check "a new client registers and gets the cached pages" dump_wait $LPID "$W/late" 1 60
exit 0
