#!/bin/sh
# Run the ftrace selftest(s) shipped in kernel-tracepoints/selftest/ (copied
# to /duet/selftest by scripts/vm-test) with just enough of ftracetest's
# environment: the helper functions they call, "# requires:" checks, and
# a second run in a fresh instance for "# flags: instance".
. "$(dirname "$0")/lib/events.sh"
[ -d "$T/events" ] || skip "no tracefs at $T"
set -- /duet/selftest/*.tc
[ -e "$1" ] || skip "no selftests in /duet/selftest"
export FILEMAP_TEST_DIR=$MNT

# run_tc FILE DIR: 0 pass, 77 unsupported, else fail
run_tc() {
	(
		cd "$2" || exit 1
		exit_pass() { exit 0; }
		exit_fail() { exit 1; }
		exit_unresolved() { exit 1; }
		exit_untested() { exit 77; }
		exit_unsupported() { exit 77; }
		exit_xfail() { exit 1; }
		clear_trace() { echo > trace; }
		# ftracetest starts every test with tracing on (initialize_ftrace)
		echo 1 > tracing_on
		for r in $(sed -n 's/^# requires: //p' "$1"); do
			[ -e "$r" ] || { echo "requires $r"; exit_unsupported; }
		done
		. "$1"
	)
}

rc=0
for tc in "$@"; do
	run_tc "$tc" "$T"
	r=$?
	echo "${tc##*/} (top level): exit $r"
	[ $r -eq 0 ] || rc=$r
	if grep -q '^# flags:.*instance' "$tc"; then
		inst=$T/instances/duet-selftest
		mkdir "$inst" || fail "cannot create instance"
		run_tc "$tc" "$inst"
		r=$?
		rmdir "$inst" || fail "cannot remove instance"
		echo "${tc##*/} (instance): exit $r"
		[ $r -eq 0 ] || rc=$r
	fi
done
exit $rc
