/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duet report's "who put it there" (a recording made with duet record
 * --loads): each page a task loaded is told apart as demanded (a read or
 * a fault asked for it: a miss), loaded by readahead (added during a read
 * or fault that did not ask for it), or other (added outside any read or
 * fault of that task: writes, fadvise WILLNEED); and each page a read or
 * fault asked for that was not loaded then is a hit.
 */
#ifndef DUET_REPORT_LOADS_H
#define DUET_REPORT_LOADS_H

#include <stdbool.h>
#include <stdint.h>

#include "record.h"

/* One file's figures. */
struct rloads {
	uint64_t demand;	/* pages asked for and loaded: misses */
	uint64_t readahead;	/* pages loaded by a read or fault that did not ask for them */
	uint64_t other;		/* pages loaded outside reads and faults */
	uint64_t hits;		/* pages asked for, already cached */
	uint64_t ra_calls[4];	/* readahead calls: sync, async, order, unbounded */
};

/* The file's figures (created as needed), or NULL (out of memory). */
typedef struct rloads *(*loads_file_fn)(void *ud, uint32_t dev, uint64_t ino);

struct loads;

/* A page-cache ADDED record, in stream order. 0 or -ENOMEM. */
int loads_added(struct loads **l, const struct dc_record *r, loads_file_fn fn, void *ud);
/* A DC_TDR_LOAD record (tdread.h), in stream order. 0 or -ENOMEM. */
int loads_event(struct loads **l, const struct dc_record *r, loads_file_fn fn, void *ud);
/* The end of the stream: what is still open is settled, *l freed. */
int loads_finish(struct loads **l, loads_file_fn fn, void *ud);

#endif
