// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Live test on loop-mounted file systems: the consumer core (tracefs
 * instance, per-CPU readers, decoder, path index) against the running
 * kernel, asserting exactly which pages of which files are reported.
 * Needs root and tracefs; exits 77 (skip) with the reason otherwise.
 *
 * usage: live-ext4 [FSTYPE [BACKEND]]   (ext4 by default; xfs and btrfs
 * work too; BACKEND tracefs by default, or perf through its plugin)
 * DUET_READER=mmap or read: through that ring-buffer reader, which must
 * be in force (a kernel before 6.10 skips the mapped one).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "fsimg.h"
#include "index.h"
#include "source.h"
#include "livetest.h"


static enum dc_backend backend = DC_BACKEND_TRACEFS;

struct session {
	struct dc_source *l;
	struct dc_index *x;
	struct dc_recbuf raw;	/* everything the kernel filter let through */
	struct dc_recbuf hit;	/* records under the roots */
	enum dc_flush_sem flush;
	uint64_t lost;
};

static char root[512], sibling[512], sub[512];


static void session_start(struct session *s)
{
	struct dc_source_opts o = { .sz = sizeof(o), .backend = backend };
	struct dc_mounts m = { 0 };
	struct dc_bdi *bdis = NULL;
	uint32_t *devs = NULL;
	size_t nd = 0, nb = 0;
	char *roots[] = { root };
	int r;

	memset(s, 0, sizeof(*s));
	if (dc_mounts_load(&m) || dc_devices_for_paths(&m, roots, 1, &devs, &nd) ||
	    dc_bdis_for_devices(&m, devs, nd, &bdis, &nb))
		die("cannot read mounts");
	o.devs = devs;
	o.ndevs = nd;
	o.bdis = bdis;
	o.nbdis = nb;
	r = dc_index_new(roots, 1, &s->x);
	if (r)
		die("index: %s", strerror(-r));
	r = dc_source_open(&o, &s->l);
	if (r)
		die("dc_source_open (%s): %s", dc_backend_name(backend), strerror(-r));
	/* DUET_READER=mmap or read: the test runs through that reader or not at all. */
	if (dc_source_live(s->l) && (r = livetest_reader(dc_source_live(s->l), NULL))) {
		dc_source_free(s->l);
		dc_index_free(s->x);
		fsimg_cleanup_all();
		exit(r);
	}
	r = dc_source_start(s->l);
	if (r)
		die("dc_source_start: %s", strerror(-r));
	s->flush = dc_source_flush_sem(s->l);
	dc_mounts_free(&m);
	free(devs);
	free(bdis);
}

static int keep_raw(void *ud, const struct dc_record *rec, size_t n)
{
	struct dc_recbuf *b = ud;

	if (dc_recbuf_reserve(b, n))
		return -ENOMEM;
	memcpy(b->rec + b->n, rec, n * sizeof(*rec));
	b->n += n;
	return 0;
}

static void session_stop(struct session *s)
{
	dc_source_stop(s->l);
	while (!dc_source_finished(s->l)) {
		usleep(10000);
		if (dc_source_dispatch(s->l, keep_raw, &s->raw) < 0)
			die("fetch");
	}
	for (size_t i = 0; i < s->raw.n; i++) {
		const struct dc_record *r = &s->raw.rec[i];

		if (r->type == DC_LOST) {
			s->lost += r->count;
			continue;
		}
		if (!dc_index_lookup(s->x, r->dev, r->ino, NULL))
			continue;
		if (dc_recbuf_reserve(&s->hit, 1))
			die("oom");
		s->hit.rec[s->hit.n++] = *r;
	}
	dc_source_free(s->l);
	dc_index_free(s->x);
	s->l = NULL;
	s->x = NULL;
}

static void session_free(struct session *s)
{
	dc_recbuf_free(&s->raw);
	dc_recbuf_free(&s->hit);
}

/*
 * Pages of ino covered by records of type: sets bits, returns how many
 * pages were covered twice (must be 0: each transition is reported once).
 */
