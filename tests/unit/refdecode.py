#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reference decoder for recorded ring-buffer pages.

Deliberately independent of consumer/page.c and libtraceevent: it reads the
page header and the 4-byte event headers itself, following the kernel's
kernel/trace/ring_buffer.c encoding, and reads field offsets from the format
files with a regular expression. test-page-recorded compares
dc_decode_page() with what this prints.

usage: refdecode.py FORMATDIR BDIFILE PAGE.bin... > expected.txt

Output, one record per line:
  FILE TYPE TS PID DEV INO INDEX COUNT FLAGS
"""
import re
import struct
import sys

SIZE_MASK = (1 << 27) - 1
MISSED = 1 << 31
STORED = 1 << 30
ABS_TS_MASK = (1 << 59) - 1

# source name -> (type, flags), as in consumer/format.c
SOURCES = {
    'mm_filemap_add_to_page_cache': ('ADDED', 0),
    'mm_filemap_delete_from_page_cache': ('REMOVED', 0),
    'writeback_dirty_folio': ('DIRTY', 0),
    'sb_clear_inode_writeback': ('FLUSHED', 0x01),
}


def read_format(path):
    text = open(path).read()
    name = re.search(r'^name: (\S+)$', text, re.M).group(1)
    eid = int(re.search(r'^ID: (\d+)$', text, re.M).group(1))
    fields = {}
    for m in re.finditer(r'field:[^;]*?(\w+)(\[\d+\])?;\s*offset:(\d+);\s*size:(\d+);',
                         text):
        fields[m.group(1)] = (int(m.group(3)), int(m.group(4)))
    return eid, name, fields


def num(data, field):
    off, size = field
    return int.from_bytes(data[off:off + size], 'little')


def main():
    fmtdir, bdifile, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
    layouts = {}
    for n in SOURCES:
        eid, name, fields = read_format('%s/%s.format' % (fmtdir, n))
        layouts[eid] = (name, fields)
    bdis = {}
    for line in open(bdifile):
        parts = line.split()
        if parts:
            bdis[parts[0]] = [int(x, 0) for x in parts[1:]]
    for path in pages:
        page = open(path, 'rb').read()
        fname = path.rsplit('/', 1)[-1]
        ts, commit = struct.unpack_from('<QQ', page, 0)
        size = commit & SIZE_MASK
        data = page[16:16 + size]
        evts = []
        off = 0
        while off < size:
            hdr, = struct.unpack_from('<I', data, off)
            tl, delta = hdr & 31, hdr >> 5
            if tl == 29:            # padding: array[0] is its length
                length, = struct.unpack_from('<I', data, off + 4)
                ts += delta
                off += 4 + length
                continue
            if tl == 30:            # time extend
                ext, = struct.unpack_from('<I', data, off + 4)
                ts += (ext << 27) + delta
                off += 8
                continue
            if tl == 31:            # absolute time stamp (59 bits)
                ext, = struct.unpack_from('<I', data, off + 4)
                ts = (ts & ~ABS_TS_MASK) | ((ext << 27) | delta)
                off += 8
                continue
            if tl == 0:
                length, = struct.unpack_from('<I', data, off + 4)
                ev = data[off + 8:off + 4 + length]
                off += 4 + ((length + 3) & ~3)
            else:
                ev = data[off + 4:off + 4 + tl * 4]
                off += 4 + tl * 4
            ts += delta
            evts.append((ts, ev))
        if commit & MISSED:
            if commit & STORED:
                lost, = struct.unpack_from('<Q', page, 16 + size)
                flags = 0
            else:
                lost, flags = 1, 0x04
            lts = evts[0][0] if evts else ts
            print(fname, 'LOST', lts, -1, 0, 0, 0, lost, flags)
        for ts_ev, ev in evts:
            eid = int.from_bytes(ev[0:2], 'little')
            if eid not in layouts:
                continue
            name, f = layouts[eid]
            typ, flags = SOURCES[name]
            pid = struct.unpack_from('<i', ev, f['common_pid'][0])[0]
            if name == 'writeback_dirty_folio':
                off, sz = f['name']
                bdi = ev[off:off + sz].split(b'\0')[0].decode()
                devs = bdis.get(bdi, [])
                if len(devs) > 1:
                    flags |= 0x02
                for dev in devs:
                    print(fname, typ, ts_ev, pid, dev, num(ev, f['ino']),
                          num(ev, f['index']), 1, flags)
            elif name == 'sb_clear_inode_writeback':
                print(fname, typ, ts_ev, pid, num(ev, f['dev']),
                      num(ev, f['ino']), 0, 0, flags)
            else:
                print(fname, typ, ts_ev, pid, num(ev, f['s_dev']),
                      num(ev, f['i_ino']), num(ev, f['index']),
                      1 << num(ev, f['order']), flags)


if __name__ == '__main__':
    main()
