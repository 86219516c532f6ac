/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The duetd protocol: libduet (client) <-> duetd over a Unix stream socket.
 *
 * Every message is a 16-byte header and a payload of at most
 * DP_MAX_REQUEST (client to daemon) or DP_MAX_REPLY (daemon to client)
 * bytes. Integers are in host byte order: the socket is local. The header
 * carries the protocol's major version; a message of another major is
 * answered with DP_ERROR (-EPROTONOSUPPORT and a sentence) and the
 * connection is closed. So is a connection that sends anything
 * malformed: a bad magic, an oversized length, a request whose payload
 * does not fit its type.
 *
 * Growth. Within a major, a minor version only adds: fields at the end
 * of a reply's body (or of a part that says its size), HELLO flags,
 * request types. From minor 1 on:
 *  - a reply may be longer than its reader knows: the reader takes the
 *    fields it knows, in their order, and ignores the rest (the
 *    dp_*_get() decoders below); one shorter than the form the reader
 *    needs is malformed. Replies whose body is a string (PATH, ERROR)
 *    and FETCH's array of items cannot grow: a field there needs a new
 *    request or a flag.
 *  - requests are exact: a client sends only what its daemon's minor
 *    knows (the welcome says it), and the daemon refuses anything else
 *    as malformed, which keeps what it parses small.
 *  - the client says its minor in HELLO's flags (DP_HELLO_MINOR), which a
 *    daemon of minor 0 ignores; the daemon says its own in the welcome
 *    (0 from a daemon of minor 0). A client of minor 0 expected every
 *    reply to have exactly the size it knew: a daemon sends it the form
 *    of minor 0 of each reply.
 * So a client and a daemon of the same major work together whichever is
 * newer; only a different major is refused (-EPROTONOSUPPORT).
 *
 * A connection says DP_HELLO first. It then either stays a control
 * connection (status) or registers one task (DP_TASK_NEW) and carries that
 * task's requests until it closes, which frees the task. Every path in a
 * request is resolved in the daemon's mount namespace: a HELLO from a
 * process in another is answered with DP_ERROR, -EXDEV (and -ESRCH if
 * the process that connected has exited, so it cannot be checked).
 *
 * Requests are answered in order by DP_REPLY with the request's seq; the
 * payload starts with struct dp_reply (result >= 0 or -errno). Between
 * replies the daemon may send DP_READY (seq 0) on a task connection: items
 * are pending. It sends one READY, then no other until the client's next
 * DP_FETCH (a FETCH of 0 items only re-arms), so a client that stops
 * reading costs the daemon nothing but its pending pages in the shared
 * table, which are bounded per task.
 *
 * This file is pure: bytes in, messages out, no I/O (fuzzed by
 * tests/fuzz/fuzz-proto.c).
 */
#ifndef DUET_PROTO_H
#define DUET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duet/duet.h"

#define DP_MAGIC	0x54455544u	/* "DUET" */
#define DP_VERSION	1	/* major: in every header and in HELLO */
#define DP_MINOR	5	/* this codec's minor (see "Growth" above); 2: RESIDENCY;
				 * 3: TASK_NEW's latency_ms; 4: DP_TASK_POLITE;
				 * 5: DP_REPLY_DRAINED */
#define DP_HDR_SIZE	16
#define DP_MAX_REQUEST	(64u * 1024)	/* client to daemon payload */
#define DP_MAX_REPLY	(1024u * 1024)	/* daemon to client payload */
#define DP_MAX_FETCH	4096u		/* items in one reply */
#define DP_MAX_DONE_OPS	1024u		/* done marks in one request */
#define DP_MAX_NAME	255u		/* task name */
#define DP_MAX_PATH	4095u		/* paths (PATH_MAX - 1) */

#define DP_DEFAULT_SOCKET "/run/duet/duetd.sock"

struct dp_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;		/* payload bytes */
	uint32_t seq;		/* request number; replies echo it */
};

