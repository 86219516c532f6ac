#!/bin/sh
# The consumer's own live test (tests/live/live-ext4.c, linked statically
# as live-fs-static and copied to /duet/bin by scripts/vm-test) on the
# patched kernel: the consumer must pick the filemap events, so case B
# asserts FLUSHED for exactly pages 0-255 rather than the stock kernel's
# inode-level approximation. Its loop file systems are copies of the ext4
# template scripts/vm-test puts in /duet/fsimg (no mkfs in the guest),
# kept in tmpfs under /var/tmp and mounted under /tmp.
. "$(dirname "$0")/lib/events.sh"
ev_require
bin=$(command -v live-fs-static || command -v live-fs) ||
	skip "no live-fs-static in /duet/bin (ninja -C build, then pass" \
		"build/tests/live/live-fs-static to scripts/vm-test)"
# live-ext4 checks the order of events by their timestamps; with jiffies
# as clocksource (TSC calibration failed) they tie within 4 ms.
cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
case $cs in
*jiffies*) fail "clocksource is $cs: event timestamps too coarse" ;;
esac
[ -d /proc/sys/fs/inotify ] ||
	fail "kernel lacks CONFIG_INOTIFY_USER (see kernel-tracepoints/vm.config)"
: "${DUET_FSIMG_TEMPLATE_EXT4:=/duet/fsimg/ext4.img}"
[ -f "$DUET_FSIMG_TEMPLATE_EXT4" ] ||
	skip "no ext4 template image $DUET_FSIMG_TEMPLATE_EXT4"
export DUET_FSIMG_TEMPLATE_EXT4

mkdir -p /var/tmp
mounted=
if ! grep -q ' /var/tmp ' /proc/mounts; then
	mount -t tmpfs -o size=256m tmpfs /var/tmp || fail "mount /var/tmp"
	mounted=1
fi
"$bin" ext4 > /tmp/live.out 2>&1
rc=$?
cat /tmp/live.out
# live-fs removes its loop devices and mounts itself, also on failure.
if grep -q " /tmp/duet-live-" /proc/mounts; then
	echo "left mounted: $(grep ' /tmp/duet-live-' /proc/mounts)"
	rc=1
fi
if losetup -a 2>/dev/null | grep -q duet-test-; then
	echo "left attached: $(losetup -a | grep duet-test-)"
	rc=1
fi
[ -n "$mounted" ] && umount /var/tmp
[ $rc -eq 0 ] || fail "live-fs ext4 exited $rc"
grep -q '^ok B: .*(exact)' /tmp/live.out ||
	fail "case B did not check exact FLUSHED (consumer did not pick the patched events)"
echo "ok: consumer live test passed with exact FLUSHED"
