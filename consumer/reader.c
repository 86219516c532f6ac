// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The live source. One reader thread per CPU sleeps in poll() on its
 * trace_pipe_raw until the kernel's buffer_percent wakeup or the latency
 * timeout, then reads pages until the CPU's buffer is empty and decodes
 * them. Each CPU hands its records to the consumer through its own queue:
 * no lock is shared between CPUs. The consumer merges the queues in
 * timestamp order up to the lowest "complete up to" mark of all CPUs.
 *
 * While someone waits for items (dc_live_set_latency()), the readers
 * wake at the first event (buffer_percent 0), gather for a quarter of the
 * bound and read the CPU's buffer to its end; and a record that waits
 * for the mark of a CPU with nothing to read (its reader asleep) sets
 * that reader's timer, which wakes it to take a new mark. Nothing runs
 * while nothing happens: no reader polls on a timer of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <tracefs/tracefs.h>

#include "live.h"
#include "rbmap.h"

/* A reader never holds more than this many undelivered records. */
#define QUEUE_MAX_RECORDS (1u << 20)
/* Sub-buffer size asked for where the kernel allows it (see dc_live_open). */
#define DEFAULT_SUBBUF_KB 64
/*
 * The reader without an opts.reader or DUET_READER. Mapped reading cost
 * more CPU per event than read() on 6.18 (GET_READER advances the
 * kernel's read position event by event; read() of a full sub-buffer
 * swaps it whole) and gave the same latency: docs/benchmarks.md.
 */
#define DC_READER_DEFAULT_IS DC_READER_READ
/* Room for PUBLISH_RECORDS plus one 64 KiB sub-buffer of small events. */
#define PRESIZE_RECORDS 16384
/* Events reserved just before a drain may commit just after it. */
#define WATERMARK_MARGIN_NS 2000000ull
/* The margin while a latency bound is in force: a quarter of it, at least this. */
#define DEMAND_MARGIN_MIN_NS 250000ull

/*
 * Records travel from a reader to the consumer in buffers that are handed
 * over, never copied: the reader fills cur, publish() appends it to the
 * queue, the consumer moves the queue to its pending list, merges from
 * there, and returns exhausted buffers to the spare list for reuse (they
 * keep their capacity, so nothing is reallocated or faulted in again).
 */
struct rbuf {
	struct rbuf *next;
	size_t head;		/* consumer: records before it were delivered */
	struct dc_recbuf b;
};

struct cpu_reader {
	struct dc_live *l;
	int cpu;
	int fd;
	struct tracefs_cpu *tcpu;
	struct dc_rbmap *map;	/* the mapped buffer; NULL: read() */
	struct dc_decoder *dec;
	pthread_t thread;
	bool started;
	void *page;
	struct rbuf *cur;	/* reader only */

	/* Protected by lock: the hand-off to the consumer. */
	pthread_mutex_t lock;
	pthread_cond_t space;
	struct rbuf *q_head, *q_tail;
	struct rbuf *spare;
	uint64_t queued;	/* records in the queue (not yet collected) */
	uint64_t watermark;	/* every event with ts below it is queued */
	bool done;		/* final drain finished */
	bool pinned;		/* reader: runs on its own CPU (exact marks) */
	struct dc_cpu_stats st;

	/* Consumer side only. */
	struct rbuf *p_head, *p_tail;
	struct rbuf *recycle;
	uint64_t c_watermark;
	bool c_done;
	int tfd;		/* the consumer's wake-up call for a new mark */
	uint64_t armed;		/* consumer: when tfd is set to fire (0: not) */
};

struct dc_live {
	struct dc_live_opts opts;
	uint32_t *devs;
	struct dc_bdi *bdis;
	struct tracefs_instance *inst;
	char name[64];
	int efd;		/* consumer wakeup */
	int stopfd;		/* readers' stop signal */
	int ncpus;
	int subbuf_size;
	struct cpu_reader *cpus;
	struct dc_layout layouts[DC_SRC_NR];
	size_t nlayouts;
	enum dc_flush_sem flush_sem;
	enum dc_dirty_sem dirty_sem;
	bool use[DC_SRC_NR];
	bool started, stopped;
	char describe[1200];
	char reader_desc[160];	/* "ring buffer read: ..." */
	bool mapped;		/* every CPU's buffer is mapped (rbmap.h) */
	struct dc_source_stats stats;
	uint64_t complete_to;	/* every record with ts <= it has been fetched */
	uint64_t lat_ns;	/* atomic: the bound while someone waits; 0: batch */
	bool bp0;		/* buffer_percent is 0 (wake at the first event) */
};

static uint64_t demand_margin(uint64_t lat)
{
	uint64_t m = lat / 4;

	return m < DEMAND_MARGIN_MIN_NS ? DEMAND_MARGIN_MIN_NS :
	       m > WATERMARK_MARGIN_NS ? WATERMARK_MARGIN_NS : m;
}

static uint64_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Pick the sources: patched events when present, the stock ones otherwise. */
static int choose_sources(struct dc_live *l)
{
	struct dc_sources src;
	int r = dc_sources_choose(l->opts.types, l->opts.stock_only, &src);

	if (r && !(r == -ENOENT && l->opts.types_explicit && l->opts.extra_events &&
		   l->opts.extra_events[0]))
		return r;
	memcpy(l->layouts, src.layouts, sizeof(l->layouts));
	l->nlayouts = src.nlayouts;
	memcpy(l->use, src.use, sizeof(l->use));
	l->dirty_sem = src.dirty_sem;
	l->flush_sem = src.flush_sem;
	dc_sources_describe(&src, l->describe, sizeof(l->describe));
	return 0;
}

