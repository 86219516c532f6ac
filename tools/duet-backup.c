// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet-backup: copy a tree (files, directories, symlinks, hard links,
 * holes, modes, owners, times), files whose pages are cached first. See
 * duet-backup(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define BUF_SIZE (1u << 20)
#define MAX_TRIES 5

struct bk_file {
	struct stat copied;	/* source as copied (fstat before and after agreed) */
	bool ok;
};

static const char *dst_root;
static char *buf;
static unsigned long tmp_counter;
static bool is_root;
static uint64_t n_files, n_dirs, n_links, n_symlinks, n_bytes;
static uint64_t n_again_during, n_again_after;	/* copies repeated */
static struct tl_ctx *ctx;	/* for the test hook in copy_range */
static bool first_chunk;

static char *dst_path(const char *rel)
{
	char *p;

	if (asprintf(&p, "%s%s%s", dst_root, *rel ? "/" : "", rel) < 0)
		abort();
	return p;
}

/* A temporary name next to final (same directory, short: names may be 255 bytes). */
static char *tmp_name(const char *final)
{
	const char *slash = strrchr(final, '/');
	int dl = slash ? (int)(slash - final) : 0;
	char *p;

	if (asprintf(&p, "%.*s%s.duet-backup.%d.%lu.tmp", dl, final, slash ? "/" : "",
		     (int)getpid(), tmp_counter++) < 0)
		abort();
	return p;
}

/* Create the missing parents of dst-relative rel (0700: the walk sets their
 * metadata at the end). */
static int make_parents(const char *rel)
{
	char *p = dst_path(rel), *s = p + strlen(dst_root) + 1;
	int r = 0;

	while ((s = strchr(s, '/'))) {
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST) {
			r = -errno;
			break;
		}
		*s++ = '/';
	}
	free(p);
	return r;
}

static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int write_all(int fd, const char *p, size_t n, off_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Copy [off, end) of in to out. Returns bytes copied or -errno (-EIO on
 * the read side is told apart by *rd). */
static int copy_range(int in, int out, off_t off, off_t end, bool *rd)
{
	while (off < end) {
		size_t want = (size_t)(end - off) < BUF_SIZE ? (size_t)(end - off) : BUF_SIZE;
		ssize_t n = pread(in, buf, want, off);
		int r;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			*rd = true;
			return -errno;
		}
		if (n == 0)
			break;	/* shrank meanwhile: fstat afterwards tells */
		if (first_chunk) {
			first_chunk = false;
			tl_test_reading(ctx);
		}
		r = write_all(out, buf, (size_t)n, off);
		if (r)
			return r;
		/* buf is written: copy what the others bring in meanwhile */
		if ((uint64_t)(off + n) / TL_POLL_CHUNK != (uint64_t)off / TL_POLL_CHUNK)
			tl_between(ctx);
		off += n;
	}
	return 0;
}

