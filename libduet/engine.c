// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The libduet engine (see engine.h for the model).
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
 *    to 8 tasks, else a separate 64-byte array indexed by slot.
 *  - tasks: a list of the inodes that may hold pending pages for the
 *    task, sorted on demand by (dev, ino) at fetch. A fetch walks each
 *    listed inode's pending set in index order and looks at the entries
 *    pending for the task; pages pending only for other tasks are
 *    skipped. This keeps one set of page indices per inode instead of
 *    one per (inode, task) (64 tasks x 100,000 inodes of roaring sets
 *    would cost gigabytes).
 *
 * Page indices are 32-bit (roaring): an index >= 2^32 is -EOVERFLOW.
 *
 * Allocation failures: every allocation the engine makes itself is done
 * before the change it serves, so -ENOMEM leaves the engine consistent
 * (for a range, the pages before the failing one are applied). CRoaring
 * 0.2.66 does not report its own allocation failures.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <roaring/roaring.h>
#include <xxhash.h>

/*
 * uthash reports an allocation failure through a macro with no context:
 * per thread, since the engine is single-threaded per caller (two
 * sessions on two threads must not share it).
 */
static __thread int uthash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (uthash_oom = 1)
#include <uthash.h>

#include "engine.h"

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
#define INLINE_TASKS	8

#define EV_BITS		(DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED)
#define STATE_BITS	(DUET_EXISTS | DUET_MODIFIED)
#define PAGE_LIMIT	(UINT64_C(1) << 32)

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
};

/*
 * A task's range set of one file, and the marks it stores: its pieces,
 * maximal runs of pages cut at 65,536-page blocks (one roaring container
 * each), so a range over many blocks costs what it counts.
 */
struct de_rset {
	roaring_bitmap_t *b;
	uint64_t marks;
	uint64_t grown;		/* bytes it may have grown since compacted (bound) */
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
	struct de_task_stats st;	/* st.done_marks: sum of inode_marks() */
	uint64_t max_done;		/* 0: no bound */
};

struct de_engine {
	de_relevant_fn relevant;
	void *ud;
	uint64_t active;
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

/* ---- entry table ---- */

/*
 * Home slot: runs of 4 adjacent pages of a file hash together and sit
 * in adjacent slots, so file-ordered events and fetches touch memory
 * sequentially (a random slot per page cost a cache and TLB miss each).
 */
static inline size_t entry_hash(const struct de_inode *inode, uint32_t index)
{
	struct {
		uintptr_t p;
		uint64_t i;
	} k = { (uintptr_t)inode, index >> 2 };

	return (size_t)XXH3_64bits(&k, sizeof(k)) * 4 + (index & 3);
}

static struct de_entry *entry_find(const struct de_engine *e, const struct de_inode *inode,
				   uint32_t index)
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

#define ENTRY_MIN_CAP	1024

/*
 * Large tables are mapped directly and marked for transparent huge pages:
 * lookups are random accesses, and with 4 KiB pages each one also missed
 * the TLB.
 */
#define TABLE_MMAP	(UINT64_C(2) << 20)

static struct de_entry *table_alloc(size_t cap)
{
	size_t bytes = cap * sizeof(struct de_entry);
	void *p;

	if (bytes < TABLE_MMAP)
		return calloc(cap, sizeof(struct de_entry));
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void table_free(struct de_entry *t, size_t cap)
{
	size_t bytes = cap * sizeof(struct de_entry);

	if (bytes < TABLE_MMAP)
		free(t);
	else if (t)
		munmap(t, bytes);
}

/*
 * Robin Hood insertion: en takes the slot of the first resident nearer
 * its home than en is, and the run up to the next free slot moves one
 * slot on (each of its entries one further from home). False, with the
 * table unchanged, if a distance would not fit in 16 bits.
 */
static bool table_place(struct de_entry *t, size_t cap, const struct de_entry *en)
{
	size_t m = cap - 1, i = entry_hash(en->inode, en->index) & m, j, k;
	unsigned int d;

	for (d = 0; t[i].inode && t[i].dist >= d; i = (i + 1) & m)
		if (++d == UINT16_MAX)
			return false;
	for (j = i; t[j].inode; j = (j + 1) & m)
		if (t[j].dist >= UINT16_MAX - 1)
			return false;
	for (k = j; k != i; k = (k - 1) & m) {
		t[k] = t[(k - 1) & m];
		t[k].dist++;
	}
	t[i] = *en;
	t[i].dist = d;
	return true;
}

static int entry_resize(struct de_engine *e, size_t cap)
{
	struct de_entry *old = e->slots, *n;
	size_t oldcap = e->cap, i;

	n = table_alloc(cap);
	if (!n)
		return -ENOMEM;
	for (i = 0; i < oldcap; i++) {
		if (old[i].inode && !table_place(n, cap, &old[i])) {
			table_free(n, cap);
			return -ENOMEM;
		}
	}
	table_free(old, oldcap);
	e->slots = n;
	e->cap = cap;
	return 0;
}

/* Room for one more entry: load factor at most 3/4. */
static int entry_reserve(struct de_engine *e)
{
	if ((e->count + 1) * 4 <= e->cap * 3)
		return 0;
	return entry_resize(e, e->cap ? e->cap * 2 : ENTRY_MIN_CAP);
}

/* After entry_reserve(); the entry has no tasks yet. */
static int entry_insert(struct de_engine *e, struct de_inode *inode, uint32_t index,
			uint8_t state, struct de_entry **ret)
{
	struct de_entry en = { .inode = inode, .index = index, .state = state };
	int r;

	/* A probe run of 65,535 slots: grow rather than overflow dist. */
	while (!table_place(e->slots, e->cap, &en)) {
		r = entry_resize(e, e->cap * 2);
		if (r < 0)
			return r;
	}
	e->count++;
	if (!inode->pend)
		inode->pend = roaring_bitmap_create();
	roaring_bitmap_add(inode->pend, index);
	*ret = entry_find(e, inode, index);
	return 0;
}

/*
 * Frees the entry; pointers into the table are invalid afterwards (shift,
 * shrink). The caller removes the page from inode->pend (see struct runs).
 */
static void entry_delete(struct de_engine *e, struct de_entry *en)
{
	size_t m = e->cap - 1, i = en - e->slots, j;

	if (en->flags & E_EXT) {
		free(en->t.ext);
		e->next--;
	}
	/* Backward shift: the run after the hole moves one slot nearer home. */
	for (;;) {
		j = (i + 1) & m;
		if (!e->slots[j].inode || !e->slots[j].dist)
			break;
		e->slots[i] = e->slots[j];
		e->slots[i].dist--;
		i = j;
	}
	e->slots[i].inode = NULL;
	e->count--;
	/* Give memory back once drained (load 1/8 -> 1/4); best effort. */
	if (e->cap > ENTRY_MIN_CAP && e->count * 8 < e->cap)
		entry_resize(e, e->cap / 2);
}

static inline uint8_t *entry_td(struct de_entry *en, int t)
{
	if (en->flags & E_EXT)
		return &en->t.ext[t];
	return &en->t.inl[rank(en->tasks, t)];
}

/* Whether adding tasks "add" needs an external array first. */
static inline bool entry_needs_ext(const struct de_entry *en, uint64_t tasks, uint64_t add)
{
	if (en && (en->flags & E_EXT))
		return false;
	return __builtin_popcountll(tasks | add) > INLINE_TASKS;
}

/*
 * Adds the tasks of add (not yet in en->tasks) with per-task byte td[t].
 * ext: a 64-byte array allocated beforehand if entry_needs_ext(), else NULL.
 */
static void entry_add_tasks(struct de_engine *e, struct de_entry *en, uint64_t add,
			    const uint8_t *td, uint8_t *ext)
{
	uint64_t all = en->tasks | add, m;
	uint8_t tmp[INLINE_TASKS];
	unsigned int j = 0;
	int t;

	if (ext) {
		for (m = en->tasks; m; m &= m - 1) {
			t = __builtin_ctzll(m);
			ext[t] = en->t.inl[j++];
		}
		en->t.ext = ext;
		en->flags |= E_EXT;
		e->next++;
	}
	if (en->flags & E_EXT) {
		for (m = add; m; m &= m - 1) {
			t = __builtin_ctzll(m);
			en->t.ext[t] = td[t];
		}
	} else {
		for (m = all; m; m &= m - 1) {
			t = __builtin_ctzll(m);
			tmp[rank(all, t)] = (add >> t & 1) ? td[t] : en->t.inl[rank(en->tasks, t)];
		}
		memcpy(en->t.inl, tmp, sizeof(tmp));
	}
	en->tasks = all;
	for (m = add; m; m &= m - 1)
		e->tasks[__builtin_ctzll(m)].st.pending++;
}

/*
 * Removes task t; frees the entry when no task is left (returns true: the
 * caller must then remove the page from inode->pend).
 */
static bool entry_drop_task(struct de_engine *e, struct de_entry *en, int t)
{
	uint64_t bit = UINT64_C(1) << t;
	unsigned int r;

	if (!(en->flags & E_EXT)) {
		r = rank(en->tasks, t);
		memmove(&en->t.inl[r], &en->t.inl[r + 1], INLINE_TASKS - r - 1);
	}
	en->tasks &= ~bit;
	e->tasks[t].st.pending--;
	if (en->tasks)
		return false;
	entry_delete(e, en);
	return true;
}

/* ---- inodes ---- */

static struct de_inode *inode_find(const struct de_engine *e, uint32_t dev, uint64_t ino)
{
	struct de_ikey k = { .ino = ino, .dev = dev };
	struct de_inode *inode;

