// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process backend's scans (local.h): the queue of files each task
 * has to scan (registration, resync, files renamed or linked in), and
 * the scan jobs read by the pump with the session lock released and
 * applied at their place in the event stream (scan.h). Every function
 * here runs with the session lock held, but for the reads in
 * local_run_scans(), which let it go.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "local.h"

/* Files scanned per pump iteration, so events keep flowing meanwhile. */
#define SCAN_BATCH 64
/* Scan jobs read but not applied that the session holds at most. */
#define MAX_JOBS 16384

/*
 * uthash never aborts the process here (the library never does, and it
 * would by default): an add whose allocation fails leaves the element
 * out and sets the adding call's own flag, and each add below says what
 * happens then (local.h turns HASH_NONFATAL_OOM on).
 */
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = true)

void local_queue_scan(struct local_task *t, const char *path, uint32_t dev, uint64_t ino)
{
	struct unscanned *u;
	struct scan_file *f;
	bool oom = false;

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
	LOCAL_IFIND(t->unscanned, dev, ino, u);
	if (!u) {
		u = calloc(1, sizeof(*u));
		if (u) {
			u->k = local_ikey(dev, ino);
			HASH_ADD(hh, t->unscanned, k, sizeof(u->k), u);
		}
		if (!u || oom) {
			/*
			 * Out of memory: not queued, as when the queue cannot
			 * grow (queued without its mark, its events would reach
			 * the task before its scan).
			 */
			free(u);
			free(f->path);
			return;
		}
		/* Its cached relevance may include this task. */
		de_file_invalidate(t->s->e, dev, ino);
	}
	f->dev = dev;
	f->ino = ino;
	t->nscan++;
	t->scan_files++;
	/* The scan tells the task what it did not know. */
	local_hidden_forget(t, dev, ino);
}

bool local_unscanned(const struct local_task *t, uint32_t dev, uint64_t ino)
{
	struct unscanned *u;

	if (!t->unscanned)
		return false;
	LOCAL_IFIND(t->unscanned, dev, ino, u);
	return u;
}

/* The file's scan is done: its events reach the task from now on. */
static void scanned(struct local_task *t, uint32_t dev, uint64_t ino)
{
	struct unscanned *u;

	LOCAL_IFIND(t->unscanned, dev, ino, u);
	if (!u)
		return;
	HASH_DEL(t->unscanned, u);
	free(u);
	de_file_invalidate(t->s->e, dev, ino);
}

static void job_free(struct scan_job *j)
{
	ds_scan_clear(&j->sc);
	free(j->path);
	free(j);
}

/*
 * The file's events are recorded into j from now on. Out of memory, they
 * cannot be: j is marked to be read again, as when its window overflows.
 */
static void job_register(struct local_session *s, struct scan_job *j)
{
	struct scan_job *head;
	bool oom = false;

	HASH_FIND(hh, s->jobs, &j->k, sizeof(j->k), head);
	if (head) {
		j->same = head->same;
		head->same = j;
	} else {
		j->same = NULL;
		HASH_ADD(hh, s->jobs, k, sizeof(j->k), j);
		if (oom)
			j->sc.overflow = true;
	}
}

