/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon client's log of a task's done marks (client.c), replayed to
 * a new duetd after a restart. It keeps the net effect of the set and
 * reset calls, not the calls: per file, as the engine does
 * (engine-done.c), a whole-file mark, a set of page ranges done, or the
 * whole file minus a set of ranges not done. So it holds what the daemon
 * held, and costs what that costs (rset.h), however many calls made it.
 *
 * A file is its (dev, ino) with the gen of the last call that named it:
 * a call naming another gen replaces the file's marks, as the engine
 * drops them when it learns that the number names another file (the
 * daemon refuses such a call, -ESTALE, while it knows the old gen: then
 * the client logs nothing).
 *
 * Not thread-safe: the task's lock serialises the calls.
 */
#ifndef DUET_MARKLOG_H
#define DUET_MARKLOG_H

#include <stdint.h>

#include "backend.h"	/* enum duet__done_op */

struct ml_file;

struct marklog {
	struct ml_file *files;	/* uthash, by (dev, ino) */
	uint64_t marks;		/* held, counted as the engine counts them */
};

/*
 * duet_task_set_done(3) and duet_task_reset_done(3) on the log: 0,
 * -EOVERFLOW for a range past 2^32 pages (nothing logged), -ENOMEM.
 */
int marklog_set(struct marklog *ml, const struct duet_fileid *f, uint64_t index,
		uint64_t count);
int marklog_reset(struct marklog *ml, const struct duet_fileid *f, uint64_t index,
		  uint64_t count);

/*
 * The calls of kind op (DUET__DONE_SET or DUET__DONE_RESET) that rebuild
 * the log's marks on a task that has none of these files' marks: all of
 * the sets, then all of the resets (a file done as a whole minus ranges
 * is a whole-file set, then a reset per range not done). Ranges are
 * maximal runs, in page order. Stops at the first nonzero fn() and
 * returns it.
 */
typedef int (*marklog_fn)(void *ud, const struct duet_fileid *f, uint64_t index,
			  uint64_t count);
int marklog_foreach(const struct marklog *ml, enum duet__done_op op, marklog_fn fn, void *ud);

/* The files the log holds marks of. */
uint64_t marklog_files(const struct marklog *ml);
/* The memory the log holds (the files' entries and their sets' data). */
uint64_t marklog_bytes(const struct marklog *ml);

/* Forgets every mark. */
void marklog_clear(struct marklog *ml);

#endif
