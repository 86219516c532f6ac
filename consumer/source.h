/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One interface for the page-cache event sources, whichever way they read
 * the kernel: the tracefs ring buffer of an instance this process owns
 * (live.h, in the core) or perf_event_open rings (perf-source.h, built
 * only with libperf). Callers (duet watch and record, libduet's sessions,
 * duetd) open a source by backend and see the same records, in time
 * order, with losses as DC_LOST records and the same statistics.
 *
 * The tracefs backend is always there. The perf backend is GPL-2.0
 * (libperf): it registers itself when its object is linked in (the duet
 * program), and a program that does not link it (libduet, duetd) can
 * load it as a plugin (dc_source_load_plugin()). Without it, opening it
 * fails with -EOPNOTSUPP.
 */
#ifndef DUET_SOURCE_H
#define DUET_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "live.h"

enum dc_backend {
	DC_BACKEND_TRACEFS,	/* the tracing ring buffer (default) */
	DC_BACKEND_PERF,	/* perf_event_open, no tracefs instance */
	DC_BACKEND_NR,
};

struct dc_source_opts {
	size_t sz;			/* sizeof(struct dc_source_opts) */
	enum dc_backend backend;
	const uint32_t *devs;		/* kernel dev_t to keep; none: all */
	size_t ndevs;
	const struct dc_bdi *bdis;	/* bdi names and their devices */
	size_t nbdis;
	unsigned int types;		/* DC_ADDED | ...; 0: all four */
	bool types_explicit;		/* types == 0 means none, not all */
	bool stock_only;		/* ignore patched events even if present */
	int exclude_pid;		/* a task whose events the kernel drops; 0: none */
	unsigned int buffer_kb;		/* per-CPU buffer (perf: rounded down to a
					 * power of two pages); 0: the default */
	unsigned int latency_ms;	/* partial buffers are read this often; 0: 100 */
	bool devices_change;		/* dc_source_set_devices() will be called
					 * (perf then filters devices after decoding:
					 * its kernel filters cannot be replaced) */
	/* The tracefs backend only; a perf source refuses them (-EOPNOTSUPP). */
	unsigned int buffer_percent;	/* 0: 50 */
	unsigned int subbuf_kb;		/* 0: 64 */
	unsigned int queue_max;		/* 0: 1 Mi records */
	int (*page_fn)(void *ud, int cpu, const void *page, size_t len);
	void *page_ud;
	const char *const *extra_events;
};

/* What a backend provides; every member is set (set_devices may fail). */
struct dc_source_ops {
	int (*start)(void *impl);
	int (*fd)(const void *impl);
	int (*dispatch)(void *impl, dc_records_fn fn, void *ud);
	uint64_t (*complete_to)(const void *impl);
	int (*set_devices)(void *impl, const uint32_t *devs, size_t ndevs);
	int (*stop)(void *impl);
	bool (*finished)(const void *impl);
	int (*stats)(void *impl, const struct dc_source_stats **ret);
	const char *(*describe)(const void *impl);
	enum dc_flush_sem (*flush_sem)(const void *impl);
	enum dc_dirty_sem (*dirty_sem)(const void *impl);
	bool (*uses)(const void *impl, int src);	/* a DC_SRC_* is enabled */
	void (*free)(void *impl);
	/* Someone waits: the bound in microseconds, 0 for none (may be NULL). */
	int (*set_latency)(void *impl, unsigned int us);
	/* complete_to must pass ts soon (may be NULL: it will by itself). */
	void (*want_mark)(void *impl, uint64_t ts);
};

/* A backend: its name (as in --backend=NAME) and how to open it. */
struct dc_source_backend {
	enum dc_backend id;
	const char *name;
	int (*open)(const struct dc_source_opts *opts, const struct dc_source_ops **ops,
		    void **impl);
};

/* The symbol a perf plugin exports (a const struct dc_source_backend). */
#define DC_SOURCE_PLUGIN_SYMBOL "dc_source_perf_backend"

struct dc_source;

/* Backends by name: 0 and *ret set, or -EINVAL for an unknown name. */
int dc_backend_parse(const char *name, enum dc_backend *ret);
const char *dc_backend_name(enum dc_backend b);

/* Make a backend available (the perf object's constructor calls it). */
void dc_source_register(const struct dc_source_backend *b);

/*
 * Load the perf backend from a plugin (a shared object exporting
 * DC_SOURCE_PLUGIN_SYMBOL): PATH, or NULL for the DUET_PERF_PLUGIN
 * variable, else the installed one. 0 (also when already there),
 * -EOPNOTSUPP when there is none, -EINVAL for a file that is not one.
 */
int dc_source_load_plugin(const char *path);

/* Whether a backend can be opened here (registered or loadable). */
bool dc_source_available(enum dc_backend b);

/*
 * Open a source: 0 and *ret, -EOPNOTSUPP (backend not built, or an option
 * it does not have), -EINVAL, -EACCES, -ENOENT (no tracefs or events),
 * -ENOMEM. Nothing is read before dc_source_start().
 */
int dc_source_open(const struct dc_source_opts *opts, struct dc_source **ret);
int dc_source_start(struct dc_source *s);
/* Readable when records may be there: then call dc_source_dispatch(). */
int dc_source_fd(const struct dc_source *s);
/* Hand the records read so far to fn, in time order; the count, or < 0. */
int dc_source_dispatch(struct dc_source *s, dc_records_fn fn, void *ud);
/* Every event up to this time (CLOCK_MONOTONIC ns) has been dispatched. */
uint64_t dc_source_complete_to(const struct dc_source *s);
/* Keep only these devices from now on. */
int dc_source_set_devices(struct dc_source *s, const uint32_t *devs, size_t ndevs);
/*
 * Someone waits for items: deliver records within about us microseconds
 * of their event; 0: nobody waits, batch. -EOPNOTSUPP where the backend
 * batches always (perf).
 */
int dc_source_set_latency(struct dc_source *s, unsigned int us);
/* The consumer waits for dc_source_complete_to() to pass ts: soon, please. */
void dc_source_want_mark(struct dc_source *s, uint64_t ts);
/* Stop reading; dispatch then gives the rest until finished() is true. */
int dc_source_stop(struct dc_source *s);
bool dc_source_finished(const struct dc_source *s);
int dc_source_stats(struct dc_source *s, const struct dc_source_stats **ret);
const char *dc_source_describe(const struct dc_source *s);
enum dc_flush_sem dc_source_flush_sem(const struct dc_source *s);
enum dc_dirty_sem dc_source_dirty_sem(const struct dc_source *s);
/* The kernel event src (DC_SRC_*) is enabled: its records may come. */
bool dc_source_uses(const struct dc_source *s, int src);
enum dc_backend dc_source_backend(const struct dc_source *s);
/* The tracefs source beneath (instance name, sub-buffer size), else NULL. */
struct dc_live *dc_source_live(struct dc_source *s);
void dc_source_free(struct dc_source *s);

#endif
