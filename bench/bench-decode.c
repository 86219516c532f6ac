// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Decode-and-filter cost per event, without the kernel: ring-buffer pages
 * laid out exactly as this kernel writes mm_filemap_add_to_page_cache
 * (layout read from the live format file, or from tests/data), decoded
 * with dc_decode_page and filtered through the path index of a real
 * directory. Prints ns per event for decode alone and decode + filter.
 * usage: bench-decode [FORMAT_FILE]   (default: the running kernel's)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "page.h"

#define NFILES 1000
#define NPAGES 2048		/* 4 KiB sub-buffers */
#define ROUNDS 40

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = malloc(1 << 16);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0 || !buf)
		return NULL;
	n = read(fd, buf, (1 << 16) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

int main(int argc, char **argv)
{
	const char *fmt = argc > 1 ? argv[1] :
		"/sys/kernel/tracing/events/filemap/mm_filemap_add_to_page_cache/format";
	char dir[] = "/var/tmp/duet-bench-decode.XXXXXX";
	struct dc_decoder_opts o = { .sz = sizeof(o), .long_size = 8 };
	struct dc_recbuf out = { 0 };
	struct dc_decoder *d;
	struct dc_index *x;
	struct dc_layout l;
	uint64_t inos[NFILES], events = 0, matched = 0;
	uint32_t kdev = 0;
	uint8_t *pages;
	size_t len, esz;
	char *text, *roots[1];
	double t0, t_dec, t_kb = 0, t_all;

	text = slurp(fmt, &len);
	if (!text || dc_layout_parse(DC_SRC_ADD, text, len, &l)) {
		fprintf(stderr, "bench-decode: cannot read the layout from %s\n", fmt);
		return 1;
	}
	if (!mkdtemp(dir))
		return 1;
	for (int i = 0; i < NFILES; i++) {
		char p[128];
		struct stat st;
		int fd;

		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0 || fstat(fd, &st))
			return 1;
		close(fd);
		inos[i] = st.st_ino;
	}
	roots[0] = dir;
	if (dc_index_new(roots, 1, &x))
		return 1;
	{
		struct dc_mounts m = { 0 };
		const struct dc_mount *mm;

		dc_mounts_load(&m);
		mm = dc_mounts_find(&m, dir);
		kdev = mm ? mm->kdev : 0;
		dc_mounts_free(&m);
	}
	/* Pages of add events: runs of 16 pages per file, 1 in 5 events for
	 * an inode outside the directory (rejected by the filter). */
	esz = ((size_t)l.order.offset + l.order.size + 3) & ~(size_t)3;
	pages = calloc(NPAGES, 4096);
	if (!pages)
		return 1;
	for (int p = 0, ev = 0; p < NPAGES; p++) {
		uint8_t *pg = pages + (size_t)p * 4096;
		size_t off = 16;
		uint64_t ts = 1000000ull * (uint64_t)p, commit;

		memcpy(pg, &ts, 8);
		while (off + 4 + esz <= 4096) {
			uint32_t hdr = (uint32_t)(esz / 4) | (100u << 5);
			uint8_t *e = pg + off + 4;
			uint16_t id = (uint16_t)l.id;
			int f = (ev / 16) % NFILES;
			uint64_t ino = ev % 5 == 4 ? 999999000ull + (uint64_t)f : inos[f];
			uint64_t index = (uint64_t)(ev % 16);
			uint32_t dev = kdev;

			memcpy(pg + off, &hdr, 4);
			memset(e, 0, esz);
			memcpy(e, &id, 2);
			memcpy(e + l.ino.offset, &ino, l.ino.size);
			memcpy(e + l.index.offset, &index, l.index.size);
			memcpy(e + l.dev.offset, &dev, 4);
			off += 4 + esz;
			ev++;
		}
		commit = off - 16;
		memcpy(pg + 8, &commit, 8);
	}
	o.layouts = &l;
	o.nlayouts = 1;
	dc_recbuf_reserve(&out, 65536);

	/* Decode only: kbuffer (the reference), then our own walk (the default). */
	for (int k = 0; k < 2; k++) {
		o.flags = k ? 0 : DC_DECODE_KBUFFER;
		if (dc_decoder_new(&o, &d))
			return 1;
		events = 0;
		t0 = now();
		for (int r = 0; r < ROUNDS; r++)
			for (int p = 0; p < NPAGES; p++) {
				out.n = 0;
				events += (uint64_t)dc_decode_page(d, pages + (size_t)p * 4096, 4096,
								   0, &out);
			}
		t_dec = now() - t0;
		t_kb = k ? t_kb : t_dec;
		if (!k)
			dc_decoder_free(d);
	}
	/* Decode and filter through the path index. */
	events = 0;
	t0 = now();
	for (int r = 0; r < ROUNDS; r++)
		for (int p = 0; p < NPAGES; p++) {
			out.n = 0;
			events += (uint64_t)dc_decode_page(d, pages + (size_t)p * 4096, 4096, 0, &out);
			for (size_t i = 0; i < out.n; i++)
				matched += dc_index_lookup(x, out.rec[i].dev, out.rec[i].ino, NULL) != NULL;
		}
	t_all = now() - t0;
	printf("events per round      %llu (%d pages, %zu-byte events)\n",
	       (unsigned long long)(events / ROUNDS), NPAGES, esz + 4);
	printf("decode with kbuffer   %.1f ns/event\n", t_kb * 1e9 / (double)events);
	printf("decode                %.1f ns/event (own walk: %.2fx kbuffer's time)\n",
	       t_dec * 1e9 / (double)events, t_dec / t_kb);
	printf("decode + path filter  %.1f ns/event (%.0f%% matched)\n",
	       t_all * 1e9 / (double)events, 100.0 * (double)matched / (double)events);
	printf("throughput            %.1f M events/s on one core\n", (double)events / t_all / 1e6);
	dc_index_free(x);
	dc_decoder_free(d);
	free(pages);
	free(text);
	dc_recbuf_free(&out);
	for (int i = 0; i < NFILES; i++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}
