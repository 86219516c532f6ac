/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Range sets of pages: a roaring bitmap, its marks counted as the engine
 * counts and stores them (engine.h, "Done marks and their bound") and
 * compacted as it grows. Shared by the engine's done marks
 * (engine-done.c) and the daemon client's log of the marks it replays
 * after a restart (marklog.c), so that both count and bound a set alike.
 * No locking: the caller serialises the calls on one set.
 */
#ifndef DUET_RSET_H
#define DUET_RSET_H

#include <stdbool.h>
#include <stdint.h>

#include <roaring/roaring.h>

#define PAGE_LIMIT	(UINT64_C(1) << 32)	/* page indices are 32-bit */

/*
 * A set and the marks it stores: its pieces, maximal runs of pages cut
 * at 65,536-page blocks (one roaring container each), so a range over
 * many blocks costs what it counts.
 */
struct de_rset {
	roaring_bitmap_t *b;
	uint64_t marks;
	uint64_t grown;		/* bytes it may have grown since compacted (bound) */
};

/* Whether b holds every page of [a, z). */
bool rset_range_all(const roaring_bitmap_t *b, uint64_t a, uint64_t z);

/*
 * The pieces b (NULL: empty; holding pieces now) will hold once [a, z)
 * is added (add) or removed, computed before the change.
 */
uint64_t rset_pieces_after(const roaring_bitmap_t *b, uint64_t pieces, bool add, uint64_t a,
			   uint64_t z);

/* After [a, z) was added (add) or removed: compacts rs when it is due. */
void rset_grew(struct de_rset *rs, bool add, uint64_t a, uint64_t z);

/*
 * The first maximal run of b at or after page from: true and [*a, *z),
 * or false if there is none. O(log length) range checks a run.
 */
bool rset_next_run(const roaring_bitmap_t *b, uint64_t from, uint64_t *a, uint64_t *z);

#endif
