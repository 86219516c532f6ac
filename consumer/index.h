/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A (device, inode) -> path index for the directories being watched:
 * built by walking them at start and kept current with inotify (creates,
 * renames, deletes). Every walk is fd-relative and follows no symlink; it
 * does not descend into pseudo file systems (proc, sysfs, tracefs, ...)
 * below a root. An inotify queue overflow is repaired incrementally
 * (dc_index_repair_step()), never by a walk of everything at once.
 */
#ifndef DUET_INDEX_H
#define DUET_INDEX_H

#include <stdbool.h>

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
	uint64_t overflows;	/* inotify queue overflows (each starts a repair) */
	uint64_t names_capped;	/* names not kept: the inode had DC_INDEX_MAX_NAMES */
	uint64_t repairs;	/* repairs completed */
	uint64_t repair_work;	/* directories opened, entries listed or dropped by repairs */
	uint64_t born_gone;	/* files deleted before they could be looked at, named by fanotify */
};

/*
 * Names kept per inode. More names of one inode (hard links, bind mounts,
 * a file system that numbers every file alike) are counted in
 * names_capped and not kept: the inode is shown only through the names
 * kept, so a task sees it only where one of those lies under its root.
 */
#define DC_INDEX_MAX_NAMES 1024

/*
 * The walk of a root added by dc_index_add_root*() calls fn(ud) every few
 * milliseconds, between entries, so that the caller can let other
 * threads use the index meanwhile (it lets its lock go and takes it
 * again). Whatever changes then (dc_index_update(), lookups, a directory
 * being walked deleted or moved) the walk copes with; a repair waits for
 * it to end. Walks that dc_index_update() itself starts never pause.
 */
typedef void (*dc_index_yield_fn)(void *ud);
void dc_index_set_yield(struct dc_index *x, dc_index_yield_fn fn, void *ud);

/* roots: absolute, resolved directories. */
int dc_index_new(char *const *roots, size_t nroots, struct dc_index **ret);
void dc_index_free(struct dc_index *x);
int dc_index_fd(const struct dc_index *x);
/* Apply queued directory changes; returns how many were applied. */
int dc_index_update(struct dc_index *x);
/*
 * After an inotify queue overflow (DC_NAME_OVERFLOW), re-list watched
 * directories, about budget entries per call, adding the names each holds
 * that the index lacks and dropping those it no longer holds. Returns > 0
 * while more remains, 0 when no repair is running (the call that completes
 * one reports DC_NAME_REPAIRED). Call dc_index_update() between steps.
 */
int dc_index_repair_step(struct dc_index *x, unsigned int budget);

#define DC_PATH_DELETED 0x1	/* no name under the roots any more */

/*
 * Path of (kdev, ino) if it is under a root, or NULL. An unknown inode
 * first has the pending directory changes applied; if it is still unknown
 * it is remembered as not under the roots (except while a repair runs:
 * the repair may still find it).
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
	DC_NAME_DELETED,	/* its last name under the roots was unlinked */
	DC_NAME_ATTRIB,		/* mode, owner or ACL changed (of a file; dev 0 ino 0:
				 * of a directory, so of everything below it) */
	DC_NAME_OVERFLOW,	/* dev 0 ino 0: directory changes were lost; a repair
				 * starts (names may be stale until DC_NAME_REPAIRED) */
	DC_NAME_REPAIRED,	/* dev 0 ino 0: the repair is complete */
};

/* Called when an inode gains or loses a name (dev 0, ino 0: everything). */
typedef void (*dc_index_changed_fn)(void *ud, uint32_t kdev, uint64_t ino, int why);
void dc_index_set_changed(struct dc_index *x, dc_index_changed_fn fn, void *ud);
/*
 * Inside the change callback: the name that was added (DC_NAME_WALK,
 * CREATED, LINKED, MOVED_IN) or removed (DC_NAME_REMOVED), so that the
 * callback can tell what the inode's names were just before; NULL for
 * the other changes and outside the callback.
 */
