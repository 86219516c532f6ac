// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-libduet: figures for libduet against the running kernel, not a
 * test. Through the public API only: a session, tasks with DUET_MODIFIED
 * and DUET_EXISTS over a tree of small files, the registration scan and
 * the fetch of what it queued.
 *
 * The tree: NFILES files in directories of 1000 (DIR/dNNNN/fNNNN), file i
 * of 1 + i % 4 pages. After sync and drop_caches, the first CACHED pages
 * of every file are read back with readahead off (POSIX_FADV_RANDOM), so
 * exactly those pages are cached (cachestat() confirms and counts them).
 *
 * Two tasks in one session, so memory splits into its two parts:
 *  1. a MODIFIED task: the path index, the engine's per-inode state and
 *     the scan of every file (cachestat, mincore); nothing is queued,
 *     since no page is dirty. RSS delta / files = memory per tracked file.
 *  2. an EXISTS task on the same directory (the index is shared): its
 *     scan queues every cached page. RSS delta / pending pages (and items)
 *     = memory per pending page (item).
 * Then the EXISTS task fetches everything in batches of 256.
 * With -s, only the EXISTS task (a registration from nothing).
 *
 * With -o ODIR (a directory on another file system): before the
 * registrations, a task "other" (ADDED | REMOVED) on ODIR, a writer that
 * keeps rewriting and dropping a 64 MiB file there with 4 KiB writes,
 * and a thread that polls and fetches the other task's items throughout.
 * It counts the other task's LOST items and the longest it waited for a
 * fetch: a registration that stops the others being served shows there.
 * With -j, the last line is one JSON object: register_s, walk_s, scan_s
 * (of the last registration), other_task_lost, other_task_items,
 * other_task_max_fetch_s, other_events (pages the writer wrote).
 *
 * RSS is read after malloc_trim(0), so freed heap is not counted; "heap"
 * is what malloc has handed out (mallinfo2, all arenas, mmapped chunks).
 *
 * usage: bench-libduet [-n NFILES] [-c CACHED] [-k] [-s] [-o ODIR] [-j] DIR
 *   -n files (default 1000000), -c cached pages per file (default 4: all),
 *   -k keep: DIR already holds the tree (no create, no drop, no warm-up),
 *   -s single EXISTS task.
 * Needs root (drop_caches, the tracing instance).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <duet/duet.h>

#define PER_DIR 1000
#define MAX_PAGES 4

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct cs_range {
	uint64_t off, len;
};

struct cs_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

