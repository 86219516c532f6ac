// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The path index (consumer/index.c) on real directories under a temporary
 * directory: the walk, inotify changes (create, rename in and out, unlink,
 * hard links), the gen of an inode number named again, names under nested
 * roots, foreach_under, the cap on names per inode, an inotify queue
 * overflow and its incremental repair, symlinks swapped in for
 * directories. Each result is compared with what the file system holds.
 * The parts that mount (pseudo file systems below a root) need root and
 * are skipped otherwise; everything else runs as any user.
 *
 * usage: test-index [DATADIR] (unused)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../lib/check.h"
#include "devices.h"
#include "index.h"

#define TRACEFS_MAGIC_ 0x74726163

static char top[PATH_MAX];
static char mounted[8][PATH_MAX];
static int nmounted;
static uint32_t kdev;

/* ---- the temporary tree ---- */

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void cleanup(void)
{
	while (nmounted > 0)
		if (umount2(mounted[--nmounted], MNT_DETACH))
			fprintf(stderr, "umount %s: %s\n", mounted[nmounted], strerror(errno));
	if (top[0])
		nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	top[0] = '\0';
}

static void on_signal(int sig)
{
	cleanup();
	_exit(TEST_ERROR);
}

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
	static char bufs[8][PATH_MAX];
	static int n;
	char *b = bufs[n++ % 8];
	char rel[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if ((size_t)snprintf(b, PATH_MAX, "%s/%s", top, rel) >= PATH_MAX)
		abort();
	return b;
}

/* A path that outlives P()'s ring of buffers (freed at exit, with nothing else). */
static const char *D(const char *rel)
{
	char *d = strdup(P("%s", rel));

	if (!d)
		abort();
	return d;
}

static void mkd(const char *path)
{
	if (mkdir(path, 0755))
		fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
}

static void mkf(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, "x", 1) != 1)
		fprintf(stderr, "create %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static uint64_t ino_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) ? 0 : st.st_ino;
}

static bool mount_tracefs(const char *at)
{
	if (geteuid() != 0 || nmounted == 8)
		return false;
	if (mount("nodev", at, "tracefs", 0, NULL)) {
		fprintf(stderr, "mount tracefs on %s: %s\n", at, strerror(errno));
		return false;
	}
	snprintf(mounted[nmounted++], PATH_MAX, "%s", at);
	return true;
}

static void unmount_all(void)
{
	while (nmounted > 0)
		umount2(mounted[--nmounted], MNT_DETACH);
}

/* ---- what the index holds, and what the file system holds ---- */

struct list {
	char **v;
	size_t n, cap;
};

static void list_add(struct list *l, const char *path, uint64_t ino)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	if (asprintf(&l->v[l->n++], "%s %llu", path, (unsigned long long)ino) < 0)
		abort();
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int index_one(void *ud, const char *path, uint32_t dev, uint64_t ino)
{
	list_add(ud, path, ino);
	return 0;
}

static struct list *fs_list;

static int fs_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	struct statfs sf;

	/* The index names regular files and directories, not below tracefs. */
	if (type == FTW_D && !statfs(path, &sf) && sf.f_type == TRACEFS_MAGIC_)
		return FTW_SKIP_SUBTREE;
	if (type == FTW_F && S_ISREG(st->st_mode))
		list_add(fs_list, path, st->st_ino);
	else if (type == FTW_D)
		list_add(fs_list, path, st->st_ino);
	return FTW_CONTINUE;
}

/* foreach_under(root) == the regular files and directories below root. */
static bool same_as_fs(struct dc_index *x, const char *root, const char *what)
{
	struct list a = { 0 }, b = { 0 };
	bool same;

	dc_index_foreach_under(x, root, index_one, &a);
	fs_list = &b;
	nftw(root, fs_one, 16, FTW_PHYS | FTW_ACTIONRETVAL);
	qsort(a.v, a.n, sizeof(*a.v), cmp);
	qsort(b.v, b.n, sizeof(*b.v), cmp);
	same = a.n == b.n;
	for (size_t i = 0; same && i < a.n; i++)
		same = !strcmp(a.v[i], b.v[i]);
	if (!same) {
		size_t i = 0, j = 0, shown = 0;

		fprintf(stderr, "%s: index (%zu names) != file system (%zu):\n", what, a.n, b.n);
		while ((i < a.n || j < b.n) && shown < 10) {
			int c = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.v[i], b.v[j]);

			if (!c) {
				i++, j++;
				continue;
			}
			fprintf(stderr, "  %s %s\n", c < 0 ? "index only:" : "fs only:   ",
				c < 0 ? a.v[i++] : b.v[j++]);
			shown++;
		}
	}
	list_free(&a);
	list_free(&b);
	return same;
}

