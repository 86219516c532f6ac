// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd's requests (libduet/proto.h): each one parsed by the codec and
 * answered from the main thread through the in-process session's API,
 * acting as the client (duetd-creds.c) where the client's rights decide.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duetd.h"
#include "internal.h"

static void do_task_new(struct client *c, const struct dp_request *rq)
{
	struct duet_task_opts to = { .sz = sizeof(to) };
	struct duet__task_ext x = {
		.max_pending = d.max_pending,
		.max_done_marks = d.max_done_marks,
	};
	struct dp_task_id id;
	/* Edge-triggered: see on_task() (duetd-conn.c). */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = &c->task_src };
	const char *path = rq->u.task_new.path;
	struct stat st;
	int r;

	if (c->task) {
		reply(c, rq->seq, -EBUSY, NULL, 0);	/* one task per connection */
		return;
	}
	if (c->cr.uid && c->u->tasks >= d.max_tasks_per_user) {
		reply(c, rq->seq, -ENOSPC, NULL, 0);
		return;
	}
	/*
	 * The root is resolved once, as the client: opened with its rights
	 * (following symlinks as it would), checked on the open file (it must
	 * be able to list the directory, or read the file), and handed to the
	 * session by fd. A symlink swapped in after the check is never
	 * followed as root.
	 */
	if (c->cr.uid)
		as_client(&c->cr);
	x.root_fd = open(path, O_PATH | O_CLOEXEC);
	r = x.root_fd < 0 ? -errno : fstat(x.root_fd, &st) ? -errno : 0;
	if (!r && faccessat(x.root_fd, "", S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK,
			    AT_EMPTY_PATH | (c->cr.uid ? AT_EACCESS : 0)))
		r = -errno;
	if (c->cr.uid)
		as_self();
	if (r) {
		if (x.root_fd >= 0)
			close(x.root_fd);
		reply(c, rq->seq, r, NULL, 0);
		return;
	}
	x.have_root_fd = true;
	to.name = rq->u.task_new.name;
	to.mask = rq->u.task_new.mask;
	to.latency_ms = rq->u.task_new.latency_ms;
	to.path = path;
	if (c->cr.uid) {
		x.visible = client_visible;
		x.ud = c;
	}
	x.hold = rq->u.task_new.flags & DP_TASK_HOLD;
	/*
	 * Polite for the process that connected: its page-ins are the ones
	 * this task's drops may take back (the kernel's events name it by
	 * the same pid: duetd is in the first pid namespace).
	 */
	if (rq->u.task_new.flags & DP_TASK_POLITE) {
		to.flags = DUET_TASK_POLITE;
		x.owner_pid = (int32_t)c->cr.pid;
	}
	r = duet__task_new_ext(d.s, &to, &x, &c->task);
	close(x.root_fd);
	if (r) {
		c->task = NULL;
		reply(c, rq->seq, r, NULL, 0);
		return;
	}
	/* Status shows the root as resolved, not the path asked for. */
	c->dir = strdup(duet__task_root(c->task));
	c->mask = to.mask;
	c->polite = to.flags & DUET_TASK_POLITE;
	snprintf(c->name, sizeof(c->name), "%s", to.name);
	c->id = d.next_id++;
	d.ntasks++;
	c->u->tasks++;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, duet_task_fd(c->task), &ev);
	id.id = c->id;
	id.flush = (uint32_t)duet_session_flush_semantics(d.s);
	reply(c, rq->seq, 0, &id, sizeof(id));
	if (d.verbose)
		say("task %u \"%s\" of uid %u pid %d on %s mask %#x%s", c->id, c->name,
		    (unsigned)c->cr.uid, (int)c->cr.pid, path, c->mask,
		    to.flags & DUET_TASK_POLITE ? " polite" : "");
}

