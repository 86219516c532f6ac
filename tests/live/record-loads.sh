#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duet record --loads and duet report's loads: who put pages there. On a
# loop ext4, one recorded workload of four files:
#   r: 20 single-page preads of uncached pages with readahead off
#      (POSIX_FADV_RANDOM), then the same 20 again: exactly 20 demand
#      loads (misses), no readahead, 20 hits;
#   s: 100 pages read one page at a time from page 512 of an uncached
#      file, readahead on: demand + hits = 100 pages asked for, demand +
#      readahead = the pages the recording saw added, readahead > 0;
#   w: 10 pages written: 10 other loads, nothing asked for;
#   m: 5 pages touched through a mapping with MADV_RANDOM (faults):
#      exactly 5 demand loads, no readahead.
# Without --loads the report says the loads were not recorded. The
# events are filtered to the recorded devices.
# Needs root, tracefs and jq: exits 77 otherwise.
duet=${1:?usage: record-loads.sh path/to/duet}
. "$(dirname "$0")/lib.sh"
live_require jq trace-cmd
[ -d /sys/kernel/tracing/events/readahead ] ||
	{ echo "SKIP: this kernel has no readahead events"; exit 77; }
live_ext4 record-loads 128
for f in r s m; do head -c 4M /dev/urandom > "$m/$f"; done
sync
cat > "$base/w.py" <<EOP
import mmap, os
for f in ['r', 's', 'm']:
    fd = os.open('$m/' + f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
fd = os.open('$m/r', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for rep in range(2):
    for i in range(20):
        os.pread(fd, 4096, i * 7 * 4096)
os.close(fd)
fd = os.open('$m/s', os.O_RDONLY)
os.lseek(fd, 512 * 4096, 0)
n = 0
while n < 100 * 4096:
    n += len(os.read(fd, 4096))
os.close(fd)
fd = os.open('$m/w', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'w' * 10 * 4096)
os.close(fd)
fd = os.open('$m/m', os.O_RDONLY)
mm = mmap.mmap(fd, 4 << 20, prot=mmap.PROT_READ)
mm.madvise(mmap.MADV_RANDOM)
for i in range(5):
    mm[(100 + i * 50) * 4096]
mm.close()
os.close(fd)
EOP
"$duet" record --loads -o "$base/t.dat" "$m" -- /usr/bin/python3 "$base/w.py" > "$base/rec.log" 2>&1 ||
	{ cat "$base/rec.log"; echo "FAIL: duet record --loads"; exit 1; }
"$duet" report --json "$base/t.dat" > "$base/r.json" || { echo "FAIL: duet report"; exit 1; }
L() { jq -r --arg p "$m/$1" '.files[] | select(.path == $p) | .loads.'"$2" "$base/r.json"; }
A() { jq -r --arg p "$m/$1" '.files[] | select(.path == $p) | .'"$2" "$base/r.json"; }
check "r: 20 demand loads (misses)" [ "$(L r demand)" = 20 ]
check "r: no readahead with POSIX_FADV_RANDOM" [ "$(L r readahead)" = 0 ]
check "r: the second pass is 20 hits" [ "$(L r hits)" = 20 ]
check "r: 20 pages added" [ "$(A r added)" = 20 ]
echo "s: demand $(L s demand), readahead $(L s readahead), hits $(L s hits), added $(A s added)"
check "s: demand + hits = the 100 pages asked for" [ $(( $(L s demand) + $(L s hits) )) = 100 ]
check "s: demand + readahead = the pages added" [ $(( $(L s demand) + $(L s readahead) )) = "$(A s added)" ]
check "s: readahead loaded pages" [ "$(L s readahead)" -gt 0 ]
check "s: readahead calls counted" [ "$(L s readahead_calls_sync)" -ge 1 ]
check "w: 10 pages written are other loads" [ "$(L w other)" = 10 ]
check "w: nothing asked for" [ "$(L w demand)/$(L w hits)" = 0/0 ]
check "m: 5 faults, 5 demand loads" [ "$(L m demand)" = 5 ]
check "m: no readahead with MADV_RANDOM" [ "$(L m readahead)" = 0 ]
"$duet" report "$base/t.dat" > "$base/r.txt"
check "text: the loads section and its totals" grep -q "^loads: .* demand, .* readahead" "$base/r.txt"
# Without --loads: said, and no loads in the JSON.
"$duet" record -o "$base/n.dat" "$m" -- cat "$m/s" > /dev/null 2>&1
"$duet" report "$base/n.dat" > "$base/n.txt"
check "without --loads: said so" grep -q "^loads: not recorded" "$base/n.txt"
check "without --loads: no loads in JSON" \
	bash -c "! '$duet' report --json '$base/n.dat' | jq -e '.files[] | select(.loads)' >/dev/null"
# Filtered to the recorded devices: no access event of another device.
check "the events are filtered to the recorded device" \
	bash -c "! trace-cmd report '$base/t.dat' 2>/dev/null | grep -E 'mm_filemap_get_pages|page_cache_' | grep -qv 'dev=$(mountpoint -d "$m")'"
[ $fails = 0 ] && echo PASS || echo "FAILED ($fails)"
[ $fails = 0 ]
