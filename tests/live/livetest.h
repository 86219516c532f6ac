/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the live tests: counted checks with a message (the test goes
 * on after a failure), and the skip rule (exit 77 with the reason).
 */
#ifndef DUET_LIVETEST_H
#define DUET_LIVETEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsimg.h"

static int failures __attribute__((unused)), checks __attribute__((unused));

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* Stop the test: say why, undo every image and mount, exit 1. */
static inline __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fsimg_cleanup_all();
	exit(1);
}

/* Live tests need root (tracing, loop devices); exit 77 otherwise. */
static inline void livetest_require_root(void)
{
	if (geteuid()) {
		printf("SKIP: needs root (reads the tracing ring buffer, mounts loop devices)\n");
		exit(77);
	}
}

#ifdef DUET_LIVE_H
/* ... and tracefs, for the tests that use the consumer directly. */
static inline void livetest_require(void)
{
	livetest_require_root();
	if (dc_tracefs_ensure(NULL)) {
		printf("SKIP: tracefs is not available\n");
		exit(77);
	}
}
#endif

#endif
