// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Forced overrun: with a tiny ring buffer (8 KiB per CPU) and heavy
 * churn the task gets a LOST item, drops its view, and after the resync
 * that follows, its view of which pages are cached equals cachestat for
 * every file.
 */
#include <string.h>

#include "libduet-test.h"

static uint8_t view[40][MAXP];

/* Fetch for 100 ms and apply the items as a task would: LOST drops the view. */
static size_t apply(struct duet_task *te, struct got *g, uint8_t (*v)[MAXP], const uint64_t *inos)
{
	size_t lost = 0;

	collect(te, g, 100);
	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];

		if (it->flags & DUET_ITEM_LOST) {
			memset(v, 0, sizeof(view));
			lost++;
			continue;
		}
		for (int k = 0; k < 40; k++) {
			if (it->ino != inos[k])
				continue;
			for (uint64_t q = it->index; q < it->index + it->count && q < MAXP; q++)
				v[k][q] = (it->state & DUET_ADDED) ? 1 : 0;
		}
	}
	return lost;
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so), .buffer_kb = 8, .subbuf_kb = 4 };
	struct duet_task_status ts = { .sz = sizeof(ts) };
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	uint64_t inos[40];
	char files[40][300];
	size_t lost = 0;
	int bad = 0;
	static struct got g;

	lt_setup(&t, "overrun", argc, argv);
	/* A machine that can run no session skips; one that cannot run this
	 * one fails. */
	lt_session_free(lt_session_or_skip(NULL));
	s = lt_session(&so);
	te = lt_task(s, NULL, DUET_EXISTS, t.root);
	wait_scan(te);
	memset(view, 0, sizeof(view));
	/* Churn until the tiny buffer overruns (almost always at once). */
	for (int tries = 0; tries < 5; tries++) {
		for (int k = 0; k < 40; k++) {
			snprintf(files[k], sizeof(files[k]), "%s/churn%d", t.root, k);
			inos[k] = make_file(files[k], MAXP, 0);
		}
		for (int k = 0; k < 40; k += 2)
			drop(files[k]);
		usleep(300000);
		duet_task_status(te, &ts);
		if (ts.lost)
			break;
	}
	/* Apply items as a task would: LOST drops the view. */
	for (int round = 0; round < 30; round++) {
		lost += apply(te, &g, view, inos);
		duet_task_status(te, &ts);
		if (round > 5 && ts.scan_done == ts.scan_files && !ts.pending)
			break;
	}
	CHECK(lost > 0 && ts.lost > 0, "overrun: the loss is reported (%zu LOST items)", lost);
	CHECK(ts.resyncs > 0, "overrun: a resync ran (%" PRIu64 ")", ts.resyncs);
	/*
	 * The view against cachestat. Nothing is pending, but an event may
	 * still be on its way (in the ring buffer, or in perf's): a mismatch
	 * is looked at again after more items, for up to 2 s; one that stays
	 * is a wrong view. Each look says which pages differ.
	 */
	for (int look = 0; look < 20; look++) {
		bad = 0;
		for (int k = 0; k < 40; k++) {
			uint8_t res[MAXP];

			resident(files[k], res);
			if (!memcmp(res, view[k], MAXP))
				continue;
			bad++;
			fprintf(stderr, "look %d: churn%d (ino %" PRIu64 ") cachestat ", look, k, inos[k]);
			for (int q = 0; q < MAXP; q++)
				fputc('0' + res[q], stderr);
			fprintf(stderr, " view ");
			for (int q = 0; q < MAXP; q++)
				fputc('0' + view[k][q], stderr);
			fputc('\n', stderr);
		}
		if (!bad)
			break;
		lost += apply(te, &g, view, inos);
	}
	CHECK(bad == 0, "overrun: after the resync the view matches cachestat for every file (%d differ)", bad);
	printf("ok forced overrun and resync (%zu LOST items, %" PRIu64 " resyncs)\n", lost, ts.resyncs);

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
