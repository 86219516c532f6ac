// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Datasets (--dataset NAME=DIR): the page cache of a directory tree, kept
 * current from the page events, for RESIDENCY requests (proto.h).
 *
 * Each dataset is a task of the daemon's own session on DIR, with the
 * state masks EXISTS and MODIFIED: its registration scan reports what is
 * cached when the daemon starts (the one scan), and from then on each
 * fetch gives the net change of every page. The main thread fetches as
 * soon as the task's fd is readable and keeps, per file, the set of
 * cached pages and the set of dirty ones (roaring bitmaps: runs cost a
 * few bytes). A file whose last page leaves is forgotten. A LOST (the
 * ring buffer overran, or the task passed --max-pending) drops every set;
 * the resync that follows reports the cache again, so the figures are
 * repaired, and the loss is counted.
 *
 * A RESIDENCY request of a client's own walk (DP_RESID_PATHS) names the
 * files whose residency the kernel would not tell it (cachestat answers
 * only the owner, a writer or root): each is opened as the client, then
 * counted as the daemon.
 *
 * A RESIDENCY request of a dataset takes a snapshot of the dataset's files (identity
 * and counts) and hands it out in batches, resolving each file's path
 * then: a file without a name any more (deleted, still cached) is left
 * out, and so, for a client that is not root, is a file it could not
 * open (duetd-creds.c), as for events.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <roaring/roaring.h>

#include "duetd.h"
#include "internal.h"
#include "scan.h"

/* Items fetched at a time. */
#define FETCH_BATCH	1024u
/* A RESIDENCY reply stops at whichever comes first. */
#define RESID_BATCH	1024u
#define RESID_BYTES	(256u * 1024)
#define RESID_LOOKS	8192u	/* snapshot entries looked at (most may be hidden) */
/* Engine page indices are 32-bit (libduet/scan.c). */
#define PAGE_LIMIT	(UINT64_C(1) << 32)

struct ds_key {
	uint64_t ino, gen;
	uint32_t dev, pad;
};

struct ds_file {
	struct ds_key key;
	roaring_bitmap_t *cached, *dirty;
	UT_hash_handle hh;
};

/* Every regular file of the dataset: for its file count and bytes. */
struct ds_all {
	uint64_t ino;
	uint32_t dev, pad;
	uint64_t size;
	UT_hash_handle hh;
};

struct dataset {
	char *name, *dir;
	struct ds_all *all;
	uint64_t all_files, all_bytes;
	struct duet_task *t;
	struct src src;
	struct ds_file *files;
	uint64_t nfiles, cached, dirty;	/* files with pages; pages */
	uint64_t items, lost;
	struct dataset *next;
};

struct resid_snap {
	struct dataset *ds;
	char prefix[DP_MAX_PATH + 1];	/* "" for the whole dataset */
	size_t prefix_len;
	struct snap_file {
		struct ds_key key;
		uint64_t cached, dirty;
	} *f;
	size_t n, next;
};

static struct dataset *datasets;
/*
 * Snapshots being handed out, in all: a connection holds one until its
 * last batch, so many connections that never come back for the rest
 * could hold many. Past the budget a new one is refused (-EAGAIN: try
 * again when others are done); about 6.5 M files' worth.
 */
#define SNAP_BUDGET	(256ull << 20)
static uint64_t snap_bytes;
static struct item_buf {
	struct duet_item it[FETCH_BATCH];
} ibuf;

/* --dataset NAME=DIR: 0, or says why not and returns 2. */
int dataset_option(const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct dataset *ds, **tail;
	size_t nl = eq ? (size_t)(eq - arg) : 0;

	if (!eq || !nl || nl > DP_MAX_NAME || !eq[1]) {
		say("bad --dataset %s (NAME=DIR)", arg);
		return 2;
	}
	for (size_t i = 0; i < nl; i++)
		if (!(arg[i] == '_' || arg[i] == '-' || arg[i] == '.' ||
		      (arg[i] >= '0' && arg[i] <= '9') || (arg[i] >= 'a' && arg[i] <= 'z') ||
		      (arg[i] >= 'A' && arg[i] <= 'Z'))) {
			say("bad --dataset %s: a name is letters, digits, '_', '-' and '.'", arg);
			return 2;
		}
	for (ds = datasets; ds; ds = ds->next)
		if (strlen(ds->name) == nl && !memcmp(ds->name, arg, nl)) {
			say("--dataset %.*s given twice", (int)nl, arg);
			return 2;
		}
	ds = calloc(1, sizeof(*ds));
	if (!ds || !(ds->name = strndup(arg, nl)) || !(ds->dir = strdup(eq + 1))) {
		if (ds)
			free(ds->name);
		free(ds);
		say("%s", strerror(ENOMEM));
		return 2;
	}
	for (tail = &datasets; *tail; tail = &(*tail)->next)
		;
	*tail = ds;
	return 0;
}

