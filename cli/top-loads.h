/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duet top --loads: the readahead and read/fault events, read from the raw
 * pages with the page-cache events (top-raw.h), handed back as
 * DC_TDR_LOAD records for report-loads.c's accounting (top-loads.c).
 */
#ifndef DUET_CLI_TOP_LOADS_H
#define DUET_CLI_TOP_LOADS_H

#include "top-raw.h"

struct top_loads;

/* Their events added to raw: 0, -ENOENT (*missing names the event), -ENOMEM. */
int top_loads_new(struct top_raw *raw, struct top_loads **ret, const char **missing);
void top_loads_free(struct top_loads *l);

#endif
