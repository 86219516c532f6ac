// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet record: page-cache events into a trace.dat that trace-cmd report
 * reads, plus a sidecar FILE.duet (sidecar.h) with the mounts, backing
 * devices and the paths of the files seen.
 *
 * No feedback loop: while tracing, the raw pages go to one memfd per CPU
 * (shmem, which has no writeback and whose pages are not on any traced
 * device); FILE is written only after tracing stopped (record-trace.c).
 * The kernel filters also drop every event of duet's own pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices.h"
#include "duet-cli.h"
#include "index.h"
#include "live.h"
#include "source.h"
#include "record-cmd.h"
#include "sidecar.h"
#include "tdread.h"

/*
 * What duet record enables besides the page-cache sources of duet watch:
 * the reclaim events that tell why pages left the cache (kswapd, direct
 * reclaim, memcg limit reclaim, node reclaim, and reclaim_pages(), which
 * DAMON pageout and MADV_PAGEOUT use). Truncation, fadvise and
 * drop_caches show as the removing task's pid and comm.
 */
static const char *const default_extras[] = {
	"vmscan/mm_vmscan_kswapd_wake",
	"vmscan/mm_vmscan_kswapd_sleep",
	"vmscan/mm_vmscan_direct_reclaim_begin",
	"vmscan/mm_vmscan_direct_reclaim_end",
	"vmscan/mm_vmscan_memcg_reclaim_begin",
	"vmscan/mm_vmscan_memcg_reclaim_end",
	"vmscan/mm_vmscan_node_reclaim_begin",
	"vmscan/mm_vmscan_node_reclaim_end",
	"vmscan/mm_vmscan_reclaim_pages",
	NULL,
};

static int spool_page(void *ud, int cpu, const void *page, size_t len)
{
	struct rec *r = ud;
	struct spool *s = &r->sp[cpu];
	static const char zeros[65536];
	const char *p = page;
	size_t left = len;

	if (len > s->page_size)
		return -EPROTO;
	while (left) {
		ssize_t w = write(s->fd, p, left);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto undo;
		}
		p += w;
		left -= (size_t)w;
	}
	/* trace.dat stores whole pages: the kernel may return less. */
	if (len < s->page_size &&
	    write(s->fd, zeros, s->page_size - len) != (ssize_t)(s->page_size - len))
		goto undo;
	s->size += s->page_size;
	return 0;
undo:
	/* Keep the spool a whole number of pages. */
	if (ftruncate(s->fd, (off_t)s->size) || lseek(s->fd, (off_t)s->size, SEEK_SET) < 0) {
	}
	return -EIO;
}

static void see_file(struct rec *r, uint32_t dev, uint64_t ino)
{
	const char *path;
	unsigned int fl = 0;

	if (!r->idx || dc_sidecar_path(r->side, dev, ino))
		return;
	path = dc_index_lookup(r->idx, dev, ino, &fl);
	/* Not named yet: looked up again on its next event. */
	if (path && dc_sidecar_add_file(r->side, dev, ino, path))
		fprintf(stderr, "duet record: out of memory: %s not named in the sidecar\n", path);
}

static int on_records(void *ud, const struct dc_record *rec, size_t n)
{
	struct rec *r = ud;

	for (size_t i = 0; i < n; i++) {
		const struct dc_record *x = &rec[i];

		r->records++;
		if (x->type == DC_LOST) {
			if (x->cpu < r->ncpus)
				r->lost_cpu[x->cpu] += x->count;
			r->lost_pages += x->count;
			continue;
		}
		record_see_pid(r, x->pid);
		see_file(r, x->dev, x->ino);
	}
	return 0;
}

static const struct option record_lo[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "events", required_argument, NULL, 'e' },
	{ "buffer-kb", required_argument, NULL, 'b' },
	{ "backend", required_argument, NULL, 'B' },
	{ "file-version", required_argument, NULL, 'V' },
	{ "compression", required_argument, NULL, 'Z' },
	{ "loads", no_argument, NULL, 'L' },
	{ 0 },
};