/*
 * Enable one event of the instance by writing its own enable file.
 * tracefs_event_enable() takes regular expressions: it lists every event
 * system and every event of the matching ones (a stat each) for every
 * call, 2 x 635 entries for xfs's two events: 21 of the 79 ms a task's
 * registration took (duet-scrub, 5,402 files on ext4).
 */
static int event_enable(struct dc_live *l, const char *sys, const char *name)
{
	if (tracefs_event_file_write(l->inst, sys, name, "enable", "1") < 0)
		return errno ? -errno : -ENOENT;
	return 0;
}

/*
 * Enable the extra events. Their filter drops our own pid, and, for an
 * event keyed by a device like the page events (a dev_t s_dev field:
 * readahead's, filemap's access events), the devices not watched.
 */
static int enable_extras(struct dc_live *l)
{
	char filter[4096], devs[3900];

	if (!l->opts.extra_events)
		return 0;
	for (const char *const *e = l->opts.extra_events; *e; e++) {
		char sys[128], *text = NULL;
		const char *slash = strchr(*e, '/');
		int r;
		bool keyed = false;
		size_t tlen;

		if (!slash || (size_t)(slash - *e) >= sizeof(sys))
			return -EINVAL;
		memcpy(sys, *e, (size_t)(slash - *e));
		sys[slash - *e] = '\0';
		if (l->opts.ndevs && !dc_event_format(sys, slash + 1, &text, &tlen)) {
			keyed = memmem(text, tlen, "dev_t s_dev;", 12) != NULL;
			free(text);
		}
		filter[0] = '\0';
		if (l->opts.exclude_pid > 0)
			snprintf(filter, sizeof(filter), "common_pid != %d", l->opts.exclude_pid);
		if (keyed && !dc_dev_filter(devs, sizeof(devs), "s_dev", l->opts.devs,
						l->opts.ndevs))
			snprintf(filter + strlen(filter), sizeof(filter) - strlen(filter), "%s(%s)",
				 filter[0] ? " && " : "", devs);
		if (filter[0] &&
		    tracefs_event_file_write(l->inst, sys, slash + 1, "filter", filter) < 0)
			return -ENOENT;
		r = event_enable(l, sys, slash + 1);
		if (r)
			return r;
	}
	return 0;
}

