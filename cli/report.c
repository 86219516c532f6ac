// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet report FILE: what a recorded trace.dat says about the page cache,
 * per file (pages added, removed, dirtied, flushed, refaults), how long
 * pages stayed, and why they left.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <uthash.h>

#include "causes.h"
#include "devices.h"
#include "duet-cli.h"
#include "sidecar.h"
#include "tdread.h"
#include "report-loads.h"

#define HIST_BUCKETS 64
#define PLOT_FILES 5
#define PLOT_POINTS 400

struct fkey {
	uint32_t dev;
	uint32_t pad;
	uint64_t ino;
};

struct rfile {
	struct fkey k;
	uint64_t added, removed, dirtied, flushed_pages, flush_events, refaults;
	uint64_t rm_cause[CAUSE_NR];	/* pages removed, by cause */
	struct rloads ld;	/* --loads: who put them there */
	int64_t cached, cached_min;	/* net pages since the start (plot) */
	const char *path;
	int plot;		/* 1 + series index, 0: not plotted */
	UT_hash_handle hh;
};

/* Removals by (cause, comm). */
struct rcause {
	char key[48];		/* "cause\0comm" packed as cause index + comm */
	int cause;
	char comm[48];
	uint64_t pages, events;
	UT_hash_handle hh;
};

/* One cached page: open addressing, linear probing, keyed by file and index. */
struct pslot {
	uint64_t ino;
	uint64_t index;
	uint64_t add_ts;
	uint32_t dev;
	uint32_t state;		/* 0 empty; PS_* bits */
};
#define PS_USED		1u
#define PS_PRESENT	2u	/* added during the recording and not removed */
#define PS_REMOVED	4u	/* removed at least once during the recording */

struct ptable {
	struct pslot *s;
	size_t cap, n;
};

struct pidst {
	int pid;
	int in_direct;
	UT_hash_handle hh;
};

struct report {
	const char *file;
	struct dc_tdread *td;
	struct rfile *files;
	struct rcause *causes;
	struct pidst *pids;
	struct loads *loads;	/* --loads: per task, adds not yet settled */
	bool has_loads;
	struct dc_sidecar *side;	/* NULL: none */
	struct ptable pt;
	uint64_t hist[HIST_BUCKETS];
	uint64_t removed_unknown_age;	/* pages cached before the recording */
	uint64_t lost, lost_unknown, events, kswapd_wakes, direct_reclaims;
	uint64_t t0, t1;
	struct dc_decode_stats st;
	const char *dirty_sem, *flush_sem;
	bool flush_exact;
	const struct dc_bdi *bdis;	/* the sidecar's, or bdis_now */
	struct dc_bdi *bdis_now;	/* of the mounts now, without a sidecar's */
	size_t nbdis;
	/* FILE, mapped. */
	int fd;
	void *map;		/* MAP_FAILED: none (an empty file) */
	size_t size;
};

/* A multiply-xorshift mix, inlined: this is the report's hot path. */
static inline uint64_t hkey(uint32_t dev, uint64_t ino, uint64_t index)
{
	uint64_t h = (ino ^ ((uint64_t)dev << 40)) * 0x9e3779b97f4a7c15ULL;

	h ^= index * 0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 31;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 29);
}

static int pt_grow(struct ptable *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1 << 16;
	struct pslot *s = calloc(cap, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct pslot *o = &t->s[i];
		size_t h;

		if (!o->state)
			continue;
		h = hkey(o->dev, o->ino, o->index) & (cap - 1);
		while (s[h].state)
			h = (h + 1) & (cap - 1);
		s[h] = *o;
	}
	free(t->s);
	t->s = s;
	t->cap = cap;
	return 0;
}

static inline void pt_prefetch(const struct ptable *t, const struct dc_record *r)
{
	if (t->cap)
		__builtin_prefetch(&t->s[hkey(r->dev, r->ino, r->index) & (t->cap - 1)], 1);
}

static struct pslot *pt_get(struct ptable *t, uint32_t dev, uint64_t ino, uint64_t index)
{
	size_t h;

	if (t->n * 2 >= t->cap && pt_grow(t))
		return NULL;
	h = hkey(dev, ino, index) & (t->cap - 1);
	for (;; h = (h + 1) & (t->cap - 1)) {
		struct pslot *s = &t->s[h];

		if (!s->state) {
			s->dev = dev;
			s->ino = ino;
			s->index = index;
			s->state = PS_USED;
			t->n++;
			return s;
		}
		if (s->dev == dev && s->ino == ino && s->index == index)
			return s;
	}
}

static struct rfile *file_get(struct report *rp, uint32_t dev, uint64_t ino)
{
	static struct rfile *last;
	struct fkey k = { dev, 0, ino };
	struct rfile *f;

	if (last && last->k.dev == dev && last->k.ino == ino)
		return last;
	HASH_FIND(hh, rp->files, &k, sizeof(k), f);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return NULL;
		f->k = k;
		f->path = rp->side ? dc_sidecar_path(rp->side, dev, ino) : NULL;
		HASH_ADD(hh, rp->files, k, sizeof(k), f);
	}
	last = f;
	return f;
}

static const char *comm_of(struct report *rp, int pid, char *buf, size_t len)
{
	const char *c = dc_tdread_comm(rp->td, pid);

	if (c)
		return c;
	if (pid == 0)
		return "swapper";
	snprintf(buf, len, "<%d>", pid);
	return buf;
}

