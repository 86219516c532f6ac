# SPDX-License-Identifier: LGPL-2.1-or-later
# Simulated cluster nodes on one machine (sourced by scripts/bench-cluster
# and tests/cluster/*.sh). A node is: an ext4 image on its own loop device
# (direct I/O, so the image's own page cache never hides device reads),
# mounted at $SIM/nI, its dataset copy in $SIM/nI/data, and a memory cgroup
# $CG/nI (its page-cache budget) holding its Dask worker. One duetd serves
# every node's dataset (--dataset nI=$SIM/nI/data); one dask-scheduler.
# Everything listens on 127.0.0.1 only. sim_cleanup (trap it on EXIT) stops
# the processes it started, unmounts, detaches the loop devices and removes
# the cgroups and the work directory, also on failure.
# Environment: DUETD, DUET (programs; default the build tree's), PYTHON.
# Needs root; sim_require exits 77 (skip) with a reason otherwise.

SIM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
export DUETD=${DUETD:-$SIM_ROOT/build/duetd/duetd}
export DUET=${DUET:-$SIM_ROOT/build/cli/duet}
export PYTHONPATH=$SIM_ROOT/integrations/dask${PYTHONPATH:+:$PYTHONPATH}
SIM=""
CG=""
CG_FILE=""		# memory.max (v2) or memory.limit_in_bytes (v1)
SIM_PIDS=""
SIM_LOOPS=""
SIM_MOUNTS=""
SIM_CGS=""
SIM_DUETD=""
SIM_STAGE=""		# what an unprivileged worker runs, where it can reach it
declare -A WORKER_PID

sim_require() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root (loop devices, cgroups, duetd's ring buffer)"
		exit 77
	fi
	"$PYTHON" -c 'import distributed' 2>/dev/null || {
		echo "SKIP: $PYTHON has no dask.distributed (python3-distributed)"
		exit 77
	}
	for t in losetup mkfs.ext4 dask-scheduler dask-worker; do
		command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }
	done
	[ -x "$DUETD" ] && [ -x "$DUET" ] || {
		echo "SKIP: $DUETD or $DUET not built (scripts/setup)"
		exit 77
	}
}

sim_cleanup() {
	set +e
	local p m l c
	[ -n "$SIM_STAGE" ] && rm -rf "$SIM_STAGE"
	for p in $SIM_PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $SIM_PIDS; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	{ wait; } 2>/dev/null
	for p in $SIM_DUETD; do
		for i in /sys/kernel/tracing/instances/duet-"$p"-*; do
			[ -d "$i" ] && rmdir "$i"
		done
	done
	# A daemon's file-system marks are dropped by the kernel a little
	# after it exits (tens of thousands of them: seconds), and until then
	# the mount is busy: retry before unmounting lazily.
	for m in $SIM_MOUNTS; do
		for _ in $(seq 50); do
			mountpoint -q "$m" || break
			umount "$m" 2>/dev/null && break
			sleep 0.2
		done
		mountpoint -q "$m" && umount -l "$m"
	done
	for l in $SIM_LOOPS; do
		for _ in $(seq 25); do losetup -d "$l" 2>/dev/null && break; sleep 0.2; done
	done
	for c in $SIM_CGS; do
		# a process left in it (there should be none) goes back up
		[ -d "$c" ] || continue
		for p in $(cat "$c/cgroup.procs" 2>/dev/null); do
			echo "$p" >"$(dirname "$c")/cgroup.procs" 2>/dev/null
		done
		rmdir "$c"
	done
	[ -n "$SIM" ] && rm -rf "$SIM"
}

# sim_init: the work directory $SIM and the parent cgroup $CG. cgroup v2
# if its memory controller is enabled there, else the v1 memory hierarchy
# (this kind of machine mounts memory as v1); below our own cgroup.
sim_init() {
	SIM=$(mktemp -d /tmp/duet-sim.XXXXXX)
	chmod 0755 "$SIM"
	local own
	if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		own=$(sed -n 's/^0:://p' /proc/self/cgroup)
		CG=/sys/fs/cgroup${own%/}/duet-sim-$$
		CG_FILE=memory.max
		mkdir "$CG" || return 1
		SIM_CGS="$CG"
		echo +memory >"$CG/cgroup.subtree_control" || return 1
	else
		own=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
		CG=/sys/fs/cgroup/memory${own%/}/duet-sim-$$
		CG_FILE=memory.limit_in_bytes
		mkdir "$CG" || return 1
		SIM_CGS="$CG"
	fi
}

