// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The folio table (libduet/folios.h) against a brute-force model: per
 * file and page, the first page of the folio remembered to cover it (or
 * none) and, at a first page, the folio's size. ADDED forgets every
 * folio it overlaps and remembers itself if it has a folio's shape (a
 * power of two of 2 to 4096 pages, aligned); REMOVED forgets every folio
 * it overlaps, small ones inside it included. Random sequences over three
 * 4096-page chunks of two files on two devices, ranges clustered at chunk
 * edges, now and then one reaching the end of the file offsets. After
 * every call: the count remembered, and ft_dirty_count() at every page of
 * a random chunk. Then the bound: with a small maximum, the count never
 * passes it, and what is still known is what the model knows. Directed
 * cases first.
 */
#include "etest.h"
#include "folios.h"

#define CHUNK 4096u
#define SPAN (3u * CHUNK)
#define NFILE 3	/* (dev, ino): (1, 5), (1, 6), (2, 5) */
#define NSEQ 60
#define NOPS 400

static const uint32_t devs[NFILE] = { 1, 1, 2 };
static const uint64_t inos[NFILE] = { 5, 6, 5 };

/* The model: head[f][p] = first page + 1 of the folio covering p, 0 for none. */
static uint32_t head[NFILE][SPAN];
static uint32_t size[NFILE][SPAN];
static uint64_t model_n;

static void model_removed(int f, uint64_t index, uint64_t count)
{
	uint64_t end = index + count > SPAN || index + count < index ? SPAN : index + count;

	for (uint64_t p = index; p < end; p++) {
		uint32_t h = head[f][p];

		if (!h)
			continue;
		for (uint32_t q = h - 1; q < h - 1 + size[f][h - 1]; q++)
			head[f][q] = 0;
		size[f][h - 1] = 0;
		model_n--;
	}
}

static void model_added(int f, uint64_t index, uint64_t count)
{
	model_removed(f, index, count);
	if (count < 2 || count > CHUNK || (count & (count - 1)) || index % count ||
	    index + count > SPAN)
		return;
	for (uint64_t p = index; p < index + count; p++)
		head[f][p] = (uint32_t)index + 1;
	size[f][index] = (uint32_t)count;
	model_n++;
}

static uint64_t model_count(int f, uint64_t p)
{
	return size[f][p] ? size[f][p] : 1;
}

/* Every page of chunk k of file f, against the model. */
static bool same_chunk(const struct folio_table *t, int f, uint64_t k)
{
	for (uint64_t p = k * CHUNK; p < (k + 1) * CHUNK; p++) {
		uint64_t got = ft_dirty_count(t, devs[f], inos[f], p);

		if (got != model_count(f, p)) {
			CHECK(0, "file %d page %" PRIu64 ": %" PRIu64 " pages, model %" PRIu64, f, p,
			      got, model_count(f, p));
			return false;
		}
	}
	return true;
}

static void reset(struct folio_table *t)
{
	ft_clear(t);
	memset(head, 0, sizeof(head));
	memset(size, 0, sizeof(size));
	model_n = 0;
}

static void directed(void)
{
	struct folio_table t = { 0 };

	/* A 16-page folio at 32: its first page counts 16, the others 1. */
	ft_added(&t, 1, 5, 32, 16);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, 32), 16);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, 33), 1);
	CHECK_EQ(ft_dirty_count(&t, 1, 6, 32), 1);	/* another file */
	CHECK_EQ(ft_dirty_count(&t, 2, 5, 32), 1);	/* another device */
	/* Not a folio's shape: unaligned, not a power of two, one page. */
	ft_added(&t, 1, 5, 100, 8);
	ft_added(&t, 1, 5, 96, 3);
	ft_added(&t, 1, 5, 200, 1);
	CHECK_EQ(t.n, 1);
	/* Four 4-page folios, then one REMOVED over all of them. */
	for (uint64_t i = 0; i < 4; i++)
		ft_added(&t, 1, 5, 64 + 4 * i, 4);
	CHECK_EQ(t.n, 5);
	ft_removed(&t, 1, 5, 64, 16);
	CHECK_EQ(t.n, 1);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, 68), 1);
	/* One page of the 16-page folio leaves: the folio is forgotten. */
	ft_removed(&t, 1, 5, 40, 1);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, 32), 1);
	CHECK_EQ(t.n, 0);
	/* Either side of a chunk's edge; a REMOVED across it takes both. */
	ft_added(&t, 1, 5, CHUNK - 2048, 2048);
	ft_added(&t, 1, 5, CHUNK, 4096);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, CHUNK), 4096);
	ft_removed(&t, 1, 5, CHUNK - 1, 2);
	CHECK_EQ(t.n, 0);
	/* A larger folio replaces the smaller ones it covers. */
	ft_added(&t, 1, 5, 0, 2);
	ft_added(&t, 1, 5, 2, 2);
	ft_added(&t, 1, 5, 0, 4);
	CHECK_EQ(t.n, 1);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, 0), 4);
	CHECK_EQ(ft_dirty_count(&t, 1, 5, 2), 1);
	/* A truncate to 0 of a huge file: every chunk of the file goes. */
	ft_added(&t, 1, 5, UINT64_C(1) << 40, 16);
	ft_added(&t, 1, 6, 0, 16);
	ft_removed(&t, 1, 5, 0, UINT64_MAX);
	CHECK_EQ(t.n, 1);
	CHECK_EQ(ft_dirty_count(&t, 1, 6, 0), 16);
	ft_clear(&t);
	CHECK_EQ(t.n, 0);
}

