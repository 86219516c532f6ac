/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ring-buffer sub-buffer ("page") decoder. Pure: bytes in, records out, no
 * I/O, so it is tested on recorded and hand-built pages and fuzzed.
 */
#ifndef DUET_PAGE_H
#define DUET_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "record.h"

#define DC_BDI_MAX_DEVS 4

/* A backing-device name and the file systems (kernel dev_t) that use it. */
struct dc_bdi {
	char name[32];
	uint32_t devs[DC_BDI_MAX_DEVS];
	uint8_t ndevs;
};

struct dc_decoder_opts {
	size_t sz;		/* sizeof(struct dc_decoder_opts) */
	int long_size;		/* 4 or 8: size of the page header's commit */
	const struct dc_layout *layouts;
	size_t nlayouts;
	const struct dc_bdi *bdis;	/* for writeback_dirty_folio */
	size_t nbdis;
	unsigned int types;	/* DC_ADDED | ...: records to emit; 0: all */
	unsigned int flags;	/* DC_DECODE_* */
};

/*
 * Decode with libtraceevent's kbuffer, the reference. Without it the
 * decoder walks the sub-buffer itself in one pass (its own reading of
 * the ring buffer's encoding, the same records and counts: the unit and
 * fuzz tests hold the two to it), with no call per event.
 */
#define DC_DECODE_KBUFFER 0x1u

/* Growable output array. */
struct dc_recbuf {
	struct dc_record *rec;
	size_t n;
	size_t cap;
};

struct dc_decode_stats {
	uint64_t pages;
	uint64_t events;	/* data events seen on pages */
	uint64_t records;	/* records emitted */
	uint64_t unknown;	/* events of an id no layout describes */
	uint64_t short_events;	/* events too small for their layout */
	uint64_t unmapped;	/* dirty events of a bdi not in the table */
	uint64_t lost;		/* events the pages say were lost */
	uint64_t lost_unknown;	/* pages flagged lost without a count */
	uint64_t bad_pages;	/* pages refused as inconsistent (-EBADMSG) */
};

struct dc_decoder;

int dc_decoder_new(const struct dc_decoder_opts *opts, struct dc_decoder **ret);
void dc_decoder_free(struct dc_decoder *d);

/*
 * Decode one sub-buffer of len bytes read from cpu's trace_pipe_raw (or a
 * recorded file). Appends records to out in page order; a page marked with
 * missed events first gets a DC_LOST record. Returns the number of records
 * appended, -EBADMSG for a page whose header is inconsistent (nothing is
 * appended), -ENOMEM.
 */
/*
 * A ring-buffer sub-buffer's header: its time stamp (8 bytes) and commit
 * field (long_size: 4 or 8). dc_page_data_size() is the event data the
 * commit says the sub-buffer holds (without the loss flags), 0 when len
 * is shorter than the header. The one reader of the header's layout:
 * the live reader asks it whether a page is still being filled.
 */
static inline size_t dc_page_header_size(int long_size)
{
	return 8 + (size_t)long_size;
}

size_t dc_page_data_size(const void *page, size_t len, int long_size);

int dc_decode_page(struct dc_decoder *d, const void *page, size_t len,
		   uint16_t cpu, struct dc_recbuf *out);

/*
 * Where the decoding of a sub-buffer read in place stopped. The mapped
 * reader (rbmap.h) decodes the kernel's reader sub-buffer where it lies,
 * in pieces: while the writer is still on it, each TRACE_MMAP_IOCTL_GET_READER
 * hands out the events committed since the last one. Zeroed for a new
 * sub-buffer.
 */
struct dc_page_pos {
	size_t off;		/* bytes of event data decoded */
	uint64_t ts;		/* the time at off */
	bool started;		/* the header was read (its time, its loss) */
	bool bad;		/* refused: the rest of it is skipped */
};

/*
 * Decode the event data of the sub-buffer page (len bytes: the whole
 * sub-buffer) from pos->off up to end, the bytes the kernel has handed
 * out (meta->reader.read). The first piece reads the header: its time
 * and missed-events flags, or, when it has none, lost (the meta page's
 * reader.lost_events: 0 none, -1 unknown, else a count). The same
 * records and counts as dc_decode_page() on the whole sub-buffer, always
 * by our own walk (not kbuffer). pos->off moves to end, unless -ENOMEM.
 * Returns the records appended, 0 when there is nothing new or the
 * sub-buffer was refused before, -EBADMSG (counted once; nothing of this
 * piece is appended, and the rest of the sub-buffer is skipped), -ENOMEM.
 */
int dc_decode_page_piece(struct dc_decoder *d, const void *page, size_t len, size_t end,
			 int64_t lost, struct dc_page_pos *pos, uint16_t cpu,
			 struct dc_recbuf *out);

/*
 * Decode one event's payload (as a trace_pipe_raw entry or a perf
 * PERF_SAMPLE_RAW carries it: common_type first) of len bytes, taken at
 * ts on cpu. Returns the records appended or -ENOMEM.
 */
int dc_decode_event(struct dc_decoder *d, const void *data, size_t len, uint64_t ts,
		    uint16_t cpu, struct dc_recbuf *out);

const struct dc_decode_stats *dc_decoder_stats(const struct dc_decoder *d);

int dc_recbuf_reserve(struct dc_recbuf *b, size_t more);
void dc_recbuf_free(struct dc_recbuf *b);

#endif
