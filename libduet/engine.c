// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The libduet engine (see engine.h for the model, engine-int.h for the
 * data structures): events, scans, fetches, relevance and tasks. The
 * hash tables are in engine-table.c, the done marks in engine-done.c.
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

#include "engine-int.h"

/* ---- per-task bytes of an entry ---- */

/*
 * The new tasks' bytes: td[t] each, or (ub >= 0) one byte ub for all of
 * them, td unused (page_event()'s common case: many tasks, one mask, one
 * byte, which then costs no loop over the tasks).
 */
static inline uint8_t td_of(const uint8_t *td, int ub, int t)
{
	return ub >= 0 ? (uint8_t)ub : td[t];
}

/*
 * Whether the tasks of add, with bytes td[] (or ub), and those of en
 * (NULL: a new entry) would all have one byte, *b.
 */
static bool entry_uniform(const struct de_entry *en, uint64_t add, const uint8_t *td, int ub,
			  uint8_t *b)
{
	uint64_t m;
	uint8_t v = td_of(td, ub, __builtin_ctzll(add));

	for (m = add; ub < 0 && m; m &= m - 1)
		if (td[__builtin_ctzll(m)] != v)
			return false;
	if (en && en->tasks) {
		if (en->flags & E_EXT)
			return false;
		if (en->flags & E_UNI)
			return en->t.inl[0] == v ? (*b = v, true) : false;
		for (unsigned int j = 0; j < (unsigned int)__builtin_popcountll(en->tasks); j++)
			if (en->t.inl[j] != v)
				return false;
	}
	*b = v;
	return true;
}

/* Whether adding tasks "add" (bytes td[] or ub) needs an external array first. */
static inline bool entry_needs_ext(const struct de_entry *en, uint64_t add, const uint8_t *td,
				   int ub)
{
	uint64_t tasks = en ? en->tasks : 0;
	uint8_t b;

	if (en && (en->flags & E_EXT))
		return false;
	if (!(en && (en->flags & E_UNI)) && __builtin_popcountll(tasks | add) <= INLINE_TASKS)
		return false;
	return !entry_uniform(en, add, td, ub, &b);
}

/* The entry's bytes spread into ext (allocated by the caller): E_EXT. */
static void entry_split(struct de_engine *e, struct de_entry *en, uint8_t *ext)
{
	unsigned int j = 0;
	uint64_t m;

	for (m = en->tasks; m; m &= m - 1)
		ext[__builtin_ctzll(m)] = en->flags & E_UNI ? en->t.inl[0] : en->t.inl[j++];
	en->t.ext = ext;
	en->flags = (uint8_t)((en->flags & ~E_UNI) | E_EXT);
	e->next++;
}

/*
 * Adds the tasks of add (not yet in en->tasks) with per-task byte td[t]
 * (or ub). ext: a 64-byte array allocated beforehand if
 * entry_needs_ext(), else NULL.
 */
