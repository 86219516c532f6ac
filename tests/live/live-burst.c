// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The drop_caches burst at the default buffer size: 1 GiB of a file
 * written with 4 KiB writes (order-0 folios) is cached, then all caches
 * are dropped while the consumer runs. Every one of the 262144 pages must
 * be reported REMOVED (drop_caches leaves a few pages it cannot isolate:
 * exactly the pages that mincore() shows left the cache must be reported,
 * and nothing else), and nothing may be lost. Needs root; exits 77
 * otherwise.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "fsimg.h"
#include "live.h"
#include "livetest.h"

#define MIB 1024u
#define NPAGES (MIB * 256u)

int main(void)
{
	struct dc_live_opts o = { .sz = sizeof(o) };
	const struct dc_source_stats *st;
	struct dc_recbuf recs = { 0 };
	struct dc_mounts m = { 0 };
	uint32_t *devs = NULL;
	size_t nd = 0;
	struct fsimg img;
	uint64_t lost = 0, removed = 0, ino;
	char base[128], path[256], *roots[1], *buf;
	struct dc_live *l;
	struct stat sb;
	uint8_t *seen, *before, *after;
	uint64_t left = 0;
	void *map;
	unsigned int wrong = 0;
	int fd, mfd, r;

	livetest_require();
	snprintf(base, sizeof(base), "/tmp/duet-burst-%d", (int)getpid());
	mkdir(base, 0755);
	if (fsimg_make(&img, "ext4", MIB + 400, base)) {
		rmdir(base);
		printf("SKIP: no loop ext4\n");
		return TEST_SKIP;
	}
	snprintf(path, sizeof(path), "%s/f", base);
	buf = malloc(4096);
	seen = calloc(NPAGES, 1);
	memset(buf, 'b', 4096);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (unsigned int i = 0; i < NPAGES; i++)
		if (write(fd, buf, 4096) != 4096)
			die("write %s", path);
	fsync(fd);
	fstat(fd, &sb);
	ino = sb.st_ino;
	close(fd);
	/* mincore() reports residency without faulting anything in. */
	mfd = open(path, O_RDONLY);
	map = mmap(NULL, (size_t)NPAGES * 4096, PROT_READ, MAP_SHARED, mfd, 0);
	before = calloc(NPAGES, 1);
	after = calloc(NPAGES, 1);
	if (map == MAP_FAILED || !before || !after)
		die("mmap %s", path);

	roots[0] = base;
	if (dc_mounts_load(&m) || dc_devices_for_paths(&m, roots, 1, &devs, &nd))
		die("mounts");
	o.devs = devs;
	o.ndevs = nd;
	o.types = DC_REMOVED;
	r = dc_live_open(&o, &l);
	if (!r)
		r = dc_live_start(l);
	if (r)
		die("live: %s", strerror(-r));
	/*
	 * Residency is taken once tracing is on: a page that background
	 * reclaim takes after this is reported too (one taken before is not
	 * the consumer's to see; this VM's host reclaims now and then).
	 */
	if (mincore(map, (size_t)NPAGES * 4096, before))
		die("mincore");
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "1", 1) != 1)
		die("drop_caches");
	close(fd);
	dc_live_stop(l);
	if (mincore(map, (size_t)NPAGES * 4096, after))
		die("mincore");
	while (!dc_live_finished(l)) {
		size_t n0 = recs.n;

		if (dc_live_fetch(l, &recs) < 0)
			die("fetch");
		/* Keep only what this test looks at: the burst is large. */
		for (size_t i = n0; i < recs.n; i++) {
			const struct dc_record *x = &recs.rec[i];

			if (x->type == DC_LOST)
				lost += x->count;
			else if (x->ino == ino && x->dev == img.kdev)
				for (uint64_t p = x->index; p < x->index + x->count && p < NPAGES; p++) {
					removed += !seen[p];
					seen[p] = 1;
				}
		}
		recs.n = 0;
		usleep(1000);
	}
	dc_live_stats(l, &st);
	printf("REMOVED pages of the file %" PRIu64 " of %u; events decoded %" PRIu64
	       "; lost in pages %" PRIu64 ", overrun %" PRIu64 ", dropped %" PRIu64 "\n",
	       removed, NPAGES, st->total.events, lost, st->total.overrun, st->total.dropped);
	for (unsigned int p = 0; p < NPAGES; p++) {
		int gone = (before[p] & 1) && !(after[p] & 1);

		left += after[p] & 1;
		/* The first ten wrong pages are named; all are counted. */
		if (seen[p] != gone && wrong++ < 10)
			fprintf(stderr, "page %u: reported %d, left the cache %d\n", p, seen[p], gone);
	}
	CHECK(wrong == 0, "%u pages reported REMOVED or not against what left the cache", wrong);
	printf("pages still cached after drop_caches (per mincore): %" PRIu64 "\n", left);
	CHECK(removed >= NPAGES - NPAGES / 10, "the burst was too small: %" PRIu64 " pages", removed);
	CHECK(!lost && !st->total.overrun && !st->total.dropped, "events were lost during the burst");
	dc_live_free(l);
	dc_recbuf_free(&recs);
	dc_mounts_free(&m);
	free(devs);
	free(buf);
	free(seen);
	free(before);
	free(after);
	munmap(map, (size_t)NPAGES * 4096);
	close(mfd);
	fsimg_destroy(&img);
	rmdir(base);
	printf("%s\n", check_failures ? "FAILED" : "ok: 1 GiB drop_caches burst read with 0 lost events");
	return check_exit("live-burst");
}
