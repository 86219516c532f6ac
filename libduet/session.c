// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libduet in-process sessions: the live source, the path index and the
 * engine, driven by one pump thread.
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
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned int)XXH3_64bits((keyptr), (keylen)))
#include <uthash.h>

#include "attrwatch.h"
#include "devices.h"
#include "engine.h"
#include "index.h"
#include "internal.h"
#include "live.h"
#include "proto.h"
#include "scan.h"
#include "duet/duet.h"

#define EXPORT __attribute__((visibility("default")))

/* Files scanned per pump iteration, so events keep flowing meanwhile. */
#define SCAN_BATCH 64
/* Directory entries an index repair lists per pump iteration (a few ms). */
#define REPAIR_BUDGET 2048

struct scan_file {
	char *path;
	uint32_t dev;
	uint64_t ino;
};

/*
 * A file queued for a task's scan. Until it is scanned, events of that
 * file do not reach the task: the scan reports the file's state at that
 * moment, and an earlier event would tell the task about a change to a
 * page it never heard of (a REMOVED with no ADDED before it).
 */
struct unscanned {
	struct {
		uint64_t ino;
		uint32_t dev;
		uint32_t pad;
	} k;
	UT_hash_handle hh;
};

struct duet_task {
	struct duet_session *s;
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
	uint64_t max_pending;
	int paused;		/* PAUSE_*: fed nothing, not scanned */
	struct cl_task *cl;	/* daemon mode: everything is there */
};

enum {
	PAUSE_NONE,
	PAUSE_HOLD,		/* until duet__task_start() */
	PAUSE_OVERFLOW,		/* over max_pending: until LOST is fetched */
	PAUSE_REPAIR,		/* the path index is repairing: until it is done */
};

struct duet_session {
	struct duet_session_opts opts;
	pthread_mutex_t lock;
	pthread_t pump;
	bool pump_started;
	int stopfd;
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
	struct dc_live *live;
	struct dc_mounts mounts;
	struct dc_bdi *bdis;
	size_t nbdis;
	struct duet_task *tasks[DE_MAX_TASKS];
	/* Index changes seen during a batch, applied after each event. */
	struct { uint32_t dev; uint64_t ino; int why; } *inval;
	size_t ninval, inval_cap;
	bool inval_all;
	/* Scans read but not applied yet (see struct scan_job). */
	struct scan_job *jobs;		/* by file: the first job of each */
	struct scan_job *ready, *ready_tail;	/* in the order of their hi */
	uint64_t njobs;
	uint64_t next_task_id;
	/* The path index overflowed / finished its repair: told after the event. */
	bool index_lost, index_repaired;
	uint64_t names_capped;	/* the index's count, as last logged */
	time_t capped_logged;
	struct cl_session *cl;	/* daemon mode: everything is there */
};

/*
 * One file's scan for one task, placed in the stream (scan.h): read by
 * the pump with the session lock released, then kept until the stream
 * has passed hi, recording the file's events meanwhile, and applied at
 * that point. Until then the file's events do not reach the task (it is
 * in the task's unscanned set).
 */
struct scan_job {
	struct {
		uint64_t ino;
		uint32_t dev;
		uint32_t pad;
	} k;
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

static void logf_(struct duet_session *s, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!s->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->opts.log(s->opts.log_ud, level, buf);
}

/* ---- relevance: which tasks' directories hold a name of the inode ---- */

static uint64_t relevance(struct duet_session *s, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	char path[PATH_MAX];
	uint64_t mask = 0, g = 0;

	/* Applies pending directory changes for an inode not seen yet. */
	if (!dc_index_lookup(s->x, dev, ino, NULL))
		return 0;
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct duet_task *t = s->tasks[i];

		if (!t || t->paused ||
		    dc_index_name_under(s->x, dev, ino, t->root, path, sizeof(path), &g))
			continue;
		if (t->visible && !t->visible(t->vis_ud, path))
			continue;
		if (t->unscanned) {
			struct unscanned *u, key = { 0 };

			key.k.dev = dev;
			key.k.ino = ino;
			HASH_FIND(hh, t->unscanned, &key.k, sizeof(key.k), u);
			if (u)
				continue;	/* its scan will tell the task */
		}
		mask |= 1ull << i;
	}
	*gen = g;
	return mask;
}

static uint64_t relevant_cb(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	return relevance(ud, dev, ino, gen);
}

static void queue_scan(struct duet_task *t, const char *path, uint32_t dev, uint64_t ino)
{
	struct scan_file *f;

	if (t->nscan == t->scan_cap) {
		size_t cap = t->scan_cap ? t->scan_cap * 2 : 256;

		f = realloc(t->scan, cap * sizeof(*f));
		if (!f)
			return;
		t->scan = f;
		t->scan_cap = cap;
	}
	f = &t->scan[t->nscan];
	f->path = strdup(path);
	if (!f->path)
		return;
	f->dev = dev;
	f->ino = ino;
	t->nscan++;
	t->scan_files++;
	{
		struct unscanned *u, key = { 0 };

		key.k.dev = dev;
		key.k.ino = ino;
		HASH_FIND(hh, t->unscanned, &key.k, sizeof(key.k), u);
		if (!u && (u = calloc(1, sizeof(*u)))) {
			u->k = key.k;
			HASH_ADD(hh, t->unscanned, k, sizeof(u->k), u);
			/* Its cached relevance may include this task. */
			de_file_invalidate(t->s->e, dev, ino);
		}
	}
}

/* The file's scan is done: its events reach the task from now on. */
static void scanned(struct duet_task *t, uint32_t dev, uint64_t ino)
{
	struct unscanned *u, key = { 0 };

	key.k.dev = dev;
	key.k.ino = ino;
	HASH_FIND(hh, t->unscanned, &key.k, sizeof(key.k), u);
	if (!u)
		return;
	HASH_DEL(t->unscanned, u);
	free(u);
	de_file_invalidate(t->s->e, dev, ino);
}

/*
 * Called by the index when an inode gains or loses a name. It may run
 * inside the engine's relevance callback, so it only records; the engine
 * is told after the current event.
 */
