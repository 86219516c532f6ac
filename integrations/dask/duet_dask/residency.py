# SPDX-License-Identifier: LGPL-2.1-or-later
"""A node's page-cache residency for one dataset, from its duetd.

Runs on a Dask worker (through ``Client.run``): it asks the node's duetd
with ``duet ls --json --cached-only --dataset NAME`` and returns the
cached bytes per file, keyed by the file's path relative to the dataset's
directory on this node (so nodes whose copies live under different
directories still agree on names), or by its absolute path when the
directory is not configured (every node has the dataset at the same path).

Configuration, per worker (its environment, or the arguments):
  DUET_DATASET      the dataset's name in this node's duetd (required)
  DUET_DATASET_DIR  the dataset's directory on this node (optional)
  DUET              the duet program (default: "duet" on PATH)
  DUET_SOCKET       duetd's socket (read by duet itself)
"""
import json
import os
import socket
import subprocess
import time

SCHEMA_VERSION = 1


class DuetError(RuntimeError):
    """duet ls failed or said something this module does not understand."""


def parse_ls(text, root=None):
    """The files of one ``duet ls --json`` document as
    {key: (cached_bytes, size)}, plus its totals and error count.
    Files with an "error" are left out: their figures are not to be
    trusted. Raises DuetError on a document of another version or type."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise DuetError(f"duet ls: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("type") != "ls":
        raise DuetError("duet ls: not an ls document")
    if doc.get("v") != SCHEMA_VERSION:
        raise DuetError(f"duet ls: schema version {doc.get('v')!r}, "
                        f"this module reads {SCHEMA_VERSION}")
    files = {}
    errors = 0
    roots = []
    if root is not None:
        # duetd may name files under the resolved directory
        roots = [root] + ([os.path.realpath(root)]
                          if os.path.realpath(root) != root else [])
    for f in doc.get("files", ()):
        if f.get("error") is not None:
            errors += 1
            continue
        path = f["path"]
        if roots:
            rel = next((r for r in (os.path.relpath(path, x) for x in roots)
                        if r != ".." and not r.startswith(".." + os.sep)), None)
            if rel is None:
                continue  # outside this node's dataset directory
            path = rel
        files[path] = (int(f.get("cached_bytes", 0)), int(f.get("size", 0)))
    return files, doc.get("totals", {}), errors


def ls_command(dataset, duet=None, cached_only=True, paths=()):
    cmd = [duet or os.environ.get("DUET", "duet"), "ls", "--json"]
    if cached_only:
        cmd.append("--cached-only")
    cmd += ["--dataset", dataset]
    cmd += list(paths)
    return cmd


def node_residency(dataset=None, root=None, duet=None, timeout=30.0,
                   subtree=None):
    """This node's residency for its dataset: a dict with "node" (host
    name), "dataset", "root", "files" ({key: cached_bytes}), "errors" and
    "query_s" (the time duet ls took). subtree (a key: relative to root,
    or absolute) narrows it to a directory or file of the dataset, so a
    batch over a part of a large dataset lists only that part. Raises
    DuetError."""
    dataset = dataset or os.environ.get("DUET_DATASET")
    if not dataset:
        raise DuetError("no dataset: set DUET_DATASET in the worker's "
                        "environment (or pass dataset=)")
    if root is None:
        root = os.environ.get("DUET_DATASET_DIR") or None
    paths = ()
    if subtree:
        if os.path.isabs(subtree):
            paths = (subtree,)
        elif root:
            paths = (os.path.join(root, subtree),)
    cmd = ls_command(dataset, duet, paths=paths)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DuetError(f"{cmd[0]} ls: {e}") from None
    took = time.monotonic() - t0
    if p.returncode != 0:
        msg = p.stderr.decode(errors="replace").strip()
        raise DuetError(f"{' '.join(cmd)}: exit {p.returncode}: {msg}")
    files, _, errors = parse_ls(p.stdout, root)
    return {"node": socket.gethostname(), "dataset": dataset, "root": root,
            "files": {k: c for k, (c, _) in files.items() if c > 0},
            "errors": errors, "query_s": took}