static void job_unregister(struct local_session *s, struct scan_job *j)
{
	struct scan_job *head, **pp;

	HASH_FIND(hh, s->jobs, &j->k, sizeof(j->k), head);
	if (!head)
		return;
	if (head == j) {
		bool oom = false;

		HASH_DEL(s->jobs, j);
		if (j->same)
			HASH_ADD(hh, s->jobs, k, sizeof(j->same->k), j->same);
		/* The file's other jobs record nothing more: read them again. */
		for (struct scan_job *o = oom ? j->same : NULL; o; o = o->same)
			o->sc.overflow = true;
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
void local_record_event(struct local_session *s, const struct dc_record *r)
{
	struct scan_job *j;
	int type;

	LOCAL_IFIND(s->jobs, r->dev, r->ino, j);
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

static struct local_task *job_task(struct local_session *s, const struct scan_job *j)
{
	struct local_task *t = s->tasks[j->slot];

	return t && t->id == j->tid && t->scan_epoch == j->epoch ? t : NULL;
}

struct feed_ctx {
	struct local_session *s;
	struct local_task *t;
	struct de_file f;
};

static int feed(void *ud, uint64_t index, uint64_t count, bool dirty)
{
	struct feed_ctx *c = ud;
	int r = de_scan_pages(c->s->e, c->t->slot, &c->f, index, count, dirty);

	/* -ESTALE: the number names another file now; its events will tell. */
	return r == -ESTALE ? 1 : r < 0 ? r : 0;
}

/* The stream has passed j->hi: the scan takes effect for its task. */
static void apply_job(struct local_session *s, struct scan_job *j)
{
	struct local_task *t = job_task(s, j);

	job_unregister(s, j);
	s->njobs--;
	if (!t)
		goto out;
	t->jobs_out--;
	t->jobs_pages -= j->pages;
	if (j->sc.overflow) {
		/* The file was too busy to place the scan: read it again. */
		local_queue_scan(t, j->path, j->k.dev, j->k.ino);
		t->scan_files--;	/* the same file, still to do once */
		goto out;
	}
	if (!j->err && (!t->visible || t->visible(t->vis_ud, j->path))) {
		struct feed_ctx c = { s, t, { j->k.dev, j->k.ino, j->gen } };

		ds_scan_result(&j->sc, feed, &c);
	} else if (!j->err && j->pages) {
		/* Hidden meanwhile: the task is told when it can see it again. */
		local_hidden_add(t, j->k.dev, j->k.ino);
	}
	scanned(t, j->k.dev, j->k.ino);
	t->scan_done++;
out:
	job_free(j);
}

/* Apply the jobs whose window ends before upto (a stream time). */
void local_apply_ready(struct local_session *s, uint64_t upto)
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

/*
 * Once per file, whichever of its names under the directory comes first:
 * a file with two names is scanned once. A visibility-checked task sees
 * a file by the name relevance() looks at (local_task_sees()); one it
 * cannot see is remembered if it has pages the task would have to be told
 * of later.
 */
static int list_file(void *ud, const char *path, uint32_t dev, uint64_t ino)
{
	struct local_task *t = ud;
	char vpath[PATH_MAX] = "";
	struct stat st;

	/*
	 * Only the names the index has as regular files come here. No stat
	 * (with the session lock held, 100,000 of them took 0.75 s): the scan
	 * opens each with O_NOFOLLOW and checks that it is still a regular
	 * file of that number (scan.c).
	 */
	if (local_unscanned(t, dev, ino))
		return 0;
	if (!t->visible) {
		local_queue_scan(t, path, dev, ino);
		return 0;
	}
	if (local_task_sees(t->s, t, dev, ino, vpath, sizeof(vpath))) {
		if (!lstat(vpath, &st) && S_ISREG(st.st_mode) && st.st_ino == ino)
			local_queue_scan(t, vpath, dev, ino);
	} else if (!strcmp(vpath, path)) {
		local_hidden_found(t, path, dev, ino);	/* at its first name only */
	}
	return 0;
}

/* Forget the task's queued scans (it is paused or going away). */
void local_drop_scans(struct local_task *t)
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
void local_schedule_full_scan(struct local_task *t)
{
	/* Every file is looked at again: what it cannot see is found again. */
	local_hidden_clear(t);
	dc_index_foreach_file_under(t->s->x, t->root, list_file, t);
}

/*
 * Take up to SCAN_BATCH queued files per task, read their residency with
 * the session lock released (API calls and other tasks go on meanwhile),
 * and queue the jobs to be applied at their place in the stream. Returns
 * true if files remain that can be scanned now.
 */
bool local_run_scans(struct local_session *s)
{
	struct scan_job *batch = NULL, **tail = &batch, *j;
	struct ds_dir dir;
	uint64_t room[DE_MAX_TASKS];
	bool more = false;

	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];
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
			j->k = local_ikey(sf->dev, sf->ino);
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
		struct local_task *t = s->tasks[i];
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
	ds_dir_init(&dir);
	for (j = batch; j; j = j->next) {
		if (room[j->slot] == 0) {
			j->deferred = true;
			continue;
		}
		j->err = ds_scan_read_in(&j->sc, &dir, j->path, j->k.ino);
		j->hi = mono_ns() + DS_MARGIN_NS;
		j->pages = j->sc.cached ? roaring_bitmap_get_cardinality(j->sc.cached) : 0;
		room[j->slot] -= j->pages < room[j->slot] ? j->pages : room[j->slot];
	}
	ds_dir_close(&dir);
	pthread_mutex_lock(&s->lock);
	while (batch) {
		struct local_task *t;

		j = batch;
		batch = j->next;
		j->next = NULL;
		t = job_task(s, j);
		if (!t || j->deferred) {
			s->njobs--;
			if (t) {
				/* Not read: queued again, still counted once. */
				t->jobs_out--;
				local_queue_scan(t, j->path, j->k.dev, j->k.ino);
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

void local_jobs_free(struct local_session *s)
{
	while (s->ready) {
		struct scan_job *j = s->ready;

		s->ready = j->next;
		job_unregister(s, j);
		job_free(j);
	}
	s->ready_tail = NULL;
}