static unsigned long nfiles = 1000000;
static unsigned int cached = MAX_PAGES;
static const char *dir;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* User + system CPU of the whole process (the library's pump thread too). */
static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double rss(void)
{
	unsigned long size, res = 0;
	FILE *f;

	malloc_trim(0);
	f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (double)res * sysconf(_SC_PAGESIZE);
}

static double heap(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (double)mi.uordblks + (double)mi.hblkhd;
}

/* "Cached:" of /proc/meminfo, in pages. */
static long long meminfo_cached(void)
{
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Cached: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb / 4;
}

static void file_path(char *buf, size_t len, unsigned long i)
{
	snprintf(buf, len, "%s/d%04lu/f%04lu", dir, i / PER_DIR, i % PER_DIR);
}

static unsigned int file_pages(unsigned long i)
{
	return 1 + i % MAX_PAGES;
}

static int create_tree(void)
{
	static char buf[MAX_PAGES * 4096];
	char path[4096];

	memset(buf, 'x', sizeof(buf));
	for (unsigned long i = 0; i < nfiles; i++) {
		size_t len = (size_t)file_pages(i) * 4096;
		int fd;

		if (i % PER_DIR == 0) {
			snprintf(path, sizeof(path), "%s/d%04lu", dir, i / PER_DIR);
			if (mkdir(path, 0755) && errno != EEXIST)
				goto fail;
		}
		file_path(path, sizeof(path), i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			goto fail;
		if (write(fd, buf, len) != (ssize_t)len) {
			close(fd);
			goto fail;
		}
		close(fd);
	}
	return 0;
fail:
	fprintf(stderr, "bench-libduet: %s: %s\n", path, strerror(errno));
	return -1;
}

static int drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "3", 1) != 1) {
		fprintf(stderr, "bench-libduet: drop_caches: %s (run as root)\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Read the first `cached` pages of each file, readahead off. */
static int warm(void)
{
	static char buf[MAX_PAGES * 4096];
	char path[4096];

	for (unsigned long i = 0; i < nfiles; i++) {
		unsigned int p = file_pages(i) < cached ? file_pages(i) : cached;
		int fd;

		if (!p)
			continue;
		file_path(path, sizeof(path), i);
		fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "bench-libduet: %s: %s\n", path, strerror(errno));
			return -1;
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
		if (pread(fd, buf, (size_t)p * 4096, 0) != (ssize_t)p * 4096) {
			fprintf(stderr, "bench-libduet: short read of %s\n", path);
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Cached and dirty pages of the tree, by cachestat() on every file. */
static int cache_sum(uint64_t *pages, uint64_t *dirty, uint64_t *expected)
{
	char path[4096];

	*pages = *dirty = *expected = 0;
	for (unsigned long i = 0; i < nfiles; i++) {
		struct cs_range r = { 0, 0 };
		struct cs_stat cs;
		int fd;

		file_path(path, sizeof(path), i);
		fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "bench-libduet: %s: %s\n", path, strerror(errno));
			return -1;
		}
		if (syscall(__NR_cachestat, fd, &r, &cs, 0)) {
			fprintf(stderr, "bench-libduet: cachestat: %s\n", strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		*pages += cs.nr_cache;
		*dirty += cs.nr_dirty;
		*expected += file_pages(i) < cached ? file_pages(i) : cached;
	}
	return 0;
}

struct reg {
	double wall_new, wall, cpu;
	double rss, heap;
	struct duet_task_status st;
};

/* Register a task and wait for its registration scan to finish. */
static int reg_task(struct duet_session *s, const char *name, uint32_t mask,
		    struct duet_task **t, struct reg *g)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = name, .mask = mask, .path = dir };
	double t0, c0;
	int r;

	t0 = now();
	c0 = cpu();
	r = duet_task_new(s, &to, t);
	if (r) {
		fprintf(stderr, "bench-libduet: duet_task_new(%s): %s\n", name, duet_strerror(r));
		return r;
	}
	g->wall_new = now() - t0;
	for (;;) {
		struct timespec ts = { 0, 2000000 };

		g->st.sz = sizeof(g->st);
		r = duet_task_status(*t, &g->st);
		if (r)
			return r;
		if (g->st.scan_done >= g->st.scan_files)
			break;
		nanosleep(&ts, NULL);
	}
	g->wall = now() - t0;
	g->cpu = cpu() - c0;
	g->rss = rss();
	g->heap = heap();
	return 0;
}

static void print_reg(const char *what, const struct reg *g)
{
	printf("%-44s %10.3f s wall (%.3f s in duet_task_new), %.3f s cpu\n", what, g->wall,
	       g->wall_new, g->cpu);
	printf("%-44s %10" PRIu64 " files scanned, %" PRIu64 " pages pending\n", "", g->st.scan_done,
	       g->st.pending);
}

/* What a run measures, from the tree to the fetch. */
struct bench {
	int keep, single;
	struct duet_session *s;
	struct duet_task *ta, *tb;	/* MODIFIED (not with -s), EXISTS */
	uint64_t pages0;		/* cached before registration (cachestat) */
	long long m0;			/* /proc/meminfo Cached then */
	double r1, h1;			/* RSS and heap of the session alone */
	struct reg ga, gb;		/* the two registrations */
	uint64_t items, fpages, lost, other;	/* what the EXISTS task fetched */
	int json;
	/* -o: the other task, its writer and its fetcher */
	const char *odir;
	struct duet_task *to;
	pthread_t writer, fetcher;
	atomic_bool stop;
	atomic_uint_fast64_t o_written, o_items, o_lost;
	double o_max_fetch;	/* the fetcher's alone */
	int o_err;
};

#define OTHER_PAGES 16384	/* 64 MiB */

/* Rewrites ODIR/other.bin page by page, fsyncs and drops it, again and again. */
static void *other_writer(void *ud)
{
	struct bench *b = ud;
	char path[4096], page[4096];
	int fd;

	memset(page, 0x5a, sizeof(page));
	snprintf(path, sizeof(path), "%s/other.bin", b->odir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		b->o_err = errno;
		return NULL;
	}
	while (!atomic_load(&b->stop)) {
		for (unsigned int i = 0; i < OTHER_PAGES && !atomic_load(&b->stop); i++) {
			if (pwrite(fd, page, sizeof(page), (off_t)i * 4096) != sizeof(page)) {
				b->o_err = errno;
				goto out;
			}
			atomic_fetch_add(&b->o_written, 1);
		}
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
out:
	close(fd);
	unlink(path);
	return NULL;
}

/* Polls the other task and fetches all it has; the longest fetch is kept. */
static void *other_fetcher(void *ud)
{
	static struct duet_item buf[256];
	struct bench *b = ud;
	struct pollfd p = { .fd = duet_task_fd(b->to), .events = POLLIN };

	while (!atomic_load(&b->stop)) {
		double t0;
		int n;

		if (poll(&p, 1, 10) < 0 && errno != EINTR)
			break;
		do {
			t0 = now();
			n = duet_task_fetch(b->to, buf, 256);
			if (now() - t0 > b->o_max_fetch)
				b->o_max_fetch = now() - t0;
			for (int i = 0; i < n; i++)
				if (buf[i].flags & DUET_ITEM_LOST)
					atomic_fetch_add(&b->o_lost, 1);
			if (n > 0)
				atomic_fetch_add(&b->o_items, (uint64_t)n);
		} while (n == 256);
		if (n < 0) {
			b->o_err = -n;
			break;
		}
	}
	return NULL;
}

static int other_start(struct bench *b)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "other",
				     .mask = DUET_ADDED | DUET_REMOVED, .path = b->odir };
	int r = duet_task_new(b->s, &to, &b->to);

	if (r) {
		fprintf(stderr, "bench-libduet: duet_task_new(other, %s): %s\n", b->odir,
			duet_strerror(r));
		return 1;
	}
	if (pthread_create(&b->writer, NULL, other_writer, b) ||
	    pthread_create(&b->fetcher, NULL, other_fetcher, b)) {
		fprintf(stderr, "bench-libduet: pthread_create failed\n");
		return 1;
	}
	return 0;
}

static void other_stop(struct bench *b)
{
	struct timespec ts = { 0, 500000000 };

	nanosleep(&ts, NULL);	/* what the writer did last reaches the task */
	atomic_store(&b->stop, true);
	pthread_join(b->writer, NULL);
	pthread_join(b->fetcher, NULL);
	printf("%-44s %10" PRIu64 " pages written on %s during the registrations\n",
	       "other task's file system", (uint64_t)atomic_load(&b->o_written), b->odir);
	printf("%-44s %10" PRIu64 " items, %" PRIu64 " LOST; longest fetch %.3f s%s%s\n",
	       "other task", (uint64_t)atomic_load(&b->o_items), (uint64_t)atomic_load(&b->o_lost),
	       b->o_max_fetch, b->o_err ? "; error: " : "", b->o_err ? strerror(b->o_err) : "");
	duet_task_free(b->to);
	b->to = NULL;
}

/*
 * The steps of the benchmark: each returns 0, or an exit status after
 * saying why (bench_options: BENCH_GO to go on).
 */
#define BENCH_GO (-1)

static int bench_usage(void)
{
	fprintf(stderr, "usage: bench-libduet [-n NFILES] [-c CACHED] [-k] [-s] [-o ODIR] [-j] DIR\n");
	return 2;
}

static int bench_options(struct bench *b, int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "n:c:kso:j")) != -1) {
		switch (opt) {
		case 'n':
			nfiles = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			cached = strtoul(optarg, NULL, 0);
			break;
		case 'k':
			b->keep = 1;
			break;
		case 's':
			b->single = 1;
			break;
		case 'o':
			b->odir = optarg;
			break;
		case 'j':
			b->json = 1;
			break;
		default:
			return bench_usage();
		}
	}
	if (optind + 1 != argc || !nfiles)
		return bench_usage();
	dir = argv[optind];
	return BENCH_GO;
}

