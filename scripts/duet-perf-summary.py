# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Per-file page-cache summary of a perf.data, for
#   perf record -a -e 'filemap:*' -e 'writeback:*' -- WORKLOAD
#   perf script -s scripts/duet-perf-summary.py
# It prints the same per-file section as `duet report`:
#   DEV INO ADDED REMOVED DIRTIED FLUSHED PATH
# one line per file sorted by (dev, ino), DEV as MAJ:MIN, PATH - (perf.data
# carries no paths). Counting rules, the same as duet report's:
# - ADDED/REMOVED: 1 << order pages per mm_filemap_add_to_page_cache /
#   mm_filemap_delete_from_page_cache event.
# - DIRTIED: stock writeback_dirty_folio counts one page per event, keyed by
#   its backing-device name, mapped to devices through this machine's mounts
#   now (/sys/dev/block/M:m/bdi, btrfs through its fsid); with the
#   kernel-tracepoints series, mm_filemap_dirty_folio counts 1 << order pages.
# - FLUSHED: stock sb_clear_inode_writeback is inode-level: the column counts
#   those events, not pages; with the series, mm_filemap_clear_dirty_for_io
#   and mm_filemap_dirty_cancel count pages. The stock events are ignored
#   when the exact ones were seen.
import os
import struct
import sys

files = {}          # (kdev, ino) -> [added, removed, dirtied_stock, dirtied_exact,
                    #                 flush_events, flushed_exact]
bdi_devs = None     # bdi name -> [kdev, ...]
unmapped = 0
seen_exact_dirty = False
seen_exact_flush = False


def kdev(major, minor):
    return (major << 20) | minor


def load_bdis():
    """bdi name -> kernel devs of the file systems mounted now."""
    m = {}
    seen = set()
    with open('/proc/self/mountinfo') as f:
        for line in f:
            p = line.split()
            sep = p.index('-')
            major, minor = (int(x) for x in p[2].split(':'))
            fstype, mnt = p[sep + 1], p[4].replace('\\040', ' ')
            kd = kdev(major, minor)
            if kd in seen:
                continue
            seen.add(kd)
            name = None
            if fstype == 'btrfs':
                name = btrfs_bdi(mnt)
            elif major:
                try:
                    name = os.path.basename(os.readlink('/sys/dev/block/%d:%d/bdi'
                                                        % (major, minor)))
                except OSError:
                    # A partition's bdi is its disk's.
                    try:
                        name = os.path.basename(os.readlink(
                            '/sys/dev/block/%d:%d/../bdi' % (major, minor)))
                    except OSError:
                        name = None
            if name:
                m.setdefault(name, []).append(kd)
    return m


def btrfs_bdi(mnt):
    import fcntl
    try:
        fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        # BTRFS_IOC_FS_INFO = _IOR(0x94, 31, 1024 bytes): fsid at offset 16.
        buf = fcntl.ioctl(fd, 0x8400941f, bytes(1024))
    except OSError:
        return None
    finally:
        os.close(fd)
    fsid = buf[16:32].hex()
    fsid = '-'.join((fsid[:8], fsid[8:12], fsid[12:16], fsid[16:20], fsid[20:]))
    try:
        return os.path.basename(os.readlink('/sys/fs/btrfs/%s/bdi' % fsid))
    except OSError:
        return None


def ent(dev, ino):
    k = (dev, ino)
    e = files.get(k)
    if e is None:
        e = files[k] = [0, 0, 0, 0, 0, 0]
    return e


def trace_unhandled(event_name, context, f, sample=None):
    global bdi_devs, unmapped, seen_exact_dirty, seen_exact_flush
    name = event_name.split('__', 1)[-1]
    if name == 'mm_filemap_add_to_page_cache':
        ent(f['s_dev'], f['i_ino'])[0] += 1 << f['order']
    elif name == 'mm_filemap_delete_from_page_cache':
        ent(f['s_dev'], f['i_ino'])[1] += 1 << f['order']
    elif name == 'writeback_dirty_folio':
        if bdi_devs is None:
            bdi_devs = load_bdis()
        bdi = f['name']
        if isinstance(bdi, (bytes, bytearray)):
            bdi = bdi.split(b'\0', 1)[0].decode(errors='replace')
        else:
            bdi = str(bdi).split('\0', 1)[0]
        devs = bdi_devs.get(bdi)
        if not devs:
            unmapped += 1
            return
        for d in devs:
            ent(d, f['ino'])[2] += 1
    elif name == 'mm_filemap_dirty_folio':
        seen_exact_dirty = True
        ent(f['s_dev'], f['i_ino'])[3] += 1 << f['order']
    elif name == 'sb_clear_inode_writeback':
        ent(f['dev'], f['ino'])[4] += 1
    elif name in ('mm_filemap_clear_dirty_for_io', 'mm_filemap_dirty_cancel'):
        seen_exact_flush = True
        ent(f['s_dev'], f['i_ino'])[5] += 1 << f['order']


def trace_end():
    out = sys.stdout
    out.write('duet-perf-summary: dirty %s; flush %s; dirty events of unknown '
              'backing devices: %d\n'
              % ('exact per folio' if seen_exact_dirty else
                 'one page per writeback_dirty_folio event',
                 'exact per folio (pages)' if seen_exact_flush else
                 'inode-level (FLUSHED counts sb_clear_inode_writeback events, '
                 'not pages)', unmapped))
    out.write('DEV INO ADDED REMOVED DIRTIED FLUSHED PATH\n')
    for (dev, ino) in sorted(files):
        e = files[(dev, ino)]
        dirtied = e[3] if seen_exact_dirty else e[2]
        flushed = e[5] if seen_exact_flush else e[4]
        out.write('%d:%d %d %d %d %d %d -\n' % (dev >> 20, dev & 0xfffff, ino, e[0],
                                                 e[1], dirtied, flushed))
