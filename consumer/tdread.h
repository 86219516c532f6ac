/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * trace.dat reader (file version 6, flyrecord). Pure: the caller maps or
 * reads the file and hands over the bytes; records come out. No I/O, so
 * it is fuzzed like the page decoder it feeds.
 */
#ifndef DUET_TDREAD_H
#define DUET_TDREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "page.h"

/*
 * Records of co-recorded events that are not page-cache events carry
 * type DC_TDR_AUX and the kind in index; pid is the task that ran the
 * tracepoint.
 */
#define DC_TDR_AUX	0x40u

enum dc_td_aux {
	DC_AUX_KSWAPD_WAKE,	/* vmscan/mm_vmscan_kswapd_wake */
	DC_AUX_KSWAPD_SLEEP,	/* vmscan/mm_vmscan_kswapd_sleep */
	DC_AUX_DIRECT_BEGIN,	/* vmscan/mm_vmscan_direct_reclaim_begin */
	DC_AUX_DIRECT_END,	/* vmscan/mm_vmscan_direct_reclaim_end */
	DC_AUX_MEMCG_BEGIN,	/* vmscan/mm_vmscan_memcg_reclaim_begin */
	DC_AUX_MEMCG_END,	/* vmscan/mm_vmscan_memcg_reclaim_end */
	DC_AUX_NODE_BEGIN,	/* vmscan/mm_vmscan_node_reclaim_begin */
	DC_AUX_NODE_END,	/* vmscan/mm_vmscan_node_reclaim_end */
	/* duet record --loads: DC_TDR_LOAD records (below). */
	DC_AUX_RA_SYNC,		/* readahead/page_cache_sync_ra: [index, +size) */
	DC_AUX_RA_ASYNC,	/* readahead/page_cache_async_ra */
	DC_AUX_RA_ORDER,	/* readahead/page_cache_ra_order */
	DC_AUX_RA_UNBOUNDED,	/* readahead/page_cache_ra_unbounded: [index, +nr_to_read) */
	DC_AUX_READ,		/* filemap/mm_filemap_get_pages: the pages a read asked for */
	DC_AUX_FAULT,		/* filemap/mm_filemap_fault: one page (fired before its loads) */
	DC_AUX_NR,
};

/*
 * Records of the --loads events carry type DC_TDR_LOAD, the kind (one of
 * DC_AUX_RA_SYNC ... DC_AUX_FAULT) in reserved, and dev, ino, index and
 * count (pages) as page events do; pid is the task.
 */
#define DC_TDR_LOAD	0x41u
#define DC_AUX_FIRST_LOAD	DC_AUX_RA_SYNC

/* An aux event's name and system ("vmscan", "readahead", "filemap"). */
const char *dc_aux_name(int kind);
const char *dc_aux_system(int kind);

/*
 * loadev.c: the --loads events as "system/name", in the order of their
 * kinds (DC_AUX_FIRST_LOAD on), NULL-terminated.
 */
const char *const *dc_load_events(void);

/*
 * The --loads events' fields, from their format text. A field's
 * offset if it has exactly that declaration and size (0, or -1).
 */
int dc_format_field(const char *text, size_t len, const char *decl, unsigned int size,
		    uint16_t *off);

struct dc_load_fields {
	uint16_t ino, dev, index, count, last;
	uint16_t end;		/* an event must hold this many bytes */
	uint8_t count_size;	/* 0: one page (a fault) or last - index + 1 (a read) */
};

/* 0, or -1: a layout not decoded (the event is then left out). */
int dc_load_fields_parse(struct dc_load_fields *f, int kind, const char *text, size_t len);
/* The event's bytes (at least f->end) into rec (type DC_TDR_LOAD, kind in reserved). */
void dc_load_decode(const struct dc_load_fields *f, int kind, const void *data,
		    struct dc_record *rec);

struct dc_tdread;

/*
 * Check the header and every section of a trace.dat held in buf (which
 * must stay valid until dc_tdread_free()) and find the per-CPU page
 * data. Returns 0, or -EBADMSG (not a trace.dat, truncated or corrupt),
 * -EOPNOTSUPP (a version or layout this reader does not read), -EPROTO
 * (an event of ours with a layout the decoder cannot use), -ENOMEM. On
 * failure *why, if given, points to a static sentence saying what is
 * wrong.
 */
int dc_tdread_open(const void *buf, size_t len, struct dc_tdread **ret,
		     const char **why);
void dc_tdread_free(struct dc_tdread *t);

/*
 * Decode every page of every CPU and append the records, merged in
 * timestamp order, to out: page-cache records (DC_ADDED ... DC_LOST) and
 * DC_TDR_AUX records. bdis maps writeback_dirty_folio's backing-device
 * names to devices (events of other names are counted as unmapped).
 * Pages refused as corrupt are counted in the stats and skipped. Returns
 * 0 or -ENOMEM; *st, if given, receives the decoder's counts.
 */
int dc_tdread_decode(struct dc_tdread *t, const struct dc_bdi *bdis, size_t nbdis,
		       struct dc_recbuf *out, struct dc_decode_stats *st);

/* Which sources the file describes (their event format is embedded). */
bool dc_tdread_has(const struct dc_tdread *t, enum dc_src src);
bool dc_tdread_has_aux(const struct dc_tdread *t, enum dc_td_aux aux);

/* The saved command line (comm) of pid, NULL if the file has none. */
const char *dc_tdread_comm(const struct dc_tdread *t, int pid);

int dc_tdread_version(const struct dc_tdread *t);
unsigned int dc_tdread_ncpus(const struct dc_tdread *t);
const char *dc_tdread_clock(const struct dc_tdread *t);

#endif
