// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The PATHs of duet watch and duet top, resolved into what the live
 * event source and the path index need (livepaths.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet-cli.h"
#include "livepaths.h"

int cli_paths_open(struct cli_paths *p, const char *prog, char *const *paths, int n)
{
	int r;

	p->roots = calloc((size_t)n, sizeof(*p->roots));
	if (!p->roots) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return CLI_EXIT_FAIL;
	}
	for (int i = 0; i < n; i++) {
		char *rp = realpath(paths[i], NULL);

		if (!rp) {
			fprintf(stderr, "%s: %s: %s\n", prog, paths[i],
				errno == ENOENT ? "no such file or directory; give an existing path" :
						  strerror(errno));
			return CLI_EXIT_FAIL;
		}
		p->roots[p->nroots++] = rp;
	}
	r = dc_mounts_load(&p->mounts);
	if (!r)
		r = dc_devices_for_paths(&p->mounts, p->roots, p->nroots, &p->devs, &p->ndevs);
	if (!r)
		r = dc_bdis_for_devices(&p->mounts, p->devs, p->ndevs, &p->bdis, &p->nbdis);
	if (r) {
		fprintf(stderr, "%s: cannot read the mount table: %s\n", prog, strerror(-r));
		return CLI_EXIT_FAIL;
	}
	r = dc_index_new(p->roots, p->nroots, &p->idx);
	if (r) {
		fprintf(stderr, "%s: cannot index %s: %s\n", prog, p->roots[0], strerror(-r));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

void cli_paths_free(struct cli_paths *p)
{
	dc_index_free(p->idx);
	dc_mounts_free(&p->mounts);
	free(p->devs);
	free(p->bdis);
	for (size_t i = 0; i < p->nroots; i++)
		free(p->roots[i]);
	free(p->roots);
	memset(p, 0, sizeof(*p));
}
