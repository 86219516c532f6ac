/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A trace.dat (version 6) writer, written from the format described in
 * trace-cmd.dat.v6(5): the file trace-cmd report and libtracecmd read.
 * The per-CPU data are raw ring-buffer sub-buffers, stored as read.
 */
#ifndef DUET_TRACEDAT_H
#define DUET_TRACEDAT_H

#include <stddef.h>
#include <stdint.h>

/* trace.dat option ids (trace-cmd.dat.v7(5) lists them; v6 uses the same). */
#define DC_TD_OPT_CPUSTAT	2
#define DC_TD_OPT_TRACECLOCK	4
#define DC_TD_OPT_UNAME		5
#define DC_TD_OPT_VERSION	9

struct dc_td_blob {
	const void *data;
	size_t len;
};

struct dc_td_system {
	const char *name;
	const struct dc_td_blob *formats;	/* one per event */
	size_t n;
};

struct dc_td_option {
	uint16_t id;
	struct dc_td_blob b;
};

struct dc_tracedat {
	uint32_t page_size;		/* bytes per sub-buffer in the data */
	uint8_t long_size;		/* userspace long: 4 or 8 */
	struct dc_td_blob header_page;	/* events/header_page */
	struct dc_td_blob header_event;	/* events/header_event */
	const struct dc_td_blob *ftrace;	/* events/ftrace/ * /format */
	size_t nftrace;
	const struct dc_td_system *systems;
	size_t nsystems;
	struct dc_td_blob kallsyms;	/* may be empty */
	struct dc_td_blob printk;	/* may be empty */
	struct dc_td_blob cmdlines;	/* "PID COMM\n" lines */
	const struct dc_td_option *opts;
	size_t nopts;
	unsigned int ncpus;
	/*
	 * CPU i's data: cpu_size[i] bytes read from cpu_fd[i] at offset 0,
	 * a whole number of page_size sub-buffers.
	 */
	const int *cpu_fd;
	const uint64_t *cpu_size;
};

/*
 * Write the file to fd (at its current offset 0, regular file). Returns
 * 0, -EINVAL for a description the format cannot hold, or -errno of a
 * failed read or write.
 */
int dc_tracedat_write(int fd, const struct dc_tracedat *t);

#endif