static void index_changed(void *ud, uint32_t dev, uint64_t ino, int why)
{
	struct duet_session *s = ud;

	if (why == DC_NAME_OVERFLOW) {
		s->index_lost = true;
		s->index_repaired = false;	/* a repair that completed before is moot */
	} else if (why == DC_NAME_REPAIRED) {
		s->index_repaired = true;
	}
	if (!dev && !ino) {
		s->inval_all = true;
		return;
	}
	if (s->ninval == s->inval_cap) {
		size_t cap = s->inval_cap ? s->inval_cap * 2 : 64;
		void *n = realloc(s->inval, cap * sizeof(*s->inval));

		if (!n) {
			s->inval_all = true;
			return;
		}
		s->inval = n;
		s->inval_cap = cap;
	}
	s->inval[s->ninval].dev = dev;
	s->inval[s->ninval].ino = ino;
	s->inval[s->ninval].why = why;
	s->ninval++;
}

/*
 * A file renamed (or linked) into a task's directory starts being reported
 * with its cached pages: the tasks that now see a name of it scan it. (A
 * task that could already see it through another name gets its cached
 * pages once more.)
 */
static void index_repair_news(struct duet_session *s);

static void apply_invalidations(struct duet_session *s)
{
	if (s->index_lost || s->index_repaired)
		index_repair_news(s);
	if (s->inval_all) {
		de_invalidate_all(s->e);
		s->inval_all = false;
		s->ninval = 0;
		return;
	}
	for (size_t i = 0; i < s->ninval; i++) {
		char path[PATH_MAX];
		uint32_t dev = s->inval[i].dev;
		uint64_t ino = s->inval[i].ino;
		struct stat st;

		de_file_invalidate(s->e, dev, ino);
		/*
		 * Only a file that arrives with its pages (renamed in, linked
		 * in) is scanned: a new file's pages come as events, and a
		 * scan too would report them twice to a task that fetched in
		 * between.
		 */
		if (s->inval[i].why != DC_NAME_MOVED_IN && s->inval[i].why != DC_NAME_LINKED)
			continue;
		for (int k = 0; k < DE_MAX_TASKS; k++) {
			struct duet_task *t = s->tasks[k];

			if (!t || t->paused ||
			    dc_index_name_under(s->x, dev, ino, t->root, path, sizeof(path), NULL))
				continue;
			if (t->visible && !t->visible(t->vis_ud, path))
				continue;
			if (!lstat(path, &st) && S_ISREG(st.st_mode) && st.st_ino == ino)
				queue_scan(t, path, dev, ino);
		}
	}
	s->ninval = 0;
}

/* ---- scans placed in the stream ---- */

static void job_free(struct scan_job *j)
{
	ds_scan_clear(&j->sc);
	free(j->path);
	free(j);
}

/* The file's events are recorded into j from now on. */
static void job_register(struct duet_session *s, struct scan_job *j)
{
	struct scan_job *head;

	HASH_FIND(hh, s->jobs, &j->k, sizeof(j->k), head);
	if (head) {
		j->same = head->same;
		head->same = j;
	} else {
		j->same = NULL;
		HASH_ADD(hh, s->jobs, k, sizeof(j->k), j);
	}
}

static void job_unregister(struct duet_session *s, struct scan_job *j)
{
	struct scan_job *head, **pp;

	HASH_FIND(hh, s->jobs, &j->k, sizeof(j->k), head);
	if (!head)
		return;
	if (head == j) {
		HASH_DEL(s->jobs, j);
		if (j->same)
			HASH_ADD(hh, s->jobs, k, sizeof(j->same->k), j->same);
		return;
	}
	for (pp = &head->same; *pp; pp = &(*pp)->same) {
		if (*pp == j) {
			*pp = j->same;
			return;
		}
	}
}

/* An event of a file being scanned goes into its jobs' windows. */
static void record_event(struct duet_session *s, const struct dc_record *r)
{
	struct scan_job *j, key;
	int type;

	key.k.dev = r->dev;
	key.k.ino = r->ino;
	key.k.pad = 0;
	HASH_FIND(hh, s->jobs, &key.k, sizeof(key.k), j);
	if (!j)
		return;
	switch (r->type) {
	case DC_ADDED:
		type = DS_ADDED;
		break;
	case DC_REMOVED:
		type = DS_REMOVED;
		break;
	case DC_DIRTY:
		type = DS_DIRTY;
		break;
	case DC_FLUSHED:
		type = r->flags & DC_REC_INODE_LEVEL ? DS_INODE_FLUSHED : DS_FLUSHED;
		break;
	default:
		return;
	}
	for (; j; j = j->same)
		ds_scan_event(&j->sc, type, r->index, r->count);
}

static struct duet_task *job_task(struct duet_session *s, const struct scan_job *j)
{
	struct duet_task *t = s->tasks[j->slot];

	return t && t->id == j->tid && t->scan_epoch == j->epoch ? t : NULL;
}

struct feed_ctx {
	struct duet_session *s;
	struct duet_task *t;
	struct de_file f;
};

static int feed(void *ud, uint64_t index, uint64_t count, bool dirty)
{
	struct feed_ctx *c = ud;
	int r = de_scan_pages(c->s->e, c->t->slot, &c->f, index, count, dirty);

	/* -ESTALE: the number names another file now; its events will tell. */
	return r == -ESTALE ? 1 : r < 0 ? r : 0;
}

static void queue_scan(struct duet_task *t, const char *path, uint32_t dev, uint64_t ino);
static void scanned(struct duet_task *t, uint32_t dev, uint64_t ino);

/* The stream has passed j->hi: the scan takes effect for its task. */
static void apply_job(struct duet_session *s, struct scan_job *j)
{
	struct duet_task *t = job_task(s, j);

	job_unregister(s, j);
	s->njobs--;
	if (!t)
		goto out;
	t->jobs_out--;
	t->jobs_pages -= j->pages;
	if (j->sc.overflow) {
		/* The file was too busy to place the scan: read it again. */
		queue_scan(t, j->path, j->k.dev, j->k.ino);
		t->scan_files--;	/* the same file, still to do once */
		goto out;
	}
	if (!j->err && (!t->visible || t->visible(t->vis_ud, j->path))) {
		struct feed_ctx c = { s, t, { j->k.dev, j->k.ino, j->gen } };

		ds_scan_result(&j->sc, feed, &c);
	}
	scanned(t, j->k.dev, j->k.ino);
	t->scan_done++;
out:
	job_free(j);
}

