// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libduet's daemon client against daemons of other protocol minors and
 * majors (libduet/proto.h, "Growth"). A fake duetd runs in a thread on a
 * socket in a temporary directory and answers with canned bodies:
 *  - newer: minor 9, every fixed-form reply longer than this client
 *    knows (fields a later minor would add): the client reads what it
 *    knows and ignores the rest;
 *  - older: minor 0 (the daemons before the rule), the welcome of its
 *    first form and every reply of exactly its size;
 *  - short: a TASK_STATUS body shorter than its first form: refused;
 *  - major: a daemon of major 2, whose answer to HELLO is refused with
 *    -EPROTONOSUPPORT.
 * And duet_session_free() of a daemon-mode session hangs up the tasks
 * still registered on it, as duet_session_free(3) says it frees them.
 * The fake daemon also checks what the client sends: HELLO carries its
 * minor, and every request is of the exact form (dp_parse_request()).
 * No root, no tracefs: the in-process backend is never opened.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "proto.h"
#include "duet/duet.h"

enum kind { NEWER, OLDER, SHORT, MAJOR };

#define MAX_CONNS 8
#define EXTRA 16	/* bytes a newer daemon appends to each fixed-form body */

struct fake {
	enum kind kind;
	int lfd, stop[2];
	pthread_t thr;
	/* What the client sent. */
	unsigned int hellos, requests, malformed;
	unsigned int closed;	/* connections the client closed (atomic: read by main) */
	uint32_t hello_minor, hello_version;
	char task_path[DP_MAX_PATH + 1];
};

static const struct duet_item items_sent[2] = {
	{ .ino = 11, .gen = 1, .index = 0, .count = 3, .dev = 0x800001, .state = DUET_ADDED },
	{ .ino = 12, .gen = 2, .index = 7, .count = 1, .dev = 0x800001, .state = DUET_REMOVED },
};

static const struct duet_task_status stats_sent = {
	.sz = sizeof(struct duet_task_status),
	.events = 101, .items = 102, .pages = 103, .coalesced = 104, .cancelled = 105,
	.lost = 106, .resyncs = 107, .pending = 108, .scan_files = 109, .scan_done = 110,
};

static const struct duet_fileid fileid_sent = { .ino = 77, .gen = 5, .dev = 0x800001 };

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A reply: header (of major version), dp_reply, body, EXTRA bytes if asked. */
static void send_reply(int fd, uint16_t version, uint16_t type, uint32_t seq, int result,
		       const void *body, size_t len, size_t extra)
{
	static char buf[DP_HDR_SIZE + 8 + 4096 + EXTRA];
	struct dp_reply rep = { .result = result };
	size_t n = dp_build(buf, type, seq, &rep, sizeof(rep), body, len, NULL, 0);

	/* Fields of a later minor: a recognisable pattern, never read. */
	memset(buf + n, 0xa5, extra);
	n += extra;
	((struct dp_hdr *)(void *)buf)->len += (uint32_t)extra;
	((struct dp_hdr *)(void *)buf)->version = version;
	if (send(fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
		perror("fake duetd: send");
}

/* One request of the client, answered as the fake's kind says. */
static int serve(struct fake *f, int fd)
{
	static char in[DP_HDR_SIZE + DP_MAX_REQUEST];
	size_t extra = f->kind == NEWER ? EXTRA : 0;
	struct dp_request *r = calloc(1, sizeof(*r));
	struct dp_msg m;
	struct dp_hdr h;
	int n, rc = 0;

	if (!r || recv_all(fd, in, DP_HDR_SIZE))
		goto gone;
	memcpy(&h, in, sizeof(h));
	if (h.len > DP_MAX_REQUEST || (h.len && recv_all(fd, in + DP_HDR_SIZE, h.len)))
		goto gone;
	n = dp_parse(in, DP_HDR_SIZE + h.len, DP_MAX_REQUEST, &m);
	if (n <= 0 || dp_parse_request(&m, r)) {
		f->malformed++;
		goto gone;
	}
	f->requests++;
	switch (r->type) {
	case DP_HELLO: {
		struct dp_welcome w = {
			.version = f->kind == MAJOR ? 2 : DP_VERSION,
			.flush = DUET_FLUSH_INODE,
			.daemon_id = 1,
			.pid = (uint32_t)getpid(),
			.max_pending = 1000,
			.features = 0,
			.minor = f->kind == NEWER ? 9 : 0,
		};

		f->hellos++;
		f->hello_version = r->u.hello.version;
		f->hello_minor = DP_HELLO_MINOR(r->u.hello.flags);
		if (f->kind == MAJOR) {
			send_reply(fd, 2, DP_ERROR, r->seq, -EPROTONOSUPPORT, "major 2", 7, 0);
			goto gone;
		}
		/* Minor 0's welcome ended before features. */
		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, &w,
			   f->kind == OLDER ? DP_WELCOME_MIN : sizeof(w), extra);
		break;
	}
	case DP_DAEMON_STATUS: {
		struct dp_daemon dd = { .pid = (uint32_t)getpid(), .flush = DUET_FLUSH_EXACT };

		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, &dd, sizeof(dd), extra);
		break;
	}
	case DP_TASK_NEW: {
		struct dp_task_id id = { .id = 3, .flush = DUET_FLUSH_EXACT };

		snprintf(f->task_path, sizeof(f->task_path), "%s", r->u.task_new.path);
		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, &id, sizeof(id), extra);
		break;
	}
	case DP_FETCH: {
		uint32_t k = r->u.fetch_max < 2 ? r->u.fetch_max : 2;

		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, (int)k, items_sent,
			   k * sizeof(items_sent[0]), extra);
		break;
	}
	case DP_TASK_STATUS: {
		char body[DP_TASK_STATS_SIZE];

		dp_task_stats_put(body, &stats_sent);
		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, body,
			   f->kind == SHORT ? sizeof(body) - 8 : sizeof(body), extra);
		break;
	}
	case DP_FILEID:
		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, &fileid_sent, sizeof(fileid_sent),
			   extra);
		break;
	case DP_PATH:
		/* A string body: it cannot grow, so no extra bytes. */
		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, "/x/y", 4, 0);
		break;
	default:
		send_reply(fd, DP_VERSION, DP_REPLY, r->seq, 0, NULL, 0, 0);
		break;
	}
	goto out;