	HASH_FIND(hh, e->inodes, &k, sizeof(k), inode);
	return inode;
}

static int inode_get(struct de_engine *e, uint32_t dev, uint64_t ino, struct de_inode **ret)
{
	struct de_inode *inode = inode_find(e, dev, ino);

	if (!inode) {
		inode = calloc(1, sizeof(*inode));
		if (!inode)
			return -ENOMEM;
		inode->key.ino = ino;
		inode->key.dev = dev;
		uthash_oom = 0;
		HASH_ADD(hh, e->inodes, key, sizeof(inode->key), inode);
		if (uthash_oom) {
			free(inode);
			return -ENOMEM;
		}
		e->ninodes++;
	}
	*ret = inode;
	return 0;
}

static bool inode_decided(const struct de_engine *e, const struct de_inode *inode)
{
	return inode->epoch == e->epoch;
}

static struct de_rset *inode_rset(const struct de_inode *inode, int t)
{
	if (!(inode->done_mask >> t & 1))
		return NULL;
	return &inode->ranges[rank(inode->done_mask, t)];
}

static roaring_bitmap_t *inode_ranges(const struct de_inode *inode, int t)
{
	struct de_rset *rs = inode_rset(inode, t);

	return rs ? rs->b : NULL;
}

static bool page_done(const struct de_inode *inode, int t, uint32_t p)
{
	roaring_bitmap_t *r;

	if (inode->done_all >> t & 1)
		return true;
	r = inode_ranges(inode, t);
	return r && roaring_bitmap_contains(r, p) != (inode->done_inv >> t & 1);
}

static void inode_clear_ranges(struct de_inode *inode, int t)
{
	unsigned int r, n;

	if (!(inode->done_mask >> t & 1))
		return;
	r = rank(inode->done_mask, t);
	n = __builtin_popcountll(inode->done_mask);
	roaring_bitmap_free(inode->ranges[r].b);
	memmove(&inode->ranges[r], &inode->ranges[r + 1], (n - r - 1) * sizeof(*inode->ranges));
	inode->done_mask &= ~(UINT64_C(1) << t);
	inode->done_inv &= ~(UINT64_C(1) << t);
	if (!inode->done_mask) {
		free(inode->ranges);
		inode->ranges = NULL;
	}
}

/* The range set of task t, created empty if needed. */
static int inode_ranges_get(struct de_inode *inode, int t, struct de_rset **ret)
{
	unsigned int r, n = __builtin_popcountll(inode->done_mask);
	struct de_rset *a;
	roaring_bitmap_t *b;

	if (inode->done_mask >> t & 1) {
		*ret = &inode->ranges[rank(inode->done_mask, t)];
		return 0;
	}
	b = roaring_bitmap_create();
	if (!b)
		return -ENOMEM;
	a = realloc(inode->ranges, (n + 1) * sizeof(*a));
	if (!a) {
		roaring_bitmap_free(b);
		return -ENOMEM;
	}
	r = rank(inode->done_mask, t);
	memmove(&a[r + 1], &a[r], (n - r) * sizeof(*a));
	a[r].b = b;
	a[r].marks = 0;
	a[r].grown = 0;
	inode->ranges = a;
	inode->done_mask |= UINT64_C(1) << t;
	*ret = &a[r];
	return 0;
}

/* ---- counting done marks (engine.h: "Done marks and their bound") ---- */

#define BLOCK_SHIFT	16	/* a roaring container: 65,536 pages */

/* The marks task t holds on the inode. */
static uint64_t inode_marks(const struct de_inode *inode, int t)
{
	const struct de_rset *rs = inode_rset(inode, t);

	if (inode->done_all >> t & 1)
		return 1;
	if (!rs)
		return 0;
	/* Whole file minus ranges: the file's mark, and the gaps stored. */
	return rs->marks + (inode->done_inv >> t & 1);
}

/*
 * Whether b holds every page of [a, z). CRoaring 0.2.66's
 * roaring_bitmap_contains_range() is wrong for a range over several
 * blocks whose last block has no container (it looks at the next
 * container, and asserts when there is none): asked block by block, it
 * takes its one-container path only.
 */
static bool range_all(const roaring_bitmap_t *b, uint64_t a, uint64_t z)
{
	while (a < z) {
		uint64_t end = (a | ((UINT64_C(1) << BLOCK_SHIFT) - 1)) + 1;

		if (end > z)
			end = z;
		if (!roaring_bitmap_contains_range(b, a, end))
			return false;
		a = end;
	}
	return true;
}

/* The last page at most lim of the run of b that holds v (v is in b). */
static uint64_t run_end(const roaring_bitmap_t *b, uint64_t v, uint64_t lim)
{
	uint64_t in = v, out, step = 1;

	/* Galloping, then bisection: O(log length) range checks. */
	for (;;) {
		out = v + step > lim ? lim : v + step;
		if (!range_all(b, v, out + 1))
			break;
		in = out;
		if (out == lim)
			return lim;
		step *= 2;
	}
	while (out - in > 1) {
		uint64_t mid = in + (out - in) / 2;

		if (range_all(b, v, mid + 1))
			in = mid;
		else
			out = mid;
	}
	return in;
}

/*
 * The pieces of b (runs cut at block boundaries) that meet [lo, hi]. A
 * whole block is one check; a piece costs O(log length), and the pieces
 * inside an operation's range are the ones it merges or removes, so the
 * count is paid for by the marks that made them.
 */
static uint64_t pieces_in(const roaring_bitmap_t *b, uint64_t lo, uint64_t hi)
{
	roaring_uint32_iterator_t it;
	uint64_t n = 0, x = lo;

	if (!b)
		return 0;
	roaring_init_iterator(b, &it);
	while (x <= hi) {
		uint64_t v, blk_end;

		if (!roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)x))
			break;
		v = it.current_value;
		if (v > hi)
			break;
		n++;
		blk_end = v | ((UINT64_C(1) << BLOCK_SHIFT) - 1);
		if (!(v & ((UINT64_C(1) << BLOCK_SHIFT) - 1)) && blk_end <= hi &&
		    range_all(b, v, blk_end + 1))
			x = blk_end + 1;
		else
			x = run_end(b, v, blk_end < hi ? blk_end : hi) + 1;
	}
	return n;
}

