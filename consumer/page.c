// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Page decoding. By default in one pass of our own over the sub-buffer
 * (walk()): each entry's header and length are checked as it is reached,
 * the time stamp follows the deltas, and each data event is decoded in
 * place; a page found inconsistent anywhere appends nothing.
 *
 * With DC_DECODE_KBUFFER, on top of libtraceevent's kbuffer, the
 * reference. kbuffer trusts the page it is given, so this file checks
 * the header against the length and walks the event lengths once before
 * handing it the page: kbuffer would follow a corrupt length backwards
 * or in place (forever), and after the walk it never reads outside what
 * was checked. No copy is made; the page is read in place.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <traceevent/kbuffer.h>

#include "page.h"

#define COMMIT_MISSED_EVENTS (1ULL << 31)
#define COMMIT_MISSED_STORED (1ULL << 30)
#define COMMIT_SIZE_MASK ((1ULL << 27) - 1)
/* The bits of a time an absolute time stamp does not hold (it keeps 59). */
#define TS_MSB (0xf8ULL << 56)

struct dc_decoder {
	struct kbuffer *kb;
	int long_size;
	unsigned int types;
	const uint8_t *base;	/* the page being decoded (the caller's) */
	struct dc_layout *layouts;
	size_t nlayouts;
	struct dc_bdi *bdis;
	size_t nbdis;
	size_t last_bdi;
	uint8_t *slot;		/* common_type -> layout index + 1 */
	uint16_t max_id;
	uint16_t need[DC_SRC_NR];	/* bytes an event of a source must have */
	int64_t missed;		/* loaded page: 0 none, -1 unknown, else count */
	struct dc_decode_stats st;
};

static unsigned int field_end(const struct dc_field *f)
{
	return f->size ? f->offset + f->size : 0;
}

static unsigned int max_u(unsigned int a, unsigned int b)
{
	return a > b ? a : b;
}

int dc_decoder_new(const struct dc_decoder_opts *opts, struct dc_decoder **ret)
{
	struct dc_decoder *d;
	size_t i;

	if (!opts || opts->sz < sizeof(*opts) || !ret ||
	    (opts->long_size != 4 && opts->long_size != 8) ||
	    (opts->nlayouts && !opts->layouts) || (opts->nbdis && !opts->bdis))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->long_size = opts->long_size;
	d->types = opts->types ? opts->types : ~0u;
	if (opts->flags & ~DC_DECODE_KBUFFER) {
		free(d);
		return -EINVAL;
	}
	if (opts->flags & DC_DECODE_KBUFFER) {
		d->kb = kbuffer_alloc(opts->long_size == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
				      __BYTE_ORDER == __LITTLE_ENDIAN ? KBUFFER_ENDIAN_LITTLE :
								       KBUFFER_ENDIAN_BIG);
		if (!d->kb)
			goto nomem;
	}
	for (i = 0; i < opts->nlayouts; i++)
		if (opts->layouts[i].id > d->max_id)
			d->max_id = opts->layouts[i].id;
	d->slot = calloc((size_t)d->max_id + 1, 1);
	d->layouts = calloc(opts->nlayouts ? opts->nlayouts : 1, sizeof(*d->layouts));
	d->bdis = calloc(opts->nbdis ? opts->nbdis : 1, sizeof(*d->bdis));
	if (!d->slot || !d->layouts || !d->bdis)
		goto nomem;
	if (opts->nlayouts > 254) {
		dc_decoder_free(d);
		return -EINVAL;
	}
	for (i = 0; i < opts->nlayouts; i++) {
		const struct dc_layout *l = &opts->layouts[i];
		unsigned int need;

		if (l->id <= 0 || (unsigned int)l->src >= DC_SRC_NR) {
			dc_decoder_free(d);
			return -EINVAL;
		}
		d->layouts[i] = *l;
		d->slot[l->id] = (uint8_t)(i + 1);
		need = max_u(field_end(&l->pid), field_end(&l->ino));
		need = max_u(need, field_end(&l->index));
		need = max_u(need, field_end(&l->dev));
		need = max_u(need, field_end(&l->order));
		need = max_u(need, field_end(&l->name));
		d->need[l->src] = (uint16_t)need;
	}
	d->nlayouts = opts->nlayouts;
	if (opts->nbdis)
		memcpy(d->bdis, opts->bdis, opts->nbdis * sizeof(*d->bdis));
	d->nbdis = opts->nbdis;
	*ret = d;
	return 0;
nomem:
	dc_decoder_free(d);
	return -ENOMEM;
}