static int classify(struct report *rp, const struct dc_record *r, const char *comm)
{
	struct pidst *p;

	HASH_FIND_INT(rp->pids, &r->pid, p);
	return (int)cause_classify(r->pid, comm, p && p->in_direct);
}

static struct rcause *find_cause(struct report *rp, int cause, const char *comm)
{
	char key[48];
	struct rcause *c;

	memset(key, 0, sizeof(key));
	key[0] = (char)('0' + cause);
	snprintf(key + 1, sizeof(key) - 1, "%s", cause == CAUSE_KSWAPD ? "" : comm);
	HASH_FIND(hh, rp->causes, key, sizeof(key), c);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		memcpy(c->key, key, sizeof(key));
		c->cause = cause;
		snprintf(c->comm, sizeof(c->comm), "%s", key + 1);
		HASH_ADD(hh, rp->causes, key, sizeof(key), c);
	}
	return c;
}

static struct rloads *loads_file(void *ud, uint32_t dev, uint64_t ino)
{
	struct rfile *f = file_get(ud, dev, ino);

	return f ? &f->ld : NULL;
}

static int log2u(uint64_t v)
{
	return v ? 63 - __builtin_clzll(v) : 0;
}

static int analyse(struct report *rp, const struct dc_recbuf *rb)
{
	struct rcause *last_cause = NULL;
	int32_t last_pid = 0;

	for (size_t i = 0; i < rb->n; i++) {
		const struct dc_record *r = &rb->rec[i];
		struct rfile *f;

		if (!rp->t0 || r->ts < rp->t0)
			rp->t0 = r->ts;
		if (r->ts > rp->t1)
			rp->t1 = r->ts;
		/* The table is far larger than the caches: fetch ahead. */
		if (i + 16 < rb->n)
			pt_prefetch(&rp->pt, &rb->rec[i + 16]);
		if (r->type == DC_LOST) {
			if (r->flags & DC_REC_LOST_UNKNOWN)
				rp->lost_unknown++;
			else
				rp->lost += r->count;
			continue;
		}
		if (r->type == DC_TDR_LOAD) {
			if (loads_event(&rp->loads, r, loads_file, rp))
				return -ENOMEM;
			continue;
		}
		if (r->type == DC_TDR_AUX) {
			struct pidst *p;

			last_cause = NULL;
			if (r->index == DC_AUX_KSWAPD_WAKE) {
				rp->kswapd_wakes++;
				continue;
			}
			if (r->index != DC_AUX_DIRECT_BEGIN && r->index != DC_AUX_DIRECT_END &&
			    r->index != DC_AUX_MEMCG_BEGIN && r->index != DC_AUX_MEMCG_END &&
			    r->index != DC_AUX_NODE_BEGIN && r->index != DC_AUX_NODE_END)
				continue;
			HASH_FIND_INT(rp->pids, &r->pid, p);
			if (!p) {
				p = calloc(1, sizeof(*p));
				if (!p)
					return -ENOMEM;
				p->pid = r->pid;
				HASH_ADD_INT(rp->pids, pid, p);
			}
			/*
			 * A memory cgroup at its limit, and node (zone) reclaim,
			 * reclaim in the allocating task too.
			 */
			p->in_direct = r->index == DC_AUX_DIRECT_BEGIN ||
				       r->index == DC_AUX_MEMCG_BEGIN ||
				       r->index == DC_AUX_NODE_BEGIN;
			rp->direct_reclaims += p->in_direct;
			continue;
		}
		rp->events++;
		f = file_get(rp, r->dev, r->ino);
		if (!f)
			return -ENOMEM;
		switch (r->type) {
		case DC_ADDED:
			f->added += r->count;
			if (rp->has_loads && loads_added(&rp->loads, r, loads_file, rp))
				return -ENOMEM;
			for (uint64_t k = 0; k < r->count; k++) {
				struct pslot *s = pt_get(&rp->pt, r->dev, r->ino, r->index + k);

				if (!s)
					return -ENOMEM;
				if ((s->state & (PS_REMOVED | PS_PRESENT)) == PS_REMOVED)
					f->refaults++;
				s->state |= PS_PRESENT;
				s->add_ts = r->ts;
			}
			break;
		case DC_REMOVED: {
			/*
			 * Removals come in runs from one task (drop_caches,
			 * truncate, kswapd): classify a task once per run. A
			 * vmscan event ends the run (reclaim state changes).
			 */
			if (!last_cause || r->pid != last_pid) {
				char buf[24];
				const char *comm = comm_of(rp, r->pid, buf, sizeof(buf));

				last_cause = find_cause(rp, classify(rp, r, comm), comm);
				if (!last_cause)
					return -ENOMEM;
				last_pid = r->pid;
			}
			f->removed += r->count;
			f->rm_cause[last_cause->cause] += r->count;
			last_cause->pages += r->count;
			last_cause->events++;
			for (uint64_t k = 0; k < r->count; k++) {
				struct pslot *s = pt_get(&rp->pt, r->dev, r->ino, r->index + k);

				if (!s)
					return -ENOMEM;
				if (s->state & PS_PRESENT) {
					uint64_t age = r->ts > s->add_ts ? r->ts - s->add_ts : 0;

					rp->hist[log2u(age)]++;
				} else {
					rp->removed_unknown_age++;
				}
				s->state = (s->state & ~PS_PRESENT) | PS_REMOVED;
			}
			break;
		}
		case DC_DIRTY:
			f->dirtied += r->count;
			break;
		case DC_FLUSHED:
			if (r->flags & DC_REC_INODE_LEVEL)
				f->flush_events++;
			else
				f->flushed_pages += r->count;
			break;
		}
	}
	return 0;
}

