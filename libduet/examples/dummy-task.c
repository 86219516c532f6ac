// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A dummy Duet task: registers DIR with a mask, fetches every INTERVAL ms,
 * prints each item with its path, and every second the items and pages
 * per second.
 *
 * usage: dummy-task [-m exists|modified|events] [-i INTERVAL_MS] [-q] DIR
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <duet/duet.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const char *state_name(uint32_t st, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", st & DUET_ADDED ? "ADDED " : "",
		 st & DUET_REMOVED ? "REMOVED " : "", st & DUET_DIRTY ? "DIRTY " : "",
		 st & DUET_FLUSHED ? "FLUSHED " : "");
	return buf;
}

int main(int argc, char **argv)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "dummy",
				     .mask = DUET_EXISTS | DUET_MODIFIED };
	struct duet_session *s = NULL;
	struct duet_task *t = NULL;
	struct duet_item items[256];
	uint64_t nitems = 0, npages = 0;
	time_t last = time(NULL);
	int interval = 100, quiet = 0, opt, r;

	while ((opt = getopt(argc, argv, "m:i:q")) != -1) {
		if (opt == 'm' && !strcmp(optarg, "exists"))
			to.mask = DUET_EXISTS;
		else if (opt == 'm' && !strcmp(optarg, "modified"))
			to.mask = DUET_MODIFIED;
		else if (opt == 'm' && !strcmp(optarg, "events"))
			to.mask = DUET_ADDED | DUET_REMOVED | DUET_DIRTY | DUET_FLUSHED;
		else if (opt == 'i')
			interval = atoi(optarg);
		else if (opt == 'q')
			quiet = 1;
		else {
			fprintf(stderr, "usage: dummy-task [-m exists|modified|events] [-i MS] [-q] DIR\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: dummy-task [-m exists|modified|events] [-i MS] [-q] DIR\n");
		return 2;
	}
	to.path = argv[optind];
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r = duet_session_new(NULL, &s);
	if (!r)
		r = duet_task_new(s, &to, &t);
	if (r) {
		fprintf(stderr, "dummy-task: %s: %s\n", to.path, duet_strerror(r));
		duet_session_free(s);
		return 1;
	}
	while (!stop) {
		int n;

		usleep((useconds_t)interval * 1000);
		while ((n = duet_task_fetch(t, items, 256)) > 0) {
			for (int i = 0; i < n && !quiet; i++) {
				struct duet_fileid f = duet_item_fileid(&items[i]);
				char path[4096], st[64];

				if (items[i].flags & DUET_ITEM_LOST) {
					printf("LOST: events were lost; a resync follows\n");
					continue;
				}
				if (duet_task_path(t, &f, path, sizeof(path)))
					snprintf(path, sizeof(path), "(ino %" PRIu64 ")", items[i].ino);
				printf("%-24s pages %" PRIu64 "-%" PRIu64 "  %s\n",
				       state_name(items[i].state, st, sizeof(st)), items[i].index,
				       items[i].index + items[i].count - 1, path);
				npages += items[i].count;
			}
			nitems += (uint64_t)n;
		}
		if (time(NULL) != last) {
			struct duet_task_status ts = { .sz = sizeof(ts) };

			duet_task_status(t, &ts);
			fprintf(stderr, "dummy-task %s: %" PRIu64 " items/s (%" PRIu64 " pages); scanned %" PRIu64 "/%" PRIu64 " files\n",
				ts.name, nitems, npages, ts.scan_done, ts.scan_files);
			nitems = npages = 0;
			last = time(NULL);
		}
		fflush(stdout);
	}
	duet_task_free(t);
	duet_session_free(s);
	return 0;
}
