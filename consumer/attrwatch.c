// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fanotify file-system marks for attribute changes (attrwatch.h).
 *
 * An event names its object by file system id and file handle. The
 * handle formats of ext4, xfs and btrfs are read directly (fhandle.h);
 * any other is opened with open_by_handle_at() and fstat'ed. Whatever cannot be placed is reported
 * as "everything changed", never dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "attrwatch.h"
#include "fhandle.h"

#define MAX_FS 256

struct fs {
	fsid_t fsid;
	uint32_t kdev;
	/*
	 * A directory of it, opened for open_by_handle_at() when needed: no
	 * fd is kept, as one would keep the file system from being unmounted
	 * for as long as the watch lives (a task on / watches them all).
	 */
	char *path;
};

struct dc_attrwatch {
	int fd;
	struct fs fs[MAX_FS];
	unsigned int nfs;
	struct dc_attrwatch_stats st;
};

int dc_attrwatch_new(struct dc_attrwatch **ret)
{
	struct dc_attrwatch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK,
			      O_RDONLY | O_CLOEXEC);
	if (w->fd < 0) {
		int r = errno == EINVAL ? -EOPNOTSUPP : -errno;

		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void dc_attrwatch_free(struct dc_attrwatch *w)
{
	if (!w)
		return;
	for (unsigned int i = 0; i < w->nfs; i++)
		free(w->fs[i].path);
	close(w->fd);
	free(w);
}

int dc_attrwatch_fd(const struct dc_attrwatch *w)
{
	return w->fd;
}

static struct fs *fs_find(struct dc_attrwatch *w, const fsid_t *id)
{
	for (unsigned int i = 0; i < w->nfs; i++)
		if (!memcmp(&w->fs[i].fsid, id, sizeof(*id)))
			return &w->fs[i];
	return NULL;
}

/*
 * Forget the file systems no longer mounted where they were (the kernel
 * dropped their marks with them), so that a long-lived watcher that sees
 * many mounts come and go does not run out of room.
 */
static void prune(struct dc_attrwatch *w)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < w->nfs; i++) {
		struct statfs sf;

		if (statfs(w->fs[i].path, &sf) ||
		    memcmp(&sf.f_fsid, &w->fs[i].fsid, sizeof(sf.f_fsid))) {
			free(w->fs[i].path);
			continue;
		}
		w->fs[k++] = w->fs[i];
	}
	w->nfs = k;
	w->st.filesystems = w->nfs;
}

int dc_attrwatch_add(struct dc_attrwatch *w, const char *path, uint32_t kdev)
{
	struct statfs sf;
	struct fs *f;
	char *mpath;

	if (statfs(path, &sf))
		return -errno;
	if (fs_find(w, &sf.f_fsid))
		return 0;
	if (w->nfs == MAX_FS)
		prune(w);
	if (w->nfs == MAX_FS)
		return -ENOSPC;
	mpath = strdup(path);
	if (!mpath)
		return -ENOMEM;
	if (fanotify_mark(w->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_ATTRIB | FAN_ONDIR,
			  AT_FDCWD, path)) {
		int r = -errno;

		free(mpath);
		return r;
	}
	f = &w->fs[w->nfs++];
	f->fsid = sf.f_fsid;
	f->kdev = kdev;
	f->path = mpath;
	w->st.filesystems = w->nfs;
	return 0;
}

/* The inode number a handle names, or 0 if it cannot be told. */
static uint64_t handle_ino(const struct fs *f, struct file_handle *h)
{
	uint64_t ino = dc_handle_ino(h);
	struct statfs sf;
	struct stat st;
	int fd, mfd;

	if (ino)
		return ino;
	mfd = open(f->path, O_PATH | O_CLOEXEC);
	if (mfd < 0)
		return 0;
	/* Another file system there now: the handle is not for it. */
	if (fstatfs(mfd, &sf) || memcmp(&sf.f_fsid, &f->fsid, sizeof(sf.f_fsid))) {
		close(mfd);
		return 0;
	}
	fd = open_by_handle_at(mfd, h, O_PATH | O_CLOEXEC);
	close(mfd);
	if (fd < 0)
		return 0;
	ino = fstat(fd, &st) ? 0 : st.st_ino;
	close(fd);
	return ino;
}

int dc_attrwatch_read(struct dc_attrwatch *w, dc_attr_fn fn, void *ud)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	int n = 0;

	for (;;) {
		ssize_t len = read(w->fd, buf, sizeof(buf));
		struct fanotify_event_metadata *m;

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && errno == EAGAIN)
			break;
		if (len < 0)
			return n ? n : -errno;
		if (len == 0)
			break;
		for (m = (void *)buf; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			struct fanotify_event_info_fid *fid = (void *)(m + 1);
			struct fs *f = NULL;
			uint64_t ino = 0;

			n++;
			w->st.events++;
			if (m->fd >= 0)
				close(m->fd);
			if (!(m->mask & FAN_Q_OVERFLOW) &&
			    m->event_len >= sizeof(*m) + sizeof(*fid) + sizeof(struct file_handle) &&
			    fid->hdr.info_type == FAN_EVENT_INFO_TYPE_FID &&
			    (f = fs_find(w, (fsid_t *)&fid->fsid)))
				ino = handle_ino(f, (struct file_handle *)fid->handle);
			if (!f || !ino) {
				w->st.unplaced++;
				fn(ud, 0, 0, true);
				continue;
			}
			fn(ud, f->kdev, ino, m->mask & FAN_ONDIR);
		}
	}
	return n;
}

void dc_attrwatch_stats(const struct dc_attrwatch *w, struct dc_attrwatch_stats *st)
{
	*st = w->st;
}
