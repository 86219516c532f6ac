#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Registration through a symlink that flips. A's path lnk/ points now at
# A's own directory, now at B's 0700 directory, flipped atomically by a
# background loop (rename of a prepared link). A registers lnk/ 60 times.
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

ok=0 refused=0 wrong=0
for i in $(seq 1 60); do
	rm -f "$W/r$i.ready"
	bg_client "$W/r$i" as $A "$DCLIENT" -o "$W/r$i" -r "$W/r$i.ready" -q 100 "$MNT/links/lnk"
	p=$CPID
	if wait_file "$W/r$i.ready" 20 $p; then
		# The task's root as duetd resolved it.
		root=$("$DUET" status --socket "$SOCK" --json |
			jq -r ".daemon.tasks[] | select(.pid == $p) | .dir")
		if [ "$root" = "$MNT/a" ]; then
			ok=$((ok + 1))
		else
			wrong=$((wrong + 1))
			echo "registration $i: root $root" >&2
		fi
	elif grep -qi "permission denied" "$W/r$i.log"; then
		refused=$((refused + 1))
	else
		wrong=$((wrong + 1))
		echo "registration $i: $(cat "$W/r$i.log")" >&2
	fi
	kill -KILL $p 2>/dev/null
	wait $p 2>/dev/null
done
touch "$W/stop"
wait $FPID
say "registrations through the flipping link: $ok rooted in A's directory, $refused refused, $wrong other"
check "no registration was rooted anywhere but A's own directory" [ $wrong = 0 ]
check "both outcomes happened (the flip raced the registrations)" [ $ok -gt 0 ] && [ $refused -gt 0 ]
exit 0
