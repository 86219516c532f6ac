// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a saved done-marks file (libduet/savefile.c),
 * parsed. It is refused with -EBADMSG and a sentence, or read; what is
 * read writes again (as version 2) and parses back to the same records,
 * paths byte for byte.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "savefile.h"

static void round_trip(const struct dsv_rec *v, size_t n)
{
	struct dsv_rec *back = NULL;
	size_t len = 0, nb = 0;
	char *text = NULL;
	int ver = 0, r = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	r = dsv_put_header(f);
	for (size_t i = 0; i < n && !r; i++)
		r = dsv_put(f, &v[i]);
	if (!r)
		r = dsv_put_end(f, n);
	if (fclose(f) || r) {
		free(text);
		return;
	}
	r = dsv_parse(text, len, &back, &nb, &ver, NULL);
	if (r == -ENOMEM) {
		free(text);
		return;
	}
	if (r || ver != DSV_VERSION || nb != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (back[i].dev != v[i].dev || back[i].flags != v[i].flags ||
		    back[i].ino != v[i].ino || back[i].gen != v[i].gen ||
		    back[i].index != v[i].index || back[i].count != v[i].count ||
		    strcmp(back[i].path, v[i].path))
			abort();
	dsv_free(back, nb);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private, exactly sized copy so ASan sees any overread. */
	char *buf = malloc(size ? size : 1);
	struct dsv_rec *v = NULL;
	const char *why = NULL;
	size_t n = 0;
	int r, ver = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = dsv_parse(buf, size, &v, &n, &ver, &why);
	free(buf);
	if (r) {
		if ((r != -EBADMSG && r != -ENOMEM) || (r == -EBADMSG && !why))
			abort();
		return 0;
	}
	if (ver != 1 && ver != 2)
		abort();
	round_trip(v, n);
	dsv_free(v, n);
	return 0;
}
