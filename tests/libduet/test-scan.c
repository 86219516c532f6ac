// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The registration scan: pages cached before a task exists are reported
 * to it as if just added, exactly the resident ones (cachestat), for files
 * under the directory only, including a file whose only name inside is
 * a hard link; the scan reads nothing (the page cache does not grow),
 * and a MODIFIED task gets nothing when nothing is dirty.
 */
#include <string.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te, *tm;
	struct lt t;
	uint8_t bits[MAXP], res[MAXP];
	char a[300], c[300], d[300], e[300], e2[300];
	uint64_t ia, ic, id, ie, cache0;
	static struct got g, gm;

	lt_setup(&t, "scan", argc, argv);
	snprintf(a, sizeof(a), "%s/a", t.root);
	snprintf(c, sizeof(c), "%s/c", t.root);
	snprintf(d, sizeof(d), "%s/d", t.out);
	snprintf(e, sizeof(e), "%s/e", t.out);
	snprintf(e2, sizeof(e2), "%s/e-link", t.root);

	/* Files cached before any task exists. */
	ia = make_file(a, 16, 1);
	ic = make_file(c, 4, 1);
	id = make_file(d, 8, 1);
	ie = make_file(e, 4, 1);
	if (link(e, e2))
		die("link");
	cache0 = cached_pages(a);

	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	tm = lt_task(s, "modified", DUET_MODIFIED, t.root);

	wait_scan(te);
	collect(te, &g, 400);
	/* Exactly the resident pages (background reclaim may take some). */
	view_of(&g, ia, bits);
	resident(a, res);
	CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP), "scan: a's cached pages are reported");
	view_of(&g, ic, bits);
	resident(c, res);
	CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP), "scan: c's cached pages are reported");
	view_of(&g, ie, bits);
	resident(e2, res);
	CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP), "scan: e (hard link e-link inside) is reported");
	CHECK(items_for(&g, id) == 0, "scan: d lies outside the directory");
	CHECK(cached_pages(a) <= cache0, "scan: the scan brings nothing into the page cache (%" PRIu64 " -> %" PRIu64 ")", cache0, cached_pages(a));
	wait_scan(tm);
	collect(tm, &gm, 0);
	CHECK(gm.n == 0, "scan: nothing dirty, so nothing for MODIFIED (%zu items)", gm.n);
	printf("ok scan at registration (%zu items)\n", g.n);

	duet_task_free(tm);
	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
