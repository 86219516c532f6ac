// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: /proc/self/mountinfo text, then the lookups the
 * daemon does on the result.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), **dirs;
	struct dc_mounts m;
	uint32_t *devs = NULL;
	size_t ndevs = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dc_mounts_parse(text, &m)) {
		free(text);
		return 0;
	}
	free(text);
	dirs = calloc(m.n + 1, sizeof(*dirs));
	for (size_t i = 0; dirs && i < m.n; i++) {
		const struct dc_mount *f = dc_mounts_find(&m, m.m[i].mnt_point);

		/* Every mount point lies on a mount at least as deep. */
		if (!f || strlen(f->mnt_point) < strlen(m.m[i].mnt_point) ||
		    !dc_path_under(m.m[i].mnt_point, f->mnt_point))
			abort();
		dirs[i] = m.m[i].mnt_point;
	}
	if (dirs && !dc_devices_for_paths(&m, dirs, m.n, &devs, &ndevs)) {
		for (size_t i = 0; i < ndevs; i++)
			for (size_t j = i + 1; j < ndevs; j++)
				if (devs[i] == devs[j])
					abort();
	}
	free(devs);
	free(dirs);
	dc_mounts_free(&m);
	return 0;
}
