/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by duet-backup, duet-scrub and duet-dedup: the sorted tree walk,
 * the duet-driven order (cached files first) and reporting.
 *
 * The order. The tree is listed first (metadata only, names sorted with
 * strcmp in each directory, depth first). Then tl_run() visits the wanted
 * entries in the tool's natural order (c->walk if the tool set it, else
 * the listing's). Every file an item names (ADDED: pages of it are cached
 * now; DIRTY: it was written to) is queued, before each walk entry and
 * between chunks of a long read (tl_between()). Between chunks, the files
 * queued are processed at once, before the rest of the long file: what
 * another tool brought in is read while it is still cached (one level
 * deep: not again from inside such a file). Otherwise queued files are
 * processed before the next walk entry, the most
 * recently queued first (the least likely to have left the cache), and
 * while items keep coming (the last one less than ride_ms ago) the walk
 * waits for more instead of reading on its own: another tool is reading
 * for it. The
 * tool marks what it processed done (tl_done()): the walk skips it and
 * duet stops queueing its events. Without duet (--no-duet, or libduet
 * could not start) the walk alone runs: the results are the same, only
 * the order differs, and every tool prints its results sorted.
 */
#ifndef DUET_TOOLS_COMMON_H
#define DUET_TOOLS_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <duet/duet.h>

#define TL_WANT		0x1u	/* the tool wants to process this entry */
#define TL_DONE		0x2u	/* processed (or failed): the walk skips it */
#define TL_FAILED	0x4u	/* processing failed (reported) */
#define TL_BUSY		0x8u	/* being processed (a long file, between its chunks) */

struct tl_entry {
	char *rel;		/* path under the root; "" is the root itself */
	struct stat st;		/* lstat at listing time */
	unsigned int flags;	/* TL_* */
	int link;		/* first entry of the same inode (itself if first) */
	int idx;		/* own index */
	bool fid_known;		/* fid holds the duet identity */
	struct duet_fileid fid;
	void *data;		/* the tool's */
};

/* Why the tool's callback runs. */
#define TL_WALK		0	/* next in the in-order walk */
#define TL_CACHED	1	/* an ADDED item named it: pages are cached now */
#define TL_DIRTY	2	/* a DIRTY item named it: it was written to */

struct tl_qent {
	struct tl_entry *e;
	int why;
};

struct tl_ctx;
typedef void (*tl_fn)(struct tl_ctx *c, struct tl_entry *e, int why);

struct tl_ctx {
	const char *prog;
	const char *root;	/* as given, without trailing slashes */
	char *root_abs;		/* realpath(root): duet_task_path() answers under it */
	bool quiet, no_duet, tty;
	/*
	 * --no-polite: leave the pages read in the cache. By default the
	 * EXISTS task is cache-polite (DUET_TASK_POLITE): what the tool
	 * brought in and every task marked done is dropped again.
	 */
	bool no_polite;
	struct tl_entry **e;	/* in walk order */
	int n, cap;
	int errors;		/* problems reported; exit status 1 at the end */
	/* duet */
	struct duet_session *s;
	struct duet_task *ex;	/* EXISTS: done marks set here */
	struct duet_task *mod;	/* MODIFIED (optional): no done marks */
	void *pathmap;		/* rel -> entry */
	void *kmap;		/* (dev, ino, gen) -> entry or NULL */
	uint64_t cached_first;	/* files processed because an item named them */
	struct tl_entry **walk;	/* the natural order, if not the listing's (tool's) */
	int nwalk;
	struct tl_qent *q;	/* queued by items: a stack, last queued first */
	int nq, qcap;
	uint64_t last_poll_ns;
	uint64_t ex_fetch_ns, mod_fetch_ns;	/* each task's last fetch */
#define TL_FETCH_NS	100000000ull	/* fetch at least this often */
	uint64_t last_item_ns;	/* when an ADDED item last queued a file */
	unsigned int ride_ms;	/* before a walk entry, wait this long for items */
#define TL_RIDE_MS	30	/* default; DUET_TOOLS_RIDE_MS overrides, 0: off */
	/* progress */
	int processed;
	uint64_t bytes;
	uint64_t bytes_read;	/* by tl_hash_file */
	tl_fn fn;		/* the tool's callback (tl_run, tl_drain) */
	int depth;		/* files being processed, one inside another */
	uint64_t last_progress_ns;
	const char *what;	/* "copied", "hashed" */
	int total;		/* wanted entries */
	/* test hook: DUET_TOOLS_TEST_STOP_AFTER=N stops (SIGSTOP) after N files */
	int stop_after;
	/* DUET_TOOLS_TEST_STOP_IN_FILE=N stops inside the Nth file read */
	int stop_in_file, files_read;
};

