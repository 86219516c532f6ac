// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Randomized engine test against a reference model written independently
 * of the engine: per task and page, event tasks keep the OR of the events
 * since the last fetch, state tasks the state they last saw; the pages'
 * true state evolves with realistic transitions. After every fetch the
 * returned extents are expanded to pages and compared exactly; extents
 * must be ordered and maximal. Scans that read ahead of the stream are
 * interleaved with the events: the other tasks must not notice them.
 * Fixed seeds; the failing one is printed.
 */
#include "etest.h"

#define DEV		3
#define NINO		3
#define NPAGE		64
#define MAXT		10
#define NSEQ		10000
#define NOPS		300

#define C		1u	/* cached */
#define D		2u	/* dirty */

/* Draws below n (< 2^32), from etest.h's sequence. */
static unsigned int rndu(unsigned int n)
{
	return (unsigned int)rndn(n);
}

/* The model. */
static unsigned int ntask;
static uint32_t tmask[MAXT];
static unsigned int cur[NINO][NPAGE];
static unsigned int seen[MAXT][NINO][NPAGE];
static unsigned int evs[MAXT][NINO][NPAGE];
static bool il[MAXT][NINO][NPAGE];
static bool done[MAXT][NINO][NPAGE];
/*
 * The task's last scan of the page claimed a state the page did not have
 * in the stream (a scan read ahead of queued events): what the task is
 * told for it until its next fetch of the page is not checked, but every
 * other task must be exactly as the model says.
 */
static bool wild[MAXT][NINO][NPAGE];
static bool lost[MAXT];
static uint64_t relm[NINO];

static uint32_t model_yield(unsigned int t, unsigned int i, unsigned int p, uint32_t *flags)
{
	uint32_t m = tmask[t], y = evs[t][i][p] & m & 0xf;
	unsigned int s = seen[t][i][p], c = cur[i][p];

	if ((m & DUET_EXISTS) && ((s ^ c) & C))
		y |= (c & C) ? DUET_ADDED : DUET_REMOVED;
	if ((m & DUET_MODIFIED) && ((s ^ c) & D))
		y |= (c & D) ? DUET_DIRTY : DUET_FLUSHED;
	*flags = il[t][i][p] && (y & DUET_FLUSHED) ? DUET_ITEM_INODE_LEVEL : 0;
	return y;
}

static void model_reset(unsigned int t, unsigned int i, unsigned int p)
{
	seen[t][i][p] = cur[i][p];
	evs[t][i][p] = 0;
	il[t][i][p] = false;
	wild[t][i][p] = false;
}

static unsigned int apply(unsigned int s, uint32_t ev)
{
	switch (ev) {
	case DUET_ADDED:
		return C;
	case DUET_REMOVED:
		return 0;
	case DUET_DIRTY:
		return C | D;
	default:
		return s & ~D;
	}
}

static int trace_i = -1, trace_p = -1;

static void model_event(unsigned int i, unsigned int p, uint32_t ev, bool inode_level)
{
	unsigned int t, old = cur[i][p];

	if ((int)i == trace_i && (int)p == trace_p)
		fprintf(stderr, "event %#x il %d\n", ev, inode_level);
	cur[i][p] = apply(cur[i][p], ev);
	for (t = 0; t < ntask; t++) {
		if (!(relm[i] >> t & 1) || done[t][i][p]) {
			model_reset(t, i, p);
			continue;
		}
		evs[t][i][p] |= ev;
		if (inode_level)
			il[t][i][p] = true;
		else if ((tmask[t] & DUET_MODIFIED) && ((old ^ cur[i][p]) & D))
			il[t][i][p] = false;
	}
}

static bool valid_mask(uint32_t m)
{
	if (!m)
		return false;
	if ((m & DUET_EXISTS) && (m & (DUET_ADDED | DUET_REMOVED)))
		return false;
	return !((m & DUET_MODIFIED) && (m & (DUET_DIRTY | DUET_FLUSHED)));
}

static uint64_t model_rel(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	*gen = 7;
	return ino < NINO ? relm[ino] : 0;
}

static bool ok;
static uint64_t delivered, fetches;

