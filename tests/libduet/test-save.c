// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Saved done marks: duet_task_save() writes a task's done marks, and
 * duet_task_load() restores them in a task of a new session (one mark
 * here): the file is done again at once, and that task's registration
 * scan does not report it although its pages are cached.
 */
#include <stdlib.h>

#include "libduet-test.h"

static char save[300];

static void remove_save(void)
{
	unlink(save);
}

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	struct lt t;
	char a[300];
	uint64_t ia;
	int r;
	static struct got g;

	lt_setup(&t, "save", argc, argv);
	snprintf(a, sizeof(a), "%s/a", t.root);
	snprintf(save, sizeof(save), "/var/tmp/duet-lib-%d.done", (int)getpid());
	atexit(remove_save);
	ia = make_file(a, 16, 1);

	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	/* Drain the scan's items: only what follows is looked at. */
	collect(te, &g, 0);
	if (duet_task_fileid(te, a, &f) || duet_task_set_done(te, &f, 0, 0))
		die("cannot mark a done");
	CHECK(!duet_task_save(te, save), "save done state");
	/* a is cached when the next session's scan runs. */
	drop(a);
	readall(a);
	duet_task_free(te);
	lt_session_free(s);

	/* Saved done state resumes in a new session. */
	s = lt_session(NULL);
	te = lt_task(s, NULL, DUET_EXISTS, t.root);
	r = duet_task_load(te, save);
	CHECK(r == 1, "load: one mark restored (%d)", r);
	CHECK(!duet_task_fileid(te, a, &f) && duet_task_check_done(te, &f, 0, 0) == 1, "a is done after load");
	wait_scan(te);
	collect(te, &g, 400);
	CHECK(items_for(&g, ia) == 0, "a done: the scan does not report it (%d)", items_for(&g, ia));
	printf("ok saved done state\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