static int inst_write(struct dc_live *l, const char *file, const char *val)
{
	if (tracefs_instance_file_write(l->inst, file, val) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/*
 * Kernel filters: the watched devices (for DIRTY, their bdi names), and
 * never our own pid when asked. Writing a filter of an enabled event is
 * atomic in the kernel, so this also serves to change the devices.
 */
static int write_filters(struct dc_live *l, bool enable)
{
	char filter[4200];

	for (size_t i = 0; i < l->nlayouts; i++) {
		enum dc_src src = l->layouts[i].src;
		const struct dc_src_info *si = &dc_src_info[src];
		int r;

		if (!l->use[src])
			continue;
		r = dc_filter_for(src, l->devs, l->opts.ndevs, l->bdis, l->opts.nbdis,
				  l->opts.exclude_pid, filter, sizeof(filter));
		if (r)
			return r;
		if (tracefs_event_file_write(l->inst, si->system, si->name, "filter", filter) < 0)
			return -EINVAL;
		if (enable && (r = event_enable(l, si->system, si->name)))
			return r;
	}
	return 0;
}

int dc_live_set_devices(struct dc_live *l, const uint32_t *devs, size_t ndevs)
{
	uint32_t *nd = calloc(ndevs + 1, sizeof(*nd));
	int r;

	if (!nd)
		return -ENOMEM;
	if (ndevs)
		memcpy(nd, devs, ndevs * sizeof(*nd));
	free(l->devs);
	l->devs = nd;
	l->opts.devs = nd;
	l->opts.ndevs = ndevs;
	r = write_filters(l, false);
	return r;
}

static struct rbuf *rbuf_new(void)
{
	struct rbuf *r = calloc(1, sizeof(*r));

	/* Sized for a hand-over of PUBLISH_RECORDS plus one sub-buffer. */
	if (r && dc_recbuf_reserve(&r->b, PRESIZE_RECORDS)) {
		free(r);
		r = NULL;
	}
	return r;
}

static void rbuf_free_list(struct rbuf *r)
{
	while (r) {
		struct rbuf *n = r->next;

		dc_recbuf_free(&r->b);
		free(r);
		r = n;
	}
}

static int reader_setup(struct dc_live *l, struct cpu_reader *c)
{
	struct dc_decoder_opts dopts = {
		.sz = sizeof(dopts),
		.long_size = 8,
		.layouts = l->layouts,
		.nlayouts = l->nlayouts,
		.bdis = l->bdis,
		.nbdis = l->opts.nbdis,
		.types = l->opts.types,
	};
	char file[64];
	char *path;
	int r;

	c->l = l;
	c->fd = -1;
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	pthread_mutex_init(&c->lock, NULL);
	if (c->tfd < 0)
		return -errno;
	pthread_cond_init(&c->space, NULL);
	dopts.long_size = sizeof(long);
	r = dc_decoder_new(&dopts, &c->dec);
	if (r)
		return r;
	snprintf(file, sizeof(file), "per_cpu/cpu%d/trace_pipe_raw", c->cpu);
	path = tracefs_instance_get_file(l->inst, file);
	if (!path)
		return -ENOMEM;
	c->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	r = -errno;
	tracefs_put_tracing_file(path);
	if (c->fd < 0)
		return r;
	c->tcpu = tracefs_cpu_alloc_fd(c->fd, l->subbuf_size, true);
	if (!c->tcpu)
		return -ENOMEM;
	c->page = malloc((size_t)l->subbuf_size);
	if (!c->page)
		return -ENOMEM;
	c->cur = rbuf_new();
	if (!c->cur)
		return -ENOMEM;
	return 0;
}

static void publish(struct cpu_reader *c, uint64_t mark, bool done);
static int drain_mapped(struct cpu_reader *c, bool flush);
static void lost_unknown(struct cpu_reader *c, uint64_t ts);

/*
 * Records are handed over every PUBLISH_RECORDS records while draining, so a
 * long drain under load keeps its buffers small and cache-hot instead of
 * growing them (page faults) and delaying the consumer.
 */
#define PUBLISH_RECORDS 8192
/* Records a hand-over copies into the queue's last buffer rather than queue their own. */
#define APPEND_RECORDS 1024

/*
 * A small batch joins the end of buffer into (if it fits) instead of
 * travelling in a buffer of its own: the buffers in flight stay few, and
 * each keeps the memory its fullest use touched. True if it joined (from
 * is empty then).
 */
static bool join_small(struct rbuf *into, struct dc_recbuf *from)
{
	if (!into || !from->n || from->n > APPEND_RECORDS || into->b.n + from->n > into->b.cap)
		return false;
	memcpy(into->b.rec + into->b.n, from->rec, from->n * sizeof(*from->rec));
	into->b.n += from->n;
	from->n = 0;
	return true;
}

/* A page the writer was still filling: we have caught up with it. */
static bool page_partial(const struct cpu_reader *c, int n)
{
	size_t hdr = dc_page_header_size((int)sizeof(long));

	if (n < 0 || (size_t)n < hdr)
		return true;
	return dc_page_data_size(c->page, (size_t)n, (int)sizeof(long)) + 256 < (size_t)n - hdr;
}

/*
 * Records from before a mark this reader already published: the consumer
 * may have handed out later records of other CPUs. They are counted and
 * preceded by a LOST record (a resync repairs the order), never silent.
 */
static void late(struct cpu_reader *c, size_t first)
{
	struct dc_recbuf *b = &c->cur->b;
	uint64_t n = 0;
	struct dc_record *rec;

	while (first + n < b->n && b->rec[first + n].ts < c->watermark)
		n++;
	c->st.late += n;
	if (dc_recbuf_reserve(b, 1))
		return;	/* counted all the same */
	memmove(&b->rec[first + 1], &b->rec[first], (b->n - first) * sizeof(*rec));
	b->n++;
	rec = &b->rec[first];
	memset(rec, 0, sizeof(*rec));
	rec->ts = b->rec[first + 1].ts;
	rec->cpu = (uint16_t)c->cpu;
	rec->type = DC_LOST;
	rec->flags = DC_REC_LOST_LATE;
	rec->count = n;
	rec->pid = -1;
}

/*
 * Read pages and decode them. Without flush, stop at the first partial
 * page: re-reading the page the writer is filling returns a few events
 * per read() and costs a lock and a copy each time. With flush (latency
 * timeout, stop), read until the buffer is empty.
 * Returns pages read or -errno.
 */
static int drain(struct cpu_reader *c, bool flush)
{
	int pages = 0, r;
	size_t before;

	if (c->map)
		return drain_mapped(c, flush);
	for (;;) {
		int n = tracefs_cpu_read(c->tcpu, c->page, true);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		if (n == 0)
			break;
		pages++;
		c->st.pages++;
		c->st.bytes += (uint64_t)n;
		if (c->l->opts.page_fn &&
		    c->l->opts.page_fn(c->l->opts.page_ud, c->cpu, c->page, (size_t)n) < 0)
			c->st.page_fn_errors++;
		before = c->cur->b.n;
		r = dc_decode_page(c->dec, c->page, (size_t)n, (uint16_t)c->cpu, &c->cur->b);
		if (r == -ENOMEM) {
			/* Hand over what is held (a fresh buffer has room) and try once more. */
			publish(c, 0, false);
			before = c->cur->b.n;
			r = dc_decode_page(c->dec, c->page, (size_t)n, (uint16_t)c->cpu, &c->cur->b);
		}
		if (r < 0) {
			uint64_t ts = 0;

			/*
			 * Counted by the decoder (a page it refused) or no memory:
			 * its events are not handed on, but not silently either.
			 */
			if ((size_t)n >= 8)
				memcpy(&ts, c->page, 8);
			lost_unknown(c, ts);
			if (c->cur->b.n >= PUBLISH_RECORDS)
				publish(c, 0, false);
			continue;
		}
		/* A CPU's records are in time order: the first new one is the oldest. */
		if (c->cur->b.n > before && c->cur->b.rec[before].ts < c->watermark)
			late(c, before);
		if (c->cur->b.n >= PUBLISH_RECORDS)
			publish(c, 0, false);	/* records only; the mark waits */
		if (!flush && page_partial(c, n))
			break;
	}
	return pages;
}

/*
 * The same from the mapped buffer: each GET_READER hands out the events
 * committed since the last, decoded where they lie. Without flush, stop
 * after a sub-buffer the writer is still filling, as above; with flush,
 * ask until nothing new comes: a mark taken before this saw every event
 * of this CPU committed, and they are all handed out by then.
 */
static int drain_mapped(struct cpu_reader *c, bool flush)
{
	size_t hdr = dc_page_header_size((int)sizeof(long));
	int pieces = 0;

	for (;;) {
		struct dc_rbmap_piece p;
		size_t before, from;
		int r = dc_rbmap_get(c->map, &p);

		if (r == -EINTR)
			continue;
		if (r)
			return r;
		from = p.pos->off;
		if (p.end <= from)
			break;	/* caught up */
		pieces++;
		c->st.pages += p.fresh;
		c->st.bytes += p.end - from;
		before = c->cur->b.n;
		r = dc_decode_page_piece(c->dec, p.page, p.len, p.end, p.lost, p.pos,
					 (uint16_t)c->cpu, &c->cur->b);
		if (r == -ENOMEM) {
			/* Hand over what is held (a fresh buffer has room) and try once more. */
			publish(c, 0, false);
			before = c->cur->b.n;
			r = dc_decode_page_piece(c->dec, p.page, p.len, p.end, p.lost, p.pos,
						 (uint16_t)c->cpu, &c->cur->b);
		}
		if (r < 0) {
			/*
			 * Still no memory, or a sub-buffer the decoder refused
			 * (counted there): the rest of it is given up (the
			 * kernel has let it go, and its times follow from the
			 * piece), but not silently: a LOST of unknown count.
			 */
			uint64_t ts;

			if (p.pos->started)
				ts = p.pos->ts;
			else
				memcpy(&ts, p.page, 8);
			p.pos->off = p.end;
			p.pos->bad = true;
			lost_unknown(c, ts);
		}
		if (c->cur->b.n > before && c->cur->b.rec[before].ts < c->watermark)
			late(c, before);
		if (c->cur->b.n >= PUBLISH_RECORDS)
			publish(c, 0, false);
		if (!flush && p.end + 256 < p.len - hdr)
			break;
	}
	return pieces;
}

/*
 * Events of a sub-buffer this CPU's reader could not hand on (the decoder
 * refused the page, or memory ran out twice): a LOST of unknown count at
 * the page's time, so that every task resyncs.
 */
static void lost_unknown(struct cpu_reader *c, uint64_t ts)
{
	struct dc_record *rec;

	c->st.given_up++;
	if (dc_recbuf_reserve(&c->cur->b, 1))
		return;	/* no room even for the LOST: given_up says so */
	rec = &c->cur->b.rec[c->cur->b.n++];
	memset(rec, 0, sizeof(*rec));
	rec->ts = ts;
	rec->cpu = (uint16_t)c->cpu;
	rec->type = DC_LOST;
	rec->flags = DC_REC_LOST_UNKNOWN;
	rec->count = 1;
	rec->pid = -1;
}

static void publish(struct cpu_reader *c, uint64_t mark, bool done)
{
	const struct dc_decode_stats *ds = dc_decoder_stats(c->dec);
	struct rbuf *fresh = NULL;
	bool wake = false;
	size_t n;

	pthread_mutex_lock(&c->lock);
	/*
	 * A few records while the consumer has not collected the last
	 * buffer (frequent hand-overs while someone waits): they join it, so
	 * that buffers (each sized for PRESIZE_RECORDS) do not pile up.
	 */
	n = c->cur->b.n;
	if (join_small(c->q_tail, &c->cur->b))
		c->queued += n;
	/* Backpressure: the kernel keeps overwriting (and counting) meanwhile. */
	/*
	 * Only what the consumer has not collected counts: records it holds
	 * back for the merge wait on this reader's own next mark, and
	 * counting them would deadlock.
	 */
	while (!done && c->queued >= c->l->opts.queue_max) {
		c->st.backpressure_waits++;
		pthread_cond_wait(&c->space, &c->lock);
	}
	if (c->cur->b.n) {
		fresh = c->spare;
		if (fresh)
			c->spare = fresh->next;
	}
	pthread_mutex_unlock(&c->lock);
	if (c->cur->b.n && !fresh)
		fresh = rbuf_new();

	pthread_mutex_lock(&c->lock);
	if (c->cur->b.n && fresh) {
		struct rbuf *full = c->cur;

		full->next = NULL;
		full->head = 0;
		/* An empty queue means the consumer may be asleep. */
		wake = !c->q_head;
		if (c->q_tail)
			c->q_tail->next = full;
		else
			c->q_head = full;
		c->q_tail = full;
		c->queued += full->b.n;
		fresh->b.n = 0;
		fresh->next = NULL;
		c->cur = fresh;
	}
	/*
	 * The mark promises that everything older was handed over: only
	 * when nothing is left behind in cur (no buffer could be had).
	 */
	if (!c->cur->b.n && mark > c->watermark) {
		c->watermark = mark;
		wake = true;
	}
	c->done = done && !c->cur->b.n;
	c->st.events = ds->events;
	c->st.records = ds->records;
	c->st.lost_in_pages = ds->lost;
	c->st.lost_unknown_pages = ds->lost_unknown;
	c->st.bad_pages = ds->bad_pages;
	pthread_mutex_unlock(&c->lock);
	if (wake || done) {
		uint64_t one = 1;

		/* eventfd counts; a full counter still leaves it readable. */
		if (write(c->l->efd, &one, sizeof(one)) < 0) {
		}
	}
}

static void *reader_main(void *arg)
{
	struct cpu_reader *c = arg;
	struct dc_live *l = c->l;
	uint64_t latency = (uint64_t)l->opts.latency_ms * 1000000ull;
	uint64_t last_flush = now_mono();
	cpu_set_t set;

	/*
	 * A reader on its own CPU takes exact marks: an event is written
	 * with preemption off, so when the reader runs there, every event
	 * stamped on that CPU before now is committed and read by the drain
	 * below. Elsewhere (a cpuset that forbids it) a mark keeps a margin
	 * for writes in flight, and an event that takes longer is late.
	 */
	CPU_ZERO(&set);
	CPU_SET(c->cpu, &set);
	c->pinned = !sched_setaffinity(0, sizeof(set), &set);

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = c->fd, .events = POLLIN },
			{ .fd = l->stopfd, .events = POLLIN },
			{ .fd = c->tfd, .events = POLLIN },
		};
		uint64_t mark, lat, junk;
		bool stop, flush, called, exact;
		int n;

		/*
		 * While someone waits, the first event wakes the reader, and
		 * the consumer's call asks for a mark: no timeout is needed.
		 */
		lat = __atomic_load_n(&l->lat_ns, __ATOMIC_RELAXED);
		n = poll(pfd, 3, lat ? -1 : (int)l->opts.latency_ms);
		c->st.wakeups++;
		stop = pfd[1].revents & POLLIN;
		called = pfd[2].revents & POLLIN;
		if (called && read(c->tfd, &junk, sizeof(junk)) < 0) {
		}
		lat = __atomic_load_n(&l->lat_ns, __ATOMIC_RELAXED);
		if (lat && !stop && !called && (pfd[0].revents & POLLIN)) {
			/* Someone waits: gather for a quarter of the bound. */
			struct timespec gather = { 0, (long)(lat / 4) };
			struct pollfd sp[2] = {
				{ .fd = l->stopfd, .events = POLLIN },
				{ .fd = c->tfd, .events = POLLIN },
			};

			if (ppoll(sp, 2, &gather, NULL) > 0) {
				stop = sp[0].revents & POLLIN;
				if ((sp[1].revents & POLLIN) && read(c->tfd, &junk, sizeof(junk)) < 0) {
				}
			}
		}
		/* Taken before draining: everything older is read below. */
		mark = now_mono();
		exact = c->pinned && sched_getcpu() == c->cpu;
		/*
		 * Under sustained load poll() never times out; the latency
		 * bound (and the merge watermark) still needs a full drain
		 * every latency_ms. While someone waits, every wake-up is one.
		 */
		flush = stop || n == 0 || called || lat || mark - last_flush >= latency;
		drain(c, flush);
		if (flush) {
			uint64_t margin = exact ? 0 : lat ? demand_margin(lat) : WATERMARK_MARGIN_NS;

			last_flush = mark;
			mark = mark > margin ? mark - margin : 0;
		} else {
			mark = 0;
		}
		publish(c, mark, stop);
		/* Out of memory for a spare buffer: keep trying to hand over. */
		for (int tries = 0; stop && !c->done && tries < 1000; tries++) {
			usleep(1000);
			publish(c, mark, true);
		}
		if (stop)
			break;
	}
	return NULL;
}

