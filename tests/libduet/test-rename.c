// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Renames: a file renamed into the task's directory is reported with
 * exactly its cached pages and is named by its new path; a file renamed
 * out is no longer reported (its pages leaving the cache included). A
 * file renamed within the directory keeps its identity (same gen): its
 * done marks stay, and its later events come under it.
 */
#include <string.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	uint8_t bits[MAXP];
	char c[300], d[300], c2[300], d2[300], p[4096];
	uint64_t ic, id;
	static struct got g;

	lt_setup(&t, "rename", argc, argv);
	snprintf(c, sizeof(c), "%s/c", t.root);
	snprintf(d, sizeof(d), "%s/d", t.out);
	snprintf(c2, sizeof(c2), "%s/c", t.out);
	snprintf(d2, sizeof(d2), "%s/d", t.root);
	ic = make_file(c, 4, 1);
	id = make_file(d, 8, 1);

	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	/* Drain the scan's items: only what follows is looked at. */
	collect(te, &g, 0);

	/* Renamed out: no longer reported. Renamed in: reported with its cached pages. */
	if (rename(c, c2) || rename(d, d2))
		die("rename");
	collect(te, &g, 500);
	{
		uint8_t res[MAXP];

		/* Exactly what is cached now: reclaim may take some meanwhile
		 * (then REMOVED items follow the scan's ADDED ones). */
		view_of(&g, id, bits);
		resident(d2, res);
		CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP),
		      "renamed in: d's cached pages are reported (items %d, cached %" PRIu64 ")",
		      items_for(&g, id), cached_pages(d2));
	}
	drop(c2);
	collect(te, &g, 500);
	CHECK(items_for(&g, ic) == 0, "renamed out: c's pages leaving are not reported (%d)", items_for(&g, ic));
	{
		struct duet_fileid f = { .dev = t.img.kdev, .ino = id };

		duet_task_fileid(te, d2, &f);
		CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, d2), "path after rename in is %s (got %s)", d2, p);
	}
	{
		/* Within the tree: the same file, the same gen, events keep coming. */
		struct duet_fileid before, after;
		char e1[300], e2[300];
		uint64_t ie;

		snprintf(e1, sizeof(e1), "%s/e", t.root);
		snprintf(e2, sizeof(e2), "%s/e2", t.root);
		ie = make_file(e1, 4, 1);
		collect(te, &g, 300);
		if (duet_task_fileid(te, e1, &before) || duet_task_set_done(te, &before, 0, 1))
			die("fileid/done %s", e1);
		if (rename(e1, e2))
			die("rename");
		drop(e2);
		collect(te, &g, 500);
		CHECK(!duet_task_fileid(te, e2, &after) && after.gen == before.gen,
		      "renamed within: the same gen (%llu, %llu)", (unsigned long long)before.gen,
		      (unsigned long long)after.gen);
		CHECK(duet_task_check_done(te, &after, 0, 1) == 1, "renamed within: its done mark stays");
		CHECK(pages(&g, ie, DUET_REMOVED, bits) == 0 && exactly(bits, 1, 3),
		      "renamed within: its pages leaving are reported (pages 1-3; 0 is done)");
		for (size_t i = 0; i < g.n; i++)
			CHECK(g.it[i].ino != ie || g.it[i].gen == before.gen,
			      "renamed within: its items keep its gen");
	}
	printf("ok renames\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
