// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The engine's two hash tables (engine-int.h): the table of pending
 * entries, open addressing with Robin Hood probing, and the insertion
 * into the uthash table of inodes. The lookups are inline in
 * engine-int.h.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "engine-int.h"

/* ---- the entry table ---- */

/*
 * Large tables are mapped directly and marked for transparent huge pages:
 * lookups are random accesses, and with 4 KiB pages each one also missed
 * the TLB.
 */
#define TABLE_MMAP	(UINT64_C(2) << 20)

static struct de_entry *table_alloc(size_t cap)
{
	size_t bytes = cap * sizeof(struct de_entry);
	void *p;

	if (bytes < TABLE_MMAP)
		return calloc(cap, sizeof(struct de_entry));
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void table_free(struct de_entry *t, size_t cap)
{
	size_t bytes = cap * sizeof(struct de_entry);

	if (bytes < TABLE_MMAP)
		free(t);
	else if (t)
		munmap(t, bytes);
}

/*
 * Robin Hood insertion: en takes the slot of the first resident nearer
 * its home than en is, and the run up to the next free slot moves one
 * slot on (each of its entries one further from home). False, with the
 * table unchanged, if a distance would not fit in 16 bits.
 */
static bool table_place(struct de_entry *t, size_t cap, const struct de_entry *en)
{
	size_t m = cap - 1, i = entry_hash(en->inode, en->index) & m, j, k;
	unsigned int d;

	for (d = 0; t[i].inode && t[i].dist >= d; i = (i + 1) & m)
		if (++d == UINT16_MAX)
			return false;
	for (j = i; t[j].inode; j = (j + 1) & m)
		if (t[j].dist >= UINT16_MAX - 1)
			return false;
	for (k = j; k != i; k = (k - 1) & m) {
		t[k] = t[(k - 1) & m];
		t[k].dist++;
	}
	t[i] = *en;
	t[i].dist = d;
	return true;
}

static int entry_resize(struct de_engine *e, size_t cap)
{
	struct de_entry *old = e->slots, *n;
	size_t oldcap = e->cap, i;

	n = table_alloc(cap);
	if (!n)
		return -ENOMEM;
	for (i = 0; i < oldcap; i++) {
		if (old[i].inode && !table_place(n, cap, &old[i])) {
			table_free(n, cap);
			return -ENOMEM;
		}
	}
	table_free(old, oldcap);
	e->slots = n;
	e->cap = cap;
	return 0;
}

int eng_entry_insert(struct de_engine *e, struct de_inode *inode, uint32_t index,
		     uint8_t state, struct de_entry **ret)
{
	struct de_entry en = { .inode = inode, .index = index, .state = state };
	int r;

	/* Room for one more entry: load factor at most 3/4. */
	if ((e->count + 1) * 4 > e->cap * 3) {
		r = entry_resize(e, e->cap ? e->cap * 2 : ENTRY_MIN_CAP);
		if (r < 0)
			return r;
	}
	/* A probe run of 65,535 slots: grow rather than overflow dist. */
	while (!table_place(e->slots, e->cap, &en)) {
		r = entry_resize(e, e->cap * 2);
		if (r < 0)
			return r;
	}
	e->count++;
	if (!inode->pend)
		inode->pend = roaring_bitmap_create();
	roaring_bitmap_add(inode->pend, index);
	*ret = entry_find(e, inode, index);
	return 0;
}

void eng_entry_delete(struct de_engine *e, struct de_entry *en)
{
	size_t m = e->cap - 1, i = en - e->slots, j;

	if (en->flags & E_EXT) {
		free(en->t.ext);
		e->next--;
	}
	/* Backward shift: the run after the hole moves one slot nearer home. */
	for (;;) {
		j = (i + 1) & m;
		if (!e->slots[j].inode || !e->slots[j].dist)
			break;
		e->slots[i] = e->slots[j];
		e->slots[i].dist--;
		i = j;
	}
	e->slots[i].inode = NULL;
	e->count--;
	/* Give memory back once drained (load 1/8 -> 1/4); best effort. */
	if (e->cap > ENTRY_MIN_CAP && e->count * 8 < e->cap)
		entry_resize(e, e->cap / 2);
}

void eng_entries_free(struct de_engine *e)
{
	for (size_t i = 0; i < e->cap; i++)
		if (e->slots[i].inode && (e->slots[i].flags & E_EXT))
			free(e->slots[i].t.ext);
	table_free(e->slots, e->cap);
	e->slots = NULL;
	e->cap = e->count = 0;
}

/* ---- the inode table ---- */

/*
 * uthash reports a failed allocation only through this macro, which it
 * expands inside HASH_ADD: here it sets a flag in the adding call's own
 * frame. It was a thread-local, state outside the engine: right only
 * because every add reset and read it on one thread with nothing in
 * between, an argument the engine's promise (no locks, the caller
 * serialises each engine, nothing shared between engines) should not
 * need.
 */
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = true)

int eng_inode_get(struct de_engine *e, uint32_t dev, uint64_t ino, struct de_inode **ret)
{
	struct de_inode *inode = inode_find(e, dev, ino);
	bool oom = false;

	if (!inode) {
		inode = calloc(1, sizeof(*inode));
		if (!inode)
			return -ENOMEM;
		inode->key.ino = ino;
		inode->key.dev = dev;
		HASH_ADD(hh, e->inodes, key, sizeof(inode->key), inode);
		if (oom) {
			free(inode);
			return -ENOMEM;
		}
		e->ninodes++;
	}
	*ret = inode;
	return 0;
}