static void entry_add_tasks(struct de_engine *e, struct de_entry *en, uint64_t add,
			    const uint8_t *td, int ub, uint8_t *ext)
{
	uint64_t all = en->tasks | add, m;
	uint8_t tmp[INLINE_TASKS], b;
	int t;

	if (ext)
		entry_split(e, en, ext);
	else if (!(en->flags & (E_EXT | E_UNI)) &&
		 __builtin_popcountll(all) > INLINE_TASKS && entry_uniform(en, add, td, ub, &b)) {
		en->t.inl[0] = b;
		en->flags |= E_UNI;
	}
	if (en->flags & E_UNI) {
		/* entry_needs_ext() said they all have this byte. */
	} else if (en->flags & E_EXT) {
		for (m = add; m; m &= m - 1) {
			t = __builtin_ctzll(m);
			en->t.ext[t] = td_of(td, ub, t);
		}
	} else {
		for (m = all; m; m &= m - 1) {
			t = __builtin_ctzll(m);
			tmp[rank(all, t)] = (add >> t & 1) ? td_of(td, ub, t) :
							     en->t.inl[rank(en->tasks, t)];
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

	if (!(en->flags & (E_EXT | E_UNI))) {
		r = rank(en->tasks, t);
		memmove(&en->t.inl[r], &en->t.inl[r + 1], INLINE_TASKS - r - 1);
	}
	en->tasks &= ~bit;
	e->tasks[t].st.pending--;
	if (en->tasks)
		return false;
	eng_entry_delete(e, en);
	return true;
}

/*
 * Pages whose entry was freed while walking inode->pend with an iterator:
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
void eng_inode_drop(struct de_engine *e, struct de_inode *inode, uint64_t tasks, uint64_t lo,
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
		eng_inode_clear_ranges(inode, __builtin_ctzll(inode->done_mask));
	if (inode->pend)
		roaring_bitmap_free(inode->pend);
	if (inode->dirty)
		roaring_bitmap_free(inode->dirty);
	if (inode->sdirty)
		roaring_bitmap_free(inode->sdirty);
	if (!inode->retired)
		HASH_DEL(e->inodes, inode);
	e->ninodes--;
	free(inode);
}

void eng_inode_gc(struct de_engine *e, struct de_inode *inode)
{
	if (inode_unused(e, inode))
		inode_free(e, inode);
}

/* The done marks and dirty sets of a file that no longer has the number. */
static void inode_forget_file(struct de_engine *e, struct de_inode *inode)
{
	uint64_t m;

	for (m = (inode->done_all | inode->done_mask) & e->active; m; m &= m - 1) {
		int t = __builtin_ctzll(m);

		marks_account(e, t, eng_inode_marks(inode, t), 0);
	}
	while (inode->done_mask)
		eng_inode_clear_ranges(inode, __builtin_ctzll(inode->done_mask));
	inode->done_all = 0;
	if (inode->dirty)
		roaring_bitmap_clear(inode->dirty);
	if (inode->sdirty)
		roaring_bitmap_clear(inode->sdirty);
	inode->sdirty_tasks = 0;
}

/*
 * Another file now has this (dev, ino). The old file's pages still
 * pending for tasks are theirs: its REMOVED items (a deleted file leaving
 * the cache) must still reach them, under its gen. So the inode leaves
 * the table, retired: events, scans and marks of the number reach a new
 * inode from now on, and the retired one is fetched as it is (never asked
 * about again) and freed when nothing is pending for it. Without memory
 * for the new one, the old file's pending pages go instead.
 */
static struct de_inode *inode_retire(struct de_engine *e, struct de_inode *inode)
{
	struct de_inode *n;

	inode_forget_file(e, inode);
	if (!inode->listed || inode->retired)
		goto reset;
	HASH_DEL(e->inodes, inode);
	if (eng_inode_get(e, inode->key.dev, inode->key.ino, &n) < 0) {
		HASH_ADD(hh, e->inodes, key, sizeof(inode->key), inode);
		goto reset;
	}
	inode->retired = true;
	inode->epoch = 0;
	return n;
reset:
	eng_inode_drop(e, inode, ~UINT64_C(0), 0, PAGE_LIMIT);
	return inode;
}

struct de_inode *eng_inode_set_gen(struct de_engine *e, struct de_inode *inode, uint64_t gen)
{
	if (inode->gen_known && inode->gen != gen)
		inode = inode_retire(e, inode);
	inode->gen = gen;
	inode->gen_known = true;
	return inode;
}

/*
 * Asks the caller which tasks want the inode, if the cached answer is
 * stale. A task that no longer wants it (renamed away, no longer visible
 * to it) loses what was pending for it: nothing more of the file leaves
 * for that task, not even what was queued before.
 */
static struct de_inode *inode_decide(struct de_engine *e, struct de_inode *inode)
{
	uint64_t gen = 0, mask;

	if (inode_decided(e, inode) || inode->retired)
		return inode;
	if (e->relevant)
		mask = e->relevant(e->ud, inode->key.dev, inode->key.ino, &gen);
	else
		mask = ~UINT64_C(0);
	inode = eng_inode_set_gen(e, inode, gen);
	inode->relmask = mask;
	inode->epoch = e->epoch;
	if (inode->listed & ~inode->relmask)
		eng_inode_drop(e, inode, inode->listed & ~inode->relmask, 0, PAGE_LIMIT);
	return inode;
}

/* Finds or creates the inode and decides its relevance. */
static int inode_relevant(struct de_engine *e, uint32_t dev, uint64_t ino,
			  struct de_inode **ret)
{
	struct de_inode *inode;
	int r;

	r = eng_inode_get(e, dev, ino, &inode);
	if (r < 0)
		return r;
	*ret = inode_decide(e, inode);
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
	/* The file that had the number before comes first. */
	return (int)y->retired - (int)x->retired;
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
		/*
		 * Dirty again before its flush was told: on a stock kernel a
		 * folio dirtied during its write-back (no event cleaned it;
		 * the inode-level FLUSHED comes at the end). Nothing changed.
		 */
		return S_CACHED |
		       (inode->dirty && roaring_bitmap_contains(inode->dirty, p) ? S_DIRTY : 0);
	default:
		return S_CACHED | S_DIRTY;
	}
}

/* What a pending page yields for a task with mask m and byte td. */
static inline __attribute__((always_inline)) uint32_t yield(uint32_t m, unsigned int td,
							 unsigned int now, uint32_t *flags)
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
 * Makes tasks "add" pending on page p with bytes td[] (or ub, see
 * td_of()), creating the entry (state now) if en is NULL. All allocations
 * come first.
 */
static int page_queue(struct de_engine *e, struct de_inode *inode, uint32_t p,
		      struct de_entry *en, unsigned int now, uint64_t add, const uint8_t *td,
		      int ub)
{
	uint8_t *ext = NULL;
	uint64_t m;
	int r;

	for (m = add & ~inode->listed; m; m &= m - 1) {
		r = list_reserve(&e->tasks[__builtin_ctzll(m)]);
		if (r < 0)
			return r;
	}
	if (entry_needs_ext(en, add, td, ub)) {
		ext = calloc(DE_MAX_TASKS, 1);
		if (!ext)
			return -ENOMEM;
	}
	if (!en) {
		r = eng_entry_insert(e, inode, p, now, &en);
		if (r < 0) {
			free(ext);
			return r;
		}
	}
	en->state = now;
	entry_add_tasks(e, en, add, td, ub, ext);
	for (m = add & ~inode->listed; m; m &= m - 1) {
		int t = __builtin_ctzll(m);

		list_add(&e->tasks[t], t, inode);
	}
	return 0;
}

/*
 * The byte a task holding the page has after event ev (see page_event()):
 * the event's bits it watches, and the inode-level flag.
 */
static inline uint8_t td_after(uint8_t b, uint32_t mask, uint32_t ev, bool il, unsigned int pt,
			       unsigned int now)
{
	b |= (uint8_t)((ev & mask) << TD_EV_SHIFT);
	/*
	 * State tasks: the flag follows the last change of the dirty bit, so
	 * it does not depend on when fetches happened. Event tasks: any
	 * inode-level FLUSHED.
	 */
	if (il)
		b |= TD_IL;
	else if ((mask & DUET_MODIFIED) && ((pt ^ now) & S_DIRTY))
		b &= (uint8_t)~TD_IL;
	return b;
}

/*
 * A shared byte (E_UNI) that the event would make differ between the
 * entry's tasks is spread into an external array first; -ENOMEM leaves
 * everything as it was.
 */
static int uni_prepare(struct de_engine *e, struct de_inode *inode, struct de_entry *en,
		       uint32_t p, uint32_t ev, bool il, uint64_t want, unsigned int prior,
		       unsigned int now, uint64_t sd)
{
	uint8_t first = 0, *ext;
	bool have = false;

	for (uint64_t m = en->tasks; m; m &= m - 1) {
		int t = __builtin_ctzll(m);
		uint8_t b = en->t.inl[0];

		if ((want >> t & 1) &&
		    !((inode->done_all | inode->done_mask) >> t & 1 && page_done(inode, t, p)))
			b = td_after(b, e->tasks[t].mask, ev, il,
				     sd >> t & 1 ? prior | S_DIRTY : prior, now);
		if (have && b != first)
			goto split;
		first = b;
		have = true;
	}
	return 0;
split:
	ext = calloc(DE_MAX_TASKS, 1);
	if (!ext)
		return -ENOMEM;
	entry_split(e, en, ext);
	return 0;
}

/*
 * page_event() when every task of want has one mask (e->uni_mask), none
 * has a done mark on the file, no scan knew the page dirty, and the
 * entry, if any, is held by tasks of want with one shared byte (E_UNI):
 * then every task's result is the same, computed once, and the loop over
 * the tasks is left to the counters. Returns 1 (nothing changed) where
 * the tasks' results would differ: the general path then splits the
 * shared byte.
 */
static int page_event_uni(struct de_engine *e, struct de_inode *inode, uint32_t p,
			  struct de_entry *en, uint32_t ev, bool il, uint64_t want,
			  unsigned int prior, unsigned int now)
{
	uint32_t mask = e->uni_mask;
	uint64_t held = en ? en->tasks : 0, add = 0, m;
	uint8_t nb = 0, fb = 0;

	if (held && !(en->flags & E_UNI))
		return 1;
	if (held)
		nb = td_after(en->t.inl[0], mask, ev, il, prior, now);
	if ((want & ~held) && starts(mask, prior, now, ev)) {
		fb = (uint8_t)(prior | (ev & mask) << TD_EV_SHIFT | (il ? TD_IL : 0));
		if (held && fb != nb)
			return 1;
		add = want & ~held;
	}
	/* The shared byte first: the new tasks join it (entry_uniform()). */
	if (held)
		en->t.inl[0] = nb;
	if (add) {
		int r = page_queue(e, inode, p, en, now, add, NULL, fb);

		if (r < 0)
			return r;
	} else if (en) {
		en->state = now;
	}
	for (m = want; m; m &= m - 1)
		e->tasks[__builtin_ctzll(m)].st.events++;
	if (en)
		en->flags &= ~E_SCANNED;
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
	if (e->uni_mask && !sd && !((inode->done_all | inode->done_mask) & want) &&
	    (!en || !(en->tasks & ~want))) {
		int r = page_event_uni(e, inode, p, en, ev, il, want, prior, now);

		if (r <= 0)
			return r;
	}
	if (en && (en->flags & E_UNI)) {
		int r = uni_prepare(e, inode, en, p, ev, il, want, prior, now, sd);

		if (r < 0)
			return r;
	}
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
			/* Shared (E_UNI): uni_prepare() found every task's result equal. */
			uint8_t *b = entry_td(en, t);

			*b = td_after(*b, task->mask, ev, il, pt, now);
			continue;
		}
		if (!starts(task->mask, pt, now, ev))
			continue;
		td[t] = pt | (ev & task->mask) << TD_EV_SHIFT | (il ? TD_IL : 0);
		add |= UINT64_C(1) << t;
	}
	if (add) {
		/* A new entry starts without E_SCANNED; en stays valid. */
		int r = page_queue(e, inode, p, en, now, add, td, -1);

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
	int t;

	if (!e)
		return;
	eng_entries_free(e);
	HASH_ITER(hh, e->inodes, inode, tmp)
		inode_free(e, inode);
	for (t = 0; t < DE_MAX_TASKS; t++)
		free(e->tasks[t].list);
	free(e);
}