/* --- backing devices ---------------------------------------------------- */

/* Without a sidecar: the bdis of every file system mounted now. */
static int live_bdis(struct dc_bdi **bdis, size_t *nbdis)
{
	struct dc_mounts m = { 0 };
	uint32_t *devs;
	int r = dc_mounts_load(&m);

	if (r)
		return r;
	devs = calloc(m.n ? m.n : 1, sizeof(*devs));
	if (!devs) {
		dc_mounts_free(&m);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m.n; i++)
		devs[i] = m.m[i].kdev;
	/* Duplicate kdevs (bind mounts) would list a device twice per bdi. */
	for (size_t i = 0; i < m.n; i++)
		for (size_t k = 0; k < i; k++)
			if (devs[k] == devs[i])
				devs[i] = 0;
	{
		size_t n = 0;

		for (size_t i = 0; i < m.n; i++)
			if (devs[i])
				devs[n++] = devs[i];
		r = dc_bdis_for_devices(&m, devs, n, bdis, nbdis);
	}
	free(devs);
	dc_mounts_free(&m);
	return r;
}

/* --- output -------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b)
{
	const struct rfile *x = *(struct rfile *const *)a, *y = *(struct rfile *const *)b;

	if (x->k.dev != y->k.dev)
		return x->k.dev < y->k.dev ? -1 : 1;
	return (x->k.ino > y->k.ino) - (x->k.ino < y->k.ino);
}

static uint64_t flushed_of(const struct report *rp, const struct rfile *f)
{
	return rp->flush_exact ? f->flushed_pages : f->flush_events;
}

static int metric;	/* for cmp_metric: 0 added ... 4 refaults */

static uint64_t metric_of(const struct report *rp, const struct rfile *f, int m)
{
	switch (m) {
	case 0:
		return f->added;
	case 1:
		return f->removed;
	case 2:
		return f->dirtied;
	case 3:
		return flushed_of(rp, f);
	}
	return f->refaults;
}

static const struct report *sort_rp;

static int cmp_metric(const void *a, const void *b)
{
	const struct rfile *x = *(struct rfile *const *)a, *y = *(struct rfile *const *)b;
	uint64_t vx = metric_of(sort_rp, x, metric), vy = metric_of(sort_rp, y, metric);

	if (vx != vy)
		return vx > vy ? -1 : 1;
	return cmp_file(a, b);
}

static void path_text(const char *p, char *out, size_t len)
{
	size_t o = 0;

	if (!p) {
		snprintf(out, len, "-");
		return;
	}
	/* One whitespace-separated column: escape blanks and backslashes. */
	for (; *p && o + 5 < len; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\%03o", (unsigned char)*p);
		else
			out[o++] = *p;
	}
	out[o] = '\0';
}

static const char *const metric_names[5] = { "added", "removed", "dirtied", "flushed",
					      "refaults" };