/* "+": options end at the first PATH, so that COMMAND's are its own. */
static const struct cli_opts record_opts = {
	.usage = "usage: duet record [-o|--output FILE] [--events SYS:EVENT,...] [--buffer-kb KB]\n"
		 "                   [--file-version 7|6] [--compression zstd|none] [--loads]\n"
		 "                   [--backend tracefs] [PATH...] [-- COMMAND [ARGS...]]\n"
		 "Records page-cache events (and reclaim events) into FILE (default\n"
		 "trace.dat, read by 'trace-cmd report' and 'duet report') and FILE.duet\n"
		 "(mounts, backing devices, paths of the files seen under PATH).\n"
		 "FILE is trace.dat version 7, zstd-compressed, as trace-cmd 3.x writes;\n"
		 "--file-version 6 writes the uncompressed version 6 older readers take.\n"
		 "--loads also records readahead and read/fault events (frequent): duet\n"
		 "report then splits loads into readahead and demand, and counts hits.\n"
		 "With PATHs, only their file systems are traced. With COMMAND, records\n"
		 "while it runs and exits with its status; otherwise until Ctrl-C.\n"
		 "Data are kept in memory while recording and written when it stops.\n",
	.shortopts = "+o:e:",
	.longopts = record_lo,
};

/* --events: sources duet decodes set types; others are enabled as extras. */
static int parse_event_list(const char *s, unsigned int *types, bool *stock, char ***extras)
{
	char *dup = strdup(s), *tok, *save = NULL;
	size_t n = 0;

	*types = 0;
	*extras = calloc(strlen(s) + 2, sizeof(**extras));
	if (!dup || !*extras) {
		free(dup);
		return -ENOMEM;
	}
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *sep = strpbrk(tok, ":/");
		char *ev, *text;
		size_t len;
		int src;

		if (!sep || !sep[1] || sep == tok)
			goto bad;
		*sep = '\0';
		ev = sep + 1;
		if (dc_event_format(tok, ev, &text, &len)) {
			fprintf(stderr, "duet record: event %s:%s does not exist on this kernel (see %s)\n",
				tok, ev, "/sys/kernel/tracing/events");
			goto fail;
		}
		free(text);
		src = dc_src_lookup(tok, ev);
		if (src >= 0 && dc_src_info[src].type) {
			*types |= dc_src_info[src].type;
			if (src == DC_SRC_WB_DIRTY || src == DC_SRC_SB_CLEAR_WB)
				*stock = true;
			continue;
		}
		if (asprintf(&(*extras)[n++], "%s/%s", tok, ev) < 0)
			goto fail;
	}
	free(dup);
	return 0;
bad:
	fprintf(stderr, "duet record: --events takes SYSTEM:EVENT names separated by commas (got \"%s\")\n",
		s);
fail:
	free(dup);
	return -EINVAL;
}