static size_t names_under(struct dc_index *x, const char *root)
{
	struct list a = { 0 };
	size_t n;

	dc_index_foreach_under(x, root, index_one, &a);
	n = a.n;
	list_free(&a);
	return n;
}

/* The name the index gives (kdev, ino) under root, or "" (-ENOENT). */
static const char *under(struct dc_index *x, uint64_t ino, const char *root)
{
	static char buf[PATH_MAX];
	int r = dc_index_name_under(x, kdev, ino, root, buf, sizeof(buf), NULL);

	return r ? "" : buf;
}

static uint64_t gen_of(struct dc_index *x, uint64_t ino)
{
	uint64_t g = ~0ull;
	char buf[PATH_MAX];

	dc_index_name_under(x, kdev, ino, NULL, buf, sizeof(buf), &g);
	return g;
}

/* Why the changed callback was called, in order. */
static struct {
	int why[64];
	unsigned int n, overflow, repaired, by_why[16];
	uint64_t swap_ino;	/* test_symlink_swap: swap when this dir is named */
	const char *swap_dir, *swap_to;
	char name[PATH_MAX];	/* the last change's name */
} cb;

/* The names dc_index_names_under() gives, joined by spaces. */
static int join_name(void *ud, const char *path)
{
	char *buf = ud;
	size_t n = strlen(buf);

	snprintf(buf + n, PATH_MAX - n, "%s%s", n ? " " : "", path);
	return 0;
}

static const char *names_of(struct dc_index *x, uint64_t ino, const char *root)
{
	static char buf[PATH_MAX];

	buf[0] = '\0';
	dc_index_names_under(x, kdev, ino, root, join_name, buf);
	return buf;
}

static void changed(void *ud, uint32_t dev, uint64_t ino, int why)
{
	const char *name = ud ? dc_index_changing_name(ud) : NULL;

	/* The name this change added or removed (dc_index_changing_name()). */
	snprintf(cb.name, sizeof(cb.name), "%s", name ? name : "");
	if (cb.n < 64)
		cb.why[cb.n] = why;
	cb.n++;
	if (why >= 0 && why < 16)
		cb.by_why[why]++;
	if (why == DC_NAME_OVERFLOW)
		cb.overflow++;
	if (why == DC_NAME_REPAIRED)
		cb.repaired++;
	if (cb.swap_ino && ino == cb.swap_ino) {
		char moved[PATH_MAX];

		/* Between the walk naming the directory and listing it. */
		snprintf(moved, sizeof(moved), "%s.old", cb.swap_dir);
		if (rename(cb.swap_dir, moved) || symlink(cb.swap_to, cb.swap_dir))
			fprintf(stderr, "swap %s: %s\n", cb.swap_dir, strerror(errno));
		cb.swap_ino = 0;
	}
}

static void cb_reset(void)
{
	memset(&cb, 0, sizeof(cb));
}

static struct dc_index *index_of(const char *root)
{
	char *roots[1] = { (char *)root };
	struct dc_index *x = NULL;
	int r = dc_index_new(roots, 1, &x);

	CHECK_EQ(r, 0);
	if (x)
		dc_index_set_changed(x, changed, x);
	cb_reset();
	return x;
}

/* ---- the tests ---- */