/*
 * Wake reader c at (CLOCK_MONOTONIC) at, unless it is called earlier
 * already (and has not rung by now). Consumer only.
 */
static void call_reader(struct cpu_reader *c, uint64_t at, uint64_t now)
{
	struct itimerspec its = { .it_value = { (time_t)(at / 1000000000ull),
						(long)(at % 1000000000ull) } };

	if (c->armed && c->armed <= now)
		c->armed = 0;	/* it has rung */
	if (c->armed && c->armed <= at)
		return;
	if (!timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL))
		c->armed = at;
}

int dc_live_set_latency(struct dc_live *l, unsigned int us)
{
	uint64_t ns = (uint64_t)us * 1000ull;
	bool bp0 = ns != 0;
	int r = 0;

	if (ns == __atomic_load_n(&l->lat_ns, __ATOMIC_RELAXED))
		return 0;
	if (bp0 != l->bp0 && l->inst) {
		char num[32];

		snprintf(num, sizeof(num), "%u", bp0 ? 0 : l->opts.buffer_percent);
		r = inst_write(l, "buffer_percent", num);
		if (r)
			return r;
		l->bp0 = bp0;
	}
	__atomic_store_n(&l->lat_ns, ns, __ATOMIC_RELAXED);
	/* Readers asleep in poll() with the old wake-up: poll again. */
	for (int i = 0; l->started && i < l->ncpus; i++) {
		uint64_t now = now_mono();

		l->cpus[i].armed = 0;
		call_reader(&l->cpus[i], now, now);
	}
	return 0;
}

