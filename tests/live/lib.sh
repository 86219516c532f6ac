# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the live shell tests of duet record, report and the perf
# backend (sourced): what they need, check, and a loop-mounted ext4 that
# is undone at exit, also on failure, with the processes in $pids and
# whatever LIVE_CLEANUP_HOOK (a function) restores.
set -u
fails=0
pids=""
LIVE_CLEANUP_HOOK=

# live_require TOOL...: root, tracefs and the tools, else exit 77 (skip).
live_require() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "SKIP: $c missing (scripts/setup installs it)"; exit 77; }
	done
	grep -q tracefs /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
		{ echo "SKIP: no tracefs"; exit 77; }
}

check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); return 1; fi
}

# live_ext4 NAME SIZE_MB: a work directory $base and an ext4 mounted at
# $m ($base/m); skips (77) where no loop device can be had.
live_ext4() {
	base=$(mktemp -d "/tmp/duet-$1.XXXXXX")
	img=/var/tmp/duet-$1-$$.img
	loop=""
	trap live_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	truncate -s "$2M" "$img" && mkfs.ext4 -q -F "$img" && loop=$(losetup -f --show "$img") &&
		mkdir "$base/m" && mount "$loop" "$base/m" || { echo "SKIP: no loop ext4"; exit 77; }
	m=$base/m
}

live_cleanup() {
	for p in $pids; do kill -INT "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	[ -n "$LIVE_CLEANUP_HOOK" ] && $LIVE_CLEANUP_HOOK
	mountpoint -q "$base/m" && umount "$base/m"
	[ -n "$loop" ] && losetup -d "$loop"
	rm -f "$img"
	rm -rf "$base"
	true
}
