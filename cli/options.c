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
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	/* strtoull would also take blanks, a sign (even "-1") and nothing at all. */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int cli_number(const struct cli_arg *a, uint64_t min, uint64_t max, uint64_t *ret)
{
	int r = cli_parse_u64(a->value, min, max, ret);

	if (r == -EINVAL)
		fprintf(stderr, "%s: %s: '%s' is not a number\n", a->prog, a->name, a->value);
	else if (r)
		fprintf(stderr, "%s: %s: '%s' is out of range (%" PRIu64 " to %" PRIu64 ")\n",
			a->prog, a->name, a->value, min, max);
	return r ? CLI_EXIT_USAGE : 0;
}

int cli_seconds(const struct cli_arg *a, double max, double *ret)
{
	const char *s = a->value;
	size_t digits = strspn(s, "0123456789"), len = strlen(s);
	double v;
	char *end;

	/*
	 * Digits with at most one point: strtod would also take blanks, a
	 * sign, "inf", "nan" and hexadecimal.
	 */
	if (s[digits] == '.')
		digits += 1 + strspn(s + digits + 1, "0123456789");
	if (!len || digits != len || !strcmp(s, ".")) {
		fprintf(stderr, "%s: %s: '%s' is not a number of seconds\n", a->prog, a->name, s);
		return CLI_EXIT_USAGE;
	}
	v = strtod(s, &end);
	if (*end || !(v > 0) || v > max) {
		fprintf(stderr, "%s: %s: '%s' is out of range (more than 0, at most %g)\n",
			a->prog, a->name, s, max);
		return CLI_EXIT_USAGE;
	}
	*ret = v;
	return 0;
}
