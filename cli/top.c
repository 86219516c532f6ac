// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top [PATH...]: a live view of the page cache under PATH, per file
 * and per process, refreshed every interval. As root the events come
 * from this process's own source (the tracefs instance, or perf), with
 * the pid and comm of each; as any other user through duetd (libduet's
 * daemon mode), which names only files the user may read and never
 * another user's processes: no pids then, so no process view and no
 * causes. The view is top-view.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "duet-cli.h"
#include "duet/duet.h"
#include "livepaths.h"
#include "output.h"
#include "source.h"
#include "top.h"
#include "top-raw.h"
#include "top-vmscan.h"
#include "top-loads.h"

/* The refault table holds at most this many pages removed (24 MiB). */
#define TOP_PAGES_MAX (1u << 20)

/* ---- counting ---- */

static inline uint64_t phash(uint32_t dev, uint64_t ino, uint64_t index)
{
	uint64_t h = (ino ^ ((uint64_t)dev << 40)) * 0x9e3779b97f4a7c15ULL;

	h ^= index * 0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 31;
	return h * 0xff51afd7ed558ccdULL;
}

/* The slot of a page, a free one if it is not there; NULL: the table is full. */
static struct top_pslot *page_slot(struct top_pages *p, uint32_t dev, uint64_t ino,
				   uint64_t index, bool add)
{
	size_t h;

	if (add && p->n * 2 >= p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 1 << 12;
		struct top_pslot *s;

		if (cap > 2 * (size_t)TOP_PAGES_MAX || !(s = calloc(cap, sizeof(*s)))) {
			p->full = true;
			return NULL;
		}
		for (size_t i = 0; i < p->cap; i++) {
			if (!p->s[i].used)
				continue;
			h = phash(p->s[i].dev, p->s[i].ino, p->s[i].index) & (cap - 1);
			while (s[h].used)
				h = (h + 1) & (cap - 1);
			s[h] = p->s[i];
		}
		free(p->s);
		p->s = s;
		p->cap = cap;
	}
	if (!p->cap)
		return NULL;
	for (h = phash(dev, ino, index) & (p->cap - 1);; h = (h + 1) & (p->cap - 1)) {
		struct top_pslot *s = &p->s[h];

		if (!s->used)
			return add ? s : NULL;
		if (s->dev == dev && s->ino == ino && s->index == index)
			return s;
	}
}

/*
 * A page removed stays in the table (used = 2) and, added again, is a
 * refault (used = 1 then): slots are never freed, only marked.
 */
static uint64_t count_refaults(struct top *t, uint32_t dev, uint64_t ino, uint64_t index,
			       uint64_t count, bool removed)
{
	uint64_t refaults = 0;

	for (uint64_t k = 0; k < count; k++) {
		struct top_pslot *s = page_slot(&t->pages, dev, ino, index + k, removed);

		if (!s)
			continue;
		if (removed) {
			if (!s->used) {
				s->dev = dev;
				s->ino = ino;
				s->index = index + k;
				t->pages.n++;
			}
			s->used = 2;
		} else if (s->used == 2) {
			s->used = 1;
			refaults++;
		}
	}
	return refaults;
}

static struct top_file *file_get(struct top *t, uint32_t dev, uint64_t ino, uint64_t gen,
				 bool *fresh)
{
	struct top_fkey k = { .dev = dev, .ino = ino, .gen = gen };
	struct top_file *f;

	*fresh = false;
	HASH_FIND(hh, t->files, &k, sizeof(k), f);
	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->k = k;
	f->adder = f->evictor = -1;
	f->cached = -1;
	HASH_ADD(hh, t->files, k, sizeof(k), f);
	*fresh = true;
	return f;
}

static struct top_proc *proc_get(struct top *t, int pid)
{
	struct top_proc *p;

	HASH_FIND_INT(t->procs, &pid, p);
	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	snprintf(p->comm, sizeof(p->comm), "%s", out_comm(pid));
	HASH_ADD_INT(t->procs, pid, p);
	return p;
}

static void add_to(struct top_counts *iv, struct top_counts *tot, int col, uint64_t n)
{
	iv->v[col] += n;
	tot->v[col] += n;
}

/*
 * One page event: type DC_ADDED ... DC_FLUSHED, pid -1 when unknown
 * (duetd). Inode-level flushes (count 0) count once.
 */
