// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Option structs that grow (libbpf's rule, api.c): struct
 * duet_session_opts and struct duet_task_opts from an older caller
 * (smaller: the missing fields take their defaults), from this header
 * (exact) and from a newer one (larger: accepted only when every byte
 * this library does not know is 0, else -EINVAL). The checks are called
 * directly (duet__session_opts_get(), duet__task_opts_get()) byte by
 * byte, then through duet_session_new() and duet_task_new() against a
 * fake duetd (fake-duetd.h): no root, no tracefs.
 */
#include <stddef.h>

#include "check.h"
#include "fake-duetd.h"
#include "backend.h"

#define offsetofend(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define NEWER_BYTES 24	/* what a newer header might have added */

/* A caller's struct as a newer header would lay it out: ours, then more. */
struct big_session_opts {
	struct duet_session_opts o;
	unsigned char more[NEWER_BYTES];
};

struct big_task_opts {
	struct duet_task_opts o;
	unsigned char more[NEWER_BYTES];
};

static void test_session_opts(void)
{
	static const size_t first = offsetofend(struct duet_session_opts, flags);
	struct duet_session_opts out;
	struct big_session_opts big;

	/* NULL: every default. */
	memset(&out, 0x5a, sizeof(out));
	CHECK_EQ(duet__session_opts_get(NULL, &out), 0);
	CHECK_EQ(out.sz, sizeof(out));
	CHECK(!out.log && !out.log_ud && !out.socket);
	CHECK_EQ(out.buffer_kb + out.flags + out.subbuf_kb, 0);

	/* This header's struct: copied as it is. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big.o);
	big.o.buffer_kb = 8;
	big.o.flags = DUET_SESSION_STOCK;
	big.o.subbuf_kb = 4;
	big.o.socket = "/s";
	CHECK_EQ(duet__session_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.buffer_kb, 8);
	CHECK_EQ(out.flags, DUET_SESSION_STOCK);
	CHECK_EQ(out.subbuf_kb, 4);
	CHECK_STR(out.socket, "/s");

	/*
	 * The first header's struct, which ended with flags: what follows in
	 * the caller's memory is not its own (here garbage), and the fields
	 * it lacks take their defaults.
	 */
	memset(&big, 0xff, sizeof(big));
	big.o.sz = first;
	big.o.log = NULL;
	big.o.log_ud = NULL;
	big.o.buffer_kb = 16;
	big.o.flags = DUET_SESSION_DAEMON;
	CHECK_EQ(duet__session_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.sz, sizeof(out));
	CHECK_EQ(out.buffer_kb, 16);
	CHECK_EQ(out.flags, DUET_SESSION_DAEMON);
	CHECK_EQ(out.subbuf_kb, 0);
	CHECK(!out.socket);

	/*
	 * A size no header had, ending inside a field (half the socket
	 * pointer, or subbuf_kb's first bytes): that field keeps its default.
	 */
	memset(&big, 0xff, sizeof(big));
	big.o.sz = offsetof(struct duet_session_opts, socket) + 4;
	big.o.log = NULL;
	big.o.log_ud = NULL;
	big.o.subbuf_kb = 7;
	CHECK_EQ(duet__session_opts_get(&big.o, &out), 0);
	CHECK(!out.socket);
	CHECK_EQ(out.subbuf_kb, 7);
	big.o.sz = offsetof(struct duet_session_opts, subbuf_kb) + 2;
	CHECK_EQ(duet__session_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.subbuf_kb, 0);
	CHECK_EQ(out.flags, 0xffffffffu);

	/* Smaller than the first struct. */
	for (size_t sz = 0; sz < first; sz += 4) {
		big.o.sz = sz;
		CHECK_EQ(duet__session_opts_get(&big.o, &out), -EINVAL);
	}
	big.o.sz = first - 1;
	CHECK_EQ(duet__session_opts_get(&big.o, &out), -EINVAL);

	/* A newer header's: zeros past this struct are fine... */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.buffer_kb = 32;
	CHECK_EQ(duet__session_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.sz, sizeof(out));
	CHECK_EQ(out.buffer_kb, 32);
	/* ...a field this library does not know, in any byte, is refused. */
	for (size_t i = 0; i < NEWER_BYTES; i++) {
		memset(big.more, 0, sizeof(big.more));
		big.more[i] = 1;
		CHECK_EQ(duet__session_opts_get(&big.o, &out), -EINVAL);
		/* Bytes past the caller's sz are not its struct's: not looked at. */
		big.o.sz = sizeof(big.o) + i;
		CHECK_EQ(duet__session_opts_get(&big.o, &out), 0);
		big.o.sz = sizeof(big);
	}
}

