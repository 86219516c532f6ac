/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duet top: the counts it keeps (top.c) and the view that shows them
 * (top-view.c).
 */
#ifndef DUET_CLI_TOP_H
#define DUET_CLI_TOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "causes.h"
#include "report-loads.h"

/* The counted columns. */
enum { TC_ADDED, TC_REMOVED, TC_DIRTY, TC_FLUSHED, TC_REFAULT, TC_NR };

/* Sort keys, in the order the 's' key cycles them. */
enum top_sort {
	TS_TOTAL,	/* added + removed + dirtied + flushed */
	TS_ADDED,
	TS_REMOVED,
	TS_DIRTIED,
	TS_FLUSHED,
	TS_REFAULTS,
	TS_CACHED,	/* the process view sorts by total instead */
	TS_NAME,	/* path, or the process's comm */
	TS_NR,
};

extern const char *const top_sort_names[TS_NR];

struct top_counts {
	uint64_t v[TC_NR];
	uint64_t cause[CAUSE_NR];	/* pages removed, by cause */
};

struct top_fkey {
	uint32_t dev;
	uint32_t pad;
	uint64_t ino;
	uint64_t gen;	/* duetd's file generation; 0 as root */
};

struct top_file {
	struct top_fkey k;
	char *path;		/* NULL: not known (any more) */
	bool deleted;		/* no name under the PATHs any more */
	struct top_counts iv, tot;	/* this interval, since the start */
	int adder, evictor;	/* the last pids that added and removed; -1: none */
	int64_t cached;		/* pages, at the last frame; -1: unknown */
	struct rloads ld, ld_tot;	/* --loads: this interval, the ones before */
	UT_hash_handle hh;
};

struct top_proc {
	int pid;
	char comm[32];
	struct top_counts iv, tot;
	UT_hash_handle hh;
};

/* Pages removed while top runs (refaults): open addressing, linear probing. */
struct top_pslot {
	uint64_t ino;
	uint64_t index;
	uint32_t dev;
	uint32_t used;
};

struct top_pages {
	struct top_pslot *s;
	size_t cap, n;
	bool full;	/* more removals than it holds: refaults are a lower bound */
};

struct top {
	/* The options. */
	double interval;
	enum top_sort sort;
	bool cumulative, batch, processes, daemon, loads;
	uint64_t iterations;	/* 0: until q or a signal */
	/* The counts. */
	struct top_file *files;
	struct top_proc *procs;
	struct top_pages pages;
	uint64_t events, lost, frames;
	struct loads *ld_state;	/* --loads: per task, adds not yet settled */
	struct rloads ld_other;	/* loads of files not shown (not under the PATHs) */
	bool via_duetd;		/* no pids: no process view, no causes */
	bool flush_inode;	/* FLUSHED counts inode-level writebacks */
	const char *describe;	/* the event source, one line */
	char scanning[128];	/* non-empty: duetd's scan is running (what it says) */
	/* The view. */
	bool paused, editing, quit;
	char filter[256];	/* a substring of the path (comm) shown; "" all */
	size_t filter_len;
	int rows, cols;
	const char *prog;
	/* Resolves a file's path anew at a frame (a rename); NULL: keep it. */
	void (*refresh_path)(struct top *t, struct top_file *f);
	void *src;		/* the source's own state, for refresh_path */
};

/* top-view.c */
int top_term_open(struct top *t);
void top_term_close(void);
/* Keys read from standard input (interactive mode). */
void top_keys(struct top *t, const char *buf, size_t n);
/* One frame: on the terminal, or as text on stdout (--batch). */
void top_frame(struct top *t);

#endif