static unsigned int pages_of(const struct dc_recbuf *b, uint64_t ino, unsigned int type,
			     uint8_t *bits, size_t nbits, unsigned int *records)
{
	unsigned int dup = 0;

	memset(bits, 0, nbits);
	*records = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct dc_record *r = &b->rec[i];

		if (r->ino != ino || r->type != type)
			continue;
		(*records)++;
		for (uint64_t p = r->index; p < r->index + r->count; p++) {
			if (p >= nbits) {
				dup++;	/* out of range counts as wrong */
				continue;
			}
			if (bits[p])
				dup++;
			bits[p] = 1;
		}
	}
	return dup;
}

/* Exactly pages [first, first + n) of 0..nbits-1 are set. */
static int exactly(const uint8_t *bits, size_t nbits, uint64_t first, uint64_t n)
{
	for (size_t p = 0; p < nbits; p++)
		if (bits[p] != (p >= first && p < first + n))
			return 0;
	return 1;
}

/*
 * Which of the first 256 pages of fd are resident, taken once the session
 * traces: background reclaim (this VM's host reclaims now and then) may
 * take pages between cases, and those are not the session's to report.
 */
static void resident(int fd, uint8_t *bits, size_t nbits)
{
	unsigned char vec[256];
	struct stat st;
	void *m;

	memset(bits, 0, nbits);
	if (fstat(fd, &st) || st.st_size < 256 * 4096)
		die("resident: file too small");
	m = mmap(NULL, 256 * 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || mincore(m, 256 * 4096, vec))
		die("mincore");
	for (int i = 0; i < 256; i++)
		bits[i] = vec[i] & 1;
	munmap(m, 256 * 4096);
}

static int same(const uint8_t *a, const uint8_t *b, size_t n)
{
	return !memcmp(a, b, n);
}

static void write_pages(const char *path, unsigned int npages, int *fdp)
{
	char buf[4096];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	for (unsigned int i = 0; i < npages; i++) {
		memset(buf, 'a' + (int)(i % 26), sizeof(buf));
		if (pwrite(fd, buf, sizeof(buf), (off_t)i * 4096) != (ssize_t)sizeof(buf))
			die("pwrite: %s", strerror(errno));
	}
	*fdp = fd;
}

static uint64_t ino_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		die("fstat");
	return st.st_ino;
}

#define NB 1024

static unsigned int failures_before;

/* TAP-like progress: one line per case, "not ok" when a check failed. */
static void section(const char *id, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s: ", check_failures > failures_before ? "not ok" : "ok", id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	failures_before = check_failures;
}

