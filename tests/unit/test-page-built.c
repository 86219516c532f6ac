// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dc_decode_page() on pages built here byte by byte (pagebuild.h): every
 * ring-buffer encoding the kernel can write, lost-event headers, each
 * source's record shape, and headers that must be refused. Each test runs
 * with our walk, with kbuffer, and through dc_decode_page_piece() one
 * entry at a time, as the mapped reader may see a sub-buffer the writer
 * is still filling: the same records and counts.
 */
#include <errno.h>

#include "../lib/check.h"
#include "page.h"
#include "pagebuild.h"

#define DEV1 0x700001u		/* 7:1 */
#define NL (sizeof(pb_layouts_618) / sizeof(pb_layouts_618[0]))

/* DC_DECODE_KBUFFER or 0: every test runs with both decoders. */
static unsigned int dflags;
/* ... and in pieces (the mapped reader's way); long_size of the last mk(). */
static bool in_pieces;
static struct {
	struct dc_decoder *d;
	int long_size;
} made[16];

static void remember(struct dc_decoder *d, int long_size)
{
	/* An address freed and given out again replaces its entry. */
	for (size_t i = 0; d && i < sizeof(made) / sizeof(made[0]); i++) {
		if (made[i].d == d || !made[i].d || i == sizeof(made) / sizeof(made[0]) - 1) {
			made[i].d = d;
			made[i].long_size = long_size;
			break;
		}
	}
}

static int long_size_of(const struct dc_decoder *d)
{
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
		if (made[i].d == d)
			return made[i].long_size;
	return 8;
}

/*
 * The page decoded one data event at a time, what dc_decode_page()
 * returns. Pieces end after a data event (or at the end): a LOST record
 * whose first piece holds none takes that piece's end time, not the next
 * piece's first event's, and the kernel's commit (where a piece ends)
 * never falls between a time extend and its event.
 */
static int decode_in_pieces(struct dc_decoder *d, const void *page, size_t len, uint16_t cpu,
			    struct dc_recbuf *out)
{
	return pb_decode_in_pieces(d, page, len, long_size_of(d), cpu, out);
}

static int decode(struct dc_decoder *d, const void *page, size_t len, uint16_t cpu,
		  struct dc_recbuf *out)
{
	if (in_pieces)
		return decode_in_pieces(d, page, len, cpu, out);
	return dc_decode_page(d, page, len, cpu, out);
}

static struct dc_decoder *mk(int long_size, unsigned int types, const struct dc_bdi *bdis,
			     size_t nbdis)
{
	struct dc_decoder_opts o = {
		.sz = sizeof(o),
		.long_size = long_size,
		.layouts = pb_layouts_618,
		.nlayouts = NL,
		.bdis = bdis,
		.nbdis = nbdis,
		.types = types,
		.flags = dflags,
	};
	struct dc_decoder *d = NULL;

	CHECK_EQ(dc_decoder_new(&o, &d), 0);
	remember(d, long_size);
	if (!d) {
		fprintf(stderr, "dc_decoder_new failed\n");
		exit(TEST_ERROR);
	}
	return d;
}

#define CHECK_REC(r, type_, ts_, ino_, index_, count_, dev_, flags_)	\
	do {								\
		CHECK_EQ((r)->type, (type_));				\
		CHECK_EQ((r)->ts, (ts_));				\
		CHECK_EQ((r)->ino, (ino_));				\
		CHECK_EQ((r)->index, (index_));				\
		CHECK_EQ((r)->count, (count_));				\
		CHECK_EQ((r)->dev, (dev_));				\
		CHECK_EQ((r)->flags, (flags_));				\
	} while (0)

static void add_pc(struct pb *p, uint32_t delta, uint16_t id, uint64_t ino, uint64_t index,
		   uint8_t order)
{
	struct pb_pc_event e = pb_pc(id, 42, ino, index, DEV1, order);

	pb_event(p, delta, e.b, 37, 0);
}

