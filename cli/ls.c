// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet ls: what the page cache holds of each file of a tree, through
 * duet_residency() (libduet/residency.c): a walk with the caller's own
 * rights and cachestat, or one of duetd's datasets, live.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duet-cli.h"
#include "duet/duet.h"

enum sort_key { SORT_NONE, SORT_CACHED, SORT_DIRTY, SORT_SIZE, SORT_NAME };

struct ls_args {
	unsigned int flags;
	bool json, names, nul, bytes;
	enum sort_key sort;
	uint64_t top;
	const char *dataset, *socket;
};

struct ls_file {
	struct duet_residency r;	/* r.path owned */
};

struct ls_list {
	struct ls_file *f;
	size_t n, cap;
	int err;
};

static const struct option ls_long[] = {
	{ "recursive", no_argument, NULL, 'r' },
	{ "json", no_argument, NULL, 'j' },
	{ "sort", required_argument, NULL, 's' },
	{ "top", required_argument, NULL, 'n' },
	{ "names", no_argument, NULL, 'N' },
	{ "null", no_argument, NULL, '0' },
	{ "cached-only", no_argument, NULL, 'c' },
	{ "one-file-system", no_argument, NULL, 'x' },
	{ "bytes", no_argument, NULL, 'b' },
	{ "dataset", required_argument, NULL, 'D' },
	{ "socket", required_argument, NULL, 'S' },
	{ 0 },
};

static const struct cli_opts ls_opts = {
	.usage =
	"usage: duet ls [options] PATH...\n"
	"       duet ls [options] --dataset NAME [PATH...]\n"
	"What the page cache holds of each regular file at or under PATH: cached,\n"
	"dirty and writeback pages (cachestat, past the end of file included).\n"
	"Walks with your own rights; a file you cannot open is listed as such.\n"
	"Reads nothing into the page cache.\n"
	"  -r, --recursive        into subdirectories\n"
	"  -x, --one-file-system  stay on each PATH's file system\n"
	"  -c, --cached-only      only files with cached pages\n"
	"  -s, --sort KEY         cached, dirty, size (largest first) or name\n"
	"  -n, --top N            the first N files only (after sorting)\n"
	"      --json             one JSON object (docs/json-schema.md)\n"
	"      --names            only the paths, one per line\n"
	"  -0, --null             with --names: NUL after each path (rsync --from0,\n"
	"                         tar --null -T -)\n"
	"  -b, --bytes            exact byte counts instead of K/M/G\n"
	"  -D, --dataset NAME     duetd's dataset NAME (duetd --dataset NAME=DIR): its\n"
	"                         files with cached pages, from live figures; PATHs\n"
	"                         narrow it to subtrees\n"
	"  -S, --socket PATH      duetd's socket (with --dataset)\n",
	.shortopts = "rjs:n:N0cxbD:S:",
	.longopts = ls_long,
};

static int ls_opt(void *ud, const struct cli_arg *a)
{
	struct ls_args *la = ud;

	switch (a->key) {
	case 'r':
		la->flags |= DUET_RESIDENCY_RECURSIVE;
		return 0;
	case 'x':
		la->flags |= DUET_RESIDENCY_XDEV;
		return 0;
	case 'c':
		la->flags |= DUET_RESIDENCY_CACHED_ONLY;
		return 0;
	case 'j':
		la->json = true;
		return 0;
	case 'N':
		la->names = true;
		return 0;
	case '0':
		la->nul = true;
		return 0;
	case 'b':
		la->bytes = true;
		return 0;
	case 'n':
		return cli_number(a, 1, UINT64_MAX, &la->top);
	case 'D':
		la->dataset = a->value;
		return 0;
	case 'S':
		la->socket = a->value;
		return 0;
	case 's':
		if (!strcmp(a->value, "cached"))
			la->sort = SORT_CACHED;
		else if (!strcmp(a->value, "dirty"))
			la->sort = SORT_DIRTY;
		else if (!strcmp(a->value, "size"))
			la->sort = SORT_SIZE;
		else if (!strcmp(a->value, "name"))
			la->sort = SORT_NAME;
		else {
			fprintf(stderr, "%s: --sort is cached, dirty, size or name (got \"%s\")\n",
				a->prog, a->value);
			return CLI_EXIT_USAGE;
		}
		return 0;
	}
	return CLI_EXIT_USAGE;
}

