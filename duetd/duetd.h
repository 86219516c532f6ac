/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * duetd's parts: duetd.c (options, setup, the event loop), duetd-conn.c
 * (connections: input, one reply at a time, clients, the socket),
 * duetd-datasets.c (--dataset: live residency, RESIDENCY requests),
 * duetd-metrics.c (--metrics, --metrics-textfile: Prometheus),
 * duetd-requests.c (what each request does), duetd-creds.c (acting as a
 * client, the client's mount namespace), duetd-limits.c (who may connect,
 * the timeouts, the file descriptors) and duetd-status.c (the
 * DAEMON_STATUS reply). All of it runs in the main thread; the session's
 * pump thread calls only the visibility hook (client_visible()).
 */
#ifndef DUETD_H
#define DUETD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <uthash.h>

#include "proto.h"
#include "duet/duet.h"

#define MAX_GROUPS 256

enum src_kind {
	SRC_LISTEN, SRC_SIGNAL, SRC_TIMER, SRC_SOCK, SRC_TASK, SRC_DATASET,
	SRC_METRICS_LISTEN, SRC_METRICS_TIMER, SRC_METRICS,
};

struct mconn;

struct dataset;
struct resid_snap;

struct src {
	enum src_kind kind;
	struct client *c;
	struct dataset *ds;	/* SRC_DATASET */
	struct mconn *mc;	/* SRC_METRICS */
};

struct creds {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
};

/*
 * One user's connections and what became of them. Kept while the user
 * has a connection; then, if something was counted, among the last
 * MAX_RETIRED users without one (so status still shows who was refused).
 */
struct duser {
	uid_t uid;
	unsigned int conns, tasks;
	uint64_t refused, closed_partial, closed_idle;
	struct duser *retired_next;
	bool retired;
	UT_hash_handle hh;
};

struct client {
	struct src sock_src, task_src;
	int fd;
	struct creds cr;
	struct duser *u;
	bool hello, closing, ready_sent, dead;
	uint32_t sock_events;	/* the socket's epoll events as set (duetd-conn.c) */
	uint32_t features;	/* DP_HELLO_* flags honoured on this connection */
	uint32_t minor;		/* the client's protocol minor (HELLO) */
	char *in;		/* DP_HDR_SIZE + DP_MAX_REQUEST */
	size_t inlen;
	char *out;		/* one reply, plus READY */
	size_t outlen, outoff, outcap;
	uint64_t partial_ns;	/* since when `in` holds an incomplete request (0: not) */
	uint64_t active_ns;	/* accepted, or its last complete request */
	struct duet_task *task;
	bool polite;		/* the task is DUET_TASK_POLITE */
	uint32_t id, mask;
	char name[DP_MAX_NAME + 1];
	char *dir;
	struct resid_snap *snap;	/* a RESIDENCY being handed out */
	struct client *next, **pprev;
};

#define CLIENT_IN_BYTES	(DP_HDR_SIZE + DP_MAX_REQUEST)

struct duetd {
	/* Options. */
	const char *socket;
	unsigned int mode;
	gid_t gid;
	bool have_gid;
	uint64_t max_pending, max_done_marks;
	unsigned int max_clients, max_per_user, max_tasks_per_user;
	unsigned int request_timeout_s, idle_timeout_s;
	unsigned int buffer_kb;
	unsigned int latency_ms;	/* --latency-ms; 0: libduet's default */
	const char *backend;	/* --backend: "tracefs" or "perf" */
	bool stock, verbose;
	/* State. */
	int epfd, lfd, sfd, tfd, spare_fd;
	bool timer_on;
	struct duet_session *s;
	struct client *clients;
	struct client *zombies;	/* gone; freed after the current batch of events */
	struct retiring *retiring;	/* polite tasks of clients gone (duetd-conn.c) */
	unsigned int nclients, ntasks;
	uint32_t next_id;
	uint64_t start_ns;
	/* duetd-limits.c */
	struct duser *users;
	struct duser *retired, **retired_tail;
	unsigned int nretired;
	uint64_t fd_limit, fd_need;
	uint64_t accepted, refused_total, refused_user, closed_partial, closed_idle;
	uint64_t retired_resyncs;	/* of tasks gone, for duet_resyncs_total */
};

extern struct duetd d;

/* duetd.c */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);

/* duetd-conn.c */
int reserve_out(struct client *c, size_t more);
void reply(struct client *c, uint32_t seq, int result, const void *body, size_t len);
/* DP_ERROR with a sentence, then the connection is closed. */
void error_close(struct client *c, uint32_t seq, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A READY queued on the connection (sent with the next flush). */
void ready(struct client *c);
/* A new connection that was let in: 0, or -errno (the caller closes fd). */
int client_new(int fd, const struct creds *cr, struct duser *u);
void client_free(struct client *c);
/* Clients freed during a batch of events are released after it. */
void free_zombies(void);
/*
 * Polite tasks of clients gone stay until the events stamped before the
 * client went are processed (their pages are the client's to drop), at
 * most RETIRE_MAX_NS. retire_tick() frees those that may go (all, with
 * force); the main loop calls it every 2 ms while d.retiring is set.
 */
#define RETIRE_MAX_NS 500000000ull
void retire_tick(bool force);
void on_sock(struct client *c, uint32_t events);
void on_task(struct client *c);
/* The listening socket at d.socket: its fd, or -errno. */
int listen_socket(void);

/* duetd-requests.c: one whole message of the client. */
void handle_request(struct client *c, const struct dp_msg *m);

/* duetd-creds.c: this thread's file system credentials become c's, or duetd's. */
void as_client(const struct creds *c);
void as_self(void);
/* 0 if the client can access path with mode (R_OK, X_OK...), else -errno. */
int client_access(const struct creds *c, const char *path, int mode);
/* The session's visibility hook (ud a struct client): 1 if it may read path. */
int client_visible(void *ud, const char *path);
/* duetd's own mount namespace, read once at start. */
void mntns_init(void);
/* 0: the peer on fd shares it (or cannot be told); -EXDEV: another; -ESRCH: exited. */
int client_mntns(int fd, pid_t pid);

/* duetd-limits.c */
int limits_fds(void);
int limits_init(void);
void limits_accept(void);
void limits_tick(void);
void limits_arm(bool want);
void limits_input(struct client *c, bool consumed);
void limits_release(struct client *c);
void limits_free(void);

/* duetd-datasets.c */
int dataset_option(const char *arg);
int datasets_start(void);
void datasets_free(void);
void on_dataset(struct dataset *ds);
void do_residency(struct client *c, const struct dp_request *rq);
void resid_snap_free(struct resid_snap *sn);
void datasets_metrics(FILE *f);

/* duetd-metrics.c */
void metrics_option_listen(const char *arg);
void metrics_option_textfile(const char *arg);
int metrics_start(void);
void metrics_stop(void);
void on_metrics(struct src *s, uint32_t events);

/* duetd-status.c */
void do_daemon_status(struct client *c, const struct dp_request *rq);

#endif
