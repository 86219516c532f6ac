// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The path index's walks (start, new roots, created and moved-in
 * directories, mounts that come and go), its repair after an inotify
 * queue overflow, and the inotify events. See index.c for the shape and
 * the ordering argument.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "index-int.h"

/* ---- opening without following symlinks ---- */

/*
 * The outermost root above path: its fd resolves path. (The roots' own
 * names are canonical, so no component of path is a symlink when all is
 * well; when one is, the open fails.)
 */
static struct root *root_above(struct dc_index *x, const char *path)
{
	struct root *best = NULL;

	for (size_t i = 0; i < x->nroots; i++) {
		struct root *r = x->roots[i];

		if (r->fd >= 0 && dc_path_under(path, r->path) &&
		    (!best || strlen(r->path) < strlen(best->path)))
			best = r;
	}
	return best;
}

/* Component by component with O_NOFOLLOW, where openat2() is missing. */
static int open_components(int fd, const char *rel, int flags)
{
	char buf[PATH_MAX], *s = buf;
	int cur = fd;

	if ((size_t)snprintf(buf, sizeof(buf), "%s", rel) >= sizeof(buf))
		return -ENAMETOOLONG;
	for (;;) {
		char *slash = strchr(s, '/');
		int nfd, err;

		if (slash)
			*slash = '\0';
		nfd = openat(cur, s, slash ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC :
					     flags | O_NOFOLLOW | O_CLOEXEC);
		err = errno;
		if (cur != fd)
			close(cur);
		if (nfd < 0)
			return -err;
		if (!slash)
			return nfd;
		cur = nfd;
		s = slash + 1;
	}
}

/* Open path (a name under a root) without following any symlink. */
static int open_beneath(struct dc_index *x, const char *path, int flags)
{
	struct root *r = root_above(x, path);
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	const char *rel;
	long fd;

	if (!r)
		return -ENOENT;
	rel = path + strlen(r->path);
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	fd = syscall(SYS_openat2, r->fd, rel, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS)
		return -errno;
	if (!strcmp(rel, ".")) {
		fd = openat(r->fd, ".", flags | O_CLOEXEC);
		return fd < 0 ? -errno : (int)fd;
	}
	return open_components(r->fd, rel, flags);
}

/* ---- walking ---- */

/*
 * File systems without page cache of their own (proc, sysfs, ...): a walk
 * does not descend into them below a root (a root on one is still
 * walked). Known by the mount table before the mount point is opened
 * (opening an autofs mount point would trigger it; devtmpfs has tmpfs'
 * magic), and by the super block's magic once it is open, for a mount the
 * table does not show yet.
 */
static bool pseudo_mount(struct dc_index *x, const char *path)
{
	static const char *const pseudo[] = {
		"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "tracefs",
		"debugfs", "securityfs", "pstore", "bpf", "configfs", "mqueue", "hugetlbfs",
		"fusectl", "autofs", "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs",
		"selinuxfs",
	};
	const struct dc_mount *m = dc_mounts_find(&x->mounts, path);

	if (!m || strcmp(m->mnt_point, path) || !m->fstype)
		return false;
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if (!strcmp(m->fstype, pseudo[i]))
			return true;
	return false;
}

bool dc_pseudo_fs(int fd)
{
	static const long magic[] = {
		PROC_SUPER_MAGIC, SYSFS_MAGIC, DEVPTS_SUPER_MAGIC, CGROUP_SUPER_MAGIC,
		CGROUP2_SUPER_MAGIC, TRACEFS_MAGIC, DEBUGFS_MAGIC, SECURITYFS_MAGIC,
		PSTOREFS_MAGIC, BPF_FS_MAGIC, HUGETLBFS_MAGIC, AUTOFS_SUPER_MAGIC,
		BINFMTFS_MAGIC, EFIVARFS_MAGIC, NSFS_MAGIC, SELINUX_MAGIC,
		0x62656570,	/* configfs */
		0x19800202,	/* mqueue */
		0x65735543,	/* fusectl */
		0x67596969,	/* rpc_pipefs */
	};
	struct statfs sf;

	if (fstatfs(fd, &sf))
		return false;
	for (size_t i = 0; i < sizeof(magic) / sizeof(magic[0]); i++)
		if ((long)sf.f_type == magic[i])
			return true;
	return false;
}

