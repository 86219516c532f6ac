// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Saved done marks (duet_task_save(), duet_task_load()), each case with
 * exact marks checked page by page in a task of a new session:
 *  - a whole-file mark resumes, and that task's registration scan does
 *    not report the file although its pages are cached;
 *  - names with a newline, a tab, a backslash, high bytes, spaces and a
 *    text that looks like an escape round-trip, with whole-file and
 *    range marks; the file is "duet-done 2", one line per mark, "end N";
 *  - identity over path: a file deleted and created again under its name
 *    (another inode, or the same number again with another generation,
 *    which the test tries to force) gets none of the old marks; a file
 *    renamed within the directory keeps its marks under its new name,
 *    and the new file at its old name gets none;
 *  - a version 1 file (what libduet wrote before) still loads; a cut,
 *    a malformed and a newer file are -EBADMSG with a sentence in the
 *    log, and restore nothing;
 *  - a crash at any moment of a save: a child saves in a loop, toggling
 *    between two sets of NSET range marks, and is killed (SIGKILL) at a
 *    random moment, KILLS times; after each kill the file is complete
 *    and loads as exactly one of the two sets. The killed children's
 *    tracing instances are reaped by the next session.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "libduet-test.h"

#define KILLS	40
#define NSET	3000	/* ranges per set in the crash test */

static char save[300];
static const char *backend_arg;
static struct lt t;

static void remove_save(void)
{
	unlink(save);
}

/* The last message of the session's log (the reason of an -EBADMSG). */
static char last_log[512];

