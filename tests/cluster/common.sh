# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the cluster tests (sourced): N simulated nodes of
# integrations/dask/sim/lib.sh with FILES (PAGES pages each) in every
# node's dataset, then duetd, the scheduler and one worker per node.
# sim_cleanup (on EXIT) removes everything, also on failure.
. "$(dirname "${BASH_SOURCE[0]}")/../../integrations/dask/sim/lib.sh"
CHECK=$(dirname "${BASH_SOURCE[0]}")/check.py

cluster_up() {	# cluster_up NODES NTHREADS PAGES FILE...
	local n=$1 nt=$2 pages=$3 i
	shift 3
	sim_require
	trap sim_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	sim_init || exit 1
	for ((i = 0; i < n; i++)); do sim_node "$i" 64 || exit 1; done
	sim_run "$PYTHON" "$CHECK" make "$SIM" "$n" "$pages" "$@" || exit 1
	sim_duetd "$n" || exit 1
	sim_scheduler || exit 1
	for ((i = 0; i < n; i++)); do sim_worker "$i" "$nt"; done
	sim_wait_workers "$n" || exit 1
}
