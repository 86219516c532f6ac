#!/bin/sh
# After a file has been written back, dirtying one page again gives exactly
# one mm_filemap_dirty_folio for that page and nothing else; its fsync then
# cleans and writes back exactly that page.
. "$(dirname "$0")/lib/events.sh"
ev_require
f=$(ev_file redirty)
pagetool write "$f" 0 256 || fail "write"
pagetool fsync "$f" || fail "fsync"
ev_start
pagetool write "$f" 7 1 || fail "rewrite page 7"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 7 7
ev_expect /tmp/ev clean 0 -1
ev_expect /tmp/ev end 0 -1
ev_expect /tmp/ev cancel 0 -1
ev_start
pagetool fsync "$f" || fail "fsync"
ev_stop "$f" /tmp/ev
ev_expect /tmp/ev dirty 0 -1
ev_expect /tmp/ev clean 7 7
ev_expect /tmp/ev end 7 7
ev_expect /tmp/ev cancel 0 -1
rm -f "$f"
