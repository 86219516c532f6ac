// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The engine's count of done marks and its bound (engine.h, "Done marks
 * and their bound"), against a brute-force model of what the engine
 * stores per task and file: a whole-file mark, or a page set (the pages
 * done, or for a whole file minus ranges the pages not done). The model
 * counts pieces page by page, cut at 65,536-page blocks. Random sets and
 * resets, whole and ranged, with endpoints clustered at block edges,
 * across 3 blocks and now and then the whole 2^32 pages; random bounds.
 * After every call: the result (0, or -EDQUOT exactly when the model says
 * the bound would be passed, and then nothing changed), the task's count,
 * de_done_check() on random ranges and de_done_covers() on random sizes
 * (whole-file checks over ranges). Inode reuse and de_task_remove()
 * drop marks. Directed cases first, with exact counts.
 */
#include "etest.h"

#define NT	3
#define NF	4
#define SPAN	(3u << 16)	/* pages the random ranges fall in */
#define NSEQ	100
#define NOPS	300
#define COMPACT_BOUND	64	/* bytes a set may hold per mark above its compact form */

/* The model of one task's marks on one file. */
struct mfile {
	bool whole, inv, has;	/* has: a page set is stored */
	uint8_t set[SPAN];
	bool big;		/* the set also holds [SPAN, 2^32) */
	uint64_t cnt;		/* marks(), kept */
};

static struct mfile model[NT][NF];
static uint64_t gen[NF];

static uint64_t pieces(const struct mfile *m)
{
	uint64_t n = 0;

	for (uint32_t p = 0; p < SPAN; p++)
		if (m->set[p] && (p % 65536 == 0 || !m->set[p - 1]))
			n++;
	/* [SPAN, 2^32): whole blocks; the first joins a piece ending at SPAN - 1
	 * only within a block, and SPAN is a block edge. */
	if (m->big)
		n += 65536 - SPAN / 65536;
	return n;
}

static uint64_t marks(const struct mfile *m)
{
	if (m->whole)
		return 1;
	if (!m->has)
		return 0;
	return pieces(m) + m->inv;
}

static uint64_t task_marks(int t)
{
	uint64_t n = 0;

	for (int i = 0; i < NF; i++)
		n += model[t][i].cnt;
	return n;
}

static bool page_done(const struct mfile *m, uint64_t p)
{
	bool in = p < SPAN ? m->set[p] : m->big;

	if (m->whole)
		return true;
	return m->has && in != m->inv;
}

static void set_range(struct mfile *m, uint64_t a, uint64_t z, bool v)
{
	for (uint64_t p = a; p < z && p < SPAN; p++)
		m->set[p] = v;
	if (z > SPAN)
		m->big = v;	/* only whole [0, 2^32) ranges reach past SPAN */
}

static bool set_empty(const struct mfile *m)
{
	if (m->big)
		return false;
	for (uint32_t p = 0; p < SPAN; p++)
		if (m->set[p])
			return false;
	return true;
}

static void clear(struct mfile *m)
{
	memset(m, 0, sizeof(*m));
}

/* The engine's semantics of set and reset, on the model (engine.c). */
static void model_op(struct mfile *m, bool set, uint64_t a, uint64_t count)
{
	uint64_t z = a + count;

	if (set && !count) {
		clear(m);
		m->whole = true;
	} else if (set) {
		if (m->whole)
			return;
		if (m->inv) {
			set_range(m, a, z, false);
			if (set_empty(m)) {
				clear(m);
				m->whole = true;
			}
			return;
		}
		m->has = true;
		set_range(m, a, z, true);
	} else if (!count) {
		clear(m);
	} else if (m->whole) {
		m->whole = false;
		m->inv = m->has = true;
		set_range(m, a, z, true);
	} else if (m->inv) {
		set_range(m, a, z, true);
	} else if (m->has) {
		set_range(m, a, z, false);
		if (set_empty(m))
			clear(m);
	}
}

static uint64_t max_done[NT];

