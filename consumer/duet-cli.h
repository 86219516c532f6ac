/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef DUET_CLI_H
#define DUET_CLI_H

int cmd_watch(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_record(int argc, char **argv);

#endif