static void log_cb(void *ud, int level, const char *msg)
{
	(void)ud;
	(void)level;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static struct duet_session *session(void)
{
	struct duet_session_opts o = { .sz = sizeof(o), .log = log_cb };

	return lt_session(&o);
}

static struct duet_fileid fid(struct duet_task *te, const char *path)
{
	struct duet_fileid f;
	int r = duet_task_fileid(te, path, &f);

	if (r)
		die("fileid %s: %s", path, duet_strerror(r));
	return f;
}

/* Pages [0, n) of path are done exactly where want says. */
static int done_map_is(struct duet_task *te, const char *path, const char *want)
{
	struct duet_fileid f;

	if (duet_task_fileid(te, path, &f))
		return 0;
	for (int p = 0; want[p]; p++)
		if (duet_task_check_done(te, &f, (uint64_t)p, 1) != (want[p] == 'x'))
			return 0;
	return 1;
}

static int count_lines(const char *file)
{
	FILE *fp = fopen(file, "r");
	int n = 0, ch;

	while (fp && (ch = getc(fp)) != EOF)
		n += ch == '\n';
	if (fp)
		fclose(fp);
	return n;
}

static void write_text(const char *file, const char *text)
{
	FILE *fp = fopen(file, "w");

	if (!fp || fputs(text, fp) < 0 || fclose(fp))
		die("write %s", file);
}

/* A whole-file mark survives, and the next scan does not report the file. */
static void whole_file(void)
{
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	static struct got g;
	char a[300];
	uint64_t ia;
	int r;

	snprintf(a, sizeof(a), "%s/a", t.root);
	ia = make_file(a, 16, 1);
	s = session();
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	collect(te, &g, 0);
	f = fid(te, a);
	CHECK_EQ(duet_task_set_done(te, &f, 0, 0), 0);
	CHECK(!duet_task_save(te, save), "save done state");
	/* a is cached when the next session's scan runs. */
	drop(a);
	readall(a);
	duet_task_free(te);
	lt_session_free(s);

	s = session();
	te = lt_task(s, NULL, DUET_EXISTS, t.root);
	r = duet_task_load(te, save);
	CHECK(r == 1, "load: one mark restored (%d)", r);
	f = fid(te, a);
	CHECK(duet_task_check_done(te, &f, 0, 0) == 1, "a is done after load");
	wait_scan(te);
	collect(te, &g, 400);
	CHECK(items_for(&g, ia) == 0, "a done: the scan does not report it (%d)", items_for(&g, ia));
	duet_task_free(te);
	lt_session_free(s);
	unlink(a);
	printf("ok saved done state\n");
}

/* Names of every kind of byte; a literal "\x41" must stay four bytes. */
static const char *const odd[] = {
	"new\nline", "tab\there", "back\\slash", "high\xff\xfe", "caf\xc3\xa9",
	" lead and trail ", "esc\\x41", "\n", "pct%s%n",
};
#define NODD (int)(sizeof(odd) / sizeof(odd[0]))

static void odd_names(void)
{
	char path[NODD][400], dir[300];
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	int r;

	/* One of them in a directory whose name is odd too. */
	snprintf(dir, sizeof(dir), "%s/d\ni\\r", t.root);
	if (mkdir(dir, 0755))
		die("mkdir: %s", strerror(errno));
	for (int i = 0; i < NODD; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/%s", i == 3 ? dir : t.root, odd[i]);
		make_file(path[i], 8, 0);
	}
	s = session();
	te = lt_task(s, "odd", DUET_EXISTS, t.root);
	/* Even files whole; odd ones pages 1-2 and 5. */
	for (int i = 0; i < NODD; i++) {
		f = fid(te, path[i]);
		if (i % 2) {
			CHECK_EQ(duet_task_set_done(te, &f, 1, 2), 0);
			CHECK_EQ(duet_task_set_done(te, &f, 5, 1), 0);
		} else {
			CHECK_EQ(duet_task_set_done(te, &f, 0, 0), 0);
		}
	}
	CHECK_EQ(duet_task_save(te, save), 0);
	duet_task_free(te);
	lt_session_free(s);
	/* Header, a line per mark (5 whole, 4 x 2 ranges), trailer: no raw newline. */
	CHECK_EQ(count_lines(save), 1 + 13 + 1);

	s = session();
	te = lt_task(s, "odd", DUET_EXISTS, t.root);
	r = duet_task_load(te, save);
	CHECK_EQ(r, 13);
	for (int i = 0; i < NODD; i++) {
		int ok = done_map_is(te, path[i], i % 2 ? "-xx--x--" : "xxxxxxxx");

		CHECK(ok, "marks of name %d restored exactly", i);
		f = fid(te, path[i]);
		CHECK_EQ(duet_task_check_done(te, &f, 0, 0), i % 2 ? 0 : 1);
	}
	duet_task_free(te);
	lt_session_free(s);
	for (int i = 0; i < NODD; i++)
		unlink(path[i]);
	rmdir(dir);
	printf("ok odd names round-trip\n");
}

/*
 * path deleted and made again; tries to get the same inode number back
 * (ext4 and xfs reuse freed numbers): true if it did.
 */
static bool recreate(const char *path, uint64_t ino)
{
	char tmp[400];
	bool same = false;

	unlink(path);
	sync();
	for (int i = 0; i < 64 && !same; i++) {
		snprintf(tmp, sizeof(tmp), "%s.try%d", path, i);
		same = make_file(tmp, 4, 1) == ino;
		if (same && rename(tmp, path))
			die("rename");
	}
	for (int i = 0; i < 64; i++) {
		snprintf(tmp, sizeof(tmp), "%s.try%d", path, i);
		unlink(tmp);
	}
	if (!same)
		make_file(path, 4, 1);
	return same;
}

static void identity(void)
{
	char rep[300], mv[300], mvnew[300], sub[300];
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	uint64_t irep;
	bool reused;
	int r;

	snprintf(rep, sizeof(rep), "%s/rep", t.root);
	snprintf(mv, sizeof(mv), "%s/mv", t.root);
	snprintf(sub, sizeof(sub), "%s/sub", t.root);
	snprintf(mvnew, sizeof(mvnew), "%s/sub/moved", t.root);
	mkdir(sub, 0755);
	irep = make_file(rep, 4, 1);
	make_file(mv, 4, 1);
	s = session();
	te = lt_task(s, "id", DUET_EXISTS, t.root);
	f = fid(te, rep);
	CHECK_EQ(duet_task_set_done(te, &f, 0, 0), 0);
	f = fid(te, mv);
	CHECK_EQ(duet_task_set_done(te, &f, 1, 2), 0);
	CHECK_EQ(duet_task_save(te, save), 0);
	duet_task_free(te);
	lt_session_free(s);

	/* rep replaced; mv renamed, and another file made at its name. */
	reused = recreate(rep, irep);
	if (rename(mv, mvnew))
		die("rename: %s", strerror(errno));
	make_file(mv, 4, 1);
	printf("replaced file: %s inode number\n", reused ? "the same" : "another");

	s = session();
	te = lt_task(s, "id", DUET_EXISTS, t.root);
	r = duet_task_load(te, save);
	CHECK_EQ(r, 1);
	CHECK(done_map_is(te, rep, "----"), "the replaced file has none of the old marks");
	CHECK(done_map_is(te, mvnew, "-xx-"), "the renamed file keeps its marks under its new name");
	CHECK(done_map_is(te, mv, "----"), "the new file at the old name gets none");
	duet_task_free(te);
	lt_session_free(s);
	unlink(rep);
	unlink(mv);
	unlink(mvnew);
	rmdir(sub);
	printf("ok identity over path (replaced, %s inode number; renamed)\n",
	       reused ? "the same" : "another");
}

static void formats(void)
{
	char a[300], text[600];
	struct duet_session *s;
	struct duet_task *te;
	struct stat st;
	int r;

	snprintf(a, sizeof(a), "%s/v1", t.root);
	make_file(a, 4, 1);
	stat(a, &st);
	s = session();
	te = lt_task(s, "fmt", DUET_EXISTS, t.root);
	/* Version 1: "INO INDEX COUNT PATH", path raw, relative to the root. */
	snprintf(text, sizeof(text), "duet-done 1\n%llu 2 1 /v1\n999999 0 0 /gone\n",
		 (unsigned long long)st.st_ino);
	write_text(save, text);
	CHECK_EQ(duet_task_load(te, save), 1);
	CHECK(done_map_is(te, a, "--x-"), "a version 1 file loads");
	{
		struct duet_fileid f = fid(te, a);

		CHECK_EQ(duet_task_reset_done(te, &f, 0, 0), 0);
	}
	/* Refused whole, each with its sentence in the log. */
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "duet-done 2\nm 1 %llu 0 0 0 0 /v1\n", "cut short" },
		{ "duet-done 2\nm 1 %llu 0 0 0 0 /v1\nend 2\n", "counts" },
		{ "duet-done 2\nm 1 %llu 0 0 0 0 /v1\nend 1\nm 1 2 0 0 0 0 /x\n", "after its end" },
		{ "duet-done 2\nm 1 %llu 0 0 0 0 /v\x01\nend 1\n", "escaped" },
		{ "duet-done 2\nm 1 %llu 0 0 0 0 /v\\q\nend 1\n", "bad escape" },
		{ "duet-done 2\nm 1 %llu 0 0 0 0 /v\\x00\nend 1\n", "NUL" },
		{ "duet-done 2\nm 1 %llu 0 0 4294967295 2 /v1\nend 1\n", "2^32" },
		{ "duet-done 2\nm 1 %llu 0 8 0 0 /v1\nend 1\n", "flags" },
		{ "duet-done 2\nm 1 %llu -1 0 0 0 /v1\nend 1\n", "numbers" },
		{ "duet-done 3\nm 1 %llu 0 0 0 0 /v1\nend 1\n", "newer" },
		{ "hello\n", "header" },
		{ "", "empty" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), bad[i].text, (unsigned long long)st.st_ino);
		write_text(save, text);
		last_log[0] = '\0';
		r = duet_task_load(te, save);
		CHECK(r == -EBADMSG, "bad file %zu: -EBADMSG (%d)", i, r);
		CHECK(strstr(last_log, bad[i].why) != NULL, "bad file %zu: the log says why: %s", i,
		      last_log);
		CHECK(done_map_is(te, a, "----"), "bad file %zu restores nothing", i);
	}
	duet_task_free(te);
	lt_session_free(s);
	unlink(a);
	printf("ok version 1 loads; cut and malformed files are refused\n");
}

