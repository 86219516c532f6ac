/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Loop-mounted scratch file systems for live tests and benchmarks. Every
 * image, loop device and mount made here is undone at exit, on SIGINT,
 * SIGTERM, SIGHUP, SIGABRT, SIGSEGV and on a failed assertion.
 */
#ifndef DUET_FSIMG_H
#define DUET_FSIMG_H

#include <stdint.h>

struct fsimg {
	char image[256];
	char loop[64];
	char mnt[256];
	uint32_t kdev;		/* kernel encoding, as in events */
	int mounted;
	int made_mnt;		/* mnt was created here: removed again */
};

/* Make a file system of fstype (ext4, xfs, btrfs) of size_mb, mounted at mnt
 * (created if missing). Returns 0, or 77-style skip reasons via -EOPNOTSUPP. */
int fsimg_make(struct fsimg *f, const char *fstype, unsigned int size_mb, const char *mnt);
void fsimg_destroy(struct fsimg *f);
/* Undo every image made so far; safe to call more than once. */
void fsimg_cleanup_all(void);

#endif
