#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The markdown files' links into the repository resolve: every relative
# link ([text](path), ![alt](path), [name]: path) names a file or folder
# that exists inside the repository, and a #anchor into a markdown file
# (or into the same file) names one of its headings, slugged as GitHub
# does (lower case; characters other than letters, digits, spaces, '-'
# and '_' dropped; spaces to '-'; "-1", "-2" for repeats). Links with a
# scheme (https:, mailto:) are not followed; code blocks and code spans
# hold no links. Each broken link is named with its file and line.
#
# First a self-check on a scratch tree with one good and two broken
# links: a checker that finds nothing wrong cannot pass.
#
# usage: check-doc-links.sh SOURCE_ROOT
# Exit 0 (pass), 1 (a broken link), 99 (cannot run).
set -u
root=${1:?usage: check-doc-links.sh SOURCE_ROOT}
cd "$root" 2>/dev/null || { echo "check-doc-links: no directory $root"; exit 99; }
[ -f README.md ] && [ -f meson.build ] ||
	{ echo "check-doc-links: $root is not the source root (no README.md, meson.build)"; exit 99; }

# The markdown files under the current directory, relative to it: git's
# view (tracked and new, not ignored) when there is one, else every .md
# file outside build directories.
md_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
		[ "$(git rev-parse --show-prefix)" = "" ]; then
		git ls-files --cached --others --exclude-standard -- '*.md' |
			while read -r f; do [ -f "$f" ] && echo "$f"; done
	else
		find . \( -name .git -o -name 'build*' -o -name meson-private \) -prune -o \
			-name '*.md' -type f -print | sed 's|^\./||'
	fi
}

# check FILE...: prints one line per broken link, then "checked N".
check() {
	awk '
	function slug(t) {
		t = tolower(t)
		gsub(/[^a-z0-9 _-]/, "", t)
		gsub(/ /, "-", t)
		return t
	}
	# a/b/../c -> a/c; "" when it leaves the repository.
	function norm(p,    n, i, k, part, out) {
		n = split(p, part, "/")
		k = 0
		for (i = 1; i <= n; i++) {
			if (part[i] == "" || part[i] == ".")
				continue
			if (part[i] == "..") {
				if (k == 0)
					return ""
				k--
				continue
			}
			out[++k] = part[i]
		}
		p = ""
		for (i = 1; i <= k; i++)
			p = p (i > 1 ? "/" : "") out[i]
		return p == "" ? "." : p
	}
	function exists(p,    q) {
		q = p
		gsub(/\047/, "\047\\\047\047", q)
		return system("test -e \047" q "\047") == 0
	}
	function link(t) {
		sub(/^</, "", t)
		sub(/>$/, "", t)
		if (t == "" || t ~ /^[a-zA-Z][a-zA-Z0-9+.-]*:/)
			return
		nlinks++
		lfile[nlinks] = FILENAME
		lline[nlinks] = FNR
		ltarget[nlinks] = t
	}
	FNR == 1 { fence = 0; listed[FILENAME] = 1 }
	/^ {0,3}(```|~~~)/ { fence = !fence; next }
	fence { next }
	{
		line = $0
		gsub(/`[^`]*`/, "", line)
		# A heading keeps the text of its code spans.
		if ($0 ~ /^#+ /) {
			h = $0
			gsub(/`/, "", h)
			sub(/^#+ +/, "", h)
			sub(/ +#* *$/, "", h)
			s = slug(h)
			if ((FILENAME, s) in anchor) {
				seen[FILENAME, s]++
				s = s "-" seen[FILENAME, s]
			}
			anchor[FILENAME, s] = 1
		}
		if (match(line, /^ {0,3}\[[^]]+\]: */)) {
			t = substr(line, RLENGTH + 1)
			sub(/[ \t].*/, "", t)
			link(t)
			next
		}
		while (match(line, /\]\([^)]*\)/)) {
			t = substr(line, RSTART + 2, RLENGTH - 3)
			line = substr(line, RSTART + RLENGTH)
			sub(/^[ \t]+/, "", t)
			sub(/[ \t].*/, "", t)
			link(t)
		}
	}
	END {
		for (i = 1; i <= nlinks; i++) {
			f = lfile[i]
			t = ltarget[i]
			frag = ""
			if (index(t, "#")) {
				frag = substr(t, index(t, "#") + 1)
				t = substr(t, 1, index(t, "#") - 1)
			}
			gsub(/%20/, " ", t)
			if (t == "") {
				p = f
			} else {
				dir = f
				if (!sub(/\/[^\/]*$/, "", dir))
					dir = "."
				p = norm(t ~ /^\// ? t : dir "/" t)
			}
			if (p == "") {
				printf "%s:%d: %s leaves the repository\n", f, lline[i], ltarget[i]
			} else if (!exists(p)) {
				printf "%s:%d: %s: no such file (%s)\n", f, lline[i], ltarget[i], p
			} else if (frag != "" && p ~ /\.md$/ && !((p, frag) in anchor)) {
				if (p in listed)
					printf "%s:%d: %s: no heading #%s in %s\n", f, lline[i], ltarget[i], frag, p
			}
		}
		printf "checked %d\n", nlinks
	}' "$@"
}

tmp=$(mktemp -d /tmp/check-doc-links.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT

# The self-check: exactly the two broken links of this tree are found.
mkdir -p "$tmp/self/d" || exit 99
printf '# A title\n\n## Twice\n\n## Twice\n' > "$tmp/self/d/b.md"
cat > "$tmp/self/a.md" <<'EOF'
[good](d/b.md) [good](d/b.md#a-title) [good](d/b.md#twice-1) [good](#here)
[bad](d/missing.md) and `[not a link](nowhere.md)`
# Here
[bad anchor](d/b.md#nope) [external](https://example.org/x.md)
```
[in a code block](nowhere.md)
```
EOF
self=$(cd "$tmp/self" && check a.md d/b.md)
case $self in
*"a.md:2: d/missing.md: no such file"*"a.md:4: d/b.md#nope: no heading #nope"*"checked 6") ;;
*)
	echo "check-doc-links: the self-check failed; the checker found:"
	echo "$self"
	exit 99
	;;
esac
[ "$(printf '%s\n' "$self" | grep -c ': ')" = 2 ] || {
	echo "check-doc-links: the self-check found more than the two broken links:"
	echo "$self"
	exit 99
}

files=$(md_files)
[ -n "$files" ] || { echo "check-doc-links: no markdown files under $root"; exit 99; }
# shellcheck disable=SC2086
out=$(check $files)
bad=$(printf '%s\n' "$out" | grep -v '^checked ')
n=$(printf '%s\n' "$out" | sed -n 's/^checked //p')
[ -n "$bad" ] && printf '%s\n' "$bad" | sed 's/^/FAIL: /'
echo "$n links in $(printf '%s\n' $files | wc -l) markdown files checked, $(printf '%s' "$bad" | grep -c .) broken"
[ -z "$bad" ]