#define FAIL(...)							\
	do {								\
		fprintf(stderr, __VA_ARGS__);				\
		ok = false;						\
	} while (0)

/* One fetch of a random batch size for task t, checked against the model. */
static void check_fetch(struct de_engine *e, unsigned int t, size_t n)
{
	struct duet_item it[16];
	uint32_t y, fl;
	int r, k;
	size_t j;
	unsigned int i, p;
	/* Delivered state per page, 0: not delivered. */
	static uint32_t got[NINO][NPAGE], gotfl[NINO][NPAGE];
	long last = -1;	/* last consumed (ino * NPAGE + page) */
	bool full;

	memset(got, 0, sizeof(got));
	memset(gotfl, 0, sizeof(gotfl));
	r = de_fetch(e, t, it, n);
	fetches++;
	if (trace_i >= 0)
		fprintf(stderr, "fetch task %u: %d\n", t, r);
	if (r < 0 || (size_t)r > n) {
		FAIL("task %u: fetch(%zu) returned %d\n", t, n, r);
		return;
	}
	full = (size_t)r == n;
	j = 0;
	if (lost[t]) {
		if (!r || it[0].flags != DUET_ITEM_LOST) {
			FAIL("task %u: LOST not first\n", t);
			return;
		}
		lost[t] = false;
		j = 1;
	}
	for (; j < (size_t)r; j++) {
		const struct duet_item *x = &it[j];

		if (x->flags & DUET_ITEM_LOST || x->dev != DEV || x->ino >= NINO ||
		    x->gen != 7 || !x->count || x->index + x->count > NPAGE || !x->state) {
			FAIL("task %u: bad item ino %" PRIu64 " [%" PRIu64 ", +%" PRIu64
			     ") state %#x flags %#x\n", t, x->ino, x->index, x->count,
			     x->state, x->flags);
			return;
		}
		if ((long)(x->ino * NPAGE + x->index) <= last) {
			FAIL("task %u: item %zu out of order\n", t, j);
			return;
		}
		if (j > 0 && !(it[j - 1].flags & DUET_ITEM_LOST) && it[j - 1].ino == x->ino &&
		    it[j - 1].index + it[j - 1].count == x->index &&
		    it[j - 1].state == x->state && it[j - 1].flags == x->flags) {
			FAIL("task %u: items %zu and %zu not merged\n", t, j - 1, j);
			return;
		}
		delivered += x->count;
		for (k = 0; k < (int)x->count; k++) {
			got[x->ino][x->index + k] = x->state;
			gotfl[x->ino][x->index + k] = x->flags;
		}
		last = x->ino * NPAGE + x->index + x->count - 1;
	}
	if (!full)
		last = NINO * NPAGE;
	for (i = 0; i < NINO; i++) {
		for (p = 0; p < NPAGE; p++) {
			if ((long)(i * NPAGE + p) > last)
				break;
			y = model_yield(t, i, p, &fl);
			if (wild[t][i][p]) {
				model_reset(t, i, p);
				continue;
			}
			if (y != got[i][p] || (y && fl != gotfl[i][p]))
				FAIL("task %u (mask %#x): ino %u page %u: got %#x/%#x, "
				     "model %#x/%#x (seen %u cur %u ev %#x)\n",
				     t, tmask[t], i, p, got[i][p], gotfl[i][p], y, fl,
				     seen[t][i][p], cur[i][p], evs[t][i][p]);
			model_reset(t, i, p);
		}
	}
	/* Whatever the model still holds must be pending in the engine. */
	{
		uint64_t want = 0;

		for (i = 0; i < NINO; i++)
			for (p = 0; p < NPAGE; p++)
				if (!wild[t][i][p] && model_yield(t, i, p, &fl))
					want++;
		if (de_pending(e, t) < want)
			FAIL("task %u: %" PRIu64 " pending, model has %" PRIu64 "\n", t,
			     de_pending(e, t), want);
	}
}

