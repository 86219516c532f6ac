// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dreplay: done marks across a duetd restart, through the public API
 * (daemon mode). Registers one task on DIR and makes ITERS rounds of
 * overlapping sets and resets of page ranges on DIR/p, DIR/q and DIR/r
 * (q done as a whole first, so it becomes the whole file minus ranges;
 * r reset as a whole near the end), keeping a model of every page
 * below PAGES and of the pages past them, then prints
 *
 *   marked CALLS marks K rss_growth_kib G
 *   waiting
 *
 * K: the marks the model says the daemon holds, counted as the engine
 * counts them (all ranges fall in one 65,536-page block: a run each; a
 * whole file minus ranges is one more), G: how much this process's RSS
 * grew over the rounds after the first 1,000 (the client's log of marks
 * is in it). On SIGUSR1 (the daemon was killed) it fetches until the
 * LOST item, then, while the daemon is away, marks again (only logged):
 *
 *   down overflow R  (a range past 2^32 pages: -EOVERFLOW)
 *   down R           (the other marks: 0)
 *   marks K2
 *
 * On SIGUSR2 (a new daemon is up) it calls duet_task_check_done() until
 * the task is registered again (the log replayed), then compares every
 * page below PAGES of each file, one page at a time, the pages past
 * PAGES, all of [0, PAGES) at once and the whole file with the model:
 *
 *   check CHECKS mismatches M
 *   checked
 *
 * (each mismatch on stderr), and keeps the task until SIGTERM or SIGINT.
 * Exit: 0, 1 on an unexpected error (message on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <duet/duet.h>

#define PAGES	2048
#define NF	3
#define LIMIT	(UINT64_C(1) << 32)

/* The model of one file's marks: pages below PAGES, and those past them. */
struct mfile {
	const char *name;
	struct duet_fileid f;
	uint64_t npages;	/* the file's size in pages */
	bool done[PAGES];
	bool beyond;		/* done as a whole (minus ranges below PAGES) */
};

static struct mfile files[NF] = { { .name = "p" }, { .name = "q" }, { .name = "r" } };
static struct duet_task *task;
static uint64_t calls;

static void die(const char *what, int r)
{
	fprintf(stderr, "dreplay: %s: %s\n", what, duet_strerror(r));
	exit(1);
}

static int set(struct mfile *m, uint64_t index, uint64_t count)
{
	int r = duet_task_set_done(task, &m->f, index, count);

	calls++;
	if (r)
		return r;
	if (!count) {
		memset(m->done, 1, sizeof(m->done));
		m->beyond = true;
	} else {
		memset(m->done + index, 1, count);
	}
	return 0;
}

static int reset(struct mfile *m, uint64_t index, uint64_t count)
{
	int r = duet_task_reset_done(task, &m->f, index, count);

	calls++;
	if (r)
		return r;
	if (!count) {
		memset(m->done, 0, sizeof(m->done));
		m->beyond = false;
	} else {
		memset(m->done + index, 0, count);
	}
	return 0;
}

/* The engine's count: runs of pages done, or 1 + runs of pages not done. */
static uint64_t marks(void)
{
	uint64_t n = 0;

	for (int i = 0; i < NF; i++) {
		const struct mfile *m = &files[i];

		n += m->beyond;
		for (int p = 0; p < PAGES; p++)
			if (m->done[p] != m->beyond && (!p || m->done[p - 1] == m->beyond))
				n++;
	}
	return n;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* One round: mostly overlapping sets, some resets, on all three files. */
static void round_(uint64_t i, uint64_t iters)
{
	struct mfile *p = &files[0], *q = &files[1], *r = &files[2];
	int e = 0;

	e = e ? e : set(p, (i * 37) % (PAGES - 64), i % 50 + 1);
	if (i % 4 == 0)
		e = e ? e : reset(p, (i * 101) % (PAGES - 8), i % 7 + 1);
	if (i == 0)
		e = e ? e : set(q, 0, 0);
	if (i % 10 == 0)
		e = e ? e : reset(q, (i * 53) % (PAGES - 16), i % 11 + 1);
	if (i % 15 == 0)
		e = e ? e : set(q, (i * 29) % (PAGES - 32), i % 19 + 1);
	if (i % 2 == 0)
		e = e ? e : set(r, i % 100 * 3, 10);
	if (i == iters - 100)
		e = e ? e : reset(r, 0, 0);
	if (e)
		die("marking", e);
}

static void wait_sig(int want)
{
	sigset_t sigs;
	int sig;

	sigemptyset(&sigs);
	sigaddset(&sigs, want);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (sigwait(&sigs, &sig) || sig != want)
		exit(0);
}

/* Fetches until the LOST item of the daemon's going away. */
static void fetch_lost(void)
{
	struct duet_item items[256];
	struct pollfd pfd = { .fd = duet_task_fd(task), .events = POLLIN };

	for (int tries = 0; tries < 600; tries++) {
		int n = duet_task_fetch(task, items, 256);

		if (n < 0)
			die("fetch", n);
		for (int i = 0; i < n; i++)
			if (items[i].flags & DUET_ITEM_LOST)
				return;
		if (!n)
			poll(&pfd, 1, 100);
	}
	fprintf(stderr, "dreplay: no LOST item\n");
	exit(1);
}

/* Marks while the daemon is away: the client only logs them. */
static void down(void)
{
	struct mfile *p = &files[0], *q = &files[1], *r = &files[2];
	int e = 0;

	printf("down overflow %d\n", duet_task_set_done(task, &p->f, LIMIT - 1, 2));
	e = e ? e : set(p, PAGES - 40, 10);
	e = e ? e : reset(p, PAGES - 35, 2);
	e = e ? e : reset(q, 5, 3);
	e = e ? e : set(r, 0, 0);
	e = e ? e : reset(r, 1, 1);
	printf("down %d\nmarks %llu\n", e, (unsigned long long)marks());
	fflush(stdout);
}

static uint64_t mismatches, checks;

static void expect(const struct mfile *m, uint64_t index, uint64_t count, int want)
{
	int r = duet_task_check_done(task, &m->f, index, count);

	checks++;
	if (r != want) {
		mismatches++;
		fprintf(stderr, "dreplay: %s [%llu, +%llu): check_done %d, model %d\n", m->name,
			(unsigned long long)index, (unsigned long long)count, r, want);
	}
}

static void verify(void)
{
	struct timespec ts = { 0, 100000000 };
	int r = -ECONNREFUSED;

	/* The first call that finds the new daemon registers and replays. */
	for (int tries = 0; r == -ECONNREFUSED && tries < 300; tries++) {
		r = duet_task_check_done(task, &files[0].f, 0, 1);
		if (r == -ECONNREFUSED)
			nanosleep(&ts, NULL);
	}
	if (r < 0)
		die("registering again", r);
	for (int i = 0; i < NF; i++) {
		const struct mfile *m = &files[i];
		bool all = true, whole = m->npages > 0;

		for (uint64_t pg = 0; pg < PAGES; pg++) {
			expect(m, pg, 1, m->done[pg]);
			all = all && m->done[pg];
			if (pg < m->npages)
				whole = whole && m->done[pg];
		}
		expect(m, 0, PAGES, all);
		expect(m, PAGES, 1000, m->beyond);
		expect(m, LIMIT - 1, 1, m->beyond);
		expect(m, 0, 0, whole);
	}
	printf("check %llu mismatches %llu\nchecked\n", (unsigned long long)checks,
	       (unsigned long long)mismatches);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so), .flags = DUET_SESSION_DAEMON };
	struct duet_task_opts to = { .sz = sizeof(to), .name = "dreplay", .mask = DUET_EXISTS };
	struct duet_session *s;
	uint64_t iters;
	sigset_t sigs;
	long rss0 = 0;
	int opt, r;

	while ((opt = getopt(argc, argv, "s:")) != -1) {
		switch (opt) {
		case 's':
			so.socket = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	to.path = argv[optind];
	iters = strtoull(argv[optind + 1], NULL, 0);
	if (iters < 1100)
		goto usage;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	r = duet_session_new(&so, &s);
	if (!r)
		r = duet_task_new(s, &to, &task);
	if (r)
		die(to.path, r);
	for (int i = 0; i < NF; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", to.path, files[i].name);
		r = duet_task_fileid(task, path, &files[i].f);
		if (r)
			die(path, r);
		if (stat(path, &st))
			die(path, -errno);
		files[i].npages = ((uint64_t)st.st_size + 4095) / 4096;
	}
	for (uint64_t i = 0; i < iters; i++) {
		if (i == 1000)
			rss0 = rss_kib();
		round_(i, iters);
	}
	printf("marked %llu marks %llu rss_growth_kib %ld\nwaiting\n", (unsigned long long)calls,
	       (unsigned long long)marks(), rss_kib() - rss0);
	fflush(stdout);
	wait_sig(SIGUSR1);
	fetch_lost();
	down();
	wait_sig(SIGUSR2);
	verify();
	wait_sig(SIGTERM);
	duet_task_free(task);
	duet_session_free(s);
	return 0;
usage:
	fprintf(stderr, "usage: dreplay [-s SOCKET] DIR ITERS (ITERS >= 1100)\n");
	return 2;
}
