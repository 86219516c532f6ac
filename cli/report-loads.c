// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Who put pages in the cache (report-loads.h). Per task, the pages it
 * added since its last read or fault are kept as ranges; the order of
 * the events decides whose they are:
 *  - filemap_get_pages fires at the end of a read's lookup, after the
 *    pages it loaded: the adds before it are that read's;
 *  - filemap_fault fires at the start of a fault, before its loads: the
 *    adds after it, up to the task's next read or fault, are the fault's.
 * A read's or fault's adds of the pages it asked for are demand loads
 * (misses), its other adds readahead; the pages it asked for and did not
 * add were cached (hits). Adds outside any read or fault are "other".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "report-loads.h"
#include "tdread.h"

#define RANGES 32

struct lrange {
	uint32_t dev;
	uint64_t ino, lo, hi;	/* pages [lo, hi) */
};

struct ltask {
	int pid;
	struct lrange r[RANGES];
	int n;
	bool fault;		/* a fault is open: the adds are its */
	uint32_t fdev;
	uint64_t fino, findex;
	UT_hash_handle hh;
};

struct loads {
	struct ltask *tasks;
};

static struct ltask *task_get(struct loads **l, int pid)
{
	struct ltask *t;

	if (!*l && !(*l = calloc(1, sizeof(**l))))
		return NULL;
	HASH_FIND_INT((*l)->tasks, &pid, t);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pid = pid;
	HASH_ADD_INT((*l)->tasks, pid, t);
	return t;
}

static uint64_t overlap(const struct lrange *r, uint64_t lo, uint64_t hi)
{
	uint64_t a = r->lo > lo ? r->lo : lo, b = r->hi < hi ? r->hi : hi;

	return b > a ? b - a : 0;
}

/*
 * The task's adds settle against a request of file (dev, ino) for pages
 * [lo, hi) (none: lo == hi): the pages asked for that were added are
 * demand, the file's other adds readahead, other files' adds other;
 * asked for and not added: hits.
 */
static int settle(struct ltask *t, bool req, uint32_t dev, uint64_t ino, uint64_t lo,
		  uint64_t hi, loads_file_fn fn, void *ud)
{
	uint64_t demanded = 0;

	for (int i = 0; i < t->n; i++) {
		const struct lrange *r = &t->r[i];
		struct rloads *f = fn(ud, r->dev, r->ino);
		uint64_t pages = r->hi - r->lo, o;

		if (!f)
			return -ENOMEM;
		if (!req || r->dev != dev || r->ino != ino) {
			f->other += pages;
			continue;
		}
		o = overlap(r, lo, hi);
		f->demand += o;
		f->readahead += pages - o;
		demanded += o;
	}
	t->n = 0;
	if (req) {
		struct rloads *f = fn(ud, dev, ino);

		if (!f)
			return -ENOMEM;
		/* Ranges do not overlap (a page is added once until removed). */
		f->hits += hi - lo > demanded ? hi - lo - demanded : 0;
	}
	return 0;
}

/* Settle an open fault with the adds since it. */
static int settle_fault(struct ltask *t, loads_file_fn fn, void *ud)
{
	if (!t->fault)
		return 0;
	t->fault = false;
	return settle(t, true, t->fdev, t->fino, t->findex, t->findex + 1, fn, ud);
}

int loads_added(struct loads **l, const struct dc_record *r, loads_file_fn fn, void *ud)
{
	struct ltask *t = task_get(l, r->pid);
	struct lrange *last;

	if (!t)
		return -ENOMEM;
	last = t->n ? &t->r[t->n - 1] : NULL;
	/* A readahead window comes folio by folio: one range. */
	if (last && last->dev == r->dev && last->ino == r->ino && last->hi == r->index) {
		last->hi += r->count;
		return 0;
	}
	if (t->n == RANGES) {
		/* Too scattered to keep: the oldest are settled as other. */
		struct ltask old = *t;
		int e;

		old.n = RANGES / 2;
		e = settle(&old, false, 0, 0, 0, 0, fn, ud);
		if (e)
			return e;
		memmove(t->r, t->r + RANGES / 2, sizeof(t->r[0]) * (RANGES - RANGES / 2));
		t->n = RANGES - RANGES / 2;
	}
	t->r[t->n++] = (struct lrange){ r->dev, r->ino, r->index, r->index + r->count };
	return 0;
}

int loads_event(struct loads **l, const struct dc_record *r, loads_file_fn fn, void *ud)
{
	struct ltask *t;
	struct rloads *f;
	int e;

	switch (r->reserved) {
	case DC_AUX_RA_SYNC:
	case DC_AUX_RA_ASYNC:
	case DC_AUX_RA_ORDER:
	case DC_AUX_RA_UNBOUNDED:
		f = fn(ud, r->dev, r->ino);
		if (!f)
			return -ENOMEM;
		f->ra_calls[r->reserved - DC_AUX_RA_SYNC]++;
		return 0;
	case DC_AUX_READ:
		t = task_get(l, r->pid);
		if (!t)
			return -ENOMEM;
		/* The fault before keeps what it asked for; the rest is the read's. */
		if (t->fault) {
			struct ltask ft = {
				.fault = true, .fdev = t->fdev, .fino = t->fino, .findex = t->findex,
			};
			int k = 0;

			for (int i = 0; i < t->n; i++) {
				const struct lrange *x = &t->r[i];

				if (x->dev == t->fdev && x->ino == t->fino && x->lo <= t->findex &&
				    t->findex < x->hi)
					ft.r[ft.n++] = *x;
				else
					t->r[k++] = *x;
			}
			t->n = k;
			t->fault = false;
			e = settle_fault(&ft, fn, ud);
			if (e)
				return e;
		}
		return settle(t, true, r->dev, r->ino, r->index, r->index + r->count, fn, ud);
	case DC_AUX_FAULT:
		t = task_get(l, r->pid);
		if (!t)
			return -ENOMEM;
		e = t->fault ? settle_fault(t, fn, ud) : settle(t, false, 0, 0, 0, 0, fn, ud);
		if (e)
			return e;
		t->fault = true;
		t->fdev = r->dev;
		t->fino = r->ino;
		t->findex = r->index;
		return 0;
	}
	return 0;
}

int loads_finish(struct loads **l, loads_file_fn fn, void *ud)
{
	struct ltask *t, *tmp;
	int e = 0;

	if (!*l)
		return 0;
	HASH_ITER(hh, (*l)->tasks, t, tmp) {
		if (!e)
			e = t->fault ? settle_fault(t, fn, ud) : 0;
		if (!e)
			e = settle(t, false, 0, 0, 0, 0, fn, ud);
		HASH_DEL((*l)->tasks, t);
		free(t);
	}
	free(*l);
	*l = NULL;
	return e;
}
