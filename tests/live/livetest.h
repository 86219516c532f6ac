/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the live tests: the checks and exit statuses of every C test
 * (../lib/check.h), the skip rule (exit 77 with the reason) and die() for
 * a test that cannot go on.
 */
#ifndef DUET_LIVETEST_H
#define DUET_LIVETEST_H

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * The tracing instances of process pid's duet sessions (named
 * duet-PID-STARTTIME, consumer/tracefs.c) that exist now.
 */
static inline int livetest_instances_of(pid_t pid)
{
	DIR *d = opendir("/sys/kernel/tracing/instances");
	struct dirent *de;
	char pre[32];
	int n = 0;

	snprintf(pre, sizeof(pre), "duet-%d-", (int)pid);
	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, pre, strlen(pre));
	if (d)
		closedir(d);
	return n;
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

/*
 * The reader asked for (DUET_READER, or want) is the one in force: 0;
 * TEST_SKIP where the kernel cannot map (before 6.10); TEST_FAIL
 * otherwise. Says why on stdout; the caller frees the source and exits.
 */
static inline int livetest_reader(const struct dc_live *l, const char *want)
{
	const char *have = dc_live_reader(l);
	int maj = 0, min = 0;
	FILE *f;

	if (!want)
		want = getenv("DUET_READER");
	if (!want || !strcmp(want, have))
		return 0;
	f = fopen("/proc/sys/kernel/osrelease", "re");
	if (f) {
		if (fscanf(f, "%d.%d", &maj, &min) != 2)
			maj = 0;
		fclose(f);
	}
	if (!strcmp(want, "mmap") && (maj < 6 || (maj == 6 && min < 10))) {
		printf("SKIP: kernel %d.%d cannot map the ring buffer: %s\n", maj, min,
		       dc_live_describe(l));
		return TEST_SKIP;
	}
	printf("FAIL: reader %s asked for, %s in force: %s\n", want, have, dc_live_describe(l));
	return TEST_FAIL;
}
#endif

#endif