static void do_fetch(struct client *c, const struct dp_request *rq)
{
	uint32_t max = rq->u.fetch_max > DP_MAX_FETCH ? DP_MAX_FETCH : rq->u.fetch_max;
	struct dp_reply rep = { 0 };
	size_t hdr = DP_HDR_SIZE + sizeof(rep);
	bool drained = false;
	char *p;
	int r;

	if (reserve_out(c, hdr + (size_t)max * sizeof(struct duet_item))) {
		c->closing = true;
		return;
	}
	/* Items are fetched straight into the reply. */
	p = c->out + c->outlen;
	r = duet__task_fetch(c->task, (struct duet_item *)(void *)(p + hdr), max, &drained);
	if (!max)
		r = 0;	/* only re-arms READY, whatever the session says */
	rep.result = r;
	/* The client need not ask again to learn that there is nothing more. */
	if (r > 0 && drained && c->minor >= 5)
		rep.flags = DP_REPLY_DRAINED;
	{
		struct dp_hdr h = {
			.magic = DP_MAGIC,
			.version = DP_VERSION,
			.type = DP_REPLY,
			.len = (uint32_t)(sizeof(rep) + (r > 0 ? (size_t)r * sizeof(struct duet_item) : 0)),
			.seq = rq->seq,
		};

		memcpy(p, &h, sizeof(h));
		memcpy(p + DP_HDR_SIZE, &rep, sizeof(rep));
		c->outlen += DP_HDR_SIZE + h.len;
	}
	/*
	 * The client has come back for items: READY may be sent again, and
	 * is due now if items are left. The task's fd is edge-triggered,
	 * and an fd still readable brings no edge; one that this fetch
	 * drained brings the next with the next item (on_task()).
	 */
	c->ready_sent = false;
	if (!drained) {
		c->ready_sent = true;
		ready(c);
	}
}

/*
 * A client may name in a done mark only a file it could look up itself:
 * one with a name under its task's directory (of that incarnation) that
 * it may open. Anything else is -ENOENT, whether it exists or not, so a
 * mark can neither create state for other users' files nor probe them.
 */
static int done_target_ok(struct client *c, const struct duet_fileid *f)
{
	char path[PATH_MAX];
	int r;

	if (!c->cr.uid)
		return 0;
	r = duet_task_path(c->task, f, path, sizeof(path));
	if (r)
		return r == -ENAMETOOLONG ? r : -ENOENT;
	return client_visible(c, path) ? 0 : -ENOENT;
}

static void do_done(struct client *c, const struct dp_request *rq)
{
	uint32_t op = rq->u.done.op & ~DP_DONE_REPLAY;
	bool replay = rq->u.done.op & DP_DONE_REPLAY;
	int r = 0;

	for (uint32_t i = 0; i < rq->u.done.n; i++) {
		struct dp_done_op o;
		int x;

		dp_done_op_get(rq, i, &o);
		x = done_target_ok(c, &o.f);
		if (x)
			;
		else if (op == DP_DONE_SET)
			x = duet_task_set_done(c->task, &o.f, o.index, o.count);
		else if (op == DP_DONE_RESET)
			x = duet_task_reset_done(c->task, &o.f, o.index, o.count);
		else
			x = duet_task_check_done(c->task, &o.f, o.index, o.count);
		/*
		 * Replayed after a restart: a file whose identity moved is
		 * skipped, and so are marks past this daemon's bound (it may
		 * be lower than the last one's): their pages are reported
		 * again, which is safe, and the task comes back at all.
		 */
		if (x < 0 && replay && (x == -ESTALE || x == -ENOENT || x == -EDQUOT))
			x = 0;
		if (x < 0 && r >= 0)
			r = x;
		if (op == DP_DONE_CHECK)
			r = x;
	}
	reply(c, rq->seq, r, NULL, 0);
}

static void do_fileid(struct client *c, const struct dp_request *rq)
{
	struct duet_fileid f;
	int r = client_access(&c->cr, rq->u.path, F_OK);

	if (!r && c->cr.uid && !client_visible(c, rq->u.path))
		r = -EACCES;
	if (!r)
		r = duet_task_fileid(c->task, rq->u.path, &f);
	reply(c, rq->seq, r, r ? NULL : &f, r ? 0 : sizeof(f));
}

static void do_path(struct client *c, const struct dp_request *rq)
{
	char path[PATH_MAX];
	int r = duet_task_path(c->task, &rq->u.fileid, path, sizeof(path));

	/* A name the client could not open is not told. */
	if (!r && c->cr.uid && !client_visible(c, path))
		r = -ENOENT;
	reply(c, rq->seq, r, r ? NULL : path, r ? 0 : strlen(path));
}

static void do_save_load(struct client *c, const struct dp_request *rq)
{
	int r;

	/* The client's file, opened and renamed with the client's rights. */
	if (c->cr.uid)
		as_client(&c->cr);
	if (rq->type == DP_SAVE)
		r = duet_task_save(c->task, rq->u.path);
	else
		r = duet_task_load(c->task, rq->u.path);
	if (c->cr.uid)
		as_self();
	reply(c, rq->seq, r, NULL, 0);
}

