#!/bin/sh
# Each tool has a man page, installed by tools/meson.build, with the
# usual sections, naming every long option the tool's --help names, and
# groff renders it without a warning.
# Usage: check-manpages.sh TOOLS_DIR TOOL_BINARY...
# Exit 0 (pass), 1 (fail), 77 (skip: no groff).
set -u
dir=${1:?usage: check-manpages.sh TOOLS_DIR TOOL...}
shift
fail=0
err() {
	echo "FAIL: $*" >&2
	fail=1
}
command -v groff >/dev/null 2>&1 || { echo "skip: groff missing (Debian: groff-base)"; exit 77; }
for exe in "$@"; do
	name=$(basename "$exe")
	page=$dir/man/$name.1
	[ -f "$page" ] || { err "$name has no page $page"; continue; }
	grep -q "'man/$name.1'" "$dir/meson.build" || err "$name.1 is not installed by $dir/meson.build"
	grep -q '^\.TH [A-Z-]* 1 [0-9-]* "duet 0\.1\.0" ' "$page" || err "$name.1: bad .TH line"
	for sec in NAME SYNOPSIS DESCRIPTION 'EXIT STATUS' 'SEE ALSO'; do
		grep -q "^\\.SH \"*$sec\"*\$" "$page" || err "$name.1: no $sec section"
	done
	for opt in $("$exe" --help | grep -o -- '--[a-z-]*' | sort -u); do
		esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
		grep -q -- "$esc" "$page" || err "$name.1 does not document $opt"
	done
	out=$(groff -man -ww -z "$page" 2>&1)
	[ -z "$out" ] || err "$name.1: groff warns: $out"
done
[ $fail = 0 ] || exit 1
echo "ok: $# pages render and document every option"
