// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The event-source interface (source.h): a registry of backends, the
 * tracefs backend over live.h, and loading the perf backend as a plugin.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

#ifndef DC_PERF_PLUGIN_PATH
#define DC_PERF_PLUGIN_PATH "/usr/local/lib/duet/perf-source.so"
#endif

struct dc_source {
	const struct dc_source_ops *ops;
	void *impl;
	enum dc_backend backend;
};

static const char *const backend_names[DC_BACKEND_NR] = {
	[DC_BACKEND_TRACEFS] = "tracefs",
	[DC_BACKEND_PERF] = "perf",
};

int dc_backend_parse(const char *name, enum dc_backend *ret)
{
	for (int b = 0; b < DC_BACKEND_NR; b++) {
		if (name && !strcmp(name, backend_names[b])) {
			*ret = (enum dc_backend)b;
			return 0;
		}
	}
	return -EINVAL;
}

const char *dc_backend_name(enum dc_backend b)
{
	return b >= 0 && b < DC_BACKEND_NR ? backend_names[b] : "?";
}

/* --- the tracefs backend --------------------------------------------- */

static int t_start(void *l)
{
	return dc_live_start(l);
}

static int t_fd(const void *l)
{
	return dc_live_fd(l);
}

static int t_dispatch(void *l, dc_records_fn fn, void *ud)
{
	return dc_live_fetch_cb(l, fn, ud);
}

static uint64_t t_complete_to(const void *l)
{
	return dc_live_complete_to(l);
}

static int t_set_devices(void *l, const uint32_t *d, size_t n)
{
	return dc_live_set_devices(l, d, n);
}

static int t_set_latency(void *l, unsigned int us)
{
	return dc_live_set_latency(l, us);
}

static void t_want_mark(void *l, uint64_t ts)
{
	dc_live_want_mark(l, ts);
}

static int t_stop(void *l)
{
	return dc_live_stop(l);
}

static bool t_finished(const void *l)
{
	return dc_live_finished(l);
}

static int t_stats(void *l, const struct dc_source_stats **ret)
{
	return dc_live_stats(l, ret);
}

static const char *t_describe(const void *l)
{
	return dc_live_describe(l);
}

static enum dc_flush_sem t_flush_sem(const void *l)
{
	return dc_live_flush_sem(l);
}

static enum dc_dirty_sem t_dirty_sem(const void *l)
{
	return dc_live_dirty_sem(l);
}

static bool t_uses(const void *l, int src)
{
	return dc_live_uses(l, src);
}

static void t_free(void *l)
{
	dc_live_free(l);
}

static const struct dc_source_ops tracefs_ops = {
	.start = t_start,
	.fd = t_fd,
	.dispatch = t_dispatch,
	.complete_to = t_complete_to,
	.set_devices = t_set_devices,
	.set_latency = t_set_latency,
	.want_mark = t_want_mark,
	.stop = t_stop,
	.finished = t_finished,
	.stats = t_stats,
	.describe = t_describe,
	.flush_sem = t_flush_sem,
	.dirty_sem = t_dirty_sem,
	.uses = t_uses,
	.free = t_free,
};

static int tracefs_open(const struct dc_source_opts *o, const struct dc_source_ops **ops,
			void **impl)
{
	struct dc_live_opts lo = {
		.sz = sizeof(lo),
		.devs = o->devs,
		.ndevs = o->ndevs,
		.bdis = o->bdis,
		.nbdis = o->nbdis,
		.types = o->types,
		.types_explicit = o->types_explicit,
		.buffer_kb = o->buffer_kb,
		.buffer_percent = o->buffer_percent,
		.latency_ms = o->latency_ms,
		.stock_only = o->stock_only,
		.exclude_pid = o->exclude_pid,
		.subbuf_kb = o->subbuf_kb,
		.queue_max = o->queue_max,
		.page_fn = o->page_fn,
		.page_ud = o->page_ud,
		.extra_events = o->extra_events,
	};
	struct dc_live *l;
	int r = dc_live_open(&lo, &l);

	if (r)
		return r;
	*ops = &tracefs_ops;
	*impl = l;
	return 0;
}

static const struct dc_source_backend tracefs_backend = {
	.id = DC_BACKEND_TRACEFS,
	.name = "tracefs",
	.open = tracefs_open,
};

