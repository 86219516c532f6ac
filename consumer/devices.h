/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which file systems a set of paths covers, and their backing devices.
 */
#ifndef DUET_DEVICES_H
#define DUET_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "page.h"

struct dc_mount {
	uint32_t kdev;		/* super block dev, kernel encoding (as in events) */
	char *mnt_point;
	char *fstype;
	char *source;
	char *root;		/* the file system directory mounted there */
};

struct dc_mounts {
	struct dc_mount *m;
	size_t n;
};

/* Parse /proc/self/mountinfo text. */
int dc_mounts_parse(const char *text, struct dc_mounts *out);
int dc_mounts_load(struct dc_mounts *out);
void dc_mounts_free(struct dc_mounts *m);
/* The mount whose mount point is the longest prefix of path (boundary-aware). */
const struct dc_mount *dc_mounts_find(const struct dc_mounts *m, const char *path);

/* True when path equals dir or lies below it ("/a" covers "/a/b", not "/ab"). */
int dc_path_under(const char *path, const char *dir);

/*
 * The devices that the (absolute, resolved) directories cover: the file
 * system each lies on plus every file system mounted below it. Appends
 * unique kdevs to *devs (realloc'ed).
 */
int dc_devices_for_paths(const struct dc_mounts *m, char *const *dirs, size_t ndirs,
			 uint32_t **devs, size_t *ndevs);

/*
 * Backing-device names of those devices: block devices through
 * /sys/dev/block/M:m/bdi, btrfs through /sys/fs/btrfs/FSID/bdi. Devices
 * without one are skipped (their DIRTY events cannot be mapped).
 */
int dc_bdis_for_devices(const struct dc_mounts *m, const uint32_t *devs, size_t ndevs,
			struct dc_bdi **bdis, size_t *nbdis);

#endif
