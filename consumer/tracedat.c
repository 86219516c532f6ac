// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * trace.dat version 6: a fixed header (magic, version, endianness, long
 * size, page size), the header_page and header_event texts, the format
 * files, kallsyms, printk formats, cmdlines, the CPU count, options, then
 * "flyrecord" with each CPU's offset and size, and the CPU data at
 * page-aligned offsets. Numbers are in host order, declared in the header.
 *
 * Version 7 holds the same parts in sections (a 16-byte header: id,
 * flags, description string, size), laid out as trace-cmd 3.1 writes
 * them: the header names the compression and points to the first options
 * section; the six metadata sections; options pointing to them (and the
 * caller's options), chained to a second options section written after
 * the page data, which describes the buffer; the strings section last.
 * libtracecmd finds the strings by walking the sections one after the
 * other from the header on, so they are contiguous and their sizes exact.
 * With zstd (level 3, zstd's default and trace-cmd's; frames with their
 * content size and checksum) every section but the options is one frame,
 * and each CPU's pages are a count of chunks of up to ten pages, each
 * compressed on its own (trace-cmd's chunk size), so a reader
 * decompresses only the pages it reads.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "tracedat.h"

#define TD_MAGIC { 0x17, 0x08, 0x44, 't', 'r', 'a', 'c', 'i', 'n', 'g' }

/* Version 7's section and option ids (trace-cmd.dat.v7(5)). */
#define TD7_OPTIONS		0
#define TD7_OPT_DONE		0
#define TD7_BUFFER		3
#define TD7_OPT_CPUCOUNT	8
#define TD7_STRINGS		15
#define TD7_HEADERS		16
#define TD7_FTRACE		17
#define TD7_EVENTS		18
#define TD7_KALLSYMS		19
#define TD7_PRINTK		20
#define TD7_CMDLINES		21
#define TD7_FL_COMPRESSED	1
#define TD7_CHUNK_PAGES		10

/* Bytes out: to fd, or (fd < 0) appended to mem. */
struct out {
	int fd;
	uint64_t off;
	int err;
	uint8_t *mem;
	size_t cap;
};

static void put(struct out *o, const void *p, size_t n)
{
	const char *c = p;

	if (o->fd < 0 && !o->err && n) {
		if (o->off + n > o->cap) {
			size_t nc = o->cap ? o->cap : 4096;
			uint8_t *m;

			while (nc < o->off + n)
				nc *= 2;
			m = realloc(o->mem, nc);
			if (!m) {
				o->err = -ENOMEM;
				return;
			}
			o->mem = m;
			o->cap = nc;
		}
		memcpy(o->mem + o->off, p, n);
		o->off += n;
		return;
	}
	while (!o->err && n) {
		ssize_t w = write(o->fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->err = -errno;
			return;
		}
		c += w;
		n -= (size_t)w;
		o->off += (uint64_t)w;
	}
}

static void put16(struct out *o, uint16_t v)
{
	put(o, &v, sizeof(v));
}

static void put32(struct out *o, uint32_t v)
{
	put(o, &v, sizeof(v));
}

static void put64(struct out *o, uint64_t v)
{
	put(o, &v, sizeof(v));
}

static void put_zeros(struct out *o, uint64_t n)
{
	static const char z[4096];

	while (n) {
		size_t k = n > sizeof(z) ? sizeof(z) : (size_t)n;

		put(o, z, k);
		n -= k;
	}
}

static int copy_cpu(struct out *o, int fd, uint64_t size)
{
	size_t bufsz = 1u << 20;
	char *buf = malloc(bufsz);
	uint64_t done = 0;

	if (!buf)
		return -ENOMEM;
	while (!o->err && done < size) {
		size_t want = size - done > bufsz ? bufsz : (size_t)(size - done);
		ssize_t n = pread(fd, buf, want, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			o->err = n < 0 ? -errno : -EIO;
			break;
		}
		put(o, buf, (size_t)n);
		done += (uint64_t)n;
	}
	free(buf);
	return o->err;
}

/* The parts both versions hold, in the same layout (a section's body in version 7). */
static void put_headers(struct out *o, const struct dc_tracedat *t)
{
	put(o, "header_page", 12);
	put64(o, t->header_page.len);
	put(o, t->header_page.data, t->header_page.len);
	put(o, "header_event", 13);
	put64(o, t->header_event.len);
	put(o, t->header_event.data, t->header_event.len);
}

static void put_ftrace(struct out *o, const struct dc_tracedat *t)
{
	put32(o, (uint32_t)t->nftrace);
	for (size_t i = 0; i < t->nftrace; i++) {
		put64(o, t->ftrace[i].len);
		put(o, t->ftrace[i].data, t->ftrace[i].len);
	}
}

static void put_systems(struct out *o, const struct dc_tracedat *t)
{
	put32(o, (uint32_t)t->nsystems);
	for (size_t i = 0; i < t->nsystems; i++) {
		const struct dc_td_system *s = &t->systems[i];

		put(o, s->name, strlen(s->name) + 1);
		put32(o, (uint32_t)s->n);
		for (size_t j = 0; j < s->n; j++) {
			put64(o, s->formats[j].len);
			put(o, s->formats[j].data, s->formats[j].len);
		}
	}
}

static void put_blob32(struct out *o, const struct dc_td_blob *b)
{
	put32(o, (uint32_t)b->len);
	put(o, b->data, b->len);
}

static void put_blob64(struct out *o, const struct dc_td_blob *b)
{
	put64(o, b->len);
	put(o, b->data, b->len);
}

static void put_options(struct out *o, const struct dc_tracedat *t)
{
	for (size_t i = 0; i < t->nopts; i++) {
		put16(o, t->opts[i].id);
		put32(o, (uint32_t)t->opts[i].b.len);
		put(o, t->opts[i].b.data, t->opts[i].b.len);
	}
}

static int write_v6(int fd, const struct dc_tracedat *t)
{
	static const char magic[] = TD_MAGIC;
	struct out o = { .fd = fd };
	uint64_t data_off;

	put(&o, magic, sizeof(magic));
	put(&o, "6", 2);
	put(&o, &(uint8_t){ __BYTE_ORDER == __BIG_ENDIAN }, 1);
	put(&o, &t->long_size, 1);
	put32(&o, t->page_size);
	put_headers(&o, t);
	put_ftrace(&o, t);
	put_systems(&o, t);
	put_blob32(&o, &t->kallsyms);
	put_blob32(&o, &t->printk);
	put_blob64(&o, &t->cmdlines);

	put32(&o, t->ncpus);
	if (t->nopts) {
		put(&o, "options  ", 10);
		put_options(&o, t);
		/* Version 6 ends the options with a bare zero id. */
		put16(&o, 0);
	}
	put(&o, "flyrecord", 10);

	/* The CPU table, then the data from the next page boundary on. */
	data_off = o.off + 16ull * t->ncpus;
	data_off = (data_off + t->page_size - 1) / t->page_size * t->page_size;
	for (unsigned int i = 0; i < t->ncpus; i++) {
		uint64_t at = data_off;

		for (unsigned int j = 0; j < i; j++)
			at += t->cpu_size[j];
		put64(&o, at);
		put64(&o, t->cpu_size[i]);
	}
	put_zeros(&o, data_off - o.off);
	for (unsigned int i = 0; i < t->ncpus && !o.err; i++)
		if (t->cpu_size[i])
			copy_cpu(&o, t->cpu_fd[i], t->cpu_size[i]);
	return o.err;
}

struct v7 {
	struct out o;		/* the file */
	struct out strings;	/* the strings section's body */
	ZSTD_CCtx *cz;		/* NULL: nothing is compressed */
	uint8_t *zbuf;
	size_t zcap;
};

/* A description's id: its offset in the strings section. */
static uint32_t str_id(struct v7 *v, const char *s)
{
	uint32_t id = (uint32_t)v->strings.off;

	put(&v->strings, s, strlen(s) + 1);
	return id;
}

/* Numbers already written, filled in (version 7's forward offsets and sizes). */
static void patch64(struct out *o, uint64_t at, uint64_t val)
{
	ssize_t w;

	if (o->err)
		return;
	w = pwrite(o->fd, &val, sizeof(val), (off_t)at);
	if (w != (ssize_t)sizeof(val))
		o->err = w < 0 ? -errno : -EIO;
}

/* n bytes into v->zbuf as one zstd frame; its size in *csize. */
static int compress(struct v7 *v, const void *src, size_t n, size_t *csize)
{
	size_t bound = ZSTD_compressBound(n), r;

	if (bound > v->zcap) {
		uint8_t *b = realloc(v->zbuf, bound);

		if (!b)
			return -ENOMEM;
		v->zbuf = b;
		v->zcap = bound;
	}
	r = ZSTD_compress2(v->cz, v->zbuf, bound, src, n);
	if (ZSTD_isError(r) || r > UINT32_MAX)
		return -EIO;
	*csize = r;
	return 0;
}

/*
 * A section whose body was built in memory, described by the string sid;
 * returns its offset. With zstd (options sections excepted, as
 * trace-cmd), the body after the section header is the compressed and
 * uncompressed sizes and the frame.
 */
static uint64_t section(struct v7 *v, uint16_t id, uint32_t sid, struct out *body)
{
	uint64_t at = v->o.off;
	size_t csize;
	int r;

	if (body->err) {
		v->o.err = v->o.err ? v->o.err : body->err;
		return at;
	}
	if (v->cz && id != TD7_OPTIONS) {
		if (body->off > UINT32_MAX) {
			v->o.err = -EINVAL;
			return at;
		}
		r = compress(v, body->mem, (size_t)body->off, &csize);
		if (r) {
			v->o.err = v->o.err ? v->o.err : r;
			return at;
		}
		put16(&v->o, id);
		put16(&v->o, TD7_FL_COMPRESSED);
		put32(&v->o, sid);
		put64(&v->o, 8 + (uint64_t)csize);
		put32(&v->o, (uint32_t)csize);
		put32(&v->o, (uint32_t)body->off);
		put(&v->o, v->zbuf, csize);
		return at;
	}
	put16(&v->o, id);
	put16(&v->o, 0);
	put32(&v->o, sid);
	put64(&v->o, body->off);
	put(&v->o, body->mem, (size_t)body->off);
	return at;
}

static void body_free(struct out *b)
{
	free(b->mem);
	*b = (struct out){ .fd = -1 };
}

/*
 * One CPU's pages, compressed: a chunk count, then per chunk of up to ten
 * pages its compressed and uncompressed sizes and the frame. *zsize gets
 * what trace-cmd 3.1 records as the size: the chunks, without the count.
 */
static int copy_cpu_zstd(struct v7 *v, int fd, uint64_t size, uint32_t page_size,
			 uint64_t *zsize)
{
	size_t chunk = (size_t)TD7_CHUNK_PAGES * page_size, csize;
	uint64_t nchunks = (size + chunk - 1) / chunk, done = 0, start;
	uint8_t *buf;
	int r = 0;

	if (nchunks > UINT32_MAX)
		return -EINVAL;
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	put32(&v->o, (uint32_t)nchunks);
	start = v->o.off;
	while (!v->o.err && !r && done < size) {
		size_t want = size - done > chunk ? chunk : (size_t)(size - done), got = 0;

		while (got < want) {
			ssize_t n = pread(fd, buf + got, want - got, (off_t)(done + got));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				break;
			}
			got += (size_t)n;
		}
		if (!r)
			r = compress(v, buf, want, &csize);
		if (r)
			break;
		put32(&v->o, (uint32_t)csize);
		put32(&v->o, (uint32_t)want);
		put(&v->o, v->zbuf, csize);
		done += want;
	}
	free(buf);
	*zsize = v->o.off - start;
	return r ? r : v->o.err;
}

/* The trace clock's name, from the TRACECLOCK option's "a [b] c" text. */
static void clock_name(const struct dc_tracedat *t, char *buf, size_t len)
{
	snprintf(buf, len, "local");
	for (size_t i = 0; i < t->nopts; i++) {
		const char *s = t->opts[i].b.data, *a, *b;
		size_t n = t->opts[i].b.len;

		if (t->opts[i].id != DC_TD_OPT_TRACECLOCK || !n)
			continue;
		a = memchr(s, '[', n);
		b = a ? memchr(a, ']', n - (size_t)(a - s)) : NULL;
		if (b && (size_t)(b - a) < len)
			snprintf(buf, len, "%.*s", (int)(b - a - 1), a + 1);
	}
}

/*
 * The page data: one BUFFER FLYRECORD section, each CPU's data from a
 * page boundary on. Offsets and sizes go to off[] and size[].
 */
static void write_flyrecord(struct v7 *v, const struct dc_tracedat *t, uint64_t *off,
			    uint64_t *size, uint64_t *sec)
{
	uint64_t ps = t->page_size;

	*sec = v->o.off;
	put16(&v->o, TD7_BUFFER);
	put16(&v->o, v->cz ? TD7_FL_COMPRESSED : 0);
	put32(&v->o, str_id(v, "buffer flyrecord"));
	put64(&v->o, 0);	/* its size, filled in below */
	for (unsigned int i = 0; i < t->ncpus && !v->o.err; i++) {
		put_zeros(&v->o, (ps - v->o.off % ps) % ps);
		off[i] = v->o.off;
		size[i] = 0;
		if (!t->cpu_size[i])
			continue;
		if (v->cz) {
			int r = copy_cpu_zstd(v, t->cpu_fd[i], t->cpu_size[i], t->page_size,
					      &size[i]);

			if (r && !v->o.err)
				v->o.err = r;
		} else {
			copy_cpu(&v->o, t->cpu_fd[i], t->cpu_size[i]);
			size[i] = t->cpu_size[i];
		}
	}
	patch64(&v->o, *sec + 8, v->o.off - (*sec + 16));
}

/* The body of metadata section id. */
static void put_meta(struct out *b, const struct dc_tracedat *t, uint16_t id)
{
	switch (id) {
	case TD7_HEADERS:
		put_headers(b, t);
		break;
	case TD7_FTRACE:
		put_ftrace(b, t);
		break;
	case TD7_EVENTS:
		put_systems(b, t);
		break;
	case TD7_KALLSYMS:
		put_blob32(b, &t->kallsyms);
		break;
	case TD7_PRINTK:
		put_blob32(b, &t->printk);
		break;
	case TD7_CMDLINES:
		put_blob64(b, &t->cmdlines);
		break;
	}
}

static int write_v7(int fd, const struct dc_tracedat *t)
{
	static const char magic[] = TD_MAGIC;
	struct v7 v = { .o = { .fd = fd }, .strings = { .fd = -1 } };
	struct out b = { .fd = -1 };
	uint64_t at[6], opts1, done1, fly, opts2, *off = NULL, *size = NULL;
	static const uint16_t ids[6] = { TD7_HEADERS, TD7_FTRACE, TD7_EVENTS, TD7_KALLSYMS,
					  TD7_PRINTK, TD7_CMDLINES };
	static const char *const desc[6] = { "headers", "ftrace events", "events format",
					     "kallsyms", "printk", "command lines" };
	char clock[64];
	uint32_t sid;
	int r;

	off = calloc(t->ncpus, sizeof(*off));
	size = calloc(t->ncpus, sizeof(*size));
	if (t->compression == DC_TD_COMPRESS_ZSTD)
		v.cz = ZSTD_createCCtx();
	if (!off || !size || (t->compression == DC_TD_COMPRESS_ZSTD && !v.cz)) {
		r = -ENOMEM;
		goto out;
	}
	/*
	 * Each frame carries its checksum (4 bytes; trace-cmd's do not): a
	 * damaged chunk or section is refused by any zstd reader, libtracecmd
	 * included, instead of decoding to other bytes.
	 */
	if (v.cz && (ZSTD_isError(ZSTD_CCtx_setParameter(v.cz, ZSTD_c_compressionLevel,
							 ZSTD_CLEVEL_DEFAULT)) ||
		     ZSTD_isError(ZSTD_CCtx_setParameter(v.cz, ZSTD_c_checksumFlag, 1)))) {
		r = -EIO;
		goto out;
	}
	put(&v.o, magic, sizeof(magic));
	put(&v.o, "7", 2);
	put(&v.o, &(uint8_t){ __BYTE_ORDER == __BIG_ENDIAN }, 1);
	put(&v.o, &t->long_size, 1);
	put32(&v.o, t->page_size);
	if (v.cz) {
		put(&v.o, "zstd", 5);
		put(&v.o, ZSTD_versionString(), strlen(ZSTD_versionString()) + 1);
	} else {
		put(&v.o, "none", 5);
		put(&v.o, "", 1);
	}
	opts1 = v.o.off;
	put64(&v.o, 0);		/* the first options section, filled in below */

	for (int i = 0; i < 6; i++) {
		put_meta(&b, t, ids[i]);
		at[i] = section(&v, ids[i], str_id(&v, desc[i]), &b);
		b.off = 0;
	}

	/* Options: where the sections are, the caller's, the CPU count; chained on. */
	for (int i = 0; i < 6; i++) {
		put16(&b, ids[i]);
		put32(&b, 8);
		put64(&b, at[i]);
	}
	put_options(&b, t);
	put16(&b, TD7_OPT_CPUCOUNT);
	put32(&b, 4);
	put32(&b, t->ncpus);
	put16(&b, TD7_OPT_DONE);
	put32(&b, 8);
	put64(&b, 0);		/* the next options section, filled in below */
	patch64(&v.o, opts1, v.o.off);
	done1 = v.o.off + 16 + b.off - 8;
	section(&v, TD7_OPTIONS, str_id(&v, "options"), &b);
	b.off = 0;

	write_flyrecord(&v, t, off, size, &fly);

	/* The buffer: the top instance ("") with its clock and CPUs. */
	clock_name(t, clock, sizeof(clock));
	put16(&b, TD7_BUFFER);
	put32(&b, (uint32_t)(8 + 1 + strlen(clock) + 1 + 4 + 4 + 20ull * t->ncpus));
	put64(&b, fly);
	put(&b, "", 1);
	put(&b, clock, strlen(clock) + 1);
	put32(&b, t->page_size);
	put32(&b, t->ncpus);
	for (unsigned int i = 0; i < t->ncpus; i++) {
		put32(&b, i);
		put64(&b, off[i]);
		put64(&b, size[i]);
	}
	put16(&b, TD7_OPT_DONE);
	put32(&b, 8);
	put64(&b, 0);
	opts2 = section(&v, TD7_OPTIONS, str_id(&v, "options"), &b);
	patch64(&v.o, done1, opts2);
	b.off = 0;

	/* The strings last: every description, its own included, is known. */
	sid = str_id(&v, "strings");
	put(&b, v.strings.mem, (size_t)v.strings.off);
	if (v.strings.err)
		b.err = v.strings.err;
	section(&v, TD7_STRINGS, sid, &b);
	r = v.o.err;
out:
	ZSTD_freeCCtx(v.cz);
	free(v.zbuf);
	body_free(&b);
	body_free(&v.strings);
	free(off);
	free(size);
	return r;
}

int dc_tracedat_write(int fd, const struct dc_tracedat *t)
{
	unsigned int version = t->version ? t->version : 6;

	if (!t->page_size || (t->page_size & (t->page_size - 1)) ||
	    (t->long_size != 4 && t->long_size != 8) || !t->ncpus)
		return -EINVAL;
	if ((version != 6 && version != 7) ||
	    (t->compression != DC_TD_COMPRESS_NONE && t->compression != DC_TD_COMPRESS_ZSTD) ||
	    (version == 6 && t->compression != DC_TD_COMPRESS_NONE))
		return -EINVAL;
	for (unsigned int i = 0; i < t->ncpus; i++)
		if (t->cpu_size[i] % t->page_size || (t->cpu_size[i] && t->cpu_fd[i] < 0))
			return -EINVAL;
	if (t->kallsyms.len > UINT32_MAX || t->printk.len > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < t->nopts; i++) {
		uint16_t id = t->opts[i].id;

		if (!id || t->opts[i].b.len > UINT32_MAX)
			return -EINVAL;
		/* Version 7's own: where the sections are, the buffer, the CPU count. */
		if (version == 7 && (id == TD7_BUFFER || id == TD7_OPT_CPUCOUNT ||
				     (id >= TD7_STRINGS && id <= TD7_CMDLINES + 1)))
			return -EINVAL;
	}
	return version == 6 ? write_v6(fd, t) : write_v7(fd, t);
}
