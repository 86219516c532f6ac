/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The in-process backend's insides (backend.h): the live source, the
 * path index and the engine, driven by one pump thread. Shared by
 * local.c (sessions, tasks, the backend's calls, duetd's extensions),
 * local-pump.c (the pump thread), local-scan.c (scans) and local-save.c
 * (saved done marks). Not for anyone else.
 *
 * Locking: one mutex (s->lock) covers the engine, the index and the task
 * table. The pump thread takes it per batch of records; API calls take it
 * briefly. Reader threads of the live source never take it.
 *
 * Ordering: the registration scan runs in the pump thread between event
 * batches. Events set page state absolutely (engine.h), so a scan taken
 * after the events processed so far and before those not yet processed
 * leaves the engine's view exact.
 */
#ifndef DUET_LOCAL_H
#define DUET_LOCAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <xxhash.h>

#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned int)XXH3_64bits((keyptr), (keylen)))
/* No add may abort the process: local-scan.c, the only one that adds, checks. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "attrwatch.h"
#include "folios.h"
#include "backend.h"
#include "devices.h"
#include "engine.h"
#include "index.h"
#include "internal.h"
#include "live.h"
#include "source.h"
#include "scan.h"

/*
 * The consumer's constants and their twins in the public API have the
 * same values, and the backend relies on it: records go to the engine
 * with their type as it is (local-pump.c), and the live source's flush
 * semantics are the session's (local.c). Checked here, where both are
 * visible, so that a change to one fails the build, not the events.
 */
_Static_assert(DC_ADDED == DUET_ADDED, "consumer/record.h and duet.h: ADDED");
_Static_assert(DC_REMOVED == DUET_REMOVED, "consumer/record.h and duet.h: REMOVED");
_Static_assert(DC_DIRTY == DUET_DIRTY, "consumer/record.h and duet.h: DIRTY");
_Static_assert(DC_FLUSHED == DUET_FLUSHED, "consumer/record.h and duet.h: FLUSHED");
_Static_assert(DC_EVENTS_ALL == (DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED),
	       "consumer/record.h and duet.h: the events");
_Static_assert((int)DC_FLUSH_NONE == DUET_FLUSH_NONE, "consumer/live.h and duet.h: NONE");
_Static_assert((int)DC_FLUSH_INODE == DUET_FLUSH_INODE, "consumer/live.h and duet.h: INODE");
_Static_assert((int)DC_FLUSH_EXACT == DUET_FLUSH_EXACT, "consumer/live.h and duet.h: EXACT");

struct scan_file {
	char *path;
	uint32_t dev;
	uint64_t ino;
};

/*
 * A file's (dev, ino) as the key of the sets below (the task's unscanned
 * and hidden files, the session's names seen before a batch, its scan
 * jobs), and the lookup they share.
 */
struct local_ikey {
	uint64_t ino;
	uint32_t dev;
	uint32_t pad;
};

static inline struct local_ikey local_ikey(uint32_t dev, uint64_t ino)
{
	struct local_ikey k = { .ino = ino, .dev = dev };

	return k;
}

/* out: head's entry for (dev, ino), or NULL. */
#define LOCAL_IFIND(head, dev, ino, out)                                  \
	do {                                                              \
		struct local_ikey k_ = local_ikey((dev), (ino));          \
		HASH_FIND(hh, (head), &k_, sizeof(k_), (out));            \
	} while (0)

/*
 * A file queued for a task's scan. Until it is scanned, events of that
 * file do not reach the task: the scan reports the file's state at that
 * moment, and an earlier event would tell the task about a change to a
 * page it never heard of (a REMOVED with no ADDED before it).
 */
struct unscanned {
	struct local_ikey k;
	UT_hash_handle hh;
};

/*
 * A file under a visibility-checked task's directory whose page state the
 * task does not know: it could not see the file when the registration
 * scan found pages cached, or when the file's pages changed (the events
 * were withheld from it). Until the task is told (a scan, once the file
 * becomes visible), events of the file do not reach it (local-vis.c).
 */
struct hidden {
	struct local_ikey k;
	UT_hash_handle hh;
};

/*
 * The tasks that saw a file (a name under the directory, known to them)
 * just before its first name change since the changes were last applied,
 * and those a scan was queued for meanwhile (local-vis.c).
 */
struct seen_before {
	struct local_ikey k;
	uint64_t mask, queued;
	UT_hash_handle hh;
};

