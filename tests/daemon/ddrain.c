// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ddrain: a fetch right after a drain, through duetd (DP_REPLY_DRAINED).
 *
 * After a FETCH reply that drained the task, libduet answers the next
 * fetch with 0 itself unless the socket has something to read. This
 * checks that the shortcut never hides items: for ROUNDS rounds, a file
 * is written under DIR, the task (ADDED) is polled and fetched until
 * the file's pages have come, with no further fetch; another file is
 * written, the fd is polled until readable (a READY came for it), and
 * the very next fetch must bring that file's pages. (A library that
 * answered it with 0 would leave a polling caller spinning: the fd
 * stays readable.) Then a fetch with nothing new returns 0, and the fd
 * is not readable.
 *
 * usage: ddrain DIR [ROUNDS (default 20)]; the socket is $DUET_SOCKET.
 * Exit: 0 pass, 1 fail, 77 skip (no daemon).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <duet/duet.h>

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: ddrain: %s\n", what);
	return 1;
}

/* Writes DIR/NAME (4 pages, fsynced); its inode number, 0 on failure. */
static uint64_t write_file(const char *dir, const char *name)
{
	char path[4096], buf[4 * 4096];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memset(buf, 'd', sizeof(buf));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 0;
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) || fstat(fd, &st)) {
		close(fd);
		return 0;
	}
	close(fd);
	return st.st_ino;
}

/* Pages of ino among items[0..n). */
static uint64_t pages_of(const struct duet_item *it, int n, uint64_t ino)
{
	uint64_t p = 0;

	for (int i = 0; i < n; i++)
		if (it[i].ino == ino && (it[i].state & DUET_ADDED))
			p += it[i].count;
	return p;
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so), .flags = DUET_SESSION_DAEMON };
	struct duet_task_opts to = { .sz = sizeof(to), .name = "ddrain", .mask = DUET_ADDED };
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	struct duet_item it[256];
	struct duet_session *s;
	struct duet_task *t;
	struct pollfd pfd;
	char name[32];
	int r, n;

	if (argc < 2 || rounds < 1) {
		fprintf(stderr, "usage: ddrain DIR [ROUNDS]\n");
		return 2;
	}
	to.path = argv[1];
	r = duet_session_new(&so, &s);
	if (r) {
		fprintf(stderr, "SKIP: ddrain: no daemon: %s\n", duet_strerror(r));
		return 77;
	}
	r = duet_task_new(s, &to, &t);
	if (r)
		return fail(duet_strerror(r));
	pfd.fd = duet_task_fd(t);
	pfd.events = POLLIN;
	/* The registration scan of an empty directory: nothing to fetch. */
	usleep(300000);
	while ((n = duet_task_fetch(t, it, 256)) > 0) {
	}
	for (int k = 0; k < rounds; k++) {
		uint64_t a, b, got = 0;

		snprintf(name, sizeof(name), "a%d", k);
		a = write_file(argv[1], name);
		if (!a)
			return fail("write");
		/* Polled and fetched until a's pages came: the last fetch drained. */
		while (got < 4) {
			if (poll(&pfd, 1, 10000) != 1)
				return fail("no items for the first file within 10 s");
			n = duet_task_fetch(t, it, 256);
			if (n < 0)
				return fail(duet_strerror(n));
			got += pages_of(it, n, a);
		}
		snprintf(name, sizeof(name), "b%d", k);
		b = write_file(argv[1], name);
		if (!b)
			return fail("write");
		/*
		 * The fd becomes readable (a READY on the socket, not read by
		 * poll()), and the next fetch must see b's pages, not answer 0
		 * from the drained reply before it.
		 */
		if (poll(&pfd, 1, 10000) != 1) {
			fprintf(stderr, "FAIL: ddrain: round %d: no READY for the second file "
				"within 10 s\n", k);
			return 1;
		}
		n = duet_task_fetch(t, it, 256);
		if (n < 0)
			return fail(duet_strerror(n));
		if (!pages_of(it, n, b)) {
			fprintf(stderr, "FAIL: ddrain: round %d: the fetch after a drain returned %d "
				"items, none of the new file's\n", k, n);
			return 1;
		}
		while ((n = duet_task_fetch(t, it, 256)) > 0) {
		}
		if (n < 0)
			return fail(duet_strerror(n));
		usleep(100000);
		n = duet_task_fetch(t, it, 256);
		if (n != 0) {
			fprintf(stderr, "FAIL: ddrain: round %d: %d items with nothing new\n", k, n);
			return 1;
		}
		if (poll(&pfd, 1, 0) != 0)
			return fail("the fd is readable with nothing pending");
	}
	duet_task_free(t);
	duet_session_free(s);
	printf("ddrain: %d rounds\n", rounds);
	return 0;
}