static void test_walk_and_changes(void)
{
	const char *R = D("w");
	struct dc_index *x;
	unsigned int fl = 7;
	uint64_t f1, f2, lnk, moved, g;
	const char *s;

	mkd(R);
	mkd(P("w/a"));
	mkd(P("w/a/b"));
	mkd(P("w/ab"));
	mkd(P("out"));
	mkf(P("w/f0"));
	mkf(P("w/a/f1"));
	mkf(P("w/a/b/f2"));
	mkf(P("w/ab/f3"));
	mkf(P("out/x"));
	if (symlink(P("out"), P("w/sym")) || mkfifo(P("w/fifo"), 0644))
		fprintf(stderr, "symlink/fifo: %s\n", strerror(errno));
	x = index_of(R);
	if (!x)
		return;
	CHECK(same_as_fs(x, R, "walk"));
	CHECK_EQ(names_under(x, R), 8);	/* w, a, a/b, ab, f0, f1, f2, f3 */
	CHECK_EQ(dc_index_stats(x)->files, 8);
	CHECK_EQ(dc_index_stats(x)->dirs_watched, 4);
	f1 = ino_of(P("w/a/f1"));
	f2 = ino_of(P("w/a/b/f2"));
	CHECK_STR(dc_index_lookup(x, kdev, f1, &fl), P("w/a/f1"));
	CHECK_EQ(fl, 0);
	CHECK(!dc_index_lookup(x, kdev, ino_of(P("out/x")), NULL));	/* outside */
	CHECK_EQ(dc_index_stats(x)->negative, 1);

	/* Create. */
	mkf(P("w/a/new"));
	mkd(P("w/a/newdir"));
	mkf(P("w/a/newdir/inner"));
	dc_index_update(x);
	CHECK_STR(dc_index_lookup(x, kdev, ino_of(P("w/a/new")), NULL), P("w/a/new"));
	CHECK_STR(dc_index_lookup(x, kdev, ino_of(P("w/a/newdir/inner")), NULL),
		  P("w/a/newdir/inner"));
	CHECK_EQ(cb.by_why[DC_NAME_CREATED], 3);
	CHECK(same_as_fs(x, R, "after creates"));

	/* Rename in (from outside the root), and out again. */
	moved = ino_of(P("out/x"));
	CHECK_EQ(rename(P("out/x"), P("w/a/b/x")), 0);
	dc_index_update(x);
	CHECK_EQ(cb.by_why[DC_NAME_MOVED_IN], 1);
	/* Known as not under the roots before: named now. */
	CHECK_STR(dc_index_lookup(x, kdev, moved, &fl), P("w/a/b/x"));
	CHECK_EQ(dc_index_stats(x)->negative, 0);
	CHECK_EQ(rename(P("w/a/b/x"), P("out/x")), 0);
	dc_index_update(x);
	s = dc_index_lookup(x, kdev, moved, &fl);
	CHECK_STR(s, P("w/a/b/x"));	/* its last name, flagged */
	CHECK_EQ(fl, DC_PATH_DELETED);
	CHECK_STR(under(x, moved, R), "");

	/* A directory renamed within the root: its names follow. */
	CHECK_EQ(rename(P("w/a/newdir"), P("w/ab/moveddir")), 0);
	dc_index_update(x);
	CHECK_STR(dc_index_lookup(x, kdev, ino_of(P("w/ab/moveddir/inner")), NULL),
		  P("w/ab/moveddir/inner"));
	CHECK(same_as_fs(x, R, "after a directory rename"));

	/* Unlink. */
	CHECK_EQ(unlink(P("w/a/f1")), 0);
	dc_index_update(x);
	CHECK_STR(dc_index_lookup(x, kdev, f1, &fl), P("w/a/f1"));
	CHECK_EQ(fl, DC_PATH_DELETED);
	CHECK_STR(under(x, f1, NULL), "");

	/* Hard link: both names; one goes, the other stays. */
	CHECK_EQ(link(P("w/a/b/f2"), P("w/ab/f2link")), 0);
	dc_index_update(x);
	CHECK_EQ(cb.by_why[DC_NAME_LINKED], 1);
	CHECK_STR(cb.name, P("w/ab/f2link"));	/* the name the link added */
	{
		char want[2 * PATH_MAX];

		snprintf(want, sizeof(want), "%s %s", P("w/ab/f2link"), P("w/a/b/f2"));
		CHECK_STR(names_of(x, f2, R), want);	/* newest first */
	}
	CHECK_STR(names_of(x, f2, P("w/ab")), P("w/ab/f2link"));
	CHECK_STR(under(x, f2, P("w/a")), P("w/a/b/f2"));
	CHECK_STR(under(x, f2, P("w/ab")), P("w/ab/f2link"));
	CHECK(same_as_fs(x, R, "after a link"));
	g = gen_of(x, f2);
	CHECK_EQ(unlink(P("w/a/b/f2")), 0);
	dc_index_update(x);
	CHECK_STR(cb.name, P("w/a/b/f2"));	/* the name the unlink removed */
	CHECK_STR(names_of(x, f2, NULL), P("w/ab/f2link"));
	CHECK_STR(dc_index_lookup(x, kdev, f2, &fl), P("w/ab/f2link"));
	CHECK_EQ(fl, 0);
	CHECK_EQ(gen_of(x, f2), g);	/* it kept a name: the same file */

	/*
	 * The gen of an inode number named again after it was renamed out
	 * (no name under the root) and back: the same file, the same gen
	 * (only an unlinked number named again is another file: libduet-churn).
	 */
	CHECK_EQ(rename(P("w/ab/f2link"), P("out/f2")), 0);
	dc_index_update(x);
	CHECK_STR(under(x, f2, NULL), "");
	CHECK_EQ(rename(P("out/f2"), P("w/f2back")), 0);
	dc_index_update(x);
	CHECK_STR(under(x, f2, NULL), P("w/f2back"));
	CHECK_EQ(gen_of(x, f2), g);

	/* A symlink and a fifo are not named; nothing is reached through one. */
	lnk = ino_of(P("w/sym"));
	CHECK(!dc_index_lookup(x, kdev, lnk, NULL));
	CHECK(same_as_fs(x, R, "at the end"));
	CHECK_EQ(dc_index_stats(x)->names_capped, 0);
	dc_index_free(x);
}

