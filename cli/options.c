// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Option parsing shared by the subcommands: --help, usage errors and
 * numbers are handled here once, so every subcommand answers them the
 * same way (duet(1), EXIT STATUS).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet-cli.h"

/* Long options a subcommand may have (its table plus --help). */
#define CLI_MAX_OPTS 32

/* The long name of the option getopt returned as key, "-k" if it has none. */
static const char *opt_name(const struct option *lo, int key, char *buf, size_t len)
{
	for (; lo->name; lo++)
		if (!lo->flag && lo->val == key) {
			snprintf(buf, len, "--%s", lo->name);
			return buf;
		}
	snprintf(buf, len, "-%c", key);
	return buf;
}

int cli_options(const struct cli_opts *o, int argc, char **argv, cli_opt_fn fn, void *ud)
{
	struct option lo[CLI_MAX_OPTS + 2];
	char so[64], name[64];
	size_t n = 0;
	int opt;

	for (; o->longopts && o->longopts[n].name; n++) {
		if (n == CLI_MAX_OPTS) {
			fprintf(stderr, "%s: more than %d options\n", argv[0], CLI_MAX_OPTS);
			return CLI_EXIT_FAIL;	/* a programming error, said plainly */
		}
		lo[n] = o->longopts[n];
	}
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ 0 };
	snprintf(so, sizeof(so), "%sh", o->shortopts ? o->shortopts : "");
	while ((opt = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		struct cli_arg a = {
			.prog = argv[0],
			.value = optarg,
			.key = opt,
		};
		int r;

		if (opt == 'h') {
			fputs(o->usage, stdout);
			return CLI_EXIT_OK;
		}
		if (opt == '?' || opt == ':')
			return cli_usage_error(o);	/* getopt said which */
		a.name = opt_name(lo, opt, name, sizeof(name));
		r = fn(ud, &a);
		if (r)
			return r;
	}
	return CLI_GO;
}

int cli_usage_error(const struct cli_opts *o)
{
	fputs(o->usage, stderr);
	return CLI_EXIT_USAGE;
}