/* --- the registry ----------------------------------------------------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct dc_source_backend *registered[DC_BACKEND_NR] = {
	[DC_BACKEND_TRACEFS] = &tracefs_backend,
};

void dc_source_register(const struct dc_source_backend *b)
{
	if (!b || b->id < 0 || b->id >= DC_BACKEND_NR)
		return;
	pthread_mutex_lock(&reg_lock);
	if (!registered[b->id])
		registered[b->id] = b;
	pthread_mutex_unlock(&reg_lock);
}

static const struct dc_source_backend *backend_of(enum dc_backend b)
{
	const struct dc_source_backend *r;

	pthread_mutex_lock(&reg_lock);
	r = b >= 0 && b < DC_BACKEND_NR ? registered[b] : NULL;
	pthread_mutex_unlock(&reg_lock);
	return r;
}

#ifdef DC_SOURCE_NO_PLUGIN
/* A static program (the VM's live test) has no dlopen. */
int dc_source_load_plugin(const char *path)
{
	return backend_of(DC_BACKEND_PERF) ? 0 : -EOPNOTSUPP;
}
#else
int dc_source_load_plugin(const char *path)
{
	const struct dc_source_backend *b;
	void *h;

	if (backend_of(DC_BACKEND_PERF))
		return 0;
	if (!path)
		path = secure_getenv("DUET_PERF_PLUGIN");	/* not from a setuid caller's environment */
	if (!path || !*path)
		path = DC_PERF_PLUGIN_PATH;
	/* Kept loaded for the life of the process: sources point into it. */
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return -EOPNOTSUPP;
	b = dlsym(h, DC_SOURCE_PLUGIN_SYMBOL);
	if (!b || b->id != DC_BACKEND_PERF || !b->open) {
		dlclose(h);
		return -EINVAL;
	}
	dc_source_register(b);
	return 0;
}
#endif

bool dc_source_available(enum dc_backend b)
{
	if (b == DC_BACKEND_PERF && !backend_of(b))
		dc_source_load_plugin(NULL);
	return backend_of(b) != NULL;
}

/* --- the source ------------------------------------------------------- */

int dc_source_open(const struct dc_source_opts *opts, struct dc_source **ret)
{
	const struct dc_source_backend *b;
	struct dc_source *s;
	int r;

	if (!opts || opts->sz < sizeof(*opts) || !ret || opts->backend < 0 ||
	    opts->backend >= DC_BACKEND_NR)
		return -EINVAL;
	if (!dc_source_available(opts->backend))
		return -EOPNOTSUPP;
	b = backend_of(opts->backend);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->backend = opts->backend;
	r = b->open(opts, &s->ops, &s->impl);
	if (r) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

int dc_source_start(struct dc_source *s)
{
	return s->ops->start(s->impl);
}

int dc_source_fd(const struct dc_source *s)
{
	return s->ops->fd(s->impl);
}

int dc_source_dispatch(struct dc_source *s, dc_records_fn fn, void *ud)
{
	return s->ops->dispatch(s->impl, fn, ud);
}

uint64_t dc_source_complete_to(const struct dc_source *s)
{
	return s->ops->complete_to(s->impl);
}

int dc_source_set_devices(struct dc_source *s, const uint32_t *devs, size_t ndevs)
{
	return s->ops->set_devices(s->impl, devs, ndevs);
}

int dc_source_set_latency(struct dc_source *s, unsigned int us)
{
	return s->ops->set_latency ? s->ops->set_latency(s->impl, us) : -EOPNOTSUPP;
}

void dc_source_want_mark(struct dc_source *s, uint64_t ts)
{
	if (s->ops->want_mark)
		s->ops->want_mark(s->impl, ts);
}

int dc_source_stop(struct dc_source *s)
{
	return s->ops->stop(s->impl);
}

bool dc_source_finished(const struct dc_source *s)
{
	return s->ops->finished(s->impl);
}

int dc_source_stats(struct dc_source *s, const struct dc_source_stats **ret)
{
	return s->ops->stats(s->impl, ret);
}

bool dc_source_uses(const struct dc_source *s, int src)
{
	return s->ops->uses(s->impl, src);
}

const char *dc_source_describe(const struct dc_source *s)
{
	return s->ops->describe(s->impl);
}

enum dc_flush_sem dc_source_flush_sem(const struct dc_source *s)
{
	return s->ops->flush_sem(s->impl);
}

enum dc_dirty_sem dc_source_dirty_sem(const struct dc_source *s)
{
	return s->ops->dirty_sem(s->impl);
}

enum dc_backend dc_source_backend(const struct dc_source *s)
{
	return s->backend;
}

struct dc_live *dc_source_live(struct dc_source *s)
{
	return s->backend == DC_BACKEND_TRACEFS ? s->impl : NULL;
}

void dc_source_free(struct dc_source *s)
{
	if (!s)
		return;
	s->ops->free(s->impl);
	free(s);
}