static void test_nested_roots(void)
{
	const char *R = D("n"), *A = D("n/a"), *AB = D("n/a/b"), *ABX = D("n/ab");
	struct dc_index *x = NULL;
	char *inner[1] = { (char *)AB };
	uint64_t fa, fb, fab, both;

	mkd(R);
	mkd(A);
	mkd(AB);
	mkd(ABX);
	mkf(P("n/a/fa"));
	mkf(P("n/a/b/fb"));
	mkf(P("n/ab/fab"));
	mkf(P("n/a/b/both"));
	CHECK_EQ(link(P("n/a/b/both"), P("n/both2")), 0);
	fa = ino_of(P("n/a/fa"));
	fb = ino_of(P("n/a/b/fb"));
	fab = ino_of(P("n/ab/fab"));
	both = ino_of(P("n/a/b/both"));

	/* The inner root first, then the outer ones around it. */
	CHECK_EQ(dc_index_new(inner, 1, &x), 0);
	if (!x)
		return;
	CHECK_STR(under(x, fb, AB), P("n/a/b/fb"));
	CHECK_STR(under(x, fa, AB), "");
	CHECK_EQ(dc_index_add_root(x, R), 0);
	CHECK_EQ(dc_index_add_root(x, A), 0);
	CHECK_EQ(dc_index_add_root(x, AB), 0);	/* known: nothing again */
	CHECK(same_as_fs(x, R, "nested: outer"));
	CHECK(same_as_fs(x, A, "nested: middle"));
	CHECK(same_as_fs(x, AB, "nested: inner"));
	CHECK_STR(under(x, fb, R), P("n/a/b/fb"));
	CHECK_STR(under(x, fb, A), P("n/a/b/fb"));
	CHECK_STR(under(x, fb, AB), P("n/a/b/fb"));
	CHECK_STR(under(x, fa, A), P("n/a/fa"));
	CHECK_STR(under(x, fa, AB), "");
	/* n/a never covers n/ab. */
	CHECK_STR(under(x, fab, A), "");
	CHECK_STR(under(x, fab, R), P("n/ab/fab"));
	/* Two names: each root gets the one under it. */
	CHECK_STR(under(x, both, AB), P("n/a/b/both"));
	CHECK_EQ(unlink(P("n/a/b/both")), 0);
	dc_index_update(x);
	CHECK_STR(under(x, both, AB), "");
	CHECK_STR(under(x, both, A), "");
	CHECK_STR(under(x, both, R), P("n/both2"));
	/* Not a root: by prefix. */
	CHECK_STR(under(x, fab, P("n/ab")), P("n/ab/fab"));
	CHECK_STR(under(x, fab, P("n/a")), "");
	/* A file created below the inner root is under all three. */
	mkf(P("n/a/b/late"));
	dc_index_update(x);
	CHECK_STR(under(x, ino_of(P("n/a/b/late")), R), P("n/a/b/late"));
	CHECK_STR(under(x, ino_of(P("n/a/b/late")), AB), P("n/a/b/late"));
	CHECK(same_as_fs(x, AB, "nested: inner after changes"));
	dc_index_free(x);
}

/*
 * More names of one inode than DC_INDEX_MAX_NAMES: the rest are counted,
 * not kept, and the inode is shown only by the names kept.
 */
