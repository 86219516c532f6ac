// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dc_tracedat_write() read back by trace-cmd report: a trace.dat made of
 * the format files and raw pages recorded from kernel 6.18 (tests/data)
 * must list exactly the events the page decoder finds in those pages
 * (CPU, nanosecond timestamp, pid, comm from the cmdlines, event name),
 * with no other output, and report the overrun pages' lost events.
 * The same pages are written as version 6, version 7 with zstd and
 * version 7 uncompressed: trace-cmd report prints the very same text for
 * the three, trace-cmd dump names version 7 and zstd, the zstd file is
 * the smallest, and the project's reader (tdread.c) gives the same
 * records for the three. Then the zstd file cut at every length and with
 * damaged frames: the reader refuses it with a reason or counts the
 * damaged pages, never crashes (the fuzz harness goes further).
 * No root needed; skips (77) without trace-cmd.
 *
 * usage: test-tracedat DATADIR [SAVE]
 * With SAVE, the first v7-zstd file is kept there too (the fuzz seed
 * tests/fuzz/seeds/tdread/duet-v7-zstd.dat was made so).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/check.h"
#include "format.h"
#include "page.h"
#include "tdread.h"
#include "tracedat.h"

/* The files written from one set of pages. */
enum { V6, V7_ZSTD, V7_NONE, NVARIANTS };
static const struct {
	unsigned int version;
	enum dc_td_compression compression;
	const char *name;
} variants[NVARIANTS] = {
	[V6] = { 6, DC_TD_COMPRESS_NONE, "v6" },
	[V7_ZSTD] = { 7, DC_TD_COMPRESS_ZSTD, "v7-zstd" },
	[V7_NONE] = { 7, DC_TD_COMPRESS_NONE, "v7-none" },
};

static const char *fmt_file[] = {
	[DC_SRC_ADD] = "mm_filemap_add_to_page_cache.format",
	[DC_SRC_DELETE] = "mm_filemap_delete_from_page_cache.format",
	[DC_SRC_WB_DIRTY] = "writeback_dirty_folio.format",
	[DC_SRC_SB_CLEAR_WB] = "sb_clear_inode_writeback.format",
};

