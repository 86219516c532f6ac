// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet status: which event semantics this kernel gives, and the duet
 * tracefs instances on the machine with their owners. (duetd's tasks will
 * be listed here too.)
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duet-cli.h"
#include "live.h"

static bool have(enum dc_src src)
{
	char *text;
	size_t len;
	struct dc_layout l;
	int r = dc_event_format(dc_src_info[src].system, dc_src_info[src].name, &text, &len);

	if (r)
		return false;
	/* Present and decodable: the layout must parse. */
	r = dc_layout_parse(src, text, len, &l);
	free(text);
	return !r;
}

int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false, first = true, exact, dirty_bdi, flush_inode;
	const char *dir, *dirty, *flush;
	char path[4096];
	struct dirent *de;
	int opt, r;
	DIR *d;

	while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else {
			fputs("usage: duet status [--json]\n"
			      "Shows the event semantics this kernel gives and duet's tracing instances.\n",
			      opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	r = dc_tracefs_ensure(&dir);
	if (r) {
		fprintf(stderr, "duet status: %s\n",
			r == -EACCES ? "reading tracefs needs root: run it as root" :
				       "tracefs is not available: mount -t tracefs nodev /sys/kernel/tracing");
		return 1;
	}
	exact = have(DC_SRC_P_DIRTY) && have(DC_SRC_P_WB_START);
	dirty_bdi = have(DC_SRC_WB_DIRTY);
	flush_inode = have(DC_SRC_SB_CLEAR_WB);
	dirty = exact ? "exact" : dirty_bdi ? "bdi-page" : "none";
	flush = exact ? "exact" : flush_inode ? "inode" : "none";
	if (json) {
		printf("{\"v\":1,\"added\":%s,\"removed\":%s,\"dirty\":\"%s\",\"flush\":\"%s\",\"instances\":[",
		       have(DC_SRC_ADD) ? "\"exact\"" : "\"none\"",
		       have(DC_SRC_DELETE) ? "\"exact\"" : "\"none\"", dirty, flush);
	} else {
		printf("ADDED    %s\n", have(DC_SRC_ADD) ? "exact per folio (filemap/mm_filemap_add_to_page_cache)" : "not available");
		printf("REMOVED  %s\n", have(DC_SRC_DELETE) ? "exact per folio (filemap/mm_filemap_delete_from_page_cache)" : "not available");
		printf("DIRTY    %s\n", exact ? "exact per folio (filemap/mm_filemap_dirty_folio: kernel patched)" :
				      dirty_bdi ? "per page from writeback/writeback_dirty_folio (bdi name mapped to devices)" :
						  "not available");
		printf("FLUSHED  %s\n", exact ? "exact per folio (filemap/mm_filemap_clear_dirty_for_io: kernel patched)" :
				      flush_inode ? "inode-level from writeback/sb_clear_inode_writeback (kernel not patched, see kernel-tracepoints/README.md)" :
						    "not available");
		printf("instances:\n");
	}
	snprintf(path, sizeof(path), "%s/instances", dir);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		unsigned long long start;
		char comm[64] = "", cpath[64];
		int pid, n = 0;
		FILE *f;

		if (sscanf(de->d_name, DC_INSTANCE_PREFIX "%d-%llu%n", &pid, &start, &n) != 2 ||
		    de->d_name[n])
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/comm", pid);
		f = fopen(cpath, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		/* The next duet run removes an instance whose owner is gone. */
		if (json)
			printf("%s{\"name\":\"%s\",\"pid\":%d,\"owner\":\"%s\"}", first ? "" : ",",
			       de->d_name, pid, comm);
		else
			printf("  %s  pid %d  %s\n", de->d_name, pid, comm[0] ? comm : "(gone: stale, removed by the next run)");
		first = false;
	}
	if (d)
		closedir(d);
	if (json)
		printf("]}\n");
	else if (first)
		printf("  (none)\n");
	return 0;
}
