/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which tasks are in direct (memory cgroup, node) reclaim, live, from
 * vmscan events read with the page-cache events (top-vmscan.c).
 */
#ifndef DUET_CLI_TOP_VMSCAN_H
#define DUET_CLI_TOP_VMSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct top_vmscan;

/* The events to enable (dc_source_opts.extra_events), NULL-terminated. */
const char *const *top_vmscan_events(void);
/* 0, -ENOENT (the kernel has not all of them), -ENOMEM. */
int top_vmscan_new(int ncpus, struct top_vmscan **ret);
void top_vmscan_free(struct top_vmscan *v);
/* dc_source_opts.page_fn, with v as page_ud. */
int top_vmscan_page(void *ud, int cpu, const void *page, size_t len);
/* Whether pid was in reclaim at ts (called in time order of ts). */
bool top_vmscan_in_reclaim(struct top_vmscan *v, int pid, uint64_t ts);

#endif