/*
 * The window an operation on pages [a, z) can change the pieces of: the
 * range and the page on each side (a piece there may merge or split).
 */
static void op_window(uint64_t a, uint64_t z, uint64_t *lo, uint64_t *hi)
{
	*lo = a ? a - 1 : 0;
	*hi = z < PAGE_LIMIT ? z : PAGE_LIMIT - 1;
}

/*
 * The pieces b will hold once [a, z) is added (add) or removed, computed
 * before the change: only the window changes. Added, the window is one
 * run (with the neighbours b holds), one piece per block it spans;
 * removed, what is left of the window is its two edge pages, if b holds
 * them.
 */
static uint64_t pieces_after(const roaring_bitmap_t *b, uint64_t pieces, bool add, uint64_t a,
			     uint64_t z)
{
	uint64_t lo, hi, first, last, before;
	bool left, right;

	op_window(a, z, &lo, &hi);
	before = pieces_in(b, lo, hi);
	left = a && b && roaring_bitmap_contains(b, (uint32_t)(a - 1));
	right = z < PAGE_LIMIT && b && roaring_bitmap_contains(b, (uint32_t)z);
	if (!add)
		return pieces - before + left + right;
	first = left ? a - 1 : a;
	last = right ? z : z - 1;
	return pieces - before + (last >> BLOCK_SHIFT) - (first >> BLOCK_SHIFT) + 1;
}

/*
 * Memory per mark. CRoaring keeps a block in an array (2 bytes a page) or
 * a bitmap (8 KiB) as its values first came: marks of 1 or 2 pages, then
 * a long range into the same block, cost 4 KiB for 2 marks, and 65,536
 * marks 256 MiB. After each range operation the set's possible growth
 * is added up (interior blocks become run containers: a few bytes; an
 * edge block at most 2 bytes a page, 8 KiB); past 64 bytes per mark the
 * set is compacted (runs where smaller, buffers to size). Compacting
 * costs the set's size, and comes only after it has grown by 64 bytes a
 * mark since the last time, so it is paid for by the growth, and a set
 * never holds more than about 64 bytes a mark above its compact form.
 */
#define COMPACT_PER_MARK	64
#define COMPACT_MIN		256

/* What an edge block of an operation may cost: nothing if it is whole. */
static uint64_t edge_growth(uint64_t pages)
{
	if (pages == UINT64_C(1) << BLOCK_SHIFT)
		return 0;
	return 2 * pages < 8192 ? 2 * pages : 8192;
}

static uint64_t op_growth(bool add, uint64_t a, uint64_t z)
{
	uint64_t first = a >> BLOCK_SHIFT, last = (z - 1) >> BLOCK_SHIFT;
	uint64_t g = 16 * (last - first + 1);

	if (!add)
		return 2 * 16;	/* a run split, or a container converted, per edge */
	if (first == last)
		return g + edge_growth(z - a);
	return g + edge_growth(((first + 1) << BLOCK_SHIFT) - a) +
	       edge_growth(z - (last << BLOCK_SHIFT));
}

static void rset_grew(struct de_rset *rs, bool add, uint64_t a, uint64_t z)
{
	uint64_t g = op_growth(add, a, z);

	rs->grown += g;
	if (rs->grown <= COMPACT_PER_MARK * rs->marks + COMPACT_MIN)
		return;
	roaring_bitmap_run_optimize(rs->b);
	roaring_bitmap_shrink_to_fit(rs->b);
	rs->grown = 0;
}

/* 0 if task t may go from old to new marks on one file, else -EDQUOT. */
static int marks_fit(const struct de_engine *e, int t, uint64_t old, uint64_t new)
{
	const struct de_task *task = &e->tasks[t];

	if (new > old && task->max_done && task->st.done_marks - old + new > task->max_done)
		return -EDQUOT;
	return 0;
}

static void marks_account(struct de_engine *e, int t, uint64_t old, uint64_t new)
{
	e->tasks[t].st.done_marks = e->tasks[t].st.done_marks - old + new;
}

/*
 * Pages whose entry was freed while walking inode->pend with an iterator:
 * removing them at once would invalidate the iterator, so they are
 * gathered as runs and removed in bulk (once per inode in the usual case,
 * where a whole file is fetched).
 */
#define RUNS 32

struct runs {
	unsigned int n;
	uint64_t lo[RUNS], hi[RUNS];
};

/* Returns true when full: flush, then seek the iterator past p. */
static bool runs_add(struct runs *r, uint32_t p)
{
	if (r->n && r->hi[r->n - 1] == p) {
		r->hi[r->n - 1]++;
		return false;
	}
	r->lo[r->n] = p;
	r->hi[r->n] = (uint64_t)p + 1;
	return ++r->n == RUNS;
}

static void runs_flush(struct runs *r, roaring_bitmap_t *b)
{
	unsigned int i;

	for (i = 0; i < r->n; i++)
		roaring_bitmap_remove_range(b, r->lo[i], r->hi[i]);
	r->n = 0;
}

/* After runs_flush(): the iterator continues after p; false at the end. */
static bool runs_seek(roaring_uint32_iterator_t *it, const roaring_bitmap_t *b, uint32_t p)
{
	if (p == UINT32_MAX)
		return false;
	roaring_init_iterator(b, it);
	return roaring_move_uint32_iterator_equalorlarger(it, p + 1);
}

/*
 * Drops the pending pages [lo, hi) of the inode for the tasks in tasks.
 * Entries left without tasks are freed.
 */
