// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Ordering argument for inotify: a file is created (IN_CREATE queued in
 * the syscall) before any of its pages can be dirtied or added, so when a
 * page event for an unknown inode is processed, the create that explains
 * it is already in the inotify queue. Draining the queue before deciding
 * "not under the roots" is therefore enough for files created later.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned int)XXH3_64bits((keyptr), (keylen)))
#include <uthash.h>

#include "index.h"

enum { ENT_POS = 1, ENT_NEG, ENT_DELETED };

struct key {
	uint64_t ino;
	uint32_t dev;
	uint32_t pad;
};

struct pname;

struct ent {
	struct key k;
	char *path;		/* a name under a root (the last one seen) */
	struct pname *first;	/* every name known under the roots */
	uint64_t gen;		/* incarnation: bumped when a deleted inode is named again */
	uint32_t names;		/* names known under the roots */
	uint8_t state;
	UT_hash_handle hh;
};

struct pname {
	char *path;
	struct key k;
	struct pname *next;	/* next name of the same inode */
	UT_hash_handle hh;
};

struct wdir {
	int wd;
	char *path;
	uint32_t kdev;
	UT_hash_handle hh;
};

struct dc_index {
	char **roots;
	size_t nroots;
	int ifd;
	struct dc_mounts mounts;
	struct ent *ents;
	struct pname *names;
	struct wdir *wdirs;
	struct ent *last;
	struct dc_index_stats st;
	dc_index_changed_fn changed;
	void *changed_ud;
	int why;		/* DC_NAME_*: why names are being added now */
};

#define IN_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_ONLYDIR | \
		 IN_DONT_FOLLOW | IN_EXCL_UNLINK)

static struct ent *find(struct dc_index *x, uint32_t dev, uint64_t ino)
{
	struct key k = { .ino = ino, .dev = dev };
	struct ent *e;

	HASH_FIND(hh, x->ents, &k, sizeof(k), e);
	return e;
}

static struct ent *get(struct dc_index *x, uint32_t dev, uint64_t ino)
{
	struct ent *e = find(x, dev, ino);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->k.dev = dev;
	e->k.ino = ino;
	HASH_ADD(hh, x->ents, k, sizeof(e->k), e);
	return e;
}

static void notify(struct dc_index *x, uint32_t dev, uint64_t ino, int why)
{
	if (x->changed)
		x->changed(x->changed_ud, dev, ino, why);
}

