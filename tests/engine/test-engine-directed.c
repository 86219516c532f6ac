// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Directed engine tests: small event sequences with the exact items each
 * task must receive.
 */
#include "etest.h"

#define DEV 8

struct exp {
	uint64_t ino, index, count;
	uint32_t state, flags;
};

/* Fetches everything (batches of batch) and compares with x exactly. */
static void expect_(int line, struct de_engine *e, int slot, size_t batch,
		    const struct exp *x, size_t nx)
{
	struct duet_item it[512];
	size_t got = 0, i;
	int r;

	for (;;) {
		r = de_fetch(e, slot, it + got, batch);
		if (r < 0 || got + r > 256) {
			check_fail(__FILE__, line, "EXPECT", "fetch returned %d", r);
			return;
		}
		if (!r)
			break;
		got += r;
	}
	CHECK_LINE(line, got == nx, "EXPECT", "%zu items, expected %zu", got, nx);
	for (i = 0; i < got && i < nx; i++)
		CHECK_LINE(line, it[i].ino == x[i].ino && it[i].index == x[i].index &&
			   it[i].count == x[i].count && it[i].state == x[i].state &&
			   it[i].flags == x[i].flags && ((x[i].flags & DUET_ITEM_LOST) ||
			   it[i].dev == DEV), "EXPECT",
			   "item %zu: ino %" PRIu64 " [%" PRIu64 ", +%" PRIu64
			   ") state %#x flags %#x, expected ino %" PRIu64 " [%" PRIu64
			   ", +%" PRIu64 ") state %#x flags %#x",
			   i, it[i].ino, it[i].index, it[i].count, it[i].state,
			   it[i].flags, x[i].ino, x[i].index, x[i].count, x[i].state,
			   x[i].flags);
	CHECK_EQ(de_pending(e, slot), 0);
}

#define EXPECT(e, slot, ...)						\
	do {								\
		const struct exp x_[] = { __VA_ARGS__ };		\
		expect_(__LINE__, e, slot, 64, x_, sizeof(x_) / sizeof(x_[0])); \
	} while (0)
#define EXPECT_NONE(e, slot) expect_(__LINE__, e, slot, 64, NULL, 0)

static void test_cancel(void)
{
	struct de_engine *e = engine_new();
	int ex = de_task_add(e, DUET_EXISTS);
	int ev = de_task_add(e, DUET_ADDED | DUET_REMOVED);
	int mod = de_task_add(e, DUET_MODIFIED);
	struct de_task_stats st;

	CHECK_EQ(ex, 0);
	CHECK_EQ(ev, 1);
	CHECK_EQ(mod, 2);
	/* ADDED then REMOVED. */
	CHECK_EQ(de_event(e, DEV, 1, 5, 1, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 1, 5, 1, DUET_REMOVED), 0);
	CHECK_EQ(de_pending(e, ex), 1);
	EXPECT_NONE(e, ex);
	EXPECT(e, ev, { 1, 5, 1, DUET_ADDED | DUET_REMOVED, 0 });
	EXPECT_NONE(e, mod);
	CHECK_EQ(de_task_stats(e, ex, &st), 0);
	CHECK_EQ(st.cancelled, 1);
	CHECK_EQ(st.items, 0);

	/* REMOVED then ADDED (the page was cached before). */
	CHECK_EQ(de_event(e, DEV, 1, 9, 1, DUET_REMOVED), 0);
	CHECK_EQ(de_event(e, DEV, 1, 9, 1, DUET_ADDED), 0);
	EXPECT_NONE(e, ex);
	EXPECT(e, ev, { 1, 9, 1, DUET_ADDED | DUET_REMOVED, 0 });

	/* DIRTY then FLUSHED. */
	CHECK_EQ(de_event(e, DEV, 1, 3, 1, DUET_DIRTY), 0);
	CHECK_EQ(de_event(e, DEV, 1, 3, 1, DUET_FLUSHED), 0);
	EXPECT_NONE(e, mod);
	EXPECT_NONE(e, ex);
	EXPECT_NONE(e, ev);

	/* Net changes survive. */
	CHECK_EQ(de_event(e, DEV, 1, 3, 1, DUET_DIRTY), 0);
	CHECK_EQ(de_event(e, DEV, 1, 4, 1, DUET_ADDED), 0);
	EXPECT(e, mod, { 1, 3, 1, DUET_DIRTY, 0 });
	EXPECT(e, ex, { 1, 4, 1, DUET_ADDED, 0 });
	EXPECT(e, ev, { 1, 4, 1, DUET_ADDED, 0 });
	CHECK_EQ(de_event(e, DEV, 1, 3, 1, DUET_FLUSHED), 0);
	EXPECT(e, mod, { 1, 3, 1, DUET_FLUSHED, 0 });
	de_engine_free(e);
}