enum dp_type {
	/* client to daemon */
	DP_HELLO = 1,		/* struct dp_hello */
	DP_TASK_NEW,		/* struct dp_task_new, name, path */
	DP_TASK_START,		/* empty: end of a held registration */
	DP_FETCH,		/* uint32_t max items (0: only re-arm READY) */
	DP_DONE,		/* struct dp_done, n * struct dp_done_op */
	DP_FILEID,		/* path */
	DP_PATH,		/* struct duet_fileid */
	DP_TASK_STATUS,		/* empty */
	DP_DAEMON_STATUS,	/* empty */
	DP_SAVE,		/* absolute path of the client's file */
	DP_LOAD,		/* absolute path */
	DP_RESIDENCY,		/* minor 2: struct dp_residency, dataset, path */
	DP_REQ_MAX,
	/* daemon to client */
	DP_REPLY = 64,		/* struct dp_reply, then the type's body */
	DP_READY,		/* empty, seq 0 */
	DP_ERROR,		/* struct dp_reply, a sentence; the daemon closes */
	DP_TYPE_MAX,
};

/*
 * HELLO flags: what the client understands beyond version 1's first
 * form. A daemon ignores flags it does not know and says in the welcome
 * which it honours, so either side may be the older one. The high 16
 * bits carry the client's minor version (0 from a client of minor 0).
 */
#define DP_HELLO_STATUS_EXT	0x1u	/* DAEMON_STATUS's extended body (below) */
#define DP_HELLO_FEATURES	0xffffu	/* the flag bits; the rest is the minor */
#define DP_HELLO_FLAGS(minor, features) \
	((uint32_t)(minor) << 16 | ((features) & DP_HELLO_FEATURES))
#define DP_HELLO_MINOR(flags)	((uint32_t)(flags) >> 16)

struct dp_hello {
	uint32_t version;	/* the major */
	uint32_t flags;		/* DP_HELLO_FLAGS(minor, DP_HELLO_* features) */
};

/* HELLO's reply body. */
struct dp_welcome {
	uint32_t version;
	uint32_t flush;		/* DUET_FLUSH_* in force (NONE before the first task) */
	uint64_t daemon_id;	/* changes when the daemon restarts */
	uint32_t pid;
	uint32_t max_pending;	/* per-task bound on pending pages */
	/* Absent from older daemons, whose welcome ends here (DP_WELCOME_MIN). */
	uint32_t features;	/* the DP_HELLO_* flags of this HELLO it honours */
	uint32_t minor;		/* the daemon's minor version (0: minor 0) */
};

#define DP_WELCOME_MIN	offsetof(struct dp_welcome, features)

#define DP_TASK_HOLD	0x1u	/* do not scan until DP_TASK_START (done marks replayed first) */
/*
 * Minor 4: the task is cache-polite (DUET_TASK_POLITE), for the process
 * that connected. A daemon of an earlier minor refuses the flag as
 * malformed (it checks TASK_NEW's flags), so a client never sends it to
 * one: duet_task_new() fails with -EOPNOTSUPP instead, and no task is
 * registered that would not be what was asked.
 */
#define DP_TASK_POLITE	0x2u
#define DP_TASK_FLAGS	(DP_TASK_HOLD | DP_TASK_POLITE)

struct dp_task_new {
	uint32_t mask;
	uint32_t flags;		/* DP_TASK_* */
	uint16_t name_len;
	uint16_t path_len;
	uint32_t latency_ms;	/* minor 3: the task's latency_ms (0: the
				 * daemon's); daemons before ignore it */
	/* name, then path (absolute), not NUL-terminated */
};

/* TASK_NEW's reply body. */
struct dp_task_id {
	uint32_t id;
	uint32_t flush;
};

/* FILEID's reply body: struct duet_fileid. PATH's: the path, no NUL. */

#define DP_DONE_SET	1
#define DP_DONE_RESET	2
#define DP_DONE_CHECK	3	/* n == 1; the result is 0 or 1 */
#define DP_DONE_REPLAY	0x100	/* flag: a file whose identity changed is skipped */

struct dp_done {
	uint32_t op;
	uint32_t n;
};

struct dp_done_op {
	struct duet_fileid f;
	uint64_t index;
	uint64_t count;
};

struct dp_reply {
	int32_t result;
	uint32_t flags;		/* DP_REPLY_*; 0 from a daemon before minor 5 */
};

