#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# DP_REPLY_DRAINED through libduet (tests/daemon/ddrain.c): after a fetch
# that drained its task, libduet answers the next fetch itself only while
# no READY has come: once the fd is readable again, the next fetch gets
# the new pages. 20 rounds on a task of a loop file system's directory.
. "$LIBDIR/lib.sh"
setup 64
mkdir "$MNT/d"
start_duetd -v
check "a fetch right after a drain never hides new items" "$DDRAIN" "$MNT/d" 20
check "duetd is still running" kill -0 "$DPID"
exit 0
