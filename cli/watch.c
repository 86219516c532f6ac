// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet watch: live page-cache events for files under the given paths.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "duet-cli.h"
#include "index.h"
#include "livepaths.h"
#include "output.h"
#include "source.h"

struct watch {
	struct out_ctx out;
	struct dc_source *src;	/* the tracefs instance, or perf (--backend) */
	bool coalesce, quiet;
	/* The options. */
	struct dc_source_opts sopts;
	unsigned int mask;
	double duration;
	bool stats, use_perf;
	unsigned int perf_pages;
	struct cli_paths p;	/* the PATHs resolved, what they cover, the index */
	struct cmdloop loop;	/* its fds are -1 until opened */
	int dfd;		/* --duration's timer, -1: none */
	struct out_event pend[4];	/* coalescing runs, one per event type */
	bool have_pend[4];
	uint64_t printed;
	uint64_t matched;
	uint64_t records;
	uint64_t lost_reported;
	uint64_t *lost_cpu;	/* reported per CPU (pages + stats) */
	unsigned int ncpus;
};

/* The source in use: the tracefs instance, or perf_event_open (--backend=perf). */
static int src_fetch_cb(struct watch *w, dc_records_fn fn, void *ud)
{
	return dc_source_dispatch(w->src, fn, ud);
}

static int src_stats(struct watch *w, const struct dc_source_stats **st)
{
	return dc_source_stats(w->src, st);
}

static const char *src_describe(struct watch *w)
{
	return dc_source_describe(w->src);
}

static enum dc_dirty_sem src_dirty_sem(struct watch *w)
{
	return dc_source_dirty_sem(w->src);
}

static enum dc_flush_sem src_flush_sem(struct watch *w)
{
	return dc_source_flush_sem(w->src);
}

static const char *src_name(struct watch *w)
{
	struct dc_live *l = dc_source_live(w->src);

	return l ? dc_live_instance_name(l) : "perf";
}

/* How the events are read: "mmap" or "read" (tracefs), "perf". */
static const char *src_reader(struct watch *w)
{
	struct dc_live *l = dc_source_live(w->src);

	return l ? dc_live_reader(l) : "perf";
}

static int src_fd(struct watch *w)
{
	return dc_source_fd(w->src);
}

static int src_start(struct watch *w)
{
	return dc_source_start(w->src);
}

static int src_stop(struct watch *w)
{
	return dc_source_stop(w->src);
}

static bool src_finished(struct watch *w)
{
	return dc_source_finished(w->src);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_events(const char *s, unsigned int *mask)
{
	char *dup = strdup(s), *tok, *save = NULL;

	if (!dup)
		return -ENOMEM;
	*mask = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "add") || !strcmp(tok, "added"))
			*mask |= DC_ADDED;
		else if (!strcmp(tok, "remove") || !strcmp(tok, "removed"))
			*mask |= DC_REMOVED;
		else if (!strcmp(tok, "dirty"))
			*mask |= DC_DIRTY;
		else if (!strcmp(tok, "flush") || !strcmp(tok, "flushed"))
			*mask |= DC_FLUSHED;
		else if (!strcmp(tok, "all"))
			*mask |= DC_EVENTS_ALL;
		else {
			free(dup);
			return -EINVAL;
		}
	}
	free(dup);
	return *mask ? 0 : -EINVAL;
}

/* Print the pending runs in the order their first events happened. */
static void flush_pend(struct watch *w)
{
	for (;;) {
		struct out_event *first = NULL;

		for (int i = 0; i < 4; i++)
			if (w->have_pend[i] && (!first || w->pend[i].r.ts < first->r.ts))
				first = &w->pend[i];
		if (!first)
			return;
		w->have_pend[first - w->pend] = false;
		w->printed++;
		if (!w->quiet)
			out_event(&w->out, first);
	}
}

static bool joins(const struct out_event *p, const struct dc_record *r, const char *path)
{
	const struct dc_record *a = &p->r;

	return a->type == r->type && a->dev == r->dev && a->ino == r->ino &&
	       a->pid == r->pid && a->flags == r->flags &&
	       !(r->flags & DC_REC_INODE_LEVEL) && a->index + a->count == r->index &&
	       p->path == path;
}

