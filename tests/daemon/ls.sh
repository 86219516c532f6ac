#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# duet ls and duetd --dataset against the kernel's own counts (lscheck.py:
# one cachestat of each file's whole page cache), on $FS (ext4, xfs or
# btrfs): every regular file with exactly its cached, dirty and
# writeback pages, a large folio's pages past the end of file included;
# mincore's view without cachestat; an unreadable file listed as such,
# never with figures; a user's walk counting root's readable files only
# through duetd (the kernel counts a file only for its owner, a writer or
# root), and refused (EPERM) without it; a dataset's live figures
# following reads, evictions, writes and deletes, narrowed to subtrees
# and to what a user may open; the errors; and the -0 --names list fed
# to the real tar and rsync, cached files first.
. "$(dirname "$0")/lib.sh"
FS=${FS:-ext4}
command -v mkfs."$FS" >/dev/null || { echo "SKIP: mkfs.$FS missing"; exit 77; }
for t in tar rsync fincore; do
	command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
CHECK="/usr/bin/python3 $LIBDIR/lscheck.py"
setup 512
D=$MNT/data
mkdir -p "$D/sub" "$D/deep/er"
py() { /usr/bin/python3 -c "$@"; }
# a: 4 MiB, pages 0-9 and 100-109 read without readahead; b: 1 MiB, not
# cached; c: 2 MiB, all read; tail: one 64-page write truncated to 20
# (a large folio past the end where the file system keeps it); secret:
# root's, 0600; dirty: written, not yet written back; empty; own: u1's.
head -c 4M /dev/urandom > "$D/a"
head -c 1M /dev/urandom > "$D/b"
head -c 2M /dev/urandom > "$D/sub/c"
head -c 12345 /dev/urandom > "$D/deep/er/x"
echo secret > "$D/secret"
chmod 0600 "$D/secret"
: > "$D/empty"
ln -s a "$D/link"
mkfifo "$D/fifo"
add_user duetls1
head -c 64K /dev/urandom > "$D/own"
chown duetls1 "$D/own"
chmod 0600 "$D/own"
sync
py "
import os
for p in ['a', 'b', 'sub/c', 'deep/er/x', 'own']:
    fd = os.open('$D/' + p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
fd = os.open('$D/a', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for i in list(range(10)) + list(range(100, 110)):
    os.pread(fd, 4096, i * 4096)
os.close(fd)
os.system('cat $D/sub/c $D/deep/er/x $D/own > /dev/null')
fd = os.open('$D/tail', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b't' * 64 * 4096)
os.ftruncate(fd, 20 * 4096)
os.close(fd)
fd = os.open('$D/dirty', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'd' * 5 * 4096)
os.close(fd)
"

# ls_matches OUT CMP-ARGS... -- LS-CMD...: the listing matches a reference
# taken before and after it (figures may move under writeback: 3 tries).
ls_matches() {
	local out=$1 i
	shift
	local args=() cmd=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	cmd=("$@")
	for i in 1 2 3; do
		$CHECK ref "$D" > "$W/ref1.json" || return 1
		"${cmd[@]}" > "$out" 2> "$out.err" || { cat "$out.err"; return 1; }
		$CHECK ref "$D" > "$W/ref2.json" || return 1
		cmp -s "$W/ref1.json" "$W/ref2.json" || continue
		$CHECK cmp "$out" "$W/ref1.json" "${args[@]}" && return 0
		return 1
	done
	echo "the page cache kept changing" >&2
	return 1
}

# The kernel's view, as the oracle sees it: what the test set up.
$CHECK ref "$D" > "$W/ref.json" || die "lscheck ref"
py "
import json, sys
r = json.load(open('$W/ref.json'))
assert r['$D/a']['cached'] == 20, r['$D/a']
assert r['$D/b']['cached'] == 0, r['$D/b']
assert r['$D/sub/c']['cached'] == 512, r['$D/sub/c']
# (Its dirty pages may already be written back: the flusher runs when it
# will. The listings are compared with the kernel's figures of the moment.)
assert r['$D/dirty']['cached'] == 5, r['$D/dirty']
" || fail "the workload did not leave the page cache as planned"
TAIL_PAST=$(py "
import json
r = json.load(open('$W/ref.json'))['$D/tail']
print(r['cached'] - r['cached_in_eof'])")
say "tail: $TAIL_PAST pages past the end of file on $FS"
[ "$FS" = ext4 ] && { [ "$TAIL_PAST" -gt 0 ] || fail "ext4 kept no large folio past EOF"; }

check "root: every regular file, exact" \
	ls_matches "$W/root.json" -- "$DUET" ls -r --json "$D"
check "root, without -r: the top directory's files only" \
	ls_matches "$W/top.json" --absent "$D/sub/c,$D/deep/er/x" -- "$DUET" ls --json "$D"
check "root: --cached-only" \
	ls_matches "$W/co.json" --cached-only -- "$DUET" ls -r --cached-only --json "$D"
check "root, one file" \
	ls_matches "$W/one.json" --under "$D/sub/c" -- "$DUET" ls --json "$D/sub/c"
check "mincore without cachestat: up to the end of file, no dirty" \
	ls_matches "$W/mincore.json" --eof -- env DUET_TEST_NO_CACHESTAT=1 "$DUET" ls -r --json "$D"
check "mincore is named as the source" grep -q '"source":"mincore"' "$W/mincore.json"
# fincore (util-linux, mincore) agrees with the kernel's view of the
# moment where there is no page past EOF (taken around it: DAMON may
# evict meanwhile; 3 tries).
fincore_agrees() {
	local i
	for i in 1 2 3; do
		$CHECK ref "$D" > "$W/fref1.json"
		fincore -n -r -b -o PAGES,FILE "$D/a" "$D/sub/c" "$D/b" > "$W/fincore.txt"
		$CHECK ref "$D" > "$W/fref2.json"
		cmp -s "$W/fref1.json" "$W/fref2.json" || continue
		py "
import json
r = json.load(open('$W/fref1.json'))
for p in ['$D/a', '$D/sub/c', '$D/b']:
    print(r[p]['cached_in_eof'], p)" > "$W/fexp.txt"
		diff "$W/fexp.txt" "$W/fincore.txt"
		return
	done
	return 1
}
check "fincore agrees on a, c and b" fincore_agrees
check "text output: totals line" \
	bash -c "'$DUET' ls -r '$D' | tail -1 | grep -q '^total: 9 files, '"

# A user: it sees what it may stat; root's readable files are counted by
# duetd only, and refused without one.
# The kernel's counts around the run, unchanged across it (DAMON may
# evict a page meanwhile: then again).
for try in 1 2 3; do
	$CHECK ref "$D" > "$W/uref1.json" || die "lscheck ref"
	as duetls1 "$DUET" ls -r --json "$D" > "$W/u-nod.json" 2> "$W/u-nod.err" ||
		fail "duet ls as a user without duetd failed: $(cat "$W/u-nod.err")"
	$CHECK ref "$D" > "$W/uref2.json" || die "lscheck ref"
	cmp -s "$W/uref1.json" "$W/uref2.json" && break
	say "the page cache changed during the user's run (try $try); again"
done
check "a user without duetd: root's files refused (EPERM), secret unreadable, own counted" \
	$CHECK cmp "$W/u-nod.json" "$W/uref1.json" \
	--errors "$D/a,$D/b,$D/sub/c,$D/deep/er/x,$D/tail,$D/dirty,$D/empty,$D/secret"
check "  ... refused says why" grep -q "\"path\":\"$D/a\".*Operation not permitted" "$W/u-nod.json"
check "  ... secret is not readable" grep -q "\"path\":\"$D/secret\".*Permission denied" "$W/u-nod.json"

# duetd with a dataset that does not exist: a sentence, exit 1.
"$DUETD" -s "$W/bad.sock" --dataset x="$W/missing" > "$W/bad.log" 2>&1
rc=$?
check "duetd --dataset of a missing directory: exit 1" [ $rc = 1 ]
check "  ... with a sentence" grep -q "dataset x=$W/missing: No such file or directory" "$W/bad.log"
"$DUETD" -s "$W/bad.sock" --dataset "x=$D/a" > "$W/bad2.log" 2>&1
check "duetd --dataset of a file: exit 1, not a directory" grep -q "not a directory" "$W/bad2.log"
"$DUETD" -s "$W/bad.sock" --dataset "$D" > "$W/bad3.log" 2>&1
check "duetd --dataset without NAME=: usage" grep -q "bad --dataset" "$W/bad3.log"

# The second dataset comes from a config file.
printf '# datasets\ndataset s=%s  # the subtree\n' "$D/sub" > "$W/duetd.conf"
start_duetd --dataset d="$D" --config "$W/duetd.conf"
check "a user through duetd: every file it may open counted, secret unreadable" \
	ls_matches "$W/u.json" --errors "$D/secret" -- as duetls1 "$DUET" ls -r --json "$D"

# ds_matches OUT CMP-ARGS... -- LS-ARGS...: the dataset's live figures
# settle on the kernel's (10 s), dirty and writeback aside: they move
# with writeback, which the events follow only as far as FLUSHED.
ds_matches() {
	local out=$1 i
	shift
	local args=() cmd=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	for i in $(seq 50); do
		$CHECK ref "$D" > "$W/dref.json"
		"$@" > "$out" 2> "$out.err" || { cat "$out.err"; return 1; }
		$CHECK cmp "$out" "$W/dref.json" --cached-only --no-writeback "${args[@]}" \
			> "$out.diff" && return 0
		sleep 0.2
	done
	cat "$out.diff"
	return 1
}
sync	# dirty pages written back: their FLUSHED came, so dirty is exact too
check "dataset: the cached files, live, exact" \
	ds_matches "$W/ds.json" -- "$DUET" ls --dataset d --json
check "dataset: named as the source" grep -q '"source":"dataset"' "$W/ds.json"
check "dataset: a subtree" \
	ds_matches "$W/dss.json" --under "$D/sub" -- "$DUET" ls --dataset d --json "$D/sub"
check "a second dataset inside the first" \
	ds_matches "$W/ds2.json" --under "$D/sub" -- "$DUET" ls --dataset s --json
check "dataset as a user: only files it may open" \
	ds_matches "$W/dsu.json" --absent "$D/secret" -- as duetls1 "$DUET" ls --dataset d --json
# Changes: a evicted, b read whole, a new file written, x deleted, c cut.
py "
import os
fd = os.open('$D/a', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
"
cat "$D/b" > /dev/null
head -c 300K /dev/urandom > "$D/sub/new"
rm "$D/deep/er/x"
truncate -s 8K "$D/sub/c"
sync
check "dataset after evict, read, write, delete, truncate: live, exact" \
	ds_matches "$W/ds-after.json" -- "$DUET" ls --dataset d --json
check "  ... a is gone from it, b is there whole" \
	py "
import json
f = {x['path']: x for x in json.load(open('$W/ds-after.json'))['files']}
assert '$D/a' not in f and f['$D/b']['cached_pages'] == 256, f
"
"$DUET" ls --dataset nope > /dev/null 2> "$W/nope.err"
rc=$?
check "no such dataset: exit 1 and a sentence" \
	bash -c "[ $rc = 1 ] && grep -q 'duetd has no dataset \"nope\"' '$W/nope.err'"
"$DUET" ls --dataset d /tmp > /dev/null 2> "$W/out.err"
check "a path outside the dataset: said" grep -q "is not inside dataset d" "$W/out.err"
"$DUET" ls "$W/missing" > /dev/null 2> "$W/miss.err"
rc=$?
check "a path that does not exist: exit 1 and a sentence" \
	bash -c "[ $rc = 1 ] && grep -q 'missing: ' '$W/miss.err'"

# Cached files first, for tools that take a list: tar keeps the order;
# rsync copies exactly the files listed. (Reading them for tar brings
# them in, so the reference is taken first.)
$CHECK ref "$D" > "$W/nref.json"
"$DUET" ls -r --sort cached --names "$D" > "$W/names.txt"
"$DUET" ls -r --sort cached -0 --names "$D" | (cd / && tar --null -T - -cf "$W/t.tar") ||
	fail "tar -T from duet ls -0"
tar tf "$W/t.tar" | sed 's|^|/|' > "$W/tar-order.txt"
check "tar archived the files in duet ls's order" diff "$W/names.txt" "$W/tar-order.txt"
check "the list is cached first (largest first), then the rest" py "
import json
r = json.load(open('$W/nref.json'))
names = open('$W/names.txt').read().split('\n')[:-1]
assert sorted(names) == sorted(r), (names, sorted(r))
c = [r[n]['cached'] for n in names]
assert c == sorted(c, reverse=True), c
"
mkdir "$W/copy"
rmdir "$D/deep/er" "$D/deep"	# empty now: no file of the list makes rsync create it
"$DUET" ls -r --sort cached -0 --names "$D" | rsync -a --from0 --files-from=- / "$W/copy/" ||
	fail "rsync --files-from from duet ls -0"
check "rsync copied every file, identical" diff -r "$D" "$W/copy$D" -x fifo -x link
exit 0
