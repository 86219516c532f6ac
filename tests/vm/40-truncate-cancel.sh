#!/bin/sh
# Truncating dirty pages leaves nothing dirty: every page dirtied and not
# cleaned for writeback gets mm_filemap_dirty_cancel, exactly once.
. "$(dirname "$0")/lib/events.sh"
ev_require

# Never written back: all 64 pages are cancelled.
f=$(ev_file truncate-all)
ev_start
pagetool write "$f" 0 64 || fail "write"
pagetool truncate "$f" 0 || fail "truncate"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 0 63
ev_expect /tmp/ev clean 0 -1
ev_expect /tmp/ev cancel 0 63
ev_check_model /tmp/ev
rm -f "$f"

# Written back, then pages 10..19 dirtied again: only those are cancelled,
# and a partial truncate to 16 pages cancels only 16..19.
f=$(ev_file truncate-some)
pagetool write "$f" 0 64 || fail "write"
pagetool fsync "$f" || fail "fsync"
ev_start
pagetool write "$f" 10 10 || fail "rewrite"
pagetool truncate "$f" 16 || fail "truncate to 16 pages"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 10 19
ev_expect /tmp/ev cancel 16 19
ev_expect /tmp/ev clean 0 -1
ev_start
pagetool truncate "$f" 0 || fail "truncate"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev cancel 10 15
ev_expect /tmp/ev dirty 0 -1
rm -f "$f"
