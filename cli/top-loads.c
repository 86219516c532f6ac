// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top --loads (top-loads.h): each event's fields found in its format
 * (consumer/loadev.c, as the trace.dat reader does), decoded on the reader
 * threads into the records report-loads.c takes.
 */
#include <errno.h>
#include <stdlib.h>

#include "tdread.h"
#include "top-loads.h"

#define NLOADS (DC_AUX_NR - DC_AUX_FIRST_LOAD)

struct top_loads {
	struct load_ev {
		struct dc_load_fields f;
		int kind;
	} ev[NLOADS];
};

static bool decode(void *ud, const void *data, size_t size, struct dc_record *rec)
{
	const struct load_ev *e = ud;

	if (size < e->f.end)
		return false;
	dc_load_decode(&e->f, e->kind, data, rec);
	return true;
}

int top_loads_new(struct top_raw *raw, struct top_loads **ret, const char **missing)
{
	struct top_loads *l = calloc(1, sizeof(*l));
	const char *const *events = dc_load_events();
	size_t n0 = top_raw_count(raw);

	if (!l)
		return -ENOMEM;
	for (int k = 0; k < NLOADS; k++) {
		struct load_ev *e = &l->ev[k];
		char *text = NULL;
		size_t len = 0;
		int r;

		e->kind = DC_AUX_FIRST_LOAD + k;
		r = top_raw_add(raw, events[k], decode, e, &text, &len);
		/* A layout this reader does not take is as good as missing. */
		if (!r && dc_load_fields_parse(&e->f, e->kind, text, len))
			r = -ENOENT;
		free(text);
		if (r) {
			*missing = events[k];
			top_raw_truncate(raw, n0);
			free(l);
			return r;
		}
	}
	*ret = l;
	return 0;
}

void top_loads_free(struct top_loads *l)
{
	free(l);
}
