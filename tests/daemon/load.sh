#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Load: 64 concurrent tasks over overlapping trees (the file system's
# root, its 7 top directories, their 56 subdirectories) through duetd,
# under heavy churn (four writers and readers at once: new files,
# overwrites, appends, reads, truncations into large folios, fsync and
# fadvise DONTNEED).
# The reference: an in-process session (DUET_SESSION_LOCAL) with the same
# 64 tasks at the same time, fed the same kernel events through its own
# instance. After quiescence, every daemon task's view == the reference
# task's view == the page cache of its directory (between the residency
# taken before and after the dump: DAMON may evict meanwhile), and no task
# got a LOST item or a redundant (duplicate) item.
. "$LIBDIR/lib.sh"
setup 1024
dirs=("$MNT")
for a in 0 1 2 3 4 5 6; do
	mkdir "$MNT/a$a"
	dirs+=("$MNT/a$a")
	for b in 0 1 2 3 4 5 6 7; do
		mkdir "$MNT/a$a/b$b"
		dirs+=("$MNT/a$a/b$b")
		dd if=/dev/urandom of="$MNT/a$a/b$b/pre" bs=4k count=$((a + b + 1)) status=none
	done
done
check "64 directories" [ ${#dirs[@]} = 64 ]
start_duetd -v -b 16384
bg_client "$W/d" "$DCLIENT" -D -o "$W/d" -r "$W/d.ready" -q 1500 "${dirs[@]}"
DCPID=$CPID
bg_client "$W/l" "$DCLIENT" -l -b 16384 -o "$W/l" -r "$W/l.ready" -q 1500 "${dirs[@]}"
LCPID=$CPID
wait_file "$W/d.ready" 120 $DCPID || die "the daemon client did not register: $(cat "$W/d.log")"
wait_file "$W/l.ready" 120 $LCPID || die "the reference did not register: $(cat "$W/l.log")"
"$DUET" status --socket "$SOCK" | head -3

churn() {	# churn SEED ROUNDS
	python3 - "$MNT" "$1" "$2" <<'EOF'
import os, random, sys
root, seed, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
buf = os.urandom(65536)
for r in range(rounds):
    d = f"{root}/a{rnd.randrange(7)}/b{rnd.randrange(8)}"
    f = f"{d}/c{seed}-{rnd.randrange(12)}"
    op = rnd.randrange(6)
    if op == 0:      # new or overwritten file
        with open(f, "wb") as o:
            o.write(buf[: 4096 * rnd.randrange(1, 16)])
    elif op == 1:    # append
        with open(f, "ab") as o:
            o.write(buf[: 4096 * rnd.randrange(1, 4)])
    elif op == 2 and os.path.exists(f):    # read
        with open(f, "rb") as i:
            i.read()
    elif op == 3 and os.path.exists(f):    # written back and dropped
        fd = os.open(f, os.O_RDWR)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    elif op == 4 and os.path.exists(f):    # truncated into a large folio:
        # the folio stays cached whole, past the new end of the file,
        # with no delete event (its later REMOVED covers all of it).
        # Written back first: truncating into a dirty folio cancels its
        # dirty state, which a stock kernel does not trace (the patched
        # kernel's mm_filemap_dirty_cancel does), so its next write would
        # give a DIRTY the view already has.
        fd = os.open(f, os.O_RDWR)
        os.fsync(fd)
        os.ftruncate(fd, rnd.randrange(0, max(1, os.fstat(fd).st_size)))
        os.close(fd)
    elif op == 5:    # a page in the middle of a pre-existing file
        fd = os.open(f"{d}/pre", os.O_RDWR)
        os.pwrite(fd, buf[:4096], 0)
        os.close(fd)
EOF
}
t0=$(date +%s.%N)
for s in 1 2 3 4; do churn $s 1500 & done
wait $(jobs -p | grep -v -e "^$DCPID\$" -e "^$LCPID\$" -e "^$DPID\$") 2>/dev/null
t1=$(date +%s.%N)
say "churn: 6000 operations in $(echo "$t1 - $t0" | bc) s"
sync

n=0
snap() {	# both dump at once (DAMON may evict while they drain)
	n=$((n + 1))
	kill -USR1 $LCPID
	dump_wait $DCPID "$W/d.63" $n 120 && dump_wait $LCPID "$W/l.63" $n 120
}
SNAP_CMD=snap
# A missed event stays missed in every later dump (nothing repairs it
# without a LOST); a view caught while its client was still draining
# DAMON's evictions is right in the next. So: up to three dumps.
check_all() {
	bad=0
	differ=0
	for i in $(seq 0 63); do
		res_under "$W/res1" "${dirs[$i]}" >"$W/res1.$i"
		res_under "$W/res2" "${dirs[$i]}" >"$W/res2.$i"
		view "$W/d.$i" >"$W/dv.$i"
		view "$W/l.$i" >"$W/lv.$i"
		# Each view between the residency before and after the dumps;
		# where the daemon's and the reference's differ, only by pages
		# evicted while they drained.
		between "duetd task $i (${dirs[$i]})" "$W/dv.$i" "$W/res1.$i" "$W/res2.$i" &&
			between "reference task $i" "$W/lv.$i" "$W/res1.$i" "$W/res2.$i" ||
			bad=$((bad + 1))
		cmp -s "$W/dv.$i" "$W/lv.$i" || differ=$((differ + 1))
		for k in d l; do
			[ "$(hdr "$W/$k.$i" lost)" = 0 ] || { bad=$((bad + 1)); echo "$k.$i: LOST"; }
			[ "$(hdr "$W/$k.$i" redundant)" = 0 ] ||
				{ bad=$((bad + 1)); echo "$k.$i: redundant $(hdr "$W/$k.$i" redundant)"; }
		done
	done
	[ $bad = 0 ]
}
for attempt in 1 2 3; do
	bracket "$MNT" || die "the clients did not dump"
	check_all 2>"$W/why" && break
	say "dump $attempt: $bad tasks off; again"
	head -5 "$W/why"
done
grep -h "redundant item" "$W/d.log" "$W/l.log" | head -6
say "tasks whose daemon and reference views differ by pages evicted during the dumps: $differ of 64"
check "64 daemon tasks == 64 reference tasks == page cache, no LOST, no duplicates" [ $bad = 0 ]
items_d=$(for i in $(seq 0 63); do hdr "$W/d.$i" items; done | paste -sd+ | bc)
say "items delivered through duetd to the 64 tasks: $items_d; files in the root task's final view: $(view "$W/d.0" | wc -l)"
# (The final view may be small: another program's drop_caches empties it,
# and the comparison above still holds.)
check "the tasks got items (the comparison has something behind it)" [ "$items_d" -gt 5000 ]
exit 0
