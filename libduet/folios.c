// SPDX-License-Identifier: LGPL-2.1-or-later
/* The folios ADDED records showed (folios.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned int)XXH3_64bits((keyptr), (keylen)))
/* An add that cannot grow the table fails, and says so here. */
static __thread bool ft_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (ft_oom = true)
#include <uthash.h>

#include "folios.h"

#define CHUNK_PAGES (UINT64_C(1) << FT_MAX_ORDER)

/* One folio: its first page's offset in the chunk << 4 | its order. */
#define F_OFF(f) ((uint64_t)(f) >> 4)
#define F_PAGES(f) (UINT64_C(1) << ((f) & 15))

struct ft_chunk {
	struct ft_key {
		uint32_t dev, pad;
		uint64_t ino, chunk;
	} k;
	uint16_t *f;	/* by offset */
	uint32_t n, cap;
	UT_hash_handle hh;
};

static struct ft_chunk *chunk_find(const struct folio_table *t, uint32_t dev, uint64_t ino,
				   uint64_t chunk)
{
	struct ft_key k = { .dev = dev, .ino = ino, .chunk = chunk };
	struct ft_chunk *c;

	HASH_FIND(hh, t->h, &k, sizeof(k), c);
	return c;
}

static void chunk_del(struct folio_table *t, struct ft_chunk *c)
{
	HASH_DEL(t->h, c);
	t->n -= c->n;
	free(c->f);
	free(c);
}

void ft_clear(struct folio_table *t)
{
	struct ft_chunk *c, *tmp;

	HASH_ITER(hh, t->h, c, tmp)
		chunk_del(t, c);
}

/* The first of c's folios that ends past offset off (c->n if none). */
static uint32_t first_past(const struct ft_chunk *c, uint64_t off)
{
	uint32_t lo = 0, hi = c->n;

	/* Sorted and disjoint: their ends are sorted too. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (F_OFF(c->f[mid]) + F_PAGES(c->f[mid]) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Forget c's folios that overlap offsets [lo, hi). */
static void chunk_cut(struct folio_table *t, struct ft_chunk *c, uint64_t lo, uint64_t hi)
{
	uint32_t a = first_past(c, lo), b = a;

	while (b < c->n && F_OFF(c->f[b]) < hi)
		b++;
	if (a == b)
		return;
	memmove(c->f + a, c->f + b, (c->n - b) * sizeof(*c->f));
	c->n -= b - a;
	t->n -= b - a;
	if (!c->n)
		chunk_del(t, c);
}

/* Chunk k's part of [index, index + count): offsets [*lo, *hi). */
static void part(uint64_t k, uint64_t index, uint64_t count, uint64_t *lo, uint64_t *hi)
{
	uint64_t first = index / CHUNK_PAGES, end = index + count;

	*lo = k == first ? index % CHUNK_PAGES : 0;
	*hi = end > index && (end - 1) / CHUNK_PAGES == k ? (end - 1) % CHUNK_PAGES + 1 :
							      CHUNK_PAGES;
}

void ft_removed(struct folio_table *t, uint32_t dev, uint64_t ino, uint64_t index, uint64_t count)
{
	uint64_t first = index / CHUNK_PAGES, end = index + count, lo, hi;
	uint64_t last = (end > index ? end - 1 : UINT64_MAX) / CHUNK_PAGES;

	if (!count || !t->h)
		return;
	if (last - first >= HASH_COUNT(t->h)) {
		/* A range wider than all that is remembered: each chunk is looked at. */
		struct ft_chunk *c, *tmp;

		HASH_ITER(hh, t->h, c, tmp) {
			if (c->k.dev != dev || c->k.ino != ino || c->k.chunk < first ||
			    c->k.chunk > last)
				continue;
			part(c->k.chunk, index, count, &lo, &hi);
			chunk_cut(t, c, lo, hi);
		}
		return;
	}
	for (uint64_t k = first;; k++) {
		struct ft_chunk *c = chunk_find(t, dev, ino, k);

		if (c) {
			part(k, index, count, &lo, &hi);
			chunk_cut(t, c, lo, hi);
		}
		if (k == last)
			break;
	}
}

void ft_added(struct folio_table *t, uint32_t dev, uint64_t ino, uint64_t index, uint64_t count)
{
	uint64_t off = index % CHUNK_PAGES, max = t->max ? t->max : FT_MAX;
	struct ft_chunk *c;
	uint32_t at;

	/* Whatever covered these pages before has left. */
	ft_removed(t, dev, ino, index, count);
	if (count < 2 || count > CHUNK_PAGES || (count & (count - 1)) || index % count)
		return;	/* one page, or not a folio's shape */
	while (t->n >= max && t->h)
		chunk_del(t, t->h);	/* the oldest (uthash keeps the order) */
	c = chunk_find(t, dev, ino, index / CHUNK_PAGES);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return;	/* a DIRTY of it will name one page: as without the table */
		c->k.dev = dev;
		c->k.ino = ino;
		c->k.chunk = index / CHUNK_PAGES;
		ft_oom = false;
		HASH_ADD(hh, t->h, k, sizeof(c->k), c);
		if (ft_oom) {
			free(c);
			return;
		}
	}
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 8;
		uint16_t *f = realloc(c->f, cap * sizeof(*f));

		if (!f) {
			if (!c->n)
				chunk_del(t, c);
			return;
		}
		c->f = f;
		c->cap = cap;
	}
	/* Nothing overlaps it now: it goes after those that end before it. */
	at = first_past(c, off);
	memmove(c->f + at + 1, c->f + at, (c->n - at) * sizeof(*c->f));
	c->f[at] = (uint16_t)(off << 4 | (uint64_t)__builtin_ctzll(count));
	c->n++;
	t->n++;
}

uint64_t ft_dirty_count(const struct folio_table *t, uint32_t dev, uint64_t ino, uint64_t index)
{
	uint64_t off = index % CHUNK_PAGES;
	const struct ft_chunk *c = chunk_find(t, dev, ino, index / CHUNK_PAGES);
	uint32_t at;

	if (!c)
		return 1;
	at = first_past(c, off);
	return at < c->n && F_OFF(c->f[at]) == off ? F_PAGES(c->f[at]) : 1;
}
