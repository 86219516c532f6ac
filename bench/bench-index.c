// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-index: what the path index (consumer/index.c) costs.
 *
 *   bench-index walk DIR
 *	the walk at start: wall time and RSS before and after dc_index_new()
 *	on DIR, and the names it found.
 *   bench-index repair DIR BUDGET
 *	an inotify queue overflow on an indexed DIR, repaired incrementally:
 *	DIR must be on a file system where files can be created; the
 *	program creates max_queued_events + 1000 files in DIR/.bench-overflow
 *	(removed at the end), reads the overflow, then times every
 *	dc_index_repair_step(x, BUDGET) call: steps, the longest and the
 *	mean step, the total, and RSS before and after.
 *
 * Figures only; it asserts nothing (tests/unit/test-index.c does).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int count(void *ud, const char *path, uint32_t dev, uint64_t ino)
{
	(*(uint64_t *)ud)++;
	return 0;
}

static int walk(const char *dir)
{
	char *roots[1] = { (char *)dir };
	struct dc_index *x;
	uint64_t names = 0;
	long r0 = rss_kb(), r1;
	double t0 = now_s(), t1;
	int r = dc_index_new(roots, 1, &x);

	if (r) {
		fprintf(stderr, "dc_index_new: %s\n", strerror(-r));
		return 1;
	}
	t1 = now_s();
	r1 = rss_kb();
	dc_index_foreach_under(x, dir, count, &names);
	printf("walk %s: %.3f s, %" PRIu64 " names, %" PRIu64 " inodes, %" PRIu64
	       " directories watched, RSS %ld -> %ld KiB (+%ld KiB, %.0f bytes per name)\n",
	       dir, t1 - t0, names, dc_index_stats(x)->files, dc_index_stats(x)->dirs_watched, r0,
	       r1, r1 - r0, names ? (double)(r1 - r0) * 1024 / (double)names : 0);
	dc_index_free(x);
	return 0;
}

static int repair(const char *dir, unsigned int budget)
{
	char *roots[1] = { (char *)dir };
	char sub[4096], path[4200];
	struct dc_index *x;
	unsigned int q = 16384, steps = 0;
	double t0, t1, worst = 0, total;
	long r0, r1;
	FILE *f;
	int r;

	f = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
	if (f) {
		if (fscanf(f, "%u", &q) != 1)
			q = 16384;
		fclose(f);
	}
	r = dc_index_new(roots, 1, &x);
	if (r) {
		fprintf(stderr, "dc_index_new: %s\n", strerror(-r));
		return 1;
	}
	snprintf(sub, sizeof(sub), "%s/.bench-overflow", dir);
	if (mkdir(sub, 0755) && errno != EEXIST) {
		perror(sub);
		return 1;
	}
	dc_index_update(x);
	for (unsigned int i = 0; i < q + 1000; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/f%u", sub, i);
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	r0 = rss_kb();
	t0 = now_s();
	dc_index_update(x);
	t1 = now_s();
	if (!dc_index_stats(x)->overflows) {
		fprintf(stderr, "no overflow happened\n");
		return 1;
	}
	printf("dc_index_update() that read the overflow: %.3f s\n", t1 - t0);
#ifdef DC_INDEX_MAX_NAMES	/* the incremental repair */
	t0 = now_s();
	for (;;) {
		double a = now_s(), b;

		r = dc_index_repair_step(x, budget);
		b = now_s();
		steps++;
		if (b - a > worst)
			worst = b - a;
		if (r <= 0)
			break;
		dc_index_update(x);
	}
	t1 = now_s();
	r1 = rss_kb();
	total = t1 - t0;
	printf("repair of %s with budget %u: %u steps, longest %.2f ms, mean %.2f ms, total %.3f s, "
	       "%" PRIu64 " entries listed or dropped, RSS %ld -> %ld KiB\n",
	       dir, budget, steps, worst * 1e3, total * 1e3 / steps, total,
	       dc_index_stats(x)->repair_work, r0, r1);
#else
	/* Before the incremental repair: dc_index_update() rewalked. */
	(void)budget, (void)steps, (void)worst, (void)total;
	r = 0;
	r1 = rss_kb();
	printf("RSS %ld -> %ld KiB\n", r0, r1);
#endif
	dc_index_free(x);
	for (unsigned int i = 0; i < q + 1000; i++) {
		snprintf(path, sizeof(path), "%s/f%u", sub, i);
		unlink(path);
	}
	rmdir(sub);
	return r < 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "walk"))
		return walk(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "repair"))
		return repair(argv[2], (unsigned int)strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: bench-index walk DIR | bench-index repair DIR BUDGET\n");
	return 2;
}