/* A random range in the span, its ends near chunk edges now and then. */
static void random_range(uint64_t *index, uint64_t *count)
{
	uint64_t r = rndn(10);

	if (r < 5) {
		/* A folio's shape, maybe misaligned. */
		uint64_t order = rndn(13);

		*count = UINT64_C(1) << order;
		*index = rndn(SPAN / *count) * *count;
		if (!rndn(8))
			*index += rndn(*count);
	} else if (r < 8) {
		*index = rndn(SPAN);
		*count = 1 + rndn(r == 5 ? 40 : 3000);
		if (rndn(2))
			*index = (rndn(3) + 1) * CHUNK - 1 - rndn(3);	/* at an edge */
	} else if (r < 9) {
		*index = rndn(SPAN);
		*count = UINT64_MAX - *index;	/* to the end */
	} else {
		*index = 0;
		*count = 1 + rndn(SPAN);
	}
	if (*index + *count > SPAN && *count != UINT64_MAX - *index)
		*count = SPAN - *index;
}

static void random_runs(void)
{
	struct folio_table t = { 0 };

	for (int seq = 0; seq < NSEQ; seq++) {
		reset(&t);
		for (int op = 0; op < NOPS; op++) {
			int f = (int)rndn(NFILE);
			uint64_t index, count;

			random_range(&index, &count);
			if (rndn(3)) {
				ft_added(&t, devs[f], inos[f], index, count);
				model_added(f, index, count);
			} else {
				ft_removed(&t, devs[f], inos[f], index, count);
				model_removed(f, index, count);
			}
			if (t.n != model_n) {
				CHECK(0, "seq %d op %d: %" PRIu64 " folios, model %" PRIu64, seq, op,
				      t.n, model_n);
				return;
			}
			if (!same_chunk(&t, (int)rndn(NFILE), rndn(3)))
				return;
		}
		for (int f = 0; f < NFILE; f++)
			for (uint64_t k = 0; k < 3; k++)
				if (!same_chunk(&t, f, k))
					return;
	}
	CHECK(1, "random runs agree with the model");
	ft_clear(&t);
}

/* The bound: never passed; what is known is right (forgotten means 1). */
static void bounded(void)
{
	struct folio_table t = { .max = 20 };
	bool ok = true;

	reset(&t);
	for (int op = 0; op < 4000 && ok; op++) {
		int f = (int)rndn(NFILE);
		uint64_t order = 1 + rndn(6), count = UINT64_C(1) << order;
		uint64_t index = rndn(SPAN / count) * count;

		ft_added(&t, devs[f], inos[f], index, count);
		model_added(f, index, count);
		ok = t.n <= 20;
		for (uint64_t p = 0; ok && p < SPAN; p += 2) {
			uint64_t got = ft_dirty_count(&t, devs[f], inos[f], p);

			ok = got == 1 || got == model_count(f, p);
		}
	}
	CHECK(ok, "bounded: at most 20 folios, each one known right (%" PRIu64 ")", t.n);
	ft_clear(&t);
}

int main(void)
{
	rng = 0x9e3779b97f4a7c15u;
	directed();
	random_runs();
	bounded();
	return check_exit("folios");
}