/*
 * FETCH's reply body: n items (n == result).
 *
 * DP_REPLY_DRAINED (minor 5, in a FETCH reply of items): nothing was left
 * pending for the task when the reply was made, so the client's next
 * FETCH would most likely return none. A client may then answer its
 * caller's next fetch with 0 itself, unless the socket has something to
 * read (a READY: items came since; the daemon re-armed READY with this
 * FETCH). It saves the round trip that ends every drain with many tasks.
 * The flag was reserved and 0 before, and a client that does not know it
 * ignores it.
 */
#define DP_REPLY_DRAINED	0x1u

/*
 * A task's counters on the wire: TASK_STATUS's reply body, and inside each
 * DAEMON_STATUS task entry. They are struct duet_task_status's, without
 * sz, as u64 in its order (events, items, pages, coalesced, cancelled,
 * lost, resyncs, pending, scan_files, scan_done). Written and read only
 * by dp_task_stats_put() and dp_task_stats_get(): no other code copies
 * them field by field.
 */
#define DP_TASK_STATS_SIZE	80u

/*
 * DAEMON_STATUS's reply body: struct dp_daemon, then one entry per task
 * the client may see (struct dp_task_info, name, dir). A client that is
 * not root sees its own user's tasks only; ntasks and nclients count
 * everyone's. With DP_HELLO_STATUS_EXT honoured, struct dp_daemon_ext
 * and its nusers struct dp_user entries come before the tasks, and each
 * task's dir is followed by a struct dp_task_ext. Each part says its own
 * size, so later versions append fields without another flag; readers
 * take what they know and skip the rest (dp_daemon_ext_get() and the
 * walkers below).
 */
struct dp_daemon {
	uint32_t pid;
	uint32_t flush;
	uint32_t ntasks;
	uint32_t nclients;
	uint64_t uptime_ms;
	uint64_t rss_kb;
	uint64_t max_pending;
	uint64_t events;
	uint64_t engine_bytes;
};

/*
 * One task, as dp_next_task() reads it and dp_task_info_put() writes it.
 * On the wire: id, uid, pid, mask (u32), name_len, dir_len (u16), paused
 * (u32), then the counters (DP_TASK_STATS_SIZE bytes), DP_TASK_INFO_SIZE
 * in all; then name and dir, each padded to 8 bytes.
 */
struct dp_task_info {
	uint32_t id;
	uint32_t uid;
	uint32_t pid;
	uint32_t mask;
	uint16_t name_len;
	uint16_t dir_len;
	uint32_t paused;	/* over its bound: waits for its client to fetch LOST */
	struct duet_task_status st;
};

#define DP_TASK_INFO_SIZE	(24u + DP_TASK_STATS_SIZE)

struct dp_daemon_ext {
	uint32_t size;		/* bytes of this part as sent */
	uint32_t nusers;	/* struct dp_user entries after it */
	uint32_t user_size;	/* bytes of each */
	uint32_t task_ext_size;	/* bytes of the struct dp_task_ext after each dir */
	uint32_t viewer_uid;	/* whom the reply was filtered for */
	uint32_t others_tasks;	/* tasks of other users, not listed (0 for root) */
	uint32_t others_clients;	/* their connections */
	/* The bounds in force (duetd(8)). */
	uint32_t max_connections;
	uint32_t max_connections_per_user;	/* root is exempt */
	uint32_t max_tasks;	/* in all (the engine's) */
	uint32_t max_tasks_per_user;
	uint32_t request_timeout_ms;	/* an incomplete request */
	uint32_t idle_timeout_ms;	/* a connection without a task */
	uint32_t reserved;
	uint64_t max_done_marks;	/* per task; 0: none */
	uint64_t fd_limit;	/* RLIMIT_NOFILE (soft) in force */
	uint64_t fd_need;	/* file descriptors the bounds need at most */
	/* Connections since the daemon started. */
	uint64_t accepted;
	uint64_t refused_total;	/* over max_connections */
	uint64_t refused_user;	/* over max_connections_per_user */
	uint64_t closed_partial;	/* a request incomplete for request_timeout_ms */
	uint64_t closed_idle;	/* no task, no request for idle_timeout_ms */
	/* Memory estimates (bytes). */
	uint64_t page_bytes;	/* per pending page, in the shared table */
	uint64_t mark_bytes;	/* per done mark */
};

