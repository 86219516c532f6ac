/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attribute changes anywhere on a file system: fanotify with file-system
 * marks (FAN_MARK_FILESYSTEM, FAN_ATTRIB | FAN_ONDIR, FAN_REPORT_FID).
 *
 * Why not inotify: who may open a file changes with its mode, owner and
 * ACL, reached through any of its names (a hard link outside the watched
 * tree), and with the search permission of every directory above it
 * (above the watched tree too). inotify reports a change only to the
 * watched directory of the name used; a file-system mark reports every
 * one, by file identity. Needs CAP_SYS_ADMIN (duetd, or a root session).
 */
#ifndef DUET_ATTRWATCH_H
#define DUET_ATTRWATCH_H

#include <stdbool.h>
#include <stdint.h>

struct dc_attrwatch;

/* -EPERM without CAP_SYS_ADMIN, -EOPNOTSUPP on kernels without FID marks. */
int dc_attrwatch_new(struct dc_attrwatch **ret);
void dc_attrwatch_free(struct dc_attrwatch *w);	/* NULL: no-op */
/* Readable when changes are queued. */
int dc_attrwatch_fd(const struct dc_attrwatch *w);

/*
 * Watch the file system that holds path; kdev is the device its page
 * events carry (kernel encoding). A file system already watched is not
 * marked twice. 0 or -errno.
 */
int dc_attrwatch_add(struct dc_attrwatch *w, const char *path, uint32_t kdev);

/*
 * A change: the attributes of the file (kdev, ino) changed, or, with dir,
 * of a directory (so of what may be reached below it); kdev 0 with dir:
 * of something the watch could not place (queue overflow, an unknown
 * file system or file handle): treat everything as changed.
 */
typedef void (*dc_attr_fn)(void *ud, uint32_t kdev, uint64_t ino, bool dir);

/* Hand every queued change to fn. Returns how many, or -errno. */
int dc_attrwatch_read(struct dc_attrwatch *w, dc_attr_fn fn, void *ud);

/* Changes seen, and those that could not be placed (all-changed). */
struct dc_attrwatch_stats {
	uint64_t events;
	uint64_t unplaced;
	uint64_t filesystems;
};
void dc_attrwatch_stats(const struct dc_attrwatch *w, struct dc_attrwatch_stats *st);

#endif
