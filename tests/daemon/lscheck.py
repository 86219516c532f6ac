#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The oracle of the duet ls tests: the kernel's own counts, file by file.

  lscheck.py ref DIR            every regular file under DIR (symlinks not
                                followed), as JSON: {path: {"size", "cached",
                                "dirty", "writeback", "cached_in_eof"}},
                                from one cachestat(2) of all of the file's
                                page cache (past the end of file included),
                                and one of [0, size) for mincore's view
  lscheck.py cmp LS REF [opts]  whether duet ls --json output LS matches REF:
      --errors P1,P2   these paths must be listed with an error, no figures
      --absent P1,P2   these paths must not be listed
      --cached-only    REF's files without cached pages must not be listed
      --eof            compare with cached_in_eof (mincore), dirty unknown
      --no-writeback   writeback is not known (dataset): not compared
      --under DIR      only REF's files under DIR
Exit 0 when they match, 1 (with the differences) when not.
"""
import ctypes
import json
import os
import stat
import sys

NR_CACHESTAT = 451
libc = ctypes.CDLL(None, use_errno=True)


class Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class Stat(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("cache", "dirty", "writeback", "evicted", "recently_evicted")]


def cachestat(fd, off, length):
    r, s = Range(off, length), Stat()
    if libc.syscall(NR_CACHESTAT, fd, ctypes.byref(r), ctypes.byref(s), 0):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return s


def ref(top):
    out = {}
    ps = os.sysconf("SC_PAGESIZE")
    for d, dirs, files in os.walk(top):
        for n in files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode):
                continue
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
            try:
                whole = cachestat(fd, 0, 1 << 50)
                eof = cachestat(fd, 0, (st.st_size + ps - 1) // ps * ps) if st.st_size else None
            finally:
                os.close(fd)
            out[p] = {"size": st.st_size, "cached": whole.cache, "dirty": whole.dirty,
                      "writeback": whole.writeback,
                      "cached_in_eof": eof.cache if eof else 0}
    return out


def cmp(ls_file, ref_file, opts):
    ls = json.load(open(ls_file))
    rf = json.load(open(ref_file))
    errs = set(filter(None, opts.get("--errors", "").split(",")))
    absent = set(filter(None, opts.get("--absent", "").split(",")))
    under = opts.get("--under")
    bad = []
    got = {}
    for f in ls["files"]:
        if f["path"] in got:
            bad.append("listed twice: " + f["path"])
        got[f["path"]] = f
    want = {}
    for p, r in rf.items():
        if under and not (p + "/").startswith(under.rstrip("/") + "/"):
            continue
        if p in absent:
            continue
        if "--cached-only" in opts and not r["cached"] and p not in errs:
            continue
        want[p] = r
    for p in sorted(set(got) - set(want)):
        bad.append("listed, not expected: %s %s" % (p, got[p]))
    for p in sorted(set(want) - set(got)):
        bad.append("missing: %s %s" % (p, want[p]))
    for p in sorted(set(want) & set(got)):
        f, r = got[p], want[p]
        if p in errs:
            if f.get("error") is None or "cached_pages" in f:
                bad.append("%s: expected an error without figures, got %s" % (p, f))
            continue
        if f.get("error") is not None:
            bad.append("%s: error %s" % (p, f["error"]))
            continue
        exp = {"size": r["size"], "cached_pages": r["cached"], "dirty_pages": r["dirty"],
               "writeback_pages": r["writeback"]}
        if "--eof" in opts:
            exp["cached_pages"] = r["cached_in_eof"]
            exp["dirty_pages"] = exp["writeback_pages"] = 0
        if "--no-writeback" in opts:
            del exp["writeback_pages"]
        for k, v in exp.items():
            if f.get(k) != v:
                bad.append("%s: %s %s, the kernel says %s" % (p, k, f.get(k), v))
        if f.get("cached_bytes") != f.get("cached_pages", 0) * ls["page_size"]:
            bad.append("%s: cached_bytes is not cached_pages x page_size" % p)
    tot = ls["totals"]
    listed = [f for f in ls["files"] if not f.get("directory")]
    ok_files = [f for f in listed if f.get("error") is None]
    if tot["cached_bytes"] != sum(f["cached_bytes"] for f in ok_files):
        bad.append("totals.cached_bytes %s" % tot["cached_bytes"])
    if tot["files"] != len(listed):
        bad.append("totals.files %s, %d listed" % (tot["files"], len(listed)))
    for b in bad:
        print("lscheck: " + b)
    return 1 if bad else 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "ref":
        json.dump(ref(sys.argv[2]), sys.stdout, sort_keys=True)
        print()
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "cmp":
        opts, a = {}, sys.argv[4:]
        while a:
            k = a.pop(0)
            opts[k] = a.pop(0) if k in ("--errors", "--absent", "--under") else True
        return cmp(sys.argv[2], sys.argv[3], opts)
    print(__doc__, file=sys.stderr)
    return 2


sys.exit(main())
