#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shrink a trace.dat (version 6) into a small test fixture: keep the
header, the filemap, writeback and vmscan event formats, the saved command
lines, the options and every CPU's pages; drop the ftrace formats, the
other systems, kallsyms and the printk formats.

usage: shrink.py [--no-cmdlines] IN.dat OUT.dat
"""
import struct
import sys

KEEP = (b'filemap', b'writeback', b'vmscan')


def main():
    args = sys.argv[1:]
    no_cmdlines = args[0] == '--no-cmdlines'
    if no_cmdlines:
        args = args[1:]
    d = open(args[0], 'rb').read()
    p = 0

    def take(n):
        nonlocal p
        v = d[p:p + n]
        assert len(v) == n, 'truncated input'
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
    out = bytearray(take(10))
    ver = cstr()
    assert ver == b'6', 'only version 6 (convert with trace-cmd convert --file-version 6)'
    out += ver + b'\0'
    hdr = take(6)
    out += hdr
    page_size = struct.unpack('<I', hdr[2:6])[0]
    for _ in range(2):
        label = cstr()
        n = u64()
        out += label + b'\0' + struct.pack('<Q', n) + take(n)
    for _ in range(u32()):
        take(u64())
    out += struct.pack('<I', 0)
    systems = []
    for _ in range(u32()):
        name = cstr()
        fmts = [take(u64()) for _ in range(u32())]
        if name in KEEP:
            systems.append((name, fmts))
    out += struct.pack('<I', len(systems))
    for name, fmts in systems:
        out += name + b'\0' + struct.pack('<I', len(fmts))
        for f in fmts:
            out += struct.pack('<Q', len(f)) + f
    take(u32())
    take(u32())
    out += struct.pack('<I', 0) + struct.pack('<I', 0)
    n = u64()
    cmd = take(n)
    if no_cmdlines:
        cmd = b''
    out += struct.pack('<Q', len(cmd)) + cmd
    ncpus = u32()
    out += struct.pack('<I', ncpus)
    while True:
        label = take(10)
        out += label
        if label == b'options  \0':
            while True:
                oid = struct.unpack('<H', take(2))[0]
                out += struct.pack('<H', oid)
                if not oid:
                    break
                sz = u32()
                out += struct.pack('<I', sz) + take(sz)
            continue
        assert label == b'flyrecord\0', label
        break
    cpus = [(u64(), u64()) for _ in range(ncpus)]
    table = len(out)
    out += bytes(16 * ncpus)
    for i, (off, size) in enumerate(cpus):
        pad = -len(out) % page_size
        out += bytes(pad)
        start = len(out) if size else 0
        out += d[off:off + size]
        struct.pack_into('<QQ', out, table + 16 * i, start, size)
    open(args[1], 'wb').write(out)


main()
