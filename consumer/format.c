// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Event format files parsed with libtraceevent; this file only decides
 * which fields each source needs and whether their sizes are usable.
 */
#include <errno.h>
#include <string.h>
#include <traceevent/event-parse.h>

#include "format.h"
#include "record.h"

const struct dc_src_info dc_src_info[DC_SRC_NR] = {
	[DC_SRC_ADD] = { "filemap", "mm_filemap_add_to_page_cache", DC_ADDED, 0 },
	[DC_SRC_DELETE] = { "filemap", "mm_filemap_delete_from_page_cache", DC_REMOVED, 0 },
	[DC_SRC_WB_DIRTY] = { "writeback", "writeback_dirty_folio", DC_DIRTY, 0 },
	[DC_SRC_SB_CLEAR_WB] = { "writeback", "sb_clear_inode_writeback", DC_FLUSHED,
				 DC_REC_INODE_LEVEL },
	[DC_SRC_P_DIRTY] = { "filemap", "mm_filemap_dirty_folio", DC_DIRTY, 0 },
	[DC_SRC_P_WB_START] = { "filemap", "mm_filemap_clear_dirty_for_io", DC_FLUSHED, 0 },
	[DC_SRC_P_WB_END] = { "filemap", "mm_filemap_writeback_end", 0, 0 },
	[DC_SRC_P_CANCEL] = { "filemap", "mm_filemap_dirty_cancel", DC_FLUSHED, 0 },
	[DC_SRC_EXT4_ALLOC] = { "ext4", "ext4_allocate_inode", DC_INODE_NEW, 0 },
	[DC_SRC_XFS_IGET_MISS] = { "xfs", "xfs_iget_miss", DC_INODE_NEW, 0 },
	[DC_SRC_XFS_IGET_RECYCLE] = { "xfs", "xfs_iget_recycle", DC_INODE_NEW, 0 },
};

const char *dc_type_name(unsigned int type)
{
	switch (type) {
	case DC_ADDED:
		return "ADDED";
	case DC_REMOVED:
		return "REMOVED";
	case DC_DIRTY:
		return "DIRTY";
	case DC_FLUSHED:
		return "FLUSHED";
	case DC_LOST:
		return "LOST";
	case DC_INODE_NEW:
		return "NEW";
	}
	return "?";
}

int dc_src_lookup(const char *system, const char *name)
{
	for (int i = 0; i < DC_SRC_NR; i++)
		if (!strcmp(dc_src_info[i].system, system) &&
		    !strcmp(dc_src_info[i].name, name))
			return i;
	return -1;
}

/* Integer fields the decoder reads: 1, 2, 4 or 8 bytes. */
static int take_int(struct tep_event *ev, const char *name, bool need,
		    const unsigned int *sizes, struct dc_field *out)
{
	struct tep_format_field *f = tep_find_any_field(ev, name);

	if (!f)
		return need ? -EPROTO : 0;
	if (f->flags & (TEP_FIELD_IS_ARRAY | TEP_FIELD_IS_DYNAMIC |
			TEP_FIELD_IS_STRING))
		return -EPROTO;
	for (; *sizes; sizes++) {
		if ((unsigned int)f->size == *sizes) {
			if (f->offset < 0 || f->offset > 0xffff)
				return -EPROTO;
			out->offset = f->offset;
			out->size = f->size;
			return 0;
		}
	}
	return -EPROTO;
}

int dc_layout_parse(enum dc_src src, const char *text, size_t len,
		    struct dc_layout *out)
{
	static const unsigned int sz_48[] = { 4, 8, 0 };
	static const unsigned int sz_4[] = { 4, 0 };
	static const unsigned int sz_124[] = { 1, 2, 4, 0 };
	const struct dc_src_info *si;
	struct tep_handle *tep;
	struct tep_event *ev = NULL;
	struct tep_format_field *f;
	struct dc_layout l;
	const char *pf;
	int r;

	if ((unsigned int)src >= DC_SRC_NR)
		return -EINVAL;
	si = &dc_src_info[src];
	tep = tep_alloc();
	if (!tep)
		return -ENOMEM;
	/*
	 * tracefs writes format files in printable ASCII. libtraceevent 1.7.1
	 * dereferences NULL on other bytes in some places (an array size of
	 * "[\x01 2]", found by fuzz-format), and wants no NUL up to len.
	 */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if ((c < 0x20 && c != '\t' && c != '\n') || c >= 0x7f) {
			r = -EBADMSG;
			goto out;
		}
	}
	/*
	 * The print format is never used (records come from the fields), and
	 * libtraceevent 1.7.1's parser of it crashes on malformed helpers such
	 * as a cut __print_flags() (fuzz-format): hand it the fields only.
	 */
	pf = memmem(text, len, "\nprint fmt:", 11);
	if (pf)
		len = (size_t)(pf - text) + 1;
	if (tep_parse_format(tep, &ev, text, len, si->system) != TEP_ERRNO__SUCCESS ||
	    !ev) {
		r = -EBADMSG;
		goto out;
	}
	if (!ev->name || strcmp(ev->name, si->name)) {
		r = -EPROTO;
		goto out;
	}
	memset(&l, 0, sizeof(l));
	l.src = src;
	l.id = ev->id;
	if (l.id <= 0 || l.id > 0xffff) {
		r = -EBADMSG;
		goto out;
	}
	r = take_int(ev, "common_pid", true, sz_4, &l.pid);
	if (r)
		goto out;
	switch (src) {
	case DC_SRC_WB_DIRTY:
		r = take_int(ev, "ino", true, sz_48, &l.ino);
		if (!r)
			r = take_int(ev, "index", true, sz_48, &l.index);
		if (r)
			goto out;
		f = tep_find_field(ev, "name");
		if (!f || !(f->flags & TEP_FIELD_IS_ARRAY) ||
		    f->flags & TEP_FIELD_IS_DYNAMIC || f->size <= 0 ||
		    f->size > 64) {
			r = -EPROTO;
			goto out;
		}
		l.name.offset = f->offset;
		l.name.size = f->size;
		break;
	case DC_SRC_SB_CLEAR_WB:
	case DC_SRC_EXT4_ALLOC:
	case DC_SRC_XFS_IGET_MISS:
	case DC_SRC_XFS_IGET_RECYCLE:
		r = take_int(ev, "dev", true, sz_4, &l.dev);
		if (!r)
			r = take_int(ev, "ino", true, sz_48, &l.ino);
		if (r)
			goto out;
		break;
	default:
		r = take_int(ev, "i_ino", true, sz_48, &l.ino);
		if (!r)
			r = take_int(ev, "index", true, sz_48, &l.index);
		if (!r)
			r = take_int(ev, "s_dev", true, sz_4, &l.dev);
		if (!r)
			r = take_int(ev, "order", true, sz_124, &l.order);
		if (r)
			goto out;
		break;
	}
	*out = l;
	r = 0;
out:
	tep_free(tep);
	return r;
}
