// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process backend's pump thread (local.h): it takes the session
 * lock per iteration, applies directory, mount and attribute changes to
 * the path index, feeds each batch of records to the engine, runs scans
 * between batches, and wakes the tasks that have items. The engine's
 * relevance callback and the index's change callback are here too.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "local.h"

/* Directory entries an index repair lists per pump iteration (a few ms). */
#define REPAIR_BUDGET 2048

static void inval_add(struct local_session *s, uint32_t dev, uint64_t ino, int why);

/* Tasks that may be told about (dev, ino) now: not paused, not still to scan it. */
static uint64_t fed(struct local_session *s, uint32_t dev, uint64_t ino, uint64_t mask)
{
	for (uint64_t m = mask; m; m &= m - 1) {
		int i = __builtin_ctzll(m);
		struct local_task *t = s->tasks[i];

		/* A queued scan will tell the task. */
		if (!t || t->paused || local_unscanned(t, dev, ino))
			mask &= ~(1ull << i);
	}
	return mask;
}

void local_lost(struct local_session *s, uint64_t mask)
{
	de_lost(s->e, mask);
	dc_index_clear_held(s->x, mask);
}

/*
 * Which tasks want the events of (dev, ino) and which file they belong
 * to. The stream's incarnation first: an event of a file that has no
 * name any more (deleted, or deleted and its number taken by a new file
 * whose name the index has already) goes to the tasks that saw that file
 * when it was unlinked, under its own gen; never to the new file's.
 */
static uint64_t relevance(struct local_session *s, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	char path[PATH_MAX];
	uint64_t mask = 0, g = 0, held;

	/* Applies pending directory changes for an inode not seen yet. */
	dc_index_lookup(s->x, dev, ino, NULL);
	switch (dc_index_stream(s->x, dev, ino, &g, &held)) {
	case 0:
		break;		/* the named file: its names decide */
	case 2:
		/* Its name is still to come: this answer must not be kept. */
		inval_add(s, dev, ino, DC_NAME_WALK);
		/* fall through */
	case 1:
		*gen = g;
		return fed(s, dev, ino, held);
	default:
		return 0;	/* not under the roots */
	}
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];

		if (!t || t->paused ||
		    dc_index_name_under(s->x, dev, ino, t->root, path, sizeof(path), &g))
			continue;
		if (t->visible && !local_vis_relevant(s, t, dev, ino, path))
			continue;
		mask |= 1ull << i;
	}
	*gen = g;
	return fed(s, dev, ino, mask);
}

uint64_t local_relevant_cb(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	return relevance(ud, dev, ino, gen);
}

/*
 * A file's last name was unlinked: the tasks that saw it keep its
 * identity and get its pages' REMOVED as they leave. A task saw it if
 * its directory held the name, it was not still to scan it (a scan of a
 * deleted file tells it nothing) and, for a task whose visibility is
 * checked, the file was not hidden from it (local-vis.c: a hidden file's
 * page state was never told to the task).
 */
static void file_deleted(struct local_session *s, uint32_t dev, uint64_t ino)
{
	const char *gone = dc_index_gone(s->x, dev, ino);
	uint64_t held = 0;

	if (!gone)
		return;
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];

		if (t && dc_path_under(gone, t->root) && !local_unscanned(t, dev, ino) &&
		    (!t->visible || !local_task_hidden(t, dev, ino)))
			held |= 1ull << i;
	}
	dc_index_set_held(s->x, dev, ino, held);
}

/*
 * Called by the index when an inode gains or loses a name. It may run
 * inside the engine's relevance callback, so it only records; the engine
 * is told after the current event.
 */
void local_index_changed(void *ud, uint32_t dev, uint64_t ino, int why)
{
	struct local_session *s = ud;

	if (why == DC_NAME_DELETED) {
		file_deleted(s, dev, ino);
		why = DC_NAME_REMOVED;	/* otherwise a name gone like any other */
	}

	if (why == DC_NAME_OVERFLOW) {
		s->index_lost = true;
		s->index_repaired = false;	/* a repair that completed before is moot */
	} else if (why == DC_NAME_REPAIRED) {
		s->index_repaired = true;
	} else if (why == DC_NAME_ATTRIB && !dev && !ino && !s->aw) {
		/*
		 * A watched directory's (inotify): who may see below it. With
		 * fanotify the same change comes with the directory's identity
		 * and checks only what lies below it (attr_changed()).
		 */
		s->recheck_hidden = true;
	}
	if (dev || ino)
		local_note_change(s, dev, ino, why);
	if (!dev && !ino) {
		s->inval_all = true;
		return;
	}
	inval_add(s, dev, ino, why);
}