static void test_task_opts(void)
{
	struct duet_task_opts out;
	struct big_task_opts big;

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big.o);
	big.o.name = "n";
	big.o.mask = DUET_EXISTS;
	big.o.path = "/p";
	CHECK_EQ(duet__task_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.sz, sizeof(out));
	CHECK_STR(out.name, "n");
	CHECK_EQ(out.mask, DUET_EXISTS);
	CHECK_STR(out.path, "/p");

	/* path is needed: the first struct already ended with it. */
	CHECK_EQ(duet__task_opts_get(NULL, &out), -EINVAL);
	big.o.path = NULL;
	CHECK_EQ(duet__task_opts_get(&big.o, &out), -EINVAL);
	big.o.path = "/p";
	for (size_t sz = 0; sz < offsetofend(struct duet_task_opts, path); sz++) {
		big.o.sz = sz;
		CHECK_EQ(duet__task_opts_get(&big.o, &out), -EINVAL);
	}
	/* The first header's size: latency_ms takes its default. */
	big.o.latency_ms = 7;
	big.o.sz = offsetofend(struct duet_task_opts, path);
	CHECK_EQ(duet__task_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.latency_ms, 0u);
	big.o.sz = sizeof(big.o);
	CHECK_EQ(duet__task_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.latency_ms, 7u);
	big.o.latency_ms = 0;

	/*
	 * flags: the header before it ended with latency_ms (sizeof 40, the
	 * padding after latency_ms then the caller's): a struct of that size
	 * never has flags read, whatever its padding holds. A flag this
	 * library does not know is refused.
	 */
	big.o.flags = DUET_TASK_POLITE;
	big.o.sz = offsetofend(struct duet_task_opts, latency_ms) + 4;
	CHECK_EQ(duet__task_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.flags, 0u);
	big.o.sz = sizeof(big.o);
	CHECK_EQ(duet__task_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.flags, DUET_TASK_POLITE);
	big.o.flags = 0x2;
	CHECK_EQ(duet__task_opts_get(&big.o, &out), -EINVAL);
	big.o.flags = 0;

	/* A newer header's, as for sessions. */
	big.o.sz = sizeof(big);
	CHECK_EQ(duet__task_opts_get(&big.o, &out), 0);
	CHECK_EQ(out.sz, sizeof(out));
	CHECK_STR(out.path, "/p");
	for (size_t i = 0; i < NEWER_BYTES; i++) {
		memset(big.more, 0, sizeof(big.more));
		big.more[i] = 0x80;
		CHECK_EQ(duet__task_opts_get(&big.o, &out), -EINVAL);
	}
}

/* The same through the public calls, against the fake daemon. */
static void test_public(void)
{
	static const size_t first = offsetofend(struct duet_session_opts, flags);
	struct big_session_opts so;
	struct big_task_opts to;
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct fake fk;

	if (fake_start(&fk, NEWER)) {
		CHECK(0);
		return;
	}
	/* A newer caller's session options: refused with a field set. */
	memset(&so, 0, sizeof(so));
	so.o.sz = sizeof(so);
	so.o.flags = DUET_SESSION_DAEMON;
	so.o.socket = sock;
	so.more[NEWER_BYTES - 1] = 1;
	CHECK_EQ(duet_session_new(&so.o, &s), -EINVAL);
	CHECK(!s);
	CHECK_EQ(fk.hellos, 0);	/* refused before any connection */

	/*
	 * An older caller's: its struct ends at flags, so the socket comes
	 * from DUET_SOCKET; the word where a socket pointer would be holds
	 * garbage that must not be read.
	 */
	memset(&so, 0xff, sizeof(so));
	so.o.sz = first;
	so.o.log = NULL;
	so.o.log_ud = NULL;
	so.o.buffer_kb = 0;
	so.o.flags = DUET_SESSION_DAEMON;
	setenv("DUET_SOCKET", sock, 1);
	CHECK_EQ(duet_session_new(&so.o, &s), 0);
	unsetenv("DUET_SOCKET");
	if (!s)
		goto out;

	/* A newer caller's task options: zeros past ours are accepted. */
	memset(&to, 0, sizeof(to));
	to.o.sz = sizeof(to);
	to.o.name = "newer";
	to.o.mask = DUET_MODIFIED;
	to.o.path = dir;
	CHECK_EQ(duet_task_new(s, &to.o, &t), 0);
	CHECK_STR(fk.task_name, "newer");
	CHECK_EQ(fk.task_mask, DUET_MODIFIED);
	CHECK_STR(fk.task_path, dir);
	duet_task_free(t);
	t = NULL;
	/* A field it does not know: refused, nothing registered. */
	to.more[0] = 1;
	fk.task_name[0] = '\0';
	CHECK_EQ(duet_task_new(s, &to.o, &t), -EINVAL);
	CHECK(!t);
	CHECK_STR(fk.task_name, "");
	/* Smaller than the first struct. */
	to.more[0] = 0;
	to.o.sz = offsetof(struct duet_task_opts, path);
	CHECK_EQ(duet_task_new(s, &to.o, &t), -EINVAL);
	CHECK(!t);
out:
	duet_session_free(s);
	fake_stop(&fk);
	CHECK_EQ(fk.malformed, 0);
}

int main(void)
{
	if (fake_setup())
		return 1;
	test_session_opts();
	test_task_opts();
	test_public();
	rmdir(dir);
	return check_exit("test-opts");
}