/* Take p off its inode's list of names; the inode loses a name. */
static void unlink_name(struct dc_index *x, struct pname *p)
{
	struct ent *e = find(x, p->k.dev, p->k.ino);

	if (!e)
		return;
	for (struct pname **pp = &e->first; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (e->names && --e->names == 0 && e->state == ENT_POS) {
		e->state = ENT_DELETED;
		x->st.files--;
	}
	if (e->path && !strcmp(e->path, p->path) && e->first) {
		/* Show a remaining name rather than the one that went away. */
		free(e->path);
		e->path = strdup(e->first->path);
	}
	notify(x, p->k.dev, p->k.ino, DC_NAME_REMOVED);
}

static void add_name(struct dc_index *x, const char *path, uint32_t dev, uint64_t ino)
{
	struct pname *p;
	struct ent *e;

	HASH_FIND_STR(x->names, path, p);
	if (p) {
		if (p->k.dev == dev && p->k.ino == ino)
			return;
		/* The name now points at another inode: forget the old link. */
		unlink_name(x, p);
		HASH_DEL(x->names, p);
		free(p->path);
		free(p);
	}
	e = get(x, dev, ino);
	p = calloc(1, sizeof(*p));
	if (!e || !p || !(p->path = strdup(path))) {
		free(p);
		return;
	}
	p->k = e->k;
	HASH_ADD_KEYPTR(hh, x->names, p->path, strlen(p->path), p);
	p->next = e->first;
	e->first = p;
	if (e->state == ENT_NEG)
		x->st.negative--;
	if (e->state == ENT_DELETED)
		e->gen++;	/* the number was freed: this may be another file */
	if (e->state != ENT_POS)
		x->st.files++;
	e->state = ENT_POS;
	e->names++;
	free(e->path);
	e->path = strdup(path);
	x->last = NULL;
	notify(x, dev, ino, x->why);
}

static void drop_name(struct dc_index *x, struct pname *p)
{
	unlink_name(x, p);
	HASH_DEL(x->names, p);
	free(p->path);
	free(p);
	x->last = NULL;
}

/* Forget path and every name below it (a directory moved away). */
static void drop_tree(struct dc_index *x, const char *path)
{
	struct pname *p, *tmp;
	struct wdir *w, *wt;

	HASH_ITER(hh, x->names, p, tmp)
		if (dc_path_under(p->path, path))
			drop_name(x, p);
	HASH_ITER(hh, x->wdirs, w, wt) {
		if (dc_path_under(w->path, path)) {
			inotify_rm_watch(x->ifd, w->wd);
			HASH_DEL(x->wdirs, w);
			free(w->path);
			free(w);
			x->st.dirs_watched--;
		}
	}
}

/*
 * File systems without page cache of their own (proc, sysfs, ...): a walk
 * from "/" does not descend into them (a root on one is still walked).
 */
static bool pseudo_fs(struct dc_index *x, const char *path)
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

static void watch_dir(struct dc_index *x, const char *path, uint32_t kdev)
{
	int wd = inotify_add_watch(x->ifd, path, IN_MASK);
	struct wdir *w;

	if (wd < 0)
		return;
	HASH_FIND_INT(x->wdirs, &wd, w);
	if (w) {
		free(w->path);
	} else {
		w = calloc(1, sizeof(*w));
		if (!w)
			return;
		w->wd = wd;
		HASH_ADD_INT(x->wdirs, wd, w);
		x->st.dirs_watched++;
	}
	w->path = strdup(path);
	w->kdev = kdev;
}

/*
 * Walk a directory: watch first, then list, so that nothing created
 * meanwhile is missed (it is either listed or reported by the watch).
 */
static void walk(struct dc_index *x, const char *dir, uint32_t kdev, dev_t st_dev, int depth)
{
	struct dirent *de;
	DIR *d;

	if (depth > 4096)
		return;
	watch_dir(x, dir, kdev);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", dir,
				     dir[strlen(dir) - 1] == '/' ? "" : "/", de->d_name) >=
		    sizeof(path))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			uint32_t k = kdev_of(x, path, kdev, st_dev, st.st_dev);

			if (st.st_dev != st_dev && pseudo_fs(x, path))
				continue;

			add_name(x, path, k, st.st_ino);
			walk(x, path, k, st.st_dev, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			add_name(x, path, kdev, st.st_ino);
		}
	}
	closedir(d);
}

static int walk_roots(struct dc_index *x)
{
	for (size_t i = 0; i < x->nroots; i++) {
		const struct dc_mount *m = dc_mounts_find(&x->mounts, x->roots[i]);
		struct stat st;

		if (!m)
			return -ENOENT;
		if (stat(x->roots[i], &st))
			return -errno;
		if (!S_ISDIR(st.st_mode)) {
			add_name(x, x->roots[i], m->kdev, st.st_ino);
			continue;
		}
		add_name(x, x->roots[i], m->kdev, st.st_ino);
		walk(x, x->roots[i], m->kdev, st.st_dev, 0);
	}
	return 0;
}

int dc_index_new(char *const *roots, size_t nroots, struct dc_index **ret)
{
	struct dc_index *x = calloc(1, sizeof(*x));
	int r = -ENOMEM;

	if (!x)
		return -ENOMEM;
	x->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (x->ifd < 0) {
		r = -errno;
		goto fail;
	}
	x->roots = calloc(nroots ? nroots : 1, sizeof(*x->roots));
	if (!x->roots)
		goto fail;
	for (size_t i = 0; i < nroots; i++) {
		x->roots[i] = strdup(roots[i]);
		if (!x->roots[i])
			goto fail;
		x->nroots++;
	}
	r = dc_mounts_load(&x->mounts);
	if (r)
		goto fail;
	r = walk_roots(x);
	if (r)
		goto fail;
	*ret = x;
	return 0;
fail:
	dc_index_free(x);
	return r;
}

