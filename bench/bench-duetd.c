// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-duetd: figures for duetd against the running kernel, not a test.
 *
 * Two loop-mounted ext4 file systems, A (the workload's) and B (another).
 * The workload, on A: files of 4 MiB written with 4 KiB writes, fsynced,
 * dropped (fadvise DONTNEED), read back, dropped, unlinked: every page is
 * ADDED, DIRTY, FLUSHED, REMOVED, ADDED and REMOVED once.
 *
 * Runs:
 *  - no duetd: the workload's throughput alone;
 *  - duetd with one task on B: the cost of a daemon watching another file
 *    system (its kernel filters drop A's events);
 *  - duetd with 1, 8 and 64 tasks on A (masks ADDED|REMOVED|DIRTY|FLUSHED,
 *    so every fetch has items to carry), fetched by one client thread
 *    polling every task's fd, 256 items per fetch;
 *  - delivery alone: 32768 one-page items (every other page of a file
 *    cached) fetched after an EXISTS task's registration scan, in-process
 *    and through duetd: items per second over the socket.
 * For each: workload MB/s (bytes written plus read, over its wall time),
 * duetd's CPU time (all its threads, the schedstat of each of its tasks) per page event that
 * reached one task (the engine's count), its context switches (all its
 * threads, voluntary and not), its resident memory (VmRSS at
 * the end, VmHWM peak), and the items and pages delivered over the socket
 * per second of the run.
 *
 * Pending memory: 64 tasks that do not fetch while MiB of files are
 * written and fsynced (every page one pending entry for all 64): duetd's
 * VmRSS growth per pending page. The entry table doubles at load 3/4, so
 * this figure moves with the page count (the table alone is 43-85 B a
 * page between two doublings; MiB 256 ends at load 1/2).
 *
 * Several DUETD binaries (an old and a new build) are run in every
 * repeat, in alternating order, so that they are compared on the same
 * machine load.
 *
 * usage: bench-duetd DUETD... [--json] [-m MIB (default 256)] [-r REPEATS (default 3)]
 *                    [-t TASKS (default 1,8,64: only these runs on A)]
 * -t leaves out the runs other than those with tasks on A (no duetd,
 * another fs, delivery, pending memory unless 64 is among them).
 * --json: the last line is one JSON object: ns_per_event_1, _8, _64 and
 * bytes_per_pending_page_64, medians over the repeats, of the last DUETD;
 * with several DUETDs also "duetd": [the same for each, in order].
 * Needs root (loop devices, the daemon).
 */
#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <duet/duet.h>

#include "fsimg.h"

#define FILE_MB 4
#define MAX_TASKS 64
#define MAX_DUETD 4
#define MAX_REPEATS 64

static char sock[128];
static pid_t daemon_pid;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-duetd: %s: %s\n", what, strerror(errno));
	if (daemon_pid > 0)
		kill(daemon_pid, SIGTERM);
	fsimg_cleanup_all();
	exit(1);
}

/* The workload: MiB of files on dir; returns MB/s (written + read). */
static double workload(const char *dir, unsigned int mib)
{
	static char buf[4096];
	double t0 = now();

	memset(buf, 'w', sizeof(buf));
	for (unsigned int f = 0; f < mib / FILE_MB; f++) {
		char path[512];
		int fd;

		snprintf(path, sizeof(path), "%s/w%u", dir, f);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die(path);
		for (int p = 0; p < FILE_MB * 256; p++)
			if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				die("write");
		if (fsync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
			die("fsync");
		if (lseek(fd, 0, SEEK_SET))
			die("lseek");
		while (read(fd, buf, sizeof(buf)) > 0) {
		}
		if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
			die("fadvise");
		close(fd);
		unlink(path);
	}
	return 2.0 * mib * 1.048576 / (now() - t0);
}

static int start_daemon(const char *duetd)
{
	struct stat st;

	snprintf(sock, sizeof(sock), "/tmp/duet-bench-duetd-%d.sock", (int)getpid());
	daemon_pid = fork();
	if (daemon_pid < 0)
		die("fork");
	if (!daemon_pid) {
		execl(duetd, "duetd", "-s", sock, "-p", "4000000", "-u", "64", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		if (!stat(sock, &st))
			return 0;
		usleep(50000);
	}
	errno = ETIMEDOUT;
	die("duetd did not start");
	return -1;
}

static void stop_daemon(void)
{
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
	daemon_pid = 0;
}

/*
 * Over all of duetd's threads: the sum of what count() finds in each
 * one's /proc/PID/task/TID/<file>, read line by line.
 */
static double daemon_threads_sum(const char *file, double (*count)(const char *line))
{
	char path[320], line[128];
	double sum = 0;
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)daemon_pid);
	dir = opendir(path);
	if (!dir)
		die("task");
	while ((de = readdir(dir))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", (int)daemon_pid, de->d_name,
			 file);
		f = fopen(path, "re");
		while (f && fgets(line, sizeof(line), f))
			sum += count(line);
		if (f)
			fclose(f);
	}
	closedir(dir);
	return sum;
}

