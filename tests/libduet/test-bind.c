// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Bind mounts: a directory from outside bound inside the task's
 * directory arrives with exactly its cached pages, under its new name,
 * once; a file written through a bind mount (outside) of a subdirectory
 * is reported, named by its path under the task's directory; a directory
 * of the tree bound elsewhere in it brings nothing again (its files were
 * seen already); a directory bound over the task's directory itself
 * arrives with its cached pages, once.
 */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "libduet-test.h"

static char bind[300], inside[300], again[300], over[300];

/* The binds sit on the scratch file system: undone first, also on die(). */
static void unbind(void)
{
	if (over[0])
		umount2(over, MNT_DETACH);
	if (again[0])
		umount2(again, MNT_DETACH);
	umount2(inside, MNT_DETACH);
	umount2(bind, MNT_DETACH);
}

/* No page twice in g, and the task's view of ino equals the page cache of path. */
static void once_exactly(const char *what, const struct got *g, uint64_t ino, const char *path)
{
	uint8_t bits[MAXP], res[MAXP];

	CHECK(pages(g, ino, DUET_ADDED, bits) == 0, "%s: no page reported twice", what);
	view_of(g, ino, bits);
	resident(path, res);
	CHECK(!memcmp(bits, res, MAXP) && memchr(res, 1, MAXP),
	      "%s: exactly its cached pages (%d items, %" PRIu64 " pages cached)", what,
	      items_for(g, ino), cached_pages(path));
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
		struct duet_fileid f;

		once_exactly("bind: a directory bound inside arrives with its cached pages", &g, ifo,
			     fin);
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
	/* A directory of the tree bound elsewhere in it: seen already. */
	{
		char dd[300], df[400], ov[300], of[400], ofin[400];
		uint64_t idf, iof;

		snprintf(dd, sizeof(dd), "%s/dd", t.root);
		snprintf(df, sizeof(df), "%s/f", dd);
		snprintf(again, sizeof(again), "%s/dd2", t.root);
		mkdir(dd, 0755);
		mkdir(again, 0755);
		idf = make_file(df, 5, 1);
		collect(te, &g, 500);
		if (mount(dd, again, NULL, MS_BIND, NULL))
			die("bind mount: %s", strerror(errno));
		collect(te, &g, 700);
		CHECK(pages(&g, idf, DUET_ADDED, bits) == 0 && !memchr(bits, 1, MAXP),
		      "bind inside the tree of its own directory: no ADDED again (%d items)",
		      items_for(&g, idf));

		/* A directory from outside bound over one inside (dd2): it arrives, once. */
		umount2(again, MNT_DETACH);
		snprintf(ov, sizeof(ov), "%s/ov", t.out);
		snprintf(of, sizeof(of), "%s/h", ov);
		snprintf(ofin, sizeof(ofin), "%s/h", again);
		mkdir(ov, 0755);
		iof = make_file(of, 7, 1);
		collect(te, &g, 500);
		if (mount(ov, again, NULL, MS_BIND, NULL))
			die("bind mount: %s", strerror(errno));
		collect(te, &g, 700);
		once_exactly("bind over a directory inside", &g, iof, ofin);

		/*
		 * Over the task's directory itself: the task keeps the directory
		 * it registered (held open, as a watch holds its inode), so the
		 * files it covers bring nothing again, nor those bound over it.
		 */
		umount2(again, MNT_DETACH);
		collect(te, &g, 500);
		snprintf(over, sizeof(over), "%s", t.root);
		if (mount(ov, over, NULL, MS_BIND, NULL))
			die("bind mount: %s", strerror(errno));
		collect(te, &g, 700);
		CHECK(pages(&g, idf, DUET_ADDED, bits) == 0 && !memchr(bits, 1, MAXP) &&
		      pages(&g, ifo, DUET_ADDED, bits) == 0 && !memchr(bits, 1, MAXP),
		      "bind over the task's directory: its files are not reported again");
		CHECK(items_for(&g, iof) == 0,
		      "bind over the task's directory: what covers it is not watched (%d items)",
		      items_for(&g, iof));
	}
	unbind();
	over[0] = again[0] = '\0';
	printf("ok bind mounts\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
