// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon client's log of done marks (marklog.h). Each call does to
 * the file's marks what de_done_set() and de_done_reset() do to the
 * engine's (engine-done.c), state for state, so that replaying the log
 * leaves a new daemon with the marks the old one held, counted alike.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "marklog.h"
#include "rset.h"

struct ml_key {
	uint64_t ino;
	uint32_t dev;
	uint32_t zero;	/* keeps the key free of uninitialised padding */
};

/*
 * One file's marks: whole, or rs.b (never empty) holding the pages done,
 * or with inv the pages not done of a whole-file mark (the engine's
 * done_all, done_mask and done_inv bits of one task).
 */
struct ml_file {
	UT_hash_handle hh;
	struct ml_key key;
	uint64_t gen;
	bool whole, inv;
	struct de_rset rs;
};

/* CRoaring 0.2.66's roaring_bitmap_free() does not take NULL. */
static void bitmap_free(roaring_bitmap_t *b)
{
	if (b)
		roaring_bitmap_free(b);
}

static uint64_t file_marks(const struct ml_file *mf)
{
	if (mf->whole)
		return 1;
	return mf->rs.marks + mf->inv;
}

static void file_free(struct marklog *ml, struct ml_file *mf)
{
	ml->marks -= file_marks(mf);
	HASH_DEL(ml->files, mf);
	bitmap_free(mf->rs.b);
	free(mf);
}

/* f's entry, NULL if none; an entry for another gen of it is dropped. */
static struct ml_file *file_find(struct marklog *ml, const struct duet_fileid *f)
{
	struct ml_key k = { .ino = f->ino, .dev = f->dev };
	struct ml_file *mf;

	HASH_FIND(hh, ml->files, &k, sizeof(k), mf);
	if (mf && mf->gen != f->gen) {
		file_free(ml, mf);
		mf = NULL;
	}
	return mf;
}

static int file_new(struct marklog *ml, const struct duet_fileid *f, struct ml_file **ret)
{
	struct ml_file *mf = calloc(1, sizeof(*mf));

	if (!mf)
		return -ENOMEM;
	mf->key.ino = f->ino;
	mf->key.dev = f->dev;
	mf->gen = f->gen;
	HASH_ADD(hh, ml->files, key, sizeof(mf->key), mf);
	*ret = mf;
	return 0;
}

static int file_bitmap(struct ml_file *mf)
{
	if (!mf->rs.b)
		mf->rs.b = roaring_bitmap_create();
	return mf->rs.b ? 0 : -ENOMEM;
}

/* The file becomes done as a whole: its ranges go. */
static void file_whole(struct marklog *ml, struct ml_file *mf)
{
	ml->marks = ml->marks - file_marks(mf) + 1;
	bitmap_free(mf->rs.b);
	mf->rs = (struct de_rset){ 0 };
	mf->whole = true;
	mf->inv = false;
}

/*
 * Adds (add) or removes [a, z) of the file's set, which holds what done
 * means (inv says which): the pieces counted as the engine counts them.
 */
static void file_op(struct marklog *ml, struct ml_file *mf, bool add, uint64_t a, uint64_t z)
{
	uint64_t old = file_marks(mf);

	mf->rs.marks = rset_pieces_after(mf->rs.b, mf->rs.marks, add, a, z);
	if (add)
		roaring_bitmap_add_range(mf->rs.b, a, z);
	else
		roaring_bitmap_remove_range(mf->rs.b, a, z);
	ml->marks = ml->marks - old + file_marks(mf);
	rset_grew(&mf->rs, add, a, z);
}

static int check_range(uint64_t index, uint64_t count)
{
	if (index >= PAGE_LIMIT || count > PAGE_LIMIT - index)
		return -EOVERFLOW;
	return 0;
}

int marklog_set(struct marklog *ml, const struct duet_fileid *f, uint64_t index,
		uint64_t count)
{
	struct ml_file *mf;
	bool created = false;
	int r = check_range(index, count);

	if (r)
		return r;
	mf = file_find(ml, f);
	if (mf && mf->whole)
		return 0;	/* the engine's too: pages of a done file */
	if (!mf) {
		r = file_new(ml, f, &mf);
		if (r)
			return r;
		created = true;
	}
	if (!count) {
		file_whole(ml, mf);
		return 0;
	}
	if (mf->inv) {
		/* Whole file minus ranges: the pages done leave the set. */
		file_op(ml, mf, false, index, index + count);
		if (roaring_bitmap_is_empty(mf->rs.b))
			file_whole(ml, mf);
		return 0;
	}
	r = file_bitmap(mf);
	if (r) {
		if (created)
			file_free(ml, mf);
		return r;
	}
	file_op(ml, mf, true, index, index + count);
	return 0;
}

int marklog_reset(struct marklog *ml, const struct duet_fileid *f, uint64_t index,
		  uint64_t count)
{
	struct ml_file *mf;
	int r = check_range(index, count);

	if (r)
		return r;
	mf = file_find(ml, f);
	if (!mf)
		return 0;
	if (!count) {
		file_free(ml, mf);
		return 0;
	}
	if (mf->whole) {
		/* Whole file minus the range: the set holds the pages not done. */
		r = file_bitmap(mf);
		if (r)
			return r;
		mf->whole = false;	/* still one mark: the file's */
		mf->inv = true;
		file_op(ml, mf, true, index, index + count);
		return 0;
	}
	file_op(ml, mf, mf->inv, index, index + count);
	if (roaring_bitmap_is_empty(mf->rs.b))
		file_free(ml, mf);
	return 0;
}

static int foreach_run(const struct ml_file *mf, marklog_fn fn, void *ud)
{
	struct duet_fileid f = { .ino = mf->key.ino, .gen = mf->gen, .dev = mf->key.dev };
	uint64_t a, z = 0;
	int r;

	while (z < PAGE_LIMIT && rset_next_run(mf->rs.b, z, &a, &z)) {
		r = fn(ud, &f, a, z - a);
		if (r)
			return r;
	}
	return 0;
}

int marklog_foreach(const struct marklog *ml, enum duet__done_op op, marklog_fn fn, void *ud)
{
	const struct ml_file *mf, *tmp;
	int r = 0;

	HASH_ITER(hh, ml->files, mf, tmp) {
		struct duet_fileid f = { .ino = mf->key.ino, .gen = mf->gen, .dev = mf->key.dev };

		if (op == DUET__DONE_SET && (mf->whole || mf->inv))
			r = fn(ud, &f, 0, 0);
		else if (op == DUET__DONE_SET)
			r = foreach_run(mf, fn, ud);
		else if (op == DUET__DONE_RESET && mf->inv)
			r = foreach_run(mf, fn, ud);
		if (r)
			return r;
	}
	return 0;
}

uint64_t marklog_files(const struct marklog *ml)
{
	return HASH_COUNT(ml->files);
}

uint64_t marklog_bytes(const struct marklog *ml)
{
	const struct ml_file *mf, *tmp;
	uint64_t n = 0;

	HASH_ITER(hh, ml->files, mf, tmp) {
		roaring_statistics_t st;

		n += sizeof(*mf);
		if (!mf->rs.b)
			continue;
		roaring_bitmap_statistics(mf->rs.b, &st);
		n += st.n_bytes_array_containers + st.n_bytes_run_containers +
		     st.n_bytes_bitset_containers;
	}
	return n;
}

void marklog_clear(struct marklog *ml)
{
	struct ml_file *mf, *tmp;

	HASH_ITER(hh, ml->files, mf, tmp)
		file_free(ml, mf);
}
