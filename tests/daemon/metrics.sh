#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# duetd --metrics and --metrics-textfile with the real tools: promtool
# finds nothing to say about the exposition; the dataset's figures equal
# the kernel's (one cachestat per file) after a known workload and after
# changes; a real Prometheus server on localhost scrapes duetd and its
# HTTP query API returns the dataset's cached bytes; node_exporter reads
# the textfile. The endpoint answers only GET /metrics, refuses what is
# bad with the right status, bounds its connections and times them out,
# and a stalled scraper does not stop a client's events. Bad options are
# errors at start.
. "$(dirname "$0")/lib.sh"
for t in promtool prometheus prometheus-node-exporter curl; do
	command -v $t >/dev/null || { echo "SKIP: $t missing (scripts/setup installs it)"; exit 77; }
done
setup 256
D=$MNT/data
mkdir -p "$D/sub"
py() { /usr/bin/python3 -c "$@"; }
free_port() { py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
head -c 3M /dev/urandom > "$D/a"
head -c 1M /dev/urandom > "$D/sub/b"
head -c 100K /dev/urandom > "$D/c"
: > "$D/empty"
sync
py "
import os
for p in ['a', 'sub/b', 'c']:
    fd = os.open('$D/' + p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
fd = os.open('$D/a', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for i in range(0, 64):
    os.pread(fd, 4096, i * 4096)
os.close(fd)
"
cat "$D/c" > /dev/null
PORT=$(free_port)
mkdir "$W/tf"

# Bad options: a sentence and no daemon.
"$DUETD" -s "$W/x.sock" --metrics-textfile "$W/missing" > "$W/bad1.log" 2>&1
check "--metrics-textfile of a missing directory: exit 1 and why" \
	bash -c "[ $? = 1 ] && grep -q 'metrics-textfile $W/missing: No such file' '$W/bad1.log'"
"$DUETD" -s "$W/x.sock" --metrics 127.0.0.1:70000 > "$W/bad2.log" 2>&1
check "--metrics with a bad port: exit 1 and why" \
	bash -c "[ $? = 1 ] && grep -q 'bad --metrics 127.0.0.1:70000' '$W/bad2.log'"

start_duetd --dataset d="$D" --metrics "127.0.0.1:$PORT" --metrics-textfile "$W/tf"
URL=http://127.0.0.1:$PORT/metrics
metric() {	# metric FILE NAME{LABELS}: its value
	awk -v k="$2" '$1 == k {print $2}' "$1"
}
# expect: what the kernel says of the dataset, as "cached files bytes"
expect() {
	/usr/bin/python3 "$LIBDIR/lscheck.py" ref "$D" | py "
import json, sys
r = json.load(sys.stdin)
print(sum(f['cached'] for f in r.values()) * 4096, len(r), sum(f['size'] for f in r.values()))"
}
# settles: the scraped figures equal the kernel's within 10 s
settles() {
	local e got i
	for i in $(seq 50); do
		e=$(expect)
		curl -sf "$URL" > "$W/m.txt" || return 1
		got="$(metric "$W/m.txt" 'duet_dataset_cached_bytes{dataset="d"}') $(metric "$W/m.txt" 'duet_dataset_files{dataset="d"}') $(metric "$W/m.txt" 'duet_dataset_bytes{dataset="d"}')"
		[ "$got" = "$e" ] && { echo "  cached, files, bytes: $got"; return 0; }
		sleep 0.2
	done
	echo "scraped: $got; the kernel: $e"
	return 1
}
check "the dataset's figures equal the kernel's" settles
curl -sf "$URL" > "$W/m1.txt"
promtool check metrics < "$W/m1.txt" > "$W/promtool.txt" 2>&1
check "promtool check metrics: no problem" bash -c "[ $? = 0 ] && [ ! -s '$W/promtool.txt' ]"
[ -s "$W/promtool.txt" ] && cat "$W/promtool.txt"
check "no label names a file or pid" bash -c "! grep -E 'path=|file=|pid=|ino=' '$W/m1.txt'"

# Changes: a evicted, b read whole, a new file, c deleted.
py "
import os
fd = os.open('$D/a', os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
"
cat "$D/sub/b" > /dev/null
head -c 200K /dev/urandom > "$D/sub/new"
rm "$D/c"
sync
check "after evict, read, write, delete: the figures follow" settles
added_counted() {
	local b
	b=$(metric "$W/m.txt" 'duet_event_pages_total{type="added"}')
	# b was read whole: 256 pages added at least, and counted as events.
	[ "$b" -ge 256 ] && [ "$(metric "$W/m.txt" 'duet_events_total{type="added"}')" -gt 0 ]
}
check "events and their pages are counted by type" added_counted

# What the endpoint refuses.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "POST: 405" [ "$(code -X POST "$URL")" = 405 ]
check "another path: 404" [ "$(code "http://127.0.0.1:$PORT/")" = 404 ]
not_http() {
	[ "$(py "
import socket
s = socket.create_connection(('127.0.0.1', $PORT))
s.sendall(b'hello\\r\\n\\r\\n')
print(s.recv(100).decode().split('\\r\\n')[0])")" = 'HTTP/1.1 400 Bad Request' ]
}
check "not HTTP: 400" not_http
check "a request too long: 431" [ "$(code -H "X-Big: $(head -c 5000 /dev/zero | tr '\0' x)" "$URL")" = 431 ]
# Scrapers that connect and say nothing: at most 8 are held, each at most
# 2 s; meanwhile a client's events keep coming.
py "
import socket, time
held = [socket.create_connection(('127.0.0.1', $PORT)) for _ in range(12)]
time.sleep(0.5)
closed = 0
for s in held:	# all looked at now, well before the 2 s
    try:
        if s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b'':
            closed += 1
    except BlockingIOError:
        pass
    except ConnectionResetError:
        closed += 1
open('$W/held.txt', 'w').write('%d\n' % closed)
time.sleep(2.5)
gone = 0
for s in held:
    s.settimeout(0.5)
    try:
        if s.recv(1) == b'':
            gone += 1
    except (socket.timeout, ConnectionResetError):
        gone += 1
open('$W/gone.txt', 'w').write('%d\n' % gone)
" &
HP=$!
sleep 0.3
head -c 64K /dev/urandom > "$D/during"
sync	# written back: the dirty figures settle too
# (Not through the stalled endpoint: through duet ls, from the same figures.)
ls_follows() {
	local i
	for i in $(seq 50); do
		/usr/bin/python3 "$LIBDIR/lscheck.py" ref "$D" > "$W/dref.json"
		"$DUET" ls --dataset d --json > "$W/dl.json" &&
			/usr/bin/python3 "$LIBDIR/lscheck.py" cmp "$W/dl.json" "$W/dref.json" \
				--cached-only --no-writeback > /dev/null && return 0
		sleep 0.2
	done
	return 1
}
check "while scrapers stall, a dataset still follows the events" ls_follows
wait $HP
check "connections over 8 are refused at once" [ "$(cat "$W/held.txt")" = 4 ]
check "silent connections are closed after 2 s" [ "$(cat "$W/gone.txt")" = 12 ]
refusals() {
	curl -sf "$URL" > "$W/m2.txt" &&
		[ "$(metric "$W/m2.txt" 'duet_metrics_requests_total{result="refused"}')" = 4 ]
}
check "refusals are counted" refusals

# A real Prometheus scraping duetd every second; its query API.
PPORT=$(free_port)
cat > "$W/prom.yml" <<EOC
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: duetd
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOC
prometheus --config.file="$W/prom.yml" --storage.tsdb.path="$W/tsdb" \
	--web.listen-address="127.0.0.1:$PPORT" > "$W/prometheus.log" 2>&1 &
PIDS="$PIDS $!"
query() {
	curl -sf "http://127.0.0.1:$PPORT/api/v1/query" \
		--data-urlencode "query=$1" | py "
import json, sys
r = json.load(sys.stdin)['data']['result']
print(r[0]['value'][1] if r else '')"
}
prom_has() {
	local want i
	for i in $(seq 60); do
		want=$(expect | cut -d' ' -f1)
		[ "$(query 'duet_dataset_cached_bytes{dataset="d"}')" = "$want" ] &&
			{ echo "  Prometheus: $want bytes"; return 0; }
		sleep 0.5
	done
	echo "Prometheus says '$(query 'duet_dataset_cached_bytes{dataset="d"}')', the kernel $want"
	tail -5 "$W/prometheus.log"
	return 1
}
check "Prometheus's query API: the dataset's cached bytes, as the kernel says" prom_has
check "Prometheus saw the target up" [ "$(query 'up{job="duetd"}')" = 1 ]

# node_exporter's textfile collector reads duetd.prom.
NPORT=$(free_port)
prometheus-node-exporter --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$W/tf" --web.listen-address="127.0.0.1:$NPORT" \
	> "$W/node.log" 2>&1 &
PIDS="$PIDS $!"
node_has() {
	local i v="" e=""
	# The file is rewritten every 5 s: the exporter serves the dataset's
	# file count (no file comes or goes now); it writes numbers as floats.
	for i in $(seq 60); do
		e=$(expect | cut -d' ' -f2)
		if curl -sf "http://127.0.0.1:$NPORT/metrics" > "$W/node.txt" 2>/dev/null; then
			v=$(metric "$W/node.txt" 'duet_dataset_files{dataset="d"}')
			if [ -n "$v" ] && ! grep -q '^node_textfile_scrape_error 1' "$W/node.txt" &&
				[ "$(py "print(int(float('$v')))")" = "$e" ]; then
				echo "  node_exporter: $v files"
				return 0
			fi
		fi
		sleep 0.2
	done
	echo "node_exporter: '$v', the kernel: '$e'"
	return 1
}
check "node_exporter reads the textfile" node_has
check "the textfile is a complete exposition" promtool check metrics < "$W/tf/duetd.prom"
check "no temporary file is left where node_exporter reads" \
	bash -c "[ \"\$(ls -A '$W/tf')\" = duetd.prom ]"
exit 0