void dc_index_free(struct dc_index *x)
{
	struct ent *e, *et;
	struct pname *p, *pt;
	struct wdir *w, *wt;

	if (!x)
		return;
	HASH_ITER(hh, x->ents, e, et) {
		HASH_DEL(x->ents, e);
		free(e->path);
		free(e);
	}
	HASH_ITER(hh, x->names, p, pt) {
		HASH_DEL(x->names, p);
		free(p->path);
		free(p);
	}
	HASH_ITER(hh, x->wdirs, w, wt) {
		HASH_DEL(x->wdirs, w);
		free(w->path);
		free(w);
	}
	for (size_t i = 0; i < x->nroots; i++)
		free(x->roots[i]);
	free(x->roots);
	dc_mounts_free(&x->mounts);
	if (x->ifd >= 0)
		close(x->ifd);
	free(x);
}

int dc_index_fd(const struct dc_index *x)
{
	return x->ifd;
}

static void rewalk(struct dc_index *x)
{
	struct pname *p, *pt;

	/* Names are rebuilt; inode entries keep their state until re-seen. */
	HASH_ITER(hh, x->names, p, pt)
		drop_name(x, p);
	walk_roots(x);
	notify(x, 0, 0, DC_NAME_WALK);
}

static void apply(struct dc_index *x, const struct inotify_event *ev)
{
	char path[PATH_MAX];
	struct pname *p;
	struct wdir *w;
	struct stat st;

	if (ev->mask & IN_Q_OVERFLOW) {
		x->st.overflows++;
		rewalk(x);
		return;
	}
	if (ev->mask & IN_IGNORED) {
		HASH_FIND_INT(x->wdirs, &ev->wd, w);
		if (w) {
			HASH_DEL(x->wdirs, w);
			free(w->path);
			free(w);
			x->st.dirs_watched--;
		}
		return;
	}
	if (ev->mask & IN_ATTRIB && (!ev->len || ev->mask & IN_ISDIR)) {
		/* A directory's mode, owner or ACL: who may see below it. */
		notify(x, 0, 0, DC_NAME_ATTRIB);
		return;
	}
	if (!ev->len)
		return;
	HASH_FIND_INT(x->wdirs, &ev->wd, w);
	if (!w)
		return;
	if ((size_t)snprintf(path, sizeof(path), "%s%s%s", w->path,
			     w->path[strlen(w->path) - 1] == '/' ? "" : "/", ev->name) >=
	    sizeof(path))
		return;
	if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) {
		if (ev->mask & IN_ISDIR) {
			drop_tree(x, path);
		} else {
			HASH_FIND_STR(x->names, path, p);
			if (p)
				drop_name(x, p);
		}
		return;
	}
	if (ev->mask & IN_ATTRIB) {
		HASH_FIND_STR(x->names, path, p);
		if (p)
			notify(x, p->k.dev, p->k.ino, DC_NAME_ATTRIB);
		return;
	}
	if (!(ev->mask & (IN_CREATE | IN_MOVED_TO)))
		return;
	if (lstat(path, &st))
		return;		/* gone again; a later event says where */
	x->why = ev->mask & IN_MOVED_TO ? DC_NAME_MOVED_IN :
		 st.st_nlink > 1 && !S_ISDIR(st.st_mode) ? DC_NAME_LINKED : DC_NAME_CREATED;
	if (S_ISDIR(st.st_mode)) {
		struct stat pst;
		uint32_t k = w->kdev;

		if (!stat(w->path, &pst))
			k = kdev_of(x, path, w->kdev, pst.st_dev, st.st_dev);
		add_name(x, path, k, st.st_ino);
		walk(x, path, k, st.st_dev, 0);
	} else if (S_ISREG(st.st_mode)) {
		add_name(x, path, w->kdev, st.st_ino);
	}
	x->why = DC_NAME_WALK;
}

int dc_index_update(struct dc_index *x)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	int applied = 0;

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
	return applied;
}

const char *dc_index_lookup(struct dc_index *x, uint32_t kdev, uint64_t ino,
			    unsigned int *flags)
{
	struct ent *e = x->last;

	x->st.lookups++;
	if (!e || e->k.ino != ino || e->k.dev != kdev) {
		e = find(x, kdev, ino);
		if (!e) {
			x->st.misses++;
			dc_index_update(x);
			e = find(x, kdev, ino);
		}
		if (!e) {
			e = get(x, kdev, ino);
			if (!e)
				return NULL;
			e->state = ENT_NEG;
			x->st.negative++;
		}
		x->last = e;
	}
	if (flags)
		*flags = e->state == ENT_DELETED ? DC_PATH_DELETED : 0;
	return e->state == ENT_NEG ? NULL : e->path;
}

