/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef DUET_OUTPUT_H
#define DUET_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

/* Version of the NDJSON schema `duet watch --json` prints (see README). */
#define DUET_JSON_SCHEMA 1

struct out_ctx {
	FILE *f;
	bool json;
	uint64_t t0;		/* ns; text times are relative to it */
	int self_pid;
};

/* An event as printed: a record, possibly coalesced with its neighbours. */
struct out_event {
	struct dc_record r;
	const char *path;
	bool deleted;
};

void out_event(struct out_ctx *o, const struct out_event *e);
void out_lost(struct out_ctx *o, uint64_t ts, unsigned int cpu, uint64_t count,
	      bool known, const char *source);
/* The comm of pid, cached; "-" when unknown. */
const char *out_comm(int pid);
void out_comm_cache_free(void);

#endif
