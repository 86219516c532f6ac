/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The duet program's own interfaces: the subcommands, the option parsing
 * they share (options.c), the sentences they share (errors.c) and their
 * event loop (cmdloop.c).
 */
#ifndef DUET_CLI_H
#define DUET_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of every subcommand (duet(1)). */
#define CLI_EXIT_OK	0
#define CLI_EXIT_FAIL	1
#define CLI_EXIT_USAGE	2	/* a bad option, value or operand */

/*
 * The subcommands, listed by the command table (duet.c). argv[0] is
 * "duet NAME": getopt's messages and the shared ones start with it.
 */
int cmd_watch(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_top(int argc, char **argv);

/* ---- options (options.c) ---- */

/* A subcommand's options: getopt_long's tables and its usage text. */
struct cli_opts {
	const char *usage;		/* printed by --help, and on a usage error */
	const char *shortopts;		/* without "h": --help and -h are added */
	const struct option *longopts;	/* without "help"; ends with { 0 } */
};

/* One option as the subcommand's handler sees it. */
struct cli_arg {
	const char *prog;	/* "duet NAME": messages start with it */
	const char *name;	/* "--buffer-kb": the long name, for messages */
	const char *value;	/* its argument; NULL if it takes none */
	int key;		/* getopt's value (the short letter, or the table's) */
};

/* An option handler: 0, or an exit status after saying why. */
typedef int (*cli_opt_fn)(void *ud, const struct cli_arg *a);

/* cli_options(): the options are parsed; operands start at optind. */
#define CLI_GO (-1)

/*
 * Parses argv's options (argv[0] is "duet NAME"). --help and -h print
 * o->usage on standard output; an unknown option or a missing value is
 * said by getopt, then o->usage goes to standard error. Every other
 * option goes to fn. Returns CLI_GO with optind at the first operand, or
 * the exit status the subcommand returns (CLI_EXIT_OK after --help).
 */
int cli_options(const struct cli_opts *o, int argc, char **argv, cli_opt_fn fn, void *ud);
/* The usage on standard error for a bad operand: returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_opts *o);

/*
 * The option's value as a decimal number in [min, max]: 0, or
 * CLI_EXIT_USAGE after one sentence naming the option, e.g.
 * "duet watch: --buffer-kb: '12x' is not a number".
 */
int cli_number(const struct cli_arg *a, uint64_t min, uint64_t max, uint64_t *ret);
/* A positive number of seconds (decimals allowed), at most max: as above. */
int cli_seconds(const struct cli_arg *a, double max, double *ret);
/* The parsing under both: 0, -EINVAL (not a number) or -ERANGE. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* ---- the sentences several subcommands say (errors.c) ---- */

/*
 * dc_live_open() failed with err: what to do about it ("needs root: run
 * it as root", "mount tracefs ..."). events names what was asked for,
 * e.g. "the filemap page-cache events".
 */
void cli_say_tracing(const char *prog, int err, const char *events);
/* dc_tracefs_ensure() failed with err. */
void cli_say_tracefs(const char *prog, int err);
/*
 * Whether err from duetd's answer to HELLO means this client cannot be
 * served as it is (another mount namespace: -EXDEV; the process that
 * connected is gone: -ESRCH), not that no daemon is there.
 */
bool cli_duetd_refused(int err);
/* On stderr: libduet's sentence for err, then the daemon's own (why, may be empty). */
void cli_say_duetd_refused(const char *prog, const char *sock, int err, const char *why);

/* ---- the event loop of duet watch and duet record (cmdloop.c) ---- */

/* sfd reports the blocked signals sigs, tfd fires every second; idx_fd < 0: none. */
struct cmdloop {
	int sfd, efd, tfd;
};

int cmdloop_open(struct cmdloop *l, const sigset_t *sigs, int src_fd, int idx_fd);
void cmdloop_close(struct cmdloop *l);

#endif
