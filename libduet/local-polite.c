// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Cache-polite tasks (DUET_TASK_POLITE, local.h): leave the page cache as
 * the tools found it.
 *
 * "The tools" are the processes that own a polite task: in-process the
 * session's own, in duetd each client that registered one (its
 * SO_PEERCRED pid, internal.h's owner_pid). The events name a thread
 * (the kernel's common_pid); its process is read once from
 * /proc/TID/status and remembered.
 *
 * Per file, the session keeps the pages the tools brought in: added by a
 * tool's thread after its polite task registered, and not since added by
 * another process, dirtied by anyone or removed. Such a page is dropped
 * (POSIX_FADV_DONTNEED) once every task that cares whether it is cached
 * (mask EXISTS, ADDED or REMOVED; not an observer such as duetd's
 * datasets) and sees the file under its directory has marked it done, at
 * least one of them polite. A MODIFIED-only task does not hold a page
 * back: a clean page's leaving changes nothing it is told. The condition
 * is checked where either half can complete: when a done mark is set, and
 * when the ADDED event arrives (events come after the fact, often after
 * the tool already marked the range done).
 *
 * Other duet consumers. A session knows its own tasks only; another
 * in-process session (a second tool run as root) or a duetd may be about
 * to read, on the strength of an item, the very pages this one is done
 * with. While the tracing instance of another live duet process exists,
 * nothing is dropped: the pages stay marked, and once no other is left
 * (checked at most every OTHERS_NS) every file is checked again. Measured
 * (scripts/bench-piggyback, three tools in three in-process sessions):
 * dropping without this read 1.49x the data set against 1.09x without
 * the polite mode.
 *
 * What duet cannot see: a read hit (another process reading a page while
 * it is cached) makes no event, so a page the tools brought in that
 * someone else read meanwhile is dropped all the same. A page dirtied
 * between the decision and the fadvise is not dropped (the kernel keeps
 * dirty pages) but its writeback is started early.
 *
 * The fadvise's own REMOVED events are ordinary REMOVED events of done
 * pages: the done marks keep them from every task that marked them, and a
 * MODIFIED task sees no change in a clean page leaving. They are not
 * losses (no LOST), and they unmark nothing that is not gone.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <roaring/roaring.h>

#include "live.h"
#include "local.h"

/* Masks that care whether a page is cached. */
#define CACHE_MASKS (DUET_EXISTS | DUET_ADDED | DUET_REMOVED)
/* Thread ids remembered; past it the table starts again. */
#define TID_MAX 4096
/* How often the other duet consumers are looked for. */
#define OTHERS_NS 200000000ull

struct polite_file {
	struct local_ikey k;
	roaring_bitmap_t *pages;	/* the tools' pages, by index */
	UT_hash_handle hh;
};

struct polite_tid {
	int32_t tid;
	int32_t tgid;		/* 0: unknown (gone before it could be read) */
	UT_hash_handle hh;
};

struct polite_drop {
	char *path;
	uint64_t ino, index, count;
};

/* An add that cannot grow a table fails, and says so here. */
static bool polite_oom;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (polite_oom = true)

static void sweep(struct local_session *s);

static uint64_t mono_ns(void)
{
	struct timespec ts;

	/* The stream's clock: tracefs's "mono", perf's CLOCK_MONOTONIC. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void file_free(struct local_session *s, struct polite_file *pf)
{
	HASH_DEL(s->polite, pf);
	roaring_bitmap_free(pf->pages);
	free(pf);
}

static void files_clear(struct local_session *s)
{
	struct polite_file *pf, *tmp;

	HASH_ITER(hh, s->polite, pf, tmp)
		file_free(s, pf);
}

static void tids_clear(struct local_session *s)
{
	struct polite_tid *p, *tmp;

	HASH_ITER(hh, s->polite_tids, p, tmp) {
		HASH_DEL(s->polite_tids, p);
		free(p);
	}
	s->npolite_tids = 0;
}

void local_polite_task_added(struct local_session *s, struct local_task *t)
{
	if (!t->polite)
		return;
	if (!t->owner_pid)
		t->owner_pid = (int32_t)getpid();
	t->polite_since = mono_ns();
	s->npolite++;
	s->polite_slots |= UINT64_C(1) << t->slot;
	/* A thread id remembered as nobody's may be this process's now. */
	tids_clear(s);
}

void local_polite_task_gone(struct local_session *s, struct local_task *t)
{
	if (!t->polite)
		return;
	s->polite_slots &= ~(UINT64_C(1) << t->slot);
	/*
	 * The pages it brought in stay marked while another polite task
	 * lives (a second tool may still be reading them); with none left,
	 * nobody is polite and nothing is dropped.
	 */
	if (!--s->npolite) {
		files_clear(s);
		tids_clear(s);
	}
}

void local_polite_drain(struct local_session *s, struct local_task *t)
{
	uint64_t now = mono_ns(), end = now + 500000000ull;
	struct polite_drop *drops;
	bool caught_up = false;
	size_t n;

	/*
	 * Not for duetd's clients' tasks: its main thread must not wait,
	 * and their last events are still processed (see the limits).
	 */
	if (!t->polite || t->owner_pid != (int32_t)getpid())
		return;
	while (!caught_up && mono_ns() < end) {
		pthread_mutex_lock(&s->lock);
		if (!s->src || dc_source_complete_to(s->src) >= now) {
			caught_up = true;
		} else {
			dc_source_want_mark(s->src, now);
		}
		pthread_mutex_unlock(&s->lock);
		if (!caught_up)
			usleep(2000);
	}
	/* Held back for another consumer that has gone since: now or never. */
	pthread_mutex_lock(&s->lock);
	s->others_ns = 0;	/* look again now: take() sweeps */
	drops = local_polite_take(s, &n);
	pthread_mutex_unlock(&s->lock);
	local_polite_run(drops, n);
}

/* The process of thread tid, from /proc/TID/status; 0 if it is gone. */
static int32_t read_tgid(int32_t tid)
{
	char path[64], line[256];
	int32_t tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%" PRId32 "/status", tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Tgid:", 5)) {
			tgid = (int32_t)strtol(line + 5, NULL, 10);
			break;
		}
	fclose(f);
	return tgid;
}