struct local_task {
	struct duet_task base;
	struct local_session *s;
	int slot;
	uint64_t id;		/* unique in the session: scan jobs name their task by it */
	uint64_t scan_epoch;	/* bumped when queued scans are dropped */
	uint64_t jobs_out;	/* scan jobs read but not applied yet */
	uint64_t jobs_pages;	/* cached pages those jobs hold */
	int efd;
	bool signalled;
	bool lost_pending;	/* a LOST item not fetched yet */
	char *name;
	char *root;
	uint32_t mask;
	/* Scan queue (registration, resync, files renamed in). */
	struct scan_file *scan;
	size_t nscan, scan_pos, scan_cap;
	struct unscanned *unscanned;
	uint64_t scan_files, scan_done, resyncs;
	/* duetd's extensions (internal.h) */
	int (*visible)(void *ud, const char *path);
	void *vis_ud;
	struct hidden *hidden;	/* visibility-checked tasks only */
	uint64_t nhidden;
	bool hidden_oom;	/* one could not be remembered: resync at the next change */
	uint64_t max_pending;
	int paused;		/* PAUSE_*: fed nothing, not scanned */
	unsigned int latency_ms;	/* its bound while it waits; 0: the session's */
	/* Cache-polite (local-polite.c) */
	bool polite;		/* DUET_TASK_POLITE */
	bool observer;		/* never marks done (duetd's datasets): not waited for */
	int32_t owner_pid;	/* the process whose page-ins are its to drop */
	uint64_t polite_since;	/* registration, in the stream's clock (ns) */
};

enum {
	PAUSE_NONE,
	PAUSE_HOLD,		/* until duet__task_start() */
	PAUSE_OVERFLOW,		/* over max_pending: until LOST is fetched */
	PAUSE_REPAIR,		/* the path index is repairing: until it is done */
};


struct polite_file;
struct polite_tid;
struct polite_drop;

struct local_session {
	struct duet_session base;
	struct duet_session_opts opts;
	pthread_mutex_t lock;
	pthread_mutex_t reg_lock;	/* one registration at a time (local.c) */
	pthread_t pump;
	bool pump_started;
	int stopfd;
	int dropfd;		/* eventfd: a done mark queued polite drops for the pump */
	bool drop_kicked;	/* dropfd written, not yet read (lock) */
	int mountfd;		/* /proc/self/mountinfo: POLLPRI when mounts change */
	struct de_engine *e;
	struct dc_index *x;
	/*
	 * Attribute changes on every file system a visibility-checked task
	 * depends on (its tree, the mounts in it, the directories above it):
	 * made when the first such task registers (duetd's clients).
	 */
	struct dc_attrwatch *aw;
	bool fetch_fresh;	/* the next record run starts a fetch */
	struct dc_source *src;		/* NULL until the first task */
	enum dc_backend backend;	/* from the session's options */
	/*
	 * The latency bound in force (microseconds; 0: readers batch), and
	 * since when no task has waited (local_update_latency()).
	 */
	unsigned int lat_us;
	uint64_t lat_idle_since;
	struct dc_mounts mounts;
	uint32_t *devs;			/* the source's devices, as last set */
	size_t ndevs;
	struct dc_bdi *bdis;
	size_t nbdis;
	struct local_task *tasks[DE_MAX_TASKS];
	/* Index changes seen during a batch, applied after each event. */
	struct { uint32_t dev; uint64_t ino; int why; } *inval;
	size_t ninval, inval_cap;
	bool inval_all;
	/*
	 * Who saw the files changed since (local-vis.c); directories whose
	 * attributes changed (from fanotify, by identity), and whether one
	 * could not be told (every hidden file is checked again then).
	 */
	struct seen_before *before;
	struct { uint32_t dev; uint64_t ino; } *dirattr;
	size_t ndirattr, dirattr_cap;
	bool recheck_hidden;
	/* Scans read but not applied yet (see struct scan_job). */
	struct scan_job *jobs;		/* by file: the first job of each */
	struct scan_job *ready, *ready_tail;	/* in the order of their hi */
	uint64_t njobs;
	uint64_t next_task_id;
	/* The path index overflowed / finished its repair: told after the event. */
	bool index_lost, index_repaired;
	uint64_t names_capped;	/* the index's count, as last logged */
	/* Page events given to the engine, by type (ADDED, REMOVED, DIRTY,
	 * FLUSHED), in events and in pages; ring-buffer losses. */
	uint64_t ev_n[4], ev_pages[4];
	uint64_t lost_events, lost_notices;
	/*
	 * Stock kernels: writeback_dirty_folio names a folio by its first
	 * page only. The multi-page folios the ADDED records showed, by
	 * their first page, so that a DIRTY covers the whole folio
	 * (folios.c).
	 */
	struct folio_table folios;
	bool stock_dirty;	/* the source's DIRTY is writeback_dirty_folio's */
	time_t capped_logged;
	/*
	 * Cache-polite tasks (local-polite.c): the pages the polite tasks'
	 * processes brought in, by file; thread ids seen in the events and
	 * the process each belongs to; the drops decided, done outside the
	 * lock (local_polite_run()).
	 */
	struct polite_file *polite;
	struct polite_tid *polite_tids;
	uint64_t npolite_tids;
	int npolite;			/* polite tasks */
	uint64_t polite_slots;		/* their slots, a bit each */
	struct polite_drop *drops;
	size_t ndrops, drops_cap;
	uint64_t polite_dropped;	/* pages handed to fadvise */
	uint64_t others_ns;		/* when other duet consumers were looked for */
	bool others;			/* ... and whether one ran */
	bool polite_held;		/* drops held back for them: check again */
};

