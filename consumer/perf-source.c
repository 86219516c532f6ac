// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The perf source (see perf-source.h). This file's own code is
 * LGPL-2.1-or-later; it is only built into the duet program together with
 * libperf (GPL-2.0), which makes that program GPL-2.0 as a whole.
 *
 * One evsel per tracepoint; libperf maps one ring per CPU for the first and
 * redirects the others' output into it, so each CPU's samples arrive in
 * one ring in the order they were written. The consumer thread reads every
 * ring, decodes the raw tracepoint data (PERF_SAMPLE_RAW is the same
 * payload a trace_pipe_raw entry carries: common_type first) with the
 * page decoder's layouts, and hands out records up to a mark taken before
 * the rings were read, in time order across CPUs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <perf/core.h>
#include <perf/cpumap.h>
#include <perf/event.h>
#include <perf/evlist.h>
#include <perf/evsel.h>
#include <perf/mmap.h>
#include <perf/threadmap.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "perf-source.h"
#include "source.h"

/*
 * Exported by libperf.a but declared only in its internal headers, which
 * need the kernel's tools/include: the tracepoint filter ioctl on every fd.
 */
int perf_evsel__apply_filter(struct perf_evsel *evsel, const char *filter);

/* Samples written before the mark but not yet visible (same as reader.c). */
#define MARK_MARGIN_NS 2000000ull

/* Records the poller keeps for the consumer before it leaves the rings to
 * fill (the kernel then drops samples and says how many): 1 Mi, 40 MiB. */
#define QUEUE_MAX (1u << 20)

struct dc_perf {
	struct dc_perf_opts opts;
	struct dc_sources src;
	uint32_t *devs;
	struct dc_bdi *bdis;
	struct perf_evlist *evlist;
	struct perf_cpu_map *cpus;
	struct perf_thread_map *threads;
	struct dc_decoder *dec;
	int efd;		/* consumer wakeup: data or latency timeout */
	pthread_t poller;	/* waits in perf_evlist__poll() (ring fds are not public) */
	bool poller_started;
	bool quit;		/* set by dc_perf_free(); atomic accesses */
	bool started, stopped, drained;
	/*
	 * mu guards the rings' reading, pend, seq and the statistics: the
	 * poller drains the rings into pend as they fill, so a consumer that
	 * stalls (a session's lock held for a walk) does not make the kernel
	 * drop samples until pend holds QUEUE_MAX records.
	 */
	pthread_mutex_t mu;
	struct dc_recbuf pend;		/* decoded, not yet handed out */
	struct dc_recbuf out;		/* sorted run being handed out */
	uint64_t seq;
	uint64_t complete_to;	/* the last fetch's mark (dc_perf_complete_to) */
	char describe[1024];
	struct dc_source_stats stats;
	struct dc_cpu_stats cpu_st[1024];
};

static uint64_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* libperf prints its debug messages to stderr otherwise: library code never prints. */
static int quiet(enum libperf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static int add_evsel(struct dc_perf *p, const struct dc_layout *l, uint32_t wakeup)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.config = (uint64_t)l->id,
		.sample_period = 1,
		.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU |
			       PERF_SAMPLE_RAW,
		.disabled = 1,
		.sample_id_all = 1,	/* LOST records carry time and cpu */
		.watermark = 1,
		.wakeup_watermark = wakeup,
		.use_clockid = 1,
		.clockid = CLOCK_MONOTONIC,	/* the tracefs source's "mono" */
		/*
		 * The kernel writes a LOST record only when the ring has room
		 * again: losses at the very end would never be reported.
		 * read() with PERF_FORMAT_LOST gives the exact count.
		 */
		.read_format = PERF_FORMAT_LOST,
	};
	struct perf_evsel *e = perf_evsel__new(&attr);

	if (!e)
		return -ENOMEM;
	perf_evlist__add(p->evlist, e);
	return 0;
}

