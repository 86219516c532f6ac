// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd: one tracing instance and one engine for every task on the
 * machine; clients (libduet in daemon mode) talk to it over a Unix socket
 * (libduet/proto.h).
 *
 * Threads: the main thread runs the socket loop (epoll) and calls the
 * in-process session's API; the session's pump thread feeds the engine.
 * Every client request is answered from the main thread.
 *
 * Bounds. A client costs at most: one input buffer (a request is at most
 * DP_MAX_REQUEST bytes), one reply (at most DP_MAX_REPLY; no request is
 * read while a reply is unsent; a buffer larger than a full FETCH is
 * given back once sent), its task's pending pages in the shared table, at
 * most --max-pending (past it the task gets LOST and is fed nothing until
 * it fetches: internal.h), and its task's done marks, at most
 * --max-done-marks. READY is sent once until the next FETCH. So a stopped
 * client never makes the daemon buffer more. How many clients there may
 * be, per user and in all, and how long one may stall, is
 * duetd-limits.c's; what DAEMON_STATUS tells whom, duetd-status.c's.
 *
 * Permissions. A client that is not root learns about a file only if it
 * could open it itself: every check runs faccessat(AT_EACCESS) on the
 * file's path in a thread that has taken the client's fsuid, fsgid and
 * groups (setfsuid(2) and setgroups are per thread at the system call
 * level; dropping fsuid 0 drops the file capabilities too), so search
 * permission on every directory, the file's mode, ACLs and LSMs all count.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "duetd.h"
#include "engine.h"
#include "internal.h"
#include "live.h"
#include "duet/duet.h"

/*
 * --max-done-marks: about 190 bytes a mark (184 measured with 1,048,576
 * whole-file marks of files the engine knew nothing else about), so
 * 65,536 marks are about 12 MiB a task, 192 MiB for one user's 16 tasks
 * and 768 MiB for the engine's 64: within reach of a small machine, and
 * room for a task that marks every file of a tree of 65,536 files.
 */
#define DEFAULT_MAX_DONE_MARKS	65536

