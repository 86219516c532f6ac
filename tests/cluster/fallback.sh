#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The placement is soft: with the preferred worker busy (4 tasks on its
# one thread) a task goes to the next worker by cached bytes; with the
# preferred worker killed after the submit the task completes on another
# worker; killed before the submit (placement from a snapshot taken while
# it lived) the task goes to the next by cached bytes. Needs root.
. "$(dirname "$0")/common.sh"
cluster_up 3 1 256 f0 f1 f2
sim_run "$PYTHON" "$CHECK" fallback "$SIM" "$CG" "${WORKER_PID[0]}"