/*
 * Which reader: the mapped buffer where it is asked for (opts.reader,
 * DUET_READER=mmap or read over both) and every CPU's buffer maps;
 * read() otherwise, silently but for the description, which says which
 * is in force and why.
 */
static void choose_reader(struct dc_live *l)
{
	const char *env = getenv("DUET_READER");
	enum dc_reader want = l->opts.reader;
	size_t len = strlen(l->describe);
	char why[128];
	int r = 0;

	if (env && !strcmp(env, "read"))
		want = DC_READER_READ;
	else if (env && !strcmp(env, "mmap"))
		want = DC_READER_MMAP;
	if (want == DC_READER_DEFAULT)
		want = DC_READER_DEFAULT_IS;
	if (want == DC_READER_MMAP && l->opts.page_fn) {
		snprintf(why, sizeof(why), "raw pages are stored as read() gives them");
	} else if (want == DC_READER_MMAP) {
		for (int i = 0; !r && i < l->ncpus; i++) {
			struct cpu_reader *c = &l->cpus[i];

			r = dc_rbmap_open(c->fd, &c->map);
			/* The decoder is handed the kernel's size: they must agree. */
			if (!r && dc_rbmap_subbuf_size(c->map) != (size_t)l->subbuf_size)
				r = -EPROTO;
		}
		l->mapped = !r;
		for (int i = 0; r && i < l->ncpus; i++) {
			dc_rbmap_free(l->cpus[i].map);
			l->cpus[i].map = NULL;
		}
		snprintf(why, sizeof(why), "mapping refused: %s", strerror(-r));
	} else if (env && env[0] && strcmp(env, "read")) {
		snprintf(why, sizeof(why), "%s; DUET_READER=%.40s is neither read nor mmap",
			 l->opts.reader == DC_READER_READ ? "asked for" : "the default", env);
	} else {
		snprintf(why, sizeof(why), "%s", env && !strcmp(env, "read") ? "DUET_READER=read" :
						 l->opts.reader == DC_READER_READ ? "asked for" :
						 "the default; DUET_READER=mmap maps the buffer");
	}
	if (l->mapped)
		snprintf(l->reader_desc, sizeof(l->reader_desc),
			 "ring buffer read: mmap (%d KiB sub-buffers decoded in place)",
			 l->subbuf_size / 1024);
	else
		snprintf(l->reader_desc, sizeof(l->reader_desc), "ring buffer read: read() (%s)",
			 why);
	snprintf(l->describe + len, sizeof(l->describe) - len, "; %s", l->reader_desc);
}

