// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet record's trace.dat (record-cmd.h): assembled from the pages the
 * recording spooled, the format files, and the command names of every
 * pid in the pages, and written by the core's writer (tracedat.h).
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <traceevent/event-parse.h>
#include <traceevent/kbuffer.h>

#include "record-cmd.h"
#include "tracedat.h"

static void comm_of(int pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

void record_see_pid(struct rec *r, int pid)
{
	struct pid_ent *e;

	if (pid <= 0)
		return;
	HASH_FIND_INT(r->pids, &pid, e);
	if (e)
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->pid = pid;
	comm_of(pid, e->comm, sizeof(e->comm));
	HASH_ADD_INT(r->pids, pid, e);
}

static int read_all(const char *path, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	FILE *f = fopen(path, "re");
	size_t got;

	if (!f || !b) {
		int e = f ? ENOMEM : errno;

		free(b);
		if (f)
			fclose(f);
		return -e;
	}
	while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n < 1024) {
			char *nb = realloc(b, cap * 2);

			if (!nb) {
				free(b);
				fclose(f);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
	}
	fclose(f);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

/* Growable list of format texts for the file. */
struct fmt_set {
	struct dc_td_system sys[16];
	struct dc_td_blob *blobs[16];
	size_t nsys;
	struct dc_td_blob *ftrace;
	size_t nftrace;
};

static int fmt_add(struct fmt_set *fs, const char *system, const char *name)
{
	struct dc_td_system *s = NULL;
	struct dc_td_blob *nb;
	char *text;
	size_t len;
	int r;

	r = dc_event_format(system, name, &text, &len);
	if (r)
		return r;
	for (size_t i = 0; i < fs->nsys; i++)
		if (!strcmp(fs->sys[i].name, system))
			s = &fs->sys[i];
	if (!s) {
		if (fs->nsys == 16) {
			free(text);
			return -E2BIG;
		}
		s = &fs->sys[fs->nsys++];
		s->name = strdup(system);
		s->n = 0;
		fs->blobs[s - fs->sys] = NULL;
	}
	nb = realloc(fs->blobs[s - fs->sys], (s->n + 1) * sizeof(*nb));
	if (!nb) {
		free(text);
		return -ENOMEM;
	}
	fs->blobs[s - fs->sys] = nb;
	nb[s->n].data = text;
	nb[s->n].len = len;
	s->n++;
	s->formats = nb;
	return 0;
}

static int fmt_ftrace(struct fmt_set *fs, const char *top)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/events/ftrace", top);
	d = opendir(dir);
	if (!d)
		return 0;	/* no ftrace events: an empty list is valid */
	while ((de = readdir(d))) {
		char path[PATH_MAX + 300];
		struct dc_td_blob *nb;
		char *text;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/format", dir, de->d_name);
		if (read_all(path, &text, &len))
			continue;
		nb = realloc(fs->ftrace, (fs->nftrace + 1) * sizeof(*nb));
		if (!nb) {
			free(text);
			closedir(d);
			return -ENOMEM;
		}
		fs->ftrace = nb;
		nb[fs->nftrace].data = text;
		nb[fs->nftrace++].len = len;
	}
	closedir(d);
	return 0;
}

static void fmt_free(struct fmt_set *fs)
{
	for (size_t i = 0; i < fs->nsys; i++) {
		for (size_t j = 0; j < fs->sys[i].n; j++)
			free((void *)fs->blobs[i][j].data);
		free(fs->blobs[i]);
		free((void *)fs->sys[i].name);
	}
	for (size_t i = 0; i < fs->nftrace; i++)
		free((void *)fs->ftrace[i].data);
	free(fs->ftrace);
}

/* A growable string. */
struct sbuf {
	char *s;
	size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int w;

	for (;;) {
		va_start(ap, fmt);
		w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (w < 0)
			return;
		if (b->s && b->n + (size_t)w < b->cap) {
			b->n += (size_t)w;
			return;
		}
		size_t nc = (b->cap ? b->cap : 4096);

		while (nc <= b->n + (size_t)w)
			nc *= 2;
		char *ns = realloc(b->s, nc);

		if (!ns)
			return;
		b->s = ns;
		b->cap = nc;
	}
}

/* common_pid's place, from a format file (all events share it). */
static int common_pid_field(const struct fmt_set *fs, int *off, int *size)
{
	int r = -EPROTO;

	for (size_t i = 0; i < fs->nsys && r; i++) {
		for (size_t j = 0; j < fs->sys[i].n && r; j++) {
			struct tep_handle *tep = tep_alloc();
			struct tep_event *ev = NULL;
			struct tep_format_field *f;
			const char *text = fs->sys[i].formats[j].data;
			size_t len = fs->sys[i].formats[j].len;
			const char *pf = memmem(text, len, "\nprint fmt:", 11);

			if (!tep)
				return -ENOMEM;
			/* The fields are enough (see format.c). */
			if (pf)
				len = (size_t)(pf - text) + 1;
			if (tep_parse_format(tep, &ev, text, len, fs->sys[i].name) ==
				    TEP_ERRNO__SUCCESS && ev &&
			    (f = tep_find_common_field(ev, "common_pid")) && f->size == 4) {
				*off = f->offset;
				*size = f->size;
				r = 0;
			}
			tep_free(tep);
		}
	}
	return r;
}

/*
 * The pids of every stored event, reclaim events included (the live
 * decoder only sees the page-cache ones). Pages are checked by the page
 * decoder before kbuffer walks them.
 */
static int collect_pids(struct rec *r, const struct fmt_set *fs)
{
	struct dc_decoder_opts dopts = { .sz = sizeof(dopts), .long_size = sizeof(long) };
	struct dc_decoder *check = NULL;
	struct kbuffer *kb = NULL;
	struct dc_recbuf junk = { 0 };
	size_t psz = r->sp[0].page_size;
	char *page = malloc(psz);
	int off, size, ret;

	ret = common_pid_field(fs, &off, &size);
	if (!ret)
		ret = dc_decoder_new(&dopts, &check);
	if (!ret) {
		kb = kbuffer_alloc(sizeof(long) == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
				   __BYTE_ORDER == __LITTLE_ENDIAN ? KBUFFER_ENDIAN_LITTLE :
								    KBUFFER_ENDIAN_BIG);
		if (!kb || !page)
			ret = -ENOMEM;
	}
	for (unsigned int c = 0; !ret && c < r->ncpus; c++) {
		for (uint64_t at = 0; at < r->sp[c].size; at += psz) {
			unsigned long long ts;
			void *data;

			if (pread(r->sp[c].fd, page, psz, (off_t)at) != (ssize_t)psz)
				break;
			junk.n = 0;
			if (dc_decode_page(check, page, psz, (uint16_t)c, &junk) < 0 ||
			    kbuffer_load_subbuffer(kb, page) < 0)
				continue;
			for (data = kbuffer_read_event(kb, &ts); data;
			     data = kbuffer_next_event(kb, &ts)) {
				int32_t pid;

				if ((unsigned int)kbuffer_event_size(kb) < (unsigned int)(off + size))
					continue;
				memcpy(&pid, (char *)data + off, 4);
				record_see_pid(r, pid);
			}
		}
	}
	dc_recbuf_free(&junk);
	dc_decoder_free(check);
	if (kb)
		kbuffer_free(kb);
	free(page);
	return ret;
}

/*
 * cmdlines: the kernel's saved_cmdlines (comm at event time) for the pids
 * seen, then the comms read from /proc for those the kernel did not keep.
 */
static void build_cmdlines(struct rec *r, const char *top, struct sbuf *out)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/saved_cmdlines", top);
	if (!read_all(path, &text, &len)) {
		char *line, *save = NULL;

		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			int pid;
			char comm[64];
			struct pid_ent *e;

			if (sscanf(line, "%d %63[^\n]", &pid, comm) != 2)
				continue;
			HASH_FIND_INT(r->pids, &pid, e);
			if (e && strcmp(comm, "<...>"))
				snprintf(e->comm, sizeof(e->comm), "%s", comm);
		}
		free(text);
	}
	for (struct pid_ent *e = r->pids; e; e = e->hh.next)
		if (e->comm[0])
			sb_printf(out, "%d %s\n", e->pid, e->comm);
}