static void test_extents(void)
{
	struct de_engine *e = engine_new();
	int ex = de_task_add(e, DUET_EXISTS);
	int ev = de_task_add(e, DUET_ADDED | DUET_DIRTY);
	struct duet_item it[4];
	struct de_task_stats st;
	uint64_t next = 0;
	int i, r;

	CHECK_EQ(de_event(e, DEV, 2, 0, 256, DUET_ADDED), 0);
	EXPECT(e, ex, { 2, 0, 256, DUET_ADDED, 0 });
	CHECK_EQ(de_task_stats(e, ex, &st), 0);
	CHECK_EQ(st.items, 1);
	CHECK_EQ(st.pages, 256);
	CHECK_EQ(st.coalesced, 255);

	/* Batches of one item return the same pages. */
	for (i = 0; i < 256; i++) {
		r = de_fetch(e, ev, it, 1);
		if (r != 1)
			break;
		CHECK_EQ(it[0].index, 0);
		CHECK_EQ(it[0].count, 256);
		next = it[0].index + it[0].count;
	}
	CHECK_EQ(next, 256);
	CHECK_EQ(de_fetch(e, ev, it, 1), 0);

	/* A hole splits extents; different states split too. */
	CHECK_EQ(de_event(e, DEV, 2, 300, 10, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 2, 311, 5, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 2, 302, 2, DUET_DIRTY), 0);
	CHECK_EQ(de_event(e, DEV, 1, 7, 1, DUET_ADDED), 0);
	EXPECT(e, ex, { 1, 7, 1, DUET_ADDED, 0 }, { 2, 300, 10, DUET_ADDED, 0 },
	       { 2, 311, 5, DUET_ADDED, 0 });
	/* Batches of one: the same items one by one. */
	{
		static const struct exp x[] = {
			{ 1, 7, 1, DUET_ADDED, 0 },
			{ 2, 300, 2, DUET_ADDED, 0 },
			{ 2, 302, 2, DUET_ADDED | DUET_DIRTY, 0 },
			{ 2, 304, 6, DUET_ADDED, 0 },
			{ 2, 311, 5, DUET_ADDED, 0 },
		};

		expect_(__LINE__, e, ev, 1, x, 5);
	}
	de_engine_free(e);
}

static void test_done(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	int b = de_task_add(e, DUET_ADDED);
	struct de_file f3 = { DEV, 3, 0 }, f4 = { DEV, 4, 0 }, f5 = { DEV, 5, 0 };
	struct de_engine_stats es;

	/* Done file: nothing queued. */
	CHECK_EQ(de_done_tasks(e, DEV, 3), 0);
	CHECK_EQ(de_done_set(e, a, &f3, 0, 0), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 3), UINT64_C(1) << a);
	CHECK_EQ(de_done_check(e, a, &f3, 0, 0), 1);
	CHECK_EQ(de_done_check(e, a, &f3, 10, 5), 1);
	CHECK_EQ(de_done_check(e, b, &f3, 0, 0), 0);
	CHECK_EQ(de_event(e, DEV, 3, 0, 8, DUET_ADDED), 0);
	CHECK_EQ(de_pending(e, a), 0);
	EXPECT_NONE(e, a);
	EXPECT(e, b, { 3, 0, 8, DUET_ADDED, 0 });

	/* Done range: only the other pages. */
	CHECK_EQ(de_done_set(e, a, &f4, 2, 3), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 4), UINT64_C(1) << a);
	CHECK_EQ(de_done_set(e, b, &f4, 7, 1), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 4), UINT64_C(1) << a | UINT64_C(1) << b);
	CHECK_EQ(de_done_reset(e, b, &f4, 0, 0), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 4), UINT64_C(1) << a);
	CHECK_EQ(de_done_check(e, a, &f4, 2, 3), 1);
	CHECK_EQ(de_done_check(e, a, &f4, 2, 4), 0);
	CHECK_EQ(de_done_check(e, a, &f4, 0, 0), 0);
	CHECK_EQ(de_event(e, DEV, 4, 0, 8, DUET_ADDED), 0);
	EXPECT(e, a, { 4, 0, 2, DUET_ADDED, 0 }, { 4, 5, 3, DUET_ADDED, 0 });
	EXPECT(e, b, { 4, 0, 8, DUET_ADDED, 0 });

	/* Marking done drops already-pending pages, for that task only. */
	CHECK_EQ(de_event(e, DEV, 5, 0, 10, DUET_ADDED), 0);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 10);
	CHECK_EQ(de_done_set(e, a, &f5, 4, 2), 0);
	CHECK_EQ(de_pending(e, a), 8);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 10);
	EXPECT(e, a, { 5, 0, 4, DUET_ADDED, 0 }, { 5, 6, 4, DUET_ADDED, 0 });
	CHECK_EQ(de_event(e, DEV, 5, 20, 10, DUET_ADDED), 0);
	CHECK_EQ(de_done_set(e, a, &f5, 0, 0), 0);
	EXPECT_NONE(e, a);
	EXPECT(e, b, { 5, 0, 10, DUET_ADDED, 0 }, { 5, 20, 10, DUET_ADDED, 0 });
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 0);

	/* Reset: whole file minus a range, then everything. */
	CHECK_EQ(de_done_reset(e, a, &f5, 2, 2), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 5), UINT64_C(1) << a);	/* whole file minus */
	CHECK_EQ(de_done_check(e, a, &f5, 0, 0), 0);
	CHECK_EQ(de_done_check(e, a, &f5, 0, 2), 1);
	CHECK_EQ(de_done_check(e, a, &f5, 2, 1), 0);
	CHECK_EQ(de_event(e, DEV, 5, 40, 1, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 5, 0, 5, DUET_REMOVED), 0);
	EXPECT(e, a, { 5, 2, 2, DUET_REMOVED, 0 });
	CHECK_EQ(de_done_reset(e, a, &f5, 0, 0), 0);
	CHECK_EQ(de_done_check(e, a, &f5, 0, 2), 0);
	CHECK_EQ(de_done_reset(e, a, &f4, 0, 0), 0);
	CHECK_EQ(de_done_check(e, a, &f4, 2, 1), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 5), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 4), 0);
	CHECK_EQ(de_done_tasks(e, DEV, 77), 0);

	/* Bad gen: -ESTALE. */
	{
		struct de_file g = { DEV, 3, 99 };

		CHECK_EQ(de_done_set(e, a, &g, 0, 0), -ESTALE);
		CHECK_EQ(de_done_check(e, a, &g, 0, 0), 0);
	}
	de_engine_free(e);
}