/* schedstat's first field: on-CPU nanoseconds, as seconds. */
static double schedstat_cpu(const char *line)
{
	unsigned long long ns;

	return sscanf(line, "%llu", &ns) == 1 ? (double)ns / 1e9 : 0;
}

/* status's context switches, voluntary and not. */
static double status_ctxsw(const char *line)
{
	unsigned long long n;

	if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1 ||
	    sscanf(line, "nonvoluntary_ctxt_switches: %llu", &n) == 1)
		return (double)n;
	return 0;
}

/* On-CPU time of all of duetd's threads. */
static double daemon_cpu(void)
{
	return daemon_threads_sum("schedstat", schedstat_cpu);
}

/* Context switches of all of duetd's threads. */
static uint64_t daemon_ctxsw(void)
{
	return (uint64_t)daemon_threads_sum("status", status_ctxsw);
}

static void daemon_mem(uint64_t *rss, uint64_t *hwm)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	f = fopen(path, "re");
	if (!f)
		die("status");
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %" SCNu64, rss);
		sscanf(line, "VmHWM: %" SCNu64, hwm);
	}
	fclose(f);
}

struct client {
	struct duet_task *t[MAX_TASKS];
	int n;
	atomic_bool stop;
	uint64_t items, pages;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct pollfd pfd[MAX_TASKS];
	struct duet_item it[256];

	for (int i = 0; i < c->n; i++) {
		pfd[i].fd = duet_task_fd(c->t[i]);
		pfd[i].events = POLLIN;
	}
	while (!atomic_load(&c->stop)) {
		if (poll(pfd, (nfds_t)c->n, 50) <= 0)
			continue;
		for (int i = 0; i < c->n; i++) {
			int r;

			if (!(pfd[i].revents & POLLIN))
				continue;
			while ((r = duet_task_fetch(c->t[i], it, 256)) > 0) {
				c->items += (uint64_t)r;
				for (int k = 0; k < r; k++)
					c->pages += it[k].count;
			}
		}
	}
	return NULL;
}

static void log_cb(void *ud, int level, const char *msg)
{
	fprintf(stderr, "bench-duetd: %s\n", msg);
}

