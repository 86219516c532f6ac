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
#include <unistd.h>

#include <json-c/json.h>

#include "duet-cli.h"
#include "internal.h"
#include "live.h"
#include "proto.h"

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

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* The bounds in force and what became of connections (extended status). */
static void show_bounds(const struct dp_daemon *dd, const struct dp_daemon_ext *x, bool json)
{
	if (json) {
		printf(",\"bounds\":{\"max_connections\":%u,\"max_connections_per_user\":%u,"
		       "\"max_tasks\":%u,\"max_tasks_per_user\":%u,\"max_pending\":%llu,"
		       "\"max_done_marks\":%llu,\"request_timeout_ms\":%u,\"idle_timeout_ms\":%u,"
		       "\"fd_limit\":%llu,\"fd_need\":%llu},"
		       "\"connections\":{\"accepted\":%llu,\"refused_total\":%llu,"
		       "\"refused_per_user\":%llu,\"closed_partial\":%llu,\"closed_idle\":%llu},"
		       "\"viewer_uid\":%u,\"others\":{\"tasks\":%u,\"clients\":%u},"
		       "\"page_bytes\":%llu,\"mark_bytes\":%llu",
		       x->max_connections, x->max_connections_per_user, x->max_tasks,
		       x->max_tasks_per_user, ull(dd->max_pending), ull(x->max_done_marks),
		       x->request_timeout_ms, x->idle_timeout_ms, ull(x->fd_limit), ull(x->fd_need),
		       ull(x->accepted), ull(x->refused_total), ull(x->refused_user),
		       ull(x->closed_partial), ull(x->closed_idle), x->viewer_uid, x->others_tasks,
		       x->others_clients, ull(x->page_bytes), ull(x->mark_bytes));
		return;
	}
	printf("  bounds: %u connections, %u per user (root exempt); %u tasks per user, %u in all; "
	       "%llu pending pages and ",
	       x->max_connections, x->max_connections_per_user, x->max_tasks_per_user,
	       x->max_tasks, ull(dd->max_pending));
	if (x->max_done_marks)
		printf("%llu done marks per task; ", ull(x->max_done_marks));
	else
		printf("unbounded done marks per task; ");
	printf("request timeout %.1f s, idle timeout %.1f s; %llu of %llu file descriptors\n",
	       x->request_timeout_ms / 1000.0, x->idle_timeout_ms / 1000.0, ull(x->fd_need),
	       ull(x->fd_limit));
	printf("  connections: %llu accepted; refused %llu over a user's share, %llu over the "
	       "total; closed %llu with a request incomplete, %llu idle without a task\n",
	       ull(x->accepted), ull(x->refused_user), ull(x->refused_total),
	       ull(x->closed_partial), ull(x->closed_idle));
	if (x->others_tasks || x->others_clients)
		printf("  other users: %u tasks, %u connections (not shown to uid %u)\n",
		       x->others_tasks, x->others_clients, x->viewer_uid);
}

static int show_users(const void *body, size_t blen, size_t *off, const struct dp_daemon_ext *x,
		      bool json)
{
	for (uint32_t i = 0; i < x->nusers; i++) {
		struct dp_user u;

		if (dp_next_user(body, blen, off, x, &u))
			return -EBADMSG;
		if (json)
			printf("%s{\"uid\":%u,\"clients\":%u,\"tasks\":%u,\"refused\":%llu,"
			       "\"closed_partial\":%llu,\"closed_idle\":%llu}", i ? "," : "",
			       u.uid, u.clients, u.tasks, ull(u.refused), ull(u.closed_partial),
			       ull(u.closed_idle));
		else
			printf("%s  %6u %8u %6u %8llu %11llu %8llu\n",
			       i ? "" : "  users:    UID  CLIENTS  TASKS  REFUSED  INCOMPLETE     IDLE\n",
			       u.uid, u.clients, u.tasks, ull(u.refused), ull(u.closed_partial),
			       ull(u.closed_idle));
	}
	return 0;
}

