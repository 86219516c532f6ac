/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file duet_task_save() writes and duet_task_load() reads: its codec,
 * pure (bytes in, records out, no I/O; fuzzed by
 * tests/fuzz/fuzz-savefile.c). local-save.c does the file system's part.
 *
 * Version 2, text, one record a line:
 *
 *	duet-done 2
 *	m DEV INO GEN FLAGS INDEX COUNT PATH
 *	...
 *	end N
 *
 * DEV, INO, GEN, FLAGS, INDEX and COUNT are decimal; the mark is pages
 * [INDEX, INDEX + COUNT) of the file, or the whole file for COUNT 0. The
 * file's identity is (DEV, INO, GEN): DEV in the kernel's encoding as it
 * was at the save (loop and btrfs device numbers change across reboots:
 * a hint), GEN the file system's inode generation (FS_IOC_GETVERSION)
 * when FLAGS has DSV_GEN, else unknown. PATH, relative to the task's
 * directory, is the rest of the line, with every byte outside printable
 * ASCII (0x20-0x7e) and the backslash escaped as \xHH (lowercase hex)
 * and \\: so a name may hold any byte but NUL, newlines included. The
 * trailer counts the records: a file cut short anywhere is refused.
 *
 * Version 1 (what libduet wrote before): "duet-done 1", then "INO INDEX
 * COUNT PATH" lines, the path raw to the end of the line (so it cannot
 * hold a newline), no trailer. Read for compatibility: no DEV, no GEN.
 */
#ifndef DUET_SAVEFILE_H
#define DUET_SAVEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DSV_VERSION	2
#define DSV_GEN		0x1u	/* gen is the file system's inode generation */
#define DSV_FLAGS	DSV_GEN	/* the flags this version knows */

struct dsv_rec {
	uint32_t dev;		/* 0 from version 1 */
	uint32_t flags;		/* DSV_* */
	uint64_t ino, gen, index, count;
	char *path;		/* relative to the task's directory; no NUL inside */
};

/* The header, a record, the trailer of n records: 0, or -EIO. */
int dsv_put_header(FILE *f);
int dsv_put(FILE *f, const struct dsv_rec *r);
int dsv_put_end(FILE *f, uint64_t n);

/*
 * A whole file's bytes: its records (malloc'd, each path too; free with
 * dsv_free()) and its version. 0; -EBADMSG, with *why a sentence (static)
 * saying what is wrong; -ENOMEM.
 */
int dsv_parse(const char *buf, size_t len, struct dsv_rec **recs, size_t *n, int *version,
	      const char **why);
void dsv_free(struct dsv_rec *recs, size_t n);

#endif
