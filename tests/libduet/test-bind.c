// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Bind mounts: a directory from outside bound inside the task's
 * directory arrives with exactly its cached pages, under its new name;
 * a file written through a bind mount (outside) of a subdirectory is
 * reported, named by its path under the task's directory.
 */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "libduet-test.h"

static char bind[300], inside[300];

/* The binds sit on the scratch file system: undone first, also on die(). */
static void unbind(void)
{
	umount2(inside, MNT_DETACH);
	umount2(bind, MNT_DETACH);
}

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	uint8_t bits[MAXP];
	char sub[300], viab[400], outdir[300], f2[400], fin[400], p[4096];
	uint64_t ifb, ifo;
	static struct got g;

	lt_setup(&t, "bind", argc, argv);
	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);

	snprintf(sub, sizeof(sub), "%s/sub", t.root);
	snprintf(bind, sizeof(bind), "%s/bind", t.base);
	snprintf(outdir, sizeof(outdir), "%s/od", t.out);
	snprintf(inside, sizeof(inside), "%s/in", t.root);
	mkdir(sub, 0755);
	mkdir(bind, 0755);
	mkdir(outdir, 0755);
	snprintf(f2, sizeof(f2), "%s/f", outdir);
	ifo = make_file(f2, 2, 1);
	mkdir(inside, 0755);
	collect(te, &g, 300);
	atexit(unbind);
	if (mount(sub, bind, NULL, MS_BIND, NULL) || mount(outdir, inside, NULL, MS_BIND, NULL))
		die("bind mount: %s", strerror(errno));
	snprintf(fin, sizeof(fin), "%s/f", inside);
	/* The mount brings f under the directory, with its cached pages. */
	collect(te, &g, 700);
	{
		uint8_t res[MAXP];
		struct duet_fileid f;

		view_of(&g, ifo, bits);
		resident(fin, res);
		CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP),
		      "bind: a directory bound inside arrives with its cached pages");
		f = fileid_in(&g, ifo);
		CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, fin),
		      "bind: it is reported under its new name (%s, got %s)", fin, p);
	}
	snprintf(viab, sizeof(viab), "%s/g", bind);
	ifb = make_file(viab, 3, 0);
	collect(te, &g, 600);
	CHECK(pages(&g, ifb, DUET_ADDED, bits) == 0 && exactly(bits, 0, 3), "bind: a file written through a bind mount outside is reported");
	{
		char want[320];
		struct duet_fileid f = fileid_in(&g, ifb);

		snprintf(want, sizeof(want), "%s/g", sub);
		CHECK(!duet_task_path(te, &f, p, sizeof(p)) && !strcmp(p, want), "bind: its path is the name under the directory (%s, got %s)", want, p);
	}
	unbind();
	printf("ok bind mounts\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
