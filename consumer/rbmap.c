// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The mapped ring buffer of one CPU (rbmap.h). Layout, from the kernel's
 * ring_buffer_map(): the meta page at offset 0, then nr_subbufs
 * sub-buffers of subbuf_size bytes from offset meta_page_size; sub-buffer
 * id i is at meta_page_size + i * subbuf_size. The reader sub-buffer is
 * outside the ring while we read it: the writer never overwrites it, it
 * only appends to it while it is also the page being written.
 *
 * GET_READER (ring_buffer_map_get_reader()) first lets us read the rest
 * of the current reader sub-buffer (it moves the kernel's read position
 * to its commit); only when that is all read does it swap in the next
 * one, writing the missed-events flags (and count, if there is room)
 * into its header as read() does. So: same id, more bytes handed out =
 * the writer appended; a new id = the next sub-buffer, decoded from 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rbmap.h"

/*
 * The start of struct trace_buffer_meta (uapi linux/trace_mmap.h, 6.10):
 * defined here because bookworm's headers predate it. Only what this
 * file reads; the kernel says how long its struct is (meta_struct_len)
 * and later kernels may only append.
 */
struct rb_meta {
	uint32_t meta_page_size;
	uint32_t meta_struct_len;
	uint32_t subbuf_size;
	uint32_t nr_subbufs;
	uint64_t reader_lost_events;
	uint32_t reader_id;
	uint32_t reader_read;
};

#define RB_META_NEED (sizeof(struct rb_meta))
#define RB_IOCTL_GET_READER _IO('R', 0x20)	/* TRACE_MMAP_IOCTL_GET_READER */

struct dc_rbmap {
	int fd;
	const struct rb_meta *meta;
	size_t meta_len;
	const uint8_t *data;
	size_t data_len;
	size_t subbuf_size;
	uint32_t nr_subbufs;
	uint32_t id;		/* the sub-buffer pos is in; UINT32_MAX: none yet */
	struct dc_page_pos pos;
};

/* The kernel's values are stable between our GET_READER calls. */
static inline uint32_t meta_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int dc_rbmap_open(int fd, struct dc_rbmap **ret)
{
	size_t pg = (size_t)getpagesize();
	struct dc_rbmap *m;
	uint32_t mps, len, sbs, nr;
	void *p;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fd = fd;
	m->id = UINT32_MAX;
	/* The meta page alone first: it says how large the rest is. */
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		free(m);
		return r;
	}
	m->meta = p;
	m->meta_len = pg;
	mps = meta_u32(&m->meta->meta_page_size);
	len = meta_u32(&m->meta->meta_struct_len);
	sbs = meta_u32(&m->meta->subbuf_size);
	nr = meta_u32(&m->meta->nr_subbufs);
	/*
	 * Sizes checked, never assumed: a sub-buffer holds at least the
	 * header and fits the commit's 27 bits; the reader's and at least
	 * one in the ring; the meta page is whole pages, and so is each
	 * sub-buffer (the kernel maps them page by page).
	 */
	if (len < RB_META_NEED || mps < pg || mps % pg || sbs < pg || sbs % pg ||
	    sbs > (1u << 27) || nr < 2 || (size_t)nr > SIZE_MAX / sbs) {
		r = -EPROTO;
		goto fail;
	}
	m->subbuf_size = sbs;
	m->nr_subbufs = nr;
	m->data_len = (size_t)nr * sbs;
	p = mmap(NULL, m->data_len, PROT_READ, MAP_SHARED, fd, (off_t)mps);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	m->data = p;
	/* A kernel that maps but would not hand out the reader: found now, not mid-run. */
	if (ioctl(fd, RB_IOCTL_GET_READER) < 0) {
		r = -errno;
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	dc_rbmap_free(m);
	return r;
}

int dc_rbmap_get(struct dc_rbmap *m, struct dc_rbmap_piece *p)
{
	uint32_t id, read;
	uint64_t lost;

	if (ioctl(m->fd, RB_IOCTL_GET_READER) < 0)
		return -errno;
	/*
	 * The kernel wrote the meta page (rb_update_meta_page()) under its
	 * reader lock, after reading the commit the writer published with
	 * smp_wmb() after the event data; our loads of the meta page and
	 * of the data follow the system call's return.
	 */
	id = meta_u32(&m->meta->reader_id);
	read = meta_u32(&m->meta->reader_read);
	lost = __atomic_load_n(&m->meta->reader_lost_events, __ATOMIC_RELAXED);
	if (id >= m->nr_subbufs)
		return -EPROTO;
	p->fresh = false;
	/* A new sub-buffer, or this one again after a reset of the buffer. */
	if (id != m->id || read < m->pos.off) {
		memset(&m->pos, 0, sizeof(m->pos));
		m->id = id;
		p->fresh = true;
	}
	p->page = m->data + (size_t)id * m->subbuf_size;
	p->len = m->subbuf_size;
	p->end = read;
	p->pos = &m->pos;
	p->lost = p->fresh ? (int64_t)(lost > INT64_MAX ? INT64_MAX : lost) : 0;
	return 0;
}

size_t dc_rbmap_subbuf_size(const struct dc_rbmap *m)
{
	return m->subbuf_size;
}

void dc_rbmap_free(struct dc_rbmap *m)
{
	if (!m)
		return;
	if (m->data)
		munmap((void *)m->data, m->data_len);
	if (m->meta)
		munmap((void *)m->meta, m->meta_len);
	free(m);
}