static void op(struct de_engine *e, int t, int i, bool set, uint64_t a, uint64_t count)
{
	struct de_file f = { 9, (uint64_t)i, gen[i] };
	struct de_task_stats st;
	struct mfile after = model[t][i];
	uint64_t old = task_marks(t), new;
	int want, r;

	model_op(&after, set, a, count);
	after.cnt = marks(&after);
	new = old - model[t][i].cnt + after.cnt;
	want = max_done[t] && new > old && new > max_done[t] ? -EDQUOT : 0;
	r = set ? de_done_set(e, t, &f, a, count) : de_done_reset(e, t, &f, a, count);
	if (r != want)
		fprintf(stderr, "%s task %d file %d [%" PRIu64 ", +%" PRIu64 "): %d, expected %d "
			"(marks %" PRIu64 " -> %" PRIu64 ", bound %" PRIu64 ")\n",
			set ? "set" : "reset", t, i, a, count, r, want, old, new, max_done[t]);
	CHECK_EQ(r, want);
	if (!r)
		model[t][i] = after;
	de_task_stats(e, t, &st);
	if (st.done_marks != task_marks(t))
		fprintf(stderr, "after %s task %d file %d [%" PRIu64 ", +%" PRIu64 "): "
			"%" PRIu64 " marks, model %" PRIu64 "\n", set ? "set" : "reset", t, i, a,
			count, st.done_marks, task_marks(t));
	CHECK_EQ(st.done_marks, task_marks(t));
}

static void check_some(struct de_engine *e, int t, int i)
{
	struct de_file f = { 9, (uint64_t)i, gen[i] };
	uint64_t a = rndn(SPAN), len = 1 + rndn(rndn(2) ? 8 : 70000);
	bool all = true;

	if (a + len > SPAN)
		len = SPAN - a;
	for (uint64_t p = a; p < a + len; p++)
		all &= page_done(&model[t][i], p);
	CHECK_EQ(de_done_check(e, t, &f, a, len), all);
	/*
	 * The whole file of a size: a size where the marks end (a run's
	 * end: the one that can be covered), or anywhere.
	 */
	if (rndn(2)) {
		len = 0;
		while (len < SPAN && page_done(&model[t][i], len))
			len++;
		len -= rndn(2) && len ? rndn(len + 1) : 0;
	} else {
		len = rndn(SPAN + 1);
	}
	all = model[t][i].whole || model[t][i].has;
	for (uint64_t p = 0; p < len && all; p++)
		all &= page_done(&model[t][i], p);
	CHECK_EQ(de_done_covers(e, t, &f, len), all);
}

/* Whole-file checks over ranges (de_done_covers()), exact cases. */
static void covers(void)
{
	struct de_engine *e = engine_new();
	struct de_file f = { 9, 1, 0 }, g = { 9, 2, 0 }, h = { 9, 3, 0 };
	int t = de_task_add(e, DUET_EXISTS);

	/* No mark: not done, whatever the size (an empty file too). */
	CHECK_EQ(de_done_covers(e, t, &f, 0), 0);
	CHECK_EQ(de_done_covers(e, t, &f, 16), 0);
	/* Overlapping and adjacent ranges that cover 16 pages. */
	CHECK_EQ(de_done_set(e, t, &f, 4, 6), 0);	/* 4-9 */
	CHECK_EQ(de_done_set(e, t, &f, 0, 5), 0);	/* 0-4: overlaps */
	CHECK_EQ(de_done_covers(e, t, &f, 16), 0);	/* 10-15 not done */
	CHECK_EQ(de_done_covers(e, t, &f, 10), 1);
	CHECK_EQ(de_done_set(e, t, &f, 10, 6), 0);	/* 10-15: adjacent */
	CHECK_EQ(de_done_covers(e, t, &f, 16), 1);
	CHECK_EQ(de_done_check(e, t, &f, 0, 16), 1);
	CHECK_EQ(de_done_check(e, t, &f, 0, 0), 0);	/* ranges are not a whole-file mark */
	CHECK_EQ(de_done_covers(e, t, &f, 17), 0);	/* the file grew a page */
	CHECK_EQ(de_done_covers(e, t, &f, 0), 1);	/* an empty file with marks */
	/* A hole in the middle, then filled by a range over it. */
	CHECK_EQ(de_done_reset(e, t, &f, 7, 1), 0);
	CHECK_EQ(de_done_covers(e, t, &f, 16), 0);
	CHECK_EQ(de_done_covers(e, t, &f, 7), 1);
	CHECK_EQ(de_done_set(e, t, &f, 6, 3), 0);
	CHECK_EQ(de_done_covers(e, t, &f, 16), 1);
	/* Whole file minus a range: covered up to the range, not past it. */
	CHECK_EQ(de_done_set(e, t, &g, 0, 0), 0);
	CHECK_EQ(de_done_reset(e, t, &g, 20, 4), 0);
	CHECK_EQ(de_done_covers(e, t, &g, 20), 1);
	CHECK_EQ(de_done_covers(e, t, &g, 21), 0);
	CHECK_EQ(de_done_set(e, t, &g, 20, 4), 0);	/* whole again */
	CHECK_EQ(de_done_covers(e, t, &g, UINT64_C(1) << 40), 1);
	/* Ranges reach 2^32 pages: a larger file is never covered by them. */
	CHECK_EQ(de_done_set(e, t, &h, 0, UINT64_C(1) << 32), 0);
	CHECK_EQ(de_done_covers(e, t, &h, UINT64_C(1) << 32), 1);
	CHECK_EQ(de_done_covers(e, t, &h, (UINT64_C(1) << 32) + 1), 0);
	/* Another incarnation of the number holds none of them. */
	f.gen = 7;
	CHECK_EQ(de_done_covers(e, t, &f, 16), 0);
	CHECK_EQ(de_done_covers(e, 5, &f, 16), -EINVAL);
	de_engine_free(e);
}