static void test_basic_order9(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct dc_recbuf out = { 0 };
	const struct dc_decode_stats *st;
	struct pb p;
	size_t len;

	pb_init(&p, 1000, 8);
	add_pc(&p, 10, PB_ID_ADD, 12, 3, 0);
	add_pc(&p, 20, PB_ID_DELETE, 12, 512, 9);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 3, &out), 2);
	CHECK_EQ(out.n, 2);
	CHECK_REC(&out.rec[0], DC_ADDED, 1010, 12, 3, 1, DEV1, 0);
	CHECK_REC(&out.rec[1], DC_REMOVED, 1030, 12, 512, 512, DEV1, 0);
	CHECK_EQ(out.rec[1].pid, 42);
	CHECK_EQ(out.rec[1].cpu, 3);
	CHECK_EQ(out.rec[1].reserved, 0);
	st = dc_decoder_stats(d);
	CHECK_EQ(st->pages, 1);
	CHECK_EQ(st->events, 2);
	CHECK_EQ(st->records, 2);
	CHECK_EQ(st->unknown + st->short_events + st->unmapped + st->lost + st->lost_unknown, 0);

	/* Records are appended; stats accumulate over pages. */
	CHECK_EQ(decode(d, p.buf, len, 1, &out), 2);
	CHECK_EQ(out.n, 4);
	CHECK_EQ(out.rec[3].cpu, 1);
	CHECK_EQ(st->pages, 2);
	CHECK_EQ(st->records, 4);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

/*
 * Padding (a discarded event) keeps its time delta: the writer computed
 * the next event's delta from the discarded event's time stamp.
 */
static void test_padding(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct dc_recbuf out = { 0 };
	struct pb p;
	size_t len;

	pb_init(&p, 1000, 8);
	add_pc(&p, 5, PB_ID_ADD, 12, 0, 0);
	pb_padding(&p, 7, 36);
	add_pc(&p, 3, PB_ID_ADD, 12, 1, 0);
	pb_padding(&p, 1, 0);
	add_pc(&p, 4, PB_ID_ADD, 12, 2, 0);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 3);
	CHECK_REC(&out.rec[0], DC_ADDED, 1005, 12, 0, 1, DEV1, 0);
	CHECK_REC(&out.rec[1], DC_ADDED, 1015, 12, 1, 1, DEV1, 0);
	CHECK_REC(&out.rec[2], DC_ADDED, 1020, 12, 2, 1, DEV1, 0);
	CHECK_EQ(dc_decoder_stats(d)->events, 3);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

