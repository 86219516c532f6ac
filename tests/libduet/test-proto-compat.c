// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libduet's daemon client against daemons of other protocol minors and
 * majors (libduet/proto.h, "Growth"). A fake duetd runs in a thread on a
 * socket in a temporary directory and answers with canned bodies:
 *  - newer: minor 9, every fixed-form reply longer than this client
 *    knows (fields a later minor would add): the client reads what it
 *    knows and ignores the rest;
 *  - older: minor 0 (the daemons before the rule), the welcome of its
 *    first form and every reply of exactly its size;
 *  - short: a TASK_STATUS body shorter than its first form: refused;
 *  - major: a daemon of major 2, whose answer to HELLO is refused with
 *    -EPROTONOSUPPORT.
 * duet_task_status() gives the task's name with either daemon (the
 * client's own copy: TASK_STATUS does not carry it), and callers of an
 * older, smaller struct get only the fields they know.
 * A cache-polite task (DUET_TASK_POLITE) goes to a newer daemon with
 * DP_TASK_POLITE; an older one is never sent the flag (it would refuse
 * it as malformed) and duet_task_new() says -EOPNOTSUPP rather than
 * register a task that is not polite.
 * And duet_session_free() of a daemon-mode session hangs up the tasks
 * still registered on it, as duet_session_free(3) says it frees them.
 * The fake daemon also checks what the client sends: HELLO carries its
 * minor, and every request is of the exact form (dp_parse_request()).
 * No root, no tracefs: the in-process backend is never opened.
 */
#include "check.h"
#include "fake-duetd.h"

/* This client against a daemon of minor 9 or 0: every call works. */
static void run_compatible(enum kind kind)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "compat", .mask = DUET_EXISTS,
				     .path = dir };
	struct duet_task_status st = { .sz = sizeof(st) };
	struct duet_item items[8];
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct duet_fileid f;
	char path[64], file[sizeof(dir) + 8];
	struct fake fk;

	if (fake_start(&fk, kind)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (!s)
		goto out;
	CHECK_EQ(duet_session_flush_semantics(s), DUET_FLUSH_EXACT);
	CHECK_EQ(duet_task_new(s, &to, &t), 0);
	if (!t)
		goto out;
	CHECK_STR(fk.task_path, dir);
	CHECK_EQ(duet_task_fetch(t, items, 8), 2);
	CHECK(!memcmp(items, items_sent, sizeof(items_sent)));
	CHECK_EQ(duet_task_fetch(t, items, 1), 1);
	CHECK_EQ(duet_task_status(t, &st), 0);
	CHECK(!memcmp(&st, &stats_sent, offsetof(struct duet_task_status, name)));
	/* The name: the client's own, whichever daemon answers. */
	CHECK_STR(st.name, "compat");
	/* A caller whose struct ends before the name gets the counters only. */
	memset(&st, 'x', sizeof(st));
	st.sz = offsetof(struct duet_task_status, name);
	CHECK_EQ(duet_task_status(t, &st), 0);
	CHECK_EQ(st.sz, offsetof(struct duet_task_status, name));
	CHECK_EQ(st.scan_done, stats_sent.scan_done);
	CHECK_EQ(st.name[0], 'x');
	/* And one whose struct ends inside it: not a name without its NUL. */
	memset(&st, 'x', sizeof(st));
	st.sz = offsetof(struct duet_task_status, name) + 8;
	CHECK_EQ(duet_task_status(t, &st), 0);
	CHECK_EQ(st.sz, offsetof(struct duet_task_status, name));
	CHECK_EQ(st.name[0], 'x');
	st.sz = sizeof(st);
	snprintf(file, sizeof(file), "%s/f", dir);
	CHECK_EQ(duet_task_fileid(t, file, &f), 0);
	CHECK_EQ(f.ino, fileid_sent.ino);
	CHECK_EQ(f.gen, fileid_sent.gen);
	CHECK_EQ(f.dev, fileid_sent.dev);
	CHECK_EQ(duet_task_path(t, &f, path, sizeof(path)), 0);
	CHECK_STR(path, "/x/y");
	CHECK_EQ(duet_task_set_done(t, &f, 0, 0), 0);
	CHECK_EQ(duet_task_check_done(t, &f, 0, 0), 0);
out:
	duet_task_free(t);
	duet_session_free(s);
	fake_stop(&fk);
	/* The client said its version, and sent only exact requests. */
	CHECK_EQ(fk.hellos, 2);	/* the control connection and the task's */
	CHECK_EQ(fk.hello_version, DP_VERSION);
	CHECK_EQ(fk.hello_minor, DP_MINOR);
	CHECK_EQ(fk.malformed, 0);
	CHECK(fk.requests >= 10);
}