/* Apply the jobs whose window ends before upto (a stream time). */
static void apply_ready(struct duet_session *s, uint64_t upto)
{
	while (s->ready && s->ready->hi < upto) {
		struct scan_job *j = s->ready;

		s->ready = j->next;
		if (!s->ready)
			s->ready_tail = NULL;
		apply_job(s, j);
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int list_file(void *ud, const char *path, uint32_t dev, uint64_t ino)
{
	struct duet_task *t = ud;
	struct stat st;

	if (!lstat(path, &st) && S_ISREG(st.st_mode) &&
	    (!t->visible || t->visible(t->vis_ud, path)))
		queue_scan(t, path, dev, ino);
	return 0;
}

/* Forget the task's queued scans (it is paused or going away). */
static void drop_scans(struct duet_task *t)
{
	struct unscanned *u, *tmp;

	for (size_t i = t->scan_pos; i < t->nscan; i++)
		free(t->scan[i].path);
	/*
	 * Not scanned, and never will be: progress counts what remains. Jobs
	 * read but not applied yet are dropped when they come due.
	 */
	t->scan_files -= t->nscan - t->scan_pos + t->jobs_out;
	t->scan_epoch++;
	t->jobs_out = t->jobs_pages = 0;
	t->nscan = t->scan_pos = 0;
	HASH_ITER(hh, t->unscanned, u, tmp) {
		HASH_DEL(t->unscanned, u);
		free(u);
	}
}

/* Queue every file under the task's directory for a scan. */
static void schedule_full_scan(struct duet_task *t)
{
	dc_index_foreach_under(t->s->x, t->root, list_file, t);
}

/* Scan jobs read but not applied that the session holds at most. */
#define MAX_JOBS 16384

/*
 * Take up to SCAN_BATCH queued files per task, read their residency with
 * the session lock released (API calls and other tasks go on meanwhile),
 * and queue the jobs to be applied at their place in the stream. Returns
 * true if files remain that can be scanned now.
 */
static bool run_scans(struct duet_session *s)
{
	struct scan_job *batch = NULL, **tail = &batch, *j;
	uint64_t room[DE_MAX_TASKS];
	bool more = false;

	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct duet_task *t = s->tasks[i];
		bool waits = false;

		if (!t)
			continue;
		for (int n = 0; n < SCAN_BATCH && t->scan_pos < t->nscan; n++) {
			struct scan_file *sf;

			/*
			 * A bounded task's scan waits while half its bound is
			 * pending or held by unapplied jobs (checked per file):
			 * a directory with more cached pages than the bound
			 * would otherwise overflow at every resync, forever. It
			 * goes on when the client fetches.
			 */
			if ((t->max_pending &&
			     de_pending(s->e, t->slot) + t->jobs_pages >= t->max_pending / 2) ||
			    s->njobs >= MAX_JOBS) {
				waits = true;
				break;
			}
			sf = &t->scan[t->scan_pos++];
			j = calloc(1, sizeof(*j));
			if (!j) {
				waits = true;
				t->scan_pos--;
				break;
			}
			j->k.dev = sf->dev;
			j->k.ino = sf->ino;
			j->slot = t->slot;
			j->tid = t->id;
			j->epoch = t->scan_epoch;
			j->path = sf->path;
			sf->path = NULL;
			dc_index_name_under(s->x, sf->dev, sf->ino, NULL, (char[2]){ 0 }, 0, &j->gen);
			t->jobs_out++;
			s->njobs++;
			*tail = j;
			tail = &j->next;
		}
		if (t->scan_pos < t->nscan)
			more |= !waits;	/* a waiting scan must not spin the pump */
		else
			t->nscan = t->scan_pos = 0;
	}
	if (!batch)
		return more;
	/*
	 * A bounded task's files are read only while half its bound has
	 * room: the pages a batch finds count as they are found, and the
	 * rest of the batch waits (back in the queue) once they fill it.
	 */
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct duet_task *t = s->tasks[i];
		uint64_t used;

		room[i] = UINT64_MAX;
		if (!t || !t->max_pending)
			continue;
		used = de_pending(s->e, t->slot) + t->jobs_pages;
		room[i] = used < t->max_pending / 2 ? t->max_pending / 2 - used : 0;
	}
	/*
	 * No event is processed while the lock is released (the pump does
	 * that), so the events a job records are exactly those processed
	 * after its scan: every one not yet processed when it began.
	 */
	pthread_mutex_unlock(&s->lock);
	for (j = batch; j; j = j->next) {
		if (room[j->slot] == 0) {
			j->deferred = true;
			continue;
		}
		j->err = ds_scan_read(&j->sc, j->path, j->k.ino);
		j->hi = mono_ns() + DS_MARGIN_NS;
		j->pages = j->sc.cached ? roaring_bitmap_get_cardinality(j->sc.cached) : 0;
		room[j->slot] -= j->pages < room[j->slot] ? j->pages : room[j->slot];
	}
	pthread_mutex_lock(&s->lock);
	while (batch) {
		struct duet_task *t;

		j = batch;
		batch = j->next;
		j->next = NULL;
		t = job_task(s, j);
		if (!t || j->deferred) {
			s->njobs--;
			if (t) {
				/* Not read: queued again, still counted once. */
				t->jobs_out--;
				queue_scan(t, j->path, j->k.dev, j->k.ino);
				t->scan_files--;
			}
			job_free(j);
			continue;
		}
		t->jobs_pages += j->pages;
		job_register(s, j);
		if (s->ready_tail)
			s->ready_tail->next = j;
		else
			s->ready = j;
		s->ready_tail = j;
	}
	return more;
}

/* ---- the pump ---- */

/* A file's or a directory's mode, owner or ACL changed (attrwatch.h). */
static void attr_changed(void *ud, uint32_t kdev, uint64_t ino, bool dir)
{
	if (dir)
		index_changed(ud, 0, 0, DC_NAME_ATTRIB);
	else
		index_changed(ud, kdev, ino, DC_NAME_ATTRIB);
}

/*
 * Apply every directory and attribute change queued so far. Called when
 * a fetch of records begins: every record it hands out is older than the
 * fetch's bound, so every rename, chmod or unlink that happened before a
 * record is applied before that record is processed (a change applied a
 * little early only withholds an item, never leaks one). Also called
 * before a visibility-checked task's fetch, so that a permission change
 * takes effect before the next item leaves.
 */
static void sync_changes(struct duet_session *s)
{
	dc_index_update(s->x);
	if (s->aw)
		dc_attrwatch_read(s->aw, attr_changed, s);
	if (s->ninval || s->inval_all)
		apply_invalidations(s);
}