static uint32_t kdev_of(struct dc_index *x, const char *path, uint32_t parent_kdev,
			dev_t parent_st, dev_t st)
{
	const struct dc_mount *m;

	if (st == parent_st)
		return parent_kdev;
	/* A mount point: the events carry its super block's device. */
	m = dc_mounts_find(&x->mounts, path);
	if (m && !strcmp(m->mnt_point, path))
		return m->kdev;
	return parent_kdev;	/* e.g. a btrfs subvolume: same super block */
}

/* Watch the directory open as fd, by the fd: no path is resolved again. */
static void watch(struct dc_index *x, struct pname *p, int fd)
{
	char proc[32];
	struct wdir *w;
	int wd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(x->ifd, proc, IN_MASK);
	if (wd < 0 && errno == ENOENT)	/* no /proc */
		wd = inotify_add_watch(x->ifd, p->path, IN_MASK | IN_DONT_FOLLOW);
	if (wd < 0)
		return;
	HASH_FIND_INT(x->wdirs, &wd, w);
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			inotify_rm_watch(x->ifd, wd);
			return;
		}
		w->wd = wd;
		HASH_ADD_INT(x->wdirs, wd, w);
		x->st.dirs_watched++;
	}
	w->e = p->e;
	p->dir->wd = wd;
	ix_births_watch(x, fd);
}

static void walk_fd(struct dc_index *x, struct pname *dp, int fd, dev_t st_dev, int depth);

/* How long a new root's walk goes on before it pauses (dc_index_set_yield()). */
#define PAUSE_EVERY_NS 2000000ull
#define PAUSE_CHECK 64	/* entries between looks at the clock */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Between two entries of a pausing walk: pause if it is time. */
static void walk_pause(struct dc_index *x)
{
	uint64_t now;

	if (!x->may_yield || ++x->since_pause < PAUSE_CHECK)
		return;
	x->since_pause = 0;
	now = mono_ns();
	if (!x->pause_ns)
		x->pause_ns = now;
	if (now - x->pause_ns < PAUSE_EVERY_NS)
		return;
	x->may_yield = false;
	x->yields++;
	x->yield(x->yield_ud);
	x->may_yield = true;
	x->pause_ns = mono_ns();
}

/*
 * The stamp a name arriving in directory p by an event gets: that of a
 * listing of p under way (a pausing walk's, or the repair's), or 0.
 */
static uint32_t arrival_stamp(const struct dc_index *x, const struct pname *p)
{
	if (p->dir && p->dir->listing)
		return p->dir->listing;
	return p == x->cur.dp ? x->cur.stamp : 0;
}

/* Drop dp's entries the listing stamped stamp did not see. */
static unsigned int drop_unseen(struct dc_index *x, struct pname *dp, uint32_t stamp)
{
	unsigned int n = 0;

	for (struct pname *c = dp->dir->child, *next; c; c = next) {
		next = c->sib_next;
		if (c->stamp != stamp)
			n += ix_drop_subtree(x, c);
	}
	return n;
}

/*
 * One entry of directory dp (open as dfd, on st_dev): a regular file is
 * named; a directory is opened from dfd without following a symlink,
 * skipped if it is a pseudo file system's mount point, named, watched and
 * then walked (recurse) or left for the repair to list (its epoch 0).
 * A directory the index knows already is left to the repair too.
 */
static void take_entry(struct dc_index *x, struct pname *dp, int dfd, dev_t st_dev,
		       const char *name, const struct stat *st, uint32_t stamp, bool recurse,
		       int depth)
{
	char path[PATH_MAX];
	struct root *root;
	struct pname *p;
	struct stat dst;
	bool top;
	int fd;

	if (join(path, dp->path, name))
		return;
	if (S_ISREG(st->st_mode)) {
		ix_add_name(x, dp, path, dp->e->k.dev, st->st_ino, false, stamp);
		return;
	}
	if (!S_ISDIR(st->st_mode))
		return;
	p = name_find(x, path);
	if (!recurse && p && p->dir && p->e->k.ino == st->st_ino) {
		p->stamp = stamp;	/* listed by the repair in its turn */
		return;
	}
	root = root_find(x, path);
	if (st->st_dev != st_dev && !root && pseudo_mount(x, path))
		return;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;		/* gone, or a symlink now: not followed */
	/* What was opened is what counts (it may have been swapped since). */
	if (fstat(fd, &dst) || (dst.st_dev != st_dev && !root && dc_pseudo_fs(fd))) {
		close(fd);
		return;
	}
	top = p && !p->parent && p->e->k.ino == dst.st_ino;
	p = ix_add_name(x, dp, path, kdev_of(x, path, dp->e->k.dev, st_dev, dst.st_dev),
		     dst.st_ino, true, stamp);
	if (!p || top) {
		/* Capped; or a root's tree, complete already. */
		close(fd);
		return;
	}
	if (recurse) {
		walk_fd(x, p, fd, dst.st_dev, depth + 1);
		return;
	}
	watch(x, p, fd);
	p->dir->epoch = 0;
	close(fd);
}

