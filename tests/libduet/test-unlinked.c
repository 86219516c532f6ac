// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Deleted files. A task that saw a file keeps its identity (dev, ino,
 * gen) after the unlink and receives its pages' REMOVED as they leave:
 * at once for a file nobody holds open, at the close or the drop for one
 * still open (whose pages written after the unlink come and go too).
 * duet_task_path() of the deleted file is -ENOENT. Checked against
 * cachestat before the unlink, page by page.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	uint8_t bits[MAXP], had[MAXP], rem[MAXP];
	char up[300], dp[300], buf[4096], path[4096];
	struct duet_fileid fid;
	uint64_t iu, id;
	int fd;
	static struct got g;

	lt_setup(&t, "unlinked", argc, argv);
	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);

	/* Deleted while cached, not open: its eviction is the unlink. */
	snprintf(dp, sizeof(dp), "%s/deleted", t.root);
	id = make_file(dp, 8, 1);
	collect(te, &g, 400);
	view_of(&g, id, had);
	resident(dp, bits);
	CHECK(!memcmp(had, bits, MAXP) && exactly(had, 0, 8), "deleted: the task has its 8 cached pages");
	if (duet_task_fileid(te, dp, &fid) || unlink(dp))
		die("unlink %s", dp);
	collect(te, &g, 500);
	CHECK(pages(&g, id, DUET_REMOVED, rem) == 0 && !memcmp(rem, had, MAXP),
	      "deleted: REMOVED covers exactly the 8 pages the task had");
	CHECK(pages(&g, id, DUET_ADDED, bits) == 0 && exactly(bits, 0, 0), "deleted: nothing added");
	for (size_t i = 0; i < g.n; i++)
		CHECK(g.it[i].ino != id || (g.it[i].gen == fid.gen && g.it[i].dev == fid.dev),
		      "deleted: its items carry its identity (gen %llu)", (unsigned long long)fid.gen);
	CHECK(duet_task_path(te, &fid, path, sizeof(path)) == -ENOENT,
	      "deleted: duet_task_path is -ENOENT");

	snprintf(up, sizeof(up), "%s/unlinked", t.root);
	iu = make_file(up, 4, 1);
	collect(te, &g, 400);
	CHECK(pages(&g, iu, DUET_ADDED, bits) == 0 && exactly(bits, 0, 4), "unlinked: reported while it has a name");
	fd = open(up, O_RDWR);
	if (fd < 0 || unlink(up))
		die("unlink");
	memset(buf, 'u', sizeof(buf));
	for (int i = 4; i < 8; i++)
		if (pwrite(fd, buf, sizeof(buf), (off_t)i * 4096) != (ssize_t)sizeof(buf))
			die("pwrite");
	if (fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		die("drop");
	collect(te, &g, 500);
	view_of(&g, iu, bits);
	CHECK(exactly(bits, 0, 0), "unlinked but open: written and dropped, the task's view is empty");
	/*
	 * Pages 4-7 came and went: a fetch between their ADDED and their
	 * REMOVED (items come within milliseconds) tells of both, one after
	 * the other fetched together coalesces to nothing.
	 */
	CHECK(pages(&g, iu, DUET_ADDED, bits) == 0, "unlinked but open: no page added twice");
	for (int i = 0; i < MAXP; i++)
		had[i] = i < 4 || (i < 8 && bits[i]);
	CHECK(pages(&g, iu, DUET_REMOVED, rem) == 0 && !memcmp(rem, had, MAXP),
	      "unlinked but open: REMOVED for the 4 pages it had and those of 4-7 it was told of");
	for (int i = 0; i < MAXP; i++)
		CHECK(!bits[i] || (i >= 4 && i < 8), "unlinked but open: only pages 4-7 added (%d)", i);
	close(fd);
	printf("ok deleted, unlinked while open\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
