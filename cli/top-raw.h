/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duet top's events beside the page-cache ones (vmscan's reclaim, --loads'
 * readahead and reads): enabled in top's own tracing instance, taken from
 * the raw pages on each CPU's reader thread before the pages' records are
 * decoded, queued, and handed back in time order (top-raw.c).
 */
#ifndef DUET_CLI_TOP_RAW_H
#define DUET_CLI_TOP_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

struct top_raw;

/*
 * An event's bytes (size of them) into rec (ts, cpu and pid are set):
 * whether to queue it. Runs on a reader thread.
 */
typedef bool (*top_raw_decode_fn)(void *ud, const void *data, size_t size,
				  struct dc_record *rec);

/* 0 or -ENOMEM. */
int top_raw_new(int ncpus, struct top_raw **ret);
void top_raw_free(struct top_raw *r);
/*
 * Read "system/name" too, decoded by fn. 0, -ENOENT (this kernel lacks it),
 * -ENOMEM. *text, if given, receives the event's format (the caller frees it).
 */
int top_raw_add(struct top_raw *r, const char *event, top_raw_decode_fn fn, void *ud,
		char **text, size_t *len);
/* Forget the events added since there were n (a source that would not open with them). */
void top_raw_truncate(struct top_raw *r, size_t n);
size_t top_raw_count(const struct top_raw *r);
/* The events added, NULL-terminated (the source's extra_events). */
const char *const *top_raw_events(const struct top_raw *r);
/* The source's page_fn, with r as page_ud. */
int top_raw_page(void *ud, int cpu, const void *page, size_t len);
/* Every queued record up to ts, in time order, to fn; returns fn's error. */
int top_raw_until(struct top_raw *r, uint64_t ts, int (*fn)(void *ud, const struct dc_record *rec),
		  void *ud);

#endif
