// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet-scrub: write (--create) or verify a manifest of XXH3-128 checksums
 * of every regular file under a path, files whose pages are cached first.
 * See duet-scrub(1).
 *
 * Manifest: a header line, then one line per file name, sorted by path
 * (strcmp): "HASH SIZE MTIME_SEC.NSEC PATH", PATH relative and escaped
 * (\\, \n, \xHH).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define MANIFEST_HEADER "# duet-scrub manifest v1: xxh3-128 size mtime path"
#define MAX_TRIES 5

struct rec {
	char *rel;
	char hash[33];
	long long size, sec, nsec;
	struct tl_entry *e;	/* the tree's entry of that name, if any */
};

/* Per inode (first entry of a link group). */
struct sc_file {
	int err;		/* -errno: unreadable */
	bool hashed, changed;	/* changed: during hashing, or since the manifest */
	bool known;		/* verify: the manifest has a record of one of its names */
	struct stat st;		/* before hashing */
	char hash[33];
	struct rec *r;		/* verify: the record of this entry's name */
};

static bool create_mode;

static bool rec_matches(const struct rec *r, const struct stat *st)
{
	return r->size == (long long)st->st_size && r->sec == (long long)st->st_mtim.tv_sec &&
	       r->nsec == (long long)st->st_mtim.tv_nsec;
}

static void visit(struct tl_ctx *c, struct tl_entry *e, int why)
{
	struct sc_file *f = e->data;
	struct stat before, after;
	uint8_t h[16];
	int r = 0;

	for (int tries = 0; tries < MAX_TRIES; tries++) {
		r = tl_hash_file(c, e->rel, &before, &after, h);
		if (r)
			break;
		f->st = before;
		/* verify: a file the manifest knows at another version changed */
		if (!create_mode && f->r && !rec_matches(f->r, &before)) {
			f->changed = true;
			break;
		}
		if (tl_same_version(&before, &after)) {
			f->changed = false;
			f->hashed = true;
			tl_hash_hex(h, f->hash);
			break;
		}
		f->changed = true;	/* changed while hashed */
		if (!create_mode)
			break;
	}
	if (r) {
		f->err = r;
		tl_err(c, e->rel, "cannot read: %s", strerror(-r));
	} else if (create_mode && f->changed) {
		f->err = -EAGAIN;
		tl_err(c, e->rel, "changed during each of %d reads; not in the manifest", MAX_TRIES);
	}
	/* Done once read (see duet-dedup.c: a polite task drops done pages). */
	tl_done(c, e);
	tl_progress(c, (uint64_t)before.st_size);
}

/*
 * The physical order: by the device address of each file's first extent
 * (FIEMAP), as scrubbers do to keep the disk head moving one way. Files
 * FIEMAP cannot map (no extents: empty or inline data; or not supported)
 * come first, by inode number, which follows allocation order roughly.
 */
struct phys {
	struct tl_entry *e;
	bool mapped;
	uint64_t addr;
};

static bool first_extent(struct tl_ctx *c, struct tl_entry *e, uint64_t *addr)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent fe[1];
	} m;
	char *p = tl_path(c, e->rel);
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	bool ok = false;

	free(p);
	if (fd < 0)
		return false;	/* reported when hashed */
	memset(&m, 0, sizeof(m));
	m.fm.fm_length = FIEMAP_MAX_OFFSET;
	m.fm.fm_extent_count = 1;
	if (!ioctl(fd, FS_IOC_FIEMAP, &m.fm) && m.fm.fm_mapped_extents == 1 &&
	    !(m.fe[0].fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DATA_INLINE))) {
		*addr = m.fe[0].fe_physical;
		ok = true;
	}
	close(fd);
	return ok;
}

static int cmp_phys(const void *a, const void *b)
{
	const struct phys *x = a, *y = b;

	if (x->mapped != y->mapped)
		return x->mapped ? 1 : -1;
	if (x->mapped && x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->e->st.st_ino != y->e->st.st_ino)
		return x->e->st.st_ino < y->e->st.st_ino ? -1 : 1;
	return strcmp(x->e->rel, y->e->rel);
}