static void test_cap(void)
{
	const char *R = D("c"), *L = D("c/links"), *N = D("c/narrow"), *O = D("c/other");
	struct dc_index *x;
	uint64_t ino, g;
	int extra = 100;

	mkd(R);
	mkd(L);
	mkd(N);
	mkd(O);
	mkf(P("c/links/l0"));
	mkf(P("c/other/mine"));
	ino = ino_of(P("c/links/l0"));
	x = index_of(R);
	if (!x)
		return;
	CHECK_EQ(dc_index_add_root(x, N), 0);
	CHECK_EQ(dc_index_add_root(x, O), 0);
	for (int i = 1; i < DC_INDEX_MAX_NAMES + extra; i++)
		if (link(P("c/links/l0"), P("c/links/l%d", i)))
			fprintf(stderr, "link: %s\n", strerror(errno));
	/* The 1125th name, in the narrow root: past the cap. */
	CHECK_EQ(link(P("c/links/l0"), P("c/narrow/late")), 0);
	dc_index_update(x);
	/* l0..l1123 and narrow/late: 1125 names, 1024 kept. */
	CHECK_EQ(dc_index_stats(x)->names_capped, extra + 1);
	CHECK_EQ(names_under(x, L), DC_INDEX_MAX_NAMES + 1);	/* with links/ itself */
	CHECK_STR(under(x, ino, N), "");
	CHECK_STR(under(x, ino, O), "");
	CHECK(!strncmp(under(x, ino, R), L, strlen(L)));
	CHECK_STR(under(x, ino_of(P("c/other/mine")), O), P("c/other/mine"));
	g = gen_of(x, ino);
	/* The kept names go (all but one): still never shown under the others. */
	for (int i = 0; i < DC_INDEX_MAX_NAMES + extra - 1; i++)
		unlink(P("c/links/l%d", i));
	dc_index_update(x);
	/* Its names are all gone from the index; one remains on disk, not kept. */
	CHECK_STR(under(x, ino, R), "");
	CHECK_STR(under(x, ino, N), "");
	CHECK_STR(under(x, ino, O), "");
	CHECK_EQ(names_under(x, L), 1);	/* links/ only */
	CHECK_EQ(gen_of(x, ino), g);
	dc_index_free(x);
}

/* Pseudo file systems below a root: never walked, however they come. */
static void test_pseudo(void)
{
	const char *R = D("p");
	struct dc_index *x;
	size_t before;

	if (geteuid() != 0) {
		printf("pseudo-fs skip: SKIP (needs root to mount tracefs)\n");
		return;
	}
	mkd(R);
	mkd(P("p/d"));
	mkf(P("p/d/f"));
	mkd(P("p/at-start"));
	mkd(P("p/later"));
	if (!mount_tracefs(P("p/at-start")))
		return;
	x = index_of(R);
	if (!x)
		goto out;
	/* The walk at start. */
	CHECK_EQ(names_under(x, P("p/at-start")), 0);
	CHECK(same_as_fs(x, R, "tracefs at start"));
	before = names_under(x, R);
	/* A mount that appears (the mount table says so). */
	if (!mount_tracefs(P("p/later")))
		goto out;
	CHECK_EQ(dc_index_remount(x), 1);
	CHECK_EQ(names_under(x, P("p/later")), 0);
	/* A directory created and mounted before its event is read. */
	mkd(P("p/created"));
	if (!mount_tracefs(P("p/created")))
		goto out;
	dc_index_update(x);
	CHECK_EQ(names_under(x, P("p/created")), 0);
	/* (p/later and p/created are not named: the walk skips such mount points.) */
	CHECK_EQ(names_under(x, R), before - 1);
	CHECK(same_as_fs(x, R, "tracefs mounted later"));
	CHECK_EQ(dc_index_stats(x)->names_capped, 0);
	dc_index_free(x);
	/* A root on a pseudo file system is walked (one name per file there). */
	{
		char *roots[1] = { (char *)D("p/at-start") };

		x = NULL;
		CHECK_EQ(dc_index_new(roots, 1, &x), 0);
		CHECK(x && names_under(x, P("p/at-start")) > 1);
		dc_index_free(x);
	}
out:
	unmount_all();
}

static unsigned int max_queued(void)
{
	unsigned int q = 16384;
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "re");

	if (f) {
		if (fscanf(f, "%u", &q) != 1)
			q = 16384;
		fclose(f);
	}
	return q;
}

/*
 * An inotify queue overflow: changes made while the queue was full are
 * lost, and the repair finds them, a bounded part per step. Every name
 * is right afterwards, and the files that stayed keep their gen.
 */
