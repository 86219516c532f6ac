// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The duetd protocol codec (libduet/proto.c) by example: every request
 * and reply built field by field, compared byte for byte with what the
 * codec builds, and parsed back; truncated, oversized and malformed
 * inputs refused with the error proto.h gives. No daemon, no root.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "proto.h"

/* ---- a byte writer: fields in host order at the offsets they take ---- */

struct w {
	uint8_t b[8192];
	size_t n;
};

static void w8(struct w *w, uint8_t v)
{
	w->b[w->n++] = v;
}

static void w16(struct w *w, uint16_t v)
{
	memcpy(w->b + w->n, &v, 2);
	w->n += 2;
}

static void w32(struct w *w, uint32_t v)
{
	memcpy(w->b + w->n, &v, 4);
	w->n += 4;
}

static void w64(struct w *w, uint64_t v)
{
	memcpy(w->b + w->n, &v, 8);
	w->n += 8;
}

static void wstr(struct w *w, const char *s, size_t n)
{
	memcpy(w->b + w->n, s, n);
	w->n += n;
}

static void wzero(struct w *w, size_t n)
{
	memset(w->b + w->n, 0, n);
	w->n += n;
}

/* A header, as proto.h lays it out: magic, version, type, len, seq. */
static void whdr(struct w *w, uint16_t type, uint32_t len, uint32_t seq)
{
	w32(w, DP_MAGIC);
	w16(w, DP_VERSION);
	w16(w, type);
	w32(w, len);
	w32(w, seq);
}

/* The header's length field, patched once the payload is written. */
static void wlen(struct w *w)
{
	uint32_t len = (uint32_t)(w->n - DP_HDR_SIZE);

	memcpy(w->b + 8, &len, 4);
}

#define CHECK_BYTES(a, alen, b, blen)					\
	do {								\
		CHECK_EQ(alen, blen);					\
		CHECK((alen) == (blen) && !memcmp((a), (b), (alen)));	\
	} while (0)

/* Parses a whole request message: dp_parse, then dp_parse_request. */
static int request(const struct w *w, struct dp_request *r)
{
	struct dp_msg m;
	int n = dp_parse(w->b, w->n, DP_MAX_REQUEST, &m);

	if (n <= 0)
		return n ? n : -EAGAIN;
	CHECK_EQ(n, w->n);
	return dp_parse_request(&m, r);
}

/* ---- the header ---- */

static void test_header(void)
{
	struct dp_msg m;
	struct w w = { .n = 0 };
	uint8_t built[64];
	size_t n;

	/* dp_build: the header, then the parts one after the other. */
	whdr(&w, DP_FETCH, 4, 7);
	w32(&w, 256);
	n = dp_build(built, DP_FETCH, 7, &(uint32_t){ 256 }, 4, NULL, 0, NULL, 0);
	CHECK_BYTES(built, n, w.b, w.n);
	CHECK_EQ(DP_HDR_SIZE, 16);
	CHECK_EQ(sizeof(struct dp_hdr), DP_HDR_SIZE);

	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REQUEST, &m), 20);
	CHECK_EQ(m.h.magic, DP_MAGIC);
	CHECK_EQ(m.h.version, DP_VERSION);
	CHECK_EQ(m.h.type, DP_FETCH);
	CHECK_EQ(m.h.len, 4);
	CHECK_EQ(m.h.seq, 7);
	CHECK((const uint8_t *)m.payload == w.b + DP_HDR_SIZE);

	/* More bytes needed: a partial header, a partial payload. */
	for (size_t k = 0; k < w.n; k++)
		CHECK_EQ(dp_parse(w.b, k, DP_MAX_REQUEST, &m), 0);
	/* Bytes after the message are the next message's. */
	w32(&w, 0xdeadbeef);
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REQUEST, &m), 20);

	/* A bad magic. */
	w.n = 0;
	w32(&w, DP_MAGIC ^ 1);
	w16(&w, DP_VERSION);
	w16(&w, DP_FETCH);
	w32(&w, 0);
	w32(&w, 1);
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REQUEST, &m), -EBADMSG);

	/* Another version: refused, the header left for the answer. */
	w.n = 0;
	w32(&w, DP_MAGIC);
	w16(&w, DP_VERSION + 1);
	w16(&w, DP_HELLO);
	w32(&w, 8);
	w32(&w, 3);
	memset(&m, 0, sizeof(m));
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REQUEST, &m), -EPROTONOSUPPORT);
	CHECK_EQ(m.h.version, DP_VERSION + 1);
	CHECK_EQ(m.h.seq, 3);

	/* Types outside the two ranges. */
	{
		static const uint16_t bad[] = { 0, DP_REQ_MAX, DP_REPLY - 1, DP_TYPE_MAX, 0xffff };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			w.n = 0;
			whdr(&w, bad[i], 0, 1);
			CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REPLY, &m), -EBADMSG);
		}
	}
	w.n = 0;
	whdr(&w, DP_READY, 0, 0);
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REPLY, &m), DP_HDR_SIZE);

	/* Oversized: a length past the bound is refused from the header alone. */
	w.n = 0;
	whdr(&w, DP_FETCH, DP_MAX_REQUEST + 1, 1);
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REQUEST, &m), -EBADMSG);
	w.n = 0;
	whdr(&w, DP_REPLY, DP_MAX_REPLY + 1, 1);
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REPLY, &m), -EBADMSG);
	w.n = 0;
	whdr(&w, DP_REPLY, DP_MAX_REPLY, 1);
	CHECK_EQ(dp_parse(w.b, w.n, DP_MAX_REPLY, &m), 0);	/* in bounds: wait for it */
}

/* ---- requests ---- */