static void physical_order(struct tl_ctx *c)
{
	struct phys *ph = malloc((size_t)c->n * sizeof(*ph));
	int n = 0;

	c->walk = malloc((size_t)c->n * sizeof(*c->walk));
	if (!ph || !c->walk)
		abort();
	for (int i = 0; i < c->n; i++) {
		struct tl_entry *e = c->e[i];

		if (!(e->flags & TL_WANT))
			continue;
		ph[n].e = e;
		ph[n].mapped = first_extent(c, e, &ph[n].addr);
		n++;
	}
	qsort(ph, (size_t)n, sizeof(*ph), cmp_phys);
	for (int i = 0; i < n; i++)
		c->walk[i] = ph[i].e;
	c->nwalk = n;
	free(ph);
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->rel, ((const struct rec *)b)->rel);
}

static int write_manifest(struct tl_ctx *c, const char *file)
{
	char *tmp;
	FILE *f;
	int fd, n = 0;

	if (asprintf(&tmp, "%s.duet-scrub.%d.tmp", file, (int)getpid()) < 0)
		abort();
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "duet-scrub: cannot create %s: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	fprintf(f, "%s\n", MANIFEST_HEADER);
	for (int i = 0; i < c->n; i++) {
		struct tl_entry *e = c->e[i];
		struct sc_file *sf;

		if (!(c->e[e->link]->flags & TL_WANT))
			continue;
		sf = c->e[e->link]->data;
		if (sf->err || !sf->hashed)
			continue;
		n++;
		fprintf(f, "%s %lld %lld.%09lld ", sf->hash, (long long)sf->st.st_size,
			(long long)sf->st.st_mtim.tv_sec, (long long)sf->st.st_mtim.tv_nsec);
		tl_put_escaped(f, e->rel);
		fputc('\n', f);
	}
	if (fflush(f) || fsync(fileno(f)) || ferror(f)) {
		fprintf(stderr, "duet-scrub: cannot write %s: %s\n", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, file)) {
		fprintf(stderr, "duet-scrub: cannot rename %s to %s: %s\n", tmp, file, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return n;
}

static int read_manifest(const char *file, struct rec **ret, size_t *nret)
{
	FILE *f = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0, n = 0, rcap = 0;
	struct rec *recs = NULL;
	ssize_t len;
	long lineno = 0;

	if (!f) {
		fprintf(stderr, "duet-scrub: cannot open manifest %s: %s\n", file, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		struct rec r = { 0 };
		int off = 0;

		lineno++;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (lineno == 1) {
			if (strcmp(line, MANIFEST_HEADER))
				goto bad;
			continue;
		}
		if (sscanf(line, "%32[0-9a-f] %lld %lld.%9lld %n", r.hash, &r.size, &r.sec, &r.nsec,
			   &off) != 4 || !off || strlen(r.hash) != 32 || !line[off])
			goto bad;
		r.rel = tl_unescape(line + off);
		if (!r.rel)
			goto bad;
		if (n == rcap) {
			rcap = rcap ? rcap * 2 : 1024;
			recs = realloc(recs, rcap * sizeof(*recs));
			if (!recs)
				abort();
		}
		recs[n++] = r;
	}
	if (ferror(f)) {
		fprintf(stderr, "duet-scrub: cannot read manifest %s: %s\n", file, strerror(errno));
		goto fail;
	}
	if (lineno == 0) {
		lineno = 1;
		goto bad;
	}
	free(line);
	fclose(f);
	qsort(recs, n, sizeof(*recs), cmp_rec);
	*ret = recs;
	*nret = n;
	return 0;
bad:
	fprintf(stderr, "duet-scrub: %s:%ld: not a duet-scrub manifest line\n", file, lineno);
fail:
	for (size_t i = 0; i < n; i++)
		free(recs[i].rel);
	free(recs);
	free(line);
	fclose(f);
	return -1;
}

/* Where the manifest lies inside the tree, its name (and temp names) are no data. */
static char *manifest_rel(struct tl_ctx *c, const char *file)
{
	char *dir = strdup(file), *slash = strrchr(dir, '/'), *rd, *res = NULL;
	const char *base = slash ? slash + 1 : file;
	size_t rl = strlen(c->root_abs);

	if (slash)
		*slash = '\0';
	rd = realpath(slash ? (*dir ? dir : "/") : ".", NULL);
	if (rd && !strcmp(rd, c->root_abs))
		res = strdup(base);
	else if (rd && !strncmp(rd, c->root_abs, rl) && (rd[rl] == '/' || rl == 1))
		if (asprintf(&res, "%s/%s", rd + (rl == 1 ? 1 : rl + 1), base) < 0)
			res = NULL;
	free(rd);
	free(dir);
	return res;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: duet-scrub [--no-duet] [--no-polite] [-q] [--create] --manifest FILE PATH\n"
		   "Write (--create) or verify checksums of every regular file under PATH.\n");
}

/* What a run holds from the options to the report. */
struct scrub {
	struct tl_ctx c;
	bool quiet, no_duet, no_polite;
	const char *manifest;
	struct rec *recs;	/* verify: the manifest's, sorted by path */
	size_t nrecs;
	char *mrel;		/* the manifest's path in the tree, if it lies there */
	int n_ok, n_mis, n_chg, n_miss, n_new, n_unr;
};

/*
 * The steps of duet-scrub: each returns 0, or an exit status after saying
 * why (sc_options: SC_GO to go on).
 */
#define SC_GO (-1)

static int sc_options(struct scrub *s, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "no-duet", no_argument, NULL, 'n' },
		{ "no-polite", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "create", no_argument, NULL, 'c' },
		{ "manifest", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int o;

	while ((o = getopt_long(argc, argv, "qhm:", lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			s->no_duet = true;
			break;
		case 'P':
			s->no_polite = true;
			break;
		case 'q':
			s->quiet = true;
			break;
		case 'c':
			create_mode = true;
			break;
		case 'm':
			s->manifest = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1 || !s->manifest) {
		usage(stderr);
		return 2;
	}
	return SC_GO;
}

/* The manifest read (verify), the tree listed. */
static int sc_list(struct scrub *s, const char *root)
{
	struct tl_ctx *c = &s->c;

	if (!create_mode && read_manifest(s->manifest, &s->recs, &s->nrecs))
		return 2;
	tl_init(c, "duet-scrub", root, s->quiet, s->no_duet);
	c->no_polite = s->no_polite;
	/* Registration overlaps the listing; tl_duet_start() waits for it. */
	tl_duet_begin(c, false);
	c->what = create_mode ? "hashed" : "verified";
	if (tl_list(c))
		return 2;
	if (!S_ISDIR(c->e[0]->st.st_mode)) {
		fprintf(stderr, "duet-scrub: %s: not a directory\n", c->root);
		return 2;
	}
	s->mrel = manifest_rel(c, s->manifest);
	return 0;
}

/* The regular files but the manifest (and its temp files), sorted by path. */
static int sc_files_byrel(struct scrub *s, struct tl_entry **byrel)
{
	const char *mrel = s->mrel;
	int nb = 0;

	for (int i = 0; i < s->c.n; i++) {
		struct tl_entry *e = s->c.e[i];

		if (!S_ISREG(e->st.st_mode))
			continue;
		if (mrel && !strncmp(e->rel, mrel, strlen(mrel)) &&
		    (!e->rel[strlen(mrel)] || !strncmp(e->rel + strlen(mrel), ".duet-scrub.", 12)))
			continue;
		byrel[nb++] = e;
	}
	qsort(byrel, (size_t)nb, sizeof(*byrel), tl_cmp_rel);
	return nb;
}

/* Regular files, sorted by path, matched with the manifest's records. */
static int sc_want(struct scrub *s)
{
	struct tl_ctx *c = &s->c;
	struct tl_entry **byrel = malloc((size_t)c->n * sizeof(*byrel));
	struct rec *recs = s->recs;
	size_t ri = 0;
	int nb;

	if (!byrel)
		return 2;
	nb = sc_files_byrel(s, byrel);
	for (int i = 0; i < nb; i++) {
		struct tl_entry *e = byrel[i];
		struct tl_entry *first = c->e[e->link];
		int cmp = 1;

		while (ri < s->nrecs && (cmp = strcmp(recs[ri].rel, e->rel)) < 0)
			ri++;
		if (ri < s->nrecs && cmp == 0)
			recs[ri].e = e;
		e->flags |= TL_WANT;	/* reported below; data on the first */
		if (!first->data) {
			first->data = calloc(1, sizeof(struct sc_file));
			if (!first->data)
				return 2;
			c->total++;
		}
		if (ri < s->nrecs && cmp == 0) {
			((struct sc_file *)first->data)->known = true;
			if (first == e)
				((struct sc_file *)e->data)->r = &recs[ri];
		}
	}
	/* Hashed once per inode, on its first name; in verify mode only
	 * inodes the manifest knows under some name (new ones need no reading). */
	for (int i = 0; i < c->n; i++) {
		struct tl_entry *e = c->e[i];

		if (e->link != i)
			e->flags &= ~TL_WANT;
		else if (!create_mode && e->data && !((struct sc_file *)e->data)->known) {
			e->flags &= ~TL_WANT;
			c->total--;
		}
	}
	free(byrel);
	return 0;
}

/* --create: the manifest written; 0, or 1 when some file was not hashed. */
static int sc_create(struct scrub *s)
{
	int files = write_manifest(&s->c, s->manifest);

	if (files < 0)
		return 2;
	if (!s->quiet)
		printf("%d files hashed into the manifest\n", files);
	return s->c.errors ? 1 : 0;
}

/* A name both in the manifest and in the tree: its problem, or NULL when
 * it checks out (why: the detail, if any). */
static const char *sc_check(struct scrub *s, struct rec *r, struct tl_entry *e,
			    const char **why)
{
	struct sc_file *f = s->c.e[e->link]->data;
	char *p = tl_path(&s->c, e->rel);
	const char *what = NULL;
	struct stat now;

	if (f->err) {
		what = "UNREADABLE";
		*why = strerror(-f->err);
		s->n_unr++;
	} else if (f->changed || !rec_matches(r, &f->st) || lstat(p, &now) ||
		   !rec_matches(r, &now)) {
		/* changed since the manifest, while hashed, or since */
		what = "CHANGED";
		s->n_chg++;
	} else if (!f->hashed || strcmp(f->hash, r->hash)) {
		what = "MISMATCH";
		s->n_mis++;
	} else {
		s->n_ok++;
	}
	free(p);
	return what;
}

/* Verify: one line per problem, sorted by path, then the totals. */
static int sc_verify(struct scrub *s)
{
	struct tl_ctx *c = &s->c;
	struct tl_entry **byrel = malloc((size_t)c->n * sizeof(*byrel));
	struct rec *recs = s->recs;
	size_t ri = 0, nrecs = s->nrecs;
	int nb = 0, bi = 0;

	if (!byrel)
		return 2;
	for (int i = 0; i < c->n; i++)
		if (c->e[c->e[i]->link]->data && S_ISREG(c->e[i]->st.st_mode))
			byrel[nb++] = c->e[i];
	qsort(byrel, (size_t)nb, sizeof(*byrel), tl_cmp_rel);
	while (ri < nrecs || bi < nb) {
		int cmp = ri == nrecs ? 1 : bi == nb ? -1 : strcmp(recs[ri].rel, byrel[bi]->rel);
		const char *what = NULL, *why = NULL;
		const char *rel;

		if (cmp < 0) {
			what = "MISSING";
			rel = recs[ri++].rel;
			s->n_miss++;
		} else if (cmp > 0) {
			what = "NEW";
			rel = byrel[bi++]->rel;
			s->n_new++;
		} else {
			rel = recs[ri].rel;
			what = sc_check(s, &recs[ri++], byrel[bi++], &why);
		}
		if (what) {
			printf("%s ", what);
			tl_put_escaped(stdout, rel);
			if (why)
				printf(": %s", why);
			putchar('\n');
		}
	}
	free(byrel);
	if (!s->quiet)
		printf("%d ok, %d mismatched, %d changed, %d missing, %d new, %d unreadable\n",
		       s->n_ok, s->n_mis, s->n_chg, s->n_miss, s->n_new, s->n_unr);
	return (s->n_mis || s->n_chg || s->n_miss || s->n_new || s->n_unr || c->errors) ? 1 : 0;
}

static void sc_free(struct scrub *s)
{
	for (int i = 0; i < s->c.n; i++)
		free(s->c.e[i]->data);
	for (size_t i = 0; i < s->nrecs; i++)
		free(s->recs[i].rel);
	free(s->recs);
	free(s->mrel);
	tl_free(&s->c);
}

/* A failed step exits with its status at once, without the cleanup. */
int main(int argc, char **argv)
{
	struct scrub s = { 0 };
	int r;

	r = sc_options(&s, argc, argv);
	if (r != SC_GO)
		return r;
	r = sc_list(&s, argv[optind]);
	if (!r)
		r = sc_want(&s);
	if (r)
		return r;
	physical_order(&s.c);
	tl_duet_start(&s.c, false);
	tl_run(&s.c, visit);
	tl_progress_end(&s.c);
	r = create_mode ? sc_create(&s) : sc_verify(&s);
	if (r == 2)	/* failed; 1 is a run that found problems */
		return r;
	fflush(stdout);
	sc_free(&s);
	return r;
}
