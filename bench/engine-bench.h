/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the engine's benchmarks (bench-engine, bench-engine-cycle):
 * every inode relevant to all_tasks, and a monotonic clock in seconds.
 */
#ifndef DUET_BENCH_ENGINE_BENCH_H
#define DUET_BENCH_ENGINE_BENCH_H

#include <stdint.h>
#include <time.h>

static uint64_t all_tasks;

static uint64_t relevant(void *ud, uint32_t dev, uint64_t ino, uint64_t *gen)
{
	(void)ud, (void)dev, (void)ino;
	*gen = 1;
	return all_tasks;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
