#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# duet top against a known workload on a loop-mounted ext4 (issue 16).
# As root, under tmux (a fixed 220x45 pane, send-keys, capture-pane):
# a file written with N 4 KiB writes shows exactly N pages added and
# dirtied by dd; a file cached before top started, evicted with
# posix_fadvise(DONTNEED), exactly M removed by python3 with the cause
# truncate/invalidate; the process view (Tab) shows dd and python3 with
# the same counts; 's' changes the sort (rows reorder), '/' filters
# rows by path; 'p' pauses (a file written meanwhile is not shown until
# 'p' again); reading the evicted file back shows M refaults; SIGTERM
# restores the terminal. In batch mode, per interval: pages counted in
# the interval they happened in, once; a read in a memory cgroup at its
# limit shows its removals as direct-reclaim (vmscan). As an unprivileged user through duetd (batch
# mode): the counts of a readable file, no pids, and neither a file it
# may not read nor one in a directory it may not search ever appears.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || { echo "SKIP: tmux missing"; exit 77; }
N=9	# pages written
M=12	# pages evicted
TM="tmux -L duet-top-$$"
CG=""
stop_tmux() { $TM kill-server 2>/dev/null; }
test_cleanup() {
	stop_tmux
	[ -n "$CG" ] && [ -d "$CG" ] && rmdir "$CG"
}
CLEANUP_HOOK=test_cleanup
setup 256
D=$MNT/data
mkdir -p "$D/private"
chmod 0755 "$D"
chmod 0700 "$D/private"
head -c $((M * 4096)) /dev/urandom > "$D/old"
sync
cat "$D/old" > /dev/null

screen() { $TM capture-pane -p -t top; }
# row NAME: the file row whose path is $D/NAME (its fields, space-separated)
row() { screen | awk -v p="$D/$1" '$NF == p { $1 = $1; print; exit }'; }
prow() { screen | awk -v c="$1" '$2 == c { $1 = $1; print; exit }'; }
# until SECONDS COMMAND...: retry until it succeeds
until_ok() {
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}
row_match() { [[ "$(row "$1")" =~ $2 ]]; }
prow_match() { [[ "$(prow "$1")" =~ $2 ]]; }
no_row() { [ -z "$(row "$1")" ]; }
screen_has() { screen | grep -qF -- "$1"; }
first_row() { screen | awk '$1 == "ADDED" { getline; print $NF; exit }'; }
# last_frame FILE: the last frame of duet top --batch's output
last_frame() { awk '/^duet top/ { f = "" } { f = f $0 "\n" } END { printf "%s", f }' "$1"; }
first_is() { [ "$(first_row)" = "$D/$1" ]; }

say "root: duet top --cumulative under tmux"
$TM new-session -d -s top -x 220 -y 45 \
	"$DUET top --cumulative $D; echo top-exit=\$?; sleep 600" || die "tmux"
SHPID=$($TM display -p -t top '#{pane_pid}')
until_ok 10 screen_has "keys: s sort" || { screen; die "duet top did not start"; }
TOPPID=$(ps -o pid= --ppid "$SHPID" | tr -d ' ')
DEAD_PIDS="$DEAD_PIDS $TOPPID"	# its tracing instance, if it dies badly
dd if=/dev/zero of="$D/new" bs=4096 count=$N status=none
/usr/bin/python3 -c "
import os
fd = os.open('$D/old', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)"
# ADDED REMOVED DIRTIED FLUSHES REFAULTS CACHED ADDED-BY EVICTED-BY CAUSE PATH
# (FLUSHES: a writeback anyone on the machine starts, e.g. with sync, may come)
until_ok 5 row_match new "^$N 0 $N " && until_ok 5 row_match old "^0 $M "
check "written file: $N added and dirtied by dd, all cached" \
	row_match new "^$N 0 $N [0-9]+ 0 $N dd/[0-9]+ - - $D/new\$"
check "evicted file: $M removed by python3, truncate/invalidate, none cached" \
	row_match old "^0 $M 0 0 0 0 - python3/[0-9]+ truncate/invalidate $D/old\$"
check "sorted by total: the written file first" first_is new

$TM send-keys -t top Tab
until_ok 3 screen_has "COMM" || fail "Tab: no process view"
check "process view: dd added and dirtied $N" prow_match dd "^[0-9]+ dd $N 0 $N 0 0 -\$"
check "process view: python3 removed $M, truncate/invalidate" \
	prow_match python3 "^[0-9]+ python3 0 $M 0 0 0 truncate/invalidate\$"
$TM send-keys -t top Tab
until_ok 3 screen_has "PATH" || fail "Tab: no file view again"

