/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libduet: page-cache events for applications.
 *
 * A task registers a directory and an event mask, polls one fd, fetches
 * items (runs of pages of one file in one state), marks files or pages
 * done and asks for paths. All functions return >= 0 on success and
 * -errno on failure; outputs are written only on success. See libduet(3).
 */
#ifndef DUET_DUET_H
#define DUET_DUET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Event-based masks: a task receives every transition since its last fetch.
 * State-based masks: a task receives only the net change since its last
 * fetch, expressed with the event names (ADDED or REMOVED for EXISTS,
 * DIRTY or FLUSHED for MODIFIED); a change that cancelled is never
 * delivered. EXISTS with ADDED or REMOVED, or MODIFIED with DIRTY or
 * FLUSHED, is rejected (-EINVAL).
 */
#define DUET_ADDED	0x01u	/* page entered the page cache */
#define DUET_REMOVED	0x02u	/* page left it */
#define DUET_DIRTY	0x04u	/* page went from clean to dirty */
#define DUET_FLUSHED	0x08u	/* page went from dirty to clean (written back) */
#define DUET_EXISTS	0x10u	/* state: whether the page is cached */
#define DUET_MODIFIED	0x20u	/* state: whether the page is dirty */

/* Item flags. */
#define DUET_ITEM_LOST		0x01u	/* events were lost: drop your view; a resync follows */
#define DUET_ITEM_INODE_LEVEL	0x02u	/* FLUSHED known only per inode (stock kernel) */

/*
 * One item: a run of adjacent pages of one file in the same state.
 * dev uses the kernel's encoding (major << 20 | minor); gen guards against
 * inode number reuse: the same (dev, ino) with another gen is another file.
 */
struct duet_item {
	uint64_t ino;
	uint64_t gen;
	uint64_t index;		/* first page */
	uint64_t count;		/* pages */
	uint32_t dev;
	uint32_t state;		/* DUET_ADDED ... DUET_FLUSHED */
	uint32_t flags;		/* DUET_ITEM_* */
	uint32_t reserved;
};

/* Identity of a file: the same (dev, ino) with another gen is another file. */
struct duet_fileid {
	uint64_t ino;
	uint64_t gen;
	uint32_t dev;
	uint32_t reserved;
};

static inline struct duet_fileid duet_item_fileid(const struct duet_item *it)
{
	struct duet_fileid f = { it->ino, it->gen, it->dev, 0 };

	return f;
}

struct duet_session;
struct duet_task;

/* Diagnostics go to this callback; the library never prints. */
typedef void (*duet_log_fn)(void *ud, int level, const char *msg);

/*
 * Option structs grow at their end; sz says the caller's size. A smaller
 * one (an older header) gets 0, the default, for the fields it lacks; a
 * larger one (a newer header) is accepted only if every byte this library
 * does not know is 0, else -EINVAL. Initialise them with an initializer
 * (= { .sz = sizeof(o), ... }) so that unset fields and padding are 0.
 */
struct duet_session_opts {
	size_t sz;			/* sizeof(struct duet_session_opts) */
	duet_log_fn log;		/* NULL: diagnostics are dropped */
	void *log_ud;
	unsigned int buffer_kb;		/* per-CPU ring buffer; 0: kernel default */
	unsigned int flags;		/* DUET_SESSION_* */
	unsigned int subbuf_kb;		/* ring-buffer sub-buffer size (kernel 6.8+);
					 * 0: 64 */
	const char *socket;		/* duetd's socket (daemon mode); NULL: the
					 * DUET_SOCKET variable, else /run/duet/duetd.sock */
	const char *backend;		/* in-process mode's event source: "tracefs"
					 * (NULL) or "perf" (perf_event_open, through
					 * its plugin); daemon mode: duetd's own */
	unsigned int latency_ms;	/* while a task waits for items (it has
					 * none pending), the time from a page event
					 * to its item stays about this short; 0:
					 * DUET_LATENCY_MS. See duet_session_new(3) */
};

/* The default latency bound while a task waits (milliseconds). */
#define DUET_LATENCY_MS 2u

#define DUET_SESSION_STOCK	0x1u	/* ignore patched kernel events */
#define DUET_SESSION_DAEMON	0x2u	/* use duetd even as root */
#define DUET_SESSION_LOCAL	0x4u	/* in-process only, even when not root */

/*
 * Open a session: the page-cache event source and the engine shared by
 * its tasks. In-process mode needs root (it owns a tracing instance); a
 * program that is not root, or asks with DUET_SESSION_DAEMON, a socket
 * or DUET_SOCKET, talks to duetd instead, with the same calls (see
 * duetd(8)). Returns 0, -EACCES (not allowed), -ENOENT (no tracefs or
 * events), -ECONNREFUSED (no duetd), -EPROTONOSUPPORT (a duetd of another
 * protocol version), -ENOMEM.
 */
