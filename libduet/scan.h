/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Registration and resync scans: what one file has in the page cache,
 * and the events that happened to it while that was being read, so that
 * the scan can be placed exactly in the event stream.
 *
 * Why a window. A scan reads the page cache now, while the events of the
 * last milliseconds (or seconds, under load) are still in the ring
 * buffer. The caller notes how far the stream has been processed when
 * the scan starts (lo) and reads the clock when it ends; every event of
 * the file with a timestamp in [lo, hi], hi = that clock plus a margin,
 * is recorded in the scan's window. The scan is applied when the stream
 * has passed hi: for each page an event in the window touched, the state
 * after the last such event is the truth (events set a page's state
 * absolutely); for every other page, what the scan saw is. Events before
 * lo were processed before the scan began and so are in what it saw;
 * events after hi come after it, in stream order.
 *
 * The margin covers the time between a page-cache change and its event
 * (a delete's event fires just before the folio leaves the cache), the
 * same bound the readers' watermark uses.
 */
#ifndef DUET_SCAN_H
#define DUET_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include <roaring/roaring.h>

struct stat;

/* How long before or after a change its event may be stamped (ns). */
#define DS_MARGIN_NS 2000000ull

/* Events a window keeps; past it the scan is redone. */
#define DS_WINDOW_MAX 4096u

/* Window event types (the page events, plus a whole-inode flush). */
enum { DS_ADDED = 1, DS_REMOVED, DS_DIRTY, DS_FLUSHED, DS_INODE_FLUSHED };

struct ds_scan {
	roaring_bitmap_t *cached;	/* pages seen cached (page indices) */
	roaring_bitmap_t *dirty;	/* pages seen dirty (a subset) */
	struct ds_ev {
		uint32_t index, count;
		uint8_t type;
	} *ev;
	uint32_t nev, cap;
	bool overflow;		/* more than DS_WINDOW_MAX events: redo */
};

/*
 * Read the residency of the regular file at path, whose inode must be ino:
 * every cached page, including the pages a large folio keeps cached past
 * the end of the file (cachestat sees them, mincore does not), and which
 * of them are dirty. Nothing is read into the page cache. 0, -ENOENT if
 * the path no longer names that inode, -errno. sc's bitmaps are created
 * only when something is cached.
 */
int ds_scan_read(struct ds_scan *sc, const char *path, uint64_t ino);

/*
 * The directory of the last file a run of scans opened, kept open so that
 * the next file of the same directory is opened by its name alone (the
 * walk queues a directory's files together: one path lookup per file
 * instead of one per component). Identity is the inode number's check as
 * for a path; a directory renamed meanwhile is still the one it was.
 */
struct ds_dir {
	int fd;			/* -1: none */
	size_t len;		/* of path */
	char path[4096];
};

void ds_dir_init(struct ds_dir *d);
void ds_dir_close(struct ds_dir *d);
/* ds_scan_read() with d (NULL: by the whole path). */
int ds_scan_read_in(struct ds_scan *sc, struct ds_dir *d, const char *path, uint64_t ino);

/*
 * Whether any page of the regular file at path (inode ino) is cached, past
 * the end of the file included: 1, 0, -ENOENT as above, -errno.
 */
int ds_cached_any(const char *path, uint64_t ino);
/*
 * Drop pages [index, index + count) of path from the page cache
 * (POSIX_FADV_DONTNEED), if it is still the regular file ino; opened as
 * for a scan. Dirty, mapped or locked pages stay (the kernel's rule). 0 or
 * -errno.
 */
int ds_drop_pages(const char *path, uint64_t ino, uint64_t index, uint64_t count);
/*
 * The same for n runs [runs[i][0], runs[i][1]) of one file, sorted and
 * apart: one open for all of them.
 */
int ds_drop_runs(const char *path, uint64_t ino, const uint64_t (*runs)[2], size_t n);

/* Record one event of the file in the window (in stream order). */
void ds_scan_event(struct ds_scan *sc, int type, uint64_t index, uint64_t count);

/*
 * The pages' states at the end of the window: the scan with the window's
 * events replayed over it. Calls fn for each run of pages cached with the
 * same dirty state, in index order; a non-zero return stops (returned).
 */
typedef int (*ds_run_fn)(void *ud, uint64_t index, uint64_t count, bool dirty);
int ds_scan_result(struct ds_scan *sc, ds_run_fn fn, void *ud);

void ds_scan_clear(struct ds_scan *sc);

/* What one file has in the page cache, in pages. */
struct ds_counts {
	uint64_t cached;	/* past the end of the file included (cachestat) */
	uint64_t dirty;
	uint64_t writeback;
	bool mincore;		/* no cachestat here: mincore's count of [0, size)
				 * only; dirty and writeback unknown (0) */
};

/*
 * The counts of the open regular file fd (st: its fstat), read with
 * cachestat over the same pages as a scan (past the end of the file up
 * to the next PMD boundary). On a kernel without cachestat (or with
 * DUET_TEST_NO_CACHESTAT set, for the tests), mincore's count of the
 * file's pages. Nothing is read into the page cache. 0, or -errno.
 */
int ds_count_fd(int fd, const struct stat *st, struct ds_counts *c);

/* The system page size in bytes (the unit of page indices). */
uint64_t ds_page_size(void);

#endif