void tl_init(struct tl_ctx *c, const char *prog, const char *root, bool quiet, bool no_duet);
void tl_free(struct tl_ctx *c);

/* List the tree under c->root (lstat, sorted). Errors are reported and
 * counted; returns -errno only when the root itself cannot be read. */
int tl_list(struct tl_ctx *c);

/*
 * Open libduet on the root (EXISTS, and MODIFIED if want_modified) and
 * wait for the registration scan. When it cannot start, warns and leaves
 * the plain walk in force.
 */
void tl_duet_start(struct tl_ctx *c, bool want_modified);
/*
 * The same in a thread of its own, begun before the tool's own listing so
 * that the two overlap; tl_duet_start() then waits for it (and warns if
 * it failed). A process that exits without tl_free() (a failed step)
 * waits for it and closes the session on its way out.
 */
void tl_duet_begin(struct tl_ctx *c, bool want_modified);

/* Visit every TL_WANT entry not yet done, cached files first. */
void tl_run(struct tl_ctx *c, tl_fn fn);
/* Process the queued files and what items queue meanwhile, last queued
 * first (called by tl_run before each walk entry). */
void tl_drain(struct tl_ctx *c, tl_fn fn);
/* Fetch pending items and queue the files they name, without processing
 * them. */
void tl_poll(struct tl_ctx *c);
/*
 * Between chunks of a long read (every TL_POLL_CHUNK bytes): fetch items
 * and process the files they queue now, unless this file is itself one
 * processed from between another's chunks. The caller's buffers must be
 * consumed (written, hashed) before the call: the tool's callback runs
 * inside it.
 */
void tl_between(struct tl_ctx *c);
#define TL_POLL_CHUNK	(2u << 20)	/* poll at least every this many bytes read */
/* Mark processed: the walk skips it; duet stops queueing its events. */
void tl_done(struct tl_ctx *c, struct tl_entry *e);
/*
 * The duet half of tl_done() alone, for a tool that sets TL_DONE itself
 * and will read the file again later: its done mark (and a polite task's
 * drop of the pages) waits until then.
 */
void tl_mark_done(struct tl_ctx *c, struct tl_entry *e);
/* Count a processed file for progress and the test hook. */
void tl_progress(struct tl_ctx *c, uint64_t bytes);
void tl_progress_end(struct tl_ctx *c);
/* Call after the first chunk of each file read (the test hook). */
void tl_test_reading(struct tl_ctx *c);

/* Full path (root + "/" + rel) in a static-per-call malloc'd string. */
char *tl_path(const struct tl_ctx *c, const char *rel);

/* Report a problem: "prog: path: msg" on stderr (path escaped), counted. */
void tl_err(struct tl_ctx *c, const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Write s escaped (\\, \n, other control bytes as \xHH) to f. */
void tl_put_escaped(FILE *f, const char *s);
/* Reverse of tl_put_escaped; returns a malloc'd string or NULL if bad. */
char *tl_unescape(const char *s);

/*
 * XXH3-128 of the file rel (opened without following a symlink), with
 * fstat before and after reading: the caller compares them to learn
 * whether it changed meanwhile. Returns 0 or -errno.
 */
int tl_hash_file(struct tl_ctx *c, const char *rel, struct stat *before, struct stat *after,
		 uint8_t hash[16]);
/* 32 lowercase hex digits (+ NUL) */
void tl_hash_hex(const uint8_t hash[16], char out[33]);
/* st_size and st_mtim equal */
bool tl_same_version(const struct stat *a, const struct stat *b);

int tl_cmp_rel(const void *a, const void *b);	/* struct tl_entry ** by rel */
uint64_t tl_now_ns(void);

#endif
