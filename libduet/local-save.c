// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process backend's persistence of done marks (local.h): "duet-done
 * 1", then one line per mark, "INO INDEX COUNT PATH", the path relative
 * to the task's directory.
 *
 * The marks are gathered with the session lock held, then checked and
 * written without it: a visibility check runs as the client (a system
 * call each), and the file is written with whatever rights the caller has
 * (duetd: the client's).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"

struct save_mark {
	uint64_t ino, index, count;
	char *path;
};

struct save_ctx {
	struct local_task *t;
	struct save_mark *m;
	size_t n, cap;
	int err;
};

static int save_one(void *ud, const struct de_file *f, uint64_t index, uint64_t count)
{
	struct save_ctx *c = ud;
	char path[PATH_MAX];

	/* Marks are saved by path relative to the directory: device numbers
	 * of loop devices and btrfs change across reboots. */
	if (dc_index_name_under(c->t->s->x, f->dev, f->ino, c->t->root, path, sizeof(path),
				NULL))
		return 0;	/* no name any more: nothing to resume */
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct save_mark *n = realloc(c->m, cap * sizeof(*n));

		if (!n) {
			c->err = -ENOMEM;
			return 1;
		}
		c->m = n;
		c->cap = cap;
	}
	c->m[c->n].ino = f->ino;
	c->m[c->n].index = index;
	c->m[c->n].count = count;
	c->m[c->n].path = strdup(path);
	if (!c->m[c->n].path) {
		c->err = -ENOMEM;
		return 1;
	}
	c->n++;
	return 0;
}

int local_task_save(struct duet_task *dt, const char *file)
{
	struct local_task *t = local_task(dt);
	struct save_ctx c = { .t = t };
	char tmp[PATH_MAX];
	FILE *f;
	int r;

	/* api.c checked that FILE.tmp fits. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= sizeof(tmp))
		return -EINVAL;
	pthread_mutex_lock(&t->s->lock);
	r = de_done_foreach(t->s->e, t->slot, save_one, &c);
	pthread_mutex_unlock(&t->s->lock);
	if (c.err)
		r = c.err;
	if (r < 0)
		goto out;
	f = fopen(tmp, "we");
	if (!f) {
		r = -errno;
		goto out;
	}
	fprintf(f, "duet-done 1\n");
	for (size_t i = 0; i < c.n; i++) {
		const struct save_mark *m = &c.m[i];

		/* Only what the client could see leaves in the file. */
		if (t->visible && !t->visible(t->vis_ud, m->path))
			continue;
		if (fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", m->ino, m->index,
			    m->count, m->path + strlen(t->root)) < 0)
			r = -EIO;
	}
	if (fflush(f) || fsync(fileno(f)))
		r = -errno;
	fclose(f);
	if (!r && rename(tmp, file))
		r = -errno;
	if (r)
		unlink(tmp);
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.m[i].path);
	free(c.m);
	return r;
}

int local_task_load(struct duet_task *dt, const char *file)
{
	struct local_task *t = local_task(dt);
	char line[PATH_MAX + 128];
	int r = 0, n = 0;
	FILE *f;

	f = fopen(file, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f) || strcmp(line, "duet-done 1\n")) {
		fclose(f);
		return -EBADMSG;
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t ino, index, count;
		struct duet_fileid id;
		char rel[PATH_MAX], path[PATH_MAX * 2];
		int off = 0;

		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %n", &ino, &index, &count,
			   &off) != 3 || !off) {
			r = -EBADMSG;
			break;
		}
		snprintf(rel, sizeof(rel), "%s", line + off);
		rel[strcspn(rel, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s%s", t->root, rel);
		/* A file replaced since the save (another inode) is not done. */
		if (local_task_fileid(dt, path, &id) || id.ino != ino)
			continue;
		/* Nor one the client may not see (duetd's load runs as it). */
		if (t->visible && !t->visible(t->vis_ud, path))
			continue;
		r = local_task_done(dt, DUET__DONE_SET, &id, index, count);
		if (r)
			break;
		n++;
	}
	fclose(f);
	return r ? r : n;
}
