// SPDX-License-Identifier: LGPL-2.1-or-later
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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
	if (f->made_mnt) {
		rmdir(f->mnt);
		f->made_mnt = 0;
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

/*
 * DUET_FSIMG_TEMPLATE_<FSTYPE> (e.g. DUET_FSIMG_TEMPLATE_EXT4) may name a
 * ready-made image to copy instead of running mkfs: the patched-kernel VM
 * (scripts/vm-test) has busybox but no mkfs. The copy then has the
 * template's size, not size_mb. Returns 1 if there is no template, 0 when
 * copied, -1 on error.
 */
static int copy_template(const char *fstype, const char *dst)
{
	char var[64], buf[65536];
	const char *src;
	struct stat st;
	int in, out, r = -1;
	size_t i;
	ssize_t n;

	i = (size_t)snprintf(var, sizeof(var), "DUET_FSIMG_TEMPLATE_");
	for (; *fstype && i < sizeof(var) - 1; fstype++)
		var[i++] = (char)toupper((unsigned char)*fstype);
	var[i] = '\0';
	src = getenv(var);
	if (!src || !*src || stat(src, &st) || !S_ISREG(st.st_mode))
		return 1;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		goto out_in;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto out_out;
	if (n == 0)
		r = 0;
out_out:
	if (close(out))
		r = -1;
out_in:
	close(in);
	return r;
}

static int mkfs_image(const char *fstype, unsigned int size_mb, const char *image)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "truncate -s %uM %s", size_mb, image);
	if (run(cmd))
		return -1;
	if (!strcmp(fstype, "ext4"))
		snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s", image);
	else if (!strcmp(fstype, "xfs"))
		snprintf(cmd, sizeof(cmd), "mkfs.xfs -q -f %s", image);
	else if (!strcmp(fstype, "btrfs"))
		snprintf(cmd, sizeof(cmd), "mkfs.btrfs -q -f %s >/dev/null", image);
	else
		return -1;
	return run(cmd);
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
	int slot = -1, tmpl;

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
	tmpl = copy_template(fstype, f->image);
	if (tmpl < 0 || (tmpl > 0 && mkfs_image(fstype, size_mb, f->image)))
		goto fail;
	/* busybox losetup has no --show: ask for a free device, then attach. */
	snprintf(cmd, sizeof(cmd),
		 "losetup -f --show %s 2>/dev/null || "
		 "{ d=$(losetup -f) && losetup \"$d\" %s && echo \"$d\"; }",
		 f->image, f->image);
	p = popen(cmd, "r");
	if (!p)
		goto fail;
	if (!fgets(f->loop, sizeof(f->loop), p))
		f->loop[0] = '\0';
	pclose(p);
	f->loop[strcspn(f->loop, "\n")] = '\0';
	if (!f->loop[0])
		goto fail;
	f->made_mnt = !mkdir(mnt, 0755);
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
