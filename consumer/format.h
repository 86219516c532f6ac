/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Event layouts: field offsets and sizes read from tracefs "format" files.
 * Pure: text in, layout out. Userspace never parses TP_printk output.
 */
#ifndef DUET_FORMAT_H
#define DUET_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Every kernel event the consumer knows how to decode. */
enum dc_src {
	DC_SRC_ADD,		/* filemap/mm_filemap_add_to_page_cache */
	DC_SRC_DELETE,		/* filemap/mm_filemap_delete_from_page_cache */
	DC_SRC_WB_DIRTY,	/* writeback/writeback_dirty_folio (bdi name) */
	DC_SRC_SB_CLEAR_WB,	/* writeback/sb_clear_inode_writeback (inode) */
	DC_SRC_P_DIRTY,		/* patched: filemap/mm_filemap_dirty_folio */
	DC_SRC_P_WB_START,	/* patched: filemap/mm_filemap_clear_dirty_for_io */
	DC_SRC_P_WB_END,	/* patched: filemap/mm_filemap_writeback_end */
	DC_SRC_P_CANCEL,	/* patched: filemap/mm_filemap_dirty_cancel */
	DC_SRC_EXT4_ALLOC,	/* ext4/ext4_allocate_inode (DC_INODE_NEW) */
	DC_SRC_XFS_IGET_MISS,	/* xfs/xfs_iget_miss (DC_INODE_NEW) */
	DC_SRC_XFS_IGET_RECYCLE,	/* xfs/xfs_iget_recycle (DC_INODE_NEW) */
	DC_SRC_NR,
};

struct dc_src_info {
	const char *system;
	const char *name;
	uint8_t type;		/* DC_ADDED ... */
	uint8_t rec_flags;	/* flags every record of this source carries */
};

extern const struct dc_src_info dc_src_info[DC_SRC_NR];

struct dc_field {
	uint16_t offset;
	uint16_t size;		/* 0: absent */
};

/*
 * Which fields a source needs depends on its shape:
 *  - page-cache class (add, delete, patched events): ino, index, dev, order
 *  - writeback_dirty_folio: name (bdi), ino, index
 *  - sb_clear_inode_writeback and the DC_INODE_NEW sources: dev, ino
 */
struct dc_layout {
	int id;			/* common_type value */
	enum dc_src src;
	struct dc_field pid;
	struct dc_field ino;
	struct dc_field index;
	struct dc_field dev;
	struct dc_field order;
	struct dc_field name;
};

/*
 * Parse one event's format file text. Returns 0, -EPROTO when a field the
 * source needs is missing or has a size the decoder cannot read, -EBADMSG
 * when the text is not a format file, -ENOMEM.
 */
int dc_layout_parse(enum dc_src src, const char *text, size_t len,
		    struct dc_layout *out);

/* Source by "system/name"; -1 if unknown. */
int dc_src_lookup(const char *system, const char *name);

#endif
