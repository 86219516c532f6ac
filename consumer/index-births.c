// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Births: the inode number of every file created in a watched directory,
 * from fanotify (FAN_CREATE with FAN_REPORT_TARGET_FID, kernel 5.17+),
 * beside inotify. inotify names a new file, and the index stats the name
 * to learn its inode; a file deleted before the index got to it has no
 * inode then, and its events would have no file (and, on a file system
 * whose stream marks new inodes, the files after it under the same
 * number would be counted one off). fanotify gives the inode with the
 * name, in the same call that queues the inotify event, so the index can
 * still name it, as a file created and deleted.
 *
 * The events are read before inotify's (dc_index_update()) and kept two
 * rounds: an IN_CREATE whose stat fails takes its birth from here. Where
 * fanotify cannot do it (an older kernel, no privilege), nothing changes.
 */
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fhandle.h"
#include "index-int.h"

#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID	0x00001000
#endif
#ifndef FAN_REPORT_DFID_NAME_TARGET
#define FAN_REPORT_DFID_NAME_TARGET (FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID)
#endif

struct birth {
	char *key;		/* fsid, directory inode, name */
	uint64_t ino;
	uint32_t round;
	UT_hash_handle hh;
};

void ix_births_init(struct dc_index *x)
{
	x->bfd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME_TARGET | FAN_CLOEXEC |
				       FAN_NONBLOCK,
			       O_RDONLY | O_CLOEXEC);
}

void ix_births_free(struct dc_index *x)
{
	struct birth *b, *t;

	HASH_ITER(hh, x->births, b, t) {
		HASH_DEL(x->births, b);
		free(b->key);
		free(b);
	}
	if (x->bfd >= 0)
		close(x->bfd);
}

void ix_births_watch(struct dc_index *x, int dirfd)
{
	if (x->bfd >= 0)
		fanotify_mark(x->bfd, FAN_MARK_ADD, FAN_CREATE, dirfd, NULL);
}

static char *birth_key(const void *fsid, uint64_t dir, const char *name)
{
	int32_t v[2];
	char *k;

	memcpy(v, fsid, sizeof(v));
	if (asprintf(&k, "%x:%x:%llx/%s", (unsigned int)v[0], (unsigned int)v[1],
		     (unsigned long long)dir, name) < 0)
		return NULL;
	return k;
}

/* One FAN_CREATE: the directory (fid and name) and the new file (fid). */
static void take(struct dc_index *x, const struct fanotify_event_metadata *m)
{
	const struct fanotify_event_info_fid *dfid = NULL, *cfid = NULL;
	const char *p = (const char *)(m + 1), *end = (const char *)m + m->event_len;
	const struct file_handle *dh;
	uint64_t dir, ino;
	struct birth *b;
	const char *name;

	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;

		if (h->len < sizeof(*h) || p + h->len > end)
			return;
		if (h->len >= sizeof(struct fanotify_event_info_fid) + sizeof(struct file_handle)) {
			if (h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME)
				dfid = (const void *)p;
			else if (h->info_type == FAN_EVENT_INFO_TYPE_FID)
				cfid = (const void *)p;
		}
		p += h->len;
	}
	if (!dfid || !cfid)
		return;
	dh = (const struct file_handle *)dfid->handle;
	name = (const char *)(dh->f_handle + dh->handle_bytes);
	if ((const char *)dfid + dfid->hdr.len <= name ||
	    !memchr(name, '\0', (size_t)((const char *)dfid + dfid->hdr.len - name)))
		return;
	dir = dc_handle_ino(dh);
	ino = dc_handle_ino((const struct file_handle *)cfid->handle);
	if (!dir || !ino)
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return;
	b->key = birth_key(&dfid->fsid, dir, name);
	if (!b->key) {
		free(b);
		return;
	}
	b->ino = ino;
	b->round = x->round;
	{
		struct birth *old;

		HASH_FIND_STR(x->births, b->key, old);
		if (old) {
			HASH_DEL(x->births, old);	/* the name made again: the newest counts */
			free(old->key);
			free(old);
		}
	}
	HASH_ADD_KEYPTR(hh, x->births, b->key, strlen(b->key), b);
}

void ix_births_read(struct dc_index *x)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));

	if (x->bfd < 0)
		return;
	for (;;) {
		ssize_t len = read(x->bfd, buf, sizeof(buf));
		struct fanotify_event_metadata *m;

		if (len <= 0)
			return;
		for (m = (void *)buf; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			if (m->fd >= 0)
				close(m->fd);
			if (m->mask & FAN_CREATE && !(m->mask & FAN_ONDIR))
				take(x, m);
		}
	}
}

uint64_t ix_births_take(struct dc_index *x, int dfd, uint64_t dir, const char *name)
{
	struct statfs sf;
	struct birth *b;
	uint64_t ino;
	char *k;

	if (x->bfd < 0 || fstatfs(dfd, &sf))
		return 0;
	k = birth_key(&sf.f_fsid, dir, name);
	if (!k)
		return 0;
	HASH_FIND_STR(x->births, k, b);
	if (!b) {
		ix_births_read(x);	/* queued after the last read */
		HASH_FIND_STR(x->births, k, b);
	}
	free(k);
	if (!b)
		return 0;
	ino = b->ino;
	HASH_DEL(x->births, b);
	free(b->key);
	free(b);
	return ino;
}

void ix_births_round(struct dc_index *x)
{
	struct birth *b, *t;

	x->round++;
	HASH_ITER(hh, x->births, b, t) {
		if (x->round - b->round > 2) {
			HASH_DEL(x->births, b);
			free(b->key);
			free(b);
		}
	}
}