static int collect(void *ud, const struct duet_residency *r, size_t n)
{
	struct ls_list *l = ud;

	if (l->n + n > l->cap) {
		size_t cap = l->cap ? l->cap : 1024;
		struct ls_file *f;

		while (cap < l->n + n)
			cap *= 2;
		f = realloc(l->f, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		l->f = f;
		l->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		struct ls_file *f = &l->f[l->n];

		f->r = r[i];
		f->r.path = strdup(r[i].path);
		if (!f->r.path)
			return -ENOMEM;
		l->n++;
	}
	return 0;
}

static enum sort_key sort_by;

/* Largest first; ties and errors (unknown figures, last) by name. */
static int cmp(const void *a, const void *b)
{
	const struct duet_residency *x = &((const struct ls_file *)a)->r;
	const struct duet_residency *y = &((const struct ls_file *)b)->r;
	uint64_t u = 0, v = 0;

	if (sort_by != SORT_NAME && (!x->error) != (!y->error))
		return x->error ? 1 : -1;
	switch (sort_by) {
	case SORT_CACHED:
		u = x->cached, v = y->cached;
		break;
	case SORT_DIRTY:
		u = x->dirty, v = y->dirty;
		break;
	case SORT_SIZE:
		u = x->size, v = y->size;
		break;
	default:
		break;
	}
	if (u != v)
		return u > v ? -1 : 1;
	return strcmp(x->path, y->path);
}

static void jstr(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);	/* bytes, not characters: names need not be UTF-8 */
		else
			putchar(*p);
	}
	putchar('"');
}

static const char *human(uint64_t v, bool exact, char *buf, size_t len)
{
	static const char unit[] = "KMGTPE";
	double x = (double)v;
	int u = -1;

	if (exact || v < 1024) {
		snprintf(buf, len, "%" PRIu64, v);
		return buf;
	}
	while (x >= 1024 && u < 5) {
		x /= 1024;
		u++;
	}
	snprintf(buf, len, x < 10 ? "%.1f%c" : "%.0f%c", x, unit[u]);
	return buf;
}

static void print_json(const struct ls_list *l, size_t n, uint64_t ps)
{
	uint64_t files = 0, size = 0, cached = 0, dirty = 0, wb = 0, errors = 0;

	printf("{\"v\":1,\"type\":\"ls\",\"page_size\":%" PRIu64 ",\"files\":[", ps);
	for (size_t i = 0; i < n; i++) {
		const struct duet_residency *r = &l->f[i].r;

		printf("%s{\"path\":", i ? "," : "");
		jstr(r->path);
		if (r->flags & DUET_RESIDENCY_DIR) {
			printf(",\"directory\":true,\"error\":");
			jstr(strerror(-r->error));
			putchar('}');
			errors++;
			continue;
		}
		printf(",\"dev\":\"%u:%u\",\"ino\":%" PRIu64 ",\"size\":%" PRIu64,
		       r->id.dev >> 20, r->id.dev & 0xfffff, r->id.ino, r->size);
		if (r->error) {
			printf(",\"error\":");
			jstr(strerror(-r->error));
			putchar('}');
			errors++;
			files++;
			size += r->size;
			continue;
		}
		printf(",\"cached_pages\":%" PRIu64 ",\"dirty_pages\":%" PRIu64
		       ",\"writeback_pages\":%" PRIu64 ",\"cached_bytes\":%" PRIu64
		       ",\"source\":\"%s\",\"error\":null}",
		       r->cached, r->dirty, r->writeback, r->cached * ps,
		       r->flags & DUET_RESIDENCY_LIVE ? "dataset" :
		       r->flags & DUET_RESIDENCY_MINCORE ? "mincore" : "cachestat");
		files++;
		size += r->size;
		cached += r->cached;
		dirty += r->dirty;
		wb += r->writeback;
	}
	printf("],\"totals\":{\"files\":%" PRIu64 ",\"size\":%" PRIu64 ",\"cached_bytes\":%" PRIu64
	       ",\"dirty_bytes\":%" PRIu64 ",\"writeback_bytes\":%" PRIu64 ",\"errors\":%" PRIu64
	       "}}\n", files, size, cached * ps, dirty * ps, wb * ps, errors);
}

