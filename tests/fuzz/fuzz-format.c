// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a tracefs format file, parsed as every source. A
 * parsed layout must only name fields inside the 16-bit event it claims.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "format.h"

static void check_field(const struct dc_field *f)
{
	if (f->size && (f->size > 64 || f->offset + f->size > 0xffff + 64))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int s = 0; s < DC_SRC_NR; s++) {
		struct dc_layout l;

		if (dc_layout_parse(s, (const char *)data, size, &l))
			continue;
		if ((int)l.src != s || l.id <= 0 || l.id > 0xffff || l.pid.size != 4 || !l.ino.size)
			abort();
		check_field(&l.pid);
		check_field(&l.ino);
		check_field(&l.index);
		check_field(&l.dev);
		check_field(&l.order);
		check_field(&l.name);
	}
	return 0;
}
