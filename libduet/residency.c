// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet_residency(): what the page cache holds of each file of a tree
 * (a walk in the calling process, with its own rights), or of one of
 * duetd's datasets (the daemon's live figures, proto.h's RESIDENCY).
 *
 * The walk opens each regular file read-only (without touching its atime
 * where allowed) and counts with cachestat (scan.c's ds_count_fd): no
 * page is read in. It does not follow symbolic links below the paths
 * given; it crosses into other file systems unless DUET_RESIDENCY_XDEV,
 * but never into the kernel's pseudo file systems (dc_pseudo_fs(), the
 * path index's own test), whose files have no page cache. A directory it cannot
 * read is reported as an entry with DUET_RESIDENCY_DIR and its error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backend.h"
#include "index.h"
#include "internal.h"
#include "proto.h"
#include "scan.h"

#define BATCH 256u

struct batch {
	struct duet_residency e[BATCH];
	char *path[BATCH];
	size_t n;
	duet_residency_fn fn;
	void *ud;
	unsigned int flags;
	dev_t top_dev;
	int stop;		/* fn's non-zero return */
	int count;
	/* Files the kernel would not count for us (-EPERM): asked of duetd. */
	const char *socket;
	int dfd;		/* duetd, connected on first need; -1: not yet */
	int derr;		/* why not (then the files keep -EPERM) */
	uint32_t seq;
	void *rbuf;
	size_t rcap;
};

static int hello(int fd, uint32_t *seq);

/* The socket of duetd: the option, DUET_SOCKET, or the default. */
static const char *sock_path(const char *opt)
{
	const char *s = opt ? opt : getenv("DUET_SOCKET");

	return s && *s ? s : DP_DEFAULT_SOCKET;
}

/* Entries [from, to) of b (all -EPERM) counted by duetd, as far as it can. */
static int ask_daemon(struct batch *b, const size_t *idx, size_t n)
{
	struct dp_residency rq = { .flags = DP_RESID_PATHS };
	char *list = NULL;
	size_t ll = 0, blen = 0, off;
	struct dp_resid_reply rr;
	struct dp_resid_entry e;
	char *pbuf = NULL;
	int r;

	if (b->derr)
		return 0;
	if (b->dfd < 0) {
		r = cl_connect(sock_path(b->socket), &b->dfd);
		if (!r && (r = hello(b->dfd, &b->seq))) {
			close(b->dfd);
			b->dfd = -1;
		}
		if (r) {
			b->dfd = -1;
			b->derr = r;
			return 0;	/* no duetd: the files stay unread (-EPERM) */
		}
	}
	for (size_t i = 0; i < n; i++)
		ll += strlen(b->e[idx[i]].path) + 1;
	list = malloc(ll);
	pbuf = malloc(DP_MAX_PATH + 1);
	if (!list || !pbuf) {
		r = -ENOMEM;
		goto out;
	}
	ll = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(b->e[idx[i]].path) + 1;

		memcpy(list + ll, b->e[idx[i]].path, l);
		ll += l;
	}
	rq.path_len = (uint16_t)ll;
	r = cl_call(b->dfd, &b->seq, DP_RESIDENCY, &rq, sizeof(rq), list, ll, &b->rbuf, &b->rcap,
		    &blen, NULL);
	if (r < 0) {
		/* The files stay unread; a daemon that failed once is not asked again. */
		b->derr = r;
		r = 0;
		goto out;
	}
	r = dp_resid_reply_get(b->rbuf, blen, &rr, &off) || rr.n != n ? -EPROTO : 0;
	for (size_t i = 0; !r && i < n; i++) {
		struct duet_residency *d = &b->e[idx[i]];

		if (dp_next_resid(b->rbuf, blen, &off, &rr, &e, pbuf) != 1 || strcmp(pbuf, d->path)) {
			r = -EPROTO;
			break;
		}
		d->error = e.error;
		if (!e.error) {
			d->cached = e.cached;
			d->dirty = e.dirty;
			d->writeback = e.writeback;
			d->flags = e.flags;
		}
	}
out:
	free(list);
	free(pbuf);
	return r;
}

