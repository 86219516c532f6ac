#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Visibility decided in stream order, under load. A watches pub/; B owns
# pub/priv/ (0700). B's writer holds 40 files of pub/ open (8 pages each),
# renames each into priv/, and only then writes pages 8-15 through the
# open file, drops them and reads them back. Meanwhile four writers churn
# pub/load/, so duetd processes large batches of events late. Before the
# fix the pump decided visibility before applying the renames of a batch
# and 28-30 of the 40 files leaked items of pages written after their
# rename. Now A's view of the 40 files holds no page past 7 (nothing
# written after a rename reached it), while pub/load/ stays exact.
. "$LIBDIR/lib.sh"
setup 1024

A=dra$$ B=drb$$
add_user $A
add_user $B
mkdir -p "$MNT/pub/priv" "$MNT/pub/load"
chmod 0755 "$MNT/pub" "$MNT/pub/load"
chmod 0700 "$MNT/pub/priv"
for i in $(seq 1 40); do
	dd if=/dev/urandom of="$MNT/pub/f$i" bs=4k count=8 status=none
done
chmod 0644 "$MNT"/pub/f*
chown -R $B "$MNT/pub"
chmod 1777 "$MNT/pub/load"
for i in $(seq 1 40); do
	echo "$(stat -c %d "$MNT/pub/f$i") $(stat -c %i "$MNT/pub/f$i")"
done | awk '{ printf "%d %d\n", int($1 / 256) * 1048576 + $1 % 256, $2 }' >"$W/watch"
start_duetd -v

bg_client "$W/a" as $A "$DCLIENT" -o "$W/a" -r "$W/a.ready" -q 1500 "$MNT/pub"
APID=$CPID
wait_file "$W/a.ready" 60 $APID || die "A's task did not register: $(cat "$W/a.log")"

churn() {	# SEED: 4 KiB writes, reads and drops in pub/load for ~12 s
	python3 - "$MNT/pub/load" "$1" <<'EOF'
import os, random, sys, time
d, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
buf = os.urandom(4096)
end = time.monotonic() + 12
while time.monotonic() < end:
    f = f"{d}/c{seed}-{rnd.randrange(32)}"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    for k in range(16):
        os.pwrite(fd, buf, 4096 * rnd.randrange(64))
    if rnd.randrange(3) == 0:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
EOF
}
for s in 1 2 3 4; do churn $s & PIDS="$PIDS $!"; done
sleep 2
# B's writer: rename, then write pages 8-15 through the open file.
as $B python3 - "$MNT/pub" <<'EOF'
import os, sys, time
d = sys.argv[1]
buf = os.urandom(8 * 4096)
fds = [os.open(f"{d}/f{i}", os.O_RDWR) for i in range(1, 41)]
for i, fd in enumerate(fds, 1):
    os.rename(f"{d}/f{i}", f"{d}/priv/f{i}")
    os.pwrite(fd, buf, 8 * 4096)
for rounds in range(3):
    for fd in fds:
        os.fsync(fd)
        os.posix_fadvise(fd, 8 * 4096, 0, os.POSIX_FADV_DONTNEED)
    time.sleep(0.3)
    for fd in fds:
        os.pread(fd, 8 * 4096, 8 * 4096)
    time.sleep(0.3)
for fd in fds:
    os.close(fd)
EOF
wait $(jobs -p | grep -v -e "^$APID\$" -e "^$DPID\$") 2>/dev/null
sync

dump_wait $APID "$W/a" 1 120 || die "A did not dump"
awk 'NR == FNR { w[$1 " " $2] = 1; next } !/^#/ && w[$1 " " $2] { print }' "$W/watch" "$W/a" \
	>"$W/a.renamed"
python3 - "$W/a.renamed" >"$W/leaks" <<'EOF'
import sys
for line in open(sys.argv[1]):
    f = line.split()
    for r in f[2].split(","):
        a, _, b = r.partition("-")
        if int(b or a) >= 8:
            print(f[0], f[1], r)
            break
EOF
say "renamed files in A's view: $(wc -l <"$W/a.renamed"); with pages written after the rename: $(wc -l <"$W/leaks")"
check "no page written after a rename into priv/ reached A" [ ! -s "$W/leaks" ]
# The renamed files really have pages 8-15 cached now (the check can fail).
n=0
for i in $(seq 1 40); do
	"$DRESIDENT" "$MNT/pub/priv" | awk -v i="$(stat -c %i "$MNT/pub/priv/f$i")" \
		'$2 == i && $3 ~ /-1[0-5]/' | grep -q . && n=$((n + 1))
done
check "the renamed files hold pages past 7 in the page cache ($n of 40)" [ $n -gt 20 ]
check "A: no LOST" [ "$(hdr "$W/a" lost)" = 0 ]
exit 0
