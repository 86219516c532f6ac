// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top's view of reclaim, as root: vmscan's direct, memory-cgroup and
 * node reclaim begin/end events, enabled in the same tracing instance
 * (extra events) and taken from the raw pages on each CPU's reader
 * thread, before the page's own records are decoded. A removal by a
 * task between its begin and end is direct reclaim, as duet report
 * tells it from a recording.
 *
 * Order: records are dispatched in time order only once every CPU has
 * been read up to their time, and a page reaches page_fn before its
 * records are decoded; so when a removal at time T is counted, every
 * transition up to T is already queued here, on whichever CPU it ran.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <traceevent/kbuffer.h>
#include <uthash.h>

#include "top-vmscan.h"

/* The events, as "system/name", and whether each begins reclaim. */
static const char *const vm_events[] = {
	"vmscan/mm_vmscan_direct_reclaim_begin", "vmscan/mm_vmscan_direct_reclaim_end",
	"vmscan/mm_vmscan_memcg_reclaim_begin",	 "vmscan/mm_vmscan_memcg_reclaim_end",
	"vmscan/mm_vmscan_node_reclaim_begin",	 "vmscan/mm_vmscan_node_reclaim_end",
	NULL,
};
#define VM_NEVENTS 6

struct vm_change {
	uint64_t ts;
	int32_t pid;
	bool begin;
};

struct vm_pid {
	int pid;
	bool in;
	UT_hash_handle hh;
};

struct top_vmscan {
	uint16_t ids[VM_NEVENTS];
	struct kbuffer **kb;	/* one per CPU: page_fn runs on its reader thread */
	int ncpus;
	pthread_mutex_t lock;	/* q, from the reader threads to the main one */
	struct vm_change *q;
	size_t nq, capq;
	struct vm_change *pend;	/* the main thread's, sorted, not yet applied */
	size_t npend, cappend;
	struct vm_pid *pids;
};

const char *const *top_vmscan_events(void)
{
	return vm_events;
}

static int read_id(const char *ev, uint16_t *id)
{
	static const char *const dirs[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	char path[256];

	for (size_t i = 0; i < 2; i++) {
		unsigned int v;
		FILE *f;
		int n;

		snprintf(path, sizeof(path), "%s/events/%s/id", dirs[i], ev);
		f = fopen(path, "re");
		if (!f)
			continue;
		n = fscanf(f, "%u", &v);
		fclose(f);
		if (n == 1 && v <= UINT16_MAX) {
			*id = (uint16_t)v;
			return 0;
		}
	}
	return -ENOENT;
}

int top_vmscan_new(int ncpus, struct top_vmscan **ret)
{
	struct top_vmscan *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (int i = 0; i < VM_NEVENTS; i++)
		if (read_id(vm_events[i], &v->ids[i])) {
			free(v);
			return -ENOENT;
		}
	v->ncpus = ncpus;
	v->kb = calloc((size_t)ncpus, sizeof(*v->kb));
	if (!v->kb) {
		free(v);
		return -ENOMEM;
	}
	for (int i = 0; i < ncpus; i++) {
		v->kb[i] = kbuffer_alloc(sizeof(long) == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
					 __BYTE_ORDER == __LITTLE_ENDIAN ? KBUFFER_ENDIAN_LITTLE :
									  KBUFFER_ENDIAN_BIG);
		if (!v->kb[i]) {
			top_vmscan_free(v);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&v->lock, NULL);
	*ret = v;
	return 0;
}

void top_vmscan_free(struct top_vmscan *v)
{
	struct vm_pid *p, *tmp;

	if (!v)
		return;
	for (int i = 0; i < v->ncpus; i++)
		if (v->kb[i])
			kbuffer_free(v->kb[i]);
	free(v->kb);
	HASH_ITER(hh, v->pids, p, tmp) {
		HASH_DEL(v->pids, p);
		free(p);
	}
	free(v->q);
	free(v->pend);
	free(v);
}

static int push(struct vm_change **a, size_t *n, size_t *cap, const struct vm_change *c)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct vm_change *na = realloc(*a, nc * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*a = na;
		*cap = nc;
	}
	(*a)[(*n)++] = *c;
	return 0;
}

/* A raw sub-buffer of cpu (the source's page_fn). */
int top_vmscan_page(void *ud, int cpu, const void *page, size_t len)
{
	struct top_vmscan *v = ud;
	const uint8_t *end = (const uint8_t *)page + len;
	struct kbuffer *kb;
	unsigned long long ts;
	int r = 0;

	if (cpu < 0 || cpu >= v->ncpus)
		return -EINVAL;
	kb = v->kb[cpu];
	/* The kernel's own page, just read; kbuffer walks it as trace-cmd does. */
	if (kbuffer_load_subbuffer(kb, (void *)page) < 0)
		return -EINVAL;
	for (uint8_t *data = kbuffer_read_event(kb, &ts); data; data = kbuffer_next_event(kb, &ts)) {
		struct vm_change c = { .ts = ts };
		uint16_t id;

		if (data < (const uint8_t *)page || data + 8 > end || kbuffer_event_size(kb) < 8)
			continue;
		memcpy(&id, data, 2);
		for (int k = 0; k < VM_NEVENTS; k++) {
			if (id != v->ids[k])
				continue;
			memcpy(&c.pid, data + 4, 4);	/* common_pid */
			c.begin = !(k & 1);
			pthread_mutex_lock(&v->lock);
			r = push(&v->q, &v->nq, &v->capq, &c);
			pthread_mutex_unlock(&v->lock);
			break;
		}
		if (r)
			return r;
	}
	return 0;
}

static int cmp_change(const void *a, const void *b)
{
	const struct vm_change *x = a, *y = b;

	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

bool top_vmscan_in_reclaim(struct top_vmscan *v, int pid, uint64_t ts)
{
	struct vm_pid *p;
	size_t done = 0;

	/* What the reader threads queued, merged into the pending ones. */
	pthread_mutex_lock(&v->lock);
	if (v->nq) {
		for (size_t i = 0; i < v->nq; i++)
			if (push(&v->pend, &v->npend, &v->cappend, &v->q[i]))
				break;
		v->nq = 0;
		pthread_mutex_unlock(&v->lock);
		qsort(v->pend, v->npend, sizeof(*v->pend), cmp_change);
	} else {
		pthread_mutex_unlock(&v->lock);
	}
	/* Every change up to ts, applied in order. */
	for (; done < v->npend && v->pend[done].ts <= ts; done++) {
		const struct vm_change *c = &v->pend[done];

		HASH_FIND_INT(v->pids, &c->pid, p);
		if (!p && c->begin) {
			p = calloc(1, sizeof(*p));
			if (!p)
				continue;
			p->pid = c->pid;
			HASH_ADD_INT(v->pids, pid, p);
		}
		if (!p)
			continue;
		p->in = c->begin;
		if (!p->in) {	/* out of reclaim: forgotten (pids are reused) */
			HASH_DEL(v->pids, p);
			free(p);
		}
	}
	if (done) {
		memmove(v->pend, v->pend + done, (v->npend - done) * sizeof(*v->pend));
		v->npend -= done;
	}
	HASH_FIND_INT(v->pids, &pid, p);
	return p && p->in;
}