/* The batch's -EPERM entries through duetd, in requests that fit. */
static int resolve_eperm(struct batch *b)
{
	size_t idx[DP_RESID_MAX_PATHS], n = 0, bytes = 0;
	int r = 0;

	for (size_t i = 0; i <= b->n && !r; i++) {
		size_t l = i < b->n ? strlen(b->e[i].path) + 1 : 0;

		if (n && (i == b->n || n == DP_RESID_MAX_PATHS ||
			  bytes + l > DP_MAX_REQUEST - 1024 || bytes + l > UINT16_MAX)) {
			r = ask_daemon(b, idx, n);
			n = bytes = 0;
		}
		if (i < b->n && b->e[i].error == -EPERM && !(b->e[i].flags & DUET_RESIDENCY_DIR)) {
			idx[n++] = i;
			bytes += l;
		}
	}
	return r;
}

static int flush(struct batch *b)
{
	int r = 0;

	if (b->n && !b->stop)
		r = resolve_eperm(b);
	if (b->n && !b->stop && !r && (b->flags & DUET_RESIDENCY_CACHED_ONLY)) {
		size_t k = 0;

		/* Filtered now that every figure is known. */
		for (size_t i = 0; i < b->n; i++) {
			if (!b->e[i].cached && !b->e[i].error) {
				free(b->path[i]);
				b->count--;
				continue;
			}
			b->e[k] = b->e[i];
			b->path[k++] = b->path[i];
		}
		b->n = k;
	}
	if (b->n && !b->stop && !r)
		r = b->fn(b->ud, b->e, b->n);
	for (size_t i = 0; i < b->n; i++)
		free(b->path[i]);
	b->n = 0;
	if (r)
		b->stop = r;
	return b->stop;
}

/* One entry (path copied): 0, fn's non-zero return, or -ENOMEM. */
static int put(struct batch *b, const struct duet_residency *e, const char *path)
{
	char *p;

	if (b->stop)
		return b->stop;
	if ((b->flags & DUET_RESIDENCY_CACHED_ONLY) && !e->cached && e->error != -EPERM &&
	    !e->error)
		return 0;
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	b->path[b->n] = p;
	b->e[b->n] = *e;
	b->e[b->n].path = p;
	b->n++;
	b->count++;
	return b->n == BATCH ? flush(b) : 0;
}

static uint32_t kdev(dev_t dv)
{
	return (uint32_t)major(dv) << 20 | (uint32_t)minor(dv);
}

/* The regular file name in dirfd (path: its absolute name). */
static int one_file(struct batch *b, int dirfd, const char *name, const char *path)
{
	struct duet_residency e = { 0 };
	struct ds_counts c;
	struct stat st;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOATIME | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		e.error = -errno;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
			return 0;	/* gone meanwhile */
		if (!S_ISREG(st.st_mode))
			return 0;
	} else {
		if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
			close(fd);
			return 0;
		}
		r = ds_count_fd(fd, &st, &c);
		close(fd);
		if (r) {
			e.error = r;
		} else {
			e.cached = c.cached;
			e.dirty = c.dirty;
			e.writeback = c.writeback;
			if (c.mincore)
				e.flags |= DUET_RESIDENCY_MINCORE;
		}
	}
	e.id.ino = st.st_ino;
	e.id.dev = kdev(st.st_dev);
	e.size = (uint64_t)st.st_size;
	return put(b, &e, path);
}

static int dir_error(struct batch *b, const char *path, int err)
{
	struct duet_residency e = { .error = err, .flags = DUET_RESIDENCY_DIR };

	return put(b, &e, path);
}