/* The mask every active task has, or 0 if they differ (or there are none). */
static void uni_mask_update(struct de_engine *e)
{
	uint32_t mask = 0;

	for (uint64_t m = e->active; m; m &= m - 1) {
		uint32_t tm = e->tasks[__builtin_ctzll(m)].mask;

		if (mask && tm != mask) {
			mask = 0;
			break;
		}
		mask = tm;
	}
	e->uni_mask = mask;
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
	uni_mask_update(e);
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
		eng_inode_drop(e, inode, bit, 0, PAGE_LIMIT);
		inode->listed &= ~bit;
		if (inode->retired)
			eng_inode_gc(e, inode);	/* not in the table below */
	}
	HASH_ITER(hh, e->inodes, inode, tmp) {
		inode->done_all &= ~bit;
		inode->sdirty_tasks &= ~bit;
		if (!inode->sdirty_tasks && inode->sdirty)
			roaring_bitmap_clear(inode->sdirty);
		eng_inode_clear_ranges(inode, slot);
		eng_inode_gc(e, inode);
	}
	free(task->list);
	memset(task, 0, sizeof(*task));
	e->active &= ~bit;
	uni_mask_update(e);
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
	r = eng_inode_get(e, f->dev, f->ino, &inode);
	if (r < 0)
		return r;
	if (inode_decided(e, inode) && inode->gen_known && inode->gen != f->gen)
		return -ESTALE;
	inode = eng_inode_set_gen(e, inode, f->gen);
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

			/* A shared byte that would differ for this task is split first. */
			if ((en->flags & E_UNI) && (en->tasks & ~(UINT64_C(1) << slot)) &&
			    (uint8_t)((*b & ~TD_BASE) | td[slot]) != *b) {
				uint8_t *ext = calloc(DE_MAX_TASKS, 1);

				if (!ext)
					return -ENOMEM;
				entry_split(e, en, ext);
				b = entry_td(en, slot);
			}
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
			r = page_queue(e, inode, p, en, en->state, UINT64_C(1) << slot, td, -1);
		} else {
			r = page_queue(e, inode, p, NULL, now, UINT64_C(1) << slot, td, -1);
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

			eng_inode_drop(e, inode, bit, 0, PAGE_LIMIT);
			inode->listed &= ~bit;
			eng_inode_gc(e, inode);
		}
		task->head = task->len = 0;
	}
	return 0;
}