static int record_opt(void *ud, const struct cli_arg *a)
{
	struct rec *r = ud;
	uint64_t v = 0;
	int e;

	switch (a->key) {
	case 'o':
		r->out = a->value;
		break;
	case 'e': {
		bool stock = false;

		/* Given again: the last one counts, and the one before is freed. */
		for (size_t i = 0; r->user_extras && r->user_extras[i]; i++)
			free(r->user_extras[i]);
		free(r->user_extras);
		r->user_extras = NULL;
		if (parse_event_list(a->value, &r->lopts.types, &stock, &r->user_extras))
			return CLI_EXIT_USAGE;
		r->lopts.types_explicit = true;
		r->lopts.stock_only = stock;
		r->extras = (const char *const *)r->user_extras;
		break;
	}
	case 'b':
		e = cli_number(a, 0, UINT_MAX, &v);
		r->lopts.buffer_kb = (unsigned int)v;
		return e;
	case 'V':
		if (strcmp(a->value, "6") && strcmp(a->value, "7")) {
			fprintf(stderr, "duet record: --file-version is 6 or 7 (got \"%s\")\n",
				a->value);
			return CLI_EXIT_USAGE;
		}
		r->file_version = (unsigned int)(a->value[0] - '0');
		break;
	case 'L':
		r->loads = true;
		break;
	case 'Z':
		if (!strcmp(a->value, "zstd")) {
			r->compression = DC_TD_COMPRESS_ZSTD;
		} else if (!strcmp(a->value, "none")) {
			r->compression = DC_TD_COMPRESS_NONE;
		} else {
			fprintf(stderr, "duet record: --compression is zstd or none (got \"%s\")\n",
				a->value);
			return CLI_EXIT_USAGE;
		}
		r->compression_set = true;
		break;
	case 'B': {
		enum dc_backend b;

		if (dc_backend_parse(a->value, &b)) {
			fprintf(stderr, "duet record: --backend is tracefs or perf (got \"%s\")\n",
				a->value);
			return CLI_EXIT_USAGE;
		}
		/* trace.dat holds the ring buffer's own sub-buffers. */
		if (b != DC_BACKEND_TRACEFS) {
			fprintf(stderr, "duet record: --backend=%s cannot record: trace.dat holds the tracing ring buffer's pages, which only the tracefs backend reads (perf record -e 'filemap:*' writes perf.data)\n",
				a->value);
			return CLI_EXIT_USAGE;
		}
		break;
	}
	}
	return 0;
}

/*
 * The steps of duet record: each returns 0, or an exit status after
 * saying why.
 */

/*
 * The file's format: version 7 with zstd unless told otherwise; version 6
 * has no compression (trace-cmd says the same).
 */
static int record_format(struct rec *r)
{
	if (r->file_version == 6 && r->compression_set &&
	    r->compression != DC_TD_COMPRESS_NONE) {
		fprintf(stderr, "duet record: --compression zstd needs --file-version 7 (version 6 files are not compressed)\n");
		return CLI_EXIT_USAGE;
	}
	if (r->file_version == 6)
		r->compression = DC_TD_COMPRESS_NONE;
	return 0;
}

