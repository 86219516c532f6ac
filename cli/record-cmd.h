/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duet record's state, shared by the command (record-cmd.c) and the
 * writing of the trace.dat (record-trace.c).
 */
#ifndef DUET_RECORD_CMD_H
#define DUET_RECORD_CMD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uthash.h>

#include "devices.h"
#include "duet-cli.h"
#include "live.h"
#include "tracedat.h"

struct spool {
	int fd;
	uint64_t size;		/* reader thread of this CPU only, until stop */
	size_t page_size;
};

struct pid_ent {
	int pid;
	char comm[64];
	UT_hash_handle hh;
};

struct rec {
	struct dc_live *live;
	struct dc_index *idx;	/* NULL without PATH */
	struct spool *sp;
	unsigned int ncpus;
	struct pid_ent *pids;
	struct dc_sidecar *side;	/* the paths of the files seen */
	uint64_t *lost_cpu;
	uint64_t lost_pages;	/* reported by missed-event marks in pages */
	uint64_t records;

	/* The command around the recording (cmd_record's steps). */
	struct dc_live_opts lopts;
	const char *out;	/* -o */
	unsigned int file_version;	/* --file-version: 6 or 7 */
	enum dc_td_compression compression;	/* --compression (version 7) */
	bool compression_set;
	char *side_path;	/* out + ".duet" */
	int ofd, side_fd;	/* created before recording, written after it */
	bool written;		/* both complete: kept */
	const char *const *extras;	/* events enabled besides the page-cache ones */
	char **user_extras;	/* --events' (freed at the end) */
	const char *avail[16];	/* the default extras this kernel has */
	bool loads;		/* --loads: readahead and access events too */
	const char **all_extras;	/* extras with --loads' (freed at the end) */
	char **roots;		/* the PATHs resolved */
	size_t nroots;
	char **cmd;		/* -- COMMAND; NULL: until a signal */
	pid_t child;
	int child_status;
	bool child_done;	/* reaped */
	struct dc_mounts mounts;
	uint32_t *devs, *alldevs;	/* of the PATHs; without PATH, every mount's */
	size_t ndevs;
	struct dc_bdi *bdis;
	size_t nbdis;
	const char *top;	/* tracefs */
	char **stats_text;	/* each CPU's ring-buffer stats, for the trace */
	struct cmdloop loop;
	sigset_t old_mask;	/* the one COMMAND runs with */
};

/* pid's command name, kept for the trace's cmdlines (saved_cmdlines first, else /proc). */
void record_see_pid(struct rec *r, int pid);
/* A file of the tracefs instance inst (NULL when unreadable); *len its size if len. */
char *record_inst_file(const char *top, const char *inst, const char *file, size_t *len);
/*
 * The trace.dat into fd, once tracing stopped: the spooled pages, the
 * formats of the sources in use and of extras, the ftrace formats, the
 * cmdlines, the clock, each CPU's stats_text, uname and version. 0 or
 * -errno.
 */
int record_write_trace(struct rec *r, int fd, const char *top, const char *const *extras,
		       char **stats_text);

#endif
