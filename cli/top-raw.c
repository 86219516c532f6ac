// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top's raw-page reader (top-raw.h).
 *
 * Order: the source dispatches records in time order only once every CPU
 * has been read up to their time, and a page reaches page_fn before its
 * records are decoded; so when a record at time T is counted, every event
 * of these up to T is already queued here, on whichever CPU it ran, and
 * top_raw_until(T) hands them over first.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <traceevent/kbuffer.h>

#include "live.h"
#include "top-raw.h"

#define MAX_EVENTS 16

struct top_raw {
	const char *names[MAX_EVENTS + 1];
	uint16_t ids[MAX_EVENTS];
	top_raw_decode_fn fn[MAX_EVENTS];
	void *ud[MAX_EVENTS];
	size_t n;
	struct kbuffer **kb;	/* one per CPU: page_fn runs on its reader thread */
	int ncpus;
	pthread_mutex_t lock;	/* q: from the reader threads to the main one */
	struct dc_record *q, *pend;	/* pend: the main thread's, sorted, not yet handed */
	size_t nq, capq, npend, cappend;
};

int top_raw_new(int ncpus, struct top_raw **ret)
{
	struct top_raw *r = calloc(1, sizeof(*r));

	if (!r || !(r->kb = calloc((size_t)ncpus, sizeof(*r->kb)))) {
		free(r);
		return -ENOMEM;
	}
	r->ncpus = ncpus;
	for (int i = 0; i < ncpus; i++) {
		r->kb[i] = kbuffer_alloc(sizeof(long) == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
					 __BYTE_ORDER == __LITTLE_ENDIAN ? KBUFFER_ENDIAN_LITTLE :
									  KBUFFER_ENDIAN_BIG);
		if (!r->kb[i]) {
			top_raw_free(r);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&r->lock, NULL);
	*ret = r;
	return 0;
}

void top_raw_free(struct top_raw *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->ncpus; i++)
		if (r->kb[i])
			kbuffer_free(r->kb[i]);
	free(r->kb);
	free(r->q);
	free(r->pend);
	free(r);
}

int top_raw_add(struct top_raw *r, const char *event, top_raw_decode_fn fn, void *ud,
		char **text, size_t *len)
{
	const char *sl = strchr(event, '/');
	char sys[64], *t, *id;
	size_t tl;
	unsigned long v = 0;

	if (!sl || r->n == MAX_EVENTS)
		return -EINVAL;
	snprintf(sys, sizeof(sys), "%.*s", (int)(sl - event), event);
	if (dc_event_format(sys, sl + 1, &t, &tl))
		return -ENOENT;
	id = memmem(t, tl, "\nID: ", 5);
	if (id)
		v = strtoul(id + 5, NULL, 10);
	if (!v || v > UINT16_MAX) {
		free(t);
		return -ENOENT;
	}
	r->names[r->n] = event;
	r->ids[r->n] = (uint16_t)v;
	r->fn[r->n] = fn;
	r->ud[r->n] = ud;
	r->names[++r->n] = NULL;
	if (text) {
		*text = t;
		*len = tl;
	} else {
		free(t);
	}
	return 0;
}

size_t top_raw_count(const struct top_raw *r)
{
	return r->n;
}

void top_raw_truncate(struct top_raw *r, size_t n)
{
	if (n < r->n) {
		r->n = n;
		r->names[n] = NULL;
	}
}

const char *const *top_raw_events(const struct top_raw *r)
{
	return r->names;
}

static int push(struct dc_record **a, size_t *n, size_t *cap, const struct dc_record *rec)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct dc_record *na = realloc(*a, nc * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*a = na;
		*cap = nc;
	}
	(*a)[(*n)++] = *rec;
	return 0;
}

int top_raw_page(void *ud, int cpu, const void *page, size_t len)
{
	struct top_raw *r = ud;
	const uint8_t *end = (const uint8_t *)page + len;
	unsigned long long ts;
	struct kbuffer *kb;
	int e = 0;

	if (cpu < 0 || cpu >= r->ncpus)
		return -EINVAL;
	kb = r->kb[cpu];
	/* The kernel's own page, just read; kbuffer walks it as trace-cmd does. */
	if (kbuffer_load_subbuffer(kb, (void *)page) < 0)
		return -EINVAL;
	for (uint8_t *data = kbuffer_read_event(kb, &ts); data && !e;
	     data = kbuffer_next_event(kb, &ts)) {
		size_t size = (size_t)kbuffer_event_size(kb);
		uint16_t id;

		if (data < (const uint8_t *)page || size < 8 || data + size > end)
			continue;
		memcpy(&id, data, 2);
		for (size_t k = 0; k < r->n; k++) {
			struct dc_record rec = { .ts = ts, .cpu = (uint16_t)cpu };

			if (id != r->ids[k])
				continue;
			memcpy(&rec.pid, data + 4, 4);	/* common_pid */
			if (r->fn[k](r->ud[k], data, size, &rec)) {
				pthread_mutex_lock(&r->lock);
				e = push(&r->q, &r->nq, &r->capq, &rec);
				pthread_mutex_unlock(&r->lock);	/* release: pairs with until's load */
			}
			break;
		}
	}
	return e;
}

static int cmp_ts(const void *a, const void *b)
{
	const struct dc_record *x = a, *y = b;

	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

int top_raw_until(struct top_raw *r, uint64_t ts, int (*fn)(void *ud, const struct dc_record *rec),
		  void *ud)
{
	size_t done = 0;
	int e = 0;

	/*
	 * Called before every record: nothing queued is the common case. A
	 * push is seen here: it happened before the source handed over the
	 * records it precedes (top-raw.h's order).
	 */
	if (!r->npend && !__atomic_load_n(&r->nq, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&r->lock);
	if (r->nq) {
		for (size_t i = 0; i < r->nq && !e; i++)
			e = push(&r->pend, &r->npend, &r->cappend, &r->q[i]);
		r->nq = 0;
		pthread_mutex_unlock(&r->lock);
		/* In time order (equal stamps, rare, in either order). */
		qsort(r->pend, r->npend, sizeof(*r->pend), cmp_ts);
	} else {
		pthread_mutex_unlock(&r->lock);
	}
	for (; !e && done < r->npend && r->pend[done].ts <= ts; done++)
		e = fn(ud, &r->pend[done]);
	if (done) {
		memmove(r->pend, r->pend + done, (r->npend - done) * sizeof(*r->pend));
		r->npend -= done;
	}
	return e;
}