/* The kernel-side filter of every event: the devices kept, our own pid. */
static int apply_filters(struct dc_perf *p)
{
	struct perf_evsel *e;
	size_t i = 0;
	int r;

	perf_evlist__for_each_evsel(p->evlist, e) {
		char filter[4200];

		while (!p->src.use[p->src.layouts[i].src])
			i++;
		/* Devices that will change are kept after decoding (keep_dev). */
		r = dc_filter_for(p->src.layouts[i].src, p->devs,
				  p->opts.devices_change ? 0 : p->opts.ndevs, p->bdis,
				  p->opts.nbdis, p->opts.exclude_pid, filter, sizeof(filter));
		/* "0" is tracefs's "no filter": nothing to set. */
		if (!r && strcmp(filter, "0"))
			r = perf_evsel__apply_filter(e, filter);
		if (r)
			return -EINVAL;
		i++;
	}
	return 0;
}

int dc_perf_open(const struct dc_perf_opts *opts, struct dc_perf **ret)
{
	struct dc_decoder_opts dopts = { .sz = sizeof(dopts), .long_size = sizeof(long) };
	struct dc_perf *p;
	uint32_t wakeup;
	size_t i;
	int r;

	if (!opts || opts->sz < sizeof(*opts) || !ret || (opts->ndevs && !opts->devs) ||
	    (opts->nbdis && !opts->bdis) ||
	    (opts->pages && (opts->pages & (opts->pages - 1))))
		return -EINVAL;
	libperf_init(quiet);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->efd = -1;
	pthread_mutex_init(&p->mu, NULL);
	p->opts = *opts;
	if (!p->opts.types)
		p->opts.types = DC_EVENTS_ALL;
	if (!p->opts.pages)
		p->opts.pages = 256;
	if (!p->opts.latency_ms)
		p->opts.latency_ms = 100;
	p->devs = calloc(opts->ndevs + 1, sizeof(*p->devs));
	p->bdis = calloc(opts->nbdis + 1, sizeof(*p->bdis));
	if (!p->devs || !p->bdis) {
		r = -ENOMEM;
		goto fail;
	}
	if (opts->ndevs)
		memcpy(p->devs, opts->devs, opts->ndevs * sizeof(*p->devs));
	if (opts->nbdis)
		memcpy(p->bdis, opts->bdis, opts->nbdis * sizeof(*p->bdis));

	r = dc_tracefs_ensure(NULL);
	if (!r)
		r = dc_sources_choose(p->opts.types, p->opts.stock_only, &p->src);
	if (r)
		goto fail;
	dc_sources_describe(&p->src, p->describe, sizeof(p->describe));
	dopts.layouts = p->src.layouts;
	dopts.nlayouts = p->src.nlayouts;
	dopts.bdis = p->bdis;
	dopts.nbdis = opts->nbdis;
	dopts.types = p->opts.types;
	r = dc_decoder_new(&dopts, &p->dec);
	if (r)
		goto fail;

	p->cpus = perf_cpu_map__new_online_cpus();
	p->threads = perf_thread_map__new_dummy();	/* every task: pid -1 */
	p->evlist = perf_evlist__new();
	if (!p->cpus || !p->threads || !p->evlist) {
		r = -ENOMEM;
		goto fail;
	}
	if ((size_t)perf_cpu_map__max(p->cpus).cpu >= sizeof(p->cpu_st) / sizeof(p->cpu_st[0])) {
		r = -E2BIG;
		goto fail;
	}
	/* Wake the reader when a quarter of a ring is full. */
	wakeup = (uint32_t)((size_t)p->opts.pages * (size_t)getpagesize() / 4);
	for (i = 0; i < p->src.nlayouts; i++) {
		if (!p->src.use[p->src.layouts[i].src])
			continue;
		r = add_evsel(p, &p->src.layouts[i], wakeup);
		if (r)
			goto fail;
	}
	perf_evlist__set_maps(p->evlist, p->cpus, p->threads);
	r = perf_evlist__open(p->evlist);
	if (r) {
		r = r == -EACCES || r == -EPERM ? -EACCES : (r < 0 ? r : -EIO);
		goto fail;
	}
	r = apply_filters(p);
	if (r)
		goto fail;
	r = perf_evlist__mmap(p->evlist, (int)p->opts.pages);
	if (r) {
		r = r < 0 ? r : -ENOMEM;
		goto fail;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		r = -errno;
		goto fail;
	}
	p->stats.ncpus = (unsigned int)perf_cpu_map__max(p->cpus).cpu + 1;
	p->stats.cpu = p->cpu_st;
	*ret = p;
	return 0;
fail:
	dc_perf_free(p);
	return r;
}

