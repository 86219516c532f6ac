// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * trace.dat version 6: a fixed header (magic, version, endianness, long
 * size, page size), the header_page and header_event texts, the format
 * files, kallsyms, printk formats, cmdlines, the CPU count, options, then
 * "flyrecord" with each CPU's offset and size, and the CPU data at
 * page-aligned offsets. Numbers are in host order, declared in the header.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tracedat.h"

struct out {
	int fd;
	uint64_t off;
	int err;
};

static void put(struct out *o, const void *p, size_t n)
{
	const char *c = p;

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

int dc_tracedat_write(int fd, const struct dc_tracedat *t)
{
	static const char magic[] = { 0x17, 0x08, 0x44, 't', 'r', 'a', 'c', 'i', 'n', 'g' };
	struct out o = { .fd = fd };
	uint64_t data_off;

	if (!t->page_size || (t->page_size & (t->page_size - 1)) ||
	    (t->long_size != 4 && t->long_size != 8) || !t->ncpus)
		return -EINVAL;
	for (unsigned int i = 0; i < t->ncpus; i++)
		if (t->cpu_size[i] % t->page_size || (t->cpu_size[i] && t->cpu_fd[i] < 0))
			return -EINVAL;
	if (t->kallsyms.len > UINT32_MAX || t->printk.len > UINT32_MAX)
		return -EINVAL;

	put(&o, magic, sizeof(magic));
	put(&o, "6", 2);
	put(&o, &(uint8_t){ __BYTE_ORDER == __BIG_ENDIAN }, 1);
	put(&o, &t->long_size, 1);
	put32(&o, t->page_size);

	put(&o, "header_page", 12);
	put64(&o, t->header_page.len);
	put(&o, t->header_page.data, t->header_page.len);
	put(&o, "header_event", 13);
	put64(&o, t->header_event.len);
	put(&o, t->header_event.data, t->header_event.len);

	put32(&o, (uint32_t)t->nftrace);
	for (size_t i = 0; i < t->nftrace; i++) {
		put64(&o, t->ftrace[i].len);
		put(&o, t->ftrace[i].data, t->ftrace[i].len);
	}
	put32(&o, (uint32_t)t->nsystems);
	for (size_t i = 0; i < t->nsystems; i++) {
		const struct dc_td_system *s = &t->systems[i];

		put(&o, s->name, strlen(s->name) + 1);
		put32(&o, (uint32_t)s->n);
		for (size_t j = 0; j < s->n; j++) {
			put64(&o, s->formats[j].len);
			put(&o, s->formats[j].data, s->formats[j].len);
		}
	}
	put32(&o, (uint32_t)t->kallsyms.len);
	put(&o, t->kallsyms.data, t->kallsyms.len);
	put32(&o, (uint32_t)t->printk.len);
	put(&o, t->printk.data, t->printk.len);
	put64(&o, t->cmdlines.len);
	put(&o, t->cmdlines.data, t->cmdlines.len);

	put32(&o, t->ncpus);
	if (t->nopts) {
		put(&o, "options  ", 10);
		for (size_t i = 0; i < t->nopts; i++) {
			if (!t->opts[i].id || t->opts[i].b.len > UINT32_MAX)
				return -EINVAL;
			put16(&o, t->opts[i].id);
			put32(&o, (uint32_t)t->opts[i].b.len);
			put(&o, t->opts[i].b.data, t->opts[i].b.len);
		}
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
