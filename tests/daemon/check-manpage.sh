#!/bin/sh
# duetd(8) against duetd --help: groff renders the page without a
# warning, every option of --help has its paragraph in OPTIONS and every
# paragraph an option in --help, and each default --help states is the
# one the page states. Usage: check-manpage.sh DUETD PAGE
# Exit 0 (pass), 1 (fail), 77 (skip: no groff or python3).
set -u
duetd=${1:?usage: check-manpage.sh DUETD PAGE}
page=${2:?usage: check-manpage.sh DUETD PAGE}
for t in groff python3; do
	command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
fail=0
out=$(groff -ww -man -Tutf8 "$page" 2>&1 >/dev/null)
if [ -n "$out" ]; then
	echo "FAIL: groff warns on $page: $out" >&2
	fail=1
fi
"$duetd" --help >/tmp/duetd-help.$$ || { echo "FAIL: duetd --help" >&2; fail=1; }
python3 - /tmp/duetd-help.$$ "$page" <<'EOF' || fail=1
import re, sys
help_text = open(sys.argv[1]).read()
page = open(sys.argv[2]).read()
bad = 0

def fail(msg):
    global bad
    print("FAIL: " + msg, file=sys.stderr)
    bad += 1

# --help: "  -x, --name ARG   text (default N ..." with continuation lines.
opts = {}
cur = None
for line in help_text.splitlines():
    m = re.match(r"\s+(?:-\w, )?--([a-z-]+)(.*)", line)
    if m:
        cur = m.group(1)
        opts[cur] = m.group(2)
    elif cur and line.startswith("      "):
        opts[cur] += " " + line.strip()
opts.pop("help", None)
# The page: OPTIONS paragraphs (.TP, a line naming the option, the text).
sect = page.split(".SH OPTIONS", 1)[1].split("\n.SH ", 1)[0]
paras = {}
for para in sect.split(".TP\n")[1:]:
    head, _, body = para.partition("\n")
    names = re.findall(r"\\-\\-((?:[a-z]|\\-)+)", head)
    for n in names:
        text = re.sub(r"^\.(?:BR|IR|RB|RI|BI|IB|B|I) ", "", body, flags=re.M)
        paras[n.replace("\\-", "-")] = re.sub(r"\\f[BIRP]|\\", "", text)
for o, text in opts.items():
    if o not in paras:
        fail(f"--{o} (in --help) has no paragraph in {sys.argv[2]}")
        continue
    # The default up to a colon, comma or semicolon, spaces folded.
    norm = lambda t: " ".join(t.split())
    m = re.search(r"\(default ([^:;,)]+)", text)
    if m:
        want = norm(m.group(1))
        got = re.search(r"\(default ([^:;,)]+)", paras[o].replace("\n", " "))
        if not got or norm(got.group(1)) != want:
            fail(f"--{o}: --help says default {want!r}, the page "
                 f"{norm(got.group(1)) if got else 'nothing'!r}")
for o in paras:
    if o not in opts:
        fail(f"--{o} is in the page but not in --help")
print(f"{len(opts)} options, {len(paras)} paragraphs; {bad} mismatches")
sys.exit(1 if bad else 0)
EOF
rm -f /tmp/duetd-help.$$
[ $fail = 0 ] && echo "ok: duetd(8) renders without warnings and matches duetd --help"
exit $fail