static void test_hello(void)
{
	struct dp_hello h = { .version = DP_VERSION, .flags = DP_HELLO_STATUS_EXT };
	struct dp_request r;
	struct w w = { .n = 0 };
	uint8_t built[64];
	size_t n;

	whdr(&w, DP_HELLO, 8, 1);
	w32(&w, DP_VERSION);
	w32(&w, DP_HELLO_STATUS_EXT);
	n = dp_build(built, DP_HELLO, 1, &h, sizeof(h), NULL, 0, NULL, 0);
	CHECK_BYTES(built, n, w.b, w.n);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.type, DP_HELLO);
	CHECK_EQ(r.seq, 1);
	CHECK_EQ(r.u.hello.version, DP_VERSION);
	CHECK_EQ(r.u.hello.flags, DP_HELLO_STATUS_EXT);

	/* A payload of another size does not fit the type. */
	w.n = 0;
	whdr(&w, DP_HELLO, 4, 1);
	w32(&w, DP_VERSION);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	w.n = 0;
	whdr(&w, DP_HELLO, 12, 1);
	w32(&w, DP_VERSION);
	w32(&w, 0);
	w32(&w, 0);
	CHECK_EQ(request(&w, &r), -EBADMSG);
}

static void task_new_msg(struct w *w, uint32_t mask, uint32_t flags, const char *name,
			 size_t nlen, const char *path, size_t plen)
{
	w->n = 0;
	whdr(w, DP_TASK_NEW, 0, 2);
	w32(w, mask);
	w32(w, flags);
	w16(w, (uint16_t)nlen);
	w16(w, (uint16_t)plen);
	w32(w, 0);
	wstr(w, name, nlen);
	wstr(w, path, plen);
	wlen(w);
}

