#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duetd and clients of other protocol versions (libduet/proto.h,
# "Growth"; duetd(8), PROTOCOL). Raw clients (dproto.py) of minor 0, 1
# and 9 (the last with feature flags no daemon knows) each say HELLO,
# register a task, ask for its status, fetch and ask for the daemon's
# status: all are served, the welcome says the daemon's minor (1) and
# honours only the flags it knows, and every reply has the size of its
# first form, which a client of minor 0 needs. One of major 2 is refused
# with EPROTONOSUPPORT and a sentence. A client of minor 5 is told when
# a FETCH drained its task (DP_REPLY_DRAINED), one of minor 4 is not.
# Meanwhile libduet (dclient) works as always.
. "$LIBDIR/lib.sh"
setup 64
mkdir "$MNT/d"
dd if=/dev/urandom of="$MNT/d/f" bs=4k count=8 status=none
start_duetd -v
"$DCLIENT" -D -o "$W/c" -r "$W/c.ready" -q 300 "$MNT/d" >"$W/c.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
wait_file "$W/c.ready" 60 $CPID || die "libduet's client did not register: $(cat "$W/c.log")"

python3 "$DPROTO" "$SOCK" versions "$MNT/d" "$W/v.out" >"$W/v.log" 2>&1 ||
	die "dproto versions: $(cat "$W/v.log")"
cat "$W/v.out"
EPROTONOSUPPORT=$(python3 -c 'import errno; print(errno.EPROTONOSUPPORT)')
# The daemon's minor: the codec's (libduet/proto.h).
M=$(sed -n 's/^#define DP_MINOR[[:space:]]*\([0-9]*\).*/\1/p' "$LIBDIR/../../libduet/proto.h")
[ -n "$M" ] || die "no DP_MINOR in libduet/proto.h"
# welcome 32 bytes, minor $M, only STATUS_EXT honoured; TASK_NEW's 8,
# TASK_STATUS's 80, FETCH of 0 items empty; DAEMON_STATUS's extended
# parts only for the clients that asked and were honoured.
check "a client of minor 0 is served the first forms" \
	grep -q "^minor 0: welcome 32 minor $M features 0 task_new 0 8 status 0 80 fetch 0 0 daemon_status 0 " "$W/v.out"
ds() { sed -n "s/^minor $1: .* daemon_status 0 \([0-9]*\)$/\1/p" "$W/v.out"; }
check "a client of minor 0 gets DAEMON_STATUS without the extended parts" \
	[ "$(ds 0)" -lt "$(ds 1)" ]
check "a client of minor 1 is served" \
	grep -q "^minor 1: welcome 32 minor $M features 1 task_new 0 8 status 0 80 fetch 0 0 daemon_status 0 " "$W/v.out"
check "a client of minor 9 with unknown flags is served, the flags ignored" \
	grep -q "^minor 9: welcome 32 minor $M features 1 task_new 0 8 status 0 80 fetch 0 0 daemon_status 0 " "$W/v.out"
check "a client of major 2 is refused, and told why" \
	grep -q "^major 2: error -$EPROTONOSUPPORT duetd speaks protocol version 1, the client 2" "$W/v.out"
# DP_REPLY_DRAINED (minor 5): the reply that leaves nothing pending says
# so, to a client of minor 5 only (the field was reserved and 0).
python3 "$DPROTO" "$SOCK" drained "$MNT/d" "$W/dr.out" >"$W/dr.log" 2>&1 ||
	die "dproto drained: $(cat "$W/dr.log")"
cat "$W/dr.out"
check "a client of minor 4 gets no reply flags" grep -qE "^minor 4: flags( 0)+ last 0$" "$W/dr.out"
check "a client of minor 5 is told when a fetch drained its task" \
	grep -qE "^minor 5: flags( 0)* 1 last 0$" "$W/dr.out"
check "duetd is still running" kill -0 "$DPID"
check "libduet's client still gets its items" dump_wait $CPID "$W/c" 1 60
exit 0
