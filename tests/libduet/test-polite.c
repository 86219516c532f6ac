// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Cache-polite tasks (DUET_TASK_POLITE), in-process: the pages this
 * process brings in and every task watching cached pages marked done are
 * dropped again; pages cached before, pages another process read in,
 * pages another process dirtied stay; a file a second task has not
 * finished stays until it has; a task watching only DIRTY holds nothing back;
 * while another duet process runs (its tracing instance exists) nothing is
 * dropped, and once it has gone the pages go; without a polite task
 * nothing is dropped.
 *
 * This VM's DAMON pageout scheme evicts idle page cache now and then
 * (FACTS.md), a page or two of a region at a time. A "kept" check
 * accepts at most two pages missing, none extra, of a file of which it
 * keeps at least 8 pages, and only when DAMON applied its scheme during
 * the case (its nr_applied grew): a wrong drop takes every page the
 * tools brought in, which this never excuses. Residency is read with
 * cachestat page by page, and every expected set is exact.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "libduet-test.h"

#define NP 16	/* pages per file */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The cached pages of path, as a bit string "1111000..." of NP pages. */
static void res_str(const char *path, char *out)
{
	uint8_t bits[MAXP];

	resident(path, bits);
	for (int i = 0; i < NP; i++)
		out[i] = bits[i] ? '1' : '0';
	out[NP] = '\0';
}

/* Wait up to ms for path's residency to be want; the residency at the end. */
static void wait_res(const char *path, const char *want, int ms, char *got)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		res_str(path, got);
		if (!strcmp(got, want))
			return;
		usleep(10000);
	} while (now_ms() < end);
}

/* Fetch t's items into g until npages distinct pages of ino in state st came. */
static int wait_pages(struct duet_task *t, struct got *g, uint64_t ino, uint32_t st, int npages)
{
	uint64_t end = now_ms() + 5000;
	uint8_t bits[MAXP];

	g->n = 0;
	do {
		int n = duet_task_fetch(t, g->it + g->n, 4096 - g->n), k = 0;

		if (n < 0)
			die("fetch: %s", duet_strerror(n));
		g->n += (size_t)n;
		pages(g, ino, st, bits);
		for (int i = 0; i < MAXP; i++)
			k += bits[i];
		if (k >= npages)
			return k;
		usleep(5000);
	} while (now_ms() < end);
	return -1;
}

/* Another process reads pages [first, first + n) of path, one by one, no readahead. */
static void other_reads(const char *path, int first, int n)
{
	pid_t p = fork();

	if (p < 0)
		die("fork: %s", strerror(errno));
	if (!p) {
		char buf[4096];
		int fd = open(path, O_RDONLY);

		if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM))
			_exit(1);
		for (int i = first; i < first + n; i++)
			if (pread(fd, buf, sizeof(buf), (off_t)i * 4096) != (ssize_t)sizeof(buf))
				_exit(1);
		_exit(0);
	}
	if (waitpid(p, NULL, 0) != p)
		die("waitpid");
}

/* Another process writes page pg of path and writes it back. */
static void other_dirties(const char *path, int pg)
{
	pid_t p = fork();

	if (p < 0)
		die("fork: %s", strerror(errno));
	if (!p) {
		char buf[4096];
		int fd = open(path, O_WRONLY);

		memset(buf, 'z', sizeof(buf));
		if (fd < 0 || pwrite(fd, buf, sizeof(buf), (off_t)pg * 4096) != (ssize_t)sizeof(buf) ||
		    fdatasync(fd))
			_exit(1);
		_exit(0);
	}
	if (waitpid(p, NULL, 0) != p)
		die("waitpid");
}