static const char *event_of(unsigned int type)
{
	switch (type) {
	case DC_ADDED:
		return "mm_filemap_add_to_page_cache";
	case DC_REMOVED:
		return "mm_filemap_delete_from_page_cache";
	case DC_DIRTY:
		return "writeback_dirty_folio";
	case DC_FLUSHED:
		return "sb_clear_inode_writeback";
	}
	return "?";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes pages[cpu] (names under pagedir) as CPU data, into out[v] as each
 * variant v; returns the lines "CPU TS PID COMM EVENT" expected from
 * trace-cmd, sorted, and the lost count. */
static int build(const char *dir, char *const *out, const char *const *pages, unsigned int ncpus,
		 char ***want, size_t *nwant, uint64_t *lost)
{
	char fmtdir[4096], pagedir[4096];
	struct dc_layout layouts[4];
	struct dc_bdi bdi = { .name = "7:0", .devs = { 0x700000 }, .ndevs = 1 };
	struct dc_decoder_opts o = { .sz = sizeof(o), .long_size = 8, .layouts = layouts,
				     .nlayouts = 4, .bdis = &bdi, .nbdis = 1 };
	struct dc_decoder *d = NULL;
	struct dc_recbuf rb = { 0 };
	struct dc_td_blob fm[4];
	struct dc_td_system sys[2] = {
		{ "filemap", &fm[0], 2 },
		{ "writeback", &fm[2], 2 },
	};
	struct dc_tracedat t = { .page_size = 4096, .long_size = 8 };
	int fds[4] = { -1, -1, -1, -1 }, fd;
	uint64_t sizes[4] = { 0 };
	char cmd[65536] = "";
	size_t cl = 0;
	char *hp, *he;
	size_t hpl, hel;

	snprintf(fmtdir, sizeof(fmtdir), "%s/formats-6.18", dir);
	snprintf(pagedir, sizeof(pagedir), "%s/pages-6.18", dir);
	for (int s = 0; s < 4; s++) {
		char *text = check_slurp(fmtdir, fmt_file[s], &fm[s].len);

		if (!text || dc_layout_parse(s, text, fm[s].len, &layouts[s]))
			return -1;
		fm[s].data = text;
	}
	hp = check_slurp(fmtdir, "header_page", &hpl);
	he = check_slurp(fmtdir, "header_event", &hel);
	if (!hp || !he || dc_decoder_new(&o, &d))
		return -1;
	*lost = 0;
	for (unsigned int c = 0; c < ncpus; c++) {
		char tmpl[] = "/tmp/duet-test-tracedat-cpu.XXXXXX";
		const char *p = pages[c];

		fds[c] = mkstemp(tmpl);
		if (fds[c] < 0)
			return -1;
		unlink(tmpl);
		/* Several pages per CPU: "a,b". */
		while (p && *p) {
			char name[256];
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p), len;
			char *page;

			snprintf(name, sizeof(name), "%.*s", (int)n, p);
			page = check_slurp(pagedir, name, &len);
			if (!page || len != 4096 || write(fds[c], page, len) != (ssize_t)len)
				return -1;
			sizes[c] += len;
			rb.n = 0;
			if (dc_decode_page(d, page, len, (uint16_t)c, &rb) < 0)
				return -1;
			for (size_t k = 0; k < rb.n; k++) {
				const struct dc_record *r = &rb.rec[k];
				char line[256], pidc[64];

				if (r->type == DC_LOST) {
					*lost += r->count;
					continue;
				}
				snprintf(line, sizeof(line), "%u %" PRIu64 " %d task%d %s", c, r->ts,
					 r->pid, r->pid, event_of(r->type));
				*want = realloc(*want, (*nwant + 1) * sizeof(**want));
				(*want)[(*nwant)++] = strdup(line);
				snprintf(pidc, sizeof(pidc), "%d task%d\n", r->pid, r->pid);
				if (!strstr(cmd, pidc) && cl + strlen(pidc) < sizeof(cmd)) {
					strcpy(cmd + cl, pidc);
					cl += strlen(pidc);
				}
			}
			free(page);
			p = comma ? comma + 1 : NULL;
		}
	}
	qsort(*want, *nwant, sizeof(**want), cmp_str);
	t.header_page = (struct dc_td_blob){ hp, hpl };
	t.header_event = (struct dc_td_blob){ he, hel };
	t.systems = sys;
	t.nsystems = 2;
	t.cmdlines = (struct dc_td_blob){ cmd, cl };
	t.ncpus = ncpus;
	t.cpu_fd = fds;
	t.cpu_size = sizes;
	{
		static const char clock[] = "local global counter uptime perf [mono] mono_raw boot\n";
		struct dc_td_option opt = { DC_TD_OPT_TRACECLOCK, { clock, sizeof(clock) } };

		t.opts = &opt;
		t.nopts = 1;
		for (int v = 0; v < NVARIANTS; v++) {
			t.version = variants[v].version;
			t.compression = variants[v].compression;
			fd = open(out[v], O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || dc_tracedat_write(fd, &t) || close(fd))
				return -1;
		}
	}
	for (unsigned int c = 0; c < ncpus; c++)
		close(fds[c]);
	for (int s = 0; s < 4; s++)
		free((void *)fm[s].data);
	free(hp);
	free(he);
	dc_recbuf_free(&rb);
	dc_decoder_free(d);
	return 0;
}

/* trace-cmd report -t: "COMM-PID [CPU] SEC.NSEC: EVENT: ..." lines; all
 * its output in *text. */
