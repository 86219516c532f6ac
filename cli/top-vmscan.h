/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which tasks are in direct (memory cgroup, node) reclaim, live, from
 * vmscan's begin/end events read with the page-cache events (top-raw.h).
 */
#ifndef DUET_CLI_TOP_VMSCAN_H
#define DUET_CLI_TOP_VMSCAN_H

#include <stdbool.h>

#include "record.h"
#include "top-raw.h"

struct top_vmscan;

/* Their events added to raw: 0, -ENOENT (the kernel lacks one: none added), -ENOMEM. */
int top_vmscan_new(struct top_raw *raw, struct top_vmscan **ret);
void top_vmscan_free(struct top_vmscan *v);
/* One of raw's records (handed over in time order): whether it was one of ours. */
bool top_vmscan_apply(struct top_vmscan *v, const struct dc_record *rec);
/* Whether pid is in reclaim, as of the records applied. */
bool top_vmscan_in_reclaim(const struct top_vmscan *v, int pid);

#endif
