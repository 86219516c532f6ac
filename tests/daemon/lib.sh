# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the daemon tests (sourced). Every scenario gets a work
# directory, a loop-mounted ext4, a duetd on its own socket and test
# users; cleanup (trap on EXIT, INT, TERM) stops every process started,
# removes the users, unmounts, detaches the loop device and removes the
# tracing instances of the processes it killed, also on failure. A
# scenario that mounts more lists the mount points in EXTRA_MOUNTS
# (unmounted first, in that order) and may set CLEANUP_HOOK (a function
# run before anything else is cleaned up, e.g. to restore a sysctl).
# Environment (meson): DUETD DUET DCLIENT DRESIDENT DMARKS DREPLAY DPOLITE BUILD_ROOT
# STAGE_BINS.
# The programs test users run (dclient, duet) are staged into a directory
# every user can reach (tests/lib/stage-bins): the build tree may not be.

set -u
fails=0
PIDS=""
USERS=""
GROUPS_MADE=""
LOOP=""
MNT=""
DPID=""
DEAD_PIDS=""
EXTRA_MOUNTS=""
CLEANUP_HOOK=""

say() { echo "$(date +%T) $*"; }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
die() { echo "FAIL: $*" >&2; fails=$((fails + 1)); exit 1; }
check() {	# check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else fail "$what"; fi
}

require() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root (duetd reads the tracing ring buffer; loop devices, users)"
		exit 77
	fi
	if [ ! -d /sys/kernel/tracing/instances ]; then
		echo "SKIP: tracefs is not mounted at /sys/kernel/tracing"
		exit 77
	fi
	for t in useradd userdel losetup mkfs.ext4 setpriv python3; do
		command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }
	done
}

cleanup() {
	local rc=$? m
	set +e
	[ -n "$CLEANUP_HOOK" ] && $CLEANUP_HOOK
	for m in $EXTRA_MOUNTS; do
		mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
	done
	# Only our own children: a pid that exited (and was waited for) may
	# belong to anyone by now, e.g. another test run's client.
	local live=""
	for p in $PIDS; do
		[ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = $$ ] && live="$live $p"
	done
	for p in $live; do
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	for p in $live; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	DEAD_PIDS="$DEAD_PIDS $PIDS"
	wait 2>/dev/null
	for p in $DEAD_PIDS; do
		for i in /sys/kernel/tracing/instances/duet-"$p"-*; do
			[ -d "$i" ] && rmdir "$i"
		done
	done
	if [ -n "$MNT" ] && mountpoint -q "$MNT"; then
		umount "$MNT" || umount -l "$MNT"
	fi
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	# A process of a test user the test lost track of would keep userdel
	# from removing the user: end those too (only the test's own users,
	# and only in our root: a chroot beside us has its own passwd, whose
	# test users may have the same uids).
	local myroot
	myroot=$(stat -L -c %d:%i /proc/$$/root)
	for u in $USERS; do
		for p in $(ps -o pid= -u "$u" 2>/dev/null); do
			[ "$(stat -L -c %d:%i /proc/"$p"/root 2>/dev/null)" = "$myroot" ] &&
				kill -KILL "$p" 2>/dev/null
		done
	done
	for u in $USERS; do
		for _ in $(seq 20); do userdel "$u" 2>/dev/null && break; sleep 0.1; done
	done
	for g in $GROUPS_MADE; do groupdel "$g" 2>/dev/null; done
	[ -n "${KEEP_W:-}" ] && [ $fails -gt 0 ] && cp -r "$W" "$KEEP_W"
	[ -n "${W:-}" ] && rm -rf "$W"
	[ -n "${STAGE:-}" ] && rm -rf "$STAGE"
	if [ $rc = 0 ] && [ $fails -gt 0 ]; then rc=1; fi
	[ $rc = 0 ] && echo "PASS" || echo "FAILED ($fails failures, exit $rc)"
	exit $rc
}

