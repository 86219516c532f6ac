# SPDX-License-Identifier: LGPL-2.1-or-later
"""The kernel's own view of a file's page cache, through cachestat(2).

This is the oracle the benchmark and the tests measure duet against (the
cache hit share of a task, the figures of ``duet ls``); placement never
uses it: placement uses duet's live per-dataset figures (residency.py).
Nothing is read in: cachestat only looks.
"""
import ctypes
import os

NR_CACHESTAT = 451  # x86_64, arm64 and the generic table alike
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# A large folio that a truncate cut into stays cached past the end of the
# file (docs FACTS): look up to the next 2 MiB boundary past the end.
_TAIL = 2 << 20


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Stat(ctypes.Structure):
    _fields_ = [("nr_cache", ctypes.c_uint64), ("nr_dirty", ctypes.c_uint64),
                ("nr_writeback", ctypes.c_uint64), ("nr_evicted", ctypes.c_uint64),
                ("nr_recently_evicted", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def cachestat_fd(fd, off=0, length=0):
    """(nr_cache, nr_dirty, nr_writeback) of pages [off, off+length) of fd
    (length 0: to the end of the file). Raises OSError."""
    rng = _Range(off, length)
    st = _Stat()
    rc = _libc.syscall(ctypes.c_long(NR_CACHESTAT), ctypes.c_int(fd),
                       ctypes.byref(rng), ctypes.byref(st), ctypes.c_uint(0))
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return st.nr_cache, st.nr_dirty, st.nr_writeback


def cached_pages_fd(fd):
    """Cached pages of fd, past-the-end pages of a cut folio included."""
    size = os.fstat(fd).st_size
    end = (size + _TAIL - 1) // _TAIL * _TAIL + _TAIL
    return cachestat_fd(fd, 0, end)[0]


def cached_pages(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return cached_pages_fd(fd)
    finally:
        os.close(fd)


def cached_bytes(path):
    """Cached bytes of path as a reader sees them: at most its size."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return min(cached_pages_fd(fd) * PAGE_SIZE, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def resident_ranges(path):
    """The cached page ranges of path as [(first, last)], by bisection
    with cachestat over the file's pages (and the tail of a cut folio)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        npages = ((size + _TAIL - 1) // _TAIL * _TAIL + _TAIL) // PAGE_SIZE
        out = []

        def walk(lo, hi):  # pages [lo, hi)
            n = cachestat_fd(fd, lo * PAGE_SIZE, (hi - lo) * PAGE_SIZE)[0]
            if n == 0:
                return
            if n == hi - lo:
                if out and out[-1][1] == lo - 1:
                    out[-1] = (out[-1][0], hi - 1)
                else:
                    out.append((lo, hi - 1))
                return
            mid = (lo + hi) // 2
            walk(lo, mid)
            walk(mid, hi)
        walk(0, npages)
        return out
    finally:
        os.close(fd)


def drop(path):
    """Ask the kernel to drop path's clean cached pages (fadvise
    DONTNEED); returns the pages still cached afterwards."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return cached_pages_fd(fd)
    finally:
        os.close(fd)
