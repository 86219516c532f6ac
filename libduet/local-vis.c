// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process backend's scan decisions for files whose visibility to a
 * task changes (local.h): a file is scanned for a task when it becomes
 * visible to it, once, and never when the task could already see it.
 *
 * Two ways a file becomes visible:
 *  - a new name under the task's directory (renamed, linked or mounted
 *    in). The task saw it before if one of the names it had just before
 *    the change lay under the directory, the task was not still waiting
 *    for its scan, and it was not hidden from it (below). The index tells
 *    which name each change added or removed, so the names before a batch
 *    of changes are known at its first change (struct seen_before), and a
 *    rename within the tree (a name removed, then one added) or a second
 *    name is not scanned again.
 *  - a change of permissions (mode, owner, ACL of the file or of a
 *    directory above it) for a visibility-checked task (duetd's clients).
 *    What the task could see before is remembered only where it matters:
 *    struct hidden, the files whose page state the task does not know
 *    because it could not see them while their pages were cached (the
 *    registration walk, a cachestat per hidden file) or changed (the
 *    relevance answer that withheld the events). A file the task stopped
 *    seeing without any event meanwhile still has the state the task was
 *    told, and needs no scan when it comes back. On a file's attribute
 *    change its hidden entries are checked again, on a directory's those
 *    below it (all of a task's when it is the task's directory or above).
 *
 * Memory: one entry per hidden file with cached pages, per visibility-
 * checked task: 16 bytes of key and 56 of hash handle, 80 with malloc's
 * rounding, about 90 with the hash's buckets. On the test VM, uid 65534
 * cannot read 232,000 of the 464,000 files on /, and 140 of those had
 * pages cached: 140 entries, about 13 KiB, for a task of that user on /
 * (docs/libduet-design.md).
 *
 * Every function here runs with the session lock held.
 */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = true)

static struct hidden *hidden_find(const struct local_task *t, uint32_t dev, uint64_t ino)
{
	struct hidden *h;

	if (!t->hidden)
		return NULL;
	LOCAL_IFIND(t->hidden, dev, ino, h);
	return h;
}

bool local_task_hidden(const struct local_task *t, uint32_t dev, uint64_t ino)
{
	return hidden_find(t, dev, ino) != NULL;
}

void local_hidden_add(struct local_task *t, uint32_t dev, uint64_t ino)
{
	struct hidden *h;
	bool oom = false;

	if (!t->visible || hidden_find(t, dev, ino))
		return;
	h = calloc(1, sizeof(*h));
	if (h) {
		h->k = local_ikey(dev, ino);
		HASH_ADD(hh, t->hidden, k, sizeof(h->k), h);
	}
	if (!h || oom) {
		/* Not remembered: the task resyncs at the next attribute change. */
		free(h);
		t->hidden_oom = true;
		return;
	}
	t->nhidden++;
}

void local_hidden_forget(struct local_task *t, uint32_t dev, uint64_t ino)
{
	struct hidden *h = hidden_find(t, dev, ino);

	if (!h)
		return;
	HASH_DEL(t->hidden, h);
	free(h);
	t->nhidden--;
}

void local_hidden_clear(struct local_task *t)
{
	struct hidden *h, *tmp;

	HASH_ITER(hh, t->hidden, h, tmp) {
		HASH_DEL(t->hidden, h);
		free(h);
	}
	t->nhidden = 0;
	t->hidden_oom = false;
}

void local_hidden_found(struct local_task *t, const char *path, uint32_t dev, uint64_t ino)
{
	/* Nothing cached: nothing to tell it later unless events come (relevance). */
	if (ds_cached_any(path, ino) > 0)
		local_hidden_add(t, dev, ino);
}

bool local_task_sees(struct local_session *s, struct local_task *t, uint32_t dev, uint64_t ino,
		     char *path, size_t len)
{
	if (dc_index_name_under(s->x, dev, ino, t->root, path, len, NULL))
		return false;
	return !t->visible || t->visible(t->vis_ud, path);
}

bool local_vis_relevant(struct local_session *s, struct local_task *t, uint32_t dev,
			uint64_t ino, const char *path)
{
	if (!t->visible(t->vis_ud, path)) {
		/* Its events are withheld now: the task must be told it later. */
		local_hidden_add(t, dev, ino);
		return false;
	}
	if (!hidden_find(t, dev, ino))
		return true;
	/*
	 * Visible again, with a state the task was not told: scanned (after
	 * this event, as an attribute change), its events withheld until then.
	 */
	local_index_changed(s, dev, ino, DC_NAME_ATTRIB);
	return false;
}

/* ---- who saw a file before a name change ---- */

static struct seen_before *before_find(struct local_session *s, uint32_t dev, uint64_t ino)
{
	struct seen_before *b;

	if (!s->before)
		return NULL;
	LOCAL_IFIND(s->before, dev, ino, b);
	return b;
}

