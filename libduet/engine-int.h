/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine's insides, shared by engine.c (events, scans, fetches,
 * relevance, tasks), engine-table.c (its two hash tables) and
 * engine-done.c (done marks). Not for anyone else: engine.h is the
 * interface. Like the engine, nothing here takes a lock: the caller of
 * engine.h serialises every call on one engine, and no state is shared
 * between engines.
 *
 * Data structures:
 *  - inodes: a uthash table keyed by (dev, ino). Each holds the cached
 *    relevance (valid while its epoch is the engine's), gen, the shared
 *    set of pages believed dirty, the set of pages that have a pending
 *    entry (for any task), which tasks list it, and per-task done marks.
 *  - entries: one open-addressing table (Robin Hood linear probing with
 *    the distance from home stored in the slot, backward-shift deletion,
 *    grown at load 3/4 and shrunk at 1/8) of pending pages keyed by
 *    (inode, index), stored inline: 32 bytes per slot, no per-entry
 *    malloc (uthash would add a 56-byte handle and a malloc per page).
 *    Runs of 4 adjacent pages share a home, so file-ordered access is
 *    mostly sequential. An entry holds the page's current state, the mask
 *    of tasks it is pending for and one byte per such task (baseline
 *    state, events since fetch, inode-level flag): inline by rank for up
 *    to 8 tasks; for more, one byte shared by all of them while their
 *    bytes are equal (the usual case: many tasks told the same events),
 *    else a separate 64-byte array indexed by slot.
 *  - tasks: a list of the inodes that may hold pending pages for the
 *    task, sorted on demand by (dev, ino) at fetch. A fetch walks each
 *    listed inode's pending set in index order and looks at the entries
 *    pending for the task; pages pending only for other tasks are
 *    skipped. This keeps one set of page indices per inode instead of
 *    one per (inode, task) (64 tasks x 100,000 inodes of roaring sets
 *    would cost gigabytes).
 *
 * The lookups the event and fetch paths make per page (entry_find(),
 * entry_td(), inode_find(), page_done()) are inline here, so that the
 * split into files costs those paths no calls.
 */
#ifndef DUET_ENGINE_INT_H
#define DUET_ENGINE_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <roaring/roaring.h>
#include <xxhash.h>

/*
 * uthash never aborts here: an allocation that fails in HASH_ADD leaves
 * the element out and calls uthash_nonfatal_oom(). The only add to the
 * inode table is eng_inode_get() (engine-table.c), which redefines that
 * macro to report the failure to its own caller.
 */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "engine.h"
#include "rset.h"	/* a task's range set of one file: struct de_rset */

#define S_CACHED	0x1u
#define S_DIRTY		0x2u

/* Per-task byte of an entry. */
#define TD_BASE		0x03u	/* baseline state */
#define TD_EV_SHIFT	2	/* events since fetch (DUET_ADDED..FLUSHED) << 2 */
#define TD_IL		0x40u	/* a FLUSHED was known only per inode */

#define E_EXT		0x1u	/* per-task bytes in t.ext, indexed by slot */
/*
 * The entry's state came from a registration scan, not from an event: it
 * is the scanning tasks' view, which other tasks never take as a prior
 * (the scan may have read the page cache ahead of events still queued;
 * see de_scan_pages()). The next event of the page sets the state from
 * the stream again and clears the flag.
 */
#define E_SCANNED	0x2u
/*
 * Every task of the entry has the same byte, t.inl[0] (more than
 * INLINE_TASKS of them, or fewer since). A change that would make them
 * differ first spreads it into an external array (entry_split()).
 */
#define E_UNI		0x4u
#define INLINE_TASKS	8

#define EV_BITS		(DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED)
#define STATE_BITS	(DUET_EXISTS | DUET_MODIFIED)

struct de_ikey {
	uint64_t ino;
	uint32_t dev;
	uint32_t zero;	/* keeps the key free of uninitialised padding */
};

struct de_inode {
	UT_hash_handle hh;
	struct de_ikey key;
	uint64_t gen;
	uint64_t relmask;	/* valid if epoch == engine epoch */
	uint64_t epoch;		/* 0: never decided */
	uint64_t listed;	/* tasks whose list holds this inode */
	uint64_t done_all;	/* tasks that marked the whole file done */
	uint64_t done_mask;	/* tasks with a range set in ranges[rank] */
	uint64_t done_inv;	/* ... holding the pages not done (whole file minus) */
	struct de_rset *ranges;
	roaring_bitmap_t *dirty;	/* pages believed dirty (from events) */
	/*
	 * Pages only scans found dirty (a large folio dirtied on a stock
	 * kernel gives one DIRTY event for its first page), and the tasks
	 * whose scans did: for them alone, an inode-level flush cleans these
	 * pages and a REMOVED finds them dirty. Other tasks were never told
	 * these pages were dirty, so they are never told they were cleaned.
	 */
	roaring_bitmap_t *sdirty;
	uint64_t sdirty_tasks;
	roaring_bitmap_t *pend;		/* pages with an entry */
	bool gen_known;
	bool retired;	/* out of the table: an earlier file's pending pages */
};

struct de_entry {
	struct de_inode *inode;	/* NULL: free slot */
	uint32_t index;
	uint8_t state;
	uint8_t flags;
	uint16_t dist;		/* from the home slot: deletion needs no rehash */
	uint64_t tasks;
	union {
		uint8_t inl[INLINE_TASKS];
		uint8_t *ext;
	} t;
};

struct de_task {
	uint32_t mask;
	bool active;
	bool lost;
	bool sorted;
	struct de_inode **list;
	size_t head, len, cap;
	struct de_task_stats st;	/* st.done_marks: sum of eng_inode_marks() */
	uint64_t max_done;		/* 0: no bound */
};

struct de_engine {
	de_relevant_fn relevant;
	void *ud;
	uint64_t active;
	uint32_t uni_mask;	/* the mask of every active task, 0 if they differ */
	uint64_t epoch;
	struct de_task tasks[DE_MAX_TASKS];
	struct de_inode *inodes;
	uint64_t ninodes;
	struct de_entry *slots;
	size_t cap, count;
	uint64_t next;		/* entries with an external array */
	uint64_t events;
};

static inline unsigned int rank(uint64_t mask, int t)
{
	return __builtin_popcountll(mask & ((UINT64_C(1) << t) - 1));
}

/* ---- the entry table (engine-table.c) ---- */

#define ENTRY_MIN_CAP	1024

/*
 * Home slot: runs of 4 adjacent pages of a file hash together and sit
 * in adjacent slots, so file-ordered events and fetches touch memory
 * sequentially (a random slot per page cost a cache and TLB miss each).
 */
static inline size_t entry_hash(const struct de_inode *inode, uint32_t index)
{
	/*
	 * The inode's address and the run number mixed by a multiply and
	 * murmur3's finaliser, inline: every event and every page a task
	 * fetches hashes once, and XXH3 was a call of about 40 instructions
	 * on 16 bytes (9% of the engine's instructions with 64 tasks).
	 */
	uint64_t x = (uint64_t)(uintptr_t)inode ^ ((uint64_t)(index >> 2) * UINT64_C(0x9e3779b97f4a7c15));

	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return (size_t)x * 4 + (index & 3);
}

static inline struct de_entry *entry_find(const struct de_engine *e,
					  const struct de_inode *inode, uint32_t index)
{
	size_t m, i;
	unsigned int d;

	if (!e->count)
		return NULL;
	m = e->cap - 1;
	/* Robin Hood: a resident nearer its home than we are ends the search. */
	for (i = entry_hash(inode, index) & m, d = 0; e->slots[i].inode && e->slots[i].dist >= d;
	     i = (i + 1) & m, d++)
		if (e->slots[i].inode == inode && e->slots[i].index == index)
			return &e->slots[i];
	return NULL;
}

/*
 * entry_find() for a walk in index order: the slot at or after *hint
 * (the last entry found, or where a deletion shifted the next one) is
 * tried first, since the pages of a run of 4 sit in adjacent slots. A
 * guess is checked by its key, so any hint is safe; *hint is set to the
 * entry's slot.
 */
static inline struct de_entry *entry_find_near(const struct de_engine *e,
					       const struct de_inode *inode, uint32_t index,
					       size_t *hint)
{
	size_t m = e->cap - 1, i = *hint & m;
	struct de_entry *en;

	if (!e->count)
		return NULL;
	for (unsigned int k = 0; k < 2; k++, i = (i + 1) & m)
		if (e->slots[i].inode == inode && e->slots[i].index == index) {
			*hint = i;
			return &e->slots[i];
		}
	en = entry_find(e, inode, index);
	if (en)
		*hint = (size_t)(en - e->slots);
	return en;
}

static inline uint8_t *entry_td(struct de_entry *en, int t)
{
	if (en->flags & E_EXT)
		return &en->t.ext[t];
	if (en->flags & E_UNI)
		return &en->t.inl[0];
	return &en->t.inl[rank(en->tasks, t)];
}

/*
 * A new entry for (inode, index) with state and no tasks, the table grown
 * first if needed; the page is added to inode->pend. -ENOMEM leaves the
 * table unchanged.
 */
int eng_entry_insert(struct de_engine *e, struct de_inode *inode, uint32_t index,
		     uint8_t state, struct de_entry **ret);
/*
 * Frees the entry; pointers into the table are invalid afterwards (shift,
 * shrink). The caller removes the page from inode->pend.
 */
void eng_entry_delete(struct de_engine *e, struct de_entry *en);
/* Frees every entry (their external arrays) and the table. */
void eng_entries_free(struct de_engine *e);

/* ---- the inode table (engine-table.c) ---- */

static inline struct de_inode *inode_find(const struct de_engine *e, uint32_t dev,
					  uint64_t ino)
{
	struct de_ikey k = { .ino = ino, .dev = dev };
	struct de_inode *inode;

	HASH_FIND(hh, e->inodes, &k, sizeof(k), inode);
	return inode;
}

/* The inode, created (undecided, no gen) if the engine has none. */
int eng_inode_get(struct de_engine *e, uint32_t dev, uint64_t ino, struct de_inode **ret);

/* ---- inodes (engine.c) ---- */

static inline bool inode_decided(const struct de_engine *e, const struct de_inode *inode)
{
	return inode->epoch == e->epoch;
}

/*
 * Drops the pending pages [lo, hi) of the inode for the tasks in tasks.
 * Entries left without tasks are freed.
 */
void eng_inode_drop(struct de_engine *e, struct de_inode *inode, uint64_t tasks, uint64_t lo,
		    uint64_t hi);
/* Frees the inode if nothing holds it (no relevance, pages, marks, dirt). */
void eng_inode_gc(struct de_engine *e, struct de_inode *inode);
/* The inode's reuse guard; another gen than the known one resets it. */
/* The inode to use for gen (another one if the old file's pages are pending). */
struct de_inode *eng_inode_set_gen(struct de_engine *e, struct de_inode *inode, uint64_t gen);

/* ---- done marks (engine-done.c) ---- */

static inline struct de_rset *inode_rset(const struct de_inode *inode, int t)
{
	if (!(inode->done_mask >> t & 1))
		return NULL;
	return &inode->ranges[rank(inode->done_mask, t)];
}

static inline roaring_bitmap_t *inode_ranges(const struct de_inode *inode, int t)
{
	struct de_rset *rs = inode_rset(inode, t);

	return rs ? rs->b : NULL;
}

static inline bool page_done(const struct de_inode *inode, int t, uint32_t p)
{
	roaring_bitmap_t *r;

	if (inode->done_all >> t & 1)
		return true;
	r = inode_ranges(inode, t);
	return r && roaring_bitmap_contains(r, p) != (inode->done_inv >> t & 1);
}

/* Forgets task t's range set of the inode (not its whole-file mark). */
void eng_inode_clear_ranges(struct de_inode *inode, int t);
/* The marks task t holds on the inode (engine.h: "Done marks and their bound"). */
uint64_t eng_inode_marks(const struct de_inode *inode, int t);
/* Task t's count of marks goes from old to new on one file. */
static inline void marks_account(struct de_engine *e, int t, uint64_t old, uint64_t new)
{
	e->tasks[t].st.done_marks = e->tasks[t].st.done_marks - old + new;
}

/* ---- argument checks ---- */

static inline int check_slot(const struct de_engine *e, int slot)
{
	if (slot < 0 || slot >= DE_MAX_TASKS || !e->tasks[slot].active)
		return -EINVAL;
	return 0;
}

static inline int check_range(uint64_t index, uint64_t count)
{
	if (index >= PAGE_LIMIT || count > PAGE_LIMIT - index)
		return -EOVERFLOW;
	return 0;
}

/* The checks every call on a file's page range starts with. */
static inline int check_args(const struct de_engine *e, int slot, const struct de_file *f,
			     uint64_t index, uint64_t count)
{
	int r = check_slot(e, slot);

	if (r < 0)
		return r;
	if (!f)
		return -EINVAL;
	return check_range(index, count);
}

#endif