static int32_t tgid_of(struct local_session *s, int32_t tid)
{
	struct polite_tid *p;

	HASH_FIND(hh, s->polite_tids, &tid, sizeof(tid), p);
	if (p)
		return p->tgid;
	if (s->npolite_tids >= TID_MAX)
		tids_clear(s);
	p = calloc(1, sizeof(*p));
	if (!p)
		return read_tgid(tid);
	p->tid = tid;
	p->tgid = read_tgid(tid);
	polite_oom = false;
	HASH_ADD(hh, s->polite_tids, tid, sizeof(p->tid), p);
	if (polite_oom) {
		int32_t r = p->tgid;

		free(p);
		return r;
	}
	s->npolite_tids++;
	return p->tgid;
}

/*
 * Whether r (an ADDED) was a polite task's process, after that task
 * registered, and the file lies under that task's directory.
 */
static bool by_tools(struct local_session *s, const struct dc_record *r)
{
	char path[PATH_MAX];
	int32_t tgid = -1;

	if (r->pid <= 0)
		return false;
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];

		if (!t || !t->polite || r->ts < t->polite_since)
			continue;
		/* A main thread's id is its process's; any other is looked up once. */
		if (t->owner_pid != r->pid) {
			if (tgid < 0)
				tgid = tgid_of(s, r->pid);
			if (t->owner_pid != tgid)
				continue;
		}
		dc_index_lookup(s->x, r->dev, r->ino, NULL);
		if (!dc_index_name_under(s->x, r->dev, r->ino, t->root, path, sizeof(path), NULL))
			return true;
	}
	return false;
}

static struct polite_file *file_find(struct local_session *s, uint32_t dev, uint64_t ino)
{
	struct polite_file *pf;

	LOCAL_IFIND(s->polite, dev, ino, pf);
	return pf;
}

static struct polite_file *file_get(struct local_session *s, uint32_t dev, uint64_t ino)
{
	struct polite_file *pf = file_find(s, dev, ino);

	if (pf)
		return pf;
	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return NULL;
	pf->k = local_ikey(dev, ino);
	pf->pages = roaring_bitmap_create();
	if (!pf->pages) {
		free(pf);
		return NULL;
	}
	polite_oom = false;
	HASH_ADD(hh, s->polite, k, sizeof(pf->k), pf);
	if (polite_oom) {
		roaring_bitmap_free(pf->pages);
		free(pf);
		return NULL;
	}
	return pf;
}

static void unmark(struct local_session *s, struct polite_file *pf, uint64_t lo, uint64_t hi)
{
	roaring_bitmap_remove_range(pf->pages, lo, hi);
	if (roaring_bitmap_is_empty(pf->pages))
		file_free(s, pf);
}