# s: total -> added -> removed: the evicted file comes first.
$TM send-keys -t top s s
until_ok 3 screen_has "sort (removed)" || fail "s: sort key not shown"
check "sorted by removed: the evicted file first" until_ok 3 first_is old
$TM send-keys -t top / o l d Enter
until_ok 3 screen_has "filter (old)" || fail "/: filter not shown"
check "filter 'old': the evicted file is shown" until_ok 3 row_match old "^0 $M "
check "filter 'old': the written file is not" no_row new
$TM send-keys -t top / Enter
until_ok 3 screen_has "filter (none)" || fail "/ Enter: filter not cleared"
check "filter cleared: the written file is back" until_ok 3 row_match new "^$N 0 $N "

$TM send-keys -t top p
until_ok 3 screen_has "PAUSED" || fail "p: not paused"
dd if=/dev/zero of="$D/late" bs=4096 count=3 status=none
sleep 2.5
check "paused: a file written meanwhile is not shown" no_row late
$TM send-keys -t top p
check "unpaused: it is, with 3 pages added and dirtied" until_ok 3 row_match late "^3 0 3 [0-9]+ 0 3 dd/"
check "unpaused: PAUSED is gone" bash -c "! $TM capture-pane -p -t top | head -1 | grep -q PAUSED"

cat "$D/old" > /dev/null
check "read back: the evicted file shows $M added and $M refaults, by cat" until_ok 5 \
	row_match old "^$M $M 0 [0-9]+ $M $M cat/[0-9]+ python3/[0-9]+ truncate/invalidate $D/old\$"

kill -TERM "$TOPPID"
check "SIGTERM: duet top exits 0" until_ok 5 screen_has "top-exit=0"
check "SIGTERM: the main screen is back" [ "$($TM display -p -t top '#{alternate_on}')" = 0 ]
check "SIGTERM: the cursor is shown again" [ "$($TM display -p -t top '#{cursor_flag}')" = 1 ]
check "SIGTERM: its tracing instance is gone" \
	bash -c "! ls -d /sys/kernel/tracing/instances/duet-$TOPPID-* 2>/dev/null"
screen | grep -q "duet top -" && fail "the view is still on the screen after exit"
stop_tmux

say "root: duet top --batch, per interval"
"$DUET" top -b -n 5 "$D" > "$W/batch.out" 2> "$W/batch.err" &
BPID=$!
PIDS="$PIDS $BPID"
until_ok 5 grep -qs '^duet top' "$W/batch.out" || die "duet top -b printed no frame"
dd if=/dev/zero of="$D/iv" bs=4096 count=5 status=none
wait "$BPID"
check "batch: exit 0" [ $? = 0 ]
check "batch: 5 frames" [ "$(grep -c '^duet top' "$W/batch.out")" = 5 ]
# Per interval: the pages count in the frames they happened in, once.
sums=$(awk -v p="$D/iv" '$NF == p { a += $1; d += $3 } END { print a + 0, d + 0 }' "$W/batch.out")
check "batch: 5 pages added and dirtied over the intervals (got $sums)" [ "$sums" = "5 5" ]
# (this VM's DAMON may evict idle pages meanwhile: removals are not ours)
no_iv_adds_last() { ! last_frame "$W/batch.out" | awk -v p="$D/iv" '$NF == p && ($1 || $3) { f = 1 } END { exit !f }'; }
check "batch: the last interval, without the write, has nothing added or dirtied" no_iv_adds_last
check "batch: nothing on stderr" [ ! -s "$W/batch.err" ]