/* ---- a crash at any moment of a save ---- */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

/*
 * The child: set A is pages 2i, set B pages 2i + 1 (i < NSET) of x, each
 * page its own range; it saves A, then B, then A... Writes a byte on
 * ready after its first save is in place. Never returns; no exit
 * handler of the parent's runs in it.
 */
static void __attribute__((noreturn)) saver(const char *x, int ready)
{
	struct duet_session_opts so = { .sz = sizeof(so), .backend = backend_arg,
					.flags = DUET_SESSION_LOCAL };
	struct duet_task_opts to = { .sz = sizeof(to), .name = "saver", .mask = DUET_EXISTS,
				     .path = t.root };
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;

	if (duet_session_new(&so, &s) || duet_task_new(s, &to, &te) ||
	    duet_task_fileid(te, x, &f))
		_exit(2);
	for (unsigned int k = 0;; k++) {
		if (duet_task_reset_done(te, &f, 0, 0))
			_exit(3);
		for (uint64_t i = 0; i < NSET; i++)
			if (duet_task_set_done(te, &f, 2 * i + (k & 1), 1))
				_exit(4);
		if (duet_task_save(te, save))
			_exit(5);
		if (!k && write(ready, "r", 1) != 1)
			_exit(6);
	}
}

/* Which set the task holds on x: 0 (A), 1 (B), -1 (neither exactly). */
static int which_set(struct duet_task *te, const char *x)
{
	struct duet_fileid f = fid(te, x);
	int set = duet_task_check_done(te, &f, 0, 1) == 1 ? 0 : 1;

	for (uint64_t p = 0; p < 2 * NSET; p++)
		if (duet_task_check_done(te, &f, p, 1) != ((p & 1) == (uint64_t)set))
			return -1;
	return set;
}

