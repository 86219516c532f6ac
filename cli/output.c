// SPDX-License-Identifier: LGPL-2.1-or-later
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <uthash.h>

#include "output.h"

/* A comm is at most TASK_COMM_LEN (16) bytes: 32 leaves room to spare. */
#define COMM_LEN 32
#define COMM_SCAN "%31[^\n]"	/* COMM_LEN - 1 characters */

struct comm_ent {
	int pid;
	char comm[COMM_LEN];
	UT_hash_handle hh;
};

static struct comm_ent *comms;

/* The kernel's saved_cmdlines remembers comms of tasks that already exited. */
static bool saved_cmdline(int pid, char *out, size_t len)
{
	FILE *f = fopen("/sys/kernel/tracing/saved_cmdlines", "re");
	char line[128];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char name[COMM_LEN];
		int p;

		if (sscanf(line, "%d " COMM_SCAN, &p, name) == 2 && p == pid) {
			snprintf(out, len, "%s", name);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

const char *out_comm(int pid)
{
	struct comm_ent *c;
	char path[64];
	FILE *f;

	if (pid < 0)
		return "-";
	HASH_FIND_INT(comms, &pid, c);
	if (c)
		return c->comm;
	c = calloc(1, sizeof(*c));
	if (!c)
		return "-";
	c->pid = pid;
	if (pid == 0) {
		strcpy(c->comm, "swapper");
	} else {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(c->comm, sizeof(c->comm), f))
				c->comm[strcspn(c->comm, "\n")] = '\0';
			fclose(f);
		}
		if (!c->comm[0] && !saved_cmdline(pid, c->comm, sizeof(c->comm)))
			strcpy(c->comm, "-");
	}
	HASH_ADD_INT(comms, pid, c);
	return c->comm;
}

void out_comm_cache_free(void)
{
	struct comm_ent *c, *t;

	HASH_ITER(hh, comms, c, t) {
		HASH_DEL(comms, c);
		free(c);
	}
}

static void json_line(struct out_ctx *o, struct json_object *j)
{
	fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE),
	      o->f);
	fputc('\n', o->f);
	json_object_put(j);
}

void out_event(struct out_ctx *o, const struct out_event *e)
{
	const struct dc_record *r = &e->r;
	bool inode_level = r->flags & DC_REC_INODE_LEVEL;
	char dev[32];

	snprintf(dev, sizeof(dev), "%u:%u", dc_kdev_major(r->dev), dc_kdev_minor(r->dev));
	if (o->json) {
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "v", json_object_new_int(DUET_JSON_SCHEMA));
		json_object_object_add(j, "type", json_object_new_string("event"));
		json_object_object_add(j, "ts", json_object_new_uint64(r->ts));
		json_object_object_add(j, "event", json_object_new_string(dc_type_name(r->type)));
		json_object_object_add(j, "dev", json_object_new_string(dev));
		json_object_object_add(j, "ino", json_object_new_uint64(r->ino));
		json_object_object_add(j, "index", json_object_new_uint64(r->index));
		json_object_object_add(j, "count", json_object_new_uint64(r->count));
		json_object_object_add(j, "inode_level", json_object_new_boolean(inode_level));
		json_object_object_add(j, "pid", json_object_new_int(r->pid));
		json_object_object_add(j, "comm", json_object_new_string(out_comm(r->pid)));
		json_object_object_add(j, "cpu", json_object_new_int(r->cpu));
		json_object_object_add(j, "path", json_object_new_string(e->path));
		json_object_object_add(j, "deleted", json_object_new_boolean(e->deleted));
		json_line(o, j);
		return;
	}
	{
		double t = r->ts >= o->t0 ? (double)(r->ts - o->t0) / 1e9 : 0;
		char range[64];

		if (inode_level)
			snprintf(range, sizeof(range), "all (inode-level)");
		else if (r->count == 1)
			snprintf(range, sizeof(range), "%" PRIu64, r->index);
		else
			snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64 " (%" PRIu64 ")",
				 r->index, r->index + r->count - 1, r->count);
		fprintf(o->f, "%11.6f %-7s %-7s ino %-8" PRIu64 " pages %-18s pid %-7d %-15s %s%s\n",
			t, dc_type_name(r->type), dev, r->ino, range, r->pid, out_comm(r->pid),
			e->path, e->deleted ? " (deleted)" : "");
	}
}

void out_lost(struct out_ctx *o, uint64_t ts, unsigned int cpu, uint64_t count,
	      bool known, const char *source)
{
	if (o->json) {
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "v", json_object_new_int(DUET_JSON_SCHEMA));
		json_object_object_add(j, "type", json_object_new_string("lost"));
		json_object_object_add(j, "ts", json_object_new_uint64(ts));
		json_object_object_add(j, "cpu", json_object_new_int((int)cpu));
		json_object_object_add(j, "count", json_object_new_uint64(count));
		json_object_object_add(j, "count_known", json_object_new_boolean(known));
		json_object_object_add(j, "source", json_object_new_string(source));
		json_line(o, j);
		return;
	}
	fprintf(o->f, "%11.6f LOST    cpu %u: %s%" PRIu64 " events lost (%s)\n",
		ts >= o->t0 ? (double)(ts - o->t0) / 1e9 : 0.0, cpu, known ? "" : "at least ",
		count, source);
}
