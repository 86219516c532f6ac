#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The layers include only the folders above them:
#   consumer/  nothing of the project below it
#   libduet/   consumer/
#   duetd/     consumer/, libduet/
#   cli/       consumer/, libduet/
#   tools/     libduet's public header only (<duet/duet.h>)
# Every #include "x.h" and #include <duet/...> of every .c and .h is
# resolved to the folder that holds the header; one outside the allowed
# set fails the test and is named.
# usage: check-layers.sh SOURCE_ROOT
set -u
root=${1:?usage: check-layers.sh SOURCE_ROOT}
cd "$root" || exit 1
fails=0
allowed() {
	case $1 in
	consumer) echo "consumer" ;;
	libduet) echo "libduet consumer" ;;
	duetd | cli) echo "$1 libduet consumer" ;;
	tools) echo "tools public" ;;
	esac
}
# where HEADER: the folder holding it ("public" for libduet/include)
where() {
	case $1 in
	duet/*) [ -f "libduet/include/$1" ] && { echo public; return; } ;;
	esac
	for d in consumer libduet duetd cli tools; do
		[ -f "$d/$1" ] && { echo "$d"; return; }
	done
	echo none
}
checked=0
for layer in consumer libduet duetd cli tools; do
	ok=$(allowed $layer)
	for f in $(find "$layer" -name '*.[ch]' | sort); do
		for h in $(sed -n 's/^#[ \t]*include[ \t]*"\([^"]*\)".*/\1/p; s/^#[ \t]*include[ \t]*<\(duet\/[^>]*\)>.*/\1/p' "$f"); do
			checked=$((checked + 1))
			dir=$(dirname "$f")
			# a header found from the file's folder: the folder it lies in
			if [ -f "$dir/$h" ]; then
				w=$(realpath --relative-to=. "$dir/$h")
				case $w in
				libduet/include/*) w=public ;;
				*) w=${w%%/*} ;;
				esac
			else
				w=$(where "$h")
			fi
			[ "$w" = public ] && [ $layer != consumer ] && continue
			case " $ok " in
			*" $w "*) ;;
			*)
				echo "FAIL: $f includes $h (from $w/): $layer may include only: $ok"
				fails=$((fails + 1))
				;;
			esac
		done
	done
done
[ $checked -gt 50 ] || { echo "FAIL: only $checked includes found: wrong root?"; exit 1; }
echo "$checked includes checked, $fails across layers"
[ $fails = 0 ]