static void list_entry(struct dc_index *x, struct pname *dp, int dfd, dev_t st_dev,
		       const struct dirent *de, uint32_t stamp, bool recurse, int depth)
{
	struct stat st;

	if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
		return;
	if (de->d_type != DT_UNKNOWN && de->d_type != DT_REG && de->d_type != DT_DIR)
		return;	/* symlinks, devices, sockets: not followed, not named */
	if (de->d_type == DT_REG) {
		char path[PATH_MAX];
		struct pname *p;

		/*
		 * A file the index has by this name and number stayed: no
		 * stat. (Where d_ino is not st_ino, overlayfs without xino,
		 * the numbers differ and the stat below decides.)
		 */
		if (!join(path, dp->path, de->d_name) && (p = name_find(x, path)) && !p->dir &&
		    p->e->k.ino == de->d_ino) {
			p->stamp = stamp;
			return;
		}
	}
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
		return;
	take_entry(x, dp, dfd, st_dev, de->d_name, &st, stamp, recurse, depth);
}

/*
 * Walk directory dp, open as fd (closed here): watch first, then list, so
 * that nothing created meanwhile is missed (it is either listed or
 * reported by the watch). Names dp had that the listing lacks are dropped.
 * The listing opens the directory anew, after the watch: btrfs lists only
 * the entries that existed when the directory was opened, so a file
 * created between fd's open and the watch would be neither listed nor
 * reported.
 */
static void walk_fd(struct dc_index *x, struct pname *dp, int fd, dev_t st_dev, int depth)
{
	uint32_t stamp = ++x->stamp, yields;
	struct dirent *de;
	char *path = NULL;
	int lfd;
	DIR *d;

	if (x->cur.dp == dp) {
		/* The repair was listing it: this listing does it whole. */
		closedir(x->cur.d);
		x->cur.d = NULL;
		x->cur.dp = NULL;
	}
	watch(x, dp, fd);
	dp->dir->epoch = x->epoch;
	if (depth > MAX_DEPTH) {
		close(fd);
		return;
	}
	lfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(fd);
	if (lfd < 0)
		return;
	d = fdopendir(lfd);
	if (!d) {
		close(lfd);
		return;
	}
	/*
	 * A walk that pauses: while it does, events may add names here (they
	 * get this listing's stamp, see arrival_stamp()) or drop this very
	 * directory; after a pause it is looked up again by its name, and if
	 * it is not the same any more its listing ends here (the events that
	 * dropped or replaced it say what is there).
	 */
	if (x->may_yield && (path = strdup(dp->path)))
		dp->dir->listing = stamp;
	yields = x->yields;
	while ((de = readdir(d))) {
		list_entry(x, dp, dirfd(d), st_dev, de, stamp, true, depth);
		if (path)
			walk_pause(x);
		if (x->yields != yields) {
			struct pname *q = path ? name_find(x, path) : NULL;

			if (q != dp || !q->dir || q->dir->listing != stamp) {
				closedir(d);
				free(path);
				return;
			}
			yields = x->yields;
		}
	}
	closedir(d);
	if (path)
		dp->dir->listing = 0;
	free(path);
	drop_unseen(x, dp, stamp);
}

