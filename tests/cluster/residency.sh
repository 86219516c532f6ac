#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Residency figures against the kernel's (cachestat, and dresident of the
# daemon tests) on a known layout: a 200-page file with pages 0-9 and
# 100-109 cached is exactly 20 pages in duet ls --json (with --dataset,
# live from events, and on a PATH), --cached-only leaves out an uncached
# file, and a worker's node_residency reports the same, then follows one
# more page. Needs root.
. "$(dirname "$0")/common.sh"
cluster_up 1 1 200 layout cold
sim_run "$PYTHON" "$CHECK" residency "$SIM" "$CG"
