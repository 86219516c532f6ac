// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd's bounds on connections (duetd(8), LIMITS AND MEMORY): who is let
 * in, how long a connection may stall, and the file descriptors all of
 * that needs.
 *
 * Admission. At most --max-connections connections in all, and at most
 * --max-connections-per-user of them from one user that is not root (root
 * counts in the total only), so one user cannot take every connection. A
 * connection over a bound is accepted only to be refused: a DP_ERROR with
 * a sentence (after its HELLO when it has sent one, so the client reads
 * it as HELLO's answer), then closed at once, and counted.
 *
 * Timeouts, checked once a second by a timerfd in the epoll set, armed
 * while a connection could time out (so a daemon serving only tasks has
 * no wakeups of its own): a connection whose input has held an
 * incomplete request for --request-timeout is closed, and so is one
 * without a task (HELLO not sent yet, or a control connection) that has
 * sent no request for --idle-timeout. A task's connection waiting for
 * READY is idle by design and is never closed for it.
 *
 * File descriptors. The soft RLIMIT_NOFILE is raised to the hard one at
 * start, and the options are refused if even that cannot hold what they
 * allow: every connection, every task's eventfd, the tracing files of
 * every CPU and the daemon's own. A spare descriptor is kept so that, if
 * the count was wrong after all, a connection can still be accepted to be
 * refused instead of being left in the backlog (which would keep the
 * listening socket readable and the loop spinning).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Out of memory in a uthash macro: the caller sees the entry missing. */
static int users_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (users_oom = 1)

#include "duetd.h"
#include "engine.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define MAX_RETIRED	64	/* users without a connection whose counters are kept */
#define ACCEPT_BATCH	64	/* connections accepted per wakeup */

/*
 * Descriptors the daemon holds besides connections, task eventfds and the
 * per-CPU tracing files: stdio, epoll, the signalfd, the timerfd, the
 * listener and its spare, the session's eventfds, mountinfo and inotify,
 * and the files a scan, a save or a status reading opens at a time.
 */
#define FD_RESERVE	64
#define FD_PER_CPU	2	/* trace_pipe_raw, and a stats file while it is read */

static void unretire(struct duser *u)
{
	struct duser **pp;

	for (pp = &d.retired; *pp && *pp != u; pp = &(*pp)->retired_next)
		;
	if (!*pp)
		return;
	*pp = u->retired_next;
	if (d.retired_tail == &u->retired_next)
		d.retired_tail = pp;
	u->retired = false;
	d.nretired--;
}

static struct duser *user_get(uid_t uid)
{
	struct duser *u;

	HASH_FIND(hh, d.users, &uid, sizeof(uid), u);
	if (u) {
		if (u->retired)
			unretire(u);
		return u;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	users_oom = 0;
	HASH_ADD(hh, d.users, uid, sizeof(u->uid), u);
	if (users_oom) {
		free(u);
		return NULL;
	}
	return u;
}

static void user_free(struct duser *u)
{
	HASH_DEL(d.users, u);
	free(u);
}

/* A user's connection count changed: forget or retire a user without one. */
static void user_put(struct duser *u)
{
	if (u->conns || u->retired)
		return;
	if (!u->refused && !u->closed_partial && !u->closed_idle) {
		user_free(u);
		return;
	}
	u->retired = true;
	u->retired_next = NULL;
	*d.retired_tail = u;
	d.retired_tail = &u->retired_next;
	if (++d.nretired > MAX_RETIRED) {
		struct duser *old = d.retired;

		unretire(old);
		user_free(old);
	}
}

static int peer_creds(int fd, struct creds *cr)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len))
		return -errno;
	cr->uid = uc.uid;
	cr->gid = uc.gid;
	cr->pid = uc.pid;
	len = sizeof(cr->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, cr->groups, &len))
		return errno == ERANGE ? -E2BIG : -errno;
	cr->ngroups = (int)(len / sizeof(gid_t));
	return 0;
}

/*
 * A connection over a bound: its HELLO (if it has come) is read, so the
 * sentence answers it and the client's socket is not reset with unread
 * data; then DP_ERROR and close. Neither waits: a client that has not
 * said HELLO yet finds the sentence when it reads.
 */
static void __attribute__((format(printf, 4, 5)))
refuse(int fd, const struct creds *cr, int err, const char *fmt, ...)
{
	char in[DP_HDR_SIZE + sizeof(struct dp_hello)];
	char out[DP_HDR_SIZE + sizeof(struct dp_reply) + 256];
	struct dp_reply rep = { .result = err };
	char msg[256];
	struct dp_msg m;
	uint32_t seq = 0;
	va_list ap;
	ssize_t n;
	int len;

	n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
	if (n > 0 && dp_parse(in, (size_t)n, DP_MAX_REQUEST, &m) > 0 && m.h.type == DP_HELLO)
		seq = m.h.seq;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if ((size_t)len >= sizeof(msg))
		len = sizeof(msg) - 1;
	n = (ssize_t)dp_build(out, DP_ERROR, seq, &rep, sizeof(rep), msg, (size_t)len, NULL, 0);
	if (send(fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* It went away first: nothing to tell. */
	}
	close(fd);
	if (d.verbose)
		say("refused a connection of uid %u pid %d: %s", (unsigned)cr->uid, (int)cr->pid,
		    msg);
}

/* Out of descriptors after all: accept one connection with the spare. */
static void shed(void)
{
	struct creds cr = { 0 };
	int fd;

	if (d.spare_fd < 0)
		d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (d.spare_fd < 0)
		return;
	close(d.spare_fd);
	fd = accept4(d.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		struct duser *u = peer_creds(fd, &cr) ? NULL : user_get(cr.uid);

		d.refused_total++;
		if (u) {
			u->refused++;
			user_put(u);
		}
		refuse(fd, &cr, -ENFILE, "duetd is out of file descriptors; try again later");
	}
	d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void limits_accept(void)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct creds cr;
		struct duser *u;
		int fd = accept4(d.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				shed();
			return;
		}
		if (peer_creds(fd, &cr) || !(u = user_get(cr.uid))) {
			close(fd);
			continue;
		}
		if (d.nclients >= d.max_clients) {
			d.refused_total++;
			u->refused++;
			refuse(fd, &cr, -ENFILE,
			       "duetd serves %u connections, its bound (--max-connections); "
			       "try again later", d.max_clients);
		} else if (cr.uid && u->conns >= d.max_per_user) {
			d.refused_user++;
			u->refused++;
			refuse(fd, &cr, -EMFILE,
			       "uid %u holds %u connections to duetd, a user's share "
			       "(--max-connections-per-user)", (unsigned)cr.uid, u->conns);
		} else if (client_new(fd, &cr, u)) {
			close(fd);
		} else {
			u->conns++;
			d.accepted++;
			limits_arm(true);	/* no task yet: it can be idle */
			continue;
		}
		user_put(u);
	}
}