struct foreach_acc {
	unsigned int n;
	uint64_t sum;
};

static int foreach_cb(void *ud, const struct de_file *f, uint64_t index, uint64_t count)
{
	struct foreach_acc *acc = ud;

	acc->n++;
	acc->sum += f->ino * 1000000 + index * 1000 + count;
	return 0;
}

static int foreach_stop(void *ud, const struct de_file *f, uint64_t index, uint64_t count)
{
	return 42;
}

/*
 * A range over two blocks (65,536 pages each) whose second block holds no
 * done page, with a later block that does: not done (CRoaring 0.2.66's
 * contains_range looked at the later block's container).
 */
static void test_done_blocks(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	struct de_file f = { 1, 5, 0 };

	CHECK_EQ(de_done_set(e, a, &f, 0, 65536), 0);
	CHECK_EQ(de_done_set(e, a, &f, 5 * 65536, 1), 0);
	CHECK_EQ(de_done_check(e, a, &f, 0, 65537), 0);
	CHECK_EQ(de_done_check(e, a, &f, 0, 65536), 1);
	/* And with no container after the range's last block (it asserted). */
	CHECK_EQ(de_done_set(e, a, &f, 65536, 2 * 65536), 0);
	CHECK_EQ(de_done_reset(e, a, &f, 5 * 65536, 1), 0);
	CHECK_EQ(de_done_check(e, a, &f, 2 * 65536, 65546), 0);
	CHECK_EQ(de_done_check(e, a, &f, 0, 3 * 65536), 1);
	de_engine_free(e);
}

static void test_done_foreach(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	struct de_file f1 = { DEV, 1, 0 }, f2 = { DEV, 2, 0 };
	struct foreach_acc acc = { 0 };

	CHECK_EQ(de_done_foreach(e, a, foreach_stop, NULL), 0);
	CHECK_EQ(de_done_set(e, a, &f1, 0, 0), 0);
	CHECK_EQ(de_done_set(e, a, &f2, 3, 2), 0);
	CHECK_EQ(de_done_set(e, a, &f2, 5, 1), 0);
	CHECK_EQ(de_done_set(e, a, &f2, 9, 1), 0);
	CHECK_EQ(de_done_foreach(e, a, foreach_cb, &acc), 0);
	CHECK_EQ(acc.n, 3);
	CHECK_EQ(acc.sum, 1000000 + 2 * 2000000 + 3003 + 9001);
	CHECK_EQ(de_done_foreach(e, a, foreach_stop, NULL), 42);

	/* Whole file minus ranges. */
	CHECK_EQ(de_done_reset(e, a, &f1, 2, 2), 0);
	CHECK_EQ(de_done_reset(e, a, &f1, 10, 1), 0);
	CHECK_EQ(de_done_set(e, a, &f1, 3, 1), 0);
	CHECK_EQ(de_done_check(e, a, &f1, 0, 2), 1);
	CHECK_EQ(de_done_check(e, a, &f1, 0, 3), 0);
	CHECK_EQ(de_done_check(e, a, &f1, 3, 7), 1);
	CHECK_EQ(de_done_check(e, a, &f1, 11, UINT32_MAX - 11), 1);
	memset(&acc, 0, sizeof(acc));
	CHECK_EQ(de_done_foreach(e, a, foreach_cb, &acc), 0);
	CHECK_EQ(acc.n, 5);
	CHECK_EQ(acc.sum, 3 * 1000000 + 2 + 3000 + 7 + 11000 + (UINT64_C(1) << 32) - 11 +
		 2 * 2000000 + 3003 + 9001);
	/* Setting the gaps makes it whole again. */
	CHECK_EQ(de_done_set(e, a, &f1, 0, 20), 0);
	CHECK_EQ(de_done_check(e, a, &f1, 0, 0), 1);
	de_engine_free(e);
}