/* The engine's answer for (dev, ino) is dropped after the current event. */
static void inval_add(struct local_session *s, uint32_t dev, uint64_t ino, int why)
{
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

static void index_repair_news(struct local_session *s);

/*
 * A file renamed, linked or mounted into a task's directory starts being
 * reported with its cached pages: the tasks that see it now and did not
 * before the change scan it, once (local-vis.c). So does a file that an
 * attribute change made visible to a task that had not been told its
 * pages. The per-file decisions stand also when everything's relevance
 * is dropped (a directory's attributes changed in the same batch).
 */
static void apply_invalidations(struct local_session *s)
{
	if (s->index_lost || s->index_repaired)
		index_repair_news(s);
	if (s->inval_all)
		de_invalidate_all(s->e);
	for (size_t i = 0; i < s->ninval; i++) {
		uint32_t dev = s->inval[i].dev;
		uint64_t ino = s->inval[i].ino;

		if (!s->inval_all)
			de_file_invalidate(s->e, dev, ino);
		/*
		 * Only a file that arrives with its pages (renamed in, linked
		 * in) is scanned: a new file's pages come as events, and a
		 * scan too would report them twice to a task that fetched in
		 * between.
		 */
		switch (s->inval[i].why) {
		case DC_NAME_MOVED_IN:
		case DC_NAME_LINKED:
			local_arrived(s, dev, ino);
			break;
		case DC_NAME_REMOVED:
			local_name_gone(s, dev, ino);
			break;
		case DC_NAME_ATTRIB:
			local_attr_recheck(s, dev, ino);
			break;
		}
	}
	if (s->recheck_hidden || s->ndirattr)
		local_hidden_recheck_dirs(s);
	s->inval_all = false;
	s->ninval = 0;
	local_before_clear(s);
}

/* A file's or a directory's mode, owner or ACL changed (attrwatch.h). */
static void attr_changed(void *ud, uint32_t kdev, uint64_t ino, bool dir)
{
	struct local_session *s = ud;

	if (!dir) {
		local_index_changed(ud, kdev, ino, DC_NAME_ATTRIB);
		return;
	}
	if (kdev)
		local_dir_changed(s, kdev, ino);
	else
		s->recheck_hidden = true;	/* not placed: anything may have changed */
	local_index_changed(ud, 0, 0, DC_NAME_ATTRIB);
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
void local_sync_changes(struct local_session *s)
{
	dc_index_update(s->x);
	if (s->aw)
		dc_attrwatch_read(s->aw, attr_changed, s);
	if (s->ninval || s->inval_all)
		apply_invalidations(s);
}

/* ---- latency: demand from the tasks that wait ---- */

/* A task's bound at or past the readers' batching period asks for nothing. */
#define BATCH_MS 100u
/* Readers go back to batching once no task has waited for this long. */
#define LAT_IDLE_NS 1000000000ull

void local_update_latency(struct local_session *s)
{
	unsigned int want = 0;

	if (!s->src)
		return;
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];
		unsigned int ms;

		if (!t || t->paused || t->lost_pending || de_pending(s->e, t->slot))
			continue;
		ms = t->latency_ms ? t->latency_ms : s->opts.latency_ms;
		if (!ms)
			ms = DUET_LATENCY_MS;
		if (ms < BATCH_MS && (!want || ms * 1000u < want))
			want = ms * 1000u;
	}
	if (!want && s->lat_us) {
		struct timespec ts;
		uint64_t now;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		if (!s->lat_idle_since)
			s->lat_idle_since = now;
		if (now - s->lat_idle_since < LAT_IDLE_NS)
			return;
	}
	if (want)
		s->lat_idle_since = 0;
	if (want != s->lat_us && dc_source_set_latency(s->src, want) != -EOPNOTSUPP)
		s->lat_us = want;
}

/* ---- the folios ADDED showed (stock DIRTY names only their first page) ---- */

void local_folios_clear(struct local_session *s)
{
	ft_clear(&s->folios);
}