static void test_task_new(void)
{
	struct dp_task_new tn = {
		.mask = DUET_EXISTS,
		.flags = DP_TASK_HOLD,
		.name_len = 6,
		.path_len = 9,
	};
	char names[] = "backup/data/src";
	char longname[DP_MAX_NAME + 2], longpath[DP_MAX_PATH + 2];
	struct dp_request r;
	struct w w = { .n = 0 };
	uint8_t built[128];
	size_t n;

	CHECK_EQ(sizeof(struct dp_task_new), 16);
	task_new_msg(&w, DUET_EXISTS, DP_TASK_HOLD, "backup", 6, "/data/src", 9);
	n = dp_build(built, DP_TASK_NEW, 2, &tn, sizeof(tn), names, 15, NULL, 0);
	CHECK_BYTES(built, n, w.b, w.n);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.task_new.mask, DUET_EXISTS);
	CHECK_EQ(r.u.task_new.flags, DP_TASK_HOLD);
	CHECK_STR(r.u.task_new.name, "backup");
	CHECK_STR(r.u.task_new.path, "/data/src");

	/* An empty name is a name; the path must be absolute, and there. */
	task_new_msg(&w, DUET_ADDED, 0, "", 0, "/", 1);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_STR(r.u.task_new.name, "");
	CHECK_STR(r.u.task_new.path, "/");
	task_new_msg(&w, DUET_ADDED, 0, "x", 1, "", 0);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	task_new_msg(&w, DUET_ADDED, 0, "x", 1, "data", 4);
	CHECK_EQ(request(&w, &r), -EBADMSG);

	/* Minor 4's DP_TASK_POLITE, and flags it does not know. */
	task_new_msg(&w, DUET_ADDED, DP_TASK_POLITE | DP_TASK_HOLD, "x", 1, "/d", 2);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.task_new.flags, DP_TASK_POLITE | DP_TASK_HOLD);
	task_new_msg(&w, DUET_ADDED, 0x4, "x", 1, "/d", 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);

	/* A NUL inside a string. */
	task_new_msg(&w, DUET_ADDED, 0, "a\0b", 3, "/d", 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	task_new_msg(&w, DUET_ADDED, 0, "ab", 2, "/d\0e", 4);
	CHECK_EQ(request(&w, &r), -EBADMSG);

	/* Lengths that do not add up to the payload, either way. */
	task_new_msg(&w, DUET_ADDED, 0, "ab", 2, "/d", 2);
	memcpy(w.b + DP_HDR_SIZE + 8, &(uint16_t){ 3 }, 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	task_new_msg(&w, DUET_ADDED, 0, "ab", 2, "/d", 2);
	memcpy(w.b + DP_HDR_SIZE + 10, &(uint16_t){ 1 }, 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	/* Shorter than its fixed part. */
	w.n = 0;
	whdr(&w, DP_TASK_NEW, 15, 2);
	wzero(&w, 15);
	CHECK_EQ(request(&w, &r), -EBADMSG);

	/* The bounds on the strings: exactly at them, then one past. */
	memset(longname, 'n', sizeof(longname));
	longpath[0] = '/';
	memset(longpath + 1, 'p', sizeof(longpath) - 1);
	task_new_msg(&w, DUET_ADDED, 0, longname, DP_MAX_NAME, longpath, DP_MAX_PATH);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(strlen(r.u.task_new.name), DP_MAX_NAME);
	CHECK_EQ(strlen(r.u.task_new.path), DP_MAX_PATH);
	task_new_msg(&w, DUET_ADDED, 0, longname, DP_MAX_NAME + 1, "/d", 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	task_new_msg(&w, DUET_ADDED, 0, "x", 1, longpath, DP_MAX_PATH + 1);
	CHECK_EQ(request(&w, &r), -EBADMSG);
}

static void test_empty_requests(void)
{
	static const uint16_t types[] = { DP_TASK_START, DP_TASK_STATUS, DP_DAEMON_STATUS };
	struct dp_request r;
	struct w w = { .n = 0 };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		w.n = 0;
		whdr(&w, types[i], 0, 9);
		CHECK_EQ(request(&w, &r), 0);
		CHECK_EQ(r.type, types[i]);
		CHECK_EQ(r.seq, 9);
		w.n = 0;
		whdr(&w, types[i], 1, 9);
		w8(&w, 0);
		CHECK_EQ(request(&w, &r), -EBADMSG);
	}
}

static void test_fetch(void)
{
	struct dp_request r;
	struct w w = { .n = 0 };

	whdr(&w, DP_FETCH, 4, 5);
	w32(&w, 4096);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.fetch_max, 4096);
	for (uint32_t len = 0; len < 9; len++) {
		if (len == 4)
			continue;
		w.n = 0;
		whdr(&w, DP_FETCH, len, 5);
		wzero(&w, len);
		CHECK_EQ(request(&w, &r), -EBADMSG);
	}
}

static void done_msg(struct w *w, uint32_t op, uint32_t n, uint32_t nops)
{
	w->n = 0;
	whdr(w, DP_DONE, 0, 6);
	w32(w, op);
	w32(w, n);
	for (uint32_t i = 0; i < nops; i++) {
		w64(w, 1000 + i);	/* f.ino */
		w64(w, 7);		/* f.gen */
		w32(w, 0x800001);	/* f.dev */
		w32(w, 0);		/* f.reserved */
		w64(w, 16 * i);		/* index */
		w64(w, i);		/* count */
	}
	wlen(w);
}

static void test_done(void)
{
	struct dp_done d = { .op = DP_DONE_SET | DP_DONE_REPLAY, .n = 2 };
	struct dp_done_op ops[2] = {
		{ .f = { .ino = 1000, .gen = 7, .dev = 0x800001 }, .index = 0, .count = 0 },
		{ .f = { .ino = 1001, .gen = 7, .dev = 0x800001 }, .index = 16, .count = 1 },
	};
	struct dp_done_op o;
	struct dp_request r;
	struct w w = { .n = 0 };
	uint8_t built[256];
	size_t n;

	CHECK_EQ(sizeof(struct dp_done_op), 40);
	done_msg(&w, DP_DONE_SET | DP_DONE_REPLAY, 2, 2);
	n = dp_build(built, DP_DONE, 6, &d, sizeof(d), ops, sizeof(ops), NULL, 0);
	CHECK_BYTES(built, n, w.b, w.n);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.done.op, DP_DONE_SET | DP_DONE_REPLAY);
	CHECK_EQ(r.u.done.n, 2);
	dp_done_op_get(&r, 1, &o);
	CHECK_EQ(o.f.ino, 1001);
	CHECK_EQ(o.f.gen, 7);
	CHECK_EQ(o.f.dev, 0x800001);
	CHECK_EQ(o.index, 16);
	CHECK_EQ(o.count, 1);

	/* The ops may sit at any alignment in the input. */
	{
		static uint8_t odd[sizeof(w.b) + 1];
		struct dp_msg m;

		memcpy(odd + 1, w.b, w.n);
		CHECK_EQ(dp_parse(odd + 1, w.n, DP_MAX_REQUEST, &m), (int)w.n);
		CHECK_EQ(dp_parse_request(&m, &r), 0);
		dp_done_op_get(&r, 0, &o);
		CHECK_EQ(o.f.ino, 1000);
	}

	done_msg(&w, DP_DONE_RESET, 1, 1);
	CHECK_EQ(request(&w, &r), 0);
	done_msg(&w, DP_DONE_CHECK, 1, 1);
	CHECK_EQ(request(&w, &r), 0);
	/* Unknown ops, none, too many, a check of several or replayed. */
	done_msg(&w, 0, 1, 1);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	done_msg(&w, DP_DONE_CHECK + 1, 1, 1);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	done_msg(&w, DP_DONE_SET, 0, 0);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	done_msg(&w, DP_DONE_SET, DP_MAX_DONE_OPS + 1, 0);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	done_msg(&w, DP_DONE_CHECK, 2, 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	done_msg(&w, DP_DONE_CHECK | DP_DONE_REPLAY, 1, 1);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	/* n that disagrees with the payload: fewer ops, or more. */
	done_msg(&w, DP_DONE_SET, 2, 1);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	done_msg(&w, DP_DONE_SET, 1, 2);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	w.n = 0;
	whdr(&w, DP_DONE, 7, 6);
	wzero(&w, 7);
	CHECK_EQ(request(&w, &r), -EBADMSG);
}

static void test_paths(void)
{
	static const uint16_t types[] = { DP_FILEID, DP_SAVE, DP_LOAD };
	char longpath[DP_MAX_PATH + 2];
	struct dp_request r;
	struct w w = { .n = 0 };

	longpath[0] = '/';
	memset(longpath + 1, 'p', sizeof(longpath) - 1);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		w.n = 0;
		whdr(&w, types[i], 11, 3);
		wstr(&w, "/data/a.txt", 11);
		CHECK_EQ(request(&w, &r), 0);
		CHECK_EQ(r.type, types[i]);
		CHECK_STR(r.u.path, "/data/a.txt");
		w.n = 0;
		whdr(&w, types[i], 0, 3);
		CHECK_EQ(request(&w, &r), -EBADMSG);
		w.n = 0;
		whdr(&w, types[i], 5, 3);
		wstr(&w, "a.txt", 5);
		CHECK_EQ(request(&w, &r), -EBADMSG);
		w.n = 0;
		whdr(&w, types[i], 4, 3);
		wstr(&w, "/a\0b", 4);
		CHECK_EQ(request(&w, &r), -EBADMSG);
		w.n = 0;
		whdr(&w, types[i], DP_MAX_PATH, 3);
		wstr(&w, longpath, DP_MAX_PATH);
		CHECK_EQ(request(&w, &r), 0);
		w.n = 0;
		whdr(&w, types[i], DP_MAX_PATH + 1, 3);
		wstr(&w, longpath, DP_MAX_PATH + 1);
		CHECK_EQ(request(&w, &r), -EBADMSG);
	}
}

