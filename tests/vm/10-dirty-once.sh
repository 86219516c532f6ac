#!/bin/sh
# 256 pages written with 4 KiB writes: mm_filemap_dirty_folio fires exactly
# once for each of pages 0..255, and writing them all again while they are
# still dirty fires nothing (transitions only). No page is cleaned yet.
. "$(dirname "$0")/lib/events.sh"
ev_require
f=$(ev_file dirty-once)
ev_start
pagetool write "$f" 0 256 || fail "write"
pagetool write "$f" 0 256 || fail "rewrite"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 0 255
ev_expect /tmp/ev clean 0 -1
ev_expect /tmp/ev end 0 -1
ev_expect /tmp/ev cancel 0 -1
ev_model /tmp/ev || fail "event sequence violates the state machine"
[ "$(wc -l < /tmp/ev.left)" -eq 256 ] || fail "expected 256 dirty pages"
rm -f "$f"