static void test_time_extend(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct dc_recbuf out = { 0 };
	uint64_t t;
	struct pb p;
	size_t len;

	pb_init(&p, 5000, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_extend(&p, (5ULL << 27) + 9);
	add_pc(&p, 0, PB_ID_ADD, 12, 1, 0);
	add_pc(&p, 2, PB_ID_ADD, 12, 2, 0);
	pb_extend(&p, (1ULL << 40) + 3);	/* array[0] carries bits 27..58 */
	add_pc(&p, 0, PB_ID_ADD, 12, 3, 0);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 4);
	t = 5001;
	CHECK_EQ(out.rec[0].ts, t);
	t += (5ULL << 27) + 9;
	CHECK_EQ(out.rec[1].ts, t);
	CHECK_EQ(out.rec[2].ts, t + 2);
	t += 2 + (1ULL << 40) + 3;
	CHECK_EQ(out.rec[3].ts, t);
	CHECK_EQ(out.rec[3].index, 3);
	CHECK_EQ(dc_decoder_stats(d)->events, 4);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

/*
 * An absolute time stamp (type 31, 8 bytes) replaces the running time;
 * the kernel writes it when the buffer is in absolute mode.
 */
static void test_abs_time_stamp(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct dc_recbuf out = { 0 };
	struct pb p;
	size_t len;

	pb_init(&p, 1000, 8);
	add_pc(&p, 4, PB_ID_ADD, 12, 0, 0);
	pb_abs(&p, 777777777777ULL);
	add_pc(&p, 6, PB_ID_ADD, 12, 1, 0);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 2);
	CHECK_EQ(out.n, 2);
	CHECK_REC(&out.rec[0], DC_ADDED, 1004, 12, 0, 1, DEV1, 0);
	if (out.n == 2)
		CHECK_REC(&out.rec[1], DC_ADDED, 777777777783ULL, 12, 1, 1, DEV1, 0);
	CHECK_EQ(dc_decoder_stats(d)->events, 2);
	CHECK_EQ(dc_decoder_stats(d)->unknown, 0);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

/* type_len 0: the length is in array[0], the data starts after it. */
static void test_long_event(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct pb_pc_event e = pb_pc(PB_ID_DELETE, 7, 99, 1234, DEV1, 2);
	struct dc_recbuf out = { 0 };
	struct pb p;
	size_t len;

	pb_init(&p, 1, 8);
	pb_event(&p, 1, e.b, 37, 1);
	pb_event(&p, 1, e.b, 40, 1);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_REMOVED, 2, 99, 1234, 4, DEV1, 0);
	CHECK_REC(&out.rec[1], DC_REMOVED, 3, 99, 1234, 4, DEV1, 0);
	CHECK_EQ(out.rec[0].pid, 7);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

static void test_missed(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct dc_recbuf out = { 0 };
	const struct dc_decode_stats *st = dc_decoder_stats(d);
	struct pb p;
	size_t len;

	/* Flag only: the count was not stored. */
	pb_init(&p, 1000, 8);
	add_pc(&p, 2, PB_ID_ADD, 12, 0, 0);
	len = pb_finish(&p, PB_MISSED, 0);
	CHECK_EQ(decode(d, p.buf, len, 5, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 1002, 0, 0, 1, 0, DC_REC_LOST_UNKNOWN);
	CHECK_EQ(out.rec[0].cpu, 5);
	CHECK_EQ(out.rec[0].pid, -1);
	CHECK_REC(&out.rec[1], DC_ADDED, 1002, 12, 0, 1, DEV1, 0);
	CHECK_EQ(st->lost_unknown, 1);
	CHECK_EQ(st->lost, 0);

	/* Count stored as a long right after the data. */
	out.n = 0;
	pb_init(&p, 2000, 8);
	add_pc(&p, 3, PB_ID_ADD, 12, 0, 0);
	len = pb_finish(&p, PB_MISSED | PB_STORED, 1234);
	CHECK_EQ(decode(d, p.buf, len, 5, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 2003, 0, 0, 1234, 0, 0);
	CHECK_REC(&out.rec[1], DC_ADDED, 2003, 12, 0, 1, DEV1, 0);
	CHECK_EQ(st->lost, 1234);

	/* The kernel's commit is a signed local_t: the flags sign-extend. */
	out.n = 0;
	len = pb_finish(&p, 0xffffffffc0000000ULL, 77);
	CHECK_EQ(decode(d, p.buf, len, 5, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 2003, 0, 0, 77, 0, 0);
	CHECK_EQ(st->lost, 1234 + 77);

	/* A count beyond int (a reader stalled for half an hour). */
	out.n = 0;
	len = pb_finish(&p, PB_MISSED | PB_STORED, 5000000000ULL);
	CHECK_EQ(decode(d, p.buf, len, 5, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 2003, 0, 0, 5000000000ULL, 0, 0);
	CHECK_EQ(st->lost, 1234 + 77 + 5000000000ULL);
	CHECK_EQ(st->lost_unknown, 1);

	/* The first entry is a time extend: the loss still belongs to the page. */
	out.n = 0;
	pb_init(&p, 3000, 8);
	pb_extend(&p, 1ULL << 28);
	add_pc(&p, 0, PB_ID_ADD, 12, 0, 0);
	len = pb_finish(&p, PB_MISSED | PB_STORED, 9);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 3000 + (1ULL << 28), 0, 0, 9, 0, 0);
	CHECK_EQ(out.rec[1].ts, 3000 + (1ULL << 28));
	CHECK_EQ(out.rec[1].type, DC_ADDED);

	/* Same with padding first. */
	out.n = 0;
	pb_init(&p, 4000, 8);
	pb_padding(&p, 1, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	len = pb_finish(&p, PB_MISSED, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 4002, 0, 0, 1, 0, DC_REC_LOST_UNKNOWN);

	/* A page with no events still reports its loss, at the page time. */
	if (in_pieces)
		goto out;	/* the kernel hands out no empty sub-buffer */
	out.n = 0;
	pb_init(&p, 5000, 8);
	len = pb_finish(&p, PB_MISSED | PB_STORED, 7);
	CHECK_EQ(decode(d, p.buf, len, 1, &out), 1);
	CHECK_REC(&out.rec[0], DC_LOST, 5000, 0, 0, 7, 0, 0);
	CHECK_EQ(out.rec[0].cpu, 1);
out:
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

static void test_wb_dirty(void)
{
	static const struct dc_bdi bdis[] = {
		{ .name = "7:1", .devs = { DEV1 }, .ndevs = 1 },
		{ .name = "btrfs-2", .devs = { 0x2d, 0x2e }, .ndevs = 2 },
		{ .name = "7:9", .ndevs = 0 },
	};
	struct dc_decoder *d = mk(8, 0, bdis, 3);
	struct dc_recbuf out = { 0 };
	struct pb_wb_event e;
	struct pb p;
	size_t len;

	pb_init(&p, 100, 8);
	e = pb_wb(PB_ID_WB_DIRTY, 8, "7:1", 12, 4);
	pb_event(&p, 1, e.b, sizeof(e.b), 0);
	e = pb_wb(PB_ID_WB_DIRTY, 8, "btrfs-2", 256, 9);
	pb_event(&p, 1, e.b, sizeof(e.b), 0);
	e = pb_wb(PB_ID_WB_DIRTY, 8, "7:10", 12, 5);	/* "7:1" is only a prefix */
	pb_event(&p, 1, e.b, sizeof(e.b), 0);
	e = pb_wb(PB_ID_WB_DIRTY, 8, "8:0", 12, 5);
	pb_event(&p, 1, e.b, sizeof(e.b), 0);
	e = pb_wb(PB_ID_WB_DIRTY, 8, "7:9", 12, 5);	/* known, no devices */
	pb_event(&p, 1, e.b, sizeof(e.b), 0);
	e = pb_wb(PB_ID_WB_DIRTY, 8, "7:1", 13, 6);
	pb_event(&p, 1, e.b, sizeof(e.b), 0);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 4);
	CHECK_EQ(out.n, 4);
	CHECK_REC(&out.rec[0], DC_DIRTY, 101, 12, 4, 1, DEV1, 0);
	CHECK_REC(&out.rec[1], DC_DIRTY, 102, 256, 9, 1, 0x2d, DC_REC_DEV_AMBIGUOUS);
	CHECK_REC(&out.rec[2], DC_DIRTY, 102, 256, 9, 1, 0x2e, DC_REC_DEV_AMBIGUOUS);
	CHECK_REC(&out.rec[3], DC_DIRTY, 106, 13, 6, 1, DEV1, 0);
	CHECK_EQ(out.rec[2].pid, 8);
	CHECK_EQ(dc_decoder_stats(d)->unmapped, 3);
	CHECK_EQ(dc_decoder_stats(d)->events, 6);
	CHECK_EQ(dc_decoder_stats(d)->records, 4);
	dc_decoder_free(d);

	/* Without a table nothing can be mapped. */
	d = mk(8, 0, NULL, 0);
	out.n = 0;
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 0);
	CHECK_EQ(dc_decoder_stats(d)->unmapped, 6);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

static void test_sb_clear(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct pb_sb_event e = pb_sb(PB_ID_SB_CLEAR, 3720, DEV1, 12);
	struct dc_recbuf out = { 0 };
	struct pb p;
	size_t len;

	pb_init(&p, 100, 8);
	pb_event(&p, 50, e.b, sizeof(e.b), 0);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 1, &out), 1);
	CHECK_REC(&out.rec[0], DC_FLUSHED, 150, 12, 0, 0, DEV1, DC_REC_INODE_LEVEL);
	CHECK_EQ(out.rec[0].pid, 3720);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

static void test_unknown_and_short(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	const struct dc_decode_stats *st = dc_decoder_stats(d);
	struct dc_recbuf out = { 0 };
	struct pb_pc_event e;
	struct pb_wb_event w;
	struct pb_sb_event s;
	struct pb p;
	size_t len;

	pb_init(&p, 100, 8);
	e = pb_pc(555, 1, 12, 0, DEV1, 0);
	pb_event(&p, 1, e.b, 40, 0);
	e = pb_pc(0, 1, 12, 0, DEV1, 0);
	pb_event(&p, 1, e.b, 40, 0);
	e = pb_pc(65535, 1, 12, 0, DEV1, 0);
	pb_event(&p, 1, e.b, 40, 0);
	/* Shorter than the layout needs (37, 56 and 24 bytes). */
	e = pb_pc(PB_ID_ADD, 1, 12, 0, DEV1, 0);
	pb_event(&p, 1, e.b, 36, 0);
	w = pb_wb(PB_ID_WB_DIRTY, 1, "7:1", 12, 0);
	pb_event(&p, 1, w.b, 52, 0);
	s = pb_sb(PB_ID_SB_CLEAR, 1, DEV1, 12);
	pb_event(&p, 1, s.b, 20, 0);
	/* And one good event after them. */
	e = pb_pc(PB_ID_ADD, 1, 12, 77, DEV1, 0);
	pb_event(&p, 1, e.b, 37, 0);
	len = pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 1);
	CHECK_REC(&out.rec[0], DC_ADDED, 107, 12, 77, 1, DEV1, 0);
	CHECK_EQ(st->events, 7);
	CHECK_EQ(st->unknown, 3);
	CHECK_EQ(st->short_events, 3);
	CHECK_EQ(st->records, 1);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

/* Refused pages append nothing and leave earlier records alone. */
static void check_bad(struct dc_decoder *d, const void *page, size_t len)
{
	struct dc_recbuf out = { 0 };
	uint64_t pages = dc_decoder_stats(d)->pages;

	CHECK_EQ(dc_recbuf_reserve(&out, 1), 0);
	out.rec[0].ino = 4242;
	out.n = 1;
	CHECK_EQ(decode(d, page, len, 0, &out), -EBADMSG);
	CHECK_EQ(out.n, 1);
	CHECK_EQ(out.rec[0].ino, 4242);
	CHECK_EQ(dc_decoder_stats(d)->pages, pages);
	dc_recbuf_free(&out);
}

static void test_bad_headers(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0), *d4 = mk(4, 0, NULL, 0);
	struct dc_recbuf out = { 0 };
	uint64_t commit;
	uint32_t c4;
	struct pb p;

	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_finish(&p, 0, 0);

	/* Commit larger than the buffer. */
	commit = PB_SIZE - 16 + 1;
	memcpy(p.buf + 8, &commit, 8);
	check_bad(d, p.buf, PB_SIZE);
	commit = 200;
	memcpy(p.buf + 8, &commit, 8);
	check_bad(d, p.buf, 100);
	/* Shorter than the header. */
	check_bad(d, p.buf, 15);
	check_bad(d, p.buf, 0);
	check_bad(d4, p.buf, 11);

	/* Data filling the page exactly is fine... */
	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_padding(&p, 0, PB_SIZE - 16 - 44 - 8);
	pb_finish(&p, 0, 0);
	CHECK_EQ(decode(d, p.buf, PB_SIZE, 0, &out), 1);
	/* ...but leaves no room for a stored count. */
	commit = (PB_SIZE - 16) | PB_MISSED | PB_STORED;
	memcpy(p.buf + 8, &commit, 8);
	check_bad(d, p.buf, PB_SIZE);
	/* Room for a count of 4 bytes, not of 8. */
	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_padding(&p, 0, PB_SIZE - 16 - 44 - 8 - 4);
	pb_finish(&p, PB_MISSED | PB_STORED, 0);
	check_bad(d, p.buf, PB_SIZE);
	/* Room for 8: a stored 0 contradicts the flag and reads as unknown. */
	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_padding(&p, 0, PB_SIZE - 16 - 44 - 8 - 8);
	pb_finish(&p, PB_MISSED | PB_STORED, 0);
	out.n = 0;
	CHECK_EQ(decode(d, p.buf, PB_SIZE, 0, &out), 2);
	if (out.n == 2)
		CHECK_REC(&out.rec[0], DC_LOST, 101, 0, 0, 1, 0, DC_REC_LOST_UNKNOWN);
	pb_finish(&p, PB_MISSED | PB_STORED, 5);
	out.n = 0;
	CHECK_EQ(decode(d, p.buf, PB_SIZE, 0, &out), 2);
	if (out.n == 2)
		CHECK_REC(&out.rec[0], DC_LOST, 101, 0, 0, 5, 0, 0);

	/* 4-byte longs: the count after the data is 4 bytes. */
	pb_init(&p, 100, 4);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_padding(&p, 0, PB_SIZE - 12 - 44 - 8 - 4);
	pb_finish(&p, PB_MISSED | PB_STORED, 6);
	out.n = 0;
	CHECK_EQ(dc_decode_page(d4, p.buf, PB_SIZE, 0, &out), 2);
	if (out.n == 2)
		CHECK_REC(&out.rec[0], DC_LOST, 101, 0, 0, 6, 0, 0);
	c4 = (PB_SIZE - 12 - 3) | PB_MISSED | PB_STORED;
	memcpy(p.buf + 8, &c4, 4);
	check_bad(d4, p.buf, PB_SIZE);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
	dc_decoder_free(d4);
}

/*
 * Entries whose length does not move forward inside the data: kbuffer
 * would loop on them forever (found by fuzz-page), or stop anywhere.
 */
static void test_bad_events(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	struct pb p;
	size_t len;

	/* type_len 0 with array[0] = -4: the next entry is this one. */
	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	pb_head(&p, 0, 1);
	pb_u32(&p, 0xfffffffcu);
	pb_u32(&p, 0);
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	/* Padding of length -4: the same, inside kbuffer. */
	pb_init(&p, 100, 8);
	pb_head(&p, 29, 1);
	pb_u32(&p, 0xfffffffcu);
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	/* type_len 0 with array[0] < 4. */
	pb_init(&p, 100, 8);
	pb_head(&p, 0, 1);
	pb_u32(&p, 0);
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	/* Zero words inside the commit: never written by the kernel. */
	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	p.off += 16;
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	/* Entries running past the commit. */
	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	p.off -= 4;
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	pb_init(&p, 100, 8);
	pb_padding(&p, 1, 100);
	p.off -= 4;
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	pb_init(&p, 100, 8);
	pb_extend(&p, 1ULL << 30);
	p.off -= 2;
	len = pb_finish(&p, 0, 0);
	check_bad(d, p.buf, len);
	CHECK_EQ(dc_decoder_stats(d)->pages, 0);
	CHECK_EQ(dc_decoder_stats(d)->events, 0);
	dc_decoder_free(d);
}

static void test_types_filter(void)
{
	struct dc_decoder *d = mk(8, DC_REMOVED | DC_FLUSHED, NULL, 0);
	struct pb_sb_event s = pb_sb(PB_ID_SB_CLEAR, 1, DEV1, 12);
	struct dc_recbuf out = { 0 };
	struct pb p;
	size_t len;

	pb_init(&p, 100, 8);
	add_pc(&p, 1, PB_ID_ADD, 12, 0, 0);
	add_pc(&p, 1, PB_ID_DELETE, 12, 1, 0);
	pb_event(&p, 1, s.b, sizeof(s.b), 0);
	add_pc(&p, 1, PB_ID_ADD, 12, 2, 0);
	len = pb_finish(&p, PB_MISSED | PB_STORED, 3);
	/* Losses are always reported: they concern every type. */
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 3);
	CHECK_REC(&out.rec[0], DC_LOST, 101, 0, 0, 3, 0, 0);
	CHECK_REC(&out.rec[1], DC_REMOVED, 102, 12, 1, 1, DEV1, 0);
	CHECK_REC(&out.rec[2], DC_FLUSHED, 103, 12, 0, 0, DEV1, DC_REC_INODE_LEVEL);
	CHECK_EQ(dc_decoder_stats(d)->events, 4);
	dc_decoder_free(d);

	d = mk(8, DC_ADDED, NULL, 0);
	out.n = 0;
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 3);
	CHECK_EQ(out.rec[0].type, DC_LOST);
	CHECK_REC(&out.rec[1], DC_ADDED, 101, 12, 0, 1, DEV1, 0);
	CHECK_REC(&out.rec[2], DC_ADDED, 104, 12, 2, 1, DEV1, 0);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

/*
 * dc_decode_page_piece() as the mapped reader calls it: the writer still
 * appends to the sub-buffer between calls, the meta page's loss when the
 * page has no flag, pieces that must be refused.
 */
static void test_pieces(void)
{
	struct dc_decoder *d = mk(8, 0, NULL, 0);
	const struct dc_decode_stats *st = dc_decoder_stats(d);
	struct dc_recbuf out = { 0 };
	struct dc_page_pos pos = { 0 };
	struct pb p;

	/* One event committed, then two more: times go on from the first piece. */
	pb_init(&p, 1000, 8);
	add_pc(&p, 10, PB_ID_ADD, 12, 0, 0);
	pb_finish(&p, 0, 0);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, 0, &pos, 2, &out), 1);
	CHECK_REC(&out.rec[0], DC_ADDED, 1010, 12, 0, 1, DEV1, 0);
	/* Nothing new: nothing appended, nothing counted. */
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, 0, &pos, 2, &out), 0);
	add_pc(&p, 5, PB_ID_ADD, 12, 1, 0);
	pb_extend(&p, 1ULL << 27);
	add_pc(&p, 0, PB_ID_DELETE, 12, 1, 0);
	pb_finish(&p, 0, 0);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44 * 3 + 8, 0, &pos, 2, &out), 2);
	CHECK_EQ(out.n, 3);
	CHECK_REC(&out.rec[1], DC_ADDED, 1015, 12, 1, 1, DEV1, 0);
	CHECK_REC(&out.rec[2], DC_REMOVED, 1015 + (1ULL << 27), 12, 1, 1, DEV1, 0);
	CHECK_EQ(out.rec[2].cpu, 2);
	CHECK_EQ(st->pages, 1);	/* a sub-buffer counts once */
	CHECK_EQ(st->records, 3);
	CHECK_EQ(pos.off, 44 * 3 + 8);

	/* The meta page's loss when the page carries none: a count, or unknown. */
	out.n = 0;
	memset(&pos, 0, sizeof(pos));
	pb_init(&p, 2000, 8);
	add_pc(&p, 1, PB_ID_ADD, 13, 0, 0);
	pb_finish(&p, 0, 0);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, 5, &pos, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 2001, 0, 0, 5, 0, 0);
	CHECK_EQ(st->lost, 5);
	out.n = 0;
	memset(&pos, 0, sizeof(pos));
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, -1, &pos, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 2001, 0, 0, 1, 0, DC_REC_LOST_UNKNOWN);
	CHECK_EQ(st->lost_unknown, 1);
	/* The page's own count wins over the meta page's. */
	out.n = 0;
	memset(&pos, 0, sizeof(pos));
	pb_finish(&p, PB_MISSED | PB_STORED, 9);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, 5, &pos, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 2001, 0, 0, 9, 0, 0);
	CHECK_EQ(st->lost, 5 + 9);
	/* The loss is read once, with the header: not again on a later piece. */
	add_pc(&p, 1, PB_ID_ADD, 13, 1, 0);
	pb_finish(&p, PB_MISSED | PB_STORED, 9);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 88, 5, &pos, 0, &out), 1);
	CHECK_EQ(st->lost, 5 + 9);

	/* An end inside an entry: refused once, and the rest of the page skipped. */
	out.n = 0;
	memset(&pos, 0, sizeof(pos));
	pb_init(&p, 3000, 8);
	add_pc(&p, 1, PB_ID_ADD, 14, 0, 0);
	add_pc(&p, 1, PB_ID_ADD, 14, 1, 0);
	pb_finish(&p, 0, 0);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, 0, &pos, 0, &out), 1);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 60, 0, &pos, 0, &out), -EBADMSG);
	CHECK_EQ(out.n, 1);
	CHECK_EQ(st->bad_pages, 1);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 88, 0, &pos, 0, &out), 0);
	CHECK_EQ(st->bad_pages, 1);
	CHECK_EQ(out.n, 1);
	/* An end past the commit, past the sub-buffer, or behind the last. */
	memset(&pos, 0, sizeof(pos));
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 132, 0, &pos, 0, &out), -EBADMSG);
	memset(&pos, 0, sizeof(pos));
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, PB_SIZE, 0, &pos, 0, &out), -EBADMSG);
	memset(&pos, 0, sizeof(pos));
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 88, 0, &pos, 0, &out), 2);
	CHECK_EQ(dc_decode_page_piece(d, p.buf, PB_SIZE, 44, 0, &pos, 0, &out), -EBADMSG);
	CHECK_EQ(st->bad_pages, 4);
	CHECK_EQ(out.n, 3);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

