// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The setup and the page-view helpers of the libduet feature tests
 * (libduet-test.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "libduet-test.h"

/* The session a test holds, freed at exit if a die() left it open, so
 * that its tracing instance goes with the test. */
static struct duet_session *open_session;
/* The event source of every session the test opens: argv[2], else tracefs. */
static const char *backend;

/* The test's base directory, removed at exit also after a die(). */
static char base_dir[128];

static void free_open_session(void)
{
	duet_session_free(open_session);
	open_session = NULL;
}

static void remove_base(void)
{
	if (base_dir[0])
		rmdir(base_dir);	/* empty by then: fsimg unmounted and removed its files */
}

void lt_setup(struct lt *t, const char *name, int argc, char **argv)
{
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->fs = argc > 1 ? argv[1] : "ext4";
	backend = argc > 2 ? argv[2] : NULL;
	livetest_require_root();
	snprintf(t->base, sizeof(t->base), "/tmp/duet-lib-%d", (int)getpid());
	mkdir(t->base, 0755);
	/* Registered before fsimg's handler (fsimg_make registers it): at
	 * exit it runs after the unmount, also after a die(). */
	snprintf(base_dir, sizeof(base_dir), "%s", t->base);
	atexit(remove_base);
	if (fsimg_make(&t->img, t->fs, !strcmp(t->fs, "xfs") ? 320 : 256, t->base)) {
		rmdir(t->base);
		printf("SKIP: cannot make a %s loop file system\n", t->fs);
		exit(TEST_SKIP);
	}
	/* Registered after fsimg's own handler: runs before it at exit. */
	atexit(free_open_session);
	snprintf(t->root, sizeof(t->root), "%s/r", t->base);
	snprintf(t->out, sizeof(t->out), "%s/out", t->base);
	mkdir(t->root, 0755);
	mkdir(t->out, 0755);
}

/* o with the test's backend, unless it names one itself. */
static int session_new(const struct duet_session_opts *o)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	int r;

	if (o)
		memcpy(&so, o, o->sz < sizeof(so) ? o->sz : sizeof(so));
	so.sz = sizeof(so);
	if (!so.backend)
		so.backend = backend;
	r = duet_session_new(&so, &open_session);
	if (r == -EOPNOTSUPP && backend) {
		fsimg_cleanup_all();
		printf("SKIP: no %s backend here (perf needs its plugin, built with libperf by "
		       "scripts/setup; DUET_PERF_PLUGIN)\n", backend);
		exit(TEST_SKIP);
	}
	return r;
}

struct duet_session *lt_session_or_skip(const struct duet_session_opts *o)
{
	int r = session_new(o);

	/* What the machine lacks is a skip; anything else is the library's failure. */
	if (r == -ENOENT || r == -EACCES || r == -EPERM || r == -EOPNOTSUPP) {
		fsimg_cleanup_all();
		printf("SKIP: %s\n", duet_strerror(r));
		exit(TEST_SKIP);
	}
	if (r)
		die("session: %s", duet_strerror(r));
	return open_session;
}

struct duet_session *lt_session(const struct duet_session_opts *o)
{
	int r = session_new(o);

	if (r)
		die("session: %s", duet_strerror(r));
	return open_session;
}

void lt_session_free(struct duet_session *s)
{
	duet_session_free(s);
	if (s == open_session)
		open_session = NULL;
}

struct duet_task *lt_task(struct duet_session *s, const char *name, uint32_t mask,
			  const char *path)
{
	struct duet_task_opts o = { .sz = sizeof(o), .name = name, .mask = mask, .path = path };
	struct duet_task *t;
	int r = duet_task_new(s, &o, &t);

	if (r)
		die("task %s: %s", name ? name : "(unnamed)", duet_strerror(r));
	return t;
}