/*
 * One file's scan for one task, placed in the stream (scan.h): read by
 * the pump with the session lock released, then kept until the stream
 * has passed hi, recording the file's events meanwhile, and applied at
 * that point. Until then the file's events do not reach the task (it is
 * in the task's unscanned set).
 */
struct scan_job {
	struct local_ikey k;
	UT_hash_handle hh;		/* in s->jobs when first of its file */
	struct scan_job *same;		/* the file's other jobs */
	struct scan_job *next;		/* s->ready */
	int slot;
	uint64_t tid, epoch, gen, hi, pages;
	char *path;
	int err;
	bool deferred;		/* not read: its task's bound had no room */
	struct ds_scan sc;
};

/* The in-process session or task behind a public one; NULL if another backend's. */
struct local_session *local_session_of(struct duet_session *s);
struct local_task *local_task_of(struct duet_task *t);

/* For a session or task known to be in-process. */
static inline struct local_task *local_task(struct duet_task *t)
{
	return duet__container_of(t, struct local_task, base);
}

/* Diagnostics to the session's log callback (the library never prints). */
void local_logf(struct local_session *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- local.c ---- */

/* The devices every task's directory covers; the live source follows. */
int local_update_devices(struct local_session *s);
int local_task_fileid(struct duet_task *t, const char *path, struct duet_fileid *ret);
int local_task_done(struct duet_task *t, enum duet__done_op op, const struct duet_fileid *f,
		    uint64_t index, uint64_t count);

/* ---- local-pump.c ---- */

void *local_pump_main(void *arg);
/* The engine's relevance callback (engine.h), ud the session. */
uint64_t local_relevant_cb(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen);
/* The index's change callback (index.h), ud the session. */
void local_index_changed(void *ud, uint32_t dev, uint64_t ino, int why);
/*
 * Apply every directory and attribute change queued so far (before a
 * batch of records, and before a visibility-checked task's fetch).
 */
void local_sync_changes(struct local_session *s);
/* Watch the attributes that decide what task t may see (local-pump.c). */
void local_watch_attrs(struct local_session *s, struct local_task *t);

/* ---- local-vis.c ---- */

/*
 * Whether task t sees (dev, ino): a name of it under the task's directory
 * (the first one, the name relevance and paths use) that the task may
 * read; path gets that name.
 */
bool local_task_sees(struct local_session *s, struct local_task *t, uint32_t dev, uint64_t ino,
		     char *path, size_t len);
/*
 * relevance()'s visibility decision for a visibility-checked task and a
 * file named path under its directory: true if its events may reach the
 * task. A file it cannot see is remembered as hidden; a hidden file it
 * can see now is scanned first (after the current event).
 */
bool local_vis_relevant(struct local_session *s, struct local_task *t, uint32_t dev,
			uint64_t ino, const char *path);
/* A scan of (dev, ino) is queued for t: its events wait for it. */
bool local_unscanned(const struct local_task *t, uint32_t dev, uint64_t ino);
/*
 * Tasks (mask) get LOST: their views are dropped, so the deleted files
 * they saw are not theirs to be told about any more either.
 */
void local_lost(struct local_session *s, uint64_t mask);
/*
 * The readers' latency bound from the tasks that wait for items (none
 * pending): the least of their bounds; batching once none has waited for
 * a second (local-pump.c).
 */
void local_update_latency(struct local_session *s);
/* Forget the folios ADDED showed (local-pump.c). */
void local_folios_clear(struct local_session *s);
/* The file's page state was never told to t (it was hidden from it). */
bool local_task_hidden(const struct local_task *t, uint32_t dev, uint64_t ino);
void local_hidden_add(struct local_task *t, uint32_t dev, uint64_t ino);
void local_hidden_forget(struct local_task *t, uint32_t dev, uint64_t ino);
void local_hidden_clear(struct local_task *t);
/* The registration walk found a file under t's directory that t cannot see. */
void local_hidden_found(struct local_task *t, const char *path, uint32_t dev, uint64_t ino);
/* From the index's change callback: note who saw the file before this change. */
void local_note_change(struct local_session *s, uint32_t dev, uint64_t ino, int why);
/* A file renamed, linked or mounted in: scanned for the tasks that did not see it. */
void local_arrived(struct local_session *s, uint32_t dev, uint64_t ino);
/*
 * A name of the file went: a task with no name of it left under its
 * directory forgets it (should it come back, it arrives anew). A number
 * reused by a new file while still remembered costs that file one scan.
 */
void local_name_gone(struct local_session *s, uint32_t dev, uint64_t ino);
/* A file's attributes changed: scanned for the tasks that see it now and did not. */
void local_attr_recheck(struct local_session *s, uint32_t dev, uint64_t ino);
/* Directory (dev, ino)'s attributes changed: checked again after the event. */
void local_dir_changed(struct local_session *s, uint32_t dev, uint64_t ino);
/*
 * Check the hidden files again that the directory changes noted could
 * concern: below one of those directories, or all of a task's when one is
 * its directory or above it, or when a change could not be placed.
 */
void local_hidden_recheck_dirs(struct local_session *s);
/* The changes applied: forget who saw what before them. */
void local_before_clear(struct local_session *s);

/* ---- local-scan.c ---- */

void local_queue_scan(struct local_task *t, const char *path, uint32_t dev, uint64_t ino);
/* Queue every file under the task's directory for a scan. */
void local_schedule_full_scan(struct local_task *t);
/* Forget the task's queued scans (it is paused or going away). */
void local_drop_scans(struct local_task *t);
/* Start queued scans; true if files remain that can be scanned now. */
bool local_run_scans(struct local_session *s);
/* An event of a file being scanned goes into its jobs' windows. */
void local_record_event(struct local_session *s, const struct dc_record *r);
/* Apply the jobs whose window ends before upto (a stream time). */
void local_apply_ready(struct local_session *s, uint64_t upto);
/* Free the jobs not applied (the session is going away). */
void local_jobs_free(struct local_session *s);

/* ---- local-polite.c ---- */

/* A task came (after its fields are set) or goes (before it is freed). */
void local_polite_task_added(struct local_session *s, struct local_task *t);
void local_polite_task_gone(struct local_session *s, struct local_task *t);
/*
 * Before a polite task of this process goes (called without the lock):
 * let the pump process the events up to now, at most 500 ms, so that the
 * pages its last reads brought in are dropped too.
 */
void local_polite_drain(struct local_session *s, struct local_task *t);
/*
 * A record, in stream order (count: the pages it stands for, a stock
 * DIRTY's folio included): ADDED by a polite task's process marks its
 * pages as the tools', by anyone else unmarks them, as do DIRTY and
 * REMOVED; INODE_NEW and LOST forget. An ADDED of the tools' pages that
 * are done already queues their drop.
 */
void local_polite_event(struct local_session *s, const struct dc_record *r, uint64_t count);
/* Task t marked pages done (count 0: the whole file): queue what can go now. */
void local_polite_done(struct local_session *s, const struct de_file *f, uint64_t index,
		       uint64_t count);
/*
 * The drops queued so far, handed over under the lock; done (fadvise)
 * after it is released by local_polite_run(), which frees them.
 */
struct polite_drop *local_polite_take(struct local_session *s, size_t *n);
void local_polite_run(struct polite_drop *d, size_t n);
void local_polite_free(struct local_session *s);

/* ---- local-save.c ---- */

int local_task_save(struct duet_task *t, const char *file);
int local_task_load(struct duet_task *t, const char *file);

#endif
