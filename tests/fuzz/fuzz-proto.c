// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: the duetd protocol (libduet/proto.c) on bytes from a
 * socket. The first byte picks the direction: even, a client's stream as
 * duetd parses it (messages, then each request's payload); odd, a
 * daemon's stream as a client parses it (every reply body through each
 * decoder, DAEMON_STATUS bodies walked). Invariants: a message never
 * claims more than the input or the bound; strings come back
 * NUL-terminated within their bound; a status walk stays inside its
 * body; a decoder accepts a body exactly when it holds the form it reads.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void requests(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct dp_msg m;
		struct dp_request r;
		int n = dp_parse(data + off, size - off, DP_MAX_REQUEST, &m);

		if (n <= 0)
			return;
		if ((size_t)n > size - off || m.h.len > DP_MAX_REQUEST ||
		    (size_t)n != DP_HDR_SIZE + m.h.len)
			abort();
		if (!dp_parse_request(&m, &r)) {
			switch (r.type) {
			case DP_TASK_NEW:
				if (strlen(r.u.task_new.name) > DP_MAX_NAME ||
				    r.u.task_new.path[0] != '/' ||
				    strlen(r.u.task_new.path) > DP_MAX_PATH)
					abort();
				break;
			case DP_DONE:
				if (!r.u.done.n || r.u.done.n > DP_MAX_DONE_OPS)
					abort();
				for (uint32_t i = 0; i < r.u.done.n; i++) {
					struct dp_done_op op;

					dp_done_op_get(&r, i, &op);
				}
				break;
			case DP_FILEID:
			case DP_SAVE:
			case DP_LOAD:
				if (r.u.path[0] != '/' || strlen(r.u.path) > DP_MAX_PATH)
					abort();
				break;
			case DP_RESIDENCY:
				if (r.u.resid.flags & DP_RESID_PATHS) {
					const char *q = r.u.resid.list;
					const char *end = q + r.u.resid.list_len;
					uint32_t k = 0;

					if (!r.u.resid.list_len || end[-1] ||
					    r.u.resid.npaths > DP_RESID_MAX_PATHS)
						abort();
					for (; q < end; q += strlen(q) + 1, k++)
						if (q[0] != '/' || strlen(q) > DP_MAX_PATH)
							abort();
					if (k != r.u.resid.npaths)
						abort();
				} else if (strlen(r.u.resid.name) > DP_MAX_NAME ||
					   (r.u.resid.path[0] && r.u.resid.path[0] != '/')) {
					abort();
				}
				break;
			}
		}
		off += (size_t)n;
	}
}

/* The same body read as an extended one: every part stays inside it. */
static void status_ext(const char *body, size_t blen)
{
	char name[DP_MAX_NAME + 1], dir[DP_MAX_PATH + 1];
	struct dp_daemon_ext x;
	struct dp_task_info ti;
	struct dp_task_ext te;
	size_t off;

	if (dp_daemon_ext_get(body, blen, &x, &off))
		return;
	if (off > blen || x.size < offsetof(struct dp_daemon_ext, viewer_uid) || x.size % 8)
		abort();
	for (uint32_t i = 0; i < x.nusers; i++) {
		struct dp_user u;
		size_t before = off;

		if (dp_next_user(body, blen, &off, &x, &u))
			return;
		if (off > blen || off - before != x.user_size)
			abort();
	}
	while (dp_next_task_ext(body, blen, &off, &x, &ti, &te, name, sizeof(name), dir,
				sizeof(dir)) == 1)
		if (off > blen || strlen(name) > ti.name_len || strlen(dir) > ti.dir_len)
			abort();
}

/* Each fixed-form decoder on one body: accepted exactly when long enough. */
static void fixed_bodies(const struct dp_reply *rep, const void *body, size_t blen)
{
	static struct duet_item items[DP_MAX_FETCH];
	struct duet_task_status st;
	struct duet_fileid f;
	struct dp_task_id id;
	struct dp_welcome w;
	struct dp_daemon dd;

	if (!dp_welcome_get(body, blen, &w) != (blen >= DP_WELCOME_MIN))
		abort();
	if (!dp_task_id_get(body, blen, &id) != (blen >= sizeof(id)))
		abort();
	if (!dp_fileid_get(body, blen, &f) != (blen >= sizeof(f)))
		abort();
	if (!dp_daemon_get(body, blen, &dd) != (blen >= sizeof(dd)))
		abort();
	if (!dp_task_stats_get(body, blen, &st) != (blen >= DP_TASK_STATS_SIZE) ||
	    (blen >= DP_TASK_STATS_SIZE && st.sz != sizeof(st)))
		abort();
	if (rep->result >= 0 && (uint32_t)rep->result <= DP_MAX_FETCH &&
	    !dp_items_get(body, blen, (uint32_t)rep->result, items) !=
		    (blen >= (size_t)rep->result * sizeof(items[0])))
		abort();
}

static void replies(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct dp_msg m;
		int n = dp_parse(data + off, size - off, DP_MAX_REPLY, &m);

		if (n <= 0)
			return;
		if ((size_t)n > size - off || m.h.len > DP_MAX_REPLY)
			abort();
		if (m.h.type == DP_REPLY || m.h.type == DP_ERROR) {
			struct dp_reply rep;
			const void *body;
			size_t blen;

			if (!dp_reply_get(m.payload, m.h.len, &rep, &body, &blen) !=
			    (m.h.len >= sizeof(rep)))
				abort();
			if (m.h.len >= sizeof(rep)) {
				if (blen != m.h.len - sizeof(rep))
					abort();
				fixed_bodies(&rep, body, blen);
			}
		}
		if (m.h.type == DP_REPLY && m.h.len >= sizeof(struct dp_reply) + sizeof(struct dp_daemon)) {
			const char *body = (const char *)m.payload + sizeof(struct dp_reply);
			size_t blen = m.h.len - sizeof(struct dp_reply), toff = sizeof(struct dp_daemon);
			char name[DP_MAX_NAME + 1], dir[DP_MAX_PATH + 1];
			struct dp_task_info ti;
			int k;

			while ((k = dp_next_task(body, blen, &toff, &ti, name, sizeof(name), dir,
						 sizeof(dir))) == 1)
				if (toff > blen || strlen(name) > ti.name_len || strlen(dir) > ti.dir_len)
					abort();
			status_ext(body, blen);
		}
		if (m.h.type == DP_REPLY && m.h.len >= sizeof(struct dp_reply)) {
			const char *body = (const char *)m.payload + sizeof(struct dp_reply);
			size_t blen = m.h.len - sizeof(struct dp_reply), roff;
			struct dp_resid_reply rr;
			struct dp_resid_entry e;
			char path[DP_MAX_PATH + 1];

			if (!dp_resid_reply_get(body, blen, &rr, &roff))
				while (dp_next_resid(body, blen, &roff, &rr, &e, path) == 1)
					if (roff > blen || path[0] != '/' || strlen(path) != e.path_len)
						abort();
		}
		off += (size_t)n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		replies(data + 1, size - 1);
	else
		requests(data + 1, size - 1);
	return 0;
}