struct duetd d = {
	.socket = DP_DEFAULT_SOCKET,
	.mode = 0666,
	.max_pending = 262144,
	.max_done_marks = DEFAULT_MAX_DONE_MARKS,
	.max_clients = 1024,
	.max_tasks_per_user = 16,
	.request_timeout_s = 5,
	.idle_timeout_s = 60,
	.tfd = -1,
	.spare_fd = -1,
	.next_id = 1,
};

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("duetd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void session_log(void *ud, int level, const char *msg)
{
	if (level <= 4 || d.verbose)
		fprintf(stderr, "duetd: %s\n", msg);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- acting as the client: per-thread fs credentials ---- */

/*
 * Whose credentials this thread acts with now (NULL: duetd's own). A
 * check made while already acting as that client (a save, which runs as
 * the client, checks each mark's visibility) must not switch back to root
 * half-way through.
 */
static __thread const struct creds *acting;

static void as_client(const struct creds *c)
{
	/* Raw system calls: glibc's wrappers would change every thread. */
	syscall(SYS_setgroups, (size_t)c->ngroups, c->groups);
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	acting = c;
}

static void as_self(void)
{
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	syscall(SYS_setgroups, (size_t)0, NULL);
	acting = NULL;
}

/* 0 if the client can access path with mode (R_OK, X_OK...), else -errno. */
static int client_access(const struct creds *c, const char *path, int mode)
{
	const struct creds *was = acting;
	int r;

	if (!c->uid)
		return faccessat(AT_FDCWD, path, mode, 0) ? -errno : 0;
	if (was != c)
		as_client(c);
	r = faccessat(AT_FDCWD, path, mode, AT_EACCESS) ? -errno : 0;
	if (was != c) {
		as_self();
		if (was)
			as_client(was);
	}
	return r;
}

/* The session's visibility hook: a file the client could open for reading. */
static int visible(void *ud, const char *path)
{
	struct client *c = ud;

	return !client_access(&c->cr, path, R_OK);
}

/* ---- output: one reply at a time, plus READY ---- */

static void want_out(struct client *c, bool out)
{
	struct epoll_event ev = {
		.events = out ? EPOLLOUT : (c->closing ? 0 : EPOLLIN),
		.data.ptr = &c->sock_src,
	};

	epoll_ctl(d.epfd, EPOLL_CTL_MOD, c->fd, &ev);
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
static void error_close(struct client *c, uint32_t seq, int err, const char *fmt, ...)
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

static void arm_task(struct client *c, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &c->task_src };

	if (!c->task || c->task_armed == on)
		return;
	epoll_ctl(d.epfd, EPOLL_CTL_MOD, duet_task_fd(c->task), &ev);
	c->task_armed = on;
}

/* ---- requests ---- */

static void do_task_new(struct client *c, const struct dp_request *rq)
{
	struct duet_task_opts to = { .sz = sizeof(to) };
	struct duet__task_ext x = {
		.max_pending = d.max_pending,
		.max_done_marks = d.max_done_marks,
	};
	struct dp_task_id id;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->task_src };
	const char *path = rq->u.task_new.path;
	struct stat st;
	int r;

	if (c->task) {
		reply(c, rq->seq, -EBUSY, NULL, 0);	/* one task per connection */
		return;
	}
	if (c->cr.uid && c->u->tasks >= d.max_tasks_per_user) {
		reply(c, rq->seq, -ENOSPC, NULL, 0);
		return;
	}
	/*
	 * The root is resolved once, as the client: opened with its rights
	 * (following symlinks as it would), checked on the open file (it must
	 * be able to list the directory, or read the file), and handed to the
	 * session by fd. A symlink swapped in after the check is never
	 * followed as root.
	 */
	if (c->cr.uid)
		as_client(&c->cr);
	x.root_fd = open(path, O_PATH | O_CLOEXEC);
	r = x.root_fd < 0 ? -errno : fstat(x.root_fd, &st) ? -errno : 0;
	if (!r && faccessat(x.root_fd, "", S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK,
			    AT_EMPTY_PATH | (c->cr.uid ? AT_EACCESS : 0)))
		r = -errno;
	if (c->cr.uid)
		as_self();
	if (r) {
		if (x.root_fd >= 0)
			close(x.root_fd);
		reply(c, rq->seq, r, NULL, 0);
		return;
	}
	x.have_root_fd = true;
	to.name = rq->u.task_new.name;
	to.mask = rq->u.task_new.mask;
	to.path = path;
	if (c->cr.uid) {
		x.visible = visible;
		x.ud = c;
	}
	x.hold = rq->u.task_new.flags & DP_TASK_HOLD;
	r = duet__task_new_ext(d.s, &to, &x, &c->task);
	close(x.root_fd);
	if (r) {
		c->task = NULL;
		reply(c, rq->seq, r, NULL, 0);
		return;
	}
	/* Status shows the root as resolved, not the path asked for. */
	c->dir = strdup(duet__task_root(c->task));
	c->mask = to.mask;
	snprintf(c->name, sizeof(c->name), "%s", to.name);
	c->id = d.next_id++;
	d.ntasks++;
	c->u->tasks++;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, duet_task_fd(c->task), &ev);
	c->task_armed = true;
	id.id = c->id;
	id.flush = (uint32_t)duet_session_flush_semantics(d.s);
	reply(c, rq->seq, 0, &id, sizeof(id));
	if (d.verbose)
		say("task %u \"%s\" of uid %u pid %d on %s mask %#x", c->id, c->name,
		    (unsigned)c->cr.uid, (int)c->cr.pid, path, c->mask);
}

