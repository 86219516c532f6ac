/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The multi-page folios ADDED records showed, by file and first page.
 * On a stock kernel writeback_dirty_folio names a folio by its first page
 * only; this table says how many pages that DIRTY stands for. Pure: no
 * I/O, no locking (the session's lock covers it).
 *
 * Folios are at most 2^FT_MAX_ORDER pages and naturally aligned, so none
 * spans two aligned chunks of that many pages. Per chunk of a file, the
 * folios remembered are kept sorted by first page, none overlapping: an
 * event looks up one chunk (two for a range across a boundary), not one
 * entry per possible order.
 */
#ifndef DUET_FOLIOS_H
#define DUET_FOLIOS_H

#include <stdint.h>

#define FT_MAX_ORDER 12
/* A bound on the folios remembered (a few bytes each): past it, the oldest chunks go. */
#define FT_MAX (1u << 20)

struct ft_chunk;

struct folio_table {
	struct ft_chunk *h;	/* uthash, oldest first */
	uint64_t n;		/* folios remembered */
	uint64_t max;		/* 0: FT_MAX */
};

/* Pages [index, index + count) entered: remembered if a folio's shape. */
void ft_added(struct folio_table *t, uint32_t dev, uint64_t ino, uint64_t index, uint64_t count);
/* Pages [index, index + count) left: no folio remembered covers them now. */
void ft_removed(struct folio_table *t, uint32_t dev, uint64_t ino, uint64_t index, uint64_t count);
/* The pages of the folio whose first page is index, 1 if none is known. */
uint64_t ft_dirty_count(const struct folio_table *t, uint32_t dev, uint64_t ino, uint64_t index);
void ft_clear(struct folio_table *t);

#endif
