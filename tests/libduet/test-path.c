// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Paths: duet_task_path() gives a file's name under the task's
 * directory, so a file whose only name inside is a hard link (the other
 * lies outside) is named by that link; registering a directory that
 * does not exist fails with -ENOENT.
 */
#include <errno.h>
#include <string.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_task_opts bad = { .sz = sizeof(bad), .mask = DUET_EXISTS,
				      .path = "/nonexistent/duet" };
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid f;
	struct lt t;
	char e[300], e2[300], p[4096];
	uint64_t ie;
	static struct got g;

	lt_setup(&t, "path", argc, argv);
	snprintf(e, sizeof(e), "%s/e", t.out);
	snprintf(e2, sizeof(e2), "%s/e-link", t.root);
	ie = make_file(e, 4, 1);
	if (link(e, e2))
		die("link");

	s = lt_session_or_skip(NULL);
	CHECK(duet_task_new(s, &bad, &te) == -ENOENT, "a missing path is -ENOENT");
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	collect(te, &g, 400);
	f = fileid_in(&g, ie);
	CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, e2), "path of a hard link is the name under the directory (%s)", p);
	printf("ok path of a hard link\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
