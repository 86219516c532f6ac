/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the live tests: the checks and exit statuses of every C test
 * (../lib/check.h), the skip rule (exit 77 with the reason) and die() for
 * a test that cannot go on.
 */
#ifndef DUET_LIVETEST_H
#define DUET_LIVETEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../lib/check.h"
#include "fsimg.h"

/* Stop the test: say why, undo every image and mount, exit 99 (TEST_ERROR). */
static inline __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fsimg_cleanup_all();
	exit(TEST_ERROR);
}

/* Live tests need root (tracing, loop devices); exit 77 otherwise. */
static inline void livetest_require_root(void)
{
	if (geteuid()) {
		printf("SKIP: needs root (reads the tracing ring buffer, mounts loop devices)\n");
		exit(TEST_SKIP);
	}
}

#ifdef DUET_LIVE_H
/* ... and tracefs, for the tests that use the consumer directly. */
static inline void livetest_require(void)
{
	livetest_require_root();
	if (dc_tracefs_ensure(NULL)) {
		printf("SKIP: tracefs is not available\n");
		exit(TEST_SKIP);
	}
}
#endif

#endif
