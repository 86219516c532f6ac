// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dc_tracedat_write() read back by trace-cmd report: a trace.dat made of
 * the format files and raw pages recorded from kernel 6.18 (tests/data)
 * must list exactly the events the page decoder finds in those pages
 * (CPU, nanosecond timestamp, pid, comm from the cmdlines, event name),
 * with no other output, and report the overrun pages' lost events.
 * No root needed; skips (77) without trace-cmd.
 *
 * usage: test-tracedat DATADIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

#include "../lib/check.h"
#include "format.h"
#include "page.h"
#include "tracedat.h"

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

/* Writes pages[cpu] (names under pagedir) as CPU data; returns the lines
 * "CPU TS PID COMM EVENT" expected from trace-cmd, sorted, and the lost count. */
static int build(const char *dir, const char *out, const char *const *pages, unsigned int ncpus,
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
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dc_tracedat_write(fd, &t) || close(fd))
			return -1;
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

/* trace-cmd report -t: "COMM-PID [CPU] SEC.NSEC: EVENT: ..." lines. */
static int report(const char *file, char ***got, size_t *ngot, uint64_t *dropped, int *other,
		  int *err_bytes)
{
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
	while (fgets(line, sizeof(line), p)) {
		char comm[64], ev[128], out[256];
		int pid, cpu;
		unsigned long long sec, nsec, n;

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

static void compare(const char *dir, const char *const *pages, unsigned int ncpus,
		    size_t min_events, bool want_lost)
{
	char out[] = "/tmp/duet-test-tracedat.XXXXXX";
	char **want = NULL, **got = NULL;
	size_t nwant = 0, ngot = 0;
	uint64_t lost = 0, dropped = 0;
	int other = 0, errb = 0, fd = mkstemp(out);

	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(build(dir, out, pages, ncpus, &want, &nwant, &lost), 0);
	CHECK_EQ(report(out, &got, &ngot, &dropped, &other, &errb), 0);
	CHECK(nwant >= min_events);
	CHECK_EQ(ngot, nwant);
	for (size_t i = 0; i < nwant && i < ngot; i++)
		CHECK_STR(got[i], want[i]);
	CHECK_EQ(other, 0);
	CHECK_EQ(errb, 0);
	CHECK_EQ(dropped, lost);
	CHECK(want_lost ? lost > 0 : lost == 0);
	for (size_t i = 0; i < nwant; i++)
		free(want[i]);
	for (size_t i = 0; i < ngot; i++)
		free(got[i]);
	free(want);
	free(got);
	unlink(out);
}

int main(int argc, char **argv)
{
	static const char *const basic[] = { "basic-cpu0-00.bin", "basic-cpu1-00.bin" };
	static const char *const overrun[] = {
		"overrun-cpu0-00.bin,overrun-cpu0-01.bin,overrun-cpu0-02.bin",
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s DATADIR\n", argv[0]);
		return TEST_ERROR;
	}
	if (system("trace-cmd -h >/dev/null 2>&1") == -1 ||
	    system("command -v trace-cmd >/dev/null 2>&1")) {
		printf("SKIP: trace-cmd missing (scripts/setup installs it)\n");
		return TEST_SKIP;
	}
	compare(argv[1], basic, 2, 50, false);
	compare(argv[1], overrun, 1, 50, true);
	return check_exit("test-tracedat");
}