void collect(struct duet_task *t, struct got *g, int ms)
{
	struct timespec end, now;

	g->n = g->lost = 0;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += (long)ms * 1000000L;
	end.tv_sec += end.tv_nsec / 1000000000L;
	end.tv_nsec %= 1000000000L;
	do {
		int n = duet_task_fetch(t, g->it + g->n, 4096 - g->n);

		if (n < 0)
			die("fetch: %s", duet_strerror(n));
		for (int i = 0; i < n; i++)
			if (g->it[g->n + (size_t)i].flags & DUET_ITEM_LOST)
				g->lost++;
		g->n += (size_t)n;
		usleep(20000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
}

int pages(const struct got *g, uint64_t ino, uint32_t st, uint8_t *bits)
{
	int dup = 0;

	memset(bits, 0, MAXP);
	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];

		if (it->ino != ino || !(it->state & st))
			continue;
		for (uint64_t p = it->index; p < it->index + it->count; p++) {
			if (p >= MAXP || bits[p])
				dup++;
			else
				bits[p] = 1;
		}
	}
	return dup;
}

void view_of(const struct got *g, uint64_t ino, uint8_t *bits)
{
	memset(bits, 0, MAXP);
	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];

		if (it->ino != ino)
			continue;
		for (uint64_t p = it->index; p < it->index + it->count && p < MAXP; p++)
			bits[p] = !!(it->state & DUET_ADDED);
	}
}

int exactly(const uint8_t *bits, int first, int n)
{
	for (int p = 0; p < MAXP; p++)
		if (bits[p] != (p >= first && p < first + n))
			return 0;
	return 1;
}

int items_for(const struct got *g, uint64_t ino)
{
	int n = 0;

	for (size_t i = 0; i < g->n; i++)
		n += g->it[i].ino == ino;
	return n;
}

struct duet_fileid fileid_in(const struct got *g, uint64_t ino)
{
	struct duet_fileid f = { .dev = 0 };

	for (size_t i = 0; i < g->n; i++)
		if (g->it[i].ino == ino)
			f = duet_item_fileid(&g->it[i]);
	return f;
}

void wait_scan(struct duet_task *t)
{
	struct duet_task_status st = { .sz = sizeof(st) };

	for (int i = 0; i < 300; i++) {
		if (!duet_task_status(t, &st) && st.scan_done == st.scan_files)
			return;
		usleep(10000);
	}
	die("registration scan did not finish");
}

uint64_t make_file(const char *path, int npages, int do_fsync)
{
	char buf[4096];
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	for (int i = 0; i < npages; i++) {
		memset(buf, 'a' + i % 26, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("write");
	}
	if (do_fsync && fsync(fd))
		die("fsync");
	fstat(fd, &st);
	close(fd);
	return st.st_ino;
}

void drop(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		die("drop %s", path);
	close(fd);
}

void readall(const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY);

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

uint64_t cached_pages(const char *path)
{
	struct { uint64_t off, len; } r = { 0, 0 };
	uint64_t cs[5] = { 0 };
	int fd = open(path, O_RDONLY);

	if (fd < 0 || syscall(451, fd, &r, cs, 0))
		die("cachestat %s", path);
	close(fd);
	return cs[0];
}

void cachestat_bits(const char *path, int dirty, uint8_t *bits)
{
	int fd = open(path, O_RDONLY);

	memset(bits, 0, MAXP);
	for (int i = 0; fd >= 0 && i < MAXP; i++) {
		struct { uint64_t off, len; } r = { (uint64_t)i * 4096, 4096 };
		uint64_t cs[5] = { 0 };

		if (syscall(451, fd, &r, cs, 0))
			die("cachestat %s", path);
		bits[i] = cs[dirty ? 1 : 0] != 0;
	}
	if (fd >= 0)
		close(fd);
}

void resident(const char *path, uint8_t *bits)
{
	/*
	 * Page by page with cachestat, not mincore over st_size: a large
	 * folio keeps pages cached past the end of the file after a
	 * truncate into it, and the views must include them.
	 */
	cachestat_bits(path, 0, bits);
}
