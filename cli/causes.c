// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Removal causes (causes.h), shared by duet report and duet top.
 */
#include <stdbool.h>
#include <string.h>

#include "causes.h"

const char *const cause_names[CAUSE_NR] = {
	[CAUSE_KSWAPD] = "kswapd",
	[CAUSE_DIRECT] = "direct-reclaim",
	[CAUSE_DROP] = "drop-caches",
	[CAUSE_KERNEL] = "kernel",
	[CAUSE_PROCESS] = "truncate/unlink/invalidate",
};

/*
 * Drop_caches is written by a shell (echo 3 > /proc/sys/vm/drop_caches),
 * tee or sysctl in nearly every script; its removals run in that task.
 * No event names the write itself, so these comms are the rule.
 */
static const char *drop_comms = "sh,bash,dash,zsh,ash,busybox,tee,sysctl";

void cause_set_drop_comms(const char *list)
{
	drop_comms = list;
}

static bool drop_writer(const char *comm)
{
	size_t n = strlen(comm);

	for (const char *p = drop_comms; *p;) {
		const char *e = strchrnul(p, ',');

		if ((size_t)(e - p) == n && !memcmp(p, comm, n))
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

enum cause cause_classify(int pid, const char *comm, bool in_direct)
{
	if (in_direct)
		return CAUSE_DIRECT;
	if (!strncmp(comm, "kswapd", 6))
		return CAUSE_KSWAPD;
	if (drop_writer(comm))
		return CAUSE_DROP;
	/* DAMON's pageout (kdamond) reclaims too, as on this VM. */
	if (pid == 0 || !strncmp(comm, "kworker", 7) || !strncmp(comm, "khugepaged", 10) ||
	    !strncmp(comm, "kcompactd", 9) || !strncmp(comm, "kdamond", 7))
		return CAUSE_KERNEL;
	return CAUSE_PROCESS;
}
