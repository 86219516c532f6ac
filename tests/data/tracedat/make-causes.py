#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Build causes-v6.dat: the header and event formats of workload-v6.dat,
its own saved command lines and one CPU with one hand-built page whose
events exercise every removal cause of duet report (see docs/commands.md).

usage: make-causes.py workload-v6.dat causes-v6.dat
"""
import re
import struct
import sys

DEV = 7 << 20     # 7:0, kernel encoding
INO = 99
CMDLINES = (b'500 stress\n77 kswapd0\n600 bash\n700 rm\n40 kworker/u8:1\n'
            b'41 kdamond.0\n')


def main():
    d = open(sys.argv[1], 'rb').read()
    p = 0

    def take(n):
        nonlocal p
        v = d[p:p + n]
        p += n
        return v

    def cstr():
        nonlocal p
        e = d.index(b'\0', p)
        v = d[p:e]
        p = e + 1
        return v

    u32 = lambda: struct.unpack('<I', take(4))[0]
    u64 = lambda: struct.unpack('<Q', take(8))[0]
    take(10)
    assert cstr() == b'6'
    hdr = take(6)
    page_size = struct.unpack('<I', hdr[2:6])[0]
    for _ in range(2):
        cstr()
        take(u64())
    for _ in range(u32()):
        take(u64())
    ids = {}
    for _ in range(u32()):
        cstr()
        for _ in range(u32()):
            f = take(u64())
            name = re.search(rb'^name: (\S+)$', f, re.M).group(1).decode()
            ids[name] = int(re.search(rb'^ID: (\d+)$', f, re.M).group(1))
    take(u32())
    take(u32())
    head = d[:p]                       # up to and with the printk formats
    take(u64())                        # the fixture's command lines

    events = []
    t = 1000

    def ev(payload):
        nonlocal t
        t += 10
        events.append((t, payload))

    def common(name, pid):
        return struct.pack('<HBBi', ids[name], 0, 0, pid)

    def add(index, pid, order=0):
        ev(common('mm_filemap_add_to_page_cache', pid) +
           struct.pack('<QQQIB', 0x1000 + index, INO, index, DEV, order))

    def delete(index, pid, order=0):
        ev(common('mm_filemap_delete_from_page_cache', pid) +
           struct.pack('<QQQIB', 0x1000 + index, INO, index, DEV, order))

    for i in range(10):
        add(i, 500)
    ev(common('mm_vmscan_kswapd_wake', 500) + struct.pack('<iii', 0, 2, 0))
    ev(common('mm_vmscan_direct_reclaim_begin', 500) + struct.pack('<iiQ', 0, 0, 0xcc0))
    delete(0, 500)                     # direct-reclaim, stress
    ev(common('mm_vmscan_direct_reclaim_end', 500) + struct.pack('<Q', 1))
    delete(1, 500)                     # truncate/unlink/invalidate, stress
    delete(2, 77)                      # kswapd
    delete(3, 600)                     # drop-caches, bash
    delete(4, 40)                      # kernel, kworker
    delete(5, 41)                      # kernel, kdamond
    delete(6, 700, order=1)            # truncate/unlink/invalidate, rm: 2 pages
    add(0, 500)                        # a refault
    delete(9, 999)                     # truncate/unlink/invalidate, <999>

    data = bytearray()
    prev = events[0][0] - 10
    base = prev
    for ts, payload in events:
        payload += bytes(-len(payload) % 4)
        assert len(payload) <= 112
        data += struct.pack('<I', ((ts - prev) << 5) | (len(payload) // 4)) + payload
        prev = ts
    page = struct.pack('<QQ', base, len(data)) + data
    page += bytes(page_size - len(page))

    out = bytearray(head)
    out += struct.pack('<Q', len(CMDLINES)) + CMDLINES
    out += struct.pack('<I', 1) + b'flyrecord\0'
    table = len(out)
    out += bytes(16)
    out += bytes(-len(out) % page_size)
    struct.pack_into('<QQ', out, table, len(out), len(page))
    out += page
    open(sys.argv[2], 'wb').write(out)


main()
