// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dresident: the page cache of the regular files under each DIR (root
 * side of the daemon tests), in dclient's dump form:
 *
 *   DEV INO RANGES PATH
 *
 * DEV in the kernel's encoding (major << 20 | minor), RANGES the resident
 * pages ("a-b,c-d", from mincore() of a read-only shared mapping, which
 * reads nothing in), files without resident pages left out, sorted by DEV
 * and INO. With -i, only "DEV INO" of every regular file (resident or not).
 * Mount points inside DIR are followed (as libduet's tasks follow them).
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

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

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	uint32_t kdev = major(st->st_dev) << 20 | minor(st->st_dev);
	size_t pages, len = 0, cap2 = 0;
	unsigned char *vec;
	char *line = NULL;
	FILE *o;
	void *m;
	int fd;

	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (inodes_only) {
		if (asprintf(&line, "%u %ju", kdev, (uintmax_t)st->st_ino) < 0)
			exit(1);
		add(kdev, st->st_ino, line);
		return 0;
	}
	if (!st->st_size)
		return 0;
	fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* gone meanwhile */
	pages = ((size_t)st->st_size + (size_t)pagesz - 1) / (size_t)pagesz;
	m = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return 0;
	vec = malloc(pages);
	if (!vec || mincore(m, (size_t)st->st_size, vec)) {
		munmap(m, (size_t)st->st_size);
		free(vec);
		return 0;
	}
	munmap(m, (size_t)st->st_size);
	o = open_memstream(&line, &cap2);
	fprintf(o, "%u %ju ", kdev, (uintmax_t)st->st_ino);
	for (size_t i = 0; i < pages;) {
		size_t j;

		if (!(vec[i] & 1)) {
			i++;
			continue;
		}
		for (j = i; j + 1 < pages && (vec[j + 1] & 1); j++)
			;
		fprintf(o, "%s%zu-%zu", len ? "," : "", i, j);
		len++;
		i = j + 1;
	}
	fprintf(o, " %s", path);
	fclose(o);
	free(vec);
	if (!len) {
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
