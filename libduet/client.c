// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libduet's daemon backend (backend.h): the public calls of a session,
 * carried to duetd over its socket (proto.h). No threads: one connection per task, whose
 * socket is the task's fd (readable when duetd sends READY, or when
 * duetd goes away).
 *
 * Daemon restarts. When a call finds the connection gone, the task owes
 * its caller a LOST item, and its fd number is taken over (dup2) by a
 * timer that fires every RETRY_MS, so a caller polling it comes back and
 * fetches: each fetch tries to register the task again with the new
 * daemon. The done marks set so far are kept here (marklog.h: their net
 * effect per file, not the calls) and replayed before the new
 * registration's scan starts, so they survive the restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "marklog.h"
#include "proto.h"

#define RETRY_MS 200

struct cl_session {
	struct duet_session base;
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	duet_log_fn log;
	void *log_ud;
	unsigned int latency_ms;	/* the session's, its tasks' default */
	pthread_mutex_t lock;	/* the control connection and the task list */
	int ctl;		/* control connection, -1 when down */
	uint32_t seq;
	struct cl_task *tasks;	/* freed with the session (duet_session_free(3)) */
};

struct cl_task {
	struct duet_task base;
	/* A task's calls may come from several threads: one at a time. */
	pthread_mutex_t lock;
	struct cl_session *cs;
	int fd;			/* stable number: the socket, or the retry timer */
	bool up;		/* fd is a registered connection */
	bool lost_owed;		/* the daemon went away: a LOST item is due */
	uint32_t seq;
	uint32_t id;
	char *name, *path;
	uint32_t mask;
	unsigned int latency_ms;
	bool polite;		/* DUET_TASK_POLITE: DP_TASK_POLITE (minor 4) */
	/*
	 * The last FETCH reply said nothing more was pending (DP_REPLY_DRAINED):
	 * the next fetch returns 0 without asking unless the socket is
	 * readable (a READY came since).
	 */
	bool drained;
	struct marklog marks;	/* replayed after a daemon restart */
	uint64_t reconnects, lost_local;
	void *rbuf;		/* replies */
	size_t rcap;
	struct cl_task *next, **pprev;	/* in cs->tasks */
};

static bool conn_error(int r)
{
	return r == -ECONNRESET || r == -EPIPE || r == -ECONNREFUSED || r == -ENOTCONN ||
	       r == -ECONNABORTED;
}

/*
 * A request in one sendmsg: a client stopped between two sends would
 * leave an incomplete request in duetd, which closes such connections
 * after its request timeout.
 */
static int send_iov(int fd, struct iovec *iov, int n)
{
	while (n) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = { .fd = fd, .events = POLLIN };

				poll(&pfd, 1, -1);
				continue;
			}
			return -errno;
		}
		if (!n)
			return -ECONNRESET;	/* the daemon went away */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One request and its reply. The reply's body (after struct dp_reply) is
 * left in *rbuf (grown as needed), its size in *blen (for a DP_ERROR too:
 * the daemon's sentence). A READY read on the way sets *ready. *flags
 * (if not NULL) gets the reply's DP_REPLY_* flags. Returns the reply's
 * result, or -errno for the socket.
 */
static int call_flags(int fd, uint32_t *seqp, uint16_t type, const void *a, size_t alen,
		      const void *b, size_t blen, void **rbuf, size_t *rcap, size_t *blen_out,
		      bool *ready, uint32_t *flags)
{
	struct dp_hdr h = {
		.magic = DP_MAGIC,
		.version = DP_VERSION,
		.type = type,
		.len = (uint32_t)(alen + blen),
		.seq = ++*seqp,
	};
	struct iovec iov[3] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)a, .iov_len = alen },
		{ .iov_base = (void *)b, .iov_len = blen },
	};
	struct dp_reply rep;
	int r, sent;

	r = send_iov(fd, iov, 3);
	/*
	 * A daemon that refuses a connection (duetd's bounds) writes why and
	 * closes: the sentence may be waiting although the send failed.
	 */
	if (r && r != -EPIPE && r != -ECONNRESET)
		return r;
	sent = r;
	for (;;) {
		struct dp_msg m;

		r = recv_all(fd, &h, sizeof(h));
		if (r)
			return sent ? sent : r;
		/* A header only: 0 (a payload follows) or its size (none). */
		r = dp_parse(&h, sizeof(h), DP_MAX_REPLY, &m);
		if (r == -EPROTONOSUPPORT)
			return r;	/* a daemon of another major version */
		if (r < 0)
			return -EPROTO;
		if (h.type == DP_READY && !h.len) {
			if (ready)
				*ready = true;
			continue;
		}
		if ((h.type != DP_REPLY && h.type != DP_ERROR) || h.len < sizeof(rep))
			return -EPROTO;
		r = recv_all(fd, &rep, sizeof(rep));
		if (r)
			return r;
		h.len -= sizeof(rep);
		if (h.len > *rcap) {
			void *n = realloc(*rbuf, h.len);

			if (!n)
				return -ENOMEM;
			*rbuf = n;
			*rcap = h.len;
		}
		r = recv_all(fd, *rbuf, h.len);
		if (r)
			return r;
		if (h.type == DP_ERROR) {
			if (blen_out)
				*blen_out = h.len;	/* the daemon's sentence */
			return rep.result < 0 ? rep.result : -EPROTO;
		}
		if (sent)
			return sent;
		if (h.seq != *seqp)
			return -EPROTO;
		if (blen_out)
			*blen_out = h.len;
		if (flags)
			*flags = rep.flags;
		return rep.result;
	}
}