static void inode_drop(struct de_engine *e, struct de_inode *inode, uint64_t tasks, uint64_t lo,
		       uint64_t hi)
{
	roaring_uint32_iterator_t it;
	struct runs runs = { 0 };
	struct de_entry *en;
	uint64_t m;
	uint32_t p;
	bool freed;

	if (!inode->pend || lo >= hi)
		return;
	roaring_init_iterator(inode->pend, &it);
	if (!roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)lo))
		return;
	while (it.has_value && it.current_value < hi) {
		p = it.current_value;
		en = entry_find(e, inode, p);
		freed = false;
		for (m = en->tasks & tasks; m && !freed; m &= m - 1)
			freed = entry_drop_task(e, en, __builtin_ctzll(m));
		if (freed && runs_add(&runs, p)) {
			runs_flush(&runs, inode->pend);
			if (!runs_seek(&it, inode->pend, p))
				break;
			continue;
		}
		roaring_advance_uint32_iterator(&it);
	}
	runs_flush(&runs, inode->pend);
}

static bool inode_unused(const struct de_engine *e, const struct de_inode *inode)
{
	return !inode_decided(e, inode) && !inode->listed && !inode->done_all &&
	       !inode->done_mask && (!inode->pend || roaring_bitmap_is_empty(inode->pend)) &&
	       (!inode->dirty || roaring_bitmap_is_empty(inode->dirty)) &&
	       (!inode->sdirty || roaring_bitmap_is_empty(inode->sdirty));
}

static void inode_free(struct de_engine *e, struct de_inode *inode)
{
	while (inode->done_mask)
		inode_clear_ranges(inode, __builtin_ctzll(inode->done_mask));
	if (inode->pend)
		roaring_bitmap_free(inode->pend);
	if (inode->dirty)
		roaring_bitmap_free(inode->dirty);
	if (inode->sdirty)
		roaring_bitmap_free(inode->sdirty);
	HASH_DEL(e->inodes, inode);
	e->ninodes--;
	free(inode);
}

static void inode_gc(struct de_engine *e, struct de_inode *inode)
{
	if (inode_unused(e, inode))
		inode_free(e, inode);
}

/*
 * Another file now has this (dev, ino): its pending pages, done marks
 * and dirty set belonged to the old one.
 */
static void inode_reset(struct de_engine *e, struct de_inode *inode)
{
	uint64_t m;

	inode_drop(e, inode, ~UINT64_C(0), 0, PAGE_LIMIT);
	for (m = (inode->done_all | inode->done_mask) & e->active; m; m &= m - 1) {
		int t = __builtin_ctzll(m);

		marks_account(e, t, inode_marks(inode, t), 0);
	}
	while (inode->done_mask)
		inode_clear_ranges(inode, __builtin_ctzll(inode->done_mask));
	inode->done_all = 0;
	if (inode->dirty)
		roaring_bitmap_clear(inode->dirty);
	if (inode->sdirty)
		roaring_bitmap_clear(inode->sdirty);
	inode->sdirty_tasks = 0;
}

static void inode_set_gen(struct de_engine *e, struct de_inode *inode, uint64_t gen)
{
	if (inode->gen_known && inode->gen != gen)
		inode_reset(e, inode);
	inode->gen = gen;
	inode->gen_known = true;
}

/*
 * Asks the caller which tasks want the inode, if the cached answer is
 * stale. A task that no longer wants it (renamed away, no longer visible
 * to it) loses what was pending for it: nothing more of the file leaves
 * for that task, not even what was queued before.
 */
static void inode_decide(struct de_engine *e, struct de_inode *inode)
{
	uint64_t gen = 0;

	if (inode_decided(e, inode))
		return;
	if (e->relevant)
		inode->relmask = e->relevant(e->ud, inode->key.dev, inode->key.ino, &gen);
	else
		inode->relmask = ~UINT64_C(0);
	inode_set_gen(e, inode, gen);
	inode->epoch = e->epoch;
	if (inode->listed & ~inode->relmask)
		inode_drop(e, inode, inode->listed & ~inode->relmask, 0, PAGE_LIMIT);
}

/* Finds or creates the inode and decides its relevance. */
static int inode_relevant(struct de_engine *e, uint32_t dev, uint64_t ino,
			  struct de_inode **ret)
{
	struct de_inode *inode;
	int r;

	r = inode_get(e, dev, ino, &inode);
	if (r < 0)
		return r;
	inode_decide(e, inode);
	*ret = inode;
	return 0;
}

/* ---- tasks ---- */

static bool mask_valid(uint32_t mask)
{
	if (!mask || (mask & ~(EV_BITS | STATE_BITS)))
		return false;
	if ((mask & DUET_EXISTS) && (mask & (DUET_ADDED | DUET_REMOVED)))
		return false;
	if ((mask & DUET_MODIFIED) && (mask & (DUET_DIRTY | DUET_FLUSHED)))
		return false;
	return true;
}

static int list_reserve(struct de_task *task)
{
	struct de_inode **l;
	size_t cap;

	if (task->len < task->cap)
		return 0;
	if (task->head) {
		memmove(task->list, task->list + task->head,
			(task->len - task->head) * sizeof(*l));
		task->len -= task->head;
		task->head = 0;
		return 0;
	}
	cap = task->cap ? task->cap * 2 : 64;
	l = realloc(task->list, cap * sizeof(*l));
	if (!l)
		return -ENOMEM;
	task->list = l;
	task->cap = cap;
	return 0;
}

static int inode_cmp(const void *a, const void *b)
{
	const struct de_inode *x = *(struct de_inode *const *)a;
	const struct de_inode *y = *(struct de_inode *const *)b;

	if (x->key.dev != y->key.dev)
		return x->key.dev < y->key.dev ? -1 : 1;
	if (x->key.ino != y->key.ino)
		return x->key.ino < y->key.ino ? -1 : 1;
	return 0;
}

/* After list_reserve(). */
static void list_add(struct de_task *task, int t, struct de_inode *inode)
{
	if (inode->listed >> t & 1)
		return;
	if (task->len > task->head && inode_cmp(&task->list[task->len - 1], &inode) > 0)
		task->sorted = false;
	task->list[task->len++] = inode;
	inode->listed |= UINT64_C(1) << t;
}

static int check_slot(const struct de_engine *e, int slot)
{
	if (slot < 0 || slot >= DE_MAX_TASKS || !e->tasks[slot].active)
		return -EINVAL;
	return 0;
}

static int check_range(uint64_t index, uint64_t count)
{
	if (index >= PAGE_LIMIT || count > PAGE_LIMIT - index)
		return -EOVERFLOW;
	return 0;
}

/* ---- page changes ---- */

static unsigned int state_apply(unsigned int s, uint32_t ev)
{
	switch (ev) {
	case DUET_ADDED:
		return s | S_CACHED;
	case DUET_REMOVED:
		return 0;
	case DUET_DIRTY:
		return S_CACHED | S_DIRTY;
	default:
		return s & ~S_DIRTY;
	}
}

/*
 * The state of a page without an entry, just before ev. Events are
 * transitions, so each one tells the bit it concerns; the dirty bit of a
 * removed page comes from the inode's dirty set.
 */
static unsigned int state_before(const struct de_inode *inode, uint32_t p, uint32_t ev)
{
	switch (ev) {
	case DUET_ADDED:
		return 0;
	case DUET_REMOVED:
		return S_CACHED |
		       (inode->dirty && roaring_bitmap_contains(inode->dirty, p) ? S_DIRTY : 0);
	case DUET_DIRTY:
		return S_CACHED;
	default:
		return S_CACHED | S_DIRTY;
	}
}