/* Reads a file of the instance (NULL when unreadable). */
char *record_inst_file(const char *top, const char *inst, const char *file, size_t *len)
{
	char path[PATH_MAX];
	char *text;
	size_t n;

	snprintf(path, sizeof(path), "%s/instances/%s/%s", top, inst, file);
	if (read_all(path, &text, &n))
		return NULL;
	if (len)
		*len = n;
	return text;
}

int record_write_trace(struct rec *r, int fd, const char *top, const char *const *extras,
		       char **stats_text)
{
	struct fmt_set fs = { 0 };
	struct dc_tracedat td = { 0 };
	struct dc_td_option opts[64];
	struct sbuf cmd = { 0 };
	char path[PATH_MAX], *hp = NULL, *he = NULL, *clock = NULL;
	char uts_s[512], ver[64];
	struct utsname uts;
	size_t hpl = 0, hel = 0, nopts = 0;
	int *fds = NULL;
	uint64_t *sizes = NULL;
	int ret;

	for (int s = 0; s < DC_SRC_NR; s++) {
		if (!dc_live_uses(r->live, s))
			continue;
		ret = fmt_add(&fs, dc_src_info[s].system, dc_src_info[s].name);
		if (ret)
			goto out;
	}
	for (const char *const *e = extras; e && *e; e++) {
		char sys[128];
		const char *sl = strchr(*e, '/');

		snprintf(sys, sizeof(sys), "%.*s", (int)(sl - *e), *e);
		ret = fmt_add(&fs, sys, sl + 1);
		if (ret)
			goto out;
	}
	ret = fmt_ftrace(&fs, top);
	if (ret)
		goto out;
	snprintf(path, sizeof(path), "%s/events/header_page", top);
	ret = read_all(path, &hp, &hpl);
	if (!ret) {
		snprintf(path, sizeof(path), "%s/events/header_event", top);
		ret = read_all(path, &he, &hel);
	}
	if (ret)
		goto out;
	if (r->sp[0].page_size && collect_pids(r, &fs))
		fprintf(stderr, "duet record: could not list the pids of the reclaim events: their comms may be missing\n");
	build_cmdlines(r, top, &cmd);

	clock = record_inst_file(top, dc_live_instance_name(r->live), "trace_clock", NULL);
	if (clock)
		opts[nopts++] = (struct dc_td_option){ DC_TD_OPT_TRACECLOCK,
						       { clock, strlen(clock) + 1 } };
	for (unsigned int c = 0; c < r->ncpus && nopts < 60; c++)
		if (stats_text[c])
			opts[nopts++] = (struct dc_td_option){
				DC_TD_OPT_CPUSTAT, { stats_text[c], strlen(stats_text[c]) + 1 }
			};
	if (!uname(&uts)) {
		snprintf(uts_s, sizeof(uts_s), "%s %s %s %s %s", uts.sysname, uts.nodename,
			 uts.release, uts.version, uts.machine);
		opts[nopts++] = (struct dc_td_option){ DC_TD_OPT_UNAME,
						       { uts_s, strlen(uts_s) + 1 } };
	}
	snprintf(ver, sizeof(ver), "duet %s", DUET_VERSION);
	opts[nopts++] = (struct dc_td_option){ DC_TD_OPT_VERSION, { ver, strlen(ver) + 1 } };

	fds = calloc(r->ncpus, sizeof(*fds));
	sizes = calloc(r->ncpus, sizeof(*sizes));
	if (!fds || !sizes) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned int c = 0; c < r->ncpus; c++) {
		fds[c] = r->sp[c].fd;
		sizes[c] = r->sp[c].size;
	}
	td.version = r->file_version;
	td.compression = r->compression;
	td.page_size = (uint32_t)r->sp[0].page_size;
	td.long_size = sizeof(long);
	td.header_page = (struct dc_td_blob){ hp, hpl };
	td.header_event = (struct dc_td_blob){ he, hel };
	td.ftrace = fs.ftrace;
	td.nftrace = fs.nftrace;
	td.systems = fs.sys;
	td.nsystems = fs.nsys;
	td.cmdlines = (struct dc_td_blob){ cmd.s ? cmd.s : "", cmd.n };
	td.opts = opts;
	td.nopts = nopts;
	td.ncpus = r->ncpus;
	td.cpu_fd = fds;
	td.cpu_size = sizes;
	ret = dc_tracedat_write(fd, &td);
	if (!ret && fsync(fd) && errno != EINVAL)
		ret = -errno;
out:
	fmt_free(&fs);
	free(hp);
	free(he);
	free(clock);
	free(cmd.s);
	free(fds);
	free(sizes);
	return ret;
}