void limits_release(struct client *c)
{
	struct duser *u = c->u;

	if (!u)
		return;
	u->conns--;
	if (c->task)
		u->tasks--;
	c->u = NULL;
	user_put(u);
}

/*
 * After the input was parsed (consumed: some request was taken from it):
 * what is left is an incomplete request, a whole one waiting for its turn
 * (the reply before it is unsent), or nothing. Only the first is timed.
 */
void limits_input(struct client *c, bool consumed)
{
	struct dp_msg m;

	if (!c->inlen || dp_parse(c->in, c->inlen, DP_MAX_REQUEST, &m) != 0) {
		c->partial_ns = 0;
		return;
	}
	if (consumed || !c->partial_ns) {
		c->partial_ns = now_ns();
		limits_arm(true);
	}
}

/* Whether some connection could time out: one without a task, or stalled. */
static bool timed(void)
{
	for (struct client *c = d.clients; c; c = c->next)
		if (!c->task || c->partial_ns || c->closing)
			return true;
	return false;
}

void limits_arm(bool want)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (want == d.timer_on || d.tfd < 0)
		return;
	if (want)
		its.it_interval.tv_sec = its.it_value.tv_sec = 1;
	if (!timerfd_settime(d.tfd, 0, &its, NULL))
		d.timer_on = want;
}

void limits_tick(void)
{
	uint64_t now = now_ns(), v;
	uint64_t req = (uint64_t)d.request_timeout_s * 1000000000u;
	uint64_t idle = (uint64_t)d.idle_timeout_s * 1000000000u;
	struct client *c, *next;

	if (read(d.tfd, &v, sizeof(v)) < 0) {
		/* EAGAIN: woken for nothing. */
	}
	for (c = d.clients; c; c = next) {
		next = c->next;
		if (c->partial_ns && now - c->partial_ns >= req) {
			d.closed_partial++;
			c->u->closed_partial++;
			if (d.verbose)
				say("closed a connection of uid %u pid %d: a request incomplete for %u s",
				    (unsigned)c->cr.uid, (int)c->cr.pid, d.request_timeout_s);
			client_free(c);
		} else if (!c->task && now - c->active_ns >= idle) {
			d.closed_idle++;
			c->u->closed_idle++;
			if (d.verbose)
				say("closed a connection of uid %u pid %d: no task and no request for %u s",
				    (unsigned)c->cr.uid, (int)c->cr.pid, d.idle_timeout_s);
			client_free(c);
		} else if (c->closing && now - c->active_ns >= req) {
			/* Thrown out, and it does not read why: it is gone anyway. */
			client_free(c);
		}
	}
	limits_arm(timed());
}

int limits_fds(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	unsigned int tasks = d.max_clients < DE_MAX_TASKS ? d.max_clients : DE_MAX_TASKS;
	struct rlimit rl;

	if (ncpu < 1)
		ncpu = 1;
	d.fd_need = FD_RESERVE + (uint64_t)FD_PER_CPU * (uint64_t)ncpu + d.max_clients + tasks;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) || getrlimit(RLIMIT_NOFILE, &rl))
			return -errno;
	}
	d.fd_limit = rl.rlim_cur;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < d.fd_need) {
		say("--max-connections %u needs up to %llu file descriptors (%u connections, %u task "
		    "eventfds, %d for the tracing files of %ld CPUs, %d for the daemon), but "
		    "RLIMIT_NOFILE allows %llu: lower --max-connections, or raise the hard limit "
		    "(LimitNOFILE= in duetd.service, ulimit -Hn)",
		    d.max_clients, (unsigned long long)d.fd_need, d.max_clients, tasks,
		    FD_PER_CPU * (int)ncpu, ncpu, FD_RESERVE, (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	return 0;
}

int limits_init(void)
{
	static struct src tsrc = { SRC_TIMER, NULL };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &tsrc };

	d.retired_tail = &d.retired;
	d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	d.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d.tfd < 0 || d.spare_fd < 0 || epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.tfd, &ev))
		return -errno;
	return 0;
}

void limits_free(void)
{
	struct duser *u, *tmp;

	HASH_ITER(hh, d.users, u, tmp)
		user_free(u);
	d.retired = NULL;
	d.retired_tail = &d.retired;
	d.nretired = 0;
	if (d.tfd >= 0)
		close(d.tfd);
	if (d.spare_fd >= 0)
		close(d.spare_fd);
}