static void test_overflow(void)
{
	const char *R = D("o");
	enum { NDIR = 20, NFILE = 30, BUDGET = 64, SLACK = 8 };
	static uint64_t ino[NDIR][NFILE], gen[NDIR][NFILE];
	unsigned int q = max_queued(), steps = 0, over = 0;
	uint64_t created, w0, most = 0;
	struct dc_index *x;
	bool pseudo = false;
	int r;

	mkd(R);
	mkd(P("o/flood"));
	for (int d = 0; d < NDIR; d++) {
		mkd(P("o/d%d", d));
		for (int f = 0; f < NFILE; f++) {
			mkf(P("o/d%d/f%d", d, f));
			ino[d][f] = ino_of(P("o/d%d/f%d", d, f));
		}
	}
	mkd(P("o/gone"));
	for (int f = 0; f < 5; f++)
		mkf(P("o/gone/g%d", f));
	x = index_of(R);
	if (!x)
		return;
	for (int d = 0; d < NDIR; d++)
		for (int f = 0; f < NFILE; f++)
			gen[d][f] = gen_of(x, ino[d][f]);

	/*
	 * Fill the queue, then change things: those events are lost. (What
	 * is deleted goes last: a number freed earlier could be reused.)
	 */
	for (unsigned int i = 0; i < q + 100; i++)
		mkf(P("o/flood/f%u", i));
	CHECK_EQ(rename(P("o/d1/f1"), P("o/d2/f1-moved")), 0);	/* renamed between dirs */
	CHECK_EQ(rename(P("o/d3/f3"), P("o/d3/f3-renamed")), 0);	/* within one */
	mkf(P("o/d4/f4.new"));					/* replaced: another inode */
	CHECK_EQ(rename(P("o/d4/f4.new"), P("o/d4/f4")), 0);
	CHECK_EQ(link(P("o/d5/f5"), P("o/d6/f5-link")), 0);	/* a second name */
	CHECK_EQ(rename(P("o/d7"), P("o/d7-moved")), 0);	/* a whole directory */
	mkd(P("o/newdir"));					/* a new tree */
	mkd(P("o/newdir/sub"));
	mkf(P("o/newdir/sub/n"));
	mkd(P("o/tr"));
	pseudo = mount_tracefs(P("o/tr"));			/* not walked by the repair */
	created = ino_of(P("o/newdir/sub/n"));
	CHECK_EQ(unlink(P("o/d0/f0")), 0);			/* deleted */
	for (int f = 0; f < 5; f++)
		unlink(P("o/gone/g%d", f));
	rmdir(P("o/gone"));					/* a vanished tree */

	dc_index_update(x);
	CHECK_EQ(dc_index_stats(x)->overflows, 1);
	CHECK_EQ(cb.overflow, 1);
	CHECK_EQ(cb.repaired, 0);
	/* Unknown while the repair runs: not remembered as outside the roots. */
	CHECK(!dc_index_lookup(x, kdev, created, NULL));
	CHECK_EQ(dc_index_stats(x)->negative, 0);
	/* Stale names do not count under a root until their directory is listed. */
	CHECK_STR(under(x, ino[7][0], R), "");

	w0 = dc_index_stats(x)->repair_work;
	do {
		uint64_t before = dc_index_stats(x)->repair_work, did;

		r = dc_index_repair_step(x, BUDGET);
		did = dc_index_stats(x)->repair_work - before;
		if (did > most)
			most = did;
		/* A step stops at the budget; a vanished tree is dropped whole. */
		if (did > BUDGET + SLACK)
			over++;
		steps++;
		dc_index_update(x);
	} while (r > 0 && steps < 100000);
	CHECK_EQ(r, 0);
	CHECK_EQ(over, 0);
	CHECK(most >= BUDGET);
	CHECK(steps >= (dc_index_stats(x)->repair_work - w0) / (BUDGET + SLACK));
	printf("repair: %u steps, %llu work, at most %llu in a step\n", steps,
	       (unsigned long long)(dc_index_stats(x)->repair_work - w0),
	       (unsigned long long)most);
	CHECK_EQ(cb.repaired, 1);
	CHECK(cb.n > 0 && (cb.n > 64 || cb.why[cb.n - 1] == DC_NAME_REPAIRED));
	CHECK_EQ(dc_index_stats(x)->repairs, 1);
	CHECK_EQ(dc_index_repair_step(x, BUDGET), 0);	/* nothing more */

	CHECK(same_as_fs(x, R, "after the repair"));
	if (pseudo)
		CHECK_EQ(names_under(x, P("o/tr")), 0);
	CHECK_STR(dc_index_lookup(x, kdev, created, NULL), P("o/newdir/sub/n"));
	CHECK_STR(under(x, ino[1][1], R), P("o/d2/f1-moved"));
	CHECK_STR(under(x, ino[3][3], R), P("o/d3/f3-renamed"));
	CHECK_STR(under(x, ino[5][5], P("o/d6")), P("o/d6/f5-link"));	/* not a root: by prefix */
	CHECK_STR(under(x, ino[5][5], P("o/d5")), P("o/d5/f5"));
	CHECK_STR(under(x, ino[7][2], R), P("o/d7-moved/f2"));
	CHECK_STR(under(x, ino[0][0], R), "");
	CHECK_STR(under(x, ino_of(P("o/d4/f4")), R), P("o/d4/f4"));
	CHECK_STR(under(x, ino[4][4], R), "");
	/* The files that stayed where they were keep their gen. */
	for (int d = 0; d < NDIR; d++) {
		for (int f = 0; f < NFILE; f++) {
			if ((d == 0 && f == 0) || (d == 1 && f == 1) || (d == 4 && f == 4) ||
			    (d == 3 && f == 3) || d == 7)
				continue;
			if (gen_of(x, ino[d][f]) != gen[d][f]) {
				fprintf(stderr, "d%d/f%d: gen %llu, was %llu\n", d, f,
					(unsigned long long)gen_of(x, ino[d][f]),
					(unsigned long long)gen[d][f]);
				CHECK(0);
			}
		}
	}
	/* The index follows events again afterwards. */
	mkf(P("o/d9/after"));
	dc_index_update(x);
	CHECK_STR(under(x, ino_of(P("o/d9/after")), R), P("o/d9/after"));

	/* A second overflow: the repair again, and no memory kept from the first. */
	for (unsigned int i = 0; i < q + 100; i++)
		unlink(P("o/flood/f%u", i));
	dc_index_update(x);
	CHECK_EQ(dc_index_stats(x)->overflows, 2);
	while (dc_index_repair_step(x, 4096) > 0)
		dc_index_update(x);
	CHECK_EQ(cb.repaired, 2);
	CHECK(same_as_fs(x, R, "after a second repair"));
	dc_index_free(x);
	unmount_all();
}