/* What a pending page yields for a task with mask m and byte td. */
static uint32_t yield(uint32_t m, unsigned int td, unsigned int now, uint32_t *flags)
{
	unsigned int base = td & TD_BASE;
	uint32_t y = (td >> TD_EV_SHIFT) & m & EV_BITS;

	if (m & DUET_EXISTS) {
		if ((now & S_CACHED) && !(base & S_CACHED))
			y |= DUET_ADDED;
		else if (!(now & S_CACHED) && (base & S_CACHED))
			y |= DUET_REMOVED;
	}
	if (m & DUET_MODIFIED) {
		if ((now & S_DIRTY) && !(base & S_DIRTY))
			y |= DUET_DIRTY;
		else if (!(now & S_DIRTY) && (base & S_DIRTY))
			y |= DUET_FLUSHED;
	}
	*flags = (td & TD_IL) && (y & DUET_FLUSHED) ? DUET_ITEM_INODE_LEVEL : 0;
	return y;
}

/* Whether a change prior -> now by ev starts a pending page for mask m. */
static bool starts(uint32_t m, unsigned int prior, unsigned int now, uint32_t ev)
{
	if (ev & m)
		return true;
	if ((m & DUET_EXISTS) && ((prior ^ now) & S_CACHED))
		return true;
	return (m & DUET_MODIFIED) && ((prior ^ now) & S_DIRTY);
}

/*
 * Makes tasks "add" pending on page p with bytes td[], creating the entry
 * (state now) if en is NULL. All allocations come first.
 */
static int page_queue(struct de_engine *e, struct de_inode *inode, uint32_t p,
		      struct de_entry *en, unsigned int now, uint64_t add, const uint8_t *td)
{
	uint8_t *ext = NULL;
	uint64_t m;
	int r;

	for (m = add & ~inode->listed; m; m &= m - 1) {
		r = list_reserve(&e->tasks[__builtin_ctzll(m)]);
		if (r < 0)
			return r;
	}
	if (entry_needs_ext(en, en ? en->tasks : 0, add)) {
		ext = calloc(DE_MAX_TASKS, 1);
		if (!ext)
			return -ENOMEM;
	}
	if (!en) {
		r = entry_reserve(e);
		if (r == 0)
			r = entry_insert(e, inode, p, now, &en);
		if (r < 0) {
			free(ext);
			return r;
		}
	}
	en->state = now;
	entry_add_tasks(e, en, add, td, ext);
	for (m = add; m; m &= m - 1) {
		int t = __builtin_ctzll(m);

		list_add(&e->tasks[t], t, inode);
	}
	return 0;
}

/* One page event for the tasks in want (relevant and active). */
static int page_event(struct de_engine *e, struct de_inode *inode, uint32_t p, uint32_t ev,
		      bool il, uint64_t want)
{
	struct de_entry *en = entry_find(e, inode, p);
	unsigned int prior, now;
	uint8_t td[DE_MAX_TASKS];
	uint64_t add = 0, m, sd;
	int t;

	/*
	 * The prior of tasks that start now comes from the stream: a state a
	 * scan put there is only the scanning tasks' view.
	 */
	prior = en && !(en->flags & E_SCANNED) ? en->state : state_before(inode, p, ev);
	now = state_apply(prior, ev);
	sd = inode->sdirty && (want & inode->sdirty_tasks) && (prior & S_CACHED) &&
	     roaring_bitmap_contains(inode->sdirty, p) ? inode->sdirty_tasks : 0;
	for (m = want; m; m &= m - 1) {
		struct de_task *task;
		/* The tasks whose scans found the page dirty knew it was. */
		unsigned int pt = sd >> __builtin_ctzll(m) & 1 ? prior | S_DIRTY : prior;

		t = __builtin_ctzll(m);
		task = &e->tasks[t];
		if ((inode->done_all | inode->done_mask) >> t & 1 && page_done(inode, t, p))
			continue;
		task->st.events++;
		if (en && (en->tasks >> t & 1)) {
			uint8_t *b = entry_td(en, t);

			*b |= (ev & task->mask) << TD_EV_SHIFT;
			/*
			 * State tasks: the flag follows the last change of the
			 * dirty bit, so it does not depend on when fetches
			 * happened. Event tasks: any inode-level FLUSHED.
			 */
			if (il)
				*b |= TD_IL;
			else if ((task->mask & DUET_MODIFIED) && ((pt ^ now) & S_DIRTY))
				*b &= ~TD_IL;
			continue;
		}
		if (!starts(task->mask, pt, now, ev))
			continue;
		td[t] = pt | (ev & task->mask) << TD_EV_SHIFT | (il ? TD_IL : 0);
		add |= UINT64_C(1) << t;
	}
	if (add) {
		/* A new entry starts without E_SCANNED; en stays valid. */
		int r = page_queue(e, inode, p, en, now, add, td);

		if (r < 0)
			return r;
	} else if (en) {
		en->state = now;
	}
	if (en)
		en->flags &= ~E_SCANNED;
	return 0;
}

/* ---- public API ---- */

int de_engine_new(const struct de_engine_opts *opts, struct de_engine **ret)
{
	struct de_engine_opts o = { 0 };
	struct de_engine *e;

	if (!opts || !ret || opts->sz < sizeof(size_t))
		return -EINVAL;
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->relevant = o.relevant;
	e->ud = o.ud;
	e->epoch = 1;
	*ret = e;
	return 0;
}

void de_engine_free(struct de_engine *e)
{
	struct de_inode *inode, *tmp;
	size_t i;
	int t;

	if (!e)
		return;
	for (i = 0; i < e->cap; i++)
		if (e->slots[i].inode && (e->slots[i].flags & E_EXT))
			free(e->slots[i].t.ext);
	table_free(e->slots, e->cap);
	HASH_ITER(hh, e->inodes, inode, tmp)
		inode_free(e, inode);
	for (t = 0; t < DE_MAX_TASKS; t++)
		free(e->tasks[t].list);
	free(e);
}

int de_task_add(struct de_engine *e, uint32_t mask)
{
	struct de_task *task;
	int t;

	if (!mask_valid(mask))
		return -EINVAL;
	if (e->active == ~UINT64_C(0))
		return -ENOSPC;
	t = __builtin_ctzll(~e->active);
	task = &e->tasks[t];
	memset(task, 0, sizeof(*task));
	task->mask = mask;
	task->active = true;
	task->sorted = true;
	e->active |= UINT64_C(1) << t;
	/* Cached relevance predates this task: ask again. */
	e->epoch++;
	return t;
}

int de_task_remove(struct de_engine *e, int slot)
{
	struct de_task *task;
	struct de_inode *inode, *tmp;
	uint64_t bit;
	size_t i;
	int r;

	r = check_slot(e, slot);
	if (r < 0)
		return r;
	task = &e->tasks[slot];
	bit = UINT64_C(1) << slot;
	for (i = task->head; i < task->len; i++) {
		inode = task->list[i];
		inode_drop(e, inode, bit, 0, PAGE_LIMIT);
		inode->listed &= ~bit;
	}
	HASH_ITER(hh, e->inodes, inode, tmp) {
		inode->done_all &= ~bit;
		inode->sdirty_tasks &= ~bit;
		if (!inode->sdirty_tasks && inode->sdirty)
			roaring_bitmap_clear(inode->sdirty);
		inode_clear_ranges(inode, slot);
		inode_gc(e, inode);
	}
	free(task->list);
	memset(task, 0, sizeof(*task));
	e->active &= ~bit;
	return 0;
}

