#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Each task goes to the node that caches most of its file when that node
# is free: 3 nodes (2 threads each, 2 tasks each), six 1 MiB files cached
# wholly or in part on one or more nodes; per file, the worker that ran
# it is the one caching most of it; then the caches are rotated and the
# placement follows. Real scheduler, workers, duetd; needs root.
. "$(dirname "$0")/common.sh"
cluster_up 3 2 256 f0 f1 f2 f3 f4 f5
sim_run "$PYTHON" "$CHECK" placement "$SIM" "$CG"
