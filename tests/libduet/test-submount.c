// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A file system mounted inside the task's directory after the task
 * registered is watched: its file's pages are reported exactly, and its
 * items carry that file system's device.
 */
#include <string.h>
#include <sys/stat.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	uint8_t bits[MAXP];
	char sm[300], m2[400];
	static struct fsimg img2;	/* fsimg's cleanup at exit points at it */
	uint64_t im;
	static struct got g;

	lt_setup(&t, "submount", argc, argv);
	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);

	snprintf(sm, sizeof(sm), "%s/inner", t.root);
	mkdir(sm, 0755);
	if (!fsimg_make(&img2, t.fs, !strcmp(t.fs, "xfs") ? 320 : 128, sm)) {
		collect(te, &g, 400);
		snprintf(m2, sizeof(m2), "%s/h", sm);
		im = make_file(m2, 5, 0);
		collect(te, &g, 500);
		CHECK(pages(&g, im, DUET_ADDED, bits) == 0 && exactly(bits, 0, 5),
		      "inner file system: its file's pages are reported");
		for (size_t i = 0; i < g.n; i++)
			if (g.it[i].ino == im)
				CHECK(g.it[i].dev == img2.kdev, "inner file system: items carry its device");
		fsimg_destroy(&img2);
	} else {
		CHECK(0, "second file system");
	}
	printf("ok inner file system\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