/* Copy the data of in to out, keeping holes. */
static int copy_data(int in, int out, off_t size, bool *rd)
{
	off_t off = 0;

	while (off < size) {
		off_t data = lseek(in, off, SEEK_DATA), hole;
		int r;

		if (data < 0) {
			if (errno == ENXIO)
				break;	/* only a hole is left */
			if (errno != EINVAL && errno != EOPNOTSUPP) {
				*rd = true;
				return -errno;
			}
			return copy_range(in, out, off, size, rd);	/* no SEEK_DATA */
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		if (hole > size)
			hole = size;
		r = copy_range(in, out, data, hole, rd);
		if (r)
			return r;
		off = hole;
	}
	return ftruncate(out, size) ? -errno : 0;
}

static void set_meta_fd(int fd, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	/* Owners only as root; otherwise the files are ours, as cp does. */
	if (is_root)
		(void)!fchown(fd, st->st_uid, st->st_gid);
	(void)fchmod(fd, st->st_mode & 07777);
	(void)futimens(fd, ts);
}

/* Copy source e to dst name rel; records what was copied in e->data. */
static void copy_file(struct tl_ctx *c, struct tl_entry *e, const char *rel)
{
	struct bk_file *bf = e->data;
	char *src = tl_path(c, e->rel), *dst = dst_path(rel), *tmp = tmp_name(dst);
	struct stat before, after;
	int in, out = -1, r = 0, tries;
	bool rd = false;

	in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (in < 0) {
		tl_err(c, e->rel, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(in, &before) || !S_ISREG(before.st_mode)) {
		tl_err(c, e->rel, "not a regular file any more");
		goto fail;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0 && errno == ENOENT && !make_parents(rel))
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		tl_err(c, e->rel, "cannot create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	first_chunk = true;
	for (tries = 0;; tries++) {
		rd = false;
		r = copy_data(in, out, before.st_size, &rd);
		if (r)
			break;
		if (fstat(in, &after)) {
			r = -errno;
			rd = true;
			break;
		}
		if (same_version(&before, &after))
			break;
		/* it changed while we copied: again, from the start */
		before = after;
		n_again_during++;
		if (tries + 1 == MAX_TRIES) {
			tl_err(c, e->rel, "changed during each of %d copies; not copied", MAX_TRIES);
			goto fail;
		}
		if (ftruncate(out, 0)) {
			r = -errno;
			break;
		}
	}
	if (r) {
		if (rd)
			tl_err(c, e->rel, "read error: %s", strerror(-r));
		else
			tl_err(c, e->rel, "cannot write %s: %s", dst, strerror(-r));
		goto fail;
	}
	set_meta_fd(out, &before);
	if (close(out)) {
		out = -1;
		tl_err(c, e->rel, "cannot write %s: %s", dst, strerror(errno));
		goto fail;
	}
	out = -1;
	if (rename(tmp, dst)) {
		tl_err(c, e->rel, "cannot rename into place: %s", strerror(errno));
		goto fail;
	}
	close(in);
	bf->copied = before;
	bf->ok = true;
	tl_progress(c, (uint64_t)before.st_size);
	free(src);
	free(dst);
	free(tmp);
	return;
fail:
	if (out >= 0)
		close(out);
	unlink(tmp);
	if (in >= 0)
		close(in);
	e->flags |= TL_FAILED;
	bf->ok = false;
	free(src);
	free(dst);
	free(tmp);
}

/* dst name of link entry l becomes a hard link to first's copy. */
static void link_name(struct tl_ctx *c, struct tl_entry *first, struct tl_entry *l)
{
	char *from = dst_path(first->rel), *to = dst_path(l->rel), *tmp = tmp_name(to);

	if (link(from, tmp) && !(errno == ENOENT && !make_parents(l->rel) && !link(from, tmp)))
		tl_err(c, l->rel, "cannot link to %s: %s", from, strerror(errno));
	else if (rename(tmp, to))
		tl_err(c, l->rel, "cannot rename into place: %s", strerror(errno)), unlink(tmp);
	free(from);
	free(to);
	free(tmp);
}

/* Copy a file (again): the first name, then every other name linked so far. */
static void backup_file(struct tl_ctx *c, struct tl_entry *e)
{
	copy_file(c, e, e->rel);
	if (!((struct bk_file *)e->data)->ok || e->st.st_nlink < 2)
		return;
	for (int i = e->idx + 1; i < c->n; i++) {
		struct tl_entry *l = c->e[i];

		if (l->link == e->idx && (l->flags & TL_DONE) && !(l->flags & TL_FAILED))
			link_name(c, e, l);
	}
}

static bool changed_since_copy(struct tl_ctx *c, struct tl_entry *e)
{
	struct bk_file *bf = e->data;
	char *p = tl_path(c, e->rel);
	struct stat st;
	bool ch;

	ch = !lstat(p, &st) && S_ISREG(st.st_mode) &&
	     (!same_version(&st, &bf->copied) ||
	      st.st_ctim.tv_sec != bf->copied.st_ctim.tv_sec ||
	      st.st_ctim.tv_nsec != bf->copied.st_ctim.tv_nsec);
	free(p);
	return ch;
}

static void do_symlink(struct tl_ctx *c, struct tl_entry *e)
{
	char *src = tl_path(c, e->rel), *dst = dst_path(e->rel), *tmp = tmp_name(dst);
	char *target = malloc((size_t)e->st.st_size + 2);
	struct timespec ts[2] = { e->st.st_atim, e->st.st_mtim };
	ssize_t n;

	if (!target)
		abort();
	n = readlink(src, target, (size_t)e->st.st_size + 1);
	if (n < 0 || n > e->st.st_size) {
		tl_err(c, e->rel, "cannot read link: %s", n < 0 ? strerror(errno) : "changed");
		e->flags |= TL_FAILED;
		goto out;
	}
	target[n] = '\0';
	if (symlink(target, tmp) && !(errno == ENOENT && !make_parents(e->rel) && !symlink(target, tmp))) {
		tl_err(c, e->rel, "cannot create symlink: %s", strerror(errno));
		e->flags |= TL_FAILED;
		goto out;
	}
	if (is_root)
		(void)!lchown(tmp, e->st.st_uid, e->st.st_gid);
	(void)utimensat(AT_FDCWD, tmp, ts, AT_SYMLINK_NOFOLLOW);
	if (rename(tmp, dst)) {
		tl_err(c, e->rel, "cannot rename into place: %s", strerror(errno));
		unlink(tmp);
		e->flags |= TL_FAILED;
		goto out;
	}
	n_symlinks++;
out:
	free(target);
	free(src);
	free(dst);
	free(tmp);
}

static void visit(struct tl_ctx *c, struct tl_entry *e, int why)
{
	mode_t m = e->st.st_mode;

	if (why == TL_DIRTY) {
		/* written to: copy now if not yet, again if it changed since */
		if (!(e->flags & TL_DONE)) {
			backup_file(c, e);
			tl_done(c, e);
		} else if (((struct bk_file *)e->data)->ok && changed_since_copy(c, e)) {
			n_again_after++;
			backup_file(c, e);
		}
		return;
	}
	if (S_ISDIR(m)) {
		char *d = dst_path(e->rel);
		struct stat st;

		if (mkdir(d, 0700) && !(errno == EEXIST && !stat(d, &st) && S_ISDIR(st.st_mode))) {
			tl_err(c, e->rel, "cannot create directory %s: %s", d, strerror(errno));
			e->flags |= TL_FAILED;
		} else if (*e->rel) {
			n_dirs++;
		}
		free(d);
	} else if (S_ISLNK(m)) {
		do_symlink(c, e);
	} else if (S_ISREG(m) && e->link != e->idx) {
		struct tl_entry *first = c->e[e->link];

		if (((struct bk_file *)first->data)->ok) {
			link_name(c, first, e);
			n_links++;
		}
	} else if (S_ISREG(m)) {
		backup_file(c, e);
	} else {
		if (!c->quiet) {
			char *p = tl_path(c, e->rel);

			fprintf(stderr, "%s: ", c->prog);
			tl_put_escaped(stderr, p);
			fputs(": skipped: not a regular file, directory or symlink\n", stderr);
			free(p);
		}
	}
	tl_done(c, e);
}

/* Directories last, deepest first: their contents no longer change them. */
static void dir_metadata(struct tl_ctx *c)
{
	for (int i = c->n - 1; i >= 0; i--) {
		struct tl_entry *e = c->e[i];
		struct timespec ts[2] = { e->st.st_atim, e->st.st_mtim };
		char *d;

		if (!S_ISDIR(e->st.st_mode) || (e->flags & TL_FAILED))
			continue;
		d = dst_path(e->rel);
		if (is_root && lchown(d, e->st.st_uid, e->st.st_gid))
			tl_err(c, e->rel, "cannot set owner of %s: %s", d, strerror(errno));
		if (chmod(d, e->st.st_mode & 07777))
			tl_err(c, e->rel, "cannot set mode of %s: %s", d, strerror(errno));
		if (utimensat(AT_FDCWD, d, ts, AT_SYMLINK_NOFOLLOW))
			tl_err(c, e->rel, "cannot set times of %s: %s", d, strerror(errno));
		free(d);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: duet-backup [--no-duet] [--no-polite] [-q] SRC DST\n"
		   "Copy the tree SRC to DST, files whose pages are cached first.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "no-duet", no_argument, NULL, 'n' },
		{ "no-polite", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool quiet = false, no_duet = false, no_polite = false;
	struct tl_ctx c;
	struct stat st;
	int o;

	while ((o = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			no_duet = true;
			break;
		case 'P':
			no_polite = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	buf = malloc(BUF_SIZE);
	if (!buf)
		return 2;
	is_root = geteuid() == 0;
	tl_init(&c, "duet-backup", argv[optind], quiet, no_duet);
	c.no_polite = no_polite;
	/* Registration overlaps the listing; tl_duet_start() waits for it. */
	tl_duet_begin(&c, true);
	ctx = &c;
	c.what = "copied";
	dst_root = argv[optind + 1];
	if (tl_list(&c))
		return 2;
	if (!S_ISDIR(c.e[0]->st.st_mode)) {
		fprintf(stderr, "duet-backup: %s: not a directory\n", c.root);
		return 2;
	}
	if (mkdir(dst_root, 0700) && !(errno == EEXIST && !stat(dst_root, &st) && S_ISDIR(st.st_mode))) {
		fprintf(stderr, "duet-backup: cannot create %s: %s\n", dst_root,
			errno == EEXIST ? "exists and is not a directory" : strerror(errno));
		return 2;
	}
	/* A destination inside the source (existing before) is not copied into itself. */
	if (stat(dst_root, &st) == 0) {
		for (int i = 1; i < c.n; i++) {
			struct tl_entry *e = c.e[i];
			size_t l = strlen(e->rel);

			if (!S_ISDIR(e->st.st_mode) || e->st.st_dev != st.st_dev ||
			    e->st.st_ino != st.st_ino)
				continue;
			for (int j = i; j < c.n; j++)
				if (!strncmp(c.e[j]->rel, e->rel, l) &&
				    (!c.e[j]->rel[l] || c.e[j]->rel[l] == '/'))
					c.e[j]->flags |= TL_DONE | TL_FAILED;
			break;
		}
	}
	for (int i = 0; i < c.n; i++) {
		if (c.e[i]->flags & TL_DONE)
			continue;
		c.e[i]->flags |= TL_WANT;
		if (S_ISREG(c.e[i]->st.st_mode)) {
			c.e[i]->data = calloc(1, sizeof(struct bk_file));
			if (!c.e[i]->data)
				return 2;
			if (c.e[i]->link == i)
				c.total++;
		}
	}
	tl_duet_start(&c, true);
	tl_run(&c, visit);
	/* Files changed after their copy and not caught by a DIRTY item yet. */
	for (int i = 0; i < c.n; i++) {
		struct tl_entry *e = c.e[i];

		if (S_ISREG(e->st.st_mode) && e->link == i && ((struct bk_file *)e->data)->ok &&
		    changed_since_copy(&c, e)) {
			n_again_after++;
			backup_file(&c, e);
		}
	}
	dir_metadata(&c);
	tl_progress_end(&c);
	for (int i = 0; i < c.n; i++) {
		struct tl_entry *e = c.e[i];

		if (S_ISREG(e->st.st_mode) && e->link == i && ((struct bk_file *)e->data)->ok) {
			n_files++;
			n_bytes += (uint64_t)((struct bk_file *)e->data)->copied.st_size;
		}
	}
	if (!quiet)
		printf("%llu files (%llu bytes), %llu hard links, %llu symlinks, %llu directories copied%s\n",
		       (unsigned long long)n_files, (unsigned long long)n_bytes,
		       (unsigned long long)n_links, (unsigned long long)n_symlinks,
		       (unsigned long long)n_dirs, c.errors ? "; errors, see above" : "");
	if (!quiet)
		fprintf(stderr,
			"duet-backup: copied again: %llu files changed while copied, "
			"%llu changed after their copy\n",
			(unsigned long long)n_again_during, (unsigned long long)n_again_after);
	if (c.errors)
		fprintf(stderr, "duet-backup: %d problem%s\n", c.errors, c.errors == 1 ? "" : "s");
	o = c.errors ? 1 : 0;
	for (int i = 0; i < c.n; i++)
		free(c.e[i]->data);
	tl_free(&c);
	free(buf);
	return o;
}