static int any_name(void *ud, const char *path)
{
	const char *skip = ud;

	return !skip || strcmp(path, skip);
}

/*
 * The tasks that saw (dev, ino) just before this change, which added or
 * removed name: a name then under the task's directory, told to the task.
 */
static uint64_t saw_before(struct local_session *s, uint32_t dev, uint64_t ino, int why,
			   const char *name)
{
	uint64_t mask = 0;

	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];
		bool had;

		if (!t || t->paused)
			continue;
		if (why == DC_NAME_REMOVED)
			had = (name && dc_path_under(name, t->root)) ||
			      dc_index_names_under(s->x, dev, ino, t->root, any_name, NULL);
		else
			had = dc_index_names_under(s->x, dev, ino, t->root, any_name,
						   (void *)name);
		/* A scan still queued may fail on the old name: not told yet. */
		if (had && !local_unscanned(t, dev, ino) && !hidden_find(t, dev, ino))
			mask |= UINT64_C(1) << k;
	}
	return mask;
}

void local_note_change(struct local_session *s, uint32_t dev, uint64_t ino, int why)
{
	struct seen_before *b;
	bool oom = false;

	if (why != DC_NAME_REMOVED && why != DC_NAME_LINKED && why != DC_NAME_MOVED_IN)
		return;
	if (before_find(s, dev, ino))
		return;		/* the state before the batch, not before this change */
	b = calloc(1, sizeof(*b));
	if (!b)
		return;		/* then every task that sees it is scanned */
	b->k = local_ikey(dev, ino);
	b->mask = saw_before(s, dev, ino, why, dc_index_changing_name(s->x));
	HASH_ADD(hh, s->before, k, sizeof(b->k), b);
	if (oom)
		free(b);
}

void local_before_clear(struct local_session *s)
{
	struct seen_before *b, *tmp;

	HASH_ITER(hh, s->before, b, tmp) {
		HASH_DEL(s->before, b);
		free(b);
	}
}

/* ---- scans ---- */

/* Scan (dev, ino) for t under its visible name path, if it is a regular file there. */
static bool reveal(struct local_task *t, const char *path, uint32_t dev, uint64_t ino)
{
	struct stat st;

	if (lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_ino != ino)
		return false;
	local_queue_scan(t, path, dev, ino);
	return true;
}

void local_arrived(struct local_session *s, uint32_t dev, uint64_t ino)
{
	struct seen_before *b = before_find(s, dev, ino);
	uint64_t skip = b ? b->mask | b->queued : 0;
	char path[PATH_MAX];

	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];

		if (!t || t->paused || (skip & (UINT64_C(1) << k)))
			continue;
		if (local_task_sees(s, t, dev, ino, path, sizeof(path))) {
			if (reveal(t, path, dev, ino) && b)
				b->queued |= UINT64_C(1) << k;	/* a second name: once */
		} else if (t->visible &&
			   !dc_index_name_under(s->x, dev, ino, t->root, path, sizeof(path), NULL)) {
			/* New to the task but not visible: told if it becomes so. */
			local_hidden_found(t, path, dev, ino);
		}
	}
}

void local_name_gone(struct local_session *s, uint32_t dev, uint64_t ino)
{
	char path[PATH_MAX];

	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];

		if (t && hidden_find(t, dev, ino) &&
		    dc_index_name_under(s->x, dev, ino, t->root, path, sizeof(path), NULL))
			local_hidden_forget(t, dev, ino);
	}
}

/* t's hidden file (dev, ino) again: scanned if t sees it now, forgotten if gone. */
static void recheck_one(struct local_session *s, struct local_task *t, uint32_t dev,
			uint64_t ino)
{
	char path[PATH_MAX];

	if (local_task_sees(s, t, dev, ino, path, sizeof(path))) {
		if (reveal(t, path, dev, ino))
			return;		/* forgotten by the queueing */
	}
	if (dc_index_name_under(s->x, dev, ino, t->root, path, sizeof(path), NULL))
		local_hidden_forget(t, dev, ino);	/* no name under it: arrives anew */
}

/* Memory ran out for a hidden file: what the task was not told is unknown. */
static void resync_task(struct local_session *s, struct local_task *t)
{
	uint64_t one = 1;

	local_lost(s, UINT64_C(1) << t->slot);
	t->lost_pending = true;
	t->resyncs++;
	local_drop_scans(t);
	local_schedule_full_scan(t);
	if (!t->signalled && write(t->efd, &one, sizeof(one)) == sizeof(one))
		t->signalled = true;
}

void local_attr_recheck(struct local_session *s, uint32_t dev, uint64_t ino)
{
	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];

		if (!t || t->paused || !t->visible)
			continue;
		if (t->hidden_oom)
			resync_task(s, t);
		else if (hidden_find(t, dev, ino))
			recheck_one(s, t, dev, ino);
	}
}