static int handle_run(void *ud, const struct dc_record *rec, size_t n)
{
	struct local_session *s = ud;

	if (s->fetch_fresh) {
		s->fetch_fresh = false;
		local_sync_changes(s);
	}
	/* Answers given outside a batch (a fetch's) that must not be kept. */
	if (s->ninval || s->inval_all)
		apply_invalidations(s);

	for (size_t i = 0; i < n; i++) {
		const struct dc_record *r = &rec[i];

		/* Scans whose window ends before this event take effect first. */
		if (s->ready) {
			local_apply_ready(s, r->ts);
			local_record_event(s, r);
		}
		switch (r->type) {
		case DC_ADDED:
		case DC_REMOVED:
		case DC_DIRTY:
		case DC_FLUSHED: {
			int k = r->type == DC_ADDED ? 0 : r->type == DC_REMOVED ? 1 :
				r->type == DC_DIRTY ? 2 : 3;

			s->ev_n[k]++;
			s->ev_pages[k] += r->count;
			break;
		}
		case DC_LOST:
			s->lost_notices++;
			s->lost_events += r->count;
			break;
		}
		switch (r->type) {
		case DC_LOST: {
			uint64_t all = 0;

			local_polite_event(s, r, 0);
			for (int k = 0; k < DE_MAX_TASKS; k++)
				if (s->tasks[k])
					all |= 1ull << k;
			dc_index_stream_lost(s->x);
			de_invalidate_all(s->e);
			/* Lost REMOVEDs may have ended folios remembered: forget them. */
			local_folios_clear(s);
			local_lost(s, all);
			/* Repair: every task's cached pages are reported again. */
			for (int k = 0; k < DE_MAX_TASKS; k++) {
				struct local_task *t = s->tasks[k];
				uint64_t one = 1;

				if (!t)
					continue;
				t->lost_pending = true;
				/* A paused task resyncs when it comes back. */
				if (!t->paused) {
					t->resyncs++;
					local_drop_scans(t);
					local_schedule_full_scan(t);
				}
				/* The LOST item alone makes the fd readable. */
				if (!t->signalled && write(t->efd, &one, sizeof(one)) == sizeof(one))
					t->signalled = true;
			}
			if (r->flags & DC_REC_LOST_LATE)
				local_logf(s, 4, "duet: %" PRIu64 " events on cpu %u came after its "
				      "mark (out of order); resyncing", r->count, r->cpu);
			else
				local_logf(s, 4, "duet: %" PRIu64 " events lost on cpu %u; resyncing",
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
			if (s->stock_dirty)
				ft_added(&s->folios, r->dev, r->ino, r->index, r->count);
			de_event(s->e, r->dev, r->ino, r->index, r->count, r->type);
			local_polite_event(s, r, r->count);
			break;
		case DC_REMOVED:
			if (s->stock_dirty)
				ft_removed(&s->folios, r->dev, r->ino, r->index, r->count);
			de_event(s->e, r->dev, r->ino, r->index, r->count, r->type);
			local_polite_event(s, r, r->count);
			break;
		case DC_DIRTY: {
			uint64_t count = !s->stock_dirty || r->count != 1 ? r->count :
					 ft_dirty_count(&s->folios, r->dev, r->ino, r->index);

			de_event(s->e, r->dev, r->ino, r->index, count, r->type);
			local_polite_event(s, r, count);
			break;
		}
		case DC_INODE_NEW:
			local_polite_event(s, r, 0);
			/* Events from here on are the new file's: ask again. */
			dc_index_inode_new(s->x, r->dev, r->ino);
			de_file_invalidate(s->e, r->dev, r->ino);
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
static void index_repair_news(struct local_session *s)
{
	uint64_t one = 1, mask = 0;

	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];

		if (t && (s->index_lost || t->paused == PAUSE_NONE))
			mask |= 1ull << k;
	}
	if (mask)
		local_lost(s, mask);
	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];

		if (!t)
			continue;
		if (mask & (1ull << k)) {
			t->lost_pending = true;
			if (!t->signalled && write(t->efd, &one, sizeof(one)) == sizeof(one))
				t->signalled = true;
		}
		if (s->index_lost && t->paused == PAUSE_NONE) {
			local_drop_scans(t);
			t->paused = PAUSE_REPAIR;
		}
		/* Paused otherwise (held, over its bound): resyncs when it comes back. */
		if (s->index_repaired && (t->paused == PAUSE_REPAIR || t->paused == PAUSE_NONE)) {
			t->paused = PAUSE_NONE;
			t->resyncs++;
			local_drop_scans(t);
			local_schedule_full_scan(t);
		}
	}
	if (s->index_lost)
		local_logf(s, 4, "duet: directory changes lost (inotify queue overflow); repairing "
		      "the path index, tasks paused");
	if (s->index_repaired)
		local_logf(s, 4, "duet: path index repaired; every task resyncs");
	s->index_lost = s->index_repaired = false;
}

/*
 * A task over its bound (a client that does not fetch): drop its pending
 * pages, queue LOST, feed it nothing until it fetches the LOST item. Its
 * memory in the shared table is then bounded by max_pending plus one
 * batch of events.
 */
static void check_bounds(struct local_session *s)
{
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];

		if (!t || !t->max_pending || t->paused || de_pending(s->e, t->slot) <= t->max_pending)
			continue;
		local_lost(s, 1ull << t->slot);
		local_drop_scans(t);
		t->paused = PAUSE_OVERFLOW;
		t->lost_pending = true;
		de_invalidate_all(s->e);	/* relevance without this task */
		local_logf(s, 4, "duet: task %s over %" PRIu64 " pending pages; dropped until it fetches",
		      t->name, t->max_pending);
	}
}