static int type_slot(unsigned int type)
{
	return type == DC_ADDED ? 0 : type == DC_REMOVED ? 1 : type == DC_DIRTY ? 2 : 3;
}

/*
 * Coalescing keeps one run per event type, so that interleaved streams
 * (a write adds and dirties each page in turn) still print one line per
 * run of adjacent pages.
 */
static void handle(struct watch *w, const struct dc_record *r)
{
	unsigned int fl = 0;
	const char *path;
	int s;

	w->records++;
	if (r->type == DC_LOST) {
		flush_pend(w);
		if (r->cpu < w->ncpus)
			w->lost_cpu[r->cpu] += r->count;
		w->lost_reported += r->count;
		out_lost(&w->out, r->ts, r->cpu, r->count, !(r->flags & DC_REC_LOST_UNKNOWN),
			 w->use_perf ? "perf ring (PERF_RECORD_LOST)" : "ring buffer page");
		return;
	}
	path = dc_index_lookup(w->p.idx, r->dev, r->ino, &fl);
	if (!path)
		return;
	w->matched++;
	if (w->quiet)
		return;	/* counting only: nothing to coalesce or print */
	s = type_slot(r->type);
	if (w->coalesce && w->have_pend[s] && joins(&w->pend[s], r, path)) {
		w->pend[s].r.count += r->count;
		return;
	}
	if (w->have_pend[s] || !w->coalesce)
		flush_pend(w);
	for (int i = 0; i < 4; i++)
		if (w->have_pend[i] && (w->pend[i].r.ino != r->ino || w->pend[i].r.dev != r->dev ||
					w->pend[i].r.pid != r->pid))
			flush_pend(w);
	w->pend[s].r = *r;
	w->pend[s].path = path;
	w->pend[s].deleted = fl & DC_PATH_DELETED;
	w->have_pend[s] = true;
	if (!w->coalesce)
		flush_pend(w);
}

static int handle_run(void *ud, const struct dc_record *rec, size_t n)
{
	struct watch *w = ud;

	for (size_t i = 0; i < n; i++)
		handle(w, &rec[i]);
	return 0;
}

static int pump(struct watch *w)
{
	int n = src_fetch_cb(w, handle_run, w);

	if (n < 0)
		return n;
	/* A line never waits for the next batch. */
	flush_pend(w);
	if (!w->quiet)
		fflush(w->out.f);
	return n;
}

/* Losses the pages did not report (e.g. "dropped events" without overwrite). */
static void check_stats(struct watch *w)
{
	const struct dc_source_stats *st;

	if (w->use_perf || src_stats(w, &st))
		return;	/* perf: losses arrive as LOST records in the stream */
	for (unsigned int i = 0; i < st->ncpus && i < w->ncpus; i++) {
		uint64_t kernel = st->cpu[i].overrun > st->cpu[i].lost_in_pages ?
					  st->cpu[i].overrun :
					  st->cpu[i].lost_in_pages;

		kernel += st->cpu[i].dropped;
		if (kernel > w->lost_cpu[i]) {
			uint64_t extra = kernel - w->lost_cpu[i];

			w->lost_cpu[i] = kernel;
			w->lost_reported += extra;
			out_lost(&w->out, mono_ns(), i, extra, true, "per-CPU stats");
		}
	}
}

