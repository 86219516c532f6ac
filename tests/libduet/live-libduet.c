// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libduet against the running kernel, through the public API only, on a
 * loop-mounted file system (ext4, xfs or btrfs: argv[1]). Asserts exactly
 * which pages of which files each task receives: the registration scan,
 * state cancellation, done marks, renames in and out, hard links, paths,
 * inode reuse and saved done state. Needs root; exits 77 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <duet/duet.h>

#include "fsimg.h"
#include "livetest.h"


#define MAXP 64

/* What a task received: per file (ino), per state bit, which pages. */
struct got {
	struct duet_item it[4096];
	size_t n;
	size_t lost;
};


/* Fetch everything that arrives within ms milliseconds. */
static void collect(struct duet_task *t, struct got *g, int ms)
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

/* Pages of ino with state bit st; returns pages seen twice (must be 0). */
static int pages(const struct got *g, uint64_t ino, uint32_t st, uint8_t *bits)
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

/*
 * The task's view of ino after applying the items in order (ADDED sets,
 * REMOVED clears), for an EXISTS task: what it believes is cached.
 */
static void view_of(const struct got *g, uint64_t ino, uint8_t *bits)
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

static int exactly(const uint8_t *bits, int first, int n)
{
	for (int p = 0; p < MAXP; p++)
		if (bits[p] != (p >= first && p < first + n))
			return 0;
	return 1;
}

static int items_for(const struct got *g, uint64_t ino)
{
	int n = 0;

	for (size_t i = 0; i < g->n; i++)
		n += g->it[i].ino == ino;
	return n;
}

static uint64_t make_file(const char *path, int npages, int do_fsync)
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

static void drop(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		die("drop %s", path);
	close(fd);
}

static void readall(const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY);

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

static uint64_t cached_pages(const char *path)
{
	struct { uint64_t off, len; } r = { 0, 0 };
	uint64_t cs[5] = { 0 };
	int fd = open(path, O_RDONLY);

	if (fd < 0 || syscall(451, fd, &r, cs, 0))
		die("cachestat %s", path);
	close(fd);
	return cs[0];
}

/* Which of the first MAXP pages of path are resident (mincore). */
static void resident(const char *path, uint8_t *bits)
{
	unsigned char vec[MAXP];
	struct stat st;
	int fd = open(path, O_RDONLY);
	void *m;

	memset(bits, 0, MAXP);
	if (fd < 0 || fstat(fd, &st) || !st.st_size)
		goto out;
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto out;
	if (!mincore(m, (size_t)st.st_size, vec))
		for (size_t i = 0; i < ((size_t)st.st_size + 4095) / 4096 && i < MAXP; i++)
			bits[i] = vec[i] & 1;
	munmap(m, (size_t)st.st_size);
out:
	if (fd >= 0)
		close(fd);
}

static void wait_scan(struct duet_task *t)
{
	struct duet_task_status st = { .sz = sizeof(st) };

	for (int i = 0; i < 300; i++) {
		if (!duet_task_status(t, &st) && st.scan_done == st.scan_files)
			return;
		usleep(10000);
	}
	die("registration scan did not finish");
}

