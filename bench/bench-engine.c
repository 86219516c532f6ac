// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-engine: figures for the engine, not a test. 10,000,000 ADDED
 * pages (one de_event per page, file by file) over 100,000 inodes, for 1,
 * 8 and 64 EXISTS tasks that all want every inode; then each task drains
 * its items with de_fetch in batches of 256. Prints events/s, memory per
 * pending entry and per inode (the engine's estimate and malloc's view),
 * and items/s and pages/s out of de_fetch. The entry table of a large
 * engine is mmapped, so malloc's view misses it: see the RSS figures.
 *
 * Usage: bench-engine [pages [inodes]]
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "engine-bench.h"


/* Bytes malloc holds for the program (heap and mmapped chunks). */
static double heap(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (double)mi.uordblks + (double)mi.hblkhd;
}

static double rss(void)
{
	unsigned long size, res;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (double)res * sysconf(_SC_PAGESIZE);
}

static int run(unsigned int ntasks, uint64_t pages, uint64_t inodes)
{
	struct de_engine_opts o = { .sz = sizeof(o), .relevant = relevant };
	uint64_t per = pages / inodes, ino, i, items = 0, out = 0;
	struct de_engine_stats peak, idle;
	static struct duet_item buf[256];
	double h0, r0, h1, r1, h2, r2, t0, t1, t2;
	struct de_engine *e;
	unsigned int t;
	int n, r;

	h0 = heap();
	r0 = rss();
	r = de_engine_new(&o, &e);
	if (r < 0)
		return r;
	all_tasks = ntasks == 64 ? ~UINT64_C(0) : (UINT64_C(1) << ntasks) - 1;
	for (t = 0; t < ntasks; t++)
		if (de_task_add(e, DUET_EXISTS) < 0)
			return -1;

	t0 = now();
	for (ino = 0; ino < inodes; ino++) {
		for (i = 0; i < per; i++) {
			r = de_event(e, 8, 1000 + ino, i, 1, DUET_ADDED);
			if (r < 0)
				return r;
		}
	}
	t1 = now();
	de_engine_stats(e, &peak);
	h1 = heap();
	r1 = rss();

	for (t = 0; t < ntasks; t++) {
		while ((n = de_fetch(e, t, buf, 256)) > 0) {
			items += n;
			for (i = 0; i < (uint64_t)n; i++)
				out += buf[i].count;
		}
		if (n < 0)
			return n;
	}
	t2 = now();
	de_engine_stats(e, &idle);
	h2 = heap();
	r2 = rss();

	printf("%2u task(s): %" PRIu64 " events in %.2f s: %.2f M events/s, %.1f ns/event\n",
	       ntasks, peak.events, t1 - t0, peak.events / (t1 - t0) / 1e6,
	       (t1 - t0) * 1e9 / peak.events);
	printf("  peak: %" PRIu64 " entries, %" PRIu64 " inodes; engine estimate %.1f MB, "
	       "malloc %.1f MB + table, RSS +%.1f MB\n", peak.entries, peak.inodes,
	       peak.bytes / 1e6, (h1 - h0) / 1e6, (r1 - r0) / 1e6);
	printf("  per inode (drained, relevance cached): estimate %.0f B, malloc %.0f B\n",
	       (double)idle.bytes / idle.inodes, (h2 - h0) / idle.inodes);
	printf("  per pending entry (peak minus drained): estimate %.1f B, "
	       "malloc %.1f B + table, RSS %.1f B\n",
	       (double)(peak.bytes - idle.bytes) / peak.entries,
	       (h1 - h2) / peak.entries, (r1 - r2) / peak.entries);
	printf("  fetch: %" PRIu64 " items, %" PRIu64 " pages in %.2f s: %.2f M items/s, "
	       "%.1f M pages/s\n", items, out, t2 - t1, items / (t2 - t1) / 1e6,
	       out / (t2 - t1) / 1e6);
	fflush(stdout);
	de_engine_free(e);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t pages = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000000;
	uint64_t inodes = argc > 2 ? strtoull(argv[2], NULL, 0) : 100000;
	static const unsigned int tasks[] = { 1, 8, 64 };
	unsigned int i;

	if (!inodes || pages < inodes) {
		fprintf(stderr, "usage: bench-engine [pages [inodes]]\n");
		return 2;
	}
	printf("bench-engine: %" PRIu64 " ADDED pages over %" PRIu64 " inodes, EXISTS tasks, "
	       "fetch batches of 256\n", pages, inodes);
	for (i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++) {
		if (run(tasks[i], pages, inodes) < 0) {
			fprintf(stderr, "bench-engine: engine error\n");
			return 1;
		}
	}
	return 0;
}