static int handle_run(void *ud, const struct dc_record *rec, size_t n)
{
	struct duet_session *s = ud;

	if (s->fetch_fresh) {
		s->fetch_fresh = false;
		sync_changes(s);
	}

	for (size_t i = 0; i < n; i++) {
		const struct dc_record *r = &rec[i];

		/* Scans whose window ends before this event take effect first. */
		if (s->ready) {
			apply_ready(s, r->ts);
			record_event(s, r);
		}
		switch (r->type) {
		case DC_LOST: {
			uint64_t all = 0;

			for (int k = 0; k < DE_MAX_TASKS; k++)
				if (s->tasks[k])
					all |= 1ull << k;
			de_lost(s->e, all);
			/* Repair: every task's cached pages are reported again. */
			for (int k = 0; k < DE_MAX_TASKS; k++) {
				struct duet_task *t = s->tasks[k];
				uint64_t one = 1;

				if (!t)
					continue;
				t->lost_pending = true;
				/* A paused task resyncs when it comes back. */
				if (!t->paused) {
					t->resyncs++;
					drop_scans(t);
					schedule_full_scan(t);
				}
				/* The LOST item alone makes the fd readable. */
				if (!t->signalled && write(t->efd, &one, sizeof(one)) == sizeof(one))
					t->signalled = true;
			}
			logf_(s, 4, "duet: %" PRIu64 " events lost on cpu %u; resyncing",
			      r->count, r->cpu);
			break;
		}
		case DC_FLUSHED:
			if (r->flags & DC_REC_INODE_LEVEL)
				de_event_inode_flushed(s->e, r->dev, r->ino);
			else
				de_event(s->e, r->dev, r->ino, r->index, r->count, DUET_FLUSHED);
			break;
		case DC_ADDED:
		case DC_REMOVED:
		case DC_DIRTY:
			de_event(s->e, r->dev, r->ino, r->index, r->count, r->type);
			break;
		}
		if (s->ninval || s->inval_all)
			apply_invalidations(s);
	}
	return 0;
}

/*
 * The path index lost directory changes (an inotify queue overflow) and
 * repairs itself in steps. Until it is done its names may be stale, so a
 * resync now would scan from them: every task gets LOST now (as for lost
 * events) and is fed nothing until the repair is complete; then it
 * resyncs. A task that came (or came back) during the repair was scanned
 * from stale names: it gets LOST and a resync then.
 */
static void index_repair_news(struct duet_session *s)
{
	uint64_t one = 1, mask = 0;

	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct duet_task *t = s->tasks[k];

		if (t && (s->index_lost || t->paused == PAUSE_NONE))
			mask |= 1ull << k;
	}
	if (mask)
		de_lost(s->e, mask);
	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct duet_task *t = s->tasks[k];

		if (!t)
			continue;
		if (mask & (1ull << k)) {
			t->lost_pending = true;
			if (!t->signalled && write(t->efd, &one, sizeof(one)) == sizeof(one))
				t->signalled = true;
		}
		if (s->index_lost && t->paused == PAUSE_NONE) {
			drop_scans(t);
			t->paused = PAUSE_REPAIR;
		}
		/* Paused otherwise (held, over its bound): resyncs when it comes back. */
		if (s->index_repaired && (t->paused == PAUSE_REPAIR || t->paused == PAUSE_NONE)) {
			t->paused = PAUSE_NONE;
			t->resyncs++;
			drop_scans(t);
			schedule_full_scan(t);
		}
	}
	if (s->index_lost)
		logf_(s, 4, "duet: directory changes lost (inotify queue overflow); repairing "
		      "the path index, tasks paused");
	if (s->index_repaired)
		logf_(s, 4, "duet: path index repaired; every task resyncs");
	s->index_lost = s->index_repaired = false;
}

/*
 * A task over its bound (a client that does not fetch): drop its pending
 * pages, queue LOST, feed it nothing until it fetches the LOST item. Its
 * memory in the shared table is then bounded by max_pending plus one
 * batch of events.
 */
static void check_bounds(struct duet_session *s)
{
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct duet_task *t = s->tasks[i];

		if (!t || !t->max_pending || t->paused || de_pending(s->e, t->slot) <= t->max_pending)
			continue;
		de_lost(s->e, 1ull << t->slot);
		drop_scans(t);
		t->paused = PAUSE_OVERFLOW;
		t->lost_pending = true;
		de_invalidate_all(s->e);	/* relevance without this task */
		logf_(s, 4, "duet: task %s over %" PRIu64 " pending pages; dropped until it fetches",
		      t->name, t->max_pending);
	}
}

static void signal_tasks(struct duet_session *s)
{
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct duet_task *t = s->tasks[i];
		uint64_t one = 1;

		if (!t || t->signalled || (!de_pending(s->e, t->slot) && !t->lost_pending))
			continue;
		if (write(t->efd, &one, sizeof(one)) == sizeof(one))
			t->signalled = true;
	}
}

static int update_devices(struct duet_session *s);

/*
 * The file systems whose attribute changes can change what task t may
 * see: those of every directory from / down to its root, and of every
 * mount inside its tree.
 */
static void watch_attrs(struct duet_session *s, struct duet_task *t)
{
	char path[PATH_MAX];
	const struct dc_mount *m;
	size_t len = strlen(t->root);

	if (!s->aw || len >= sizeof(path))
		return;
	for (size_t i = 1; i <= len; i++) {
		if (i < len && t->root[i] != '/')
			continue;
		memcpy(path, t->root, i);
		path[i] = '\0';
		m = dc_mounts_find(&s->mounts, path);
		if (m)
			dc_attrwatch_add(s->aw, path, m->kdev);
	}
	for (size_t i = 0; i < s->mounts.n; i++)
		if (dc_path_under(s->mounts.m[i].mnt_point, t->root))
			dc_attrwatch_add(s->aw, s->mounts.m[i].mnt_point, s->mounts.m[i].kdev);
}

static void watch_attrs_all(struct duet_session *s)
{
	for (int i = 0; i < DE_MAX_TASKS; i++)
		if (s->tasks[i] && s->tasks[i]->visible)
			watch_attrs(s, s->tasks[i]);
}

