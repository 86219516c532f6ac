// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Done marks: duet_task_fileid() names a file by path; a file marked
 * done whole (duet_task_set_done) answers done for any of its pages
 * (duet_task_check_done), and produces no more items though its pages
 * leave the cache and are read back.
 */
#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	struct lt t;
	char a[300];
	uint64_t ia;
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
	CHECK(!duet_task_set_done(te, &f, 0, 0), "set a done");
	CHECK(duet_task_check_done(te, &f, 3, 2) == 1, "a's pages 3-4 are done");
	drop(a);
	readall(a);
	collect(te, &g, 500);
	CHECK(items_for(&g, ia) == 0, "done file: no items (%d)", items_for(&g, ia));
	printf("ok done file\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