static void test_path(void)
{
	struct duet_fileid f = { .ino = 42, .gen = 3, .dev = 0x700002 };
	struct dp_request r;
	struct w w = { .n = 0 };
	uint8_t built[64];
	size_t n;

	whdr(&w, DP_PATH, 24, 4);
	w64(&w, 42);
	w64(&w, 3);
	w32(&w, 0x700002);
	w32(&w, 0);
	n = dp_build(built, DP_PATH, 4, &f, sizeof(f), NULL, 0, NULL, 0);
	CHECK_BYTES(built, n, w.b, w.n);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.fileid.ino, 42);
	CHECK_EQ(r.u.fileid.gen, 3);
	CHECK_EQ(r.u.fileid.dev, 0x700002);
	w.n = 0;
	whdr(&w, DP_PATH, 23, 4);
	wzero(&w, 23);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	w.n = 0;
	whdr(&w, DP_PATH, 25, 4);
	wzero(&w, 25);
	CHECK_EQ(request(&w, &r), -EBADMSG);
}

/* RESIDENCY: a dataset (and a subtree), the next batch, a list of paths. */
static void test_residency(void)
{
	struct dp_request r;
	struct w w = { .n = 0 };

	whdr(&w, DP_RESIDENCY, 8 + 4 + 6, 5);
	w32(&w, 0);
	w16(&w, 4);
	w16(&w, 6);
	wstr(&w, "datasrv/xx", 10);
	CHECK_EQ(request(&w, &r), -EBADMSG);	/* a name with a path that is not absolute */
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8 + 4 + 6, 5);
	w32(&w, 0);
	w16(&w, 4);
	w16(&w, 6);
	wstr(&w, "data/srv/x", 4);
	wstr(&w, "/srv/x", 6);
	CHECK_EQ(request(&w, &r), 0);
	CHECK(!strcmp(r.u.resid.name, "data") && !strcmp(r.u.resid.path, "/srv/x"));
	/* No path: the whole dataset. No name: malformed. */
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8 + 4, 5);
	w32(&w, 0);
	w16(&w, 4);
	w16(&w, 0);
	wstr(&w, "data", 4);
	CHECK_EQ(request(&w, &r), 0);
	CHECK(!r.u.resid.path[0]);
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8 + 6, 5);
	w32(&w, 0);
	w16(&w, 0);
	w16(&w, 6);
	wstr(&w, "/srv/x", 6);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	/* NEXT carries nothing; an unknown flag is malformed. */
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8, 5);
	w32(&w, DP_RESID_NEXT);
	w32(&w, 0);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.resid.flags, DP_RESID_NEXT);
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8, 5);
	w32(&w, 0x80);
	w32(&w, 0);
	CHECK_EQ(request(&w, &r), -EBADMSG);
	/* PATHS: NUL-ended absolute paths, no name. */
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8 + 7, 5);
	w32(&w, DP_RESID_PATHS);
	w16(&w, 0);
	w16(&w, 7);
	wstr(&w, "/a\0/bc\0", 7);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(r.u.resid.npaths, 2);
	CHECK_EQ(r.u.resid.list_len, 7);
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8 + 5, 5);
	w32(&w, DP_RESID_PATHS);
	w16(&w, 0);
	w16(&w, 5);
	wstr(&w, "/a\0bc", 5);	/* not ended, and not absolute */
	CHECK_EQ(request(&w, &r), -EBADMSG);
	w.n = 0;
	whdr(&w, DP_RESIDENCY, 8 + 6, 5);
	w32(&w, DP_RESID_PATHS | DP_RESID_NEXT);
	w16(&w, 0);
	w16(&w, 6);
	wstr(&w, "/a\0/b\0", 6);
	CHECK_EQ(request(&w, &r), -EBADMSG);
}

/* A RESIDENCY reply: entries of a longer fixed part are read. */
static void test_resid_reply(void)
{
	struct dp_resid_reply rr;
	struct dp_resid_entry e;
	char path[DP_MAX_PATH + 1];
	struct w w = { .n = 0 };
	size_t off;

	w32(&w, 2);	/* n */
	w32(&w, 0);	/* more */
	w32(&w, sizeof(e) + 8);	/* a later minor's longer entry */
	w32(&w, 0);
	for (int i = 0; i < 2; i++) {
		w64(&w, 10 + i);	/* ino */
		w64(&w, 1);
		w32(&w, 0x700002);
		w32(&w, 5);	/* path_len */
		w64(&w, 8192);
		w64(&w, 2 - i);
		w64(&w, 1);
		w64(&w, 0);
		w32(&w, 0);
		w32(&w, DUET_RESIDENCY_LIVE);
		w64(&w, 0xffffffffffffffffull);	/* the field this reader does not know */
		wstr(&w, i ? "/b/cd\0\0\0" : "/a/bc\0\0\0", 8);
	}
	CHECK_EQ(dp_resid_reply_get(w.b, w.n, &rr, &off), 0);
	CHECK_EQ(rr.n, 2);
	CHECK_EQ(dp_next_resid(w.b, w.n, &off, &rr, &e, path), 1);
	CHECK(e.ino == 10 && e.cached == 2 && !strcmp(path, "/a/bc"));
	CHECK_EQ(dp_next_resid(w.b, w.n, &off, &rr, &e, path), 1);
	CHECK(e.ino == 11 && e.cached == 1 && e.flags == DUET_RESIDENCY_LIVE &&
	      !strcmp(path, "/b/cd"));
	CHECK_EQ(dp_next_resid(w.b, w.n, &off, &rr, &e, path), 0);
	/* Cut inside the last path: malformed. */
	off = sizeof(rr);
	CHECK_EQ(dp_next_resid(w.b, w.n - 1, &off, &rr, &e, path), 1);
	CHECK_EQ(dp_next_resid(w.b, w.n - 1, &off, &rr, &e, path), -EBADMSG);
	/* An entry size shorter than this reader's: malformed. */
	memcpy(w.b + 8, &(uint32_t){ 8 }, 4);
	CHECK_EQ(dp_resid_reply_get(w.b, w.n, &rr, &off), -EBADMSG);
}

