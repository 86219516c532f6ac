#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A pseudo file system mounted below a watched directory. duetd serves a
# task on "/" and a narrow task on the test file system; then tracefs is
# mounted under the work directory (so under "/"). tracefs has ~30k files
# and its event files all share one inode number; walked, they gave one
# inode tens of thousands of names that the invalidation pass scanned per
# change and per task under the session lock (status unanswered for
# minutes, RSS +336 MiB). The index must not walk it: `duet status`
# answers within 1 s each time it is asked for 10 s, duetd's RSS grows by
# less than 32 MiB, and the narrow task's view afterwards equals the page
# cache of its directory (no LOST, no duplicates).
#
# The RSS bound: indexing what tracefs holds costs ~10 MiB of names alone
# (28.5k names at ~360 bytes), and far more in the invalidation that
# follows; 32 MiB leaves room for the rest of the machine (the "/" task
# indexes every file created anywhere meanwhile) and still catches that.
. "$LIBDIR/lib.sh"
setup 256
mkdir "$MNT/narrow"
for i in 1 2 3 4 5 6; do
	dd if=/dev/urandom of="$MNT/narrow/f$i" bs=4k count=$((i * 4)) status=none
done
start_duetd -v
bg_client "$W/n" "$DCLIENT" -D -o "$W/n" -r "$W/n.ready" -q 500 "$MNT/narrow"
NPID=$CPID
wait_file "$W/n.ready" 60 $NPID || die "the narrow task did not register: $(cat "$W/n.log")"
t0=$(date +%s.%N)
bg_client "$W/all" "$DCLIENT" -D -o "$W/all" -r "$W/all.ready" -q 300 /
APID=$CPID
wait_file "$W/all.ready" 400 $APID || die "the task on / did not register: $(cat "$W/all.log")"
say "the task on / registered (index walk and scan of the machine) in $(echo "$(date +%s.%N) - $t0" | bc) s"

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }

# ask_status SECONDS: duet status every 0.2 s; SLOW gets the answers that
# took 1 s or more (or none came within 5 s), WORST the longest in ms.
ask_status() {
	local end=$(($(date +%s) + $1)) a b ms ok
	SLOW=0 WORST=0 ASKED=0
	while [ "$(date +%s)" -lt $end ]; do
		a=$(date +%s%N)
		timeout 5 "$DUET" status --socket "$SOCK" --json >"$W/status.json" 2>&1
		ok=$?
		b=$(date +%s%N)
		ms=$(((b - a) / 1000000))
		[ $ms -gt $WORST ] && WORST=$ms
		[ $ok != 0 ] || [ $ms -ge 1000 ] && SLOW=$((SLOW + 1))
		ASKED=$((ASKED + 1))
		sleep 0.2
	done
}

ask_status 2
say "before the mount: $ASKED answers, the slowest in $WORST ms"
r0=$(rss)
mkdir "$W/tr"
mount -t tracefs nodev "$W/tr" || die "mount tracefs"
EXTRA_MOUNTS="$W/tr"
say "tracefs mounted on $W/tr: $(find "$W/tr" -xdev 2>/dev/null | wc -l) files"
ask_status 10
r1=$(rss)
say "after the mount: $ASKED answers, the slowest in $WORST ms; RSS $r0 -> $r1 KiB"
check "duet status answered within 1 s every time for 10 s ($SLOW of $ASKED slow)" [ $SLOW = 0 ]
check "duet status was asked (the check has something behind it)" [ $ASKED -ge 10 ]
check "duetd's RSS grew by less than 32 MiB ($(((r1 - r0) / 1024)) MiB)" [ $((r1 - r0)) -lt 32768 ]
check "duetd still serves both tasks" [ "$(grep -o '"resyncs":' "$W/status.json" | wc -l)" = 2 ]

# The narrow task afterwards: activity, then its view against the page cache.
for i in 1 2 3; do
	cat "$MNT/narrow/f$i" >/dev/null
	dd if=/dev/urandom of="$MNT/narrow/f$((i + 3))" bs=4k count=2 seek=$i conv=notrunc status=none
done
dd if=/dev/urandom of="$MNT/narrow/new" bs=4k count=5 status=none
sync
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 8192, os.POSIX_FADV_DONTNEED); os.close(fd)' \
	"$MNT/narrow/f2"
n=0
snap() { n=$((n + 1)); dump_wait $NPID "$W/n" $n 60; }
SNAP_CMD=snap
check "the narrow task's view == page cache of its directory" \
	view_settles narrow "$W/n" "$MNT/narrow"
check "the narrow task's files are cached (the check has something to see)" \
	[ -n "$(res_under "$W/res2" "$MNT/narrow")" ]
check "the narrow task: no LOST" [ "$(hdr "$W/n" lost)" = 0 ]
check "the narrow task: no redundant items" [ "$(hdr "$W/n" redundant)" = 0 ]

umount "$W/tr" || die "umount tracefs"
ask_status 1
check "duet status answers after the unmount" [ $SLOW = 0 ]
exit 0
