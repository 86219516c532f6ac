#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duetd must not keep a file system mounted. A user's task watches pub/
# (its attribute changes are watched on every file system below it); a
# second file system is mounted at pub/m while the task runs, and a file
# written there reaches the task (so duetd has walked the mount and
# watches its attributes). Then it must unmount at once: plain umount,
# no -l, while duetd and the task go on, and duetd holds no descriptor
# below it. Before the fix the attribute watch kept an O_PATH descriptor
# of each file system it watched, for open_by_handle_at(): umount said
# "target is busy" for as long as duetd ran (seen with a task on /, every
# mount of the machine).
. "$LIBDIR/lib.sh"
setup 64
A=dmu$$
add_user $A
OUT=$(mktemp -d /tmp/duet-umount-out.XXXXXX)
chmod 1777 "$OUT"
trap 'x=$?; rm -rf "$OUT"; (exit $x); cleanup' EXIT
mkdir -p "$MNT/pub/m"
chmod 0755 "$MNT/pub" "$MNT/pub/m"
truncate -s 64M "$W/m.img"
mkfs.ext4 -q -F "$W/m.img" || die "mkfs"
start_duetd -v
bg_client "$OUT/a" as $A "$DCLIENT" -D -o "$OUT/a" -r "$OUT/a.ready" -q 300 "$MNT/pub"
APID=$CPID
wait_file "$OUT/a.ready" 60 $APID || die "the task did not register: $(cat "$OUT/a.log")"

mount -o loop "$W/m.img" "$MNT/pub/m" || die "mount"
EXTRA_MOUNTS="$MNT/pub/m"
chmod 0755 "$MNT/pub/m"
dd if=/dev/urandom of="$MNT/pub/m/f" bs=4k count=3 status=none
chmod 0644 "$MNT/pub/m/f"
ino=$(stat -c %i "$MNT/pub/m/f")
n=0 seen=""
for _ in $(seq 20); do
	n=$((n + 1))
	dump_wait $APID "$OUT/a" $n 30 || die "the client did not dump"
	if grep -v '^#' "$OUT/a" | awk -v i="$ino" '$2 == i { f = 1 } END { exit !f }'; then
		seen=1
		break
	fi
	sleep 0.5
done
check "the task saw the file written in the new mount" [ -n "$seen" ]
held=$(ls -l /proc/$DPID/fd 2>/dev/null | grep -c -- "-> $MNT/pub/m\(/\|$\)")
check "duetd holds no descriptor in the new mount ($held)" [ "$held" = 0 ]
# Another process on the machine holding it (another duetd, of a build
# before the fix, with a task on /) would keep it busy: then this cannot tell.
others=""
for p in /proc/[0-9]*; do
	[ "${p#/proc/}" = "$DPID" ] && continue
	ls -l "$p/fd" 2>/dev/null | grep -q -- "-> $MNT/pub/m\(/\|$\)" && others="$others ${p#/proc/}"
done
if [ -n "$others" ]; then
	echo "SKIP: other processes hold the new mount ($others): cannot tell"
	exit 77
fi
if umount "$MNT/pub/m" 2>"$W/umount.err"; then
	EXTRA_MOUNTS=""
	check "umount while duetd serves the task" true
else
	check "umount while duetd serves the task: $(cat "$W/umount.err")" false
fi
check "duetd still runs" kill -0 $DPID
check "the client still runs" kill -0 $APID
exit 0
