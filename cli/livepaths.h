/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What duet watch and duet top read live, as root: the PATHs resolved,
 * the file systems they cover, their backing devices and the path index
 * of the files under them.
 */
#ifndef DUET_CLI_LIVEPATHS_H
#define DUET_CLI_LIVEPATHS_H

#include <stddef.h>
#include <stdint.h>

#include "devices.h"
#include "index.h"

struct cli_paths {
	char **roots;		/* realpath()s of the PATHs */
	size_t nroots;
	struct dc_mounts mounts;
	uint32_t *devs;		/* kernel dev_t of the file systems covered */
	size_t ndevs;
	struct dc_bdi *bdis;	/* their backing devices (DIRTY events) */
	size_t nbdis;
	struct dc_index *idx;
};

/*
 * Resolve the n paths, find their devices and build the index: 0, or an
 * exit status after a sentence starting with prog. p starts zeroed;
 * cli_paths_free() releases it either way.
 */
int cli_paths_open(struct cli_paths *p, const char *prog, char *const *paths, int n);
void cli_paths_free(struct cli_paths *p);

#endif