void dc_decoder_free(struct dc_decoder *d)
{
	if (!d)
		return;
	if (d->kb)
		kbuffer_free(d->kb);
	free(d->slot);
	free(d->layouts);
	free(d->bdis);
	free(d);
}

const struct dc_decode_stats *dc_decoder_stats(const struct dc_decoder *d)
{
	return &d->st;
}

int dc_recbuf_reserve(struct dc_recbuf *b, size_t more)
{
	size_t want = b->n + more, cap;
	struct dc_record *r;

	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	r = realloc(b->rec, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	b->rec = r;
	b->cap = cap;
	return 0;
}

void dc_recbuf_free(struct dc_recbuf *b)
{
	free(b->rec);
	b->rec = NULL;
	b->n = b->cap = 0;
}

/* Fields are native-endian: pages are decoded on the machine that wrote them. */
static inline uint64_t rd(const uint8_t *data, const struct dc_field *f)
{
	switch (f->size) {
	case 1:
		return data[f->offset];
	case 2: {
		uint16_t v;

		memcpy(&v, data + f->offset, 2);
		return v;
	}
	case 4: {
		uint32_t v;

		memcpy(&v, data + f->offset, 4);
		return v;
	}
	case 8: {
		uint64_t v;

		memcpy(&v, data + f->offset, 8);
		return v;
	}
	}
	return 0;
}

/* b's name, including its terminator, is the whole of the event's name. */
static inline bool bdi_is(const struct dc_bdi *b, const char *name, size_t fsize)
{
	size_t n = strnlen(b->name, sizeof(b->name));

	if (n < fsize)
		return !memcmp(b->name, name, n + 1);
	/* The field has no room for a terminator: all of it must match. */
	return n == fsize && !memcmp(b->name, name, n);
}

static const struct dc_bdi *find_bdi(struct dc_decoder *d, const uint8_t *data,
				     const struct dc_field *f)
{
	const char *name = (const char *)data + f->offset;

	if (!d->nbdis)
		return NULL;
	if (bdi_is(&d->bdis[d->last_bdi], name, f->size))
		return &d->bdis[d->last_bdi];
	for (size_t i = 0; i < d->nbdis; i++) {
		if (bdi_is(&d->bdis[i], name, f->size)) {
			d->last_bdi = i;
			return &d->bdis[i];
		}
	}
	return NULL;
}

/*
 * Walk the entries as kbuffer will (kernel/trace/ring_buffer.c encoding)
 * and check that each one moves forward and ends inside the data.
 */
static int check_events(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		uint32_t h, a;
		uint64_t n;

		if (size - off < 4)
			return -EBADMSG;
		memcpy(&h, data + off, 4);
		if ((h & 31) >= 1 && (h & 31) <= 28) {
			n = 4 + (uint64_t)(h & 31) * 4;
		} else {
			if (size - off < 8)
				return -EBADMSG;
			memcpy(&a, data + off + 4, 4);
			switch (h & 31) {
			case 0:		/* array[0]: data length + 4 */
				if (a < 4)
					return -EBADMSG;
				n = 8 + (((uint64_t)a - 4 + 3) & ~3ULL);
				break;
			case 29:	/* padding: array[0] is its length after the header */
				n = 4 + (uint64_t)a;
				break;
			default:	/* time extend, absolute time stamp */
				n = 8;
				break;
			}
		}
		if (n > size - off)
			return -EBADMSG;
		off += n;
	}
	return 0;
}

static uint64_t page_commit(const void *page, int long_size)
{
	uint64_t commit;

	if (long_size == 8) {
		memcpy(&commit, (const uint8_t *)page + 8, 8);
	} else {
		uint32_t c;

		memcpy(&c, (const uint8_t *)page + 8, 4);
		commit = c;
	}
	return commit;
}

size_t dc_page_data_size(const void *page, size_t len, int long_size)
{
	if (len < dc_page_header_size(long_size))
		return 0;
	return (size_t)(page_commit(page, long_size) & COMMIT_SIZE_MASK);
}

/*
 * Check the header against len and read the loss it records (d->missed):
 * the size of the event data, or -EBADMSG.
 */
