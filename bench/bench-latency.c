// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-latency: how long a page event takes to reach a task, not a test
 * (issue 14's figure; scripts/bench-latency wraps it).
 *
 * A writer thread adds pages to the page cache on a loop-mounted ext4,
 * one 4 KiB pwrite() each, noting CLOCK_MONOTONIC (the trace clock)
 * just before each; the ADDED event fires inside that write. A task
 * (mask ADDED) polls its fd and fetches; for each page of each item, the
 * latency is the time duet_task_fetch() returned less the time its write
 * began. Files of 1024 pages are truncated once written (no write-back,
 * no disk space used) and never unlinked, so no inode number is reused.
 *
 * Runs: in-process and through duetd, each at the writer's full speed
 * (the "high" rate; the issue asks about 400k events/s, and the rate
 * reached is printed) and paced at 10k events/s ("low"), SECONDS each;
 * then the consumer's CPU with nothing happening for IDLE seconds (the
 * in-process session's own threads; duetd's, through /proc).
 *
 * A table, then (--json) one JSON object: {"inprocess", "duetd",
 * "inprocess_low", "duetd_low"} each {"p50_ms", "p99_ms", "max_ms",
 * "rate", "pages"} (the in-process ones also "wakeups", the readers'
 * wake-ups per second, and "late", events handed on after their CPU's
 * mark), "idle_cpu_percent" {"inprocess", "duetd"}, "idle_wakeups_per_s"
 * (in-process) and "latency_ms" (the bound asked for; 0: the default).
 *
 * usage: bench-latency DUETD [--json] [-s SECONDS (default 2)] [-i IDLE (default 10)]
 *                            [-L LATENCY_MS (the session's and duetd's bound)]
 * Needs root (loop devices, tracefs, the daemon).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <duet/duet.h>

#include "fsimg.h"
#include "internal.h"	/* duet__session_stats: the readers' wake-ups */

#define FILE_PAGES 1024u
#define MAX_FILES 4096u

struct wfile {
	uint64_t ino;
	uint64_t t[FILE_PAGES];	/* ns: when each page's write began; 0: not yet */
};

static struct wfile *files;
static atomic_uint nfiles;
static atomic_bool writing;
static char dir[300];
static double seconds = 2;
static unsigned int pace;	/* pages per second; 0: full speed */

static uint64_t ns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what)
{
	fprintf(stderr, "bench-latency: %s: %s\n", what, strerror(errno));
	fsimg_cleanup_all();
	exit(1);
}