/* A body shorter than the form this client needs is refused. */
static void run_short(void)
{
	struct duet_task_opts to = { .sz = sizeof(to), .mask = DUET_EXISTS, .path = dir };
	struct duet_task_status st = { .sz = sizeof(st) };
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct fake fk;

	if (fake_start(&fk, SHORT)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (s)
		CHECK_EQ(duet_task_new(s, &to, &t), 0);
	if (t) {
		memset(&st.events, 0x5a, sizeof(st) - sizeof(st.sz));
		CHECK_EQ(duet_task_status(t, &st), -EPROTO);
		CHECK_EQ(st.events, 0x5a5a5a5a5a5a5a5aull);	/* written only on success */
	}
	duet_task_free(t);
	duet_session_free(s);
	fake_stop(&fk);
}

/* Another major: refused at HELLO. */
static void run_major(void)
{
	struct duet_session *s = NULL;
	struct fake fk;

	if (fake_start(&fk, MAJOR)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), -EPROTONOSUPPORT);
	CHECK(!s);
	duet_session_free(s);
	fake_stop(&fk);
	CHECK_EQ(fk.hellos, 1);
}

static char logged[512];

static void keep_log(void *ud, int level, const char *msg)
{
	(void)ud;
	(void)level;
	snprintf(logged + strlen(logged), sizeof(logged) - strlen(logged), "%s\n", msg);
}

/* A daemon that refuses says why: the sentence reaches the session's log. */
static void run_refused(void)
{
	struct duet_session_opts so = {
		.sz = sizeof(so), .flags = DUET_SESSION_DAEMON, .socket = sock, .log = keep_log,
	};
	struct duet_session *s = NULL;
	struct fake fk;

	if (fake_start(&fk, REFUSE)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(duet_session_new(&so, &s), -EUSERS);
	CHECK(!s);
	CHECK(strstr(logged, "duetd: too many connections of uid 0 (4)") != NULL);
	fake_stop(&fk);
}

/* duet_session_free() frees the tasks left: their connections close. */
static void run_session_frees_tasks(void)
{
	struct duet_task_opts to = { .sz = sizeof(to), .mask = DUET_EXISTS, .path = dir };
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct fake fk;

	if (fake_start(&fk, NEWER)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (s) {
		CHECK_EQ(duet_task_new(s, &to, &t), 0);
		CHECK_EQ(duet_task_new(s, &to, &t), 0);
	}
	duet_session_free(s);
	/* The control connection and both tasks', within 5 s. */
	for (int i = 0; i < 500 && __atomic_load_n(&fk.closed, __ATOMIC_SEQ_CST) < 3; i++)
		usleep(10000);
	CHECK_EQ(__atomic_load_n(&fk.closed, __ATOMIC_SEQ_CST), 3);
	fake_stop(&fk);
}

/* DUET_TASK_POLITE: sent to minor 9, refused for minor 0 before TASK_NEW. */
static void run_polite(enum kind kind)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "polite", .mask = DUET_EXISTS,
				     .path = dir, .flags = DUET_TASK_POLITE };
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct fake fk;

	if (fake_start(&fk, kind)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(open_session(&s), 0);
	if (s)
		CHECK_EQ(duet_task_new(s, &to, &t), kind == NEWER ? 0 : -EOPNOTSUPP);
	duet_task_free(t);
	duet_session_free(s);
	fake_stop(&fk);
	CHECK_EQ(fk.task_news, kind == NEWER ? 1u : 0u);
	if (kind == NEWER)
		CHECK_EQ(fk.task_flags, DP_TASK_POLITE);
	CHECK_EQ(fk.malformed, 0);
}

int main(void)
{
	char file[sizeof(dir) + 8];
	FILE *fp;

	if (fake_setup())
		return 1;
	snprintf(file, sizeof(file), "%s/f", dir);
	fp = fopen(file, "w");
	if (fp)
		fclose(fp);
	run_compatible(NEWER);
	run_compatible(OLDER);
	run_polite(NEWER);
	run_polite(OLDER);
	run_short();
	run_major();
	run_refused();
	run_session_frees_tasks();
	unlink(file);
	rmdir(dir);
	return check_exit("test-proto-compat");
}
