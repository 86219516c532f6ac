// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet: the command line. One table lists the subcommands; each parses
 * its own options through cli_options() (options.c).
 */
#include <stdio.h>
#include <string.h>

#include "duet-cli.h"

struct cli_cmd {
	const char *name;
	const char *args;	/* its operands, for the list below */
	const char *help;	/* one line */
	int (*run)(int argc, char **argv);
};

static const struct cli_cmd commands[] = {
	{ "watch", "PATH...", "print page-cache events for files under PATH", cmd_watch },
	{ "status", "", "event semantics of this kernel, duet's tracing instances", cmd_status },
	{ "record", "[PATH...] [-- COMMAND]", "page-cache events into a trace.dat", cmd_record },
	{ "report", "FILE", "per-file page-cache summary of a recorded trace.dat", cmd_report },
	{ "ls", "PATH...", "what the page cache holds of each file under PATH", cmd_ls },
	{ "top", "[PATH...]", "live view of page-cache activity per file and process", cmd_top },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* A command and its operands take 16 columns, or what they need and two blanks. */
static void usage(FILE *f)
{
	fputs("usage: duet COMMAND [ARGS]\ncommands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct cli_cmd *c = &commands[i];
		int w = fprintf(f, "  %s%s%s", c->name, c->args[0] ? " " : "", c->args);

		fprintf(f, "%*s%s\n", w < 18 ? 18 - w : 2, "", c->help);
	}
	fputs("Run 'duet COMMAND --help' for a command's options.\n", f);
}

int main(int argc, char **argv)
{
	char prog[64];

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		/* Messages of the command, getopt's included, start with "duet NAME". */
		snprintf(prog, sizeof(prog), "duet %s", commands[i].name);
		argv[1] = prog;
		return commands[i].run(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("duet " DUET_VERSION);
		return CLI_EXIT_OK;
	}
	fprintf(stderr, "duet: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
