/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libduet's interface for duetd: not exported from libduet.so (hidden
 * visibility, absent from libduet.sym). duetd links the in-process
 * backend statically and uses these task extensions, which exist for
 * in-process sessions only (-EINVAL, or NULL, for any other). The
 * backends' own interface is backend.h.
 */
#ifndef DUET_INTERNAL_H
#define DUET_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "duet/duet.h"

/* What duetd adds to a task it registers for a client. */
struct duet__task_ext {
	/*
	 * Whether the client may learn about the file at path (a name of it
	 * under the task's directory): 1 yes, 0 no. NULL: every file. Called
	 * with the session lock held, from the pump thread or the caller.
	 */
	int (*visible)(void *ud, const char *path);
	void *ud;
	/*
	 * Bound on the task's pending pages (0: none). Past it the task's
	 * pending pages are dropped, a LOST item is queued and the task
	 * receives nothing more until it fetches that LOST item; then its
	 * directory is scanned again (a resync).
	 */
	uint64_t max_pending;
	/* Registered but not scanned and fed no events until duet__task_start(). */
	bool hold;
	/*
	 * The task's root, opened (O_PATH) by the caller with the client's
	 * rights: opts->path is then ignored, and the root is the directory
	 * this fd names, resolved once. (A path resolved again here, as root,
	 * could follow a symlink swapped in after the client's check.)
	 */
	bool have_root_fd;
	int root_fd;
	/*
	 * Bound on the task's done marks (0: none), counted as the engine
	 * stores them (engine.h); past it marking fails with -EDQUOT. Only
	 * duetd sets one: an in-process session's marks cost its own
	 * process, which can bound itself, while duetd's cost every client.
	 */
	uint64_t max_done_marks;
	/*
	 * A polite task's (DUET_TASK_POLITE) process: the pages it brings
	 * in are the ones the task's drops may take back (0: this process,
	 * as for an in-process session). duetd passes the client's pid
	 * (SO_PEERCRED), as the kernel's events name it (duetd shares the
	 * kernel's first pid namespace).
	 */
	int32_t owner_pid;
	/*
	 * A task that never marks done (duetd's datasets): not one of those
	 * whose done marks a polite drop waits for.
	 */
	bool observer;
};

int duet__task_new_ext(struct duet_session *s, const struct duet_task_opts *opts,
		       const struct duet__task_ext *x, struct duet_task **ret);
int duet__task_start(struct duet_task *t);
/* The task's root as resolved at registration (absolute, no symlinks). */
const char *duet__task_root(const struct duet_task *t);
/*
 * 1 once the task's session has processed every event stamped before ts
 * (CLOCK_MONOTONIC ns, the stream's clock), else 0, and the readers are
 * asked for the marks that pass it. In-process sessions only.
 */
int duet__task_caught_up(struct duet_task *t, uint64_t ts);
/*
 * duet_task_fetch(), and *drained: nothing was left pending for the task
 * when it returned (its fd stopped being readable). duetd tells its
 * client (DP_REPLY_DRAINED).
 */
int duet__task_fetch(struct duet_task *t, struct duet_item *items, size_t n, bool *drained);
/* 1 while the task is over its bound (waiting for its client). */
int duet__task_paused(struct duet_task *t);

struct duet__task_stats {
	bool paused;		/* held, or over its bound */
	bool scan_complete;	/* not paused, and every file queued is scanned */
	uint64_t done_marks;	/* counted as the engine stores them */
};
int duet__task_stats(struct duet_task *t, struct duet__task_stats *st);

struct duet__session_stats {
	uint64_t events;	/* page events given to the engine */
	uint64_t engine_bytes;	/* memory held by the engine (estimate) */
	uint64_t entries;	/* shared pending entries */
	uint64_t inodes;
	uint64_t page_bytes;	/* per pending page (estimate) */
	uint64_t mark_bytes;	/* per done mark (estimate) */
	uint64_t ev_n[4];	/* page events by type: ADDED, REMOVED, DIRTY, FLUSHED */
	uint64_t ev_pages[4];	/* their pages (an inode-level FLUSHED: 0) */
	uint64_t lost_events;	/* events the ring buffer dropped (as counted there) */
	uint64_t lost_notices;	/* losses seen (each a LOST and a resync) */
	uint64_t wakeups;	/* the event source's reader wake-ups */
	uint64_t late;		/* events after their CPU's mark (each with a LOST) */
	uint64_t latency_us;	/* the bound in force; 0: the readers batch */
	uint64_t polite_tasks;	/* cache-polite tasks */
	uint64_t polite_dropped;	/* pages they dropped (handed to fadvise) */
	bool polite_held;	/* drops wait for another duet process to go */
};
int duet__session_stats(struct duet_session *s, struct duet__session_stats *st);

/* ---- the daemon client's blocking calls (client.c) ---- */

/*
 * The blocking calls under the daemon backend, for programs that speak to duetd
 * themselves (duet status). cl_connect: a connection to the socket, 0
 * and *ret, or -errno (-ECONNREFUSED when nothing is there, -ENAMETOOLONG
 * for a path too long for a socket address). cl_call: one request (header
 * from type and *seqp, incremented; payload a then b) and its reply, the
 * READY messages before it skipped (*ready set if not NULL). The reply's
 * body after struct dp_reply goes to *rbuf (grown, *rcap its size), its
 * length to *blen_out; for a DP_ERROR too, whose body is the daemon's
 * sentence. Returns the reply's result, or -errno for the socket.
 */
int cl_connect(const char *sock, int *ret);
int cl_call(int fd, uint32_t *seqp, uint16_t type, const void *a, size_t alen, const void *b,
	    size_t blen, void **rbuf, size_t *rcap, size_t *blen_out, bool *ready);

#endif