/*
 * Wakes the consumer when a ring passed its watermark, and at least every
 * latency_ms so partial rings are read.
 */
static int read_rings(struct dc_perf *p);

static void *poller_main(void *arg)
{
	struct dc_perf *p = arg;

	while (!__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) {
		uint64_t one = 1;

		perf_evlist__poll(p->evlist, (int)p->opts.latency_ms);
		pthread_mutex_lock(&p->mu);
		/* Past QUEUE_MAX the kernel drops samples, and counts them. */
		if (p->pend.n < QUEUE_MAX)
			read_rings(p);	/* an error: the consumer's read says it */
		pthread_mutex_unlock(&p->mu);
		if (write(p->efd, &one, sizeof(one)) < 0) {
		}
	}
	return NULL;
}

int dc_perf_start(struct dc_perf *p)
{
	int r;

	if (p->started)
		return -EALREADY;
	perf_evlist__enable(p->evlist);
	r = -pthread_create(&p->poller, NULL, poller_main, p);
	if (r) {
		perf_evlist__disable(p->evlist);
		return r;
	}
	p->poller_started = true;
	p->started = true;
	return 0;
}

int dc_perf_fd(const struct dc_perf *p)
{
	return p->efd;
}

/* The sample_id_all trailer of a non-sample record: TID, TIME, CPU. */
static void trailer(const union perf_event *ev, size_t body, uint64_t *ts, uint32_t *cpu)
{
	const uint8_t *t = (const uint8_t *)ev + body;

	if (ev->header.size < body + 24)
		return;
	memcpy(ts, t + 8, 8);
	memcpy(cpu, t + 16, 4);
}

static int read_ring(struct dc_perf *p, struct perf_mmap *map)
{
	union perf_event *ev;
	int n = 0;

	if (perf_mmap__read_init(map) < 0)
		return 0;	/* empty */
	while ((ev = perf_mmap__read_event(map))) {
		if (ev->header.type == PERF_RECORD_SAMPLE) {
			/* TID (8), TIME (8), CPU (4 + 4), RAW size (4), RAW data. */
			const uint8_t *s = (const uint8_t *)ev + sizeof(ev->header);
			size_t len = ev->header.size - sizeof(ev->header);
			uint64_t ts;
			uint32_t cpu, rsz;

			if (len >= 28) {
				memcpy(&ts, s + 8, 8);
				memcpy(&cpu, s + 16, 4);
				memcpy(&rsz, s + 24, 4);
				if (rsz <= len - 28 && cpu < p->stats.ncpus) {
					size_t before = p->pend.n;

					if (dc_decode_event(p->dec, s + 28, rsz, ts, (uint16_t)cpu,
							    &p->pend) < 0) {
						perf_mmap__consume(map);
						return -ENOMEM;
					}
					p->cpu_st[cpu].events++;
					p->cpu_st[cpu].records += p->pend.n - before;
				} else {
					p->stats.total.bad_pages++;
				}
			}
		} else if (ev->header.type == PERF_RECORD_LOST ||
			   ev->header.type == PERF_RECORD_LOST_SAMPLES) {
			uint64_t ts = now_mono(), lost;
			uint32_t cpu = 0;	/* the trailer says which */
			struct dc_record *rec;

			if (ev->header.type == PERF_RECORD_LOST) {
				lost = ev->lost.lost;
				trailer(ev, sizeof(ev->lost), &ts, &cpu);
			} else {
				lost = ev->lost_samples.lost;
				trailer(ev, sizeof(ev->lost_samples), &ts, &cpu);
			}
			if (cpu >= p->stats.ncpus)
				cpu = 0;
			if (dc_recbuf_reserve(&p->pend, 1))
				return -ENOMEM;	/* read again next time */
			rec = &p->pend.rec[p->pend.n++];
			memset(rec, 0, sizeof(*rec));
			rec->ts = ts;
			rec->cpu = (uint16_t)cpu;
			rec->pid = -1;
			rec->type = DC_LOST;
			rec->count = lost;
			p->cpu_st[cpu].lost_in_pages += lost;
		}
		perf_mmap__consume(map);
		n++;
	}
	/*
	 * No perf_mmap__read_done(): it moves the read position to the
	 * current head, past any sample written since perf_mmap__read_event()
	 * last returned NULL, and those samples were silently skipped (found
	 * by comparing the events' counts with what was read and lost).
	 * perf_mmap__read_event() already keeps the position in a
	 * non-overwrite ring.
	 */
	return n;
}

