/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duet top --loads: the readahead and read/fault events, read live from
 * the raw pages with the page-cache events (top-loads.c), handed back
 * in time order as DC_TDR_LOAD records for report-loads.c's accounting.
 */
#ifndef DUET_CLI_TOP_LOADS_H
#define DUET_CLI_TOP_LOADS_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

struct top_loads;

/* The events to enable, NULL-terminated. */
const char *const *top_loads_events(void);
/* 0, -ENOENT (this kernel lacks one; *missing names it), -ENOMEM. */
int top_loads_new(int ncpus, struct top_loads **ret, const char **missing);
void top_loads_free(struct top_loads *l);
/* A raw sub-buffer of cpu (a page_fn, with l as its ud). */
int top_loads_page(void *ud, int cpu, const void *page, size_t len);
/* Every queued record up to ts, in time order, to fn; returns fn's error. */
typedef int (*top_loads_fn)(void *ud, const struct dc_record *r);
int top_loads_until(struct top_loads *l, uint64_t ts, top_loads_fn fn, void *ud);

#endif