/* Name and walk the root r: (the top of) its own tree, or bits in another's. */
int ix_walk_root(struct dc_index *x, struct root *r)
{
	const struct dc_mount *m = dc_mounts_find(&x->mounts, r->path);
	struct pname *p = name_find(x, r->path);
	struct stat st;
	int fd;

	if (!m)
		return -ENOENT;
	if (fstat(r->fd, &st))
		return -errno;
	if (p && p->e->k.dev == m->kdev && p->e->k.ino == st.st_ino &&
	    !p->dir == !S_ISDIR(st.st_mode)) {
		/* Walked already, as part of another root. */
		if (r->slot >= 0)
			ix_propagate(p, 1ull << r->slot);
	} else if (!S_ISDIR(st.st_mode)) {
		ix_add_name(x, NULL, r->path, m->kdev, st.st_ino, false, 0);
	} else {
		/* Opened first: a root that cannot be listed leaves no name. */
		fd = openat(r->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		p = ix_add_name(x, NULL, r->path, m->kdev, st.st_ino, true, 0);
		if (!p) {
			close(fd);
			return 0;
		}
		walk_fd(x, p, fd, st.st_dev, 0);
	}
	/* Roots walked on their own before, below this one: under it too. */
	for (size_t i = 0; r->slot >= 0 && i < x->nroots; i++) {
		struct pname *q = name_find(x, x->roots[i]->path);

		if (q && !q->parent && q != p && dc_path_under(q->path, r->path))
			ix_propagate(q, 1ull << r->slot);
	}
	return 0;
}

/* ---- the repair ---- */

/*
 * Directory changes were lost: every directory is listed again, from the
 * first found, in steps. Another overflow meanwhile starts it over (a new
 * epoch: what was listed may have changed again). Nothing is allocated,
 * so repeated overflows cost no memory.
 */
static void repair_start(struct dc_index *x)
{
	x->st.overflows++;
	if (x->cur.d) {
		closedir(x->cur.d);
		x->cur.d = NULL;
		x->cur.dp = NULL;
	}
	if (++x->epoch == 0)
		x->epoch = 1;
	x->cursor = x->dirs;
	x->repairing = true;
	notify(x, 0, 0, DC_NAME_OVERFLOW);
}

/*
 * Open the next directory to list; false if there is none left. One that
 * cannot be opened, or is another directory now, is passed over
 * unconfirmed: its parent's listing (or an event) replaces it.
 */
static bool repair_next(struct dc_index *x)
{
	struct pdir *pd = x->cursor;
	struct stat st;
	int fd;

	while (pd && pd->epoch == x->epoch)
		pd = pd->all_next;
	x->cursor = pd;
	if (!pd)
		return false;
	x->st.repair_work++;
	x->cursor = pd->all_next;
	fd = open_beneath(x, pd->self->path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return true;
	if (fstat(fd, &st) || st.st_ino != pd->self->e->k.ino || !(x->cur.d = fdopendir(fd))) {
		close(fd);
		return true;
	}
	x->cursor = pd;
	x->cur.dp = pd->self;
	x->cur.st_dev = st.st_dev;
	x->cur.stamp = ++x->stamp;
	return true;
}

int dc_index_repair_step(struct dc_index *x, unsigned int budget)
{
	uint64_t start = x->st.repair_work;

	if (!x->repairing)
		return 0;
	if (x->walking)
		return 0;	/* a walk pauses: the repair goes on after it */
	if (!budget)
		budget = 1;
	while (x->st.repair_work - start < budget) {
		struct dirent *de;

		if (!x->cur.d) {
			if (repair_next(x))
				continue;
			x->repairing = false;
			x->st.repairs++;
			notify(x, 0, 0, DC_NAME_REPAIRED);
			return 0;
		}
		de = readdir(x->cur.d);
		if (!de) {
			struct pname *dp = x->cur.dp;

			closedir(x->cur.d);
			x->cur.d = NULL;
			x->cur.dp = NULL;
			x->st.repair_work += drop_unseen(x, dp, x->cur.stamp);
			dp->dir->epoch = x->epoch;
			x->cursor = dp->dir->all_next;
			continue;
		}
		x->st.repair_work++;
		list_entry(x, x->cur.dp, dirfd(x->cur.d), x->cur.st_dev, de, x->cur.stamp, false,
			   0);
	}
	return 1;
}

/* ---- inotify ---- */

/* Directory p open (the last event's, kept for the next one). */
static int event_dir(struct dc_index *x, struct pname *p, dev_t *st_dev)
{
	struct stat st;
	int fd;

	if (x->evdir.p == p) {
		*st_dev = x->evdir.st_dev;
		return x->evdir.fd;
	}
	if (x->evdir.p) {
		close(x->evdir.fd);
		x->evdir.p = NULL;
	}
	fd = open_beneath(x, p->path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || st.st_ino != p->e->k.ino) {
		close(fd);
		return -ESTALE;	/* another directory there now: events will say */
	}
	x->evdir.p = p;
	x->evdir.fd = fd;
	x->evdir.st_dev = *st_dev = st.st_dev;
	return fd;
}

/*
 * A file created in p and gone before the index could stat it (deleted,
 * or renamed): named with the inode fanotify gave (index-births.c). The
 * event that took the name is already queued and says which it was: an
 * IN_DELETE unlinks it (its events then reach the tasks that see p, under
 * its own identity), an IN_MOVED_FROM and IN_MOVED_TO move the same file.
 * Either way the number's next file is counted as the next.
 */
static void born_gone(struct dc_index *x, struct pname *p, const char *path, uint64_t ino)
{
	x->why = DC_NAME_CREATED;
	if (ix_add_name(x, p, path, p->e->k.dev, ino, false, arrival_stamp(x, p)))
		x->st.born_gone++;
	x->why = DC_NAME_WALK;
}

/* One event in directory p (one name of the watched inode). */
static void apply_in(struct dc_index *x, struct pname *p, const struct inotify_event *ev)
{
	char path[PATH_MAX];
	struct pname *c;
	struct stat st;
	dev_t st_dev;
	int dfd;

	if (join(path, p->path, ev->name))
		return;
	if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) {
		c = name_find(x, path);
		x->unlinking = ev->mask & IN_DELETE;
		if (c)
			ix_drop_subtree(x, c);
		x->unlinking = false;
		return;
	}
	if (ev->mask & IN_ATTRIB) {
		c = name_find(x, path);
		if (c)
			notify(x, c->e->k.dev, c->e->k.ino, DC_NAME_ATTRIB);
		return;
	}
	if (!(ev->mask & (IN_CREATE | IN_MOVED_TO)))
		return;
	dfd = event_dir(x, p, &st_dev);
	if (dfd < 0)
		return;
	if (fstatat(dfd, ev->name, &st, AT_SYMLINK_NOFOLLOW)) {
		/* Gone again: a later event says where, or it was deleted. */
		uint64_t ino;

		if (errno == ENOENT && ev->mask & IN_CREATE &&
		    (ino = ix_births_take(x, dfd, p->e->k.ino, ev->name)))
			born_gone(x, p, path, ino);
		return;
	}
	x->why = ev->mask & IN_MOVED_TO ? DC_NAME_MOVED_IN :
		 st.st_nlink > 1 && !S_ISDIR(st.st_mode) ? DC_NAME_LINKED : DC_NAME_CREATED;
	/* A name that arrives in the directory being re-listed is seen by it. */
	take_entry(x, p, dfd, st_dev, ev->name, &st, arrival_stamp(x, p), true, 0);
	x->why = DC_NAME_WALK;
}

static void apply(struct dc_index *x, const struct inotify_event *ev)
{
	struct pname *one[1], **dirs = one;
	size_t n = 0;
	struct wdir *w;
	struct ent *e;

	if (ev->mask & IN_Q_OVERFLOW) {
		repair_start(x);
		return;
	}
	HASH_FIND_INT(x->wdirs, &ev->wd, w);
	if (!w)
		return;
	e = w->e;
	if (ev->mask & IN_IGNORED) {
		for (struct pname *q = e->first; q; q = q->next)
			if (q->dir && q->dir->wd == w->wd)
				q->dir->wd = -1;
		HASH_DEL(x->wdirs, w);
		free(w);
		x->st.dirs_watched--;
		return;
	}
	if (ev->mask & IN_ATTRIB && (!ev->len || ev->mask & IN_ISDIR)) {
		/* A directory's mode, owner or ACL: who may see below it. */
		notify(x, 0, 0, DC_NAME_ATTRIB);
		return;
	}
	if (!ev->len)
		return;
	/*
	 * The watch is the inode's: the change shows under each of its
	 * names (bind mounts). Their paths are taken first, as applying the
	 * event may change the inode's names.
	 */
	if (e->names > 1)
		dirs = calloc(e->names, sizeof(*dirs));
	if (!dirs)
		return;
	for (struct pname *q = e->first; q && n < e->names; q = q->next)
		if (q->dir)
			dirs[n++] = q;
	if (n == 1) {
		apply_in(x, dirs[0], ev);
	} else {
		char **paths = calloc(n, sizeof(*paths));

		for (size_t i = 0; paths && i < n; i++)
			paths[i] = strdup(dirs[i]->path);
		for (size_t i = 0; paths && i < n; i++) {
			struct pname *q = paths[i] ? name_find(x, paths[i]) : NULL;

			if (q && q->e == e && q->dir)
				apply_in(x, q, ev);
			free(paths[i]);
		}
		free(paths);
	}
	if (dirs != one)
		free(dirs);
}

int dc_index_update(struct dc_index *x)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	int applied = 0;

	/* Births first: each is queued with its IN_CREATE, never after. */
	ix_births_read(x);
	for (;;) {
		ssize_t n = read(x->ifd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			apply(x, ev);
			applied++;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (x->evdir.p) {
		close(x->evdir.fd);
		x->evdir.p = NULL;
	}
	ix_births_round(x);
	return applied;
}

/* ---- mounts ---- */

static bool has_mount(const struct dc_mounts *m, const char *mp)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->m[i].mnt_point, mp))
			return true;
	return false;
}

