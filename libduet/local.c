// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process backend (backend.h, local.h): its sessions and tasks,
 * the calls api.c makes through its table, and duetd's extensions
 * (internal.h). The pump thread is in local-pump.c, scans in
 * local-scan.c, saved done marks in local-save.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "local.h"

static const struct duet_backend local_ops;

struct local_session *local_session_of(struct duet_session *s)
{
	return s && s->ops == &local_ops ? duet__container_of(s, struct local_session, base) :
					   NULL;
}

struct local_task *local_task_of(struct duet_task *t)
{
	return t && local_session_of(t->s) ? local_task(t) : NULL;
}

static struct local_session *local_session(struct duet_session *s)
{
	return duet__container_of(s, struct local_session, base);
}

void local_logf(struct local_session *s, int level, const char *fmt, ...)
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

/* ---- sessions ---- */

static void task_free(struct duet_task *dt);
static void session_free(struct duet_session *ds);
static void walk_pause(void *ud);

int duet__local_session_new(const struct duet_session_opts *opts, struct duet_session **ret)
{
	struct de_engine_opts eo = { .sz = sizeof(eo) };
	enum dc_backend b = DC_BACKEND_TRACEFS;
	struct local_session *s;
	uint32_t *all = NULL;
	int r;

	if (opts->backend && dc_backend_parse(opts->backend, &b))
		return -EINVAL;
	if (!dc_source_available(b))
		return -EOPNOTSUPP;
	r = dc_tracefs_ensure(NULL);
	if (r)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &local_ops;
	s->opts = *opts;
	s->opts.socket = NULL;		/* the caller's strings are not kept */
	s->opts.backend = NULL;
	s->backend = b;
	s->stopfd = -1;
	s->dropfd = -1;
	s->mountfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->reg_lock, NULL);
	eo.relevant = local_relevant_cb;
	eo.ud = s;
	r = de_engine_new(&eo, &s->e);
	if (r)
		goto fail;
	r = dc_index_new(NULL, 0, &s->x);
	if (r)
		goto fail;
	dc_index_set_changed(s->x, local_index_changed, s);
	dc_index_set_yield(s->x, walk_pause, s);
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
	s->dropfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stopfd < 0 || s->dropfd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&s->pump, NULL, local_pump_main, s);
	if (r)
		goto fail;
	s->pump_started = true;
	*ret = &s->base;
	return 0;
fail:
	session_free(&s->base);
	return r;
}

static void session_free(struct duet_session *ds)
{
	struct local_session *s = local_session(ds);
	uint64_t one = 1;

	if (s->pump_started) {
		if (write(s->stopfd, &one, sizeof(one)) < 0) {
		}
		pthread_join(s->pump, NULL);
	}
	for (int i = 0; i < DE_MAX_TASKS; i++)
		if (s->tasks[i])
			task_free(&s->tasks[i]->base);
	local_jobs_free(s);
	local_polite_free(s);
	dc_source_free(s->src);
	local_folios_clear(s);
	dc_attrwatch_free(s->aw);
	dc_index_free(s->x);
	de_engine_free(s->e);
	dc_mounts_free(&s->mounts);
	free(s->devs);
	free(s->bdis);
	free(s->inval);
	local_before_clear(s);
	free(s->dirattr);
	if (s->stopfd >= 0)
		close(s->stopfd);
	if (s->dropfd >= 0)
		close(s->dropfd);
	if (s->mountfd >= 0)
		close(s->mountfd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->reg_lock);
	free(s);
}

static int flush_semantics(struct duet_session *ds)
{
	struct local_session *s = local_session(ds);
	int r = DUET_FLUSH_NONE;

	pthread_mutex_lock(&s->lock);
	/* DC_FLUSH_* are DUET_FLUSH_* (local.h). */
	if (s->src)
		r = (int)dc_source_flush_sem(s->src);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/*
 * The watched devices whose event stream marks every new inode (ext4's
 * ext4_allocate_inode, xfs's iget events): there the index tells the
 * files that had one inode number apart in stream order.
 */
static int mark_devices(struct local_session *s, const uint32_t *devs, size_t ndevs)
{
	uint32_t *m = calloc(ndevs + 1, sizeof(*m));
	size_t n = 0;
	int r;

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < ndevs; i++) {
		const char *fs = NULL;
		bool marked;

		for (size_t k = 0; k < s->mounts.n && !fs; k++)
			if (s->mounts.m[k].kdev == devs[i])
				fs = s->mounts.m[k].fstype;
		marked = fs && ((!strcmp(fs, "ext4") &&
				 dc_source_uses(s->src, DC_SRC_EXT4_ALLOC)) ||
				(!strcmp(fs, "xfs") &&
				 dc_source_uses(s->src, DC_SRC_XFS_IGET_MISS) &&
				 dc_source_uses(s->src, DC_SRC_XFS_IGET_RECYCLE)));
		if (marked)
			m[n++] = devs[i];
	}
	r = dc_index_set_marked(s->x, m, n);
	free(m);
	return r;
}