static void do_task_status(struct client *c, const struct dp_request *rq)
{
	struct duet_task_status st = { .sz = sizeof(st) };
	char body[DP_TASK_STATS_SIZE];
	int r = duet_task_status(c->task, &st);

	if (!r)
		dp_task_stats_put(body, &st);
	reply(c, rq->seq, r, r ? NULL : body, r ? 0 : sizeof(body));
}

/* The first message: HELLO, of this major; the welcome answers it. */
static void do_hello(struct client *c, const struct dp_request *rq)
{
	struct dp_welcome w = {
		.version = DP_VERSION,
		.daemon_id = d.start_ns,
		.pid = (uint32_t)getpid(),
		.max_pending = (uint32_t)d.max_pending,
		.minor = DP_MINOR,
	};
	int fs, r;

	if (rq->type != DP_HELLO) {
		error_close(c, rq->seq, -EPROTO, "the first message must be HELLO");
		return;
	}
	if (rq->u.hello.version != DP_VERSION) {
		error_close(c, rq->seq, -EPROTONOSUPPORT,
			    "duetd speaks protocol version %u, the client %u", DP_VERSION,
			    rq->u.hello.version);
		return;
	}
	/*
	 * Every path of every later request is resolved in duetd's mount
	 * namespace: a client in another is refused here, before any.
	 */
	r = client_mntns(c->fd, c->cr.pid);
	if (r == -EXDEV) {
		error_close(c, rq->seq, -EXDEV,
			    "the client (pid %d) is in another mount namespace than duetd, "
			    "which resolves every path in its own: run it in duetd's "
			    "(nsenter -m -t %d) or start a duetd inside its own",
			    (int)c->cr.pid, (int)getpid());
		return;
	}
	if (r == -ESRCH) {
		error_close(c, rq->seq, -ESRCH,
			    "the process that connected (pid %d) has exited, so its mount "
			    "namespace cannot be checked: connect from the process that "
			    "uses the connection", (int)c->cr.pid);
		return;
	}
	fs = duet_session_flush_semantics(d.s);
	w.flush = fs > 0 ? (uint32_t)fs : 0;
	/*
	 * Flags it does not know are ignored: a newer client works. Every
	 * reply of this daemon has its minor-0 form (no field has been added
	 * since), which is what a client of minor 0 needs; one that adds a
	 * field must leave it out for c->minor == 0 (proto.h).
	 */
	c->minor = DP_HELLO_MINOR(rq->u.hello.flags);
	c->features = rq->u.hello.flags & DP_HELLO_STATUS_EXT;
	w.features = c->features;
	c->hello = true;
	reply(c, rq->seq, 0, &w, sizeof(w));
}

void handle_request(struct client *c, const struct dp_msg *m)
{
	struct dp_request *rq = malloc(sizeof(*rq));

	if (!rq) {
		c->closing = true;
		return;
	}
	c->active_ns = now_ns();
	if (dp_parse_request(m, rq)) {
		error_close(c, m->h.seq, -EBADMSG, "malformed %u message", (unsigned)m->h.type);
		goto out;
	}
	if (!c->hello) {
		do_hello(c, rq);
		goto out;
	}
	switch (rq->type) {
	case DP_HELLO:
		error_close(c, rq->seq, -EPROTO, "HELLO twice");
		goto out;
	case DP_TASK_NEW:
		do_task_new(c, rq);
		goto out;
	case DP_DAEMON_STATUS:
		do_daemon_status(c, rq);
		goto out;
	case DP_RESIDENCY:
		do_residency(c, rq);
		goto out;
	default:
		break;
	}
	if (!c->task) {
		error_close(c, rq->seq, -EPROTO, "a task request before TASK_NEW");
		goto out;
	}
	switch (rq->type) {
	case DP_TASK_START:
		reply(c, rq->seq, duet__task_start(c->task), NULL, 0);
		break;
	case DP_FETCH:
		do_fetch(c, rq);
		break;
	case DP_DONE:
		do_done(c, rq);
		break;
	case DP_FILEID:
		do_fileid(c, rq);
		break;
	case DP_PATH:
		do_path(c, rq);
		break;
	case DP_TASK_STATUS:
		do_task_status(c, rq);
		break;
	case DP_SAVE:
	case DP_LOAD:
		do_save_load(c, rq);
		break;
	}
out:
	free(rq);
}
