/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A simple (device, inode) -> path index for the directories being watched:
 * built by walking them at start and kept current with inotify (creates,
 * renames, deletes). libduet replaces it with the complete resolver.
 */
#ifndef DUET_INDEX_H
#define DUET_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "devices.h"

struct dc_index;

struct dc_index_stats {
	uint64_t files;		/* inodes known under the roots */
	uint64_t negative;	/* inodes known not to be under the roots */
	uint64_t dirs_watched;
	uint64_t lookups;
	uint64_t misses;	/* lookups that needed the inotify queue */
	uint64_t overflows;	/* inotify queue overflows (full rewalks) */
};

/* roots: absolute, resolved directories. */
int dc_index_new(char *const *roots, size_t nroots, struct dc_index **ret);
void dc_index_free(struct dc_index *x);
int dc_index_fd(const struct dc_index *x);
/* Apply queued directory changes; returns how many were applied. */
int dc_index_update(struct dc_index *x);

#define DC_PATH_DELETED 0x1	/* no name under the roots any more */

/*
 * Path of (kdev, ino) if it is under a root, or NULL. An unknown inode
 * first has the pending directory changes applied; if it is still unknown
 * it is remembered as not under the roots.
 */
const char *dc_index_lookup(struct dc_index *x, uint32_t kdev, uint64_t ino,
			    unsigned int *flags);
const struct dc_index_stats *dc_index_stats(const struct dc_index *x);

/* Why an inode's names changed. */
enum {
	DC_NAME_WALK,		/* found by a walk (start, new root, overflow) */
	DC_NAME_CREATED,	/* a new file (its pages come as events) */
	DC_NAME_LINKED,		/* a new name of an existing file (hard link) */
	DC_NAME_MOVED_IN,	/* renamed into a watched directory */
	DC_NAME_REMOVED,	/* a name went away (unlink, rename out) */
	DC_NAME_ATTRIB,		/* mode, owner or ACL changed (of a file; dev 0 ino 0:
				 * of a directory, so of everything below it) */
};

/* Called when an inode gains or loses a name (dev 0, ino 0: everything). */
typedef void (*dc_index_changed_fn)(void *ud, uint32_t kdev, uint64_t ino, int why);
void dc_index_set_changed(struct dc_index *x, dc_index_changed_fn fn, void *ud);
/* Walk and watch one more root (absolute, resolved). */
int dc_index_add_root(struct dc_index *x, const char *root);
/*
 * A name of (kdev, ino) under root (any name when root is NULL), and its
 * incarnation: a deleted inode whose number is named again gets a new gen.
 * -ENOENT when it has no name under root.
 */
int dc_index_name_under(struct dc_index *x, uint32_t kdev, uint64_t ino, const char *root,
			char *buf, size_t len, uint64_t *gen);
/*
 * The mount table changed: mounts that appeared under a root are walked
 * (their names arrive as DC_NAME_MOVED_IN), names under mounts that went
 * away are dropped and the directory underneath walked again. Returns how
 * many mount points changed under the roots.
 */
int dc_index_remount(struct dc_index *x);
/* Visit every name under root (directories included). Non-zero stops. */
typedef int (*dc_index_file_fn)(void *ud, const char *path, uint32_t kdev, uint64_t ino);
int dc_index_foreach_under(struct dc_index *x, const char *root, dc_index_file_fn fn, void *ud);

#endif