/* A 32-bit kernel: 4-byte longs in the header and in the event. */
static void test_long4(void)
{
	static const struct dc_layout l4 = {
		.id = PB_ID_ADD, .src = DC_SRC_ADD, .pid = { 4, 4 }, .ino = { 12, 4 },
		.index = { 16, 4 }, .dev = { 20, 4 }, .order = { 24, 1 },
	};
	struct dc_decoder_opts o = {
		.sz = sizeof(o), .long_size = 4, .layouts = &l4, .nlayouts = 1, .flags = dflags,
	};
	struct dc_recbuf out = { 0 };
	struct dc_decoder *d = NULL;
	uint8_t ev[28] = { 0 };
	uint32_t v;
	uint16_t id = PB_ID_ADD;
	struct pb p;
	size_t len;

	CHECK_EQ(dc_decoder_new(&o, &d), 0);
	if (!d)
		return;
	remember(d, 4);
	memcpy(ev, &id, 2);
	v = 77;
	memcpy(ev + 4, &v, 4);
	v = 0xdeadbeef;
	memcpy(ev + 12, &v, 4);
	v = 4000000000u;
	memcpy(ev + 16, &v, 4);
	v = DEV1;
	memcpy(ev + 20, &v, 4);
	ev[24] = 2;
	pb_init(&p, 10, 4);
	pb_event(&p, 5, ev, 25, 0);
	len = pb_finish(&p, PB_MISSED | PB_STORED, 11);
	CHECK_EQ(decode(d, p.buf, len, 0, &out), 2);
	CHECK_REC(&out.rec[0], DC_LOST, 15, 0, 0, 11, 0, 0);
	CHECK_REC(&out.rec[1], DC_ADDED, 15, 0xdeadbeef, 4000000000u, 4, DEV1, 0);
	CHECK_EQ(out.rec[1].pid, 77);
	dc_recbuf_free(&out);
	dc_decoder_free(d);
}

