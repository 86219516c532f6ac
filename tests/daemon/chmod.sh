#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A permission change anywhere that hides a watched file from a client
# stops its items at once, whichever name or directory it went through.
#
# 1. Through a hard link outside the watched tree: A watches pub/d; B's
#    files pub/d/xN (0644) have hard links in B's 0700 home; B runs
#    chmod 0600 on the links. inotify reports that only to the home
#    directory, which nobody watches: before the fix A kept receiving the
#    files' items (20 of 20 files in every run).
# 2. A directory above the task's directory, on the same file system:
#    chmod 0700 top/ (A's task is on top/pub/e). Then, the other way:
#    pages are added to its files while hidden, and chmod 0755 top/
#    scans them for A at once.
# 3. A directory above the test file system's mount point, on another
#    file system: chmod 0700 of the work directory itself.
# 0. The other way: a permission change that makes a file visible scans
#    it for the client at once, once. A watches vis/: z (0600, cached
#    when A registers) is made 0644; priv/ (0700) holds w, written while
#    A cannot see it, and is made 0755. Each time A's view of the file
#    equals the page cache (cachestat) and no item is redundant. Before
#    the fix A got nothing of either until their next page event. The
#    same for u, written inside 0700 priv2/ and renamed out of it into
#    vis/ (a rename within the tree, of a file A could not see).
# In each case the clients drain once the change has returned: no fetch
# that began after it delivers an item for the hidden files, not even for
# pages queued before it (dclient's prewatched=/preitems= are the counts
# when the signal was read). The files are then dropped and read again:
# A gets no item for them (its count of items naming them does not move),
# while the control file it can still read keeps giving items.
# This VM's DAMON scheme evicts pages idle for about 30 s (FACTS.md): an
# eviction before the change may reach A by a fetch that began before it,
# so counts are taken after the settling drain, never before the change.
. "$LIBDIR/lib.sh"
setup 256

A=dma$$ B=dmb$$
add_user $A
add_user $B
# A's dumps go where A keeps access whatever happens to $W.
OUT=$(mktemp -d /tmp/duet-chmod-out.XXXXXX)
chmod 1777 "$OUT"
trap 'x=$?; chmod 1777 "$W" 2>/dev/null; rm -rf "$OUT"; (exit $x); cleanup' EXIT
mkdir -p "$MNT/pub/d" "$MNT/home" "$MNT/top/pub/e"
chmod 0755 "$MNT/pub" "$MNT/pub/d" "$MNT/top" "$MNT/top/pub" "$MNT/top/pub/e"
chmod 0700 "$MNT/home"
for i in $(seq 1 20); do
	dd if=/dev/urandom of="$MNT/pub/d/x$i" bs=4k count=3 status=none
	ln "$MNT/pub/d/x$i" "$MNT/home/l$i"
done
for i in $(seq 1 8); do
	dd if=/dev/urandom of="$MNT/top/pub/e/y$i" bs=4k count=3 status=none