int main(int argc, char **argv)
{
	const char *fs = argc > 1 ? argv[1] : "ext4";
	struct duet_session *s;
	struct duet_task *te, *tm, *tv;
	struct fsimg img;
	uint8_t bits[MAXP];
	char base[128], root[256], out[256], a[300], b[300], c[300], d[300], e[300], e2[300];
	char p[4096], save[300];
	uint64_t ia, ib, ic, id, ie, cache0;
	struct got *g = calloc(1, sizeof(*g)), *gm = calloc(1, sizeof(*gm));
	int r;

	livetest_require_root();
	snprintf(base, sizeof(base), "/tmp/duet-lib-%d", (int)getpid());
	mkdir(base, 0755);
	if (fsimg_make(&img, fs, !strcmp(fs, "xfs") ? 320 : 256, base)) {
		rmdir(base);
		printf("SKIP: cannot make a %s loop file system\n", fs);
		return TEST_SKIP;
	}
	snprintf(root, sizeof(root), "%s/r", base);
	snprintf(out, sizeof(out), "%s/out", base);
	mkdir(root, 0755);
	mkdir(out, 0755);
	snprintf(a, sizeof(a), "%s/a", root);
	snprintf(b, sizeof(b), "%s/b", root);
	snprintf(c, sizeof(c), "%s/c", root);
	snprintf(d, sizeof(d), "%s/d", out);
	snprintf(e, sizeof(e), "%s/e", out);
	snprintf(e2, sizeof(e2), "%s/e-link", root);
	snprintf(save, sizeof(save), "/var/tmp/duet-lib-%d.done", (int)getpid());

	/* Files cached before any task exists. */
	ia = make_file(a, 16, 1);
	ic = make_file(c, 4, 1);
	id = make_file(d, 8, 1);
	ie = make_file(e, 4, 1);
	if (link(e, e2))
		die("link");
	cache0 = cached_pages(a);

	r = duet_session_new(NULL, &s);
	if (r) {
		fsimg_cleanup_all();
		printf("SKIP: %s\n", duet_strerror(r));
		return TEST_SKIP;
	}
	{
		struct duet_task_opts bad = { .sz = sizeof(bad), .mask = DUET_EXISTS | DUET_ADDED,
					      .path = root };

		CHECK(duet_task_new(s, &bad, &te) == -EINVAL, "EXISTS|ADDED is refused");
		bad.mask = DUET_MODIFIED | DUET_FLUSHED;
		CHECK(duet_task_new(s, &bad, &te) == -EINVAL, "MODIFIED|FLUSHED is refused");
		bad.mask = DUET_EXISTS;
		bad.path = "/nonexistent/duet";
		CHECK(duet_task_new(s, &bad, &te) == -ENOENT, "a missing path is -ENOENT");
	}
	{
		struct duet_task_opts o = { .sz = sizeof(o), .name = "exists", .mask = DUET_EXISTS,
					    .path = root };

		if ((r = duet_task_new(s, &o, &te)))
			die("task: %s", duet_strerror(r));
		o.name = "modified";
		o.mask = DUET_MODIFIED;
		if ((r = duet_task_new(s, &o, &tm)))
			die("task: %s", duet_strerror(r));
		o.name = "events";
		o.mask = DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED;
		if ((r = duet_task_new(s, &o, &tv)))
			die("task: %s", duet_strerror(r));
	}

	/* 1. The registration scan reports what was cached, without reading. */
	wait_scan(te);
	collect(te, g, 400);
	{
		/* Exactly the resident pages (background reclaim may take some). */
		uint8_t res[MAXP];

		view_of(g, ia, bits);
		resident(a, res);
		CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP), "scan: a's cached pages are reported");
		view_of(g, ic, bits);
		resident(c, res);
		CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP), "scan: c's cached pages are reported");
		view_of(g, ie, bits);
		resident(e2, res);
		CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP), "scan: e (hard link e-link inside) is reported");
	}
	CHECK(items_for(g, id) == 0, "scan: d lies outside the directory");
	CHECK(cached_pages(a) <= cache0, "scan: the scan brings nothing into the page cache (%" PRIu64 " -> %" PRIu64 ")", cache0, cached_pages(a));
	{
		struct duet_fileid f = { .dev = 0 };

		for (size_t i = 0; i < g->n; i++)
			if (g->it[i].ino == ie)
				f = duet_item_fileid(&g->it[i]);
		CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, e2), "path of a hard link is the name under the directory (%s)", p);
	}
	collect(tm, gm, 0);
	CHECK(gm->n == 0, "scan: nothing dirty, so nothing for MODIFIED (%zu items)", gm->n);
	collect(tv, gm, 0);
	printf("ok 1 scan at registration (%zu items)\n", g->n);

	/* 2. A new file: EXISTS and MODIFIED see the net change. */
	ib = make_file(b, 8, 0);
	collect(te, g, 500);
	CHECK(pages(g, ib, DUET_ADDED, bits) == 0 && exactly(bits, 0, 8), "write: EXISTS gets b 0-7 added");
	collect(tm, g, 0);
	CHECK(pages(g, ib, DUET_DIRTY, bits) == 0 && exactly(bits, 0, 8), "write: MODIFIED gets b 0-7 dirty");
	collect(tv, g, 0);
	CHECK(pages(g, ib, DUET_ADDED, bits) == 0 && exactly(bits, 0, 8) &&
	      pages(g, ib, DUET_DIRTY, bits) == 0 && exactly(bits, 0, 8), "write: events task gets ADDED and DIRTY 0-7");
	printf("ok 2 write\n");

	/* 3. Dirtied, written back and dropped before a fetch: states cancel. */
	{
		char path[300];
		uint64_t ix;

		snprintf(path, sizeof(path), "%s/x", root);
		ix = make_file(path, 8, 1);
		drop(path);
		/* No fetch in between: let every event reach the engine first. */
		usleep(700000);
		collect(te, g, 0);
		{
			uint8_t res[MAXP];

			/* fadvise may keep a page (writeback still finishing): it must
			 * then be reported as added, and only it. */
			resident(path, res);
			if (getenv("DUET_TEST_DEBUG"))
				for (size_t i = 0; i < g->n; i++)
					fprintf(stderr, "item ino %" PRIu64 " (x %" PRIu64 ") %" PRIu64 "+%" PRIu64 " state %x\n",
						g->it[i].ino, ix, g->it[i].index, g->it[i].count, g->it[i].state);
			CHECK(pages(g, ix, DUET_REMOVED, bits) == 0 && !memchr(bits, 1, MAXP),
			      "EXISTS: never a REMOVED for pages it was never told about");
			CHECK(pages(g, ix, DUET_ADDED, bits) == 0 && !memcmp(bits, res, MAXP),
			      "EXISTS: added then removed before a fetch cancels; what stayed cached is added");
		}
		collect(tm, g, 0);
		CHECK(items_for(g, ix) == 0, "MODIFIED: dirtied then flushed cancels (%d items)", items_for(g, ix));
		collect(tv, g, 0);
		CHECK(pages(g, ix, DUET_ADDED, bits) == 0 && exactly(bits, 0, 8) &&
		      pages(g, ix, DUET_REMOVED, bits) == 0 && exactly(bits, 0, 8), "events task gets both ADDED and REMOVED");
		printf("ok 3 cancellation\n");
	}

	/* 4. Done: a done file produces no more items. */
	{
		struct duet_fileid f;

		CHECK(!duet_task_fileid(te, a, &f) && f.ino == ia, "fileid of a");
		CHECK(!duet_task_set_done(te, &f, 0, 0), "set a done");
		CHECK(duet_task_check_done(te, &f, 3, 2) == 1, "a's pages 3-4 are done");
		drop(a);
		readall(a);
		collect(te, g, 500);
		CHECK(items_for(g, ia) == 0, "done file: no items (%d)", items_for(g, ia));
		CHECK(!duet_task_save(te, save), "save done state");
		printf("ok 4 done file\n");
	}

	/* 5. Renamed out: no longer reported. Renamed in: reported with its cached pages. */
	{
		char c2[300], d2[300];

		snprintf(c2, sizeof(c2), "%s/c", out);
		snprintf(d2, sizeof(d2), "%s/d", root);
		if (rename(c, c2) || rename(d, d2))
			die("rename");
		collect(te, g, 500);
		{
			uint8_t res[MAXP];

			/* Exactly what is cached now: reclaim may take some meanwhile
			 * (then REMOVED items follow the scan's ADDED ones). */
			view_of(g, id, bits);
			resident(d2, res);
			CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP),
			      "renamed in: d's cached pages are reported (items %d, cached %" PRIu64 ")",
			      items_for(g, id), cached_pages(d2));
		}
		drop(c2);
		collect(te, g, 500);
		CHECK(items_for(g, ic) == 0, "renamed out: c's pages leaving are not reported (%d)", items_for(g, ic));
		{
			struct duet_fileid f = { .dev = img.kdev, .ino = id };

			duet_task_fileid(te, d2, &f);
			CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, d2), "path after rename in is %s (got %s)", d2, p);
		}
		printf("ok 5 renames\n");
	}

	/* 6. Inode reuse: another file under a reused number has another gen. */
	{
		struct duet_fileid fb, fn;
		char n2[300];
		uint64_t in;

		duet_task_fileid(te, b, &fb);
		unlink(b);
		snprintf(n2, sizeof(n2), "%s/n", root);
		in = make_file(n2, 2, 1);
		duet_task_fileid(te, n2, &fn);
		if (in == ib)
			CHECK(fn.gen != fb.gen, "reused inode %" PRIu64 " has a new gen", in);
		/* Reused number (new gen) or not: the deleted file has no path. */
		CHECK(duet_task_path(te, &fb, p, sizeof(p)) == -ENOENT, "the deleted file's id no longer resolves");
		printf("ok 6 inode reuse (%s)\n", in == ib ? "number reused" : "number not reused here");
	}

	/*
	 * 8. Bind mounts: a file reached through a bind mount outside the
	 * directory is reported with its name under the directory; a
	 * directory from outside bound inside is watched under its new name.
	 */
	{
		char sub[300], bind[300], viab[400], inside[300], outdir[300], f2[400], fin[400];
		uint64_t ifb, ifo;

		snprintf(sub, sizeof(sub), "%s/sub", root);
		snprintf(bind, sizeof(bind), "%s/bind", base);
		snprintf(outdir, sizeof(outdir), "%s/od", out);
		snprintf(inside, sizeof(inside), "%s/in", root);
		mkdir(sub, 0755);
		mkdir(bind, 0755);
		mkdir(outdir, 0755);
		snprintf(f2, sizeof(f2), "%s/f", outdir);
		ifo = make_file(f2, 2, 1);
		mkdir(inside, 0755);
		collect(te, g, 300);
		if (mount(sub, bind, NULL, MS_BIND, NULL) || mount(outdir, inside, NULL, MS_BIND, NULL))
			die("bind mount: %s", strerror(errno));
		snprintf(fin, sizeof(fin), "%s/f", inside);
		/* The mount brings f under the directory, with its cached pages. */
		collect(te, g, 700);
		{
			uint8_t res[MAXP];
			struct duet_fileid f = { 0 };

			view_of(g, ifo, bits);
			resident(fin, res);
			CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP),
			      "bind: a directory bound inside arrives with its cached pages");
			for (size_t i = 0; i < g->n; i++)
				if (g->it[i].ino == ifo)
					f = duet_item_fileid(&g->it[i]);
			CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, fin),
			      "bind: it is reported under its new name (%s, got %s)", fin, p);
		}
		snprintf(viab, sizeof(viab), "%s/g", bind);
		ifb = make_file(viab, 3, 0);
		collect(te, g, 600);
		CHECK(pages(g, ifb, DUET_ADDED, bits) == 0 && exactly(bits, 0, 3), "bind: a file written through a bind mount outside is reported");
		{
			char want[300];
			struct duet_fileid f = { 0 };

			for (size_t i = 0; i < g->n; i++)
				if (g->it[i].ino == ifb)
					f = duet_item_fileid(&g->it[i]);
			snprintf(want, sizeof(want), "%s/g", sub);
			CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, want), "bind: its path is the name under the directory (%s, got %s)", want, p);
		}
		umount2(inside, MNT_DETACH);
		umount2(bind, MNT_DETACH);
		printf("ok 8 bind mounts\n");
	}

	/*
	 * 10. mmap write + msync: DIRTY then FLUSHED (inode-level on a stock
	 * kernel, exact on a patched one); a page dirtied again after
	 * writeback is reported again; a file system mounted inside the
	 * directory is watched.
	 */
	{
		char mp[300], sm[300], m2[400];
		struct fsimg img2;
		uint64_t im;
		int fd;
		char *map;

		snprintf(mp, sizeof(mp), "%s/m", root);
		im = make_file(mp, 8, 1);
		collect(tv, g, 300);
		fd = open(mp, O_RDWR);
		map = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (fd < 0 || map == MAP_FAILED)
			die("mmap");
		for (int i = 0; i < 8; i++)
			(void)*(volatile char *)(map + i * 4096);
		map[2 * 4096] = 'X';
		if (msync(map, 8 * 4096, MS_SYNC))
			die("msync");
		collect(tv, g, 500);
		{
			int dirty2 = 0, flushed = 0;

			for (size_t i = 0; i < g->n; i++) {
				const struct duet_item *it = &g->it[i];

				if (it->ino != im)
					continue;
				if (it->state & DUET_DIRTY)
					dirty2 += it->index <= 2 && 2 < it->index + it->count && it->count == 1;
				if (it->state & DUET_FLUSHED)
					flushed++;
			}
			CHECK(pages(g, im, DUET_DIRTY, bits) == 0 && exactly(bits, 2, 1) && dirty2 == 1,
			      "mmap: DIRTY exactly page 2");
			CHECK(flushed >= 1, "msync: FLUSHED reported (%d items)", flushed);
		}
		/* Dirtied again after writeback: reported again. */
		map[2 * 4096] = 'Y';
		if (msync(map, 8 * 4096, MS_SYNC))
			die("msync");
		collect(tv, g, 500);
		CHECK(pages(g, im, DUET_DIRTY, bits) == 0 && exactly(bits, 2, 1),
		      "redirty: page 2 is DIRTY again");
		munmap(map, 8 * 4096);
		close(fd);

		snprintf(sm, sizeof(sm), "%s/inner", root);
		mkdir(sm, 0755);
		if (!fsimg_make(&img2, fs, !strcmp(fs, "xfs") ? 320 : 128, sm)) {
			collect(te, g, 400);
			snprintf(m2, sizeof(m2), "%s/h", sm);
			im = make_file(m2, 5, 0);
			collect(te, g, 500);
			CHECK(pages(g, im, DUET_ADDED, bits) == 0 && exactly(bits, 0, 5),
			      "inner file system: its file's pages are reported");
			for (size_t i = 0; i < g->n; i++)
				if (g->it[i].ino == im)
					CHECK(g->it[i].dev == img2.kdev, "inner file system: items carry its device");
			fsimg_destroy(&img2);
		} else {
			CHECK(0, "second file system");
		}
		printf("ok 10 mmap+msync, redirty, inner file system\n");
	}

	/*
	 * 11. An unlinked file that is still open has no name under the
	 * directory: it stops being reported (decided and documented).
	 */
	{
		char up[300], buf[4096];
		uint64_t iu;
		int fd;

		snprintf(up, sizeof(up), "%s/unlinked", root);
		iu = make_file(up, 4, 1);
		collect(te, g, 400);
		CHECK(pages(g, iu, DUET_ADDED, bits) == 0 && exactly(bits, 0, 4), "unlinked: reported while it has a name");
		fd = open(up, O_RDWR);
		if (fd < 0 || unlink(up))
			die("unlink");
		memset(buf, 'u', sizeof(buf));
		for (int i = 4; i < 8; i++)
			if (pwrite(fd, buf, sizeof(buf), (off_t)i * 4096) != (ssize_t)sizeof(buf))
				die("pwrite");
		if (fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
			die("drop");
		collect(te, g, 500);
		CHECK(items_for(g, iu) == 0, "unlinked but open: no more items (%d)", items_for(g, iu));
		close(fd);
		printf("ok 11 unlinked while open\n");
	}

	duet_task_free(tv);
	duet_task_free(tm);
	duet_task_free(te);
	duet_session_free(s);

	/*
	 * 9. Forced overrun: a tiny buffer and heavy churn. The task gets a
	 * LOST item, drops its view, and after the resync its view of which
	 * pages are cached equals mincore() for every file.
	 */
	{
		struct duet_session_opts so = { .sz = sizeof(so), .buffer_kb = 8, .subbuf_kb = 4 };
		struct duet_task_opts o = { .sz = sizeof(o), .mask = DUET_EXISTS, .path = root };
		struct duet_task_status ts = { .sz = sizeof(ts) };
		static uint8_t view[40][MAXP];
		uint64_t inos[40];
		char files[40][300];
		size_t lost = 0;
		int bad = 0;

		if (duet_session_new(&so, &s) || duet_task_new(s, &o, &te))
			die("overrun session");
		wait_scan(te);
		memset(view, 0, sizeof(view));
		/* Churn until the tiny buffer overruns (almost always at once). */
		for (int tries = 0; tries < 5; tries++) {
			for (int k = 0; k < 40; k++) {
				snprintf(files[k], sizeof(files[k]), "%s/churn%d", root, k);
				inos[k] = make_file(files[k], MAXP, 0);
			}
			for (int k = 0; k < 40; k += 2)
				drop(files[k]);
			usleep(300000);
			duet_task_status(te, &ts);
			if (ts.lost)
				break;
		}
		/* Apply items as a task would: LOST drops the view. */
		for (int round = 0; round < 30; round++) {
			collect(te, g, 100);
			for (size_t i = 0; i < g->n; i++) {
				const struct duet_item *it = &g->it[i];

				if (it->flags & DUET_ITEM_LOST) {
					memset(view, 0, sizeof(view));
					lost++;
					continue;
				}
				for (int k = 0; k < 40; k++) {
					if (it->ino != inos[k])
						continue;
					for (uint64_t q = it->index; q < it->index + it->count && q < MAXP; q++)
						view[k][q] = (it->state & DUET_ADDED) ? 1 : 0;
				}
			}
			duet_task_status(te, &ts);
			if (round > 5 && ts.scan_done == ts.scan_files && !ts.pending)
				break;
		}
		CHECK(lost > 0 && ts.lost > 0, "overrun: the loss is reported (%zu LOST items)", lost);
		CHECK(ts.resyncs > 0, "overrun: a resync ran (%" PRIu64 ")", ts.resyncs);
		for (int k = 0; k < 40; k++) {
			uint8_t res[MAXP];

			resident(files[k], res);
			if (memcmp(res, view[k], MAXP))
				bad++;
		}
		CHECK(bad == 0, "overrun: after the resync the view matches mincore for every file (%d differ)", bad);
		duet_task_free(te);
		duet_session_free(s);
		printf("ok 9 forced overrun and resync (%zu LOST items, %" PRIu64 " resyncs)\n", lost, ts.resyncs);
	}

	/* 7. Saved done state resumes in a new session. */
	{
		struct duet_task_opts o = { .sz = sizeof(o), .mask = DUET_EXISTS, .path = root };
		struct duet_fileid f;

		if (duet_session_new(NULL, &s) || duet_task_new(s, &o, &te))
			die("second session");
		r = duet_task_load(te, save);
		CHECK(r == 1, "load: one mark restored (%d)", r);
		CHECK(!duet_task_fileid(te, a, &f) && duet_task_check_done(te, &f, 0, 0) == 1, "a is done after load");
		wait_scan(te);
		collect(te, g, 400);
		CHECK(items_for(g, ia) == 0, "a done: the scan does not report it (%d)", items_for(g, ia));
		duet_task_free(te);
		duet_session_free(s);
		unlink(save);
		printf("ok 7 saved done state\n");
	}
	fsimg_destroy(&img);
	rmdir(base);
	free(g);
	free(gm);
	return check_exit(fs);
}