/* The devices every task's directory covers; the live source follows. */
int local_update_devices(struct local_session *s)
{
	struct dc_source_opts so = { .sz = sizeof(so), .backend = s->backend };
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
	if (s->src) {
		/* The same set: the filters stay as they are. */
		if (ndevs != s->ndevs || (ndevs && memcmp(devs, s->devs, ndevs * sizeof(*devs))))
			r = dc_source_set_devices(s->src, devs, ndevs);
		if (!r)
			r = mark_devices(s, devs, ndevs);
		goto out;
	}
	so.devs = devs;
	so.ndevs = ndevs;
	so.bdis = s->bdis;
	so.nbdis = s->nbdis;
	so.buffer_kb = s->opts.buffer_kb;
	/* perf has no sub-buffers: the option is tracefs's alone. */
	so.subbuf_kb = s->backend == DC_BACKEND_TRACEFS ? s->opts.subbuf_kb : 0;
	so.stock_only = s->opts.flags & DUET_SESSION_STOCK;
	so.devices_change = true;	/* every new task's directory */
	/* Inode markers, where the kernel has them (consumer/record.h). */
	so.types = DC_EVENTS_ALL | DC_INODE_NEW;
	r = dc_source_open(&so, &s->src);
	if (!r)
		s->stock_dirty = dc_source_dirty_sem(s->src) == DC_DIRTY_BDI;
	if (!r)
		r = dc_source_start(s->src);
	if (!r)
		r = mark_devices(s, devs, ndevs);
	if (r) {
		dc_source_free(s->src);
		s->src = NULL;
	}
out:
	if (!r) {
		free(s->devs);
		s->devs = devs;
		s->ndevs = ndevs;
		devs = NULL;
	}
	free(devs);
	return r;
}

/* ---- tasks ---- */

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

/*
 * A new task's walk pauses every few milliseconds (dc_index_set_yield()):
 * the lock is let go for a moment, so that the pump goes on reading the
 * stream into the other tasks (no ring-buffer overrun, no LOST) and their
 * fetches are served. Registrations take reg_lock: one walk at a time.
 */
static void walk_pause(void *ud)
{
	struct local_session *s = ud;
	struct timespec ts = { 0, 200000 };

	pthread_mutex_unlock(&s->lock);
	/* Long enough for a thread woken by the unlock to take the lock. */
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&s->lock);
}

/* A task; opts of this library's size (api.c), x duetd's extensions or NULL. */
static int task_new_ext(struct local_session *s, const struct duet_task_opts *opts,
			const struct duet__task_ext *x, struct duet_task **ret)
{
	struct local_task *t;
	char *root;
	int slot, r;

	r = x && x->have_root_fd ? root_of_fd(x->root_fd, &root) :
	    (root = realpath(opts->path, NULL)) ? 0 : -errno;
	if (r)
		return r;
	t = calloc(1, sizeof(*t));
	if (!t) {
		free(root);
		return -ENOMEM;
	}
	t->base.s = &s->base;
	t->s = s;
	t->root = root;
	t->mask = opts->mask;
	t->latency_ms = opts->latency_ms;
	if (x) {
		t->visible = x->visible;
		t->vis_ud = x->ud;
		t->max_pending = x->max_pending;
		t->paused = x->hold ? PAUSE_HOLD : PAUSE_NONE;
		t->owner_pid = x->owner_pid;
		t->observer = x->observer;
	}
	t->name = strdup(opts->name ? opts->name : "task");
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!t->name || t->efd < 0) {
		r = t->efd < 0 ? -errno : -ENOMEM;
		goto fail_unlocked;
	}
	pthread_mutex_lock(&s->reg_lock);
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
	/*
	 * The walk pauses (walk_pause()): events are handled meanwhile, with
	 * this task among those whose relevance is decided anew.
	 */
	de_invalidate_all(s->e);
	/*
	 * The stream first, then the names. The index takes a file it is
	 * told was created on a device whose stream marks new inodes as a
	 * new incarnation, whose events begin at its marker: created after
	 * the directory is watched, the file's marker must be in the stream,
	 * or its events would wait for it forever (given to nobody).
	 */
	r = local_update_devices(s);
	/*
	 * Attribute changes are watched before the walk: it pauses, and what
	 * this task may see is decided meanwhile.
	 */
	if (!r && t->visible) {
		if (!s->aw) {
			int e = dc_attrwatch_new(&s->aw);

			if (e)
				local_logf(s, 3, "duet: cannot watch attribute changes (%s): a "
				      "permission change through a name outside a task's tree is "
				      "seen only at the file's next rename or relevance check",
				      strerror(-e));
		}
		local_watch_attrs(s, t);
	}
	/* The root the caller opened is walked from its fd, never by path. */
	if (!r) {
		r = x && x->have_root_fd ? dc_index_add_root_at(s->x, x->root_fd, root) :
		    dc_index_add_root(s->x, root);
		if (r) {
			s->tasks[slot] = NULL;
			/* Its device may be no other task's: not read for nobody. */
			local_update_devices(s);
		}
	}
	if (r) {
		s->tasks[slot] = NULL;
		de_task_remove(s->e, slot);
		/* What the pauses let the pump hold back for this slot. */
		dc_index_clear_held(s->x, 1ull << slot);
		goto fail;
	}
	/* Polite from here on: its count and its start are the session's now. */
	t->polite = opts->flags & DUET_TASK_POLITE;
	local_polite_task_added(s, t);
	/* Relevance decided before this task existed did not include it. */
	de_invalidate_all(s->e);
	if (!t->paused)
		local_schedule_full_scan(t);
	local_update_latency(s);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->reg_lock);
	*ret = &t->base;
	return 0;
