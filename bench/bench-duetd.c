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
 * reached one task (the engine's count), its resident memory (VmRSS at
 * the end, VmHWM peak), and the items and pages delivered over the socket
 * per second of the run.
 *
 * usage: bench-duetd DUETD [-m MIB (default 256)] [-r REPEATS (default 3)]
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

/* On-CPU time of all of duetd's threads (schedstat: nanoseconds). */
static double daemon_cpu(void)
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
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)daemon_pid, de->d_name);
		f = fopen(path, "re");
		if (f && fgets(line, sizeof(line), f) && sscanf(line, "%llu", &ns) == 1)
			sum += (double)ns / 1e9;
		if (f)
			fclose(f);
	}
	closedir(dir);
	return sum;
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

/* One run with ntasks on dir (NULL: no daemon). */
static void run(const char *duetd, const char *watch, const char *work, int ntasks,
		unsigned int mib, const char *label)
{
	struct duet_session_opts so = { .sz = sizeof(so), .flags = DUET_SESSION_DAEMON,
					.log = log_cb };
	struct duet_session *s = NULL;
	struct client c = { .n = ntasks };
	double mbs, t0, cpu0 = 0, cpu1, wall;
	struct duet_task_status st = { .sz = sizeof(st) };
	uint64_t rss = 0, hwm = 0;
	pthread_t th;
	int r;

	if (!watch) {
		mbs = workload(work, mib);
		printf("%-28s %8.1f MB/s\n", label, mbs);
		return;
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
	daemon_mem(&rss, &hwm);
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	duet_task_status(c.t[0], &st);
	printf("%-28s %8.1f MB/s  duetd %6.0f ns/event (%" PRIu64 " events, %.2f s CPU)  "
	       "RSS %" PRIu64 " KiB (peak %" PRIu64 " KiB)  %.0f items/s, %.0f pages/s, lost %" PRIu64
	       "\n",
	       label, mbs, st.events ? (cpu1 - cpu0) * 1e9 / (double)st.events : 0.0, st.events,
	       cpu1 - cpu0, rss, hwm, (double)c.items / wall, (double)c.pages / wall, st.lost);
	for (int i = 0; i < ntasks; i++)
		duet_task_free(c.t[i]);
	duet_session_free(s);
	stop_daemon();
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

int main(int argc, char **argv)
{
	struct fsimg a, b;
	unsigned int mib = 256, repeats = 3;
	char ma[128], mb[128], wa[160], wb[160];
	const char *duetd;
	int opt;

	while ((opt = getopt(argc, argv, "m:r:")) != -1) {
		if (opt == 'm')
			mib = (unsigned int)atoi(optarg);
		else if (opt == 'r')
			repeats = (unsigned int)atoi(optarg);
		else
			goto usage;
	}
	if (optind + 1 != argc || mib < FILE_MB)
		goto usage;
	duetd = argv[optind];
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
		printf("-- repeat %u\n", i + 1);
		run(duetd, NULL, wa, 0, mib, "no duetd");
		run(duetd, wb, wa, 1, mib, "duetd, 1 task on another fs");
		run(duetd, wa, wa, 1, mib, "duetd, 1 task on this fs");
		run(duetd, wa, wa, 8, mib, "duetd, 8 tasks on this fs");
		run(duetd, wa, wa, 64, mib, "duetd, 64 tasks on this fs");
		delivery(duetd, wa, false);
		delivery(duetd, wa, true);
	}
	fsimg_destroy(&b);
	fsimg_destroy(&a);
	rmdir(mb);
	rmdir(ma);
	return 0;
usage:
	fprintf(stderr, "usage: bench-duetd DUETD [-m MIB] [-r REPEATS]\n");
	return 2;
}