static ssize_t header(struct dc_decoder *d, const void *page, size_t len)
{
	size_t hdr = dc_page_header_size(d->long_size), size;
	uint64_t commit;

	if (len < hdr || len > (1u << 27))
		return -EBADMSG;
	commit = page_commit(page, d->long_size);
	size = commit & COMMIT_SIZE_MASK;
	if (size > len - hdr)
		return -EBADMSG;
	if ((commit & COMMIT_MISSED_STORED) && size + (size_t)d->long_size > len - hdr)
		return -EBADMSG;
	/*
	 * Read the loss from the header ourselves: kbuffer_missed_events()
	 * answers 0 once the first entry was a time extend or padding, and
	 * truncates a stored count to int. A stored count of 0 (the kernel
	 * never writes one) stays "unknown": a flagged loss is never dropped.
	 */
	d->missed = 0;
	if (commit & COMMIT_MISSED_EVENTS) {
		d->missed = -1;
		if (commit & COMMIT_MISSED_STORED) {
			const uint8_t *p = (const uint8_t *)page + hdr + size;

			if (d->long_size == 8) {
				uint64_t c;

				memcpy(&c, p, 8);
				if (c)
					d->missed = (int64_t)(c & INT64_MAX);
			} else {
				uint32_t c;

				memcpy(&c, p, 4);
				if (c)
					d->missed = c;
			}
		}
	}
	return (ssize_t)size;
}

/* Check the page so kbuffer never reads outside it, and load it. */
static int load(struct dc_decoder *d, const void *page, size_t len)
{
	ssize_t size = header(d, page, len);

	if (size < 0)
		return (int)size;
	if (check_events((const uint8_t *)page + dc_page_header_size(d->long_size),
			 (size_t)size))
		return -EBADMSG;
	/*
	 * check_events() walked every entry header and length: kbuffer's
	 * walk stays inside [hdr, hdr + size) and the stored count, so it can
	 * read the caller's page in place (it does not write to it when the
	 * page is native-endian).
	 */
	d->base = (const uint8_t *)page;
	if (kbuffer_load_subbuffer(d->kb, (void *)page) < 0)
		return -EBADMSG;
	return 0;
}

/*
 * One event's payload (common fields first) of len bytes: appends its
 * records. Returns 0 or -ENOMEM; events it cannot use are counted.
 */
static int decode_one(struct dc_decoder *d, const uint8_t *data, size_t len, uint64_t ts,
		      uint16_t cpu, struct dc_recbuf *out)
{
	const struct dc_layout *l;
	const struct dc_src_info *si;
	struct dc_record *rec;
	uint16_t id;

	if (len < 2)
		return 0;
	d->st.events++;
	memcpy(&id, data, 2);
	if (id > d->max_id || !d->slot[id]) {
		d->st.unknown++;
		return 0;
	}
	l = &d->layouts[d->slot[id] - 1];
	if (len < d->need[l->src]) {
		d->st.short_events++;
		return 0;
	}
	si = &dc_src_info[l->src];
	if (!(si->type & d->types))
		return 0;
	if (dc_recbuf_reserve(out, DC_BDI_MAX_DEVS))
		return -ENOMEM;
	rec = &out->rec[out->n];
	rec->ts = ts;
	rec->ino = rd(data, &l->ino);
	rec->pid = (int32_t)rd(data, &l->pid);
	rec->cpu = cpu;
	rec->type = si->type;
	rec->flags = si->rec_flags;
	rec->reserved = 0;
	if (l->src == DC_SRC_SB_CLEAR_WB || si->type == DC_INODE_NEW) {
		rec->dev = (uint32_t)rd(data, &l->dev);
		rec->index = 0;
		rec->count = 0;
		out->n++;
	} else if (l->src == DC_SRC_WB_DIRTY) {
		const struct dc_bdi *b = find_bdi(d, data, &l->name);

		if (!b || !b->ndevs) {
			d->st.unmapped++;
			return 0;
		}
		/* The event has no order: one page per event. */
		rec->index = rd(data, &l->index);
		rec->count = 1;
		rec->dev = b->devs[0];
		if (b->ndevs > 1) {
			rec->flags |= DC_REC_DEV_AMBIGUOUS;
			for (unsigned int i = 1; i < b->ndevs; i++) {
				rec[i] = rec[0];
				rec[i].dev = b->devs[i];
			}
		}
		out->n += b->ndevs;
	} else {
		unsigned int order = (unsigned int)rd(data, &l->order);

		rec->dev = (uint32_t)rd(data, &l->dev);
		rec->index = rd(data, &l->index);
		rec->count = order < 63 ? 1ULL << order : 0;
		out->n++;
	}
	return 0;
}

