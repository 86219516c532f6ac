// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The duetd protocol codec (proto.h). Pure: no I/O, no allocation.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "proto.h"

/*
 * The structs proto.h sends as they are: their sizes are the wire's
 * (natural alignment, no padding), whatever the compiler.
 */
_Static_assert(sizeof(struct dp_hdr) == DP_HDR_SIZE, "header");
_Static_assert(sizeof(struct dp_hello) == 8, "HELLO");
_Static_assert(sizeof(struct dp_welcome) == 32 && DP_WELCOME_MIN == 24, "welcome");
_Static_assert(sizeof(struct dp_task_new) == 16, "TASK_NEW");
_Static_assert(sizeof(struct dp_task_id) == 8, "TASK_NEW's reply");
_Static_assert(sizeof(struct dp_done) == 8 && sizeof(struct dp_done_op) == 40, "DONE");
_Static_assert(sizeof(struct dp_reply) == 8, "reply");
_Static_assert(sizeof(struct duet_fileid) == 24 && sizeof(struct duet_item) == 48,
	       "FILEID, PATH and FETCH");
_Static_assert(sizeof(struct dp_daemon) == 56 && sizeof(struct dp_daemon_ext) == 136 &&
	       sizeof(struct dp_user) == 40 && sizeof(struct dp_task_ext) == 48,
	       "DAEMON_STATUS");

int dp_parse(const void *buf, size_t len, size_t max, struct dp_msg *m)
{
	struct dp_hdr h;

	if (len < DP_HDR_SIZE)
		return 0;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != DP_MAGIC)
		return -EBADMSG;
	if (h.version != DP_VERSION) {
		m->h = h;
		m->payload = NULL;
		return -EPROTONOSUPPORT;
	}
	if (!h.type || h.type >= DP_TYPE_MAX || (h.type >= DP_REQ_MAX && h.type < DP_REPLY) ||
	    h.len > max)
		return -EBADMSG;
	if (len - DP_HDR_SIZE < h.len)
		return 0;
	m->h = h;
	m->payload = (const char *)buf + DP_HDR_SIZE;
	return (int)(DP_HDR_SIZE + h.len);
}

