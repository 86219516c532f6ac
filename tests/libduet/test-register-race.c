// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Files created while a task registers. A thread creates files of two
 * pages under the task's directory without pause while a new session
 * registers its first task there (its event stream starts then), and
 * for a moment after. Then every file is written again with three
 * pages. The task's view of each file (its items applied in order) must
 * be the page cache (cachestat): pages 0-2 of every file, whether it was
 * created before the directory was walked, during the walk, or before
 * the stream began. A file the index takes for created after the walk
 * whose inode marker the stream never carried had its events given to
 * nobody: its view stayed at the scan's two pages. Several rounds, each
 * with a new session; the views are read again a few times when they
 * differ, as the page cache may change meanwhile (DAMON).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libduet-test.h"

#define ROUNDS 6
#define FILES 600	/* at most, per round */

struct file {
	char path[300];
	uint64_t ino;
	int phase;	/* made before the session (0), during the registration (1), after (2) */
	uint8_t view[MAXP];
};

static struct file files[FILES];
static atomic_int nfiles;
static atomic_bool stop;
static atomic_int phase;
static const char *root;
static int round_no;

static void *creator(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop) && atomic_load(&nfiles) < FILES) {
		int i = atomic_load(&nfiles);
		struct file *f = &files[i];

		snprintf(f->path, sizeof(f->path), "%s/r%d-%d", root, round_no, i);
		f->phase = atomic_load(&phase);
		f->ino = make_file(f->path, 2, 0);
		f->phase = f->phase * 10 + atomic_load(&phase);
		memset(f->view, 0, sizeof(f->view));
		atomic_store(&nfiles, i + 1);
		usleep(300);
	}
	return NULL;
}

/* The items fetched so far, applied to the files' views in order. */
static void apply(const struct got *g)
{
	int n = atomic_load(&nfiles);

	for (size_t i = 0; i < g->n; i++) {
		const struct duet_item *it = &g->it[i];

		for (int k = 0; k < n; k++) {
			if (files[k].ino != it->ino)
				continue;
			for (uint64_t p = it->index; p < it->index + it->count && p < MAXP; p++)
				files[k].view[p] = !!(it->state & DUET_ADDED);
		}
	}
}

/* Pages 0-7 of bits as 0/1 characters. */
static const char *bits8(const uint8_t *bits, char *out)
{
	for (int p = 0; p < 8; p++)
		out[p] = bits[p] ? '1' : '0';
	out[8] = '\0';
	return out;
}

/* Files whose view is not the page cache; the first one's in *which. */
static int differ(char *which, size_t size)
{
	uint8_t res[MAXP];
	char a[9], b[9];
	int bad = 0;

	for (int k = 0; k < atomic_load(&nfiles); k++) {
		resident(files[k].path, res);
		if (memcmp(res, files[k].view, MAXP)) {
			if (!bad)
				snprintf(which, size, "%s (file %d of %d, phase %02d, ino %llu: view %s, cached %s)",
					 files[k].path, k, atomic_load(&nfiles), files[k].phase,
					 (unsigned long long)files[k].ino, bits8(files[k].view, a),
					 bits8(res, b));
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	static struct got g;
	int total = 0, bad_total = 0;
	struct lt t;

	lt_setup(&t, "register-race", argc, argv);
	root = t.root;
	/* Skip here, before any thread, if no session can be made. */
	lt_session_free(lt_session_or_skip(NULL));
	for (round_no = 0; round_no < ROUNDS; round_no++) {
		struct duet_session *s;
		struct duet_task *task;
		char which[400] = "";
		pthread_t th;
		int bad;

		atomic_store(&nfiles, 0);
		atomic_store(&stop, false);
		atomic_store(&phase, 0);
		if (pthread_create(&th, NULL, creator, NULL))
			die("pthread_create");
		usleep(5000);	/* some files before the walk */
		s = lt_session(NULL);
		atomic_store(&phase, 1);
		task = lt_task(s, "exists", DUET_EXISTS, t.root);
		atomic_store(&phase, 2);
		usleep(20000);	/* and some after the registration */
		atomic_store(&stop, true);
		pthread_join(th, NULL);
		wait_scan(task);
		for (int k = 0; k < atomic_load(&nfiles); k++)
			make_file(files[k].path, 3, 0);
		collect(task, &g, 600);
		if (g.lost)
			die("round %d: events were lost; the test cannot tell", round_no);
		apply(&g);
		bad = differ(which, sizeof(which));
		for (int again = 0; bad && again < 3; again++) {
			collect(task, &g, 300);
			apply(&g);
			bad = differ(which, sizeof(which));
		}
		printf("# round %d: %d files, %d views differ from the page cache%s%s\n", round_no,
		       atomic_load(&nfiles), bad, bad ? ", first " : "", which);
		total += atomic_load(&nfiles);
		bad_total += bad;
		duet_task_free(task);
		lt_session_free(s);
		/* The next round's task sees these files too: make them old. */
		sync();
	}
	CHECK(total > ROUNDS * 50, "register-race: files were created around the registrations (%d)",
	      total);
	CHECK(bad_total == 0,
	      "register-race: every file's view is the page cache (%d of %d differ)", bad_total,
	      total);
	return lt_finish(&t);
}
