#!/bin/sh
# fsync after writing 256 pages: every page is cleaned for writeback
# (mm_filemap_clear_dirty_for_io) and its writeback ends
# (mm_filemap_writeback_end) exactly once, in the order dirty, clean, end.
. "$(dirname "$0")/lib/events.sh"
ev_require
f=$(ev_file fsync-writeback)
ev_start
pagetool write "$f" 0 256 || fail "write"
pagetool fsync "$f" || fail "fsync"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 0 255
ev_expect /tmp/ev clean 0 255
ev_expect /tmp/ev end 0 255
ev_expect /tmp/ev cancel 0 -1
ev_check_model /tmp/ev
ev_check_order /tmp/ev
rm -f "$f"
