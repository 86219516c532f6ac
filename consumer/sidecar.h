/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sidecar FILE.duet that duet record writes next to a trace.dat and
 * duet report reads: what the trace cannot say by itself. One JSON
 * object, schema 1 (duet-record(1)):
 *
 *   {"duet_sidecar":1,"trace":"<basename>","clock":"mono",
 *    "mounts":[{"kdev":K,"dev":"MAJ:MIN","root":"/","mount_point":"/mnt","fstype":"ext4"}],
 *    "bdis":[{"name":"7:0","kdevs":[K,...]}],
 *    "files":[{"kdev":K,"ino":I,"paths":["/abs/path",...]}]}
 *
 * K is a kernel dev_t (as in the events). A reader takes the first path
 * of each file and the bdis; "trace" is not checked (files may be renamed
 * together), "mounts" is for people. The writer emits the members in this
 * order, without blanks, the files in the order they were added.
 */
#ifndef DUET_SIDECAR_H
#define DUET_SIDECAR_H

#include <stddef.h>
#include <stdint.h>

#include "devices.h"

#define DC_SIDECAR_SCHEMA 1

/* The files (paths by device and inode) and backing devices of one trace. */
struct dc_sidecar;

int dc_sidecar_new(struct dc_sidecar **ret);
void dc_sidecar_free(struct dc_sidecar *sc);	/* NULL: no-op */

/* A file's path; a file already there keeps its first. 0, or -ENOMEM. */
int dc_sidecar_add_file(struct dc_sidecar *sc, uint32_t kdev, uint64_t ino, const char *path);
/* The path of a file, NULL if it has none. */
const char *dc_sidecar_path(const struct dc_sidecar *sc, uint32_t kdev, uint64_t ino);
size_t dc_sidecar_nfiles(const struct dc_sidecar *sc);
/* The backing devices read (dc_sidecar_parse); none after dc_sidecar_new. */
const struct dc_bdi *dc_sidecar_bdis(const struct dc_sidecar *sc, size_t *n);

/*
 * Writes the sidecar of trace (its basename is stored) to fd: the mounts
 * of the devices devs (all mounts when ndevs is 0), the bdis given, the
 * files added. 0, -ENOMEM or -EIO.
 */
int dc_sidecar_write(const struct dc_sidecar *sc, int fd, const char *trace,
		     const struct dc_mounts *mounts, const uint32_t *devs, size_t ndevs,
		     const struct dc_bdi *bdis, size_t nbdis);

/*
 * A sidecar's text (pure: bytes in, a sidecar out). 0 and *ret; or
 * -EBADMSG with *why a sentence ("the sidecar is not valid JSON"), or
 * -ENOMEM. Malformed file entries are skipped; a malformed bdi refuses
 * the whole sidecar, since dirty events would be mapped wrongly.
 */
int dc_sidecar_parse(const char *text, size_t len, struct dc_sidecar **ret, const char **why);
/* The same from a file; -errno (and *why its strerror) if it cannot be read. */
int dc_sidecar_read(const char *path, struct dc_sidecar **ret, const char **why);

#endif