/* The tree made and warmed (unless -k), and what of it is cached. */
static int bench_tree(struct bench *b)
{
	uint64_t dirty0, expect;
	double t0, tc;

	if (!b->keep) {
		t0 = now();
		if (create_tree())
			return 1;
		tc = now() - t0;
		t0 = now();
		if (drop_caches() || warm())
			return 1;
		printf("%-44s %10.1f s create, %.1f s sync+drop+warm\n", "tree", tc, now() - t0);
	}
	if (cache_sum(&b->pages0, &dirty0, &expect))
		return 1;
	b->m0 = meminfo_cached();
	printf("%-44s %10lu files of 1-%d pages in dirs of %d, %" PRIu64 " pages total\n",
	       "tree", nfiles, MAX_PAGES, PER_DIR,
	       (uint64_t)nfiles / MAX_PAGES * (MAX_PAGES * (MAX_PAGES + 1) / 2));
	printf("%-44s %10" PRIu64 " pages (%.2f GiB; %" PRIu64 " expected, %" PRIu64
	       " dirty), first %u of each file\n",
	       "cached before registration (cachestat)", b->pages0, b->pages0 * 4096.0 / (1 << 30),
	       expect, dirty0, cached);
	return 0;
}

/* The session, and what it costs with no task. */
static int bench_session(struct bench *b)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	double r0, h0;
	int r;

	r0 = rss();
	h0 = heap();
	r = duet_session_new(&so, &b->s);
	if (r) {
		fprintf(stderr, "bench-libduet: duet_session_new: %s\n", duet_strerror(r));
		return 1;
	}
	b->r1 = rss();
	b->h1 = heap();
	printf("%-44s %10.1f MiB RSS, %.1f MiB heap\n", "before the session", r0 / 1048576,
	       h0 / 1048576);
	printf("%-44s %10.1f MiB RSS, %.1f MiB heap\n", "session (no task)", b->r1 / 1048576,
	       b->h1 / 1048576);
	return 0;
}

