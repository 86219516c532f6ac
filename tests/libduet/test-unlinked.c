// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * An unlinked file that is still open has no name under the directory:
 * reported while it has a name, it stops being reported once unlinked,
 * though it is written and its pages dropped (decided and documented in
 * docs/libduet-design.md).
 */
#include <fcntl.h>
#include <string.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *te;
	struct lt t;
	uint8_t bits[MAXP];
	char up[300], buf[4096];
	uint64_t iu;
	int fd;
	static struct got g;

	lt_setup(&t, "unlinked", argc, argv);
	s = lt_session_or_skip(NULL);
	te = lt_task(s, "exists", DUET_EXISTS, t.root);
	wait_scan(te);

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
	CHECK(items_for(&g, iu) == 0, "unlinked but open: no more items (%d)", items_for(&g, iu));
	close(fd);
	printf("ok unlinked while open\n");

	duet_task_free(te);
	lt_session_free(s);
	return lt_finish(&t);
}
