// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon client's log of done marks (libduet/marklog.h), without a
 * daemon: what it replays after a restart. Directed sequences of sets and
 * resets, with the exact calls the log replays (ranges merged, split and
 * removed; whole-file marks; a whole file minus ranges, grown, shrunk and
 * done again; all 2^32 pages; another gen of a file; ranges past 2^32
 * refused) and its count of marks; 100,000 sets of one range, and as many
 * overlapping ones, hold one entry of the same size as after the first.
 * Then a model check against the engine itself: random sequences of sets
 * and resets go to an engine task and, where it took them, to the log;
 * the log's replay into a new engine's task leaves it with the same marks
 * (de_done_foreach()), the same count (de_task_stats()), the same answers
 * to de_done_check() and de_done_covers(), and the log counts as the
 * engine does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "check.h"
#include "engine.h"
#include "marklog.h"

#define LIMIT	(UINT64_C(1) << 32)

/* CHECK_EQ() with where it happened. */
#define CHECK_EQM(a, b, fmt, ...)                                                     \
	do {                                                                          \
		int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                         \
		CHECK_AT(a_ == b_, "CHECK_EQ(" #a ", " #b ")",                        \
			 "%" PRId64 ", expected %" PRId64 ": " fmt, a_, b_, __VA_ARGS__); \
	} while (0)

/* ---- the replay as text ---- */

struct call {
	char op;
	struct duet_fileid f;
	uint64_t index, count;
};

struct calls {
	struct call *v;
	size_t n, cap;
	char op;
};

static int collect(void *ud, const struct duet_fileid *f, uint64_t index, uint64_t count)
{
	struct calls *c = ud;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		if (!c->v)
			abort();
	}
	c->v[c->n++] = (struct call){ .op = c->op, .f = *f, .index = index, .count = count };
	return 0;
}