void local_dir_changed(struct local_session *s, uint32_t dev, uint64_t ino)
{
	if (s->ndirattr && s->dirattr[s->ndirattr - 1].dev == dev &&
	    s->dirattr[s->ndirattr - 1].ino == ino)
		return;		/* a run of changes to one directory */
	if (s->ndirattr == s->dirattr_cap) {
		size_t cap = s->dirattr_cap ? s->dirattr_cap * 2 : 16;
		void *n = realloc(s->dirattr, cap * sizeof(*s->dirattr));

		if (!n) {
			s->recheck_hidden = true;
			return;
		}
		s->dirattr = n;
		s->dirattr_cap = cap;
	}
	s->dirattr[s->ndirattr].dev = dev;
	s->dirattr[s->ndirattr].ino = ino;
	s->ndirattr++;
}

/* (dev, ino) is a directory above t's directory (whose search permission counts). */
static bool above_root(struct local_session *s, struct local_task *t, uint32_t dev,
		       uint64_t ino)
{
	char path[PATH_MAX];
	size_t len = strlen(t->root);

	if (len >= sizeof(path))
		return true;	/* cannot tell: as if it were */
	for (size_t i = 1; i < len; i++) {
		const struct dc_mount *m;
		struct stat st;

		if (t->root[i] != '/' && i != 1)
			continue;
		memcpy(path, t->root, i);
		path[i] = '\0';
		m = dc_mounts_find(&s->mounts, path);
		if (m && m->kdev == dev && !lstat(path, &st) && st.st_ino == ino)
			return true;
	}
	return false;
}

/* The changed directories' names under t's directory, sorted (bsearch). */
struct dirnames {
	char **p;
	size_t n, cap;
	bool oom;
};

static int add_dirname(void *ud, const char *path)
{
	struct dirnames *d = ud;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		char **n = realloc(d->p, cap * sizeof(*n));

		if (!n) {
			d->oom = true;
			return 1;
		}
		d->p = n;
		d->cap = cap;
	}
	d->p[d->n] = strdup(path);
	if (!d->p[d->n]) {
		d->oom = true;
		return 1;
	}
	d->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* path, or a directory above it up to root, is one of d's. */
static bool below_one(const struct dirnames *d, const char *root, const char *path)
{
	char buf[PATH_MAX];
	const char *key = buf;
	size_t rl = strlen(root);

	if (strlen(path) >= sizeof(buf))
		return true;
	strcpy(buf, path);
	for (;;) {
		char *slash = strrchr(buf, '/');

		if (!slash || (size_t)(slash - buf) < rl)
			return false;	/* t's directory itself: recheck_task() saw to it */
		*slash = '\0';
		if (bsearch(&key, d->p, d->n, sizeof(*d->p), cmp_str))
			return true;
	}
}

/*
 * Which of t's hidden files the directory changes concern: every one when
 * a change could not be placed or is of its directory or above it;
 * otherwise those with a directory above them (under t's directory) among
 * the changed ones. A directory elsewhere changes nothing t may see.
 */
static void recheck_task(struct local_session *s, struct local_task *t)
{
	struct dirnames d = { 0 };
	struct hidden *h, *tmp;
	bool all = s->recheck_hidden;
	char path[PATH_MAX];

	for (size_t i = 0; !all && i < s->ndirattr; i++) {
		uint32_t dev = s->dirattr[i].dev;
		uint64_t ino = s->dirattr[i].ino;

		all = above_root(s, t, dev, ino);
		if (!all)
			dc_index_names_under(s->x, dev, ino, t->root, add_dirname, &d);
		all |= d.oom;
	}
	if (!all && !d.n)
		return;
	if (!all) {
		const char *key = t->root;

		qsort(d.p, d.n, sizeof(*d.p), cmp_str);
		/* The task's directory itself: everything below it. */
		all = bsearch(&key, d.p, d.n, sizeof(*d.p), cmp_str);
	}
	/* recheck_one() may delete h (queued or gone), never another. */
	HASH_ITER(hh, t->hidden, h, tmp) {
		if (!all &&
		    (dc_index_name_under(s->x, h->k.dev, h->k.ino, t->root, path, sizeof(path),
					 NULL) ||
		     !below_one(&d, t->root, path)))
			continue;
		recheck_one(s, t, h->k.dev, h->k.ino);
	}
	for (size_t i = 0; i < d.n; i++)
		free(d.p[i]);
	free(d.p);
}

void local_hidden_recheck_dirs(struct local_session *s)
{
	for (int k = 0; k < DE_MAX_TASKS; k++) {
		struct local_task *t = s->tasks[k];

		if (!t || t->paused || !t->visible)
			continue;
		if (t->hidden_oom)
			resync_task(s, t);
		else if (t->hidden)
			recheck_task(s, t);
	}
	s->recheck_hidden = false;
	s->ndirattr = 0;
}