/*
 * Page p of the inode, byte td and state st, for the task: appended to
 * *cur's extent or as a new item at items[*out] (*cur then points to
 * it), or cancelled (*cur NULL). False, with nothing changed, when the
 * page needs a new item and items[0..n) is full.
 */
static inline bool fetch_page(struct de_task *task, const struct de_inode *inode, uint32_t p,
			      unsigned int td, unsigned int st, struct duet_item *items, size_t n,
			      size_t *out, struct duet_item **cur)
{
	struct duet_item *c = *cur;
	uint32_t y, fl;

	y = yield(task->mask, td, st, &fl);
	if (!y) {
		task->st.cancelled++;
		*cur = NULL;
		return true;
	}
	if (c && c->index + c->count == p && c->state == y && c->flags == fl) {
		c->count++;
		task->st.coalesced++;
		task->st.pages++;
		return true;
	}
	if (*out == n)
		return false;
	c = &items[(*out)++];
	memset(c, 0, sizeof(*c));
	c->dev = inode->key.dev;
	c->ino = inode->key.ino;
	c->gen = inode->gen;
	c->index = p;
	c->count = 1;
	c->state = y;
	c->flags = fl;
	task->st.items++;
	task->st.pages++;
	*cur = c;
	return true;
}

/* Pages of inode->pend read at once by a fetch (a buffer on the stack). */
#define FETCH_CHUNK 256
/* How far ahead fetch_inode() prefetches entries (pages of the chunk). */
#define FETCH_AHEAD 8