static void queue_drop(struct local_session *s, const char *path, uint64_t ino, uint64_t index,
		       uint64_t count)
{
	struct polite_drop *d;

	if (s->ndrops == s->drops_cap) {
		size_t cap = s->drops_cap ? s->drops_cap * 2 : 16;

		d = realloc(s->drops, cap * sizeof(*d));
		if (!d)
			return;	/* not dropped: the page stays, as without polite */
		s->drops = d;
		s->drops_cap = cap;
	}
	d = &s->drops[s->ndrops];
	d->path = strdup(path);
	if (!d->path)
		return;
	d->ino = ino;
	d->index = index;
	d->count = count;
	s->ndrops++;
	s->polite_dropped += count;
}

/* Every task in slot[] has pages [a, b) of file f done. */
static bool all_done(struct local_session *s, const int *slot, int n, const struct de_file *f,
		     uint64_t a, uint64_t b)
{
	for (int i = 0; i < n; i++) {

		if (de_done_check(s->e, slot[i], f, a, b - a) != 1)
			return false;
	}
	return true;
}

static int add_run(uint64_t (**runs)[2], size_t *n, size_t *cap, uint64_t a, uint64_t b)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		void *p = realloc(*runs, c * sizeof(**runs));

		if (!p)
			return -ENOMEM;	/* those not queued stay cached */
		*runs = p;
		*cap = c;
	}
	(*runs)[*n][0] = a;
	(*runs)[*n][1] = b;
	(*n)++;
	return 0;
}

/* Whether another duet process runs (looked for at most every OTHERS_NS). */
static bool others_present(struct local_session *s)
{
	uint64_t now = mono_ns();

	if (!s->others_ns || now - s->others_ns >= OTHERS_NS) {
		s->others_ns = now;
		s->others = dc_instances_others() > 0;
	}
	return s->others;
}

static void check_file(struct local_session *s, struct polite_file *pf, uint64_t lo,
		       uint64_t hi);

/* Drops held back for other consumers, once none is left: every file again. */
static void sweep(struct local_session *s)
{
	struct polite_file *pf, *tmp;

	if (!s->polite_held || others_present(s))
		return;
	s->polite_held = false;
	HASH_ITER(hh, s->polite, pf, tmp)
		check_file(s, pf, 0, UINT32_MAX + 1ull);
}

/*
 * The tools' pages of pf in [lo, hi) that every task caring about the
 * file's cached pages has done: queued for dropping, and unmarked (if
 * the fadvise cannot drop one, it stays, as without polite).
 */
static void check_file(struct local_session *s, struct polite_file *pf, uint64_t lo, uint64_t hi)
{
	uint32_t dev = pf->k.dev;
	uint64_t ino = pf->k.ino, (*runs)[2] = NULL;
	struct de_file f = { .dev = dev, .ino = ino };
	int slot[DE_MAX_TASKS], n = 0;
	size_t nruns = 0, cap = 0;
	roaring_uint32_iterator_t it;
	char path[PATH_MAX];
	bool polite = false;

	if (hi > UINT32_MAX + 1ull)
		hi = UINT32_MAX + 1ull;
	if (lo >= hi || !roaring_bitmap_range_cardinality(pf->pages, lo, hi))
		return;
	/*
	 * No polite task has marked any of the file done: nothing can go.
	 * The common case of an ADDED that comes while the tool still reads
	 * the file, and cheap (the lookups below cost a path each).
	 */
	if (!(de_done_tasks(s->e, dev, ino) & s->polite_slots))
		return;
	/* Another duet consumer may want them: later (see the top). */
	if (others_present(s)) {
		s->polite_held = true;
		return;
	}
	/* Pending directory changes first, as the relevance decision does. */
	dc_index_lookup(s->x, dev, ino, NULL);
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];

		if (!t || t->observer || !(t->mask & CACHE_MASKS) ||
		    !local_task_sees(s, t, dev, ino, path, sizeof(path)))
			continue;
		slot[n] = t->slot;
		n++;
		polite |= t->polite;
	}
	/* A file with no name any more goes with its pages anyway. */
	if (!polite || dc_index_name_under(s->x, dev, ino, NULL, path, sizeof(path), &f.gen))
		return;
	/*
	 * Runs of the tools' pages, each dropped whole or, where a task has
	 * not done all of it, by the parts every task has done.
	 */
	roaring_init_iterator(pf->pages, &it);
	roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)lo);
	while (it.has_value && it.current_value < hi) {
		uint64_t a = it.current_value, b = a;

		do {
			b++;
			roaring_advance_uint32_iterator(&it);
		} while (it.has_value && it.current_value == b && b < hi);
		if (all_done(s, slot, n, &f, a, b)) {
			if (add_run(&runs, &nruns, &cap, a, b))
				break;
			continue;
		}
		for (uint64_t p = a, q; p < b; p = q + 1) {
			for (q = p; q < b && all_done(s, slot, n, &f, q, q + 1); q++)
				;
			if (q > p && add_run(&runs, &nruns, &cap, p, q))
				goto out;
		}
	}