fail:
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->reg_lock);
fail_unlocked:
	if (t->efd >= 0)
		close(t->efd);
	free(t->name);
	free(t->root);
	free(t);
	return r;
}

static int task_new(struct duet_session *s, const struct duet_task_opts *opts,
		    struct duet_task **ret)
{
	return task_new_ext(local_session(s), opts, NULL, ret);
}

static void task_free(struct duet_task *dt)
{
	struct local_task *t = local_task(dt);
	struct local_session *s = t->s;

	local_polite_drain(s, t);
	pthread_mutex_lock(&s->lock);
	local_polite_task_gone(s, t);
	de_task_remove(s->e, t->slot);
	/* A later task in this slot never saw the deleted files this one did. */
	dc_index_clear_held(s->x, 1ull << t->slot);
	s->tasks[t->slot] = NULL;
	pthread_mutex_unlock(&s->lock);
	local_drop_scans(t);
	local_hidden_clear(t);
	free(t->scan);
	close(t->efd);
	free(t->name);
	free(t->root);
	free(t);
}

static int task_fd(const struct duet_task *t)
{
	return duet__container_of(t, const struct local_task, base)->efd;
}

/* *drained: nothing is left pending for the task (its fd was reset). */
static int fetch(struct local_task *t, struct duet_item *items, size_t n, bool *drained)
{
	struct local_session *s = t->s;
	int r;

	pthread_mutex_lock(&s->lock);
	/* A permission change takes effect before the next item leaves. */
	if (t->visible)
		local_sync_changes(s);
	r = de_fetch(s->e, t->slot, items, n);
	if (r > 0 && (items[0].flags & DUET_ITEM_LOST)) {
		t->lost_pending = false;	/* LOST comes first in a fetch */
		if (t->paused == PAUSE_OVERFLOW) {
			/* Back: fed again, and its cached pages reported again. */
			t->paused = PAUSE_NONE;
			t->resyncs++;
			de_invalidate_all(s->e);
			local_schedule_full_scan(t);
		}
	}
	*drained = r >= 0 && !de_pending(s->e, t->slot) && !t->lost_pending;
	if (*drained && t->signalled) {
		uint64_t v;

		/* Drained: the fd stops being readable until new items come. */
		if (read(t->efd, &v, sizeof(v)) < 0) {
		}
		t->signalled = false;
	}
	/* Drained, it waits for the next items: within its bound. */
	if (r >= 0 && !s->lat_us)
		local_update_latency(s);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int task_fetch(struct duet_task *dt, struct duet_item *items, size_t n)
{
	bool drained;

	return fetch(local_task(dt), items, n, &drained);
}

int duet__task_fetch(struct duet_task *dt, struct duet_item *items, size_t n, bool *drained)
{
	struct local_task *t = local_task_of(dt);

	if (!t || (n && !items) || !drained)
		return -EINVAL;
	return fetch(t, items, n, drained);
}

/* Absolute, with no empty, "." or ".." component and no trailing slash. */
static bool plain_path(const char *p)
{
	if (p[0] != '/' || !p[1])
		return false;
	for (const char *c = p + 1;;) {
		const char *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);

		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!*e)
			return true;
		c = e + 1;
	}
}