static void do_fetch(struct client *c, const struct dp_request *rq)
{
	uint32_t max = rq->u.fetch_max > DP_MAX_FETCH ? DP_MAX_FETCH : rq->u.fetch_max;
	struct dp_reply rep = { 0 };
	size_t hdr = DP_HDR_SIZE + sizeof(rep);
	char *p;
	int r;

	if (reserve_out(c, hdr + (size_t)max * sizeof(struct duet_item))) {
		c->closing = true;
		return;
	}
	/* Items are fetched straight into the reply. */
	p = c->out + c->outlen;
	r = max ? duet_task_fetch(c->task, (struct duet_item *)(void *)(p + hdr), max) : 0;
	rep.result = r;
	{
		struct dp_hdr h = {
			.magic = DP_MAGIC,
			.version = DP_VERSION,
			.type = DP_REPLY,
			.len = (uint32_t)(sizeof(rep) + (r > 0 ? (size_t)r * sizeof(struct duet_item) : 0)),
			.seq = rq->seq,
		};

		memcpy(p, &h, sizeof(h));
		memcpy(p + DP_HDR_SIZE, &rep, sizeof(rep));
		c->outlen += DP_HDR_SIZE + h.len;
	}
	/* The client has come back for items: READY may be sent again. */
	c->ready_sent = false;
	arm_task(c, true);
}

/*
 * A client may name in a done mark only a file it could look up itself:
 * one with a name under its task's directory (of that incarnation) that
 * it may open. Anything else is -ENOENT, whether it exists or not, so a
 * mark can neither create state for other users' files nor probe them.
 */
static int done_target_ok(struct client *c, const struct duet_fileid *f)
{
	char path[PATH_MAX];
	int r;

	if (!c->cr.uid)
		return 0;
	r = duet_task_path(c->task, f, path, sizeof(path));
	if (r)
		return r == -ENAMETOOLONG ? r : -ENOENT;
	return visible(c, path) ? 0 : -ENOENT;
}

static void do_done(struct client *c, const struct dp_request *rq)
{
	uint32_t op = rq->u.done.op & ~DP_DONE_REPLAY;
	bool replay = rq->u.done.op & DP_DONE_REPLAY;
	int r = 0;

	for (uint32_t i = 0; i < rq->u.done.n; i++) {
		struct dp_done_op o;
		int x;

		dp_done_op_get(rq, i, &o);
		x = done_target_ok(c, &o.f);
		if (x)
			;
		else if (op == DP_DONE_SET)
			x = duet_task_set_done(c->task, &o.f, o.index, o.count);
		else if (op == DP_DONE_RESET)
			x = duet_task_reset_done(c->task, &o.f, o.index, o.count);
		else
			x = duet_task_check_done(c->task, &o.f, o.index, o.count);
		/*
		 * Replayed after a restart: a file whose identity moved is
		 * skipped, and so are marks past this daemon's bound (it may
		 * be lower than the last one's): their pages are reported
		 * again, which is safe, and the task comes back at all.
		 */
		if (x < 0 && replay && (x == -ESTALE || x == -ENOENT || x == -EDQUOT))
			x = 0;
		if (x < 0 && r >= 0)
			r = x;
		if (op == DP_DONE_CHECK)
			r = x;
	}
	reply(c, rq->seq, r, NULL, 0);
}

static void do_fileid(struct client *c, const struct dp_request *rq)
{
	struct duet_fileid f;
	int r = client_access(&c->cr, rq->u.path, F_OK);

	if (!r && c->cr.uid && !visible(c, rq->u.path))
		r = -EACCES;
	if (!r)
		r = duet_task_fileid(c->task, rq->u.path, &f);
	reply(c, rq->seq, r, r ? NULL : &f, r ? 0 : sizeof(f));
}

static void do_path(struct client *c, const struct dp_request *rq)
{
	char path[PATH_MAX];
	int r = duet_task_path(c->task, &rq->u.fileid, path, sizeof(path));

	/* A name the client could not open is not told. */
	if (!r && c->cr.uid && !visible(c, path))
		r = -ENOENT;
	reply(c, rq->seq, r, r ? NULL : path, r ? 0 : strlen(path));
}

static void do_save_load(struct client *c, const struct dp_request *rq)
{
	int r;

	/* The client's file, opened and renamed with the client's rights. */
	if (c->cr.uid)
		as_client(&c->cr);
	if (rq->type == DP_SAVE)
		r = duet_task_save(c->task, rq->u.path);
	else
		r = duet_task_load(c->task, rq->u.path);
	if (c->cr.uid)
		as_self();
	reply(c, rq->seq, r, NULL, 0);
}