static void test_opts(void)
{
	struct dc_layout bad = pb_layouts_618[0];
	struct dc_decoder_opts o = {
		.sz = sizeof(o), .long_size = 8, .layouts = pb_layouts_618, .nlayouts = NL,
	};
	struct dc_decoder *d = (struct dc_decoder *)&o;

	o.sz = sizeof(o) - 1;
	CHECK_EQ(dc_decoder_new(&o, &d), -EINVAL);
	o.sz = sizeof(o);
	o.long_size = 2;
	CHECK_EQ(dc_decoder_new(&o, &d), -EINVAL);
	o.long_size = 8;
	o.layouts = NULL;
	CHECK_EQ(dc_decoder_new(&o, &d), -EINVAL);
	bad.id = 0;
	o.layouts = &bad;
	o.nlayouts = 1;
	CHECK_EQ(dc_decoder_new(&o, &d), -EINVAL);
	bad.id = 600;
	bad.src = DC_SRC_NR;
	CHECK_EQ(dc_decoder_new(&o, &d), -EINVAL);
	bad = pb_layouts_618[0];
	o.layouts = pb_layouts_618;
	o.nlayouts = NL;
	o.flags = 0x80;		/* a flag it does not know */
	CHECK_EQ(dc_decoder_new(&o, &d), -EINVAL);
	CHECK(d == (struct dc_decoder *)&o);	/* untouched on failure */
	CHECK_EQ(dc_decoder_new(NULL, &d), -EINVAL);
	dc_decoder_free(NULL);
}

int main(int argc, char **argv)
{
	for (int k = 0; k < 3; k++) {
		dflags = k == 1 ? DC_DECODE_KBUFFER : 0;
		in_pieces = k == 2;
		test_basic_order9();
		test_padding();
		test_time_extend();
		test_abs_time_stamp();
		test_long_event();
		test_missed();
		test_wb_dirty();
		test_sb_clear();
		test_unknown_and_short();
		if (!in_pieces) {
			/* Pieces before a bad one were handed out: test_pieces(). */
			test_bad_headers();
			test_bad_events();
		}
		test_types_filter();
		test_long4();
	}
	test_pieces();
	test_opts();
	return check_exit("test-page-built");
}