/* An endpoint near a block edge, or anywhere. */
static uint64_t point(void)
{
	uint64_t edge = 65536 * (1 + rndn(SPAN / 65536 - 1));

	if (rndn(3))
		return edge + rndn(5) - 2;
	return rndn(SPAN);
}

static void directed(void)
{
	struct de_engine *e = engine_new();
	struct de_file f = { 9, 1, 0 }, g = { 9, 2, 0 };
	struct de_task_stats st;
	int t = de_task_add(e, DUET_EXISTS);

	memset(model, 0, sizeof(model));
	memset(gen, 0, sizeof(gen));
	memset(max_done, 0, sizeof(max_done));
	CHECK_EQ(t, 0);
	/* Counted as stored: adjacent ranges merge; a range over a block edge is 2. */
	op(e, 0, 1, true, 10, 5);
	op(e, 0, 1, true, 15, 5);
	op(e, 0, 1, true, 65530, 10);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 3);
	/* A hole splits; filling it merges again. */
	op(e, 0, 1, false, 12, 1);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 4);
	op(e, 0, 1, true, 12, 1);
	/* The whole file: 1, whatever it held. */
	op(e, 0, 1, true, 0, 0);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 1);
	/* Whole file minus a range: the file, and the gap stored. */
	op(e, 0, 1, false, 100, 10);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 2);
	/* Every page of 2^32: one piece per block. */
	op(e, 0, 2, true, 0, UINT64_C(1) << 32);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 2 + 65536);
	op(e, 0, 2, false, 0, 0);
	/* The bound: up to it, then -EDQUOT; resetting frees room. */
	max_done[0] = 5;
	de_task_set_max_done(e, 0, 5);
	op(e, 0, 2, true, 0, 1);
	op(e, 0, 2, true, 2, 1);
	op(e, 0, 2, true, 4, 1);
	CHECK_EQ(de_done_set(e, 0, &g, 6, 1), -EDQUOT);
	CHECK_EQ(de_done_check(e, 0, &g, 6, 1), 0);
	/* A change that adds no mark still works at the bound. */
	op(e, 0, 2, true, 0, 2);
	op(e, 0, 2, true, 1, 1);
	CHECK_EQ(de_done_set(e, 0, &g, 0, UINT64_C(1) << 32), -EDQUOT);
	op(e, 0, 2, false, 0, 1);
	op(e, 0, 2, true, 6, 1);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 5);
	/* A reset that would split a range needs room too. */
	op(e, 0, 1, false, 0, 0);
	op(e, 0, 2, true, 10, 20);
	op(e, 0, 2, true, 40, 1);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 5);
	CHECK_EQ(de_done_reset(e, 0, &g, 15, 1), -EDQUOT);
	CHECK_EQ(de_done_check(e, 0, &g, 15, 1), 1);
	/* The file's number reused: its marks go. */
	rel_gen[2] = 5;
	de_file_invalidate(e, 9, 2);
	de_event(e, 9, 2, 0, 1, DUET_ADDED);
	clear(&model[0][2]);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 0);
	g.gen = 5;
	CHECK_EQ(de_done_check(e, 0, &g, 10, 1), 0);
	/* A task removed and its slot reused starts with none, and no bound. */
	op(e, 0, 1, true, 0, 0);
	de_task_remove(e, 0);
	CHECK_EQ(de_task_add(e, DUET_EXISTS), 0);
	de_task_stats(e, 0, &st);
	CHECK_EQ(st.done_marks, 0);
	CHECK_EQ(de_done_check(e, 0, &f, 0, 0), 0);
	for (int k = 0; k < 10; k++)
		CHECK_EQ(de_done_set(e, 0, &f, 2 * k, 1), 0);
	de_engine_free(e);
}