int de_event(struct de_engine *e, uint32_t dev, uint64_t ino, uint64_t index, uint64_t count,
	     uint32_t ev)
{
	struct de_inode *inode;
	uint64_t want, i;
	int r;

	if (ev != DUET_ADDED && ev != DUET_REMOVED && ev != DUET_DIRTY && ev != DUET_FLUSHED)
		return -EINVAL;
	r = check_range(index, count);
	if (r < 0)
		return r;
	if (!count)
		return 0;
	r = inode_relevant(e, dev, ino, &inode);
	if (r < 0)
		return r;
	e->events += count;
	want = inode->relmask & e->active;
	if (!want)
		return 0;
	for (i = index; i < index + count; i++) {
		r = page_event(e, inode, (uint32_t)i, ev, false, want);
		if (r < 0)
			return r;
		/* The dirty set follows page by page (REMOVED reads it). */
		if (ev == DUET_DIRTY) {
			if (!inode->dirty)
				inode->dirty = roaring_bitmap_create();
			roaring_bitmap_add(inode->dirty, (uint32_t)i);
		} else if (inode->dirty && ev != DUET_ADDED) {
			roaring_bitmap_remove(inode->dirty, (uint32_t)i);
		}
		/* The events know the page's dirty bit now. */
		if (inode->sdirty && ev != DUET_ADDED)
			roaring_bitmap_remove(inode->sdirty, (uint32_t)i);
	}
	return 0;
}

int de_event_inode_flushed(struct de_engine *e, uint32_t dev, uint64_t ino)
{
	roaring_uint32_iterator_t it;
	struct de_inode *inode;
	uint64_t want;
	uint32_t p;
	int r;

	r = inode_relevant(e, dev, ino, &inode);
	if (r < 0)
		return r;
	want = inode->relmask & e->active;
	if (inode->sdirty && (want & inode->sdirty_tasks)) {
		/* Only the tasks that scanned them knew these pages dirty. */
		roaring_init_iterator(inode->sdirty, &it);
		while (it.has_value) {
			p = it.current_value;
			if (!inode->dirty || !roaring_bitmap_contains(inode->dirty, p)) {
				r = page_event(e, inode, p, DUET_FLUSHED, true,
					       want & inode->sdirty_tasks);
				if (r < 0) {
					if (p)
						roaring_bitmap_remove_range(inode->sdirty, 0, p);
					return r;
				}
			}
			roaring_advance_uint32_iterator(&it);
		}
	}
	if (inode->sdirty)
		roaring_bitmap_clear(inode->sdirty);
	inode->sdirty_tasks = 0;
	if (!inode->dirty)
		return 0;
	if (want) {
		roaring_init_iterator(inode->dirty, &it);
		while (it.has_value) {
			p = it.current_value;
			e->events++;
			r = page_event(e, inode, p, DUET_FLUSHED, true, want);
			if (r < 0) {
				/* Keep the pages not yet flushed. */
				if (p)
					roaring_bitmap_remove_range(inode->dirty, 0, p);
				return r;
			}
			roaring_advance_uint32_iterator(&it);
		}
	}
	roaring_bitmap_clear(inode->dirty);
	return 0;
}

/* The checks every call on a file's page range starts with. */
static int check_args(const struct de_engine *e, int slot, const struct de_file *f,
		      uint64_t index, uint64_t count)
{
	int r = check_slot(e, slot);

	if (r < 0)
		return r;
	if (!f)
		return -EINVAL;
	return check_range(index, count);
}

