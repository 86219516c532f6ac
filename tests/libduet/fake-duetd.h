/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake duetd for the libduet tests that need a daemon-mode session but
 * no root, no tracefs and no real daemon: a thread serving connections
 * on a socket in a temporary directory (dir, sock) with canned bodies,
 * of a protocol minor or major chosen per run (enum kind). It parses
 * every request with the codec (dp_parse_request()) and counts what the
 * client sent. Included by one test file each (static definitions).
 */
#ifndef DUET_TEST_FAKE_DUETD_H
#define DUET_TEST_FAKE_DUETD_H

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

#include "proto.h"
#include "duet/duet.h"

enum kind { NEWER, OLDER, SHORT, MAJOR, REFUSE };

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
	char task_name[DP_MAX_NAME + 1];
	uint32_t task_mask, task_flags;
	unsigned int task_news;
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
		if (f->kind == REFUSE) {
			send_reply(fd, DP_VERSION, DP_ERROR, r->seq, -EUSERS,
				   "too many connections of uid 0 (4)", 34, 0);
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
		snprintf(f->task_name, sizeof(f->task_name), "%s", r->u.task_new.name);
		f->task_mask = r->u.task_new.mask;
		f->task_flags = r->u.task_new.flags;
		f->task_news++;
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

static char dir[] = "/tmp/duet-fake.XXXXXX";
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

static __attribute__((unused)) int open_session(struct duet_session **s)
{
	struct duet_session_opts so = {
		.sz = sizeof(so), .flags = DUET_SESSION_DAEMON, .socket = sock,
	};

	return duet_session_new(&so, s);
}

/* The temporary directory and socket: made once per test program. */
static int fake_setup(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	return 0;
}

#endif
