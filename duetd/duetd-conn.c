// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd's connections: reading requests, one reply at a time (plus
 * READY), the clients' lives and the listening socket. Who is let in and
 * how long a connection may stall is duetd-limits.c's; what a request
 * does is duetd-requests.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "duetd.h"
#include "internal.h"

/* ---- output: one reply at a time, plus READY ---- */

/*
 * The socket's epoll events, changed only when they differ from what is
 * set: every reply ends here, and a task connection's replies are most of
 * duetd's system calls with many tasks.
 */
static void want_out(struct client *c, bool out)
{
	struct epoll_event ev = {
		.events = out ? EPOLLOUT : (c->closing ? 0 : EPOLLIN),
		.data.ptr = &c->sock_src,
	};

	if (ev.events == c->sock_events)
		return;
	if (!epoll_ctl(d.epfd, EPOLL_CTL_MOD, c->fd, &ev))
		c->sock_events = ev.events;
}

/* A full FETCH reply: task connections keep a buffer that size. */
#define OUT_KEEP (DP_HDR_SIZE + sizeof(struct dp_reply) + DP_MAX_FETCH * sizeof(struct duet_item))

static void flush_out(struct client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				want_out(c, true);
				return;
			}
			if (errno == EINTR)
				continue;
			c->closing = true;
			c->outlen = c->outoff = 0;
			return;
		}
		c->outoff += (size_t)n;
	}
	c->outlen = c->outoff = 0;
	/* A status reply of up to 1 MiB is not kept by every idle connection. */
	if (c->outcap > OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	want_out(c, false);
}

int reserve_out(struct client *c, size_t more)
{
	if (c->outlen + more > c->outcap) {
		size_t cap = c->outlen + more;
		char *n = realloc(c->out, cap);

		if (!n)
			return -ENOMEM;
		c->out = n;
		c->outcap = cap;
	}
	return 0;
}

static void queue(struct client *c, uint16_t type, uint32_t seq, const void *a, size_t alen,
		  const void *b, size_t blen, const void *cc, size_t clen)
{
	if (reserve_out(c, DP_HDR_SIZE + alen + blen + clen)) {
		c->closing = true;
		return;
	}
	c->outlen += dp_build(c->out + c->outlen, type, seq, a, alen, b, blen, cc, clen);
}

void reply(struct client *c, uint32_t seq, int result, const void *body, size_t len)
{
	struct dp_reply rep = { .result = result };

	queue(c, DP_REPLY, seq, &rep, sizeof(rep), body, len, NULL, 0);
}

/* A sentence, then the connection is closed. */
void error_close(struct client *c, uint32_t seq, int err, const char *fmt, ...)
{
	struct dp_reply rep = { .result = err };
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	queue(c, DP_ERROR, seq, &rep, sizeof(rep), msg, (size_t)n, NULL, 0);
	c->closing = true;
	limits_arm(true);	/* freed even if it never reads why */
	if (d.verbose)
		say("client pid %d uid %u: %s", (int)c->cr.pid, (unsigned)c->cr.uid, msg);
}

void ready(struct client *c)
{
	queue(c, DP_READY, 0, NULL, 0, NULL, 0, NULL, 0);
}

/*
 * Requests in the input buffer, one at a time, while no reply is unsent:
 * a client that does not read its replies stops being read.
 */
static void process_input(struct client *c)
{
	size_t off = 0;

	while (!c->closing) {
		struct dp_msg m;
		int n;

		/* A client that sent several requests at once: each reply is
		 * sent before the next request is read. */
		if (c->outlen) {
			flush_out(c);
			if (c->outlen)
				break;	/* the rest when the socket drains */
		}
		n = dp_parse(c->in + off, c->inlen - off, DP_MAX_REQUEST, &m);
		if (n == 0)
			break;
		if (n == -EPROTONOSUPPORT) {
			error_close(c, m.h.seq, -EPROTONOSUPPORT,
				    "duetd speaks protocol version %u, the client %u", DP_VERSION,
				    (unsigned)m.h.version);
			break;
		}
		if (n < 0) {
			error_close(c, 0, -EBADMSG, "malformed message header");
			break;
		}
		handle_request(c, &m);
		off += (size_t)n;
	}
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	limits_input(c, off > 0);
	if (c->outlen)
		flush_out(c);
}

static void on_readable(struct client *c)
{
	size_t cap = DP_HDR_SIZE + DP_MAX_REQUEST;
	ssize_t n;

	if (c->outlen || c->closing)
		return;
	n = recv(c->fd, c->in + c->inlen, cap - c->inlen, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_free(c);
		return;
	}
	if (n > 0)
		c->inlen += (size_t)n;
	process_input(c);
	if (c->closing && !c->outlen)
		client_free(c);
}

void on_sock(struct client *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		flush_out(c);
		if (c->closing && !c->outlen) {
			client_free(c);
			return;
		}
		if (!c->outlen)
			process_input(c);
		if (c->closing && !c->outlen)
			client_free(c);
	} else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		on_readable(c);
	}
}

