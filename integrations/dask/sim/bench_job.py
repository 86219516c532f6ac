# SPDX-License-Identifier: LGPL-2.1-or-later
"""The job of scripts/bench-cluster, on a cluster made by sim/lib.sh.

  bench_job.py make SIM NODES FILES FILE_MB
        every node's dataset copy (the same bytes, its own inodes)
  bench_job.py run SIM CG NODES FILES LOOPS REPEAT [--json] [--skewed]
        per placement (Dask's own, then duet's), REPEAT times: drop every
        node's dataset from the page cache, re-warm the same part on each node
        (node I: files [I*F/N, (I+1)*F/N), read by a `cat` inside node I's
        cgroup: the earlier work; with --skewed half the files on node 0,
        the rest split among the others), then a job reading every file once. Figures:
        device reads (sectors read of the node's loop devices, /sys/block/*/stat),
        hit share (per task, the kernel's cached bytes of its file on the
        node that runs it just before the read, by cachestat, over the bytes
        read) and job time (submit to last result, the placement's residency
        query included). A table, then one JSON line.
"""
import json
import os
import statistics
import subprocess
import sys
import time

from distributed import Client, get_worker

import duet_dask
from duet_dask import kernel


def name(k):
    return f"part-{k:04d}"


def make(sim, nodes, files, mb):
    for k in range(files):
        data = os.urandom(mb << 20)
        for i in range(nodes):
            with open(f"{sim}/n{i}/data/{name(k)}", "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
    os.sync()


SKEWED = False


def owner(k, nodes, files):
    """The node whose earlier work caches file k: contiguous equal parts,
    or (skewed) half the files on node 0 and the rest split equally."""
    if not SKEWED:
        return k * nodes // files
    if k < files // 2:
        return 0
    return 1 + (k - files // 2) * (nodes - 1) // (files - files // 2)


def read_task(rel):
    """Read one dataset file on this worker's node; what was cached first."""
    path = os.path.join(os.environ["DUET_DATASET_DIR"], rel)
    buf = bytearray(1 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        cached = min(kernel.cached_pages_fd(fd) * kernel.PAGE_SIZE,
                     os.fstat(fd).st_size)
        t0 = time.monotonic()
        n = 0
        while True:
            r = os.readv(fd, [buf])
            if r <= 0:
                break
            n += r
        took = time.monotonic() - t0
    finally:
        os.close(fd)
    return {"worker": get_worker().address, "node": os.environ["DUET_DATASET"],
            "file": rel, "cached_before": cached, "bytes": n, "read_s": took}


def loop_read_bytes(loops):
    tot = 0
    for l in loops:
        with open(f"/sys/block/{l}/stat") as f:
            tot += int(f.read().split()[2]) * 512
    return tot


def join_cgroup(cg):
    def f():
        with open(os.path.join(cg, "cgroup.procs"), "w") as p:
            p.write(str(os.getpid()))
    return f


def set_state(sim, cg, nodes, files):
    """Drop every copy, then warm node I's part inside its cgroup; returns
    the kernel's cached bytes of each node's part (the starting state)."""
    for i in range(nodes):
        for k in range(files):
            p = f"{sim}/n{i}/data/{name(k)}"
            for _ in range(20):
                if kernel.drop(p) == 0:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"{p}: pages stay cached after DONTNEED")
    for i in range(nodes):
        part = [f"{sim}/n{i}/data/{name(k)}" for k in range(files)
                if owner(k, nodes, files) == i]
        subprocess.run(["cat", *part], stdout=subprocess.DEVNULL, check=True,
                       preexec_fn=join_cgroup(f"{cg}/n{i}"))
    state = []
    for i in range(nodes):
        state.append(sum(kernel.cached_bytes(f"{sim}/n{i}/data/{name(k)}")
                         for k in range(files)))
    return state


def one_run(client, mode, sim, cg, nodes, files, loops):
    state = set_state(sim, cg, nodes, files)
    time.sleep(1.0)  # the same pause for both: duetd's events land
    rels = [name(k) for k in range(files)]
    placer = None
    d0 = loop_read_bytes(loops)
    t0 = time.monotonic()
    if mode == "duet":
        placer = duet_dask.Placer(client)
        futs = placer.map(read_task, rels, pure=False)
    else:
        futs = client.map(read_task, rels, pure=False)
    res = client.gather(futs)
    job_s = time.monotonic() - t0
    dev = loop_read_bytes(loops) - d0
    del futs
    hit = sum(r["cached_before"] for r in res) / sum(r["bytes"] for r in res)
    local = sum(1 for r in res
                if r["node"] == f"n{owner(int(r['file'][5:]), nodes, files)}")
    out = {"device_read_bytes": dev, "job_s": round(job_s, 3),
           "hit_share": round(hit, 4), "start_cached_bytes": state,
           "tasks_on_caching_node": local, "tasks": len(res)}
    if placer is not None:
        out["placement"] = dict(placer.stats)
        out["ls_s"] = round(max(placer._snap.query_s.values(), default=0), 3)
    return out


def run(sim, cg, nodes, files, loops, repeat, as_json):
    with Client(scheduler_file=f"{sim}/scheduler.json", timeout=30) as client:
        client.wait_for_workers(nodes, timeout=60)
        runs = {"default": [], "duet": []}
        for _ in range(repeat):
            for mode in ("default", "duet"):
                runs[mode].append(one_run(client, mode, sim, cg, nodes,
                                          files, loops))
    summary = {"engine": "dask", "nodes": nodes}
    for mode, rs in runs.items():
        summary[mode] = {
                "device_read_bytes": int(statistics.median(r["device_read_bytes"] for r in rs)),
                "job_s": round(statistics.median(r["job_s"] for r in rs), 3),
                "hit_share": round(statistics.median(r["hit_share"] for r in rs), 4),
        }
    print(f"{'placement':<10} {'run':>3} {'device MiB':>10} {'job s':>7} "
          f"{'hit share':>9} {'on caching node':>15}  start cached MiB per node")
    for mode, rs in runs.items():
        for j, r in enumerate(rs):
            print(f"{mode:<10} {j:>3} {r['device_read_bytes'] / 2**20:>10.1f} "
                  f"{r['job_s']:>7.3f} {r['hit_share']:>9.3f} "
                  f"{r['tasks_on_caching_node']:>7}/{r['tasks']:<7}  "
                  + " ".join(f"{b / 2**20:.0f}" for b in r["start_cached_bytes"])
                  + (f"  placed {r['placement']} ls {r['ls_s']} s"
                     if "placement" in r else ""))
    d, u = summary["default"], summary["duet"]
    ratio = u["device_read_bytes"] / d["device_read_bytes"] if d["device_read_bytes"] else 0
    print(f"duet/default device reads {ratio:.3f} (goal <= 0.5), job time "
          f"{u['job_s']:.3f} s vs {d['job_s']:.3f} s (goal: no longer)")
    if as_json:
        print(json.dumps(summary))
    return 0


def main(a):
    if a[0] == "make":
        make(a[1], int(a[2]), int(a[3]), int(a[4]))
        return 0
    if a[0] == "run":
        global SKEWED
        SKEWED = "--skewed" in a[7:]
        return run(a[1], a[2], int(a[3]), int(a[4]), a[5].split(","),
                   int(a[6]), "--json" in a[7:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