/*
 * realpath(path) and the stat of what it names. A plain path (above) that
 * opens with no symlink anywhere on it (RESOLVE_NO_SYMLINKS, a trailing
 * one included) is its own canonical name: three system calls. Otherwise
 * the file is opened once
 * (O_PATH: no permission needed, nothing read) and its /proc/self/fd link
 * gives the canonical name: four system calls, where realpath() reads
 * the link of every component (a tool marking each file it processed
 * done made six readlinks and an lstat per file). Without /proc, or for
 * a file removed meanwhile, realpath() answers.
 */
static char *canonical(const char *path, struct stat *st)
{
	char link[64], buf[PATH_MAX], *rp;
	ssize_t n;
	int fd, e;

	if (plain_path(path)) {
		struct open_how how = { .flags = O_PATH | O_CLOEXEC,
					.resolve = RESOLVE_NO_SYMLINKS };

		fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
		if (fd >= 0) {
			e = fstat(fd, st) ? errno : 0;
			close(fd);
			if (!e)
				return strdup(path);
			errno = e;
			return NULL;
		}
		/* ELOOP (a symlink), ENOSYS (before 5.6), ENOENT: as below */
	}
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, st)) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0 && buf[0] == '/' && (size_t)n < sizeof(buf) - 1) {
		buf[n] = '\0';
		if (!strstr(buf, " (deleted)"))
			return strdup(buf);
	}
	rp = realpath(path, NULL);
	if (rp && lstat(rp, st)) {
		e = errno;
		free(rp);
		errno = e;
		return NULL;
	}
	return rp;
}