static int report(const char *file, char ***got, size_t *ngot, uint64_t *dropped, int *other,
		  int *err_bytes, char **text)
{
	size_t tlen = 0;

	char cmd[4200], line[4096], errf[] = "/tmp/duet-test-tracedat-err.XXXXXX";
	FILE *p;
	int efd = mkstemp(errf);

	if (efd < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "trace-cmd report -t '%s' 2>'%s'", file, errf);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	*dropped = 0;
	*other = 0;
	*text = calloc(1, 1);
	while (fgets(line, sizeof(line), p)) {
		char comm[64], ev[128], out[256];
		int pid, cpu;
		unsigned long long sec, nsec, n;
		size_t ll = strlen(line);
		char *nt = realloc(*text, tlen + ll + 1);

		if (!nt)
			return -1;
		memcpy(nt + tlen, line, ll + 1);
		*text = nt;
		tlen += ll;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, " %63[^ ] [%d] %llu.%llu: %127[^:]:", comm, &cpu, &sec, &nsec, ev) == 5) {
			char *dash = strrchr(comm, '-');

			if (!dash)
				return -1;
			*dash = '\0';
			pid = atoi(dash + 1);
			snprintf(out, sizeof(out), "%d %llu %d %s %s", cpu, sec * 1000000000ull + nsec,
				 pid, comm, ev);
			*got = realloc(*got, (*ngot + 1) * sizeof(**got));
			(*got)[(*ngot)++] = strdup(out);
		} else if (sscanf(line, "CPU:%*d [%llu EVENTS DROPPED]", &n) == 1) {
			*dropped += n;
		} else if (strncmp(line, "cpus=", 5)) {
			fprintf(stderr, "trace-cmd printed: %s\n", line);
			(*other)++;
		}
	}
	if (pclose(p))
		(*other)++;
	*err_bytes = (int)lseek(efd, 0, SEEK_END);
	close(efd);
	unlink(errf);
	qsort(*got, *ngot, sizeof(**got), cmp_str);
	return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (b && read(fd, b, (size_t)st.st_size) != st.st_size) {
		free(b);
		b = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

/* The project's reader on buf: 0 and the records, or the open's error and *why. */
static int tdread(const uint8_t *buf, size_t len, struct dc_recbuf *rb,
		  struct dc_decode_stats *st, int *version, const char **why)
{
	struct dc_bdi bdi = { .name = "7:0", .devs = { 0x700000 }, .ndevs = 1 };
	struct dc_tdread *t;
	int r = dc_tdread_open(buf, len, &t, why);

	if (r)
		return r;
	*version = dc_tdread_version(t);
	rb->n = 0;
	r = dc_tdread_decode(t, &bdi, 1, rb, st);
	dc_tdread_free(t);
	return r;
}

static bool same_records(const struct dc_recbuf *a, const struct dc_recbuf *b)
{
	return a->n == b->n && !memcmp(a->rec, b->rec, a->n * sizeof(*a->rec));
}

/* trace-cmd dump --summary's lines for the version and the compression
 * (algo NULL: no compression line, as for version 6). */
static void check_dump(const char *file, const char *version, const char *algo)
{
	char cmd[4200], line[512];
	bool v = false, z = false;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "trace-cmd dump --summary -i '%s' 2>&1", file);
	p = popen(cmd, "r");
	CHECK(p);
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		char want[64];

		snprintf(want, sizeof(want), "\t\t%s\t[Version]\n", version);
		v |= !strcmp(line, want);
		if (algo) {
			snprintf(want, sizeof(want), "\t\t%s\t[Compression algorithm]\n", algo);
			z |= !strcmp(line, want);
		} else {
			z |= !!strstr(line, "[Compression algorithm]");
		}
	}
	CHECK_EQ(pclose(p), 0);
	CHECK(v, "trace-cmd dump --summary of %s: no line \"%s [Version]\"", file, version);
	CHECK(algo ? z : !z, "trace-cmd dump --summary of %s: line \"%s [Compression algorithm]\" %s",
	      file, algo ? algo : "any", algo ? "missing" : "present");
}

/*
 * The zstd file cut short at every length: the reader refuses it with a
 * reason, the strings section (which it does not need) included, except
 * cut right before that last section, where the file ends between two
 * sections and it reads every record. Then damaged frames: a byte flipped inside the event
 * formats section is refused as corrupt; one inside the first page chunk
 * costs that chunk's pages, counted, and the other records are kept.
 */