/* One task; te is NULL for an older daemon. */
static void show_task(const struct dp_task_info *ti, const struct dp_task_ext *te,
		      const char *name, const char *dir, bool first, bool json)
{
	uint64_t mem = te ? te->mem_in + te->mem_out + te->mem_pending + te->mem_done : 0;
	bool complete = te && (te->flags & DP_TASK_SCAN_COMPLETE);
	char mask[64], scan[48];

	mask_text(ti->mask, mask, sizeof(mask));
	if (json) {
		printf("%s{\"id\":%u,\"name\":", first ? "" : ",", ti->id);
		put_jstr(name);
		printf(",\"uid\":%u,\"pid\":%u,\"dir\":", ti->uid, ti->pid);
		put_jstr(dir);
		printf(",\"mask\":\"%s\",\"pending\":%llu,\"lost\":%llu,\"resyncs\":%llu,"
		       "\"items\":%llu,\"paused\":%s,\"scan_files\":%llu,\"scan_done\":%llu",
		       mask, ull(ti->st.pending), ull(ti->st.lost), ull(ti->st.resyncs),
		       ull(ti->st.items), ti->paused ? "true" : "false", ull(ti->st.scan_files),
		       ull(ti->st.scan_done));
		if (te)
			printf(",\"scan_complete\":%s,\"polite\":%s,\"done_marks\":%llu,"
			       "\"memory\":{\"input\":%llu,\"output\":%llu,\"pending\":%llu,"
			       "\"done\":%llu,\"total\":%llu}",
			       complete ? "true" : "false",
			       te->flags & DP_TASK_IS_POLITE ? "true" : "false", ull(te->done_marks),
			       ull(te->mem_in), ull(te->mem_out), ull(te->mem_pending),
			       ull(te->mem_done), ull(mem));
		printf("}");
		return;
	}
	if (!te)
		snprintf(scan, sizeof(scan), "%llu/%llu", ull(ti->st.scan_done),
			 ull(ti->st.scan_files));
	else if (complete)
		snprintf(scan, sizeof(scan), "complete");
	else
		snprintf(scan, sizeof(scan), "%llu/%llu", ull(ti->st.scan_done),
			 ull(ti->st.scan_files));
	printf("  %4u  %-16s %6u %7u  %-24s %9llu %5llu %7llu %11s %8llu %9llu  %s%s%s\n", ti->id,
	       name, ti->uid, ti->pid, mask, ull(ti->st.pending), ull(ti->st.lost),
	       ull(ti->st.resyncs), scan, ull(te ? te->done_marks : 0), ull(mem / 1024), dir,
	       te && (te->flags & DP_TASK_IS_POLITE) ? "  (polite)" : "",
	       ti->paused ? "  (over its bound: waits for its client)" : "");
}

/*
 * duetd and its tasks. Returns 0 if shown, 1 if no daemon answers, or
 * the -errno of a refusal that is this client's to fix (said on stderr:
 * cli_duetd_refused()).
 */