/* The directory fd (path: its absolute name, in buf of PATH_MAX). Takes fd. */
static int walk_dir(struct batch *b, int fd, char *buf, size_t len, bool top)
{
	struct dirent *de;
	DIR *dir;
	int r = 0;

	if (!top && dc_pseudo_fs(fd)) {
		close(fd);
		return 0;
	}
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return dir_error(b, buf, r);
	}
	while (!r && (errno = 0, de = readdir(dir))) {
		const char *n = de->d_name;
		size_t nl = strlen(n);
		unsigned char type = de->d_type;
		struct stat st;

		if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
			continue;
		if (len + 1 + nl >= PATH_MAX)
			continue;	/* no absolute name to give */
		buf[len] = len == 1 && buf[0] == '/' ? '\0' : '/';
		memcpy(buf + len + (buf[len] ? 1 : 0), n, nl + 1);
		if (type == DT_UNKNOWN) {
			if (fstatat(dirfd(dir), n, &st, AT_SYMLINK_NOFOLLOW))
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
		}
		if (type == DT_REG) {
			r = one_file(b, dirfd(dir), n, buf);
		} else if (type == DT_DIR && (b->flags & DUET_RESIDENCY_RECURSIVE)) {
			int sub = openat(dirfd(dir), n,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				r = dir_error(b, buf, -errno);
			} else if ((b->flags & DUET_RESIDENCY_XDEV) &&
				   (fstat(sub, &st) || st.st_dev != b->top_dev)) {
				close(sub);
			} else {
				r = walk_dir(b, sub, buf,
					     len + (len == 1 && buf[0] == '/' ? 0 : 1) + nl, false);
			}
		}
		buf[len] = '\0';
	}
	if (!r && errno) {
		r = -errno;
		buf[len] = '\0';
		r = dir_error(b, buf, r);
	}
	closedir(dir);
	return r;
}

static int walk(const char *path, unsigned int flags, const char *socket, duet_residency_fn fn,
		void *ud)
{
	struct batch *b = calloc(1, sizeof(*b));
	char *buf = malloc(PATH_MAX);
	struct stat st;
	int fd = -1, r;

	if (!b || !buf) {
		r = -ENOMEM;
		goto out;
	}
	b->fn = fn;
	b->ud = ud;
	b->flags = flags;
	b->socket = socket;
	b->dfd = -1;
	/* root counts every file itself. */
	if (!geteuid())
		b->derr = -EPERM;
	if (!realpath(path, buf)) {
		r = -errno;
		goto out;
	}
	fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOTDIR) {
		/* One file: named by its directory and its name. */
		char *slash = strrchr(buf, '/');
		int dfd;

		*slash = '\0';
		dfd = open(slash == buf ? "/" : buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
		*slash = '/';
		if (dfd < 0) {
			r = -errno;
			goto out;
		}
		if (fstatat(dfd, slash + 1, &st, 0) || !S_ISREG(st.st_mode)) {
			r = errno ? -errno : -EINVAL;
			close(dfd);
			goto out;
		}
		r = one_file(b, dfd, slash + 1, buf);
		close(dfd);
	} else if (fd < 0) {
		r = -errno;
		goto out;
	} else {
		if (fstat(fd, &st)) {
			r = -errno;
			close(fd);
			goto out;
		}
		b->top_dev = st.st_dev;
		r = walk_dir(b, fd, buf, strlen(buf), true);
	}
	if (!r)
		r = flush(b);
	if (!r)
		r = b->count;
out:
	if (b) {
		for (size_t i = 0; i < b->n; i++)
			free(b->path[i]);
		if (b->dfd >= 0)
			close(b->dfd);
		free(b->rbuf);
	}
	free(b);
	free(buf);
	return r;
}

/* ---- a dataset, from duetd ---- */

static int hello(int fd, uint32_t *seq)
{
	struct dp_hello h = { .version = DP_VERSION, .flags = DP_HELLO_FLAGS(DP_MINOR, 0) };
	struct dp_welcome w;
	void *rbuf = NULL;
	size_t cap = 0, blen = 0;
	int r = cl_call(fd, seq, DP_HELLO, &h, sizeof(h), NULL, 0, &rbuf, &cap, &blen, NULL);

	if (r >= 0 && dp_welcome_get(rbuf, blen, &w))
		r = -EPROTO;
	if (r >= 0 && w.version != DP_VERSION)
		r = -EPROTONOSUPPORT;
	if (r >= 0 && w.minor < 2)
		r = -EOPNOTSUPP;	/* a duetd from before datasets */
	free(rbuf);
	return r < 0 ? r : 0;
}

