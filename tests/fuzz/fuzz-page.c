// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: one ring-buffer page, decoded with the 6.18 layouts
 * as a 64-bit and as a 32-bit kernel would have written it. The decoder
 * must never read outside the input and must keep its counts consistent.
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
		}
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
			uint64_t records = st->records;

			out[k].n = 0;
			r[k] = dc_decode_page(dec[i][k], page, size, 1, &out[k]);
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