/* The writer: pages until the run's time is up (or the files run out). */
static void *writer(void *arg)
{
	static char buf[4096];
	uint64_t t0 = ns_now(), end = t0 + (uint64_t)(seconds * 1e9), n = 0;
	static unsigned int serial;

	(void)arg;
	memset(buf, 'l', sizeof(buf));
	while (ns_now() < end && atomic_load(&nfiles) < MAX_FILES) {
		unsigned int k = atomic_load(&nfiles);
		struct wfile *w = &files[k];
		char path[400];
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/f%u", dir, serial++);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || fstat(fd, &st))
			fail(path);
		memset(w, 0, sizeof(*w));
		w->ino = st.st_ino;
		atomic_store(&nfiles, k + 1);	/* the consumer may look it up now */
		for (unsigned int p = 0; p < FILE_PAGES && ns_now() < end; p++) {
			if (pace) {
				uint64_t due = t0 + n * 1000000000u / pace;
				struct timespec ts = { (time_t)(due / 1000000000u),
						       (long)(due % 1000000000u) };

				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
			__atomic_store_n(&w->t[p], ns_now(), __ATOMIC_RELEASE);
			if (pwrite(fd, buf, sizeof(buf), (off_t)p * 4096) != (ssize_t)sizeof(buf))
				fail("pwrite");
			n++;
		}
		/* Gone without write-back: the blocks and the pages. */
		if (ftruncate(fd, 0))
			fail("ftruncate");
		close(fd);
	}
	atomic_store(&writing, false);
	return NULL;
}

static struct wfile *file_of(uint64_t ino)
{
	unsigned int n = atomic_load(&nfiles);

	for (unsigned int i = n; i-- > 0;)
		if (files[i].ino == ino)
			return &files[i];
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double p50, p99, max, rate;
	uint64_t pages;
	double wakeups;		/* per second (in-process) */
	uint64_t late;
};

static unsigned int latency_ms;	/* -L: 0, the default */

/* The in-process session's counters (zeros through duetd). */
static struct duet__session_stats sstats(struct duet_session *s)
{
	struct duet__session_stats st = { 0 };

	duet__session_stats(s, &st);
	return st;
}

/* One run: a task on dir, the writer, latencies of every page's item. */
static struct result run(struct duet_session *s)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "latency", .mask = DUET_ADDED,
				     .path = dir };
	static struct duet_item it[4096];
	size_t cap = 1 << 20, n = 0;
	uint64_t *lat = malloc(cap * sizeof(*lat)), t0, t1;
	struct duet_task *t;
	struct result res = { 0 };
	struct duet__session_stats s0, s1;
	pthread_t th;

	if (!lat || duet_task_new(s, &to, &t))
		fail("task");
	/* The registration scan finds nothing: the directory is empty. */
	usleep(300000);
	while (duet_task_fetch(t, it, 4096) > 0) {
	}
	atomic_store(&nfiles, 0);
	atomic_store(&writing, true);
	s0 = sstats(s);
	t0 = ns_now();
	if (pthread_create(&th, NULL, writer, NULL))
		fail("thread");
	for (uint64_t quiet = 0;;) {
		struct pollfd p = { .fd = duet_task_fd(t), .events = POLLIN };
		int k;

		poll(&p, 1, 50);
		k = duet_task_fetch(t, it, 4096);
		if (k <= 0) {
			/* Done when the writer is, and nothing came for 500 ms. */
			if (!atomic_load(&writing) && (quiet += 50) >= 500)
				break;
			continue;
		}
		quiet = 0;
		t1 = ns_now();
		for (int i = 0; i < k; i++) {
			struct wfile *w = (it[i].state & DUET_ADDED) ? file_of(it[i].ino) : NULL;

			for (uint64_t q = it[i].index; w && q < it[i].index + it[i].count &&
						       q < FILE_PAGES; q++) {
				uint64_t tw = __atomic_load_n(&w->t[q], __ATOMIC_ACQUIRE);

				if (!tw || tw > t1)
					continue;
				if (n == cap) {
					uint64_t *g = realloc(lat, 2 * cap * sizeof(*lat));

					if (!g)
						fail("realloc");
					lat = g;
					cap *= 2;
				}
				lat[n++] = t1 - tw;
			}
		}
	}
	pthread_join(th, NULL);
	s1 = sstats(s);
	res.wakeups = (double)(s1.wakeups - s0.wakeups) / ((double)(ns_now() - t0) / 1e9);
	res.late = s1.late - s0.late;
	duet_task_free(t);
	if (n) {
		qsort(lat, n, sizeof(*lat), cmp_u64);
		res.p50 = (double)lat[n / 2] / 1e6;
		res.p99 = (double)lat[(n * 99) / 100] / 1e6;
		res.max = (double)lat[n - 1] / 1e6;
	}
	res.pages = n;
	res.rate = (double)n / seconds;
	(void)t0;
	free(lat);
	return res;
}

static pid_t daemon_pid;
static char sock[128];

