// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet-dedup: find files with the same content (size, then XXH3-128, then
 * a byte compare), cached files hashed first; with --reflink, make the
 * duplicates share the first file's extents (FICLONE). See duet-dedup(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define MAX_TRIES 5
#define CMP_BUF (1u << 20)

struct dd_file {
	struct tl_entry *e;
	struct stat st;		/* as hashed */
	uint8_t hash[16];
	bool ok;		/* hashed, unchanged meanwhile */
	bool marked;		/* its duet done mark is set */
	int group;		/* after the byte compare: index of its group's first file */
	int gfirst;		/* its size group: first index in the walk (cand) */
};

struct group;

/* What a run holds from the options to the report. */
struct dedup {
	struct tl_ctx c;
	bool quiet, no_duet, no_polite, do_reflink;
	bool unsupported;	/* a file system refused FICLONE: no more tries */
	struct dd_file **files;	/* one per inode, non-empty regular files */
	struct dd_file **cand;	/* those sharing a size with another: hashed */
	int nf, nc;
	int *left;		/* by size group (gfirst): files not yet hashed */
	struct group *groups;
	int ng;
	uint64_t dup_files, dup_bytes, reflinked;
};

static bool same_file_version(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && tl_same_version(a, b) &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int cmp_hash(const void *a, const void *b)
{
	const struct dd_file *x = *(struct dd_file *const *)a, *y = *(struct dd_file *const *)b;

	return memcmp(x->hash, y->hash, 16);
}

static void mark(struct tl_ctx *c, struct dd_file *f)
{
	if (!f->marked) {
		f->marked = true;
		tl_mark_done(c, f->e);
	}
}

/*
 * f is hashed. Its done mark waits for its size group: once the group is
 * all hashed, a file that no other shares a hash with is marked done (it
 * is not read again); the others are compared byte for byte first, and
 * a cache-polite task must not drop their pages before (main() marks
 * them after dd_groups()).
 */
static void group_hashed(struct dedup *d, struct dd_file *f)
{
	struct dd_file **g, **cand = d->cand;
	int a = f->gfirst, b = a, n = 0;

	if (--d->left[a])
		return;
	while (b < d->nc && cand[b]->gfirst == a)
		b++;
	g = malloc((size_t)(b - a) * sizeof(*g));
	if (!g)
		return;	/* marked at the end */
	for (int k = a; k < b; k++) {
		if (cand[k]->ok)
			g[n++] = cand[k];
		else
			mark(&d->c, cand[k]);
	}
	qsort(g, (size_t)n, sizeof(*g), cmp_hash);
	for (int k = 0; k < n; k++)
		if ((k == 0 || memcmp(g[k - 1]->hash, g[k]->hash, 16)) &&
		    (k + 1 == n || memcmp(g[k + 1]->hash, g[k]->hash, 16)))
			mark(&d->c, g[k]);
	free(g);
}

static void visit(struct tl_ctx *c, struct tl_entry *e, int why)
{
	struct dd_file *f = e->data;
	struct stat before, after;
	int r = 0, tries;

	for (tries = 0; tries < MAX_TRIES; tries++) {
		r = tl_hash_file(c, e->rel, &before, &after, f->hash);
		if (r || tl_same_version(&before, &after))
			break;
	}
	if (r)
		tl_err(c, e->rel, "cannot read: %s", strerror(-r));
	else if (tries == MAX_TRIES)
		tl_err(c, e->rel, "changed during each of %d reads; skipped", MAX_TRIES);
	else if (before.st_size != e->st.st_size)
		; /* size changed since the listing: its size group is stale, skip */
	else {
		f->st = before;
		f->ok = true;
	}
	/*
	 * Done once read, not before: a cache-polite task's pages are dropped
	 * once done, and readahead runs ahead of the hashing. The duet mark
	 * waits for the size group (group_hashed()). c is the first member
	 * of struct dedup.
	 */
	e->flags |= TL_DONE;
	group_hashed((struct dedup *)c, f);
	tl_progress(c, r ? 0 : (uint64_t)before.st_size);
}

/* The walk: largest size group first, by path within a group. */
static int cmp_size_desc(const void *a, const void *b)
{
	const struct dd_file *x = *(struct dd_file *const *)a, *y = *(struct dd_file *const *)b;

	if (x->e->st.st_size != y->e->st.st_size)
		return x->e->st.st_size > y->e->st.st_size ? -1 : 1;
	return strcmp(x->e->rel, y->e->rel);
}

static int cmp_size_hash(const void *a, const void *b)
{
	const struct dd_file *x = *(struct dd_file *const *)a, *y = *(struct dd_file *const *)b;
	int h;

	if (x->ok != y->ok)
		return x->ok ? -1 : 1;
	if (x->st.st_size != y->st.st_size)
		return x->st.st_size < y->st.st_size ? -1 : 1;
	h = memcmp(x->hash, y->hash, 16);
	if (h)
		return h;
	return strcmp(x->e->rel, y->e->rel);
}

/* 0 if a and b have the same size and hash */
static int cmp_size_hash_eq(const struct dd_file *a, const struct dd_file *b)
{
	return a->st.st_size != b->st.st_size || memcmp(a->hash, b->hash, 16);
}

/* 1 if a and b have the same bytes, 0 if not, -errno. */
static int same_bytes(struct tl_ctx *c, struct dd_file *a, struct dd_file *b)
{
	static char *ba, *bb;
	char *pa = tl_path(c, a->e->rel), *pb = tl_path(c, b->e->rel);
	int fa = open(pa, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), fb, r = 1;

	free(pa);
	fb = open(pb, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(pb);
	if (!ba && (!(ba = malloc(CMP_BUF)) || !(bb = malloc(CMP_BUF))))
		abort();
	if (fa < 0 || fb < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t na = read(fa, ba, CMP_BUF), nb, got = 0;

		if (na < 0) {
			r = -errno;
			break;
		}
		while (got < na) {
			nb = read(fb, bb + got, (size_t)(na - got));
			if (nb <= 0)
				break;
			got += nb;
		}
		if (got != na || memcmp(ba, bb, (size_t)na)) {
			r = 0;
			break;
		}
		if (na == 0) {
			char x;

			r = read(fb, &x, 1) == 0;
			break;
		}
	}
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return r;
}

/* Replace dup by a reflink of keep: FICLONE into a temp file, dup's
 * owner, mode and times, then rename over dup. 0, or -errno. */
static int reflink(struct tl_ctx *c, struct dd_file *keep, struct dd_file *dup)
{
	char *pk = tl_path(c, keep->e->rel), *pd = tl_path(c, dup->e->rel), *tmp;
	const char *slash = strrchr(pd, '/');
	struct timespec ts[2] = { dup->st.st_atim, dup->st.st_mtim };
	struct stat now, dir;
	char *dname = NULL;
	int in = -1, out = -1, r = 0;
	bool have_dir = false;

	if (asprintf(&tmp, "%.*s.duet-dedup.%d.tmp", slash ? (int)(slash - pd + 1) : 0, pd,
		     (int)getpid()) < 0)
		abort();
	in = open(pk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0 || fstat(in, &now)) {
		r = -errno;
		goto out;
	}
	if (!same_file_version(&now, &keep->st) || lstat(pd, &now) ||
	    !same_file_version(&now, &dup->st)) {
		r = -EAGAIN;	/* changed since hashed and compared */
		goto out;
	}
	/* The directory's times are put back afterwards: same contents. */
	if (asprintf(&dname, "%.*s", slash ? (int)(slash - pd) : 1, slash ? pd : ".") < 0)
		abort();
	if (slash == pd) {
		free(dname);
		dname = strdup("/");
	}
	have_dir = !stat(dname, &dir);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		goto out;
	}
	if (ioctl(out, FICLONE, in)) {
		r = -errno;
		goto out;
	}
	if (geteuid() == 0)
		(void)!fchown(out, dup->st.st_uid, dup->st.st_gid);
	if (fchmod(out, dup->st.st_mode & 07777) || futimens(out, ts)) {
		r = -errno;
		goto out;
	}
	if (close(out)) {
		out = -1;
		r = -errno;
		goto out;
	}
	out = -1;
	if (rename(tmp, pd))
		r = -errno;
out:
	if (have_dir) {
		struct timespec dts[2] = { dir.st_atim, dir.st_mtim };

		(void)utimensat(AT_FDCWD, dname, dts, 0);
	}
	if (out >= 0)
		close(out);
	if (r)
		unlink(tmp);
	if (in >= 0)
		close(in);
	free(dname);
	free(tmp);
	free(pk);
	free(pd);
	return r;
}

struct group {
	struct dd_file **f;	/* sorted by path */
	int n;
};

static int cmp_dd_rel(const void *a, const void *b)
{
	return strcmp((*(struct dd_file *const *)a)->e->rel, (*(struct dd_file *const *)b)->e->rel);
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct group *)a)->f[0]->e->rel, ((const struct group *)b)->f[0]->e->rel);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: duet-dedup [--no-duet] [--no-polite] [-q] [--reflink] PATH\n"
		   "Report groups of identical files under PATH; --reflink makes them share extents.\n");
}


