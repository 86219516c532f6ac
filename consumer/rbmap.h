/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One CPU's tracing ring buffer mapped into memory (kernel 6.10 and
 * later): mmap() of per_cpu/cpuN/trace_pipe_raw gives a meta page
 * (struct trace_buffer_meta, include/uapi/linux/trace_mmap.h) and the
 * sub-buffers after it; TRACE_MMAP_IOCTL_GET_READER hands the reader
 * what there is to read: a sub-buffer, by id, and how far into it the
 * kernel has let it read. Nothing is copied: the live reader (reader.c)
 * decodes the sub-buffer where it lies (dc_decode_page_piece()).
 */
#ifndef DUET_RBMAP_H
#define DUET_RBMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "page.h"

struct dc_rbmap;

/* What GET_READER handed out. */
struct dc_rbmap_piece {
	const void *page;	/* the reader sub-buffer, in the mapping */
	size_t len;		/* its size (the meta page's subbuf_size) */
	size_t end;		/* event data handed out so far (reader.read) */
	struct dc_page_pos *pos;	/* where decoding stopped in it */
	int64_t lost;		/* reader.lost_events at the swap (0: none) */
	bool fresh;		/* a sub-buffer not seen before */
};

/*
 * Map the buffer of the trace_pipe_raw fd (opened O_NONBLOCK: GET_READER
 * then never waits). The mapping is refused with the kernel's answer:
 * -ENODEV (no mmap: older kernel, a boot-mapped instance), -EBUSY (a
 * snapshot), -EINVAL, -EPERM...; the error of a first GET_READER; -EPROTO
 * for a meta page this code does not understand (too short, sizes that do
 * not add up). The sizes are the meta page's, read at run time.
 */
int dc_rbmap_open(int fd, struct dc_rbmap **ret);
/*
 * Ask for the next piece (TRACE_MMAP_IOCTL_GET_READER). 0 and *p (p->end
 * == p->pos->off when there is nothing new), or -errno.
 */
int dc_rbmap_get(struct dc_rbmap *m, struct dc_rbmap_piece *p);
/* The sub-buffer size the kernel maps. */
size_t dc_rbmap_subbuf_size(const struct dc_rbmap *m);
/* Unmap. NULL is a no-op. The fd stays the caller's. */
void dc_rbmap_free(struct dc_rbmap *m);

#endif