setup() {	# setup SIZE_MB: work dir W, $FS (ext4: mkfs.ext4 $MKFS_ARGS) at $MNT, socket $SOCK
	require
	trap cleanup EXIT
	trap 'exit 1' INT TERM HUP
	W=$(mktemp -d /tmp/duet-daemon.XXXXXX)
	chmod 1777 "$W"	# clients of test users write their dumps here
	truncate -s "${1:-256}M" "$W/img"
	case ${FS:-ext4} in
	ext4) mkfs.ext4 -q -F ${MKFS_ARGS:-} "$W/img" || die "mkfs.ext4" ;;
	xfs) mkfs.xfs -q -f "$W/img" || die "mkfs.xfs" ;;
	btrfs) mkfs.btrfs -q -f "$W/img" >/dev/null || die "mkfs.btrfs" ;;
	*) die "FS=$FS: ext4, xfs or btrfs" ;;
	esac
	LOOP=$(losetup -f --show "$W/img") || die "losetup"
	MNT=$W/mnt
	mkdir "$MNT"
	mount "$LOOP" "$MNT" || die "mount"
	chmod 0755 "$MNT"
	SOCK=$W/duetd.sock
	export DUET_SOCKET=$SOCK
	STAGE=$("$STAGE_BINS" "$BUILD_ROOT" "$DCLIENT" "$DUET" ${DMARKS:+"$DMARKS"} \
		${DREPLAY:+"$DREPLAY"} ${DPOLITE:+"$DPOLITE"}) ||
		die "stage-bins"
	DCLIENT=$STAGE/${DCLIENT#"$BUILD_ROOT"/}
	DUET=$STAGE/${DUET#"$BUILD_ROOT"/}
	[ -n "${DMARKS:-}" ] && DMARKS=$STAGE/${DMARKS#"$BUILD_ROOT"/}
	[ -n "${DREPLAY:-}" ] && DREPLAY=$STAGE/${DREPLAY#"$BUILD_ROOT"/}
	[ -n "${DPOLITE:-}" ] && DPOLITE=$STAGE/${DPOLITE#"$BUILD_ROOT"/}
	# The raw protocol client (dproto.py), where test users can read it.
	DPROTO=$STAGE/dproto.py
	cp "$LIBDIR/dproto.py" "$DPROTO" && chmod 0644 "$DPROTO" || die "staging dproto.py"
}

# start_duetd [ARGS]: DPID, log in $W/duetd.log (appended). DUETD_BACKEND
# (meson's *-perf tests) chooses duetd's event source.
start_duetd() {
	"$DUETD" -s "$SOCK" ${DUETD_BACKEND:+--backend "$DUETD_BACKEND"} "$@" >>"$W/duetd.log" 2>&1 &
	DPID=$!
	PIDS="$PIDS $DPID"
	for _ in $(seq 100); do
		"$DUET" status --socket "$SOCK" --json 2>/dev/null | grep -q "\"pid\":$DPID" && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$W/duetd.log" >&2
	die "duetd did not start"
}

add_user() {	# add_user NAME [GROUPS]
	useradd -M -N -s /usr/sbin/nologin ${2:+-G "$2"} "$1" || die "useradd $1"
	USERS="$USERS $1"
}

add_group() {
	groupadd "$1" || die "groupadd $1"
	GROUPS_MADE="$GROUPS_MADE $1"
}

# as USER CMD...: run as USER (its groups), with DUET_SOCKET
# (In bg_client, AS_EXEC=1: the background job becomes the client itself,
# so its pid is the client's and signals reach it.)
as() {
	local u=$1
	shift
	# meson test points LD_LIBRARY_PATH into the build tree; another user
	# may not reach it, and glibc then fails to load even libc. The staged
	# programs find libduet through their RUNPATH.
	# Nor may it reach the directory meson runs the test in (a checkout
	# under /root): the program starts in / instead (paths are absolute).
	if [ -n "${AS_EXEC:-}" ]; then
		cd / || exit 1
		exec env -u LD_LIBRARY_PATH setpriv --reuid="$u" --regid="$(id -g "$u")" \
			--init-groups env DUET_SOCKET="$SOCK" "$@"
	fi
	(cd / && exec env -u LD_LIBRARY_PATH setpriv --reuid="$u" --regid="$(id -g "$u")" \
		--init-groups env DUET_SOCKET="$SOCK" "$@")
}

# bg_client OUT [dclient args...]: a dclient in the background (CPID)
bg_client() {
	local out=$1
	shift
	AS_EXEC=1 "$@" >"$out.log" 2>&1 &
	CPID=$!
	PIDS="$PIDS $CPID"
}

wait_file() {	# wait_file FILE SECONDS [PID: give up when it exits]
	local n=$(($2 * 10))
	while [ ! -e "$1" ] && [ $n -gt 0 ]; do
		[ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && break
		sleep 0.1
		n=$((n - 1))
	done
	[ -e "$1" ]
}

# dump_wait PID FILE N SECONDS: SIGUSR1 to PID; wait for FILE's dump >= N
dump_wait() {
	local n=$(($4 * 10))
	kill -USR1 "$1"
	while [ $n -gt 0 ]; do
		if [ -e "$2" ] && [ "$(head -1 "$2" | sed -n 's/.*dump=\([0-9]*\).*/\1/p')" -ge "$3" ] 2>/dev/null; then
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

hdr() {	# hdr FILE KEY: a value from a dump's header line
	head -1 "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# DEV INO RANGES of the files that still have a name: the pages of a file
# deleted under the task are not reported as they leave the cache (the
# file has no name under the directory any more: libduet(3)).
view() { grep -v '^#' "$1" | awk '$5 != "?"' | cut -d' ' -f1-3; }
res_under() {	# res_under RESFILE DIR: residency lines of files under DIR
	awk -v d="$2/" 'index($4, d) == 1 { print $1, $2, $3 }' "$1"
}

# same_view WHAT DUMP EXPECTED_FILE(DEV INO RANGES lines): diff on failure
same_view() {
	if diff <(view "$2") "$3" >"$W/diff" 2>&1; then
		return 0
	fi
	echo "$1: view differs from the page cache (< client, > page cache):" >&2
	grep '^[<>]' "$W/diff" | sort -k3,3n -k2 | head -40 >&2
	return 1
}

# stable_residency OUTFILE DIR... : run CMD (a function: "$SNAP_CMD")
# between two residency snapshots until both agree (DAMON may evict
# meanwhile); OUTFILE gets the agreed snapshot. Returns 1 after 6 tries.
settle() {
	local out=$1
	shift
	for try in 1 2 3 4 5 6; do
		"$DRESIDENT" "$@" >"$W/res1"
		$SNAP_CMD || return 2
		"$DRESIDENT" "$@" >"$W/res2"
		if cmp -s "$W/res1" "$W/res2"; then
			cp "$W/res1" "$out"
			return 0
		fi
		say "page cache changed during the dump (try $try); again"
	done
	return 1
}

# bracket DIR: residency before ($W/res1) and after ($W/res2) one run of
# $SNAP_CMD. With DAMON's pageout evicting idle pages meanwhile, the
# client's view, drained during the dump, lies between the two.
bracket() {
	"$DRESIDENT" "$@" >"$W/res1"
	$SNAP_CMD || return 2
	"$DRESIDENT" "$@" >"$W/res2"
}

# between WHAT VIEW_LINES RES1_LINES RES2_LINES (DEV INO RANGES):
# RES2 <= VIEW <= RES1 page by page, for every file. A page the view holds
# that was not cached before the dump is a missed REMOVED; a page cached
# after it that the view lacks is a missed ADDED.
between() {
	python3 - "$@" <<'EOF'
import sys
what, vf, r1f, r2f = sys.argv[1:5]
def load(fn):
    d = {}
    for line in open(fn):
        f = line.split()
        if len(f) < 3 or f[0].startswith("#"):
            continue
        s = set()
        for r in f[2].split(","):
            a, _, b = r.partition("-")
            s.update(range(int(a), int(b or a) + 1))
        d[(f[0], f[1])] = s
    return d
v, r1, r2 = load(vf), load(r1f), load(r2f)
bad = 0
for k in sorted(set(v) | set(r1) | set(r2)):
    vs, a, b = v.get(k, set()), r1.get(k, set()), r2.get(k, set())
    if not (b <= vs <= a):
        bad += 1
        if bad <= 5:
            print(f"{what}: {k[0]} {k[1]}: view has {len(vs)} pages; "
                  f"{len(vs - a)} not cached before the dump, {len(b - vs)} cached after it missing",
                  file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# view_ok WHAT DUMP DIR...: after bracket, the dump's view of the files
# under the DIRs lies between the residency before and after the dump.
# view_settles WHAT DUMP DIR: up to three bracketed dumps until WHAT's view
# of DIR equals the page cache (DAMON may evict during a dump); 0 if one did
view_settles() {
	local attempt
	for attempt in 1 2 3; do
		bracket "$3" || die "the client did not dump"
		view_ok "$1" "$2" "$3" 2>"$W/why" && return 0
		say "dump $attempt: the view is off; again (DAMON may evict during a dump)"
		head -5 "$W/why"
	done
	return 1
}

view_ok() {
	local what=$1 dump=$2 d
	shift 2
	: >"$W/vo.r1"
	: >"$W/vo.r2"
	for d in "$@"; do
		res_under "$W/res1" "$d" >>"$W/vo.r1"
		res_under "$W/res2" "$d" >>"$W/vo.r2"
	done
	view "$dump" >"$W/vo.v"
	between "$what" "$W/vo.v" "$W/vo.r1" "$W/vo.r2"
}
