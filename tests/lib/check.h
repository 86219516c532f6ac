/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checks and the exit statuses of every C test.
 *
 * Every check is counted. A failed one prints where it is (file:line),
 * the expression and, when given, a message with the values that explain
 * it; the test goes on, so one run shows every failure. check_exit()
 * turns the tally into the exit status.
 *
 * Exit statuses follow meson's convention; a test's main() returns only
 * these:
 *   TEST_PASS   0   every check held
 *   TEST_FAIL   1   a check failed
 *   TEST_SKIP  77   the test cannot run here (no root, no tracefs, no
 *                   trace-cmd, ...); it prints the reason first
 *   TEST_ERROR 99   the test could not run to its end (bad usage, a
 *                   fixture that cannot be read, a setup step that
 *                   failed): no verdict either way, and counted as a
 *                   failure by meson and scripts/run-tests
 */
#ifndef DUET_TEST_CHECK_H
#define DUET_TEST_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	TEST_PASS = 0,
	TEST_FAIL = 1,
	TEST_SKIP = 77,
	TEST_ERROR = 99,
};

static unsigned int check_count __attribute__((unused));
static unsigned int check_failures __attribute__((unused));

/*
 * Counts a failure and prints it. One leading space of fmt is skipped:
 * the macros put it there so that a check without a message still has a
 * non-empty format (gcc warns about an empty one).
 */
static inline __attribute__((format(printf, 4, 5))) void
check_fail(const char *file, int line, const char *what, const char *fmt, ...)
{
	va_list ap;

	check_failures++;
	fprintf(stderr, "FAIL %s:%d: %s", file, line, what);
	if (*fmt == ' ')
		fmt++;
	if (*fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
}

/*
 * The one place a check is counted. what names the check in the report;
 * line lets a helper report its caller's line. The message's arguments
 * are evaluated only when the check fails.
 */
#define CHECK_LINE(line, ok, what, ...)					\
	do {								\
		check_count++;						\
		if (!(ok))						\
			check_fail(__FILE__, line, what, " " __VA_ARGS__); \
	} while (0)
#define CHECK_AT(ok, what, ...) CHECK_LINE(__LINE__, ok, what, __VA_ARGS__)

/* CHECK(cond) or CHECK(cond, "format", args...): the message is optional
 * and must be a string literal. */
#define CHECK(cond, ...) CHECK_AT((cond), "CHECK(" #cond ")", __VA_ARGS__)

/* Integers compared as int64_t; both values are printed on failure. */
#define CHECK_EQ(a, b)							\
	do {								\
		int64_t check_a_ = (int64_t)(a), check_b_ = (int64_t)(b); \
		CHECK_AT(check_a_ == check_b_, "CHECK_EQ(" #a ", " #b ")", \
			 "%" PRId64 ", expected %" PRId64, check_a_, check_b_); \
	} while (0)

/* a is a string (NULL fails) equal to b. */
#define CHECK_STR(a, b)							\
	do {								\
		const char *check_a_ = (a), *check_b_ = (b);		\
		CHECK_AT(check_a_ && !strcmp(check_a_, check_b_),	\
			 "CHECK_STR(" #a ", " #b ")", "\"%s\", expected \"%s\"", \
			 check_a_ ? check_a_ : "(null)", check_b_);	\
	} while (0)

/* The summary line, and the exit status the tally gives. */
static inline int check_exit(const char *name)
{
	printf("%s: %u checks, %u failed\n", name, check_count, check_failures);
	return check_failures ? TEST_FAIL : TEST_PASS;
}

/*
 * Reads dir/name whole, NUL-terminated; NULL on error. A file that
 * cannot be read counts as a failed check: the fixtures are part of the
 * test.
 */
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
	free(path);
	CHECK_AT(0, "check_slurp", "cannot read %s/%s", dir, name);
	return NULL;
}

#endif