/*
 * A symlink swapped in for a directory is never followed: not the root
 * (the walk starts from its fd), not a directory between the walk naming
 * it and listing it.
 */
static void test_symlink_swap(void)
{
	const char *S = D("s"), *T = D("target"), *S2 = D("s2");
	struct dc_index *x = NULL;
	uint64_t t1, sub_ino, d1f;
	int fd;

	mkd(S);
	mkd(P("s/sub"));
	mkf(P("s/sub/s1"));
	mkd(T);
	mkf(P("target/t1"));
	t1 = ino_of(P("target/t1"));

	/* The root: opened, then its name swapped for a symlink to T. */
	fd = open(S, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(rename(S, P("s.moved")), 0);
	CHECK_EQ(symlink(T, S), 0);
	CHECK_EQ(dc_index_new(NULL, 0, &x), 0);
	if (!x)
		return;
	CHECK_EQ(dc_index_add_root_at(x, fd, S), 0);
	close(fd);
	CHECK_STR(under(x, t1, NULL), "");
	CHECK_STR(under(x, ino_of(P("s.moved/sub/s1")), S), P("s/sub/s1"));
	dc_index_free(x);

	/* A directory of the tree, swapped while the walk is at it. */
	mkd(S2);
	mkd(P("s2/d1"));
	mkf(P("s2/d1/d1f"));
	mkd(P("s2/d1/deeper"));
	sub_ino = ino_of(P("s2/d1"));
	d1f = ino_of(P("s2/d1/d1f"));
	x = NULL;
	CHECK_EQ(dc_index_new(NULL, 0, &x), 0);
	if (!x)
		return;
	dc_index_set_changed(x, changed, NULL);
	cb_reset();
	cb.swap_ino = sub_ino;
	cb.swap_dir = D("s2/d1");
	cb.swap_to = T;
	CHECK_EQ(dc_index_add_root(x, S2), 0);
	CHECK_EQ(cb.swap_ino, 0);	/* the swap happened */
	CHECK_STR(under(x, t1, NULL), "");
	CHECK_STR(under(x, d1f, NULL), P("s2/d1/d1f"));
	/* The events of the swap: the directory moved, the symlink is no name. */
	dc_index_update(x);
	CHECK_STR(under(x, t1, NULL), "");
	CHECK_STR(under(x, d1f, NULL), P("s2/d1.old/d1f"));
	CHECK_EQ(names_under(x, P("s2/d1")), 0);
	CHECK(same_as_fs(x, S2, "after the swap"));
	dc_index_free(x);

	/* A symlink in place of a directory before the walk: not followed. */
	x = index_of(S2);
	CHECK(x != NULL);
	CHECK_STR(under(x, t1, NULL), "");
	dc_index_free(x);
}

/* ---- a new root's walk that pauses (dc_index_set_yield()) ---- */

#define PW_DIRS 40
#define PW_FILES 400

static struct {
	struct dc_index *x;
	const char *root;
	unsigned int pauses;
	char last[PATH_MAX];	/* the last name the walk added */
	bool deleted, renamed, arrived, made;
} pw;

static void pw_changed(void *ud, uint32_t dev, uint64_t ino, int why)
{
	const char *name = dc_index_changing_name(ud);

	(void)dev, (void)ino;
	if (why == DC_NAME_WALK && name)
		snprintf(pw.last, sizeof(pw.last), "%s", name);
}

/* A pause: the tree changes meanwhile, and the changes are applied (as the pump would). */
static void pw_pause(void *ud)
{
	struct dc_index *x = ud;
	char dir[PATH_MAX], *slash;
	bool inside;

	pw.pauses++;
	snprintf(dir, sizeof(dir), "%s", pw.last);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	/* Each change at the first pause where it can be made, in this order. */
	inside = strcmp(dir, pw.root) && strncmp(dir, P("pw/moved"), strlen(P("pw/moved")));
	if (!pw.arrived) {
		/* In every directory, the one being listed too: a new file. */
		for (int d = 0; d < PW_DIRS; d++)
			mkf(P("pw/a%02d/late", d));
		mkf(P("pw/late"));
		pw.arrived = true;
	} else if (!pw.renamed) {
		/* The directory being listed is renamed within the tree. */
		if (inside && !rename(dir, P("pw/moved")))
			pw.renamed = true;
	} else if (!pw.deleted) {
		/* The directory being listed is deleted, files and all. */
		if (inside && !nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS))
			pw.deleted = true;
	} else if (!pw.made) {
		mkd(P("pw/new"));
		for (int i = 0; i < 20; i++)
			mkf(P("pw/new/n%d", i));
		pw.made = true;
	}
	dc_index_update(x);
}