static int call_cmp(const void *a, const void *b)
{
	const struct call *x = a, *y = b;

	if (x->op != y->op)
		return x->op == 'S' ? -1 : 1;	/* the order of the replay */
	if (x->f.dev != y->f.dev)
		return x->f.dev < y->f.dev ? -1 : 1;
	if (x->f.ino != y->f.ino)
		return x->f.ino < y->f.ino ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The replay's calls: "S ino/gen index+count" (sets) then "R ..." (resets). */
static void calls_get(const struct marklog *ml, struct calls *c)
{
	c->n = 0;
	c->op = 'S';
	CHECK_EQ(marklog_foreach(ml, DUET__DONE_SET, collect, c), 0);
	c->op = 'R';
	CHECK_EQ(marklog_foreach(ml, DUET__DONE_RESET, collect, c), 0);
	/* Each file's runs come in page order; files in the hash's order. */
	if (c->n)
		qsort(c->v, c->n, sizeof(*c->v), call_cmp);
}

static void replay_text(const struct marklog *ml, char *buf, size_t len)
{
	struct calls c = { 0 };
	size_t off = 0;

	calls_get(ml, &c);
	buf[0] = '\0';
	for (size_t i = 0; i < c.n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%c %llu/%llu %llu+%llu",
					i ? "; " : "", c.v[i].op, (unsigned long long)c.v[i].f.ino,
					(unsigned long long)c.v[i].f.gen,
					(unsigned long long)c.v[i].index,
					(unsigned long long)c.v[i].count);
	free(c.v);
}

#define CHECK_LOG(ml, want, nmarks)                                                   \
	do {                                                                          \
		char got_[1024];                                                      \
		replay_text(ml, got_, sizeof(got_));                                  \
		CHECK(!strcmp(got_, want), "replay [%s], want [%s]", got_, want);     \
		CHECK_EQ((ml)->marks, nmarks);                                        \
	} while (0)

static struct duet_fileid fid(uint64_t ino, uint64_t gen)
{
	return (struct duet_fileid){ .ino = ino, .gen = gen, .dev = 7 };
}

static void directed(void)
{
	struct marklog ml = { 0 };
	struct duet_fileid a = fid(10, 1), b = fid(11, 1);
	uint64_t bytes1;

	/* Overlapping and adjacent ranges merge; a reset splits and removes. */
	CHECK_EQ(marklog_set(&ml, &a, 0, 10), 0);
	CHECK_EQ(marklog_set(&ml, &a, 5, 10), 0);
	CHECK_EQ(marklog_set(&ml, &a, 20, 10), 0);
	CHECK_EQ(marklog_set(&ml, &a, 30, 1), 0);
	CHECK_EQ(marklog_set(&ml, &a, 22, 3), 0);
	CHECK_LOG(&ml, "S 10/1 0+15; S 10/1 20+11", 2);
	CHECK_EQ(marklog_reset(&ml, &a, 3, 19), 0);
	CHECK_LOG(&ml, "S 10/1 0+3; S 10/1 22+9", 2);
	CHECK_EQ(marklog_reset(&ml, &a, 25, 2), 0);
	CHECK_LOG(&ml, "S 10/1 0+3; S 10/1 22+3; S 10/1 27+4", 3);
	CHECK_EQ(marklog_reset(&ml, &a, 0, 3), 0);
	CHECK_EQ(marklog_reset(&ml, &a, 20, 20), 0);
	CHECK_LOG(&ml, "", 0);
	CHECK_EQ(marklog_files(&ml), 0);
	/* Resetting what is not marked changes nothing. */
	CHECK_EQ(marklog_reset(&ml, &b, 0, 5), 0);
	CHECK_EQ(marklog_reset(&ml, &b, 0, 0), 0);
	CHECK_EQ(marklog_files(&ml), 0);

	/* A range across a block edge: one run replayed, two pieces counted. */
	CHECK_EQ(marklog_set(&ml, &b, 65530, 12), 0);
	CHECK_LOG(&ml, "S 11/1 65530+12", 2);

	/* A whole-file mark takes the ranges' place; ranges in it add nothing. */
	CHECK_EQ(marklog_set(&ml, &a, 4, 4), 0);
	CHECK_EQ(marklog_set(&ml, &a, 0, 0), 0);
	CHECK_EQ(marklog_set(&ml, &a, 5, 10), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12", 3);

	/* Whole file minus ranges: a set, then resets, merged as they grow. */
	CHECK_EQ(marklog_reset(&ml, &a, 5, 5), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12; R 10/1 5+5", 4);
	CHECK_EQ(marklog_reset(&ml, &a, 8, 4), 0);
	CHECK_EQ(marklog_reset(&ml, &a, 100, 1), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12; R 10/1 5+7; R 10/1 100+1", 5);
	/* ... and shrunk by sets, until the file is done as a whole again. */
	CHECK_EQ(marklog_set(&ml, &a, 0, 7), 0);
	CHECK_EQ(marklog_set(&ml, &a, 100, 1), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12; R 10/1 7+5", 4);
	CHECK_EQ(marklog_set(&ml, &a, 6, 8), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12", 3);
	/* A whole-file reset forgets every mark of the file. */
	CHECK_EQ(marklog_reset(&ml, &a, 9, 1), 0);
	CHECK_EQ(marklog_reset(&ml, &a, 0, 0), 0);
	CHECK_LOG(&ml, "S 11/1 65530+12", 2);
	CHECK_EQ(marklog_files(&ml), 1);

	/* All 2^32 pages: not done, as a whole file minus them; then done. */
	CHECK_EQ(marklog_set(&ml, &a, 0, 0), 0);
	CHECK_EQ(marklog_reset(&ml, &a, 0, LIMIT), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12; R 10/1 0+4294967296", 1 + 65536 + 2);
	CHECK_EQ(marklog_set(&ml, &a, 0, LIMIT), 0);
	CHECK_LOG(&ml, "S 10/1 0+0; S 11/1 65530+12", 3);
	CHECK_EQ(marklog_reset(&ml, &a, 0, 0), 0);
	CHECK_EQ(marklog_set(&ml, &a, LIMIT - 1, 1), 0);
	CHECK_EQ(marklog_set(&ml, &a, 0, LIMIT), 0);
	CHECK_LOG(&ml, "S 10/1 0+4294967296; S 11/1 65530+12", 65536 + 2);
	CHECK_EQ(marklog_reset(&ml, &a, 1, LIMIT - 2), 0);
	CHECK_LOG(&ml, "S 10/1 0+1; S 10/1 4294967295+1; S 11/1 65530+12", 4);

	/* Past 2^32 pages: refused, as the daemon refuses it, nothing logged. */
	CHECK_EQ(marklog_set(&ml, &b, LIMIT, 0), -EOVERFLOW);
	CHECK_EQ(marklog_set(&ml, &b, LIMIT - 1, 2), -EOVERFLOW);
	CHECK_EQ(marklog_reset(&ml, &b, 0, LIMIT + 1), -EOVERFLOW);
	CHECK_LOG(&ml, "S 10/1 0+1; S 10/1 4294967295+1; S 11/1 65530+12", 4);

	/* Another gen of (dev, ino) is another file: it replaces the marks. */
	a = fid(10, 2);
	CHECK_EQ(marklog_set(&ml, &a, 50, 2), 0);
	CHECK_LOG(&ml, "S 10/2 50+2; S 11/1 65530+12", 3);
	b = fid(11, 5);
	CHECK_EQ(marklog_reset(&ml, &b, 0, 1), 0);
	CHECK_LOG(&ml, "S 10/2 50+2", 1);
	marklog_clear(&ml);
	CHECK_EQ(marklog_files(&ml), 0);
	CHECK_EQ(ml.marks, 0);
	CHECK_EQ(marklog_bytes(&ml), 0);

	/* 100,000 sets of one range: one entry, no bigger than after the first. */
	CHECK_EQ(marklog_set(&ml, &a, 100, 100), 0);
	bytes1 = marklog_bytes(&ml);
	for (int i = 1; i < 100000; i++)
		if (marklog_set(&ml, &a, 100, 100))
			break;
	CHECK_LOG(&ml, "S 10/2 100+100", 1);
	CHECK_EQ(marklog_files(&ml), 1);
	CHECK_EQ(marklog_bytes(&ml), bytes1);
	/* As many overlapping ones, sliding over 2,000 pages, and resets in them. */
	for (int i = 0; i < 100000; i++) {
		if (marklog_set(&ml, &a, (uint64_t)(i % 2000), 50))
			break;
		if (i % 3 == 0 && marklog_reset(&ml, &a, (uint64_t)(i % 2000) + 10, 5))
			break;
	}
	CHECK_EQ(marklog_set(&ml, &a, 0, 2049), 0);
	CHECK_LOG(&ml, "S 10/2 0+2049", 1);
	CHECK(marklog_bytes(&ml) <= bytes1 + 2 * 2049, "%llu bytes",
	      (unsigned long long)marklog_bytes(&ml));
	marklog_clear(&ml);
}

/* ---- against the engine ---- */

#define NF	4
#define SPAN	(3u << 16)	/* pages the random ranges fall in */
#define NSEQ	60
#define NOPS	400

static uint64_t rng = 0x9e3779b97f4a7c15;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

/* A page of the span, clustered at block edges and near 0 now and then. */
static uint64_t rnd_page(void)
{
	uint64_t edge;

	switch (rnd() % 4) {
	case 0:
		edge = (rnd() % 4) * 65536 + rnd() % 8;
		return edge < 4 ? edge : edge - 4;
	case 1:
		return rnd() % 64;
	default:
		return rnd() % SPAN;
	}
}

struct emark {
	uint64_t ino, index, count;
};

struct emarks {
	struct emark *v;
	size_t n, cap;
};

static int ecollect(void *ud, const struct de_file *f, uint64_t index, uint64_t count)
{
	struct emarks *m = ud;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		if (!m->v)
			abort();
	}
	m->v[m->n++] = (struct emark){ .ino = f->ino, .index = index, .count = count };
	return 0;
}

static int emark_cmp(const void *a, const void *b)
{
	const struct emark *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void emarks_get(const struct de_engine *e, int slot, struct emarks *m)
{
	m->n = 0;
	CHECK_EQ(de_done_foreach(e, slot, ecollect, m), 0);
	if (m->n)
		qsort(m->v, m->n, sizeof(*m->v), emark_cmp);
}

struct ereplay {
	struct de_engine *e;
	int slot;
	bool set;
	int err;
};

static int replay_into(void *ud, const struct duet_fileid *f, uint64_t index, uint64_t count)
{
	struct ereplay *rp = ud;
	struct de_file df = { .dev = f->dev, .ino = f->ino, .gen = f->gen };
	int r = rp->set ? de_done_set(rp->e, rp->slot, &df, index, count) :
			  de_done_reset(rp->e, rp->slot, &df, index, count);

	if (r && !rp->err)
		rp->err = r;
	return 0;
}

static uint64_t task_marks(const struct de_engine *e, int slot)
{
	struct de_task_stats st;

	CHECK_EQ(de_task_stats(e, slot, &st), 0);
	return st.done_marks;
}

static struct de_engine *engine(int *slot)
{
	struct de_engine_opts o = { .sz = sizeof(o) };
	struct de_engine *e = NULL;

	if (de_engine_new(&o, &e) < 0 || (*slot = de_task_add(e, DUET_EXISTS)) < 0) {
		fprintf(stderr, "no engine\n");
		exit(TEST_ERROR);
	}
	return e;
}

/* One random sequence; then the replay against what the engine holds. */
static void model_seq(int seq)
{
	struct marklog ml = { 0 };
	struct emarks ma = { 0 }, mb = { 0 };
	struct ereplay rp = { 0 };
	uint64_t gen[NF] = { 0 };
	struct de_engine *a, *b;
	int sa, sb;

	a = engine(&sa);
	b = engine(&sb);
	for (int i = 0; i < NOPS; i++) {
		int k = (int)(rnd() % NF), r;
		uint64_t x = rnd_page(), y = rnd_page(), index, count;
		struct de_file df;
		struct duet_fileid f;
		bool set = rnd() % 2;

		if (x > y) {
			uint64_t t = x;
			x = y;
			y = t;
		}
		index = x;
		count = y - x + 1;
		if (rnd() % 10 == 0)
			count = 0;	/* the whole file */
		/* Now and then the file is another one (the inode reused). */
		if (rnd() % 200 == 0)
			gen[k]++;
		df = (struct de_file){ .dev = 7, .ino = (uint64_t)k + 1, .gen = gen[k] };
		f = (struct duet_fileid){ .ino = df.ino, .gen = df.gen, .dev = df.dev };
		r = set ? de_done_set(a, sa, &df, index, count) :
			  de_done_reset(a, sa, &df, index, count);
		/*
		 * Another gen while the engine holds the file's marks: refused,
		 * and the client logs nothing.
		 */
		if (r == -ESTALE)
			continue;
		CHECK_EQM(r, 0, "seq %d op %d", seq, i);
		/* The client logs what the daemon took. */
		r = set ? marklog_set(&ml, &f, index, count) : marklog_reset(&ml, &f, index, count);
		CHECK_EQM(r, 0, "seq %d op %d", seq, i);
		CHECK_EQM(ml.marks, task_marks(a, sa), "seq %d op %d", seq, i);
	}
	rp.e = b;
	rp.slot = sb;
	rp.set = true;
	CHECK_EQ(marklog_foreach(&ml, DUET__DONE_SET, replay_into, &rp), 0);
	rp.set = false;
	CHECK_EQ(marklog_foreach(&ml, DUET__DONE_RESET, replay_into, &rp), 0);
	CHECK_EQM(rp.err, 0, "seq %d", seq);
	CHECK_EQM(task_marks(b, sb), task_marks(a, sa), "seq %d", seq);
	emarks_get(a, sa, &ma);
	emarks_get(b, sb, &mb);
	CHECK_EQM(mb.n, ma.n, "seq %d", seq);
	for (size_t i = 0; i < ma.n && i < mb.n; i++)
		CHECK(!memcmp(&ma.v[i], &mb.v[i], sizeof(ma.v[i])),
		      "seq %d: mark %zu: ino %llu %llu+%llu replayed as ino %llu %llu+%llu", seq, i,
		      (unsigned long long)ma.v[i].ino, (unsigned long long)ma.v[i].index,
		      (unsigned long long)ma.v[i].count, (unsigned long long)mb.v[i].ino,
		      (unsigned long long)mb.v[i].index, (unsigned long long)mb.v[i].count);
	for (int k = 0; k < NF; k++) {
		struct de_file df = { .dev = 7, .ino = (uint64_t)k + 1, .gen = gen[k] };

		for (int j = 0; j < 20; j++) {
			uint64_t x = rnd_page(), n = rnd() % 300;

			CHECK_EQM(de_done_check(b, sb, &df, x, n), de_done_check(a, sa, &df, x, n),
				 "seq %d ino %d %llu+%llu", seq, k + 1, (unsigned long long)x,
				 (unsigned long long)n);
			CHECK_EQM(de_done_covers(b, sb, &df, x), de_done_covers(a, sa, &df, x),
				 "seq %d ino %d size %llu", seq, k + 1, (unsigned long long)x);
		}
		CHECK_EQ(de_done_covers(b, sb, &df, 0), de_done_covers(a, sa, &df, 0));
	}
	free(ma.v);
	free(mb.v);
	marklog_clear(&ml);
	de_engine_free(a);
	de_engine_free(b);
}

int main(void)
{
	directed();
	for (int seq = 0; seq < NSEQ; seq++)
		model_seq(seq);
	return check_exit("marklog");
}
