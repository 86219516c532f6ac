/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libduet: page-cache events for applications.
 *
 * Work in progress (issue 3): this header so far holds the types shared
 * with the engine. Every public symbol will be documented here and in a
 * man page.
 */
#ifndef DUET_DUET_H
#define DUET_DUET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Event-based masks: a task receives every transition since its last fetch.
 * State-based masks: a task receives only the net change since its last
 * fetch, expressed with the event names (ADDED or REMOVED for EXISTS,
 * DIRTY or FLUSHED for MODIFIED); a change that cancelled is never
 * delivered. EXISTS with ADDED or REMOVED, or MODIFIED with DIRTY or
 * FLUSHED, is rejected (-EINVAL).
 */
#define DUET_ADDED	0x01u	/* page entered the page cache */
#define DUET_REMOVED	0x02u	/* page left it */
#define DUET_DIRTY	0x04u	/* page went from clean to dirty */
#define DUET_FLUSHED	0x08u	/* page went from dirty to clean (written back) */
#define DUET_EXISTS	0x10u	/* state: whether the page is cached */
#define DUET_MODIFIED	0x20u	/* state: whether the page is dirty */

/* Item flags. */
#define DUET_ITEM_LOST		0x01u	/* events were lost: drop your view; a resync follows */
#define DUET_ITEM_INODE_LEVEL	0x02u	/* FLUSHED known only per inode (stock kernel) */

/*
 * One item: a run of adjacent pages of one file in the same state.
 * dev uses the kernel's encoding (major << 20 | minor); gen guards against
 * inode number reuse: the same (dev, ino) with another gen is another file.
 */
struct duet_item {
	uint64_t ino;
	uint64_t gen;
	uint64_t index;		/* first page */
	uint64_t count;		/* pages */
	uint32_t dev;
	uint32_t state;		/* DUET_ADDED ... DUET_FLUSHED */
	uint32_t flags;		/* DUET_ITEM_* */
	uint32_t reserved;
};

#ifdef __cplusplus
}
#endif

#endif
