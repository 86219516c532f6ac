// SPDX-License-Identifier: LGPL-2.1-or-later
/* Print the path of each file under DIR as its pages enter the page cache. */
#include <poll.h>
#include <stdio.h>
#include <duet/duet.h>

int main(int argc, char **argv)
{
	struct duet_task_opts to = { .sz = sizeof(to), .name = "cached-paths",
				     .mask = DUET_ADDED, .path = argc > 1 ? argv[1] : "." };
	struct duet_session *s;
	struct duet_task *t;
	struct duet_item it[64];
	int r = duet_session_new(NULL, &s);

	if (!r)
		r = duet_task_new(s, &to, &t);
	if (r) {
		fprintf(stderr, "cached-paths: %s\n", duet_strerror(r));
		return 1;
	}
	for (struct pollfd p = { duet_task_fd(t), POLLIN }; poll(&p, 1, -1) > 0;) {
		int n = duet_task_fetch(t, it, 64);

		for (int i = 0; i < n; i++) {
			struct duet_fileid f = duet_item_fileid(&it[i]);
			char path[4096];

			if (!duet_task_path(t, &f, path, sizeof(path)))
				printf("%s: pages %llu-%llu\n", path, (unsigned long long)it[i].index,
				       (unsigned long long)(it[i].index + it[i].count - 1));
		}
		fflush(stdout);
	}
	return 0;
}