/* A live process's start time (/proc/PID/stat field 22), as duet names instances. */
static unsigned long long starttime(pid_t pid)
{
	char path[64], buf[1024], *q;
	unsigned long long v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		die("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	q = strrchr(buf, ')');
	for (int field = 2; q && field < 22; field++)
		q = strchr(q + 1, ' ');
	if (!q || sscanf(q + 1, "%llu", &v) != 1)
		die("%s: no start time", path);
	return v;
}

/* DAMON scheme 0's nr_applied (0 without DAMON). */
static unsigned long long damon_applied(void)
{
	const char *k = "/sys/kernel/mm/damon/admin/kdamonds/0";
	char path[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/state", k);
	f = fopen(path, "we");
	if (!f)
		return 0;
	fputs("update_schemes_stats", f);
	if (fclose(f))
		return 0;
	snprintf(path, sizeof(path), "%s/contexts/0/schemes/0/stats/nr_applied", k);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* A kept file's residency got against want (see the top); d0: damon_applied() before. */
static bool kept(const char *got, const char *want, unsigned long long d0)
{
	int missing = 0, extra = 0, wanted = 0;

	if (!strcmp(got, want))
		return true;
	for (int i = 0; i < NP; i++) {
		wanted += want[i] == '1';
		missing += want[i] == '1' && got[i] == '0';
		extra += want[i] == '0' && got[i] == '1';
	}
	if (extra || missing > 2 || wanted < 8 || damon_applied() <= d0)
		return false;
	printf("# DAMON paged out %d page(s) of a kept file meanwhile (%s for %s)\n", missing,
	       got, want);
	return true;
}

/*
 * Another live duet process (its tracing instance duet-PID-START): a
 * polite session then holds its drops by design, and the drop checks
 * cannot be made.
 */
static bool other_duet(void)
{
	DIR *d = opendir("/sys/kernel/tracing/instances");
	struct dirent *de;
	bool found = false;
	int pid;

	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		if (sscanf(de->d_name, "duet-%d-", &pid) == 1 && pid != (int)getpid() &&
		    !kill(pid, 0))
			found = true;
	closedir(d);
	return found;
}

#define CHECK_KEPT(got, want, d0)						\
	CHECK(kept(got, want, d0), "kept: \"%s\", expected \"%s\"", got, want)

static struct duet_task *task(struct duet_session *s, const char *name, uint32_t mask,
			      const char *path, uint64_t flags)
{
	struct duet_task_opts o = { .sz = sizeof(o), .name = name, .mask = mask, .path = path,
				    .flags = flags };
	struct duet_task *t;
	int r = duet_task_new(s, &o, &t);

	if (r)
		die("task %s: %s", name, duet_strerror(r));
	return t;
}

static void done(struct duet_task *t, const char *path)
{
	struct duet_fileid f;
	int r = duet_task_fileid(t, path, &f);

	if (!r)
		r = duet_task_set_done(t, &f, 0, 0);
	if (r)
		die("done %s: %s", path, duet_strerror(r));
}

int main(int argc, char **argv)
{
	static struct got g;
	struct duet_session *s;
	struct duet_task *ta, *tb, *tm, *tn;
	struct duet_task_opts bad;
	char p[7][300], got[NP + 1], before[NP + 1], inst[300];
	uint64_t ino[7];
	unsigned long long d0;
	pid_t other;
	struct lt t;

	lt_setup(&t, "polite", argc, argv);
	for (int i = 0; i < 7; i++) {
		snprintf(p[i], sizeof(p[i]), "%s/%c", t.root, 'a' + i);
		ino[i] = make_file(p[i], NP, 1);
		drop(p[i]);
	}
	/* a: cached before the tasks came. */
	readall(p[0]);

	s = lt_session_or_skip(NULL);
	if (other_duet()) {
		printf("SKIP: another duet process runs; polite drops wait for it (by design)\n");
		lt_session_free(s);
		lt_finish(&t);
		return TEST_SKIP;
	}
	/* A flag this library does not know is refused. */
	bad = (struct duet_task_opts){ .sz = sizeof(bad), .mask = DUET_EXISTS, .path = t.root,
				       .flags = 0x2 };
	CHECK_EQ(duet_task_new(s, &bad, &tn), -EINVAL);
	ta = task(s, "a", DUET_EXISTS, t.root, DUET_TASK_POLITE);
	tb = task(s, "b", DUET_EXISTS, t.root, DUET_TASK_POLITE);
	/* Dirtiness only: never marks done, and does not hold pages back. */
	tm = task(s, "m", DUET_DIRTY, t.root, 0);
	wait_scan(ta);
	wait_scan(tb);
	wait_scan(tm);

	/* b: read by this process, done for both: dropped (at the ADDED or at the mark). */
	readall(p[1]);
	done(ta, p[1]);
	done(tb, p[1]);
	wait_res(p[1], "0000000000000000", 5000, got);
	CHECK_STR(got, "0000000000000000");
	printf("ok pages brought in and done by all: dropped\n");

	/* c: another process read pages 0-7 in first; this one the rest. */
	d0 = damon_applied();
	other_reads(p[2], 0, 8);
	readall(p[2]);
	done(ta, p[2]);
	done(tb, p[2]);
	wait_res(p[2], "1111111100000000", 5000, got);
	CHECK_KEPT(got, "1111111100000000", d0);
	printf("ok pages another process read in: kept\n");

	/* d: read by this process, page 3 dirtied by another before the marks. */
	readall(p[3]);
	other_dirties(p[3], 3);
	CHECK(wait_pages(tm, &g, ino[3], DUET_DIRTY, 1) == 1, "the DIRTY of d's page 3 came");
	done(ta, p[3]);
	done(tb, p[3]);
	wait_res(p[3], "0001000000000000", 5000, got);
	CHECK_STR(got, "0001000000000000");
	printf("ok a page another process dirtied: kept\n");

	/* e: done for one task; the other has its ADDED items and no mark: kept. */
	d0 = damon_applied();
	readall(p[4]);
	done(ta, p[4]);
	CHECK_EQ(wait_pages(tb, &g, ino[4], DUET_ADDED, NP), NP);
	usleep(200000);
	res_str(p[4], got);
	CHECK_KEPT(got, "1111111111111111", d0);
	/*
	 * Its ADDED events are processed: its mark has them dropped at once,
	 * by the pump (woken by the mark, not by an event: none comes).
	 */
	done(tb, p[4]);
	wait_res(p[4], "0000000000000000", 50, got);
	CHECK_STR(got, "0000000000000000");
	printf("ok a file a second task had not finished: kept until it had\n");

	/*
	 * g: another duet process runs (a live process's tracing instance):
	 * it may be about to read what this one is done with. Kept; once it
	 * has gone, the next look (a mark) drops them.
	 */
	other = fork();
	if (other < 0)
		die("fork: %s", strerror(errno));
	if (!other) {
		pause();
		_exit(0);
	}
	snprintf(inst, sizeof(inst), "/sys/kernel/tracing/instances/duet-%d-%llu", (int)other,
		 starttime(other));
	if (mkdir(inst, 0755))
		die("mkdir %s: %s", inst, strerror(errno));
	usleep(250000);		/* past the session's last look for others */
	d0 = damon_applied();
	readall(p[6]);
	done(ta, p[6]);
	done(tb, p[6]);
	usleep(300000);
	res_str(p[6], got);
	rmdir(inst);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	CHECK_KEPT(got, "1111111111111111", d0);
	usleep(250000);
	done(ta, p[6]);
	wait_res(p[6], "0000000000000000", 5000, got);
	CHECK_STR(got, "0000000000000000");
	printf("ok while another duet process ran: kept; after it: dropped\n");

	/* a: cached before the tasks came, done for both: kept. */
	d0 = damon_applied();
	res_str(p[0], before);	/* DAMON may have taken some of these idle pages */
	CHECK(strchr(before, '1') != NULL, "a: no page left cached to check (%s)", before);
	done(ta, p[0]);
	done(tb, p[0]);
	usleep(300000);
	res_str(p[0], got);
	CHECK_KEPT(got, before, d0);
	printf("ok pages cached before: kept\n");

	/* Without a polite task: the sequence that dropped e drops nothing. */
	duet_task_free(ta);
	duet_task_free(tb);
	tn = task(s, "n", DUET_EXISTS, t.root, 0);
	wait_scan(tn);
	collect(tn, &g, 0);
	d0 = damon_applied();
	readall(p[5]);
	CHECK_EQ(wait_pages(tn, &g, ino[5], DUET_ADDED, NP), NP);
	done(tn, p[5]);
	usleep(300000);
	res_str(p[5], got);
	CHECK_KEPT(got, "1111111111111111", d0);
	printf("ok polite off: nothing dropped\n");

	duet_task_free(tn);
	duet_task_free(tm);
	lt_session_free(s);
	return lt_finish(&t);
}