gone:
	rc = -1;
out:
	free(r);
	return rc;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p[2 + MAX_CONNS];
	int nconn = 0;

	for (;;) {
		p[0] = (struct pollfd){ .fd = f->stop[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = f->lfd, .events = POLLIN };
		for (int i = 0; i < nconn; i++)
			p[2 + i].events = POLLIN;
		if (poll(p, 2 + (nfds_t)nconn, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		if ((p[1].revents & POLLIN) && nconn < MAX_CONNS) {
			int fd = accept(f->lfd, NULL, NULL);

			if (fd >= 0)
				p[2 + nconn++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
		for (int i = 0; i < nconn; i++) {
			if (!p[2 + i].revents || !serve(f, p[2 + i].fd))
				continue;
			close(p[2 + i].fd);
			__atomic_add_fetch(&f->closed, 1, __ATOMIC_SEQ_CST);
			p[2 + i] = p[2 + --nconn];
			i--;
		}
	}
	for (int i = 0; i < nconn; i++)
		close(p[2 + i].fd);
	return NULL;
}

static char dir[] = "/tmp/duet-proto-compat.XXXXXX";
static char sock[sizeof(dir) + 16];

static int fake_start(struct fake *f, enum kind kind)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	f->kind = kind;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	unlink(sock);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(f->lfd, 8) ||
	    pipe(f->stop) || pthread_create(&f->thr, NULL, fake_main, f)) {
		perror("fake duetd");
		return -1;
	}
	return 0;
}

static void fake_stop(struct fake *f)
{
	if (write(f->stop[1], "x", 1) != 1)
		perror("fake duetd: stop");
	pthread_join(f->thr, NULL);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->lfd);
	unlink(sock);
}

static int open_session(struct duet_session **s)
{
	struct duet_session_opts so = {
		.sz = sizeof(so), .flags = DUET_SESSION_DAEMON, .socket = sock,
	};

	return duet_session_new(&so, s);
}

/* This client against a daemon of minor 9 or 0: every call works. */
static void run_compatible(enum kind kind)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "compat", .mask = DUET_EXISTS,
				     .path = dir };
	struct duet_task_status st = { .sz = sizeof(st) };
	struct duet_item items[8];
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct duet_fileid f;
	char path[64], file[sizeof(dir) + 8];
	struct fake fk;

	if (fake_start(&fk, kind)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (!s)
		goto out;
	CHECK_EQ(duet_session_flush_semantics(s), DUET_FLUSH_EXACT);
	CHECK_EQ(duet_task_new(s, &to, &t), 0);
	if (!t)
		goto out;
	CHECK_STR(fk.task_path, dir);
	CHECK_EQ(duet_task_fetch(t, items, 8), 2);
	CHECK(!memcmp(items, items_sent, sizeof(items_sent)));
	CHECK_EQ(duet_task_fetch(t, items, 1), 1);
	CHECK_EQ(duet_task_status(t, &st), 0);
	CHECK(!memcmp(&st, &stats_sent, sizeof(st)));
	snprintf(file, sizeof(file), "%s/f", dir);
	CHECK_EQ(duet_task_fileid(t, file, &f), 0);
	CHECK_EQ(f.ino, fileid_sent.ino);
	CHECK_EQ(f.gen, fileid_sent.gen);
	CHECK_EQ(f.dev, fileid_sent.dev);
	CHECK_EQ(duet_task_path(t, &f, path, sizeof(path)), 0);
	CHECK_STR(path, "/x/y");
	CHECK_EQ(duet_task_set_done(t, &f, 0, 0), 0);
	CHECK_EQ(duet_task_check_done(t, &f, 0, 0), 0);
out:
	duet_task_free(t);
	duet_session_free(s);
	fake_stop(&fk);
	/* The client said its version, and sent only exact requests. */
	CHECK_EQ(fk.hellos, 2);	/* the control connection and the task's */
	CHECK_EQ(fk.hello_version, DP_VERSION);
	CHECK_EQ(fk.hello_minor, DP_MINOR);
	CHECK_EQ(fk.malformed, 0);
	CHECK(fk.requests >= 10);
}