static void check_damage(const uint8_t *buf, size_t len, const struct dc_recbuf *full)
{
	struct dc_recbuf rb = { 0 };
	struct dc_decode_stats st;
	const char *why;
	int version, r, refused = 0, whole = 0;
	uint8_t *copy = malloc(len);
	const uint8_t *z;

	CHECK(copy);
	if (!copy)
		return;
	for (size_t cut = 0; cut < len; cut++) {
		memcpy(copy, buf, cut);
		why = NULL;
		r = tdread(copy, cut, &rb, &st, &version, &why);
		if (r) {
			refused++;
			CHECK(r == -EBADMSG && why, "cut at %zu of %zu: %d, %s", cut, len, r,
			      why ? why : "no reason");
		} else {
			whole++;
			CHECK(same_records(&rb, full) && !st.bad_pages,
			      "cut at %zu of %zu: read, but %zu records (of %zu), %" PRIu64
			      " bad pages", cut, len, rb.n, full->n, st.bad_pages);
		}
	}
	printf("v7-zstd cut at each of %zu lengths: %d refused with a reason, %d read whole (cut before the strings)\n",
	       len, refused, whole);
	CHECK(refused == (int)len - 1 && whole == 1, "%d refused, %d read whole", refused, whole);

	/* The event formats section: the 18 0 1 0 section header, then sizes and the frame. */
	memcpy(copy, buf, len);
	z = NULL;
	for (size_t i = 37; i + 28 < len && !z; i++)
		if (!memcmp(copy + i, "\x12\0\x01\0", 4) && !memcmp(copy + i + 24, "\x28\xb5\x2f\xfd", 4))
			z = copy + i + 24;
	CHECK(z, "no compressed event formats section");
	if (z) {
		copy[(z - copy) + 40] ^= 0x55;
		why = NULL;
		r = tdread(copy, len, &rb, &st, &version, &why);
		CHECK(r == -EBADMSG && why && strstr(why, "does not decompress"), "%d %s", r,
		      why ? why : "no reason");
	}
	/*
	 * CPU 0's first chunk: from the page boundary after the flyrecord
	 * section's header (id 3, compressed), past the chunk count and sizes.
	 */
	memcpy(copy, buf, len);
	z = NULL;
	for (size_t i = 37; i + 16 < len && !z; i++) {
		size_t at = (i + 16 + 4095) / 4096 * 4096 + 4 + 8;

		if (!memcmp(copy + i, "\x03\0\x01\0", 4) && at + 4 <= len &&
		    !memcmp(copy + at, "\x28\xb5\x2f\xfd", 4))
			z = copy + at;
	}
	CHECK(z, "no compressed chunk at the start of the page data");
	if (z) {
		copy[(z - copy) + 20] ^= 0x55;
		r = tdread(copy, len, &rb, &st, &version, &why);
		CHECK_EQ(r, 0);
		CHECK(st.bad_pages >= 1 && rb.n < full->n, "a damaged chunk: %" PRIu64
		      " bad pages, %zu of %zu records", st.bad_pages, rb.n, full->n);
	}
	dc_recbuf_free(&rb);
	free(copy);
}

static const char *save_to;

