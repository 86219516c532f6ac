# SPDX-License-Identifier: LGPL-2.1-or-later
"""duet for Dask: run a task that reads a dataset file on the worker whose
node has most of that file in its page cache (see docs/cluster.md).

The one-line change::

        futures = client.map(process, files)            # before
        futures = duet_dask.map(client, process, files)  # after

Workers need DUET_DATASET (the dataset's name in the node's duetd) in
their environment, DUET_SOCKET if duetd is not on its default socket,
and DUET_DATASET_DIR where each node has its copy under its own path.
"""
from .placement import Placer, map, placer, submit
from .residency import DuetError, node_residency, parse_ls

# map and submit are meant as duet_dask.map and duet_dask.submit: left out
# of __all__ so that a star import does not shadow the builtin map.
__all__ = ["Placer", "placer", "node_residency", "parse_ls", "DuetError"]
