// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Scans of the page cache with cachestat() and mincore(): no page is read
 * or faulted in. See scan.h for how a scan is placed in the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scan.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

/* Page indices the engine tracks (32 bits). */
#define PAGE_LIMIT (UINT64_C(1) << 32)
/* mincore() a file in windows of this many pages (a 256 KiB vector). */
#define MINCORE_WINDOW (UINT64_C(1) << 18)

struct cs_range {
	uint64_t off, len;
};

struct cs_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

uint64_t ds_page_size(void)
{
	static uint64_t ps;

	if (!ps) {
		long v = sysconf(_SC_PAGESIZE);

		ps = v > 0 ? (uint64_t)v : 4096;
	}
	return ps;
}

static int cachestat(int fd, uint64_t first, uint64_t n, struct cs_stat *cs)
{
	struct cs_range r = { first * ds_page_size(), n * ds_page_size() };

	return syscall(__NR_cachestat, fd, &r, cs, 0) ? -errno : 0;
}

static int add_range(roaring_bitmap_t **b, uint64_t lo, uint64_t hi)
{
	if (!*b && !(*b = roaring_bitmap_create()))
		return -ENOMEM;
	roaring_bitmap_add_range(*b, lo, hi);
	return 0;
}

/* Cached pages of [a, b) by bisection over cachestat (the tail past EOF). */
static int find_cached(struct ds_scan *sc, int fd, uint64_t a, uint64_t b)
{
	struct cs_stat cs;
	int r;

	if (a >= b)
		return 0;
	r = cachestat(fd, a, b - a, &cs);
	if (r || !cs.nr_cache)
		return r;
	if (cs.nr_cache >= b - a)
		return add_range(&sc->cached, a, b);
	r = find_cached(sc, fd, a, a + (b - a) / 2);
	return r ? r : find_cached(sc, fd, a + (b - a) / 2, b);
}

/* Dirty pages of the cached run [a, b) by bisection over cachestat. */
static int find_dirty(struct ds_scan *sc, int fd, uint64_t a, uint64_t b)
{
	struct cs_stat cs;
	int r;

	r = cachestat(fd, a, b - a, &cs);
	if (r || !cs.nr_dirty)
		return r;
	if (cs.nr_dirty >= b - a || b - a == 1)
		return add_range(&sc->dirty, a, b);
	r = find_dirty(sc, fd, a, a + (b - a) / 2);
	return r ? r : find_dirty(sc, fd, a + (b - a) / 2, b);
}

/* Cached pages of [0, pages) with mincore(), window by window. */
static int find_cached_mapped(struct ds_scan *sc, int fd, uint64_t pages)
{
	uint64_t ps = ds_page_size();
	unsigned char *vec = malloc(pages < MINCORE_WINDOW ? pages : MINCORE_WINDOW);
	int r = 0;

	if (!vec)
		return -ENOMEM;
	for (uint64_t w = 0; w < pages && !r; w += MINCORE_WINDOW) {
		uint64_t n = pages - w < MINCORE_WINDOW ? pages - w : MINCORE_WINDOW;
		void *map = mmap(NULL, (size_t)(n * ps), PROT_READ, MAP_SHARED, fd,
				 (off_t)(w * ps));

		if (map == MAP_FAILED) {
			r = -errno;
			break;
		}
		if (mincore(map, (size_t)(n * ps), vec)) {
			r = -errno;
		} else {
			for (uint64_t p = 0; p < n && !r;) {
				uint64_t q = p;

				if (!(vec[p] & 1)) {
					p++;
					continue;
				}
				while (q < n && (vec[q] & 1))
					q++;
				r = add_range(&sc->cached, w + p, w + q);
				p = q;
			}
		}
		munmap(map, (size_t)(n * ps));
	}
	free(vec);
	return r;
}

/*
 * The pages a cachestat of the file must cover: to the PMD boundary past
 * its end. A large folio that straddles the end of the file stays cached
 * whole after a truncate into it; folios are naturally aligned and at
 * most PMD-sized (ps / 8 page-table entries of ps each), so the pages
 * past the end lie before the next PMD boundary.
 */
static uint64_t scan_tail(const struct stat *st)
{
	uint64_t ps = ds_page_size(), pmd = ps / 8;
	uint64_t pages = ((uint64_t)st->st_size + ps - 1) / ps;
	uint64_t tail = (pages + pmd - 1) / pmd * pmd;

	return tail > PAGE_LIMIT ? PAGE_LIMIT : tail;
}

/*
 * path opened for a scan (without touching its atime where allowed), if
 * it is still the regular file ino: the fd, or -errno (-ENOENT otherwise).
 */
