#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# duet's shared option handling, no root needed (every case fails before
# anything is opened): the command list of duet --help, --help of every
# subcommand, unknown commands and options, and numbers with their exact
# sentence and exit status 2.
# usage: cli-options.sh path/to/duet
set -u
duet=${1:?usage: cli-options.sh path/to/duet}
fails=0
checks=0
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	checks=$((checks + 1))
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); return 1; fi
}
base=$(mktemp -d /tmp/duet-cli-options.XXXXXX)
trap 'rm -rf "$base"' EXIT

# run ARGS...: stdout in $base/out, stderr in $base/err, the status in $rc
run() {
	"$duet" "$@" > "$base/out" 2> "$base/err"
	rc=$?
}

# usage_error WANT_STDERR ARGS...: exit 2 and exactly that one line on stderr
usage_error() {
	local want=$1; shift
	run "$@"
	check "duet $*: exit 2" [ $rc = 2 ]
	check "duet $*: says \"$want\"" [ "$(cat "$base/err")" = "$want" ] ||
		sed 's/^/  stderr: /' "$base/err"
	check "duet $*: nothing on stdout" [ ! -s "$base/out" ]
}

# The backends: record stores ring-buffer pages, perf has none.
usage_error "duet record: --backend=perf cannot record: trace.dat holds the tracing ring buffer's pages, which only the tracefs backend reads (perf record -e 'filemap:*' writes perf.data)" \
	record --backend=perf -- true
usage_error 'duet record: --backend is tracefs or perf (got "bogus")' record --backend=bogus -- true

# The trace.dat versions: 7 (zstd or none) and 6 (never compressed).
usage_error 'duet record: --file-version is 6 or 7 (got "5")' record --file-version 5 -- true
usage_error 'duet record: --file-version is 6 or 7 (got "7.0")' record --file-version 7.0 -- true
usage_error 'duet record: --compression is zstd or none (got "gzip")' record --compression gzip -- true
usage_error "duet record: --compression zstd needs --file-version 7 (version 6 files are not compressed)" \
	record --compression zstd --file-version 6 -- true

# The numbers.
usage_error "duet watch: --buffer-kb: '12x' is not a number" watch --buffer-kb 12x /tmp
usage_error "duet watch: --buffer-kb: '' is not a number" watch --buffer-kb= /tmp
usage_error "duet watch: --buffer-kb: '-1' is not a number" watch --buffer-kb -1 /tmp
usage_error "duet watch: --buffer-kb: ' 8' is not a number" watch --buffer-kb ' 8' /tmp
usage_error "duet watch: --buffer-kb: '0x10' is not a number" watch --buffer-kb 0x10 /tmp
usage_error "duet watch: --buffer-kb: '4294967296' is out of range (0 to 4294967295)" \
	watch --buffer-kb 4294967296 /tmp
usage_error "duet watch: --buffer-kb: '99999999999999999999999' is out of range (0 to 4294967295)" \
	watch --buffer-kb 99999999999999999999999 /tmp
usage_error "duet watch: --perf-pages: '0' is out of range (1 to 1048576)" watch --perf-pages 0 /tmp
usage_error "duet watch: --perf-pages: '3' is not a power of two (pages per CPU ring)" \
	watch --perf-pages 3 /tmp
usage_error "duet watch: --perf-pages: '2M' is not a number" watch --perf-pages 2M /tmp
usage_error "duet watch: --duration: '1s' is not a number of seconds" watch --duration 1s /tmp
usage_error "duet watch: --duration: 'inf' is not a number of seconds" watch -d inf /tmp
usage_error "duet watch: --duration: '.' is not a number of seconds" watch --duration . /tmp
usage_error "duet watch: --duration: '0' is out of range (more than 0, at most 1e+09)" \
	watch --duration 0 /tmp
usage_error "duet record: --buffer-kb: '1k' is not a number" record --buffer-kb 1k -- true
usage_error 'duet top: --sort is total, added, removed, dirtied, flushed, refaults, cached or name (got "size")' \
	top --sort size /tmp
usage_error "duet top: --interval: '0' is out of range (more than 0, at most 86400)" top --interval 0 /tmp
usage_error "duet top: --iterations: '0' is out of range (1 to 4294967295)" top -n 0 /tmp
usage_error "duet report: --top: '0' is out of range (1 to 1000000)" report --top 0 x.dat
usage_error "duet report: --top: 'ten' is not a number" report --top ten x.dat

# Other bad values keep their sentences.
usage_error "duet watch: --backend is tracefs (default) or perf (got \"bpf\")" watch --backend bpf /tmp

# Unknown options and missing operands: getopt's sentence, then the usage.
run watch --bogus /tmp
check "unknown option: exit 2" [ $rc = 2 ]
check "unknown option: named, with the command" \
	[ "$(head -n 1 "$base/err")" = "duet watch: unrecognized option '--bogus'" ]
check "unknown option: then the usage" grep -q '^usage: duet watch ' "$base/err"
run record --buffer-kb
check "missing value: exit 2" [ $rc = 2 ]
check "missing value: named" \
	[ "$(head -n 1 "$base/err")" = "duet record: option '--buffer-kb' requires an argument" ]
run report
check "report without FILE: exit 2" [ $rc = 2 ]
check "report without FILE: the usage on stderr" grep -q '^usage: duet report ' "$base/err"
run watch
check "watch without PATH: exit 2" [ $rc = 2 ]
check "watch without PATH: the usage on stderr" grep -q '^usage: duet watch ' "$base/err"

# --help and -h of every subcommand: the usage on stdout, exit 0.
for c in watch status record report; do
	for h in --help -h; do
		run $c $h
		check "duet $c $h: exit 0" [ $rc = 0 ]
		check "duet $c $h: the usage on stdout, nothing on stderr" \
			bash -c "[ ! -s '$base/err' ] && grep -q '^usage: duet $c' '$base/out'"
	done
done

# The command list.
run --help
check "duet --help: exit 0" [ $rc = 0 ]
for c in watch status record report; do
	check "duet --help lists $c" grep -q "^  $c" "$base/out"
done
cp "$base/out" "$base/help"
run help
check "duet help: exit 0, the same list" [ $rc = 0 ]
check "duet help: the same list" cmp -s "$base/out" "$base/help"
run
check "duet alone: exit 2" [ $rc = 2 ]
check "duet alone: the list on stderr" cmp -s "$base/err" "$base/help"
run bogus
check "unknown command: exit 2" [ $rc = 2 ]
check "unknown command: named" grep -q '^duet: unknown command "bogus"$' "$base/err"
run --version
check "duet --version: exit 0" [ $rc = 0 ]
check "duet --version: the version" grep -q '^duet [0-9]' "$base/out"

echo "$checks checks, $fails failed"
[ $fails = 0 ]