/* call_flags() without the reply's flags. */
static int call(int fd, uint32_t *seqp, uint16_t type, const void *a, size_t alen, const void *b,
		size_t blen, void **rbuf, size_t *rcap, size_t *blen_out, bool *ready)
{
	return call_flags(fd, seqp, type, a, alen, b, blen, rbuf, rcap, blen_out, ready, NULL);
}

/* The socket, connected (internal.h). */
int cl_connect(const char *sock, int *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = errno == ENOENT ? -ECONNREFUSED : -errno;
		close(fd);
		return r;
	}
	*ret = fd;
	return 0;
}

/* call() for the programs that speak to duetd themselves (internal.h). */
int cl_call(int fd, uint32_t *seqp, uint16_t type, const void *a, size_t alen, const void *b,
	    size_t blen, void **rbuf, size_t *rcap, size_t *blen_out, bool *ready)
{
	return call(fd, seqp, type, a, alen, b, blen, rbuf, rcap, blen_out, ready);
}

static void logf_(struct cl_session *cs, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A connection that has said HELLO. A daemon that refuses says why: the
 * sentence goes to the session's log (the library never prints).
 */
static int conn_open_minor(struct cl_session *cs, int *ret, uint32_t *minor)
{
	struct dp_hello hello = { .version = DP_VERSION, .flags = DP_HELLO_FLAGS(DP_MINOR, 0) };
	struct dp_welcome w;
	void *rbuf = NULL;
	size_t rcap = 0, blen = 0;
	uint32_t seq = 0;
	int fd, r;

	r = cl_connect(cs->sock, &fd);
	if (r)
		return r;
	r = call(fd, &seq, DP_HELLO, &hello, sizeof(hello), NULL, 0, &rbuf, &rcap, &blen, NULL);
	/*
	 * A daemon of minor 0 sends a shorter welcome, a newer one a longer:
	 * what this needs is in either (proto.h, "Growth").
	 */
	if (r >= 0 && dp_welcome_get(rbuf, blen, &w))
		r = -EPROTO;
	if (r >= 0 && w.version != DP_VERSION)
		r = -EPROTONOSUPPORT;
	if (r < 0 && r != -EPROTO && blen && rbuf)
		logf_(cs, 3, "duetd: %.*s", (int)(blen > 200 ? 200 : blen), (const char *)rbuf);
	free(rbuf);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret = fd;
	if (minor)
		*minor = w.minor;
	return 0;
}

static int conn_open(struct cl_session *cs, int *ret)
{
	return conn_open_minor(cs, ret, NULL);
}

static const struct duet_backend client_ops;

static struct cl_session *cl_session(struct duet_session *s)
{
	return duet__container_of(s, struct cl_session, base);
}

static struct cl_task *cl_task(struct duet_task *t)
{
	return duet__container_of(t, struct cl_task, base);
}

int duet__client_session_new(const struct duet_session_opts *opts, const char *socket,
			     struct duet_session **ret)
{
	struct cl_session *cs;
	int r;

	if (strlen(socket) >= sizeof(cs->sock))
		return -ENAMETOOLONG;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->base.ops = &client_ops;
	strcpy(cs->sock, socket);
	pthread_mutex_init(&cs->lock, NULL);
	cs->log = opts->log;
	cs->log_ud = opts->log_ud;
	cs->latency_ms = opts->latency_ms;
	/* Refuse at once if there is no daemon, or one of another version. */
	r = conn_open(cs, &cs->ctl);
	if (r) {
		free(cs);
		return r;
	}
	*ret = &cs->base;
	return 0;
}

static void task_free(struct duet_task *dt);

/* The tasks still registered (their connections), then the session's. */
static void session_free(struct duet_session *s)
{
	struct cl_session *cs = cl_session(s);

	while (cs->tasks)
		task_free(&cs->tasks->base);
	if (cs->ctl >= 0)
		close(cs->ctl);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

static int flush_semantics(struct duet_session *s)
{
	struct cl_session *cs = cl_session(s);
	struct dp_daemon d;
	void *rbuf = NULL;
	size_t rcap = 0, blen = 0;
	int r = -ECONNREFUSED;

	pthread_mutex_lock(&cs->lock);
	for (int tries = 0; tries < 2; tries++) {
		if (cs->ctl < 0 && conn_open(cs, &cs->ctl))
			break;
		r = call(cs->ctl, &cs->seq, DP_DAEMON_STATUS, NULL, 0, NULL, 0, &rbuf, &rcap,
			 &blen, NULL);
		if (!conn_error(r))
			break;
		close(cs->ctl);
		cs->ctl = -1;
	}
	pthread_mutex_unlock(&cs->lock);
	if (r >= 0 && dp_daemon_get(rbuf, blen, &d))
		r = -EPROTO;
	if (r >= 0)
		r = (int)d.flush;
	free(rbuf);
	return r;
}

/* Register on a new connection; with hold, the caller replays and starts. */
static int register_task(struct cl_task *t, bool hold, int *fdp)
{
	struct dp_task_id id;
	struct dp_task_new tn = {
		.mask = t->mask,
		.flags = (hold ? DP_TASK_HOLD : 0) | (t->polite ? DP_TASK_POLITE : 0),
		.name_len = (uint16_t)strlen(t->name),
		.path_len = (uint16_t)strlen(t->path),
		.latency_ms = t->latency_ms,
	};
	char *names;
	size_t blen = 0;
	uint32_t minor = 0;
	int fd, r;

	r = conn_open_minor(t->cs, &fd, &minor);
	if (r)
		return r;
	/*
	 * Requests are exact (proto.h): an older daemon would refuse the
	 * flag, and a task registered without it would not be polite.
	 */
	if (t->polite && minor < 4) {
		logf_(t->cs, 3, "duetd: protocol minor %u predates cache-polite tasks "
		      "(DUET_TASK_POLITE, minor 4)", (unsigned)minor);
		close(fd);
		return -EOPNOTSUPP;
	}
	t->seq = 0;
	names = malloc((size_t)tn.name_len + tn.path_len);
	if (!names) {
		close(fd);
		return -ENOMEM;
	}
	memcpy(names, t->name, tn.name_len);
	memcpy(names + tn.name_len, t->path, tn.path_len);
	r = call(fd, &t->seq, DP_TASK_NEW, &tn, sizeof(tn), names,
		 (size_t)tn.name_len + tn.path_len, &t->rbuf, &t->rcap, &blen, NULL);
	free(names);
	if (r >= 0 && dp_task_id_get(t->rbuf, blen, &id))
		r = -EPROTO;
	if (r < 0) {
		close(fd);
		return r;
	}
	t->id = id.id;
	*fdp = fd;
	return 0;
}

static int task_new(struct duet_session *s, const struct duet_task_opts *opts,
		    struct duet_task **ret)
{
	struct cl_task *t;
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->base.s = s;
	t->cs = cl_session(s);
	t->fd = -1;
	t->mask = opts->mask;
	t->polite = opts->flags & DUET_TASK_POLITE;
	t->latency_ms = opts->latency_ms ? opts->latency_ms : t->cs->latency_ms;
	/* The daemon's cwd is not ours: it gets an absolute, resolved path. */
	t->path = realpath(opts->path, NULL);
	if (!t->path) {
		r = -errno;
		goto fail;
	}
	t->name = strndup(opts->name ? opts->name : "task", DP_MAX_NAME);
	if (!t->name) {
		r = -ENOMEM;
		goto fail;
	}
	if (strlen(t->path) > DP_MAX_PATH) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	r = register_task(t, false, &t->fd);
	if (r)
		goto fail;
	t->up = true;
	pthread_mutex_lock(&t->cs->lock);
	t->next = t->cs->tasks;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = &t->cs->tasks;
	t->cs->tasks = t;
	pthread_mutex_unlock(&t->cs->lock);
	*ret = &t->base;
	return 0;
fail:
	pthread_mutex_destroy(&t->lock);
	free(t->path);
	free(t->name);
	free(t->rbuf);
	free(t);
	return r;
}

static void task_free(struct duet_task *dt)
{
	struct cl_task *t = cl_task(dt);

	pthread_mutex_lock(&t->cs->lock);
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	pthread_mutex_unlock(&t->cs->lock);
	if (t->fd >= 0)
		close(t->fd);	/* the daemon frees the task when we hang up */
	pthread_mutex_destroy(&t->lock);
	marklog_clear(&t->marks);
	free(t->path);
	free(t->name);
	free(t->rbuf);
	free(t);
}

static int task_fd(const struct duet_task *t)
{
	return duet__container_of(t, const struct cl_task, base)->fd;
}

static void logf_(struct cl_session *cs, int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!cs->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cs->log(cs->log_ud, level, buf);
}

/* The daemon went away: LOST is due, and the fd becomes the retry timer. */
static void task_down(struct cl_task *t, int why)
{
	struct itimerspec its = {
		.it_interval = { 0, RETRY_MS * 1000000L },
		.it_value = { 0, 1000000L },
	};
	int tfd;

	if (!t->up)
		return;
	t->up = false;
	t->drained = false;
	t->lost_owed = true;
	logf_(t->cs, 4, "duet: task %s: connection to duetd lost (%s); reconnecting", t->name,
	      strerror(-why));
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) || dup2(tfd, t->fd) < 0) {
		/* No timer: the dead socket stays, and stays readable. */
		if (tfd >= 0)
			close(tfd);
		return;
	}
	close(tfd);
}

