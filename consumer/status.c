// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet status: which event semantics this kernel gives, the duet tracefs
 * instances on the machine with their owners, and duetd with its tasks.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "duet-cli.h"
#include "live.h"
#include "proto.h"

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One request to duetd; the reply's body in *body (malloc'ed). */
static int daemon_call(int fd, uint16_t type, uint32_t seq, const void *a, size_t alen,
		       void **body, size_t *blen)
{
	char req[DP_HDR_SIZE + 64];
	size_t n = dp_build(req, type, seq, a, alen, NULL, 0, NULL, 0);
	struct dp_reply rep;
	struct dp_hdr h;
	int r;

	if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -errno;
	do {
		r = recv_all(fd, &h, sizeof(h));
		if (r)
			return r;
		if (h.magic != DP_MAGIC || h.version != DP_VERSION || h.len > DP_MAX_REPLY)
			return -EPROTO;
	} while (h.type == DP_READY);
	if (h.len < sizeof(rep) || recv_all(fd, &rep, sizeof(rep)))
		return -EPROTO;
	*blen = h.len - sizeof(rep);
	*body = malloc(*blen + 1);
	if (!*body || recv_all(fd, *body, *blen))
		return -EPROTO;
	return rep.result;
}

/* A JSON string (quoted, escaped) for text from the daemon. */
static void put_jstr(const char *text)
{
	struct json_object *o = json_object_new_string(text);

	fputs(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "null", stdout);
	json_object_put(o);
}

static const char *flush_name(uint32_t f)
{
	return f == DUET_FLUSH_EXACT ? "exact" : f == DUET_FLUSH_INODE ? "inode" : "none";
}

static void mask_text(uint32_t m, char *buf, size_t len)
{
	static const char *const names[] = { "ADDED", "REMOVED", "DIRTY", "FLUSHED", "EXISTS",
					     "MODIFIED" };

	buf[0] = '\0';
	for (int i = 0; i < 6; i++)
		if (m & (1u << i))
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "|" : "",
				 names[i]);
}

/* duetd and its tasks. Returns 0 if shown, 1 if no daemon answers. */
static int show_daemon(const char *sock, bool json)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct dp_hello hello = { .version = DP_VERSION };
	struct dp_daemon dd;
	void *body = NULL;
	size_t blen = 0, off;
	int fd, r;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return 1;
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		goto none;
	}
	r = daemon_call(fd, DP_HELLO, 1, &hello, sizeof(hello), &body, &blen);
	free(body);
	body = NULL;
	if (r >= 0)
		r = daemon_call(fd, DP_DAEMON_STATUS, 2, NULL, 0, &body, &blen);
	if (r >= 0 && blen < sizeof(dd))
		r = -EPROTO;
	if (r < 0)
		goto none;
	memcpy(&dd, body, sizeof(dd));
	if (json) {
		printf(",\"daemon\":{\"socket\":");
		put_jstr(sock);
		printf(",\"pid\":%u,\"flush\":\"%s\",\"clients\":%u,"
		       "\"uptime_ms\":%llu,\"rss_kb\":%llu,\"engine_bytes\":%llu,\"events\":%llu,"
		       "\"max_pending\":%llu,\"tasks\":[",
		       dd.pid, flush_name(dd.flush), dd.nclients,
		       (unsigned long long)dd.uptime_ms, (unsigned long long)dd.rss_kb,
		       (unsigned long long)dd.engine_bytes, (unsigned long long)dd.events,
		       (unsigned long long)dd.max_pending);
	} else
		printf("duetd: pid %u on %s, FLUSHED %s, %u clients, %u tasks, up %llu s, "
		       "%llu KiB resident (engine %llu KiB), %llu events, bound %llu pending pages per task\n",
		       dd.pid, sock, flush_name(dd.flush), dd.nclients, dd.ntasks,
		       (unsigned long long)dd.uptime_ms / 1000, (unsigned long long)dd.rss_kb,
		       (unsigned long long)dd.engine_bytes / 1024, (unsigned long long)dd.events,
		       (unsigned long long)dd.max_pending);
	if (!json && dd.ntasks)
		printf("  %4s  %-16s %6s %7s  %-24s %9s %5s %7s  %s\n", "ID", "NAME", "UID", "PID",
		       "MASK", "PENDING", "LOST", "RESYNCS", "DIRECTORY");
	off = sizeof(dd);
	for (bool first = true;; first = false) {
		struct dp_task_info ti;
		char name[DP_MAX_NAME + 1], dir[DP_MAX_PATH + 1], mask[64];

		r = dp_next_task(body, blen, &off, &ti, name, sizeof(name), dir, sizeof(dir));
		if (r <= 0)
			break;
		mask_text(ti.mask, mask, sizeof(mask));
		if (json) {
			printf("%s{\"id\":%u,\"name\":", first ? "" : ",", ti.id);
			put_jstr(name);
			printf(",\"uid\":%u,\"pid\":%u,\"dir\":", ti.uid, ti.pid);
			put_jstr(dir);
			printf(",\"mask\":\"%s\",\"pending\":%llu,\"lost\":%llu,\"resyncs\":%llu,"
			       "\"items\":%llu,\"paused\":%s}",
			       mask,
			       (unsigned long long)ti.st.pending, (unsigned long long)ti.st.lost,
			       (unsigned long long)ti.st.resyncs, (unsigned long long)ti.st.items,
			       ti.paused ? "true" : "false");
		} else
			printf("  %4u  %-16s %6u %7u  %-24s %9llu %5llu %7llu  %s%s\n", ti.id, name,
			       ti.uid, ti.pid, mask, (unsigned long long)ti.st.pending,
			       (unsigned long long)ti.st.lost, (unsigned long long)ti.st.resyncs, dir,
			       ti.paused ? "  (over its bound: waits for its client)" : "");
	}
	if (json)
		printf("]}");
	free(body);
	close(fd);
	return r < 0 ? 1 : 0;