static int cmp_rec(const void *a, const void *b)
{
	const struct dc_record *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	/* Same time: keep each CPU's order (reserved carries the arrival order). */
	if (x->cpu != y->cpu)
		return x->cpu < y->cpu ? -1 : 1;
	return x->reserved < y->reserved ? -1 : x->reserved > y->reserved;
}

/*
 * After the last read: samples lost that no LOST record reported yet (the
 * kernel was waiting for room in the ring) become DC_LOST records.
 */
static int final_losses(struct dc_perf *p)
{
	int ncpu = perf_cpu_map__nr(p->cpus);

	for (int idx = 0; idx < ncpu; idx++) {
		int cpu = perf_cpu_map__cpu(p->cpus, idx).cpu;
		struct perf_evsel *e;
		uint64_t lost = 0;

		perf_evlist__for_each_evsel(p->evlist, e) {
			struct perf_counts_values cv = { 0 };

			if (!perf_evsel__read(e, idx, 0, &cv))
				lost += cv.lost;
		}
		if (cpu < 0 || (unsigned int)cpu >= p->stats.ncpus ||
		    lost <= p->cpu_st[cpu].lost_in_pages)
			continue;
		if (dc_recbuf_reserve(&p->pend, 1))
			return -ENOMEM;
		struct dc_record *rec = &p->pend.rec[p->pend.n++];

		memset(rec, 0, sizeof(*rec));
		rec->ts = now_mono();
		rec->cpu = (uint16_t)cpu;
		rec->pid = -1;
		rec->type = DC_LOST;
		rec->count = lost - p->cpu_st[cpu].lost_in_pages;
		rec->reserved = (uint32_t)p->seq++;
		p->cpu_st[cpu].lost_in_pages = lost;
	}
	return 0;
}

/* With devices_change, the device filter the kernel could not keep. */
static bool keep_dev(const struct dc_perf *p, const struct dc_record *rec)
{
	if (!p->opts.devices_change || !p->opts.ndevs || rec->type == DC_LOST)
		return true;
	for (size_t i = 0; i < p->opts.ndevs; i++)
		if (p->devs[i] == rec->dev)
			return true;
	return false;
}

/* Every ring into pend, in arrival order (reserved: the sequence). mu held. */
static int read_rings(struct dc_perf *p)
{
	struct perf_mmap *map;

	perf_evlist__for_each_mmap(p->evlist, map, false) {
		size_t before = p->pend.n;
		int r = read_ring(p, map);

		for (size_t k = before; k < p->pend.n; k++)
			p->pend.rec[k].reserved = (uint32_t)p->seq++;
		if (r < 0)
			return r;
		p->stats.total.pages++;
	}
	return 0;
}

