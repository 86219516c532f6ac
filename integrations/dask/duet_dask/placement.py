# SPDX-License-Identifier: LGPL-2.1-or-later
"""Placing tasks that read dataset files on the worker whose node caches
most of the file: soft restrictions (``workers=[w]``,
``allow_other_workers=True``) from a per-batch snapshot of every worker's
residency.

One snapshot (one ``Client.run`` of residency.node_residency on every
worker, plus the scheduler's worker list and processing counts) serves a
whole batch of submits; it is retaken when older than ``ttl`` seconds or
on ``refresh()``. Never one query per task.

A preferred worker is skipped ("busy") when its load, the tasks the
scheduler says it is processing plus those placed on it from this
snapshot, has reached both ``min_backlog`` tasks per thread and
``slack`` times its fair share (its threads' part of all outstanding
and newly placed work). The task then goes to the next worker by cached
bytes that is not busy; when none caches any of the file it gets no
restriction and Dask places it as usual. A worker gone since the
snapshot is never chosen once the client's periodic view of the
scheduler (every 2 s, no extra query) has dropped it; one that goes
after the submit is covered by ``allow_other_workers=True``: the
scheduler then runs the task on any worker.
"""
import os
import threading
import time
import weakref

from . import residency


class Snapshot:
    """What one batch of placements is decided from."""

    def __init__(self, files, nthreads, load, failed, taken, query_s):
        self.files = files  # {worker: {key: cached_bytes}}
        self.nthreads = nthreads  # {worker: threads} (running workers)
        self.load = load  # {worker: tasks processing + placed here}
        self.failed = failed  # {worker: error sentence}
        self.taken = taken  # time.monotonic()
        self.query_s = query_s  # {worker: duet ls seconds}
        self.base = sum(load.values())  # tasks processing at the snapshot
        self.placed = 0