const struct dc_index_stats *dc_index_stats(const struct dc_index *x)
{
	return &x->st;
}

void dc_index_set_changed(struct dc_index *x, dc_index_changed_fn fn, void *ud)
{
	x->changed = fn;
	x->changed_ud = ud;
}

int dc_index_add_root(struct dc_index *x, const char *root)
{
	char **nr;
	int r;

	for (size_t i = 0; i < x->nroots; i++)
		if (!strcmp(x->roots[i], root))
			return 0;
	nr = realloc(x->roots, (x->nroots + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	x->roots = nr;
	x->roots[x->nroots] = strdup(root);
	if (!x->roots[x->nroots])
		return -ENOMEM;
	x->nroots++;
	/* Mounts may have changed since the index was made. */
	dc_mounts_free(&x->mounts);
	r = dc_mounts_load(&x->mounts);
	if (r)
		return r;
	{
		const struct dc_mount *m = dc_mounts_find(&x->mounts, root);
		struct stat st;

		if (!m)
			return -ENOENT;
		if (stat(root, &st))
			return -errno;
		add_name(x, root, m->kdev, st.st_ino);
		if (S_ISDIR(st.st_mode))
			walk(x, root, m->kdev, st.st_dev, 0);
	}
	return 0;
}

int dc_index_name_under(struct dc_index *x, uint32_t kdev, uint64_t ino, const char *root,
			char *buf, size_t len, uint64_t *gen)
{
	struct ent *e = find(x, kdev, ino);

	if (!e || e->state == ENT_NEG)
		return -ENOENT;
	if (gen)
		*gen = e->gen;
	for (struct pname *p = e->first; p; p = p->next) {
		if (!root || dc_path_under(p->path, root)) {
			if (strlen(p->path) >= len)
				return -ENAMETOOLONG;
			strcpy(buf, p->path);
			return 0;
		}
	}
	return -ENOENT;
}

int dc_index_foreach_under(struct dc_index *x, const char *root, dc_index_file_fn fn, void *ud)
{
	struct pname *p, *t;

	HASH_ITER(hh, x->names, p, t) {
		int r;

		if (!dc_path_under(p->path, root))
			continue;
		r = fn(ud, p->path, p->k.dev, p->k.ino);
		if (r)
			return r;
	}
	return 0;
}

static bool has_mount(const struct dc_mounts *m, const char *mp)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->m[i].mnt_point, mp))
			return true;
	return false;
}

/* Walk one directory whose contents just appeared (a mount came or went). */
static void arrive(struct dc_index *x, const char *dir)
{
	const struct dc_mount *m = dc_mounts_find(&x->mounts, dir);
	struct stat st;

	if (!m || stat(dir, &st) || !S_ISDIR(st.st_mode))
		return;
	x->why = DC_NAME_MOVED_IN;
	add_name(x, dir, m->kdev, st.st_ino);
	walk(x, dir, m->kdev, st.st_dev, 0);
	x->why = DC_NAME_WALK;
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
	for (size_t k = 0; k < x->nroots; k++) {
		/* Mounts that went away under a root: their names go, the
		 * directory underneath shows again. */
		for (size_t i = 0; i < old.n; i++) {
			const char *mp = old.m[i].mnt_point;

			if (!dc_path_under(mp, x->roots[k]) || has_mount(&x->mounts, mp))
				continue;
			drop_tree(x, mp);
			arrive(x, mp);
			changed++;
		}
		/* New mounts under a root: their files arrive with their pages. */
		for (size_t i = 0; i < x->mounts.n; i++) {
			const char *mp = x->mounts.m[i].mnt_point;

			if (!dc_path_under(mp, x->roots[k]) || has_mount(&old, mp))
				continue;
			drop_tree(x, mp);
			arrive(x, mp);
			changed++;
		}
	}
	dc_mounts_free(&old);
	return changed;
}