int dc_perf_fetch_cb(struct dc_perf *p, dc_records_fn fn, void *ud)
{
	uint64_t mark, junk;
	size_t k, keep;
	int r = 0;

	if (!p->started)
		return 0;
	/* Every ring is read below, whatever woke us. */
	if (read(p->efd, &junk, sizeof(junk)) < 0) {
	}
	pthread_mutex_lock(&p->mu);
	mark = p->stopped ? UINT64_MAX : now_mono() - MARK_MARGIN_NS;
	/* Records are handed out up to the mark: complete to there. */
	__atomic_store_n(&p->complete_to, mark, __ATOMIC_RELAXED);
	r = read_rings(p);
	if (!r && p->stopped && !p->drained) {
		r = final_losses(p);
		if (!r)
			p->drained = true;
	}
	if (r) {
		pthread_mutex_unlock(&p->mu);
		return r;
	}
	/* Hand out what is older than the mark, in time order. */
	/* Room for all of pend first: on failure nothing has moved. */
	p->out.n = 0;
	if (dc_recbuf_reserve(&p->out, p->pend.n)) {
		pthread_mutex_unlock(&p->mu);
		return -ENOMEM;
	}
	keep = 0;
	for (k = 0; k < p->pend.n; k++) {
		if (p->pend.rec[k].ts <= mark) {
			if (!keep_dev(p, &p->pend.rec[k]))
				continue;
			p->out.rec[p->out.n++] = p->pend.rec[k];
		} else {
			p->pend.rec[keep++] = p->pend.rec[k];
		}
	}
	p->pend.n = keep;
	pthread_mutex_unlock(&p->mu);
	qsort(p->out.rec, p->out.n, sizeof(*p->out.rec), cmp_rec);
	for (k = 0; k < p->out.n; k++)
		p->out.rec[k].reserved = 0;
	if (p->out.n)
		r = fn(ud, p->out.rec, p->out.n);
	if (r < 0)
		return r;
	return p->out.n > INT32_MAX ? INT32_MAX : (int)p->out.n;
}

int dc_perf_stop(struct dc_perf *p)
{
	if (p->stopped)
		return 0;
	p->stopped = true;
	if (p->evlist && p->started)
		perf_evlist__disable(p->evlist);
	return 0;
}

bool dc_perf_finished(const struct dc_perf *p)
{
	return p->stopped && p->drained && !p->pend.n;
}

int dc_perf_stats(struct dc_perf *p, const struct dc_source_stats **ret)
{
	struct dc_cpu_stats *t = &p->stats.total;
	uint64_t reads, bad;

	pthread_mutex_lock(&p->mu);
	reads = t->pages;
	bad = t->bad_pages;

	memset(t, 0, sizeof(*t));
	t->pages = reads;
	t->bad_pages = bad;
	for (unsigned int i = 0; i < p->stats.ncpus; i++) {
		t->events += p->cpu_st[i].events;
		t->records += p->cpu_st[i].records;
		t->lost_in_pages += p->cpu_st[i].lost_in_pages;
	}
	pthread_mutex_unlock(&p->mu);
	*ret = &p->stats;
	return 0;
}