int dc_live_probe_reader(char *buf, size_t len, const char **reader)
{
	struct dc_live_opts o = { .sz = sizeof(o), .types = DC_ADDED, .types_explicit = true };
	struct dc_live *l;
	int r = dc_live_open(&o, &l);

	if (r)
		return r;
	snprintf(buf, len, "%s", l->reader_desc);
	*reader = l->mapped ? "mmap" : "read";
	dc_live_free(l);
	return 0;
}

int dc_live_open(const struct dc_live_opts *opts, struct dc_live **ret)
{
	struct dc_live *l;
	char *v;
	int r;

	if (!opts || opts->sz < sizeof(*opts) || !ret || (opts->ndevs && !opts->devs) ||
	    (opts->nbdis && !opts->bdis))
		return -EINVAL;
	r = dc_tracefs_ensure(NULL);
	if (r)
		return r;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->efd = l->stopfd = -1;
	l->opts = *opts;
	if (!l->opts.types && !l->opts.types_explicit)
		l->opts.types = DC_EVENTS_ALL;
	if (!l->opts.buffer_percent)
		l->opts.buffer_percent = 50;
	if (!l->opts.latency_ms)
		l->opts.latency_ms = 100;
	if (!l->opts.queue_max)
		l->opts.queue_max = QUEUE_MAX_RECORDS;
	if (!l->opts.subbuf_kb)
		l->opts.subbuf_kb = DEFAULT_SUBBUF_KB;
	l->devs = calloc(opts->ndevs + 1, sizeof(*l->devs));
	l->bdis = calloc(opts->nbdis + 1, sizeof(*l->bdis));
	if (!l->devs || !l->bdis) {
		r = -ENOMEM;
		goto fail;
	}
	if (opts->ndevs)
		memcpy(l->devs, opts->devs, opts->ndevs * sizeof(*l->devs));
	if (opts->nbdis)
		memcpy(l->bdis, opts->bdis, opts->nbdis * sizeof(*l->bdis));
	l->opts.devs = l->devs;
	l->opts.bdis = l->bdis;

	r = choose_sources(l);
	if (r)
		goto fail;

	dc_instances_reap();
	r = dc_instance_name_self(l->name, sizeof(l->name));
	if (r)
		goto fail;
	l->inst = tracefs_instance_create(l->name);
	if (!l->inst) {
		r = errno == EPERM || errno == EACCES ? -EACCES : (errno ? -errno : -EIO);
		goto fail;
	}
	if (!tracefs_instance_exists(l->name)) {
		/* libtracefs returns an object even when mkdir was refused. */
		r = geteuid() ? -EACCES : -EIO;
		goto fail;
	}
	/* Tracing stays off until dc_live_start(). */
	r = inst_write(l, "tracing_on", "0");
	if (!r)
		r = inst_write(l, "trace_clock", "mono");
	if (!r) {
		char num[32];

		snprintf(num, sizeof(num), "%u", l->opts.buffer_percent);
		r = inst_write(l, "buffer_percent", num);
		if (!r && l->opts.buffer_kb) {
			snprintf(num, sizeof(num), "%u", l->opts.buffer_kb);
			r = inst_write(l, "buffer_size_kb", num);
		}
	}
	if (r)
		goto fail;
	l->subbuf_size = getpagesize();
	/*
	 * Larger sub-buffers (kernel 6.8 and later) mean one read() per
	 * subbuf_kb instead of per 4 KiB page: the per-read cost in the
	 * kernel dominated the consumer's CPU per event. Older kernels lack
	 * the file; they keep page-sized sub-buffers.
	 */
	if (l->opts.subbuf_kb) {
		char num[32];

		snprintf(num, sizeof(num), "%u", l->opts.subbuf_kb);
		if (tracefs_file_exists(l->inst, "buffer_subbuf_size_kb"))
			inst_write(l, "buffer_subbuf_size_kb", num);
	}
	v = tracefs_instance_file_read(l->inst, "buffer_subbuf_size_kb", NULL);
	if (v) {
		int kb = atoi(v);

		if (kb > 0)
			l->subbuf_size = kb * 1024;
		free(v);
	}
	r = write_filters(l, true);
	if (!r)
		r = enable_extras(l);
	if (r)
		goto fail;

	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0 || l->stopfd < 0) {
		r = -errno;
		goto fail;
	}
	l->ncpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	if (l->ncpus <= 0)
		l->ncpus = 1;
	l->cpus = calloc((size_t)l->ncpus, sizeof(*l->cpus));
	l->stats.cpu = calloc((size_t)l->ncpus, sizeof(*l->stats.cpu));
	if (!l->cpus || !l->stats.cpu) {
		r = -ENOMEM;
		goto fail;
	}
	l->stats.ncpus = (unsigned int)l->ncpus;
	/* A failed setup frees every CPU's reader, set up or not: no fd 0. */
	for (int i = 0; i < l->ncpus; i++)
		l->cpus[i].fd = -1;
	for (int i = 0; i < l->ncpus; i++) {
		l->cpus[i].cpu = i;
		r = reader_setup(l, &l->cpus[i]);
		if (r)
			goto fail;
	}
	choose_reader(l);
	*ret = l;
	return 0;
