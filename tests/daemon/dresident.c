// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dresident: the page cache of the regular files under each DIR (root
 * side of the daemon tests), in dclient's dump form:
 *
 *   DEV INO RANGES PATH
 *
 * DEV in the kernel's encoding (major << 20 | minor), RANGES the resident
 * pages ("a-b,c-d"), files without resident pages left out, sorted by DEV
 * and INO. With -i, only "DEV INO" of every regular file (resident or not).
 *
 * Residency comes from cachestat(2) by bisection over the file's pages
 * up to the next 2 MiB boundary past its end: a large folio that a
 * truncate cut into stays cached whole, past the end of the file, and
 * mincore() cannot see those pages. Nothing is read in.
 * Mount points inside DIR are followed (as libduet's tasks follow them).
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct ent {
	uint32_t dev;
	uint64_t ino;
	char *line;
};

static struct ent *ents;
static size_t nents, cap;
static bool inodes_only;
static long pagesz;

static void add(uint32_t dev, uint64_t ino, char *line)
{
	for (size_t i = 0; i < nents; i++)
		if (ents[i].dev == dev && ents[i].ino == ino) {
			free(line);	/* a second name of the same file */
			return;
		}
	if (nents == cap) {
		cap = cap ? 2 * cap : 256;
		ents = realloc(ents, cap * sizeof(*ents));
		if (!ents)
			exit(1);
	}
	ents[nents++] = (struct ent){ dev, ino, line };
}

struct cs_range {
	uint64_t off, len;
};

struct cs_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

static uint64_t cached(int fd, size_t a, size_t b)
{
	struct cs_range r = { (uint64_t)a * (uint64_t)pagesz, (uint64_t)(b - a) * (uint64_t)pagesz };
	struct cs_stat cs;

	if (syscall(__NR_cachestat, fd, &r, &cs, 0)) {
		perror("cachestat");
		exit(1);
	}
	return cs.nr_cache;
}

/* Print the cached runs of [a, b), merging with the run that ends at *open. */
static void runs(FILE *o, int fd, size_t a, size_t b, size_t *n, size_t *start, size_t *end)
{
	uint64_t c;

	if (a >= b || !(c = cached(fd, a, b)))
		return;
	if (c < b - a) {
		runs(o, fd, a, a + (b - a) / 2, n, start, end);
		runs(o, fd, a + (b - a) / 2, b, n, start, end);
		return;
	}
	if (*n && *end == a) {
		*end = b;
		return;
	}
	if (*n)
		fprintf(o, "%s%zu-%zu", *n > 1 ? "," : "", *start, *end - 1);
	*start = a;
	*end = b;
	(*n)++;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	uint32_t kdev = major(st->st_dev) << 20 | minor(st->st_dev);
	size_t pages, span, n = 0, start = 0, end = 0, cap2 = 0, pmd = (size_t)pagesz / 8;
	char *line = NULL;
	FILE *o;
	int fd;

	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (inodes_only) {
		if (asprintf(&line, "%u %ju", kdev, (uintmax_t)st->st_ino) < 0)
			exit(1);
		add(kdev, st->st_ino, line);
		return 0;
	}
	fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* gone meanwhile */
	pages = ((size_t)st->st_size + (size_t)pagesz - 1) / (size_t)pagesz;
	span = (pages + pmd - 1) / pmd * pmd;
	o = open_memstream(&line, &cap2);
	fprintf(o, "%u %ju ", kdev, (uintmax_t)st->st_ino);
	runs(o, fd, 0, span, &n, &start, &end);
	if (n)
		fprintf(o, "%s%zu-%zu", n > 1 ? "," : "", start, end - 1);
	fprintf(o, " %s", path);
	fclose(o);
	close(fd);
	if (!n) {
		free(line);
		return 0;
	}
	add(kdev, st->st_ino, line);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int main(int argc, char **argv)
{
	int i = 1;

	pagesz = sysconf(_SC_PAGESIZE);
	if (i < argc && !strcmp(argv[i], "-i")) {
		inodes_only = true;
		i++;
	}
	if (i == argc) {
		fprintf(stderr, "usage: dresident [-i] DIR...\n");
		return 2;
	}
	for (; i < argc; i++)
		if (nftw(argv[i], visit, 64, FTW_PHYS)) {
			perror(argv[i]);
			return 1;
		}
	qsort(ents, nents, sizeof(*ents), cmp);
	for (size_t k = 0; k < nents; k++)
		puts(ents[k].line);
	return 0;
}