/* A string of the payload: no NUL inside, at most max bytes. */
static int get_str(const char *p, size_t len, size_t max, char *out)
{
	if (len > max || memchr(p, '\0', len))
		return -EBADMSG;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static int get_path(const char *p, size_t len, char *out)
{
	if (!len || p[0] != '/')
		return -EBADMSG;
	return get_str(p, len, DP_MAX_PATH, out);
}

int dp_parse_request(const struct dp_msg *m, struct dp_request *r)
{
	const char *p = m->payload;
	uint32_t len = m->h.len;

	r->type = m->h.type;
	r->seq = m->h.seq;
	switch (m->h.type) {
	case DP_HELLO:
		if (len != sizeof(r->u.hello))
			return -EBADMSG;
		memcpy(&r->u.hello, p, len);
		return 0;
	case DP_TASK_NEW: {
		struct dp_task_new tn;

		if (len < sizeof(tn))
			return -EBADMSG;
		memcpy(&tn, p, sizeof(tn));
		if ((uint32_t)tn.name_len + tn.path_len != len - sizeof(tn))
			return -EBADMSG;
		r->u.task_new.mask = tn.mask;
		r->u.task_new.flags = tn.flags;
		r->u.task_new.latency_ms = tn.latency_ms;
		if (tn.flags & ~DP_TASK_FLAGS)
			return -EBADMSG;
		if (get_str(p + sizeof(tn), tn.name_len, DP_MAX_NAME, r->u.task_new.name))
			return -EBADMSG;
		return get_path(p + sizeof(tn) + tn.name_len, tn.path_len, r->u.task_new.path);
	}
	case DP_TASK_START:
	case DP_TASK_STATUS:
	case DP_DAEMON_STATUS:
		return len ? -EBADMSG : 0;
	case DP_FETCH:
		if (len != sizeof(uint32_t))
			return -EBADMSG;
		memcpy(&r->u.fetch_max, p, len);
		return 0;
	case DP_DONE: {
		struct dp_done d;
		uint32_t op;

		if (len < sizeof(d))
			return -EBADMSG;
		memcpy(&d, p, sizeof(d));
		op = d.op & ~DP_DONE_REPLAY;
		if (op < DP_DONE_SET || op > DP_DONE_CHECK || !d.n || d.n > DP_MAX_DONE_OPS ||
		    (op == DP_DONE_CHECK && (d.n != 1 || (d.op & DP_DONE_REPLAY))) ||
		    len != sizeof(d) + (size_t)d.n * sizeof(struct dp_done_op))
			return -EBADMSG;
		r->u.done.op = d.op;
		r->u.done.n = d.n;
		r->u.done.ops = (const void *)(p + sizeof(d));
		return 0;
	}
	case DP_FILEID:
	case DP_SAVE:
	case DP_LOAD:
		return get_path(p, len, r->u.path);
	case DP_PATH:
		if (len != sizeof(r->u.fileid))
			return -EBADMSG;
		memcpy(&r->u.fileid, p, len);
		return 0;
	case DP_RESIDENCY: {
		struct dp_residency rs;

		if (len < sizeof(rs))
			return -EBADMSG;
		memcpy(&rs, p, sizeof(rs));
		if ((uint32_t)rs.name_len + rs.path_len != len - sizeof(rs) ||
		    (rs.flags & ~(DP_RESID_NEXT | DP_RESID_PATHS)) ||
		    (rs.flags & DP_RESID_NEXT && rs.flags & DP_RESID_PATHS))
			return -EBADMSG;
		r->u.resid.flags = rs.flags;
		if (rs.flags & DP_RESID_PATHS) {
			const char *q = p + sizeof(rs), *end = q + rs.path_len;
			uint32_t n = 0;

			/* Paths too long for the header's u16 come in another request. */
			if (rs.name_len || !rs.path_len || end[-1])
				return -EBADMSG;
			for (; q < end; q += strlen(q) + 1) {
				size_t l = strlen(q);

				if (q[0] != '/' || l > DP_MAX_PATH || ++n > DP_RESID_MAX_PATHS)
					return -EBADMSG;
			}
			r->u.resid.list = p + sizeof(rs);
			r->u.resid.list_len = rs.path_len;
			r->u.resid.npaths = n;
			r->u.resid.name[0] = r->u.resid.path[0] = '\0';
			return 0;
		}
		if (rs.flags & DP_RESID_NEXT) {
			if (rs.name_len || rs.path_len)
				return -EBADMSG;
			r->u.resid.name[0] = r->u.resid.path[0] = '\0';
			return 0;
		}
		if (!rs.name_len ||
		    get_str(p + sizeof(rs), rs.name_len, DP_MAX_NAME, r->u.resid.name))
			return -EBADMSG;
		if (!rs.path_len) {
			r->u.resid.path[0] = '\0';
			return 0;
		}
		return get_path(p + sizeof(rs) + rs.name_len, rs.path_len, r->u.resid.path);
	}
	}
	return -EBADMSG;	/* a reply type sent to the daemon */
}

void dp_done_op_get(const struct dp_request *r, uint32_t i, struct dp_done_op *op)
{
	memcpy(op, (const char *)r->u.done.ops + (size_t)i * sizeof(*op), sizeof(*op));
}

size_t dp_build(void *buf, uint16_t type, uint32_t seq, const void *a, size_t alen,
		const void *b, size_t blen, const void *c, size_t clen)
{
	struct dp_hdr h = {
		.magic = DP_MAGIC,
		.version = DP_VERSION,
		.type = type,
		.len = (uint32_t)(alen + blen + clen),
		.seq = seq,
	};
	char *p = buf;

	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	if (alen)
		memcpy(p, a, alen);
	p += alen;
	if (blen)
		memcpy(p, b, blen);
	p += blen;
	if (clen)
		memcpy(p, c, clen);
	return sizeof(h) + alen + blen + clen;
}

/* ---- replies, read by the growth rule (proto.h) ---- */

/*
 * A body of at least min bytes into out (size bytes): the first size
 * bytes of it, zeros past a shorter body, the rest of a longer one
 * ignored.
 */
static int get_fixed(const void *body, size_t len, size_t min, void *out, size_t size)
{
	if (len < min)
		return -EBADMSG;
	memset(out, 0, size);
	memcpy(out, body, len < size ? len : size);
	return 0;
}

int dp_reply_get(const void *payload, size_t len, struct dp_reply *rep, const void **body,
		 size_t *blen)
{
	if (len < sizeof(*rep))
		return -EBADMSG;
	memcpy(rep, payload, sizeof(*rep));
	*body = (const char *)payload + sizeof(*rep);
	*blen = len - sizeof(*rep);
	return 0;
}

int dp_welcome_get(const void *body, size_t len, struct dp_welcome *w)
{
	return get_fixed(body, len, DP_WELCOME_MIN, w, sizeof(*w));
}

int dp_task_id_get(const void *body, size_t len, struct dp_task_id *id)
{
	return get_fixed(body, len, sizeof(*id), id, sizeof(*id));
}

int dp_fileid_get(const void *body, size_t len, struct duet_fileid *f)
{
	return get_fixed(body, len, sizeof(*f), f, sizeof(*f));
}

int dp_items_get(const void *body, size_t len, uint32_t n, struct duet_item *items)
{
	if (len / sizeof(*items) < n)
		return -EBADMSG;
	if (n)
		memcpy(items, body, (size_t)n * sizeof(*items));
	return 0;
}

int dp_daemon_get(const void *body, size_t len, struct dp_daemon *dd)
{
	return get_fixed(body, len, sizeof(*dd), dd, sizeof(*dd));
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* ---- the task counters: the one place they are (de)serialised ---- */

/* struct duet_task_status's counters, in wire order. */
static const size_t stats_fields[] = {
	offsetof(struct duet_task_status, events),
	offsetof(struct duet_task_status, items),
	offsetof(struct duet_task_status, pages),
	offsetof(struct duet_task_status, coalesced),
	offsetof(struct duet_task_status, cancelled),
	offsetof(struct duet_task_status, lost),
	offsetof(struct duet_task_status, resyncs),
	offsetof(struct duet_task_status, pending),
	offsetof(struct duet_task_status, scan_files),
	offsetof(struct duet_task_status, scan_done),
};

_Static_assert(sizeof(stats_fields) / sizeof(stats_fields[0]) * sizeof(uint64_t) ==
	       DP_TASK_STATS_SIZE, "DP_TASK_STATS_SIZE is the counters' wire size");

size_t dp_task_stats_put(void *buf, const struct duet_task_status *st)
{
	char *p = buf;

	for (size_t i = 0; i < sizeof(stats_fields) / sizeof(stats_fields[0]); i++)
		memcpy(p + i * sizeof(uint64_t), (const char *)st + stats_fields[i],
		       sizeof(uint64_t));
	return DP_TASK_STATS_SIZE;
}

/* The counters at p (DP_TASK_STATS_SIZE bytes, any alignment). */
static void stats_read(const char *p, struct duet_task_status *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	for (size_t i = 0; i < sizeof(stats_fields) / sizeof(stats_fields[0]); i++)
		memcpy((char *)st + stats_fields[i], p + i * sizeof(uint64_t), sizeof(uint64_t));
}

int dp_task_stats_get(const void *buf, size_t len, struct duet_task_status *st)
{
	if (len < DP_TASK_STATS_SIZE)
		return -EBADMSG;
	stats_read(buf, st);
	return 0;
}

/* The fixed part of a status task entry: its fields at their wire offsets. */
#define TI_ID		0
#define TI_UID		4
#define TI_PID		8
#define TI_MASK		12
#define TI_NAME_LEN	16
#define TI_DIR_LEN	18
#define TI_PAUSED	20
#define TI_STATS	24

_Static_assert(TI_STATS + DP_TASK_STATS_SIZE == DP_TASK_INFO_SIZE,
	       "DP_TASK_INFO_SIZE is the task entry's fixed part");

size_t dp_task_info_put(void *buf, const struct dp_task_info *ti)
{
	char *p = buf;

	memcpy(p + TI_ID, &ti->id, 4);
	memcpy(p + TI_UID, &ti->uid, 4);
	memcpy(p + TI_PID, &ti->pid, 4);
	memcpy(p + TI_MASK, &ti->mask, 4);
	memcpy(p + TI_NAME_LEN, &ti->name_len, 2);
	memcpy(p + TI_DIR_LEN, &ti->dir_len, 2);
	memcpy(p + TI_PAUSED, &ti->paused, 4);
	dp_task_stats_put(p + TI_STATS, &ti->st);
	return DP_TASK_INFO_SIZE;
}

static void task_info_read(const char *p, struct dp_task_info *ti)
{
	memcpy(&ti->id, p + TI_ID, 4);
	memcpy(&ti->uid, p + TI_UID, 4);
	memcpy(&ti->pid, p + TI_PID, 4);
	memcpy(&ti->mask, p + TI_MASK, 4);
	memcpy(&ti->name_len, p + TI_NAME_LEN, 2);
	memcpy(&ti->dir_len, p + TI_DIR_LEN, 2);
	memcpy(&ti->paused, p + TI_PAUSED, 4);
	stats_read(p + TI_STATS, &ti->st);
}

/* Bound on the size a part claims: a reader never walks far on its word. */
#define DP_MAX_PART	4096u

/* Copies a part of claimed size sz into out (outsz known bytes, rest 0). */
static int get_part(const char *p, size_t len, size_t *off, size_t sz, void *out, size_t outsz)
{
	if (sz % 8 || sz > DP_MAX_PART || *off > len || len - *off < sz)
		return -EBADMSG;
	memset(out, 0, outsz);
	memcpy(out, p + *off, sz < outsz ? sz : outsz);
	*off += sz;
	return 0;
}

int dp_next_task_ext(const void *body, size_t len, size_t *off, const struct dp_daemon_ext *x,
		     struct dp_task_info *ti, struct dp_task_ext *te, char *name, size_t namelen,
		     char *dir, size_t dirlen)
{
	const char *p = body;
	size_t o = *off;

	if (o == len)
		return 0;
	if (o > len || len - o < DP_TASK_INFO_SIZE)
		return -EBADMSG;
	task_info_read(p + o, ti);
	o += DP_TASK_INFO_SIZE;
	if (ti->name_len > DP_MAX_NAME || ti->dir_len > DP_MAX_PATH ||
	    len - o < pad8(ti->name_len) || len - o - pad8(ti->name_len) < pad8(ti->dir_len) ||
	    namelen <= ti->name_len || dirlen <= ti->dir_len)
		return -EBADMSG;
	memcpy(name, p + o, ti->name_len);
	name[ti->name_len] = '\0';
	o += pad8(ti->name_len);
	memcpy(dir, p + o, ti->dir_len);
	dir[ti->dir_len] = '\0';
	o += pad8(ti->dir_len);
	if (x) {
		struct dp_task_ext tmp;

		if (get_part(p, len, &o, x->task_ext_size, te ? te : &tmp, sizeof(tmp)))
			return -EBADMSG;
	}
	*off = o;
	return 1;
}

int dp_next_task(const void *body, size_t len, size_t *off, struct dp_task_info *ti,
		 char *name, size_t namelen, char *dir, size_t dirlen)
{
	return dp_next_task_ext(body, len, off, NULL, ti, NULL, name, namelen, dir, dirlen);
}

int dp_daemon_ext_get(const void *body, size_t len, struct dp_daemon_ext *x, size_t *off)
{
	const char *p = body;
	size_t o = sizeof(struct dp_daemon);
	uint32_t sz;

	if (len < o + sizeof(sz))
		return -EBADMSG;
	memcpy(&sz, p + o, sizeof(sz));
	/* At least the sizes a reader needs to find the rest. */
	if (sz < offsetof(struct dp_daemon_ext, viewer_uid) ||
	    get_part(p, len, &o, sz, x, sizeof(*x)))
		return -EBADMSG;
	/* Every user entry has bytes, and all of them fit: a walk is bounded. */
	if (!x->user_size || x->user_size % 8 || x->user_size > DP_MAX_PART ||
	    x->task_ext_size % 8 || x->task_ext_size > DP_MAX_PART ||
	    (uint64_t)x->nusers * x->user_size > len - o)
		return -EBADMSG;
	*off = o;
	return 0;
}

int dp_next_user(const void *body, size_t len, size_t *off, const struct dp_daemon_ext *x,
		 struct dp_user *u)
{
	return get_part(body, len, off, x->user_size, u, sizeof(*u));
}

int dp_resid_reply_get(const void *body, size_t len, struct dp_resid_reply *rr, size_t *off)
{
	if (len < sizeof(*rr))
		return -EBADMSG;
	memcpy(rr, body, sizeof(*rr));
	if (rr->entry_size < sizeof(struct dp_resid_entry) || rr->entry_size % 8)
		return -EBADMSG;
	*off = sizeof(*rr);
	return 0;
}

int dp_next_resid(const void *body, size_t len, size_t *off, const struct dp_resid_reply *rr,
		  struct dp_resid_entry *e, char *path)
{
	const char *p = body;
	size_t padded;

	if (*off == len)
		return 0;
	if (*off > len || len - *off < rr->entry_size)
		return -EBADMSG;
	memcpy(e, p + *off, sizeof(*e));
	if (e->path_len > DP_MAX_PATH || !e->path_len)
		return -EBADMSG;
	padded = ((size_t)e->path_len + 7) & ~(size_t)7;
	if (len - *off - rr->entry_size < padded)
		return -EBADMSG;
	memcpy(path, p + *off + rr->entry_size, e->path_len);
	path[e->path_len] = '\0';
	if (path[0] != '/' || memchr(path, '\0', e->path_len))
		return -EBADMSG;
	*off += rr->entry_size + padded;
	return 1;
}