/* One run with ntasks on dir (NULL: no daemon); returns duetd's ns per event. */
static double run(const char *duetd, const char *watch, const char *work, int ntasks,
		  unsigned int mib, const char *label)
{
	struct duet_session_opts so = { .sz = sizeof(so), .flags = DUET_SESSION_DAEMON,
					.log = log_cb };
	struct duet_session *s = NULL;
	struct client c = { .n = ntasks };
	double mbs, t0, cpu0 = 0, cpu1, wall;
	uint64_t cs0, cs1;
	struct duet_task_status st = { .sz = sizeof(st) };
	uint64_t rss = 0, hwm = 0;
	double ns;
	pthread_t th;
	int r;

	if (!watch) {
		mbs = workload(work, mib);
		printf("%-28s %8.1f MB/s\n", label, mbs);
		return 0;
	}
	start_daemon(duetd);
	so.socket = sock;
	r = duet_session_new(&so, &s);
	if (r) {
		fprintf(stderr, "bench-duetd: session: %s\n", duet_strerror(r));
		stop_daemon();
		exit(1);
	}
	for (int i = 0; i < ntasks; i++) {
		struct duet_task_opts to = { .sz = sizeof(to), .name = "bench",
					     .mask = DUET_ADDED | DUET_REMOVED | DUET_DIRTY |
						     DUET_FLUSHED,
					     .path = watch };

		r = duet_task_new(s, &to, &c.t[i]);
		if (r) {
			fprintf(stderr, "bench-duetd: task %d: %s\n", i, duet_strerror(r));
			stop_daemon();
			exit(1);
		}
	}
	pthread_create(&th, NULL, client_main, &c);
	usleep(300000);		/* registration scans done */
	cpu0 = daemon_cpu();
	cs0 = daemon_ctxsw();
	t0 = now();
	mbs = workload(work, mib);
	/* Let the daemon and the client catch up: the last batch, then idle. */
	for (uint64_t last = ~0ull; ; usleep(300000)) {
		duet_task_status(c.t[0], &st);
		if (st.events == last && !st.pending)
			break;
		last = st.events;
	}
	wall = now() - t0;
	cpu1 = daemon_cpu();
	cs1 = daemon_ctxsw();
	daemon_mem(&rss, &hwm);
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	duet_task_status(c.t[0], &st);
	ns = st.events ? (cpu1 - cpu0) * 1e9 / (double)st.events : 0.0;
	printf("%-28s %8.1f MB/s  duetd %6.0f ns/event (%" PRIu64 " events, %.2f s CPU, "
	       "%" PRIu64 " context switches)  RSS %" PRIu64 " KiB (peak %" PRIu64 " KiB)  "
	       "%.0f items/s, %.0f pages/s, lost %" PRIu64 "\n",
	       label, mbs, ns, st.events, cpu1 - cpu0, cs1 - cs0, rss, hwm,
	       (double)c.items / wall, (double)c.pages / wall, st.lost);
	for (int i = 0; i < ntasks; i++)
		duet_task_free(c.t[i]);
	duet_session_free(s);
	stop_daemon();
	return ns;
}

/*
 * Pending memory: ntasks that never fetch, MiB of files written and
 * fsynced on work (each page ADDED, DIRTY, FLUSHED: one pending entry
 * for every task); duetd's RSS growth per pending page. The files are
 * removed afterwards, once duetd is gone.
 */
static double pending_mem(const char *duetd, const char *work, int ntasks, unsigned int mib)
{
	struct duet_session_opts so = { .sz = sizeof(so), .flags = DUET_SESSION_DAEMON,
					.log = log_cb };
	struct duet_task_status st = { .sz = sizeof(st) };
	struct duet_task *t[MAX_TASKS];
	static char buf[1 << 16];
	uint64_t rss0 = 0, rss1 = 0, hwm = 0;
	struct duet_session *s;
	double bytes;
	char path[512];
	int r;

	start_daemon(duetd);
	so.socket = sock;
	r = duet_session_new(&so, &s);
	for (int i = 0; !r && i < ntasks; i++) {
		struct duet_task_opts to = { .sz = sizeof(to), .name = "pending",
					     .mask = DUET_ADDED | DUET_REMOVED | DUET_DIRTY |
						     DUET_FLUSHED,
					     .path = work };

		r = duet_task_new(s, &to, &t[i]);
	}
	if (r) {
		fprintf(stderr, "bench-duetd: pending: %s\n", duet_strerror(r));
		stop_daemon();
		exit(1);
	}
	usleep(300000);
	daemon_mem(&rss0, &hwm);
	memset(buf, 'p', sizeof(buf));
	for (unsigned int f = 0; f < mib / FILE_MB; f++) {
		int fd;

		snprintf(path, sizeof(path), "%s/p%u", work, f);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die(path);
		for (int k = 0; k < FILE_MB * 16; k++)
			if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				die("write");
		if (fsync(fd))
			die("fsync");
		close(fd);
	}
	for (uint64_t last = ~0ull; ; usleep(300000)) {
		duet_task_status(t[0], &st);
		if (st.events == last)
			break;
		last = st.events;
	}
	daemon_mem(&rss1, &hwm);
	bytes = st.pending ? (double)(rss1 - rss0) * 1024.0 / (double)st.pending : 0.0;
	printf("%-28s %8.1f B per pending page (%" PRIu64 " pages pending for each of %d tasks, "
	       "RSS +%" PRIu64 " KiB), lost %" PRIu64 "\n",
	       "pending memory, 64 tasks", bytes, st.pending, ntasks, rss1 - rss0, st.lost);
	for (int i = 0; i < ntasks; i++)
		duet_task_free(t[i]);
	duet_session_free(s);
	stop_daemon();
	for (unsigned int f = 0; f < mib / FILE_MB; f++) {
		snprintf(path, sizeof(path), "%s/p%u", work, f);
		unlink(path);
	}
	return bytes;
}