static void fmt_ns(uint64_t ns, char *out, size_t len)
{
	if (ns < 1000)
		snprintf(out, len, "%" PRIu64 "ns", ns);
	else if (ns < 1000000)
		snprintf(out, len, "%.3gus", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(out, len, "%.3gms", ns / 1e6);
	else
		snprintf(out, len, "%.4gs", ns / 1e9);
}

static struct json_object *jfile(const struct report *rp, const struct rfile *f)
{
	struct json_object *o = json_object_new_object();
	char dev[24];

	snprintf(dev, sizeof(dev), "%u:%u", dc_kdev_major(f->k.dev), dc_kdev_minor(f->k.dev));
	json_object_object_add(o, "dev", json_object_new_string(dev));
	json_object_object_add(o, "ino", json_object_new_uint64(f->k.ino));
	json_object_object_add(o, "path", f->path ? json_object_new_string(f->path) : NULL);
	json_object_object_add(o, "added", json_object_new_uint64(f->added));
	json_object_object_add(o, "removed", json_object_new_uint64(f->removed));
	json_object_object_add(o, "dirtied", json_object_new_uint64(f->dirtied));
	json_object_object_add(o, "flushed", json_object_new_uint64(flushed_of(rp, f)));
	json_object_object_add(o, "flush_unit",
			       json_object_new_string(rp->flush_exact ? "pages" : "inode-events"));
	json_object_object_add(o, "refaults", json_object_new_uint64(f->refaults));
	{
		struct json_object *c = json_object_new_object();

		for (int i = 0; i < CAUSE_NR; i++)
			if (f->rm_cause[i])
				json_object_object_add(c, cause_names[i],
						       json_object_new_uint64(f->rm_cause[i]));
		json_object_object_add(o, "removed_by", c);
	}
	if (rp->has_loads) {
		struct json_object *l = json_object_new_object();

		json_object_object_add(l, "demand", json_object_new_uint64(f->ld.demand));
		json_object_object_add(l, "readahead", json_object_new_uint64(f->ld.readahead));
		json_object_object_add(l, "other", json_object_new_uint64(f->ld.other));
		json_object_object_add(l, "hits", json_object_new_uint64(f->ld.hits));
		json_object_object_add(l, "misses", json_object_new_uint64(f->ld.demand));
		json_object_object_add(l, "readahead_calls_sync",
				       json_object_new_uint64(f->ld.ra_calls[0]));
		json_object_object_add(l, "readahead_calls_async",
				       json_object_new_uint64(f->ld.ra_calls[1]));
		json_object_object_add(o, "loads", l);
	}
	return o;
}

/* The files sorted by (dev, ino), and the histogram's used buckets. */
struct report_view {
	struct rfile **v;
	size_t n;
	int hmin, hmax;
};

static void report_json(struct report *rp, const struct report_view *rv, unsigned int top,
			FILE *out)
{
	struct json_object *j = json_object_new_object(), *a, *t, *o;
	struct rfile **v = rv->v;
	size_t n = rv->n;
	int hmin = rv->hmin, hmax = rv->hmax;
	struct rcause *c, *ctmp;

	json_object_object_add(j, "v", json_object_new_int(1));
	json_object_object_add(j, "type", json_object_new_string("report"));
	json_object_object_add(j, "file", json_object_new_string(rp->file));
	json_object_object_add(j, "trace_dat_version",
			       json_object_new_int(dc_tdread_version(rp->td)));
	json_object_object_add(j, "cpus", json_object_new_int((int)dc_tdread_ncpus(rp->td)));
	json_object_object_add(j, "clock", json_object_new_string(dc_tdread_clock(rp->td)));
	json_object_object_add(j, "dirty", json_object_new_string(rp->dirty_sem));
	json_object_object_add(j, "flush", json_object_new_string(rp->flush_sem));
	json_object_object_add(j, "paths", json_object_new_string(rp->side ?
						"sidecar" : "none"));
	json_object_object_add(j, "duration_ns", json_object_new_uint64(rp->t1 - rp->t0));
	json_object_object_add(j, "events", json_object_new_uint64(rp->events));
	json_object_object_add(j, "lost", json_object_new_uint64(rp->lost));
	json_object_object_add(j, "lost_unknown_pages", json_object_new_uint64(rp->lost_unknown));
	json_object_object_add(j, "bad_pages", json_object_new_uint64(rp->st.bad_pages));
	json_object_object_add(j, "unmapped_dirty", json_object_new_uint64(rp->st.unmapped));
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, jfile(rp, v[i]));
	json_object_object_add(j, "files", a);
	t = json_object_new_object();
	for (metric = 0; metric < 5; metric++) {
		qsort(v, n, sizeof(*v), cmp_metric);
		a = json_object_new_array();
		for (size_t i = 0; i < n && i < top && metric_of(rp, v[i], metric); i++)
			json_object_array_add(a, jfile(rp, v[i]));
		json_object_object_add(t, metric_names[metric], a);
	}
	json_object_object_add(j, "top", t);
	o = json_object_new_object();
	a = json_object_new_array();
	for (int i = hmin; i <= hmax; i++) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "ge_ns", json_object_new_uint64(i ? 1ULL << i : 0));
		json_object_object_add(b, "lt_ns", json_object_new_uint64(1ULL << (i + 1)));
		json_object_object_add(b, "pages", json_object_new_uint64(rp->hist[i]));
		json_object_array_add(a, b);
	}
	json_object_object_add(o, "buckets", a);
	json_object_object_add(o, "removed_without_add",
			       json_object_new_uint64(rp->removed_unknown_age));
	json_object_object_add(j, "time_in_cache", o);
	a = json_object_new_array();
	HASH_ITER(hh, rp->causes, c, ctmp) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "cause", json_object_new_string(cause_names[c->cause]));
		json_object_object_add(b, "comm", c->comm[0] ?
				       json_object_new_string(c->comm) : NULL);
		json_object_object_add(b, "pages", json_object_new_uint64(c->pages));
		json_object_object_add(b, "events", json_object_new_uint64(c->events));
		json_object_array_add(a, b);
	}
	json_object_object_add(j, "removals", a);
	o = json_object_new_object();
	json_object_object_add(o, "vmscan_recorded", json_object_new_boolean(
		dc_tdread_has_aux(rp->td, DC_AUX_DIRECT_BEGIN) ||
		dc_tdread_has_aux(rp->td, DC_AUX_MEMCG_BEGIN)));
	json_object_object_add(o, "kswapd_wakeups", json_object_new_uint64(rp->kswapd_wakes));
	json_object_object_add(o, "direct_reclaims", json_object_new_uint64(rp->direct_reclaims));
	json_object_object_add(j, "reclaim", o);
	fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
						JSON_C_TO_STRING_NOSLASHESCAPE), out);
	fputc('\n', out);
	json_object_put(j);
}

static uint64_t loaded(const struct rfile *f)
{
	return f->ld.demand + f->ld.readahead + f->ld.other + f->ld.hits;
}

static int cmp_loads(const void *a, const void *b)
{
	uint64_t x = loaded(*(struct rfile *const *)a), y = loaded(*(struct rfile *const *)b);

	return x < y ? 1 : x > y ? -1 : cmp_file(a, b);
}