static void count_one(struct top *t, struct top_file *f, unsigned int type, uint64_t index,
		      uint64_t count, int pid, bool in_reclaim)
{
	struct top_proc *p = pid >= 0 ? proc_get(t, pid) : NULL;
	uint64_t n = count ? count : 1, ref;
	int col = type == DC_ADDED ? TC_ADDED : type == DC_REMOVED ? TC_REMOVED :
		  type == DC_DIRTY ? TC_DIRTY : TC_FLUSHED;

	add_to(&f->iv, &f->tot, col, n);
	if (p)
		add_to(&p->iv, &p->tot, col, n);
	if (type == DC_ADDED) {
		ref = count_refaults(t, f->k.dev, f->k.ino, index, count, false);
		add_to(&f->iv, &f->tot, TC_REFAULT, ref);
		if (p)
			add_to(&p->iv, &p->tot, TC_REFAULT, ref);
		if (pid >= 0)
			f->adder = pid;
	} else if (type == DC_REMOVED) {
		count_refaults(t, f->k.dev, f->k.ino, index, count, true);
		if (pid >= 0) {
			enum cause c = cause_classify(pid, p ? p->comm : out_comm(pid), in_reclaim);

			f->evictor = pid;
			f->iv.cause[c] += n;
			f->tot.cause[c] += n;
			if (p) {
				p->iv.cause[c] += n;
				p->tot.cause[c] += n;
			}
		}
	}
}

/*
 * An event, or a duetd item, whose state holds every event of its pages
 * since the last fetch (DUET_ADDED | DUET_DIRTY: written): each counts,
 * in the order they happen to a page.
 */
static void count_event(struct top *t, struct top_file *f, unsigned int types, uint64_t index,
			uint64_t count, int pid, bool in_reclaim)
{
	static const unsigned int order[] = { DC_ADDED, DC_DIRTY, DC_FLUSHED, DC_REMOVED };

	t->events++;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (types & order[i])
			count_one(t, f, order[i], index, count, pid, in_reclaim);
}

/* A new interval: its counts start from 0. */
static void interval_reset(struct top *t)
{
	struct top_file *f, *ft;
	struct top_proc *p, *pt;

	HASH_ITER(hh, t->files, f, ft) {
		memset(&f->iv, 0, sizeof(f->iv));
		f->ld_tot.demand += f->ld.demand;
		f->ld_tot.readahead += f->ld.readahead;
		f->ld_tot.other += f->ld.other;
		f->ld_tot.hits += f->ld.hits;
		memset(&f->ld, 0, sizeof(f->ld));
	}
	HASH_ITER(hh, t->procs, p, pt)
		memset(&p->iv, 0, sizeof(p->iv));
}

static struct rloads *load_sink(void *ud, uint32_t dev, uint64_t ino)
{
	(void)dev;
	(void)ino;
	return &((struct top *)ud)->ld_other;
}

static void top_free(struct top *t)
{
	struct top_file *f, *ft;
	struct top_proc *p, *pt;

	loads_finish(&t->ld_state, load_sink, t);

	HASH_ITER(hh, t->files, f, ft) {
		HASH_DEL(t->files, f);
		free(f->path);
		free(f);
	}
	HASH_ITER(hh, t->procs, p, pt) {
		HASH_DEL(t->procs, p);
		free(p);
	}
	free(t->pages.s);
	out_comm_cache_free();
}

/* ---- root: this process's own event source ---- */

struct top_live {
	struct cli_paths p;
	struct dc_source *src;
	struct top_raw *raw;	/* the events read from the raw pages */
	struct top_vmscan *vm;	/* NULL: no vmscan events (no direct reclaim cause) */
	struct top_loads *ld;	/* --loads */
};

static void set_path(struct top_file *f, const char *path, bool deleted);

/* The file a load is counted for: a row of a file under the PATHs, else a sink. */
static struct rloads *load_file(void *ud, uint32_t dev, uint64_t ino)
{
	struct top *t = ud;
	struct top_live *lv = t->src;
	unsigned int fl = 0;
	const char *path = dc_index_lookup(lv->p.idx, dev, ino, &fl);
	struct top_file *f;
	bool fresh;

	if (!path)
		return &t->ld_other;
	f = file_get(t, dev, ino, 0, &fresh);
	if (!f)
		return NULL;
	if (fresh)
		set_path(f, path, fl & DC_PATH_DELETED);
	return &f->ld;
}