void dc_perf_free(struct dc_perf *p)
{
	if (!p)
		return;
	if (p->poller_started) {
		__atomic_store_n(&p->quit, true, __ATOMIC_RELEASE);
		pthread_join(p->poller, NULL);
	}
	if (p->evlist) {
		dc_perf_stop(p);
		perf_evlist__munmap(p->evlist);
		perf_evlist__close(p->evlist);
		perf_evlist__delete(p->evlist);	/* deletes the evsels */
	}
	perf_cpu_map__put(p->cpus);
	perf_thread_map__put(p->threads);
	dc_decoder_free(p->dec);
	dc_recbuf_free(&p->pend);
	dc_recbuf_free(&p->out);
	if (p->efd >= 0)
		close(p->efd);
	free(p->devs);
	free(p->bdis);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

enum dc_flush_sem dc_perf_flush_sem(const struct dc_perf *p)
{
	return p->src.flush_sem;
}

enum dc_dirty_sem dc_perf_dirty_sem(const struct dc_perf *p)
{
	return p->src.dirty_sem;
}

bool dc_perf_uses(const struct dc_perf *p, int src)
{
	return src >= 0 && src < DC_SRC_NR && p->src.use[src];
}

const char *dc_perf_describe(const struct dc_perf *p)
{
	return p->describe;
}

uint64_t dc_perf_complete_to(const struct dc_perf *p)
{
	return __atomic_load_n(&p->complete_to, __ATOMIC_RELAXED);
}

int dc_perf_set_devices(struct dc_perf *p, const uint32_t *devs, size_t ndevs)
{
	uint32_t *nd;

	if (!p->opts.devices_change)
		return -EOPNOTSUPP;
	nd = calloc(ndevs + 1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	if (ndevs)
		memcpy(nd, devs, ndevs * sizeof(*nd));
	pthread_mutex_lock(&p->mu);	/* keep_dev() reads them in a fetch */
	free(p->devs);
	p->devs = nd;
	p->opts.devs = nd;
	p->opts.ndevs = ndevs;
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* --- the perf backend of the event-source interface (source.h) --------- */

static int s_start(void *p)
{
	return dc_perf_start(p);
}

static int s_fd(const void *p)
{
	return dc_perf_fd(p);
}

static int s_dispatch(void *p, dc_records_fn fn, void *ud)
{
	return dc_perf_fetch_cb(p, fn, ud);
}

static uint64_t s_complete_to(const void *p)
{
	return dc_perf_complete_to(p);
}

static int s_set_devices(void *p, const uint32_t *devs, size_t ndevs)
{
	return dc_perf_set_devices(p, devs, ndevs);
}

static int s_stop(void *p)
{
	return dc_perf_stop(p);
}

static bool s_finished(const void *p)
{
	return dc_perf_finished(p);
}

static int s_stats(void *p, const struct dc_source_stats **ret)
{
	return dc_perf_stats(p, ret);
}

static const char *s_describe(const void *p)
{
	return dc_perf_describe(p);
}

static enum dc_flush_sem s_flush_sem(const void *p)
{
	return dc_perf_flush_sem(p);
}

static enum dc_dirty_sem s_dirty_sem(const void *p)
{
	return dc_perf_dirty_sem(p);
}

static bool s_uses(const void *p, int src)
{
	return dc_perf_uses(p, src);
}

static void s_free(void *p)
{
	dc_perf_free(p);
}

static const struct dc_source_ops perf_ops = {
	.start = s_start,
	.fd = s_fd,
	.dispatch = s_dispatch,
	.complete_to = s_complete_to,
	.set_devices = s_set_devices,
	.stop = s_stop,
	.finished = s_finished,
	.stats = s_stats,
	.describe = s_describe,
	.flush_sem = s_flush_sem,
	.dirty_sem = s_dirty_sem,
	.uses = s_uses,
	.free = s_free,
};

static int perf_open(const struct dc_source_opts *o, const struct dc_source_ops **ops,
		     void **impl)
{
	struct dc_perf_opts po = {
		.sz = sizeof(po),
		.devs = o->devs,
		.ndevs = o->ndevs,
		.bdis = o->bdis,
		.nbdis = o->nbdis,
		.types = o->types,
		.stock_only = o->stock_only,
		.exclude_pid = o->exclude_pid,
		.latency_ms = o->latency_ms,
		.devices_change = o->devices_change,
	};
	struct dc_perf *p;
	int r;

	/* Raw ring-buffer pages, sub-buffers and extra events are tracefs's. */
	if (o->buffer_percent || o->subbuf_kb || o->queue_max || o->page_fn ||
	    o->extra_events || (o->types_explicit && !o->types))
		return -EOPNOTSUPP;
	if (o->buffer_kb) {
		size_t pages = (size_t)o->buffer_kb * 1024 / (size_t)getpagesize();

		po.pages = 1;
		while (po.pages * 2 <= pages && po.pages < (1u << 20))
			po.pages *= 2;
	}
	r = dc_perf_open(&po, &p);
	if (r)
		return r;
	*ops = &perf_ops;
	*impl = p;
	return 0;
}

/* Exported by the plugin (dc_source_load_plugin() looks it up by name). */
__attribute__((visibility("default")))
const struct dc_source_backend dc_source_perf_backend = {
	.id = DC_BACKEND_PERF,
	.name = "perf",
	.open = perf_open,
};

#ifndef DC_PERF_PLUGIN
/* Linked into a program: available without a plugin. */
__attribute__((constructor)) static void perf_register(void)
{
	dc_source_register(&dc_source_perf_backend);
}
#endif