int duet_session_new(const struct duet_session_opts *opts, struct duet_session **ret);
/* Deregisters every task and closes the session. NULL is a no-op. */
void duet_session_free(struct duet_session *s);

#define DUET_FLUSH_NONE		0
#define DUET_FLUSH_INODE	1	/* stock kernel: inode-level FLUSHED */
#define DUET_FLUSH_EXACT	2	/* patched kernel: per page */
/* Which FLUSHED semantics are in force (after the first task registers). */
int duet_session_flush_semantics(struct duet_session *s);

struct duet_task_opts {
	size_t sz;			/* sizeof(struct duet_task_opts) */
	const char *name;		/* for status output */
	uint32_t mask;			/* DUET_ADDED ... DUET_MODIFIED */
	const char *path;		/* directory (or file) to watch */
	unsigned int latency_ms;	/* this task's bound while it waits; 0: the
					 * session's; 100 or more: none (events
					 * come in batches, at least every 100 ms) */
	uint64_t flags;			/* DUET_TASK_* below; 0: none. 64 bits so
					 * that the struct grows: an older caller's
					 * padding after latency_ms is never read */
};

/*
 * Cache-polite: the pages this task's process brings into the page cache
 * under its directory are dropped again (POSIX_FADV_DONTNEED) once every
 * task whose directory covers the file and that watches cached pages
 * (EXISTS, ADDED or REMOVED) has marked them done. Pages cached before
 * the task registered, and pages another process read in or anyone
 * dirtied since, are never dropped. In-process, "this task's process" is
 * the session's process, and the tasks are the session's; through duetd,
 * the process that registered the task, and the tasks of every client.
 * A read hit (a page another process reads while cached) makes no page
 * event: duet cannot see it, and such a page is dropped all the same.
 * While another duet process runs (another session, duetd), nothing is
 * dropped until it has gone: it may want those pages.
 * Through a duetd too old for it, duet_task_new() fails with
 * -EOPNOTSUPP. See duet_task_new(3).
 */
#define DUET_TASK_POLITE	0x1ull

/*
 * Register a task. Pages already cached under path are reported as if
 * they had just been added (and dirtied, where dirty): the scan runs in
 * the background, see duet_task_status(). Returns 0, -EINVAL (bad mask:
 * EXISTS with ADDED or REMOVED, MODIFIED with DIRTY or FLUSHED, none; a
 * flag this library does not know), -EOPNOTSUPP (DUET_TASK_POLITE
 * through a duetd that predates it),
 * -ENOENT (path missing), -ENOSPC (64 tasks already), -errno.
 */
int duet_task_new(struct duet_session *s, const struct duet_task_opts *opts,
		  struct duet_task **ret);
/* Deregister. NULL is a no-op. */
void duet_task_free(struct duet_task *t);

/* Readable (poll) while items are pending. */
int duet_task_fd(const struct duet_task *t);

/*
 * Up to n items, in (dev, ino, index) order; a LOST item comes first when
 * events were lost (drop your view: a resync reports the cached pages
 * again). Returns how many were written, 0 when none are pending.
 */
int duet_task_fetch(struct duet_task *t, struct duet_item *items, size_t n);

/* Identity of the file at path (which must lie under the task's path). */
int duet_task_fileid(struct duet_task *t, const char *path, struct duet_fileid *ret);

/*
 * Done marks: pages [index, index + count) of f, or the whole file when
 * count is 0. Events for done pages are not queued for the task; marking
 * drops what is pending. check returns 1 if all of the range is done, by
 * any marks (ranges adjacent or overlapping count as one); with count 0,
 * if the file has a whole-file mark, or ranges that cover it as it is
 * now: [0, its size in pages, rounded up). See duet_task_check_done(3).
 */
int duet_task_set_done(struct duet_task *t, const struct duet_fileid *f, uint64_t index,
		       uint64_t count);
int duet_task_reset_done(struct duet_task *t, const struct duet_fileid *f, uint64_t index,
			 uint64_t count);
int duet_task_check_done(struct duet_task *t, const struct duet_fileid *f, uint64_t index,
			 uint64_t count);

/*
 * Absolute path of f under the task's directory. -ENOENT if it has no
 * name there (any more), -ENAMETOOLONG if len is too small.
 */
int duet_task_path(struct duet_task *t, const struct duet_fileid *f, char *buf, size_t len);