/* This libroaring's free does not take NULL. */
static void bm_free(roaring_bitmap_t *b)
{
	if (b)
		roaring_bitmap_free(b);
}

static void forget_all(struct dataset *ds)
{
	struct ds_file *f, *tmp;

	HASH_ITER(hh, ds->files, f, tmp) {
		HASH_DEL(ds->files, f);
		bm_free(f->cached);
		bm_free(f->dirty);
		free(f);
	}
	ds->nfiles = ds->cached = ds->dirty = 0;
}

static uint64_t card(const roaring_bitmap_t *b)
{
	return b ? roaring_bitmap_get_cardinality(b) : 0;
}

/* One item into the file's sets: 0, or -ENOMEM. */
static int apply(struct dataset *ds, const struct duet_item *it)
{
	struct ds_key k = { it->ino, it->gen, it->dev, 0 };
	uint64_t lo = it->index, hi = it->index + it->count, c0, d0;
	struct ds_file *f;

	if (lo >= PAGE_LIMIT)
		return 0;
	if (hi > PAGE_LIMIT || hi < lo)
		hi = PAGE_LIMIT;
	HASH_FIND(hh, ds->files, &k, sizeof(k), f);
	if (!f) {
		if (!(it->state & (DUET_ADDED | DUET_DIRTY)))
			return 0;
		f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		f->key = k;
		HASH_ADD(hh, ds->files, key, sizeof(k), f);
		ds->nfiles++;
	}
	c0 = card(f->cached);
	d0 = card(f->dirty);
	if ((it->state & (DUET_ADDED | DUET_DIRTY)) && !f->cached &&
	    !(f->cached = roaring_bitmap_create()))
		return -ENOMEM;
	if ((it->state & DUET_DIRTY) && !f->dirty && !(f->dirty = roaring_bitmap_create()))
		return -ENOMEM;
	/* An item's state may join a change of each kind (ADDED|DIRTY, ...). */
	if (it->state & (DUET_ADDED | DUET_DIRTY))	/* a dirty page is a cached one */
		roaring_bitmap_add_range(f->cached, lo, hi);
	if (it->state & DUET_DIRTY)
		roaring_bitmap_add_range(f->dirty, lo, hi);
	/* Known only per inode on a stock kernel: nothing is dirty now. */
	if ((it->state & DUET_FLUSHED) && f->dirty && (it->flags & DUET_ITEM_INODE_LEVEL))
		roaring_bitmap_clear(f->dirty);
	else if ((it->state & DUET_FLUSHED) && f->dirty)
		roaring_bitmap_remove_range(f->dirty, lo, hi);
	if (it->state & DUET_REMOVED) {
		if (f->cached)
			roaring_bitmap_remove_range(f->cached, lo, hi);
		if (f->dirty)
			roaring_bitmap_remove_range(f->dirty, lo, hi);
	}
	ds->cached += card(f->cached) - c0;
	ds->dirty += card(f->dirty) - d0;
	if (!card(f->cached)) {
		HASH_DEL(ds->files, f);
		ds->dirty -= card(f->dirty);
		bm_free(f->cached);
		bm_free(f->dirty);
		free(f);
		ds->nfiles--;
	}
	return 0;
}

static uint32_t kdev_of(dev_t dv)
{
	return (uint32_t)major(dv) << 20 | (uint32_t)minor(dv);
}

/* The file (dev, ino) is at path with st, or gone (st NULL). */
static void all_update(struct dataset *ds, uint32_t dev, uint64_t ino, const struct stat *st)
{
	struct ds_all k = { .ino = ino, .dev = dev }, *a;

	HASH_FIND(hh, ds->all, &k.ino, sizeof(k.ino) + sizeof(k.dev) + sizeof(k.pad), a);
	if (!st || !S_ISREG(st->st_mode)) {
		if (a) {
			HASH_DEL(ds->all, a);
			ds->all_files--;
			ds->all_bytes -= a->size;
			free(a);
		}
		return;
	}
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return;	/* a figure less, never a crash */
		a->ino = ino;
		a->dev = dev;
		HASH_ADD(hh, ds->all, ino, sizeof(a->ino) + sizeof(a->dev) + sizeof(a->pad), a);
		ds->all_files++;
	}
	ds->all_bytes += (uint64_t)st->st_size - a->size;
	a->size = (uint64_t)st->st_size;
}

