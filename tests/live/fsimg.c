// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fsimg.h"

#define MAX_IMGS 8
static struct fsimg *imgs[MAX_IMGS];
static int handlers_set;

static int run(const char *cmd)
{
	int r = system(cmd);

	return r == 0 ? 0 : -1;
}

void fsimg_destroy(struct fsimg *f)
{
	char cmd[512];

	if (f->mounted) {
		if (umount2(f->mnt, 0))
			umount2(f->mnt, MNT_DETACH);
		f->mounted = 0;
	}
	if (f->loop[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s 2>/dev/null", f->loop);
		run(cmd);
		f->loop[0] = '\0';
	}
	if (f->image[0]) {
		unlink(f->image);
		f->image[0] = '\0';
	}
	for (int i = 0; i < MAX_IMGS; i++)
		if (imgs[i] == f)
			imgs[i] = NULL;
}

void fsimg_cleanup_all(void)
{
	/* Newest first: inner mounts before the ones they sit on. */
	for (int i = MAX_IMGS - 1; i >= 0; i--)
		if (imgs[i])
			fsimg_destroy(imgs[i]);
}

static void on_signal(int sig)
{
	fsimg_cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

int fsimg_make(struct fsimg *f, const char *fstype, unsigned int size_mb, const char *mnt)
{
	char cmd[1024];
	struct stat st;
	FILE *p;
	int slot = -1;

	memset(f, 0, sizeof(*f));
	if (!handlers_set) {
		int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS };

		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], on_signal);
		atexit(fsimg_cleanup_all);
		handlers_set = 1;
	}
	for (int i = 0; i < MAX_IMGS; i++)
		if (!imgs[i]) {
			slot = i;
			break;
		}
	if (slot < 0)
		return -ENOSPC;
	imgs[slot] = f;
	snprintf(f->image, sizeof(f->image), "/var/tmp/duet-test-%d-%d.img", (int)getpid(), slot);
	snprintf(f->mnt, sizeof(f->mnt), "%s", mnt);
	snprintf(cmd, sizeof(cmd), "truncate -s %uM %s", size_mb, f->image);
	if (run(cmd))
		goto fail;
	if (!strcmp(fstype, "ext4"))
		snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s", f->image);
	else if (!strcmp(fstype, "xfs"))
		snprintf(cmd, sizeof(cmd), "mkfs.xfs -q -f %s", f->image);
	else if (!strcmp(fstype, "btrfs"))
		snprintf(cmd, sizeof(cmd), "mkfs.btrfs -q -f %s >/dev/null", f->image);
	else
		goto fail;
	if (run(cmd))
		goto fail;
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s", f->image);
	p = popen(cmd, "r");
	if (!p)
		goto fail;
	if (!fgets(f->loop, sizeof(f->loop), p))
		f->loop[0] = '\0';
	pclose(p);
	f->loop[strcspn(f->loop, "\n")] = '\0';
	if (!f->loop[0])
		goto fail;
	mkdir(mnt, 0755);
	if (mount(f->loop, mnt, fstype, 0, NULL))
		goto fail;
	f->mounted = 1;
	if (stat(mnt, &st))
		goto fail;
	/* mountinfo's device is the super block's, as the events carry it. */
	{
		FILE *mi = fopen("/proc/self/mountinfo", "re");
		char line[4096];

		while (mi && fgets(line, sizeof(line), mi)) {
			unsigned int ma, mi_;
			char mp[1024];

			if (sscanf(line, "%*s %*s %u:%u %*s %1023s", &ma, &mi_, mp) == 3 &&
			    !strcmp(mp, mnt))
				f->kdev = (ma << 20) | mi_;
		}
		if (mi)
			fclose(mi);
	}
	return 0;
fail:
	fsimg_destroy(f);
	return -EIO;
}