fail:
	dc_live_free(l);
	return r;
}

int dc_live_start(struct dc_live *l)
{
	int r;

	if (l->started)
		return -EALREADY;
	for (int i = 0; i < l->ncpus; i++) {
		r = -pthread_create(&l->cpus[i].thread, NULL, reader_main, &l->cpus[i]);
		if (r) {
			dc_live_stop(l);
			return r;
		}
		l->cpus[i].started = true;
	}
	l->started = true;
	return inst_write(l, "tracing_on", "1");
}

int dc_live_fd(const struct dc_live *l)
{
	return l->efd;
}

int dc_live_stop(struct dc_live *l)
{
	uint64_t one = 1;

	if (l->stopped)
		return 0;
	l->stopped = true;
	if (l->inst)
		inst_write(l, "tracing_on", "0");
	if (l->stopfd >= 0 && write(l->stopfd, &one, sizeof(one)) < 0) {
	}
	for (int i = 0; l->cpus && i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];

		if (!c->started)
			continue;
		/* A reader blocked on a full queue must see done-time space. */
		pthread_mutex_lock(&c->lock);
		pthread_cond_broadcast(&c->space);
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

/* Move what the readers queued to the consumer's side (pointers only). */
static void collect(struct dc_live *l)
{
	uint64_t junk;

	if (read(l->efd, &junk, sizeof(junk)) < 0) {
	}
	for (int i = 0; i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];

		pthread_mutex_lock(&c->lock);
		if (c->q_head) {
			/*
			 * Small hand-overs (while someone waits, one per wake-up)
			 * join the last pending buffer and theirs goes back at
			 * once: the buffers in flight, each of which keeps the
			 * memory its fullest use touched, stay few.
			 */
			while (c->q_head) {
				struct rbuf *r = c->q_head;

				c->q_head = r->next;
				r->next = NULL;
				if (join_small(c->p_tail, &r->b)) {
					r->next = c->spare;
					c->spare = r;
				} else if (c->p_tail) {
					c->p_tail->next = r;
					c->p_tail = r;
				} else {
					c->p_head = c->p_tail = r;
				}
			}
			c->q_tail = NULL;
			c->queued = 0;
			pthread_cond_broadcast(&c->space);
		}
		c->c_watermark = c->watermark;
		c->c_done = c->done;
		pthread_mutex_unlock(&c->lock);
	}
}

/* The CPU's oldest undelivered record; exhausted buffers go to recycle. */
static const struct dc_record *head_rec(struct cpu_reader *c)
{
	while (c->p_head && c->p_head->head >= c->p_head->b.n) {
		struct rbuf *r = c->p_head;

		c->p_head = r->next;
		if (!c->p_head)
			c->p_tail = NULL;
		r->next = c->recycle;
		c->recycle = r;
	}
	return c->p_head ? &c->p_head->b.rec[c->p_head->head] : NULL;
}

static void recycle(struct cpu_reader *c)
{
	head_rec(c);
	if (!c->recycle)
		return;
	pthread_mutex_lock(&c->lock);
	while (c->recycle) {
		struct rbuf *r = c->recycle;

		c->recycle = r->next;
		r->next = c->spare;
		c->spare = r;
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * Someone waits and records wait for marks: wake each reader whose mark
 * is behind the oldest of them once that record is older than the
 * margin, so that a CPU with nothing to read does not hold the others'
 * records back until its poll() times out.
 */
static void call_for_marks(struct dc_live *l)
{
	uint64_t lat = __atomic_load_n(&l->lat_ns, __ATOMIC_RELAXED);
	uint64_t oldest = UINT64_MAX, now;

	if (!lat)
		return;
	for (int i = 0; i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];
		const struct dc_record *h = c->p_head ? &c->p_head->b.rec[c->p_head->head] : NULL;

		if (h && c->p_head->head < c->p_head->b.n && h->ts < oldest)
			oldest = h->ts;
	}
	if (oldest == UINT64_MAX)
		return;
	now = now_mono();
	for (int i = 0; i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];

		if (!c->c_done && c->c_watermark <= oldest)
			call_reader(c, oldest + demand_margin(lat) + 1, now);
	}
}

void dc_live_want_mark(struct dc_live *l, uint64_t ts)
{
	uint64_t lat = __atomic_load_n(&l->lat_ns, __ATOMIC_RELAXED);
	uint64_t margin = lat ? demand_margin(lat) : WATERMARK_MARGIN_NS, now;

	if (!l->started || l->complete_to >= ts)
		return;
	now = now_mono();
	for (int i = 0; i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];

		if (!c->c_done && c->c_watermark < ts)
			call_reader(c, ts + margin + 1, now);
	}
}

