/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The path index's insides, shared by index.c (the names, their tree and
 * root bits, lookups) and index-walk.c (walks, the repair, inotify,
 * mounts). Not for anyone else: consumer/index.h is the interface.
 */
#ifndef DUET_INDEX_INT_H
#define DUET_INDEX_INT_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/types.h>
#include <xxhash.h>

#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned int)XXH3_64bits((keyptr), (keylen)))
#include <uthash.h>

#include "index.h"

#define ROOT_SLOTS 64		/* roots with a bit; later ones are found by prefix */
#define REP_MIN 16		/* names from which an inode keeps one name per root */
#define MAX_DEPTH 4096

enum { ENT_POS = 1, ENT_NEG, ENT_DELETED };

struct key {
	uint64_t ino;
	uint32_t dev;
	uint32_t pad;
};

struct pname;

/* A file that had this number and lost its last name by an unlink. */
struct ent_held {
	uint64_t gen;
	uint64_t held;		/* the caller's mask (dc_index_set_held()) */
};

struct ent {
	struct key k;
	struct pname *first;	/* its names, the newest first */
	struct pname **rep;	/* from REP_MIN names: per root slot, a name under it */
	char *gone;		/* ENT_DELETED: the last name it had */
	uint64_t roots;		/* OR of its names' root bits */
	uint64_t gen;		/* incarnation: bumped when a deleted inode is named again */
	/*
	 * The incarnation the event stream is at, on a file system whose
	 * stream marks new inodes (dc_index_set_marked()): it lags gen while
	 * the events of an earlier file of the number are still coming.
	 * Elsewhere always gen.
	 */
	uint64_t sgen;
	struct ent_held *held;	/* unlinked incarnations, oldest first */
	uint32_t nheld;
	uint32_t names;		/* names known under the roots */
	uint8_t state;
	bool fresh;		/* ENT_DELETED: a marker began gen, its name is to come */
	bool unlinked;		/* ENT_DELETED: the last name went by an unlink, not a rename */
	UT_hash_handle hh;
};

struct pdir {
	struct pname *self;
	struct pname *child;	/* its entries */
	struct pdir *all_next, *all_prev;	/* x->dirs, in the order found */
	uint32_t epoch;		/* the repair epoch it was last listed in */
	/* The stamp of a pausing walk's listing of it under way (0: none). */
	uint32_t listing;
	int wd;
};

struct pname {
	char *path;
	struct ent *e;		/* the inode it names */
	struct pname *parent;	/* the directory it is in (NULL: the top of a root) */
	struct pname *sib_next, *sib_prev;	/* the other entries of parent */
	struct pname *next, *prev;		/* the other names of e */
	struct pdir *dir;	/* a directory: its entries; NULL for a file */
	uint64_t roots;		/* bit i: under the root of slot i */
	uint32_t stamp;		/* the listing that last saw it */
	UT_hash_handle hh;	/* x->names, by path */
};

/* A watch: per directory inode, whatever names it has. */
struct wdir {
	int wd;
	struct ent *e;
	UT_hash_handle hh;
};

struct root {
	char *path;
	int fd;
	int slot;		/* its bit, -1 past ROOT_SLOTS */
	UT_hash_handle hh;
};

struct dc_index {
	struct root **roots;	/* in the order added */
	struct root *root_hash;	/* by path */
	size_t nroots;
	unsigned int slots;	/* root slots given */
	int ifd;
	struct dc_mounts mounts;
	struct ent *ents;
	struct pname *names;
	struct wdir *wdirs;
	struct pdir *dirs, *dirs_tail;	/* every directory */
	struct ent *last;
	struct dc_index_stats st;
	dc_index_changed_fn changed;
	void *changed_ud;
	int why;		/* DC_NAME_*: why names are being added now */
	bool unlinking;		/* names are being dropped by an unlink */
	uint32_t *marked;	/* devices whose stream has DC_INODE_NEW markers */
	size_t nmarked;
	uint64_t held_ents;	/* entries with held records */
	const char *changing;	/* during a callback: the name added or removed */
	int bfd;		/* fanotify, new files' inodes (index-births.c); -1: none */
	struct birth *births;
	uint32_t round;		/* dc_index_update() calls, for the births kept */
	uint32_t stamp;		/* the last listing started */
	uint32_t epoch;		/* the current repair epoch (never 0) */
	/* The repair: the next directory to re-list, and the listing under way. */
	bool repairing;
	struct pdir *cursor;
	struct {
		DIR *d;
		struct pname *dp;
		dev_t st_dev;
		uint32_t stamp;
	} cur;
	/*
	 * A new root's walk pauses now and then (dc_index_set_yield()):
	 * walking is set while it runs, may_yield while it may pause (not
	 * during the pause itself: the walks others start then do not);
	 * yields counts the pauses, so a listing knows to look again.
	 */
	dc_index_yield_fn yield;
	void *yield_ud;
	bool walking, may_yield;
	uint32_t yields, since_pause;
	uint64_t pause_ns;
	/* The directory the last inotify event was in, open (events come in runs). */
	struct {
		struct pname *p;
		int fd;
		dev_t st_dev;
	} evdir;
};

/* IN_DONT_FOLLOW is added only where a path, not /proc/self/fd, is watched. */
#define IN_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_ONLYDIR | \
		 IN_EXCL_UNLINK)

static inline struct ent *find(struct dc_index *x, uint32_t dev, uint64_t ino)
{
	struct key k = { .ino = ino, .dev = dev };
	struct ent *e;

	HASH_FIND(hh, x->ents, &k, sizeof(k), e);
	return e;
}

static inline struct ent *get(struct dc_index *x, uint32_t dev, uint64_t ino)
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

static inline struct pname *name_find(struct dc_index *x, const char *path)
{
	struct pname *p;

	HASH_FIND_STR(x->names, path, p);
	return p;
}

static inline struct root *root_find(struct dc_index *x, const char *path)
{
	struct root *r;

	HASH_FIND_STR(x->root_hash, path, r);
	return r;
}

static inline void notify(struct dc_index *x, uint32_t dev, uint64_t ino, int why)
{
	if (x->changed)
		x->changed(x->changed_ud, dev, ino, why);
}

/* The same, for the change of one name: the callback may ask which. */
static inline void notify_name(struct dc_index *x, uint32_t dev, uint64_t ino, int why,
			       const char *name)
{
	x->changing = name;
	notify(x, dev, ino, why);
	x->changing = NULL;
}

static inline int join(char *buf, const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if ((size_t)snprintf(buf, PATH_MAX, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/",
			     name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static inline bool ix_marked(const struct dc_index *x, uint32_t dev)
{
	for (size_t i = 0; i < x->nmarked; i++)
		if (x->marked[i] == dev)
			return true;
	return false;
}

/* index.c */
struct pname *ix_add_name(struct dc_index *x, struct pname *parent, const char *path,
			  uint32_t dev, uint64_t ino, bool dir, uint32_t stamp);
unsigned int ix_drop_subtree(struct dc_index *x, struct pname *p);
void ix_propagate(struct pname *top, uint64_t bits);

/* index-births.c */
void ix_births_init(struct dc_index *x);
void ix_births_free(struct dc_index *x);
void ix_births_watch(struct dc_index *x, int dirfd);
void ix_births_read(struct dc_index *x);
/* The inode of the file created as name in directory dir (open as dfd); 0: unknown. */
uint64_t ix_births_take(struct dc_index *x, int dfd, uint64_t dir, const char *name);
void ix_births_round(struct dc_index *x);

/* index-walk.c */
int ix_walk_root(struct dc_index *x, struct root *r);

#endif