static struct dataset *walking;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode))
		all_update(walking, kdev_of(st->st_dev), st->st_ino, st);
	return 0;
}

/* After an item of (dev, ino): its size now, or that it has no name any more. */
static void all_item(struct dataset *ds, const struct duet_item *it)
{
	struct duet_fileid f = duet_item_fileid(it);
	struct ds_all k = { .ino = it->ino, .dev = it->dev }, *a;
	char path[PATH_MAX];
	struct stat st;

	/*
	 * A read (ADDED alone) of a file known changes neither its size nor
	 * its name: only writes, removals and new files are looked at again.
	 */
	HASH_FIND(hh, ds->all, &k.ino, sizeof(k.ino) + sizeof(k.dev) + sizeof(k.pad), a);
	if (a && it->state == DUET_ADDED)
		return;
	if (duet_task_path(ds->t, &f, path, sizeof(path)) || lstat(path, &st) ||
	    st.st_ino != it->ino)
		all_update(ds, it->dev, it->ino, NULL);
	else
		all_update(ds, it->dev, it->ino, &st);
}

void on_dataset(struct dataset *ds)
{
	int n;

	while ((n = duet_task_fetch(ds->t, ibuf.it, FETCH_BATCH)) > 0) {
		for (int i = 0; i < n; i++) {
			const struct duet_item *it = &ibuf.it[i];

			if (it->flags & DUET_ITEM_LOST) {
				forget_all(ds);
				ds->lost++;
				if (d.verbose)
					say("dataset %s: events lost; its figures are read again",
					    ds->name);
				continue;
			}
			all_item(ds, it);
			if (apply(ds, it)) {
				/* Out of memory: as good as lost, and said. */
				forget_all(ds);
				ds->lost++;
				say("dataset %s: out of memory; its figures are dropped until "
				    "the next resync", ds->name);
			}
		}
		ds->items += (uint64_t)n;
		if ((unsigned)n < FETCH_BATCH)
			break;
	}
	if (n < 0)
		say("dataset %s: %s", ds->name, duet_strerror(n));
}

/* Register every dataset: 0, or says why not and returns 1. */
int datasets_start(void)
{
	for (struct dataset *ds = datasets; ds; ds = ds->next) {
		/* Its figures need no latency bound: it never asks for one. */
		struct duet_task_opts to = { .sz = sizeof(to), .mask = DUET_EXISTS | DUET_MODIFIED,
					     .latency_ms = 1000 };
		/* It never marks done: no polite drop waits for it. */
		struct duet__task_ext x = { .max_pending = d.max_pending, .observer = true };
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ds->src };
		char name[DP_MAX_NAME + 16];
		struct stat st;
		int r;

		if (ds->dir[0] != '/') {
			say("--dataset %s=%s: the directory must be an absolute path", ds->name,
			    ds->dir);
			return 1;
		}
		if (stat(ds->dir, &st)) {
			say("--dataset %s=%s: %s", ds->name, ds->dir, strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			say("--dataset %s=%s: not a directory", ds->name, ds->dir);
			return 1;
		}
		if (access(ds->dir, R_OK | X_OK)) {
			say("--dataset %s=%s: %s", ds->name, ds->dir, strerror(errno));
			return 1;
		}
		snprintf(name, sizeof(name), "dataset:%s", ds->name);
		to.name = name;
		to.path = ds->dir;
		r = duet__task_new_ext(d.s, &to, &x, &ds->t);
		if (r) {
			say("--dataset %s=%s: %s", ds->name, ds->dir, duet_strerror(r));
			return 1;
		}
		ds->src.kind = SRC_DATASET;
		ds->src.ds = ds;
		if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, duet_task_fd(ds->t), &ev)) {
			say("epoll: %s", strerror(errno));
			return 1;
		}
		/* Its files and bytes: one walk now, then kept from the items. */
		walking = ds;
		nftw(duet__task_root(ds->t), walk_one, 64, FTW_PHYS);
		walking = NULL;
		say("dataset %s: %s, %" PRIu64 " files, %" PRIu64 " bytes", ds->name,
		    duet__task_root(ds->t), ds->all_files, ds->all_bytes);
	}
	return 0;
}