/* One of the raw pages' records, in time order: reclaim state, or a load. */
static int raw_apply(void *ud, const struct dc_record *r)
{
	struct top *t = ud;
	struct top_live *lv = t->src;

	if (lv->vm && top_vmscan_apply(lv->vm, r))
		return 0;
	return lv->ld ? loads_event(&t->ld_state, r, load_file, t) : 0;
}

static void set_path(struct top_file *f, const char *path, bool deleted)
{
	if (!path) {
		f->deleted = deleted;
		return;
	}
	if (!f->path || strcmp(f->path, path)) {
		free(f->path);
		f->path = strdup(path);
	}
	f->deleted = deleted;
}

static void live_refresh(struct top *t, struct top_file *f)
{
	struct top_live *lv = t->src;
	unsigned int fl = 0;
	const char *path = dc_index_lookup(lv->p.idx, f->k.dev, f->k.ino, &fl);

	set_path(f, path, path ? fl & DC_PATH_DELETED : true);
}

static int live_records(void *ud, const struct dc_record *rec, size_t n)
{
	struct top *t = ud;
	struct top_live *lv = t->src;

	for (size_t i = 0; i < n; i++) {
		const struct dc_record *r = &rec[i];
		unsigned int fl = 0;
		struct top_file *f;
		const char *path;
		bool fresh;

		if (r->type == DC_LOST) {
			t->lost += r->count ? r->count : 1;
			continue;
		}
		if (!(r->type & DC_EVENTS_ALL))
			continue;
		/* The raw pages' events up to this one first: one stream, in order. */
		if (top_raw_count(lv->raw) && top_raw_until(lv->raw, r->ts, raw_apply, t))
			return -ENOMEM;
		if (lv->ld && r->type == DC_ADDED && loads_added(&t->ld_state, r, load_file, t))
			return -ENOMEM;
		path = dc_index_lookup(lv->p.idx, r->dev, r->ino, &fl);
		if (!path)
			continue;
		f = file_get(t, r->dev, r->ino, 0, &fresh);
		if (!f)
			return -ENOMEM;
		if (fresh)
			set_path(f, path, fl & DC_PATH_DELETED);
		count_event(t, f, r->type, r->index, r->count, r->pid,
			    r->type == DC_REMOVED && lv->vm &&
				    top_vmscan_in_reclaim(lv->vm, r->pid));
	}
	return 0;
}

/* The event semantics in one short line (duet status says more). */
static const char *describe(struct dc_source *src, bool vmscan)
{
	enum dc_dirty_sem ds = dc_source_dirty_sem(src);
	enum dc_flush_sem fs = dc_source_flush_sem(src);
	static char buf[256];

	snprintf(buf, sizeof(buf), "in-process; %s; %s",
		 ds == DC_DIRTY_EXACT && fs == DC_FLUSH_EXACT ?
		 "all four events exact per folio (patched kernel)" :
		 ds == DC_DIRTY_BDI && fs == DC_FLUSH_INODE ?
		 "DIRTIED one page per writeback_dirty_folio, FLUSHES inode-level writebacks (stock kernel)" :
		 "see duet status for what DIRTIED and FLUSHED count here",
		 vmscan ? "vmscan read" : "no vmscan events: direct reclaim not told apart");
	return buf;
}