/*
 * Delivery alone: every other page of a 128 MiB file cached (32768 items
 * of one page), an EXISTS task registered on it, the time to fetch them
 * all after the scan, in-process and through duetd.
 */
static void delivery(const char *duetd, const char *dir, bool through_daemon)
{
	struct duet_session_opts so = { .sz = sizeof(so), .log = log_cb,
					.flags = through_daemon ? DUET_SESSION_DAEMON :
								  DUET_SESSION_LOCAL };
	struct duet_task_opts to = { .sz = sizeof(to), .name = "delivery", .mask = DUET_EXISTS,
				     .path = dir };
	struct duet_task_status st = { .sz = sizeof(st) };
	static char page[4096];
	struct duet_item it[256];
	struct duet_session *s;
	struct duet_task *t;
	uint64_t items = 0, pages = 0;
	char path[512];
	double t0, dt;
	int fd, r;

	snprintf(path, sizeof(path), "%s/delivery", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path);
	for (int i = 0; i < 32768; i++)
		if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
			die("write");
	if (fsync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) ||
	    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM))
		die("fadvise");
	for (int i = 0; i < 32768; i += 2)
		if (pread(fd, page, sizeof(page), (off_t)i * 4096) != (ssize_t)sizeof(page))
			die("pread");
	if (through_daemon) {
		start_daemon(duetd);
		so.socket = sock;
	}
	r = duet_session_new(&so, &s);
	if (!r)
		r = duet_task_new(s, &to, &t);
	if (r) {
		fprintf(stderr, "bench-duetd: delivery: %s\n", duet_strerror(r));
		exit(1);
	}
	do {
		usleep(20000);
		duet_task_status(t, &st);
	} while (st.scan_done < st.scan_files || !st.scan_files);
	t0 = now();
	while ((r = duet_task_fetch(t, it, 256)) > 0) {
		items += (uint64_t)r;
		for (int k = 0; k < r; k++)
			pages += it[k].count;
	}
	dt = now() - t0;
	printf("%-28s %8.0f items/s (%" PRIu64 " items, %" PRIu64 " pages, 256 per fetch)\n",
	       through_daemon ? "fetch through duetd" : "fetch in-process", (double)items / dt,
	       items, pages);
	duet_task_free(t);
	duet_session_free(s);
	if (through_daemon)
		stop_daemon();
	close(fd);
	unlink(path);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned int n)
{
	double t[MAX_REPEATS];

	if (!n)
		return 0;
	memcpy(t, v, n * sizeof(*v));
	qsort(t, n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Figures per DUETD binary and repeat. */
struct figures {
	double ns[3][MAX_REPEATS];	/* 1, 8, 64 tasks */
	double bytes64[MAX_REPEATS];
};

static const int counts[3] = { 1, 8, 64 };

static void json_one(const struct figures *f, unsigned int repeats, bool want[3], bool mem)
{
	for (int k = 0; k < 3; k++) {
		if (want[k])
			printf("\"ns_per_event_%d\": %.1f, ", counts[k], median(f->ns[k], repeats));
		else
			printf("\"ns_per_event_%d\": null, ", counts[k]);
	}
	if (want[0] && want[2])
		printf("\"ratio_64_1\": %.2f, ", median(f->ns[2], repeats) / median(f->ns[0], repeats));
	if (mem)
		printf("\"bytes_per_pending_page_64\": %.1f", median(f->bytes64, repeats));
	else
		printf("\"bytes_per_pending_page_64\": null");
}

int main(int argc, char **argv)
{
	static struct figures fig[MAX_DUETD];
	struct fsimg a, b;
	unsigned int mib = 256, repeats = 3, nduetd;
	char ma[128], mb[128], wa[160], wb[160];
	bool want[3] = { true, true, true }, only = false, json = false, mem;
	const char *duetd[MAX_DUETD];
	int opt;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json")) {
			json = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	while ((opt = getopt(argc, argv, "m:r:t:")) != -1) {
		if (opt == 'm') {
			mib = (unsigned int)atoi(optarg);
		} else if (opt == 'r') {
			repeats = (unsigned int)atoi(optarg);
		} else if (opt == 't') {
			char *save = NULL;

			only = true;
			want[0] = want[1] = want[2] = false;
			for (char *tok = strtok_r(optarg, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				int n = atoi(tok), k;

				for (k = 0; k < 3 && counts[k] != n; k++) {
				}
				if (k == 3)
					goto usage;
				want[k] = true;
			}
		} else {
			goto usage;
		}
	}
	nduetd = (unsigned int)(argc - optind);
	if (!nduetd || nduetd > MAX_DUETD || mib < FILE_MB || !repeats || repeats > MAX_REPEATS)
		goto usage;
	for (unsigned int i = 0; i < nduetd; i++)
		duetd[i] = argv[optind + i];
	mem = want[2];
	if (geteuid()) {
		fprintf(stderr, "bench-duetd: run as root\n");
		return 1;
	}
	snprintf(ma, sizeof(ma), "/tmp/duet-bench-duetd-A-%d", (int)getpid());
	snprintf(mb, sizeof(mb), "/tmp/duet-bench-duetd-B-%d", (int)getpid());
	if (fsimg_make(&a, "ext4", mib + 256, ma) || fsimg_make(&b, "ext4", 64, mb))
		die("loop file systems");
	snprintf(wa, sizeof(wa), "%s/w", ma);
	snprintf(wb, sizeof(wb), "%s/w", mb);
	mkdir(wa, 0755);
	mkdir(wb, 0755);
	printf("bench-duetd: %u MiB per run in %d MiB files (4 KiB writes, fsync, drop, read, drop), "
	       "ext4 on loop, kernel events through duetd; %u repeats\n",
	       mib, FILE_MB, repeats);
	for (unsigned int i = 0; i < repeats; i++) {
		for (unsigned int j = 0; j < nduetd; j++) {
			/* Alternating order: the first binary first in even repeats. */
			unsigned int x = i % 2 ? nduetd - 1 - j : j;
			const char *dd = duetd[x];

			if (nduetd > 1)
				printf("-- repeat %u, %s\n", i + 1, dd);
			else
				printf("-- repeat %u\n", i + 1);
			if (!only) {
				run(dd, NULL, wa, 0, mib, "no duetd");
				run(dd, wb, wa, 1, mib, "duetd, 1 task on another fs");
			}
			for (int k = 0; k < 3; k++) {
				char label[64];

				if (!want[k])
					continue;
				snprintf(label, sizeof(label), "duetd, %d task%s on this fs", counts[k],
					 counts[k] > 1 ? "s" : "");
				fig[x].ns[k][i] = run(dd, wa, wa, counts[k], mib, label);
			}
			if (mem)
				fig[x].bytes64[i] = pending_mem(dd, wa, 64, mib);
			if (!only) {
				delivery(dd, wa, false);
				delivery(dd, wa, true);
			}
		}
	}
	fsimg_destroy(&b);
	fsimg_destroy(&a);
	rmdir(mb);
	rmdir(ma);
	printf("-- medians of %u repeats\n", repeats);
	printf("%-40s %10s %10s %10s %8s %14s\n", "duetd", "1 task", "8 tasks", "64 tasks", "64 / 1",
	       "B/pending (64)");
	for (unsigned int j = 0; j < nduetd; j++) {
		char c[3][16];

		for (int k = 0; k < 3; k++)
			snprintf(c[k], sizeof(c[k]), want[k] ? "%.0f ns" : "-", median(fig[j].ns[k], repeats));
		printf("%-40s %10s %10s %10s %8.2f %14.1f\n", duetd[j], c[0], c[1], c[2],
		       want[0] && want[2] ? median(fig[j].ns[2], repeats) / median(fig[j].ns[0], repeats) : 0.0,
		       mem ? median(fig[j].bytes64, repeats) : 0.0);
	}
	if (json) {
		printf("{");
		json_one(&fig[nduetd - 1], repeats, want, mem);
		if (nduetd > 1) {
			printf(", \"duetd\": [");
			for (unsigned int j = 0; j < nduetd; j++) {
				printf("%s{\"path\": \"%s\", ", j ? ", " : "", duetd[j]);
				json_one(&fig[j], repeats, want, mem);
				printf("}");
			}
			printf("]");
		}
		printf("}\n");
	}
	return 0;
usage:
	fprintf(stderr, "usage: bench-duetd DUETD... [--json] [-m MIB] [-r REPEATS] [-t 1,8,64]\n");
	return 2;
}