void datasets_metrics(FILE *f)
{
	static const struct {
		const char *name, *type, *help;
	} k[] = {
		{ "duet_dataset_cached_bytes", "gauge",
		  "Bytes of a dataset's files in the page cache, kept from the events." },
		{ "duet_dataset_dirty_bytes", "gauge", "Of them dirty." },
		{ "duet_dataset_cached_files", "gauge", "Files of a dataset with cached pages." },
		{ "duet_dataset_files", "gauge", "Regular files of a dataset." },
		{ "duet_dataset_bytes", "gauge", "Their size." },
		{ "duet_dataset_losses_total", "counter",
		  "Losses of a dataset's events (its figures were read again)." },
	};
	uint64_t ps = ds_page_size();

	if (!datasets)
		return;
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", k[i].name, k[i].help, k[i].name,
			k[i].type);
		for (struct dataset *ds = datasets; ds; ds = ds->next) {
			uint64_t v = i == 0 ? ds->cached * ps : i == 1 ? ds->dirty * ps :
				     i == 2 ? ds->nfiles : i == 3 ? ds->all_files :
				     i == 4 ? ds->all_bytes : ds->lost;

			/* Names are the options' own: a bounded set, no quote needed. */
			fprintf(f, "%s{dataset=\"%s\"} %" PRIu64 "\n", k[i].name, ds->name, v);
		}
	}
}

void datasets_free(void)
{
	while (datasets) {
		struct dataset *ds = datasets;
		struct ds_all *a, *tmp;

		datasets = ds->next;
		HASH_ITER(hh, ds->all, a, tmp) {
			HASH_DEL(ds->all, a);
			free(a);
		}
		forget_all(ds);
		duet_task_free(ds->t);
		free(ds->name);
		free(ds->dir);
		free(ds);
	}
}

void resid_snap_free(struct resid_snap *sn)
{
	if (sn) {
		snap_bytes -= sn->n * sizeof(*sn->f);
		free(sn->f);
		free(sn);
	}
}

/* The snapshot a first RESIDENCY request asks for: 0 or -errno. */
static int snap_take(struct client *c, const struct dp_request *rq)
{
	struct resid_snap *sn;
	struct dataset *ds;
	struct ds_file *f, *tmp;
	size_t i = 0;

	for (ds = datasets; ds; ds = ds->next)
		if (!strcmp(ds->name, rq->u.resid.name))
			break;
	if (!ds)
		return -ENOENT;
	sn = calloc(1, sizeof(*sn));
	if (!sn)
		return -ENOMEM;
	sn->ds = ds;
	if (rq->u.resid.path[0]) {
		const char *root = duet__task_root(ds->t);
		size_t rl = strlen(root), pl = strlen(rq->u.resid.path);

		while (pl > 1 && rq->u.resid.path[pl - 1] == '/')
			pl--;
		/* The subtree must lie in the dataset. */
		if (pl < rl || memcmp(rq->u.resid.path, root, rl) ||
		    (pl > rl && rq->u.resid.path[rl] != '/' && strcmp(root, "/"))) {
			free(sn);
			return -EXDEV;
		}
		memcpy(sn->prefix, rq->u.resid.path, pl);
		sn->prefix[pl] = '\0';
		sn->prefix_len = pl;
	}
	resid_snap_free(c->snap);	/* a connection holds one at a time */
	c->snap = NULL;
	if (snap_bytes + ds->nfiles * sizeof(*sn->f) > SNAP_BUDGET) {
		free(sn);
		return -EAGAIN;
	}
	if (ds->nfiles && !(sn->f = calloc(ds->nfiles, sizeof(*sn->f)))) {
		free(sn);
		return -ENOMEM;
	}
	HASH_ITER(hh, ds->files, f, tmp) {
		sn->f[i].key = f->key;
		sn->f[i].cached = card(f->cached);
		sn->f[i].dirty = card(f->dirty);
		i++;
	}
	sn->n = i;
	snap_bytes += sn->n * sizeof(*sn->f);
	c->snap = sn;
	return 0;
}

static bool under(const struct resid_snap *sn, const char *path)
{
	if (!sn->prefix_len)
		return true;
	return !strncmp(path, sn->prefix, sn->prefix_len) &&
	       (path[sn->prefix_len] == '/' || !path[sn->prefix_len] ||
		!strcmp(sn->prefix, "/"));
}

/* Append one entry to body at *len. */
static void put_entry(char *body, size_t *len, struct dp_resid_entry *e, const char *path)
{
	size_t pl = strlen(path), padded = (pl + 7) & ~(size_t)7;

	e->path_len = (uint32_t)pl;
	memcpy(body + *len, e, sizeof(*e));
	memset(body + *len + sizeof(*e), 0, padded);
	memcpy(body + *len + sizeof(*e), path, pl);
	*len += sizeof(*e) + padded;
}

