/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libduet engine: one shared table of pending page items for all
 * tasks, state-based cancellation, extents, done marks. Pure and
 * single-threaded: no I/O, no clock, no locks (the caller serialises).
 *
 * Model. Each page (dev, ino, index) has a current state: cached (EXISTS)
 * and dirty (MODIFIED). Events set it absolutely, in the order they are
 * given: ADDED -> cached, REMOVED -> not cached and not dirty, DIRTY ->
 * cached and dirty, FLUSHED -> clean. An inode-level FLUSHED (stock
 * kernels) cleans every page of the inode the engine believes dirty (the
 * engine keeps one shared set of dirty pages per inode for this).
 *
 * Per task, a page is "pending" from the first change after the task's
 * last fetch of it until the next fetch. While pending the engine keeps,
 * per task, the state the task last saw (its baseline: the page's state
 * just before the change that made it pending) and the events seen since.
 * A page that is not pending for any task has no entry at all: memory is
 * per pending page, not per cached page.
 *
 * At fetch, a pending page yields for the task:
 *  - event bits: the events since the last fetch that are in its mask
 *    (ADDED, REMOVED, DIRTY, FLUSHED);
 *  - EXISTS: ADDED if cached now and not in the baseline, REMOVED if the
 *    reverse, nothing if equal (cancelled);
 *  - MODIFIED: DIRTY or FLUSHED likewise.
 * A page that yields nothing is dropped (counted as cancelled). Adjacent
 * pages of one file yielding the same state and flags form one extent.
 *
 * A page without an entry has no stored state: its state just before an
 * event is what the event implies (ADDED: not cached; DIRTY: cached and
 * clean; FLUSHED: cached and dirty; REMOVED: cached, dirty if in the
 * inode's dirty set), which is exact for real streams of transitions.
 *
 * DUET_ITEM_INODE_LEVEL is set on items with FLUSHED when an inode-level
 * flush was involved: for tasks with MODIFIED, when the last change of
 * the dirty bit was an inode-level flush; for event tasks, when any
 * FLUSHED since the last fetch was inode-level. (So the flag never
 * depends on when fetches happened.)
 *
 * Page indices are 32-bit: an index or range beyond 2^32 - 1 is
 * -EOVERFLOW.
 *
 * Relevance. The first event of an inode asks the caller's relevance
 * callback which tasks want it (a task mask) and the inode's reuse guard
 * (gen); the answer is cached until de_file_invalidate(),
 * de_invalidate_all() or de_task_add() (a new task must be asked about).
 * A NULL callback means every task wants every inode. If the answer
 * carries another gen than the engine knew, the old file's pending pages,
 * done marks and dirty set are dropped. Inodes nobody wants keep no dirty
 * set. A stale answer is asked again at the inode's next event and before
 * a fetch delivers its pages; a task no longer in the answer loses the
 * file's pending pages (so revoking visibility takes effect before the
 * next item leaves, not at the next event).
 *
 * Done. A task can mark whole files or page ranges done: events for done
 * pages are not queued for that task, and marking drops what is pending.
 *
 * Done marks and their bound. A task's marks are counted as the engine
 * stores them: a file marked done as a whole is 1; a file's page ranges
 * are its pieces, maximal runs of done pages cut at 65,536-page blocks
 * (one roaring container each: a range over k blocks costs k containers
 * and counts k); a whole file minus ranges is 1 plus the pieces of the
 * pages not done it stores. The count follows every change: set, reset,
 * de_task_remove() and a file whose inode number is reused (its marks
 * go). With a bound (de_task_set_max_done()), a set or reset that would
 * take the task past it fails with -EDQUOT and changes nothing; one that
 * does not add marks always succeeds, so resetting frees room.
 */
#ifndef DUET_ENGINE_H
#define DUET_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duet/duet.h"

#define DE_MAX_TASKS 64

struct de_engine;

struct de_file {
	uint32_t dev;
	uint64_t ino;
	uint64_t gen;
};

/*
 * Which tasks (bit = slot) want this file, and its reuse guard. Called at
 * most once per inode until invalidated. Returning 0 caches "nobody".
 */
typedef uint64_t (*de_relevant_fn)(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen);

struct de_engine_opts {
	size_t sz;
	de_relevant_fn relevant;
	void *ud;
};

struct de_task_stats {
	uint64_t events;	/* page events that reached this task (after done filtering) */
	uint64_t items;		/* items delivered */
	uint64_t pages;		/* pages delivered in those items */
	uint64_t coalesced;	/* pages merged into another page's item */
	uint64_t cancelled;	/* pending pages that yielded nothing */
	uint64_t lost;		/* LOST notifications queued */
	uint64_t pending;	/* pages pending now */
	uint64_t done_marks;	/* done marks held now (counted as above) */
};

struct de_engine_stats {
	uint64_t events;	/* de_event calls' pages */
	uint64_t entries;	/* shared pending entries now */
	uint64_t inodes;	/* inodes known now */
	uint64_t bytes;		/* memory held by the engine (estimate) */
	uint64_t page_bytes;	/* per pending page (estimate) */
	uint64_t mark_bytes;	/* per done mark of a file held for nothing else */
};