out:
	for (size_t i = 0; i < nruns; i++) {
		queue_drop(s, path, ino, runs[i][0], runs[i][1] - runs[i][0]);
		roaring_bitmap_remove_range(pf->pages, runs[i][0], runs[i][1]);
	}
	free(runs);
	if (roaring_bitmap_is_empty(pf->pages))
		file_free(s, pf);
}

void local_polite_event(struct local_session *s, const struct dc_record *r, uint64_t count)
{
	struct polite_file *pf;

	if (!s->npolite)
		return;
	switch (r->type) {
	case DC_ADDED:
		if (by_tools(s, r)) {
			pf = file_get(s, r->dev, r->ino);
			if (!pf || r->index > UINT32_MAX)
				return;
			roaring_bitmap_add_range(pf->pages, r->index,
						 r->index + count > UINT32_MAX + 1ull ?
						 UINT32_MAX + 1ull : r->index + count);
			check_file(s, pf, r->index, r->index + count);
			return;
		}
		/* Another process's page: it is not the tools' any more. */
		/* fall through */
	case DC_REMOVED:
	case DC_DIRTY:
		pf = file_find(s, r->dev, r->ino);
		if (pf)
			unmark(s, pf, r->index, r->index + count);
		return;
	case DC_INODE_NEW:
		/* Another file has the number now. */
		pf = file_find(s, r->dev, r->ino);
		if (pf)
			file_free(s, pf);
		return;
	case DC_LOST:
		/* A lost REMOVED, ADDED or DIRTY may have changed any page. */
		files_clear(s);
		return;
	}
}

void local_polite_done(struct local_session *s, const struct de_file *f, uint64_t index,
		       uint64_t count)
{
	struct polite_file *pf;

	if (!s->npolite || !(pf = file_find(s, f->dev, f->ino)))
		return;
	check_file(s, pf, count ? index : 0, count ? index + count : UINT32_MAX + 1ull);
}

struct polite_drop *local_polite_take(struct local_session *s, size_t *n)
{
	struct polite_drop *d;

	sweep(s);
	d = s->drops;

	*n = s->ndrops;
	s->drops = NULL;
	s->ndrops = s->drops_cap = 0;
	return d;
}

static int drop_cmp(const void *a, const void *b)
{
	const struct polite_drop *x = a, *y = b;
	int c;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	c = strcmp(x->path, y->path);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

void local_polite_run(struct polite_drop *d, size_t n)
{
	uint64_t (*runs)[2] = n ? malloc(n * sizeof(*runs)) : NULL;

	/*
	 * Without the session lock: the fadvise's REMOVED events come
	 * through the pump like any others. A file renamed or replaced
	 * meanwhile is not opened (ds_drop_runs checks the inode).
	 *
	 * A batch's drops come an event (a folio) or a done mark at a time:
	 * by file, and adjacent runs as one, they cost one open per file
	 * and one fadvise per run (scripts/bench-piggyback's scrub alone:
	 * 198,953 drops of 5,402 files, each its own open and fadvise).
	 */
	if (runs)
		qsort(d, n, sizeof(*d), drop_cmp);
	for (size_t i = 0, j; i < n; i = j) {
		size_t nr = 0;

		for (j = i; j < n && d[j].ino == d[i].ino && !strcmp(d[j].path, d[i].path); j++) {
			uint64_t a = d[j].index, b = d[j].index + d[j].count;

			if (!runs) {
				ds_drop_pages(d[j].path, d[j].ino, a, b - a);
				continue;
			}
			if (nr && a <= runs[nr - 1][1]) {
				if (b > runs[nr - 1][1])
					runs[nr - 1][1] = b;
				continue;
			}
			runs[nr][0] = a;
			runs[nr++][1] = b;
		}
		if (nr)
			ds_drop_runs(d[i].path, d[i].ino, (const uint64_t (*)[2])runs, nr);
		for (size_t k = i; k < j; k++)
			free(d[k].path);
	}
	free(runs);
	free(d);
}

void local_polite_free(struct local_session *s)
{
	files_clear(s);
	tids_clear(s);
	local_polite_run(s->drops, s->ndrops);
	s->drops = NULL;
	s->ndrops = 0;
}