/*
 * Memory per mark, for the layout CRoaring stores worst: in each block a
 * page first (an array), then a long range into the same array.
 */
static void memory(void)
{
	struct de_engine *e = engine_new();
	struct de_engine_stats es0, es;
	struct de_task_stats st;
	struct de_file f = { 9, 1, 0 };
	int t = de_task_add(e, DUET_EXISTS);

	de_engine_stats(e, &es0);
	for (uint64_t k = 0; k < 16384; k++) {
		CHECK_EQ(de_done_set(e, t, &f, k << 16, 1), 0);
		CHECK_EQ(de_done_set(e, t, &f, (k << 16) + 2, 4000), 0);
	}
	de_engine_stats(e, &es);
	de_task_stats(e, t, &st);
	CHECK_EQ(st.done_marks, 32768);
	printf("worst layout: %" PRIu64 " marks, %" PRIu64 " bytes a mark\n", st.done_marks,
	       (es.bytes - es0.bytes) / st.done_marks);
	/* Uncompacted it was 4005 bytes a mark. */
	CHECK((es.bytes - es0.bytes) / st.done_marks <= 2 * COMPACT_BOUND);
	de_engine_free(e);
}

static void run(uint64_t seed)
{
	struct de_engine *e = engine_new();
	int t;

	rng = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	memset(model, 0, sizeof(model));
	memset(gen, 0, sizeof(gen));
	for (t = 0; t < NT; t++) {
		CHECK_EQ(de_task_add(e, DUET_EXISTS), t);
		max_done[t] = rndn(3) ? 0 : 1 + rndn(12);
		de_task_set_max_done(e, t, max_done[t]);
	}
	for (int n = 0; n < NOPS; n++) {
		int i = (int)rndn(NF), k = (int)rndn(100);
		uint64_t a = point(), z = point();

		t = (int)rndn(NT);
		if (a > z) {
			uint64_t x = a;

			a = z;
			z = x;
		}
		if (a == z)
			z++;
		if (k < 40) {
			op(e, t, i, true, a, z - a);
		} else if (k < 75) {
			op(e, t, i, false, a, z - a);
		} else if (k < 83) {
			op(e, t, i, true, 0, 0);
		} else if (k < 88) {
			op(e, t, i, false, 0, 0);
		} else if (k < 90) {
			op(e, t, i, rndn(2), 0, UINT64_C(1) << 32);
		} else if (k < 92) {
			/* Another file takes the number: every task's marks on it go. */
			gen[i]++;
			rel_gen[i] = gen[i];
			de_file_invalidate(e, 9, (uint64_t)i);
			de_event(e, 9, (uint64_t)i, 0, 1, DUET_ADDED);
			for (int u = 0; u < NT; u++)
				clear(&model[u][i]);
		} else {
			check_some(e, t, i);
		}
	}
	for (t = 0; t < NT; t++) {
		struct de_task_stats st;

		de_task_stats(e, t, &st);
		CHECK_EQ(st.done_marks, task_marks(t));
	}
	de_engine_free(e);
}

int main(void)
{
	unsigned int before;

	directed();
	covers();
	memory();
	for (uint64_t seed = 1; seed <= NSEQ; seed++) {
		before = check_failures;
		run(seed);
		if (check_failures != before) {
			fprintf(stderr, "seed %" PRIu64 " failed\n", seed);
			break;
		}
	}
	return check_exit("engine-marks");
}