/* A reply type sent to the daemon is not a request. */
static void test_reply_as_request(void)
{
	static const uint16_t types[] = { DP_REPLY, DP_READY, DP_ERROR };
	struct dp_request r;
	struct w w = { .n = 0 };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		w.n = 0;
		whdr(&w, types[i], 8, 1);
		wzero(&w, 8);
		CHECK_EQ(request(&w, &r), -EBADMSG);
	}
}

/* ---- replies ---- */

static void wdaemon(struct w *w);

static const struct duet_task_status stats_example = {
	.sz = sizeof(struct duet_task_status),
	.events = 1, .items = 2, .pages = 3, .coalesced = 4, .cancelled = 5,
	.lost = 6, .resyncs = 7, .pending = 8, .scan_files = 9, .scan_done = 10,
};

/* TASK_STATUS: the counters of struct duet_task_status, in its order. */
static void test_task_stats(void)
{
	struct duet_task_status back;
	uint8_t buf[DP_TASK_STATS_SIZE + 16];
	struct w w = { .n = 0 };

	for (uint64_t i = 1; i <= 10; i++)
		w64(&w, i);
	CHECK_EQ(DP_TASK_STATS_SIZE, 80);
	CHECK_EQ(dp_task_stats_put(buf, &stats_example), DP_TASK_STATS_SIZE);
	CHECK_BYTES(buf, (size_t)DP_TASK_STATS_SIZE, w.b, w.n);
	memset(&back, 0xff, sizeof(back));
	CHECK_EQ(dp_task_stats_get(w.b, w.n, &back), 0);
	CHECK_EQ(back.sz, sizeof(back));
	CHECK(!memcmp(&back, &stats_example, sizeof(back)));
	/* At any alignment. */
	memcpy(buf + 1, w.b, w.n);
	CHECK_EQ(dp_task_stats_get(buf + 1, w.n, &back), 0);
	CHECK_EQ(back.scan_done, 10);
	/* Truncated. */
	CHECK_EQ(dp_task_stats_get(w.b, w.n - 1, &back), -EBADMSG);
	CHECK_EQ(dp_task_stats_get(w.b, 0, &back), -EBADMSG);
	/* A newer daemon's, with counters after these: they are ignored. */
	w64(&w, 11);
	w64(&w, 12);
	memset(&back, 0, sizeof(back));
	CHECK_EQ(dp_task_stats_get(w.b, w.n, &back), 0);
	CHECK(!memcmp(&back, &stats_example, sizeof(back)));
}

/* The result, then the body. */
static void test_reply(void)
{
	struct dp_reply rep;
	const void *body;
	size_t blen;
	struct w w = { .n = 0 };

	w32(&w, (uint32_t)-ENOENT);
	w32(&w, 0);
	CHECK_EQ(dp_reply_get(w.b, w.n, &rep, &body, &blen), 0);
	CHECK_EQ(rep.result, -ENOENT);
	CHECK_EQ(blen, 0);
	wstr(&w, "/a", 2);
	CHECK_EQ(dp_reply_get(w.b, w.n, &rep, &body, &blen), 0);
	CHECK_EQ(blen, 2);
	CHECK(body == w.b + 8);
	CHECK_EQ(dp_reply_get(w.b, 7, &rep, &body, &blen), -EBADMSG);
	CHECK_EQ(dp_reply_get(w.b, 0, &rep, &body, &blen), -EBADMSG);
}

/* HELLO's flags carry the client's minor above the feature bits. */
static void test_hello_minor(void)
{
	struct dp_hello h = { .version = DP_VERSION,
			      .flags = DP_HELLO_FLAGS(DP_MINOR, DP_HELLO_STATUS_EXT) };
	struct dp_request r;
	struct w w = { .n = 0 };
	uint8_t built[64];
	size_t n;

	CHECK_EQ(DP_HELLO_FLAGS(1, DP_HELLO_STATUS_EXT), 0x10001);
	CHECK_EQ(DP_HELLO_FLAGS(3, 0x12345), 0x32345);	/* features cannot spill */
	CHECK_EQ(DP_HELLO_MINOR(0x10001), 1);
	CHECK_EQ(DP_HELLO_MINOR(DP_HELLO_STATUS_EXT), 0);	/* a client of minor 0 */
	whdr(&w, DP_HELLO, 8, 1);
	w32(&w, DP_VERSION);
	w32(&w, (uint32_t)DP_MINOR << 16 | DP_HELLO_STATUS_EXT);
	n = dp_build(built, DP_HELLO, 1, &h, sizeof(h), NULL, 0, NULL, 0);
	CHECK_BYTES(built, n, w.b, w.n);
	/* A newer client: a higher minor and flags not known here still parse. */
	w.n = 0;
	whdr(&w, DP_HELLO, 8, 1);
	w32(&w, DP_VERSION);
	w32(&w, 0x00090007u);
	CHECK_EQ(request(&w, &r), 0);
	CHECK_EQ(DP_HELLO_MINOR(r.u.hello.flags), 9);
	CHECK_EQ(r.u.hello.flags & DP_HELLO_STATUS_EXT, 1);
}