static void do_task_status(struct client *c, const struct dp_request *rq)
{
	struct duet_task_status st = { .sz = sizeof(st) };
	char body[DP_TASK_STATS_SIZE];
	int r = duet_task_status(c->task, &st);

	if (!r)
		dp_task_stats_put(body, &st);
	reply(c, rq->seq, r, r ? NULL : body, r ? 0 : sizeof(body));
}

static void handle(struct client *c, const struct dp_msg *m)
{
	struct dp_request *rq = malloc(sizeof(*rq));

	if (!rq) {
		c->closing = true;
		return;
	}
	c->active_ns = now_ns();
	if (dp_parse_request(m, rq)) {
		error_close(c, m->h.seq, -EBADMSG, "malformed %u message", (unsigned)m->h.type);
		goto out;
	}
	if (!c->hello) {
		if (rq->type != DP_HELLO) {
			error_close(c, rq->seq, -EPROTO, "the first message must be HELLO");
		} else if (rq->u.hello.version != DP_VERSION) {
			error_close(c, rq->seq, -EPROTONOSUPPORT,
				    "duetd speaks protocol version %u, the client %u",
				    DP_VERSION, rq->u.hello.version);
		} else {
			struct dp_welcome w = {
				.version = DP_VERSION,
				.daemon_id = d.start_ns,
				.pid = (uint32_t)getpid(),
				.max_pending = (uint32_t)d.max_pending,
				.minor = DP_MINOR,
			};
			int fs = duet_session_flush_semantics(d.s);

			w.flush = fs > 0 ? (uint32_t)fs : 0;
			/*
			 * Flags it does not know are ignored: a newer client
			 * works. Every reply of this daemon has its minor-0
			 * form (no field has been added since), which is what
			 * a client of minor 0 needs; one that adds a field
			 * must leave it out for c->minor == 0 (proto.h).
			 */
			c->minor = DP_HELLO_MINOR(rq->u.hello.flags);
			c->features = rq->u.hello.flags & DP_HELLO_STATUS_EXT;
			w.features = c->features;
			c->hello = true;
			reply(c, rq->seq, 0, &w, sizeof(w));
		}
		goto out;
	}
	switch (rq->type) {
	case DP_HELLO:
		error_close(c, rq->seq, -EPROTO, "HELLO twice");
		goto out;
	case DP_TASK_NEW:
		do_task_new(c, rq);
		goto out;
	case DP_DAEMON_STATUS:
		do_daemon_status(c, rq);
		goto out;
	default:
		break;
	}
	if (!c->task) {
		error_close(c, rq->seq, -EPROTO, "a task request before TASK_NEW");
		goto out;
	}
	switch (rq->type) {
	case DP_TASK_START:
		reply(c, rq->seq, duet__task_start(c->task), NULL, 0);
		break;
	case DP_FETCH:
		do_fetch(c, rq);
		break;
	case DP_DONE:
		do_done(c, rq);
		break;
	case DP_FILEID:
		do_fileid(c, rq);
		break;
	case DP_PATH:
		do_path(c, rq);
		break;
	case DP_TASK_STATUS:
		do_task_status(c, rq);
		break;
	case DP_SAVE:
	case DP_LOAD:
		do_save_load(c, rq);
		break;
	}
out:
	free(rq);
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
		handle(c, &m);
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

static void on_sock(struct client *c, uint32_t events)
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

static void on_task(struct client *c)
{
	/* Items pending: one READY, then silence until the next FETCH. */
	arm_task(c, false);
	if (c->ready_sent || c->closing)
		return;
	c->ready_sent = true;
	queue(c, DP_READY, 0, NULL, 0, NULL, 0, NULL, 0);
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

/* The client went away (or was thrown out): its task is freed. */
void client_free(struct client *c)
{
	limits_release(c);
	if (c->task) {
		epoll_ctl(d.epfd, EPOLL_CTL_DEL, duet_task_fd(c->task), NULL);
		duet_task_free(c->task);
		d.ntasks--;
		if (d.verbose)
			say("task %u \"%s\" freed", c->id, c->name);
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

static void free_zombies(void)
{
	while (d.zombies) {
		struct client *c = d.zombies;

		d.zombies = c->next;
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

static int listen_socket(void)
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

static void usage(FILE *f)
{
	fputs("usage: duetd [options]\n"
	      "Serves page-cache events to libduet programs, including unprivileged ones.\n"
	      "  -s, --socket PATH          socket (default " DP_DEFAULT_SOCKET ")\n"
	      "  -m, --socket-mode MODE     octal socket mode (default 0666: everyone may\n"
	      "                             connect; what each client sees is checked per file)\n"
	      "  -g, --socket-group GROUP   the socket's group (with e.g. --socket-mode 0660)\n"
	      "  -p, --max-pending PAGES    bound on a task's pending pages (default 262144);\n"
	      "                             past it the task gets LOST and a resync\n"
	      "  -d, --max-done-marks N     bound on a task's done marks (default 65536, 0:\n"
	      "                             none); past it marking fails with EDQUOT\n"
	      "  -u, --max-tasks-per-user N tasks per non-root user (default 16; 64 in all);\n"
	      "                             past it registering fails with ENOSPC\n"
	      "  -c, --max-connections N    connections in all (default 1024); past it a\n"
	      "                             connection is refused with a sentence\n"
	      "  -C, --max-connections-per-user N\n"
	      "                             connections of one non-root user (default a\n"
	      "                             quarter of --max-connections); past it likewise\n"
	      "  -t, --request-timeout S    a connection whose request stays incomplete for S\n"
	      "                             seconds is closed (default 5)\n"
	      "  -i, --idle-timeout S       a connection without a task that sends no request\n"
	      "                             for S seconds is closed (default 60)\n"
	      "  -b, --buffer-kb KB         per-CPU ring buffer size\n"
	      "      --stock                ignore the patched kernel events\n"
	      "  -v, --verbose              log clients and tasks\n",
	      f);
}

/* A number option in [min, max]: 0, or says why not and returns 2. */
static int num(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
		say("bad --%s %s (%llu to %llu)", name, arg, (unsigned long long)min,
		    (unsigned long long)max);
		return 2;
	}
	*out = v;
	return 0;
}

/* The options into d: -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "max-pending", required_argument, NULL, 'p' },
		{ "max-done-marks", required_argument, NULL, 'd' },
		{ "max-tasks-per-user", required_argument, NULL, 'u' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "max-connections-per-user", required_argument, NULL, 'C' },
		{ "request-timeout", required_argument, NULL, 't' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "buffer-kb", required_argument, NULL, 'b' },
		{ "stock", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v, per_user = 0;
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:m:g:p:d:u:c:C:t:i:b:vh", lo, NULL)) != -1) {
		switch (opt) {
		case 's':
			d.socket = optarg;
			break;
		case 'm':
			d.mode = (unsigned int)strtoul(optarg, &end, 8);
			if (*end || d.mode > 0777) {
				say("bad --socket-mode %s (octal, e.g. 0660)", optarg);
				return 2;
			}
			break;
		case 'g': {
			struct group *g = getgrnam(optarg);

			if (!g) {
				say("no group %s", optarg);
				return 2;
			}
			d.gid = g->gr_gid;
			d.have_gid = true;
			break;
		}
		case 'p':
			if (num("max-pending", optarg, 1, UINT32_MAX, &d.max_pending))
				return 2;
			break;
		case 'd':
			if (num("max-done-marks", optarg, 0, UINT32_MAX, &d.max_done_marks))
				return 2;
			break;
		case 'u':
			if (num("max-tasks-per-user", optarg, 1, DE_MAX_TASKS, &v))
				return 2;
			d.max_tasks_per_user = (unsigned int)v;
			break;
		case 'c':
			if (num("max-connections", optarg, 1, 1u << 20, &v))
				return 2;
			d.max_clients = (unsigned int)v;
			break;
		case 'C':
			if (num("max-connections-per-user", optarg, 1, 1u << 20, &per_user))
				return 2;
			break;
		case 't':
			if (num("request-timeout", optarg, 1, 3600, &v))
				return 2;
			d.request_timeout_s = (unsigned int)v;
			break;
		case 'i':
			if (num("idle-timeout", optarg, 1, 86400, &v))
				return 2;
			d.idle_timeout_s = (unsigned int)v;
			break;
		case 'b':
			if (num("buffer-kb", optarg, 0, UINT32_MAX, &v))
				return 2;
			d.buffer_kb = (unsigned int)v;
			break;
		case 'S':
			d.stock = true;
			break;
		case 'v':
			d.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* A user's share: a quarter, so it takes four users to fill the rest. */
	d.max_per_user = per_user ? (unsigned int)per_user :
				    (d.max_clients / 4 ? d.max_clients / 4 : 1);
	if (d.max_per_user > d.max_clients) {
		say("--max-connections-per-user %u is more than --max-connections %u",
		    d.max_per_user, d.max_clients);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	struct epoll_event ev = { .events = EPOLLIN };
	struct src lsrc = { SRC_LISTEN, NULL }, ssrc = { SRC_SIGNAL, NULL };
	sigset_t sigs;
	int r, rc = 0;

	r = parse_options(argc, argv);
	if (r >= 0)
		return r;
	if (geteuid()) {
		say("must run as root: it reads the tracing ring buffer and checks each client's "
		    "rights");
		return 1;
	}
	r = limits_fds();
	if (r == -EMFILE)
		return 2;	/* the options ask for more than the system allows */
	if (r) {
		say("RLIMIT_NOFILE: %s", strerror(-r));
		return 1;
	}
	d.start_ns = now_ns();
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Stale instances of dead daemons (and other dead duet programs) go now,
	 * not only when the first task opens ours. */
	r = dc_instances_reap();
	if (r > 0)
		say("removed %d tracing instances of processes that are gone", r);
	so.log = session_log;
	so.buffer_kb = d.buffer_kb;
	so.flags = DUET_SESSION_LOCAL | (d.stock ? DUET_SESSION_STOCK : 0);
	r = duet_session_new(&so, &d.s);
	if (r) {
		say("cannot open the page-cache event source: %s", duet_strerror(r));
		return 1;
	}
	d.lfd = listen_socket();
	if (d.lfd < 0) {
		say("%s: %s", d.socket,
		    d.lfd == -EADDRINUSE ? "another duetd is running on this socket" : strerror(-d.lfd));
		duet_session_free(d.s);
		return 1;
	}
	d.sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d.sfd < 0 || d.epfd < 0 || limits_init()) {
		say("%s", strerror(errno));
		rc = 1;
		goto out;
	}
	ev.data.ptr = &lsrc;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.lfd, &ev);
	ev.data.ptr = &ssrc;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.sfd, &ev);
	say("listening on %s (mode %04o): %u connections, %u per user; %" PRIu64 " pending "
	    "pages and %" PRIu64 " done marks per task; timeouts %u s (request), %u s (idle); "
	    "%llu of %llu file descriptors", d.socket, d.mode, d.max_clients, d.max_per_user,
	    d.max_pending, d.max_done_marks, d.request_timeout_s, d.idle_timeout_s,
	    (unsigned long long)d.fd_need, (unsigned long long)d.fd_limit);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(d.epfd, evs, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say("epoll: %s", strerror(errno));
			rc = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;

			if (s->c && s->c->dead)
				continue;
			switch (s->kind) {
			case SRC_LISTEN:
				limits_accept();
				break;
			case SRC_SIGNAL:
				say("exiting on signal");
				goto out;
			case SRC_TIMER:
				limits_tick();
				break;
			case SRC_SOCK:
				on_sock(s->c, evs[i].events);
				break;
			case SRC_TASK:
				on_task(s->c);
				break;
			}
		}
		free_zombies();
	}
out:
	while (d.clients)
		client_free(d.clients);
	free_zombies();
	limits_free();
	close(d.lfd);
	unlink(d.socket);
	duet_session_free(d.s);	/* removes the tracing instance */
	return rc;
}