/*
 * The task's fd became readable: items are pending. One READY, then
 * silence until the next FETCH. The fd is watched edge-triggered, so it
 * costs no epoll_ctl to disarm here and to arm at the FETCH (two system
 * calls per READY, with 64 tasks a good part of duetd's): the session
 * writes it only when it goes from drained to readable, which is one
 * edge. An edge while a READY is out is dropped: the items it stands for
 * were pending before the FETCH that drained, or that FETCH sends the
 * READY itself (do_fetch()).
 */
void on_task(struct client *c)
{
	if (c->ready_sent || c->closing)
		return;
	c->ready_sent = true;
	ready(c);
	flush_out(c);
	if (c->closing && !c->outlen)
		client_free(c);
}

/* ---- clients ---- */

/* A connection let in (duetd-limits.c decides who is). */
int client_new(int fd, const struct creds *cr, struct duser *u)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct client *c = calloc(1, sizeof(*c));

	if (!c || !(c->in = malloc(CLIENT_IN_BYTES))) {
		free(c);
		return -ENOMEM;
	}
	c->fd = fd;
	c->cr = *cr;
	c->u = u;
	c->active_ns = now_ns();
	c->sock_src.kind = SRC_SOCK;
	c->sock_src.c = c;
	c->task_src.kind = SRC_TASK;
	c->task_src.c = c;
	ev.data.ptr = &c->sock_src;
	c->sock_events = ev.events;
	if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int r = -errno;

		free(c->in);
		free(c);
		return r;
	}
	c->next = d.clients;
	if (d.clients)
		d.clients->pprev = &c->next;
	c->pprev = &d.clients;
	d.clients = c;
	d.nclients++;
	return 0;
}

struct retiring {
	struct duet_task *task;
	uint64_t gone_ns;	/* when its client went */
	uint32_t id;
	struct retiring *next;
};

/*
 * A polite task's client went: the pages its last reads brought in may
 * still be in the ring buffer, and they are its to drop only while its
 * task (and its done marks) exist. It stays until the events up to now
 * are processed.
 */
static bool retire(struct client *c)
{
	struct retiring *r = calloc(1, sizeof(*r));

	if (!r)
		return false;
	r->task = c->task;
	r->gone_ns = now_ns();
	r->id = c->id;
	r->next = d.retiring;
	d.retiring = r;
	return true;
}

void retire_tick(bool force)
{
	uint64_t now = now_ns();

	for (struct retiring **p = &d.retiring; *p;) {
		struct retiring *r = *p;

		if (!force && now - r->gone_ns < RETIRE_MAX_NS &&
		    duet__task_caught_up(r->task, r->gone_ns) != 1) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		duet_task_free(r->task);
		d.ntasks--;
		if (d.verbose)
			say("task %u freed (polite: its events up to its client's end processed)",
			    r->id);
		free(r);
	}
}

/* The client went away (or was thrown out): its task is freed. */
void client_free(struct client *c)
{
	limits_release(c);
	if (c->task) {
		struct duet_task_status st = { .sz = sizeof(st) };

		if (!duet_task_status(c->task, &st))
			d.retired_resyncs += st.resyncs;
		epoll_ctl(d.epfd, EPOLL_CTL_DEL, duet_task_fd(c->task), NULL);
		if (!c->polite || !retire(c)) {
			duet_task_free(c->task);
			d.ntasks--;
			if (d.verbose)
				say("task %u \"%s\" freed", c->id, c->name);
		}
		c->task = NULL;
	}
	epoll_ctl(d.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	d.nclients--;
	/* Events of this batch may still name it. */
	c->dead = true;
	c->next = d.zombies;
	d.zombies = c;
}

void free_zombies(void)
{
	while (d.zombies) {
		struct client *c = d.zombies;

		d.zombies = c->next;
		resid_snap_free(c->snap);
		free(c->dir);
		free(c->in);
		free(c->out);
		free(c);
	}
}

/* ---- the socket ---- */

static int mkdir_parents(const char *path)
{
	char *dup = strdup(path), *slash;
	int r = 0;

	if (!dup)
		return -ENOMEM;
	for (slash = strchr(dup + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(dup, 0755) && errno != EEXIST) {
			r = -errno;
			break;
		}
		*slash = '/';
	}
	free(dup);
	return r;
}

int listen_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r, probe;

	if (strlen(d.socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, d.socket);
	r = mkdir_parents(d.socket);
	if (r)
		return r;
	/* A socket file nobody answers on is a dead daemon's: replace it. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
		close(probe);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(d.socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(d.socket, d.mode) || (d.have_gid && chown(d.socket, 0, d.gid)) ||
	    listen(fd, 128)) {
		r = -errno;
		close(fd);
		unlink(d.socket);
		return r;
	}
	return fd;
}
