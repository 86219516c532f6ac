// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libduet's public entry points (duet/duet.h): the checks the public
 * contract defines, once, then the call through the session's backend
 * (backend.h): in-process or daemon. Nothing here knows how either works.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "proto.h"

#define offsetofend(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

/* ---- option structs ---- */

/*
 * Option structs grow at their end and say their size in sz (libbpf's
 * rule, its OPTS_VALID()). A caller's struct may be:
 *  - smaller than this library's (an older header): the fields it lacks
 *    take their defaults (0, which every field documents), and it must
 *    hold at least the fields of the first struct ever published;
 *  - larger (a newer header): accepted only if every byte past what this
 *    library knows is 0, so a field it cannot honour is refused
 *    (-EINVAL), never silently dropped.
 * The struct the backends get is always this library's full size.
 */
static int opts_get(const void *opts, size_t sz, size_t min, const size_t *ends, size_t nends,
		    void *out, size_t size)
{
	const unsigned char *p = opts;
	size_t copy = 0;

	if (sz < min)
		return -EINVAL;
	for (size_t i = size; i < sz; i++)
		if (p[i])
			return -EINVAL;
	/*
	 * Whole fields only (libbpf's OPTS_HAS): a size that ends inside a
	 * field, which no header ever had, leaves that field at its default
	 * rather than half a pointer.
	 */
	for (size_t i = 0; i < nends; i++)
		if (ends[i] <= sz)
			copy = ends[i];
	memset(out, 0, size);
	memcpy(out, opts, copy);
	return 0;
}

#define END(type, field) offsetofend(struct type, field)

static const size_t session_ends[] = {
	END(duet_session_opts, sz), END(duet_session_opts, log), END(duet_session_opts, log_ud),
	END(duet_session_opts, buffer_kb), END(duet_session_opts, flags),
	END(duet_session_opts, subbuf_kb), END(duet_session_opts, socket),
	END(duet_session_opts, backend), END(duet_session_opts, latency_ms),
};

static const size_t task_ends[] = {
	END(duet_task_opts, sz), END(duet_task_opts, name), END(duet_task_opts, mask),
	END(duet_task_opts, path), END(duet_task_opts, latency_ms), END(duet_task_opts, flags),
};

/* Every field is listed: the last one ends the struct, but for its padding. */
#define ALIGNED_END(type, field) \
	((END(type, field) + _Alignof(struct type) - 1) / _Alignof(struct type) * \
	 _Alignof(struct type))
_Static_assert(ALIGNED_END(duet_session_opts, latency_ms) == sizeof(struct duet_session_opts),
	       "session_ends lists every field of struct duet_session_opts");
_Static_assert(ALIGNED_END(duet_task_opts, flags) == sizeof(struct duet_task_opts),
	       "task_ends lists every field of struct duet_task_opts");

/* The first struct duet_session_opts ended with flags. */
#define SESSION_OPTS_MIN END(duet_session_opts, flags)
/* The first struct duet_task_opts ended with path, which is needed. */
#define TASK_OPTS_MIN END(duet_task_opts, path)

int duet__session_opts_get(const struct duet_session_opts *opts, struct duet_session_opts *out)
{
	int r = 0;

	if (opts)
		r = opts_get(opts, opts->sz, SESSION_OPTS_MIN, session_ends,
			     sizeof(session_ends) / sizeof(session_ends[0]), out, sizeof(*out));
	else
		memset(out, 0, sizeof(*out));	/* NULL: every default */
	out->sz = sizeof(*out);
	return r;
}

int duet__task_opts_get(const struct duet_task_opts *opts, struct duet_task_opts *out)
{
	int r;

	if (!opts)
		return -EINVAL;
	r = opts_get(opts, opts->sz, TASK_OPTS_MIN, task_ends,
		     sizeof(task_ends) / sizeof(task_ends[0]), out, sizeof(*out));
	if (r)
		return r;
	out->sz = sizeof(*out);
	/* A flag this library does not know is refused, never ignored. */
	if (out->flags & ~DUET_TASK_POLITE)
		return -EINVAL;
	return out->path ? 0 : -EINVAL;
}

/* ---- sessions ---- */

/*
 * Daemon mode when asked (DUET_SESSION_DAEMON, a socket path, or
 * DUET_SOCKET in the environment), or when not root: only root reads
 * the ring buffer. DUET_SESSION_LOCAL forces in-process mode.
 */
static bool use_daemon(const struct duet_session_opts *o)
{
	if (o->flags & DUET_SESSION_LOCAL)
		return false;
	if ((o->flags & DUET_SESSION_DAEMON) || o->socket || secure_getenv("DUET_SOCKET"))
		return true;
	return geteuid() != 0;
}

EXPORT int duet_session_new(const struct duet_session_opts *opts, struct duet_session **ret)
{
	struct duet_session_opts o;
	const char *sock;
	int r;

	if (!ret)
		return -EINVAL;
	r = duet__session_opts_get(opts, &o);
	if (r)
		return r;
	if ((o.flags & DUET_SESSION_DAEMON) && (o.flags & DUET_SESSION_LOCAL))
		return -EINVAL;
	if (!use_daemon(&o))
		return duet__local_session_new(&o, ret);
	sock = o.socket ? o.socket : secure_getenv("DUET_SOCKET");
	return duet__client_session_new(&o, sock ? sock : DP_DEFAULT_SOCKET, ret);
}

EXPORT void duet_session_free(struct duet_session *s)
{
	if (s)
		s->ops->session_free(s);
}

EXPORT int duet_session_flush_semantics(struct duet_session *s)
{
	return s ? s->ops->flush_semantics(s) : -EINVAL;
}

/* ---- tasks ---- */

