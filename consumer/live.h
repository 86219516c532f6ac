/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The live source: one tracefs instance owned by this process, one reader
 * thread per CPU, records merged in timestamp order.
 */
#ifndef DUET_LIVE_H
#define DUET_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "page.h"

/* Which FLUSHED semantics the running kernel allows. */
enum dc_flush_sem {
	DC_FLUSH_NONE,		/* no flush event available */
	DC_FLUSH_INODE,		/* stock kernel: inode-level (sb_clear_inode_writeback) */
	DC_FLUSH_EXACT,		/* patched kernel: per folio */
};

enum dc_dirty_sem {
	DC_DIRTY_NONE,
	DC_DIRTY_BDI,		/* stock: writeback_dirty_folio, bdi mapped, 1 page */
	DC_DIRTY_EXACT,		/* patched: per folio with device and order */
};

/* The events that give the page-cache record types, as chosen for a kernel. */
struct dc_sources {
	struct dc_layout layouts[DC_SRC_NR];
	size_t nlayouts;
	bool use[DC_SRC_NR];		/* enabled (a layout may be loaded unused) */
	enum dc_dirty_sem dirty_sem;
	enum dc_flush_sem flush_sem;
};

/*
 * Read the format files (tracefs, read only) of the events that give
 * types: the patched per-folio events when present unless stock_only,
 * the stock ones otherwise. -ENOENT when none exists.
 */
int dc_sources_choose(unsigned int types, bool stock_only, struct dc_sources *s);
/* One sentence per source in use, for people. */
void dc_sources_describe(const struct dc_sources *s, char *buf, size_t len);

/*
 * The kernel filter of source src: the devices (their bdi names for
 * writeback_dirty_folio), and not exclude_pid. "0" (no filter) when there
 * is nothing to filter.
 */
int dc_filter_for(int src, const uint32_t *devs, size_t ndevs, const struct dc_bdi *bdis,
		  size_t nbdis, int exclude_pid, char *buf, size_t len);
/* "FIELD == DEV || ..." for the devices, or -E2BIG (filters.c). */
int dc_dev_filter(char *buf, size_t len, const char *field, const uint32_t *devs, size_t n);

/* How the readers take the ring buffer. */
enum dc_reader {
	DC_READER_DEFAULT,	/* read() for now (reader.c says why) */
	DC_READER_READ,		/* read() of trace_pipe_raw, a copy per sub-buffer */
	DC_READER_MMAP,		/* the buffer mapped (kernel 6.10+), read() where
				 * it cannot be */
};

struct dc_live_opts {
	size_t sz;			/* sizeof(struct dc_live_opts) */
	const uint32_t *devs;		/* kernel dev_t to keep; none: all */
	size_t ndevs;
	const struct dc_bdi *bdis;	/* bdi names and their devices: those of
					 * the watched devices, or more (a later
					 * dc_live_set_devices() can use them) */
	size_t nbdis;
	unsigned int types;		/* DC_ADDED | ...; 0: all four */
	unsigned int buffer_kb;		/* per-CPU buffer; 0: kernel default */
	unsigned int buffer_percent;	/* reader wakeup; 0: default 50 */
	unsigned int latency_ms;	/* partial pages are read at least this often; 0: 100 */
	bool stock_only;		/* ignore patched events even if present */
	int exclude_pid;		/* a task whose events the kernel drops (e.g.
					 * our own output writes); 0: none */
	unsigned int subbuf_kb;		/* ring-buffer sub-buffer size where the
					 * kernel allows it; 0: 64 */
	unsigned int queue_max;		/* records a CPU may hold for the consumer
					 * before its reader waits (and the kernel
					 * overwrites, counted); 0: 1 Mi (40 MiB) */
	/*
	 * Raw pages: called on the CPU's reader thread with every sub-buffer
	 * read from trace_pipe_raw, before it is decoded (duet record stores
	 * them as they are). A negative return is counted in
	 * dc_cpu_stats.page_fn_errors.
	 */
	int (*page_fn)(void *ud, int cpu, const void *page, size_t len);
	void *page_ud;
	/*
	 * More events ("system/name", NULL-terminated) enabled in the
	 * instance with only the exclude_pid filter. The decoder has no
	 * layout for them: they reach page_fn, never records.
	 */
	const char *const *extra_events;
	bool types_explicit;		/* types == 0 means none, not all */
	/*
	 * The reader; the DUET_READER variable ("read" or "mmap") has the
	 * last word. Without page_fn only: raw pages are read().
	 */
	enum dc_reader reader;
};

/*
 * The statistics of every event source (source.h), per CPU and in total.
 * The perf source fills what it has (reads as pages, events, records,
 * losses); the ring-buffer fields stay 0 there.
 */
