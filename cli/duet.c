// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet: the command line.
 */
#include <stdio.h>
#include <string.h>

#include "duet-cli.h"

static void usage(FILE *f)
{
	fputs("usage: duet COMMAND [ARGS]\n"
	      "commands:\n"
	      "  watch PATH...   print page-cache events for files under PATH\n"
	      "  status          event semantics of this kernel, duet's tracing instances\n"
	      "  record [PATH...] [-- COMMAND]  page-cache events into a trace.dat\n"
	      "  report FILE     per-file page-cache summary of a recorded trace.dat\n"
	      "Run 'duet COMMAND --help' for a command's options.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "watch"))
		return cmd_watch(argc - 1, argv + 1);
	if (!strcmp(argv[1], "record"))
		return cmd_record(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return cmd_report(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("duet " DUET_VERSION);
		return 0;
	}
	fprintf(stderr, "duet: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
