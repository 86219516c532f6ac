// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dmarks: done marks against a bound, through the public API (daemon
 * mode unless -l). Registers one task on DIR and marks the files DIR/m1,
 * DIR/m2, ... done as a whole, one call each (with -f, made-up files: dev
 * 1, ino 1, 2, ..., for an in-process session: duetd may refuse a client
 * identities of files it cannot look up),
 * then:
 *
 *   set OK ERR          marks that succeeded, then the first error (0: none
 *                       within TRIES)
 *   error ERR SENTENCE  duet_strerror() of that error
 *   reset 10            ten of them reset
 *   again OK ERR        new marks that then fit, and the next error
 *   split ERR           at the bound, a reset that would split a range (of
 *                       DIR/mr, marked [0, 100) after one mark was reset)
 *   whole ERR           the same file's range reset as a whole
 *
 * The real files needed: m1 ... m(LIMIT + 11), and mr.
 * Options: -l (in-process session), -f, -s SOCKET, -t TRIES (default LIMIT + 1),
 * -w (then print "waiting" and keep the task until SIGTERM or SIGINT).
 * Exit: 0, 1 on an unexpected error (message on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <duet/duet.h>

static const char *dir;
static bool made_up;

/* File i: DIR/m<i> (DIR/mr for i == 0), or made up. */
static int fid(struct duet_task *t, uint64_t i, struct duet_fileid *f)
{
	char path[4096];

	if (made_up) {
		*f = (struct duet_fileid){ .ino = i ? i : 2000000, .gen = 1, .dev = 1 };
		return 0;
	}
	if (i)
		snprintf(path, sizeof(path), "%s/m%llu", dir, (unsigned long long)i);
	else
		snprintf(path, sizeof(path), "%s/mr", dir);
	return duet_task_fileid(t, path, f);
}

/* Marks files first, first + 1, ... until an error or tries: how many. */
static uint64_t mark_until(struct duet_task *t, uint64_t first, uint64_t tries, int *err)
{
	uint64_t n;

	*err = 0;
	for (n = 0; n < tries; n++) {
		struct duet_fileid f;
		int r = fid(t, first + n, &f);

		if (!r)
			r = duet_task_set_done(t, &f, 0, 0);

		if (r < 0) {
			*err = r;
			break;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	struct duet_task_opts to = { .sz = sizeof(to), .name = "dmarks", .mask = DUET_EXISTS };
	struct duet_session *s;
	struct duet_task *t;
	struct duet_fileid f;
	uint64_t limit, tries = 0, n;
	bool wait = false;
	int opt, r, err;

	while ((opt = getopt(argc, argv, "lfs:t:w")) != -1) {
		switch (opt) {
		case 'l':
			so.flags |= DUET_SESSION_LOCAL;
			break;
		case 'f':
			made_up = true;
			break;
		case 's':
			so.socket = optarg;
			break;
		case 't':
			tries = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			wait = true;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	to.path = dir = argv[optind];
	limit = strtoull(argv[optind + 1], NULL, 0);
	if (!tries)
		tries = limit + 1;
	if (!(so.flags & DUET_SESSION_LOCAL))
		so.flags |= DUET_SESSION_DAEMON;
	r = duet_session_new(&so, &s);
	if (!r)
		r = duet_task_new(s, &to, &t);
	if (r) {
		fprintf(stderr, "dmarks: %s: %s\n", to.path, duet_strerror(r));
		return 1;
	}
	n = mark_until(t, 1, tries, &err);
	printf("set %llu %d\n", (unsigned long long)n, err);
	if (err)
		printf("error %d %s\n", err, duet_strerror(err));
	if (err == -EDQUOT) {
		for (uint64_t i = 1; i <= 10; i++) {
			r = fid(t, i, &f);
			if (!r)
				r = duet_task_reset_done(t, &f, 0, 0);
			if (r) {
				fprintf(stderr, "dmarks: reset: %s\n", duet_strerror(r));
				return 1;
			}
		}
		printf("reset 10\n");
		n = mark_until(t, limit + 1, tries, &err);
		printf("again %llu %d\n", (unsigned long long)n, err);
		/* One mark of room, taken by a range; splitting it needs another. */
		r = fid(t, limit + 1, &f);
		if (!r)
			r = duet_task_reset_done(t, &f, 0, 0);
		if (!r)
			r = fid(t, 0, &f);
		if (!r)
			r = duet_task_set_done(t, &f, 0, 100);
		if (r) {
			fprintf(stderr, "dmarks: range: %s\n", duet_strerror(r));
			return 1;
		}
		printf("split %d\n", duet_task_reset_done(t, &f, 50, 1));
		printf("whole %d\n", duet_task_reset_done(t, &f, 0, 100));
	}
	if (wait) {
		sigset_t sigs;
		int sig;

		sigemptyset(&sigs);
		sigaddset(&sigs, SIGTERM);
		sigaddset(&sigs, SIGINT);
		sigprocmask(SIG_BLOCK, &sigs, NULL);
		printf("waiting\n");
		fflush(stdout);
		sigwait(&sigs, &sig);
	}
	fflush(stdout);
	duet_task_free(t);
	duet_session_free(s);
	return 0;
usage:
	fprintf(stderr, "usage: dmarks [-lfw] [-s SOCKET] [-t TRIES] DIR LIMIT\n");
	return 2;
}
