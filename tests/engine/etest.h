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

static unsigned int check_n, check_failed;

#define CHECK(cond)							\
	do {								\
		check_n++;						\
		if (!(cond)) {						\
			check_failed++;					\
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",	\
				__FILE__, __LINE__, #cond);		\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		int64_t check_a_ = (int64_t)(a), check_b_ = (int64_t)(b); \
		check_n++;						\
		if (check_a_ != check_b_) {				\
			check_failed++;					\
			fprintf(stderr, "%s:%d: %s == %" PRId64		\
				", expected %s == %" PRId64 "\n",	\
				__FILE__, __LINE__, #a, check_a_, #b,	\
				check_b_);				\
		}							\
	} while (0)

static inline int check_exit(const char *name)
{
	printf("%s: %u checks, %u failed\n", name, check_n, check_failed);
	return check_failed ? 1 : 0;
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
		exit(1);
	}
	return e;
}

#endif
