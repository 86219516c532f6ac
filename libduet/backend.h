/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one interface between libduet's public calls (api.c) and the two
 * backends that carry them out:
 *  - in-process (local.c, local-pump.c, local-scan.c, local-save.c): the
 *    tracing ring buffer, the path index and the engine, fed by a pump
 *    thread; root only;
 *  - daemon (client.c): every call carried to duetd over its socket.
 *
 * api.c checks what the public contract defines (NULL pointers, the
 * option and status sizes) and calls through s->ops; a backend sees only
 * checked arguments, option structs of this library's full size (a
 * caller's smaller or larger struct already brought to it) and a status
 * struct of its full size, which api.c copies out as far as the caller's
 * struct goes. So the rules of the public API are written once, and a
 * backend never tests which backend it is.
 *
 * A backend's session and task start with struct duet_session and struct
 * duet_task (their first member, "base"); api.c knows nothing else of
 * them, and a backend gets its own from the public one with
 * duet__container_of().
 */
#ifndef DUET_BACKEND_H
#define DUET_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "duet/duet.h"

#define EXPORT __attribute__((visibility("default")))

#define duet__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum duet__done_op {
	DUET__DONE_SET,
	DUET__DONE_RESET,
	DUET__DONE_CHECK,	/* 1 if every page of the range is done */
};

struct duet_backend {
	const char *name;
	/* Deregisters and frees every task left, then the session. */
	void (*session_free)(struct duet_session *s);
	int (*flush_semantics)(struct duet_session *s);
	/* opts: this library's size, path not NULL. */
	int (*task_new)(struct duet_session *s, const struct duet_task_opts *opts,
			struct duet_task **ret);
	void (*task_free)(struct duet_task *t);
	int (*task_fd)(const struct duet_task *t);
	/* items: n of them (n may be 0). */
	int (*task_fetch)(struct duet_task *t, struct duet_item *items, size_t n);
	int (*task_fileid)(struct duet_task *t, const char *path, struct duet_fileid *ret);
	int (*task_done)(struct duet_task *t, enum duet__done_op op, const struct duet_fileid *f,
			 uint64_t index, uint64_t count);
	int (*task_path)(struct duet_task *t, const struct duet_fileid *f, char *buf, size_t len);
	int (*task_save)(struct duet_task *t, const char *file);
	int (*task_load)(struct duet_task *t, const char *file);
	/* st: this library's size; written only on success. */
	int (*task_status)(struct duet_task *t, struct duet_task_status *st);
};

struct duet_session {
	const struct duet_backend *ops;
};

struct duet_task {
	struct duet_session *s;
};

/*
 * The backends' constructors. opts is this library's size and never NULL
 * (api.c's defaults when the caller passed none).
 */
int duet__local_session_new(const struct duet_session_opts *opts, struct duet_session **ret);
int duet__client_session_new(const struct duet_session_opts *opts, const char *socket,
			     struct duet_session **ret);

/*
 * A caller's option struct brought to this library's size by libbpf's
 * rule (api.c): smaller, the missing fields 0; larger, only if the bytes
 * this library does not know are 0. 0, or -EINVAL (and *out is then not
 * to be used). A NULL session opts gives the defaults; a NULL task opts,
 * or one without a path, is -EINVAL. Used by duet_session_new(),
 * duet_task_new() and duetd's duet__task_new_ext(); tests/libduet/
 * test-opts.c calls them directly.
 */
int duet__session_opts_get(const struct duet_session_opts *opts, struct duet_session_opts *out);
int duet__task_opts_get(const struct duet_task_opts *opts, struct duet_task_opts *out);

#endif
