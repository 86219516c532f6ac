// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Two names of one inode: a file the task can already see is never
 * scanned again when it gets another name inside the directory (a hard
 * link, a rename within the tree, its outside name renamed in), and a
 * file with two names inside is scanned once at registration; a file
 * linked in from outside is scanned once, with exactly its cached pages.
 * No page reaches the task twice: each item is applied to a running view
 * and an ADDED of a page already in it (or a REMOVED of one not in it)
 * is counted as redundant; the views end equal to cachestat's.
 */
#include <string.h>
#include <sys/stat.h>

#include "libduet-test.h"

/* The task's running view of one file, and its redundant pages. */
struct fview {
	uint64_t ino;
	uint8_t bits[MAXP];
	int redundant;
};

static struct fview fv[4];

static void feed(const struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];

		for (size_t k = 0; k < sizeof(fv) / sizeof(fv[0]); k++) {
			if (fv[k].ino != it->ino)
				continue;
			for (uint64_t p = it->index; p < it->index + it->count && p < MAXP; p++) {
				uint8_t now = !!(it->state & DUET_ADDED);

				if (fv[k].bits[p] == now)
					fv[k].redundant++;
				fv[k].bits[p] = now;
			}
		}
	}
}

/* ADDED pages for ino in g (an eviction meanwhile gives REMOVED only). */
static int added(const struct got *g, uint64_t ino)
{
	uint8_t bits[MAXP];
	int n = 0;

	pages(g, ino, DUET_ADDED, bits);
	for (int p = 0; p < MAXP; p++)
		n += bits[p];
	return n;
}

static void same_as_cache(const char *what, struct fview *v, const char *path)
{
	uint8_t res[MAXP];

	resident(path, res);
	CHECK(!memcmp(v->bits, res, MAXP) && memchr(res, 1, MAXP),
	      "%s: the view equals the page cache (%" PRIu64 " pages cached)", what,
	      cached_pages(path));
	CHECK(v->redundant == 0, "%s: no page reached the task twice (%d redundant)", what,
	      v->redundant);
}

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	char a[300], a2[300], c[300], cl[300], sub[300], c3[300], a3[300];
	char b[300], bin[300], b2[300], b3[300];
	uint64_t ia, ic, ib;
	static struct got g;

	lt_setup(&t, "links", argc, argv);
	snprintf(a, sizeof(a), "%s/a", t.root);
	snprintf(a2, sizeof(a2), "%s/a2", t.root);
	snprintf(c, sizeof(c), "%s/c", t.root);
	snprintf(cl, sizeof(cl), "%s/c-link", t.root);
	snprintf(sub, sizeof(sub), "%s/sub", t.root);
	snprintf(c3, sizeof(c3), "%s/sub/c", t.root);
	snprintf(a3, sizeof(a3), "%s/sub/a", t.root);
	snprintf(b, sizeof(b), "%s/b", t.out);
	snprintf(bin, sizeof(bin), "%s/b", t.root);
	snprintf(b2, sizeof(b2), "%s/sub/b2", t.root);
	snprintf(b3, sizeof(b3), "%s/b3", t.root);
	if (mkdir(sub, 0755))
		die("mkdir");

	/* a has two names inside at registration; b lies outside. */
	ia = make_file(a, 4, 1);
	if (link(a, a2))
		die("link");
	ic = make_file(c, 5, 1);
	ib = make_file(b, 6, 1);
	fv[0].ino = ia;
	fv[1].ino = ic;
	fv[2].ino = ib;

	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	collect(te, &g, 400);
	feed(&g);
	same_as_cache("registration, a file with two names inside", &fv[0], a);
	same_as_cache("registration", &fv[1], c);
	CHECK(items_for(&g, ib) == 0, "b lies outside the directory");

	/* A hard link within the tree. */
	if (link(c, cl))
		die("link");
	collect(te, &g, 500);
	feed(&g);
	CHECK(added(&g, ic) == 0, "ln within the tree: no ADDED for c (%d pages)", added(&g, ic));

	/* Renames within the tree: one name of two, and the last one of c. */
	if (rename(a, a3) || rename(c, c3) || unlink(cl))
		die("rename");
	collect(te, &g, 500);
	feed(&g);
	CHECK(added(&g, ia) == 0, "rename within the tree (a second name): no ADDED for a (%d)",
	      added(&g, ia));
	if (rename(c3, c))
		die("rename");
	collect(te, &g, 500);
	feed(&g);
	CHECK(added(&g, ic) == 0, "rename within the tree (its only name): no ADDED for c (%d)",
	      added(&g, ic));

	/* Linked in from outside: scanned once. */
	if (link(b, bin))
		die("link");
	collect(te, &g, 500);
	feed(&g);
	CHECK(added(&g, ib) > 0, "ln from outside: b is reported (%d pages)", added(&g, ib));
	same_as_cache("ln from outside", &fv[2], bin);
	/* Then a second name inside, and its outside name renamed in. */
	if (link(b, b2) || rename(b, b3))
		die("link");
	collect(te, &g, 500);
	feed(&g);
	CHECK(added(&g, ib) == 0, "a second name, the outside name renamed in: no ADDED for b (%d)",
	      added(&g, ib));

	same_as_cache("at the end: a", &fv[0], a2);
	same_as_cache("at the end: c", &fv[1], c);
	same_as_cache("at the end: b", &fv[2], b3);
	printf("ok two names of one inode\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
