// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top's view of reclaim, as root: vmscan's direct, memory-cgroup and
 * node reclaim begin/end events, read from the raw pages (top-raw.c). A
 * removal by a task between its begin and end is direct reclaim, as duet
 * report tells it from a recording.
 */
#include <errno.h>
#include <stdlib.h>
#include <uthash.h>

#include "tdread.h"
#include "top-vmscan.h"

/* The events, as "system/name": begins at even places, ends after them. */
static const char *const vm_events[] = {
	"vmscan/mm_vmscan_direct_reclaim_begin", "vmscan/mm_vmscan_direct_reclaim_end",
	"vmscan/mm_vmscan_memcg_reclaim_begin",	 "vmscan/mm_vmscan_memcg_reclaim_end",
	"vmscan/mm_vmscan_node_reclaim_begin",	 "vmscan/mm_vmscan_node_reclaim_end",
	NULL,
};

/* Their records: DC_TDR_AUX (tdread.h's type for such events), index 1 for a begin, 0 for an end. */
#define VM_TYPE DC_TDR_AUX

struct vm_pid {
	int pid;
	UT_hash_handle hh;
};

struct top_vmscan {
	struct vm_pid *pids;	/* in reclaim now */
};

static bool decode_begin(void *ud, const void *data, size_t size, struct dc_record *rec)
{
	(void)ud;
	(void)data;
	(void)size;
	rec->type = VM_TYPE;
	rec->index = 1;
	return true;
}

static bool decode_end(void *ud, const void *data, size_t size, struct dc_record *rec)
{
	(void)ud;
	(void)data;
	(void)size;
	rec->type = VM_TYPE;
	rec->index = 0;
	return true;
}

int top_vmscan_new(struct top_raw *raw, struct top_vmscan **ret)
{
	struct top_vmscan *v = calloc(1, sizeof(*v));
	size_t n0 = top_raw_count(raw);

	if (!v)
		return -ENOMEM;
	for (int i = 0; vm_events[i]; i++) {
		int r = top_raw_add(raw, vm_events[i], i % 2 ? decode_end : decode_begin, v, NULL,
				    NULL);

		if (r) {
			top_raw_truncate(raw, n0);
			free(v);
			return r;
		}
	}
	*ret = v;
	return 0;
}

void top_vmscan_free(struct top_vmscan *v)
{
	struct vm_pid *p, *tmp;

	if (!v)
		return;
	HASH_ITER(hh, v->pids, p, tmp) {
		HASH_DEL(v->pids, p);
		free(p);
	}
	free(v);
}

bool top_vmscan_apply(struct top_vmscan *v, const struct dc_record *rec)
{
	struct vm_pid *p;

	if (rec->type != VM_TYPE)
		return false;
	HASH_FIND_INT(v->pids, &rec->pid, p);
	if (rec->index && !p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return true;	/* a cause less, never a crash */
		p->pid = rec->pid;
		HASH_ADD_INT(v->pids, pid, p);
	} else if (!rec->index && p) {	/* out of reclaim: forgotten (pids are reused) */
		HASH_DEL(v->pids, p);
		free(p);
	}
	return true;
}

bool top_vmscan_in_reclaim(const struct top_vmscan *v, int pid)
{
	struct vm_pid *p;

	HASH_FIND_INT(v->pids, &pid, p);
	return p != NULL;
}
