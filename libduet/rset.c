// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Range sets of pages (rset.h): how many pieces a set stores, what an
 * operation does to that count, when a set is compacted, its runs.
 */
#include "rset.h"

#define BLOCK_SHIFT	16	/* a roaring container: 65,536 pages */

/*
 * Whether b holds every page of [a, z). CRoaring 0.2.66's
 * roaring_bitmap_contains_range() is wrong for a range over several
 * blocks whose last block has no container (it looks at the next
 * container, and asserts when there is none): asked block by block, it
 * takes its one-container path only.
 */
bool rset_range_all(const roaring_bitmap_t *b, uint64_t a, uint64_t z)
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
		if (!rset_range_all(b, v, out + 1))
			break;
		in = out;
		if (out == lim)
			return lim;
		step *= 2;
	}
	while (out - in > 1) {
		uint64_t mid = in + (out - in) / 2;

		if (rset_range_all(b, v, mid + 1))
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
		    rset_range_all(b, v, blk_end + 1))
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
uint64_t rset_pieces_after(const roaring_bitmap_t *b, uint64_t pieces, bool add, uint64_t a,
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

void rset_grew(struct de_rset *rs, bool add, uint64_t a, uint64_t z)
{
	uint64_t g = op_growth(add, a, z);

	rs->grown += g;
	if (rs->grown <= COMPACT_PER_MARK * rs->marks + COMPACT_MIN)
		return;
	roaring_bitmap_run_optimize(rs->b);
	roaring_bitmap_shrink_to_fit(rs->b);
	rs->grown = 0;
}

bool rset_next_run(const roaring_bitmap_t *b, uint64_t from, uint64_t *a, uint64_t *z)
{
	roaring_uint32_iterator_t it;

	if (!b || from >= PAGE_LIMIT)
		return false;
	roaring_init_iterator(b, &it);
	if (!roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)from))
		return false;
	*a = it.current_value;
	*z = run_end(b, *a, PAGE_LIMIT - 1) + 1;
	return true;
}
