// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The path index: its names, their tree and root bits, the lookups
 * (index-walk.c walks, repairs and follows inotify).
 *
 * Ordering argument for inotify: a file is created (IN_CREATE queued in
 * the syscall) before any of its pages can be dirtied or added, so when a
 * page event for an unknown inode is processed, the create that explains
 * it is already in the inotify queue. Draining the queue before deciding
 * "not under the roots" is therefore enough for files created later.
 *
 * Shape. Every name is a node of a tree (struct pname): its directory
 * (parent), the directory's entries (pdir.child), the other names of the
 * same inode (next/prev). A root that no walk of another root reached is
 * the top of its own tree (parent NULL). Each name carries one bit per
 * root it lies under (the first 64 roots); each inode the OR of its
 * names' bits, and from REP_MIN names on, one name per root bit, so "a
 * name of this inode under root R" is answered without scanning names
 * that are not under R. An inode keeps at most DC_INDEX_MAX_NAMES names.
 *
 * Symlinks. Nothing is reached through a symlink: directories are opened
 * relative to their parent's fd with O_NOFOLLOW, or relative to their
 * root's fd with RESOLVE_NO_SYMLINKS; inotify watches are added through
 * /proc/self/fd. The roots' fds are kept for as long as the index.
 *
 * Overflow. When the inotify queue overflows, directory changes were
 * lost. A repair re-lists every directory once, a bounded number of
 * entries per dc_index_repair_step(), diffing each listing against the
 * names known (a name seen again keeps its inode's gen). The listings are
 * told apart by stamp; the repairs by epoch: a directory listed in the
 * current epoch is confirmed, and while a repair runs only names in
 * confirmed directories count as under a root.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "index-int.h"

/*
 * A name's root bits: its directory's, plus the root it is. The top of a
 * root's tree lies under every root that is a prefix of it (a root no
 * walk reached, e.g. on a pseudo file system below another root).
 */
static uint64_t root_bits(struct dc_index *x, struct pname *parent, const char *path)
{
	uint64_t bits = 0;
	struct root *r;

	if (parent) {
		r = root_find(x, path);
		bits = parent->roots;
		if (r && r->slot >= 0)
			bits |= 1ull << r->slot;
		return bits;
	}
	for (size_t i = 0; i < x->nroots; i++)
		if (x->roots[i]->slot >= 0 && dc_path_under(path, x->roots[i]->path))
			bits |= 1ull << x->roots[i]->slot;
	return bits;
}

/* ---- the names of one inode, and their root bits ---- */

static void rep_add(struct ent *e, struct pname *p)
{
	for (uint64_t b = p->roots; b; b &= b - 1) {
		int i = __builtin_ctzll(b);

		if (!e->rep[i])
			e->rep[i] = p;
	}
}

static void ent_link(struct ent *e, struct pname *p)
{
	p->prev = NULL;
	p->next = e->first;
	if (e->first)
		e->first->prev = p;
	e->first = p;
	e->names++;
	e->roots |= p->roots;
	if (e->rep) {
		rep_add(e, p);
	} else if (e->names >= REP_MIN) {
		/* Many names: find the one under a root without a scan. */
		e->rep = calloc(ROOT_SLOTS, sizeof(*e->rep));
		for (struct pname *q = e->first; e->rep && q; q = q->next)
			rep_add(e, q);
	}
}

static void ent_unlink(struct ent *e, struct pname *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		e->first = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->next = p->prev = NULL;
	e->names--;
	if (!p->roots)
		return;
	/* Bounded by DC_INDEX_MAX_NAMES: the other names of one inode. */
	e->roots = 0;
	for (struct pname *q = e->first; q; q = q->next)
		e->roots |= q->roots;
	if (!e->rep)
		return;
	for (uint64_t b = p->roots; b; b &= b - 1) {
		int i = __builtin_ctzll(b);

		if (e->rep[i] != p)
			continue;
		e->rep[i] = NULL;
		for (struct pname *q = e->first; q && !e->rep[i]; q = q->next)
			if (q->roots & (1ull << i))
				e->rep[i] = q;
	}
}

/* Bits a name gained (a root added above it, or its tree attached below one). */
static void gain_bits(struct pname *p, uint64_t bits)
{
	struct ent *e = p->e;

	bits &= ~p->roots;
	if (!bits)
		return;
	p->roots |= bits;
	e->roots |= bits;
	if (e->rep)
		rep_add(e, p);
}

/* ---- the tree ---- */

/* The next name of top's subtree after p, in preorder. */
static struct pname *subtree_next(struct pname *p, struct pname *top)
{
	if (p->dir && p->dir->child)
		return p->dir->child;
	for (; p && p != top; p = p->parent)
		if (p->sib_next)
			return p->sib_next;
	return NULL;
}

void ix_propagate(struct pname *top, uint64_t bits)
{
	for (struct pname *p = top; p; p = subtree_next(p, top))
		gain_bits(p, bits);
}

static void child_link(struct pname *parent, struct pname *p)
{
	p->parent = parent;
	p->sib_prev = NULL;
	p->sib_next = parent->dir->child;
	if (p->sib_next)
		p->sib_next->sib_prev = p;
	parent->dir->child = p;
}

static void child_unlink(struct pname *p)
{
	if (!p->parent)
		return;
	if (p->sib_prev)
		p->sib_prev->sib_next = p->sib_next;
	else
		p->parent->dir->child = p->sib_next;
	if (p->sib_next)
		p->sib_next->sib_prev = p->sib_prev;
	p->parent = p->sib_next = p->sib_prev = NULL;
}

static void dirs_append(struct dc_index *x, struct pdir *d)
{
	d->all_prev = x->dirs_tail;
	d->all_next = NULL;
	if (x->dirs_tail)
		x->dirs_tail->all_next = d;
	else
		x->dirs = d;
	x->dirs_tail = d;
}

static void dirs_remove(struct dc_index *x, struct pdir *d)
{
	if (x->cursor == d)
		x->cursor = d->all_next;
	if (d->all_prev)
		d->all_prev->all_next = d->all_next;
	else
		x->dirs = d->all_next;
	if (d->all_next)
		d->all_next->all_prev = d->all_prev;
	else
		x->dirs_tail = d->all_prev;
}

/* Another name of the directory inode still uses its watch. */
static bool watch_shared(struct ent *e, struct pname *p)
{
	for (struct pname *q = e->first; q; q = q->next)
		if (q != p && q->dir)
			return true;
	return false;
}

static void unwatch(struct dc_index *x, struct pname *p)
{
	struct wdir *w;

	if (p->dir->wd < 0 || watch_shared(p->e, p))
		return;
	HASH_FIND_INT(x->wdirs, &p->dir->wd, w);
	if (w) {
		inotify_rm_watch(x->ifd, w->wd);
		HASH_DEL(x->wdirs, w);
		free(w);
		x->st.dirs_watched--;
	}
}

static void held_prune(struct dc_index *x, struct ent *e);

/* Forget one name (a directory's entries are gone already). */
static void drop_name(struct dc_index *x, struct pname *p)
{
	struct ent *e = p->e;

	if (p->dir) {
		if (x->cur.dp == p) {
			/* The directory being re-listed went away. */
			closedir(x->cur.d);
			x->cur.d = NULL;
			x->cur.dp = NULL;
		}
		if (x->evdir.p == p) {
			close(x->evdir.fd);
			x->evdir.p = NULL;
		}
		unwatch(x, p);
		dirs_remove(x, p->dir);
		free(p->dir);
		p->dir = NULL;
	}
	child_unlink(p);
	ent_unlink(e, p);
	HASH_DEL(x->names, p);
	if (!e->names) {
		if (e->state == ENT_POS) {
			e->state = ENT_DELETED;
			e->unlinked = x->unlinking;
			x->st.files--;
		}
		free(e->rep);
		e->rep = NULL;
		/* Shown as the deleted file's name until it is named again. */
		free(e->gone);
		e->gone = p->path;
		p->path = NULL;
	}
	x->last = NULL;
	notify_name(x, e->k.dev, e->k.ino,
		    !e->names && x->unlinking && e->state == ENT_DELETED ? DC_NAME_DELETED :
									  DC_NAME_REMOVED,
		    p->path ? p->path : e->gone);
	free(p->path);
	free(p);
}

/* Forget p and every name below it; returns how many names went. */
unsigned int ix_drop_subtree(struct dc_index *x, struct pname *p)
{
	unsigned int n = 0;

	for (struct pname *q = p;;) {
		struct pname *up;

		while (q->dir && q->dir->child)
			q = q->dir->child;
		up = q->parent;
		n++;
		if (q == p) {
			drop_name(x, q);
			return n;
		}
		drop_name(x, q);
		q = up;
	}
}

/*
 * Name path (in directory parent, NULL for the top of a root) for the
 * inode (dev, ino). An existing name of the same inode is kept (its
 * inode's gen too); one of another inode is dropped first, with what was
 * below it. NULL when the inode has DC_INDEX_MAX_NAMES names already or
 * memory ran out.
 */
struct pname *ix_add_name(struct dc_index *x, struct pname *parent, const char *path,
			      uint32_t dev, uint64_t ino, bool dir, uint32_t stamp)
{
	struct pname *p = name_find(x, path);
	struct ent *e;

	if (p) {
		if (p->e->k.dev == dev && p->e->k.ino == ino && !p->dir == !dir) {
			p->stamp = stamp;
			if (!p->parent && parent) {
				/* A root's tree, now reached from another root. */
				child_link(parent, p);
				ix_propagate(p, parent->roots);
			}
			return p;
		}
		ix_drop_subtree(x, p);
	}
	e = get(x, dev, ino);
	if (!e)
		return NULL;
	if (e->names >= DC_INDEX_MAX_NAMES) {
		x->st.names_capped++;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->path = strdup(path);
	if (dir)
		p->dir = calloc(1, sizeof(*p->dir));
	if (!p->path || (dir && !p->dir)) {
		free(p->dir);
		free(p->path);
		free(p);
		return NULL;
	}
	p->e = e;
	p->stamp = stamp;
	p->roots = root_bits(x, parent, path);
	if (dir) {
		p->dir->self = p;
		p->dir->wd = -1;
		p->dir->epoch = x->epoch;
		dirs_append(x, p->dir);
	}
	HASH_ADD_KEYPTR(hh, x->names, p->path, strlen(p->path), p);
	if (parent)
		child_link(parent, p);
	ent_link(e, p);
	if (e->state == ENT_NEG)
		x->st.negative--;
	/*
	 * The number was freed: this may be another file. A file created
	 * under a number known outside the roots is another file too.
	 */
	/*
	 * Another file, whose gen is the next: a number freed by an unlink
	 * and named again, a file created under a number known for another
	 * (outside the roots, or renamed out), and a new number's first file
	 * where its marker is still to come. A file renamed out and back
	 * (or within the tree: the name goes, then comes) is the same file.
	 */
	if (e->fresh)
		e->fresh = false;	/* the file the stream's marker began */
	else if ((e->state == ENT_DELETED && (e->unlinked || x->why == DC_NAME_CREATED)) ||
		 (e->state == ENT_NEG && x->why == DC_NAME_CREATED) ||
		 (!e->state && x->why == DC_NAME_CREATED && ix_marked(x, dev)))
		e->gen++;
	if (!ix_marked(x, dev))
		e->sgen = e->gen;
	if (e->nheld)
		held_prune(x, e);
	if (e->state != ENT_POS)
		x->st.files++;
	e->state = ENT_POS;
	free(e->gone);
	e->gone = NULL;
	x->last = NULL;
	notify_name(x, dev, ino, x->why, p->path);
	return p;
}

static int root_new(struct dc_index *x, int dirfd, const char *path, struct root **ret)
{
	struct root **nr, *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->path = strdup(path);
	r->fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	nr = realloc(x->roots, (x->nroots + 1) * sizeof(*nr));
	if (!r->path || r->fd < 0 || !nr) {
		int e = r->fd < 0 ? -errno : -ENOMEM;

		if (r->fd >= 0)
			close(r->fd);
		free(r->path);
		free(r);
		if (nr)
			x->roots = nr;
		return e;
	}
	x->roots = nr;
	/* A slot is never given twice: names may still carry its bit. */
	r->slot = x->slots < ROOT_SLOTS ? (int)x->slots++ : -1;
	x->roots[x->nroots++] = r;
	HASH_ADD_KEYPTR(hh, x->root_hash, r->path, strlen(r->path), r);
	*ret = r;
	return 0;
}

int dc_index_new(char *const *roots, size_t nroots, struct dc_index **ret)
{
	struct dc_index *x = calloc(1, sizeof(*x));
	int r = -ENOMEM;

	if (!x)
		return -ENOMEM;
	x->epoch = 1;
	x->evdir.fd = -1;
	x->bfd = -1;
	x->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (x->ifd < 0) {
		r = -errno;
		goto fail;
	}
	ix_births_init(x);
	r = dc_mounts_load(&x->mounts);
	if (r)
		goto fail;
	for (size_t i = 0; i < nroots; i++) {
		r = dc_index_add_root(x, roots[i]);
		if (r)
			goto fail;
	}
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
	struct root *r, *rt;

	if (!x)
		return;
	if (x->cur.d)
		closedir(x->cur.d);
	if (x->evdir.p)
		close(x->evdir.fd);
	HASH_ITER(hh, x->names, p, pt) {
		HASH_DEL(x->names, p);
		free(p->dir);
		free(p->path);
		free(p);
	}
	HASH_ITER(hh, x->ents, e, et) {
		HASH_DEL(x->ents, e);
		free(e->held);
		free(e->rep);
		free(e->gone);
		free(e);
	}
	HASH_ITER(hh, x->wdirs, w, wt) {
		HASH_DEL(x->wdirs, w);
		free(w);
	}
	HASH_ITER(hh, x->root_hash, r, rt) {
		HASH_DEL(x->root_hash, r);
		if (r->fd >= 0)
			close(r->fd);
		free(r->path);
		free(r);
	}
	free(x->roots);
	free(x->marked);
	dc_mounts_free(&x->mounts);
	if (x->ifd >= 0)
		close(x->ifd);
	ix_births_free(x);
	free(x);
}

int dc_index_fd(const struct dc_index *x)
{
	return x->ifd;
}

/* A name counts under a root: no repair runs, or its directory is listed. */
static bool confirmed(const struct dc_index *x, const struct pname *p)
{
	if (!x->repairing || !p->parent)
		return true;
	if (p->parent->dir->epoch == x->epoch)
		return true;
	return p->parent == x->cur.dp && p->stamp == x->cur.stamp;
}

/* ---- lookups ---- */

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
		if (!e && x->repairing) {
			/* Not remembered: the repair may name it yet. */
			if (flags)
				*flags = 0;
			return NULL;
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
	if (e->state == ENT_POS)
		return e->first->path;
	return e->state == ENT_DELETED ? e->gone : NULL;
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

void dc_index_set_yield(struct dc_index *x, dc_index_yield_fn fn, void *ud)
{
	x->yield = fn;
	x->yield_ud = ud;
}

int dc_index_add_root_at(struct dc_index *x, int dirfd, const char *path)
{
	struct root *rt = NULL;
	int r;

	if (root_find(x, path))
		return 0;
	/* Mounts may have changed since the index was made. */
	dc_mounts_free(&x->mounts);
	r = dc_mounts_load(&x->mounts);
	if (r)
		return r;
	r = root_new(x, dirfd, path, &rt);
	if (r)
		return r;
	x->walking = true;
	x->may_yield = x->yield != NULL;
	x->since_pause = 0;
	x->pause_ns = 0;
	r = ix_walk_root(x, rt);
	x->walking = false;
	x->may_yield = false;
	if (r) {
		/* Not a root then: asked again, it is walked again. */
		HASH_DEL(x->root_hash, rt);
		x->nroots--;
		close(rt->fd);
		free(rt->path);
		free(rt);
	}
	return r;
}

int dc_index_add_root(struct dc_index *x, const char *root)
{
	int fd = open(root, O_PATH | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = dc_index_add_root_at(x, fd, root);
	close(fd);
	return r;
}

static struct pname *first_under(const struct dc_index *x, const struct ent *e,
				 const char *root)
{
	struct root *r = root ? root_find((struct dc_index *)x, root) : NULL;
	struct pname *p;

	if (!root)
		return e->first;
	if (!r || r->slot < 0) {
		/* No bit (past ROOT_SLOTS, or not a root): by prefix. */
		for (p = e->first; p; p = p->next)
			if (dc_path_under(p->path, root) && confirmed(x, p))
				return p;
		return NULL;
	}
	if (!(e->roots & (1ull << r->slot)))
		return NULL;
	p = e->rep ? e->rep[r->slot] : NULL;
	if (p && confirmed(x, p))
		return p;
	/* Few names, or a repair runs: the bit decides, no string compared. */
	for (p = e->first; p; p = p->next)
		if (p->roots & (1ull << r->slot) && confirmed(x, p))
			return p;
	return NULL;
}

int dc_index_name_under(struct dc_index *x, uint32_t kdev, uint64_t ino, const char *root,
			char *buf, size_t len, uint64_t *gen)
{
	struct ent *e = find(x, kdev, ino);
	struct pname *p;

	if (!e || e->state == ENT_NEG)
		return -ENOENT;
	if (gen)
		*gen = e->gen;
	p = first_under(x, e, root);
	if (!p)
		return -ENOENT;
	if (strlen(p->path) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, p->path);
	return 0;
}

int dc_index_names_under(struct dc_index *x, uint32_t kdev, uint64_t ino, const char *root,
			 dc_index_name_fn fn, void *ud)
{
	struct ent *e = find(x, kdev, ino);

	if (!e || e->state != ENT_POS)
		return 0;
	/* Bounded by DC_INDEX_MAX_NAMES; the callback may not change names. */
	for (struct pname *p = e->first; p; p = p->next) {
		int r;

		if (root && !dc_path_under(p->path, root))
			continue;
		if (!confirmed(x, p))
			continue;
		r = fn(ud, p->path);
		if (r)
			return r;
	}
	return 0;
}

const char *dc_index_changing_name(const struct dc_index *x)
{
	return x->changing;
}

static int visit(struct pname *top, dc_index_file_fn fn, void *ud, bool files)
{
	for (struct pname *p = top; p; p = subtree_next(p, top)) {
		int r = files && p->dir ? 0 : fn(ud, p->path, p->e->k.dev, p->e->k.ino);

		if (r)
			return r;
	}
	return 0;
}

static int foreach_under(struct dc_index *x, const char *root, dc_index_file_fn fn, void *ud,
			 bool files)
{
	struct pname *top = name_find(x, root);
	int r = top ? visit(top, fn, ud, files) : 0;

	/* Roots no walk of root reached (below a pseudo file system). */
	for (size_t i = 0; !r && i < x->nroots; i++) {
		struct pname *q = name_find(x, x->roots[i]->path);

		if (q && q != top && !q->parent && dc_path_under(q->path, root))
			r = visit(q, fn, ud, files);
	}
	return r;
}

int dc_index_foreach_under(struct dc_index *x, const char *root, dc_index_file_fn fn, void *ud)
{
	return foreach_under(x, root, fn, ud, false);
}

int dc_index_foreach_file_under(struct dc_index *x, const char *root, dc_index_file_fn fn,
				void *ud)
{
	return foreach_under(x, root, fn, ud, true);
}

/* ---- incarnations: the event stream against the names ---- */

int dc_index_set_marked(struct dc_index *x, const uint32_t *devs, size_t n)
{
	uint32_t *m = n ? malloc(n * sizeof(*m)) : NULL;

	if (n && !m)
		return -ENOMEM;
	if (n)
		memcpy(m, devs, n * sizeof(*m));
	free(x->marked);
	x->marked = m;
	x->nmarked = n;
	return 0;
}

/* Forget what the stream has passed: incarnations before sgen. */
static void held_prune(struct dc_index *x, struct ent *e)
{
	uint32_t k = 0;

	while (k < e->nheld && e->held[k].gen < e->sgen && e->held[k].gen < e->gen)
		k++;
	if (!k)
		return;
	memmove(e->held, e->held + k, (e->nheld - k) * sizeof(*e->held));
	e->nheld -= k;
	if (!e->nheld) {
		free(e->held);
		e->held = NULL;
		x->held_ents--;
	}
}

void dc_index_inode_new(struct dc_index *x, uint32_t kdev, uint64_t ino)
{
	struct ent *e = find(x, kdev, ino);

	if (e && e->state == ENT_POS && e->sgen == e->gen) {
		/*
		 * Either the names are behind (the unlink of this file and the
		 * creation of the next are still queued) or, on xfs, the same
		 * file was read in again: the queue tells.
		 */
		dc_index_update(x);
		if (e->state == ENT_POS && e->sgen == e->gen)
			return;
	}
	if (!ix_marked(x, kdev))
		return;
	if (!e || e->state == ENT_NEG) {
		/*
		 * A number not known under the roots: a new file begins here.
		 * Kept, so that if its name comes (created under a root) it
		 * joins this gen instead of waiting for a marker gone by.
		 */
		if (!e)
			e = get(x, kdev, ino);
		else
			x->st.negative--;
		if (!e)
			return;
		if (e->state)
			e->gen++;
		e->state = ENT_DELETED;
		e->sgen = e->gen;
		e->fresh = true;
		return;
	}
	if (e->sgen < e->gen) {
		e->sgen++;
	} else if (e->state == ENT_DELETED) {
		/*
		 * A file the names have not seen yet: it begins here. Its name
		 * may come (then it joins this gen) or never (created and
		 * deleted before the index could look at it): its events then
		 * go to nobody, never to the file before it.
		 */
		e->gen++;
		e->sgen = e->gen;
		e->fresh = true;
		free(e->gone);
		e->gone = NULL;
	}
	held_prune(x, e);
}

int dc_index_set_held(struct dc_index *x, uint32_t kdev, uint64_t ino, uint64_t held)
{
	struct ent *e = find(x, kdev, ino);
	struct ent_held *n;

	if (!e || e->state != ENT_DELETED)
		return -ENOENT;
	if (!held)
		return 0;
	n = realloc(e->held, (e->nheld + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	if (!e->nheld)
		x->held_ents++;
	e->held = n;
	e->held[e->nheld].gen = e->gen;
	e->held[e->nheld].held = held;
	e->nheld++;
	return 0;
}

void dc_index_stream_lost(struct dc_index *x)
{
	struct ent *e, *et;

	HASH_ITER(hh, x->ents, e, et) {
		e->sgen = e->gen;
		if (e->nheld)
			held_prune(x, e);
	}
}

void dc_index_clear_held(struct dc_index *x, uint64_t bits)
{
	struct ent *e, *et;

	if (!x->held_ents)
		return;
	HASH_ITER(hh, x->ents, e, et)
		for (uint32_t k = 0; k < e->nheld; k++)
			e->held[k].held &= ~bits;
}

int dc_index_stream(struct dc_index *x, uint32_t kdev, uint64_t ino, uint64_t *gen,
		    uint64_t *held)
{
	struct ent *e = find(x, kdev, ino);
	uint64_t g;

	if (!e || e->state == ENT_NEG)
		return -ENOENT;
	if (e->fresh)
		dc_index_update(x);	/* its name may be queued */
	g = e->sgen < e->gen ? e->sgen : e->gen;
	*gen = g;
	*held = 0;
	if (g == e->gen && e->state == ENT_POS)
		return 0;
	for (uint32_t k = 0; k < e->nheld; k++)
		if (e->held[k].gen == g)
			*held = e->held[k].held;
	return e->fresh ? 2 : 1;
}

const char *dc_index_gone(const struct dc_index *x, uint32_t kdev, uint64_t ino)
{
	struct ent *e = find((struct dc_index *)x, kdev, ino);

	return e && e->state == ENT_DELETED ? e->gone : NULL;
}
