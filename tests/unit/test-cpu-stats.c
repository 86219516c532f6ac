// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dc_parse_cpu_stats() on per_cpu/cpu0/stats recorded from 6.18 right
 * after the overrun fixture pages (tests/data/cpu-stats-6.18.txt), and
 * on edited texts.
 *
 * usage: test-cpu-stats DATADIR
 */
#include <errno.h>

#include "../lib/check.h"
#include "live.h"

static void parse(const char *text, int want, uint64_t want_over, uint64_t want_drop)
{
	uint64_t over = 0, drop = 0;

	CHECK_EQ(dc_parse_cpu_stats(text, &over, &drop), want);
	if (!want) {
		CHECK_EQ(over, want_over);
		CHECK_EQ(drop, want_drop);
	}
}

int main(int argc, char **argv)
{
	char *text;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DATADIR\n", argv[0]);
		return TEST_ERROR;
	}
	text = check_slurp(argv[1], "cpu-stats-6.18.txt", NULL);
	if (!text)
		return TEST_ERROR;
	/* The same 1932 as the missed-events count of overrun-cpu0-01.bin. */
	parse(text, 0, 1932, 0);
	free(text);

	/* "commit overrun:" is a different counter. */
	parse("entries: 1\ncommit overrun: 9\noverrun: 7\ndropped events: 3\n", 0, 7, 3);
	parse("overrun: 18446744073709551615\ndropped events: 42", 0, UINT64_MAX, 42);
	parse("entries: 0\ncommit overrun: 9\ndropped events: 3\n", -EPROTO, 0, 0);
	parse("entries: 0\noverrun: 1\n", -EPROTO, 0, 0);
	parse("", -EPROTO, 0, 0);
	return check_exit("test-cpu-stats");
}
