// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kernel filters of the live source's events, as text: the watched
 * devices (their bdi names for writeback_dirty_folio) and never our own
 * pid. Pure string building; reader.c writes them to the instance.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "live.h"

int dc_dev_filter(char *buf, size_t len, const char *field, const uint32_t *devs, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + off, len - off, "%s%s == %" PRIu32,
				 i ? " || " : "", field, devs[i]);

		if (w < 0 || (size_t)w >= len - off)
			return -E2BIG;
		off += (size_t)w;
	}
	return 0;
}

static bool bdi_watched(const struct dc_bdi *b, const uint32_t *devs, size_t ndevs)
{
	for (unsigned int i = 0; i < b->ndevs; i++)
		for (size_t j = 0; j < ndevs; j++)
			if (b->devs[i] == devs[j])
				return true;
	return false;
}

/* The bdis of the watched devices; a filter that matches nothing if none. */
static int bdi_filter(char *buf, size_t len, const struct dc_bdi *b, size_t n,
		      const uint32_t *devs, size_t ndevs)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w;

		if (!bdi_watched(&b[i], devs, ndevs))
			continue;
		w = snprintf(buf + off, len - off, "%sname == \"%s\"", off ? " || " : "",
			     b[i].name);
		if (w < 0 || (size_t)w >= len - off)
			return -E2BIG;
		off += (size_t)w;
	}
	if (!off)
		snprintf(buf, len, "common_pid < 0");
	return 0;
}

int dc_filter_for(int src, const uint32_t *devs, size_t ndevs, const struct dc_bdi *bdis,
		  size_t nbdis, int exclude_pid, char *buf, size_t len)
{
	char filter[4096];
	int r = 0, w;

	filter[0] = '\0';
	if (ndevs) {
		if (src == DC_SRC_WB_DIRTY)
			r = bdi_filter(filter, sizeof(filter), bdis, nbdis, devs, ndevs);
		else if (src == DC_SRC_SB_CLEAR_WB || dc_src_info[src].type == DC_INODE_NEW)
			r = dc_dev_filter(filter, sizeof(filter), "dev", devs, ndevs);
		else
			r = dc_dev_filter(filter, sizeof(filter), "s_dev", devs, ndevs);
		if (r)
			return r;
	}
	/*
	 * Our own page-cache activity (output written to a watched file
	 * system) must not feed back into the buffer.
	 */
	if (exclude_pid > 0)
		w = snprintf(buf, len, "%s%s%scommon_pid != %d", filter[0] ? "(" : "", filter,
			     filter[0] ? ") && " : "", exclude_pid);
	else
		w = snprintf(buf, len, "%s", filter[0] ? filter : "0");
	if (w < 0 || (size_t)w >= len)
		return -E2BIG;
	return 0;
}
