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
awk '{ s[$2] = s[$2] " " $1 } END { for (p in s) print p s[p] }' /tmp/ev |
	grep -v '^[0-9]* dirty clean end$' > /tmp/ev.order
[ -s /tmp/ev.order ] && fail "wrong per-page order: $(head -n 3 /tmp/ev.order)"
echo "ok: every page saw dirty, clean, end in that order"
rm -f "$f"
