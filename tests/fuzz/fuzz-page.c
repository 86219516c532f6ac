// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: one ring-buffer page, decoded with the 6.18 layouts
 * as a 64-bit and as a 32-bit kernel would have written it. The decoder
 * must never read outside the input and must keep its counts consistent.
 * In pieces (dc_decode_page_piece(), one data event at a time, as the
 * mapped reader may read it) a page the walk accepts gives the same
 * records and counts; any page leaves it inside the input.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "page.h"
#include "pagebuild.h"

static const struct dc_bdi bdis[] = {
	{ .name = "7:1", .devs = { 0x700001 }, .ndevs = 1 },
	{ .name = "btrfs-2", .devs = { 0x2d, 0x2e }, .ndevs = 2 },
};

/* [long size 8, 4] x [our own walk, kbuffer]: the two must agree. */
static struct dc_decoder *dec[2][2];
static struct dc_recbuf out[2];
/* The walk in pieces, per long size. */
static struct dc_decoder *piece_dec[2];
static struct dc_recbuf piece_out;

static void setup(void)
{
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 2; k++) {
			struct dc_decoder_opts o = {
				.sz = sizeof(o),
				.long_size = i ? 4 : 8,
				.layouts = pb_layouts_618,
				.nlayouts = sizeof(pb_layouts_618) / sizeof(pb_layouts_618[0]),
				.bdis = bdis,
				.nbdis = 2,
				.flags = k ? DC_DECODE_KBUFFER : 0,
			};

			if (dc_decoder_new(&o, &dec[i][k]))
				abort();
			if (!k && dc_decoder_new(&o, &piece_dec[i]))
				abort();
		}
}

/*
 * Decode in pieces ending after each data event; compare with the walk's
 * answer r, records ref[0, nref) and counts before/after when it accepted.
 */
static void pieces(int i, const uint8_t *page, size_t size, int r, const struct dc_recbuf *ref,
		   const struct dc_decode_stats *before, const struct dc_decode_stats *after)
{
	struct dc_decoder *d = piece_dec[i];
	struct dc_decode_stats b = *dc_decoder_stats(d), a;
	size_t offs[4096], n, hdr = 8 + (i ? 4 : 8);
	struct dc_page_pos pos = { 0 };
	int bad = 0;

	if (size < hdr)
		return;
	if (r < 0) {
		/* Refused whole: pieces of any length stay inside it too. */
		size_t ends[2] = { (size - hdr) / 2, size - hdr };

		for (int k = 0; k < 2; k++) {
			int pr = dc_decode_page_piece(d, page, size, ends[k], -1, &pos, 1,
						      &piece_out);

			if (pr < 0 && pr != -EBADMSG && pr != -ENOMEM)
				abort();
		}
		return;
	}
	/* Accepted: its entries lie inside it (pb_boundaries trusts the commit). */
	n = pb_boundaries(page, i ? 4 : 8, offs, 4096);
	piece_out.n = 0;
	for (size_t k = 0; k < n; k++) {
		size_t start = k ? offs[k - 1] : 0;
		uint32_t h;
		int pr;

		if (start + 4 <= size - hdr) {
			memcpy(&h, page + hdr + start, 4);
			if ((h & 31) > 28 && k + 1 < n)
				continue;
		}
		pr = dc_decode_page_piece(d, page, size, offs[k], 0, &pos, 1, &piece_out);
		if (pr < 0 && pr != -EBADMSG && pr != -ENOMEM)
			abort();
		bad |= pr == -EBADMSG;
	}
	a = *dc_decoder_stats(d);
	if (!n)
		return;
	/* Accepted whole: accepted in pieces, with the same records and counts. */
	if (bad || piece_out.n != ref->n ||
	    (ref->n && memcmp(piece_out.rec, ref->rec, ref->n * sizeof(*ref->rec))) ||
	    a.records - b.records != after->records - before->records ||
	    a.events - b.events != after->events - before->events ||
	    a.lost - b.lost != after->lost - before->lost ||
	    a.lost_unknown - b.lost_unknown != after->lost_unknown - before->lost_unknown ||
	    a.pages - b.pages != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private, exactly sized copy so ASan sees any overread. */
	uint8_t *page = malloc(size ? size : 1);

	if (!page)
		return 0;
	memcpy(page, data, size);
	if (!dec[0][0])
		setup();
	for (int i = 0; i < 2; i++) {
		int r[2];

		for (int k = 0; k < 2; k++) {
			const struct dc_decode_stats *st = dc_decoder_stats(dec[i][k]);
			struct dc_decode_stats before = *st;
			uint64_t records = st->records;

			out[k].n = 0;
			r[k] = dc_decode_page(dec[i][k], page, size, 1, &out[k]);
			if (!k)
				pieces(i, page, size, r[k], &out[k], &before, st);
			if (r[k] < 0) {
				if ((r[k] != -EBADMSG && r[k] != -ENOMEM) || out[k].n)
					abort();
				continue;
			}
			if ((size_t)r[k] != out[k].n || st->records - records != out[k].n)
				abort();
			for (size_t n = 0; n < out[k].n; n++) {
				const struct dc_record *rec = &out[k].rec[n];

				if (rec->cpu != 1 || rec->reserved)
					abort();
				if (rec->type == DC_LOST ? n != 0 :
				    (rec->type & ~DC_EVENTS_ALL) || !rec->type)
					abort();
			}
		}
		/* The same answer, the same records, the same counts. */
		if (r[0] != r[1] || out[0].n != out[1].n ||
		    (out[0].n && memcmp(out[0].rec, out[1].rec, out[0].n * sizeof(*out[0].rec))) ||
		    memcmp(dc_decoder_stats(dec[i][0]), dc_decoder_stats(dec[i][1]),
			   sizeof(struct dc_decode_stats)))
			abort();
	}
	free(page);
	return 0;
}
