// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The engine's done marks (engine.h: "Done" and "Done marks and their
 * bound"): per task and file, a whole-file mark or a range set (struct
 * de_rset, rset.h: counted and compacted there), and the de_done_*() calls.
 */
#include <stdlib.h>
#include <string.h>

#include "engine-int.h"

/* ---- range sets ---- */

void eng_inode_clear_ranges(struct de_inode *inode, int t)
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

/* The marks task t holds on the inode. */
uint64_t eng_inode_marks(const struct de_inode *inode, int t)
{
	const struct de_rset *rs = inode_rset(inode, t);

	if (inode->done_all >> t & 1)
		return 1;
	if (!rs)
		return 0;
	/* Whole file minus ranges: the file's mark, and the gaps stored. */
	return rs->marks + (inode->done_inv >> t & 1);
}

/* 0 if task t may go from old to new marks on one file, else -EDQUOT. */
static int marks_fit(const struct de_engine *e, int t, uint64_t old, uint64_t new)
{
	const struct de_task *task = &e->tasks[t];

	if (new > old && task->max_done && task->st.done_marks - old + new > task->max_done)
		return -EDQUOT;
	return 0;
}

/* ---- the calls ---- */

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
	old = inode ? eng_inode_marks(inode, slot) : 0;
	if (!count) {
		new = 1;
	} else {
		/* A whole-file-minus set holds the pages not done: they go. */
		pieces = rset_pieces_after(rs ? rs->b : NULL, rs ? rs->marks : 0, !inv, index,
				      index + count);
		new = inv ? 1 + pieces : pieces;
	}
	r = marks_fit(e, slot, old, new);
	if (r < 0)
		return r;
	if (!inode) {
		r = eng_inode_get(e, f->dev, f->ino, &inode);
		if (r < 0)
			return r;
		inode = eng_inode_set_gen(e, inode, f->gen);
	}
	if (!count) {
		eng_inode_clear_ranges(inode, slot);
		inode->done_all |= bit;
		eng_inode_drop(e, inode, bit, 0, PAGE_LIMIT);
		marks_account(e, slot, old, new);
		return 0;
	}
	r = inode_ranges_get(inode, slot, &rs);
	if (r < 0) {
		eng_inode_gc(e, inode);
		return r;
	}
	rs->marks = pieces;
	if (inv) {
		roaring_bitmap_remove_range(rs->b, index, index + count);
		if (roaring_bitmap_is_empty(rs->b)) {
			eng_inode_clear_ranges(inode, slot);
			inode->done_all |= bit;
		} else {
			rset_grew(rs, false, index, index + count);
		}
	} else {
		roaring_bitmap_add_range(rs->b, index, index + count);
		rset_grew(rs, true, index, index + count);
	}
	marks_account(e, slot, old, new);
	eng_inode_drop(e, inode, bit, index, index + count);
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
	old = eng_inode_marks(inode, slot);
	if (!count) {
		inode->done_all &= ~bit;
		eng_inode_clear_ranges(inode, slot);
		marks_account(e, slot, old, 0);
		eng_inode_gc(e, inode);
		return 0;
	}
	rs = inode_rset(inode, slot);
	whole = inode->done_all & bit;
	inv = inode->done_inv & bit;
	if (!whole && !rs) {
		eng_inode_gc(e, inode);
		return 0;
	}
	/*
	 * Whole file minus the range: the set holds the pages not done (a
	 * set of [0, 2^32) would cost 65,536 containers). A reset that splits
	 * a range needs room too, or resets could grow a task without bound.
	 */
	if (whole)
		pieces = rset_pieces_after(NULL, 0, true, index, index + count);
	else
		pieces = rset_pieces_after(rs->b, rs->marks, inv, index, index + count);
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
			eng_inode_clear_ranges(inode, slot);
		else
			rset_grew(rs, false, index, index + count);
	}
	marks_account(e, slot, old, new);
	eng_inode_gc(e, inode);
	return 0;
}

/*
 * The marks of f for slot: 1 if the whole file is marked, else 0 with *b
 * its ranges (NULL when it has none) and *inv whether they are inverted
 * (the pages not done). -errno for bad arguments.
 */
static int done_marks(const struct de_engine *e, int slot, const struct de_file *f,
		      uint64_t index, uint64_t count, roaring_bitmap_t **b, bool *inv)
{
	struct de_inode *inode;
	int r;

	*b = NULL;
	r = check_args(e, slot, f, index, count);
	if (r < 0)
		return r;
	inode = inode_find(e, f->dev, f->ino);
	if (!inode || (inode->gen_known && inode->gen != f->gen))
		return 0;
	if (inode->done_all >> slot & 1)
		return 1;
	*b = inode_ranges(inode, slot);
	*inv = inode->done_inv >> slot & 1;
	return 0;
}

uint64_t de_done_tasks(const struct de_engine *e, uint32_t dev, uint64_t ino)
{
	const struct de_inode *inode = inode_find(e, dev, ino);

	return inode ? inode->done_all | inode->done_mask | inode->done_inv : 0;
}

/* Whether the marks (b, inv) cover all of [lo, hi). */
static int covered(roaring_bitmap_t *b, bool inv, uint64_t lo, uint64_t hi)
{
	if (!b)
		return 0;
	if (inv)
		return !roaring_bitmap_range_cardinality(b, lo, hi);
	return rset_range_all(b, lo, hi);
}

int de_done_check(const struct de_engine *e, int slot, const struct de_file *f,
		  uint64_t index, uint64_t count)
{
	roaring_bitmap_t *b;
	bool inv = false;
	int r = done_marks(e, slot, f, index, count, &b, &inv);

	if (r || !count)
		return r;
	return covered(b, inv, index, index + count);
}

int de_done_covers(const struct de_engine *e, int slot, const struct de_file *f,
		   uint64_t npages)
{
	roaring_bitmap_t *b;
	bool inv = false;
	int r = done_marks(e, slot, f, 0, 0, &b, &inv);

	/* No mark at all is not done, even for an empty file. */
	if (r || npages > PAGE_LIMIT)
		return r;
	return covered(b, inv, 0, npages);
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
