/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Minimal assertions for the unit tests: every check is counted, a failed
 * one is reported with its values, and check_exit() turns the tally into
 * the exit status (0 pass, 1 fail). Tests never stop at the first failure.
 */
#ifndef DUET_TEST_CHECK_H
#define DUET_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned int check_n, check_failed;

#define CHECK(cond)							\
	do {								\
		check_n++;						\
		if (!(cond)) {						\
			check_failed++;					\
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",	\
				__FILE__, __LINE__, #cond);		\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		int64_t check_a_ = (int64_t)(a), check_b_ = (int64_t)(b); \
		check_n++;						\
		if (check_a_ != check_b_) {				\
			check_failed++;					\
			fprintf(stderr, "%s:%d: %s == %" PRId64		\
				", expected %s == %" PRId64 "\n",	\
				__FILE__, __LINE__, #a, check_a_, #b,	\
				check_b_);				\
		}							\
	} while (0)

#define CHECK_STR(a, b)							\
	do {								\
		const char *check_a_ = (a), *check_b_ = (b);		\
		check_n++;						\
		if (!check_a_ || strcmp(check_a_, check_b_)) {		\
			check_failed++;					\
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a,			\
				check_a_ ? check_a_ : "(null)", check_b_); \
		}							\
	} while (0)

static inline int check_exit(const char *name)
{
	printf("%s: %u checks, %u failed\n", name, check_n, check_failed);
	return check_failed ? 1 : 0;
}

/* Reads a whole file, NUL-terminated; NULL on error. */
static inline char *check_slurp(const char *dir, const char *name, size_t *len)
{
	char *path = NULL, *buf = NULL;
	FILE *f = NULL;
	long n;

	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		path = NULL;
		goto fail;
	}
	f = fopen(path, "rb");
	if (!f)
		goto fail;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto fail_close;
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto fail_close;
	buf[n] = '\0';
	fclose(f);
	free(path);
	if (len)
		*len = (size_t)n;
	return buf;
fail_close:
	fclose(f);
	free(buf);
fail:
	fprintf(stderr, "cannot read %s/%s\n", dir, name);
	free(path);
	check_n++;
	check_failed++;
	return NULL;
}

#endif
