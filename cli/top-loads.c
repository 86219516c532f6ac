// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top --loads (top-loads.h). As top-vmscan.c does for reclaim: the
 * events are enabled in top's own tracing instance, each CPU's reader
 * thread takes them from the raw page before the page's records are
 * decoded and queues them, and the main thread merges them in time
 * order before each page-cache record it counts, so that report-loads.c
 * sees one stream in the kernel's order, as from a recording.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <traceevent/kbuffer.h>

#include "live.h"
#include "tdread.h"
#include "top-loads.h"

#define NLOADS (DC_AUX_NR - DC_AUX_FIRST_LOAD)

static const char *const load_events[] = {
	"readahead/page_cache_sync_ra",
	"readahead/page_cache_async_ra",
	"readahead/page_cache_ra_order",
	"readahead/page_cache_ra_unbounded",
	"filemap/mm_filemap_get_pages",
	"filemap/mm_filemap_fault",
	NULL,
};

struct top_loads {
	uint16_t ids[NLOADS];
	struct dc_load_fields f[NLOADS];
	struct kbuffer **kb;
	int ncpus;
	pthread_mutex_t lock;	/* q: from the reader threads */
	struct dc_record *q, *pend;
	size_t nq, capq, npend, cappend;
};

const char *const *top_loads_events(void)
{
	return load_events;
}

static int push(struct dc_record **a, size_t *n, size_t *cap, const struct dc_record *r)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct dc_record *na = realloc(*a, nc * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*a = na;
		*cap = nc;
	}
	(*a)[(*n)++] = *r;
	return 0;
}

void top_loads_free(struct top_loads *l)
{
	if (!l)
		return;
	for (int i = 0; l->kb && i < l->ncpus; i++)
		if (l->kb[i])
			kbuffer_free(l->kb[i]);
	free(l->kb);
	free(l->q);
	free(l->pend);
	free(l);
}

int top_loads_new(int ncpus, struct top_loads **ret, const char **missing)
{
	struct top_loads *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	for (int k = 0; k < NLOADS; k++) {
		const char *ev = load_events[k], *sl = strchr(ev, '/');
		char sys[32], *text, *id;
		size_t len;
		int bad;

		snprintf(sys, sizeof(sys), "%.*s", (int)(sl - ev), ev);
		if (dc_event_format(sys, sl + 1, &text, &len)) {
			*missing = ev;
			top_loads_free(l);
			return -ENOENT;
		}
		id = memmem(text, len, "\nID: ", 5);
		bad = !id || dc_load_fields_parse(&l->f[k], DC_AUX_FIRST_LOAD + k, text, len);
		if (!bad)
			l->ids[k] = (uint16_t)strtoul(id + 5, NULL, 10);
		free(text);
		if (bad || !l->ids[k]) {
			*missing = ev;	/* a layout this reader does not take */
			top_loads_free(l);
			return -ENOENT;
		}
	}
	l->ncpus = ncpus;
	l->kb = calloc((size_t)ncpus, sizeof(*l->kb));
	if (!l->kb) {
		top_loads_free(l);
		return -ENOMEM;
	}
	for (int i = 0; i < ncpus; i++) {
		l->kb[i] = kbuffer_alloc(sizeof(long) == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
					 __BYTE_ORDER == __LITTLE_ENDIAN ? KBUFFER_ENDIAN_LITTLE :
									  KBUFFER_ENDIAN_BIG);
		if (!l->kb[i]) {
			top_loads_free(l);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&l->lock, NULL);
	*ret = l;
	return 0;
}

int top_loads_page(void *ud, int cpu, const void *page, size_t len)
{
	struct top_loads *l = ud;
	const uint8_t *end = (const uint8_t *)page + len;
	unsigned long long ts;
	struct kbuffer *kb;
	int r = 0;

	if (cpu < 0 || cpu >= l->ncpus)
		return -EINVAL;
	kb = l->kb[cpu];
	if (kbuffer_load_subbuffer(kb, (void *)page) < 0)
		return -EINVAL;
	for (uint8_t *data = kbuffer_read_event(kb, &ts); data && !r;
	     data = kbuffer_next_event(kb, &ts)) {
		uint16_t id;

		if (data < (const uint8_t *)page || data + 8 > end || kbuffer_event_size(kb) < 8)
			continue;
		memcpy(&id, data, 2);
		for (int k = 0; k < NLOADS; k++) {
			struct dc_record rec = { .ts = ts, .cpu = (uint16_t)cpu };

			if (id != l->ids[k])
				continue;
			if (kbuffer_event_size(kb) < l->f[k].end || data + l->f[k].end > end)
				break;
			memcpy(&rec.pid, data + 4, 4);
			dc_load_decode(&l->f[k], DC_AUX_FIRST_LOAD + k, data, &rec);
			pthread_mutex_lock(&l->lock);
			r = push(&l->q, &l->nq, &l->capq, &rec);
			pthread_mutex_unlock(&l->lock);
			break;
		}
	}
	return r;
}

static int cmp_ts(const void *a, const void *b)
{
	const struct dc_record *x = a, *y = b;

	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

int top_loads_until(struct top_loads *l, uint64_t ts, top_loads_fn fn, void *ud)
{
	size_t done = 0;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	if (l->nq) {
		for (size_t i = 0; i < l->nq && !r; i++)
			r = push(&l->pend, &l->npend, &l->cappend, &l->q[i]);
		l->nq = 0;
		pthread_mutex_unlock(&l->lock);
		/* In time order (equal stamps, rare, in either order). */
		qsort(l->pend, l->npend, sizeof(*l->pend), cmp_ts);
	} else {
		pthread_mutex_unlock(&l->lock);
	}
	for (; !r && done < l->npend && l->pend[done].ts <= ts; done++)
		r = fn(ud, &l->pend[done]);
	if (done) {
		memmove(l->pend, l->pend + done, (l->npend - done) * sizeof(*l->pend));
		l->npend -= done;
	}
	return r;
}