/* Who put pages there: the top files by pages loaded or asked for. */
static void loads_text(struct report *rp, struct rfile **v, size_t n, unsigned int top,
		       FILE *out)
{
	uint64_t d = 0, ra = 0, o = 0, h = 0;

	(void)rp;
	qsort(v, n, sizeof(*v), cmp_loads);
	fputs("\nLoads (pages): DEMAND (asked for and loaded: misses), READAHEAD (loaded, not "
	      "asked for),\nOTHER (loaded outside reads and faults: writes, fadvise), HITS "
	      "(asked for, cached)\n", out);
	fputs("  DEMAND READAHEAD OTHER HITS HIT% DEV INO PATH\n", out);
	for (size_t i = 0; i < n; i++) {
		const struct rfile *f = v[i];
		char p[8192], pct[16] = "-";

		d += f->ld.demand;
		ra += f->ld.readahead;
		o += f->ld.other;
		h += f->ld.hits;
		if (i >= top || !loaded(f))
			continue;
		path_text(f->path, p, sizeof(p));
		if (f->ld.hits + f->ld.demand)
			snprintf(pct, sizeof(pct), "%.0f%%", 100.0 * (double)f->ld.hits /
				 (double)(f->ld.hits + f->ld.demand));
		fprintf(out, "  %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s %u:%u %" PRIu64
			" %s\n", f->ld.demand, f->ld.readahead, f->ld.other, f->ld.hits,
			pct, dc_kdev_major(f->k.dev),
			dc_kdev_minor(f->k.dev), f->k.ino, p);
	}
	fprintf(out, "loads: %" PRIu64 " demand, %" PRIu64 " readahead, %" PRIu64 " other; %"
		PRIu64 " hits, %" PRIu64 " misses\n", d, ra, o, h, d);
	qsort(v, n, sizeof(*v), cmp_file);
}

static void report_text(struct report *rp, const struct report_view *rv, unsigned int top,
			FILE *out)
{
	struct rfile **v = rv->v, *f;
	size_t n = rv->n;
	int hmin = rv->hmin, hmax = rv->hmax;
	struct rcause *c, *ctmp;

	fprintf(out, "duet report: %s: trace.dat v%d, %u CPUs, clock %s, %.3f s, %" PRIu64
		" page-cache events\n", rp->file, dc_tdread_version(rp->td),
		dc_tdread_ncpus(rp->td), dc_tdread_clock(rp->td),
		(double)(rp->t1 - rp->t0) / 1e9, rp->events);
	fprintf(out, "dirty: %s; flush: %s; paths: %s\n", rp->dirty_sem, rp->flush_sem,
		rp->side ? "from the sidecar" : "unknown (no sidecar), shown as -");
	fprintf(out, "lost events: %" PRIu64 "%s; corrupt pages skipped: %" PRIu64
		"; dirty events of unknown backing devices: %" PRIu64 "\n", rp->lost,
		rp->lost_unknown ? " (and pages with an unknown loss)" : "", rp->st.bad_pages,
		rp->st.unmapped);
	fprintf(out, "\nFiles (pages; FLUSHED counts %s)\n",
		rp->flush_exact ? "pages" : "inode-level writeback completions, not pages");
	fputs("DEV INO ADDED REMOVED DIRTIED FLUSHED PATH\n", out);
	for (size_t i = 0; i < n; i++) {
		char p[8192];

		f = v[i];
		path_text(f->path, p, sizeof(p));
		fprintf(out, "%u:%u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n",
			dc_kdev_major(f->k.dev), dc_kdev_minor(f->k.dev), f->k.ino, f->added,
			f->removed, f->dirtied, flushed_of(rp, f), p);
	}
	for (metric = 0; metric < 5; metric++) {
		qsort(v, n, sizeof(*v), cmp_metric);
		fprintf(out, "\nTop files by %s%s\n", metric_names[metric],
			metric == 4 ? " (pages removed, then added again)" :
			metric == 3 && !rp->flush_exact ? " (inode-level events)" : "");
		for (size_t i = 0; i < n && i < top && metric_of(rp, v[i], metric); i++) {
			char p[8192];

			path_text(v[i]->path, p, sizeof(p));
			fprintf(out, "  %10" PRIu64 "  %u:%u %" PRIu64 " %s\n",
				metric_of(rp, v[i], metric), dc_kdev_major(v[i]->k.dev),
				dc_kdev_minor(v[i]->k.dev), v[i]->k.ino, p);
		}
	}
	fputs("\nTime in cache (pages added and removed during the recording)\n", out);
	for (int i = hmin; i <= hmax; i++) {
		char lo[16], hi[16];

		fmt_ns(i ? 1ULL << i : 0, lo, sizeof(lo));
		fmt_ns(1ULL << (i + 1), hi, sizeof(hi));
		fprintf(out, "  %8s - %-8s %10" PRIu64 "\n", lo, hi, rp->hist[i]);
	}
	fprintf(out, "  removed, cached before the recording: %" PRIu64 "\n",
		rp->removed_unknown_age);
	fputs("\nRemovals by cause (pages, events)\n", out);
	HASH_ITER(hh, rp->causes, c, ctmp)
		fprintf(out, "  %-28s %-16s %10" PRIu64 " %8" PRIu64 "\n", cause_names[c->cause],
			c->comm[0] ? c->comm : "-", c->pages, c->events);
	if (dc_tdread_has_aux(rp->td, DC_AUX_DIRECT_BEGIN) ||
	    dc_tdread_has_aux(rp->td, DC_AUX_MEMCG_BEGIN))
		fprintf(out, "reclaim: %" PRIu64 " kswapd wakeups, %" PRIu64
			" direct (or memory cgroup) reclaims\n", rp->kswapd_wakes, rp->direct_reclaims);
	else
		fputs("reclaim: vmscan events not recorded (direct reclaim cannot be told "
		      "from truncation)\n", out);
	if (rp->has_loads)
		loads_text(rp, v, n, top, out);
	else
		fputs("loads: not recorded (duet record --loads tells readahead from demand "
		      "loads, and hits from misses)\n", out);
}