done
dd if=/dev/urandom of="$MNT/pub/d/control" bs=4k count=3 status=none
chmod 0644 "$MNT"/pub/d/* "$MNT"/top/pub/e/*
chown -R $B "$MNT/pub" "$MNT/home" "$MNT/top"
for i in $(seq 1 20); do
	echo "$(stat -c %d "$MNT/pub/d/x$i") $(stat -c %i "$MNT/pub/d/x$i")"
done | awk '{ printf "%d %d\n", int($1 / 256) * 1048576 + $1 % 256, $2 }' >"$W/watch.x"
for i in $(seq 1 8); do
	echo "$(stat -c %d "$MNT/top/pub/e/y$i") $(stat -c %i "$MNT/top/pub/e/y$i")"
done | awk '{ printf "%d %d\n", int($1 / 256) * 1048576 + $1 % 256, $2 }' >"$W/watch.y"
mkdir -p "$MNT/vis/priv" "$MNT/vis/priv2"
dd if=/dev/urandom of="$MNT/vis/z" bs=4k count=5 status=none
: >"$MNT/vis/priv/w"
: >"$MNT/vis/priv2/u"
chmod 0600 "$MNT/vis/z"
chmod 0644 "$MNT/vis/priv/w" "$MNT/vis/priv2/u"
chmod 0700 "$MNT/vis/priv" "$MNT/vis/priv2"
chown -R $B "$MNT/vis"
ZI=$(stat -c %i "$MNT/vis/z") WI=$(stat -c %i "$MNT/vis/priv/w") UI=$(stat -c %i "$MNT/vis/priv2/u")
for f in z priv/w priv2/u; do
	echo "$(stat -c %d "$MNT/vis/$f") $(stat -c %i "$MNT/vis/$f")"
done | awk '{ printf "%d %d\n", int($1 / 256) * 1048576 + $1 % 256, $2 }' >"$W/watch.v"
start_duetd -v

bg_client "$OUT/a" as $A "$DCLIENT" -w "$W/watch.x" -o "$OUT/a" -r "$OUT/a.ready" -q 600 "$MNT/pub/d"
APID=$CPID
bg_client "$OUT/e" as $A "$DCLIENT" -w "$W/watch.y" -o "$OUT/e" -r "$OUT/e.ready" -q 600 \
	"$MNT/top/pub/e"
EPID=$CPID
bg_client "$OUT/v" as $A "$DCLIENT" -w "$W/watch.v" -o "$OUT/v" -r "$OUT/v.ready" -q 600 "$MNT/vis"
VPID=$CPID
wait_file "$OUT/a.ready" 60 $APID || die "A's task did not register: $(cat "$OUT/a.log")"
wait_file "$OUT/v.ready" 60 $VPID || die "A's third task did not register: $(cat "$OUT/v.log")"
wait_file "$OUT/e.ready" 60 $EPID || die "A's second task did not register: $(cat "$OUT/e.log")"

churn() {	# drop every file under DIR, then (a second later) read it back
	python3 - "$1" <<'EOF'
import os, sys, time
names = sorted(os.listdir(sys.argv[1]))
for n in names:
    fd = os.open(os.path.join(sys.argv[1], n), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
time.sleep(1)	# (a drop and a read the client fetches together cancel)
for n in names:
    with open(os.path.join(sys.argv[1], n), "rb") as f:
        f.read()
EOF
}
n=0
dumps() { n=$((n + 1)); dump_wait $APID "$OUT/a" $n 60 && dump_wait $EPID "$OUT/e" $n 60; }

# 0. Made visible: scanned once, exactly the cached pages.
nv=0
pages_of() { awk -v i="$2" '!/^#/ && $2 == i && $5 != "?" { print $3 }' "$1"; }
# revealed WHAT INO...: A's view of each file equals the page cache, in a
# dump bracketed by two residency snapshots that agree (DAMON may evict)
revealed() {
	local what=$1 try i ok
	shift
	for try in 1 2 3; do
		"$DRESIDENT" "$MNT/vis" >"$W/rv1"
		nv=$((nv + 1))
		dump_wait $VPID "$OUT/v" $nv 60 || die "the client did not dump"
		"$DRESIDENT" "$MNT/vis" >"$W/rv2"
		ok=1
		for i in "$@"; do
			[ -n "$(pages_of "$W/rv2" "$i")" ] &&
				[ "$(pages_of "$OUT/v" "$i")" = "$(pages_of "$W/rv2" "$i")" ] &&
				[ "$(pages_of "$W/rv1" "$i")" = "$(pages_of "$W/rv2" "$i")" ] || ok=
		done
		[ -n "$ok" ] && break
		say "$what: try $try: view $(for i in "$@"; do pages_of "$OUT/v" "$i"; done | xargs)," \
			"cached $(for i in "$@"; do pages_of "$W/rv2" "$i"; done | xargs)"
	done
	check "$what: A's view equals the page cache" [ -n "$ok" ]
	check "$what: no page reached A twice" [ "$(hdr "$OUT/v" redundant)" = 0 ]
	grep -m5 "redundant item" "$OUT/v.log" >&2
}
as $B dd if=/dev/urandom of="$MNT/vis/priv/w" bs=4k count=6 conv=notrunc status=none
as $B dd if=/dev/urandom of="$MNT/vis/priv2/u" bs=4k count=3 conv=notrunc status=none
sync	# written back while hidden: no event of theirs comes after the changes
sleep 1
nv=$((nv + 1))
dump_wait $VPID "$OUT/v" $nv 60 || die "the client did not dump"
check "hidden: nothing of z, w or u reached A" [ "$(hdr "$OUT/v" watched)" = 0 ]
as $B chmod 0644 "$MNT/vis/z"
revealed "chmod 0644 of a file" "$ZI"
as $B chmod 0755 "$MNT/vis/priv"
revealed "chmod 0755 of its directory" "$ZI" "$WI"
as $B mv "$MNT/vis/priv2/u" "$MNT/vis/u"
revealed "renamed out of a 0700 directory within the tree" "$ZI" "$WI" "$UI"
check "made visible: A got items for them" [ "$(hdr "$OUT/v" watched)" -gt 0 ]
kill -TERM $VPID

# Before any change: the files give items (the check has something to see).
churn "$MNT/pub/d"
churn "$MNT/top/pub/e"
dumps || die "the clients did not dump"
wx0=$(hdr "$OUT/a" watched) items0=$(hdr "$OUT/a" items) wy0=$(hdr "$OUT/e" watched)
check "before: items for the 20 files" [ "$wx0" -gt 0 ]
check "before: items for top/pub/e's files" [ "$wy0" -gt 0 ]

# settled WHAT F... : every fetch of the drain just done began after the
# change; none of them gave an item of the hidden files (watched for a
# task's dump, every item for "all:" dumps)
settled() {
	local what=$1 key=$2 f
	shift 2
	for f in "$@"; do
		check "$what: nothing in $(basename "$f")'s fetches once it returned" \
			[ "$(hdr "$f" "$key")" = "$(hdr "$f" "pre$key")" ]
	done
}

# 1. chmod through the hard links in B's private home.
as $B chmod 0600 "$MNT"/home/l*
dumps || die "the clients did not dump"
settled "chmod through a link outside the tree" watched "$OUT/a"
wx1=$(hdr "$OUT/a" watched) items1=$(hdr "$OUT/a" items)
churn "$MNT/pub/d"
dumps || die "the clients did not dump"
check "chmod through a link outside the tree: no item for the 20 files since" \
	[ "$(hdr "$OUT/a" watched)" = "$wx1" ]
check "the control file still gives items" [ "$(hdr "$OUT/a" items)" -gt "$items1" ]
say "A's items: $(hdr "$OUT/a" items) (before $items1)"

# 2. chmod of a directory above the task's directory (same file system).
as $B chmod 0700 "$MNT/top"
dumps || die "the clients did not dump"
settled "chmod 0700 of an ancestor" watched "$OUT/e"
wy1=$(hdr "$OUT/e" watched)
churn "$MNT/top/pub/e"
dumps || die "the clients did not dump"
check "chmod 0700 of an ancestor: no item for its files since" \
	[ "$(hdr "$OUT/e" watched)" = "$wy1" ]
# Pages added while hidden, then the ancestor opened again with no event
# after: the files are scanned for e at once (its view equals the page
# cache; before the fix it lacked the new pages).
for i in $(seq 1 8); do
	as $B dd if=/dev/urandom of="$MNT/top/pub/e/y$i" bs=4k count=2 seek=3 conv=notrunc \
		status=none
done
sync	# written back while hidden too: no event of them after the chmod
sleep 1	# (and those events processed before it)
as $B chmod 0755 "$MNT/top"
for try in 1 2 3; do
	"$DRESIDENT" "$MNT/top/pub/e" >"$W/ry1"
	dumps || die "the clients did not dump"
	"$DRESIDENT" "$MNT/top/pub/e" >"$W/ry2"
	cmp -s "$W/ry1" "$W/ry2" && [ "$(view "$OUT/e")" = "$(cut -d' ' -f1-3 "$W/ry2")" ] && break
	say "ancestor opened again: try $try: the view differs from the page cache"
done
check "ancestor opened again: e's view equals the page cache at once" \
	[ "$(view "$OUT/e")" = "$(cut -d' ' -f1-3 "$W/ry2")" ]
churn "$MNT/top/pub/e"
dumps || die "the clients did not dump"
wy2=$(hdr "$OUT/e" watched)
check "visible again: items again" [ "$wy2" -gt "$wy1" ]
# Shown, not asserted: a file out of sight gets no REMOVED, so its scan
# when it comes back repeats the pages still cached (duet_task_new(3)).
say "e's redundant items after hidden and visible again: $(hdr "$OUT/e" redundant)"

# 3. chmod of a directory above the mount point (another file system).
chmod 0700 "$W"
dumps || { chmod 1777 "$W"; die "the clients did not dump"; }
settled "chmod 0700 above the mount point" items "$OUT/a" "$OUT/e"
items2=$(hdr "$OUT/a" items) ey2=$(hdr "$OUT/e" items)
churn "$MNT/pub/d"
churn "$MNT/top/pub/e"
dumps || { chmod 1777 "$W"; die "the clients did not dump"; }
chmod 1777 "$W"
check "chmod 0700 above the mount point: no item for anything since" \
	[ "$(hdr "$OUT/a" items)+$(hdr "$OUT/e" items)" = "$items2+$ey2" ]
for f in a e v; do
	check "$f: no LOST" [ "$(hdr "$OUT/$f" lost)" = 0 ]
done
exit 0
