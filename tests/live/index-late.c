// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A file created in a directory after the index's walk opened it and
 * before its watch was added must still be named: it is either listed or
 * reported by the watch. btrfs lists only the entries that existed when
 * the directory was opened, so a listing from the walk's first open would
 * miss it while the watch, added after it was made, does not report it
 * either (libduet-register-race-btrfs failed so, one file in a few hundred).
 *
 * The window is made exact: this program's inotify_add_watch() (it
 * preempts libc's for the index) first creates a file in the directory
 * about to be watched, then adds the watch. On ext4, xfs and btrfs, the
 * root and a subdirectory each get one such file; after the walk every
 * one of them must be known by its inode number and path.
 * Needs root (loop images); exits 77 otherwise.
 *
 * usage: index-late FSTYPE
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/check.h"
#include "fsimg.h"
#include "index.h"

#define MAXLATE 8

static int armed;
static char late[MAXLATE][PATH_MAX + 16];
static int nlate;

int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	if (armed && nlate < MAXLATE) {
		char dir[PATH_MAX];
		ssize_t n = readlink(path, dir, sizeof(dir) - 1);
		int f;

		/* path is /proc/self/fd/N (or the directory's name). */
		if (n > 0)
			dir[n] = '\0';
		else
			snprintf(dir, sizeof(dir), "%s", path);
		snprintf(late[nlate], sizeof(late[nlate]), "%s/late-%d", dir, nlate);
		f = open(late[nlate], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (f >= 0) {
			close(f);
			nlate++;
		}
	}
	return (int)syscall(SYS_inotify_add_watch, fd, path, mask);
}

int main(int argc, char **argv)
{
	char base[128], sub[200], old[220], lf[200], *roots[1];
	struct dc_index *x;
	struct fsimg img;
	int r, want;

	if (argc != 2) {
		fprintf(stderr, "usage: index-late FSTYPE\n");
		return TEST_ERROR;
	}
	if (geteuid()) {
		printf("SKIP: needs root (loop images)\n");
		return TEST_SKIP;
	}
	snprintf(base, sizeof(base), "/tmp/duet-index-late-%d", (int)getpid());
	if (fsimg_make(&img, argv[1], argv[1][0] == 'x' ? 300 : 256, base)) {
		printf("SKIP: no loop %s\n", argv[1]);
		return TEST_SKIP;
	}
	snprintf(sub, sizeof(sub), "%s/sub", base);
	snprintf(old, sizeof(old), "%s/old", sub);
	if (mkdir(sub, 0755) || close(open(old, O_CREAT | O_WRONLY | O_CLOEXEC, 0644))) {
		perror(old);
		fsimg_cleanup_all();
		return TEST_ERROR;
	}
	roots[0] = base;
	armed = 1;
	r = dc_index_new(roots, 1, &x);
	armed = 0;
	CHECK(r == 0, "dc_index_new: %s", strerror(-r));
	if (r) {
		fsimg_cleanup_all();
		return check_exit("index-late");
	}
	dc_index_update(x);
	/* The root, sub, and ext4's lost+found. */
	want = 2 + !access(strcat(strcpy(lf, base), "/lost+found"), F_OK);
	CHECK(nlate == want, "a file was made before each watch (%d, want %d)", nlate, want);
	for (int i = 0; i < nlate; i++) {
		struct stat st;
		const char *p;

		if (stat(late[i], &st)) {
			CHECK(0, "%s: %s", late[i], strerror(errno));
			continue;
		}
		p = dc_index_lookup(x, img.kdev, st.st_ino, NULL);
		CHECK(p && !strcmp(p, late[i]), "%s (ino %llu), made between the walk's open and "
		      "the watch, is named: %s", late[i], (unsigned long long)st.st_ino,
		      p ? p : "(unknown)");
	}
	dc_index_free(x);
	fsimg_cleanup_all();
	return check_exit("index-late");
}
