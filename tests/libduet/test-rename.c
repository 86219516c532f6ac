// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Renames: a file renamed into the task's directory is reported with
 * exactly its cached pages and is named by its new path; a file renamed
 * out is no longer reported (its pages leaving the cache included).
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
	printf("ok renames\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