none:
	free(body);
	if (fd >= 0)
		close(fd);
	if (json)
		printf(",\"daemon\":null");
	else
		printf("duetd: not running on %s (%s)\n", sock,
		       r == -ENOENT || r == -ECONNREFUSED ? "no one listens" : strerror(-r));
	return 1;
}

static bool have(enum dc_src src)
{
	char *text;
	size_t len;
	struct dc_layout l;
	int r = dc_event_format(dc_src_info[src].system, dc_src_info[src].name, &text, &len);

	if (r)
		return false;
	/* Present and decodable: the layout must parse. */
	r = dc_layout_parse(src, text, len, &l);
	free(text);
	return !r;
}

int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false, first = true, exact, dirty_bdi, flush_inode;
	const char *sock = getenv("DUET_SOCKET") ? getenv("DUET_SOCKET") : DP_DEFAULT_SOCKET;
	const char *dir, *dirty, *flush;
	char path[4096];
	struct dirent *de;
	int opt, r;
	DIR *d;

	while ((opt = getopt_long(argc, argv, "js:h", lo, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == 's') {
			sock = optarg;
		} else {
			fputs("usage: duet status [--json] [--socket PATH]\n"
			      "Shows the event semantics this kernel gives, duet's tracing instances,\n"
			      "and duetd with its tasks (socket: $DUET_SOCKET or " DP_DEFAULT_SOCKET ").\n",
			      opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	r = dc_tracefs_ensure(&dir);
	if (r == -EACCES && geteuid()) {
		/* Not root: duetd is what an unprivileged user has. */
		if (json)
			printf("{\"v\":1");
		r = show_daemon(sock, json);
		if (json)
			printf("}\n");
		return r;
	}
	if (r) {
		fprintf(stderr, "duet status: %s\n",
			r == -EACCES ? "reading tracefs needs root: run it as root" :
				       "tracefs is not available: mount -t tracefs nodev /sys/kernel/tracing");
		return 1;
	}
	exact = have(DC_SRC_P_DIRTY) && have(DC_SRC_P_WB_START);
	dirty_bdi = have(DC_SRC_WB_DIRTY);
	flush_inode = have(DC_SRC_SB_CLEAR_WB);
	dirty = exact ? "exact" : dirty_bdi ? "bdi-page" : "none";
	flush = exact ? "exact" : flush_inode ? "inode" : "none";
	if (json) {
		printf("{\"v\":1,\"added\":%s,\"removed\":%s,\"dirty\":\"%s\",\"flush\":\"%s\",\"instances\":[",
		       have(DC_SRC_ADD) ? "\"exact\"" : "\"none\"",
		       have(DC_SRC_DELETE) ? "\"exact\"" : "\"none\"", dirty, flush);
	} else {
		printf("ADDED    %s\n", have(DC_SRC_ADD) ? "exact per folio (filemap/mm_filemap_add_to_page_cache)" : "not available");
		printf("REMOVED  %s\n", have(DC_SRC_DELETE) ? "exact per folio (filemap/mm_filemap_delete_from_page_cache)" : "not available");
		printf("DIRTY    %s\n", exact ? "exact per folio (filemap/mm_filemap_dirty_folio: kernel patched)" :
				      dirty_bdi ? "per page from writeback/writeback_dirty_folio (bdi name mapped to devices)" :
						  "not available");
		printf("FLUSHED  %s\n", exact ? "exact per folio (filemap/mm_filemap_clear_dirty_for_io: kernel patched)" :
				      flush_inode ? "inode-level from writeback/sb_clear_inode_writeback (kernel not patched, see kernel-tracepoints/README.md)" :
						    "not available");
		printf("instances:\n");
	}
	snprintf(path, sizeof(path), "%s/instances", dir);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		unsigned long long start;
		char comm[64] = "", cpath[64];
		int pid, n = 0;
		FILE *f;

		if (sscanf(de->d_name, DC_INSTANCE_PREFIX "%d-%llu%n", &pid, &start, &n) != 2 ||
		    de->d_name[n])
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/comm", pid);
		f = fopen(cpath, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		/* The next duet run removes an instance whose owner is gone. */
		if (json)
			printf("%s{\"name\":\"%s\",\"pid\":%d,\"owner\":\"%s\"}", first ? "" : ",",
			       de->d_name, pid, comm);
		else
			printf("  %s  pid %d  %s\n", de->d_name, pid, comm[0] ? comm : "(gone: stale, removed by the next run)");
		first = false;
	}
	if (d)
		closedir(d);
	if (json)
		printf("]");
	else if (first)
		printf("  (none)\n");
	show_daemon(sock, json);
	if (json)
		printf("}\n");
	return 0;
}
