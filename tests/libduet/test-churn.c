// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Inode reuse under churn. Files are created, written back and deleted
 * in a loop, so ext4 and xfs hand the same inode numbers out again and
 * again while the events of the files that had them are still on their
 * way. An event task (ADDED | REMOVED) must see each file as one
 * identity (dev, ino, gen): the pages it was added with (cachestat's,
 * before the unlink) and the same pages removed at the unlink, under
 * its own gen and never under the next file's. Files that share a
 * number are told apart by the order they were made in: the k-th file
 * with a number is the k-th gen seen with it. ext4 and xfs mark each
 * new inode in the event stream (ext4_allocate_inode, xfs_iget_miss and
 * xfs_iget_recycle); btrfs does not reuse numbers. Under load many files
 * are deleted before the path index looks at their names: they must be
 * reported all the same.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libduet-test.h"

#define FILES 300

struct ident {
	uint64_t ino, gen;
	uint8_t added[MAXP], removed[MAXP];
};

static struct ident ids[4 * FILES];
static size_t nids;

static struct ident *ident(uint64_t ino, uint64_t gen)
{
	for (size_t i = 0; i < nids; i++)
		if (ids[i].ino == ino && ids[i].gen == gen)
			return &ids[i];
	if (nids == sizeof(ids) / sizeof(ids[0]))
		die("too many identities");
	ids[nids].ino = ino;
	ids[nids].gen = gen;
	return &ids[nids++];
}

/* What one collect() fetched, into the identities' pages. */
static size_t account(const struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];
		struct ident *d;

		if (it->flags & DUET_ITEM_LOST)
			continue;
		d = ident(it->ino, it->gen);
		for (uint64_t pg = it->index; pg < it->index + it->count && pg < MAXP; pg++) {
			if (it->state & DUET_ADDED)
				d->added[pg] = 1;
			if (it->state & DUET_REMOVED)
				d->removed[pg] = 1;
		}
	}
	return g->lost;
}

/*
 * File i: two pages at page (i % 13). Two files' pages together are
 * never one file's, so an identity that took another file's events
 * matches no file.
 */
static uint64_t make_pair(const char *path, int i)
{
	char buf[2 * 4096];
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	memset(buf, 'c', sizeof(buf));
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), (off_t)(i % 13) * 4096) != (ssize_t)sizeof(buf) ||
	    fsync(fd) || fstat(fd, &st))
		die("make %s", path);
	close(fd);
	return st.st_ino;
}

static int cmp_ident(const void *a, const void *b)
{
	const struct ident *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

int main(int argc, char **argv)
{
	static struct {
		uint64_t ino;
		int nth;	/* files with this number made before it */
		uint8_t cached[MAXP];
	} f[FILES];
	static struct got g;
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	char p[300];
	int reused = 0, wrong = 0, unreported = 0, unbalanced = 0;
	size_t lost = 0;

	lt_setup(&t, "churn", argc, argv);
	s = lt_session_or_skip(NULL);
	te = lt_task(s, "events", DUET_ADDED | DUET_REMOVED, t.root);
	wait_scan(te);
	for (int i = 0; i < FILES; i++) {
		snprintf(p, sizeof(p), "%s/f%d", t.root, i);
		f[i].ino = make_pair(p, i);
		resident(p, f[i].cached);
		for (int k = 0; k < i; k++)
			f[i].nth += f[k].ino == f[i].ino;
		reused += f[i].nth > 0;
		if (unlink(p))
			die("unlink %s", p);
		/* Fetch now and then: the engine's view must hold across fetches. */
		if (i % 50 == 49) {
			collect(te, &g, 0);
			lost += account(&g);
		}
	}
	collect(te, &g, 1500);
	lost += account(&g);
	CHECK(lost == 0, "churn: no LOST (%zu)", lost);
	qsort(ids, nids, sizeof(ids[0]), cmp_ident);
	/* CHURN_DEBUG=1: every identity, to see what went where. */
	if (getenv("CHURN_DEBUG"))
		for (size_t j = 0; j < nids; j++) {
			int a = 0, r = 0;

			for (int pg = 0; pg < MAXP; pg++) {
				a += ids[j].added[pg];
				r += ids[j].removed[pg];
			}
			printf("# id ino %llu gen %llu: %d added, %d removed\n",
			       (unsigned long long)ids[j].ino, (unsigned long long)ids[j].gen, a, r);
		}
	/*
	 * In gen order, each identity of a number is a file made with it, in
	 * the order they were made: the next one whose pages it has, added
	 * and removed. Files skipped were never reported.
	 */
	for (size_t j = 0; j < nids;) {
		uint64_t ino = ids[j].ino;
		int next = 0;

		for (; j < nids && ids[j].ino == ino; j++) {
			int i = next;

			for (; i < FILES; i++)
				if (f[i].ino == ino && !memcmp(ids[j].added, f[i].cached, MAXP) &&
				    !memcmp(ids[j].removed, f[i].cached, MAXP))
					break;
			if (i == FILES) {
				if (wrong++ < 5)
					printf("# ino %llu gen %llu: matches no file made after the last\n",
					       (unsigned long long)ino, (unsigned long long)ids[j].gen);
				continue;
			}
			for (int k = next; k < i; k++)
				unreported += f[k].ino == ino;
			next = i + 1;
		}
		for (int k = next; k < FILES; k++)
			unreported += f[k].ino == ino;
	}
	for (int i = 0; i < FILES; i++) {
		bool any = false;

		for (size_t j = 0; j < nids && !any; j++)
			any = ids[j].ino == f[i].ino;
		unreported += !any;
	}
	printf("# %s: %d files, %d made under a reused number, %zu identities, %d files "
	       "never reported\n", t.fs, FILES, reused, nids, unreported);
	if (strcmp(t.fs, "btrfs"))
		CHECK(reused > FILES / 2, "churn: %s reuses inode numbers (%d of %d)", t.fs, reused,
		      FILES);
	/*
	 * Each identity is one file, in the order they were made, added and
	 * removed with exactly its pages: no event went to another file, no
	 * REMOVED of a page the task never had, and every file was reported,
	 * also one deleted before the path index could look at its name
	 * (fanotify gives its inode: consumer/index-births.c). On a loaded
	 * machine those are many (a consumer up to 100 ms behind).
	 */
	for (size_t j = 0; j < nids; j++)
		if (memcmp(ids[j].added, ids[j].removed, MAXP) && unbalanced++ < 5)
			printf("# ino %llu gen %llu: its REMOVED are not its ADDED\n",
			       (unsigned long long)ids[j].ino, (unsigned long long)ids[j].gen);
	CHECK(unbalanced == 0, "churn: every identity's REMOVED are exactly its ADDED (%d differ)",
	      unbalanced);
	CHECK(wrong == 0, "churn: every identity is one file, in the order they were made (%d are "
	      "not)", wrong);
	CHECK(unreported == 0, "churn: every file was reported (%d were not)", unreported);
	printf("# %s: %d files never reported, %d identities that took their events, %d whose "
	       "REMOVED are not their ADDED\n", t.fs, unreported, wrong, unbalanced);
	printf("ok churn\n");
	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