/* A body shorter than the form this client needs is refused. */
static void run_short(void)
{
	struct duet_task_opts to = { .sz = sizeof(to), .mask = DUET_EXISTS, .path = dir };
	struct duet_task_status st = { .sz = sizeof(st) };
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct fake fk;

	if (fake_start(&fk, SHORT)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (s)
		CHECK_EQ(duet_task_new(s, &to, &t), 0);
	if (t) {
		memset(&st.events, 0x5a, sizeof(st) - sizeof(st.sz));
		CHECK_EQ(duet_task_status(t, &st), -EPROTO);
		CHECK_EQ(st.events, 0x5a5a5a5a5a5a5a5aull);	/* written only on success */
	}
	duet_task_free(t);
	duet_session_free(s);
	fake_stop(&fk);
}

/* Another major: refused at HELLO. */
static void run_major(void)
{
	struct duet_session *s = NULL;
	struct fake fk;

	if (fake_start(&fk, MAJOR)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), -EPROTONOSUPPORT);
	CHECK(!s);
	duet_session_free(s);
	fake_stop(&fk);
	CHECK_EQ(fk.hellos, 1);
}

/* duet_session_free() frees the tasks left: their connections close. */
static void run_session_frees_tasks(void)
{
	struct duet_task_opts to = { .sz = sizeof(to), .mask = DUET_EXISTS, .path = dir };
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct fake fk;

	if (fake_start(&fk, NEWER)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (s) {
		CHECK_EQ(duet_task_new(s, &to, &t), 0);
		CHECK_EQ(duet_task_new(s, &to, &t), 0);
	}
	duet_session_free(s);
	/* The control connection and both tasks', within 5 s. */
	for (int i = 0; i < 500 && __atomic_load_n(&fk.closed, __ATOMIC_SEQ_CST) < 3; i++)
		usleep(10000);
	CHECK_EQ(__atomic_load_n(&fk.closed, __ATOMIC_SEQ_CST), 3);
	fake_stop(&fk);
}

int main(void)
{
	char file[sizeof(dir) + 8];
	FILE *fp;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(file, sizeof(file), "%s/f", dir);
	fp = fopen(file, "w");
	if (fp)
		fclose(fp);
	run_compatible(NEWER);
	run_compatible(OLDER);
	run_short();
	run_major();
	run_session_frees_tasks();
	unlink(file);
	rmdir(dir);
	return check_exit("test-proto-compat");
}