static void print_text(const struct ls_list *l, size_t n, uint64_t ps, bool exact)
{
	uint64_t files = 0, size = 0, cached = 0, dirty = 0, errors = 0;
	char a[32], b[32], c[32], dd[32];

	printf("%8s %8s %8s %8s %5s  %s\n", "CACHED", "DIRTY", "WRITEBK", "SIZE", "PCT", "PATH");
	for (size_t i = 0; i < n; i++) {
		const struct duet_residency *r = &l->f[i].r;
		uint64_t pages = (r->size + ps - 1) / ps;

		if (r->error) {
			printf("%8s %8s %8s %8s %5s  %s (%s: %s)\n", "-", "-", "-",
			       r->flags & DUET_RESIDENCY_DIR ? "-" : human(r->size, exact, dd, 32),
			       "-", r->path,
			       r->flags & DUET_RESIDENCY_DIR ? "directory not read" : "not read",
			       strerror(-r->error));
			errors++;
			continue;
		}
		/* Past the end of the file included: more than 100% is true. */
		printf("%8s %8s %8s %8s %4.0f%%  %s\n", human(r->cached * ps, exact, a, 32),
		       human(r->dirty * ps, exact, b, 32), human(r->writeback * ps, exact, c, 32),
		       human(r->size, exact, dd, 32),
		       pages ? 100.0 * (double)r->cached / (double)pages : r->cached ? 100.0 : 0.0,
		       r->path);
		files++;
		size += r->size;
		cached += r->cached;
		dirty += r->dirty;
	}
	printf("total: %" PRIu64 " files, %s cached of %s, %s dirty", files,
	       human(cached * ps, exact, a, 32), human(size, exact, b, 32),
	       human(dirty * ps, exact, c, 32));
	if (errors)
		printf("; %" PRIu64 " not read", errors);
	putchar('\n');
}

int cmd_ls(int argc, char **argv)
{
	struct ls_args la = { 0 };
	struct duet_residency_opts o = { .sz = sizeof(o) };
	struct ls_list l = { 0 };
	long psz = sysconf(_SC_PAGESIZE);
	uint64_t ps = psz > 0 ? (uint64_t)psz : 4096;
	size_t n;
	int r, rc = CLI_EXIT_OK;

	r = cli_options(&ls_opts, argc, argv, ls_opt, &la);
	if (r != CLI_GO)
		return r;
	if ((optind == argc && !la.dataset) || (la.nul && !la.names) || (la.json && la.names))
		return cli_usage_error(&ls_opts);
	o.flags = la.flags;
	o.dataset = la.dataset;
	o.socket = la.socket;
	if (la.dataset)
		o.flags |= DUET_RESIDENCY_CACHED_ONLY;
	for (int i = optind; i < argc || i == optind; i++) {
		const char *p = i < argc ? argv[i] : NULL;	/* NULL: the whole dataset */

		r = duet_residency(p, &o, collect, &l);
		if (r >= 0)
			continue;
		rc = CLI_EXIT_FAIL;
		if (la.dataset && r == -ENOENT && (!p || !access(p, F_OK)))
			fprintf(stderr, "%s: duetd has no dataset \"%s\" (duetd --dataset NAME=DIR)\n",
				argv[0], la.dataset);
		else if (la.dataset && r == -EXDEV)
			fprintf(stderr, "%s: %s is not inside dataset %s\n", argv[0], p, la.dataset);
		else if (la.dataset && r == -EOPNOTSUPP)
			fprintf(stderr, "%s: this duetd is too old for datasets\n", argv[0]);
		else
			fprintf(stderr, "%s: %s: %s\n", argv[0], p ? p : la.dataset, duet_strerror(r));
		if (r == -ENOMEM)
			break;
	}
	sort_by = la.sort;
	if (la.sort != SORT_NONE)
		qsort(l.f, l.n, sizeof(*l.f), cmp);
	n = la.top && la.top < l.n ? (size_t)la.top : l.n;
	if (rc != CLI_EXIT_OK && !l.n) {
		/* Nothing to show: the sentences above say why. */
	} else if (la.names) {
		for (size_t i = 0; i < n; i++)
			if (!(l.f[i].r.flags & DUET_RESIDENCY_DIR))
				printf("%s%c", l.f[i].r.path, la.nul ? '\0' : '\n');
	} else if (la.json) {
		print_json(&l, n, ps);
	} else {
		print_text(&l, n, ps, la.bytes);
	}
	for (size_t i = 0; i < l.n; i++)
		free((char *)l.f[i].r.path);
	free(l.f);
	if (fflush(stdout) || ferror(stdout))
		rc = CLI_EXIT_FAIL;
	return rc;
}