static void test_inode_flushed(void)
{
	struct de_engine *e = engine_new();
	int mod = de_task_add(e, DUET_MODIFIED);
	int fl = de_task_add(e, DUET_FLUSHED);
	int dfl = de_task_add(e, DUET_DIRTY | DUET_FLUSHED);

	CHECK_EQ(de_event(e, DEV, 6, 0, 10, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 6, 3, 1, DUET_DIRTY), 0);
	CHECK_EQ(de_event(e, DEV, 6, 7, 1, DUET_DIRTY), 0);
	CHECK_EQ(de_event_inode_flushed(e, DEV, 6), 0);
	EXPECT_NONE(e, mod);
	EXPECT(e, fl, { 6, 3, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL },
	       { 6, 7, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	EXPECT(e, dfl, { 6, 3, 1, DUET_DIRTY | DUET_FLUSHED, DUET_ITEM_INODE_LEVEL },
	       { 6, 7, 1, DUET_DIRTY | DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	/* The dirty set is empty now: a second flush yields nothing. */
	CHECK_EQ(de_event_inode_flushed(e, DEV, 6), 0);
	EXPECT_NONE(e, fl);

	/* Dirty fetched, then flushed per inode: MODIFIED sees FLUSHED. */
	CHECK_EQ(de_event(e, DEV, 6, 4, 2, DUET_DIRTY), 0);
	EXPECT(e, mod, { 6, 4, 2, DUET_DIRTY, 0 });
	CHECK_EQ(de_event_inode_flushed(e, DEV, 6), 0);
	EXPECT(e, mod, { 6, 4, 2, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	/* A removed dirty page leaves the dirty set. */
	CHECK_EQ(de_event(e, DEV, 6, 1, 2, DUET_DIRTY), 0);
	CHECK_EQ(de_event(e, DEV, 6, 2, 1, DUET_REMOVED), 0);
	CHECK_EQ(de_event_inode_flushed(e, DEV, 6), 0);
	EXPECT(e, fl, { 6, 1, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL },
	       { 6, 4, 2, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	de_engine_free(e);
}

/*
 * Dirtied again during its write-back (stock kernel: no event cleaned it
 * in between; the inode-level FLUSHED comes at the end): the state task
 * knows the page dirty, nothing is new; the event tasks see the event.
 */
static void test_redirty(void)
{
	struct de_engine *e = engine_new();
	int mod = de_task_add(e, DUET_MODIFIED);
	int fl = de_task_add(e, DUET_FLUSHED);
	int dfl = de_task_add(e, DUET_DIRTY | DUET_FLUSHED);

	CHECK_EQ(de_event(e, DEV, 9, 0, 8, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 9, 5, 1, DUET_DIRTY), 0);
	EXPECT(e, mod, { 9, 5, 1, DUET_DIRTY, 0 });
	EXPECT(e, dfl, { 9, 5, 1, DUET_DIRTY, 0 });
	CHECK_EQ(de_event(e, DEV, 9, 5, 1, DUET_DIRTY), 0);
	EXPECT_NONE(e, mod);
	EXPECT(e, dfl, { 9, 5, 1, DUET_DIRTY, 0 });
	CHECK_EQ(de_event_inode_flushed(e, DEV, 9), 0);
	EXPECT(e, mod, { 9, 5, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	EXPECT(e, fl, { 9, 5, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	EXPECT(e, dfl, { 9, 5, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	de_engine_free(e);
}

static void test_scan_lost(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS | DUET_MODIFIED);
	int b = de_task_add(e, DUET_EXISTS);
	struct de_file f = { DEV, 7, 0 };
	struct duet_item it[8];
	int r;

	CHECK_EQ(de_scan_pages(e, a, &f, 0, 4, false), 0);
	CHECK_EQ(de_scan_pages(e, a, &f, 4, 2, true), 0);
	CHECK_EQ(de_pending(e, b), 0);
	EXPECT_NONE(e, b);
	EXPECT(e, a, { 7, 0, 4, DUET_ADDED, 0 }, { 7, 4, 2, DUET_ADDED | DUET_DIRTY, 0 });
	/* The dirty set learned pages 4 and 5. */
	CHECK_EQ(de_event_inode_flushed(e, DEV, 7), 0);
	EXPECT(e, a, { 7, 4, 2, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	EXPECT_NONE(e, b);

	/* LOST comes first, once, for the tasks in the mask. */
	CHECK_EQ(de_event(e, DEV, 7, 10, 1, DUET_ADDED), 0);
	CHECK_EQ(de_lost(e, UINT64_C(1) << a), 0);
	CHECK_EQ(de_lost(e, UINT64_C(1) << a), 0);
	r = de_fetch(e, a, it, 1);
	CHECK_EQ(r, 1);
	CHECK_EQ(it[0].flags, DUET_ITEM_LOST);
	CHECK_EQ(it[0].count, 0);
	/* LOST drops what was pending for the task (the caller rescans). */
	EXPECT_NONE(e, a);
	EXPECT(e, b, { 7, 10, 1, DUET_ADDED, 0 });
	CHECK_EQ(de_event(e, DEV, 7, 11, 1, DUET_ADDED), 0);
	CHECK_EQ(de_lost(e, UINT64_C(1) << b), 0);
	EXPECT(e, b, { 0, 0, 0, 0, DUET_ITEM_LOST });
	/* A rescan after LOST: pages already seen come again as added. */
	CHECK_EQ(de_scan_pages(e, b, &f, 10, 2, false), 0);
	EXPECT(e, b, { 7, 10, 2, DUET_ADDED, 0 });
	EXPECT(e, a, { 7, 11, 1, DUET_ADDED, 0 });
	de_engine_free(e);
}

/*
 * A scan read ahead of the stream (the daemon-trust issue, item 7): task a
 * fetched REMOVED; task b's registration scan then saw the page cached
 * again while its ADDED was still in the ring buffer. When that ADDED
 * arrives, a must be told, and b's view must not be disturbed either.
 */
static void test_scan_ahead(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	int b = de_task_add(e, DUET_EXISTS | DUET_MODIFIED);
	int c = de_task_add(e, DUET_ADDED | DUET_REMOVED);
	struct de_file f = { DEV, 9, 0 };

	CHECK_EQ(de_event(e, DEV, 9, 0, 4, DUET_ADDED), 0);
	EXPECT(e, a, { 9, 0, 4, DUET_ADDED, 0 });
	CHECK_EQ(de_event(e, DEV, 9, 0, 4, DUET_REMOVED), 0);
	EXPECT(e, a, { 9, 0, 4, DUET_REMOVED, 0 });
	EXPECT(e, c, { 9, 0, 4, DUET_ADDED | DUET_REMOVED, 0 });
	/* b's scan: pages 0-3 cached, dirty (ahead of ADDED and DIRTY). */
	CHECK_EQ(de_scan_pages(e, b, &f, 0, 4, true), 0);
	EXPECT_NONE(e, a);
	EXPECT_NONE(e, c);
	/* The events the scan was ahead of. */
	CHECK_EQ(de_event(e, DEV, 9, 0, 4, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 9, 0, 4, DUET_DIRTY), 0);
	EXPECT(e, a, { 9, 0, 4, DUET_ADDED, 0 });
	EXPECT(e, c, { 9, 0, 4, DUET_ADDED, 0 });
	/* b: added and dirty once, from the scan and the events alike. */
	EXPECT(e, b, { 9, 0, 4, DUET_ADDED | DUET_DIRTY, 0 });

	/*
	 * The other way round: a scan of page 8 while other tasks hold it
	 * with a state the events gave (not cached): the scan does not
	 * override it, and b learns of the page with its ADDED.
	 */
	CHECK_EQ(de_event(e, DEV, 9, 8, 1, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 9, 8, 1, DUET_REMOVED), 0);
	EXPECT_NONE(e, b);	/* added and removed before b fetched: cancelled */
	CHECK_EQ(de_event(e, DEV, 9, 8, 1, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 9, 8, 1, DUET_REMOVED), 0);
	/* a and c hold page 8 (not cached now); b's scan says cached. */
	CHECK_EQ(de_scan_pages(e, b, &f, 8, 1, false), 0);
	EXPECT_NONE(e, b);
	EXPECT_NONE(e, a);	/* EXISTS: added and removed since the last fetch */
	EXPECT(e, c, { 9, 8, 1, DUET_ADDED | DUET_REMOVED, 0 });
	CHECK_EQ(de_event(e, DEV, 9, 8, 1, DUET_ADDED), 0);
	EXPECT(e, b, { 9, 8, 1, DUET_ADDED, 0 });
	EXPECT(e, a, { 9, 8, 1, DUET_ADDED, 0 });
	de_engine_free(e);

	/*
	 * A stock kernel's DIRTY has no folio size: task a hears of page 0
	 * of a dirtied 8-page folio; b's scan finds all 8 dirty. The
	 * inode-level flush then tells each what it knew, no more: a scan
	 * never tells a (through the shared dirty set) of pages 1-7.
	 */
	e = engine_new();
	a = de_task_add(e, DUET_EXISTS | DUET_MODIFIED);
	b = de_task_add(e, DUET_EXISTS | DUET_MODIFIED);
	CHECK_EQ(de_event(e, DEV, 10, 0, 8, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 10, 0, 1, DUET_DIRTY), 0);
	EXPECT(e, a, { 10, 0, 1, DUET_ADDED | DUET_DIRTY, 0 }, { 10, 1, 7, DUET_ADDED, 0 });
	/* b's events of the file are dropped, as a registering task's are. */
	f.ino = 10;
	CHECK_EQ(de_lost(e, UINT64_C(1) << b), 0);
	EXPECT(e, b, { 0, 0, 0, 0, DUET_ITEM_LOST });
	CHECK_EQ(de_scan_pages(e, b, &f, 0, 8, true), 0);
	EXPECT(e, b, { 10, 0, 8, DUET_ADDED | DUET_DIRTY, 0 });
	CHECK_EQ(de_event_inode_flushed(e, DEV, 10), 0);
	EXPECT(e, a, { 10, 0, 1, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	EXPECT(e, b, { 10, 0, 8, DUET_FLUSHED, DUET_ITEM_INODE_LEVEL });
	/* And a REMOVED finds b's pages dirty for b only. */
	CHECK_EQ(de_event(e, DEV, 10, 0, 8, DUET_REMOVED), 0);
	EXPECT(e, a, { 10, 0, 8, DUET_REMOVED, 0 });
	EXPECT(e, b, { 10, 0, 8, DUET_REMOVED, 0 });
	CHECK_EQ(de_event(e, DEV, 10, 0, 8, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 10, 0, 1, DUET_DIRTY), 0);
	CHECK_EQ(de_lost(e, UINT64_C(1) << b), 0);
	EXPECT(e, b, { 0, 0, 0, 0, DUET_ITEM_LOST });
	/*
	 * a still holds the pages, with the state the events gave them:
	 * b joins that state (page 0 dirty, 1-7 clean), so what b is told
	 * matches what a is told, and b's later items stay consistent with
	 * it (a REMOVED finds only page 0 dirty for b too).
	 */
	CHECK_EQ(de_scan_pages(e, b, &f, 0, 8, true), 0);
	EXPECT(e, a, { 10, 0, 1, DUET_ADDED | DUET_DIRTY, 0 }, { 10, 1, 7, DUET_ADDED, 0 });
	EXPECT(e, b, { 10, 0, 1, DUET_ADDED | DUET_DIRTY, 0 }, { 10, 1, 7, DUET_ADDED, 0 });
	CHECK_EQ(de_event(e, DEV, 10, 0, 8, DUET_REMOVED), 0);
	EXPECT(e, a, { 10, 0, 1, DUET_REMOVED | DUET_FLUSHED, 0 },
	       { 10, 1, 7, DUET_REMOVED, 0 });
	EXPECT(e, b, { 10, 0, 1, DUET_REMOVED | DUET_FLUSHED, 0 },
	       { 10, 1, 7, DUET_REMOVED, 0 });
	de_engine_free(e);
}

/*
 * Relevance withdrawn (the file renamed away, or no longer visible to the
 * task): what was pending for the task is not delivered, whether the
 * next thing is an event of the file or the task's fetch.
 */
static void test_revoke(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	int b = de_task_add(e, DUET_ADDED);

	CHECK_EQ(de_event(e, DEV, 11, 0, 4, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 12, 0, 2, DUET_ADDED), 0);
	CHECK_EQ(de_pending(e, a), 6);
	/* a loses both files: one is told at its fetch, one at an event. */
	rel_mask[11] = UINT64_C(1) << b;
	rel_mask[12] = UINT64_C(1) << b;
	CHECK_EQ(de_file_invalidate(e, DEV, 11), 0);
	CHECK_EQ(de_file_invalidate(e, DEV, 12), 0);
	CHECK_EQ(de_event(e, DEV, 12, 2, 1, DUET_ADDED), 0);
	CHECK_EQ(de_pending(e, a), 4);
	EXPECT_NONE(e, a);
	CHECK_EQ(de_pending(e, a), 0);
	EXPECT(e, b, { 11, 0, 4, DUET_ADDED, 0 }, { 12, 0, 3, DUET_ADDED, 0 });
	/* Back: a is told again from the next events on. */
	rel_mask[11] = ~UINT64_C(0);
	CHECK_EQ(de_file_invalidate(e, DEV, 11), 0);
	CHECK_EQ(de_event(e, DEV, 11, 0, 4, DUET_REMOVED), 0);
	EXPECT(e, a, { 11, 0, 4, DUET_REMOVED, 0 });
	de_engine_free(e);
	rel_mask[12] = ~UINT64_C(0);
}

static void test_masks(void)
{
	struct de_engine *e = engine_new();
	int i;

	CHECK_EQ(de_task_add(e, 0), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_EXISTS | DUET_ADDED), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_EXISTS | DUET_REMOVED), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_MODIFIED | DUET_FLUSHED), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_MODIFIED | DUET_DIRTY), -EINVAL);
	CHECK_EQ(de_task_add(e, 0x40), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_ADDED | 0x80000000u), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_EXISTS | DUET_DIRTY), 0);
	CHECK_EQ(de_task_add(e, DUET_MODIFIED | DUET_ADDED | DUET_REMOVED), 1);
	CHECK_EQ(de_task_add(e, DUET_EXISTS | DUET_MODIFIED), 2);
	for (i = 3; i < DE_MAX_TASKS; i++)
		CHECK_EQ(de_task_add(e, DUET_ADDED), i);
	CHECK_EQ(de_task_add(e, DUET_ADDED), -ENOSPC);
	CHECK_EQ(de_task_remove(e, 5), 0);
	CHECK_EQ(de_task_remove(e, 5), -EINVAL);
	CHECK_EQ(de_task_add(e, DUET_REMOVED), 5);
	CHECK_EQ(de_event(e, DEV, 1, 0, 1, 0x40), -EINVAL);
	CHECK_EQ(de_event(e, DEV, 1, 0, 1, DUET_ADDED | DUET_REMOVED), -EINVAL);
	CHECK_EQ(de_event(e, DEV, 1, 0, 1, DUET_EXISTS), -EINVAL);
	CHECK_EQ(de_fetch(e, 64, NULL, 1), -EINVAL);
	CHECK_EQ(de_fetch(e, -1, NULL, 1), -EINVAL);
	de_engine_free(e);
}

static void test_overflow(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_ADDED);
	struct de_file f = { DEV, 1, 0 };

	CHECK_EQ(de_event(e, DEV, 1, UINT64_C(1) << 32, 1, DUET_ADDED), -EOVERFLOW);
	CHECK_EQ(de_event(e, DEV, 1, UINT32_MAX, 2, DUET_ADDED), -EOVERFLOW);
	CHECK_EQ(de_event(e, DEV, 1, 0, UINT64_MAX, DUET_ADDED), -EOVERFLOW);
	CHECK_EQ(de_scan_pages(e, a, &f, UINT64_C(1) << 32, 1, false), -EOVERFLOW);
	CHECK_EQ(de_done_set(e, a, &f, UINT64_C(1) << 33, 1), -EOVERFLOW);
	CHECK_EQ(de_pending(e, a), 0);
	/* The last page index that fits works. */
	CHECK_EQ(de_event(e, DEV, 1, UINT32_MAX - 1, 2, DUET_ADDED), 0);
	EXPECT(e, a, { 1, UINT32_MAX - 1, 2, DUET_ADDED, 0 });
	CHECK_EQ(de_done_set(e, a, &f, UINT32_MAX, 1), 0);
	CHECK_EQ(de_done_check(e, a, &f, UINT32_MAX, 1), 1);
	de_engine_free(e);
}

static void test_sharing_relevance(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	int b = de_task_add(e, DUET_ADDED | DUET_DIRTY);
	struct de_engine_stats es;
	struct de_task_stats st;

	/* Two tasks share one entry per page. */
	CHECK_EQ(de_event(e, DEV, 1, 0, 100, DUET_ADDED), 0);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 100);
	CHECK_EQ(es.inodes, 1);
	CHECK_EQ(es.events, 100);
	CHECK_EQ(de_pending(e, a), 100);
	CHECK_EQ(de_pending(e, b), 100);
	EXPECT(e, a, { 1, 0, 100, DUET_ADDED, 0 });
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 100);
	EXPECT(e, b, { 1, 0, 100, DUET_ADDED, 0 });
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 0);

	/* Relevance is asked once per inode until invalidated. */
	CHECK_EQ(rel_calls[1], 1);
	CHECK_EQ(de_event(e, DEV, 1, 0, 1, DUET_REMOVED), 0);
	CHECK_EQ(de_event_inode_flushed(e, DEV, 1), 0);
	CHECK_EQ(rel_calls[1], 1);
	rel_mask[1] = UINT64_C(1) << a;
	CHECK_EQ(de_file_invalidate(e, DEV, 1), 0);
	CHECK_EQ(de_event(e, DEV, 1, 0, 1, DUET_ADDED), 0);
	CHECK_EQ(rel_calls[1], 2);
	CHECK_EQ(de_event(e, DEV, 1, 1, 1, DUET_REMOVED), 0);
	CHECK_EQ(rel_calls[1], 2);
	/* Only A wants inode 1 now: B never sees it. */
	CHECK_EQ(de_pending(e, b), 0);
	EXPECT_NONE(e, b);
	EXPECT(e, a, { 1, 1, 1, DUET_REMOVED, 0 });

	/* Nobody: cached too, and nothing is kept. */
	rel_mask[2] = 0;
	CHECK_EQ(de_event(e, DEV, 2, 0, 10, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 2, 0, 10, DUET_DIRTY), 0);
	CHECK_EQ(rel_calls[2], 1);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 0);
	CHECK_EQ(de_task_stats(e, a, &st), 0);
	CHECK_EQ(st.pending, 0);
	EXPECT_NONE(e, a);

	/* A new task makes the engine ask again. */
	CHECK_EQ(de_task_add(e, DUET_REMOVED), 2);
	CHECK_EQ(de_event(e, DEV, 2, 0, 1, DUET_REMOVED), 0);
	CHECK_EQ(rel_calls[2], 2);
	CHECK_EQ(de_invalidate_all(e), 0);
	CHECK_EQ(de_event(e, DEV, 2, 0, 1, DUET_REMOVED), 0);
	CHECK_EQ(rel_calls[2], 3);

	/*
	 * Inode reuse: another gen is another file. What the old file had
	 * pending still reaches the task under the old gen (a deleted file's
	 * REMOVED), the new file's pages under the new one; the old file's
	 * done marks go with it.
	 */
	rel_mask[3] = ~UINT64_C(0);
	CHECK_EQ(de_event(e, DEV, 3, 0, 4, DUET_ADDED), 0);
	CHECK_EQ(de_pending(e, a), 4);
	{
		struct de_file old3 = { .dev = DEV, .ino = 3, .gen = 0 };

		CHECK_EQ(de_done_set(e, a, &old3, 20, 2), 0);
		CHECK_EQ(de_done_check(e, a, &old3, 20, 1), 1);
	}
	rel_gen[3] = 2;
	CHECK_EQ(de_file_invalidate(e, DEV, 3), 0);
	CHECK_EQ(de_event(e, DEV, 3, 8, 1, DUET_ADDED), 0);
	CHECK_EQ(de_pending(e, a), 5);
	{
		struct de_file new3 = { .dev = DEV, .ino = 3, .gen = 2 };

		CHECK_EQ(de_done_check(e, a, &new3, 20, 1), 0);
	}
	CHECK_EQ(de_event(e, DEV, 3, 20, 1, DUET_ADDED), 0);	/* not done for the new file */
	{
		struct duet_item it[4];

		CHECK_EQ(de_fetch(e, a, it, 4), 3);
		CHECK_EQ(it[0].gen, 0);
		CHECK_EQ(it[0].index, 0);
		CHECK_EQ(it[0].count, 4);
		CHECK_EQ(it[1].gen, 2);
		CHECK_EQ(it[1].index, 8);
		CHECK_EQ(it[2].gen, 2);
		CHECK_EQ(it[2].index, 20);
		CHECK_EQ(de_pending(e, a), 0);
	}

	/* Removing a task drops its pending pages and entries. */
	CHECK_EQ(de_event(e, DEV, 4, 0, 4, DUET_ADDED), 0);
	CHECK_EQ(de_task_remove(e, b), 0);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 4);
	CHECK_EQ(de_task_remove(e, a), 0);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 0);
	de_engine_free(e);
}

static void test_many_tasks(void)
{
	struct de_engine *e = engine_new();
	struct de_engine_stats es;
	int t;

	/* More than 8 tasks on one entry: the external per-task array. */
	for (t = 0; t < DE_MAX_TASKS; t++)
		CHECK_EQ(de_task_add(e, t % 2 ? DUET_EXISTS : DUET_ADDED | DUET_REMOVED), t);
	CHECK_EQ(de_event(e, DEV, 9, 0, 3, DUET_ADDED), 0);
	CHECK_EQ(de_event(e, DEV, 9, 1, 1, DUET_REMOVED), 0);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 3);
	for (t = 0; t < DE_MAX_TASKS; t++) {
		if (t % 2)
			EXPECT(e, t, { 9, 0, 1, DUET_ADDED, 0 }, { 9, 2, 1, DUET_ADDED, 0 });
		else
			EXPECT(e, t, { 9, 0, 1, DUET_ADDED, 0 },
			       { 9, 1, 1, DUET_ADDED | DUET_REMOVED, 0 },
			       { 9, 2, 1, DUET_ADDED, 0 });
	}
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 0);
	de_engine_free(e);
}

/* Big enough for the mmapped table, its growth and its shrinking. */
static void test_large(void)
{
	struct de_engine *e = engine_new();
	int a = de_task_add(e, DUET_EXISTS);
	int b = de_task_add(e, DUET_ADDED);
	struct de_engine_stats es;
	int err = 0;
	uint64_t i;

	for (i = 0; i < 200000; i += 2)
		err |= de_event(e, DEV, 10 + i % 7, i, 2, DUET_ADDED);
	CHECK_EQ(err, 0);
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 200000);
	CHECK_EQ(de_pending(e, a), 200000);
	/* Inode 10 + k holds pages i with i % 7 == k or (i - 1) % 7 == k. */
	for (i = 0; i < 200000; i += 3)
		err |= de_event(e, DEV, 10 + (i & ~UINT64_C(1)) % 7, i, 1, DUET_REMOVED);
	CHECK_EQ(err, 0);
	{
		struct duet_item it[64];
		uint64_t pages = 0;
		int r, k;

		while ((r = de_fetch(e, a, it, 64)) > 0) {
			for (k = 0; k < r; k++)
				pages += it[k].count;
		}
		CHECK_EQ(r, 0);
		CHECK_EQ(pages, 200000 - 66667);
		while ((r = de_fetch(e, b, it, 64)) > 0)
			;
	}
	CHECK_EQ(de_engine_stats(e, &es), 0);
	CHECK_EQ(es.entries, 0);
	de_engine_free(e);
}

int main(void)
{
	de_engine_free(NULL);
	test_cancel();
	test_extents();
	test_done();
	test_done_blocks();
	test_done_foreach();
	test_inode_flushed();
	test_redirty();
	test_scan_lost();
	test_scan_ahead();
	test_revoke();
	test_masks();
	test_overflow();
	test_sharing_relevance();
	test_many_tasks();
	test_large();
	return check_exit("engine-directed");
}
