// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The trace.dat reader on recorded fixtures (tests/data/tracedat/README):
 * exact records per file, version 6 and 7 (zstd) giving the same records,
 * an empty recording, every truncation and foreign files refused.
 */
#include <errno.h>

#include "../lib/check.h"
#include "tdread.h"

static const struct dc_bdi bdis[] = {
	{ .name = "7:0", .devs = { 0x700000 }, .ndevs = 1 },
};

struct sums {
	uint64_t added, removed, dirty, flush_events, other;
};

static struct sums sum(const struct dc_recbuf *b, uint64_t ino)
{
	struct sums s = { 0 };

	for (size_t i = 0; i < b->n; i++) {
		const struct dc_record *r = &b->rec[i];

		if (r->ino != ino || r->type == DC_TDR_AUX || r->type == DC_LOST)
			continue;
		if (r->dev != 0x700000)
			s.other++;
		else if (r->type == DC_ADDED)
			s.added += r->count;
		else if (r->type == DC_REMOVED)
			s.removed += r->count;
		else if (r->type == DC_DIRTY)
			s.dirty += r->count;
		else if (r->type == DC_FLUSHED && (r->flags & DC_REC_INODE_LEVEL) && !r->count)
			s.flush_events++;
		else
			s.other++;
	}
	return s;
}

static int load(const char *dir, const char *name, struct dc_recbuf *out,
		struct dc_tdread **tdp, char **bufp)
{
	size_t len;
	char *buf = check_slurp(dir, name, &len);
	struct dc_tdread *td;
	struct dc_decode_stats st;
	const char *why;
	int r;

	if (!buf) {
		fprintf(stderr, "cannot read %s/%s\n", dir, name);
		return -ENOENT;
	}
	r = dc_tdread_open(buf, len, &td, &why);
	if (r) {
		fprintf(stderr, "%s: %s\n", name, why);
		free(buf);
		return r;
	}
	r = dc_tdread_decode(td, bdis, 1, out, &st);
	CHECK_EQ(r, 0);
	CHECK_EQ(st.bad_pages, 0);
	CHECK_EQ(st.lost, 0);
	CHECK_EQ(st.unmapped, 0);
	*tdp = td;
	*bufp = buf;
	return 0;
}

static void check_workload(const char *dir, const char *name, struct dc_recbuf *b)
{
	struct dc_tdread *td;
	char *buf;
	struct sums s;
	int last_rm_pid = -1;

	if (load(dir, name, b, &td, &buf)) {
		CHECK(0);
		return;
	}
	CHECK(dc_tdread_has(td, DC_SRC_ADD));
	CHECK(dc_tdread_has(td, DC_SRC_WB_DIRTY));
	CHECK(dc_tdread_has(td, DC_SRC_SB_CLEAR_WB));
	CHECK(!dc_tdread_has(td, DC_SRC_P_DIRTY));
	CHECK(dc_tdread_has_aux(td, DC_AUX_DIRECT_BEGIN));
	CHECK_EQ(dc_tdread_ncpus(td), 2);
	CHECK_STR(dc_tdread_clock(td), "local");
	s = sum(b, 13);
	CHECK_EQ(s.added, 40);
	CHECK_EQ(s.removed, 40);
	CHECK_EQ(s.dirty, 32);
	CHECK_EQ(s.flush_events, 1);
	CHECK_EQ(s.other, 0);
	s = sum(b, 14);
	CHECK_EQ(s.added, 16);
	CHECK_EQ(s.removed, 16);
	CHECK_EQ(s.dirty, 16);
	CHECK_EQ(s.flush_events, 1);
	CHECK_EQ(s.other, 0);
	for (size_t i = 1; i < b->n; i++)
		CHECK(b->rec[i - 1].ts <= b->rec[i].ts);
	for (size_t i = 0; i < b->n; i++)
		if (b->rec[i].ino == 14 && b->rec[i].type == DC_REMOVED)
			last_rm_pid = b->rec[i].pid;
	CHECK_STR(dc_tdread_comm(td, last_rm_pid), "rm");
	CHECK(!dc_tdread_comm(td, -5));
	dc_tdread_free(td);
	free(buf);
}

/* Every prefix (in steps) is refused without a crash; v6 always is. */
static void check_prefixes(const char *dir, const char *name, bool v6, size_t step)
{
	size_t len;
	char *buf = check_slurp(dir, name, &len);
	unsigned int refused = 0, tried = 0;

	if (!buf) {
		CHECK(0);
		return;
	}
	for (size_t n = 0; n < len; n += step) {
		/* An exact copy, so a sanitizer would see any overread. */
		char *p = malloc(n ? n : 1);
		struct dc_tdread *td;
		struct dc_recbuf out = { 0 };
		const char *why = NULL;
		int r;

		memcpy(p, buf, n);
		r = dc_tdread_open(p, n, &td, &why);
		tried++;
		if (r) {
			refused++;
			CHECK(r == -EBADMSG || r == -EOPNOTSUPP);
			CHECK(why != NULL);
		} else {
			CHECK_EQ(dc_tdread_decode(td, bdis, 1, &out, NULL), 0);
			dc_tdread_free(td);
			dc_recbuf_free(&out);
		}
		free(p);
	}
	if (v6)
		CHECK_EQ(refused, tried);
	free(buf);
}

static void check_foreign(void)
{
	static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
	static const char perf[] = "PERFILE2\x68\0\0\0\0\0\0\0";
	static const char v8[] = "\x17\x08\x44tracing8\0\0\x08\0\x10\0\0";
	struct dc_tdread *td = NULL;
	const char *why;

	CHECK_EQ(dc_tdread_open("", 0, &td, &why), -EBADMSG);
	CHECK_STR(why, "empty file");
	CHECK_EQ(dc_tdread_open(png, sizeof(png) - 1, &td, &why), -EBADMSG);
	CHECK(strstr(why, "not a trace.dat"));
	CHECK_EQ(dc_tdread_open(perf, sizeof(perf) - 1, &td, &why), -EBADMSG);
	CHECK(strstr(why, "perf.data"));
	CHECK_EQ(dc_tdread_open(v8, sizeof(v8) - 1, &td, &why), -EOPNOTSUPP);
	CHECK(strstr(why, "version"));
	CHECK(!td);
}

int main(int argc, char **argv)
{
	char dir[4096];
	struct dc_recbuf b6 = { 0 }, b7 = { 0 }, be = { 0 };
	struct dc_tdread *td;
	char *buf;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DATA-DIR\n", argv[0]);
		return TEST_ERROR;
	}
	snprintf(dir, sizeof(dir), "%s/tracedat", argv[1]);
	check_workload(dir, "workload-v6.dat", &b6);
	check_workload(dir, "workload-v7.dat", &b7);
	CHECK_EQ(b6.n, b7.n);
	CHECK(b6.n == b7.n && !memcmp(b6.rec, b7.rec, b6.n * sizeof(*b6.rec)));
	if (!load(dir, "empty-v6.dat", &be, &td, &buf)) {
		CHECK_EQ(be.n, 0);
		CHECK(!dc_tdread_comm(td, 1));
		dc_tdread_free(td);
		free(buf);
	} else {
		CHECK(0);
	}
	check_prefixes(dir, "workload-v6.dat", true, 97);
	check_prefixes(dir, "workload-v7.dat", false, 31);
	check_foreign();
	dc_recbuf_free(&b6);
	dc_recbuf_free(&b7);
	dc_recbuf_free(&be);
	return check_exit("test-tdread");
}
