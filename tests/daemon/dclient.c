// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dclient: a libduet test client for the daemon tests (tests/daemon).
 *
 * Registers one task per DIR in one session (daemon mode unless -l),
 * fetches items and keeps each task's view of the page cache: per
 * (dev, ino, gen), the pages it believes cached (EXISTS) and dirty
 * (MODIFIED). It counts LOST items (the view is dropped: a resync
 * follows) and redundant items: an item that does not change the view
 * (ADDED of a page already in it, REMOVED of a page not in it, DIRTY of a
 * dirty page, FLUSHED of a clean one), i.e. a duplicate.
 *
 * SIGUSR1: drain (fetch until nothing is pending, every scan is done and
 * nothing arrives for QUIET ms), then write each task's view to OUT (one
 * task) or OUT.I (task I, from 0), through a temporary file and rename.
 * SIGTERM, SIGINT: the same, then exit 0. The dump is
 *
 *   # dump=N task=NAME dir=DIR lost=L redundant=R items=I pages=P
 *   #   watched=W reconnects=C modified=M done=D doneitems=E xmarks=X
 *   #   preitems=PI prewatched=PW   (one line)
 *   DEV INO RANGES gen=G PATH
 *
 * PI and PW are I and W when the signal was read, before the drain's first
 * fetch: a test that changes something, then signals, knows that every
 * item counted after them came from a fetch that began after its change.
 *
 * DEV in the kernel's encoding (major << 20 | minor), RANGES as
 * "a-b,c-d" (inclusive page indexes), sorted by DEV and INO; PATH is the
 * task's name for the file ("?" if it has none). tests/daemon/dresident
 * prints the page cache in the same form (the first three fields).
 *
 * Options:
 *   -l            in-process session (DUET_SESSION_LOCAL): the reference
 *   -D            daemon mode even as root (DUET_SESSION_DAEMON)
 *   -s SOCKET     duetd's socket (else DUET_SOCKET, else the default)
 *   -b KB         per-CPU ring buffer of a local session
 *   -m MASK       event mask, numeric (default EXISTS|MODIFIED = 0x30)
 *   -o OUT        dump file (prefix with several DIRs); required
 *   -q MS         quiet time of a drain (default 1000)
 *   -L MS         the tasks' latency_ms (default 0: the session's)
 *   -w FILE       watch list: lines "DEV INO"; items for them are counted
 *   -k FILE       mark FILE done (whole file) in task 0 after registering;
 *                 the dump says whether check_done still holds (done=) and
 *                 how many items named it since (doneitems=)
 *   -r FILE       created once every task is registered and its first scan
 *                 has been drained
 *   -X LO-HI      mark done (whole file, gen 0) every inode number LO..HI
 *                 of task 0's device, as a hostile client would; the dump
 *                 says how many marks were accepted (xmarks=)
 *   -S FILE       then save task 0's done marks to FILE (duet_task_save)
 * Environment: DCLIENT_TRACE (any value) logs each item on stderr with
 * the CLOCK_MONOTONIC time in ms, for a failing test's log.
 * Exit: 0, 1 on an error (message on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <roaring/roaring.h>
#include <uthash.h>

#include <duet/duet.h>

#define MAX_TASKS 64
#define BATCH 512

struct fkey {
	uint32_t dev;
	uint64_t ino, gen;
};

struct file {
	struct fkey k;
	roaring_bitmap_t *exists, *modified;
	UT_hash_handle hh;
};

struct ctask {
	struct duet_task *t;
	const char *dir;
	char name[64];
	struct file *files;
	uint64_t lost, redundant, items, pages, watched, done_items;
	uint64_t pre_items, pre_watched;	/* items, watched at the last SIGUSR1 */
};

static struct {
	struct duet_session *s;
	struct ctask tasks[MAX_TASKS];
	int ntasks;
	const char *out;
	int quiet_ms;
	unsigned int latency_ms;	/* -L: the tasks' latency_ms */
	uint32_t mask;
	struct fkey *watch;
	size_t nwatch;
	bool have_done;
	struct duet_fileid done;
	unsigned int dumps;
	bool trace;		/* DCLIENT_TRACE set: each item on stderr, with its time */
	int sfd;
	bool stop;
	uint64_t xmarks;
} c = { .quiet_ms = 1000, .mask = DUET_EXISTS | DUET_MODIFIED };

static void fail(const char *what, int err)
{
	fprintf(stderr, "dclient: %s: %s\n", what, duet_strerror(err));
	exit(1);
}

static struct file *file_get(struct ctask *t, const struct duet_item *it, bool create)
{
	struct fkey k = { 0 };
	struct file *f;

	k.dev = it->dev;
	k.ino = it->ino;
	k.gen = it->gen;
	HASH_FIND(hh, t->files, &k, sizeof(k), f);
	if (f || !create)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		exit(1);
	f->k = k;
	f->exists = roaring_bitmap_create();
	f->modified = roaring_bitmap_create();
	HASH_ADD(hh, t->files, k, sizeof(k), f);
	return f;
}

static void view_drop(struct ctask *t)
{
	struct file *f, *tmp;

	HASH_ITER(hh, t->files, f, tmp) {
		HASH_DEL(t->files, f);
		roaring_bitmap_free(f->exists);
		roaring_bitmap_free(f->modified);
		free(f);
	}
}

static bool watched(const struct duet_item *it)
{
	for (size_t i = 0; i < c.nwatch; i++)
		if (c.watch[i].dev == it->dev && c.watch[i].ino == it->ino)
			return true;
	return false;
}

/* Whether every page of [lo, hi) is (set) or is not (!set) in bm. */
static bool all_flip(const roaring_bitmap_t *bm, uint64_t lo, uint64_t hi, bool set)
{
	for (uint64_t i = lo; i < hi; i++)
		if (roaring_bitmap_contains(bm, (uint32_t)i) == set)
			return false;
	return true;
}

static void put(roaring_bitmap_t *bm, uint64_t lo, uint64_t hi, bool set)
{
	if (set)
		roaring_bitmap_add_range(bm, lo, hi);
	else
		roaring_bitmap_remove_range(bm, lo, hi);
}

/*
 * Apply one item (its state may combine an EXISTS change and a MODIFIED
 * change, e.g. ADDED|DIRTY from a scan); true if every part of it changed
 * the view. A page that leaves the cache is no longer dirty either.
 */
static bool apply(struct ctask *t, const struct duet_item *it)
{
	struct file *f = file_get(t, it, true);
	uint64_t lo = it->index, hi = it->index + it->count;
	uint32_t st = it->state;
	bool flips = true;

	if (hi > UINT32_MAX || !it->count || !st || (st & ~0xfu) ||
	    (st & DUET_ADDED && st & DUET_REMOVED) || (st & DUET_DIRTY && st & DUET_FLUSHED)) {
		fprintf(stderr, "dclient: bad item: ino %" PRIu64 " index %" PRIu64 " count %"
			PRIu64 " state %#x\n", it->ino, it->index, it->count, st);
		exit(1);
	}
	if (st & (DUET_DIRTY | DUET_FLUSHED)) {
		bool set = st & DUET_DIRTY;

		flips &= all_flip(f->modified, lo, hi, set);
		put(f->modified, lo, hi, set);
	}
	if (st & (DUET_ADDED | DUET_REMOVED)) {
		bool set = st & DUET_ADDED;

		flips &= all_flip(f->exists, lo, hi, set);
		put(f->exists, lo, hi, set);
		if (!set)
			put(f->modified, lo, hi, false);
	}
	return flips;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fetch_task(struct ctask *t)
{
	struct duet_item it[BATCH];
	int n = duet_task_fetch(t->t, it, BATCH);

	if (n < 0)
		fail("fetch", n);
	for (int i = 0; i < n; i++) {
		if (it[i].flags & DUET_ITEM_LOST) {
			t->lost++;
			view_drop(t);
			continue;
		}
		t->items++;
		t->pages += it[i].count;
		if (c.nwatch && watched(&it[i]))
			t->watched++;
		if (c.trace)
			fprintf(stderr, "dclient: %" PRIu64 " ms %s: ino %" PRIu64 " pages %"
				PRIu64 "+%" PRIu64 " state %#x%s\n", now_ms(), t->dir, it[i].ino,
				it[i].index, it[i].count, it[i].state,
				c.nwatch && watched(&it[i]) ? " watched" : "");
		if (c.have_done && it[i].dev == c.done.dev && it[i].ino == c.done.ino &&
		    it[i].gen == c.done.gen)
			t->done_items++;
		if (!apply(t, &it[i])) {
			t->redundant++;
			fprintf(stderr, "dclient: %s: redundant item: ino %" PRIu64 " gen %" PRIu64
				" pages %" PRIu64 "+%" PRIu64 " state %#x flags %#x\n", t->dir,
				it[i].ino, it[i].gen, it[i].index, it[i].count, it[i].state,
				it[i].flags);
		}
	}
	return n;
}


static void handle_signal(void)
{
	if (c.sfd < 0)
		return;
	struct signalfd_siginfo si;

	while (read(c.sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			c.dumps++;
			for (int i = 0; i < c.ntasks; i++) {
				c.tasks[i].pre_items = c.tasks[i].items;
				c.tasks[i].pre_watched = c.tasks[i].watched;
			}
		} else
			c.stop = true;
	}
}

/* Wait up to ms for items (or a signal); fetch what is there. Items fetched. */
static int step(int ms)
{
	struct pollfd p[MAX_TASKS + 1];
	int got = 0;

	for (int i = 0; i < c.ntasks; i++)
		p[i] = (struct pollfd){ .fd = duet_task_fd(c.tasks[i].t), .events = POLLIN };
	p[c.ntasks] = (struct pollfd){ .fd = c.sfd, .events = POLLIN };
	if (poll(p, (nfds_t)c.ntasks + 1, ms) < 0 && errno != EINTR) {
		perror("dclient: poll");
		exit(1);
	}
	if (p[c.ntasks].revents)
		handle_signal();
	for (int i = 0; i < c.ntasks; i++)
		if (p[i].revents)
			while (fetch_task(&c.tasks[i]) > 0)
				got++;
	return got;
}

static bool scans_done(void)
{
	for (int i = 0; i < c.ntasks; i++) {
		struct duet_task_status st = { .sz = sizeof(st) };
		int r = duet_task_status(c.tasks[i].t, &st);

		if (r == -ECONNREFUSED || r == -ECONNRESET)
			return false;	/* the daemon is away: wait for it */
		if (r)
			fail("status", r);
		if (st.pending || st.scan_done < st.scan_files)
			return false;
	}
	return true;
}

/* Fetch until every task is quiet for quiet_ms and its scans are done. */
static void drain(void)
{
	for (;;) {
		uint64_t start = now_ms();
		bool quiet = true;

		for (int i = 0; i < c.ntasks; i++)
			while (fetch_task(&c.tasks[i]) > 0)
				;
		while (now_ms() - start < (uint64_t)c.quiet_ms)
			if (step(c.quiet_ms / 4) > 0)
				quiet = false;
		if (quiet && scans_done())
			return;
	}
}

static int cmp_file(const void *a, const void *b)
{
	const struct file *x = *(struct file *const *)a, *y = *(struct file *const *)b;

	if (x->k.dev != y->k.dev)
		return x->k.dev < y->k.dev ? -1 : 1;
	if (x->k.ino != y->k.ino)
		return x->k.ino < y->k.ino ? -1 : 1;
	return x->k.gen < y->k.gen ? -1 : x->k.gen > y->k.gen;
}

struct ranges {
	FILE *o;
	bool have, first;
	uint32_t lo, hi;
};

static void ranges_flush(struct ranges *r)
{
	if (r->have)
		fprintf(r->o, "%s%u-%u", r->first ? "" : ",", r->lo, r->hi);
	r->first = false;
}

static bool range_add(uint32_t v, void *ud)
{
	struct ranges *r = ud;

	if (r->have && v == r->hi + 1) {
		r->hi = v;
		return true;
	}
	ranges_flush(r);
	r->first = !r->have;
	r->lo = r->hi = v;
	r->have = true;
	return true;
}

static void print_ranges(FILE *o, const roaring_bitmap_t *bm)
{
	struct ranges r = { .o = o, .first = true };

	roaring_iterate(bm, range_add, &r);
	ranges_flush(&r);
}

static void dump_task(int idx)
{
	struct ctask *t = &c.tasks[idx];
	char path[4096], tmp[4200];
	struct file **v, *f, *x;
	uint64_t modified = 0;
	size_t n = 0, i;
	int done = -1;
	FILE *o;

	if (c.ntasks == 1)
		snprintf(path, sizeof(path), "%s", c.out);
	else
		snprintf(path, sizeof(path), "%s.%d", c.out, idx);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	o = fopen(tmp, "w");
	if (!o) {
		perror(tmp);
		exit(1);
	}
	v = calloc(HASH_COUNT(t->files) + 1, sizeof(*v));
	HASH_ITER(hh, t->files, f, x)
		if (!roaring_bitmap_is_empty(f->exists) || !roaring_bitmap_is_empty(f->modified))
			v[n++] = f;
	qsort(v, n, sizeof(*v), cmp_file);
	for (i = 0; i < n; i++)
		modified += roaring_bitmap_get_cardinality(v[i]->modified);
	if (c.have_done && idx == 0)
		done = duet_task_check_done(t->t, &c.done, 0, 0);
	fprintf(o, "# dump=%u task=%s dir=%s lost=%" PRIu64 " redundant=%" PRIu64 " items=%" PRIu64
		" pages=%" PRIu64 " watched=%" PRIu64 " modified=%" PRIu64 " done=%d doneitems=%"
		PRIu64 " xmarks=%" PRIu64 " preitems=%" PRIu64 " prewatched=%" PRIu64 "\n", c.dumps,
		t->name, t->dir, t->lost, t->redundant, t->items, t->pages, t->watched, modified, done,
		t->done_items, c.xmarks, t->pre_items, t->pre_watched);
	for (i = 0; i < n; i++) {
		struct duet_fileid fid = { v[i]->k.ino, v[i]->k.gen, v[i]->k.dev, 0 };
		char p[4096];

		if (roaring_bitmap_is_empty(v[i]->exists))
			continue;	/* dirty but not cached cannot be: counted as modified */
		if (duet_task_path(t->t, &fid, p, sizeof(p)))
			strcpy(p, "?");
		fprintf(o, "%u %" PRIu64 " ", v[i]->k.dev, v[i]->k.ino);
		print_ranges(o, v[i]->exists);
		fprintf(o, " gen=%" PRIu64 " %s\n", v[i]->k.gen, p);
	}
	free(v);
	if (fclose(o) || rename(tmp, path)) {
		perror(path);
		exit(1);
	}
}

static void dump_all(void)
{
	drain();
	for (int i = 0; i < c.ntasks; i++)
		dump_task(i);
}

static void read_watch(const char *file)
{
	FILE *f = fopen(file, "r");
	unsigned long long dev, ino;
	size_t cap = 0;

	if (!f) {
		perror(file);
		exit(2);
	}
	while (fscanf(f, "%llu %llu", &dev, &ino) == 2) {
		if (c.nwatch == cap) {
			cap = cap ? 2 * cap : 64;
			c.watch = realloc(c.watch, cap * sizeof(*c.watch));
			if (!c.watch)
				exit(1);
		}
		c.watch[c.nwatch].dev = (uint32_t)dev;
		c.watch[c.nwatch].ino = ino;
		c.watch[c.nwatch].gen = 0;
		c.nwatch++;
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	const char *done_file = NULL, *ready = NULL, *save = NULL;
	unsigned long long xlo = 0, xhi = 0;
	bool xmark = false;
	unsigned int seen = 0;
	sigset_t sigs;
	int opt, r;

	while ((opt = getopt(argc, argv, "lDs:b:m:o:q:w:k:r:X:S:L:")) != -1) {
		switch (opt) {
		case 'l':
			so.flags |= DUET_SESSION_LOCAL;
			break;
		case 'D':
			so.flags |= DUET_SESSION_DAEMON;
			break;
		case 's':
			so.socket = optarg;
			break;
		case 'b':
			so.buffer_kb = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			c.mask = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			c.out = optarg;
			break;
		case 'q':
			c.quiet_ms = atoi(optarg);
			break;
		case 'L':
			c.latency_ms = (unsigned int)atoi(optarg);
			break;
		case 'w':
			read_watch(optarg);
			break;
		case 'k':
			done_file = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'X':
			if (sscanf(optarg, "%llu-%llu", &xlo, &xhi) != 2 || xlo > xhi) {
				fprintf(stderr, "dclient: -X LO-HI\n");
				return 2;
			}
			xmark = true;
			break;
		case 'S':
			save = optarg;
			break;
		default:
			fprintf(stderr, "usage: dclient [-lD] [-s SOCKET] [-b KB] [-m MASK] -o OUT "
				"[-q MS] [-w WATCH] [-k FILE] [-r READY] [-X LO-HI] [-S FILE] DIR...\n");
			return 2;
		}
	}
	if (!c.out || optind == argc || argc - optind > MAX_TASKS) {
		fprintf(stderr, "dclient: -o OUT and 1 to %d DIRs are needed\n", MAX_TASKS);
		return 2;
	}
	sigemptyset(&sigs);
	c.trace = getenv("DCLIENT_TRACE") != NULL;
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	c.sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	r = duet_session_new(&so, &c.s);
	if (r)
		fail("session", r);
	for (int i = optind; i < argc; i++) {
		struct ctask *t = &c.tasks[c.ntasks];
		struct duet_task_opts to = { .sz = sizeof(to), .mask = c.mask, .path = argv[i],
					     .latency_ms = c.latency_ms };

		snprintf(t->name, sizeof(t->name), "dclient-%d-%d", (int)getpid(), c.ntasks);
		to.name = t->name;
		t->dir = argv[i];
		r = duet_task_new(c.s, &to, &t->t);
		if (r) {
			fprintf(stderr, "dclient: registering %s: %s\n", argv[i], duet_strerror(r));
			return 1;
		}
		c.ntasks++;
	}
	if (done_file) {
		r = duet_task_fileid(c.tasks[0].t, done_file, &c.done);
		if (!r)
			r = duet_task_set_done(c.tasks[0].t, &c.done, 0, 0);
		if (r)
			fail("done mark", r);
		c.have_done = true;
	}
	if (xmark) {
		struct duet_fileid root;

		r = duet_task_fileid(c.tasks[0].t, c.tasks[0].dir, &root);
		if (r)
			fail("the directory's identity", r);
		for (unsigned long long ino = xlo; ino <= xhi; ino++) {
			struct duet_fileid f = { .ino = ino, .dev = root.dev };

			if (!duet_task_set_done(c.tasks[0].t, &f, 0, 0))
				c.xmarks++;
		}
		fprintf(stderr, "dclient: %" PRIu64 " of %llu done marks accepted\n", c.xmarks,
			xhi - xlo + 1);
	}
	if (save) {
		r = duet_task_save(c.tasks[0].t, save);
		if (r)
			fail("save", r);
	}
	if (ready) {
		int fd;

		drain();
		fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			perror(ready);
			return 1;
		}
		close(fd);
	}
	while (!c.stop) {
		step(-1);
		handle_signal();
		if (c.dumps != seen && !c.stop) {
			seen = c.dumps;
			dump_all();
		}
	}
	c.dumps++;
	dump_all();
	for (int i = 0; i < c.ntasks; i++) {
		duet_task_free(c.tasks[i].t);
		view_drop(&c.tasks[i]);
	}
	duet_session_free(c.s);
	return 0;
}
