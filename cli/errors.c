// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The sentences several subcommands say when tracing cannot be used, or
 * when duetd refuses them: each tells what to do, and says it the same way
 * in every subcommand.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "duet-cli.h"
#include "duet/duet.h"

#define NEEDS_ROOT "needs root: run it as root"
#define MOUNT_TRACEFS							\
	"mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) on a kernel built "	\
	"with CONFIG_TRACING"

void cli_say_tracing(const char *prog, int err, const char *events)
{
	if (err == -EACCES || err == -EPERM)
		fprintf(stderr, "%s: reading the tracing ring buffer " NEEDS_ROOT " (sudo %s ...)\n",
			prog, prog);
	else if (err == -ENOENT)
		fprintf(stderr, "%s: tracefs or %s are missing: " MOUNT_TRACEFS "\n", prog, events);
	else if (err == -EPROTO)
		fprintf(stderr, "%s: an event's format has fields this version cannot decode (%s)\n",
			prog, strerror(-err));
	else
		fprintf(stderr, "%s: cannot set up tracing: %s\n", prog, strerror(-err));
}

void cli_say_tracefs(const char *prog, int err)
{
	if (err == -EACCES || err == -EPERM)
		fprintf(stderr, "%s: reading tracefs " NEEDS_ROOT " (sudo %s ...)\n", prog, prog);
	else
		fprintf(stderr, "%s: tracefs is not available: " MOUNT_TRACEFS "\n", prog);
}

bool cli_duetd_refused(int err)
{
	return err == -EXDEV || err == -ESRCH;
}

void cli_say_duetd_refused(const char *prog, const char *sock, int err, const char *why)
{
	fprintf(stderr, "%s: duetd on %s refused this client: %s\n", prog, sock,
		duet_strerror(err));
	if (why && *why)
		fprintf(stderr, "%s: duetd said: %s\n", prog, why);
}
