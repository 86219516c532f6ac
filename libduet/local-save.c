// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process backend's persistence of done marks (local.h), in the
 * format of savefile.h: each mark keyed by its file's identity (dev, ino,
 * and the file system's inode generation), with its path relative to the
 * task's directory as the hint that finds it again.
 *
 * Saving. The marks are gathered with the session lock held, then
 * checked and written without it: a visibility check runs as the client
 * (a system call each), and the file is written with whatever rights the
 * caller has (duetd: the client's). Each file's generation is read from
 * the file itself (FS_IOC_GETVERSION on ext4, xfs, btrfs; a file system
 * without it gets no generation, and is matched by inode number alone).
 * The new file is written whole in an unnamed temporary file of the
 * target's directory (O_TMPFILE; else a uniquely named one), fsynced,
 * linked under a unique name, renamed over the target and the directory
 * fsynced: whenever the process dies, FILE is the old file or the new
 * one, complete, and a crash leaves at most a FILE.tmp-PID-N behind.
 *
 * Loading. The whole file is parsed first: a malformed one (-EBADMSG,
 * the reason to the log callback) restores nothing. A mark then goes to
 * the file at its path if that is still the same file (inode number and,
 * where saved, generation); else, where the generation was saved, to the
 * same file under another name in the task's directory (renamed since:
 * the identity wins over the path, and a different file now at the old
 * name gets nothing); else nowhere. The device number is not compared:
 * the file system is the one the path leads to.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "savefile.h"

/* Largest save file read: 2^24 marks of 64 bytes. */
#define LOAD_MAX	(UINT64_C(1) << 30)
/* A mark not written (in struct dsv_rec's flags, while saving). */
#define SKIPPED		UINT32_MAX

struct save_ctx {
	struct local_task *t;
	struct dsv_rec *m;	/* path: absolute, until written */
	size_t n, cap;
	int err;
};

static int save_one(void *ud, const struct de_file *f, uint64_t index, uint64_t count)
{
	struct save_ctx *c = ud;
	char path[PATH_MAX];

	if (dc_index_name_under(c->t->s->x, f->dev, f->ino, c->t->root, path, sizeof(path),
				NULL))
		return 0;	/* no name any more: nothing to resume */
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct dsv_rec *n = realloc(c->m, cap * sizeof(*n));

		if (!n) {
			c->err = -ENOMEM;
			return 1;
		}
		c->m = n;
		c->cap = cap;
	}
	c->m[c->n] = (struct dsv_rec){
		.dev = f->dev, .ino = f->ino, .index = index, .count = count,
		.path = strdup(path),
	};
	if (!c->m[c->n].path) {
		c->err = -ENOMEM;
		return 1;
	}
	c->n++;
	return 0;
}

/*
 * The inode number and generation of the file at path (not following a
 * symlink there): 0, with DSV_GEN in *flags if the file system gives
 * generations; -errno if the path cannot be looked at.
 */
static int file_identity(const char *path, uint64_t *ino, uint64_t *gen, uint32_t *flags)
{
	unsigned int v = 0;	/* the kernel writes an int, whatever the ioctl's type says */
	struct stat st;
	int fd;

	*flags = 0;
	*gen = 0;
	if (lstat(path, &st))
		return -errno;
	*ino = st.st_ino;
	/* Only what opening cannot disturb: no fifo, device or socket. */
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	*ino = st.st_ino;
	if (!ioctl(fd, FS_IOC_GETVERSION, &v)) {
		*gen = v;
		*flags = DSV_GEN;
	}
	close(fd);
	return 0;
}

