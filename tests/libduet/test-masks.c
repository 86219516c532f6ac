// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Masks: a state mask combined with one of its own events (EXISTS with
 * ADDED, MODIFIED with FLUSHED) is refused with -EINVAL. For a new file,
 * EXISTS gets its pages added, MODIFIED its pages dirty, and a task of
 * the four events both ADDED and DIRTY. A file written, written back
 * and dropped between two fetches cancels for EXISTS (never a REMOVED
 * for a page it was not told about; only what stayed cached is added)
 * and for MODIFIED, while the events task gets both ADDED and REMOVED.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te, *tm, *tv;
	struct lt t;
	uint8_t bits[MAXP];
	char b[300];
	uint64_t ib;
	static struct got g;

	lt_setup(&t, "masks", argc, argv);
	snprintf(b, sizeof(b), "%s/b", t.root);

	s = lt_session_or_skip(NULL);
	{
		struct duet_task_opts bad = { .sz = sizeof(bad), .mask = DUET_EXISTS | DUET_ADDED,
					      .path = t.root };

		CHECK(duet_task_new(s, &bad, &te) == -EINVAL, "EXISTS|ADDED is refused");
		bad.mask = DUET_MODIFIED | DUET_FLUSHED;
		CHECK(duet_task_new(s, &bad, &te) == -EINVAL, "MODIFIED|FLUSHED is refused");
	}
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	tm = lt_task(s, "modified", DUET_MODIFIED, t.root);
	tv = lt_task(s, "events", DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED, t.root);
	wait_scan(te);
	wait_scan(tm);
	wait_scan(tv);

	/* A new file: EXISTS and MODIFIED see the net change. */
	ib = make_file(b, 8, 0);
	collect(te, &g, 500);
	CHECK(pages(&g, ib, DUET_ADDED, bits) == 0 && exactly(bits, 0, 8), "write: EXISTS gets b 0-7 added");
	collect(tm, &g, 0);
	CHECK(pages(&g, ib, DUET_DIRTY, bits) == 0 && exactly(bits, 0, 8), "write: MODIFIED gets b 0-7 dirty");
	collect(tv, &g, 0);
	CHECK(pages(&g, ib, DUET_ADDED, bits) == 0 && exactly(bits, 0, 8) &&
	      pages(&g, ib, DUET_DIRTY, bits) == 0 && exactly(bits, 0, 8), "write: events task gets ADDED and DIRTY 0-7");
	printf("ok write\n");

	/* Dirtied, written back and dropped before a fetch: states cancel. */
	{
		char path[300];
		uint8_t res[MAXP];
		uint64_t ix;

		snprintf(path, sizeof(path), "%s/x", t.root);
		ix = make_file(path, 8, 1);
		drop(path);
		/* No fetch in between: let every event reach the engine first. */
		usleep(700000);
		collect(te, &g, 0);
		/* fadvise may keep a page (writeback still finishing): it must
		 * then be reported as added, and only it. */
		resident(path, res);
		if (getenv("DUET_TEST_DEBUG"))
			for (size_t i = 0; i < g.n; i++)
				fprintf(stderr, "item ino %" PRIu64 " (x %" PRIu64 ") %" PRIu64 "+%" PRIu64 " state %x\n",
					g.it[i].ino, ix, g.it[i].index, g.it[i].count, g.it[i].state);
		CHECK(pages(&g, ix, DUET_REMOVED, bits) == 0 && !memchr(bits, 1, MAXP),
		      "EXISTS: never a REMOVED for pages it was never told about");
		CHECK(pages(&g, ix, DUET_ADDED, bits) == 0 && !memcmp(bits, res, MAXP),
		      "EXISTS: added then removed before a fetch cancels; what stayed cached is added");
		collect(tm, &g, 0);
		CHECK(items_for(&g, ix) == 0, "MODIFIED: dirtied then flushed cancels (%d items)", items_for(&g, ix));
		collect(tv, &g, 0);
		CHECK(pages(&g, ix, DUET_ADDED, bits) == 0 && exactly(bits, 0, 8) &&
		      pages(&g, ix, DUET_REMOVED, bits) == 0 && exactly(bits, 0, 8), "events task gets both ADDED and REMOVED");
		printf("ok cancellation\n");
	}

	duet_task_free(tv);
	duet_task_free(tm);
	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