void ds_dir_init(struct ds_dir *d)
{
	d->fd = -1;
	d->len = 0;
}

void ds_dir_close(struct ds_dir *d)
{
	if (d->fd >= 0)
		close(d->fd);
	ds_dir_init(d);
}

/*
 * The fd of path's directory from d (opened if another), and its last
 * component in *base; AT_FDCWD and the whole path where d cannot help.
 */
static int dir_of(struct ds_dir *d, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	*base = path;
	if (!d || !slash || slash == path || !slash[1])
		return AT_FDCWD;
	len = (size_t)(slash - path);
	if (d->fd >= 0 && d->len == len && !memcmp(d->path, path, len)) {
		*base = slash + 1;
		return d->fd;
	}
	ds_dir_close(d);
	if (len >= sizeof(d->path))
		return AT_FDCWD;
	memcpy(d->path, path, len);
	d->path[len] = '\0';
	d->fd = open(d->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0) {
		ds_dir_init(d);
		return AT_FDCWD;
	}
	d->len = len;
	*base = slash + 1;
	return d->fd;
}

static int open_file_in(struct ds_dir *d, const char *path, uint64_t ino, struct stat *st)
{
	const char *base;
	int dfd = dir_of(d, path, &base);
	int fd = openat(dfd, base, O_RDONLY | O_NOATIME | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		fd = openat(dfd, base, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st)) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (!S_ISREG(st->st_mode) || st->st_ino != ino) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

static int open_file(const char *path, uint64_t ino, struct stat *st)
{
	return open_file_in(NULL, path, ino, st);
}

int ds_cached_any(const char *path, uint64_t ino)
{
	struct cs_stat cs;
	struct stat st;
	int fd = open_file(path, ino, &st), r;

	if (fd < 0)
		return fd;
	r = cachestat(fd, 0, scan_tail(&st), &cs);
	close(fd);
	return r ? r : cs.nr_cache > 0;
}

int ds_drop_pages(const char *path, uint64_t ino, uint64_t index, uint64_t count)
{
	const uint64_t run[1][2] = { { index, index + count } };

	return ds_drop_runs(path, ino, run, 1);
}

int ds_drop_runs(const char *path, uint64_t ino, const uint64_t (*runs)[2], size_t n)
{
	uint64_t ps = ds_page_size();
	struct stat st;
	int fd = open_file(path, ino, &st), r = 0;

	if (fd < 0)
		return fd;
	/* posix_fadvise returns the error; it does not set errno. */
	for (size_t i = 0; i < n && !r; i++)
		r = -posix_fadvise(fd, (off_t)(runs[i][0] * ps),
				   (off_t)((runs[i][1] - runs[i][0]) * ps), POSIX_FADV_DONTNEED);
	close(fd);
	return r;
}

int ds_scan_read(struct ds_scan *sc, const char *path, uint64_t ino)
{
	return ds_scan_read_in(sc, NULL, path, ino);
}

int ds_scan_read_in(struct ds_scan *sc, struct ds_dir *d, const char *path, uint64_t ino)
{
	uint64_t ps = ds_page_size(), pages, tail;
	roaring_uint32_iterator_t it;
	struct cs_stat cs;
	struct stat st;
	int fd = open_file_in(d, path, ino, &st), r;

	if (fd < 0)
		return fd;
	pages = ((uint64_t)st.st_size + ps - 1) / ps;
	tail = scan_tail(&st);
	if (pages > tail)
		pages = tail;
	r = cachestat(fd, 0, tail, &cs);
	if (r || !cs.nr_cache)
		goto out;
	if (cs.nr_cache >= tail)
		r = add_range(&sc->cached, 0, tail);
	else if (pages)
		r = find_cached_mapped(sc, fd, pages);
	if (!r)
		r = find_cached(sc, fd, pages, tail);
	if (r || !sc->cached)
		goto out;
	/* Dirty pages, run by run of cached pages. */
	roaring_init_iterator(sc->cached, &it);
	while (it.has_value && !r) {
		uint64_t a = it.current_value, b = a;

		do {
			b++;
			roaring_advance_uint32_iterator(&it);
		} while (it.has_value && it.current_value == b);
		r = find_dirty(sc, fd, a, b);
	}
out:
	close(fd);
	return r;
}

int ds_count_fd(int fd, const struct stat *st, struct ds_counts *c)
{
	static int no_cachestat = -1;
	uint64_t ps = ds_page_size();
	struct ds_scan sc = { 0 };
	struct cs_stat cs;
	int r = -ENOSYS;

	if (no_cachestat < 0)
		no_cachestat = getenv("DUET_TEST_NO_CACHESTAT") != NULL;
	memset(c, 0, sizeof(*c));
	if (!no_cachestat)
		r = cachestat(fd, 0, scan_tail(st), &cs);
	if (!r) {
		c->cached = cs.nr_cache;
		c->dirty = cs.nr_dirty;
		c->writeback = cs.nr_writeback;
		return 0;
	}
	if (r != -ENOSYS)
		return r;
	/*
	 * mincore() sees the pages that a mapping of the file can reach, and
	 * tells the truth only to whom cachestat would: the owner, a writer,
	 * root. To others it says every page is cached; refuse as cachestat.
	 */
	if (geteuid() && st->st_uid != geteuid() &&
	    faccessat(fd, "", W_OK, AT_EMPTY_PATH | AT_EACCESS))
		return -EPERM;
	c->mincore = true;
	if (st->st_size <= 0)
		return 0;
	r = find_cached_mapped(&sc, fd, ((uint64_t)st->st_size + ps - 1) / ps);
	if (!r && sc.cached)
		c->cached = roaring_bitmap_get_cardinality(sc.cached);
	ds_scan_clear(&sc);
	return r;
}

void ds_scan_event(struct ds_scan *sc, int type, uint64_t index, uint64_t count)
{
	if (sc->overflow)
		return;
	if (sc->nev == sc->cap) {
		uint32_t cap = sc->cap ? sc->cap * 2 : 8;
		struct ds_ev *n;

		if (sc->cap >= DS_WINDOW_MAX || !(n = realloc(sc->ev, cap * sizeof(*n)))) {
			sc->overflow = true;
			return;
		}
		sc->ev = n;
		sc->cap = cap;
	}
	if (index >= PAGE_LIMIT)
		return;
	if (count > PAGE_LIMIT - index)
		count = PAGE_LIMIT - index;
	sc->ev[sc->nev].index = (uint32_t)index;
	sc->ev[sc->nev].count = (uint32_t)count;
	sc->ev[sc->nev].type = (uint8_t)type;
	sc->nev++;
}

/* Replay the window over what the scan saw: the last event of a page wins. */
static int replay(struct ds_scan *sc)
{
	for (uint32_t i = 0; i < sc->nev; i++) {
		const struct ds_ev *e = &sc->ev[i];
		uint64_t lo = e->index, hi = (uint64_t)e->index + e->count;
		int r = 0;

		switch (e->type) {
		case DS_ADDED:		/* cached, clean */
			r = add_range(&sc->cached, lo, hi);
			if (sc->dirty)
				roaring_bitmap_remove_range(sc->dirty, lo, hi);
			break;
		case DS_REMOVED:
			if (sc->cached)
				roaring_bitmap_remove_range(sc->cached, lo, hi);
			if (sc->dirty)
				roaring_bitmap_remove_range(sc->dirty, lo, hi);
			break;
		case DS_DIRTY:
			r = add_range(&sc->cached, lo, hi);
			if (!r)
				r = add_range(&sc->dirty, lo, hi);
			break;
		case DS_FLUSHED:	/* cached, clean */
			r = add_range(&sc->cached, lo, hi);
			if (sc->dirty)
				roaring_bitmap_remove_range(sc->dirty, lo, hi);
			break;
		case DS_INODE_FLUSHED:
			if (sc->dirty)
				roaring_bitmap_clear(sc->dirty);
			break;
		}
		if (r)
			return r;
	}
	sc->nev = 0;
	return 0;
}

int ds_scan_result(struct ds_scan *sc, ds_run_fn fn, void *ud)
{
	roaring_uint32_iterator_t it;
	int r = replay(sc);

	if (r || !sc->cached)
		return r;
	roaring_init_iterator(sc->cached, &it);
	while (it.has_value) {
		uint64_t a = it.current_value, b = a;
		bool d = sc->dirty && roaring_bitmap_contains(sc->dirty, (uint32_t)a);

		do {
			b++;
			roaring_advance_uint32_iterator(&it);
		} while (it.has_value && it.current_value == b &&
			 (sc->dirty && roaring_bitmap_contains(sc->dirty, (uint32_t)b)) == d);
		r = fn(ud, a, b - a, d);
		if (r)
			return r;
	}
	return 0;
}

void ds_scan_clear(struct ds_scan *sc)
{
	if (sc->cached)
		roaring_bitmap_free(sc->cached);
	if (sc->dirty)
		roaring_bitmap_free(sc->dirty);
	free(sc->ev);
	memset(sc, 0, sizeof(*sc));
}
