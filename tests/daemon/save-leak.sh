#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Done marks and their save file never tell a client about a file it
# could not look up. User A registers the file system's root and marks
# done every inode number from 1 to 300 (gen 0), as a hostile client
# would, then saves its marks. B owns b/ (0700, files 0600). Before the
# fix the save file listed B's file names. Now: every mark naming a file
# A cannot open is refused, and the save file holds exactly the files and
# directories A can read (find, run as A), with none of B's names.
. "$LIBDIR/lib.sh"
setup 128

A=dsa$$ B=dsb$$
add_user $A
add_user $B
mkdir -m 0700 "$MNT/b"
mkdir -m 0755 "$MNT/pub"
for i in $(seq 1 12); do
	dd if=/dev/urandom of="$MNT/b/secret-$i" bs=4k count=2 status=none
	dd if=/dev/urandom of="$MNT/pub/f$i" bs=4k count=2 status=none
done
chmod 0600 "$MNT"/b/*
chmod 0644 "$MNT"/pub/*
chown -R $B "$MNT/b"
start_duetd -v

bg_client "$W/a" as $A "$DCLIENT" -X 1-300 -S "$W/a.save" -o "$W/a" -r "$W/a.ready" "$MNT"
APID=$CPID
wait_file "$W/a.ready" 120 $APID || die "A's task did not register: $(cat "$W/a.log")"
cat "$W/a.log"

check "the save file exists" [ -s "$W/a.save" ]
check "the save file names none of B's files" [ "$(grep -c secret "$W/a.save")" = 0 ]
# What A could look up itself: every name under $MNT that A can read.
as $A find "$MNT" -readable -printf '%i %P\n' 2>/dev/null | awk '$1 <= 300' |
	sort -n >"$W/readable"
# Save lines: "m DEV INO GEN FLAGS INDEX COUNT RELPATH" (the path
# relative to the root; no name here needs an escape).
awk '$1 == "m" { p = $8; sub(/^\//, "", p); print $3, p }' "$W/a.save" | sort -n >"$W/saved"
# The root itself is saved with an empty relative path.
awk '$2 != ""' "$W/readable" >"$W/readable.named"
awk '$2 != ""' "$W/saved" >"$W/saved.named"
check "the save file holds exactly what A can read" diff "$W/readable.named" "$W/saved.named"
dump_wait $APID "$W/a" 1 60 || die "A did not dump"
accepted=$(hdr "$W/a" xmarks)
check "marks accepted == files and directories A can read ($accepted)" \
	[ "$accepted" = "$(wc -l <"$W/readable")" ]
check "pub's 12 files are among them" [ "$(grep -c ' pub/f' "$W/saved")" = 12 ]
exit 0
