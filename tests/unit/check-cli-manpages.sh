#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The duet program's man pages (cli/man): duet(1) and one duet-CMD(1) per
# command that 'duet --help' lists, each installed by cli/meson.build,
# with the usual sections; groff renders every page without a warning
# (-ww); every long option a command's --help prints is in its page, and
# every option the page's OPTIONS section describes is one --help names.
# usage: check-cli-manpages.sh DUET CLI_DIR
# Exit 0 (pass), 1 (fail), 77 (skip: no groff).
set -u
duet=${1:?usage: check-cli-manpages.sh DUET CLI_DIR}
dir=${2:?usage: check-cli-manpages.sh DUET CLI_DIR}
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff missing (Debian: groff-base)"; exit 77; }
fail=0
err() {
	echo "FAIL: $*" >&2
	fail=1
}

# The page's OPTIONS section: from ".SH OPTIONS" to the next ".SH".
options_of() {
	sed -n '/^\.SH OPTIONS$/,/^\.SH /p' "$1"
}

cmds=$("$duet" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p; s/^  \([a-z][a-z]*\)$/\1/p')
[ -n "$cmds" ] || err "duet --help lists no command"
pages=duet
for c in $cmds; do
	pages="$pages duet-$c"
	grep -q "^\.BR duet\\\\-$c (1)" "$dir/man/duet.1" || err "duet.1 does not refer to duet-$c(1)"
done
n=0
for name in $pages; do
	page=$dir/man/$name.1
	[ -f "$page" ] || { err "$name has no page $page"; continue; }
	n=$((n + 1))
	grep -q "'man/$name.1'" "$dir/meson.build" || err "$name.1 is not installed by $dir/meson.build"
	upper=$(echo "$name" | tr a-z A-Z)
	grep -q "^\.TH $upper 1 [0-9-]* \"duet 0\.1\.0\" \"duet Manual\"$" "$page" ||
		err "$name.1: bad .TH line"
	for sec in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' 'SEE ALSO'; do
		grep -q "^\\.SH \"*$sec\"*\$" "$page" || err "$name.1: no $sec section"
	done
	out=$(groff -ww -man -Tutf8 "$page" 2>&1 >/dev/null)
	[ -z "$out" ] || err "$name.1: groff warns: $out"
	[ "$name" = duet ] && continue
	cmd=${name#duet-}
	help=$("$duet" "$cmd" --help) || { err "duet $cmd --help failed"; continue; }
	for opt in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
		options_of "$page" | grep -q -- "$esc" || err "$name.1: OPTIONS does not describe $opt"
	done
	# Each option the page describes (a .TP head) is one --help names.
	for opt in $(options_of "$page" | grep -A1 '^\.TP$' | grep -o -- '\\-\\-[a-z\\-]*' |
		sed 's/\\-/-/g' | sort -u); do
		[ "$opt" = --help ] && continue
		printf '%s\n' "$help" | grep -q -- "$opt\\b" ||
			err "$name.1 describes $opt, which duet $cmd --help does not name"
	done
done
[ $fail = 0 ] || exit 1
echo "ok: $n pages render without warnings and describe every option"
