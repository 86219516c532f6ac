// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Inode reuse: a file created under the inode number of a just-deleted
 * one has another gen (when the file system reuses the number), and the
 * deleted file's id no longer resolves to a path, reused or not.
 */
#include <errno.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct duet_fileid fb, fn;
	struct lt t;
	char b[300], n2[300], p[4096];
	uint64_t ib, in;
	static struct got g;

	lt_setup(&t, "inode-reuse", argc, argv);
	snprintf(b, sizeof(b), "%s/b", t.root);
	snprintf(n2, sizeof(n2), "%s/n", t.root);

	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);
	/* b is made while the task exists, and its items fetched. */
	ib = make_file(b, 8, 0);
	collect(te, &g, 500);

	/* Inode reuse: another file under a reused number has another gen. */
	duet_task_fileid(te, b, &fb);
	unlink(b);
	in = make_file(n2, 2, 1);
	duet_task_fileid(te, n2, &fn);
	if (in == ib)
		CHECK(fn.gen != fb.gen, "reused inode %" PRIu64 " has a new gen", in);
	/* Reused number (new gen) or not: the deleted file has no path. */
	CHECK(duet_task_path(te, &fb, p, sizeof(p)) == -ENOENT, "the deleted file's id no longer resolves");
	printf("ok inode reuse (%s)\n", in == ib ? "number reused" : "number not reused here");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
