// SPDX-License-Identifier: GPL-2.0
/*
 * pagetool: page-granular file operations for the VM tests, so each test
 * controls exactly which pages of a file get dirtied, written back or
 * truncated.  Built -static by scripts/vm-test and run inside the guest.
 *
 *   pagetool write FILE FIRST COUNT      pwrite() 4 KiB to pages FIRST..
 *   pagetool fsync FILE                  fsync() the file
 *   pagetool mmapwrite FILE FIRST COUNT  store one byte in each page through
 *                                        a shared mapping, then msync()
 *   pagetool truncate FILE PAGES         ftruncate() to PAGES pages (creates)
 *
 * Exit status: 0 on success, 1 on failure (with a message), 2 on misuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096L

static int fail(const char *what, const char *file)
{
	fprintf(stderr, "pagetool: %s %s: %s\n", what, file, strerror(errno));
	return 1;
}

static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "pagetool: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static int do_write(const char *file, long first, long count)
{
	char buf[PG];
	long i;
	int fd;

	fd = open(file, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return fail("open", file);
	for (i = 0; i < count; i++) {
		memset(buf, 'a' + (int)((first + i) % 26), sizeof(buf));
		if (pwrite(fd, buf, PG, (first + i) * PG) != PG) {
			close(fd);
			return fail("pwrite", file);
		}
	}
	if (close(fd))
		return fail("close", file);
	return 0;
}

static int do_fsync(const char *file)
{
	int fd = open(file, O_RDWR);

	if (fd < 0)
		return fail("open", file);
	if (fsync(fd)) {
		close(fd);
		return fail("fsync", file);
	}
	close(fd);
	return 0;
}

static int do_mmapwrite(const char *file, long first, long count)
{
	struct stat st;
	char *map;
	long i, len = (first + count) * PG;
	int fd;

	fd = open(file, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return fail("open", file);
	if (fstat(fd, &st) || (st.st_size < len && ftruncate(fd, len))) {
		close(fd);
		return fail("size", file);
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return fail("mmap", file);
	}
	for (i = first; i < first + count; i++)
		map[i * PG] = 'm';
	if (msync(map, len, MS_SYNC)) {
		munmap(map, len);
		close(fd);
		return fail("msync", file);
	}
	munmap(map, len);
	close(fd);
	return 0;
}

static int do_truncate(const char *file, long pages)
{
	int fd = open(file, O_WRONLY | O_CREAT, 0644);

	if (fd < 0)
		return fail("open", file);
	if (ftruncate(fd, pages * PG)) {
		close(fd);
		return fail("ftruncate", file);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "write"))
		return do_write(argv[2], num(argv[3]), num(argv[4]));
	if (argc == 3 && !strcmp(argv[1], "fsync"))
		return do_fsync(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "mmapwrite"))
		return do_mmapwrite(argv[2], num(argv[3]), num(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "truncate"))
		return do_truncate(argv[2], num(argv[3]));
	fprintf(stderr, "usage: pagetool write|mmapwrite FILE FIRST COUNT\n"
		"       pagetool fsync FILE | truncate FILE PAGES\n");
	return 2;
}