/* The welcome: minor 0's (24 bytes), this codec's (32), a newer one's. */
static void test_welcome(void)
{
	struct dp_welcome sent = {
		.version = DP_VERSION, .flush = DUET_FLUSH_INODE, .daemon_id = 123456789,
		.pid = 4242, .max_pending = 262144, .features = DP_HELLO_STATUS_EXT,
		.minor = DP_MINOR,
	}, got;
	struct w w = { .n = 0 };

	w32(&w, DP_VERSION);
	w32(&w, DUET_FLUSH_INODE);
	w64(&w, 123456789);
	w32(&w, 4242);
	w32(&w, 262144);
	CHECK_EQ(w.n, DP_WELCOME_MIN);
	memset(&got, 0xff, sizeof(got));
	CHECK_EQ(dp_welcome_get(w.b, w.n, &got), 0);
	CHECK_EQ(got.daemon_id, 123456789);
	CHECK_EQ(got.max_pending, 262144);
	CHECK_EQ(got.features, 0);
	CHECK_EQ(got.minor, 0);
	w32(&w, DP_HELLO_STATUS_EXT);
	w32(&w, DP_MINOR);
	CHECK_BYTES(&sent, sizeof(sent), w.b, w.n);
	CHECK_EQ(dp_welcome_get(w.b, w.n, &got), 0);
	CHECK(!memcmp(&got, &sent, sizeof(got)));
	w64(&w, 0x1111111111111111);
	w64(&w, 0x2222222222222222);
	memset(&got, 0, sizeof(got));
	CHECK_EQ(dp_welcome_get(w.b, w.n, &got), 0);
	CHECK(!memcmp(&got, &sent, sizeof(got)));
	CHECK_EQ(dp_welcome_get(w.b, DP_WELCOME_MIN - 1, &got), -EBADMSG);
}

static void test_fixed_bodies(void)
{
	struct duet_item items[3] = { { 0 } }, want[2] = {
		{ .ino = 5, .gen = 1, .index = 0, .count = 4, .dev = 0x800001,
		  .state = DUET_ADDED },
		{ .ino = 6, .gen = 2, .index = 8, .count = 1, .dev = 0x800001,
		  .state = DUET_REMOVED, .flags = DUET_ITEM_INODE_LEVEL },
	};
	struct duet_fileid f;
	struct dp_task_id id;
	struct dp_daemon dd;
	struct w w = { .n = 0 };

	/* TASK_NEW's: id, flush; then whatever a newer daemon adds. */
	w32(&w, 17);
	w32(&w, DUET_FLUSH_EXACT);
	CHECK_EQ(dp_task_id_get(w.b, w.n, &id), 0);
	CHECK_EQ(id.id, 17);
	CHECK_EQ(id.flush, DUET_FLUSH_EXACT);
	w64(&w, 99);
	CHECK_EQ(dp_task_id_get(w.b, w.n, &id), 0);
	CHECK_EQ(id.id, 17);
	CHECK_EQ(dp_task_id_get(w.b, 7, &id), -EBADMSG);

	/* FILEID's: struct duet_fileid. */
	w.n = 0;
	w64(&w, 42);
	w64(&w, 3);
	w32(&w, 0x700002);
	w32(&w, 0);
	CHECK_EQ(dp_fileid_get(w.b, w.n, &f), 0);
	CHECK_EQ(f.ino, 42);
	CHECK_EQ(f.gen, 3);
	CHECK_EQ(f.dev, 0x700002);
	w64(&w, 99);
	CHECK_EQ(dp_fileid_get(w.b, w.n, &f), 0);
	CHECK_EQ(f.ino, 42);
	CHECK_EQ(dp_fileid_get(w.b, 23, &f), -EBADMSG);

	/* FETCH's: result items, byte for byte struct duet_item. */
	w.n = 0;
	for (int i = 0; i < 2; i++) {
		w64(&w, want[i].ino);
		w64(&w, want[i].gen);
		w64(&w, want[i].index);
		w64(&w, want[i].count);
		w32(&w, want[i].dev);
		w32(&w, want[i].state);
		w32(&w, want[i].flags);
		w32(&w, 0);
	}
	CHECK_BYTES(want, sizeof(want), w.b, w.n);
	CHECK_EQ(dp_items_get(w.b, w.n, 2, items), 0);
	CHECK(!memcmp(items, want, sizeof(want)));
	CHECK_EQ(dp_items_get(w.b, w.n, 3, items), -EBADMSG);
	CHECK_EQ(dp_items_get(w.b, w.n - 1, 2, items), -EBADMSG);
	CHECK_EQ(dp_items_get(w.b, 0, 0, items), 0);
	w64(&w, 99);	/* trailing bytes: ignored */
	CHECK_EQ(dp_items_get(w.b, w.n, 2, items), 0);
	CHECK_EQ(dp_items_get(w.b, w.n, UINT32_MAX, items), -EBADMSG);

	/* DAEMON_STATUS's first part. */
	w.n = 0;
	wdaemon(&w);
	CHECK_EQ(dp_daemon_get(w.b, w.n, &dd), 0);
	CHECK_EQ(dd.pid, 99);
	CHECK_EQ(dd.nclients, 3);
	CHECK_EQ(dd.engine_bytes, 4096);
	CHECK_EQ(dp_daemon_get(w.b, w.n - 1, &dd), -EBADMSG);
}

/* ---- DAEMON_STATUS bodies ---- */

/* One task entry: struct dp_task_info's fields, name and dir padded to 8. */
static void wtask(struct w *w, uint32_t id, const char *name, const char *dir, uint64_t base)
{
	size_t nl = strlen(name), dl = strlen(dir);

	w32(w, id);
	w32(w, 1000);		/* uid */
	w32(w, 4242);		/* pid */
	w32(w, DUET_EXISTS);	/* mask */
	w16(w, (uint16_t)nl);
	w16(w, (uint16_t)dl);
	w32(w, 1);		/* paused */
	for (uint64_t i = 0; i < 10; i++)
		w64(w, base + i);	/* events ... scan_done */
	wstr(w, name, nl);
	wzero(w, (8 - nl % 8) % 8);
	wstr(w, dir, dl);
	wzero(w, (8 - dl % 8) % 8);
}

static void wdaemon(struct w *w)
{
	w32(w, 99);		/* pid */
	w32(w, DUET_FLUSH_EXACT);
	w32(w, 2);		/* ntasks */
	w32(w, 3);		/* nclients */
	w64(w, 5000);		/* uptime_ms */
	w64(w, 1024);		/* rss_kb */
	w64(w, 262144);		/* max_pending */
	w64(w, 77);		/* events */
	w64(w, 4096);		/* engine_bytes */
}

