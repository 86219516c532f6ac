# Helpers for the VM tests, sourced by tests/vm/*.sh inside the guest
# (busybox sh). Tests exit 0 (pass), 1 (fail) or 77 (skip).
#
# Events are read back from the tracefs "trace" file and reduced to lines
#   <event> <page index>
# one per page (a folio of order n covers 1 << n pages), filtered on the
# device and inode of the file under test. Only the short event name is
# kept: dirty, clean (mm_filemap_clear_dirty_for_io), end
# (mm_filemap_writeback_end), cancel (mm_filemap_dirty_cancel).

T=${TRACEFS:-/sys/kernel/tracing}
MNT=${VMTEST_MNT:-/mnt}
EVENTS="mm_filemap_dirty_folio mm_filemap_clear_dirty_for_io
	mm_filemap_writeback_end mm_filemap_dirty_cancel"

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

ev_require() {
	[ -d "$T/events" ] || skip "no tracefs at $T"
	for e in $EVENTS; do
		[ -d "$T/events/filemap/$e" ] ||
			skip "kernel lacks filemap/$e (not patched)"
	done
}

# Start a fresh capture of the four events.
ev_start() {
	echo 0 > "$T/tracing_on"
	echo > "$T/set_event"
	for e in $EVENTS; do
		echo 1 > "$T/events/filemap/$e/enable" || fail "enable $e"
	done
	echo > "$T/trace"
	echo 1 > "$T/tracing_on"
}

# Stop the capture and reduce it to "<event> <index>" lines for FILE,
# in trace order, into the file named by $2.
ev_stop() {
	echo 0 > "$T/tracing_on"
	for e in $EVENTS; do
		echo 0 > "$T/events/filemap/$e/enable"
	done
	# Event fields print as "dev MAJ:MIN ino HEX pfn=.. ofs=BYTES order=N".
	d=$(stat -c %d "$1")
	ino=$(printf '%x' "$(stat -c %i "$1")")
	maj=$(( (d >> 8) & 0xfff ))
	min=$(( (d & 0xff) | ((d >> 12) & 0xfff00) ))
	if grep -q 'LOST.*EVENTS' "$T/trace"; then
		fail "ring buffer overrun: events lost"
	fi
	awk -v dev="$maj:$min" -v ino="$ino" '
	{
		name = ""
		for (i = 1; i <= NF; i++)
			if ($i ~ /^mm_filemap_[a-z_]+:$/) {
				name = substr($i, 1, length($i) - 1)
				break
			}
		if (name == "" || $(i + 2) != dev || $(i + 4) != ino)
			next
		ofs = ""; order = 0
		for (j = i + 5; j <= NF; j++) {
			if ($j ~ /^ofs=/) ofs = substr($j, 5)
			if ($j ~ /^order=/) order = substr($j, 7)
		}
		if (name == "mm_filemap_dirty_folio") s = "dirty"
		else if (name == "mm_filemap_clear_dirty_for_io") s = "clean"
		else if (name == "mm_filemap_writeback_end") s = "end"
		else if (name == "mm_filemap_dirty_cancel") s = "cancel"
		else next
		idx = int(ofs / 4096)
		n = 1	# busybox awk may lack "^": 1 << order by hand
		for (k = 0; k < order; k++)
			n *= 2
		for (k = 0; k < n; k++)
			print s, idx + k
	}' "$T/trace" > "$2"
}

# ev_pages EVLOG EVENT: the page indices of EVENT, sorted, one a line,
# duplicates kept.
ev_pages() {
	awk -v e="$2" '$1 == e { print $2 }' "$1" | sort -n
}

# ev_expect EVLOG EVENT FIRST LAST: EVENT fired exactly once for each page
# FIRST..LAST and for no other page. LAST < FIRST means "never".
ev_expect() {
	ev_pages "$1" "$2" > "$1.got"
	if [ "$4" -ge "$3" ]; then
		seq "$3" "$4" > "$1.want"
	else
		: > "$1.want"
	fi
	if ! cmp -s "$1.got" "$1.want"; then
		echo "event $2: want pages $3..$4 once each, got" \
			"$(wc -l < "$1.got") events:"
		diff "$1.want" "$1.got" | head -n 20
		fail "$2 pages differ"
	fi
	echo "ok: $2 exactly pages $3..$4"
}

# ev_model EVLOG: replay the events page by page and check that they form
# the documented state machine: dirty only on a clean page, clean and
# cancel only on a dirty one, end only after a clean. Writes the pages left
# dirty, one a line, to EVLOG.left; returns 1 after printing violations.
ev_model() {
	awk '
	function bad(what) { print "violation: " what " page " p; nbad++ }
	{
		p = $2
		if ($1 == "dirty") {
			if (d[p]) bad("dirty of dirty")
			d[p] = 1
		} else if ($1 == "clean") {
			if (!d[p]) bad("clean of clean")
			d[p] = 0; wb[p]++
		} else if ($1 == "cancel") {
			if (!d[p]) bad("cancel of clean")
			d[p] = 0
		} else if ($1 == "end") {
			if (!wb[p]) bad("end without clean of")
			else wb[p]--
		}
	}
	END {
		for (p in d)
			if (d[p])
				print "left " p
	}' "$1" > "$1.model"
	awk '$1 == "left" { print $2 }' "$1.model" | sort -n > "$1.left"
	if grep -q '^violation' "$1.model"; then
		grep '^violation' "$1.model" | head -n 20
		return 1
	fi
	return 0
}

# ev_check_model EVLOG: the state machine holds and no page is left dirty.
ev_check_model() {
	ev_model "$1" || fail "event sequence violates the state machine"
	[ -s "$1.left" ] && fail "pages left dirty: $(head -n 20 "$1.left" | tr '\n' ' ')"
	echo "ok: event sequence consistent, nothing left dirty"
}

# A fresh file name on the test file system. No sync here: sync(2) also
# queues background writeback that can still be running when it returns
# and would then write back pages of the next test's file.
ev_file() {
	f="$MNT/$1"
	rm -f "$f"
	echo "$f"
}

# ev_check_order FILE: for every page, the events were dirty, clean, end.
ev_check_order() {
	awk '{ s[$2] = s[$2] " " $1 } END { for (p in s) print p s[p] }' "$1" |
		grep -v '^[0-9]* dirty clean end$' > "$1.order"
	[ -s "$1.order" ] && fail "wrong per-page order: $(head -n 3 "$1.order")"
	echo "ok: every page saw dirty, clean, end in that order"
}
