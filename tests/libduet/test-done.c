// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Done marks: duet_task_fileid() names a file by path; a file marked
 * done whole (duet_task_set_done) answers done for any of its pages
 * (duet_task_check_done), and produces no more items though its pages
 * leave the cache and are read back. Ranges that together cover a file
 * (overlapping, adjacent) make it done as a whole (count 0) up to its
 * size in pages as it is now: a file grown by a page is not, a hole is
 * not, and one truncated to what the ranges cover is again. The status
 * names the task.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	struct lt t;
	struct duet_task_status st = { .sz = sizeof(st) };
	char a[300], b[300];
	uint64_t ia, ib;
	int fd;
	static struct got g;

	lt_setup(&t, "done", argc, argv);
	snprintf(a, sizeof(a), "%s/a", t.root);
	ia = make_file(a, 16, 1);

	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	/* Drain the scan's items: only what follows is looked at. */
	collect(te, &g, 0);

	CHECK(!duet_task_fileid(te, a, &f) && f.ino == ia, "fileid of a");
	{
		/*
		 * The same file by other names: a symbolic link to it, a
		 * path through a linked directory, one with "..", a relative
		 * one.
		 * A link out of the tree names no file of the task, nor do
		 * a missing file and a dangling link.
		 */
		struct duet_fileid g2;
		char l1[340], l2[340], l3[340], l4[340], l5[340], l6[340], cwd[PATH_MAX];

		snprintf(l1, sizeof(l1), "%s/link-a", t.root);
		snprintf(l2, sizeof(l2), "%s/dirlink/a", t.root);
		snprintf(l6, sizeof(l6), "%s/sub/../a", t.root);
		snprintf(l3, sizeof(l3), "%s/dirlink", t.root);
		snprintf(l4, sizeof(l4), "%s/out", t.root);
		snprintf(l5, sizeof(l5), "%s/dangling", t.root);
		CHECK(!symlink(a, l1) && !symlink(t.root, l3) && !symlink("/etc/hostname", l4) &&
		      !symlink("nowhere", l5), "links");
		snprintf(cwd, sizeof(cwd), "%s/sub", t.root);
		CHECK(!mkdir(cwd, 0755), "mkdir sub");
		memset(&g2, 0, sizeof(g2));
		CHECK(!duet_task_fileid(te, l1, &g2) && !memcmp(&g2, &f, sizeof(f)),
		      "fileid through a link to a");
		memset(&g2, 0, sizeof(g2));
		CHECK(!duet_task_fileid(te, l2, &g2) && !memcmp(&g2, &f, sizeof(f)),
		      "fileid through a linked directory");
		memset(&g2, 0, sizeof(g2));
		CHECK(!duet_task_fileid(te, l6, &g2) && !memcmp(&g2, &f, sizeof(f)),
		      "fileid of a path with ..");
		CHECK(getcwd(cwd, sizeof(cwd)) && !chdir(t.root), "chdir to the tree");
		memset(&g2, 0, sizeof(g2));
		CHECK(!duet_task_fileid(te, "./a", &g2) && !memcmp(&g2, &f, sizeof(f)),
		      "fileid of a relative path");
		CHECK(!chdir(cwd), "chdir back");
		CHECK_EQ(duet_task_fileid(te, l4, &g2), -ENOENT);
		CHECK_EQ(duet_task_fileid(te, l5, &g2), -ENOENT);
		snprintf(l5, sizeof(l5), "%s/missing", t.root);
		CHECK_EQ(duet_task_fileid(te, l5, &g2), -ENOENT);
		unlink(l1);
		unlink(l3);
		unlink(l4);
		snprintf(l5, sizeof(l5), "%s/dangling", t.root);
		unlink(l5);
		snprintf(cwd, sizeof(cwd), "%s/sub", t.root);
		rmdir(cwd);
		printf("ok fileid by other names\n");
	}
	CHECK(!duet_task_set_done(te, &f, 0, 0), "set a done");
	CHECK(duet_task_check_done(te, &f, 3, 2) == 1, "a's pages 3-4 are done");
	drop(a);
	readall(a);
	collect(te, &g, 500);
	CHECK(items_for(&g, ia) == 0, "done file: no items (%d)", items_for(&g, ia));
	printf("ok done file\n");

	/* b, 16 pages, done by three ranges: 4-9, 0-4 (overlapping), 10-15. */
	snprintf(b, sizeof(b), "%s/b", t.root);
	ib = make_file(b, 16, 1);
	CHECK(!duet_task_fileid(te, b, &f) && f.ino == ib, "fileid of b");
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 0);
	CHECK_EQ(duet_task_set_done(te, &f, 4, 6), 0);
	CHECK_EQ(duet_task_set_done(te, &f, 0, 5), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 10), 1);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 11), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 0);	/* 10-15 are not */
	CHECK_EQ(duet_task_set_done(te, &f, 10, 6), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 16), 1);
	CHECK_EQ(duet_task_check_done(te, &f, 3, 9), 1);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 1);	/* covered: the whole file */
	/* A hole, then a range over it. */
	CHECK_EQ(duet_task_reset_done(te, &f, 7, 1), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 6, 2), 0);
	CHECK_EQ(duet_task_set_done(te, &f, 6, 3), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 1);
	/* Grown by a byte (a 17th page): no longer whole; truncated back, it is. */
	fd = open(b, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1, "append to b");
	if (fd >= 0)
		close(fd);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 0);
	CHECK(!truncate(b, 16 * 4096 - 100), "truncate b");
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 1);
	/* Another file's marks do not count, nor a mark reset as a whole. */
	CHECK_EQ(duet_task_reset_done(te, &f, 0, 0), 0);
	CHECK_EQ(duet_task_check_done(te, &f, 0, 0), 0);
	printf("ok ranges covering the whole file\n");

	CHECK_EQ(duet_task_status(te, &st), 0);
	CHECK_STR(st.name, "exists");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
