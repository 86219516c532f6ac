// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pages past the end of the file. 64 pages written in one write() make
 * large folios on ext4 and xfs; a truncate to 20 pages leaves the folio
 * that straddles the new end cached whole, with no delete event. A task
 * registered afterwards must see exactly what cachestat sees, the tail
 * included, and once the file is written back and dropped, its REMOVED
 * items cover exactly what it had: no page it never had, none missed.
 * Then the same for a task that existed before the truncate (the events'
 * view, not the scan's), and a MODIFIED task's scan, which must find
 * the dirty pages past the end too. Checked against cachestat page by
 * page.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "libduet-test.h"

#define TRUNC_PAGES 20

/* f written with one 64-page write(), written back, truncated. */
static uint64_t make_tail(const char *path)
{
	size_t len = (size_t)MAXP * 4096;
	char *buf = malloc(len);
	struct stat st;
	int fd;

	if (!buf)
		die("malloc");
	memset(buf, 't', len);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len ||
	    ftruncate(fd, (off_t)TRUNC_PAGES * 4096) || fstat(fd, &st))
		die("make %s", path);
	close(fd);
	free(buf);
	return st.st_ino;
}

static int count(const uint8_t *bits)
{
	int n = 0;

	for (int i = 0; i < MAXP; i++)
		n += bits[i] != 0;
	return n;
}

static int same(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a, b, MAXP);
}

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te, *tl, *tm;
	struct lt t;
	uint8_t view[MAXP], res[MAXP], rem[MAXP], after[MAXP], dres[MAXP], dview[MAXP];
	char a[300], b[300];
	uint64_t ia, ib;
	int past;
	static struct got g, g2, gl, gl2, gm;

	lt_setup(&t, "tail", argc, argv);
	snprintf(a, sizeof(a), "%s/a", t.root);
	snprintf(b, sizeof(b), "%s/b", t.root);
	s = lt_session_or_skip(NULL);

	/* A task registered after the truncate: its scan. */
	ia = make_tail(a);
	resident(a, res);
	past = count(res) - TRUNC_PAGES;
	printf("# %s: %d pages cached, %d past the end of the file\n", t.fs, count(res), past);
	/* On this kernel only ext4 keeps the dirty folio whole; xfs splits it. */
	if (!strcmp(t.fs, "ext4"))
		CHECK(past > 0, "tail: the truncate into a large folio leaves pages past EOF on %s (%d)",
		      t.fs, past);
	CHECK(cached_pages(a) == (uint64_t)count(res), "tail: cachestat over the file agrees (%llu, %d)",
	      (unsigned long long)cached_pages(a), count(res));
	cachestat_bits(a, 1, dres);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	tm = lt_task(s, "modified", DUET_MODIFIED, t.root);
	wait_scan(te);
	wait_scan(tm);
	collect(te, &g, 400);
	collect(tm, &gm, 100);
	view_of(&g, ia, view);
	CHECK(same(view, res), "tail: the scan's view is cachestat's %d pages (it has %d)", count(res),
	      count(view));
	CHECK(pages(&gm, ia, DUET_DIRTY, dview) == 0 && same(dview, dres),
	      "tail: a MODIFIED task's scan has cachestat's %d dirty pages (it has %d)", count(dres),
	      count(dview));
	duet_task_free(tm);
	drop(a);
	collect(te, &g2, 500);
	CHECK(pages(&g2, ia, DUET_REMOVED, rem) == 0 && same(rem, view),
	      "tail: after DONTNEED, REMOVED covers exactly the %d pages the task had (%d)", count(view),
	      count(rem));
	CHECK(pages(&g2, ia, DUET_ADDED, after) == 0 && count(after) == 0, "tail: nothing added by the drop");
	resident(a, res);
	CHECK(count(res) == 0, "tail: nothing of a stays cached (%d)", count(res));

	/* A task that existed before: the events' view. */
	tl = lt_task(s, "live", DUET_EXISTS, t.root);
	wait_scan(tl);
	collect(tl, &gl, 200);
	ib = make_tail(b);
	resident(b, res);
	collect(tl, &gl, 400);
	view_of(&gl, ib, view);
	CHECK(same(view, res), "tail: the live view of b is cachestat's %d pages (it has %d)", count(res),
	      count(view));
	drop(b);
	collect(tl, &gl2, 500);
	CHECK(pages(&gl2, ib, DUET_REMOVED, rem) == 0 && same(rem, view),
	      "tail: b's REMOVED covers exactly the %d pages the task had (%d)", count(view), count(rem));
	printf("ok tail\n");

	duet_task_free(tl);
	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
