/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef DUET_CLI_H
#define DUET_CLI_H

int cmd_watch(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_record(int argc, char **argv);

#include <signal.h>

/* duet watch's and duet record's loop (cmdloop.c): sfd reports the
 * blocked signals sigs, tfd fires every second; idx_fd < 0: none. */
struct cmdloop {
	int sfd, efd, tfd;
};

int cmdloop_open(struct cmdloop *l, const sigset_t *sigs, int src_fd, int idx_fd);
void cmdloop_close(struct cmdloop *l);

#endif