/* The log's calls of one kind, DP_MAX_DONE_OPS to a request. */
struct replay {
	struct cl_task *t;
	int fd;
	struct dp_done d;
	struct dp_done_op ops[DP_MAX_DONE_OPS];
};

static int replay_flush(struct replay *rp)
{
	int r;

	if (!rp->d.n)
		return 0;
	r = call(rp->fd, &rp->t->seq, DP_DONE, &rp->d, sizeof(rp->d), rp->ops,
		 rp->d.n * sizeof(rp->ops[0]), &rp->t->rbuf, &rp->t->rcap, NULL, NULL);
	rp->d.n = 0;
	return r < 0 ? r : 0;
}

static int replay_one(void *ud, const struct duet_fileid *f, uint64_t index, uint64_t count)
{
	struct replay *rp = ud;

	rp->ops[rp->d.n++] = (struct dp_done_op){ .f = *f, .index = index, .count = count };
	return rp->d.n == DP_MAX_DONE_OPS ? replay_flush(rp) : 0;
}

/*
 * The log's sets, then its resets (marklog_foreach()): a new daemon,
 * whose task holds no marks yet, then holds the log's marks.
 */
static int replay_marks(struct cl_task *t, int fd)
{
	static const enum duet__done_op kinds[] = { DUET__DONE_SET, DUET__DONE_RESET };
	struct replay *rp = malloc(sizeof(*rp));
	int r = 0;

	if (!rp)
		return -ENOMEM;
	rp->t = t;
	rp->fd = fd;
	for (size_t i = 0; !r && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		rp->d.op = (kinds[i] == DUET__DONE_SET ? DP_DONE_SET : DP_DONE_RESET) |
			   DP_DONE_REPLAY;
		rp->d.n = 0;
		r = marklog_foreach(&t->marks, kinds[i], replay_one, rp);
		if (!r)
			r = replay_flush(rp);
	}
	free(rp);
	return r;
}

