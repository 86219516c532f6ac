#!/bin/bash
# duet watch as a person runs it: exact JSON output, clear errors, and
# tracefs instances cleaned up on signals and after a kill -9.
# Needs root and tracefs: exits 77 otherwise.
set -u
duet=${1:?usage: cli.sh path/to/duet}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing (scripts/setup installs it)"; exit 77; }
grep -q tracefs /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
	{ echo "SKIP: no tracefs"; exit 77; }
T=/sys/kernel/tracing/instances

fails=0
checks=0
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	checks=$((checks + 1))
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

base=$(mktemp -d /tmp/duet-cli.XXXXXX)
img=/var/tmp/duet-cli-$$.img
loop=""
pids=""
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	mountpoint -q "$base/m" && umount "$base/m"
	[ -n "$loop" ] && losetup -d "$loop"
	rm -f "$img"
	rm -rf "$base"
	# Instances of the processes this test killed on purpose.
	for p in $pids; do
		for i in "$T"/duet-"$p"-*; do [ -d "$i" ] && rmdir "$i"; done
	done
	true
}
trap cleanup EXIT
truncate -s 128M "$img" && mkfs.ext4 -q -F "$img" && loop=$(losetup -f --show "$img") &&
	mkdir "$base/m" && mount "$loop" "$base/m" || { echo "SKIP: no loop ext4"; exit 77; }
w=$base/m/w
mkdir "$w" "$base/m/wx"

# 1. Exact events in JSON.
"$duet" watch --json --no-coalesce --duration 3 "$w" > "$base/out.json" 2> "$base/err" &
wp=$!
sleep 0.7
dd if=/dev/zero of="$w/f" bs=4k count=16 status=none
dd if=/dev/zero of="$base/m/wx/g" bs=4k count=16 status=none
sync "$w/f"
dd if="$w/f" iflag=nocache count=0 status=none
wait $wp
rc=$?
ino=$(stat -c %i "$w/f")
check "watch exits 0 after --duration" [ $rc = 0 ]
check "start line has schema 1 and says which flush semantics" \
	[ "$(jq -r 'select(.type=="start") | "\(.v) \(.flush)"' "$base/out.json")" = "1 inode" ]
dirty=$(jq -c -s "[.[] | select(.type==\"event\" and .event==\"DIRTY\" and .ino==$ino) | .index] | sort" "$base/out.json")
check "DIRTY exactly pages 0-15 of $w/f" [ "$dirty" = "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]" ]
removed=$(jq -s "[.[] | select(.type==\"event\" and .event==\"REMOVED\" and .ino==$ino) | range(.index; .index + .count)] | sort" -c "$base/out.json")
check "REMOVED exactly pages 0-15" [ "$removed" = "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]" ]
paths=$(jq -r -s '[.[] | select(.type=="event") | .path] | unique | join(" ")' "$base/out.json")
check "only $w/f appears (not the sibling wx/g)" [ "$paths" = "$w/f" ]
flushed=$(jq -s "[.[] | select(.type==\"event\" and .event==\"FLUSHED\" and .ino==$ino and .inode_level==true)] | length" "$base/out.json")
check "fsync gives inode-level FLUSHED" [ "$flushed" -ge 1 ]
check "summary reports 0 lost" [ "$(jq -r 'select(.type=="summary") | .lost' "$base/out.json")" = 0 ]
check "dd's comm is reported" [ "$(jq -r -s "[.[] | select(.event==\"DIRTY\") | .comm] | unique | join(\",\")" "$base/out.json")" = dd ]

# duet status agrees with watch on the semantics, and lists a running watch.
st_flush=$("$duet" status --json | jq -r .flush)
check "status says the same flush semantics as watch ($st_flush)" \
	[ "$st_flush" = "$(jq -r 'select(.type=="start") | .flush' "$base/out.json")" ]
"$duet" watch "$w" > /dev/null 2>&1 &
sp=$!
sleep 0.7
check "status lists the running watch's instance, owned by duet" \
	[ "$("$duet" status --json | jq -r ".instances[] | select(.pid == $sp) | .owner")" = duet ]
kill -INT $sp
wait $sp

# 2. Clear errors.
"$duet" watch /nonexistent/dir > /dev/null 2> "$base/err"
rc=$?
check "missing path: non-zero exit" [ $rc != 0 ]
check "missing path: says so" grep -q "no such file or directory" "$base/err"
"$duet" watch --events bogus "$w" > /dev/null 2> "$base/err"
check "bad --events: exit 2 with the list of names" [ $? = 2 ]
if command -v setpriv > /dev/null; then
	cp "$duet" "$base/duet-copy" && chmod 755 "$base" "$base/duet-copy"
	# (meson's LD_LIBRARY_PATH into the build tree may be out of that
	# user's reach: glibc would then fail to load even libc)
	# (nor the working directory meson gives the test: it runs from /)
	(cd / && env -u LD_LIBRARY_PATH setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$base/duet-copy" watch /tmp > /dev/null 2> "$base/err")
	rc=$?
	check "not root: non-zero exit" [ $rc != 0 ]
	check "not root: tells to run as root" grep -q "needs root" "$base/err"
	grep -q "needs root" "$base/err" || sed 's/^/  its stderr: /' "$base/err"
fi

# 3. Instances: removed on SIGTERM and SIGINT; a killed run's is reaped by the next.
for sig in TERM INT; do
	"$duet" watch "$w" > /dev/null 2>&1 &
	p=$!
	sleep 0.7
	ls -d "$T"/duet-"$p"-* > /dev/null 2>&1
	had=$?
	kill -"$sig" "$p"
	wait "$p"
	rc=$?
	check "SIG$sig: instance existed while running" [ $had = 0 ]
	check "SIG$sig: exit 0" [ $rc = 0 ]
	check "SIG$sig: instance removed" sh -c "! ls -d $T/duet-$p-* 2>/dev/null"
done
"$duet" watch "$w" > /dev/null 2>&1 &
p=$!
pids="$pids $p"
sleep 0.7
kill -9 "$p"
wait "$p" 2> /dev/null
check "kill -9 leaves the instance behind" sh -c "ls -d $T/duet-$p-* >/dev/null 2>&1"
"$duet" watch --duration 0.3 "$w" > /dev/null 2>&1
check "the next run removes the dead owner's instance" sh -c "! ls -d $T/duet-$p-* 2>/dev/null"

echo "$checks checks, $fails failed"
[ $fails = 0 ]
