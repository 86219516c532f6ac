#!/bin/sh
# Stores through a shared mapping dirty each touched page once (at the
# write fault); msync(MS_SYNC) then cleans and writes back exactly those
# pages, in the order dirty, clean, end.
. "$(dirname "$0")/lib/events.sh"
ev_require
f=$(ev_file mmap-msync)
pagetool truncate "$f" 32 || fail "create sparse file"
ev_start
pagetool mmapwrite "$f" 4 16 || fail "mmapwrite"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 4 19
ev_expect /tmp/ev clean 4 19
ev_expect /tmp/ev end 4 19
ev_expect /tmp/ev cancel 0 -1
ev_check_model /tmp/ev
ev_check_order /tmp/ev
rm -f "$f"
