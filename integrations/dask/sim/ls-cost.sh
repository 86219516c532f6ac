#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What duet's residency signal costs per file (docs/cluster.md, "Cost"):
# one node with a dataset of FILES small files (default 50000, one page
# each), half of them cached. Measures duetd's start with the dataset
# (its first scan) and its memory, `duet ls --json --cached-only
# --dataset` (the refresh a scheduler hint needs), the same answered by a
# walk (`duet ls --json -r DIR`, no duetd) and duetd's CPU per event while
# the other half is read in. Prints one line per figure and a JSON line.
# Needs root. Usage: integrations/dask/sim/ls-cost.sh [FILES]
set -eu
FILES=${1:-50000}
. "$(dirname "$0")/lib.sh"
sim_require
trap sim_cleanup EXIT
trap 'exit 1' INT TERM HUP
sim_init
MKFS_ARGS="-N $((FILES + 1000))" sim_node 0 $((FILES * 6 / 1024 + 64))
D=$SIM/n0/data
"$PYTHON" - "$D" "$FILES" <<'PY'
import os, sys
from duet_dask import kernel
d, n = sys.argv[1], int(sys.argv[2])
page = os.urandom(4096)
for k in range(n):
	sub = f"{d}/{k // 1000:03d}"
	if k % 1000 == 0:
		os.mkdir(sub)
	with open(f"{sub}/f{k:07d}", "wb") as f:
		f.write(page)
os.sync()
for k in range(1, n, 2):	# odd files leave the cache: half stays
	kernel.drop(f"{d}/{k // 1000:03d}/f{k:07d}")
PY
cpu() { awk '{print $14 + $15}' /proc/"$1"/stat; }	# clock ticks
rss() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }	# KiB
t0=$(date +%s.%N)
sim_duetd 1
t1=$(date +%s.%N)
DPID=$SIM_DUETD
# until the dataset's first scan is in: two answers in a row list the
# same number of files (not FILES/2: this kind of machine evicts page
# cache idle for ~30 s, so the cached half shrinks slowly meanwhile)
last=-1
for _ in $(seq 600); do
	n=$("$DUET" ls --json --cached-only --dataset n0 | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))')
	[ -n "${VERBOSE:-}" ] && echo "$(date +%T.%N) $n files" >&2
	[ "$n" -gt 0 ] && [ "$n" = "$last" ] && break
	last=$n
	sleep 0.1
done
t2=$(date +%s.%N)
"$PYTHON" - "$DUET" "$D" "$FILES" "$DPID" "$t0" "$t1" "$t2" <<'PY'
import json, os, subprocess, sys, time
duet, d, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0, t1, t2 = map(float, sys.argv[5:8])
tick = os.sysconf("SC_CLK_TCK")

def stat(pid):
	with open(f"/proc/{pid}/stat") as f:
		v = f.read().rsplit(")", 1)[1].split()
	return (int(v[11]) + int(v[12])) / tick
def rss(pid):
	with open(f"/proc/{pid}/status") as f:
		return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

def timed(cmd, reps=5):
	best, out = None, b""
	for _ in range(reps):
		s = time.monotonic()
		out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout
		e = time.monotonic() - s
		best = e if best is None else min(best, e)
	return best, out

res = {"files": n, "cached_files": n // 2}
res["duetd_start_s"] = round(t2 - t0, 3)
c0 = stat(pid)
ls_s, out = timed([duet, "ls", "--json", "--cached-only", "--dataset", "n0"])
c1 = stat(pid)
res["ls_dataset_s"] = round(ls_s, 4)
res["ls_dataset_bytes"] = len(out)
res["ls_dataset_duetd_cpu_s"] = round((c1 - c0) / 5, 4)
# the same asked by an unprivileged user: duetd checks what it may see
c0 = stat(pid)
nb_s, out = timed(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   duet, "ls", "--json", "--cached-only", "--dataset", "n0"])
c1 = stat(pid)
res["ls_dataset_nobody_s"] = round(nb_s, 4)
res["ls_dataset_nobody_duetd_cpu_s"] = round((c1 - c0) / 5, 4)
res["ls_dataset_nobody_files"] = len(json.loads(out)["files"])
walk_s, out = timed([duet, "ls", "--json", "--cached-only", "-r", d], 3)
res["ls_walk_s"] = round(walk_s, 4)
res["duetd_rss_kib"] = rss(pid)
# live upkeep: read the uncached half (n/2 one-page files, n/2 events)
c0 = stat(pid)
for k in range(1, n, 2):
	with open(f"{d}/{k // 1000:03d}/f{k:07d}", "rb") as f:
		f.read()
time.sleep(2)
c1 = stat(pid)
res["events"] = n // 2
res["duetd_cpu_per_event_us"] = round((c1 - c0) / (n // 2) * 1e6, 2)
res["duetd_rss_all_cached_kib"] = rss(pid)
ls_s, out = timed([duet, "ls", "--json", "--cached-only", "--dataset", "n0"])
res["ls_dataset_all_cached_s"] = round(ls_s, 4)
per = lambda v, k: v / k * 1e6
print(f"{n} files, {n // 2} cached: duetd up with the dataset scanned in {res['duetd_start_s']} s")
print(f"duet ls --dataset (cached-only): {ls_s_half:.4f} s" if False else
      f"duet ls --dataset --cached-only: {res['ls_dataset_s']} s for {n // 2} files "
      f"({per(res['ls_dataset_s'], n // 2):.1f} us/file, {res['ls_dataset_bytes'] / (n // 2):.0f} B/file of JSON); "
      f"all {n} cached: {res['ls_dataset_all_cached_s']} s ({per(res['ls_dataset_all_cached_s'], n):.1f} us/file)")
print(f"the same as nobody: {res['ls_dataset_nobody_s']} s for {res['ls_dataset_nobody_files']} files, "
      f"duetd CPU {res['ls_dataset_nobody_duetd_cpu_s']} s (root's: {res['ls_dataset_duetd_cpu_s']} s)")
print(f"duet ls -r DIR (a walk with cachestat): {res['ls_walk_s']} s ({per(res['ls_walk_s'], n):.1f} us/file)")
print(f"duetd RSS {res['duetd_rss_kib']} KiB with {n // 2} cached files, {res['duetd_rss_all_cached_kib']} KiB with {n}")
print(f"duetd CPU per event kept live: {res['duetd_cpu_per_event_us']} us")
print(json.dumps(res))
PY
