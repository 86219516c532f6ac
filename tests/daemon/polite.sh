#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Cache-polite tasks through duetd: the daemon coordinates across
# clients. Client A (root) and client B (a test user) each register a
# polite EXISTS task on $MNT/d (tests/daemon/dpolite, driven line by
# line); a dataset (duetd --dataset) covers the tree too and never marks
# done, and must not hold anything back. With cachestat (dresident) as
# the truth, page by page:
#  - b, read by A, done by A and B: dropped;
#  - e, read by A, done by A only: kept; then done by B: dropped;
#  - c, pages 0-7 read in first by another process: those kept, 8-15 dropped;
#  - d, page 3 dirtied (and written back) by another process before the
#    marks: page 3 kept, the rest dropped;
#  - a, cached before the clients came: kept;
#  - g, read and done by a polite client G, alone, that exits at once
#    after its mark (its events are processed after it went): dropped;
#  - f, read and done by a client whose task is not polite (and the only
#    one left): kept.
# This VM's DAMON pageout scheme evicts idle page cache now and then, a
# page or two at a time (FACTS.md; a, cached first and never read again,
# lost page 6 once). As in tests/libduet/test-polite.c, a "kept" check
# accepts at most two pages missing, none extra, of at least 8 kept, and
# only when DAMON applied its scheme meanwhile; a wrong drop takes every
# page the clients brought in, which this never excuses.
. "$LIBDIR/lib.sh"
# damon_applied: DAMON scheme 0's nr_applied (0 without DAMON)
damon_applied() {
	local k=/sys/kernel/mm/damon/admin/kdamonds/0
	if echo update_schemes_stats 2>/dev/null >"$k/state" &&
	   cat "$k/contexts/0/schemes/0/stats/nr_applied" 2>/dev/null; then
		return
	fi
	echo 0
}
setup 64
mkdir -m 0755 "$MNT/d"
for f in a b c d e f g; do
	dd if=/dev/urandom of="$MNT/d/$f" bs=4k count=16 status=none
done
sync
for f in a b c d e f g; do
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$MNT/d/$f"
done
D_A=$(damon_applied)
cat "$MNT/d/a" >/dev/null
B=dpol$$
add_user $B

# res FILE: its resident pages as dresident's ranges ("" when none)
res() { "$DRESIDENT" "$MNT/d" | awk -v p="$1" '$4 == p { print $3 }'; }
# pages RANGES: the pages of dresident's ranges ("0-5,7-15"), one a line, sorted
pages() {
	tr ',' '\n' <<<"$1" | while IFS=- read -r a b; do
		[ -n "$a" ] && seq "$a" "${b:-$a}"
	done | sort
}
# kept GOT WANT D0: GOT is WANT, or DAMON took at most two pages of it
# since its nr_applied was D0 (see the top)
kept() {
	local wanted missing extra
	[ "$1" = "$2" ] && return 0
	wanted=$(pages "$2" | wc -l)
	missing=$(comm -23 <(pages "$2") <(pages "$1") | wc -l)
	extra=$(comm -13 <(pages "$2") <(pages "$1") | wc -l)
	if [ "$extra" = 0 ] && [ "$missing" -le 2 ] && [ "$wanted" -ge 8 ] &&
	   [ "$(damon_applied)" -gt "$3" ]; then
		echo "# DAMON paged out $missing page(s) of a kept file meanwhile ($1 for $2)"
		return 0
	fi
	return 1
}
# wait_res FILE WANT: up to 5 s for FILE's residency to be WANT; prints it
wait_res() {
	local r
	for _ in $(seq 50); do
		r=$(res "$1")
		[ "$r" = "$2" ] && break
		sleep 0.1
	done
	echo "$r"
}
# client NAME [AS-USER] ARGS...: dpolite in the background, its stdin on
# fd IN_NAME and its stdout on fd OUT_NAME (fifos)
start_client() {
	local n=$1 u=$2
	shift 2
	mkfifo -m 0666 "$W/$n.in" "$W/$n.out"
	if [ "$u" = root ]; then
		"$DPOLITE" -s "$SOCK" "$@" <"$W/$n.in" >"$W/$n.out" 2>>"$W/$n.err" &
	else
		AS_EXEC=1 as "$u" "$DPOLITE" -s "$SOCK" "$@" <"$W/$n.in" >"$W/$n.out" \
			2>>"$W/$n.err" &
	fi
	PIDS="$PIDS $!"
}
# cmd FDIN FDOUT LINE: one request, its answer printed
cmd() {
	local reply
	echo "$3" >&"$1"
	read -r -t 20 -u "$2" reply || reply="(no answer)"
	echo "$reply"
}

