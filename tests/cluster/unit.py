#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""duet_dask without a cluster (suite unit, no root): parse_ls on the real
`duet ls --json` of a file of ours and on documents it must refuse, and
the placement rule on snapshots built by hand (most cached wins, busy and
gone workers are passed over, fair shares in a batch, files nobody caches
stay unrestricted). Exit 0 pass, 1 fail."""
import json
import os
import subprocess
import sys
import tempfile
import types

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "integrations", "dask"))
import duet_dask  # noqa: E402
from duet_dask import kernel, placement  # noqa: E402

fails = 0


def check(what, cond, detail=""):
    global fails
    print(("ok: " if cond else "FAIL: ") + what + ("" if cond else f" {detail}"))
    fails += not cond


def doc(files, v=1, typ="ls"):
    return json.dumps({"v": v, "type": typ, "page_size": 4096, "files": files,
                       "totals": {"files": len(files)}})


def f(path, cached, error=None):
    return {"path": path, "size": 8192, "cached_pages": cached // 4096,
            "cached_bytes": cached, "error": error}


def parse_tests(tmp):
    files, _, errors = duet_dask.parse_ls(doc([
        f("/d/a", 4096), f("/d/sub/b", 8192), f("/d/c", 0, "Permission denied"),
        f("/elsewhere/x", 4096)]), "/d")
    check("keys relative to the root, outside and error entries left out",
          files == {"a": (4096, 8192), "sub/b": (8192, 8192)}, str(files))
    check("error entries counted", errors == 1, str(errors))
    files, _, _ = duet_dask.parse_ls(doc([f("/d/a", 4096)]))
    check("no root: absolute keys", list(files) == ["/d/a"], str(files))
    os.mkdir(f"{tmp}/real")
    os.symlink(f"{tmp}/real", f"{tmp}/link")
    files, _, _ = duet_dask.parse_ls(doc([f(f"{tmp}/real/a", 4096)]),
                                     f"{tmp}/link")
    check("a root given through a symlink still keys resolved paths",
          list(files) == ["a"], str(files))
    for bad, what in ((doc([], v=2), "another version"),
                      (doc([], typ="status"), "another type"),
                      ("{", "not JSON")):
        try:
            duet_dask.parse_ls(bad)
            check(f"refuses {what}", False)
        except duet_dask.DuetError:
            check(f"refuses {what}", True)
    duet = os.environ.get("DUET")
    if not duet or not os.access(duet, os.X_OK):
        print("note: DUET not set, the real duet ls is not checked")
        return
    p = f"{tmp}/real/file"
    with open(p, "wb") as fh:
        fh.write(os.urandom(10 * 4096))
    out = subprocess.run([duet, "ls", "--json", p], stdout=subprocess.PIPE,
                         check=True).stdout
    files, totals, errors = duet_dask.parse_ls(out, f"{tmp}/real")
    want = kernel.cached_pages(p) * 4096
    check("the real duet ls --json of our file parses, as the kernel counts",
          files == {"file": (want, 10 * 4096)} and errors == 0,
          f"{files} kernel {want}")


def snap(files, nthreads, load):
    return placement.Snapshot(files, nthreads, dict(load), {}, 0.0, {})


def placement_tests():
    nt = {"A": 1, "B": 1, "C": 1}
    p = placement.Placer(None)
    s = snap({"A": {"x": 100, "y": 10}, "B": {"x": 200}, "C": {}}, nt,
             {"A": 0, "B": 0, "C": 0})
    check("most cached wins", p.choose("x", s) == "B")
    check("the only one caching it", p.choose("y", s) == "A")
    check("nobody caches it: no restriction", p.choose("z", s) is None)
    s = snap({"A": {"x": 100}, "B": {"x": 200}, "C": {}}, nt,
             {"A": 0, "B": 5, "C": 0})
    check("busy (5 processing, share 2): the next by cached bytes",
          p.choose("x", s) == "A" and p.stats["fallback"] == 1, str(p.stats))
    s = snap({"A": {"x": 100}, "B": {"x": 200}}, nt, {"A": 9, "B": 9, "C": 0})
    check("every cacher busy: no restriction", p.choose("x", s) is None)
    # gone: the client's periodic view no longer lists B
    client = types.SimpleNamespace(_scheduler_identity={"workers": {"A": {}, "C": {}}})
    p = placement.Placer(client)
    s = snap({"A": {"x": 100}, "B": {"x": 200}}, nt, {"A": 0, "B": 0, "C": 0})
    check("gone (not in the client's scheduler view): the next",
          p.choose("x", s) == "A")
    # a batch: A caches all 6, share 2 each, cap max(2, 1.25*2) = 2.5
    p = placement.Placer(None)
    p._snap = snap({"A": {f"f{i}": 10 for i in range(6)}, "B": {}, "C": {}},
                   nt, {"A": 0, "B": 0, "C": 0})
    p._snap.taken = float("inf")
    p.refresh = lambda subtree=None: p._snap
    where = p.plan([f"f{i}" for i in range(6)])
    check("a batch: A takes its fair share (3), the rest unrestricted",
          where.count("A") == 3 and where.count(None) == 3, str(where))
    # most-cached-first: A's 3 slots go to the files it caches most
    p = placement.Placer(None)
    p._snap = snap({"A": {f"f{i}": 10 * (i + 1) for i in range(6)},
                    "B": {f"f{i}": 5 for i in range(6)}, "C": {}}, nt,
                   {"A": 0, "B": 0, "C": 0})
    p.refresh = lambda subtree=None: p._snap
    where = p.plan([f"f{i}" for i in range(6)])
    check("a batch: the files A caches most go to A, the others to B",
          where == ["B", "B", "B", "A", "A", "A"], str(where))
    sub = placement.Placer.subtree
    check("a batch's subtree: the deepest common directory, or the whole",
          (sub(["a/b/1", "a/b/2", "a/c/3"]), sub(["a/b/1"]), sub(["x", "y"]),
           sub(["/d/e/1", "/d/e/2"]), sub(["/d/1", "r"]), sub([])) ==
          ("a", "a/b", None, "/d/e", None, None))
    asked = []
    p = placement.Placer(None)
    p._snap = snap({"A": {}}, nt, {"A": 0, "B": 0, "C": 0})
    p.refresh = lambda subtree=None: asked.append(subtree) or p._snap
    p.plan(["s/0042/a", "s/0042/b"])
    check("a batch asks for its subtree only", asked == ["s/0042"], str(asked))
    p = placement.Placer(None, root="/data")
    check("keys: a path under root is relative, others as given",
          (p.key("/data/a/b"), p.key("a/b"), p.key("/other/c")) ==
          ("a/b", "a/b", "/other/c"))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        parse_tests(tmp)
    placement_tests()
    print("PASS" if not fails else f"FAILED ({fails})")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