class Placer:
    """Cache-aware soft placement for one Client.

    root: the dataset's directory as the submitting code names files
    (paths under it are keyed by their relative path, as workers with
    DUET_DATASET_DIR report them); None keys absolute paths as they are.
    """

    def __init__(self, client, root=None, ttl=5.0, slack=1.25,
                 min_backlog=2, dataset=None, duet=None):
        self.client = client
        self.root = root
        self.ttl = ttl
        self.slack = slack
        self.min_backlog = min_backlog
        self.dataset = dataset
        self.duet = duet
        self._snap = None
        self._lock = threading.Lock()
        self.stats = {"preferred": 0, "fallback": 0, "unrestricted": 0,
                      "snapshots": 0}

    def key(self, path):
        path = os.fspath(path)
        if self.root is not None and os.path.isabs(path):
            rel = os.path.relpath(path, self.root)
            if not rel.startswith(".."):
                return rel
        return path

    def refresh(self, subtree=None):
        """Take a new snapshot now and return it; subtree (a key) narrows
        it to that part of the dataset."""
        kw = {"subtree": subtree} if subtree else {}
        if self.dataset:
            kw["dataset"] = self.dataset
        if self.duet:
            kw["duet"] = self.duet
        res = self.client.run(residency.node_residency, on_error="return",
                              **kw)
        info = self.client.scheduler_info()["workers"]
        proc = self.client.processing()
        files, failed, query_s = {}, {}, {}
        for w, r in res.items():
            if isinstance(r, BaseException):
                failed[w] = str(r)
            else:
                files[w] = r["files"]
                query_s[w] = r["query_s"]
        nthreads = {w: max(1, int(d.get("nthreads", 1)))
                    for w, d in info.items()}
        load = {w: len(proc.get(w, ())) for w in nthreads}
        snap = Snapshot(files, nthreads, load, failed, time.monotonic(),
                        query_s)
        with self._lock:
            self._snap = snap
            self.stats["snapshots"] += 1
        return snap

    def snapshot(self):
        s = self._snap
        if s is None or time.monotonic() - s.taken > self.ttl:
            s = self.refresh()
        return s

    def _live(self):
        """The workers the client last heard the scheduler list (it
        refreshes them every distributed.client.scheduler-info-interval,
        2 s, at no cost here), or None if it has not yet."""
        ident = getattr(self.client, "_scheduler_identity", None) or {}
        w = ident.get("workers")
        return set(w) if w else None

    def _busy(self, s, w, total):
        share = s.nthreads[w] * total / sum(s.nthreads.values())
        cap = max(self.min_backlog * s.nthreads[w], self.slack * share)
        return s.load[w] >= cap

    def choose(self, path, s=None, total=None):
        """The worker to prefer for a task reading path, or None (no
        restriction), counting the task into the snapshot's load. total:
        the outstanding work the fair shares divide (default: what the
        scheduler had, what was placed since, and this task)."""
        s = s or self.snapshot()
        if total is None:
            total = s.base + s.placed + 1
        k = self.key(path)
        live = self._live()
        ranked = sorted(((f.get(k, 0), w) for w, f in s.files.items()
                         if w in s.nthreads and (live is None or w in live)
                         and f.get(k, 0) > 0),
                        key=lambda x: (-x[0], x[1]))
        with self._lock:
            for i, (_, w) in enumerate(ranked):
                if not self._busy(s, w, total):
                    s.load[w] += 1
                    s.placed += 1
                    self.stats["fallback" if i else "preferred"] += 1
                    return w
            self.stats["unrestricted"] += 1
            return None

    @staticmethod
    def subtree(keys):
        """The deepest directory holding every key, or None (the whole
        dataset): a batch over one part of a large dataset asks for that
        part only."""
        try:
            d = os.path.commonpath([os.path.dirname(k) for k in keys])
        except ValueError:  # none, or absolute and relative mixed
            return None
        return d if d and d != os.sep else None

    def plan(self, paths, fresh=True):
        """Preferred workers for a batch of paths (one snapshot, taken now
        unless fresh is False): the files most cached somewhere are placed
        first, so a worker's share goes to the files it caches most;
        returns a list parallel to paths."""
        paths = [self.key(p) for p in paths]
        s = self.refresh(subtree=self.subtree(paths)) if fresh \
            else self.snapshot()
        best = [max((f.get(k, 0) for f in s.files.values()), default=0)
                for k in paths]
        order = sorted(range(len(paths)), key=lambda i: -best[i])
        out = [None] * len(paths)
        total = s.base + s.placed + len(paths)
        for i in order:
            out[i] = self.choose(paths[i], s, total)
        return out

    def submit(self, fn, path, *args, **kwargs):
        """Client.submit(fn, path, *args, **kwargs), placed by path."""
        w = self.choose(path)
        if w is not None:
            kwargs.setdefault("workers", [w])
            kwargs.setdefault("allow_other_workers", True)
        return self.client.submit(fn, path, *args, **kwargs)

    def map(self, fn, paths, *iterables, **kwargs):
        """Client.map(fn, paths, *iterables, **kwargs), each task placed
        by its path; returns the futures in the order of paths. A map is
        a batch: it takes its own snapshot."""
        paths = list(paths)
        where = self.plan(paths)
        its = [list(it) for it in iterables]
        pure = kwargs.pop("pure", True)
        key = kwargs.pop("key", None)
        out = []
        for i, p in enumerate(paths):
            kw = dict(kwargs)
            if where[i] is not None:
                kw["workers"] = [where[i]]
                kw["allow_other_workers"] = True
            if key is not None:
                kw["key"] = key[i] if isinstance(key, (list, tuple)) \
                        else f"{key}-{i}"
            out.append(self.client.submit(fn, p, *(it[i] for it in its),
                                          pure=pure, **kw))
        return out


_placers = weakref.WeakKeyDictionary()


def placer(client, **opts):
    """The Placer of client (made once; opts apply when it is made)."""
    p = _placers.get(client)
    if p is None:
        p = Placer(client, **opts)
        _placers[client] = p
    return p


def submit(client, fn, path, *args, **kwargs):
    """Drop-in for client.submit(fn, path, ...): places by path."""
    return placer(client).submit(fn, path, *args, **kwargs)


def map(client, fn, paths, *iterables, **kwargs):
    """Drop-in for client.map(fn, paths, ...): places each task by path."""
    return placer(client).map(fn, paths, *iterables, **kwargs)