/* A user with connections (root: every user; others: their own). */
struct dp_user {
	uint32_t uid;
	uint32_t clients;	/* connections now */
	uint32_t tasks;
	uint32_t reserved;
	uint64_t refused;	/* connections refused, over either bound */
	uint64_t closed_partial;
	uint64_t closed_idle;
};

#define DP_TASK_SCAN_COMPLETE	0x1u	/* every file queued for its scan is scanned */
#define DP_TASK_IS_POLITE	0x2u	/* registered with DP_TASK_POLITE (minor 4) */

struct dp_task_ext {
	uint32_t size;		/* bytes of this part as sent */
	uint32_t flags;		/* DP_TASK_* */
	uint64_t done_marks;	/* counted as the engine stores them */
	/* What the task's connection costs the daemon (bytes, estimates). */
	uint64_t mem_in;	/* input buffer */
	uint64_t mem_out;	/* reply buffer, an unsent reply included */
	uint64_t mem_pending;	/* pending pages x page_bytes */
	uint64_t mem_done;	/* done marks x mark_bytes */
};

/*
 * RESIDENCY (minor 2, on any connection after HELLO): the files of one of
 * duetd's datasets that have cached pages, from its live figures, that
 * the client could open; path (absolute, optional) narrows it to a
 * subtree. The daemon takes a snapshot at the first request and hands
 * it out in batches: a request with DP_RESID_NEXT (and no name or path)
 * asks for the next batch of the connection's snapshot. The reply body
 * is struct dp_resid_reply, then n entries: each a fixed part of
 * entry_size bytes (struct dp_resid_entry, or longer from a later
 * minor), then its path, padded to 8 bytes. more: batches remain.
 */
#define DP_RESID_NEXT	0x1u
/*
 * With DP_RESID_PATHS the request names no dataset: its path part is a
 * list of absolute paths, each ending with a NUL, that the client found
 * in its own walk but may not count itself (cachestat refuses a file a
 * user neither owns nor may write). The daemon opens each with the
 * client's rights and counts it with its own; the reply has one entry
 * per path, in order, error set where the client could not open it.
 */
#define DP_RESID_PATHS	0x2u
#define DP_RESID_MAX_PATHS 256u

struct dp_residency {
	uint32_t flags;		/* DP_RESID_* */
	uint16_t name_len;
	uint16_t path_len;
	/* the dataset's name, then path, not NUL-terminated */
};

struct dp_resid_reply {
	uint32_t n;
	uint32_t more;
	uint32_t entry_size;
	uint32_t reserved;
};

struct dp_resid_entry {
	uint64_t ino, gen;
	uint32_t dev;
	uint32_t path_len;
	uint64_t size, cached, dirty, writeback;	/* bytes; pages */
	int32_t error;
	uint32_t flags;		/* DUET_RESIDENCY_* entry flags */
};

/* A message whose header has been checked; payload points into the input. */
struct dp_msg {
	struct dp_hdr h;
	const void *payload;
};

/*
 * One message from buf. Returns the bytes it takes (header + payload), 0
 * if more bytes are needed, -EBADMSG for a bad magic, type or length,
 * -EPROTONOSUPPORT for another version (m->h is filled then, so the
 * caller can answer). max: DP_MAX_REQUEST or DP_MAX_REPLY.
 */
int dp_parse(const void *buf, size_t len, size_t max, struct dp_msg *m);

/* A request's payload, checked against its type. */
struct dp_request {
	int type;
	uint32_t seq;
	union {
		struct dp_hello hello;
		struct {
			uint32_t mask, flags, latency_ms;
			char name[DP_MAX_NAME + 1];
			char path[DP_MAX_PATH + 1];
		} task_new;
		uint32_t fetch_max;
		struct {
			uint32_t op, n;
			const struct dp_done_op *ops;	/* into the message: may be unaligned */
		} done;
		char path[DP_MAX_PATH + 1];	/* FILEID, SAVE, LOAD */
		struct duet_fileid fileid;	/* PATH */
		struct {
			uint32_t flags;
			char name[DP_MAX_NAME + 1];
			char path[DP_MAX_PATH + 1];	/* "" for the whole dataset */
			const char *list;	/* DP_RESID_PATHS: into the message */
			uint32_t list_len, npaths;
		} resid;
	} u;
};