/*
 * The steps of duet-dedup: each returns 0, or an exit status after saying
 * why (dd_options: DD_GO to go on).
 */
#define DD_GO (-1)

static int dd_options(struct dedup *d, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "no-duet", no_argument, NULL, 'n' },
		{ "no-polite", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "reflink", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int o;

	while ((o = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			d->no_duet = true;
			break;
		case 'P':
			d->no_polite = true;
			break;
		case 'q':
			d->quiet = true;
			break;
		case 'r':
			d->do_reflink = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	return DD_GO;
}

/* The tree listed, and one record per inode (hard links are one file
 * already); empty files are left out: nothing to share. */
static int dd_list(struct dedup *d, const char *root)
{
	struct tl_ctx *c = &d->c;

	tl_init(c, "duet-dedup", root, d->quiet, d->no_duet);
	c->no_polite = d->no_polite;
	/* Registration overlaps the listing; tl_duet_start() waits for it. */
	tl_duet_begin(c, false);
	c->what = "hashed";
	if (tl_list(c))
		return 2;
	if (!S_ISDIR(c->e[0]->st.st_mode)) {
		fprintf(stderr, "duet-dedup: %s: not a directory\n", c->root);
		return 2;
	}
	d->files = calloc((size_t)c->n + 1, sizeof(*d->files));
	d->cand = calloc((size_t)c->n + 1, sizeof(*d->cand));
	if (!d->files || !d->cand)
		return 2;
	for (int i = 0; i < c->n; i++) {
		struct tl_entry *e = c->e[i];
		struct dd_file *f;

		if (!S_ISREG(e->st.st_mode) || e->link != i || !e->st.st_size)
			continue;
		f = calloc(1, sizeof(*f));
		if (!f)
			return 2;
		f->e = e;
		f->st = e->st;
		e->data = f;
		d->files[d->nf++] = f;
	}
	return 0;
}

/* Size groups: only sizes shared by two or more files are hashed, the
 * walk going largest size group first. */
static int dd_candidates(struct dedup *d)
{
	struct dd_file **files = d->files;
	struct tl_ctx *c = &d->c;
	int nf = d->nf;

	for (int i = 0; i < nf; i++)
		files[i]->ok = true;	/* for sorting by listed size */
	qsort(files, (size_t)nf, sizeof(*files), cmp_size_hash);
	for (int i = 0; i < nf; i++) {
		bool shared = (i > 0 && files[i - 1]->st.st_size == files[i]->st.st_size) ||
			      (i + 1 < nf && files[i + 1]->st.st_size == files[i]->st.st_size);

		files[i]->ok = false;
		if (shared) {
			files[i]->e->flags |= TL_WANT;
			d->cand[d->nc++] = files[i];
			c->total++;
		}
	}
	c->walk = malloc(((size_t)d->nc + 1) * sizeof(*c->walk));
	if (!c->walk)
		return 2;
	qsort(d->cand, (size_t)d->nc, sizeof(*d->cand), cmp_size_desc);
	d->left = calloc((size_t)d->nc + 1, sizeof(*d->left));
	if (!d->left)
		return 2;
	for (int i = 0; i < d->nc; i++) {
		c->walk[i] = d->cand[i]->e;
		d->cand[i]->gfirst = i && d->cand[i - 1]->e->st.st_size == d->cand[i]->e->st.st_size ?
				     d->cand[i - 1]->gfirst : i;
		d->left[d->cand[i]->gfirst]++;
	}
	c->nwalk = d->nc;
	return 0;
}

/*
 * One run cand[i..j) of the same size and hash, split into groups of the
 * same bytes: each file not yet placed starts a group that the later ones
 * comparing equal to it join (group: its first file's index; -2: could
 * not be compared).
 */
static int dd_group_run(struct dedup *d, int i, int j)
{
	struct dd_file **cand = d->cand;

	for (int k = i; k < j; k++)
		cand[k]->group = -1;
	for (int k = i; k < j; k++) {
		struct group *g = NULL;

		if (cand[k]->group != -1)
			continue;
		for (int m = k + 1; m < j; m++) {
			int r;

			if (cand[m]->group != -1)
				continue;
			r = same_bytes(&d->c, cand[k], cand[m]);
			if (r < 0) {
				tl_err(&d->c, cand[m]->e->rel, "cannot compare: %s", strerror(-r));
				cand[m]->group = -2;
				continue;
			}
			if (!r)
				continue;
			if (!g) {
				d->groups = realloc(d->groups, (size_t)(d->ng + 1) * sizeof(*d->groups));
				if (!d->groups)
					return 2;
				g = &d->groups[d->ng++];
				g->f = malloc((size_t)(j - i) * sizeof(*g->f));
				if (!g->f)
					return 2;
				g->f[0] = cand[k];
				g->n = 1;
				cand[k]->group = k;
			}
			g->f[g->n++] = cand[m];
			cand[m]->group = k;
		}
	}
	return 0;
}

/* Same size and hash, then confirmed byte for byte against the first
 * file (by path) of each subgroup; groups sorted by their first path. */
static int dd_groups(struct dedup *d)
{
	struct dd_file **cand = d->cand;
	int nc = d->nc, r;

	qsort(cand, (size_t)nc, sizeof(*cand), cmp_size_hash);
	for (int i = 0, j; i < nc && cand[i]->ok; i = j) {
		for (j = i + 1; j < nc && cand[j]->ok && !cmp_size_hash_eq(cand[i], cand[j]); j++)
			;
		if (j - i < 2)
			continue;
		r = dd_group_run(d, i, j);
		if (r)
			return r;
	}
	for (int i = 0; i < d->ng; i++)
		qsort(d->groups[i].f, (size_t)d->groups[i].n, sizeof(*d->groups[i].f), cmp_dd_rel);
	qsort(d->groups, (size_t)d->ng, sizeof(*d->groups), cmp_group);
	return 0;
}

/* --reflink: replace g's k-th file by a reflink of its first; the note
 * for its report line. After a file system refuses, nothing more is tried. */
static const char *dd_reflink(struct dedup *d, struct group *g, int k)
{
	struct tl_ctx *c = &d->c;
	int r;

	if (g->f[k]->st.st_nlink > 1)
		r = -EMLINK;
	else
		r = reflink(c, g->f[0], g->f[k]);
	if (!r) {
		d->reflinked++;
		return " (reflinked)";
	} else if (r == -EXDEV) {
		tl_err(c, g->f[k]->e->rel, "on another file system than %s: not replaced",
		       g->f[0]->e->rel);
	} else if (r == -EOPNOTSUPP || r == -EINVAL || r == -ENOTTY) {
		char *p = tl_path(c, g->f[k]->e->rel);

		fprintf(stderr,
			"duet-dedup: %s: the file system does not support reflinks "
			"(FICLONE: %s); needs btrfs, or xfs made with reflink=1; "
			"nothing replaced\n",
			p, strerror(-r));
		free(p);
		d->unsupported = true;
		c->errors++;
	} else if (r == -EMLINK) {
		/* not an error: replacing one name would split the links */
		return " (hard links: not reflinked)";
	} else if (r == -EAGAIN) {
		tl_err(c, g->f[k]->e->rel, "changed since compared: not replaced");
	} else {
		tl_err(c, g->f[k]->e->rel, "cannot reflink: %s", strerror(-r));
	}
	return "";
}

/* The groups, each file (reflinked with --reflink), then the totals. */
static void dd_report(struct dedup *d)
{
	for (int i = 0; i < d->ng; i++) {
		struct group *g = &d->groups[i];

		if (!d->quiet)
			printf("group %d: %d files of %lld bytes\n", i + 1, g->n,
			       (long long)g->f[0]->st.st_size);
		d->dup_files += (uint64_t)g->n - 1;
		d->dup_bytes += (uint64_t)(g->n - 1) * (uint64_t)g->f[0]->st.st_size;
		for (int k = 0; k < g->n; k++) {
			const char *note = "";

			if (d->do_reflink && k > 0 && !d->unsupported)
				note = dd_reflink(d, g, k);
			if (!d->quiet) {
				putchar('\t');
				tl_put_escaped(stdout, g->f[k]->e->rel);
				printf("%s\n", note);
			}
		}
	}
	if (!d->quiet) {
		printf("%d groups, %llu duplicate files, %llu bytes duplicated", d->ng,
		       (unsigned long long)d->dup_files, (unsigned long long)d->dup_bytes);
		if (d->do_reflink)
			printf(", %llu files reflinked", (unsigned long long)d->reflinked);
		putchar('\n');
	}
}

static void dd_free(struct dedup *d)
{
	for (int i = 0; i < d->ng; i++)
		free(d->groups[i].f);
	free(d->groups);
	for (int i = 0; i < d->nf; i++)
		free(d->files[i]);
	free(d->files);
	free(d->cand);
	free(d->left);
	tl_free(&d->c);
}

/* A failed step exits with its status at once, without the cleanup. */
int main(int argc, char **argv)
{
	struct dedup d = { 0 };
	int r;

	r = dd_options(&d, argc, argv);
	if (r != DD_GO)
		return r;
	r = dd_list(&d, argv[optind]);
	if (!r)
		r = dd_candidates(&d);
	if (r)
		return r;
	tl_duet_start(&d.c, false);
	tl_run(&d.c, visit);
	tl_progress_end(&d.c);
	r = dd_groups(&d);
	if (r)
		return r;
	/* Compared: the done marks that waited for it. */
	for (int i = 0; i < d.nc; i++)
		mark(&d.c, d.cand[i]);
	dd_report(&d);
	r = d.c.errors ? 1 : 0;
	fflush(stdout);
	dd_free(&d);
	return r;
}
