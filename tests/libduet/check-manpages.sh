#!/bin/sh
# Every symbol of the version script has a man page (a real page or a .so
# link whose target exists and whose NAME names the symbol), every page is
# installed by libduet/meson.build, and groff renders each real page
# without a warning. Usage: check-manpages.sh LIBDUET.SYM MANDIR
# Exit 0 (pass), 1 (fail), 77 (skip: no groff to render with).
set -u
map=${1:?usage: check-manpages.sh LIBDUET.SYM MANDIR}
dir=${2:?usage: check-manpages.sh LIBDUET.SYM MANDIR}
build=$(dirname "$map")/meson.build
fail=0
err() {
	echo "FAIL: $*" >&2
	fail=1
}

# The page a name resolves to: itself, or the target of its .so line.
resolve() {
	so=$(sed -n 's/^\.so[[:space:]]\{1,\}//p' "$1" | head -n 1)
	if [ -z "$so" ]; then
		echo "$1"
	else
		echo "$dir/$(basename "$so")"
	fi
}

syms=$(sed -n 's/^[[:space:]]*\(duet_[a-z_]*\);/\1/p' "$map")
[ -n "$syms" ] || err "no symbols in $map"
nsyms=0
for s in $syms; do
	nsyms=$((nsyms + 1))
	page=$dir/$s.3
	if [ ! -f "$page" ]; then
		err "$s has no page $page"
		continue
	fi
	target=$(resolve "$page")
	[ -f "$target" ] || continue	# reported below
	sed -n '/^\.SH NAME/,/^\.SH /p' "$target" | grep -qw "$s" ||
		err "$s is not in the NAME section of $target"
done

if command -v groff >/dev/null 2>&1; then
	render=yes
else
	render=no
fi
npages=0 nlinks=0
for page in "$dir"/*.3; do
	[ -f "$page" ] || { err "no pages in $dir"; break; }
	name=$(basename "$page")
	npages=$((npages + 1))
	grep -q "'man/$name'" "$build" || err "$name is not installed by $build"
	if grep -q '^\.so' "$page"; then
		nlinks=$((nlinks + 1))
		[ "$(grep -c . "$page")" = 1 ] || err "$name: a .so page holds only its .so line"
		grep -q '^\.so man3/[a-z_]*\.3$' "$page" || err "$name: .so must name man3/PAGE.3"
		target=$(resolve "$page")
		[ -f "$target" ] || err "$name: .so target $target missing"
		! grep -q '^\.so' "$target" 2>/dev/null || err "$name: .so target is a .so page"
		continue
	fi
	grep -q '^\.TH [A-Z_]* 3 [0-9-]* "libduet 0\.1\.0" ' "$page" ||
		err "$name: .TH is not '.TH NAME 3 DATE \"libduet 0.1.0\" ...'"
	for sec in NAME SYNOPSIS DESCRIPTION 'SEE ALSO'; do
		grep -q "^\\.SH \"*$sec\"*\$" "$page" || err "$name: no $sec section"
	done
	if [ $render = yes ]; then
		out=$(groff -man -ww -z "$page" 2>&1)
		[ -z "$out" ] || err "$name: groff warns: $out"
	fi
done

if [ $fail != 0 ]; then
	echo "FAIL: man pages of $map in $dir: see above"
	exit 1
fi
if [ $render = no ]; then
	echo "skip: $nsyms symbols have pages ($npages pages, $nlinks .so links), but groff is missing to render them (Debian: groff-base)"
	exit 77
fi
echo "ok: $nsyms symbols have pages; $npages pages ($nlinks .so links) render without warnings"
