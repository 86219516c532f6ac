// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tracefs plumbing: mount, instance names that identify their owner,
 * removal of instances left by killed runs, format files, per-CPU stats.
 * The top-level buffer is never modified.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tracefs/tracefs.h>

#include "live.h"

/*
 * A pid alone can be reused; the start time (field 22 of /proc/PID/stat,
 * clock ticks since boot) pins the process.
 */
static int proc_starttime(pid_t pid, unsigned long long *ret)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may contain spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	p++;
	for (int field = 3; field <= 22; field++) {
		char *end;

		while (*p == ' ')
			p++;
		v = strtoull(p, &end, 10);
		if (end == p && field != 3)
			return -EBADMSG;
		if (field == 3)
			end = strchr(p, ' ');
		if (!end)
			return -EBADMSG;
		p = end;
	}
	*ret = v;
	return 0;
}

int dc_instance_name_self(char *buf, size_t len)
{
	unsigned long long st;
	int r = proc_starttime(getpid(), &st);

	if (r)
		return r;
	if ((size_t)snprintf(buf, len, DC_INSTANCE_PREFIX "%d-%llu", (int)getpid(), st) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int dc_tracefs_ensure(const char **dir)
{
	const char *path = NULL;

	/* Mounts tracefs at its usual place when nothing is mounted. */
	if (tracefs_tracing_dir_is_mounted(true, &path) < 0 || !path)
		return errno == EPERM || errno == EACCES ? -EACCES : -ENOENT;
	if (access(path, R_OK | X_OK))
		return -errno == -ENOENT ? -ENOENT : -EACCES;
	if (dir)
		*dir = path;
	return 0;
}

/*
 * Calls fn for each duet instance (DC_INSTANCE_PREFIX PID-STARTTIME),
 * telling whether its owner process is alive; returns the number of
 * calls that returned true.
 */
static int each_instance(bool (*fn)(const char *name, int pid, bool alive))
{
	const char *top;
	char path[4096];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (dc_tracefs_ensure(&top))
		return 0;
	snprintf(path, sizeof(path), "%s/instances", top);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		unsigned long long want, have;
		int pid, end = 0;

		if (sscanf(de->d_name, DC_INSTANCE_PREFIX "%d-%llu%n", &pid, &want, &end) != 2 ||
		    de->d_name[end] != '\0' || pid <= 0)
			continue;
		if (fn(de->d_name, pid, !proc_starttime(pid, &have) && have == want))
			n++;
	}
	closedir(d);
	return n;
}

static bool reap_one(const char *name, int pid, bool alive)
{
	struct tracefs_instance *inst;
	bool removed;

	(void)pid;
	if (alive)
		return false;
	inst = tracefs_instance_alloc(NULL, name);
	if (!inst)
		return false;
	removed = !tracefs_instance_destroy(inst);
	tracefs_instance_free(inst);
	return removed;
}

int dc_instances_reap(void)
{
	return each_instance(reap_one);
}

static bool other_alive(const char *name, int pid, bool alive)
{
	(void)name;
	return alive && pid != (int)getpid();
}

int dc_instances_others(void)
{
	return each_instance(other_alive);
}

int dc_event_format(const char *system, const char *name, char **text, size_t *len)
{
	int n = 0;
	char *t;

	if (!tracefs_event_file_exists(NULL, system, name, "format"))
		return -ENOENT;
	t = tracefs_event_file_read(NULL, system, name, "format", &n);
	if (!t)
		return errno ? -errno : -EIO;
	*text = t;
	*len = (size_t)n;
	return 0;
}

/* Both counters matter: overwrite mode overruns, non-overwrite drops. */
int dc_parse_cpu_stats(const char *text, uint64_t *overrun, uint64_t *dropped)
{
	const char *o, *d;

	o = strstr(text, "\noverrun:");
	if (o)
		o += 9;
	else if (!strncmp(text, "overrun:", 8))
		o = text + 8;
	d = strstr(text, "dropped events:");
	if (!o || !d)
		return -EPROTO;
	/* Outputs are written only on success. */
	*overrun = strtoull(o, NULL, 10);
	*dropped = strtoull(d + 15, NULL, 10);
	return 0;
}