/* A realistic event on a run of pages in the same state. */
static void random_event(struct de_engine *e)
{
	unsigned int i = rndu(NINO), p = rndu(NPAGE), s = cur[i][p], len, q;
	uint32_t ev;

	if (!(s & C))
		ev = DUET_ADDED;
	else if (s & D)
		ev = rndu(3) ? DUET_FLUSHED : DUET_REMOVED;
	else
		ev = rndu(2) ? DUET_DIRTY : DUET_REMOVED;
	len = 1 + rndu(rndu(4) ? 4 : 16);
	for (q = 1; q < len && p + q < NPAGE && cur[i][p + q] == s; q++)
		;
	len = q;
	if (de_event(e, DEV, i, p, len, ev) < 0)
		FAIL("de_event failed\n");
	for (q = p; q < p + len; q++)
		model_event(i, q, ev, false);
}

static void random_done(struct de_engine *e)
{
	unsigned int t = rndu(ntask), i = rndu(NINO), p, q, len;
	struct de_file f = { DEV, i, 7 };
	bool set = rndu(2), whole = !rndu(4);
	int r;

	p = whole ? 0 : rndu(NPAGE);
	len = whole ? NPAGE : 1 + rndu(NPAGE - p);
	if (set)
		r = de_done_set(e, t, &f, whole ? 0 : p, whole ? 0 : len);
	else
		r = de_done_reset(e, t, &f, whole ? 0 : p, whole ? 0 : len);
	if (r < 0)
		FAIL("done %d: %d\n", set, r);
	if ((int)i == trace_i && trace_p >= (int)p && trace_p < (int)(p + len))
		fprintf(stderr, "done %d task %u\n", set, t);
	for (q = p; q < p + len; q++) {
		done[t][i][q] = set;
		if (set)
			model_reset(t, i, q);
	}
	/* The check agrees with the model. */
	p = rndu(NPAGE);
	len = 1 + rndu(NPAGE - p);
	{
		bool all = true;

		for (q = p; q < p + len; q++)
			all &= done[t][i][q];
		if (de_done_check(e, t, &f, p, len) != all)
			FAIL("done_check task %u ino %u [%u, +%u) != %d\n", t, i, p, len, all);
	}
}

/*
 * A scan that read ahead of the stream: it claims pages cached whatever
 * their state in the stream (dirty only where they are dirty, as a scan's
 * dirty pages are also the inode's). No other task may notice.
 */
static void ahead_scan(struct de_engine *e)
{
	unsigned int t = rndu(ntask), i = rndu(NINO), p = rndu(NPAGE), q, len;
	struct de_file f = { DEV, i, 7 };
	bool dirty = true;

	if (!(relm[i] >> t & 1))
		return;
	len = 1 + rndu(8);
	if (p + len > NPAGE)
		len = NPAGE - p;
	for (q = p; q < p + len; q++)
		dirty &= (cur[i][q] & D) != 0;
	dirty &= rndu(2);
	if (de_scan_pages(e, t, &f, p, len, dirty) < 0)
		FAIL("ahead scan failed\n");
	if ((int)i == trace_i && trace_p >= (int)p && trace_p < (int)(p + len))
		fprintf(stderr, "ahead scan task %u dirty %d\n", t, dirty);
	for (q = p; q < p + len; q++)
		if (!done[t][i][q])
			wild[t][i][q] = true;
}

static void random_scan(struct de_engine *e)
{
	unsigned int t = rndu(ntask), i = rndu(NINO), p = rndu(NPAGE), s = cur[i][p], q, len;
	struct de_file f = { DEV, i, 7 };

	/* A task scans only the files it is registered for. */
	if (!(s & C) || !(relm[i] >> t & 1))
		return;
	len = 1 + rndu(16);
	for (q = 1; q < len && p + q < NPAGE && cur[i][p + q] == s; q++)
		;
	len = q;
	if (de_scan_pages(e, t, &f, p, len, s & D) < 0)
		FAIL("scan failed\n");
	if ((int)i == trace_i && trace_p >= (int)p && trace_p < (int)(p + len))
		fprintf(stderr, "scan task %u\n", t);
	for (q = p; q < p + len; q++) {
		if (done[t][i][q])
			continue;
		seen[t][i][q] = 0;
		evs[t][i][q] |= DUET_ADDED | (s & D ? DUET_DIRTY : 0);
	}
}