static void *pump_main(void *arg)
{
	struct duet_session *s = arg;
	bool more = false, repairing;

	for (;;) {
		struct pollfd pfd[5] = {
			{ .fd = s->stopfd, .events = POLLIN },
			{ .fd = dc_index_fd(s->x), .events = POLLIN },
			{ .fd = s->live ? dc_live_fd(s->live) : -1, .events = POLLIN },
			{ .fd = s->mountfd, .events = POLLPRI },
			{ .fd = s->aw ? dc_attrwatch_fd(s->aw) : -1, .events = POLLIN },
		};

		poll(pfd, 5, more ? 0 : 100);
		if (pfd[0].revents & POLLIN)
			break;
		pthread_mutex_lock(&s->lock);
		if (pfd[3].revents & (POLLPRI | POLLERR)) {
			/* Mounts changed: what is under the directories changed. */
			if (dc_index_remount(s->x) > 0) {
				update_devices(s);
				watch_attrs_all(s);
			}
		}
		sync_changes(s);
		/* A bounded part of a repair per iteration: the lock is let go. */
		repairing = dc_index_repair_step(s->x, REPAIR_BUDGET) > 0;
		/* Told, never silent; once a minute at most (links come fast). */
		if (dc_index_stats(s->x)->names_capped != s->names_capped &&
		    time(NULL) >= s->capped_logged + 60) {
			s->names_capped = dc_index_stats(s->x)->names_capped;
			s->capped_logged = time(NULL);
			logf_(s, 4, "duet: %" PRIu64 " names not indexed: their inodes have %d "
			      "names already (tasks see those files only by the names kept)",
			      s->names_capped, DC_INDEX_MAX_NAMES);
		}
		if (s->ninval || s->inval_all)
			apply_invalidations(s);
		s->fetch_fresh = true;
		if (s->live && dc_live_fetch_cb(s->live, handle_run, s) >= 0)
			apply_ready(s, dc_live_complete_to(s->live) + 1);
		s->fetch_fresh = false;
		more = run_scans(s) || repairing;
		check_bounds(s);
		signal_tasks(s);
		pthread_mutex_unlock(&s->lock);
		/*
		 * More to do (scans, a repair): the lock is taken again at
		 * once, before an API caller woken by the unlock gets to run
		 * (the mutex is not fair). Give it the chance.
		 */
		if (more)
			sched_yield();
	}
	return NULL;
}

/* ---- sessions ---- */

static const char *opt_socket(const struct duet_session_opts *opts)
{
	if (opts && opts->sz >= offsetof(struct duet_session_opts, socket) + sizeof(opts->socket) &&
	    opts->socket)
		return opts->socket;
	return NULL;
}

/*
 * Daemon mode when asked (DUET_SESSION_DAEMON, a socket path, or
 * DUET_SOCKET in the environment), or when not root: only root reads
 * the ring buffer. DUET_SESSION_LOCAL forces in-process mode.
 */
static bool use_daemon(const struct duet_session_opts *opts)
{
	unsigned int flags = opts ? opts->flags : 0;

	if (flags & DUET_SESSION_LOCAL)
		return false;
	if ((flags & DUET_SESSION_DAEMON) || opt_socket(opts) || secure_getenv("DUET_SOCKET"))
		return true;
	return geteuid() != 0;
}

static int session_new_client(const struct duet_session_opts *opts, struct duet_session **ret)
{
	struct duet_session *s = calloc(1, sizeof(*s));
	const char *sock = opt_socket(opts);
	int r;

	if (!s)
		return -ENOMEM;
	if (!sock)
		sock = secure_getenv("DUET_SOCKET");
	r = cl_session_new(opts, sock ? sock : DP_DEFAULT_SOCKET, &s->cl);
	if (r) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

EXPORT int duet_session_new(const struct duet_session_opts *opts, struct duet_session **ret)
{
	struct de_engine_opts eo = { .sz = sizeof(eo) };
	struct duet_session *s;
	uint32_t *all = NULL;
	int r;

	if (!ret || (opts && opts->sz < offsetof(struct duet_session_opts, subbuf_kb)))
		return -EINVAL;
	if (opts && (opts->flags & DUET_SESSION_DAEMON) && (opts->flags & DUET_SESSION_LOCAL))
		return -EINVAL;
	if (use_daemon(opts))
		return session_new_client(opts, ret);
	r = dc_tracefs_ensure(NULL);
	if (r)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* An older caller's smaller struct: the fields it lacks stay 0. */
	if (opts)
		memcpy(&s->opts, opts, opts->sz < sizeof(s->opts) ? opts->sz : sizeof(s->opts));
	s->stopfd = -1;
	s->mountfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	eo.relevant = relevant_cb;
	eo.ud = s;
	r = de_engine_new(&eo, &s->e);
	if (r)
		goto fail;
	r = dc_index_new(NULL, 0, &s->x);
	if (r)
		goto fail;
	dc_index_set_changed(s->x, index_changed, s);
	r = dc_mounts_load(&s->mounts);
	if (r)
		goto fail;
	/* Every mounted file system's bdi, so DIRTY can follow new tasks. */
	all = calloc(s->mounts.n + 1, sizeof(*all));
	if (!all) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < s->mounts.n; i++)
		all[i] = s->mounts.m[i].kdev;
	r = dc_bdis_for_devices(&s->mounts, all, s->mounts.n, &s->bdis, &s->nbdis);
	free(all);
	if (r)
		goto fail;
	s->mountfd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stopfd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&s->pump, NULL, pump_main, s);
	if (r)
		goto fail;
	s->pump_started = true;
	*ret = s;
	return 0;
fail:
	duet_session_free(s);
	return r;
}

