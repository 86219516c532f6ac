// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-engine-cycle: the engine alone under bench-duetd's stream, for
 * counting instructions (valgrind --tool=callgrind) where wall-clock time
 * is too noisy; not a test. FILES files of 1024 pages, each page ADDED
 * and DIRTY (page by page, as 4 KiB writes give them), FLUSHED, REMOVED,
 * ADDED, REMOVED; TASKS tasks (ADDED|REMOVED|DIRTY|FLUSHED) that all
 * want every file fetch everything (256 items per call, until none)
 * after every BATCH page events, as duetd's clients do after each batch
 * of the pump; with GROUPS > 1, only one group of the tasks in turn
 * fetches after each batch (duetd's clients are served one after the
 * other, so they fetch at different times). Prints the time per page
 * event and a checksum of the items (the same for any build with the
 * same arguments).
 *
 * Usage: bench-engine-cycle [TASKS (64) [FILES (64) [BATCH (512) [GROUPS (1)]]]]
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine.h"
#include "engine-bench.h"


static struct de_engine *e;
static int ntasks;
static unsigned int batch, since, groups = 1, turn;
static uint64_t events, items, pages, sum;

static void fetch_all(bool all)
{
	struct duet_item it[256];
	int r;

	for (int t = 0; t < ntasks; t++)
		while ((all || (unsigned int)t % groups == turn % groups) &&
		       (r = de_fetch(e, t, it, 256)) > 0) {
			items += (uint64_t)r;
			for (int k = 0; k < r; k++) {
				pages += it[k].count;
				sum = sum * 31 + it[k].ino * 7 + it[k].index * 13 + it[k].count * 17 +
				      it[k].state * 19 + it[k].flags + (uint64_t)t;
			}
		}
}

static void ev(uint64_t ino, uint64_t index, uint32_t type)
{
	if (de_event(e, 1, ino, index, 1, type) < 0) {
		fprintf(stderr, "bench-engine-cycle: de_event failed\n");
		exit(1);
	}
	events++;
	if (++since == batch) {
		since = 0;
		fetch_all(false);
		turn++;
	}
}

int main(int argc, char **argv)
{
	struct de_engine_opts o = { .sz = sizeof(o), .relevant = relevant };
	unsigned int files;
	double t0, dt;

	ntasks = argc > 1 ? atoi(argv[1]) : 64;
	files = argc > 2 ? (unsigned int)atoi(argv[2]) : 64;
	batch = argc > 3 ? (unsigned int)atoi(argv[3]) : 512;
	groups = argc > 4 ? (unsigned int)atoi(argv[4]) : 1;
	if (ntasks < 1 || ntasks > DE_MAX_TASKS || !batch || !groups) {
		fprintf(stderr, "usage: bench-engine-cycle [TASKS [FILES [BATCH [GROUPS]]]]\n");
		return 2;
	}
	if (de_engine_new(&o, &e))
		return 1;
	for (int t = 0; t < ntasks; t++)
		de_task_add(e, DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED);
	all_tasks = ntasks == 64 ? ~UINT64_C(0) : (UINT64_C(1) << ntasks) - 1;
	t0 = now();
	for (unsigned int f = 0; f < files; f++) {
		uint64_t ino = 1000 + f;

		for (uint64_t p = 0; p < 1024; p++) {
			ev(ino, p, DUET_ADDED);
			ev(ino, p, DUET_DIRTY);
		}
		for (uint64_t p = 0; p < 1024; p++)
			ev(ino, p, DUET_FLUSHED);
		for (uint64_t p = 0; p < 1024; p++)
			ev(ino, p, DUET_REMOVED);
		for (uint64_t p = 0; p < 1024; p++)
			ev(ino, p, DUET_ADDED);
		for (uint64_t p = 0; p < 1024; p++)
			ev(ino, p, DUET_REMOVED);
	}
	fetch_all(true);
	dt = now() - t0;
	printf("%d tasks, %u files, fetch every %u events (%u groups): %" PRIu64 " events, "
	       "%.1f ns/event; %" PRIu64 " items, %" PRIu64 " pages; checksum %016" PRIx64 "\n",
	       ntasks, files, batch, groups, events, dt * 1e9 / (double)events, items, pages, sum);
	de_engine_free(e);
	return 0;
}
