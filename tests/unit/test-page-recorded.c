// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dc_decode_page() on real pages recorded from kernel 6.18 (see
 * record-fixtures): the records must be exactly those that the
 * independent reference decoder refdecode.py wrote to expected.txt,
 * timestamps included; with our walk, with kbuffer, and in pieces (one
 * data event at a time, dc_decode_page_piece(), as the mapped reader
 * may take a sub-buffer the writer is filling).
 *
 * usage: test-page-recorded DATADIR
 */
#include <dirent.h>
#include <errno.h>

#include "../lib/check.h"
#include "format.h"
#include "page.h"
#include "pagebuild.h"

static const char *srcs[] = {
	[DC_SRC_ADD] = "mm_filemap_add_to_page_cache.format",
	[DC_SRC_DELETE] = "mm_filemap_delete_from_page_cache.format",
	[DC_SRC_WB_DIRTY] = "writeback_dirty_folio.format",
	[DC_SRC_SB_CLEAR_WB] = "sb_clear_inode_writeback.format",
};

/* The page one data event at a time (test-page-built.c says why so). */
static int decode_in_pieces(struct dc_decoder *d, const void *page, size_t len, uint16_t cpu,
			    struct dc_recbuf *out)
{
	return pb_decode_in_pieces(d, page, len, 8, cpu, out);
}

static int is_page(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 4 && !strcmp(e->d_name + n - 4, ".bin");
}

/* bdi.txt: "NAME KDEV..." per line. */
static size_t load_bdis(const char *dir, struct dc_bdi *b, size_t max)
{
	char *text = check_slurp(dir, "bdi.txt", NULL), *save = NULL, *line;
	size_t n = 0;

	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tok, *s2 = NULL;

		memset(&b[n], 0, sizeof(b[n]));
		tok = strtok_r(line, " ", &s2);
		if (!tok)
			continue;
		snprintf(b[n].name, sizeof(b[n].name), "%s", tok);
		while ((tok = strtok_r(NULL, " ", &s2)) && b[n].ndevs < DC_BDI_MAX_DEVS)
			b[n].devs[b[n].ndevs++] = (uint32_t)strtoul(tok, NULL, 0);
		n++;
	}
	free(text);
	return n;
}

int main(int argc, char **argv)
{
	struct dc_layout layouts[4];
	struct dc_bdi bdis[8];
	struct dc_decoder_opts o = { .sz = sizeof(o), .long_size = 8 };
	struct dc_decoder *d = NULL;
	struct dc_recbuf out = { 0 };
	struct dirent **ents = NULL;
	char fmtdir[4096], pagedir[4096], *expected, *exp_line, *save = NULL;
	uint64_t want_lost = 0;
	unsigned int lines = 0;
	int n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DATADIR\n", argv[0]);
		return TEST_ERROR;
	}
	snprintf(fmtdir, sizeof(fmtdir), "%s/formats-6.18", argv[1]);
	snprintf(pagedir, sizeof(pagedir), "%s/pages-6.18", argv[1]);
	for (int s = 0; s < 4; s++) {
		char *text;
		size_t len;

		text = check_slurp(fmtdir, srcs[s], &len);
		if (!text)
			return TEST_ERROR;
		CHECK_EQ(dc_layout_parse(s, text, len, &layouts[s]), 0);
		free(text);
	}
	o.layouts = layouts;
	o.nlayouts = 4;
	o.bdis = bdis;
	o.nbdis = load_bdis(pagedir, bdis, 8);
	CHECK_EQ(o.nbdis, 1);
	/* Both decoders: our own walk, then kbuffer (the reference), then in pieces. */
	for (int k = 0; k < 3; k++) {
		o.flags = k == 1 ? DC_DECODE_KBUFFER : 0;
		want_lost = 0;
		lines = 0;
		save = NULL;
		CHECK_EQ(dc_decoder_new(&o, &d), 0);
		expected = check_slurp(pagedir, "expected.txt", NULL);
		if (!d || !expected)
			return TEST_ERROR;
		exp_line = strtok_r(expected, "\n", &save);

		n = scandir(pagedir, &ents, is_page, alphasort);
		CHECK_EQ(n, 5);
		for (int i = 0; i < n; i++) {
			const char *name = ents[i]->d_name, *c = strstr(name, "cpu");
			size_t len;
			char *page = check_slurp(pagedir, name, &len);
			uint16_t cpu = c ? (uint16_t)atoi(c + 3) : 0;
			int r;

			if (!page)
				continue;
			CHECK_EQ(len, 4096);
			out.n = 0;
			r = k == 2 ? decode_in_pieces(d, page, len, cpu, &out) :
				     dc_decode_page(d, page, len, cpu, &out);
			CHECK(r > 0);
			CHECK_EQ((size_t)r, out.n);
			for (size_t k = 0; k < out.n; k++) {
				const struct dc_record *rec = &out.rec[k];
				char got[512];

				snprintf(got, sizeof(got), "%s %s %" PRIu64 " %d %u %" PRIu64 " %" PRIu64
					 " %" PRIu64 " %u", name, dc_type_name(rec->type), rec->ts,
					 rec->pid, rec->dev, rec->ino, rec->index, rec->count,
					 rec->flags);
				CHECK_STR(exp_line ? exp_line : "(end of expected.txt)", got);
				CHECK_EQ(rec->cpu, cpu);
				CHECK_EQ(rec->reserved, 0);
				if (rec->type == DC_LOST)
					want_lost += rec->count;
				if (exp_line) {
					lines++;
					exp_line = strtok_r(NULL, "\n", &save);
				}
			}
			free(page);
			free(ents[i]);
		}
		free(ents);
		/* Every expected record was produced. */
		CHECK(exp_line == NULL);
		CHECK_EQ(lines, 194);
		CHECK_EQ(dc_decoder_stats(d)->pages, 5);
		CHECK_EQ(dc_decoder_stats(d)->records, 194);
		CHECK_EQ(dc_decoder_stats(d)->unknown, 0);
		CHECK_EQ(dc_decoder_stats(d)->short_events, 0);
		CHECK_EQ(dc_decoder_stats(d)->unmapped, 0);
		CHECK_EQ(dc_decoder_stats(d)->lost_unknown, 0);
		/* The overrun page's count matched per_cpu/cpu0/stats "overrun". */
		CHECK_EQ(dc_decoder_stats(d)->lost, want_lost);
		CHECK_EQ(want_lost, 1932);
		free(expected);
		dc_decoder_free(d);
		d = NULL;
	}
	dc_recbuf_free(&out);
	return check_exit("test-page-recorded");
}
