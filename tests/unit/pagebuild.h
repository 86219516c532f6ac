/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Builds ring-buffer sub-buffers the way kernel/trace/ring_buffer.c lays
 * them out, for tests and fuzz seeds: an 8-byte time stamp, a commit word
 * of the kernel's long size (bit 31 missed events, bit 30 count stored
 * after the data), then events with a 4-byte header
 * "type_len:5 | time_delta:27" (little-endian bit order).
 *   type_len 1..28: data of type_len * 4 bytes follows
 *   type_len 0:     array[0] = data length + 4, data follows
 *   29: padding, array[0] = its length after the 4-byte header (the
 *       array word included); time_delta 0 marks the unused page tail
 *   30: time extend, array[0] = delta >> 27
 *   31: absolute time stamp, array[0] = ts >> 27
 */
#ifndef DUET_TEST_PAGEBUILD_H
#define DUET_TEST_PAGEBUILD_H

#include <stdint.h>
#include <string.h>

#include "format.h"
#include "page.h"

#define PB_SIZE 4096

struct pb {
	uint8_t buf[PB_SIZE];
	size_t hdr;	/* 8 + long size */
	size_t off;	/* write position, from the start of buf */
	int long_size;
};

static inline void pb_u32(struct pb *p, uint32_t v)
{
	memcpy(p->buf + p->off, &v, 4);
	p->off += 4;
}

static inline void pb_init(struct pb *p, uint64_t ts, int long_size)
{
	memset(p->buf, 0, sizeof(p->buf));
	memcpy(p->buf, &ts, 8);
	p->long_size = long_size;
	p->hdr = 8 + (size_t)long_size;
	p->off = p->hdr;
}

static inline void pb_head(struct pb *p, unsigned int type_len, uint32_t delta)
{
	pb_u32(p, (type_len & 31) | (delta << 5));
}

/* A data event; small aligned payloads use type_len, others type_len 0. */
static inline void pb_event(struct pb *p, uint32_t delta, const void *data, size_t len,
			    int force_long)
{
	size_t al = (len + 3) & ~(size_t)3;

	if (!force_long && al <= 112 && al) {
		pb_head(p, (unsigned int)(al / 4), delta);
	} else {
		pb_head(p, 0, delta);
		pb_u32(p, (uint32_t)(len + 4));
	}
	memset(p->buf + p->off, 0, al);
	memcpy(p->buf + p->off, data, len);
	p->off += al;
}

/* Padding of 8 + len bytes in all, as a discarded event leaves. */
static inline void pb_padding(struct pb *p, uint32_t delta, uint32_t len)
{
	pb_head(p, 29, delta);
	pb_u32(p, len + 4);
	memset(p->buf + p->off, 0xee, len);
	p->off += len;
}

static inline void pb_extend(struct pb *p, uint64_t delta)
{
	pb_head(p, 30, (uint32_t)(delta & ((1u << 27) - 1)));
	pb_u32(p, (uint32_t)(delta >> 27));
}

static inline void pb_abs(struct pb *p, uint64_t ts)
{
	pb_head(p, 31, (uint32_t)(ts & ((1u << 27) - 1)));
	pb_u32(p, (uint32_t)(ts >> 27));
}

#define PB_MISSED	(1ULL << 31)
#define PB_STORED	(1ULL << 30)

/*
 * Writes the commit word (data size | flags) and, with PB_STORED, the lost
 * count after the data. Returns the page length to hand to the decoder.
 */
static inline size_t pb_finish(struct pb *p, uint64_t flags, uint64_t lost)
{
	uint64_t commit = (p->off - p->hdr) | flags;

	if (p->long_size == 8) {
		memcpy(p->buf + 8, &commit, 8);
		if (flags & PB_STORED)
			memcpy(p->buf + p->off, &lost, 8);
	} else {
		uint32_t c = (uint32_t)commit, l = (uint32_t)lost;

		memcpy(p->buf + 8, &c, 4);
		if (flags & PB_STORED)
			memcpy(p->buf + p->off, &l, 4);
	}
	return PB_SIZE;
}

/* Event payloads in the 6.18 layouts (tests/data/formats-6.18). */
struct pb_pc_event {		/* mm_filemap_add/delete, 37 bytes used */
	uint8_t b[40];
};

static inline struct pb_pc_event pb_pc(uint16_t id, int32_t pid, uint64_t ino,
				       uint64_t index, uint32_t dev, uint8_t order)
{
	struct pb_pc_event e;
	uint64_t pfn = 0x123456;

	memset(&e, 0, sizeof(e));
	memcpy(e.b + 0, &id, 2);
	memcpy(e.b + 4, &pid, 4);
	memcpy(e.b + 8, &pfn, 8);
	memcpy(e.b + 16, &ino, 8);
	memcpy(e.b + 24, &index, 8);
	memcpy(e.b + 32, &dev, 4);
	e.b[36] = order;
	return e;
}