static int show_daemon(const char *prog, const char *sock, bool json)
{
	struct dp_hello hello = { .version = DP_VERSION,
				  .flags = DP_HELLO_FLAGS(DP_MINOR, DP_HELLO_STATUS_EXT) };
	struct dp_welcome w = { 0 };
	struct dp_daemon_ext x;
	struct dp_daemon dd;
	void *body = NULL;
	size_t cap = 0, blen = 0, off;
	uint32_t seq = 0;
	char why[256] = "";
	bool ext = false;
	int fd = -1, r;

	r = cl_connect(sock, &fd);
	if (r)
		goto none;
	r = cl_call(fd, &seq, DP_HELLO, &hello, sizeof(hello), NULL, 0, &body, &cap, &blen, NULL);
	/* A daemon older than the extended status sends a shorter welcome. */
	if (r >= 0 && blen >= sizeof(w)) {
		memcpy(&w, body, sizeof(w));
		ext = w.features & DP_HELLO_STATUS_EXT;
	}
	/* Refused (duetd's bounds): its sentence says why. */
	if (r < 0 && blen && body)
		snprintf(why, sizeof(why), "%.*s", (int)blen, (const char *)body);
	if (r >= 0) {
		blen = 0;
		r = cl_call(fd, &seq, DP_DAEMON_STATUS, NULL, 0, NULL, 0, &body, &cap, &blen, NULL);
	}
	if (r >= 0 && blen < sizeof(dd))
		r = -EPROTO;
	off = sizeof(dd);
	if (r >= 0 && ext && dp_daemon_ext_get(body, blen, &x, &off))
		r = -EPROTO;
	if (r < 0)
		goto none;
	memcpy(&dd, body, sizeof(dd));
	if (json) {
		printf(",\"daemon\":{\"socket\":");
		put_jstr(sock);
		printf(",\"pid\":%u,\"flush\":\"%s\",\"clients\":%u,\"ntasks\":%u,"
		       "\"uptime_ms\":%llu,\"rss_kb\":%llu,\"engine_bytes\":%llu,\"events\":%llu,"
		       "\"max_pending\":%llu",
		       dd.pid, flush_name(dd.flush), dd.nclients, dd.ntasks, ull(dd.uptime_ms),
		       ull(dd.rss_kb), ull(dd.engine_bytes), ull(dd.events), ull(dd.max_pending));
	} else {
		printf("duetd: pid %u on %s, FLUSHED %s, %u clients, %u tasks, up %llu s, "
		       "%llu KiB resident (engine %llu KiB), %llu events, bound %llu pending pages per task\n",
		       dd.pid, sock, flush_name(dd.flush), dd.nclients, dd.ntasks,
		       ull(dd.uptime_ms / 1000), ull(dd.rss_kb), ull(dd.engine_bytes / 1024),
		       ull(dd.events), ull(dd.max_pending));
	}
	if (ext) {
		show_bounds(&dd, &x, json);
		if (json)
			printf(",\"users\":[");
		r = show_users(body, blen, &off, &x, json);
		if (json)
			printf("]");
	}
	if (json)
		printf(",\"tasks\":[");
	else if (off < blen)
		printf("  %4s  %-16s %6s %7s  %-24s %9s %5s %7s %11s %8s %9s  %s\n", "ID", "NAME",
		       "UID", "PID", "MASK", "PENDING", "LOST", "RESYNCS", "SCAN", "MARKS", "KIB",
		       "DIRECTORY");
	for (bool first = true; r >= 0; first = false) {
		struct dp_task_info ti;
		struct dp_task_ext te;
		char name[DP_MAX_NAME + 1], dir[DP_MAX_PATH + 1];

		r = dp_next_task_ext(body, blen, &off, ext ? &x : NULL, &ti, &te, name,
				     sizeof(name), dir, sizeof(dir));
		if (r <= 0)
			break;
		show_task(&ti, ext ? &te : NULL, name, dir, first, json);
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
	if (cli_duetd_refused(r)) {
		/* A daemon is there, but will not serve this process as it is. */
		if (!json)
			printf("duetd: refused this client on %s\n", sock);
		fflush(stdout);
		cli_say_duetd_refused(prog, sock, r, why);
		return r;
	}
	if (!json)
		printf("duetd: not running on %s (%s)\n", sock,
		       why[0] ? why : r == -ENOENT || r == -ECONNREFUSED ? "no one listens" :
					strerror(-r));
	return 1;
}

/*
 * Which sources this kernel gives, as the event source chooses them
 * (dc_sources_choose()): each type asked alone, so one missing event does
 * not hide the others.
 */
static bool have_type(unsigned int type)
{
	struct dc_sources src;

	return !dc_sources_choose(type, false, &src);
}

static void semantics(enum dc_dirty_sem *dirty, enum dc_flush_sem *flush)
{
	struct dc_sources src;

	*dirty = DC_DIRTY_NONE;
	*flush = DC_FLUSH_NONE;
	if (!dc_sources_choose(DC_DIRTY | DC_FLUSHED, false, &src)) {
		*dirty = src.dirty_sem;
		*flush = src.flush_sem;
	}
}

static const struct option status_lo[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "socket", required_argument, NULL, 's' },
	{ 0 },
};