/* Whether the file at path is the one r names. */
static bool same_file(const char *path, const struct dsv_rec *r)
{
	uint64_t ino, gen;
	uint32_t flags;

	if (file_identity(path, &ino, &gen, &flags) || ino != r->ino)
		return false;
	if (!(r->flags & DSV_GEN))
		return true;
	return (flags & DSV_GEN) && gen == r->gen;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* An unnamed file's name: without CAP_DAC_READ_SEARCH, through /proc. */
static int link_unnamed(int fd, const char *name)
{
	char proc[64];

	if (!linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH))
		return 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

/* buf becomes file, atomically and durably (see the top of this file). */
static int publish(const char *file, const char *buf, size_t len)
{
	static unsigned int seq;
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(file, '/');
	bool unnamed = true, linked = false;
	int fd, dfd, r;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == file)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
	/* api.c checked that FILE and this suffix fit. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d-%u", file, (int)getpid(),
			     __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED)) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		unnamed = false;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		linked = fd >= 0;
	}
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, len);
	if (!r && fsync(fd))
		r = -errno;
	if (!r && unnamed) {
		r = link_unnamed(fd, tmp);
		linked = !r;
	}
	close(fd);
	if (!r && rename(tmp, file))
		r = -errno;
	if (r) {
		if (linked)
			unlink(tmp);
		return r;
	}
	/* The rename itself, on disk. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = fsync(dfd) ? -errno : 0;
	close(dfd);
	return r;
}

int local_task_save(struct duet_task *dt, const char *file)
{
	struct local_task *t = local_task(dt);
	struct save_ctx c = { .t = t };
	size_t rootlen = strlen(t->root), len = 0, n = 0;
	char *buf = NULL;
	FILE *f;
	int r;

	pthread_mutex_lock(&t->s->lock);
	r = de_done_foreach(t->s->e, t->slot, save_one, &c);
	pthread_mutex_unlock(&t->s->lock);
	if (c.err)
		r = c.err;
	if (r < 0)
		goto out;
	f = open_memstream(&buf, &len);
	if (!f) {
		r = -errno;
		goto out;
	}
	r = dsv_put_header(f);
	for (size_t i = 0; i < c.n && !r; i++) {
		struct dsv_rec *m = &c.m[i];
		uint64_t ino;
		char *abs = m->path;

		/*
		 * A file's marks come one after another: it is looked at once.
		 * Only what the client could see leaves in the file, with the
		 * generation of the file at that name; a name that now leads
		 * to another inode (renamed meanwhile) is not written.
		 */
		if (i && c.m[i - 1].dev == m->dev && c.m[i - 1].ino == m->ino &&
		    !strcmp(c.m[i - 1].path, abs)) {
			m->gen = c.m[i - 1].gen;
			m->flags = c.m[i - 1].flags;
		} else if ((t->visible && !t->visible(t->vis_ud, abs)) ||
			   file_identity(abs, &ino, &m->gen, &m->flags) || ino != m->ino) {
			m->flags = SKIPPED;
		}
		if (m->flags == SKIPPED)
			continue;
		m->path = abs + rootlen;
		r = dsv_put(f, m);
		m->path = abs;
		n++;
	}
	if (!r)
		r = dsv_put_end(f, n);
	if (fclose(f) && !r)
		r = -EIO;
	if (!r)
		r = publish(file, buf, len);
out:
	free(buf);
	dsv_free(c.m, c.n);
	return r;
}

/* The whole of file, in a buffer. */
static int read_file(const char *file, char **buf, size_t *len)
{
	struct stat st;
	size_t n = 0;
	char *b;
	int fd = open(file, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > LOAD_MAX) {
		r = -EBADMSG;
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		r = -ENOMEM;
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, b + n, (size_t)st.st_size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k ? -errno : -EBADMSG;	/* shrank while read */
			free(b);
			goto out;
		}
		n += (size_t)k;
	}
	*buf = b;
	*len = n;
out:
	close(fd);
	return r;
}

/*
 * Where the file r names is now, into path: at its saved name if that is
 * still it, else (with a saved generation) wherever the path index has it
 * under the task's directory, on the device saved or the one its name is
 * on. -ENOENT if it is in neither place.
 */
static int find_file(struct local_task *t, const struct dsv_rec *r, char *path, size_t len)
{
	const struct dc_mount *mt;
	uint32_t devs[2];
	int ndev = 0;

	if ((size_t)snprintf(path, len, "%s%s", t->root, r->path) >= len)
		return -ENAMETOOLONG;
	if (same_file(path, r))
		return 0;
	if (!(r->flags & DSV_GEN))
		return -ENOENT;	/* an inode number alone could be another file's */
	pthread_mutex_lock(&t->s->lock);
	devs[ndev++] = r->dev;
	mt = dc_mounts_find(&t->s->mounts, path);
	if (mt && mt->kdev != r->dev)
		devs[ndev++] = mt->kdev;
	for (int i = 0; i < ndev; i++) {
		dc_index_lookup(t->s->x, devs[i], r->ino, NULL);
		if (!dc_index_name_under(t->s->x, devs[i], r->ino, t->root, path, len, NULL)) {
			pthread_mutex_unlock(&t->s->lock);
			return same_file(path, r) ? 0 : -ENOENT;
		}
	}
	pthread_mutex_unlock(&t->s->lock);
	return -ENOENT;
}

int local_task_load(struct duet_task *dt, const char *file)
{
	struct local_task *t = local_task(dt);
	struct dsv_rec *recs = NULL;
	const char *why = NULL;
	size_t len = 0, nrecs = 0;
	char *buf = NULL;
	int r, n = 0, version;

	r = read_file(file, &buf, &len);
	if (!r)
		r = dsv_parse(buf, len, &recs, &nrecs, &version, &why);
	free(buf);
	if (r == -EBADMSG)
		local_logf(t->s, 3, "duet: %s: not loaded: %s", file,
			   why ? why : "it is not a regular file of a size a save file can have");
	if (r)
		return r;
	for (size_t i = 0; i < nrecs; i++) {
		struct duet_fileid id;
		char path[PATH_MAX];

		if (find_file(t, &recs[i], path, sizeof(path)))
			continue;
		/* Nor one the client may not see (duetd's load runs as it). */
		if (t->visible && !t->visible(t->vis_ud, path))
			continue;
		/* This session's identity of it (replaced meanwhile: not it). */
		if (local_task_fileid(dt, path, &id) || id.ino != recs[i].ino)
			continue;
		r = local_task_done(dt, DUET__DONE_SET, &id, recs[i].index, recs[i].count);
		if (r)
			break;
		n++;
	}
	dsv_free(recs, nrecs);
	return r ? r : n;
}
