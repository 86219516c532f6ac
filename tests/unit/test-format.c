// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dc_layout_parse() on the format files recorded from kernel 6.18 and on
 * hand-edited variants: a 32-bit style layout with 4-byte inode and index,
 * a missing field, sizes the decoder cannot read, and text that is not a
 * format file.
 *
 * usage: test-format DATADIR
 */
#include <errno.h>

#include "../lib/check.h"
#include "format.h"
#include "record.h"

static const char *data_dir;

static int parse(const char *sub, const char *name, enum dc_src src,
		 struct dc_layout *out)
{
	char path[512];
	size_t len;
	char *text;
	int r;

	snprintf(path, sizeof(path), "%s/%s", data_dir, sub);
	text = check_slurp(path, name, &len);
	if (!text)
		return -EIO;
	r = dc_layout_parse(src, text, len, out);
	free(text);
	return r;
}

#define CHECK_FIELD(f, off, sz)			\
	do {					\
		CHECK_EQ((f).offset, (off));	\
		CHECK_EQ((f).size, (sz));	\
	} while (0)

static void test_recorded(void)
{
	static const struct {
		const char *file;
		enum dc_src src;
		int id;
	} pc[] = {
		{ "mm_filemap_add_to_page_cache.format", DC_SRC_ADD, 600 },
		{ "mm_filemap_delete_from_page_cache.format", DC_SRC_DELETE, 601 },
	};
	struct dc_layout l;

	for (size_t i = 0; i < sizeof(pc) / sizeof(pc[0]); i++) {
		memset(&l, 0xa5, sizeof(l));
		CHECK_EQ(parse("formats-6.18", pc[i].file, pc[i].src, &l), 0);
		CHECK_EQ(l.id, pc[i].id);
		CHECK_EQ(l.src, pc[i].src);
		CHECK_FIELD(l.pid, 4, 4);
		CHECK_FIELD(l.ino, 16, 8);
		CHECK_FIELD(l.index, 24, 8);
		CHECK_FIELD(l.dev, 32, 4);
		CHECK_FIELD(l.order, 36, 1);
		CHECK_FIELD(l.name, 0, 0);
	}

	memset(&l, 0xa5, sizeof(l));
	CHECK_EQ(parse("formats-6.18", "writeback_dirty_folio.format", DC_SRC_WB_DIRTY, &l), 0);
	CHECK_EQ(l.id, 1009);
	CHECK_EQ(l.src, DC_SRC_WB_DIRTY);
	CHECK_FIELD(l.pid, 4, 4);
	CHECK_FIELD(l.name, 8, 32);
	CHECK_FIELD(l.ino, 40, 8);
	CHECK_FIELD(l.index, 48, 8);
	CHECK_FIELD(l.dev, 0, 0);
	CHECK_FIELD(l.order, 0, 0);

	memset(&l, 0xa5, sizeof(l));
	CHECK_EQ(parse("formats-6.18", "sb_clear_inode_writeback.format", DC_SRC_SB_CLEAR_WB, &l), 0);
	CHECK_EQ(l.id, 977);
	CHECK_EQ(l.src, DC_SRC_SB_CLEAR_WB);
	CHECK_FIELD(l.pid, 4, 4);
	CHECK_FIELD(l.dev, 8, 4);
	CHECK_FIELD(l.ino, 16, 8);
	CHECK_FIELD(l.index, 0, 0);
	CHECK_FIELD(l.order, 0, 0);
	CHECK_FIELD(l.name, 0, 0);
}

/* A kernel where unsigned long is 4 bytes: every later offset moves. */
static void test_ino4(void)
{
	struct dc_layout l;

	CHECK_EQ(parse("formats-variants", "add-ino4.format", DC_SRC_ADD, &l), 0);
	CHECK_EQ(l.id, 600);
	CHECK_FIELD(l.pid, 4, 4);
	CHECK_FIELD(l.ino, 12, 4);
	CHECK_FIELD(l.index, 16, 4);
	CHECK_FIELD(l.dev, 20, 4);
	CHECK_FIELD(l.order, 24, 1);
}

/*
 * The print format is not used: a malformed one (libtraceevent crashed
 * on a cut __print_flags(), fuzz-format) does not matter.
 */
static void test_bad_print_fmt(void)
{
	struct dc_layout l;

	CHECK_EQ(parse("formats-variants", "add-bad-print-fmt.format", DC_SRC_ADD, &l), 0);
	CHECK_EQ(l.id, 600);
	CHECK_FIELD(l.ino, 16, 8);
	CHECK_FIELD(l.order, 36, 1);
}

/* Errors must leave the output untouched (written only on success). */
static void check_err(const char *sub, const char *file, enum dc_src src, int want)
{
	struct dc_layout l, orig;

	memset(&l, 0x5a, sizeof(l));
	orig = l;
	CHECK_EQ(parse(sub, file, src, &l), want);
	CHECK(!memcmp(&l, &orig, sizeof(l)));
}

