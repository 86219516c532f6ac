/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A trace.dat writer, written from the formats described in
 * trace-cmd.dat.v6(5) and trace-cmd.dat.v7(5): the files trace-cmd report
 * and libtracecmd read. The per-CPU data are raw ring-buffer sub-buffers,
 * stored as read (version 6, version 7 uncompressed) or in zstd-compressed
 * chunks of ten pages (version 7, trace-cmd 3.1's default).
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

enum dc_td_compression {
	DC_TD_COMPRESS_NONE,
	DC_TD_COMPRESS_ZSTD,	/* zstd's default level (3), as trace-cmd */
};

struct dc_td_blob {
	const void *data;
	size_t len;
};

struct dc_td_system {
	const char *name;
	const struct dc_td_blob *formats;	/* one per event */
	size_t n;
};

/*
 * An option of the caller's (DC_TD_OPT_*). Version 7 writes its own
 * BUFFER (3), CPUCOUNT (8) and section options (15 to 22): those are
 * refused.
 */
struct dc_td_option {
	uint16_t id;
	struct dc_td_blob b;
};

struct dc_tracedat {
	/*
	 * 6 (also when 0): one header of sections in a fixed order. 7:
	 * sections found through options sections, each compressed with
	 * compression; version 6 has no compression.
	 */
	unsigned int version;
	enum dc_td_compression compression;
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
 * Write the file to fd (at its current offset 0, regular file: version 7
 * fills in section sizes and offsets with pwrite). Returns 0, -EINVAL for
 * a description the format cannot hold, -ENOMEM, -EIO when zstd fails, or
 * -errno of a failed read or write.
 */
int dc_tracedat_write(int fd, const struct dc_tracedat *t);

#endif