struct pb_wb_event {		/* writeback_dirty_folio, 56 bytes */
	uint8_t b[56];
};

static inline struct pb_wb_event pb_wb(uint16_t id, int32_t pid, const char *bdi,
				       uint64_t ino, uint64_t index)
{
	struct pb_wb_event e;

	memset(&e, 0, sizeof(e));
	memcpy(e.b + 0, &id, 2);
	memcpy(e.b + 4, &pid, 4);
	strncpy((char *)e.b + 8, bdi, 32);
	memcpy(e.b + 40, &ino, 8);
	memcpy(e.b + 48, &index, 8);
	return e;
}

struct pb_sb_event {		/* sb_clear_inode_writeback, 48 bytes */
	uint8_t b[48];
};

static inline struct pb_sb_event pb_sb(uint16_t id, int32_t pid, uint32_t dev, uint64_t ino)
{
	struct pb_sb_event e;
	uint64_t state = 0x80;

	memset(&e, 0, sizeof(e));
	memcpy(e.b + 0, &id, 2);
	memcpy(e.b + 4, &pid, 4);
	memcpy(e.b + 8, &dev, 4);
	memcpy(e.b + 16, &ino, 8);
	memcpy(e.b + 24, &state, 8);
	return e;
}

/* The 6.18 layouts, as dc_layout_parse() reads them from formats-6.18. */
enum { PB_ID_ADD = 600, PB_ID_DELETE = 601, PB_ID_WB_DIRTY = 1009, PB_ID_SB_CLEAR = 977 };

static const struct dc_layout pb_layouts_618[] = {
	{ .id = PB_ID_ADD, .src = DC_SRC_ADD, .pid = { 4, 4 }, .ino = { 16, 8 },
	  .index = { 24, 8 }, .dev = { 32, 4 }, .order = { 36, 1 } },
	{ .id = PB_ID_DELETE, .src = DC_SRC_DELETE, .pid = { 4, 4 }, .ino = { 16, 8 },
	  .index = { 24, 8 }, .dev = { 32, 4 }, .order = { 36, 1 } },
	{ .id = PB_ID_WB_DIRTY, .src = DC_SRC_WB_DIRTY, .pid = { 4, 4 }, .name = { 8, 32 },
	  .ino = { 40, 8 }, .index = { 48, 8 } },
	{ .id = PB_ID_SB_CLEAR, .src = DC_SRC_SB_CLEAR_WB, .pid = { 4, 4 }, .dev = { 8, 4 },
	  .ino = { 16, 8 } },
};

/*
 * The offsets (in the event data) where the entries of a sub-buffer end,
 * for decoding it in pieces as the mapped reader does: at most max, the
 * count returned; the last one is the data size.
 */
static inline size_t pb_boundaries(const void *page, int long_size, size_t *offs, size_t max)
{
	const uint8_t *data = (const uint8_t *)page + 8 + long_size;
	uint64_t commit = 0;
	size_t off = 0, n = 0, size;

	memcpy(&commit, (const uint8_t *)page + 8, (size_t)long_size);
	size = (size_t)(commit & ((1ULL << 27) - 1));
	while (off + 4 <= size && n < max) {
		uint32_t h, a = 0;
		size_t len;

		memcpy(&h, data + off, 4);
		if (off + 8 <= size)
			memcpy(&a, data + off + 4, 4);
		if ((h & 31) >= 1 && (h & 31) <= 28)
			len = 4 + (size_t)(h & 31) * 4;
		else if ((h & 31) == 0)
			len = 8 + (((size_t)a - 4 + 3) & ~(size_t)3);
		else if ((h & 31) == 29)
			len = 4 + (size_t)a;
		else
			len = 8;
		off += len;
		offs[n++] = off;
	}
	return n;
}

/*
 * Decode page (len bytes, the kernel's long_size) one data event at a
 * time through dc_decode_page_piece(), as the mapped reader would see it
 * while the writer fills it: pieces end after a data event (or at the
 * end), never between a time extend and its event. Returns the records
 * added, or the decoder's error.
 */
static inline int pb_decode_in_pieces(struct dc_decoder *d, const void *page, size_t len,
				      int long_size, uint16_t cpu, struct dc_recbuf *out)
{
	struct dc_page_pos pos = { 0 };
	size_t offs[4096], n = pb_boundaries(page, long_size, offs, 4096), n0 = out->n;
	const uint8_t *data = (const uint8_t *)page + 8 + long_size;

	for (size_t i = 0; i < n; i++) {
		uint32_t h;
		int r;

		memcpy(&h, data + (i ? offs[i - 1] : 0), 4);
		if ((h & 31) > 28 && i + 1 < n)
			continue;
		r = dc_decode_page_piece(d, page, len, offs[i], 0, &pos, cpu, out);
		if (r < 0)
			return r;
	}
	return (int)(out->n - n0);
}

#endif
