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

static struct dc_decoder *dec[2];
static struct dc_recbuf out;

static void setup(void)
{
	for (int i = 0; i < 2; i++) {
		struct dc_decoder_opts o = {
			.sz = sizeof(o),
			.long_size = i ? 4 : 8,
			.layouts = pb_layouts_618,
			.nlayouts = sizeof(pb_layouts_618) / sizeof(pb_layouts_618[0]),
			.bdis = bdis,
			.nbdis = 2,
		};

		if (dc_decoder_new(&o, &dec[i]))
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
	if (!dec[0])
		setup();
	for (int i = 0; i < 2; i++) {
		const struct dc_decode_stats *st = dc_decoder_stats(dec[i]);
		uint64_t records = st->records;
		int r;

		out.n = 0;
		r = dc_decode_page(dec[i], page, size, 1, &out);
		if (r < 0) {
			if ((r != -EBADMSG && r != -ENOMEM) || out.n)
				abort();
			continue;
		}
		if ((size_t)r != out.n || st->records - records != out.n)
			abort();
		for (size_t k = 0; k < out.n; k++) {
			const struct dc_record *rec = &out.rec[k];

			if (rec->cpu != 1 || rec->reserved)
				abort();
			if (rec->type == DC_LOST ? k != 0 :
			    (rec->type & ~DC_EVENTS_ALL) || !rec->type)
				abort();
		}
	}
	free(page);
	return 0;
}
