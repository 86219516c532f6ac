// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mmap: a write through a shared mapping gives DIRTY for exactly the
 * page written, and msync a FLUSHED after it (inode-level on a stock
 * kernel, exact on a patched one); the page dirtied again after its
 * writeback is reported DIRTY again.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "libduet-test.h"

int main(int argc, char **argv)
{
	struct duet_session *s;
	struct duet_task *tv;
	struct lt t;
	uint8_t bits[MAXP];
	char mp[300];
	uint64_t im;
	int fd;
	char *map;
	static struct got g;

	lt_setup(&t, "mmap", argc, argv);
	s = lt_session_or_skip(NULL);
	tv = lt_task(s, "events", DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED, t.root);
	wait_scan(tv);

	snprintf(mp, sizeof(mp), "%s/m", t.root);
	im = make_file(mp, 8, 1);
	collect(tv, &g, 300);
	fd = open(mp, O_RDWR);
	map = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd < 0 || map == MAP_FAILED)
		die("mmap");
	for (int i = 0; i < 8; i++)
		(void)*(volatile char *)(map + i * 4096);
	map[2 * 4096] = 'X';
	if (msync(map, 8 * 4096, MS_SYNC))
		die("msync");
	collect(tv, &g, 500);
	{
		int dirty2 = 0, flushed = 0;

		for (size_t i = 0; i < g.n; i++) {
			const struct duet_item *it = &g.it[i];

			if (it->ino != im)
				continue;
			if (it->state & DUET_DIRTY)
				dirty2 += it->index <= 2 && 2 < it->index + it->count && it->count == 1;
			if (it->state & DUET_FLUSHED)
				flushed++;
		}
		CHECK(pages(&g, im, DUET_DIRTY, bits) == 0 && exactly(bits, 2, 1) && dirty2 == 1,
		      "mmap: DIRTY exactly page 2");
		CHECK(flushed >= 1, "msync: FLUSHED reported (%d items)", flushed);
	}
	/* Dirtied again after writeback: reported again. */
	map[2 * 4096] = 'Y';
	if (msync(map, 8 * 4096, MS_SYNC))
		die("msync");
	collect(tv, &g, 500);
	CHECK(pages(&g, im, DUET_DIRTY, bits) == 0 && exactly(bits, 2, 1),
	      "redirty: page 2 is DIRTY again");
	munmap(map, 8 * 4096);
	close(fd);
	printf("ok mmap+msync, redirty\n");

	duet_task_free(tv);
	lt_session_free(s);
	return lt_finish(&t);
}