int dc_decode_event(struct dc_decoder *d, const void *data, size_t len, uint64_t ts,
		    uint16_t cpu, struct dc_recbuf *out)
{
	size_t n0 = out->n;

	if (decode_one(d, data, len, ts, cpu, out))
		return -ENOMEM;
	d->st.records += out->n - n0;
	return (int)(out->n - n0);
}

/* The LOST record a page flagged with missed events starts with. */
static void lost_record(struct dc_decoder *d, struct dc_record *rec, uint64_t ts, uint16_t cpu)
{
	memset(rec, 0, sizeof(*rec));
	rec->ts = ts;
	rec->cpu = cpu;
	rec->type = DC_LOST;
	rec->pid = -1;
	if (d->missed < 0) {
		rec->flags = DC_REC_LOST_UNKNOWN;
		rec->count = 1;
		d->st.lost_unknown++;
	} else {
		rec->count = (uint64_t)d->missed;
		d->st.lost += (uint64_t)d->missed;
	}
}

/*
 * One pass over the entries data[off, size) (kernel/trace/ring_buffer.c's
 * encoding, read as kbuffer reads it: every delta, a padding's too, moves
 * the time on; an absolute time stamp sets its low 59 bits), decoding
 * data events as they come, from the time *tsp (left at the time after
 * the last entry). *lost_at, the LOST record to date (SIZE_MAX: none),
 * takes the first data event's time. 0, -EBADMSG or -ENOMEM; the caller
 * undoes what was appended.
 */
static inline __attribute__((always_inline)) int
entries(struct dc_decoder *d, const uint8_t *data, size_t off, size_t size, uint64_t *tsp,
	uint16_t cpu, struct dc_recbuf *out, size_t *lost_at)
{
	uint64_t ts = *tsp;

	while (off < size) {
		size_t left = size - off, n;
		const uint8_t *ev;
		uint32_t h, a;

		if (left < 4)
			return -EBADMSG;
		memcpy(&h, data + off, 4);
		if ((h & 31) >= 1 && (h & 31) <= 28) {
			n = 4 + (size_t)(h & 31) * 4;
			if (n > left)
				return -EBADMSG;
			ev = data + off + 4;
		} else {
			if (left < 8)
				return -EBADMSG;
			memcpy(&a, data + off + 4, 4);
			switch (h & 31) {
			case 0:		/* array[0]: data length + 4 */
				if (a < 4 || (n = 8 + (((size_t)a - 4 + 3) & ~(size_t)3)) > left)
					return -EBADMSG;
				ev = data + off + 8;
				break;
			case 29:	/* padding: array[0] is its length after the header */
				if ((n = 4 + (size_t)a) > left)
					return -EBADMSG;
				ts += h >> 5;
				off += n;
				continue;
			case 30:	/* time extend */
				ts += ((uint64_t)a << 27) + (h >> 5);
				off += 8;
				continue;
			default:	/* absolute time stamp: 59 bits, the rest is the time's */
				ts = ((((uint64_t)a << 27) + (h >> 5)) | (ts & TS_MSB));
				off += 8;
				continue;
			}
		}
		ts += h >> 5;
		if (*lost_at != SIZE_MAX) {
			lost_record(d, &out->rec[*lost_at], ts, cpu);
			*lost_at = SIZE_MAX;
		}
		if (decode_one(d, ev, n - (size_t)(ev - (data + off)), ts, cpu, out))
			return -ENOMEM;
		off += n;
	}
	*tsp = ts;
	return 0;
}

/*
 * After entries() returned r: what it appended stands (its LOST record's
 * time set, its records counted), or on an error nothing does and the
 * stats are as they were (saved), a refused page counted.
 */
static inline int entries_end(struct dc_decoder *d, int r, const struct dc_decode_stats *saved,
			      size_t n0, size_t lost_at, uint64_t ts, uint16_t cpu,
			      struct dc_recbuf *out)
{
	if (r) {
		d->st = *saved;
		out->n = n0;
		if (r == -ENOMEM)
			return -ENOMEM;
		d->st.bad_pages++;
		return -EBADMSG;
	}
	if (lost_at != SIZE_MAX)
		lost_record(d, &out->rec[lost_at], ts, cpu);
	d->st.records += out->n - n0;
	return (int)(out->n - n0);
}

