/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the libduet feature tests (tests/libduet/test-*.c): the
 * scratch file system, sessions and tasks, and the helpers that turn the
 * items a task fetched into per-page views to compare with the page
 * cache (cachestat). Each test program is run once per file
 * system (argv[1]: ext4, xfs or btrfs) and uses only the public API to
 * look at what libduet reports.
 */
#ifndef DUET_LIBDUET_TEST_H
#define DUET_LIBDUET_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <duet/duet.h>

#include "fsimg.h"
#include "livetest.h"

/* Pages looked at per file: every test file is at most MAXP pages. */
#define MAXP 64

/* What a task received. */
struct got {
	struct duet_item it[4096];
	size_t n;
	size_t lost;
};

/*
 * The scratch file system of one test: mounted at base; root (base/r) is
 * the directory tasks register, out (base/out) a directory outside it on
 * the same file system.
 */
struct lt {
	const char *name;	/* the test, for the summary line */
	const char *fs;
	struct fsimg img;
	char base[128], root[256], out[256];
};

/*
 * Needs root and a loop file system of type argv[1] (default ext4):
 * exits 77 (skip) with the reason otherwise.
 */
void lt_setup(struct lt *t, const char *name, int argc, char **argv);
/*
 * Unmounts, removes base; returns the exit status. Inline: the check
 * counters are per program file (check.h), so the summary must be taken
 * in the test's own.
 */
static inline int lt_finish(struct lt *t)
{
	char name[64];

	fsimg_destroy(&t->img);
	rmdir(t->base);
	snprintf(name, sizeof(name), "%s %s", t->name, t->fs);
	return check_exit(name);
}

/* A session; exits 77 (skip) with libduet's reason when none can be made. */
struct duet_session *lt_session_or_skip(const struct duet_session_opts *o);
/* A session; any error is a hard error (die). */
struct duet_session *lt_session(const struct duet_session_opts *o);
/* Frees a session made above (its tasks first: the caller frees them). */
void lt_session_free(struct duet_session *s);
/* A task registered on path; any error is a hard error (die). */
struct duet_task *lt_task(struct duet_session *s, const char *name, uint32_t mask,
			  const char *path);

/* Fetch everything that arrives within ms milliseconds. */
void collect(struct duet_task *t, struct got *g, int ms);
/* Pages of ino with state bit st; returns pages seen twice (must be 0). */
int pages(const struct got *g, uint64_t ino, uint32_t st, uint8_t *bits);
/*
 * The task's view of ino after applying the items in order (ADDED sets,
 * REMOVED clears), for an EXISTS task: what it believes is cached.
 */
void view_of(const struct got *g, uint64_t ino, uint8_t *bits);
/* Exactly pages [first, first + n) of the MAXP are set. */
int exactly(const uint8_t *bits, int first, int n);
/* Items naming ino. */
int items_for(const struct got *g, uint64_t ino);
/* The file id of the last item naming ino ({0} if none). */
struct duet_fileid fileid_in(const struct got *g, uint64_t ino);
/* Wait until the task's registration (or resync) scan is done. */
void wait_scan(struct duet_task *t);

/* A file of npages pages written with 4 KiB writes; its inode number. */
uint64_t make_file(const char *path, int npages, int do_fsync);
/* Write back and drop path's pages (fdatasync, fadvise DONTNEED). */
void drop(const char *path);
/* Read path to its end. */
void readall(const char *path);
/* Pages of path in the page cache (cachestat). */
uint64_t cached_pages(const char *path);
/* Which of the first MAXP pages of path are cached (cachestat, past EOF too). */
void resident(const char *path, uint8_t *bits);
/* Which of the first MAXP pages of path are cached (dirty 0) or dirty (1). */
void cachestat_bits(const char *path, int dirty, uint8_t *bits);

#endif