static int count_tmp(const char *dir, const char *base, bool remove)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[600];
	int n = 0;

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, base, strlen(base)) || strncmp(de->d_name + strlen(base),
								      ".tmp-", 5))
			continue;
		n++;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (remove)
			unlink(p);
	}
	if (d)
		closedir(d);
	return n;
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (in < 0 || out < 0)
		die("copy %s: %s", from, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die("copy %s", from);
	if (n < 0)
		die("copy %s: %s", from, strerror(errno));
	close(in);
	close(out);
}

static void crash(void)
{
	char x[300], snap[KILLS][320], base[64];
	int outcome[KILLS], seen[2] = { 0, 0 }, changed = 0, left;
	pid_t last = 0;
	struct duet_session *s;
	struct duet_task *te;
	struct timespec ts;

	snprintf(x, sizeof(x), "%s/x", t.root);
	make_file(x, 1, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	rng ^= (uint64_t)ts.tv_nsec;
	printf("crash test seed %llu\n", (unsigned long long)rng);
	/* No session is open in this process while it forks. */
	for (int k = 0; k < KILLS; k++) {
		int pfd[2], st;
		char c;
		pid_t pid;

		if (pipe(pfd))
			die("pipe");
		pid = fork();
		if (pid < 0)
			die("fork");
		if (!pid) {
			close(pfd[0]);
			saver(x, pfd[1]);
		}
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1) {
			waitpid(pid, &st, 0);
			die("the saver failed (exit %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		}
		close(pfd[0]);
		/* Anywhere within a few saves. */
		usleep((useconds_t)(rnd() % 60000));
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		last = pid;
		/* What the file is now, kept to load later. */
		snprintf(snap[k], sizeof(snap[k]), "%s/snap%d", t.out, k);
		copy_file(save, snap[k]);
	}
	snprintf(base, sizeof(base), "%s", strrchr(save, '/') + 1);
	left = count_tmp(t.out, base, true);

	s = session();
	te = lt_task(s, "check", DUET_EXISTS, t.root);
	CHECK(livetest_instances_of(last) == 0, "the killed savers' tracing instances are reaped");
	for (int k = 0; k < KILLS; k++) {
		struct duet_fileid f = fid(te, x);
		int r = duet_task_load(te, snap[k]);

		CHECK(r == NSET, "after kill %d: the file loads whole (%d marks)", k, r);
		outcome[k] = which_set(te, x);
		CHECK(outcome[k] >= 0, "after kill %d: exactly one of the two sets", k);
		if (outcome[k] >= 0)
			seen[outcome[k]]++;
		changed += k && outcome[k] != outcome[k - 1];
		duet_task_reset_done(te, &f, 0, 0);
		unlink(snap[k]);
	}
	duet_task_free(te);
	lt_session_free(s);
	unlink(x);
	printf("ok %d kills during saves: always a whole file (set A %d times, B %d, "
	       "%d changes; %d temporary files left by the kills)\n", KILLS, seen[0], seen[1],
	       changed, left);
}

int main(int argc, char **argv)
{
	lt_setup(&t, "save", argc, argv);
	backend_arg = argc > 2 ? argv[2] : NULL;
	/* On the test's file system, outside the task's directory. */
	snprintf(save, sizeof(save), "%s/marks.done", t.out);
	atexit(remove_save);
	/* Skips here if no session can be made at all. */
	lt_session_free(lt_session_or_skip(NULL));

	whole_file();
	odd_names();
	identity();
	formats();
	crash();
	return lt_finish(&t);
}