static void print_report(struct report *rp, bool json, unsigned int top, FILE *out)
{
	size_t n = HASH_COUNT(rp->files), k = 0;
	struct report_view rv = { .v = calloc(n ? n : 1, sizeof(*rv.v)), .n = n, .hmax = -1 };
	struct rfile *f, *tmp;

	if (!rv.v)
		return;
	HASH_ITER(hh, rp->files, f, tmp)
		rv.v[k++] = f;
	qsort(rv.v, n, sizeof(*rv.v), cmp_file);
	for (int i = 0; i < HIST_BUCKETS; i++)
		if (rp->hist[i])
			rv.hmax = i;
	while (rv.hmin < rv.hmax && !rp->hist[rv.hmin])
		rv.hmin++;
	sort_rp = rp;
	if (json)
		report_json(rp, &rv, top, out);
	else
		report_text(rp, &rv, top, out);
	free(rv.v);
}

/* --- plot ---------------------------------------------------------------- */

static int plot_svg(struct report *rp, const struct dc_recbuf *rb, const char *path)
{
	static const char *const colors[PLOT_FILES] = { "#1f77b4", "#d62728", "#2ca02c",
							"#9467bd", "#ff7f0e" };
	size_t n = HASH_COUNT(rp->files), k = 0, nf;
	struct rfile **v = calloc(n ? n : 1, sizeof(*v)), *f, *tmp;
	/* Per series and time slot: the most pages cached in it, and at its end. */
	int64_t (*pts)[PLOT_POINTS] = NULL, (*end)[PLOT_POINTS] = NULL;
	double span = rp->t1 > rp->t0 ? (double)(rp->t1 - rp->t0) : 1;
	const double W = 900, H = 420, L = 70, R = 250, T = 30, B = 40;
	int64_t ymax = 1;
	FILE *o;

	if (!v)
		return -ENOMEM;
	HASH_ITER(hh, rp->files, f, tmp)
		v[k++] = f;
	sort_rp = rp;
	metric = 0;
	qsort(v, n, sizeof(*v), cmp_metric);
	/* Files that had pages added: the others have no residency to show. */
	for (nf = 0; nf < n && nf < PLOT_FILES && v[nf]->added; nf++)
		;
	pts = calloc(PLOT_FILES, sizeof(*pts));
	end = calloc(PLOT_FILES, sizeof(*end));
	if (!pts || !end) {
		free(pts);
		free(end);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nf; i++) {
		v[i]->plot = (int)i + 1;
		v[i]->cached = v[i]->cached_min = 0;
	}
	/* Net change since the start; pages cached before show as an offset. */
	for (size_t i = 0; i < rb->n; i++) {
		const struct dc_record *r = &rb->rec[i];

		if (r->type != DC_ADDED && r->type != DC_REMOVED)
			continue;
		f = file_get(rp, r->dev, r->ino);
		if (!f || !f->plot)
			continue;
		f->cached += r->type == DC_ADDED ? (int64_t)r->count : -(int64_t)r->count;
		if (f->cached < f->cached_min)
			f->cached_min = f->cached;
	}
	for (size_t i = 0; i < nf; i++)
		v[i]->cached = -v[i]->cached_min;
	for (size_t i = 0; i < nf; i++)
		for (int s = 0; s < PLOT_POINTS; s++)
			pts[i][s] = -1;
	for (size_t i = 0; i < rb->n; i++) {
		const struct dc_record *r = &rb->rec[i];
		int s;

		if (r->type != DC_ADDED && r->type != DC_REMOVED)
			continue;
		f = file_get(rp, r->dev, r->ino);
		if (!f || !f->plot)
			continue;
		f->cached += r->type == DC_ADDED ? (int64_t)r->count : -(int64_t)r->count;
		s = (int)((double)(r->ts - rp->t0) / span * (PLOT_POINTS - 1));
		if (pts[f->plot - 1][s] < f->cached)
			pts[f->plot - 1][s] = f->cached;
		end[f->plot - 1][s] = f->cached;
		if (f->cached > ymax)
			ymax = f->cached;
	}
	o = fopen(path, "we");
	if (!o) {
		int e = -errno;

		free(pts);
		free(end);
		free(v);
		return e;
	}
	fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
		"font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	fprintf(o, "<rect width=\"%g\" height=\"%g\" fill=\"white\"/>\n", W, H);
	fprintf(o, "<text x=\"%g\" y=\"18\">cached pages over time (top %zu files by pages "
		"added; net of the recording, offset by pages cached before)</text>\n", L, nf);
	fprintf(o, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n",
		L, H - B, W - R, H - B);
	fprintf(o, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n",
		L, T, L, H - B);
	fprintf(o, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%" PRId64 "</text>\n",
		L - 4, T + 4, ymax);
	fprintf(o, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">0</text>\n", L - 4, H - B);
	fprintf(o, "<text x=\"%g\" y=\"%g\">0 s</text>\n", L, H - B + 16);
	fprintf(o, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.3f s</text>\n", W - R,
		H - B + 16, span / 1e9);
	for (size_t i = 0; i < nf; i++) {
		/* Start value: the offset (pages cached before the recording). */
		int64_t last = -v[i]->cached_min;
		char p[256];

		fprintf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
			colors[i]);
		for (int s = 0; s < PLOT_POINTS; s++) {
			double x = L + (W - R - L) * s / (PLOT_POINTS - 1);

			if (pts[i][s] >= 0 && pts[i][s] != last) {
				fprintf(o, "%.1f,%.1f ", x, H - B - (H - B - T) * (double)last / (double)ymax);
				fprintf(o, "%.1f,%.1f ", x, H - B - (H - B - T) * (double)pts[i][s] /
								(double)ymax);
				last = end[i][s];
			}
			if (s == 0 || s == PLOT_POINTS - 1 || (pts[i][s] >= 0 && end[i][s] != pts[i][s]))
				fprintf(o, "%.1f,%.1f ", x, H - B - (H - B - T) * (double)last /
							       (double)ymax);
		}
		fputs("\"/>\n", o);
		path_text(v[i]->path, p, sizeof(p));
		fprintf(o, "<text x=\"%g\" y=\"%g\" fill=\"%s\">%u:%u %" PRIu64 " ",
			W - R + 10, T + 16.0 * (double)(i + 1), colors[i], dc_kdev_major(v[i]->k.dev),
			dc_kdev_minor(v[i]->k.dev), v[i]->k.ino);
		for (const char *c = p; *c; c++) {
			if (*c == '<')
				fputs("&lt;", o);
			else if (*c == '&')
				fputs("&amp;", o);
			else if (*c == '>')
				fputs("&gt;", o);
			else
				fputc(*c, o);
		}
		fputs("</text>\n", o);
	}
	fputs("</svg>\n", o);
	free(pts);
	free(end);
	free(v);
	return fclose(o) ? -errno : 0;
}

