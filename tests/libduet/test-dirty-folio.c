// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DIRTY of large folios. 64 pages written in one write() make large
 * folios (ext4, xfs). On a stock kernel writeback_dirty_folio names only
 * the folio's first page; the folio's other pages are dirty all the same.
 * A MODIFIED task must see exactly cachestat's dirty pages: after the
 * write, and after the file is written back and one page in the middle
 * of a large folio is written again (the whole folio is dirty again).
 * Checked page by page against cachestat.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libduet-test.h"

static int count(const uint8_t *bits)
{
	int n = 0;

	for (int i = 0; i < MAXP; i++)
		n += bits[i] != 0;
	return n;
}

/* The task's dirty view of ino after the items in order. */
static void dirty_view(const struct got *g, uint64_t ino, uint8_t *bits)
{
	memset(bits, 0, MAXP);
	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];

		if (it->ino != ino)
			continue;
		for (uint64_t p = it->index; p < it->index + it->count && p < MAXP; p++) {
			if (it->state & DUET_DIRTY)
				bits[p] = 1;
			if (it->state & DUET_FLUSHED)
				bits[p] = 0;
		}
	}
}

int main(int argc, char **argv)
{
	static struct got g, g2, g3;
	size_t len = (size_t)MAXP * 4096;
	uint8_t view[MAXP], res[MAXP];
	struct duet_session *s;
	struct duet_task *tm;
	struct stat st;
	char a[300], *buf;
	struct lt t;
	int fd;

	lt_setup(&t, "dirty-folio", argc, argv);
	snprintf(a, sizeof(a), "%s/a", t.root);
	s = lt_session_or_skip(NULL);
	tm = lt_task(s, "modified", DUET_MODIFIED, t.root);
	wait_scan(tm);
	buf = malloc(len);
	if (!buf)
		die("malloc");
	memset(buf, 'd', len);
	fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fstat(fd, &st))
		die("write %s", a);
	collect(tm, &g, 400);
	cachestat_bits(a, 1, res);
	dirty_view(&g, st.st_ino, view);
	printf("# %s: %d pages dirty (cachestat), the task has %d\n", t.fs, count(res), count(view));
	CHECK(count(res) == MAXP, "dirty-folio: the write left %d pages dirty (%d)", MAXP, count(res));
	CHECK(!memcmp(view, res, MAXP), "dirty-folio: the task's dirty pages are cachestat's (%d, %d)",
	      count(view), count(res));

	/* Written back, then one page in the middle written again. */
	if (fdatasync(fd))
		die("fdatasync");
	collect(tm, &g2, 300);
	if (pwrite(fd, buf, 4096, 37 * 4096) != 4096)
		die("pwrite");
	collect(tm, &g3, 400);
	/* The three fetches, in order, make the task's view. */
	if (g.n + g2.n + g3.n > sizeof(g.it) / sizeof(g.it[0]))
		die("too many items");
	memcpy(&g.it[g.n], g2.it, g2.n * sizeof(g2.it[0]));
	g.n += g2.n;
	memcpy(&g.it[g.n], g3.it, g3.n * sizeof(g3.it[0]));
	g.n += g3.n;
	cachestat_bits(a, 1, res);
	dirty_view(&g, st.st_ino, view);
	printf("# %s: after a rewrite of page 37: %d dirty (cachestat), the task has %d\n", t.fs,
	       count(res), count(view));
	CHECK(res[37], "dirty-folio: page 37 is dirty again");
	CHECK(!memcmp(view, res, MAXP),
	      "dirty-folio: after the rewrite, the task's dirty pages are cachestat's (%d, %d)",
	      count(view), count(res));
	close(fd);
	free(buf);
	duet_task_free(tm);
	lt_session_free(s);
	return lt_finish(&t);
}