static void test_errors(void)
{
	const char *v = "formats-variants", *r = "formats-6.18";

	check_err(v, "add-no-order.format", DC_SRC_ADD, -EPROTO);
	check_err(v, "add-sdev2.format", DC_SRC_ADD, -EPROTO);
	check_err(v, "add-ino3.format", DC_SRC_ADD, -EPROTO);
	check_err(v, "add-ino-array.format", DC_SRC_ADD, -EPROTO);
	check_err(v, "add-truncated.format", DC_SRC_ADD, -EPROTO);
	check_err(v, "wb-dirty-name-not-array.format", DC_SRC_WB_DIRTY, -EPROTO);
	check_err(v, "sb-clear-no-ino.format", DC_SRC_SB_CLEAR_WB, -EPROTO);
	check_err(v, "garbage.format", DC_SRC_ADD, -EBADMSG);

	/* A format file for another event than the source names. */
	check_err(r, "mm_filemap_add_to_page_cache.format", DC_SRC_DELETE, -EPROTO);
	check_err(r, "mm_filemap_delete_from_page_cache.format", DC_SRC_ADD, -EPROTO);
	check_err(r, "writeback_dirty_folio.format", DC_SRC_SB_CLEAR_WB, -EPROTO);
	check_err(r, "sb_clear_inode_writeback.format", DC_SRC_P_DIRTY, -EPROTO);
	check_err(r, "mm_filemap_add_to_page_cache.format", DC_SRC_NR, -EINVAL);
}

static void test_text_edge(void)
{
	static const char nul[] = "name: mm_filemap_add_to_page_cache\nID: 600\0format:\n";
	struct dc_layout l;

	char *text;
	size_t len;

	CHECK_EQ(dc_layout_parse(DC_SRC_ADD, "", 0, &l), -EBADMSG);
	CHECK_EQ(dc_layout_parse(DC_SRC_ADD, nul, sizeof(nul) - 1, &l), -EBADMSG);

	/*
	 * Bytes outside printable ASCII are refused before libtraceevent sees
	 * them: it crashed on "name[\x012]" (fuzz-format). The rest of the
	 * text is not even looked at: len bounds the scan.
	 */
	text = check_slurp(data_dir, "formats-6.18/writeback_dirty_folio.format", &len);
	if (!text)
		return;
	CHECK_EQ(dc_layout_parse(DC_SRC_WB_DIRTY, text, len, &l), 0);
	for (size_t i = 0; i + 6 < len; i++) {
		if (!memcmp(text + i, "name[", 5)) {
			text[i + 5] = 0x01;
			CHECK_EQ(dc_layout_parse(DC_SRC_WB_DIRTY, text, len, &l), -EBADMSG);
			text[i + 5] = (char)0xc3;
			CHECK_EQ(dc_layout_parse(DC_SRC_WB_DIRTY, text, len, &l), -EBADMSG);
			text[i + 5] = 0x7f;
			CHECK_EQ(dc_layout_parse(DC_SRC_WB_DIRTY, text, len, &l), -EBADMSG);
			text[i + 5] = '3';
			CHECK_EQ(dc_layout_parse(DC_SRC_WB_DIRTY, text, len, &l), 0);
			CHECK_FIELD(l.name, 8, 32);
			break;
		}
	}
	/* A trailing NUL past len is not part of the text. */
	CHECK_EQ(dc_layout_parse(DC_SRC_WB_DIRTY, text, len - 1, &l), 0);
	free(text);
}

static void test_lookup(void)
{
	CHECK_EQ(dc_src_lookup("filemap", "mm_filemap_add_to_page_cache"), DC_SRC_ADD);
	CHECK_EQ(dc_src_lookup("filemap", "mm_filemap_delete_from_page_cache"), DC_SRC_DELETE);
	CHECK_EQ(dc_src_lookup("writeback", "writeback_dirty_folio"), DC_SRC_WB_DIRTY);
	CHECK_EQ(dc_src_lookup("writeback", "sb_clear_inode_writeback"), DC_SRC_SB_CLEAR_WB);
	CHECK_EQ(dc_src_lookup("filemap", "mm_filemap_clear_dirty_for_io"), DC_SRC_P_WB_START);
	CHECK_EQ(dc_src_lookup("writeback", "mm_filemap_add_to_page_cache"), -1);
	CHECK_EQ(dc_src_lookup("filemap", "nope"), -1);
	CHECK_EQ(dc_src_info[DC_SRC_SB_CLEAR_WB].type, DC_FLUSHED);
	CHECK_EQ(dc_src_info[DC_SRC_SB_CLEAR_WB].rec_flags, DC_REC_INODE_LEVEL);
	CHECK_STR(dc_type_name(DC_ADDED), "ADDED");
	CHECK_STR(dc_type_name(DC_LOST), "LOST");
	CHECK_STR(dc_type_name(0x40), "?");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DATADIR\n", argv[0]);
		return TEST_ERROR;
	}
	data_dir = argv[1];
	test_recorded();
	test_ino4();
	test_bad_print_fmt();
	test_errors();
	test_text_edge();
	test_lookup();
	return check_exit("test-format");
}