EXPORT void duet_session_free(struct duet_session *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (s->cl) {
		cl_session_free(s->cl);
		free(s);
		return;
	}
	if (s->pump_started) {
		if (write(s->stopfd, &one, sizeof(one)) < 0) {
		}
		pthread_join(s->pump, NULL);
	}
	for (int i = 0; i < DE_MAX_TASKS; i++)
		if (s->tasks[i])
			duet_task_free(s->tasks[i]);
	while (s->ready) {
		struct scan_job *j = s->ready;

		s->ready = j->next;
		job_unregister(s, j);
		job_free(j);
	}
	dc_live_free(s->live);
	dc_attrwatch_free(s->aw);
	dc_index_free(s->x);
	de_engine_free(s->e);
	dc_mounts_free(&s->mounts);
	free(s->bdis);
	free(s->inval);
	if (s->stopfd >= 0)
		close(s->stopfd);
	if (s->mountfd >= 0)
		close(s->mountfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

EXPORT int duet_session_flush_semantics(struct duet_session *s)
{
	int r = DUET_FLUSH_NONE;

	if (!s)
		return -EINVAL;
	if (s->cl)
		return cl_session_flush_semantics(s->cl);
	pthread_mutex_lock(&s->lock);
	if (s->live)
		r = dc_live_flush_sem(s->live) == DC_FLUSH_EXACT ? DUET_FLUSH_EXACT :
		    dc_live_flush_sem(s->live) == DC_FLUSH_INODE ? DUET_FLUSH_INODE :
								   DUET_FLUSH_NONE;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The devices every task's directory covers; the live source follows. */
static int update_devices(struct duet_session *s)
{
	struct dc_live_opts lo = { .sz = sizeof(lo) };
	uint32_t *devs = NULL;
	size_t ndevs = 0;
	char *roots[DE_MAX_TASKS];
	size_t nroots = 0;
	int r;

	dc_mounts_free(&s->mounts);
	r = dc_mounts_load(&s->mounts);
	if (r)
		return r;
	for (int i = 0; i < DE_MAX_TASKS; i++)
		if (s->tasks[i])
			roots[nroots++] = s->tasks[i]->root;
	r = dc_devices_for_paths(&s->mounts, roots, nroots, &devs, &ndevs);
	if (r)
		goto out;
	if (s->live) {
		r = dc_live_set_devices(s->live, devs, ndevs);
		goto out;
	}
	lo.devs = devs;
	lo.ndevs = ndevs;
	lo.bdis = s->bdis;
	lo.nbdis = s->nbdis;
	lo.buffer_kb = s->opts.buffer_kb;
	lo.subbuf_kb = s->opts.subbuf_kb;
	lo.stock_only = s->opts.flags & DUET_SESSION_STOCK;
	r = dc_live_open(&lo, &s->live);
	if (!r)
		r = dc_live_start(s->live);
	if (r) {
		dc_live_free(s->live);
		s->live = NULL;
	}
out:
	free(devs);
	return r;
}

/* ---- tasks ---- */

static int task_new_client(struct duet_session *s, const struct duet_task_opts *opts,
			   struct duet_task **ret)
{
	struct duet_task *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->s = s;
	r = cl_task_new(s->cl, opts, &t->cl);
	if (r) {
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

/*
 * The canonical path of the directory (or file) fd names, checked to name
 * it still: if a component was swapped meanwhile, -EAGAIN.
 */
static int root_of_fd(int fd, char **ret)
{
	char link[64], buf[PATH_MAX];
	struct stat a, b;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (buf[0] != '/')
		return -ENOENT;	/* deleted, or not in our mount namespace */
	if (fstat(fd, &a) || lstat(buf, &b))
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EAGAIN;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

EXPORT int duet_task_new(struct duet_session *s, const struct duet_task_opts *opts,
			 struct duet_task **ret)
{
	return duet__task_new_ext(s, opts, NULL, ret);
}

int duet__task_new_ext(struct duet_session *s, const struct duet_task_opts *opts,
		       const struct duet__task_ext *x, struct duet_task **ret)
{
	struct duet_task *t;
	char *root;
	int slot, r;

	/* libbpf-style sz: a struct from an older header is accepted (the
	 * fields it lacks are 0); one too small for the fields we need is not. */
	if (!s || !opts || opts->sz < offsetof(struct duet_task_opts, path) + sizeof(opts->path) ||
	    !opts->path || !ret)
		return -EINVAL;
	if (s->cl)
		return task_new_client(s, opts, ret);
	r = x && x->have_root_fd ? root_of_fd(x->root_fd, &root) :
	    (root = realpath(opts->path, NULL)) ? 0 : -errno;
	if (r)
		return r;
	t = calloc(1, sizeof(*t));
	if (!t) {
		free(root);
		return -ENOMEM;
	}
	t->s = s;
	t->root = root;
	t->mask = opts->mask;
	if (x) {
		t->visible = x->visible;
		t->vis_ud = x->ud;
		t->max_pending = x->max_pending;
		t->paused = x->hold ? PAUSE_HOLD : PAUSE_NONE;
	}
	t->name = strdup(opts->name ? opts->name : "task");
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!t->name || t->efd < 0) {
		r = t->efd < 0 ? -errno : -ENOMEM;
		goto fail_unlocked;
	}
	pthread_mutex_lock(&s->lock);
	slot = de_task_add(s->e, opts->mask);
	if (slot < 0) {
		r = slot;
		goto fail;
	}
	t->slot = slot;
	t->id = ++s->next_task_id;
	s->tasks[slot] = t;
	if (x)
		de_task_set_max_done(s->e, slot, x->max_done_marks);
	/* The root the caller opened is walked from its fd, never by path. */
	r = x && x->have_root_fd ? dc_index_add_root_at(s->x, x->root_fd, root) :
	    dc_index_add_root(s->x, root);
	if (!r)
		r = update_devices(s);
	if (r) {
		s->tasks[slot] = NULL;
		de_task_remove(s->e, slot);
		goto fail;
	}
	if (t->visible) {
		if (!s->aw) {
			r = dc_attrwatch_new(&s->aw);
			if (r)
				logf_(s, 3, "duet: cannot watch attribute changes (%s): a "
				      "permission change through a name outside a task's tree is "
				      "seen only at the file's next rename or relevance check",
				      strerror(-r));
		}
		watch_attrs(s, t);
	}
	/* Relevance decided before this task existed did not include it. */
	de_invalidate_all(s->e);
	if (!t->paused)
		schedule_full_scan(t);
	pthread_mutex_unlock(&s->lock);
	*ret = t;
	return 0;
fail:
	pthread_mutex_unlock(&s->lock);
fail_unlocked:
	if (t->efd >= 0)
		close(t->efd);
	free(t->name);
	free(t->root);
	free(t);
	return r;
}

int duet__task_start(struct duet_task *t)
{
	if (!t || t->cl)
		return -EINVAL;
	pthread_mutex_lock(&t->s->lock);
	if (t->paused == PAUSE_HOLD) {
		t->paused = PAUSE_NONE;
		de_invalidate_all(t->s->e);
		schedule_full_scan(t);
	}
	pthread_mutex_unlock(&t->s->lock);
	return 0;
}

const char *duet__task_root(const struct duet_task *t)
{
	return t && !t->cl ? t->root : NULL;
}

int duet__task_paused(struct duet_task *t)
{
	int r;

	if (!t || t->cl)
		return -EINVAL;
	pthread_mutex_lock(&t->s->lock);
	r = t->paused != PAUSE_NONE;
	pthread_mutex_unlock(&t->s->lock);
	return r;
}

int duet__task_stats(struct duet_task *t, struct duet__task_stats *st)
{
	struct de_task_stats ds;
	int r;

	if (!t || t->cl || !st)
		return -EINVAL;
	pthread_mutex_lock(&t->s->lock);
	r = de_task_stats(t->s->e, t->slot, &ds);
	st->paused = t->paused != PAUSE_NONE;
	/* A paused task has a scan to come (held, or a resync after LOST). */
	st->scan_complete = !t->paused && t->scan_done == t->scan_files;
	st->done_marks = ds.done_marks;
	pthread_mutex_unlock(&t->s->lock);
	return r;
}

int duet__session_stats(struct duet_session *s, struct duet__session_stats *st)
{
	struct de_engine_stats es;
	int r;

	if (!s || s->cl || !st)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = de_engine_stats(s->e, &es);
	pthread_mutex_unlock(&s->lock);
	if (r)
		return r;
	st->events = es.events;
	st->engine_bytes = es.bytes;
	st->entries = es.entries;
	st->inodes = es.inodes;
	st->page_bytes = es.page_bytes;
	st->mark_bytes = es.mark_bytes;
	return 0;
}

EXPORT void duet_task_free(struct duet_task *t)
{
	struct duet_session *s;

	if (!t)
		return;
	s = t->s;
	if (t->cl) {
		cl_task_free(t->cl);
		free(t);
		return;
	}
	pthread_mutex_lock(&s->lock);
	de_task_remove(s->e, t->slot);
	s->tasks[t->slot] = NULL;
	pthread_mutex_unlock(&s->lock);
	drop_scans(t);
	free(t->scan);
	close(t->efd);
	free(t->name);
	free(t->root);
	free(t);
}

EXPORT int duet_task_fd(const struct duet_task *t)
{
	if (t && t->cl)
		return cl_task_fd(t->cl);
	return t ? t->efd : -EINVAL;
}

EXPORT int duet_task_fetch(struct duet_task *t, struct duet_item *items, size_t n)
{
	struct duet_session *s;
	int r;

	if (!t || (n && !items))
		return -EINVAL;
	if (t->cl)
		return cl_task_fetch(t->cl, items, n);
	s = t->s;
	pthread_mutex_lock(&s->lock);
	/* A permission change takes effect before the next item leaves. */
	if (t->visible)
		sync_changes(s);
	r = de_fetch(s->e, t->slot, items, n);
	if (r > 0 && (items[0].flags & DUET_ITEM_LOST)) {
		t->lost_pending = false;	/* LOST comes first in a fetch */
		if (t->paused == PAUSE_OVERFLOW) {
			/* Back: fed again, and its cached pages reported again. */
			t->paused = PAUSE_NONE;
			t->resyncs++;
			de_invalidate_all(s->e);
			schedule_full_scan(t);
		}
	}
	if (r >= 0 && !de_pending(s->e, t->slot) && !t->lost_pending && t->signalled) {
		uint64_t v;

		/* Drained: the fd stops being readable until new items come. */
		if (read(t->efd, &v, sizeof(v)) < 0) {
		}
		t->signalled = false;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

EXPORT int duet_task_fileid(struct duet_task *t, const char *path, struct duet_fileid *ret)
{
	struct duet_fileid f = { 0 };
	const struct dc_mount *m;
	char *rp;
	struct stat st;
	int r = 0;

	if (!t || !path || !ret)
		return -EINVAL;
	if (t->cl)
		return cl_task_fileid(t->cl, path, ret);
	rp = realpath(path, NULL);
	if (!rp)
		return -errno;
	if (!dc_path_under(rp, t->root) || lstat(rp, &st)) {
		free(rp);
		return -ENOENT;
	}
	pthread_mutex_lock(&t->s->lock);
	m = dc_mounts_find(&t->s->mounts, rp);
	if (!m) {
		r = -ENOENT;
	} else {
		f.dev = m->kdev;
		f.ino = st.st_ino;
		dc_index_lookup(t->s->x, f.dev, f.ino, NULL);
		dc_index_name_under(t->s->x, f.dev, f.ino, NULL, (char[2]){ 0 }, 0, &f.gen);
	}
	pthread_mutex_unlock(&t->s->lock);
	free(rp);
	if (!r)
		*ret = f;
	return r;
}

static int mark(struct duet_task *t, const struct duet_fileid *f, uint64_t index,
		uint64_t count, int op)
{
	struct de_file df;
	int r;

	if (!t || !f)
		return -EINVAL;
	if (t->cl)
		return cl_task_done(t->cl, op == 0 ? DP_DONE_SET : op == 1 ? DP_DONE_RESET :
								 DP_DONE_CHECK, f, index, count);
	df.dev = f->dev;
	df.ino = f->ino;
	df.gen = f->gen;
	pthread_mutex_lock(&t->s->lock);
	if (op == 0)
		r = de_done_set(t->s->e, t->slot, &df, index, count);
	else if (op == 1)
		r = de_done_reset(t->s->e, t->slot, &df, index, count);
	else
		r = de_done_check(t->s->e, t->slot, &df, index, count);
	pthread_mutex_unlock(&t->s->lock);
	return r;
}

EXPORT int duet_task_set_done(struct duet_task *t, const struct duet_fileid *f,
			      uint64_t index, uint64_t count)
{
	return mark(t, f, index, count, 0);
}

EXPORT int duet_task_reset_done(struct duet_task *t, const struct duet_fileid *f,
				uint64_t index, uint64_t count)
{
	return mark(t, f, index, count, 1);
}

EXPORT int duet_task_check_done(struct duet_task *t, const struct duet_fileid *f,
				uint64_t index, uint64_t count)
{
	return mark(t, f, index, count, 2);
}

EXPORT int duet_task_path(struct duet_task *t, const struct duet_fileid *f, char *buf,
			  size_t len)
{
	uint64_t gen = 0;
	int r;

	if (!t || !f || !buf)
		return -EINVAL;
	if (t->cl)
		return cl_task_path(t->cl, f, buf, len);
	char path[PATH_MAX];

	pthread_mutex_lock(&t->s->lock);
	r = dc_index_name_under(t->s->x, f->dev, f->ino, t->root, path, sizeof(path), &gen);
	if (!r && gen != f->gen)
		r = -ENOENT;	/* the number now names another file */
	pthread_mutex_unlock(&t->s->lock);
	if (!r && strlen(path) >= len)
		r = -ENAMETOOLONG;
	if (!r)
		strcpy(buf, path);	/* outputs are written only on success */
	return r;
}

/* ---- persistence: "duet-done 1" then one line per mark ---- */

/*
 * The marks are gathered with the session lock held, then checked and
 * written without it: a visibility check runs as the client (a system
 * call each), and the file is written with whatever rights the caller has
 * (duetd: the client's).
 */
struct save_mark {
	uint64_t ino, index, count;
	char *path;
};

struct save_ctx {
	struct duet_task *t;
	struct save_mark *m;
	size_t n, cap;
	int err;
};

static int save_one(void *ud, const struct de_file *f, uint64_t index, uint64_t count)
{
	struct save_ctx *c = ud;
	char path[PATH_MAX];

	/* Marks are saved by path relative to the directory: device numbers
	 * of loop devices and btrfs change across reboots. */
	if (dc_index_name_under(c->t->s->x, f->dev, f->ino, c->t->root, path, sizeof(path),
				NULL))
		return 0;	/* no name any more: nothing to resume */
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct save_mark *n = realloc(c->m, cap * sizeof(*n));

		if (!n) {
			c->err = -ENOMEM;
			return 1;
		}
		c->m = n;
		c->cap = cap;
	}
	c->m[c->n].ino = f->ino;
	c->m[c->n].index = index;
	c->m[c->n].count = count;
	c->m[c->n].path = strdup(path);
	if (!c->m[c->n].path) {
		c->err = -ENOMEM;
		return 1;
	}
	c->n++;
	return 0;
}

EXPORT int duet_task_save(struct duet_task *t, const char *file)
{
	struct save_ctx c = { .t = t };
	char tmp[PATH_MAX];
	FILE *f;
	int r;

	if (!t || !file || (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= sizeof(tmp))
		return -EINVAL;
	if (t->cl)
		return cl_task_save(t->cl, file);
	pthread_mutex_lock(&t->s->lock);
	r = de_done_foreach(t->s->e, t->slot, save_one, &c);
	pthread_mutex_unlock(&t->s->lock);
	if (c.err)
		r = c.err;
	if (r < 0)
		goto out;
	f = fopen(tmp, "we");
	if (!f) {
		r = -errno;
		goto out;
	}
	fprintf(f, "duet-done 1\n");
	for (size_t i = 0; i < c.n; i++) {
		const struct save_mark *m = &c.m[i];

		/* Only what the client could see leaves in the file. */
		if (t->visible && !t->visible(t->vis_ud, m->path))
			continue;
		if (fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", m->ino, m->index,
			    m->count, m->path + strlen(t->root)) < 0)
			r = -EIO;
	}
	if (fflush(f) || fsync(fileno(f)))
		r = -errno;
	fclose(f);
	if (!r && rename(tmp, file))
		r = -errno;
	if (r)
		unlink(tmp);
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.m[i].path);
	free(c.m);
	return r;
}

EXPORT int duet_task_load(struct duet_task *t, const char *file)
{
	char line[PATH_MAX + 128];
	int r = 0, n = 0;
	FILE *f;

	if (!t || !file)
		return -EINVAL;
	if (t->cl)
		return cl_task_load(t->cl, file);
	f = fopen(file, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f) || strcmp(line, "duet-done 1\n")) {
		fclose(f);
		return -EBADMSG;
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t ino, index, count;
		struct duet_fileid id;
		char rel[PATH_MAX], path[PATH_MAX * 2];
		int off = 0;

		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %n", &ino, &index, &count,
			   &off) != 3 || !off) {
			r = -EBADMSG;
			break;
		}
		snprintf(rel, sizeof(rel), "%s", line + off);
		rel[strcspn(rel, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s%s", t->root, rel);
		/* A file replaced since the save (another inode) is not done. */
		if (duet_task_fileid(t, path, &id) || id.ino != ino)
			continue;
		/* Nor one the client may not see (duetd's load runs as it). */
		if (t->visible && !t->visible(t->vis_ud, path))
			continue;
		r = duet_task_set_done(t, &id, index, count);
		if (r)
			break;
		n++;
	}
	fclose(f);
	return r ? r : n;
}

EXPORT int duet_task_status(struct duet_task *t, struct duet_task_status *st)
{
	struct de_task_stats ds;
	struct duet_task_status o;
	int r;

	if (!t || !st || st->sz < offsetof(struct duet_task_status, pending) + sizeof(st->pending))
		return -EINVAL;
	if (t->cl)
		return cl_task_status(t->cl, st);
	pthread_mutex_lock(&t->s->lock);
	r = de_task_stats(t->s->e, t->slot, &ds);
	memset(&o, 0, sizeof(o));
	o.sz = sizeof(o);
	o.events = ds.events;
	o.items = ds.items;
	o.pages = ds.pages;
	o.coalesced = ds.coalesced;
	o.cancelled = ds.cancelled;
	o.lost = ds.lost;
	o.pending = ds.pending;
	o.resyncs = t->resyncs;
	o.scan_files = t->scan_files;
	o.scan_done = t->scan_done;
	pthread_mutex_unlock(&t->s->lock);
	if (!r) {
		size_t n = st->sz < sizeof(o) ? st->sz : sizeof(o);

		/* Only as much as the caller's (possibly older) struct holds. */
		o.sz = n;
		memcpy(st, &o, n);
	}
	return r;
}

EXPORT const char *duet_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case ENOENT:
		return "not found: a path that does not exist, or tracefs or the page-cache events missing";
	case EACCES:
	case EPERM:
		return "permission denied: in-process sessions need root to read the tracing ring "
		       "buffer (others use duetd), and through duetd a directory you cannot read "
		       "cannot be registered";
	case EPROTO:
		return "an event's format has fields this version cannot decode";
	case EBADMSG:
		return "corrupt data (a ring-buffer page, a recorded or saved file)";
	case EOPNOTSUPP:
		return "the kernel lacks a feature this needs";
	case EINVAL:
		return "invalid argument (for a mask: EXISTS with ADDED/REMOVED, or MODIFIED with DIRTY/FLUSHED)";
	case ENOSPC:
		return "no space: a full disk, or already 64 tasks in this session";
	case ESTALE:
		return "stale file identity: the inode number now names another file";
	case EOVERFLOW:
		return "a page index beyond what the engine tracks (2^32 pages)";
	case ECONNREFUSED:
		return "no duetd answers on its socket: start duetd (or run as root for in-process mode)";
	case EPROTONOSUPPORT:
		return "duetd speaks another major version of the protocol than this libduet: "
		       "update one of them";
	case ECONNRESET:
		return "the connection to duetd was lost";
	case EDQUOT:
		return "the task holds as many done marks as duetd allows a task "
		       "(duetd --max-done-marks): reset marks to make room";
	case EMFILE:
		return "too many open files; from duetd: your user holds its share of the "
		       "daemon's connections (duetd --max-connections-per-user)";
	case ENFILE:
		return "too many open files in the system; from duetd: the daemon serves as "
		       "many connections as it allows (duetd --max-connections)";
	}
	return strerror(err < 0 ? -err : err);
}