/* The MODIFIED task (unless -s), then the EXISTS task, each with what it costs. */
static int bench_register(struct bench *b)
{
	struct reg *ga = &b->ga, *gb = &b->gb;

	if (!b->single) {
		if (reg_task(b->s, "bench-modified", DUET_MODIFIED, &b->ta, ga))
			return 1;
		print_reg("registration, MODIFIED task (walk + scan)", ga);
		printf("%-44s %10.1f MiB RSS, %.1f MiB heap\n", "after it", ga->rss / 1048576,
		       ga->heap / 1048576);
		printf("%-44s %10.0f B RSS, %.0f B heap (%lu files)\n", "memory per tracked file",
		       (ga->rss - b->r1) / nfiles, (ga->heap - b->h1) / nfiles, nfiles);
	} else {
		ga->rss = b->r1;
		ga->heap = b->h1;
	}
	if (reg_task(b->s, "bench-exists", DUET_EXISTS, &b->tb, gb))
		return 1;
	print_reg(b->single ? "registration, EXISTS task (walk + scan)" :
			      "registration, EXISTS task (scan; index shared)", gb);
	printf("%-44s %10.1f MiB RSS, %.1f MiB heap\n", "after it", gb->rss / 1048576,
	       gb->heap / 1048576);
	if (gb->st.pending)
		printf("%-44s %10.1f B RSS, %.1f B heap (%" PRIu64 " pages)%s\n",
		       "memory per pending page", (gb->rss - ga->rss) / gb->st.pending,
		       (gb->heap - ga->heap) / gb->st.pending, gb->st.pending,
		       b->single ? " incl. the index" : "");
	return 0;
}

/* Everything the EXISTS task queued, in batches of 256; then the MODIFIED
 * task's fetch, which must be empty. */