const char *dc_index_changing_name(const struct dc_index *x);
/*
 * Walk and watch one more root: the file or directory open as dirfd (any
 * fd, O_PATH will do; the index keeps a duplicate), whose canonical
 * absolute name is path (the names the index stores start with it).
 * Nothing below is reached through a symlink. A root already known by
 * that path is not walked again.
 */
int dc_index_add_root_at(struct dc_index *x, int dirfd, const char *path);
/* The same for a root opened by its (absolute, resolved) path. */
int dc_index_add_root(struct dc_index *x, const char *root);
/*
 * A name of (kdev, ino) under root (any name when root is NULL), and its
 * incarnation: a deleted inode whose number is named again gets a new gen.
 * -ENOENT when it has no name under root. *gen is written whenever the
 * inode is known, also when it has no name under root. While a repair
 * runs, only names the repair has confirmed count under a root.
 */
int dc_index_name_under(struct dc_index *x, uint32_t kdev, uint64_t ino, const char *root,
			char *buf, size_t len, uint64_t *gen);
/*
 * Call fn with each name of (kdev, ino) under root (every name when root
 * is NULL), newest first; non-zero from fn stops and is returned. While
 * a repair runs, only names it has confirmed. fn must not change the
 * index.
 */
typedef int (*dc_index_name_fn)(void *ud, const char *path);
int dc_index_names_under(struct dc_index *x, uint32_t kdev, uint64_t ino, const char *root,
			 dc_index_name_fn fn, void *ud);
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
/* The same without the directories: the names the walk found as regular files. */
int dc_index_foreach_file_under(struct dc_index *x, const char *root, dc_index_file_fn fn,
				void *ud);

/*
 * Incarnations. The names tell which file has a number now; the event
 * stream runs behind them (or, briefly, ahead): the last events of a
 * deleted file can come after the index saw the next file take the
 * number. On a file system whose stream marks every new inode
 * (DC_INODE_NEW records; devices given here), the index follows the
 * stream's incarnation apart from the names' one, so that each event is
 * attributed to the file it belongs to. Elsewhere both are the same.
 */
int dc_index_set_marked(struct dc_index *x, const uint32_t *kdevs, size_t n);
/* A DC_INODE_NEW record, in stream order. */
void dc_index_inode_new(struct dc_index *x, uint32_t kdev, uint64_t ino);
/*
 * Events were lost (markers among them): the stream's incarnations are
 * the names' again, as the resync that follows takes them.
 */
void dc_index_stream_lost(struct dc_index *x);
/*
 * The incarnation the stream is at for (kdev, ino), as *gen. 0: it is the
 * file the names show (ask them who sees it). 1: a file that has no name
 * any more; *held is what dc_index_set_held() said when it was unlinked
 * (0 if nothing). 2: a new file whose name is not in the index yet (the
 * stream's marker can come before the kernel queues the name): ask again
 * at its next event. -ENOENT: not known under the roots.
 */
int dc_index_stream(struct dc_index *x, uint32_t kdev, uint64_t ino, uint64_t *gen,
		    uint64_t *held);
/*
 * For the caller's DC_NAME_DELETED: keep a mask (the tasks that saw the
 * file) with the incarnation just unlinked, until the stream has passed
 * it. dc_index_clear_held() takes bits out of every such mask.
 */
int dc_index_set_held(struct dc_index *x, uint32_t kdev, uint64_t ino, uint64_t held);
void dc_index_clear_held(struct dc_index *x, uint64_t bits);
/* The last name of an inode that has none under the roots, or NULL. */
const char *dc_index_gone(const struct dc_index *x, uint32_t kdev, uint64_t ino);

/*
 * Whether the open fd lies on one of the kernel's pseudo file systems
 * (proc, sysfs, tracefs, cgroup and their kind), which have no page cache
 * of their own: the index and duet_residency()'s walk never go into them.
 */
bool dc_pseudo_fs(int fd);

#endif