static void test_status(void)
{
	char name[DP_MAX_NAME + 1], dir[DP_MAX_PATH + 1];
	struct dp_task_info ti;
	struct w w = { .n = 0 };
	size_t off = sizeof(struct dp_daemon);
	struct dp_daemon dd;

	CHECK_EQ(sizeof(struct dp_daemon), 56);
	CHECK_EQ(DP_TASK_INFO_SIZE, 104);
	/* dp_task_info_put() writes the entry's fixed part as wtask() does. */
	{
		struct dp_task_info in = {
			.id = 1, .uid = 1000, .pid = 4242, .mask = DUET_EXISTS,
			.name_len = 6, .dir_len = 5, .paused = 1,
		};
		uint8_t buf[DP_TASK_INFO_SIZE];

		wtask(&w, 1, "backup", "/data", 1);
		CHECK_EQ(w.n, DP_TASK_INFO_SIZE + 16);
		in.st = stats_example;
		CHECK_EQ(dp_task_info_put(buf, &in), DP_TASK_INFO_SIZE);
		CHECK_BYTES(buf, (size_t)DP_TASK_INFO_SIZE, w.b, (size_t)DP_TASK_INFO_SIZE);
		w.n = 0;
	}
	wdaemon(&w);
	wtask(&w, 1, "backup", "/data", 100);
	wtask(&w, 2, "scrubber", "/srv/x", 200);
	memcpy(&dd, w.b, sizeof(dd));
	CHECK_EQ(dd.pid, 99);
	CHECK_EQ(dd.engine_bytes, 4096);
	CHECK_EQ(dp_next_task(w.b, w.n, &off, &ti, name, sizeof(name), dir, sizeof(dir)), 1);
	CHECK_EQ(ti.id, 1);
	CHECK_EQ(ti.uid, 1000);
	CHECK_EQ(ti.pid, 4242);
	CHECK_EQ(ti.mask, DUET_EXISTS);
	CHECK_EQ(ti.paused, 1);
	CHECK_EQ(ti.st.sz, sizeof(ti.st));
	CHECK_EQ(ti.st.events, 100);
	CHECK_EQ(ti.st.pending, 107);
	CHECK_EQ(ti.st.scan_done, 109);
	CHECK_STR(name, "backup");
	CHECK_STR(dir, "/data");
	CHECK_EQ(off, 56 + 104 + 8 + 8);
	CHECK_EQ(dp_next_task(w.b, w.n, &off, &ti, name, sizeof(name), dir, sizeof(dir)), 1);
	CHECK_EQ(ti.id, 2);
	CHECK_STR(name, "scrubber");
	CHECK_STR(dir, "/srv/x");
	CHECK_EQ(ti.st.resyncs, 206);
	CHECK_EQ(dp_next_task(w.b, w.n, &off, &ti, name, sizeof(name), dir, sizeof(dir)), 0);

	/* Truncated anywhere inside an entry: malformed, never read past. */
	for (size_t len = 57; len < w.n; len++) {
		int r;

		off = sizeof(struct dp_daemon);
		while ((r = dp_next_task(w.b, len, &off, &ti, name, sizeof(name), dir,
					 sizeof(dir))) == 1)
			CHECK(off <= len);
		CHECK_EQ(r, len == 56 + 104 + 16 ? 0 : -EBADMSG);
	}
	/* A name longer than the caller's buffer, or than the bound. */
	off = sizeof(struct dp_daemon);
	CHECK_EQ(dp_next_task(w.b, w.n, &off, &ti, name, 6, dir, sizeof(dir)), -EBADMSG);
	memcpy(w.b + 56 + 16, &(uint16_t){ DP_MAX_NAME + 1 }, 2);
	off = sizeof(struct dp_daemon);
	CHECK_EQ(dp_next_task(w.b, w.n, &off, &ti, name, sizeof(name), dir, sizeof(dir)),
		 -EBADMSG);
}

/* The extended body: struct dp_daemon_ext, users, tasks with their ext part. */
static void wext(struct w *w, uint32_t size, uint32_t nusers, uint32_t user_size,
		 uint32_t task_ext_size)
{
	size_t start = w->n;

	w32(w, size);
	w32(w, nusers);
	w32(w, user_size);
	w32(w, task_ext_size);
	w32(w, 1000);		/* viewer_uid */
	w32(w, 4);		/* others_tasks */
	w32(w, 5);		/* others_clients */
	w32(w, 1024);		/* max_connections */
	w32(w, 256);		/* max_connections_per_user */
	w32(w, 64);		/* max_tasks */
	w32(w, 16);		/* max_tasks_per_user */
	w32(w, 5000);		/* request_timeout_ms */
	w32(w, 60000);		/* idle_timeout_ms */
	w32(w, 0);		/* reserved */
	w64(w, 65536);		/* max_done_marks */
	w64(w, 4096);		/* fd_limit */
	w64(w, 2000);		/* fd_need */
	w64(w, 10);		/* accepted */
	w64(w, 1);		/* refused_total */
	w64(w, 2);		/* refused_user */
	w64(w, 3);		/* closed_partial */
	w64(w, 4);		/* closed_idle */
	w64(w, 54);		/* page_bytes */
	w64(w, 190);		/* mark_bytes */
	/* A newer daemon's fields past the ones known here. */
	while (w->n - start < size)
		w64(w, 0xabababababababab);
}

static void wuser(struct w *w, uint32_t uid, uint32_t size)
{
	size_t start = w->n;

	w32(w, uid);
	w32(w, 2);	/* clients */
	w32(w, 1);	/* tasks */
	w32(w, 0);
	w64(w, 6);	/* refused */
	w64(w, 7);	/* closed_partial */
	w64(w, 8);	/* closed_idle */
	while (w->n - start < size)
		w64(w, 0xcdcdcdcdcdcdcdcd);
}