int de_scan_pages(struct de_engine *e, int slot, const struct de_file *f, uint64_t index,
		  uint64_t count, bool dirty)
{
	struct de_task *task;
	struct de_inode *inode;
	struct de_entry *en;
	uint8_t td[DE_MAX_TASKS];
	unsigned int now;
	uint32_t fl;
	uint64_t i;
	int r;

	r = check_args(e, slot, f, index, count);
	if (r < 0)
		return r;
	if (!count)
		return 0;
	task = &e->tasks[slot];
	r = inode_get(e, f->dev, f->ino, &inode);
	if (r < 0)
		return r;
	if (inode_decided(e, inode) && inode->gen_known && inode->gen != f->gen)
		return -ESTALE;
	inode_set_gen(e, inode, f->gen);
	for (i = index; i < index + count; i++) {
		uint32_t p = (uint32_t)i;

		if (page_done(inode, slot, p))
			continue;
		en = entry_find(e, inode, p);
		if (en && !(en->flags & E_SCANNED)) {
			/*
			 * Other tasks hold this page with a state the events
			 * gave it: that state stands. The scanning task joins
			 * with it, so what it is told matches what they are
			 * told (a scan never changes another task's view).
			 */
			now = en->state;
			if (!(now & S_CACHED))
				continue;
		} else {
			/* dirty == false means "not known dirty", not "clean". */
			now = S_CACHED;
			if (dirty || (en ? en->state & S_DIRTY :
				      (inode->dirty && roaring_bitmap_contains(inode->dirty, p)) ||
				      ((inode->sdirty_tasks >> slot & 1) &&
				       roaring_bitmap_contains(inode->sdirty, p))))
				now |= S_DIRTY;
		}
		/*
		 * Dirty pages the events did not tell are the scanning task's
		 * knowledge, not everybody's (see sdirty).
		 */
		if ((now & S_DIRTY) && !(inode->dirty && roaring_bitmap_contains(inode->dirty, p))) {
			if (!inode->sdirty && !(inode->sdirty = roaring_bitmap_create()))
				return -ENOMEM;
			roaring_bitmap_add(inode->sdirty, p);
			inode->sdirty_tasks |= UINT64_C(1) << slot;
		}
		/* As if just added (and dirtied): the baseline is "not cached". */
		td[slot] = (DUET_ADDED | (now & S_DIRTY ? DUET_DIRTY : 0)) & task->mask;
		td[slot] <<= TD_EV_SHIFT;
		if (en && (en->tasks >> slot & 1)) {
			uint8_t *b = entry_td(en, slot);

			*b = (*b & ~TD_BASE) | td[slot];
			if (en->flags & E_SCANNED)
				en->state = now;
			continue;
		}
		if (!yield(task->mask, td[slot], now, &fl))
			continue;
		if (en) {
			/* Only scanning tasks hold it: the newer scan's view. */
			if (en->flags & E_SCANNED)
				en->state = now;
			r = page_queue(e, inode, p, en, en->state, UINT64_C(1) << slot, td);
		} else {
			r = page_queue(e, inode, p, NULL, now, UINT64_C(1) << slot, td);
			en = r < 0 ? NULL : entry_find(e, inode, p);
			if (en)
				en->flags |= E_SCANNED;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int de_lost(struct de_engine *e, uint64_t task_mask)
{
	uint64_t m;

	/* Coalesced: one LOST item until the task fetches it. */
	for (m = task_mask & e->active; m; m &= m - 1) {
		int t = __builtin_ctzll(m);
		struct de_task *task = &e->tasks[t];
		uint64_t bit = UINT64_C(1) << t;

		task->lost = true;
		task->st.lost++;
		/*
		 * What was pending is no longer trustworthy: the lost events
		 * may have changed those pages. The task drops its view at the
		 * LOST item and the caller's rescan reports the cached pages
		 * again; an item pending from before would re-add a page that
		 * has gone meanwhile.
		 */
		for (size_t i = task->head; i < task->len; i++) {
			struct de_inode *inode = task->list[i];

			inode_drop(e, inode, bit, 0, PAGE_LIMIT);
			inode->listed &= ~bit;
			inode_gc(e, inode);
		}
		task->head = task->len = 0;
	}
	return 0;
}

/*
 * Walks one inode's pending pages for task t, appending extents to
 * items[*out..n). Returns true if the inode is exhausted for the task.
 */
static bool fetch_inode(struct de_engine *e, int t, struct de_inode *inode,
			struct duet_item *items, size_t n, size_t *out)
{
	struct de_task *task = &e->tasks[t];
	roaring_uint32_iterator_t it;
	struct duet_item *cur = NULL;
	struct runs runs = { 0 };
	struct de_entry *en;
	uint32_t p, y, fl;

	if (!inode->pend)
		return true;
	roaring_init_iterator(inode->pend, &it);
	while (it.has_value) {
		p = it.current_value;
		en = entry_find(e, inode, p);
		if (!(en->tasks >> t & 1)) {
			roaring_advance_uint32_iterator(&it);
			continue;
		}
		y = yield(task->mask, *entry_td(en, t), en->state, &fl);
		if (!y) {
			task->st.cancelled++;
			cur = NULL;
		} else if (cur && cur->index + cur->count == p && cur->state == y &&
			   cur->flags == fl) {
			cur->count++;
			task->st.coalesced++;
			task->st.pages++;
		} else {
			if (*out == n) {
				runs_flush(&runs, inode->pend);
				return false;
			}
			cur = &items[(*out)++];
			memset(cur, 0, sizeof(*cur));
			cur->dev = inode->key.dev;
			cur->ino = inode->key.ino;
			cur->gen = inode->gen;
			cur->index = p;
			cur->count = 1;
			cur->state = y;
			cur->flags = fl;
			task->st.items++;
			task->st.pages++;
		}
		if (entry_drop_task(e, en, t) && runs_add(&runs, p)) {
			runs_flush(&runs, inode->pend);
			if (!runs_seek(&it, inode->pend, p))
				break;
			continue;
		}
		roaring_advance_uint32_iterator(&it);
	}
	runs_flush(&runs, inode->pend);
	return true;
}

int de_fetch(struct de_engine *e, int slot, struct duet_item *items, size_t n)
{
	struct de_task *task;
	struct de_inode *inode;
	uint64_t bit;
	size_t out = 0;
	int r;

	r = check_slot(e, slot);
	if (r < 0)
		return r;
	if (n > INT32_MAX)
		n = INT32_MAX;
	if (!n)
		return 0;
	task = &e->tasks[slot];
	bit = UINT64_C(1) << slot;
	if (task->lost) {
		memset(&items[0], 0, sizeof(items[0]));
		items[0].flags = DUET_ITEM_LOST;
		task->lost = false;
		task->st.items++;
		out = 1;
	}
	if (!task->sorted) {
		qsort(task->list + task->head, task->len - task->head, sizeof(*task->list),
		      inode_cmp);
		task->sorted = true;
	}
	while (task->head < task->len && out < n) {
		inode = task->list[task->head];
		/* Relevance changed since these pages were queued: ask again. */
		inode_decide(e, inode);
		if (!fetch_inode(e, slot, inode, items, n, &out))
			break;
		inode->listed &= ~bit;
		task->head++;
		inode_gc(e, inode);
	}
	if (task->head == task->len) {
		task->head = task->len = 0;
		if (task->cap > 1024) {
			free(task->list);
			task->list = NULL;
			task->cap = 0;
		}
	}
	return (int)out;
}

uint64_t de_pending(const struct de_engine *e, int slot)
{
	if (check_slot(e, slot) < 0)
		return 0;
	return e->tasks[slot].st.pending;
}

int de_file_invalidate(struct de_engine *e, uint32_t dev, uint64_t ino)
{
	struct de_inode *inode = inode_find(e, dev, ino);

	if (!inode)
		return 0;
	inode->epoch = 0;
	inode_gc(e, inode);
	return 0;
}

int de_invalidate_all(struct de_engine *e)
{
	struct de_inode *inode, *tmp;

	e->epoch++;
	HASH_ITER(hh, e->inodes, inode, tmp)
		inode_gc(e, inode);
	return 0;
}

/* The inode a done call names; -ESTALE if the engine knows another gen. */
static int done_inode(const struct de_engine *e, const struct de_file *f,
		      struct de_inode **ret)
{
	struct de_inode *inode = inode_find(e, f->dev, f->ino);

	if (inode && inode->gen_known && inode->gen != f->gen)
		return -ESTALE;
	*ret = inode;
	return 0;
}

/* The checks every done call starts with; finds the file's inode. */
static int done_args(struct de_engine *e, int slot, const struct de_file *f, uint64_t index,
		     uint64_t count, struct de_inode **inode)
{
	int r = check_args(e, slot, f, index, count);

	return r < 0 ? r : done_inode(e, f, inode);
}

int de_done_set(struct de_engine *e, int slot, const struct de_file *f, uint64_t index,
		uint64_t count)
{
	struct de_inode *inode;
	struct de_rset *rs;
	uint64_t bit = UINT64_C(1) << slot, old, pieces = 0, new;
	bool inv;
	int r;

	r = done_args(e, slot, f, index, count, &inode);
	if (r < 0)
		return r;
	if (inode && (inode->done_all & bit))
		return 0;
	/* The marks the file will hold, so a refusal changes nothing. */
	rs = inode ? inode_rset(inode, slot) : NULL;
	inv = inode && (inode->done_inv & bit);
	old = inode ? inode_marks(inode, slot) : 0;
	if (!count) {
		new = 1;
	} else {
		/* A whole-file-minus set holds the pages not done: they go. */
		pieces = pieces_after(rs ? rs->b : NULL, rs ? rs->marks : 0, !inv, index,
				      index + count);
		new = inv ? 1 + pieces : pieces;
	}
	r = marks_fit(e, slot, old, new);
	if (r < 0)
		return r;
	if (!inode) {
		r = inode_get(e, f->dev, f->ino, &inode);
		if (r < 0)
			return r;
		inode_set_gen(e, inode, f->gen);
	}
	if (!count) {
		inode_clear_ranges(inode, slot);
		inode->done_all |= bit;
		inode_drop(e, inode, bit, 0, PAGE_LIMIT);
		marks_account(e, slot, old, new);
		return 0;
	}
	r = inode_ranges_get(inode, slot, &rs);
	if (r < 0) {
		inode_gc(e, inode);
		return r;
	}
	rs->marks = pieces;
	if (inv) {
		roaring_bitmap_remove_range(rs->b, index, index + count);
		if (roaring_bitmap_is_empty(rs->b)) {
			inode_clear_ranges(inode, slot);
			inode->done_all |= bit;
		} else {
			rset_grew(rs, false, index, index + count);
		}
	} else {
		roaring_bitmap_add_range(rs->b, index, index + count);
		rset_grew(rs, true, index, index + count);
	}
	marks_account(e, slot, old, new);
	inode_drop(e, inode, bit, index, index + count);
	return 0;
}

int de_done_reset(struct de_engine *e, int slot, const struct de_file *f, uint64_t index,
		  uint64_t count)
{
	struct de_inode *inode;
	struct de_rset *rs;
	uint64_t bit = UINT64_C(1) << slot, old, pieces = 0, new;
	bool whole, inv;
	int r;

	r = done_args(e, slot, f, index, count, &inode);
	if (r < 0 || !inode)
		return r;
	old = inode_marks(inode, slot);
	if (!count) {
		inode->done_all &= ~bit;
		inode_clear_ranges(inode, slot);
		marks_account(e, slot, old, 0);
		inode_gc(e, inode);
		return 0;
	}
	rs = inode_rset(inode, slot);
	whole = inode->done_all & bit;
	inv = inode->done_inv & bit;
	if (!whole && !rs) {
		inode_gc(e, inode);
		return 0;
	}
	/*
	 * Whole file minus the range: the set holds the pages not done (a
	 * set of [0, 2^32) would cost 65,536 containers). A reset that splits
	 * a range needs room too, or resets could grow a task without bound.
	 */
	if (whole)
		pieces = pieces_after(NULL, 0, true, index, index + count);
	else
		pieces = pieces_after(rs->b, rs->marks, inv, index, index + count);
	new = whole || inv ? 1 + pieces : pieces;
	r = marks_fit(e, slot, old, new);
	if (r < 0)
		return r;
	if (whole) {
		r = inode_ranges_get(inode, slot, &rs);
		if (r < 0)
			return r;
		inode->done_inv |= bit;
		inode->done_all &= ~bit;
		inv = true;
	}
	rs->marks = pieces;
	if (inv) {
		roaring_bitmap_add_range(rs->b, index, index + count);
		rset_grew(rs, true, index, index + count);
	} else {
		roaring_bitmap_remove_range(rs->b, index, index + count);
		if (roaring_bitmap_is_empty(rs->b))
			inode_clear_ranges(inode, slot);
		else
			rset_grew(rs, false, index, index + count);
	}
	marks_account(e, slot, old, new);
	inode_gc(e, inode);
	return 0;
}

int de_done_check(const struct de_engine *e, int slot, const struct de_file *f,
		  uint64_t index, uint64_t count)
{
	struct de_inode *inode;
	roaring_bitmap_t *b;
	int r;

	r = check_args(e, slot, f, index, count);
	if (r < 0)
		return r;
	inode = inode_find(e, f->dev, f->ino);
	if (!inode || (inode->gen_known && inode->gen != f->gen))
		return 0;
	if (inode->done_all >> slot & 1)
		return 1;
	if (!count)
		return 0;
	b = inode_ranges(inode, slot);
	if (b && (inode->done_inv >> slot & 1))
		return !roaring_bitmap_range_cardinality(b, index, index + count);
	return b && range_all(b, index, index + count);
}

int de_done_foreach(const struct de_engine *e, int slot, de_done_fn fn, void *ud)
{
	const struct de_inode *inode, *tmp;
	roaring_uint32_iterator_t it;
	struct de_file f;
	roaring_bitmap_t *b;
	uint64_t start, next;
	int r;

	r = check_slot(e, slot);
	if (r < 0)
		return r;
	HASH_ITER(hh, e->inodes, inode, tmp) {
		f.dev = inode->key.dev;
		f.ino = inode->key.ino;
		f.gen = inode->gen;
		if (inode->done_all >> slot & 1) {
			r = fn(ud, &f, 0, 0);
			if (r)
				return r;
			continue;
		}
		b = inode_ranges(inode, slot);
		if (!b)
			continue;
		if (inode->done_inv >> slot & 1) {
			/* The gaps between the pages not done. */
			start = 0;
			roaring_init_iterator(b, &it);
			for (;;) {
				next = it.has_value ? it.current_value : PAGE_LIMIT;
				if (next > start) {
					r = fn(ud, &f, start, next - start);
					if (r)
						return r;
				}
				if (!it.has_value)
					break;
				start = next + 1;
				roaring_advance_uint32_iterator(&it);
			}
			continue;
		}
		roaring_init_iterator(b, &it);
		while (it.has_value) {
			start = next = it.current_value;
			do {
				next++;
				roaring_advance_uint32_iterator(&it);
			} while (it.has_value && it.current_value == next);
			r = fn(ud, &f, start, next - start);
			if (r)
				return r;
		}
	}
	return 0;
}

int de_task_stats(const struct de_engine *e, int slot, struct de_task_stats *st)
{
	int r = check_slot(e, slot);

	if (r < 0)
		return r;
	*st = e->tasks[slot].st;
	return 0;
}

int de_engine_stats(const struct de_engine *e, struct de_engine_stats *st)
{
	const struct de_inode *inode, *tmp;
	uint64_t bytes, pend = 0;
	int t;

	bytes = sizeof(*e) + e->cap * sizeof(struct de_entry) + e->next * DE_MAX_TASKS;
	for (t = 0; t < DE_MAX_TASKS; t++)
		bytes += e->tasks[t].cap * sizeof(struct de_inode *);
	if (e->inodes)
		bytes += HASH_OVERHEAD(hh, e->inodes);
	HASH_ITER(hh, e->inodes, inode, tmp) {
		bytes += sizeof(*inode);
		if (inode->pend)
			pend += roaring_bitmap_size_in_bytes(inode->pend);
		if (inode->dirty)
			bytes += roaring_bitmap_size_in_bytes(inode->dirty);
		if (inode->sdirty)
			bytes += roaring_bitmap_size_in_bytes(inode->sdirty);
		for (t = 0; t < __builtin_popcountll(inode->done_mask); t++)
			bytes += sizeof(*inode->ranges) + roaring_bitmap_size_in_bytes(inode->ranges[t].b);
	}
	bytes += pend;
	st->events = e->events;
	st->entries = e->count;
	st->inodes = e->ninodes;
	st->bytes = bytes;
	/*
	 * Per pending page: the table (counted as full while at its minimum
	 * size, so a nearly empty table does not read as kilobytes a page),
	 * the external task arrays and the pending sets.
	 */
	st->page_bytes = (e->cap * sizeof(struct de_entry) + e->next * DE_MAX_TASKS + pend) /
			 (e->count > ENTRY_MIN_CAP * 3 / 4 ? e->count : ENTRY_MIN_CAP * 3 / 4);
	/* A mark on a file the engine holds for nothing else: the inode, its
	 * hash bucket and the allocator's header (184 bytes a mark measured
	 * with 1,048,576 whole-file marks). */
	st->mark_bytes = sizeof(struct de_inode) + 24;
	return 0;
}

int de_task_set_max_done(struct de_engine *e, int slot, uint64_t max)
{
	int r = check_slot(e, slot);

	if (r < 0)
		return r;
	e->tasks[slot].max_done = max;
	return 0;
}
