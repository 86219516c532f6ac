#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An unprivileged worker learns only its visible files' residency: the
# worker runs as nobody; of two cached files, one lies in a directory
# only root may search. duet ls --dataset as root lists both; the
# worker's node_residency (through duetd, as nobody) only the other, and
# the placement prefers the worker for that one only. Needs root.
. "$(dirname "$0")/common.sh"
sim_require
trap sim_cleanup EXIT
trap 'exit 1' INT TERM HUP
sim_init || exit 1
sim_node 0 64 || exit 1
D=$SIM/n0/data
mkdir -m 0700 "$D/secret"
for f in open secret/hidden; do
	head -c 65536 /dev/urandom >"$D/$f" && chmod 0644 "$D/$f"
done
sync
sim_duetd 1 || exit 1
sim_scheduler || exit 1
WORKER_UID=65534 sim_worker 0 1
sim_wait_workers 1 || exit 1
sim_run "$PYTHON" "$CHECK" visibility "$SIM"