/* 0, or -EBADMSG when the payload does not fit the type. */
int dp_parse_request(const struct dp_msg *m, struct dp_request *r);

/* Daemon-side copies of one op (the request may be unaligned). */
void dp_done_op_get(const struct dp_request *r, uint32_t i, struct dp_done_op *op);

/*
 * Build a message into buf (at least DP_HDR_SIZE + the payload): header,
 * then the parts one after the other. Returns the total size.
 */
size_t dp_build(void *buf, uint16_t type, uint32_t seq, const void *a, size_t alen,
		const void *b, size_t blen, const void *c, size_t clen);

/*
 * A reply as a client reads it: the header (checked by dp_parse()), its
 * payload. The result, and the body after struct dp_reply: 0, or
 * -EBADMSG if the payload is shorter than struct dp_reply.
 */
int dp_reply_get(const void *payload, size_t len, struct dp_reply *rep, const void **body,
		 size_t *blen);

/*
 * The reply bodies of fixed form, decoded by the rule above: 0, or
 * -EBADMSG if the body is shorter than the form the reader needs. What
 * follows the fields known here is ignored; fields a shorter (older)
 * form lacks read 0.
 */
/* HELLO: at least DP_WELCOME_MIN bytes. */
int dp_welcome_get(const void *body, size_t len, struct dp_welcome *w);
/* TASK_NEW: at least struct dp_task_id. */
int dp_task_id_get(const void *body, size_t len, struct dp_task_id *id);
/* FILEID: at least struct duet_fileid. */
int dp_fileid_get(const void *body, size_t len, struct duet_fileid *f);
/* FETCH: n items (the result), at least n * sizeof(struct duet_item) bytes. */
int dp_items_get(const void *body, size_t len, uint32_t n, struct duet_item *items);
/* DAEMON_STATUS: its first part, at least struct dp_daemon. */
int dp_daemon_get(const void *body, size_t len, struct dp_daemon *dd);

/*
 * Walk a RESIDENCY body: the next entry from *off (start at the offset
 * after struct dp_resid_reply, which dp_resid_reply_get() reads). Returns
 * 1 and fills e and path (NUL-terminated, at most DP_MAX_PATH bytes), 0
 * at the end, -EBADMSG if malformed.
 */
int dp_resid_reply_get(const void *body, size_t len, struct dp_resid_reply *rr, size_t *off);
int dp_next_resid(const void *body, size_t len, size_t *off, const struct dp_resid_reply *rr,
		  struct dp_resid_entry *e, char *path);

/* The counters into buf (DP_TASK_STATS_SIZE bytes); returns that size. */
size_t dp_task_stats_put(void *buf, const struct duet_task_status *st);
/* TASK_STATUS: at least DP_TASK_STATS_SIZE bytes; st->sz is set to sizeof(*st). */
int dp_task_stats_get(const void *buf, size_t len, struct duet_task_status *st);
/* A task entry's fixed part into buf (DP_TASK_INFO_SIZE bytes); returns that size. */
size_t dp_task_info_put(void *buf, const struct dp_task_info *ti);

/*
 * Walk a DAEMON_STATUS body: the next task entry from *off. Returns 1 and
 * fills ti/name/dir, 0 at the end, -EBADMSG if the body is malformed.
 */
int dp_next_task(const void *body, size_t len, size_t *off, struct dp_task_info *ti,
		 char *name, size_t namelen, char *dir, size_t dirlen);

/*
 * An extended DAEMON_STATUS body: its struct dp_daemon_ext (fields the
 * daemon did not send are 0), *off set to the first user entry. 0, or
 * -EBADMSG.
 */
int dp_daemon_ext_get(const void *body, size_t len, struct dp_daemon_ext *x, size_t *off);
/* The next of x->nusers user entries from *off: 0, or -EBADMSG. */
int dp_next_user(const void *body, size_t len, size_t *off, const struct dp_daemon_ext *x,
		 struct dp_user *u);
/* dp_next_task() for an extended body: also the task's struct dp_task_ext. */
int dp_next_task_ext(const void *body, size_t len, size_t *off, const struct dp_daemon_ext *x,
		     struct dp_task_info *ti, struct dp_task_ext *te, char *name, size_t namelen,
		     char *dir, size_t dirlen);

#endif