static int live_open(struct top *t, struct top_live *lv, char *const *paths, int n)
{
	struct dc_source_opts so = { .sz = sizeof(so) };
	int r = cli_paths_open(&lv->p, t->prog, paths, n);
	size_t nloads;

	if (r)
		return r;
	so.backend = DC_BACKEND_TRACEFS;
	so.devs = lv->p.devs;
	so.ndevs = lv->p.ndevs;
	so.bdis = lv->p.bdis;
	so.nbdis = lv->p.nbdis;
	so.types = DC_EVENTS_ALL;
	so.exclude_pid = getpid();
	/* Reclaim state for the direct-reclaim cause, where the kernel has vmscan. */
	if (top_raw_new((int)sysconf(_SC_NPROCESSORS_CONF), &lv->raw))
		return CLI_EXIT_FAIL;
	if (t->loads) {
		const char *missing = NULL;

		r = top_loads_new(lv->raw, &lv->ld, &missing);
		if (r) {
			if (r == -ENOENT)
				fprintf(stderr, "%s: --loads: this kernel has no usable event %s\n",
					t->prog, missing);
			else
				fprintf(stderr, "%s: --loads: %s\n", t->prog, strerror(-r));
			return CLI_EXIT_FAIL;
		}
	}
	nloads = top_raw_count(lv->raw);
	/* Reclaim state for the direct-reclaim cause, where the kernel has vmscan. */
	top_vmscan_new(lv->raw, &lv->vm);
	if (top_raw_count(lv->raw)) {
		so.extra_events = top_raw_events(lv->raw);
		so.page_fn = top_raw_page;
		so.page_ud = lv->raw;
	}
	r = dc_source_open(&so, &lv->src);
	if (r && lv->vm) {	/* without the vmscan events, then */
		top_vmscan_free(lv->vm);
		lv->vm = NULL;
		top_raw_truncate(lv->raw, nloads);
		so.extra_events = nloads ? top_raw_events(lv->raw) : NULL;
		so.page_fn = nloads ? top_raw_page : NULL;
		so.page_ud = nloads ? lv->raw : NULL;
		r = dc_source_open(&so, &lv->src);
	}
	if (r) {
		cli_say_tracing(t->prog, r, "the filemap page-cache events");
		return CLI_EXIT_FAIL;
	}
	t->describe = describe(lv->src, lv->vm != NULL);
	t->flush_inode = dc_source_flush_sem(lv->src) == DC_FLUSH_INODE;
	t->src = lv;
	t->refresh_path = live_refresh;
	r = dc_source_start(lv->src);
	if (r) {
		fprintf(stderr, "%s: cannot start tracing: %s\n", t->prog, strerror(-r));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

static void live_free(struct top_live *lv)
{
	dc_source_free(lv->src);
	top_vmscan_free(lv->vm);
	top_loads_free(lv->ld);
	top_raw_free(lv->raw);
	cli_paths_free(&lv->p);
}

/* ---- any user: duetd ---- */

#define TOP_MAX_TASKS 64

struct top_daemon {
	struct duet_session *s;
	struct duet_task *tasks[TOP_MAX_TASKS];
	size_t ntasks;
	uint64_t scan_since;	/* ms: a scan runs (registration, resync); 0: none;
				 * 1: a loss was just reported, the rescan follows */
	uint64_t scan_base;	/* the tasks' scan_files when it began */
};

static void daemon_refresh(struct top *t, struct top_file *f)
{
	struct top_daemon *d = t->src;
	struct duet_fileid id = { .ino = f->k.ino, .gen = f->k.gen, .dev = f->k.dev };
	char buf[4096];

	for (size_t i = 0; i < d->ntasks; i++)
		if (!duet_task_path(d->tasks[i], &id, buf, sizeof(buf))) {
			set_path(f, buf, false);
			return;
		}
	set_path(f, NULL, true);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t scan_files_now(struct top_daemon *d)
{
	uint64_t files = 0;

	for (size_t i = 0; i < d->ntasks; i++) {
		struct duet_task_status st = { .sz = sizeof(st) };

		if (!duet_task_status(d->tasks[i], &st))
			files += st.scan_files;
	}
	return files;
}

/* A tree with no file gives a scan of none: counting starts after this. */
#define TOP_SCAN_SETTLE_MS 1000

/*
 * Whether every task's registration scan (or the rescan after a loss) is
 * done. Its pages come as ADDED items but are no events: they are
 * dropped while a scan runs, and the header says so. duetd queues the
 * files a moment after the registration: none queued yet counts as done
 * only after TOP_SCAN_SETTLE_MS.
 */
static bool daemon_scanned(struct top *t, struct top_daemon *d)
{
	uint64_t files = 0, done = 0;

	if (!d->scan_since)
		return true;
	if (d->scan_since == 1) {	/* a loss: the rescan counts from here */
		d->scan_base = scan_files_now(d);
		d->scan_since = mono_ms();
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		struct duet_task_status st = { .sz = sizeof(st) };

		if (duet_task_status(d->tasks[i], &st))
			continue;
		files += st.scan_files;
		done += st.scan_done;
	}
	if (done >= files && (files > d->scan_base || mono_ms() - d->scan_since >= TOP_SCAN_SETTLE_MS)) {
		t->scanning[0] = '\0';
		d->scan_since = 0;
		return true;
	}
	snprintf(t->scanning, sizeof(t->scanning), "duetd scanning %" PRIu64 "/%" PRIu64
		 " files (not counted)", done, files);
	return false;
}

/* Everything the task has pending, dropped: the losses still count. */
static void daemon_discard(struct top *t, struct top_daemon *d, size_t ti)
{
	struct duet_item items[256];
	int n;

	while ((n = duet_task_fetch(d->tasks[ti], items, 256)) > 0)
		for (int i = 0; i < n; i++)
			t->lost += (items[i].flags & DUET_ITEM_LOST) != 0;
}

/*
 * While a scan runs, its items are dropped; once it is seen complete,
 * what is pending then is dropped too (the scan's last items may still
 * be queued): counting starts after that. Returns whether it counts.
 */
static bool daemon_settle(struct top *t, struct top_daemon *d)
{
	if (!d->scan_since)
		return true;
	for (size_t i = 0; i < d->ntasks; i++)
		daemon_discard(t, d, i);
	if (!daemon_scanned(t, d))
		return false;
	for (size_t i = 0; i < d->ntasks; i++)
		daemon_discard(t, d, i);
	return true;
}

static void daemon_pump(struct top *t, struct top_daemon *d, size_t ti)
{
	struct duet_item items[256];
	int n;

	if (!daemon_settle(t, d))
		return;
	while ((n = duet_task_fetch(d->tasks[ti], items, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			const struct duet_item *it = &items[i];
			struct top_file *f;
			bool fresh;

			if (it->flags & DUET_ITEM_LOST) {
				/* A resync reports the cached pages again: not events. */
				t->lost++;
				d->scan_since = 1;
				daemon_settle(t, d);
				return;
			}
			f = file_get(t, it->dev, it->ino, it->gen, &fresh);
			if (!f)
				return;
			if (fresh)
				daemon_refresh(t, f);
			count_event(t, f, it->state, it->index,
				    it->flags & DUET_ITEM_INODE_LEVEL ? 0 : it->count, -1, false);
		}
	}
}

static int daemon_open(struct top *t, struct top_daemon *d, char *const *paths, int n)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	int r;

	if (n > TOP_MAX_TASKS) {
		fprintf(stderr, "%s: at most %d PATHs through duetd\n", t->prog, TOP_MAX_TASKS);
		return CLI_EXIT_USAGE;
	}
	so.flags = DUET_SESSION_DAEMON;
	r = duet_session_new(&so, &d->s);
	if (r) {
		fprintf(stderr, "%s: cannot reach duetd: %s (as root duet top needs no daemon)\n",
			t->prog, duet_strerror(r));
		return CLI_EXIT_FAIL;
	}
	for (int i = 0; i < n; i++) {
		struct duet_task_opts to = {
			.sz = sizeof(to),
			.name = "duet top",
			.mask = DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED,
			.path = paths[i],
		};

		r = duet_task_new(d->s, &to, &d->tasks[d->ntasks]);
		if (r) {
			fprintf(stderr, "%s: %s: %s\n", t->prog, paths[i], duet_strerror(r));
			return CLI_EXIT_FAIL;
		}
		d->ntasks++;
	}
	t->via_duetd = true;
	t->flush_inode = duet_session_flush_semantics(d->s) == DUET_FLUSH_INODE;
	t->src = d;
	t->refresh_path = daemon_refresh;
	d->scan_since = mono_ms();
	daemon_scanned(t, d);
	return 0;
}

static void daemon_free(struct top_daemon *d)
{
	for (size_t i = 0; i < d->ntasks; i++)
		duet_task_free(d->tasks[i]);
	duet_session_free(d->s);
}

/* ---- the command ---- */

static const struct option top_lo[] = {
	{ "interval", required_argument, NULL, 'd' },
	{ "sort", required_argument, NULL, 's' },
	{ "cumulative", no_argument, NULL, 'c' },
	{ "iterations", required_argument, NULL, 'n' },
	{ "batch", no_argument, NULL, 'b' },
	{ "processes", no_argument, NULL, 'P' },
	{ "daemon", no_argument, NULL, 'D' },
	{ "loads", no_argument, NULL, 'L' },
	{ 0 },
};

static const struct cli_opts top_opts = {
	.usage = "usage: duet top [--interval SECONDS] [--sort KEY] [--cumulative]\n"
		 "                [-n|--iterations N] [-b|--batch] [--processes] [--daemon]\n"
		 "                [--loads]\n"
		 "                [PATH...]\n"
		 "A live view of the page cache under each PATH (default: the current\n"
		 "directory), refreshed every interval: per file the pages added, removed,\n"
		 "dirtied and flushed, refaults (pages removed, then added again while top\n"
		 "runs), the pages cached now, the last process that added and that removed\n"
		 "pages, and the main removal cause; per process the same counts.\n"
		 "  -d, --interval SECONDS  between frames (default 1)\n"
		 "  -s, --sort KEY          total (default), added, removed, dirtied, flushed,\n"
		 "                          refaults, cached or name\n"
		 "  -c, --cumulative        counts since the start, not per interval\n"
		 "  -n, --iterations N      stop after N frames\n"
		 "  -b, --batch             frames as plain text on standard output, no keys\n"
		 "  --processes             start in the process view\n"
		 "  --daemon                through duetd even as root\n"
		 "  --loads                 (root) also who loaded pages: per file DEMAND\n"
		 "                          (asked for and loaded: misses), READAHEAD (loaded,\n"
		 "                          not asked for) and HITS (asked for, cached), from\n"
		 "                          the readahead and read/fault events (frequent)\n"
		 "Keys: s next sort key, / filter by a path (comm) substring (Enter keeps\n"
		 "it, Esc clears it), space or p pause, Tab files/processes, q quit.\n"
		 "As root the events are read in-process; as another user through duetd,\n"
		 "which shows only files that user may read and no pids: then the\n"
		 "ADDED-BY, EVICTED-BY and CAUSE columns and the process view are n/a.\n",
	.shortopts = "d:s:cn:b",
	.longopts = top_lo,
};

static int top_opt(void *ud, const struct cli_arg *a)
{
	struct top *t = ud;
	int i;

	switch (a->key) {
	case 'd':
		return cli_seconds(a, 86400, &t->interval);
	case 's':
		for (i = 0; i < TS_NR; i++)
			if (!strcmp(a->value, top_sort_names[i]))
				break;
		if (i == TS_NR) {
			fprintf(stderr, "%s: --sort is total, added, removed, dirtied, flushed, refaults, cached or name (got \"%s\")\n",
				a->prog, a->value);
			return CLI_EXIT_USAGE;
		}
		t->sort = (enum top_sort)i;
		break;
	case 'c':
		t->cumulative = true;
		break;
	case 'n':
		return cli_number(a, 1, UINT32_MAX, &t->iterations);
	case 'b':
		t->batch = true;
		break;
	case 'P':
		t->processes = true;
		break;
	case 'D':
		t->daemon = true;
		break;
	case 'L':
		t->loads = true;
		break;
	}
	return 0;
}

struct top_run {
	struct top *t;
	struct top_live *lv;	/* one of the two */
	struct top_daemon *d;
	struct cmdloop loop;
	sigset_t sigs;		/* blocked, read from the loop's signalfd */
};

/* Everything the sources have now, counted. */
static void pump_all(struct top_run *rn)
{
	if (rn->lv) {
		if (dc_source_dispatch(rn->lv->src, live_records, rn->t) < 0)
			rn->t->quit = true;
		/* Reclaim changes up to what was dispatched: applied, not kept. */
		if (top_raw_count(rn->lv->raw) &&
		    top_raw_until(rn->lv->raw, dc_source_complete_to(rn->lv->src), raw_apply, rn->t))
			rn->t->quit = true;
		return;
	}
	for (size_t i = 0; i < rn->d->ntasks; i++)
		daemon_pump(rn->t, rn->d, i);
}

static void tick(struct top_run *rn)
{
	struct top *t = rn->t;

	if (rn->d)
		daemon_settle(t, rn->d);
	pump_all(rn);
	if (!t->paused || t->batch)
		top_frame(t);
	t->frames++;
	interval_reset(t);
	if (t->iterations && t->frames >= t->iterations)
		t->quit = true;
}

static int loop_open(struct top_run *rn)
{
	struct top *t = rn->t;
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec it;

	if (cmdloop_open(&rn->loop, &rn->sigs, rn->lv ? dc_source_fd(rn->lv->src) : -1,
			 rn->lv ? dc_index_fd(rn->lv->p.idx) : -1)) {
		fprintf(stderr, "%s: %s\n", t->prog, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	it.it_value.tv_sec = (time_t)t->interval;
	it.it_value.tv_nsec = (long)((t->interval - (double)(time_t)t->interval) * 1e9);
	it.it_interval = it.it_value;
	timerfd_settime(rn->loop.tfd, 0, &it, NULL);
	for (size_t i = 0; rn->d && i < rn->d->ntasks; i++) {
		ev.data.fd = duet_task_fd(rn->d->tasks[i]);
		epoll_ctl(rn->loop.efd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	}
	if (!t->batch) {
		ev.data.fd = STDIN_FILENO;
		epoll_ctl(rn->loop.efd, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
	}
	return 0;
}

static void handle_fd(struct top_run *rn, int fd, bool *repairing)
{
	struct top *t = rn->t;
	char buf[64];
	uint64_t junk;
	ssize_t n;

	if (fd == rn->loop.sfd) {
		struct signalfd_siginfo si;

		if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo == SIGWINCH) {
			if (!t->batch)
				top_frame(t);
			return;
		}
		t->quit = true;
	} else if (fd == rn->loop.tfd) {
		if (read(fd, &junk, sizeof(junk)) > 0)
			tick(rn);
	} else if (fd == STDIN_FILENO) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			t->quit = true;	/* the terminal went away */
		else if (n > 0) {
			pump_all(rn);
			top_keys(t, buf, (size_t)n);
		}
	} else if (rn->lv && fd == dc_index_fd(rn->lv->p.idx)) {
		dc_index_update(rn->lv->p.idx);
		*repairing = dc_index_repair_step(rn->lv->p.idx, 4096) > 0;
	} else if (rn->d) {
		for (size_t i = 0; i < rn->d->ntasks; i++)
			if (fd == duet_task_fd(rn->d->tasks[i]))
				daemon_pump(t, rn->d, i);
	}
}

static int top_loop(struct top_run *rn)
{
	struct top *t = rn->t;
	bool repairing = false;
	int r = loop_open(rn);

	if (r)
		return r;
	if (!t->batch) {
		r = top_term_open(t);
		if (r)
			return r;
		top_frame(t);
	}
	while (!t->quit) {
		struct epoll_event evs[8];
		int n = epoll_wait(rn->loop.efd, evs, 8, repairing ? 0 : -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n && !t->quit; i++)
			handle_fd(rn, evs[i].data.fd, &repairing);
		if (rn->lv && repairing)
			repairing = dc_index_repair_step(rn->lv->p.idx, 4096) > 0;
		if (rn->lv && !t->quit)
			pump_all(rn);
		if (ferror(stdout))
			break;
	}
	top_term_close();
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct top t = { .interval = 1, .prog = argv[0] };
	struct top_live lv = { 0 };
	struct top_daemon d = { 0 };
	struct top_run rn = { .t = &t, .loop = { .sfd = -1, .efd = -1, .tfd = -1 } };
	char *dot[] = { ".", NULL };
	char **paths;
	int r, n;

	r = cli_options(&top_opts, argc, argv, top_opt, &t);
	if (r != CLI_GO)
		return r;
	if (!t.batch && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
		fprintf(stderr, "%s: standard input and output must be a terminal (or use --batch)\n",
			t.prog);
		return CLI_EXIT_FAIL;
	}
	/*
	 * Blocked before the source starts its reader threads, which inherit
	 * the mask: else a SIGTERM could land on one and kill the process
	 * with the terminal left raw.
	 */
	sigemptyset(&rn.sigs);
	sigaddset(&rn.sigs, SIGINT);
	sigaddset(&rn.sigs, SIGTERM);
	sigaddset(&rn.sigs, SIGHUP);
	sigaddset(&rn.sigs, SIGWINCH);
	sigprocmask(SIG_BLOCK, &rn.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	paths = optind < argc ? argv + optind : dot;
	n = optind < argc ? argc - optind : 1;
	if (t.loads && (geteuid() || t.daemon)) {
		/* duetd tells no user of other users' reads: root only. */
		fprintf(stderr, "%s: --loads needs root (in-process): duetd does not tell "
			"who reads what\n", t.prog);
		r = CLI_EXIT_USAGE;
	} else if (geteuid() == 0 && !t.daemon) {
		rn.lv = &lv;
		r = live_open(&t, &lv, paths, n);
	} else {
		rn.d = &d;
		r = daemon_open(&t, &d, paths, n);
	}
	if (!r)
		r = top_loop(&rn);
	cmdloop_close(&rn.loop);
	if (rn.lv) {
		if (lv.src)
			dc_source_stop(lv.src);
		live_free(&lv);
	} else {
		daemon_free(&d);
	}
	top_free(&t);
	return r;
}
