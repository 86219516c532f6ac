// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a sidecar FILE.duet (consumer/sidecar.c), parsed.
 * It is refused with -EBADMSG and a sentence, or read; what is read
 * writes again and parses back to the same files and backing devices.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sidecar.h"

static void round_trip(const struct dc_sidecar *sc)
{
	struct dc_mounts none = { 0 };
	struct dc_sidecar *back = NULL;
	const struct dc_bdi *b, *bb;
	const char *why = NULL;
	size_t n, nb;
	char *text;
	off_t len;
	int fd = memfd_create("sidecar", MFD_CLOEXEC);

	if (fd < 0)
		return;
	b = dc_sidecar_bdis(sc, &n);
	if (dc_sidecar_write(sc, fd, "t.dat", &none, NULL, 0, b, n) ||
	    (len = lseek(fd, 0, SEEK_END)) <= 0 || !(text = malloc((size_t)len))) {
		close(fd);
		return;
	}
	if (pread(fd, text, (size_t)len, 0) == len &&
	    dc_sidecar_parse(text, (size_t)len, &back, &why) != -ENOMEM) {
		if (!back || dc_sidecar_nfiles(back) != dc_sidecar_nfiles(sc))
			abort();
		bb = dc_sidecar_bdis(back, &nb);
		if (nb != n || (n && memcmp(b, bb, n * sizeof(*b))))
			abort();
	}
	dc_sidecar_free(back);
	free(text);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private, exactly sized copy so ASan sees any overread. */
	char *buf = malloc(size ? size : 1);
	struct dc_sidecar *sc = NULL;
	const char *why = NULL;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = dc_sidecar_parse(buf, size, &sc, &why);
	free(buf);
	if (r) {
		if ((r != -EBADMSG && r != -ENOMEM) || sc || (r == -EBADMSG && !why))
			abort();
		return 0;
	}
	if (!sc)
		abort();
	round_trip(sc);
	dc_sidecar_free(sc);
	return 0;
}
