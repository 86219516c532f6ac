// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd's DAEMON_STATUS reply (proto.h). What a client may learn is
 * decided here, not by the program that prints it: a client that is not
 * root sees its own user's tasks and its own user's connections in full,
 * and of everyone else only counts (tasks, connections); root sees all.
 * A task's name, directory, pid and uid would otherwise tell a user what
 * another user works on, down to a directory inside a tree it cannot
 * even search.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "duetd.h"
#include "engine.h"
#include "internal.h"

static uint64_t rss_kb(void)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static bool may_see(const struct client *viewer, const struct client *t)
{
	return !viewer->cr.uid || viewer->cr.uid == t->cr.uid;
}

static bool user_listed(const struct client *viewer, const struct duser *u)
{
	return !viewer->cr.uid || viewer->u == u;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void put(struct client *c, const void *p, size_t n)
{
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

/* n bytes of p, then zeros to the next multiple of 8. */
static void put_padded(struct client *c, const void *p, size_t n)
{
	static const char zeros[8];

	put(c, p, n);
	put(c, zeros, pad8(n) - n);
}

static void fill_ext(const struct client *c, struct dp_daemon_ext *x,
		     const struct duet__session_stats *ss, unsigned int nusers, unsigned int shown)
{
	memset(x, 0, sizeof(*x));
	x->size = sizeof(*x);
	x->nusers = nusers;
	x->user_size = sizeof(struct dp_user);
	x->task_ext_size = sizeof(struct dp_task_ext);
	x->viewer_uid = (uint32_t)c->cr.uid;
	x->others_tasks = d.ntasks - shown;
	x->others_clients = c->cr.uid ? d.nclients - c->u->conns : 0;
	x->max_connections = d.max_clients;
	x->max_connections_per_user = d.max_per_user;
	x->max_tasks = DE_MAX_TASKS;
	x->max_tasks_per_user = d.max_tasks_per_user;
	x->request_timeout_ms = d.request_timeout_s * 1000u;
	x->idle_timeout_ms = d.idle_timeout_s * 1000u;
	x->max_done_marks = d.max_done_marks;
	x->fd_limit = d.fd_limit;
	x->fd_need = d.fd_need;
	x->accepted = d.accepted;
	x->refused_total = d.refused_total;
	x->refused_user = d.refused_user;
	x->closed_partial = d.closed_partial;
	x->closed_idle = d.closed_idle;
	x->page_bytes = ss->page_bytes;
	x->mark_bytes = ss->mark_bytes;
}

/* One task entry: struct dp_task_info, name, dir, and with ext its estimate. */
static void put_task(struct client *c, const struct client *t, bool ext,
		     const struct duet__session_stats *ss)
{
	struct duet__task_stats xs = { 0 };
	struct dp_task_info ti = {
		.id = t->id,
		.uid = (uint32_t)t->cr.uid,
		.pid = (uint32_t)t->cr.pid,
		.mask = t->mask,
		.name_len = (uint16_t)strlen(t->name),
		.dir_len = (uint16_t)strlen(t->dir),
	};
	struct dp_task_ext te = { .size = sizeof(te) };

	duet__task_stats(t->task, &xs);
	ti.paused = xs.paused;
	ti.st.sz = sizeof(ti.st);
	duet_task_status(t->task, &ti.st);
	c->outlen += dp_task_info_put(c->out + c->outlen, &ti);
	put_padded(c, t->name, ti.name_len);
	put_padded(c, t->dir, ti.dir_len);
	if (!ext)
		return;
	te.flags = (xs.scan_complete ? DP_TASK_SCAN_COMPLETE : 0) |
		   (t->polite ? DP_TASK_IS_POLITE : 0);
	te.done_marks = xs.done_marks;
	te.mem_in = CLIENT_IN_BYTES;
	te.mem_out = t->outcap;
	te.mem_pending = ti.st.pending * ss->page_bytes;
	te.mem_done = xs.done_marks * ss->mark_bytes;
	put(c, &te, sizeof(te));
}

void do_daemon_status(struct client *c, const struct dp_request *rq)
{
	struct duet__session_stats ss = { 0 };
	struct dp_daemon dd = {
		.pid = (uint32_t)getpid(),
		.ntasks = d.ntasks,
		.nclients = d.nclients,
		.uptime_ms = (now_ns() - d.start_ns) / 1000000u,
		.rss_kb = rss_kb(),
		.max_pending = d.max_pending,
	};
	bool ext = c->features & DP_HELLO_STATUS_EXT;
	struct dp_reply rep = { 0 };
	size_t len = sizeof(rep) + sizeof(dd), start;
	unsigned int nusers = 0, shown = 0;
	int fs = duet_session_flush_semantics(d.s);
	struct duser *u, *tmp;
	uint32_t plen;

	dd.flush = fs > 0 ? (uint32_t)fs : 0;
	if (!duet__session_stats(d.s, &ss)) {
		dd.events = ss.events;
		dd.engine_bytes = ss.engine_bytes;
	}
	for (struct client *t = d.clients; t; t = t->next) {
		if (!t->task || !may_see(c, t))
			continue;
		shown++;
		len += DP_TASK_INFO_SIZE + pad8(strlen(t->name)) + pad8(strlen(t->dir)) +
		       (ext ? sizeof(struct dp_task_ext) : 0);
	}
	if (ext) {
		HASH_ITER(hh, d.users, u, tmp)
			nusers += user_listed(c, u);
		len += sizeof(struct dp_daemon_ext) + (size_t)nusers * sizeof(struct dp_user);
	}
	if (len > DP_MAX_REPLY || reserve_out(c, DP_HDR_SIZE + len)) {
		reply(c, rq->seq, -ENOMEM, NULL, 0);
		return;
	}
	start = c->outlen;
	c->outlen += dp_build(c->out + c->outlen, DP_REPLY, rq->seq, &rep, sizeof(rep), &dd,
			      sizeof(dd), NULL, 0);
	if (ext) {
		struct dp_daemon_ext x;

		fill_ext(c, &x, &ss, nusers, shown);
		put(c, &x, sizeof(x));
		HASH_ITER(hh, d.users, u, tmp) {
			struct dp_user du = {
				.uid = (uint32_t)u->uid,
				.clients = u->conns,
				.tasks = u->tasks,
				.refused = u->refused,
				.closed_partial = u->closed_partial,
				.closed_idle = u->closed_idle,
			};

			if (user_listed(c, u))
				put(c, &du, sizeof(du));
		}
	}
	for (struct client *t = d.clients; t; t = t->next)
		if (t->task && may_see(c, t))
			put_task(c, t, ext, &ss);
	/* The header's length covers everything after it. */
	plen = (uint32_t)(c->outlen - start - DP_HDR_SIZE);
	memcpy(c->out + start + offsetof(struct dp_hdr, len), &plen, sizeof(plen));
}