int main(int argc, char **argv)
{
	const char *fstype = argc > 1 ? argv[1] : "ext4";
	struct fsimg img, img2;
	struct session s;
	uint8_t bits[NB], res[NB];
	unsigned int recs, dup;
	uint64_t ino;
	char path[600], base[256];
	int fd, r;

	livetest_require();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && dc_backend_parse(argv[2], &backend)) {
		fprintf(stderr, "live-fs: unknown backend %s (tracefs or perf)\n", argv[2]);
		return 99;
	}
	if (!dc_source_available(backend)) {
		printf("SKIP: no %s backend here (perf needs the plugin built with libperf: "
		       "scripts/setup; DUET_PERF_PLUGIN)\n", dc_backend_name(backend));
		return 77;
	}
	snprintf(base, sizeof(base), "/tmp/duet-live-%d", (int)getpid());
	mkdir(base, 0755);
	r = fsimg_make(&img, fstype, !strcmp(fstype, "xfs") ? 320 : 256, base);
	if (r) {
		rmdir(base);
		printf("SKIP: cannot make a %s loop file system\n", fstype);
		return TEST_SKIP;
	}
	snprintf(root, sizeof(root), "%s/w", base);
	snprintf(sibling, sizeof(sibling), "%s/wx", base);
	snprintf(sub, sizeof(sub), "%s/w/sub", base);
	mkdir(root, 0755);
	mkdir(sibling, 0755);
	mkdir(sub, 0755);
	snprintf(path, sizeof(path), "%s/f", root);

	/* A: 256 pages written with 4 KiB writes: DIRTY and ADDED for 0-255. */
	session_start(&s);
	write_pages(path, 256, &fd);
	ino = ino_of(fd);
	session_stop(&s);
	dup = pages_of(&s.hit, ino, DC_DIRTY, bits, NB, &recs);
	CHECK(dup == 0 && exactly(bits, NB, 0, 256), "write: DIRTY must be exactly pages 0-255 once (dups %u, records %u)", dup, recs);
	dup = pages_of(&s.hit, ino, DC_ADDED, bits, NB, &recs);
	CHECK(dup == 0 && exactly(bits, NB, 0, 256), "write: ADDED must be exactly pages 0-255 once (dups %u)", dup);
	dup = pages_of(&s.hit, ino, DC_REMOVED, bits, NB, &recs);
	CHECK(recs == 0, "write: no REMOVED (got %u records)", recs);
	CHECK(s.lost == 0, "write: nothing lost (lost %" PRIu64 ")", s.lost);
	section("A", "256 x 4 KiB writes -> DIRTY and ADDED exactly 0-255\n");
	session_free(&s);

	/* B: fsync reports FLUSHED at the granularity the kernel allows. */
	session_start(&s);
	if (fsync(fd))
		die("fsync");
	session_stop(&s);
	dup = pages_of(&s.hit, ino, DC_FLUSHED, bits, NB, &recs);
	if (s.flush == DC_FLUSH_EXACT) {
		CHECK(dup == 0 && exactly(bits, NB, 0, 256), "fsync: FLUSHED exactly 0-255 on a patched kernel");
	} else {
		unsigned int inode_level = 0, others = 0;

		for (size_t i = 0; i < s.hit.n; i++) {
			if (s.hit.rec[i].type != DC_FLUSHED)
				continue;
			if (s.hit.rec[i].ino != ino)
				others++;
			else if (s.hit.rec[i].flags & DC_REC_INODE_LEVEL && !s.hit.rec[i].count)
				inode_level++;
		}
		CHECK(recs >= 1 && inode_level == recs, "fsync: stock kernel gives inode-level FLUSHED for the file (records %u, inode-level %u)", recs, inode_level);
		CHECK(others == 0, "fsync: no FLUSHED for other files (%u)", others);
	}
	dup = pages_of(&s.hit, ino, DC_DIRTY, bits, NB, &recs);
	CHECK(recs == 0, "fsync: no DIRTY (%u)", recs);
	section("B", "fsync -> FLUSHED (%s)\n", s.flush == DC_FLUSH_EXACT ? "exact" : "inode-level");
	session_free(&s);

	/* C: posix_fadvise(DONTNEED) removes exactly those pages. */
	session_start(&s);
	resident(fd, res, NB);
	r = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	session_stop(&s);
	CHECK(!r, "fadvise: %s", strerror(r));
	dup = pages_of(&s.hit, ino, DC_REMOVED, bits, NB, &recs);
	CHECK(dup == 0 && same(bits, res, NB), "fadvise: REMOVED exactly the resident pages of 0-255 (dups %u, records %u)", dup, recs);
	section("C", "fadvise DONTNEED -> REMOVED exactly 0-255\n");
	session_free(&s);

	/* D: reading back adds exactly 0-255, however the folios are sized. */
	session_start(&s);
	resident(fd, res, NB);
	for (int i = 0; i < 256; i++)
		res[i] = !res[i];	/* expected: the pages not yet cached */
	{
		char buf[65536];
		ssize_t n;
		off_t off = 0;

		while ((n = pread(fd, buf, sizeof(buf), off)) > 0)
			off += n;
	}
	session_stop(&s);
	dup = pages_of(&s.hit, ino, DC_ADDED, bits, NB, &recs);
	CHECK(dup == 0 && same(bits, res, NB), "read: ADDED exactly the pages of 0-255 not cached before (dups %u, records %u)", dup, recs);
	section("D", "read back -> ADDED exactly 0-255 in %u folios\n", recs);
	session_free(&s);

	/* E: truncating to 0 removes them. */
	session_start(&s);
	resident(fd, res, NB);
	if (ftruncate(fd, 0))
		die("ftruncate");
	session_stop(&s);
	dup = pages_of(&s.hit, ino, DC_REMOVED, bits, NB, &recs);
	CHECK(dup == 0 && same(bits, res, NB), "truncate: REMOVED exactly the resident pages of 0-255 (dups %u)", dup);
	section("E", "truncate -> REMOVED exactly 0-255\n");
	session_free(&s);

	/* F: a write through mmap dirties exactly the touched pages. */
	{
		char *map;

		close(fd);
		write_pages(path, 16, &fd);
		if (fsync(fd))
			die("fsync");
		map = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			die("mmap");
		/* Fault the pages in read-only first: the write is then a mkwrite. */
		for (int i = 0; i < 16; i++)
			(void)*(volatile char *)(map + i * 4096);
		session_start(&s);
		map[3 * 4096 + 5] = 'X';
		map[7 * 4096] = 'Y';
		if (msync(map, 16 * 4096, MS_SYNC))
			die("msync");
		session_stop(&s);
		munmap(map, 16 * 4096);
		dup = pages_of(&s.hit, ino, DC_DIRTY, bits, NB, &recs);
		CHECK(dup == 0 && bits[3] && bits[7] && recs == 2, "mmap: DIRTY exactly pages 3 and 7 (records %u)", recs);
		dup = pages_of(&s.hit, ino, DC_FLUSHED, bits, NB, &recs);
		CHECK(recs >= 1, "mmap+msync: FLUSHED reported (%u)", recs);
		{
			uint64_t last_dirty = 0, first_flush = UINT64_MAX;

			for (size_t i = 0; i < s.hit.n; i++) {
				const struct dc_record *x = &s.hit.rec[i];

				if (x->ino == ino && x->type == DC_DIRTY && x->ts > last_dirty)
					last_dirty = x->ts;
				if (x->ino == ino && x->type == DC_FLUSHED && x->ts < first_flush)
					first_flush = x->ts;
			}
			CHECK(first_flush > last_dirty, "mmap: FLUSHED comes after DIRTY");
		}
		section("F", "mmap write -> DIRTY pages 3 and 7, msync -> FLUSHED\n");
		session_free(&s);
	}
	close(fd);

	/* G: a file outside the root (in a sibling with a common prefix) gives nothing. */
	{
		char opath[600];
		uint64_t oino;
		size_t raw = 0;

		snprintf(opath, sizeof(opath), "%s/g", sibling);
		session_start(&s);
		write_pages(opath, 16, &fd);
		oino = ino_of(fd);
		close(fd);
		session_stop(&s);
		for (size_t i = 0; i < s.raw.n; i++)
			raw += s.raw.rec[i].ino == oino;
		pages_of(&s.hit, oino, DC_DIRTY, bits, NB, &recs);
		CHECK(recs == 0, "outside: no records for %s (got %u)", opath, recs);
		pages_of(&s.hit, oino, DC_ADDED, bits, NB, &recs);
		CHECK(recs == 0, "outside: no ADDED for %s (got %u)", opath, recs);
		CHECK(raw >= 32, "outside: the kernel did report the sibling's pages (%zu), the path filter removed them", raw);
		section("G", "%s is not under %s\n", opath, root);
		session_free(&s);
	}

	/* H: a second file system mounted inside the root is watched too. */
	r = fsimg_make(&img2, fstype, !strcmp(fstype, "xfs") ? 320 : 128, sub);
	CHECK(!r, "second file system");
	if (!r) {
		char spath[600];
		size_t other_dev = 0;

		snprintf(spath, sizeof(spath), "%s/h", sub);
		session_start(&s);
		write_pages(spath, 16, &fd);
		ino = ino_of(fd);
		close(fd);
		session_stop(&s);
		dup = pages_of(&s.hit, ino, DC_DIRTY, bits, NB, &recs);
		for (size_t i = 0; i < s.hit.n; i++)
			if (s.hit.rec[i].ino == ino && s.hit.rec[i].dev != img2.kdev)
				other_dev++;
		CHECK(dup == 0 && exactly(bits, NB, 0, 16), "submount: DIRTY exactly 0-15 on the inner file system (records %u)", recs);
		CHECK(other_dev == 0, "submount: records carry the inner device");
		section("H", "file system mounted at %s is watched\n", sub);
		session_free(&s);
		fsimg_destroy(&img2);
	}

	fsimg_destroy(&img);
	rmdir(base);
	return check_exit(fstype);
}