static void signal_tasks(struct local_session *s)
{
	for (int i = 0; i < DE_MAX_TASKS; i++) {
		struct local_task *t = s->tasks[i];
		uint64_t one = 1;

		if (!t || t->signalled || (!de_pending(s->e, t->slot) && !t->lost_pending))
			continue;
		if (write(t->efd, &one, sizeof(one)) == sizeof(one))
			t->signalled = true;
	}
}

/*
 * The file systems whose attribute changes can change what task t may
 * see: those of every directory from / down to its root, and of every
 * mount inside its tree.
 */
void local_watch_attrs(struct local_session *s, struct local_task *t)
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

static void watch_attrs_all(struct local_session *s)
{
	for (int i = 0; i < DE_MAX_TASKS; i++)
		if (s->tasks[i] && s->tasks[i]->visible)
			local_watch_attrs(s, s->tasks[i]);
}

void *local_pump_main(void *arg)
{
	struct local_session *s = arg;
	bool more = false, repairing;
	struct polite_drop *drops;
	size_t ndrops;

	for (;;) {
		struct pollfd pfd[6] = {
			{ .fd = s->stopfd, .events = POLLIN },
			{ .fd = dc_index_fd(s->x), .events = POLLIN },
			{ .fd = s->src ? dc_source_fd(s->src) : -1, .events = POLLIN },
			{ .fd = s->mountfd, .events = POLLPRI },
			{ .fd = s->aw ? dc_attrwatch_fd(s->aw) : -1, .events = POLLIN },
			{ .fd = s->dropfd, .events = POLLIN },
		};
		uint64_t junk;

		poll(pfd, 6, more ? 0 : 100);
		if (pfd[0].revents & POLLIN)
			break;
		pthread_mutex_lock(&s->lock);
		/* Before the take below: a mark after it kicks again. */
		if (s->drop_kicked) {
			if (read(s->dropfd, &junk, sizeof(junk)) < 0) {
			}
			s->drop_kicked = false;
		}
		if (pfd[3].revents & (POLLPRI | POLLERR)) {
			/*
			 * Mounts changed: what is under the directories changed.
			 * The stream first, then the names (local.c, task_new_ext):
			 * a new mount's device is read before its files are
			 * walked, and once more for the mounts that went away.
			 */
			local_update_devices(s);
			if (dc_index_remount(s->x) > 0) {
				local_update_devices(s);
				watch_attrs_all(s);
			}
		}
		local_sync_changes(s);
		/* A bounded part of a repair per iteration: the lock is let go. */
		repairing = dc_index_repair_step(s->x, REPAIR_BUDGET) > 0;
		/* Told, never silent; once a minute at most (links come fast). */
		if (dc_index_stats(s->x)->names_capped != s->names_capped &&
		    time(NULL) >= s->capped_logged + 60) {
			s->names_capped = dc_index_stats(s->x)->names_capped;
			s->capped_logged = time(NULL);
			local_logf(s, 4, "duet: %" PRIu64 " names not indexed: their inodes have %d "
			      "names already (tasks see those files only by the names kept)",
			      s->names_capped, DC_INDEX_MAX_NAMES);
		}
		if (s->ninval || s->inval_all)
			apply_invalidations(s);
		s->fetch_fresh = true;
		if (s->src && dc_source_dispatch(s->src, handle_run, s) >= 0)
			local_apply_ready(s, dc_source_complete_to(s->src) + 1);
		s->fetch_fresh = false;
		more = local_run_scans(s) || repairing;
		/* Scans read wait for the stream to pass them: ask for the marks. */
		if (s->src && s->ready_tail)
			dc_source_want_mark(s->src, s->ready_tail->hi);
		check_bounds(s);
		signal_tasks(s);
		local_update_latency(s);
		drops = local_polite_take(s, &ndrops);
		pthread_mutex_unlock(&s->lock);
		/* The polite drops the batch decided, outside the lock. */
		local_polite_run(drops, ndrops);
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