/* PATHs up to "--", then COMMAND; the PATHs resolved. */
static int record_operands(struct rec *r, int argc, char **argv)
{
	int npaths = 0;

	/* "+" made getopt stop at the first PATH; it consumes a "--" right after the options. */
	if (optind > 1 && !strcmp(argv[optind - 1], "--")) {
		r->cmd = &argv[optind];
	} else {
		for (int i = optind; i < argc; i++) {
			if (!strcmp(argv[i], "--")) {
				r->cmd = &argv[i + 1];
				break;
			}
			npaths++;
		}
	}
	if (r->cmd && !*r->cmd) {
		fprintf(stderr, "duet record: '--' must be followed by a command\n");
		return CLI_EXIT_USAGE;
	}
	r->roots = calloc((size_t)npaths + 1, sizeof(*r->roots));
	if (!r->roots) {
		fprintf(stderr, "duet record: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	for (int i = 0; i < npaths; i++) {
		char *rp = realpath(argv[optind + i], NULL);

		if (!rp) {
			fprintf(stderr, "duet record: %s: %s\n", argv[optind + i],
				errno == ENOENT ? "no such file or directory; give an existing path" :
						  strerror(errno));
			return CLI_EXIT_FAIL;
		}
		r->roots[r->nroots++] = rp;
	}
	return 0;
}

/*
 * FILE and FILE.duet are created now, so that a bad -o fails before
 * anything is recorded; they are written after tracing stopped.
 */
static int record_files(struct rec *r, const char *prog)
{
	int e = dc_tracefs_ensure(&r->top);

	if (e) {
		cli_say_tracefs(prog, e);
		return CLI_EXIT_FAIL;
	}
	if (asprintf(&r->side_path, "%s.duet", r->out) < 0) {
		r->side_path = NULL;
		fprintf(stderr, "duet record: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	r->ofd = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (r->ofd >= 0)
		r->side_fd = open(r->side_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (r->ofd < 0 || r->side_fd < 0) {
		fprintf(stderr, "duet record: cannot create %s: %s\n",
			r->ofd < 0 ? r->out : r->side_path, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

/* The file systems of the PATHs (all without), their backing devices, the index. */
static int record_devices(struct rec *r)
{
	if (dc_mounts_load(&r->mounts)) {
		fprintf(stderr, "duet record: cannot read the mount table\n");
		return CLI_EXIT_FAIL;
	}
	if (r->nroots && dc_devices_for_paths(&r->mounts, r->roots, r->nroots, &r->devs, &r->ndevs)) {
		fprintf(stderr, "duet record: cannot find the devices of the paths\n");
		return CLI_EXIT_FAIL;
	}
	/* Without PATH, every device is traced: map every bdi. */
	if (!r->nroots) {
		r->alldevs = calloc(r->mounts.n + 1, sizeof(*r->alldevs));
		for (size_t i = 0; r->alldevs && i < r->mounts.n; i++)
			r->alldevs[i] = r->mounts.m[i].kdev;
	}
	if (dc_bdis_for_devices(&r->mounts, r->nroots ? r->devs : r->alldevs,
				r->nroots ? r->ndevs : r->mounts.n, &r->bdis, &r->nbdis)) {
		fprintf(stderr, "duet record: cannot read the backing devices\n");
		return CLI_EXIT_FAIL;
	}
	if (r->nroots) {
		int e = dc_index_new(r->roots, r->nroots, &r->idx);

		if (e) {
			fprintf(stderr, "duet record: cannot index %s: %s\n", r->roots[0], strerror(-e));
			return CLI_EXIT_FAIL;
		}
	}
	return 0;
}

/* Per CPU: a memfd for the pages, the loss count, the stats for the trace. */
static int record_spools(struct rec *r)
{
	r->ncpus = (unsigned int)sysconf(_SC_NPROCESSORS_CONF);
	r->sp = calloc(r->ncpus, sizeof(*r->sp));
	r->lost_cpu = calloc(r->ncpus, sizeof(*r->lost_cpu));
	r->stats_text = calloc(r->ncpus, sizeof(*r->stats_text));
	if (!r->sp || !r->lost_cpu || !r->stats_text || dc_sidecar_new(&r->side)) {
		fprintf(stderr, "duet record: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	for (unsigned int c = 0; c < r->ncpus; c++)
		r->sp[c].fd = -1;
	for (unsigned int c = 0; c < r->ncpus; c++) {
		char name[32];

		snprintf(name, sizeof(name), "duet-record-cpu%u", c);
		r->sp[c].fd = memfd_create(name, MFD_CLOEXEC);
		if (r->sp[c].fd < 0) {
			perror("duet record: memfd_create");
			return CLI_EXIT_FAIL;
		}
	}
	return 0;
}

/* Reclaim events are optional: the default list less those missing, named. */
static void record_default_extras(struct rec *r)
{
	size_t k = 0;

	for (const char *const *e = default_extras; *e; e++) {
		char sys[64], *text;
		size_t len;
		const char *sl = strchr(*e, '/');

		snprintf(sys, sizeof(sys), "%.*s", (int)(sl - *e), *e);
		if (dc_event_format(sys, sl + 1, &text, &len)) {
			fprintf(stderr, "duet record: event %s missing on this kernel: not recorded\n", *e);
			continue;
		}
		free(text);
		r->avail[k++] = *e;
	}
	r->avail[k] = NULL;
	r->extras = r->avail;
}

/* The tracefs instance, its pages spooled (spool_page), the kernel's filters. */
static int record_open(struct rec *r, const char *prog)
{
	int e;

	if (r->extras == default_extras)
		record_default_extras(r);
	/*
	 * --loads (dc_load_events()): who put pages there. The readahead
	 * calls (sync: on a miss; async: on reaching a readahead marker; the
	 * order and unbounded variants that do the reading) tell readahead
	 * loads from demand loads; the reads and faults (filemap_get_pages,
	 * filemap_fault) give the pages asked for, so hits and misses per
	 * file. Frequent: opt-in, filtered to the recorded devices like the
	 * page events (docs/benchmarks.md has their cost).
	 */

	if (r->loads) {
		size_t n = 0, k = 0;

		while (r->extras && r->extras[n])
			n++;
		r->all_extras = calloc(n + DC_AUX_NR - DC_AUX_FIRST_LOAD + 1,
				       sizeof(*r->all_extras));
		if (!r->all_extras)
			return CLI_EXIT_FAIL;
		for (size_t i = 0; i < n; i++)
			r->all_extras[k++] = r->extras[i];
		for (const char *const *e = dc_load_events(); *e; e++) {
			char sys[64], *text;
			size_t len;
			const char *sl = strchr(*e, '/');

			snprintf(sys, sizeof(sys), "%.*s", (int)(sl - *e), *e);
			if (dc_event_format(sys, sl + 1, &text, &len)) {
				fprintf(stderr, "duet record: --loads: event %s missing on this "
					"kernel: not recorded\n", *e);
				continue;
			}
			free(text);
			r->all_extras[k++] = *e;
		}
		r->extras = r->all_extras;
	}
	/* trace.dat declares one page size: page-sized sub-buffers. */
	r->lopts.subbuf_kb = (unsigned int)getpagesize() / 1024;
	r->lopts.devs = r->devs;
	r->lopts.ndevs = r->ndevs;
	r->lopts.bdis = r->bdis;
	r->lopts.nbdis = r->nbdis;
	r->lopts.exclude_pid = getpid();
	r->lopts.page_fn = spool_page;
	r->lopts.page_ud = r;
	r->lopts.extra_events = r->extras;
	e = dc_live_open(&r->lopts, &r->live);
	if (e) {
		cli_say_tracing(prog, e, "the events asked for");
		return CLI_EXIT_FAIL;
	}
	for (unsigned int c = 0; c < r->ncpus; c++)
		r->sp[c].page_size = (size_t)dc_live_subbuf_size(r->live);
	if (r->sp[0].page_size > 65536) {
		fprintf(stderr, "duet record: sub-buffers of %zu bytes are not supported\n",
			r->sp[0].page_size);
		return CLI_EXIT_FAIL;
	}
	return 0;
}

/* The loop's fds, tracing on, then COMMAND started (or the Ctrl-C line). */
static int record_start(struct rec *r)
{
	sigset_t ss;
	int e;

	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGCHLD);
	sigprocmask(SIG_BLOCK, &ss, &r->old_mask);
	if (cmdloop_open(&r->loop, &ss, dc_live_fd(r->live), r->idx ? dc_index_fd(r->idx) : -1)) {
		perror("duet record");
		return CLI_EXIT_FAIL;
	}
	e = dc_live_start(r->live);
	if (e) {
		fprintf(stderr, "duet record: cannot start tracing: %s\n", strerror(-e));
		return CLI_EXIT_FAIL;
	}
	if (!r->cmd) {
		fprintf(stderr, "duet record: recording into %s (instance %s); Ctrl-C to stop\n",
			r->out, dc_live_instance_name(r->live));
		return 0;
	}
	r->child = fork();
	if (r->child < 0) {
		perror("duet record: fork");
		return CLI_EXIT_FAIL;
	}
	if (!r->child) {
		sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
		execvp(r->cmd[0], r->cmd);
		fprintf(stderr, "duet record: cannot run %s: %s\n", r->cmd[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

/* A signal: passed on to COMMAND, which decides; without one, the end. */
static bool record_signals(struct rec *r)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(r->loop.sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (r->child > 0)
			kill(r->child, (int)si.ssi_signo);
		else
			stop = true;
	}
	if (r->child > 0 && waitpid(r->child, &r->child_status, WNOHANG) == r->child) {
		r->child_done = true;
		stop = true;
	}
	return stop;
}

/* Pages spooled until COMMAND ends or a signal; then what is left. */
static void record_loop(struct rec *r)
{
	for (bool stop = false, repairing = false; !stop;) {
		struct epoll_event evs[8];
		/* An index repair goes on between events, a part at a time. */
		int n = epoll_wait(r->loop.efd, evs, 8, repairing ? 0 : -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t junk;

			if (fd == r->loop.sfd) {
				stop |= record_signals(r);
			} else if (fd == r->loop.tfd) {
				if (read(r->loop.tfd, &junk, sizeof(junk)) < 0) {
				}
			} else if (r->idx && fd == dc_index_fd(r->idx)) {
				dc_index_update(r->idx);
			}
		}
		repairing = r->idx && dc_index_repair_step(r->idx, 4096) > 0;
		if (dc_live_fetch_cb(r->live, on_records, r) < 0)
			break;
	}
	/* Everything the kernel committed before tracing_on=0 is drained. */
	dc_live_stop(r->live);
	while (!dc_live_finished(r->live)) {
		struct epoll_event ev;

		epoll_wait(r->loop.efd, &ev, 1, 50);
		if (r->idx)
			dc_index_update(r->idx);
		if (dc_live_fetch_cb(r->live, on_records, r) < 0)
			break;
	}
}

/* FILE and FILE.duet written; what they hold and what was lost, on stderr. */
static int record_write(struct rec *r)
{
	const struct dc_source_stats *st;
	uint64_t lost = 0, bytes = 0;
	int e;

	dc_live_stats(r->live, &st);
	for (unsigned int c = 0; c < r->ncpus; c++) {
		char f[64];
		uint64_t k = st->cpu[c].overrun > r->lost_cpu[c] ? st->cpu[c].overrun : r->lost_cpu[c];

		lost += k + st->cpu[c].dropped;
		snprintf(f, sizeof(f), "per_cpu/cpu%u/stats", c);
		r->stats_text[c] = record_inst_file(r->top, dc_live_instance_name(r->live), f, NULL);
	}
	e = record_write_trace(r, r->ofd, r->top, r->extras, r->stats_text);
	if (e) {
		fprintf(stderr, "duet record: cannot write %s: %s\n", r->out, strerror(-e));
		return CLI_EXIT_FAIL;
	}
	e = dc_sidecar_write(r->side, r->side_fd, r->out, &r->mounts, r->devs, r->ndevs, r->bdis,
			     r->nbdis);
	if (e) {
		fprintf(stderr, "duet record: cannot write %s.duet: %s\n", r->out, strerror(-e));
		return CLI_EXIT_FAIL;
	}
	r->written = true;
	for (unsigned int c = 0; c < r->ncpus; c++)
		bytes += r->sp[c].size;
	fprintf(stderr, "duet record: %s: %" PRIu64 " events, %" PRIu64 " bytes of ring-buffer pages, %zu file(s) named in %s.duet\n",
		r->out, st->total.events, bytes, dc_sidecar_nfiles(r->side), r->out);
	if (lost)
		fprintf(stderr, "duet record: LOST %" PRIu64 " events (page marks %" PRIu64 ", overrun %" PRIu64 ", dropped %" PRIu64 "): the trace has gaps; use --buffer-kb\n",
			lost, r->lost_pages, st->total.overrun, st->total.dropped);
	if (st->total.page_fn_errors)
		fprintf(stderr, "duet record: LOST %" PRIu64 " ring-buffer pages that could not be kept in memory\n",
			st->total.page_fn_errors);
	if (st->total.bad_pages)
		fprintf(stderr, "duet record: %" PRIu64 " inconsistent pages (stored, not decoded)\n",
			st->total.bad_pages);
	return 0;
}

/* With COMMAND, its exit status (128 + the signal that killed it); else 0. */
static int record_status(struct rec *r)
{
	if (r->child <= 0)
		return 0;
	if (!r->child_done)
		waitpid(r->child, &r->child_status, 0);
	r->child_done = true;
	return WIFEXITED(r->child_status) ? WEXITSTATUS(r->child_status) :
					    128 + WTERMSIG(r->child_status);
}

/* Everything freed; FILE and FILE.duet kept only if both were written. Returns ret, or 1. */
static int record_free(struct rec *r, int ret)
{
	struct pid_ent *p, *pt;

	if (r->child > 0 && !r->child_done) {
		kill(r->child, SIGTERM);
		waitpid(r->child, NULL, 0);
	}
	dc_live_free(r->live);
	dc_index_free(r->idx);
	dc_mounts_free(&r->mounts);
	for (unsigned int c = 0; r->sp && c < r->ncpus; c++)
		if (r->sp[c].fd >= 0)
			close(r->sp[c].fd);
	for (unsigned int c = 0; r->stats_text && c < r->ncpus; c++)
		free(r->stats_text[c]);
	free(r->stats_text);
	free(r->sp);
	free(r->lost_cpu);
	HASH_ITER(hh, r->pids, p, pt) {
		HASH_DEL(r->pids, p);
		free(p);
	}
	dc_sidecar_free(r->side);
	for (size_t i = 0; r->user_extras && r->user_extras[i]; i++)
		free(r->user_extras[i]);
	free(r->user_extras);
	free(r->all_extras);
	free(r->devs);
	free(r->alldevs);
	free(r->bdis);
	for (size_t i = 0; i < r->nroots; i++)
		free(r->roots[i]);
	free(r->roots);
	cmdloop_close(&r->loop);
	if (r->ofd >= 0 && close(r->ofd) && !ret) {
		fprintf(stderr, "duet record: writing %s: %s\n", r->out, strerror(errno));
		ret = CLI_EXIT_FAIL;
	}
	if (r->side_fd >= 0 && close(r->side_fd) && !ret) {
		fprintf(stderr, "duet record: writing %s: %s\n", r->side_path, strerror(errno));
		ret = CLI_EXIT_FAIL;
	}
	/* Nothing half-written stays behind. */
	if (!r->written && r->ofd >= 0)
		unlink(r->out);
	if (!r->written && r->side_fd >= 0)
		unlink(r->side_path);
	free(r->side_path);
	return ret;
}

int cmd_record(int argc, char **argv)
{
	struct rec r = {
		.lopts = { .sz = sizeof(r.lopts) },
		.out = "trace.dat",
		.file_version = 7,
		.compression = DC_TD_COMPRESS_ZSTD,
		.extras = default_extras,
		.ofd = -1,
		.side_fd = -1,
		.child = -1,
		.loop = { .sfd = -1, .efd = -1, .tfd = -1 },
	};
	int ret = cli_options(&record_opts, argc, argv, record_opt, &r);

	if (ret != CLI_GO) {
		record_free(&r, ret);	/* --events' list, if a later option failed */
		return ret;
	}
	ret = record_format(&r);
	if (!ret)
		ret = record_operands(&r, argc, argv);
	if (!ret)
		ret = record_files(&r, argv[0]);
	if (!ret)
		ret = record_devices(&r);
	if (!ret)
		ret = record_spools(&r);
	if (!ret)
		ret = record_open(&r, argv[0]);
	if (!ret)
		ret = record_start(&r);
	if (!ret) {
		record_loop(&r);
		ret = record_write(&r);
	}
	if (!ret)
		ret = record_status(&r);
	return record_free(&r, ret);
}
