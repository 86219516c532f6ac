// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Records the raw ring-buffer pages under tests/data/pages-6.18. Not a
 * test: tests/unit/record-fixtures sets up a loop-mounted ext4 and runs
 * this as root. It owns one tracefs instance, "duet-fixture-<pid>", and
 * removes it on every exit path.
 *
 *   record-pages MOUNTDIR OUTDIR KDEV_HEX BDI_NAME
 *
 * Two scenarios, each pinned to CPU 0 so that most pages come from one CPU:
 *  basic:   16 x 4 KiB writes, fsync, POSIX_FADV_DONTNEED, read back,
 *           a 200 ms pause (a time extend), then one 2 MiB write (large
 *           folios) and DONTNEED again;
 *           add, delete, writeback_dirty_folio, sb_clear_inode_writeback.
 *  overrun: a 4 KiB per-CPU buffer in overwrite mode, 1024 pages added
 *           and dropped, so the pages read back carry missed-events counts.
 *           per_cpu/cpu0/stats is saved next to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tracefs.h>

#define PAGE 4096

static int enable(struct tracefs_instance *in, const char *sys, const char *ev,
		  const char *filter)
{
	if (tracefs_event_file_write(in, sys, ev, "filter", filter) < 0) {
		fprintf(stderr, "filter %s/%s: %s\n", sys, ev, strerror(errno));
		return -1;
	}
	if (tracefs_event_enable(in, sys, ev) < 0) {
		fprintf(stderr, "enable %s/%s: %s\n", sys, ev, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_file(const char *path, size_t bytes, size_t chunk)
{
	char *buf = malloc(chunk);
	int fd, r = -1;

	if (!buf)
		return -1;
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (char)('a' + i % 26);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		goto out;
	for (size_t off = 0; off < bytes; off += chunk)
		if (write(fd, buf, chunk) != (ssize_t)chunk)
			goto out_close;
	if (fsync(fd))
		goto out_close;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	r = 0;
out_close:
	close(fd);
out:
	free(buf);
	return r;
}

static int read_file(const char *path)
{
	char buf[PAGE];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Read every page left in each CPU buffer; tracing must be off. */
static int save_pages(struct tracefs_instance *in, const char *outdir,
		      const char *scenario, int *npages)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	char path[512], *dir = tracefs_instance_get_dir(in);
	unsigned char page[PAGE];

	if (!dir)
		return -1;
	for (long cpu = 0; cpu < ncpu; cpu++) {
		int fd, k = 0;

		snprintf(path, sizeof(path), "%s/per_cpu/cpu%ld/trace_pipe_raw", dir, cpu);
		fd = open(path, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			continue;
		for (;;) {
			ssize_t n = read(fd, page, sizeof(page));
			FILE *f;

			if (n <= 0)
				break;
			snprintf(path, sizeof(path), "%s/%s-cpu%ld-%02d.bin", outdir, scenario,
				 cpu, k++);
			f = fopen(path, "w");
			if (!f || fwrite(page, 1, (size_t)n, f) != (size_t)n) {
				if (f)
					fclose(f);
				close(fd);
				tracefs_put_tracing_file(dir);
				return -1;
			}
			fclose(f);
			(*npages)++;
		}
		close(fd);
	}
	tracefs_put_tracing_file(dir);
	return 0;
}

int main(int argc, char **argv)
{
	struct tracefs_instance *in = NULL;
	char name[64], filter[128], file[512], path[512];
	unsigned int kdev;
	cpu_set_t set;
	int npages = 0, ret = 1;

	if (argc != 5 || sscanf(argv[3], "%x", &kdev) != 1) {
		fprintf(stderr, "usage: %s MOUNTDIR OUTDIR KDEV_HEX BDI_NAME\n", argv[0]);
		return 2;
	}
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	snprintf(file, sizeof(file), "%s/fixture.dat", argv[1]);
	snprintf(name, sizeof(name), "duet-fixture-%d", (int)getpid());
	in = tracefs_instance_create(name);
	if (!in) {
		fprintf(stderr, "instance %s: %s\n", name, strerror(errno));
		return 1;
	}
	tracefs_trace_off(in);

	/* basic */
	snprintf(filter, sizeof(filter), "s_dev == 0x%x", kdev);
	if (enable(in, "filemap", "mm_filemap_add_to_page_cache", filter) ||
	    enable(in, "filemap", "mm_filemap_delete_from_page_cache", filter))
		goto out;
	snprintf(filter, sizeof(filter), "name == \"%s\"", argv[4]);
	if (enable(in, "writeback", "writeback_dirty_folio", filter))
		goto out;
	snprintf(filter, sizeof(filter), "dev == 0x%x", kdev);
	if (enable(in, "writeback", "sb_clear_inode_writeback", filter))
		goto out;
	tracefs_trace_on(in);
	snprintf(path, sizeof(path), "%s/big.dat", argv[1]);
	/* The pause makes the kernel write a real time extend (> 2^27 ns). */
	if (write_file(file, 16 * PAGE, PAGE) || read_file(file) || usleep(200000) ||
	    write_file(path, 2 << 20, 2 << 20)) {
		fprintf(stderr, "workload: %s\n", strerror(errno));
		goto out;
	}
	tracefs_trace_off(in);
	if (save_pages(in, argv[2], "basic", &npages))
		goto out;

	/* overrun */
	tracefs_event_disable(in, "writeback", NULL);
	if (tracefs_instance_file_write(in, "buffer_size_kb", "4") < 0)
		goto out;
	tracefs_trace_on(in);
	if (write_file(file, 1024 * PAGE, PAGE)) {
		fprintf(stderr, "workload: %s\n", strerror(errno));
		goto out;
	}
	tracefs_trace_off(in);
	{
		char *stats = tracefs_instance_file_read(in, "per_cpu/cpu0/stats", NULL);
		FILE *f;

		snprintf(path, sizeof(path), "%s/../cpu-stats-6.18.txt", argv[2]);
		f = stats ? fopen(path, "w") : NULL;
		if (f) {
			fputs(stats, f);
			fclose(f);
		}
		free(stats);
	}
	if (save_pages(in, argv[2], "overrun", &npages))
		goto out;
	printf("%d pages\n", npages);
	ret = 0;
out:
	tracefs_instance_destroy(in);
	tracefs_instance_free(in);
	return ret;
}