static int from_daemon(const char *path, const struct duet_residency_opts *o,
		       duet_residency_fn fn, void *ud)
{
	struct batch *b = calloc(1, sizeof(*b));
	char *abs = NULL, *np = NULL, *pbuf = malloc(DP_MAX_PATH + 1);
	struct dp_residency rq = { 0 };
	void *rbuf = NULL;
	size_t cap = 0, blen = 0, nl = strlen(o->dataset), pl = 0;
	uint32_t seq = 0;
	int fd = -1, r;

	if (!b || !pbuf) {
		r = -ENOMEM;
		goto out;
	}
	b->fn = fn;
	b->ud = ud;
	b->dfd = -1;
	b->derr = -EPERM;	/* the daemon's figures are final */
	if (!nl || nl > DP_MAX_NAME || strchr(o->dataset, '/')) {
		r = -EINVAL;
		goto out;
	}
	if (path) {
		abs = realpath(path, NULL);
		if (!abs) {
			r = -errno;
			goto out;
		}
		pl = strlen(abs);
		if (pl > DP_MAX_PATH) {
			r = -ENAMETOOLONG;
			goto out;
		}
	}
	np = malloc(nl + pl + 1);
	if (!np) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(np, o->dataset, nl);
	if (pl)
		memcpy(np + nl, abs, pl);
	r = cl_connect(sock_path(o->socket), &fd);
	if (!r)
		r = hello(fd, &seq);
	rq.name_len = (uint16_t)nl;
	rq.path_len = (uint16_t)pl;
	while (!r) {
		struct dp_resid_reply rr;
		struct dp_resid_entry e;
		size_t off;
		int x;

		r = cl_call(fd, &seq, DP_RESIDENCY, &rq, sizeof(rq), rq.flags ? NULL : np,
			    rq.flags ? 0 : nl + pl, &rbuf, &cap, &blen, NULL);
		if (r < 0)
			break;
		r = dp_resid_reply_get(rbuf, blen, &rr, &off) ? -EPROTO : 0;
		while (!r && (x = dp_next_resid(rbuf, blen, &off, &rr, &e, pbuf)) > 0) {
			struct duet_residency d = {
				.id = { e.ino, e.gen, e.dev, 0 },
				.size = e.size, .cached = e.cached, .dirty = e.dirty,
				.writeback = e.writeback, .error = e.error, .flags = e.flags,
			};

			r = put(b, &d, pbuf);
		}
		if (!r && x < 0)
			r = -EPROTO;
		if (!r)
			r = flush(b);
		if (r || !rr.more)
			break;
		rq = (struct dp_residency){ .flags = DP_RESID_NEXT };
	}
	if (!r)
		r = b->count;
out:
	if (fd >= 0)
		close(fd);
	if (b)
		for (size_t i = 0; i < b->n; i++)
			free(b->path[i]);
	free(b);
	free(abs);
	free(np);
	free(pbuf);
	free(rbuf);
	return r;
}

EXPORT int duet_residency(const char *path, const struct duet_residency_opts *opts,
			  duet_residency_fn fn, void *ud)
{
	struct duet_residency_opts o = { .sz = sizeof(o) };

	if (!fn)
		return -EINVAL;
	if (opts) {
		/* The first (and only) published size, or a newer one's zeros. */
		if (opts->sz < sizeof(o))
			return -EINVAL;
		for (size_t i = sizeof(o); i < opts->sz; i++)
			if (((const unsigned char *)opts)[i])
				return -EINVAL;
		memcpy(&o, opts, sizeof(o));
		o.sz = sizeof(o);
	}
	if (o.flags & ~(DUET_RESIDENCY_RECURSIVE | DUET_RESIDENCY_CACHED_ONLY | DUET_RESIDENCY_XDEV))
		return -EINVAL;
	if (o.dataset)
		return from_daemon(path, &o, fn, ud);
	if (!path)
		return -EINVAL;
	return walk(path, o.flags, o.socket, fn, ud);
}
