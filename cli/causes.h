/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Why a page left the page cache, told from the task that removed it:
 * the classification duet report and duet top share.
 */
#ifndef DUET_CLI_CAUSES_H
#define DUET_CLI_CAUSES_H

#include <stdbool.h>

enum cause {
	CAUSE_KSWAPD,
	CAUSE_DIRECT,
	CAUSE_DROP,
	CAUSE_KERNEL,
	CAUSE_PROCESS,
	CAUSE_NR,
};

extern const char *const cause_names[CAUSE_NR];

/*
 * Comms whose removals count as drop_caches (comma-separated; the default
 * is sh,bash,dash,zsh,ash,busybox,tee,sysctl). list must stay valid.
 */
void cause_set_drop_comms(const char *list);

/*
 * The cause of a removal by task pid named comm; in_direct: the task is
 * between vmscan's direct (memcg, node) reclaim begin and end.
 */
enum cause cause_classify(int pid, const char *comm, bool in_direct);

#endif