static void run(uint64_t seed)
{
	struct de_engine_opts o = { .sz = sizeof(o), .relevant = model_rel };
	struct de_engine_stats es;
	struct de_engine *e;
	unsigned int t, i, p, op;
	uint32_t m;
	bool same;

	rng = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	memset(cur, 0, sizeof(cur));
	memset(seen, 0, sizeof(seen));
	memset(evs, 0, sizeof(evs));
	memset(il, 0, sizeof(il));
	memset(done, 0, sizeof(done));
	memset(wild, 0, sizeof(wild));
	memset(lost, 0, sizeof(lost));
	if (de_engine_new(&o, &e) < 0) {
		FAIL("engine_new\n");
		return;
	}
	ntask = 1 + rndu(rndu(4) ? 4 : MAXT);
	/*
	 * One run in three gives every task one mask: many tasks told the
	 * same events share one byte per page (E_UNI) until they differ.
	 */
	same = !rndu(3);
	for (t = 0; t < ntask; t++) {
		do
			m = rndu(64);
		while (!valid_mask(m));
		/* Favour the pairs applications use. */
		if (!rndu(4))
			m = DUET_EXISTS | DUET_MODIFIED;
		if (same && t)
			m = tmask[0];
		tmask[t] = m;
		if (de_task_add(e, m) != (int)t)
			FAIL("task_add\n");
	}
	for (i = 0; i < NINO; i++)
		relm[i] = rndu(5) ? rnd() | rnd() : 0;
	for (op = 0; op < NOPS && ok; op++) {
		unsigned int k = rndu(100);

		if (k < 55) {
			random_event(e);
		} else if (k < 75) {
			check_fetch(e, rndu(ntask), 1 + rndu(rndu(2) ? 3 : 16));
		} else if (k < 83) {
			random_done(e);
		} else if (k < 88) {
			i = rndu(NINO);
			if (de_event_inode_flushed(e, DEV, i) < 0)
				FAIL("inode_flushed\n");
			for (p = 0; p < NPAGE; p++)
				if (cur[i][p] & D)
					model_event(i, p, DUET_FLUSHED, true);
		} else if (k < 91) {
			random_scan(e);
		} else if (k < 93) {
			ahead_scan(e);
		} else if (k < 95) {
			uint64_t lm = rnd() & ((UINT64_C(1) << ntask) - 1);

			de_lost(e, lm);
			/* LOST drops what was pending: the task's baseline is now. */
			for (t = 0; t < ntask; t++) {
				if (!(lm >> t & 1))
					continue;
				lost[t] = true;
				for (i = 0; i < NINO; i++)
					for (p = 0; p < NPAGE; p++)
						model_reset(t, i, p);
			}
		} else if (k < 98) {
			/* Same answer again: nothing pending may change. */
			de_file_invalidate(e, DEV, rndu(NINO));
		} else {
			de_invalidate_all(e);
		}
	}
	/* Drain everything: the model must be empty, and so the table. */
	for (t = 0; t < ntask && ok; t++) {
		check_fetch(e, t, 16);
		while (ok && de_pending(e, t))
			check_fetch(e, t, 16);
	}
	if (ok && (de_engine_stats(e, &es) < 0 || es.entries != 0))
		FAIL("%" PRIu64 " entries left after draining\n", es.entries);
	de_engine_free(e);
}

int main(int argc, char **argv)
{
	uint64_t seed, first = 1, nseq = NSEQ;

	if (getenv("DUET_MODEL_SEQS"))
		nseq = strtoull(getenv("DUET_MODEL_SEQS"), NULL, 0);
	if (argc > 1)
		first = strtoull(argv[1], NULL, 0), nseq = 1;
	if (argc > 3)
		trace_i = atoi(argv[2]), trace_p = atoi(argv[3]);
	for (seed = first; seed < first + nseq; seed++) {
		ok = true;
		run(seed);
		CHECK(ok, "seed %" PRIu64 " failed (rerun: %s %" PRIu64 ")", seed, argv[0], seed);
		if (!ok)
			break;
	}
	printf("%" PRIu64 " sequences, %" PRIu64 " fetches, %" PRIu64 " pages delivered\n",
	       seed - first, fetches, delivered);
	return check_exit("engine-model");
}