/*
 * Walks one inode's pending pages for task t, appending extents to
 * items[*out..n). Returns true if the inode is exhausted for the task.
 *
 * The pending set is read FETCH_CHUNK pages at a time, and the entries
 * freed in a chunk are removed from it when the chunk is done (then the
 * walk resumes after the chunk's last page): a roaring iterator step per
 * page cost about 27 instructions, for every task that fetches.
 */
static bool fetch_inode(struct de_engine *e, int t, struct de_inode *inode,
			struct duet_item *items, size_t n, size_t *out)
{
	struct de_task *task = &e->tasks[t];
	roaring_uint32_iterator_t it;
	struct duet_item *cur = NULL;
	uint32_t buf[FETCH_CHUNK], k, got;
	struct runs runs = { 0 };
	struct de_entry *en;
	size_t hint = 0;
	bool done = true;
	uint32_t p = 0;
	/* The byte and state of the page cur ended with (see below). */
	unsigned int last_td = 0, last_state = 0;
	uint8_t td;

	if (!inode->pend)
		return true;
	roaring_init_iterator(inode->pend, &it);
	while ((got = roaring_read_uint32_iterator(&it, buf, FETCH_CHUNK))) {
		for (k = 0; k < got; k++) {
			p = buf[k];
			/*
			 * The home slot of the run FETCH_AHEAD pages on, asked
			 * for now: a large table misses the cache at each run's
			 * first page (perf: the first load of entry_find() was
			 * most of fetch_inode() in duetd with 64 tasks).
			 */
			if (k + FETCH_AHEAD < got &&
			    (buf[k + FETCH_AHEAD] >> 2) != (buf[k + FETCH_AHEAD - 1] >> 2))
				__builtin_prefetch(&e->slots[entry_hash(inode, buf[k + FETCH_AHEAD]) &
							     (e->cap - 1)]);
			en = entry_find_near(e, inode, p, &hint);
			if (!(en->tasks >> t & 1))
				continue;
			td = *entry_td(en, t);
			/*
			 * The next page of cur's run with the byte and state of
			 * its last page yields what that page did: cur grows
			 * without asking yield() again (most of a file's pages,
			 * as their events come in runs).
			 */
			if (cur && cur->index + cur->count == p && td == last_td &&
			    en->state == last_state) {
				cur->count++;
				task->st.coalesced++;
				task->st.pages++;
			} else if (!fetch_page(task, inode, p, td, en->state, items, n, out, &cur)) {
				done = false;
				break;
			} else {
				last_td = td;
				last_state = en->state;
			}
			if (entry_drop_task(e, en, t) && runs_add(&runs, p))
				runs_flush(&runs, inode->pend);
		}
		runs_flush(&runs, inode->pend);
		if (!done || got < FETCH_CHUNK || p == UINT32_MAX)
			break;
		/* The set changed under the iterator: resume after p. */
		roaring_init_iterator(inode->pend, &it);
		if (!roaring_move_uint32_iterator_equalorlarger(&it, p + 1))
			break;
	}
	return done;
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
		/*
		 * Relevance changed since these pages were queued: ask again
		 * (an inode retired meanwhile is fetched as listed).
		 */
		inode_decide(e, inode);
		if (!fetch_inode(e, slot, inode, items, n, &out))
			break;
		inode->listed &= ~bit;
		task->head++;
		eng_inode_gc(e, inode);
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
	eng_inode_gc(e, inode);
	return 0;
}

int de_invalidate_all(struct de_engine *e)
{
	struct de_inode *inode, *tmp;

	e->epoch++;
	HASH_ITER(hh, e->inodes, inode, tmp)
		eng_inode_gc(e, inode);
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