/* --- command ------------------------------------------------------------- */

static const struct option report_lo[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "top", required_argument, NULL, 't' },
	{ "plot", required_argument, NULL, 'p' },
	{ "drop-caches-comm", required_argument, NULL, 'd' },
	{ 0 },
};

static const struct cli_opts report_opts = {
	.usage = "usage: duet report [--json] [--top N] [--plot FILE.svg]\n"
		 "                   [--drop-caches-comm LIST] FILE\n"
		 "Summarise a recorded trace.dat (version 6 or 7: duet record, or\n"
		 "trace-cmd record -e filemap -e writeback [-e vmscan]) per file:\n"
		 "pages added, removed, dirtied and flushed, the top files by each,\n"
		 "refaults (pages removed, then added again), how long pages stayed\n"
		 "cached (log2 histogram), and removals by cause. Paths come from\n"
		 "FILE.duet, the sidecar duet record writes, which also maps backing\n"
		 "devices; without it PATH is - and writeback_dirty_folio's backing\n"
		 "devices are mapped through the file systems mounted now.\n"
		 "  --json         one JSON object instead of text\n"
		 "  --top N        files in each top list (default 10)\n"
		 "  --plot FILE    write an SVG of cached pages over time, top 5 files\n"
		 "  --drop-caches-comm LIST\n"
		 "                 comms whose removals count as drop_caches (default\n"
		 "                 sh,bash,dash,zsh,ash,busybox,tee,sysctl)\n"
		 "Removal causes: direct-reclaim (between vmscan direct, memcg or node\n"
		 "reclaim begin/end of the task, if recorded), kswapd, drop-caches\n"
		 "(by comm, above), kernel (kworker, kdamond, khugepaged, kcompactd,\n"
		 "pid 0), else truncate/unlink/invalidate by the named task.\n",
	.shortopts = "jt:p:d:",
	.longopts = report_lo,
};

/* What the options set. */
struct report_args {
	const char *plot;
	unsigned int top;
	bool json;
};

static int report_opt(void *ud, const struct cli_arg *a)
{
	struct report_args *ra = ud;
	uint64_t v = 0;
	int r;

	switch (a->key) {
	case 'd':
		cause_set_drop_comms(a->value);
		break;
	case 'j':
		ra->json = true;
		break;
	case 't':
		r = cli_number(a, 1, 1000000, &v);
		ra->top = (unsigned int)v;
		return r;
	case 'p':
		ra->plot = a->value;
		break;
	}
	return 0;
}

/*
 * The steps of duet report: each returns 0, or an exit status after
 * saying why.
 */