int dc_live_fetch_cb(struct dc_live *l, dc_records_fn fn, void *ud)
{
	uint64_t limit = UINT64_MAX;
	int64_t total = 0;
	int r = 0;

	if (!l->started)
		return 0;
	collect(l);
	for (int i = 0; i < l->ncpus; i++)
		if (!l->cpus[i].c_done && l->cpus[i].c_watermark < limit)
			limit = l->cpus[i].c_watermark;
	/*
	 * k-way merge of per-CPU streams, each already in time order: hand
	 * out runs of one CPU's records that precede every other CPU's head,
	 * in place (no copy).
	 */
	while (!r) {
		struct cpu_reader *best = NULL;
		uint64_t bts = 0, next = limit;
		struct rbuf *hb;
		size_t end;

		for (int i = 0; i < l->ncpus; i++) {
			const struct dc_record *h = head_rec(&l->cpus[i]);

			if (!h || h->ts > limit)
				continue;
			if (!best || h->ts < bts) {
				best = &l->cpus[i];
				bts = h->ts;
			}
		}
		if (!best)
			break;
		for (int i = 0; i < l->ncpus; i++) {
			const struct dc_record *h;

			if (&l->cpus[i] == best)
				continue;
			h = head_rec(&l->cpus[i]);
			if (h && h->ts < next)
				next = h->ts;
		}
		hb = best->p_head;
		end = hb->head;
		while (end < hb->b.n && hb->b.rec[end].ts <= next)
			end++;
		r = fn(ud, hb->b.rec + hb->head, end - hb->head);
		total += (int64_t)(end - hb->head);
		hb->head = end;
	}
	for (int i = 0; i < l->ncpus; i++)
		recycle(&l->cpus[i]);
	if (r < 0)
		return r;
	call_for_marks(l);
	/* Consumer only, like the merge itself: no lock. */
	if (limit > l->complete_to)
		l->complete_to = limit;
	return total > INT32_MAX ? INT32_MAX : (int)total;
}

uint64_t dc_live_complete_to(const struct dc_live *l)
{
	return l->complete_to;
}

static int append_records(void *ud, const struct dc_record *rec, size_t n)
{
	struct dc_recbuf *out = ud;

	if (dc_recbuf_reserve(out, n))
		return -ENOMEM;
	memcpy(out->rec + out->n, rec, n * sizeof(*rec));
	out->n += n;
	return 0;
}

int dc_live_fetch(struct dc_live *l, struct dc_recbuf *out)
{
	return dc_live_fetch_cb(l, append_records, out);
}

bool dc_live_finished(const struct dc_live *l)
{
	if (!l->stopped)
		return false;
	for (int i = 0; i < l->ncpus; i++) {
		const struct cpu_reader *c = &l->cpus[i];

		if (!c->started)
			continue;
		if (!c->c_done)
			return false;
		for (const struct rbuf *r = c->p_head; r; r = r->next)
			if (r->head < r->b.n)
				return false;
	}
	return true;
}

int dc_live_stats(struct dc_live *l, const struct dc_source_stats **ret)
{
	struct dc_cpu_stats *t = &l->stats.total;

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];
		struct dc_cpu_stats *s = &l->stats.cpu[i];
		char file[64], *text;

		pthread_mutex_lock(&c->lock);
		*s = c->st;
		pthread_mutex_unlock(&c->lock);
		snprintf(file, sizeof(file), "per_cpu/cpu%d/stats", i);
		text = l->inst ? tracefs_instance_file_read(l->inst, file, NULL) : NULL;
		if (text) {
			dc_parse_cpu_stats(text, &s->overrun, &s->dropped);
			free(text);
		}
		t->pages += s->pages;
		t->bytes += s->bytes;
		t->events += s->events;
		t->records += s->records;
		t->lost_in_pages += s->lost_in_pages;
		t->lost_unknown_pages += s->lost_unknown_pages;
		t->bad_pages += s->bad_pages;
		t->given_up += s->given_up;
		t->overrun += s->overrun;
		t->dropped += s->dropped;
		t->backpressure_waits += s->backpressure_waits;
		t->page_fn_errors += s->page_fn_errors;
		t->wakeups += s->wakeups;
		t->late += s->late;
	}
	*ret = &l->stats;
	return 0;
}

void dc_live_free(struct dc_live *l)
{
	if (!l)
		return;
	dc_live_stop(l);
	for (int i = 0; l->cpus && i < l->ncpus; i++) {
		struct cpu_reader *c = &l->cpus[i];

		if (c->started)
			pthread_join(c->thread, NULL);
		if (c->tcpu)
			tracefs_cpu_free_fd(c->tcpu);
		dc_rbmap_free(c->map);
		if (c->fd >= 0)
			close(c->fd);
		if (c->tfd > 0)
			close(c->tfd);
		dc_decoder_free(c->dec);
		free(c->page);
		rbuf_free_list(c->cur);
		rbuf_free_list(c->q_head);
		rbuf_free_list(c->p_head);
		rbuf_free_list(c->spare);
		rbuf_free_list(c->recycle);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->space);
	}
	if (l->inst) {
		tracefs_instance_destroy(l->inst);
		tracefs_instance_free(l->inst);
	}
	if (l->efd >= 0)
		close(l->efd);
	if (l->stopfd >= 0)
		close(l->stopfd);
	free(l->cpus);
	free(l->stats.cpu);
	free(l->devs);
	free(l->bdis);
	free(l);
}

enum dc_flush_sem dc_live_flush_sem(const struct dc_live *l)
{
	return l->flush_sem;
}

enum dc_dirty_sem dc_live_dirty_sem(const struct dc_live *l)
{
	return l->dirty_sem;
}

const char *dc_live_instance_name(const struct dc_live *l)
{
	return l->name;
}

const char *dc_live_describe(const struct dc_live *l)
{
	return l->describe;
}

const char *dc_live_reader(const struct dc_live *l)
{
	return l->mapped ? "mmap" : "read";
}

int dc_live_subbuf_size(const struct dc_live *l)
{
	return l->subbuf_size;
}

bool dc_live_uses(const struct dc_live *l, int src)
{
	return src >= 0 && src < DC_SRC_NR && l->use[src];
}
