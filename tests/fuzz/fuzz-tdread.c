// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a whole trace.dat (version 6 or 7, zstd sections and
 * chunks included), opened and decoded. The reader must never read
 * outside the input, must refuse with -EBADMSG, -EOPNOTSUPP or -EPROTO
 * and a sentence, and must hand out records in time order with known
 * types only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tdread.h"

static const struct dc_bdi bdis[] = {
	{ .name = "7:0", .devs = { 0x700000 }, .ndevs = 1 },
	{ .name = "btrfs-2", .devs = { 0x2d, 0x2e }, .ndevs = 2 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private, exactly sized copy so ASan sees any overread. */
	uint8_t *buf = malloc(size ? size : 1);
	struct dc_tdread *td = NULL;
	struct dc_recbuf out = { 0 };
	struct dc_decode_stats st;
	const char *why = NULL;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = dc_tdread_open(buf, size, &td, &why);
	if (r) {
		if ((r != -EBADMSG && r != -EOPNOTSUPP && r != -EPROTO && r != -ENOMEM) ||
		    !why || td)
			abort();
		free(buf);
		return 0;
	}
	r = dc_tdread_decode(td, bdis, 2, &out, &st);
	if (r && r != -ENOMEM)
		abort();
	for (size_t k = 0; !r && k < out.n; k++) {
		const struct dc_record *rec = &out.rec[k];

		if (k && out.rec[k - 1].ts > rec->ts)
			abort();
		if (rec->type == DC_TDR_AUX ? rec->index >= DC_AUX_NR :
		    rec->type != DC_LOST && ((rec->type & ~DC_EVENTS_ALL) || !rec->type))
			abort();
		if (rec->cpu >= dc_tdread_ncpus(td))
			abort();
	}
	for (int p = -1; p < 3; p++)
		(void)dc_tdread_comm(td, p);
	dc_recbuf_free(&out);
	dc_tdread_free(td);
	free(buf);
	return 0;
}