static void compare(const char *dir, const char *const *pages, unsigned int ncpus,
		    size_t min_events, bool want_lost)
{
	char *out[NVARIANTS], *text[NVARIANTS] = { 0 };
	struct dc_recbuf rb[NVARIANTS] = { 0 };
	size_t fsize[NVARIANTS] = { 0 };
	uint8_t *bytes[NVARIANTS] = { 0 };
	char **want = NULL;
	size_t nwant = 0;
	uint64_t lost = 0;

	for (int v = 0; v < NVARIANTS; v++) {
		char tmpl[] = "/tmp/duet-test-tracedat.XXXXXX";
		int fd = mkstemp(tmpl);

		CHECK(fd >= 0);
		close(fd);
		out[v] = strdup(tmpl);
	}
	CHECK_EQ(build(dir, out, pages, ncpus, &want, &nwant, &lost), 0);
	CHECK(nwant >= min_events);
	CHECK(want_lost ? lost > 0 : lost == 0);
	for (int v = 0; v < NVARIANTS; v++) {
		char **got = NULL;
		size_t ngot = 0;
		uint64_t dropped = 0;
		int other = 0, errb = 0, version = 0;
		struct dc_decode_stats st;
		const char *why = NULL;

		CHECK_EQ(report(out[v], &got, &ngot, &dropped, &other, &errb, &text[v]), 0);
		CHECK_EQ(ngot, nwant);
		for (size_t i = 0; i < nwant && i < ngot; i++)
			CHECK_STR(got[i], want[i]);
		CHECK(other == 0 && errb == 0, "%s: trace-cmd printed %d other lines, %d bytes on stderr",
		      variants[v].name, other, errb);
		CHECK_EQ(dropped, lost);
		/* trace-cmd prints the same text, whatever the version. */
		if (v != V6)
			CHECK(text[v] && text[V6] && !strcmp(text[v], text[V6]),
			      "trace-cmd report of %s differs from version 6's", variants[v].name);
		bytes[v] = read_file(out[v], &fsize[v]);
		CHECK(bytes[v]);
		CHECK_EQ(tdread(bytes[v], fsize[v], &rb[v], &st, &version, &why), 0);
		CHECK_EQ(version, (int)variants[v].version);
		CHECK(same_records(&rb[v], &rb[V6]), "%s: the reader's records differ from version 6's",
		      variants[v].name);
		for (size_t i = 0; i < ngot; i++)
			free(got[i]);
		free(got);
	}
	check_dump(out[V6], "6", NULL);
	check_dump(out[V7_ZSTD], "7", "zstd");
	check_dump(out[V7_NONE], "7", "none");
	printf("%zu events, %u CPU(s): v6 %zu bytes, v7-zstd %zu bytes, v7-none %zu bytes\n", nwant,
	       ncpus, fsize[V6], fsize[V7_ZSTD], fsize[V7_NONE]);
	CHECK(fsize[V7_ZSTD] < fsize[V6], "v7-zstd %zu bytes, v6 %zu", fsize[V7_ZSTD], fsize[V6]);
	if (bytes[V7_ZSTD])
		check_damage(bytes[V7_ZSTD], fsize[V7_ZSTD], &rb[V6]);
	if (save_to && bytes[V7_ZSTD]) {
		int fd = open(save_to, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		CHECK(fd >= 0 && write(fd, bytes[V7_ZSTD], fsize[V7_ZSTD]) == (ssize_t)fsize[V7_ZSTD] &&
		      !close(fd));
		save_to = NULL;
	}
	for (size_t i = 0; i < nwant; i++)
		free(want[i]);
	free(want);
	for (int v = 0; v < NVARIANTS; v++) {
		unlink(out[v]);
		free(out[v]);
		free(text[v]);
		free(bytes[v]);
		dc_recbuf_free(&rb[v]);
	}
}

int main(int argc, char **argv)
{
	static const char *const basic[] = { "basic-cpu0-00.bin", "basic-cpu1-00.bin" };
	/* A CPU without data (the first, then the last) in each version. */
	static const char *const first_empty[] = { "", "basic-cpu1-00.bin" };
	static const char *const last_empty[] = { "basic-cpu0-00.bin", "" };
	static const char *const overrun[] = {
		"overrun-cpu0-00.bin,overrun-cpu0-01.bin,overrun-cpu0-02.bin",
	};

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s DATADIR [SAVE]\n", argv[0]);
		return TEST_ERROR;
	}
	if (system("trace-cmd -h >/dev/null 2>&1") == -1 ||
	    system("command -v trace-cmd >/dev/null 2>&1")) {
		printf("SKIP: trace-cmd missing (scripts/setup installs it)\n");
		return TEST_SKIP;
	}
	save_to = argc == 3 ? argv[2] : NULL;
	compare(argv[1], basic, 2, 50, false);
	compare(argv[1], first_empty, 2, 1, false);
	compare(argv[1], last_empty, 2, 50, false);
	compare(argv[1], overrun, 1, 50, true);
	return check_exit("test-tracedat");
}