/* Forget mp and every name below it (the tops of roots below it too). */
static void drop_tree(struct dc_index *x, const char *mp)
{
	struct pname *p = name_find(x, mp);

	if (p)
		ix_drop_subtree(x, p);
	for (size_t i = 0; i < x->nroots; i++) {
		p = name_find(x, x->roots[i]->path);
		if (p && !p->parent && dc_path_under(p->path, mp))
			ix_drop_subtree(x, p);
	}
}

/* Walk one directory whose contents just appeared (a mount came or went). */
static void arrive(struct dc_index *x, const char *dir)
{
	const struct dc_mount *m = dc_mounts_find(&x->mounts, dir);
	char parent_path[PATH_MAX];
	struct pname *parent = NULL, *p;
	bool is_root = root_find(x, dir);
	struct stat st;
	char *slash;
	int fd;

	if (!m)
		return;
	snprintf(parent_path, sizeof(parent_path), "%s", dir);
	slash = strrchr(parent_path, '/');
	if (slash && slash != parent_path) {
		*slash = '\0';
		parent = name_find(x, parent_path);
	} else if (slash && dir[1]) {
		parent = name_find(x, "/");
	}
	if (parent && !parent->dir)
		return;
	/* Only names in the tree: nothing below a skipped or capped directory. */
	if (!parent && !is_root)
		return;
	if (!is_root && pseudo_mount(x, dir))
		return;
	fd = open_beneath(x, dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || (!is_root && dc_pseudo_fs(fd))) {
		close(fd);
		return;
	}
	x->why = DC_NAME_MOVED_IN;
	p = ix_add_name(x, parent, dir, m->kdev, st.st_ino, true, 0);
	if (p)
		walk_fd(x, p, fd, st.st_dev, 0);
	else
		close(fd);
	x->why = DC_NAME_WALK;
}

static bool under_a_root(struct dc_index *x, const char *path)
{
	for (size_t k = 0; k < x->nroots; k++)
		if (dc_path_under(path, x->roots[k]->path))
			return true;
	return false;
}

int dc_index_remount(struct dc_index *x)
{
	struct dc_mounts old = x->mounts;
	int r, changed = 0;

	r = dc_mounts_load(&x->mounts);
	if (r) {
		x->mounts = old;
		return r;
	}
	/* Mounts that went away under a root: their names go, the directory
	 * underneath shows again. */
	for (size_t i = 0; i < old.n; i++) {
		const char *mp = old.m[i].mnt_point;

		if (!under_a_root(x, mp) || has_mount(&x->mounts, mp))
			continue;
		drop_tree(x, mp);
		arrive(x, mp);
		changed++;
	}
	/* New mounts under a root: their files arrive with their pages. */
	for (size_t i = 0; i < x->mounts.n; i++) {
		const char *mp = x->mounts.m[i].mnt_point;

		if (!under_a_root(x, mp) || has_mount(&old, mp))
			continue;
		drop_tree(x, mp);
		arrive(x, mp);
		changed++;
	}
	dc_mounts_free(&old);
	return changed;
}