int de_engine_new(const struct de_engine_opts *opts, struct de_engine **ret);
void de_engine_free(struct de_engine *e);	/* NULL: no-op */

/* Returns the slot (0..DE_MAX_TASKS-1); -EINVAL bad mask, -ENOSPC full. */
int de_task_add(struct de_engine *e, uint32_t mask);
/* Drops the task's pending items and done marks. */
int de_task_remove(struct de_engine *e, int slot);
/* Bound on the task's done marks (0: none; see "Done marks" above). */
int de_task_set_max_done(struct de_engine *e, int slot, uint64_t max);

/* ev: one of DUET_ADDED, DUET_REMOVED, DUET_DIRTY, DUET_FLUSHED. */
int de_event(struct de_engine *e, uint32_t dev, uint64_t ino, uint64_t index,
	     uint64_t count, uint32_t ev);
/* FLUSHED known only per inode: cleans the pages believed dirty. */
int de_event_inode_flushed(struct de_engine *e, uint32_t dev, uint64_t ino);

/*
 * Registration scan, for one task: pages [index, index + count) of f are
 * cached now (and dirty if dirty). The task receives them as if they had
 * just been added (and dirtied). dirty == false means "not known dirty":
 * a page the engine believes dirty stays dirty. Done pages are skipped.
 * -ESTALE if f->gen is not the gen the engine has from the relevance
 * callback.
 *
 * Other tasks are never affected. Where other tasks hold a page with a
 * state the events gave it, that state stands and the scanning task
 * joins it (a page the events say is not cached is skipped: its ADDED is
 * still to come). A state the scan gives a page nobody else holds is
 * only the scanning tasks' view: it is never another task's prior, and
 * the page's next event sets the state from the stream again. So a scan
 * taken ahead of events still queued cannot hide those events from other
 * tasks. The caller makes the scanning task itself exact by applying the
 * scan at its place in the stream (libduet/local-scan.c). Dirty pages the
 * events did not tell (a stock kernel's DIRTY has no folio size) become
 * the scanning task's knowledge only: for it an inode-level FLUSHED
 * cleans them and a REMOVED finds them dirty; other tasks never hear of
 * them.
 */
int de_scan_pages(struct de_engine *e, int slot, const struct de_file *f,
		  uint64_t index, uint64_t count, bool dirty);

/*
 * Queue a LOST item for every task in mask (delivered before other items).
 * LOSTs not yet fetched coalesce into one item (flags DUET_ITEM_LOST, all
 * other fields 0); de_task_stats().lost counts the calls.
 *
 * It also drops what was pending for those tasks: the lost events may
 * have changed those pages, and the caller rescans.
 */
int de_lost(struct de_engine *e, uint64_t task_mask);

/*
 * Up to n items for the task, in (dev, ino, index) order; items that
 * cancelled are skipped. Returns how many were written (0: none pending).
 */
int de_fetch(struct de_engine *e, int slot, struct duet_item *items, size_t n);
/* Pages pending for the task (upper bound of what a fetch may return). */
uint64_t de_pending(const struct de_engine *e, int slot);

/* Forget the cached relevance (rename, unlink, mount change). */
int de_file_invalidate(struct de_engine *e, uint32_t dev, uint64_t ino);
int de_invalidate_all(struct de_engine *e);

/*
 * count == 0: the whole file. -ESTALE if f->gen is not the gen the
 * engine knows for (dev, ino); de_done_check() then returns 0. -EDQUOT
 * (set, reset) past the task's bound on done marks.
 */
int de_done_set(struct de_engine *e, int slot, const struct de_file *f, uint64_t index,
		uint64_t count);
int de_done_reset(struct de_engine *e, int slot, const struct de_file *f, uint64_t index,
		  uint64_t count);
/*
 * 1 if every page of the range is done, 0 if not; count == 0: 1 only for
 * a whole-file mark (the engine does not know file sizes: see
 * de_done_covers()).
 */
int de_done_check(const struct de_engine *e, int slot, const struct de_file *f,
		  uint64_t index, uint64_t count);
/*
 * The whole file of npages pages (its size, known to the caller): 1 if it
 * is marked done as a whole, or if the task holds range marks on it
 * (several, adjacent or overlapping, or a whole file minus ranges) that
 * cover [0, npages); with npages 0 any mark covers it. 0 if the task
 * holds no mark on the file, or npages is past the 2^32 pages ranges
 * reach.
 */
int de_done_covers(const struct de_engine *e, int slot, const struct de_file *f,
		   uint64_t npages);
/*
 * The tasks (a bit per slot) holding any done mark on (dev, ino), of any
 * incarnation: 0 tells cheaply that no task has done any of it.
 */
uint64_t de_done_tasks(const struct de_engine *e, uint32_t dev, uint64_t ino);
/*
 * Visit the task's done marks: whole files (count == 0) and ranges. The
 * callback returns 0 to go on, non-zero to stop (returned).
 */
typedef int (*de_done_fn)(void *ud, const struct de_file *f, uint64_t index, uint64_t count);
int de_done_foreach(const struct de_engine *e, int slot, de_done_fn fn, void *ud);

int de_task_stats(const struct de_engine *e, int slot, struct de_task_stats *st);
int de_engine_stats(const struct de_engine *e, struct de_engine_stats *st);

#endif