static void start_daemon(const char *duetd)
{
	snprintf(sock, sizeof(sock), "/tmp/duet-bench-latency-%d.sock", (int)getpid());
	daemon_pid = fork();
	if (daemon_pid < 0)
		fail("fork");
	if (!daemon_pid) {
		char lat[32];

		snprintf(lat, sizeof(lat), "%u", latency_ms ? latency_ms : DUET_LATENCY_MS);
		execl(duetd, "duetd", "-s", sock, "-p", "4000000", "--latency-ms", lat,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		struct stat st;

		if (!stat(sock, &st))
			return;
		usleep(50000);
	}
	errno = ETIMEDOUT;
	fail("duetd did not start");
}

/* utime + stime of a process (/proc/PID/stat), in seconds. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The consumer's CPU share with a task registered and nothing happening. */
static double idle_wakeups;	/* in-process, per second */

static double idle_cpu(struct duet_session *s, pid_t pid, double idle)
{
	struct duet__session_stats s0, s1;
	struct duet_task_opts to = { .sz = sizeof(to), .name = "idle", .mask = DUET_ADDED,
				     .path = dir };
	struct duet_task *t;
	double c0, c1;

	if (duet_task_new(s, &to, &t))
		fail("idle task");
	usleep(500000);
	s0 = sstats(s);
	c0 = proc_cpu(pid);
	usleep((useconds_t)(idle * 1e6));
	c1 = proc_cpu(pid);
	s1 = sstats(s);
	if (pid == getpid())
		idle_wakeups = (double)(s1.wakeups - s0.wakeups) / idle;
	duet_task_free(t);
	return 100.0 * (c1 - c0) / idle;
}

/* A session's runs: full speed, 10k/s, then idle (pid: the consumer's process); frees s. */
static void runs(struct duet_session *s, pid_t pid, double idle, struct result *hi,
		 struct result *lo, double *idle_pct)
{
	pace = 0;
	*hi = run(s);
	pace = 10000;
	*lo = run(s);
	*idle_pct = idle_cpu(s, pid, idle);
	duet_session_free(s);
}

static void show(const char *name, const struct result *r, bool local)
{
	printf("%-16s %10.0f %10" PRIu64 " %9.3f %9.3f %9.3f", name, r->rate, r->pages, r->p50,
	       r->p99, r->max);
	if (local)
		printf(" %10.0f %6" PRIu64, r->wakeups, r->late);
	putchar('\n');
}

static void jres(const char *name, const struct result *r, bool local)
{
	printf("\"%s\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"rate\":%.0f,"
	       "\"pages\":%" PRIu64, name, r->p50, r->p99, r->max, r->rate, r->pages);
	if (local)
		printf(",\"wakeups\":%.0f,\"late\":%" PRIu64, r->wakeups, r->late);
	printf("},");
}

int main(int argc, char **argv)
{
	struct duet_session_opts lo = { .sz = sizeof(lo), .flags = DUET_SESSION_LOCAL };
	struct duet_session_opts dopt = { .sz = sizeof(dopt), .flags = DUET_SESSION_DAEMON };
	struct result hi_l, lo_l, hi_d, lo_d;
	struct duet_session *s;
	double idle = 10, idle_l, idle_d;
	bool json = false;
	struct fsimg img;
	const char *duetd;
	int o;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-latency DUETD [--json] [-s SECONDS] [-i IDLE]\n");
		return 2;
	}
	duetd = argv[1];
	for (o = 2; o < argc; o++) {
		if (!strcmp(argv[o], "--json"))
			json = true;
		else if (!strcmp(argv[o], "-s") && o + 1 < argc)
			seconds = atof(argv[++o]);
		else if (!strcmp(argv[o], "-i") && o + 1 < argc)
			idle = atof(argv[++o]);
		else if (!strcmp(argv[o], "-L") && o + 1 < argc)
			latency_ms = (unsigned int)atoi(argv[++o]);
		else
			return 2;
	}
	lo.latency_ms = latency_ms;	/* through duetd: its --latency-ms */
	if (seconds <= 0 || idle <= 0)
		return 2;
	files = calloc(MAX_FILES, sizeof(*files));
	if (!files)
		fail("calloc");
	snprintf(dir, sizeof(dir), "/tmp/duet-bench-latency-%d", (int)getpid());
	if (fsimg_make(&img, "ext4", 256, dir))
		fail("loop ext4");
	if (duet_session_new(&lo, &s))
		fail("in-process session");
	runs(s, getpid(), idle, &hi_l, &lo_l, &idle_l);
	start_daemon(duetd);
	dopt.socket = sock;
	if (duet_session_new(&dopt, &s))
		fail("duetd session");
	runs(s, daemon_pid, idle, &hi_d, &lo_d, &idle_d);
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
	fsimg_destroy(&img);
	printf("latency bound asked for: %u ms\n", latency_ms ? latency_ms : DUET_LATENCY_MS);
	printf("%-16s %10s %10s %9s %9s %9s %10s %6s\n", "run", "pages/s", "pages", "p50_ms",
	       "p99_ms", "max_ms", "wakeups/s", "late");
	show("inprocess", &hi_l, true);
	show("inprocess_low", &lo_l, true);
	show("duetd", &hi_d, false);
	show("duetd_low", &lo_d, false);
	printf("idle over %.0f s: CPU in-process %.2f%%, duetd %.2f%%; in-process reader "
	       "wake-ups %.1f/s\n", idle, idle_l, idle_d, idle_wakeups);
	if (json) {
		putchar('{');
		jres("inprocess", &hi_l, true);
		jres("inprocess_low", &lo_l, true);
		jres("duetd", &hi_d, false);
		jres("duetd_low", &lo_d, false);
		printf("\"idle_cpu_percent\":{\"inprocess\":%.3f,\"duetd\":%.3f},"
		       "\"idle_wakeups_per_s\":%.1f,\"latency_ms\":%u}\n", idle_l, idle_d,
		       idle_wakeups, latency_ms);
	}
	return 0;
}
