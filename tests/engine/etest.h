/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared helpers for the engine tests: counted checks (a failure prints
 * its values and the test goes on), and a relevance callback driven by a
 * table of per-inode task masks.
 */
#ifndef DUET_TEST_ETEST_H
#define DUET_TEST_ETEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "../lib/check.h"

/*
 * The random sequences (xorshift64*): each test seeds rng (its sequences
 * are then the same in every run), rnd() draws, rndn(n) draws below n.
 */
static uint64_t rng;

static inline uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static inline uint64_t rndn(uint64_t n)
{
	return rnd() % n;
}

/* Relevance: inode i (< 64) is wanted by rel_mask[i]; calls are counted. */
#define REL_INODES 64
static uint64_t rel_mask[REL_INODES];
static uint64_t rel_gen[REL_INODES];
static unsigned int rel_calls[REL_INODES];

static uint64_t rel_fn(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	if (ino >= REL_INODES)
		return 0;
	rel_calls[ino]++;
	*gen = rel_gen[ino];
	return rel_mask[ino];
}

static inline struct de_engine *engine_new(void)
{
	struct de_engine_opts o = { .sz = sizeof(o), .relevant = rel_fn };
	struct de_engine *e = NULL;

	memset(rel_mask, 0xff, sizeof(rel_mask));
	memset(rel_gen, 0, sizeof(rel_gen));
	memset(rel_calls, 0, sizeof(rel_calls));
	if (de_engine_new(&o, &e) < 0) {
		fprintf(stderr, "de_engine_new failed\n");
		exit(TEST_ERROR);
	}
	return e;
}

#endif