int local_task_fileid(struct duet_task *dt, const char *path, struct duet_fileid *ret)
{
	struct local_task *t = local_task(dt);
	struct duet_fileid f = { 0 };
	const struct dc_mount *m;
	char *rp;
	struct stat st;
	int r = 0;

	rp = canonical(path, &st);
	if (!rp)
		return -errno;
	if (!dc_path_under(rp, t->root)) {
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

/*
 * duet_task_check_done() of a whole file (count 0): a whole-file mark, or
 * range marks that cover the file's pages as it is now, [0, size in pages
 * rounded up). The size is taken from the file's name in the index, as
 * this incarnation's; a file with no name any more is done only by a
 * whole-file mark. Pages cached past the end of the file are not part of
 * it.
 */
static int check_whole(struct local_task *t, const struct de_file *f)
{
	char path[PATH_MAX];
	uint64_t gen = 0, psz = (uint64_t)sysconf(_SC_PAGESIZE);
	struct stat st;
	int r;

	pthread_mutex_lock(&t->s->lock);
	r = de_done_check(t->s->e, t->slot, f, 0, 0);
	if (!r)
		dc_index_lookup(t->s->x, f->dev, f->ino, NULL);
	if (!r && (dc_index_name_under(t->s->x, f->dev, f->ino, NULL, path, sizeof(path), &gen) ||
		   gen != f->gen))
		r = -ENOENT;
	pthread_mutex_unlock(&t->s->lock);
	if (r)
		return r == -ENOENT ? 0 : r;
	/* Outside the lock: a system call. A file replaced meanwhile is not it. */
	if (lstat(path, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != f->ino)
		return 0;
	pthread_mutex_lock(&t->s->lock);
	r = de_done_covers(t->s->e, t->slot, f, ((uint64_t)st.st_size + psz - 1) / psz);
	pthread_mutex_unlock(&t->s->lock);
	return r;
}

int local_task_done(struct duet_task *dt, enum duet__done_op op, const struct duet_fileid *f,
		    uint64_t index, uint64_t count)
{
	struct local_task *t = local_task(dt);
	struct de_file df = { .dev = f->dev, .ino = f->ino, .gen = f->gen };
	bool kick = false;
	int r;

	if (op == DUET__DONE_CHECK && !count)
		return check_whole(t, &df);
	pthread_mutex_lock(&t->s->lock);
	if (op == DUET__DONE_SET)
		r = de_done_set(t->s->e, t->slot, &df, index, count);
	else if (op == DUET__DONE_RESET)
		r = de_done_reset(t->s->e, t->slot, &df, index, count);
	else
		r = de_done_check(t->s->e, t->slot, &df, index, count);
	/*
	 * Pages the tools brought in that this mark completes go now, in
	 * the pump: the fadvise's page-cache invalidation is not the
	 * caller's (a tool's reading thread, duetd's main thread) to wait
	 * for, and the pump merges them with the batch's own drops.
	 */
	if (op == DUET__DONE_SET && !r) {
		size_t before = t->s->ndrops;

		local_polite_done(t->s, &df, index, count);
		if (t->s->ndrops > before && !t->s->drop_kicked)
			kick = t->s->drop_kicked = true;
	}
	pthread_mutex_unlock(&t->s->lock);
	if (kick && write(t->s->dropfd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0) {
		/* an eventfd's counter does not fill; the pump's poll ends in 100 ms */
	}
	return r;
}

static int task_path(struct duet_task *dt, const struct duet_fileid *f, char *buf, size_t len)
{
	struct local_task *t = local_task(dt);
	char path[PATH_MAX];
	uint64_t gen = 0;
	int r;

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

/*
 * The engine's counters of the task and the session's own (resyncs,
 * scans): the one place the in-process counters become the public ones.
 */
static int task_status(struct duet_task *dt, struct duet_task_status *st)
{
	struct local_task *t = local_task(dt);
	struct de_task_stats ds;
	struct duet_task_status o = { .sz = sizeof(o) };
	int r;

	pthread_mutex_lock(&t->s->lock);
	r = de_task_stats(t->s->e, t->slot, &ds);
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
	snprintf(o.name, sizeof(o.name), "%s", t->name);
	pthread_mutex_unlock(&t->s->lock);
	if (!r)
		*st = o;
	return r;
}

static const struct duet_backend local_ops = {
	.name = "in-process",
	.session_free = session_free,
	.flush_semantics = flush_semantics,
	.task_new = task_new,
	.task_free = task_free,
	.task_fd = task_fd,
	.task_fetch = task_fetch,
	.task_fileid = local_task_fileid,
	.task_done = local_task_done,
	.task_path = task_path,
	.task_save = local_task_save,
	.task_load = local_task_load,
	.task_status = task_status,
};

/* ---- duetd's extensions (internal.h): in-process tasks only ---- */

int duet__task_new_ext(struct duet_session *ds, const struct duet_task_opts *opts,
		       const struct duet__task_ext *x, struct duet_task **ret)
{
	struct local_session *s = local_session_of(ds);
	struct duet_task_opts o;
	int r;

	if (!s || !ret)
		return -EINVAL;
	r = duet__task_opts_get(opts, &o);
	return r ? r : task_new_ext(s, &o, x, ret);
}

int duet__task_start(struct duet_task *dt)
{
	struct local_task *t = local_task_of(dt);

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->s->lock);
	if (t->paused == PAUSE_HOLD) {
		t->paused = PAUSE_NONE;
		de_invalidate_all(t->s->e);
		local_schedule_full_scan(t);
	}
	pthread_mutex_unlock(&t->s->lock);
	return 0;
}

const char *duet__task_root(const struct duet_task *dt)
{
	struct local_task *t = local_task_of((struct duet_task *)dt);

	return t ? t->root : NULL;
}

int duet__task_caught_up(struct duet_task *dt, uint64_t ts)
{
	struct local_task *t = local_task_of(dt);
	struct local_session *s;
	int r;

	if (!t)
		return -EINVAL;
	s = t->s;
	pthread_mutex_lock(&s->lock);
	r = !s->src || dc_source_complete_to(s->src) >= ts;
	if (!r)
		dc_source_want_mark(s->src, ts);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int duet__task_paused(struct duet_task *dt)
{
	struct local_task *t = local_task_of(dt);
	int r;

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->s->lock);
	r = t->paused != PAUSE_NONE;
	pthread_mutex_unlock(&t->s->lock);
	return r;
}

int duet__task_stats(struct duet_task *dt, struct duet__task_stats *st)
{
	struct local_task *t = local_task_of(dt);
	struct de_task_stats ds;
	int r;

	if (!t || !st)
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

int duet__session_stats(struct duet_session *ds, struct duet__session_stats *st)
{
	struct local_session *s = local_session_of(ds);
	struct de_engine_stats es;
	int r;

	if (!s || !st)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = de_engine_stats(s->e, &es);
	for (int k = 0; k < 4; k++) {
		st->ev_n[k] = s->ev_n[k];
		st->ev_pages[k] = s->ev_pages[k];
	}
	st->lost_events = s->lost_events;
	st->lost_notices = s->lost_notices;
	st->latency_us = s->lat_us;
	st->polite_tasks = (uint64_t)s->npolite;
	st->polite_dropped = s->polite_dropped;
	st->polite_held = s->polite_held;
	if (s->src) {
		const struct dc_source_stats *ss;

		if (!dc_source_stats(s->src, &ss)) {
			st->wakeups = ss->total.wakeups;
			st->late = ss->total.late;
		}
	}
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