/*
 * Files of the client's own walk that it may not count (DP_RESID_PATHS):
 * each opened with the client's rights, so it learns only of what it
 * could read, then counted with the daemon's.
 */
static void do_resid_paths(struct client *c, const struct dp_request *rq)
{
	struct dp_resid_reply rr = { .entry_size = sizeof(struct dp_resid_entry) };
	size_t len = sizeof(rr), cap = sizeof(rr) + (size_t)rq->u.resid.npaths *
				       (sizeof(struct dp_resid_entry) + 8) + rq->u.resid.list_len;
	const char *q = rq->u.resid.list, *end = q + rq->u.resid.list_len;
	char *body = malloc(cap);

	if (!body) {
		reply(c, rq->seq, -ENOMEM, NULL, 0);
		return;
	}
	for (; q < end; q += strlen(q) + 1) {
		struct dp_resid_entry e = { 0 };
		struct ds_counts cnt;
		struct stat st;
		int fd, r = 0;

		if (c->cr.uid)
			as_client(&c->cr);
		fd = open(q, O_RDONLY | O_NOATIME | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == EPERM)
			fd = open(q, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
		if (c->cr.uid)
			as_self();
		if (!r && fstat(fd, &st))
			r = -errno;
		if (!r && !S_ISREG(st.st_mode))
			r = -EINVAL;
		if (!r) {
			e.ino = st.st_ino;
			e.dev = (uint32_t)major(st.st_dev) << 20 | (uint32_t)minor(st.st_dev);
			e.size = (uint64_t)st.st_size;
			r = ds_count_fd(fd, &st, &cnt);
		}
		if (fd >= 0)
			close(fd);
		if (!r) {
			e.cached = cnt.cached;
			e.dirty = cnt.dirty;
			e.writeback = cnt.writeback;
			e.flags = cnt.mincore ? DUET_RESIDENCY_MINCORE : 0;
		}
		e.error = r;
		put_entry(body, &len, &e, q);
		rr.n++;
	}
	memcpy(body, &rr, sizeof(rr));
	reply(c, rq->seq, (int)rr.n, body, len);
	free(body);
}

void do_residency(struct client *c, const struct dp_request *rq)
{
	struct dp_resid_reply rr = { .entry_size = sizeof(struct dp_resid_entry) };
	struct resid_snap *sn;
	char path[PATH_MAX];
	char *body;
	size_t len = sizeof(rr), cap = RESID_BYTES + sizeof(struct dp_resid_entry) + PATH_MAX;
	unsigned int looks = 0;
	int r;

	if (rq->u.resid.flags & DP_RESID_PATHS) {
		do_resid_paths(c, rq);
		return;
	}
	if (!(rq->u.resid.flags & DP_RESID_NEXT)) {
		r = snap_take(c, rq);
		if (r) {
			reply(c, rq->seq, r, NULL, 0);
			return;
		}
	} else if (!c->snap) {
		reply(c, rq->seq, -EINVAL, NULL, 0);
		return;
	}
	sn = c->snap;
	body = malloc(cap);
	if (!body) {
		reply(c, rq->seq, -ENOMEM, NULL, 0);
		return;
	}
	while (sn->next < sn->n && rr.n < RESID_BATCH && len < RESID_BYTES &&
	       looks++ < RESID_LOOKS) {
		const struct snap_file *sf = &sn->f[sn->next++];
		struct duet_fileid fid = { sf->key.ino, sf->key.gen, sf->key.dev, 0 };
		struct dp_resid_entry e = {
			.ino = sf->key.ino, .gen = sf->key.gen, .dev = sf->key.dev,
			.cached = sf->cached, .dirty = sf->dirty, .flags = DUET_RESIDENCY_LIVE,
		};
		struct stat st;

		if (duet_task_path(sn->ds->t, &fid, path, sizeof(path)))
			continue;	/* no name (any more) */
		if (!under(sn, path) || (c->cr.uid && !client_visible(c, path)))
			continue;
		if (strlen(path) > DP_MAX_PATH)
			continue;
		if (!stat(path, &st) && st.st_ino == sf->key.ino)
			e.size = (uint64_t)st.st_size;
		put_entry(body, &len, &e, path);
		rr.n++;
	}
	rr.more = sn->next < sn->n;
	memcpy(body, &rr, sizeof(rr));
	reply(c, rq->seq, (int)rr.n, body, len);
	free(body);
	if (!rr.more) {
		resid_snap_free(c->snap);
		c->snap = NULL;
	}
}
