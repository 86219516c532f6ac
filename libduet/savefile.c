// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The saved done marks' codec (savefile.h): pure, every byte checked.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "savefile.h"

#define PAGE_LIMIT	(UINT64_C(1) << 32)	/* the engine's page indices */

int dsv_put_header(FILE *f)
{
	return fprintf(f, "duet-done %d\n", DSV_VERSION) < 0 ? -EIO : 0;
}

int dsv_put(FILE *f, const struct dsv_rec *r)
{
	static const char hex[] = "0123456789abcdef";

	if (fprintf(f, "m %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu64 " %" PRIu64 " ",
		    r->dev, r->ino, r->gen, r->flags, r->index, r->count) < 0)
		return -EIO;
	for (const unsigned char *p = (const unsigned char *)r->path; *p; p++) {
		int e;

		if (*p == '\\')
			e = fputs("\\\\", f);
		else if (*p < 0x20 || *p > 0x7e)
			e = fprintf(f, "\\x%c%c", hex[*p >> 4], hex[*p & 15]);
		else
			e = putc(*p, f);
		if (e < 0)
			return -EIO;
	}
	return putc('\n', f) < 0 ? -EIO : 0;
}

int dsv_put_end(FILE *f, uint64_t n)
{
	return fprintf(f, "end %" PRIu64 "\n", n) < 0 ? -EIO : 0;
}

/* A parse in progress: the line being read is [p, eol). */
struct cur {
	const char *p, *eol;
	const char *why;
};