static int bench_fetch(struct bench *b, struct duet_task_status *stf)
{
	static struct duet_item buf[256];
	const struct reg *ga = &b->ga, *gb = &b->gb;
	double t0, tf, cf, r3, h3;
	int n;

	t0 = now();
	cf = cpu();
	while ((n = duet_task_fetch(b->tb, buf, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			if (buf[i].flags & DUET_ITEM_LOST)
				b->lost++;
			else if (buf[i].state != DUET_ADDED)
				b->other++;
			b->fpages += buf[i].count;
		}
		b->items += n;
	}
	tf = now() - t0;
	cf = cpu() - cf;
	if (n < 0) {
		fprintf(stderr, "bench-libduet: duet_task_fetch: %s\n", duet_strerror(n));
		return 1;
	}
	r3 = rss();
	h3 = heap();
	stf->sz = sizeof(*stf);
	duet_task_status(b->tb, stf);
	if (gb->st.pending && b->items)
		printf("%-44s %10.1f B RSS, %.1f B heap (%" PRIu64 " items)%s\n",
		       "memory per pending item", (gb->rss - ga->rss) / b->items,
		       (gb->heap - ga->heap) / b->items, b->items,
		       b->single ? " incl. the index" : "");
	printf("%-44s %10" PRIu64 " items, %" PRIu64 " pages in %.3f s (%.3f s cpu); "
	       "%" PRIu64 " LOST, %" PRIu64 " not ADDED\n",
	       "fetch (batches of 256)", b->items, b->fpages, tf, cf, b->lost, b->other);
	printf("%-44s %10.2f M items/s, %.2f M pages/s\n", "fetch rate", b->items / tf / 1e6,
	       b->fpages / tf / 1e6);
	printf("%-44s %10.1f MiB RSS, %.1f MiB heap\n", "after the fetch", r3 / 1048576,
	       h3 / 1048576);
	if (b->ta) {
		n = duet_task_fetch(b->ta, buf, 256);
		printf("%-44s %10d items (expected 0: nothing dirty)\n", "MODIFIED task fetch", n);
	}
	return 0;
}

/* The cache after, against what was fetched: 1 if the scan made the
 * cache grow, or a fetched item was LOST or not ADDED. */
static int bench_verdict(struct bench *b, const struct duet_task_status *stf)
{
	uint64_t pages1, dirty1, expect1, pages0 = b->pages0;
	long long m1;

	if (cache_sum(&pages1, &dirty1, &expect1))
		return 1;
	m1 = meminfo_cached();
	printf("%-44s %10" PRIu64 " pages (before: %" PRIu64 "); /proc/meminfo Cached %+lld pages\n",
	       "cached after (cachestat)", pages1, pages0, m1 - b->m0);
	/*
	 * Something else may evict meanwhile (memory pressure; on these VMs a
	 * DAMON pageout scheme): a pending page evicted before the fetch
	 * cancels (EXISTS is state-based), so what is fetched is what is
	 * cached after, and the scan must never make the cache grow.
	 */
	printf("%-44s %10" PRIu64 " pages evicted meanwhile (not by the scan); %" PRIu64
	       " pending pages cancelled\n", "", pages0 > pages1 ? pages0 - pages1 : 0,
	       stf->cancelled);
	printf("%-44s %s\n", "cache grew / pages fetched == cached after",
	       pages1 > pages0 ? "YES: the scan read pages" :
	       b->fpages == pages1 && !b->lost && !b->other ? "no / yes" : "no / NO (mismatch)");
	if (b->fpages != pages1)
		printf("%-44s %10" PRIu64 " fetched, %" PRIu64 " cached after\n", "", b->fpages,
		       pages1);
	return pages1 > pages0 || b->lost || b->other ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct duet_task_status stf = { 0 };
	struct bench b = { 0 };
	int r;

	r = bench_options(&b, argc, argv);
	if (r != BENCH_GO)
		return r;
	if (bench_tree(&b) || bench_session(&b))
		return 1;
	if (b.odir && other_start(&b))
		return 1;
	r = bench_register(&b);
	if (b.odir)
		other_stop(&b);
	if (!r)
		r = bench_fetch(&b, &stf);
	if (!r)
		r = bench_verdict(&b, &stf);
	if (b.json) {
		const struct reg *g = &b.gb;

		printf("{\"register_s\": %.3f, \"walk_s\": %.3f, \"scan_s\": %.3f, "
		       "\"files\": %lu",
		       g->wall, g->wall_new, g->wall - g->wall_new, nfiles);
		if (b.odir)
			printf(", \"other_task_lost\": %" PRIu64 ", \"other_task_items\": %" PRIu64
			       ", \"other_task_max_fetch_s\": %.3f, \"other_events\": %" PRIu64,
			       (uint64_t)b.o_lost, (uint64_t)b.o_items, b.o_max_fetch,
			       (uint64_t)b.o_written);
		printf("}\n");
	}
	duet_task_free(b.ta);
	duet_task_free(b.tb);
	duet_session_free(b.s);
	return r;
}