/*
 * A whole sub-buffer. Whatever is wrong in the page, it appends nothing
 * and counts only the bad page.
 */
static int walk(struct dc_decoder *d, const uint8_t *page, size_t len, uint16_t cpu,
		struct dc_recbuf *out)
{
	struct dc_decode_stats saved = d->st;
	ssize_t size = header(d, page, len);
	size_t n0 = out->n, lost_at = SIZE_MAX;
	uint64_t ts;
	int r;

	if (size < 0)
		goto bad;
	memcpy(&ts, page, 8);
	if (d->missed) {
		/* Its time is the first event's, or the page's end's. */
		if (dc_recbuf_reserve(out, 1))
			return -ENOMEM;
		lost_at = out->n++;
	}
	r = entries(d, page + dc_page_header_size(d->long_size), 0, (size_t)size, &ts, cpu,
		    out, &lost_at);
	r = entries_end(d, r, &saved, n0, lost_at, ts, cpu, out);
	if (r >= 0)
		d->st.pages++;
	return r;
bad:
	d->st = saved;
	d->st.bad_pages++;
	out->n = n0;
	return -EBADMSG;
}

int dc_decode_page_piece(struct dc_decoder *d, const void *page, size_t len, size_t end,
			 int64_t lost, struct dc_page_pos *pos, uint16_t cpu,
			 struct dc_recbuf *out)
{
	struct dc_decode_stats saved = d->st;
	size_t hdr = dc_page_header_size(d->long_size), n0 = out->n, lost_at = SIZE_MAX;
	uint64_t ts = pos->ts;
	int r;

	if (pos->bad) {
		/* Counted when it was refused; what is handed out is skipped. */
		if (end > pos->off)
			pos->off = end;
		return 0;
	}
	if (len < hdr || end > len - hdr || end < pos->off)
		goto bad;
	if (end == pos->off)
		return 0;
	if (!pos->started) {
		ssize_t size = header(d, page, len);

		/*
		 * The commit may have grown since the kernel handed out end
		 * (the writer is on this sub-buffer), never shrunk below it.
		 */
		if (size < 0 || (size_t)size < end)
			goto bad;
		memcpy(&ts, page, 8);
		if (!d->missed && lost)
			d->missed = lost;
		if (d->missed) {
			if (dc_recbuf_reserve(out, 1))
				return -ENOMEM;
			lost_at = out->n++;
		}
		d->st.pages++;
	}
	r = entries(d, (const uint8_t *)page + hdr, pos->off, end, &ts, cpu, out, &lost_at);
	r = entries_end(d, r, &saved, n0, lost_at, ts, cpu, out);
	if (r == -EBADMSG)
		goto refused;
	if (r < 0)
		return r;
	pos->off = end;
	pos->ts = ts;
	pos->started = true;
	return r;
bad:
	d->st = saved;
	d->st.bad_pages++;
	out->n = n0;
refused:
	pos->bad = true;
	if (end > pos->off)
		pos->off = end;
	return -EBADMSG;
}

int dc_decode_page(struct dc_decoder *d, const void *page, size_t len,
		   uint16_t cpu, struct dc_recbuf *out)
{
	const uint8_t *end;
	unsigned long long ts;
	size_t n0 = out->n;
	uint8_t *data;
	int64_t missed;
	int r;

	if (!d->kb)
		return walk(d, page, len, cpu, out);
	r = load(d, page, len);
	if (r) {
		if (r == -EBADMSG)
			d->st.bad_pages++;
		return r;
	}
	end = d->base + len;
	d->st.pages++;
	missed = d->missed;
	data = kbuffer_read_event(d->kb, &ts);
	if (missed) {
		struct dc_record *rec;

		if (dc_recbuf_reserve(out, 1))
			return -ENOMEM;
		rec = &out->rec[out->n++];
		lost_record(d, rec, data ? ts : kbuffer_timestamp(d->kb), cpu);
	}
	for (; data; data = kbuffer_next_event(d->kb, &ts)) {
		unsigned int esz = (unsigned int)kbuffer_event_size(d->kb);

		if (data < d->base || data + 2 > end)
			break;
		if (decode_one(d, data, esz < (size_t)(end - data) ? esz : (size_t)(end - data),
			       ts, cpu, out))
			return -ENOMEM;
	}
	d->st.records += out->n - n0;
	return (int)(out->n - n0);
}
