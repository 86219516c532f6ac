#!/bin/sh
# The symbols libduet.so exports are exactly those of its version script,
# and each is declared in duet.h.
set -eu
lib=$1 map=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" { print $3 }' |
	grep -v '^LIBDUET_' | sed 's/@@LIBDUET_0\.1$//' | sort)
# Every exported function carries the version node.
if nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | grep -v '@@LIBDUET_0\.1$' | grep -q .; then
	echo "FAIL: a function without the LIBDUET_0.1 version"
	exit 1
fi
listed=$(sed -n 's/^[[:space:]]*\(duet_[a-z_]*\);/\1/p' "$map" | sort)
if [ "$exported" != "$listed" ]; then
	echo "FAIL: exported and listed symbols differ"
	echo "listed:"; echo "$listed"
	echo "exported:"; echo "$exported"
	exit 1
fi
for s in $listed; do
	grep -q "[^a-z_]$s(" "$(dirname "$map")/include/duet/duet.h" ||
		{ echo "FAIL: $s is not declared in duet.h"; exit 1; }
done
echo "ok: $(echo "$listed" | wc -l) symbols exported, all in the version script and duet.h"
