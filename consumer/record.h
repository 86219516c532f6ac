/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Decoded page-cache records: the fixed-width form every source produces.
 */
#ifndef DUET_RECORD_H
#define DUET_RECORD_H

#include <stdint.h>

/* Event types; values are bits so callers can build masks. */
#define DC_ADDED	0x01u
#define DC_REMOVED	0x02u
#define DC_DIRTY	0x04u
#define DC_FLUSHED	0x08u
/*
 * An inode was made in memory for (dev, ino): a new file took the number,
 * or (xfs) the inode was read again after it had left memory. Either way
 * no page cached before this record belongs to the inode after it. Not a
 * page event: index and count are 0. Only asked for (never in "all").
 */
#define DC_INODE_NEW	0x10u
#define DC_LOST		0x80u	/* events were lost on this cpu before ts */
#define DC_EVENTS_ALL	(DC_ADDED | DC_REMOVED | DC_DIRTY | DC_FLUSHED)

/* Record flags. */
#define DC_REC_INODE_LEVEL	0x01u	/* covers the whole inode, count == 0 */
#define DC_REC_DEV_AMBIGUOUS	0x02u	/* bdi shared by several devices */
#define DC_REC_LOST_UNKNOWN	0x04u	/* DC_LOST: count unknown (at least 1) */
#define DC_REC_LOST_LATE	0x08u	/* DC_LOST: count events came after their
					 * CPU's watermark (out of order) */

/*
 * One event. dev uses the kernel encoding (major << 20 | minor), as the
 * events do; dc_kdev_from_user() converts an st_dev.
 */
struct dc_record {
	uint64_t ts;		/* ns, trace clock of the instance */
	uint64_t ino;
	uint64_t index;		/* first page */
	uint64_t count;		/* pages; lost events for DC_LOST */
	uint32_t dev;
	int32_t pid;
	uint16_t cpu;
	uint8_t type;
	uint8_t flags;
	uint32_t reserved;
};

static inline uint32_t dc_kdev(unsigned int major, unsigned int minor)
{
	return (major << 20) | (minor & 0xfffffu);
}

static inline unsigned int dc_kdev_major(uint32_t kdev)
{
	return kdev >> 20;
}

static inline unsigned int dc_kdev_minor(uint32_t kdev)
{
	return kdev & 0xfffffu;
}

const char *dc_type_name(unsigned int type);

#endif