/* FILE mapped and opened as a trace.dat. */
static int report_open(struct report *rp)
{
	const char *why = NULL;
	struct stat sb;
	int r;

	rp->fd = open(rp->file, O_RDONLY | O_CLOEXEC);
	if (rp->fd < 0 || fstat(rp->fd, &sb)) {
		fprintf(stderr, "duet report: %s: %s\n", rp->file, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "duet report: %s: not a regular file\n", rp->file);
		return CLI_EXIT_FAIL;
	}
	rp->size = (size_t)sb.st_size;
	if (rp->size) {
		rp->map = mmap(NULL, rp->size, PROT_READ, MAP_PRIVATE, rp->fd, 0);
		if (rp->map == MAP_FAILED) {
			fprintf(stderr, "duet report: %s: %s\n", rp->file, strerror(errno));
			return CLI_EXIT_FAIL;
		}
		madvise(rp->map, rp->size, MADV_SEQUENTIAL);
	}
	r = dc_tdread_open(rp->map == MAP_FAILED ? "" : rp->map, rp->size, &rp->td, &why);
	if (r) {
		fprintf(stderr, "duet report: %s: %s\n", rp->file, why ? why : strerror(-r));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

/* The sidecar's paths and backing devices (else the mounts' now), and what the events mean. */
static int report_sidecar(struct report *rp)
{
	const char *why = NULL;
	char *side = NULL;
	bool side_bdis;
	int r;

	/* Any length: a path too long for a buffer is not cut to another file's. */
	if (asprintf(&side, "%s.duet", rp->file) < 0) {
		fprintf(stderr, "duet report: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	if (!access(side, F_OK)) {
		r = dc_sidecar_read(side, &rp->side, &why);
		if (r) {
			fprintf(stderr, "duet report: %s: %s\n", side, r == -ENOMEM ?
				"out of memory" : why);
			free(side);
			return CLI_EXIT_FAIL;
		}
		rp->bdis = dc_sidecar_bdis(rp->side, &rp->nbdis);
	}
	free(side);
	side_bdis = rp->nbdis > 0;
	/* A sidecar without backing devices: map them as without one. */
	if (!rp->nbdis && dc_tdread_has(rp->td, DC_SRC_WB_DIRTY) &&
	    !dc_tdread_has(rp->td, DC_SRC_P_DIRTY)) {
		r = live_bdis(&rp->bdis_now, &rp->nbdis);
		rp->bdis = rp->bdis_now;
		if (r)
			fprintf(stderr, "duet report: cannot read the mounts (%s): dirty events "
				"will not be mapped to devices\n", strerror(-r));
	}
	rp->dirty_sem = dc_tdread_has(rp->td, DC_SRC_P_DIRTY) ? "exact per folio" :
			dc_tdread_has(rp->td, DC_SRC_WB_DIRTY) ?
			(side_bdis ? "one page per writeback_dirty_folio event, bdi mapped by the sidecar" :
			 "one page per writeback_dirty_folio event, bdi mapped by this machine's mounts now") :
			"not recorded";
	rp->flush_exact = dc_tdread_has(rp->td, DC_SRC_P_WB_START);
	rp->flush_sem = rp->flush_exact ? "exact per folio" :
			dc_tdread_has(rp->td, DC_SRC_SB_CLEAR_WB) ?
			"inode-level (sb_clear_inode_writeback events, not pages)" : "not recorded";
	return 0;
}

/* The records decoded and analysed; the report printed, the plot written. */
static int report_run(struct report *rp, const struct report_args *ra)
{
	struct dc_recbuf rb = { 0 };
	int r, ret = CLI_EXIT_FAIL;

	r = dc_tdread_decode(rp->td, rp->bdis, rp->nbdis, &rb, &rp->st);
	if (r) {
		fprintf(stderr, "duet report: %s: %s\n", rp->file, strerror(-r));
		goto out;
	}
	rp->has_loads = dc_tdread_has_aux(rp->td, DC_AUX_READ) ||
			dc_tdread_has_aux(rp->td, DC_AUX_FAULT);
	r = analyse(rp, &rb);
	if (!r)
		r = loads_finish(&rp->loads, loads_file, rp);
	if (r) {
		fprintf(stderr, "duet report: %s\n", strerror(-r));
		goto out;
	}
	print_report(rp, ra->json, ra->top, stdout);
	if (ra->plot) {
		r = plot_svg(rp, &rb, ra->plot);
		if (r) {
			fprintf(stderr, "duet report: %s: %s\n", ra->plot, strerror(-r));
			goto out;
		}
	}
	if (fflush(stdout)) {
		fprintf(stderr, "duet report: writing the report: %s\n", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	dc_recbuf_free(&rb);
	return ret;
}

int cmd_report(int argc, char **argv)
{
	struct report rp = { .fd = -1, .map = MAP_FAILED };
	struct report_args ra = { .top = 10 };
	int r;

	r = cli_options(&report_opts, argc, argv, report_opt, &ra);
	if (r != CLI_GO)
		return r;
	if (optind + 1 != argc)
		return cli_usage_error(&report_opts);
	rp.file = argv[optind];
	r = report_open(&rp);
	if (!r)
		r = report_sidecar(&rp);
	if (!r)
		r = report_run(&rp, &ra);
	/* Process exit frees the tables; only the mapping and fd are closed. */
	dc_tdread_free(rp.td);
	dc_sidecar_free(rp.side);
	free(rp.bdis_now);
	free(rp.pt.s);
	if (rp.map != MAP_FAILED)
		munmap(rp.map, rp.size);
	if (rp.fd >= 0)
		close(rp.fd);
	return r;
}
