/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The inode number in a file handle, read directly where the format is
 * known: ext4's, xfs's and btrfs's handles start with it
 * (include/linux/exportfs.h: FILEID_INO32_GEN, FILEID_INO64_GEN,
 * btrfs's FILEID_BTRFS_*). Shared by the fanotify readers.
 */
#ifndef DUET_FHANDLE_H
#define DUET_FHANDLE_H

#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#define FILEID_INO32_GEN		1
#define FILEID_INO32_GEN_PARENT		2
#define FILEID_INO64_GEN		0x81
#define FILEID_INO64_GEN_PARENT		0x82
#define FILEID_BTRFS_WITHOUT_PARENT	0x4d
#define FILEID_BTRFS_WITH_PARENT	0x4e
#define FILEID_BTRFS_WITH_PARENT_ROOT	0x4f

/* 0 when the format is not one of those. */
static inline uint64_t dc_handle_ino(const struct file_handle *h)
{
	uint32_t i32;
	uint64_t i64;

	switch (h->handle_type) {
	case FILEID_INO32_GEN:
	case FILEID_INO32_GEN_PARENT:
		if (h->handle_bytes < sizeof(i32))
			return 0;
		memcpy(&i32, h->f_handle, sizeof(i32));
		return i32;
	case FILEID_INO64_GEN:
	case FILEID_INO64_GEN_PARENT:
	case FILEID_BTRFS_WITHOUT_PARENT:
	case FILEID_BTRFS_WITH_PARENT:
	case FILEID_BTRFS_WITH_PARENT_ROOT:
		if (h->handle_bytes < sizeof(i64))
			return 0;
		memcpy(&i64, h->f_handle, sizeof(i64));
		return i64;
	}
	return 0;
}

#endif
