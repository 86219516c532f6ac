/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The perf source: the same tracepoints through perf_event_open (libperf),
 * one mmap ring per CPU, samples decoded with the same layouts as ring-buffer
 * pages and merged in time order. No tracefs instance: nothing is left
 * behind when the process is killed, and only perf access is needed
 * (format files are read, never written).
 *
 * Built only when libperf is available (GPL-2.0: see LICENSES/README); the
 * header itself has no libperf type.
 */
#ifndef DUET_PERF_SOURCE_H
#define DUET_PERF_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "live.h"

struct dc_perf_opts {
	size_t sz;			/* sizeof(struct dc_perf_opts) */
	const uint32_t *devs;		/* kernel dev_t to keep; none: all */
	size_t ndevs;
	const struct dc_bdi *bdis;
	size_t nbdis;
	unsigned int types;		/* DC_ADDED | ...; 0: all four */
	bool stock_only;
	int exclude_pid;		/* dropped by the kernel filters; 0: none */
	unsigned int pages;		/* ring data pages per CPU (power of 2);
					 * 0: 256 (1 MiB with 4 KiB pages) */
	unsigned int latency_ms;	/* partial rings are read this often; 0: 100 */
	/*
	 * The devices will change (dc_perf_set_devices): perf cannot replace
	 * a tracepoint filter once set (EEXIST), so the kernel filters only
	 * exclude_pid and the devices are kept here, after decoding.
	 */
	bool devices_change;
};

struct dc_perf;

/*
 * -ENOENT: no page-cache events; -EACCES/-EPERM: perf_event_open refused
 * (perf_event_paranoid, no CAP_PERFMON); -EINVAL: bad options.
 */
int dc_perf_open(const struct dc_perf_opts *opts, struct dc_perf **ret);
int dc_perf_start(struct dc_perf *p);
/* Readable when rings may hold data or the latency timer expired. */
int dc_perf_fd(const struct dc_perf *p);
/*
 * Records in time order across CPUs, up to a mark every CPU is known to be
 * complete to (all of them after dc_perf_stop()). PERF_RECORD_LOST becomes
 * a DC_LOST record with the count, on its CPU.
 */
int dc_perf_fetch_cb(struct dc_perf *p, dc_records_fn fn, void *ud);
/* Every sample up to this time has been handed out (CLOCK_MONOTONIC ns). */
uint64_t dc_perf_complete_to(const struct dc_perf *p);
/* Keep only these devices from now on; -EOPNOTSUPP without devices_change. */
int dc_perf_set_devices(struct dc_perf *p, const uint32_t *devs, size_t ndevs);
int dc_perf_stop(struct dc_perf *p);
bool dc_perf_finished(const struct dc_perf *p);
/* events, records, lost_in_pages (= PERF_RECORD_LOST counts), pages (= reads). */
int dc_perf_stats(struct dc_perf *p, const struct dc_source_stats **ret);
void dc_perf_free(struct dc_perf *p);
enum dc_flush_sem dc_perf_flush_sem(const struct dc_perf *p);
enum dc_dirty_sem dc_perf_dirty_sem(const struct dc_perf *p);
const char *dc_perf_describe(const struct dc_perf *p);
bool dc_perf_uses(const struct dc_perf *p, int src);

#endif