static void summary(struct watch *w, FILE *f, const char *argv0)
{
	const struct dc_source_stats *st;
	const struct dc_index_stats *is = dc_index_stats(w->p.idx);
	struct rusage ru;
	double cpu_s, ns_ev;

	src_stats(w, &st);
	getrusage(RUSAGE_SELF, &ru);
	cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	ns_ev = st->total.events ? cpu_s * 1e9 / (double)st->total.events : 0;
	if (w->out.json) {
		fprintf(w->out.f,
			"{\"v\":%d,\"type\":\"summary\",\"events\":%" PRIu64 ",\"records\":%" PRIu64
			",\"matched\":%" PRIu64 ",\"printed\":%" PRIu64 ",\"pages\":%" PRIu64
			",\"lost\":%" PRIu64 ",\"lost_in_pages\":%" PRIu64
			",\"lost_unknown_pages\":%" PRIu64 ",\"bad_pages\":%" PRIu64 ",\"overrun\":%" PRIu64
			",\"dropped\":%" PRIu64 ",\"cpu_seconds\":%.6f,\"user_seconds\":%.6f,\"sys_seconds\":%.6f,\"cpu_ns_per_event\":%.1f"
			",\"files_indexed\":%" PRIu64 ",\"names_not_indexed\":%" PRIu64
			",\"index_overflows\":%" PRIu64
			",\"voluntary_switches\":%ld,\"involuntary_switches\":%ld"
			",\"reader_wakeups\":%" PRIu64 "}\n",
			DUET_JSON_SCHEMA, st->total.events, w->records, w->matched, w->printed,
			st->total.pages, w->lost_reported, st->total.lost_in_pages,
			st->total.lost_unknown_pages, st->total.bad_pages, st->total.overrun,
			st->total.dropped, cpu_s,
			(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
			(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ns_ev, is->files,
			is->names_capped, is->overflows, ru.ru_nvcsw, ru.ru_nivcsw,
			st->total.wakeups);
		fflush(w->out.f);
		return;
	}
	fprintf(f,
		"%s: %" PRIu64 " events decoded, %" PRIu64 " matched, %" PRIu64
		" lines; lost %" PRIu64 " (pages %" PRIu64 ", overrun %" PRIu64 ", dropped %" PRIu64
		"); cpu %.3f s (%.0f ns/event)\n",
		argv0, st->total.events, w->matched, w->printed, w->lost_reported,
		st->total.lost_in_pages, st->total.overrun, st->total.dropped, cpu_s, ns_ev);
	/* Paths that may be missing from the lines: said, never silent. */
	if (is->names_capped || is->overflows)
		fprintf(f, "%s: path index: %" PRIu64 " names not kept (inodes with %d names), %"
			PRIu64 " inotify queue overflows repaired by listing again\n", argv0,
			is->names_capped, DC_INDEX_MAX_NAMES, is->overflows);
}

static const struct option watch_lo[] = {
	{ "events", required_argument, NULL, 'e' },
	{ "json", no_argument, NULL, 'j' },
	{ "duration", required_argument, NULL, 'd' },
	{ "no-coalesce", no_argument, NULL, 'C' },
	{ "buffer-kb", required_argument, NULL, 'b' },
	{ "stock", no_argument, NULL, 'S' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "stats", no_argument, NULL, 's' },
	{ "backend", required_argument, NULL, 'B' },
	{ "perf-pages", required_argument, NULL, 'P' },
	{ 0 },
};

static const struct cli_opts watch_opts = {
	.usage = "usage: duet watch [--events add,remove,dirty,flush] [--json] [--duration SECONDS]\n"
		 "                  [--no-coalesce] [--buffer-kb KB] [--stock] [--quiet] [--stats]\n"
		 "                  [--backend tracefs|perf] [--perf-pages N]\n"
		 "                  PATH...\n"
		 "Prints page-cache events for files under each PATH (other file systems\n"
		 "mounted below PATH included). Needs root: it reads the tracing ring buffer.\n"
		 "--backend=perf reads the same events through perf_event_open (per-CPU\n"
		 "rings of --perf-pages pages, default 256) and needs no tracefs instance.\n",
	.shortopts = "e:jd:qs",
	.longopts = watch_lo,
};

/* --duration's bound: any longer is a mistake (time_t and timerfd take it). */
#define WATCH_MAX_SECONDS 1e9

static int watch_opt(void *ud, const struct cli_arg *a)
{
	struct watch *w = ud;
	uint64_t v = 0;
	int r;

	switch (a->key) {
	case 'e':
		if (parse_events(a->value, &w->mask)) {
			fprintf(stderr, "duet watch: --events takes a list of add, remove, dirty, flush (got \"%s\")\n",
				a->value);
			return CLI_EXIT_USAGE;
		}
		break;
	case 'j':
		w->out.json = true;
		break;
	case 'd':
		return cli_seconds(a, WATCH_MAX_SECONDS, &w->duration);
	case 'C':
		w->coalesce = false;
		break;
	case 'b':
		r = cli_number(a, 0, UINT_MAX, &v);
		w->sopts.buffer_kb = (unsigned int)v;
		return r;
	case 'S':
		w->sopts.stock_only = true;
		break;
	case 'q':
		w->quiet = true;
		break;
	case 's':
		w->stats = true;
		break;
	case 'B':
		if (!strcmp(a->value, "perf")) {
			w->use_perf = true;
		} else if (strcmp(a->value, "tracefs")) {
			fprintf(stderr, "duet watch: --backend is tracefs (default) or perf (got \"%s\")\n",
				a->value);
			return CLI_EXIT_USAGE;
		}
		break;
	case 'P':
		r = cli_number(a, 1, 1u << 20, &v);
		if (!r && (v & (v - 1))) {
			fprintf(stderr, "duet watch: --perf-pages: '%s' is not a power of two (pages per CPU ring)\n",
				a->value);
			r = CLI_EXIT_USAGE;
		}
		w->perf_pages = (unsigned int)v;
		return r;
	}
	return 0;
}

/*
 * The steps of duet watch: each returns 0, or an exit status after saying
 * why.
 */

/* The error of opening the perf source, in a sentence. */
static void say_perf(int r)
{
	if (r == -EOPNOTSUPP)
		fprintf(stderr, "duet watch: this duet was built without libperf: --backend=perf is not available (run scripts/setup, which builds libperf, then rebuild)\n");
	else if (r == -EACCES || r == -EPERM)
		fprintf(stderr, "duet watch: perf_event_open refused the tracepoints: run as root or with CAP_PERFMON (and kernel.perf_event_paranoid allowing tracepoints)\n");
	else if (r == -ENOENT)
		fprintf(stderr, "duet watch: the filemap page-cache events or their format files are missing (tracefs must be mounted, read only is enough)\n");
	else
		fprintf(stderr, "duet watch: cannot set up perf events: %s\n", strerror(-r));
}

/* The event source (a tracefs instance, or perf) with the kernel's filters. */
static int watch_open(struct watch *w, const char *prog)
{
	int r;

	w->sopts.backend = w->use_perf ? DC_BACKEND_PERF : DC_BACKEND_TRACEFS;
	w->sopts.devs = w->p.devs;
	w->sopts.ndevs = w->p.ndevs;
	w->sopts.bdis = w->p.bdis;
	w->sopts.nbdis = w->p.nbdis;
	w->sopts.types = w->mask;
	w->sopts.exclude_pid = getpid();
	/* perf's rings are --perf-pages long (--buffer-kb is tracefs's). */
	if (w->use_perf)
		w->sopts.buffer_kb = (unsigned int)((size_t)w->perf_pages *
						    (size_t)getpagesize() / 1024);
	r = dc_source_open(&w->sopts, &w->src);
	if (r) {
		if (w->use_perf)
			say_perf(r);
		else
			cli_say_tracing(prog, r, "the filemap page-cache events");
		return CLI_EXIT_FAIL;
	}
	w->ncpus = (unsigned int)sysconf(_SC_NPROCESSORS_CONF);
	w->lost_cpu = calloc(w->ncpus ? w->ncpus : 1, sizeof(*w->lost_cpu));
	if (!w->lost_cpu) {
		fprintf(stderr, "duet watch: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	w->out.f = stdout;
	w->out.self_pid = getpid();
	w->out.t0 = mono_ns();
	return 0;
}

/* What is watched, with which semantics: text on stderr, or the JSON start record. */
static void watch_announce(struct watch *w)
{
	if (!w->quiet && !w->out.json) {
		fprintf(stderr, "duet watch: %s\n", src_describe(w));
		if ((w->mask & DC_DIRTY) && src_dirty_sem(w) == DC_DIRTY_BDI && w->p.nbdis < w->p.ndevs)
			fprintf(stderr, "duet watch: some watched file systems have no known backing device: their DIRTY events cannot be mapped\n");
		fprintf(stderr, "duet watch: watching %zu file system(s) under", w->p.ndevs);
		for (size_t i = 0; i < w->p.nroots; i++)
			fprintf(stderr, " %s", w->p.roots[i]);
		fprintf(stderr, " (instance %s); Ctrl-C to stop\n", src_name(w));
	}
	if (w->out.json) {
		printf("{\"v\":%d,\"type\":\"start\",\"instance\":\"%s\",\"dirty\":\"%s\",\"flush\":\"%s\",\"devices\":%zu,\"reader\":\"%s\"}\n",
		       DUET_JSON_SCHEMA, src_name(w),
		       src_dirty_sem(w) == DC_DIRTY_EXACT ? "exact" :
		       src_dirty_sem(w) == DC_DIRTY_BDI   ? "bdi-page" :
							    "none",
		       src_flush_sem(w) == DC_FLUSH_EXACT ? "exact" :
		       src_flush_sem(w) == DC_FLUSH_INODE ? "inode" :
							    "none",
		       w->p.ndevs, src_reader(w));
		fflush(stdout);
	}
}

/* The epoll set: the source, the index, the signals that stop, --duration. */
static int watch_loop_open(struct watch *w)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t ss;

	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (cmdloop_open(&w->loop, &ss, src_fd(w), dc_index_fd(w->p.idx))) {
		perror("duet watch");
		return CLI_EXIT_FAIL;
	}
	if (w->duration > 0) {
		struct itimerspec dt = { 0 };

		w->dfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		dt.it_value.tv_sec = (time_t)w->duration;
		dt.it_value.tv_nsec = (long)((w->duration - (double)(time_t)w->duration) * 1e9);
		timerfd_settime(w->dfd, 0, &dt, NULL);
		ev.data.fd = w->dfd;
		epoll_ctl(w->loop.efd, EPOLL_CTL_ADD, w->dfd, &ev);
	}
	return 0;
}

/* Events until a signal, --duration or a reader gone; then what is left. */
static int watch_run(struct watch *w)
{
	int r = watch_loop_open(w);

	if (r)
		return r;
	r = src_start(w);
	if (r) {
		fprintf(stderr, "duet watch: cannot start tracing: %s\n", strerror(-r));
		return CLI_EXIT_FAIL;
	}
	for (bool stop = false, repairing = false; !stop;) {
		struct epoll_event evs[8];
		/* An index repair goes on between events, a part at a time. */
		int n = epoll_wait(w->loop.efd, evs, 8, repairing ? 0 : -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t junk;

			if (fd == w->loop.sfd || fd == w->dfd) {
				stop = true;
			} else if (fd == w->loop.tfd) {
				if (read(w->loop.tfd, &junk, sizeof(junk)) < 0) {
				}
				check_stats(w);
			} else if (fd == dc_index_fd(w->p.idx)) {
				dc_index_update(w->p.idx);
			}
		}
		repairing = dc_index_repair_step(w->p.idx, 4096) > 0;
		if (pump(w) < 0)
			break;
		if (ferror(stdout))
			break;	/* reader went away (EPIPE) */
	}
	/* Final drain: readers read what is left after tracing is turned off. */
	src_stop(w);
	while (!src_finished(w)) {
		struct epoll_event ev;

		epoll_wait(w->loop.efd, &ev, 1, 50);
		if (pump(w) < 0)
			break;
	}
	check_stats(w);
	return 0;
}

static void watch_free(struct watch *w)
{
	dc_source_free(w->src);
	cli_paths_free(&w->p);
	out_comm_cache_free();
	free(w->lost_cpu);
	cmdloop_close(&w->loop);
	if (w->dfd >= 0)
		close(w->dfd);
}

int cmd_watch(int argc, char **argv)
{
	struct watch w = {
		.coalesce = true,
		.mask = DC_EVENTS_ALL,
		.sopts = { .sz = sizeof(w.sopts) },
		.loop = { .sfd = -1, .efd = -1, .tfd = -1 },
		.dfd = -1,
	};
	int r;

	r = cli_options(&watch_opts, argc, argv, watch_opt, &w);
	if (r != CLI_GO)
		return r;
	if (optind >= argc)
		return cli_usage_error(&watch_opts);
	r = cli_paths_open(&w.p, "duet watch", argv + optind, argc - optind);
	if (!r)
		r = watch_open(&w, argv[0]);
	if (!r) {
		watch_announce(&w);
		r = watch_run(&w);
	}
	if (!r && (w.stats || w.out.json || !w.quiet))
		summary(&w, stderr, "duet watch");
	watch_free(&w);
	return r;
}