say "root: duet top --loads: who loaded the pages"
# 20 single-page reads of cold pages with readahead off, then again:
# 20 demand loads (misses), no readahead, 20 hits; a sequential read:
# its demand plus hits is the 64 pages it asked for.
head -c 2M /dev/urandom > "$D/ld"
head -c 2M /dev/urandom > "$D/sq"
sync
"$DUET" top -b -c -n 4 --loads "$D" > "$W/loads.out" 2> "$W/loads.err" &
LPID=$!
PIDS="$PIDS $LPID"
until_ok 5 grep -qs '^duet top' "$W/loads.out" || die "duet top --loads printed no frame"
/usr/bin/python3 -c "
import os
for f in ['ld', 'sq']:
    fd = os.open('$D/' + f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
fd = os.open('$D/ld', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for rep in range(2):
    for i in range(20):
        os.pread(fd, 4096, i * 7 * 4096)
fd = os.open('$D/sq', os.O_RDONLY)
for i in range(64):
    os.read(fd, 4096)
"
wait "$LPID"
check "--loads: exit 0" [ $? = 0 ]
# Columns: ADDED REMOVED DIRTIED FLUSHES REFAULTS CACHED DEMAND READAHEAD HITS ...
row() { last_frame "$W/loads.out" | awk -v p="$D/$1" '$NF == p { print $7, $8, $9 }'; }
check "--loads: 20 demand, no readahead, 20 hits for the random reads (got $(row ld))" \
	[ "$(row ld)" = "20 0 20" ]
sq_ok() { local d ra h; read -r d ra h <<<"$(row sq)"; [ $((d + h)) = 64 ] && [ "$ra" -gt 0 ]; }
check "--loads: the sequential read: demand + hits = 64, readahead > 0 (got $(row sq))" sq_ok
check "--loads: nothing on stderr" [ ! -s "$W/loads.err" ]

say "root: direct reclaim in a memory cgroup, told apart"
# A 64 MiB file read by cat in a cgroup limited to 16 MiB: cat reclaims
# its own pages (vmscan memcg_reclaim_begin/end around the removals).
if [ -d /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
	CG=/sys/fs/cgroup/memory/duet-top-$$
	mkdir "$CG" && echo 16M > "$CG/memory.limit_in_bytes" || die "memory cgroup (v1)"
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
	CG=/sys/fs/cgroup/duet-top-$$
	mkdir "$CG" && echo 16M > "$CG/memory.max" || die "memory cgroup (v2)"
fi
if [ -n "$CG" ]; then
	head -c 64M /dev/zero > "$D/big"
	sync
	/usr/bin/python3 -c "
import os
fd = os.open('$D/big', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)"
	"$DUET" top -b -c -n 3 "$D/big" > "$W/reclaim.out" 2>&1 &
	RPID=$!
	PIDS="$PIDS $RPID"
	until_ok 5 grep -qs '^duet top' "$W/reclaim.out" || die "duet top -b printed no frame"
	sh -c "echo \$\$ > $CG/cgroup.procs && exec cat $D/big" > /dev/null
	wait "$RPID"
	big=$(last_frame "$W/reclaim.out" | awk -v p="$D/big" '$NF == p { $1 = $1; print; exit }')
	check "reclaim: 16384 pages added by cat, some removed by cat in direct reclaim (got: $big)" \
		bash -c "[[ '$big' =~ ^16384\ [1-9][0-9]*\ 0\ [0-9]+\ 0\ [0-9]+\ cat/[0-9]+\ cat/[0-9]+\ direct-reclaim\ $D/big\$ ]]"
	rmdir "$CG" && CG=""
	rm -f "$D/big"
else
	echo "skip: no memory cgroup to limit (direct reclaim not tested)"
fi

say "a user through duetd: duet top --batch"
start_duetd
add_user duettop1
as duettop1 "$DUET" top -b -n 1 --loads "$D" > /dev/null 2> "$W/loads-user.err"
check "--loads as a user: refused, with why" grep -q "needs root" "$W/loads-user.err"
head -c $((5 * 4096)) /dev/urandom > "$D/private/secret"
sync
as duettop1 "$DUET" top -b -c -n 6 "$D" > "$W/user.out" 2> "$W/user.err" &
UPID=$!
PIDS="$PIDS $UPID"
# Its first frame after duetd's registration scan.
until_ok 10 bash -c "grep -q '^duet top' '$W/user.out' && ! tail -n 5 '$W/user.out' | grep -q scanning" ||
	{ cat "$W/user.out" "$W/user.err"; die "duet top as a user did not start"; }
dd if=/dev/zero of="$D/pub" bs=4096 count=$N status=none
cat "$D/private/secret" > /dev/null
# A root file the user may not read, beside the one it may.
(umask 077 && dd if=/dev/zero of="$D/unreadable" bs=4096 count=4 status=none)
dd if=/dev/zero of="$D/private/more" bs=4096 count=2 status=none
wait "$UPID"
rc=$?
check "as a user: exit 0" [ $rc = 0 ]
last=$(last_frame "$W/user.out")
check "as a user: through duetd, said in the header" grep -q "through duetd" <<<"$last"
check "as a user: the readable file, $N added and dirtied, n/a for pids and cause" \
	grep -qE "^ +$N +0 +$N +[0-9]+ +0 +$N n/a +n/a +n/a +$D/pub\$" <<<"$last"
# The scan reports them as added; an eviction (DAMON) would be a real event.
scan_not_counted() {
	! awk -v d="$D" '$NF ~ "^" d "/(old|new|late|iv)$" && $1 { f = 1 } END { exit !f }' "$W/user.out"
}
check "as a user: the files cached before it started are not counted as added (the scan)" \
	scan_not_counted
check "as a user: nothing in the directory it may not search" bash -c "! grep -q '$D/private' '$W/user.out'"
check "as a user: the file it may not read never appears" bash -c "! grep -q '$D/unreadable' '$W/user.out'"
check "  ... it is root's, mode 600" [ "$(stat -c %U:%a "$D/unreadable")" = root:600 ]
as duettop1 "$DUET" top -b -c -n 1 --interval 0.2 --processes "$D" > "$W/userp.out" 2>&1
check "as a user: the process view says it is not available" grep -q "No process view through duetd" "$W/userp.out"
[ $fails -gt 0 ] && { echo "--- user output"; cat "$W/user.out" "$W/user.err"; }
exit 0