/* Decimal digits only, no sign, within max; then the separator sep. */
static bool get_u64(struct cur *c, uint64_t max, char sep, uint64_t *v)
{
	uint64_t x = 0;
	const char *start = c->p;

	while (c->p < c->eol && *c->p >= '0' && *c->p <= '9') {
		unsigned int d = (unsigned int)(*c->p - '0');

		if (x > (max - d) / 10) {
			c->why = "a number is out of range";
			return false;
		}
		x = x * 10 + d;
		c->p++;
	}
	if (c->p == start || c->p == c->eol || *c->p != sep) {
		c->why = "a record is malformed (its numbers)";
		return false;
	}
	c->p++;
	*v = x;
	return true;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* The escaped path [c->p, c->eol) into a new string. */
static char *get_path(struct cur *c)
{
	char *out = malloc((size_t)(c->eol - c->p) + 1), *o = out;

	if (!out)
		return NULL;
	while (c->p < c->eol) {
		unsigned char ch = (unsigned char)*c->p++;

		if (ch < 0x20 || ch > 0x7e) {
			c->why = "a path holds a byte that should have been escaped";
			goto bad;
		}
		if (ch != '\\') {
			*o++ = (char)ch;
			continue;
		}
		if (c->p < c->eol && *c->p == '\\') {
			*o++ = '\\';
			c->p++;
			continue;
		}
		if (c->eol - c->p < 3 || c->p[0] != 'x' || hexval(c->p[1]) < 0 ||
		    hexval(c->p[2]) < 0) {
			c->why = "a path holds a bad escape";
			goto bad;
		}
		ch = (unsigned char)(hexval(c->p[1]) << 4 | hexval(c->p[2]));
		if (!ch) {
			c->why = "a path holds a NUL byte";
			goto bad;
		}
		*o++ = (char)ch;
		c->p += 3;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	errno = EBADMSG;
	return NULL;
}

static bool line_is(const struct cur *c, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(c->eol - c->p) == n && !memcmp(c->p, s, n);
}

/* One record of version 2 (after "m "), or of version 1. */
static int get_rec(struct cur *c, int version, struct dsv_rec *r)
{
	uint64_t dev = 0, flags = 0;

	memset(r, 0, sizeof(*r));
	if (version == 2) {
		if (!get_u64(c, UINT32_MAX, ' ', &dev) || !get_u64(c, UINT64_MAX, ' ', &r->ino) ||
		    !get_u64(c, UINT64_MAX, ' ', &r->gen) || !get_u64(c, UINT32_MAX, ' ', &flags) ||
		    !get_u64(c, UINT64_MAX, ' ', &r->index) ||
		    !get_u64(c, UINT64_MAX, ' ', &r->count))
			return -EBADMSG;
		if (flags & ~(uint64_t)DSV_FLAGS) {
			c->why = "a record has flags this libduet does not know";
			return -EBADMSG;
		}
		r->dev = (uint32_t)dev;
		r->flags = (uint32_t)flags;
	} else {
		/* "%llu %llu %llu %s": the path after the blanks that follow. */
		if (!get_u64(c, UINT64_MAX, ' ', &r->ino) || !get_u64(c, UINT64_MAX, ' ', &r->index) ||
		    !get_u64(c, UINT64_MAX, ' ', &r->count))
			return -EBADMSG;
		while (c->p < c->eol && (*c->p == ' ' || *c->p == '\t'))
			c->p++;
	}
	if (r->index >= PAGE_LIMIT || r->count > PAGE_LIMIT - r->index) {
		c->why = "a mark reaches past 2^32 pages";
		return -EBADMSG;
	}
	if (version == 2) {
		r->path = get_path(c);
		if (!r->path)
			return errno == EBADMSG ? -EBADMSG : -ENOMEM;
		return 0;
	}
	if (memchr(c->p, '\0', (size_t)(c->eol - c->p))) {
		c->why = "a path holds a NUL byte";
		return -EBADMSG;
	}
	r->path = strndup(c->p, (size_t)(c->eol - c->p));
	return r->path ? 0 : -ENOMEM;
}

int dsv_parse(const char *buf, size_t len, struct dsv_rec **recs, size_t *nrecs, int *version,
	      const char **why)
{
	const char *end = buf + len;
	struct dsv_rec *v = NULL;
	struct cur c = { .p = buf };
	size_t n = 0, cap = 0;
	bool ended = false;
	int ver, r = 0;

	c.eol = memchr(buf, '\n', len);
	if (!c.eol) {
		c.why = len ? "it is not a file duet_task_save() wrote (no header line)" :
			      "it is empty";
		r = -EBADMSG;
		goto out;
	}
	if (line_is(&c, "duet-done 2")) {
		ver = 2;
	} else if (line_is(&c, "duet-done 1")) {
		ver = 1;
	} else {
		c.why = c.eol - c.p > 10 && !memcmp(c.p, "duet-done ", 10) ?
				"its version is not one this libduet reads (1 or 2): written by a newer one?" :
				"it is not a file duet_task_save() wrote (its header)";
		r = -EBADMSG;
		goto out;
	}
	for (c.p = c.eol + 1; c.p < end; c.p = c.eol + 1) {
		uint64_t count;

		c.eol = memchr(c.p, '\n', (size_t)(end - c.p));
		if (!c.eol) {
			/* Version 1 was read by fgets(): a last line without its newline. */
			if (ver == 2) {
				c.why = "it is cut short (a line without its end)";
				r = -EBADMSG;
				goto out;
			}
			c.eol = end;
		}
		if (ended) {
			c.why = "it has lines after its end line";
			r = -EBADMSG;
			goto out;
		}
		if (ver == 2 && c.eol - c.p > 4 && !memcmp(c.p, "end ", 4)) {
			const char *nl = c.eol;

			/* The number ends at the newline (there is one: version 2). */
			c.p += 4;
			c.eol = nl + 1;
			if (!get_u64(&c, UINT64_MAX, '\n', &count)) {
				c.why = "its end line is malformed";
				r = -EBADMSG;
				goto out;
			}
			c.eol = nl;
			if (count != n) {
				c.why = "its end line counts other records than it holds";
				r = -EBADMSG;
				goto out;
			}
			ended = true;
			if (c.eol + 1 == end)
				break;
			continue;
		}
		if (ver == 2) {
			if (c.eol - c.p < 2 || memcmp(c.p, "m ", 2)) {
				c.why = "a line is neither a record nor the end line";
				r = -EBADMSG;
				goto out;
			}
			c.p += 2;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct dsv_rec *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		r = get_rec(&c, ver, &v[n]);
		if (r)
			goto out;
		n++;
		if (c.eol == end)
			break;
	}
	if (ver == 2 && !ended) {
		c.why = "it is cut short (no end line)";
		r = -EBADMSG;
	}
out:
	if (r) {
		dsv_free(v, n);
		if (why)
			*why = r == -EBADMSG ? c.why : "out of memory";
		return r;
	}
	*recs = v;
	*nrecs = n;
	*version = ver;
	return 0;
}

void dsv_free(struct dsv_rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(recs[i].path);
	free(recs);
}