# sim_node I SIZE_MB: node I's image, loop device, mount and cgroup.
# Sets LOOP_OF[I] (e.g. loop3).
declare -A LOOP_OF
sim_node() {
	local i=$1 img=$SIM/n$1.img loop
	truncate -s "${2}M" "$img"
	mkfs.ext4 -q -F ${MKFS_ARGS:-} "$img" || return 1
	loop=$(losetup --direct-io=on -f --show "$img") || return 1
	SIM_LOOPS="$loop $SIM_LOOPS"
	mkdir -p "$SIM/n$i"
	mount "$loop" "$SIM/n$i" || return 1
	SIM_MOUNTS="$SIM/n$i $SIM_MOUNTS"
	mkdir -p "$SIM/n$i/data"
	mkdir "$CG/n$i" || return 1
	SIM_CGS="$CG/n$i $SIM_CGS"
	LOOP_OF[$i]=${loop#/dev/}
	[ "$(cat "/sys/block/${loop#/dev/}/loop/dio" 2>/dev/null)" = 1 ] ||
		echo "note: $loop has no direct I/O (the file system under $SIM refuses it): device reads may be served by the image's page cache" >&2
}

# sim_duetd N: one duetd with datasets n0..n(N-1); DUET_SOCKET exported.
sim_duetd() {
	local n=$1 i args=()
	export DUET_SOCKET=$SIM/duetd.sock
	for ((i = 0; i < n; i++)); do args+=(--dataset "n$i=$SIM/n$i/data"); done
	"$DUETD" --socket "$DUET_SOCKET" "${args[@]}" >>"$SIM/duetd.log" 2>&1 &
	SIM_DUETD=$!
	SIM_PIDS="$SIM_PIDS $!"
	for _ in $(seq 100); do
		[ -S "$DUET_SOCKET" ] && "$DUET" status --socket "$DUET_SOCKET" --json \
			2>/dev/null | grep -q "\"pid\":$SIM_DUETD" && return 0
		kill -0 "$SIM_DUETD" 2>/dev/null || break
		sleep 0.1
	done
	cat "$SIM/duetd.log" >&2
	echo "duetd did not start" >&2
	return 1
}

sim_scheduler() {
	dask-scheduler --host 127.0.0.1 --port 0 --no-dashboard \
		--scheduler-file "$SIM/scheduler.json" >>"$SIM/scheduler.log" 2>&1 &
	SIM_PIDS="$SIM_PIDS $!"
	for _ in $(seq 200); do
		[ -s "$SIM/scheduler.json" ] && return 0
		sleep 0.1
	done
	cat "$SIM/scheduler.log" >&2
	echo "dask-scheduler did not start" >&2
	return 1
}

# sim_worker I [NTHREADS]: node I's worker, started inside its cgroup,
# with the node's dataset in its environment. WORKER_PID[I]. With
# WORKER_UID set, the worker runs as that user (and group), unprivileged.
sim_worker() {
	local i=$1 as=()
	mkdir -p "$SIM/w$i"
	local duet=$DUET pypath=$PYTHONPATH
	if [ -n "${WORKER_UID:-}" ]; then
		chown "$WORKER_UID:$WORKER_UID" "$SIM/w$i"
		# The checkout may be out of another user's reach (under /root,
		# or a mode 0700 directory): the worker gets its own copies of
		# duet_dask and of duet (with libduet, tests/lib/stage-bins).
		if [ -z "$SIM_STAGE" ]; then
			SIM_STAGE=$("$SIM_ROOT/tests/lib/stage-bins" "$(dirname "$(dirname "$DUET")")" \
				"$DUET") || return 1
			cp -r "$SIM_ROOT/integrations/dask/duet_dask" "$SIM_STAGE/" &&
				chmod -R a+rX "$SIM_STAGE" || return 1
		fi
		duet=$SIM_STAGE/${DUET#"$(dirname "$(dirname "$DUET")")"/}
		pypath=$SIM_STAGE
		as=(setpriv --reuid="$WORKER_UID" --regid="$WORKER_UID" --clear-groups
			env -C / -u LD_LIBRARY_PATH HOME="$SIM/w$i" PYTHONPATH="$pypath")
	fi
	DUET_DATASET=n$i DUET_DATASET_DIR=$SIM/n$i/data DUET=$duet \
		sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG/n$i" \
		"${as[@]}" dask-worker --scheduler-file "$SIM/scheduler.json" --host 127.0.0.1 \
		--nthreads "${2:-1}" --no-nanny --memory-limit 0 --no-dashboard \
		--name "n$i" --local-directory "$SIM/w$i" \
		>>"$SIM/worker$i.log" 2>&1 &
	WORKER_PID[$i]=$!
	disown $!	# killed on purpose by tests: no "Killed" line
	SIM_PIDS="$SIM_PIDS $!"
}

# sim_wait_workers N: until the scheduler has N workers.
sim_wait_workers() {
	"$PYTHON" - "$SIM/scheduler.json" "$1" <<'PY' || { tail -n 20 "$SIM"/worker*.log >&2; return 1; }
import sys
from distributed import Client
with Client(scheduler_file=sys.argv[1], timeout=30) as c:
	c.wait_for_workers(int(sys.argv[2]), timeout=60)
PY
}

# sim_run COMMAND...: COMMAND in the background, waited for, its status
# returned. A signal to the script then ends the wait at once, and
# sim_cleanup stops COMMAND with the rest (bash runs a trap only after a
# foreground command has finished).
sim_run() {
	"$@" &
	local p=$!
	SIM_PIDS="$p $SIM_PIDS"
	wait "$p"
}

# sim_budget I MB: node I's page-cache budget: its cgroup's limit is what
# its worker uses now plus MB.
sim_budget() {
	local c=$CG/n$1 used
	if [ "$CG_FILE" = memory.max ]; then used=$(cat "$c/memory.current")
	else used=$(cat "$c/memory.usage_in_bytes"); fi
	echo $((used + $2 * 1048576)) >"$c/$CG_FILE"
}