static const struct cli_opts status_opts = {
	.usage = "usage: duet status [--json] [--socket PATH]\n"
		 "Shows the event semantics this kernel gives, duet's tracing instances,\n"
		 "and duetd with its tasks (socket: $DUET_SOCKET or " DP_DEFAULT_SOCKET ").\n",
	.shortopts = "js:",
	.longopts = status_lo,
};

struct status_args {
	const char *sock;
	bool json;
};

static int status_opt(void *ud, const struct cli_arg *a)
{
	struct status_args *sa = ud;

	if (a->key == 'j')
		sa->json = true;
	else if (a->key == 's')
		sa->sock = a->value;
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct status_args sa = {
		.sock = getenv("DUET_SOCKET") ? getenv("DUET_SOCKET") : DP_DEFAULT_SOCKET,
	};
	bool json, first = true, exact, dirty_bdi, flush_inode, added, removed;
	enum dc_dirty_sem dsem;
	enum dc_flush_sem fsem;
	const char *sock, *dir, *dirty, *flush, *reader;
	char path[4096], rdesc[160];
	struct dirent *de;
	int r;
	DIR *d;

	r = cli_options(&status_opts, argc, argv, status_opt, &sa);
	if (r != CLI_GO)
		return r;
	json = sa.json;
	sock = sa.sock;
	r = dc_tracefs_ensure(&dir);
	if (r == -EACCES && geteuid()) {
		/* Not root: duetd is what an unprivileged user has. */
		if (json)
			printf("{\"v\":1");
		r = show_daemon(argv[0], sock, json);
		if (json)
			printf("}\n");
		return r ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	}
	if (r) {
		cli_say_tracefs(argv[0], r);
		return CLI_EXIT_FAIL;
	}
	semantics(&dsem, &fsem);
	exact = dsem == DC_DIRTY_EXACT;
	dirty_bdi = dsem == DC_DIRTY_BDI;
	flush_inode = fsem == DC_FLUSH_INODE;
	added = have_type(DC_ADDED);
	removed = have_type(DC_REMOVED);
	dirty = exact ? "exact" : dirty_bdi ? "bdi-page" : "none";
	flush = exact ? "exact" : flush_inode ? "inode" : "none";
	if (json) {
		printf("{\"v\":1,\"added\":%s,\"removed\":%s,\"dirty\":\"%s\",\"flush\":\"%s\",\"instances\":[",
		       added ? "\"exact\"" : "\"none\"",
		       removed ? "\"exact\"" : "\"none\"", dirty, flush);
	} else {
		printf("ADDED    %s\n", added ? "exact per folio (filemap/mm_filemap_add_to_page_cache)" : "not available");
		printf("REMOVED  %s\n", removed ? "exact per folio (filemap/mm_filemap_delete_from_page_cache)" : "not available");
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
	/*
	 * How a session opened now reads the ring buffer, found by opening
	 * one (and removing it): after the listing, which shows instances
	 * left by killed runs before the probe, like any run, removes them.
	 */
	if (dc_live_probe_reader(rdesc, sizeof(rdesc), &reader)) {
		reader = "unknown";
		snprintf(rdesc, sizeof(rdesc), "unknown (no tracing instance could be made)");
	}
	if (json)
		printf(",\"reader\":\"%s\"", reader);
	else
		printf("reader:  %s\n", !strncmp(rdesc, "ring buffer read: ", 18) ? rdesc + 18 : rdesc);
	/* No daemon is no failure for root; one that refuses it is. */
	r = show_daemon(argv[0], sock, json);
	if (json)
		printf("}\n");
	return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
