// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which kernel events give ADDED, REMOVED, DIRTY and FLUSHED on this
 * kernel; shared by the tracefs and perf sources.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"

static int load_layout(struct dc_sources *s, enum dc_src src)
{
	const struct dc_src_info *si = &dc_src_info[src];
	char *text;
	size_t len;
	int r;

	r = dc_event_format(si->system, si->name, &text, &len);
	if (r)
		return r;
	r = dc_layout_parse(src, text, len, &s->layouts[s->nlayouts]);
	free(text);
	if (r)
		return r;
	s->nlayouts++;
	s->use[src] = true;
	return 0;
}

int dc_sources_choose(unsigned int types, bool stock_only, struct dc_sources *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	if (types & DC_ADDED) {
		r = load_layout(s, DC_SRC_ADD);
		if (r)
			return r;
	}
	if (types & DC_REMOVED) {
		r = load_layout(s, DC_SRC_DELETE);
		if (r)
			return r;
	}
	if (types & (DC_DIRTY | DC_FLUSHED)) {
		if (!stock_only && !load_layout(s, DC_SRC_P_DIRTY) &&
		    !load_layout(s, DC_SRC_P_WB_START)) {
			s->dirty_sem = DC_DIRTY_EXACT;
			s->flush_sem = DC_FLUSH_EXACT;
			/* Optional companions of the patched series. */
			load_layout(s, DC_SRC_P_CANCEL);
			if (!(types & DC_DIRTY))
				s->use[DC_SRC_P_DIRTY] = false;
		} else {
			/* A half-loaded patched set must not stay in use. */
			memset(s, 0, sizeof(*s));
			if (types & DC_ADDED)
				load_layout(s, DC_SRC_ADD);
			if (types & DC_REMOVED)
				load_layout(s, DC_SRC_DELETE);
			if ((types & DC_DIRTY) && !load_layout(s, DC_SRC_WB_DIRTY))
				s->dirty_sem = DC_DIRTY_BDI;
			if ((types & DC_FLUSHED) && !load_layout(s, DC_SRC_SB_CLEAR_WB))
				s->flush_sem = DC_FLUSH_INODE;
		}
	}
	/*
	 * Inode markers are optional: a file system whose module is not
	 * loaded (or a kernel without the events) has none, and its inode
	 * numbers are told apart by the path index alone.
	 */
	if (types & DC_INODE_NEW) {
		load_layout(s, DC_SRC_EXT4_ALLOC);
		load_layout(s, DC_SRC_XFS_IGET_MISS);
		load_layout(s, DC_SRC_XFS_IGET_RECYCLE);
	}
	return s->nlayouts ? 0 : -ENOENT;
}

void dc_sources_describe(const struct dc_sources *s, char *buf, size_t len)
{
	const char *d, *f;

	switch (s->dirty_sem) {
	case DC_DIRTY_EXACT:
		d = "DIRTY exact per folio (filemap/mm_filemap_dirty_folio)";
		break;
	case DC_DIRTY_BDI:
		d = "DIRTY per page from writeback/writeback_dirty_folio (bdi name mapped to device; no folio order, one page per event)";
		break;
	default:
		d = "DIRTY not available";
	}
	switch (s->flush_sem) {
	case DC_FLUSH_EXACT:
		f = "FLUSHED exact per folio (filemap/mm_filemap_clear_dirty_for_io)";
		break;
	case DC_FLUSH_INODE:
		f = "FLUSHED inode-level from writeback/sb_clear_inode_writeback (kernel not patched, see kernel-tracepoints/README.md)";
		break;
	default:
		f = "FLUSHED not available";
	}
	snprintf(buf, len, "ADDED/REMOVED exact per folio (filemap); %s; %s%s%s%s", d, f,
		 s->use[DC_SRC_EXT4_ALLOC] || s->use[DC_SRC_XFS_IGET_MISS] ?
			 "; new inodes marked in the stream (" : "",
		 s->use[DC_SRC_EXT4_ALLOC] ? (s->use[DC_SRC_XFS_IGET_MISS] ? "ext4, " : "ext4") : "",
		 s->use[DC_SRC_XFS_IGET_MISS] ? "xfs)" : s->use[DC_SRC_EXT4_ALLOC] ? ")" : "");
}