/*
 * Save and load the task's done marks: each keyed by its file's identity
 * (dev, ino, the file system's inode generation), with its path under
 * the task's directory as a hint; any byte may be in a name. The save is
 * atomic and durable (a temporary file, fsync, rename, fsync of the
 * directory). A load restores a mark on the file at the saved path if it
 * is still that inode and generation, else on the same file renamed
 * within the directory, else nowhere; it returns the marks restored, or
 * -EBADMSG (nothing restored) for a malformed or cut file. Files of the
 * earlier format still load. See duet_task_save(3).
 */
int duet_task_save(struct duet_task *t, const char *file);
int duet_task_load(struct duet_task *t, const char *file);

struct duet_task_status {
	size_t sz;			/* set by the caller */
	uint64_t events;		/* page events that reached the task */
	uint64_t items;			/* items delivered */
	uint64_t pages;			/* pages in those items */
	uint64_t coalesced;		/* pages merged into another page's item */
	uint64_t cancelled;		/* pending pages whose change cancelled */
	uint64_t lost;			/* LOST notifications */
	uint64_t resyncs;		/* rescans after a loss */
	uint64_t pending;		/* pages pending now */
	uint64_t scan_files;		/* files to scan (registration, resync) */
	uint64_t scan_done;		/* files scanned */
	/*
	 * Appended after the counters: written only when sz covers all
	 * of it (an older caller's struct ends before). The name given at
	 * registration ("task" if none), truncated to 63 bytes, with NUL.
	 */
	char name[64];
};

/*
 * The task's counters (and name): the fields that fit in st->sz are
 * written, st->sz is set to what was written. -EINVAL if sz ends before
 * pending (the smallest struct ever published).
 */
int duet_task_status(struct duet_task *t, struct duet_task_status *st);

/*
 * Residency: what the page cache holds of each file of a tree, or of one
 * of duetd's datasets, without a task. See duet_residency(3).
 */
#define DUET_RESIDENCY_RECURSIVE	0x1u	/* into subdirectories */
#define DUET_RESIDENCY_CACHED_ONLY	0x2u	/* only files with cached pages */
#define DUET_RESIDENCY_XDEV		0x4u	/* stay on each path's file system */

struct duet_residency_opts {
	size_t sz;			/* sizeof(struct duet_residency_opts) */
	unsigned int flags;		/* DUET_RESIDENCY_* above */
	const char *dataset;		/* duetd's dataset of this name (duetd(8)
					 * --dataset): live figures from the daemon,
					 * path then optional (a subtree of it) */
	const char *socket;		/* with dataset: duetd's socket; NULL: the
					 * DUET_SOCKET variable, else the default */
};

/* Entry flags. */
#define DUET_RESIDENCY_MINCORE	0x1u	/* counted by mincore (no cachestat):
					 * dirty and writeback unknown, pages
					 * past the end of the file not seen */
#define DUET_RESIDENCY_LIVE	0x2u	/* a dataset's figures, kept from the
					 * page events: writeback unknown */
#define DUET_RESIDENCY_DIR	0x4u	/* a directory that could not be read
					 * (error says why) */

struct duet_residency {
	struct duet_fileid id;		/* gen 0 from a walk */
	const char *path;		/* absolute; valid during the callback */
	uint64_t size;			/* bytes */
	uint64_t cached;		/* pages in the page cache */
	uint64_t dirty;			/* pages dirty */
	uint64_t writeback;		/* pages under writeback */
	int32_t error;			/* 0, or -errno: the figures are unknown
					 * (-EACCES: the caller may not read it) */
	uint32_t flags;			/* DUET_RESIDENCY_MINCORE ... */
};

/* Called with each batch of files; a non-zero return stops the query. */
typedef int (*duet_residency_fn)(void *ud, const struct duet_residency *r, size_t n);

/*
 * The residency of every regular file at or under path (a file or a
 * directory; its direct files only without DUET_RESIDENCY_RECURSIVE),
 * handed to fn in batches. Without a dataset, the calling process walks
 * the tree with its own rights and counts with cachestat(2): it needs no
 * daemon and no root, and sees exactly the files it could stat; a file it
 * cannot open is reported with error set, never with figures. Nothing is
 * read into the page cache. With opts->dataset, duetd answers from the
 * dataset's live figures (no walk, only files with cached pages) and
 * only for files the caller could open. Returns the number of files
 * reported, fn's non-zero return, or -ENOENT (no such path or dataset),
 * -EINVAL, -ECONNREFUSED (no duetd), -EOPNOTSUPP (a duetd without
 * datasets), -errno.
 */
int duet_residency(const char *path, const struct duet_residency_opts *opts,
		   duet_residency_fn fn, void *ud);

/* A sentence for a -errno value returned by this library. */
const char *duet_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