mkdir "$W/prom"
start_duetd -v --dataset "dd=$MNT/d" --metrics-textfile "$W/prom"
start_client a root -p "$MNT/d"
exec 3>"$W/a.in" 4<"$W/a.out"
start_client b $B -p "$MNT/d"
exec 5>"$W/b.in" 6<"$W/b.out"
read -r -t 20 -u 4 ra || ra="(none)"
read -r -t 20 -u 6 rb || rb="(none)"
check "client A registered a polite task" [ "$ra" = ready ]
check "client B (user $B) registered a polite task" [ "$rb" = ready ]
np=$("$DUET" status --socket "$SOCK" --json | grep -o '"polite":true' | wc -l)
check "duet status shows the two tasks polite (got $np)" [ "$np" = 2 ]
cat "$W"/*.err 2>/dev/null

# b: read by A, done by both.
cmd 3 4 "read $MNT/d/b" >/dev/null
cmd 3 4 "done $MNT/d/b" >/dev/null
cmd 5 6 "done $MNT/d/b" >/dev/null
r=$(wait_res "$MNT/d/b" "")
check "b, brought in by A and done by A and B: dropped (resident: '$r')" [ -z "$r" ]

# e: done by A only: kept (its events long processed); then by B: dropped.
D=$(damon_applied)
cmd 3 4 "read $MNT/d/e" >/dev/null
cmd 3 4 "done $MNT/d/e" >/dev/null
sleep 1
r=$(res "$MNT/d/e")
check "e, done by A but not B: kept (resident: '$r')" kept "$r" 0-15 "$D"
cmd 5 6 "done $MNT/d/e" >/dev/null
r=$(wait_res "$MNT/d/e" "")
check "e, then done by B: dropped (resident: '$r')" [ -z "$r" ]

# c: another process reads pages 0-7 first (no readahead).
D=$(damon_applied)
python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for i in range(8):
    os.pread(fd, 4096, i * 4096)' "$MNT/d/c"
cmd 3 4 "read $MNT/d/c" >/dev/null
cmd 3 4 "done $MNT/d/c" >/dev/null
cmd 5 6 "done $MNT/d/c" >/dev/null
r=$(wait_res "$MNT/d/c" 0-7)
check "c, pages 0-7 read in by another process: kept, 8-15 dropped (resident: '$r')" \
	kept "$r" 0-7 "$D"

# d: A reads it, another process dirties page 3 and writes it back.
cmd 3 4 "read $MNT/d/d" >/dev/null
dd if=/dev/zero of="$MNT/d/d" bs=4k seek=3 count=1 conv=notrunc,fdatasync status=none
sleep 1	# its DIRTY reaches duetd (a few ms) before the marks
cmd 3 4 "done $MNT/d/d" >/dev/null
cmd 5 6 "done $MNT/d/d" >/dev/null
r=$(wait_res "$MNT/d/d" 3-3)
check "d, page 3 dirtied by another process: kept, the rest dropped (resident: '$r')" \
	[ "$r" = 3-3 ]

# a: cached before anyone came.
cmd 3 4 "done $MNT/d/a" >/dev/null
cmd 5 6 "done $MNT/d/a" >/dev/null
sleep 0.5
r=$(res "$MNT/d/a")
check "a, cached before: kept (resident: '$r')" kept "$r" 0-15 "$D_A"

# A and B go. G, polite and alone, reads g, marks it done and exits at
# once: the events of its reads reach duetd after it went.
exec 3>&- 5>&-
exec 4<&- 6<&-
printf 'read %s\ndone %s\n' "$MNT/d/g" "$MNT/d/g" |
	"$DPOLITE" -s "$SOCK" -p "$MNT/d" >"$W/g.out" 2>>"$W/g.err"
check "client G read g, marked it done and exited" [ "$(tr '\n' ' ' <"$W/g.out")" = "ready ok ok " ]
r=$(wait_res "$MNT/d/g" "")
check "g, brought in and done by G, which exited at once: dropped (resident: '$r')" [ -z "$r" ]
# Polite off: C, not polite, reads f and marks it done.
start_client c root "$MNT/d"
exec 7>"$W/c.in" 8<"$W/c.out"
read -r -t 20 -u 8 rc || rc="(none)"
check "client C registered a task (not polite)" [ "$rc" = ready ]
D=$(damon_applied)
cmd 7 8 "read $MNT/d/f" >/dev/null
sleep 0.5
cmd 7 8 "fetch" >/dev/null
cmd 7 8 "done $MNT/d/f" >/dev/null
sleep 1
r=$(res "$MNT/d/f")
check "f, read and done by a task that is not polite: kept (resident: '$r')" kept "$r" 0-15 "$D"
exec 7>&- 8<&-
grep -i polite "$W/duetd.log" | head -5
kill $DPID
wait $DPID
# The textfile written at exit: b 16, e 16, c 8, d 15, g 16 pages dropped.
n=$(awk '$1 == "duet_polite_dropped_pages_total" { print $2 }' "$W/prom/duetd.prom")
check "duet_polite_dropped_pages_total counts the 71 pages dropped (got '$n')" [ "$n" = 71 ]
h=$(awk '$1 == "duet_polite_held" { print $2 }' "$W/prom/duetd.prom")
check "duet_polite_held: 0, no other duet process ran (got '$h')" [ "$h" = 0 ]