static void wtask_ext(struct w *w, uint32_t size)
{
	size_t start = w->n;

	w32(w, size);
	w32(w, DP_TASK_SCAN_COMPLETE);
	w64(w, 12);		/* done_marks */
	w64(w, 65552);		/* mem_in */
	w64(w, 196632);		/* mem_out */
	w64(w, 5400);		/* mem_pending */
	w64(w, 2280);		/* mem_done */
	while (w->n - start < size)
		w64(w, 0xefefefefefefefef);
}

static void test_status_ext(void)
{
	char name[DP_MAX_NAME + 1], dir[DP_MAX_PATH + 1];
	struct dp_daemon_ext x;
	struct dp_task_info ti;
	struct dp_task_ext te;
	struct dp_user u;
	struct w w = { .n = 0 };
	size_t off;

	CHECK_EQ(sizeof(struct dp_daemon_ext), 136);
	CHECK_EQ(sizeof(struct dp_user), 40);
	CHECK_EQ(sizeof(struct dp_task_ext), 48);
	/* As this daemon sends it. */
	wdaemon(&w);
	wext(&w, 136, 1, 40, 48);
	wuser(&w, 1000, 40);
	wtask(&w, 1, "t", "/d", 0);
	wtask_ext(&w, 48);
	CHECK_EQ(dp_daemon_ext_get(w.b, w.n, &x, &off), 0);
	CHECK_EQ(off, 56 + 136);
	CHECK_EQ(x.viewer_uid, 1000);
	CHECK_EQ(x.max_done_marks, 65536);
	CHECK_EQ(x.mark_bytes, 190);
	CHECK_EQ(dp_next_user(w.b, w.n, &off, &x, &u), 0);
	CHECK_EQ(u.uid, 1000);
	CHECK_EQ(u.closed_idle, 8);
	CHECK_EQ(dp_next_task_ext(w.b, w.n, &off, &x, &ti, &te, name, sizeof(name), dir,
				  sizeof(dir)), 1);
	CHECK_EQ(te.flags, DP_TASK_SCAN_COMPLETE);
	CHECK_EQ(te.mem_done, 2280);
	CHECK_EQ(dp_next_task_ext(w.b, w.n, &off, &x, &ti, &te, name, sizeof(name), dir,
				  sizeof(dir)), 0);

	/* A newer daemon's: every part longer; what is known reads the same. */
	w.n = 0;
	wdaemon(&w);
	wext(&w, 152, 2, 48, 64);
	wuser(&w, 1000, 48);
	wuser(&w, 1001, 48);
	wtask(&w, 1, "t", "/d", 0);
	wtask_ext(&w, 64);
	CHECK_EQ(dp_daemon_ext_get(w.b, w.n, &x, &off), 0);
	CHECK_EQ(x.size, 152);
	CHECK_EQ(x.mark_bytes, 190);
	CHECK_EQ(dp_next_user(w.b, w.n, &off, &x, &u), 0);
	CHECK_EQ(dp_next_user(w.b, w.n, &off, &x, &u), 0);
	CHECK_EQ(u.uid, 1001);
	CHECK_EQ(u.closed_idle, 8);
	CHECK_EQ(dp_next_task_ext(w.b, w.n, &off, &x, &ti, &te, name, sizeof(name), dir,
				  sizeof(dir)), 1);
	CHECK_EQ(te.mem_done, 2280);
	CHECK_EQ(dp_next_task_ext(w.b, w.n, &off, &x, &ti, &te, name, sizeof(name), dir,
				  sizeof(dir)), 0);

	/* An older daemon's, shorter: the fields it did not send read 0. */
	w.n = 0;
	wdaemon(&w);
	wext(&w, 136, 0, 40, 40);
	w.n -= 8;	/* no mark_bytes */
	memcpy(w.b + 56, &(uint32_t){ 128 }, 4);
	CHECK_EQ(dp_daemon_ext_get(w.b, w.n, &x, &off), 0);
	CHECK_EQ(x.page_bytes, 54);
	CHECK_EQ(x.mark_bytes, 0);

	/* Malformed: sizes not multiples of 8, too small, too large, too many users. */
	{
		static const uint32_t bad[][4] = {
			{ 140, 0, 40, 48 },	/* size % 8 */
			{ 8, 0, 40, 48 },	/* size below what a reader needs */
			{ 8192, 0, 40, 48 },	/* size past DP_MAX_PART */
			{ 136, 0, 0, 48 },	/* user_size 0 */
			{ 136, 0, 44, 48 },	/* user_size % 8 */
			{ 136, 0, 40, 44 },	/* task_ext_size % 8 */
			{ 136, 0, 40, 8192 },	/* task_ext_size past DP_MAX_PART */
			{ 136, 1000, 40, 48 },	/* more users than the body holds */
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			w.n = 0;
			wdaemon(&w);
			wext(&w, 136, bad[i][1], bad[i][2], bad[i][3]);
			memcpy(w.b + 56, &bad[i][0], 4);
			CHECK_EQ(dp_daemon_ext_get(w.b, w.n, &x, &off), -EBADMSG);
		}
	}
	/* Truncated: the ext part cut short. */
	w.n = 0;
	wdaemon(&w);
	wext(&w, 136, 0, 40, 48);
	CHECK_EQ(dp_daemon_ext_get(w.b, w.n - 8, &x, &off), -EBADMSG);
	CHECK_EQ(dp_daemon_ext_get(w.b, 56, &x, &off), -EBADMSG);
}

int main(void)
{
	test_header();
	test_hello();
	test_task_new();
	test_empty_requests();
	test_fetch();
	test_done();
	test_paths();
	test_path();
	test_reply_as_request();
	test_residency();
	test_resid_reply();
	test_hello_minor();
	test_task_stats();
	test_reply();
	test_welcome();
	test_fixed_bodies();
	test_status();
	test_status_ext();
	return check_exit("test-proto");
}