struct dc_cpu_stats {
	uint64_t pages;
	uint64_t bytes;
	uint64_t events;
	uint64_t records;
	uint64_t lost_in_pages;		/* from the pages' missed-events counts */
	uint64_t lost_unknown_pages;	/* pages flagged without a count */
	uint64_t bad_pages;		/* pages refused as inconsistent */
	uint64_t overrun;		/* per_cpu/cpuN/stats */
	uint64_t dropped;		/* per_cpu/cpuN/stats "dropped events" */
	uint64_t backpressure_waits;	/* reader waited for the consumer */
	uint64_t page_fn_errors;	/* pages page_fn could not take */
	uint64_t wakeups;		/* times the reader woke (poll returned) */
	uint64_t late;			/* events older than a watermark already
					 * published: handed on with a LOST */
	uint64_t given_up;		/* pages not handed on (refused, no memory):
					 * a LOST of unknown count each */
};

struct dc_source_stats {
	unsigned int ncpus;
	struct dc_cpu_stats total;
	struct dc_cpu_stats *cpu;	/* ncpus entries, owned by the source */
};

struct dc_live;

/*
 * Mounts tracefs if needed, removes instances of dead owners, creates this
 * process's instance and enables the events. -ENOENT: no tracefs or no
 * page-cache events; -EACCES/-EPERM: not allowed.
 */
int dc_live_open(const struct dc_live_opts *opts, struct dc_live **ret);
/* Start tracing and the reader threads. */
int dc_live_start(struct dc_live *l);
/* Readable (eventfd) when records may be fetched. */
int dc_live_fd(const struct dc_live *l);
/*
 * Append records that are complete on every CPU, in timestamp order. After
 * dc_live_stop() everything left is returned. Returns the number appended.
 */
int dc_live_fetch(struct dc_live *l, struct dc_recbuf *out);
/*
 * The same without a copy: fn sees runs of records in place, in order;
 * a negative return stops the fetch (the run counts as consumed).
 */
typedef int (*dc_records_fn)(void *ud, const struct dc_record *rec, size_t n);
int dc_live_fetch_cb(struct dc_live *l, dc_records_fn fn, void *ud);
/*
 * After a fetch that ran to its end: every record with a timestamp up to
 * this (CLOCK_MONOTONIC ns, the trace clock) has been handed out. 0 before
 * the first; UINT64_MAX once stopped and drained. For placing outside
 * observations (a scan of the page cache) in the stream.
 */
uint64_t dc_live_complete_to(const struct dc_live *l);
/*
 * Change the devices kept by the kernel filters (DIRTY: the bdis in the
 * opts.bdis table that serve them). Safe while running.
 */
int dc_live_set_devices(struct dc_live *l, const uint32_t *devs, size_t ndevs);
/*
 * Someone waits for items: records reach dc_live_fetch within about us
 * microseconds of their event (readers wake at the first event and take
 * marks when the consumer needs them). 0: nobody waits; readers batch
 * (buffer_percent, and every latency_ms). Safe while running.
 */
int dc_live_set_latency(struct dc_live *l, unsigned int us);
/*
 * The consumer needs dc_live_complete_to() to pass ts (a scan placed in
 * the stream there): readers whose mark is behind take a new one as soon
 * as it can pass ts, even if their CPU has nothing to read.
 */
void dc_live_want_mark(struct dc_live *l, uint64_t ts);
/* Stop tracing and drain the readers; records stay fetchable. */
int dc_live_stop(struct dc_live *l);
/* True once stopped and every record was fetched. */
bool dc_live_finished(const struct dc_live *l);
/* Refresh the kernel's per-CPU counters and return all counters. */
int dc_live_stats(struct dc_live *l, const struct dc_source_stats **ret);
/* Stops if needed and removes the instance. NULL is a no-op. */
void dc_live_free(struct dc_live *l);

enum dc_flush_sem dc_live_flush_sem(const struct dc_live *l);
enum dc_dirty_sem dc_live_dirty_sem(const struct dc_live *l);
const char *dc_live_instance_name(const struct dc_live *l);
/* Bytes per sub-buffer ("page") read from trace_pipe_raw. */
int dc_live_subbuf_size(const struct dc_live *l);
/* True when the source src is decoded (its event is enabled). */
bool dc_live_uses(const struct dc_live *l, int src);
/*
 * One sentence per source in use, for people: "DIRTY: ...", and which
 * reader is in force ("ring buffer read: mmap (...)" or "read() (why)").
 */
const char *dc_live_describe(const struct dc_live *l);
/* The reader in force: "mmap" or "read". */
const char *dc_live_reader(const struct dc_live *l);
/*
 * The reader a source opened now would use (*reader "mmap" or "read",
 * buf the sentence that says why), found by opening one as
 * dc_live_open() does, tracing off, and removing it. 0 or its error.
 */
int dc_live_probe_reader(char *buf, size_t len, const char **reader);

/* tracefs helpers (tracefs.c) */
#define DC_INSTANCE_PREFIX "duet-"
int dc_tracefs_ensure(const char **dir);
int dc_instance_name_self(char *buf, size_t len);
/* Remove duet instances whose owner process is gone; returns how many. */
int dc_instances_reap(void);
/*
 * duet instances of other live processes (another in-process session,
 * duetd): how many, 0 when tracefs cannot be read.
 */
int dc_instances_others(void);
/* Read an event's format file text from tracefs. */
int dc_event_format(const char *system, const char *name, char **text, size_t *len);
int dc_parse_cpu_stats(const char *text, uint64_t *overrun, uint64_t *dropped);

#endif