static void test_pausing_walk(void)
{
	const char *R = D("pw");
	struct dc_index *x = NULL;
	int r;

	memset(&pw, 0, sizeof(pw));
	mkd(R);
	for (int d = 0; d < PW_DIRS; d++) {
		mkd(P("pw/a%02d", d));
		for (int i = 0; i < PW_FILES; i++)
			mkf(P("pw/a%02d/f%03d", d, i));
	}
	pw.root = R;
	CHECK_EQ(dc_index_new(NULL, 0, &x), 0);
	if (!x)
		return;
	pw.x = x;
	dc_index_set_changed(x, pw_changed, x);
	dc_index_set_yield(x, pw_pause, x);
	r = dc_index_add_root(x, R);
	CHECK_EQ(r, 0);
	dc_index_update(x);
	CHECK(pw.pauses >= 5, "the walk paused %u times (at least 5 to tell)", pw.pauses);
	CHECK(pw.arrived && pw.renamed && pw.deleted && pw.made,
	      "each change was made during a pause (arrived %d, renamed %d, deleted %d, made %d)",
	      pw.arrived, pw.renamed, pw.deleted, pw.made);
	CHECK(same_as_fs(x, R, "pausing walk"),
	      "after a walk that paused while the tree changed, the index is the file system");
	/* No pause outside a new root's walk: changes applied by an update do not. */
	pw.pauses = 0;
	mkd(P("pw/later"));
	for (int i = 0; i < 2000; i++)
		mkf(P("pw/later/l%04d", i));
	dc_index_update(x);
	CHECK_EQ(pw.pauses, 0);
	CHECK(same_as_fs(x, R, "after the walk"), "later changes are in the index");
	dc_index_free(x);
}

int main(int argc, char **argv)
{
	const struct dc_mount *m;
	struct dc_mounts mounts;
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	snprintf(tmpl, sizeof(tmpl), "%s/test-index.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, top)) {
		perror("mkdtemp");
		return TEST_ERROR;
	}
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (dc_mounts_load(&mounts)) {
		fprintf(stderr, "cannot read /proc/self/mountinfo\n");
		return TEST_ERROR;
	}
	m = dc_mounts_find(&mounts, top);
	if (!m) {
		fprintf(stderr, "no mount for %s\n", top);
		return TEST_ERROR;
	}
	kdev = m->kdev;
	dc_mounts_free(&mounts);
	test_walk_and_changes();
	test_nested_roots();
	test_cap();
	test_pseudo();
	test_overflow();
	test_symlink_swap();
	test_pausing_walk();
	return check_exit("test-index");
}