EXPORT int duet_task_new(struct duet_session *s, const struct duet_task_opts *opts,
			 struct duet_task **ret)
{
	struct duet_task_opts o;
	int r;

	if (!s || !ret)
		return -EINVAL;
	r = duet__task_opts_get(opts, &o);
	return r ? r : s->ops->task_new(s, &o, ret);
}

EXPORT void duet_task_free(struct duet_task *t)
{
	if (t)
		t->s->ops->task_free(t);
}

EXPORT int duet_task_fd(const struct duet_task *t)
{
	return t ? t->s->ops->task_fd(t) : -EINVAL;
}

EXPORT int duet_task_fetch(struct duet_task *t, struct duet_item *items, size_t n)
{
	if (!t || (n && !items))
		return -EINVAL;
	return t->s->ops->task_fetch(t, items, n);
}

EXPORT int duet_task_fileid(struct duet_task *t, const char *path, struct duet_fileid *ret)
{
	if (!t || !path || !ret)
		return -EINVAL;
	return t->s->ops->task_fileid(t, path, ret);
}

static int done(struct duet_task *t, enum duet__done_op op, const struct duet_fileid *f,
		uint64_t index, uint64_t count)
{
	if (!t || !f)
		return -EINVAL;
	return t->s->ops->task_done(t, op, f, index, count);
}

EXPORT int duet_task_set_done(struct duet_task *t, const struct duet_fileid *f,
			      uint64_t index, uint64_t count)
{
	return done(t, DUET__DONE_SET, f, index, count);
}

EXPORT int duet_task_reset_done(struct duet_task *t, const struct duet_fileid *f,
				uint64_t index, uint64_t count)
{
	return done(t, DUET__DONE_RESET, f, index, count);
}

EXPORT int duet_task_check_done(struct duet_task *t, const struct duet_fileid *f,
				uint64_t index, uint64_t count)
{
	return done(t, DUET__DONE_CHECK, f, index, count);
}

EXPORT int duet_task_path(struct duet_task *t, const struct duet_fileid *f, char *buf,
			  size_t len)
{
	if (!t || !f || !buf)
		return -EINVAL;
	return t->s->ops->task_path(t, f, buf, len);
}

EXPORT int duet_task_save(struct duet_task *t, const char *file)
{
	/* The save writes FILE.tmp-PID-N first, then renames it. */
	if (!t || !file || !*file || strlen(file) + sizeof(".tmp-2147483647-4294967295") > PATH_MAX)
		return -EINVAL;
	return t->s->ops->task_save(t, file);
}

EXPORT int duet_task_load(struct duet_task *t, const char *file)
{
	if (!t || !file)
		return -EINVAL;
	return t->s->ops->task_load(t, file);
}

EXPORT int duet_task_status(struct duet_task *t, struct duet_task_status *st)
{
	struct duet_task_status o = { .sz = sizeof(o) };
	size_t n;
	int r;

	/* The smallest struct ever published ends with pending. */
	if (!t || !st || st->sz < offsetofend(struct duet_task_status, pending))
		return -EINVAL;
	r = t->s->ops->task_status(t, &o);
	if (r)
		return r;
	/*
	 * Only as much as the caller's (possibly older) struct holds, and
	 * the name whole or not at all: a part of it would lack its NUL.
	 */
	n = st->sz < sizeof(o) ? st->sz : sizeof(o);
	if (n < offsetofend(struct duet_task_status, name) &&
	    n > offsetof(struct duet_task_status, name))
		n = offsetof(struct duet_task_status, name);
	o.sz = n;
	memcpy(st, &o, n);
	return 0;
}

EXPORT const char *duet_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case ENOENT:
		return "not found: a path that does not exist, or tracefs or the page-cache events missing";
	case EACCES:
	case EPERM:
		return "permission denied: in-process sessions need root to read the tracing ring "
		       "buffer (others use duetd), and through duetd a directory you cannot read "
		       "cannot be registered";
	case EPROTO:
		return "an event's format has fields this version cannot decode";
	case EBADMSG:
		return "corrupt data (a ring-buffer page, a recorded or saved file)";
	case EOPNOTSUPP:
		return "the kernel lacks a feature this needs";
	case EINVAL:
		return "invalid argument (for a mask: EXISTS with ADDED/REMOVED, or MODIFIED with DIRTY/FLUSHED)";
	case ENOSPC:
		return "no space: a full disk, or already 64 tasks in this session";
	case ESTALE:
		return "stale file identity: the inode number now names another file";
	case EOVERFLOW:
		return "a page index beyond what the engine tracks (2^32 pages)";
	case ECONNREFUSED:
		return "no duetd answers on its socket: start duetd (or run as root for in-process mode)";
	case EPROTONOSUPPORT:
		return "duetd speaks another major version of the protocol than this libduet: "
		       "update one of them";
	case ECONNRESET:
		return "the connection to duetd was lost";
	case EDQUOT:
		return "the task holds as many done marks as duetd allows a task "
		       "(duetd --max-done-marks): reset marks to make room";
	case EMFILE:
		return "too many open files; from duetd: your user holds its share of the "
		       "daemon's connections (duetd --max-connections-per-user)";
	case ENFILE:
		return "too many open files in the system; from duetd: the daemon serves as "
		       "many connections as it allows (duetd --max-connections)";
	case EXDEV:
		return "the client is in another mount namespace than duetd, which resolves every "
		       "path in its own: run the client in duetd's mount namespace or start a "
		       "duetd inside the client's";
	case ESRCH:
		return "the process that connected to duetd has exited, so duetd cannot check its "
		       "mount namespace: connect from the process that uses the connection";
	}
	return strerror(err < 0 ? -err : err);
}