/* Register again with a (new) daemon; the fd number stays the same. */
static int task_up(struct cl_task *t)
{
	int fd, r;

	r = register_task(t, true, &fd);
	if (r)
		return r;
	r = replay_marks(t, fd);
	if (r >= 0)
		r = call(fd, &t->seq, DP_TASK_START, NULL, 0, NULL, 0, &t->rbuf, &t->rcap, NULL,
			 NULL);
	if (r >= 0 && dup2(fd, t->fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		return r;
	t->up = true;
	t->reconnects++;
	return 0;
}

/*
 * A request on the task's connection. A READY that arrived meanwhile was
 * read here, not by the caller's poll: re-arm it (a FETCH of 0 items), so
 * the daemon sends another after the reply if items are still pending.
 */
static int task_call(struct cl_task *t, uint16_t type, const void *a, size_t alen, const void *b,
		     size_t blen, size_t *body)
{
	uint32_t zero = 0, flags = 0;
	bool ready = false;
	int r;

	if (!t->up && (t->lost_owed || task_up(t)))
		return -ECONNREFUSED;
	r = call_flags(t->fd, &t->seq, type, a, alen, b, blen, &t->rbuf, &t->rcap, body, &ready,
		       &flags);
	t->drained = type == DP_FETCH && r > 0 && (flags & DP_REPLY_DRAINED);
	if (r >= 0 && ready && type != DP_FETCH) {
		int r2 = call(t->fd, &t->seq, DP_FETCH, &zero, sizeof(zero), NULL, 0, &t->rbuf,
			      &t->rcap, NULL, NULL);

		if (r2 < 0 && conn_error(r2))
			task_down(t, r2);
		return r;
	}
	if (conn_error(r) || r == -EPROTO) {
		task_down(t, r);
		if (r == -EPROTO)
			r = -ECONNRESET;
	}
	return r;
}

static int task_fetch_locked(struct cl_task *t, struct duet_item *items, size_t n)
{
	uint32_t max = n > DP_MAX_FETCH ? DP_MAX_FETCH : (uint32_t)n;
	size_t body = 0;
	int r;

	if (!t->up) {
		uint64_t v;

		if (t->lost_owed) {
			if (!n)
				return 0;
			memset(items, 0, sizeof(*items));
			items[0].flags = DUET_ITEM_LOST;
			t->lost_owed = false;
			t->lost_local++;
			return 1;
		}
		/* The timer woke the caller: try the daemon again. */
		if (read(t->fd, &v, sizeof(v)) < 0) {
		}
		if (task_up(t))
			return 0;
	}
	if (t->drained && n) {
		struct pollfd pfd = { .fd = t->fd, .events = POLLIN };

		/*
		 * Nothing was left at the last reply and no READY has come
		 * since (the daemon sends one as soon as items are pending):
		 * there is nothing to fetch, and no round trip to learn it.
		 */
		t->drained = false;
		if (poll(&pfd, 1, 0) == 0)
			return 0;
	}
	r = task_call(t, DP_FETCH, &max, sizeof(max), NULL, 0, &body);
	if (r < 0) {
		if (!t->up)
			return task_fetch_locked(t, items, n);	/* the LOST item */
		return r;
	}
	if ((uint32_t)r > max || dp_items_get(t->rbuf, body, (uint32_t)r, items))
		return -EPROTO;
	return r;
}

static int task_fileid_locked(struct cl_task *t, const char *path, struct duet_fileid *ret)
{
	struct duet_fileid f;
	char *rp = realpath(path, NULL);
	size_t body = 0;
	int r;

	if (!rp)
		return -errno;
	r = strlen(rp) > DP_MAX_PATH ? -ENAMETOOLONG :
				       task_call(t, DP_FILEID, rp, strlen(rp), NULL, 0, &body);
	free(rp);
	if (r >= 0 && dp_fileid_get(t->rbuf, body, &f))
		r = -EPROTO;
	if (r >= 0)
		*ret = f;
	return r < 0 ? r : 0;
}

static int task_done_locked(struct cl_task *t, enum duet__done_op dop,
			    const struct duet_fileid *f, uint64_t index, uint64_t count)
{
	int op = dop == DUET__DONE_SET ? DP_DONE_SET :
		 dop == DUET__DONE_RESET ? DP_DONE_RESET : DP_DONE_CHECK;
	struct dp_done d = { .op = (uint32_t)op, .n = 1 };
	struct dp_done_op o = { .f = *f, .index = index, .count = count };
	int r, lr;

	r = task_call(t, DP_DONE, &d, sizeof(d), &o, sizeof(o), NULL);
	/*
	 * Kept for a restart, as the daemon took it; while the daemon is
	 * away, only kept (the log refuses what the daemon would, a range
	 * past 2^32 pages: replayed, it would fail the registration).
	 */
	if (op == DP_DONE_CHECK || !(r >= 0 || (!t->up && r == -ECONNREFUSED)))
		return r;
	if (dop == DUET__DONE_SET)
		lr = marklog_set(&t->marks, f, index, count);
	else
		lr = marklog_reset(&t->marks, f, index, count);
	if (lr)
		return lr;
	return r >= 0 ? r : 0;
}

static int task_path_locked(struct cl_task *t, const struct duet_fileid *f, char *buf, size_t len)
{
	size_t body = 0;
	int r = task_call(t, DP_PATH, f, sizeof(*f), NULL, 0, &body);

	if (r < 0)
		return r;
	if (body >= len)
		return -ENAMETOOLONG;
	memcpy(buf, t->rbuf, body);
	buf[body] = '\0';
	return 0;
}

/* The daemon opens the file with our credentials: give it an absolute path. */
static char *abs_file(const char *file)
{
	char *dup = strdup(file), *slash, *dir, *out = NULL;
	const char *base;

	if (!dup)
		return NULL;
	slash = strrchr(dup, '/');
	if (slash) {
		*slash = '\0';
		dir = realpath(slash == dup ? "/" : dup, NULL);
		base = slash + 1;
	} else {
		dir = realpath(".", NULL);
		base = dup;
	}
	if (dir && *base && asprintf(&out, "%s/%s", strcmp(dir, "/") ? dir : "", base) < 0)
		out = NULL;
	free(dir);
	free(dup);
	return out;
}

static int save_load_locked(struct cl_task *t, uint16_t type, const char *file)
{
	char *p = abs_file(file);
	int r;

	if (!p)
		return errno ? -errno : -EINVAL;
	r = strlen(p) > DP_MAX_PATH ? -ENAMETOOLONG : task_call(t, type, p, strlen(p), NULL, 0,
								    NULL);
	free(p);
	return r;
}

static int task_status_locked(struct cl_task *t, struct duet_task_status *st)
{
	struct duet_task_status o;
	size_t body = 0;
	int r = task_call(t, DP_TASK_STATUS, NULL, 0, NULL, 0, &body);

	if (r >= 0 && dp_task_stats_get(t->rbuf, body, &o))
		r = -EPROTO;
	if (r < 0)
		return r;
	/* Counted since this registration, plus the daemon restarts seen. */
	o.lost += t->lost_local;
	o.resyncs += t->reconnects;
	/*
	 * The name is the one this client registered (duetd holds the same):
	 * TASK_STATUS does not carry it, so any daemon's answer will do.
	 */
	snprintf(o.name, sizeof(o.name), "%s", t->name);
	*st = o;
	return 0;
}

/* The entry points: each call holds the task's lock. */
#define LOCKED(call)                                    \
	do {                                            \
		struct cl_task *t = cl_task(dt);        \
		int r_;                                 \
		pthread_mutex_lock(&t->lock);           \
		r_ = (call);                            \
		pthread_mutex_unlock(&t->lock);         \
		return r_;                              \
	} while (0)

static int task_fetch(struct duet_task *dt, struct duet_item *items, size_t n)
{
	LOCKED(task_fetch_locked(t, items, n));
}

static int task_fileid(struct duet_task *dt, const char *path, struct duet_fileid *ret)
{
	LOCKED(task_fileid_locked(t, path, ret));
}

static int task_done(struct duet_task *dt, enum duet__done_op op, const struct duet_fileid *f,
		     uint64_t index, uint64_t count)
{
	LOCKED(task_done_locked(t, op, f, index, count));
}

static int task_path(struct duet_task *dt, const struct duet_fileid *f, char *buf, size_t len)
{
	LOCKED(task_path_locked(t, f, buf, len));
}

static int task_save(struct duet_task *dt, const char *file)
{
	LOCKED(save_load_locked(t, DP_SAVE, file));
}

static int task_load(struct duet_task *dt, const char *file)
{
	LOCKED(save_load_locked(t, DP_LOAD, file));
}

static int task_status(struct duet_task *dt, struct duet_task_status *st)
{
	LOCKED(task_status_locked(t, st));
}

static const struct duet_backend client_ops = {
	.name = "duetd",
	.session_free = session_free,
	.flush_semantics = flush_semantics,
	.task_new = task_new,
	.task_free = task_free,
	.task_fd = task_fd,
	.task_fetch = task_fetch,
	.task_fileid = task_fileid,
	.task_done = task_done,
	.task_path = task_path,
	.task_save = task_save,
	.task_load = task_load,
	.task_status = task_status,
};
