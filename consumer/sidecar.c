// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The sidecar FILE.duet (sidecar.h): written by duet record, read by duet
 * report. Owned here so that the writer and the reader cannot drift: the
 * format is what tests/unit/test-sidecar.c checks byte for byte.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <uthash.h>

#include "record.h"
#include "sidecar.h"

struct sc_key {
	uint32_t dev;
	uint32_t pad;		/* 0: the key is hashed as bytes */
	uint64_t ino;
};

struct sc_file {
	struct sc_key k;
	char *path;
	UT_hash_handle hh;	/* its list keeps the order of addition */
};

struct dc_sidecar {
	struct sc_file *files;
	struct dc_bdi *bdis;
	size_t nbdis;
};

int dc_sidecar_new(struct dc_sidecar **ret)
{
	struct dc_sidecar *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return -ENOMEM;
	*ret = sc;
	return 0;
}

void dc_sidecar_free(struct dc_sidecar *sc)
{
	struct sc_file *f, *tmp;

	if (!sc)
		return;
	HASH_ITER(hh, sc->files, f, tmp) {
		HASH_DEL(sc->files, f);
		free(f->path);
		free(f);
	}
	free(sc->bdis);
	free(sc);
}

static struct sc_file *find(const struct dc_sidecar *sc, uint32_t kdev, uint64_t ino)
{
	struct sc_key k = { .dev = kdev, .ino = ino };
	struct sc_file *f;

	HASH_FIND(hh, sc->files, &k, sizeof(k), f);
	return f;
}

int dc_sidecar_add_file(struct dc_sidecar *sc, uint32_t kdev, uint64_t ino, const char *path)
{
	struct sc_file *f;

	if (find(sc, kdev, ino))
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->k.dev = kdev;
	f->k.ino = ino;
	f->path = strdup(path);
	if (!f->path) {
		free(f);
		return -ENOMEM;
	}
	HASH_ADD(hh, sc->files, k, sizeof(f->k), f);
	return 0;
}

const char *dc_sidecar_path(const struct dc_sidecar *sc, uint32_t kdev, uint64_t ino)
{
	const struct sc_file *f = find(sc, kdev, ino);

	return f ? f->path : NULL;
}

size_t dc_sidecar_nfiles(const struct dc_sidecar *sc)
{
	return HASH_COUNT(sc->files);
}

const struct dc_bdi *dc_sidecar_bdis(const struct dc_sidecar *sc, size_t *n)
{
	*n = sc->nbdis;
	return sc->bdis;
}

/* ---- writing ---- */

static struct json_object *mounts_json(const struct dc_mounts *mounts, const uint32_t *devs,
				       size_t ndevs)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < mounts->n; i++) {
		const struct dc_mount *m = &mounts->m[i];
		struct json_object *mo;
		char dev[32];
		bool want = !ndevs;

		for (size_t j = 0; j < ndevs; j++)
			want |= devs[j] == m->kdev;
		if (!want)
			continue;
		mo = json_object_new_object();
		snprintf(dev, sizeof(dev), "%u:%u", dc_kdev_major(m->kdev), dc_kdev_minor(m->kdev));
		json_object_object_add(mo, "kdev", json_object_new_int64(m->kdev));
		json_object_object_add(mo, "dev", json_object_new_string(dev));
		json_object_object_add(mo, "root", json_object_new_string(m->root));
		json_object_object_add(mo, "mount_point", json_object_new_string(m->mnt_point));
		json_object_object_add(mo, "fstype", json_object_new_string(m->fstype));
		json_object_array_add(a, mo);
	}
	return a;
}

static struct json_object *bdis_json(const struct dc_bdi *bdis, size_t nbdis)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < nbdis; i++) {
		struct json_object *bo = json_object_new_object(), *k = json_object_new_array();

		for (unsigned int j = 0; j < bdis[i].ndevs; j++)
			json_object_array_add(k, json_object_new_int64(bdis[i].devs[j]));
		json_object_object_add(bo, "name", json_object_new_string(bdis[i].name));
		json_object_object_add(bo, "kdevs", k);
		json_object_array_add(a, bo);
	}
	return a;
}

static struct json_object *files_json(const struct dc_sidecar *sc)
{
	struct json_object *a = json_object_new_array();

	for (const struct sc_file *f = sc->files; f; f = f->hh.next) {
		struct json_object *fo = json_object_new_object(), *p = json_object_new_array();

		json_object_array_add(p, json_object_new_string(f->path));
		json_object_object_add(fo, "kdev", json_object_new_int64(f->k.dev));
		json_object_object_add(fo, "ino", json_object_new_int64((int64_t)f->k.ino));
		json_object_object_add(fo, "paths", p);
		json_object_array_add(a, fo);
	}
	return a;
}

int dc_sidecar_write(const struct dc_sidecar *sc, int fd, const char *trace,
		     const struct dc_mounts *mounts, const uint32_t *devs, size_t ndevs,
		     const struct dc_bdi *bdis, size_t nbdis)
{
	struct json_object *o = json_object_new_object();
	const char *base = strrchr(trace, '/') ? strrchr(trace, '/') + 1 : trace;
	int ret = 0;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "duet_sidecar", json_object_new_int(DC_SIDECAR_SCHEMA));
	json_object_object_add(o, "trace", json_object_new_string(base));
	json_object_object_add(o, "clock", json_object_new_string("mono"));
	json_object_object_add(o, "mounts", mounts_json(mounts, devs, ndevs));
	json_object_object_add(o, "bdis", bdis_json(bdis, nbdis));
	json_object_object_add(o, "files", files_json(sc));
	if (json_object_to_fd(fd, o, JSON_C_TO_STRING_PLAIN))
		ret = -EIO;
	json_object_put(o);
	return ret;
}

/* ---- reading ---- */

static int parse_bdis(struct dc_sidecar *sc, struct json_object *a, const char **why)
{
	size_t n = json_object_array_length(a);

	sc->bdis = calloc(n ? n : 1, sizeof(*sc->bdis));
	if (!sc->bdis)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *b = json_object_array_get_idx(a, i), *nm, *kd;
		struct dc_bdi *d = &sc->bdis[sc->nbdis];

		if (!json_object_object_get_ex(b, "name", &nm) ||
		    !json_object_is_type(nm, json_type_string) ||
		    !json_object_object_get_ex(b, "kdevs", &kd) ||
		    !json_object_is_type(kd, json_type_array)) {
			*why = "a sidecar bdi lacks name or kdevs";
			return -EBADMSG;
		}
		snprintf(d->name, sizeof(d->name), "%s", json_object_get_string(nm));
		for (size_t k = 0; k < json_object_array_length(kd) && d->ndevs < DC_BDI_MAX_DEVS;
		     k++)
			d->devs[d->ndevs++] =
				(uint32_t)json_object_get_int64(json_object_array_get_idx(kd, k));
		sc->nbdis++;
	}
	return 0;
}

/* Files without a device, an inode or a path are skipped: paths are a help. */
static int parse_files(struct dc_sidecar *sc, struct json_object *a)
{
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *fo = json_object_array_get_idx(a, i), *kd, *ino, *ps, *p;
		int r;

		if (!json_object_object_get_ex(fo, "kdev", &kd) ||
		    !json_object_object_get_ex(fo, "ino", &ino) ||
		    !json_object_object_get_ex(fo, "paths", &ps) ||
		    !json_object_is_type(ps, json_type_array) || !json_object_array_length(ps))
			continue;
		p = json_object_array_get_idx(ps, 0);
		if (!json_object_is_type(p, json_type_string))
			continue;
		r = dc_sidecar_add_file(sc, (uint32_t)json_object_get_int64(kd),
					(uint64_t)json_object_get_int64(ino),
					json_object_get_string(p));
		if (r)
			return r;
	}
	return 0;
}

int dc_sidecar_parse(const char *text, size_t len, struct dc_sidecar **ret, const char **why)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *j = NULL, *v, *a;
	struct dc_sidecar *sc = NULL;
	int r = -ENOMEM;

	if (!tok)
		return -ENOMEM;
	/* As json_object_from_file(): the first value; what follows it is ignored. */
	j = len ? json_tokener_parse_ex(tok, text, (int)(len > INT32_MAX ? INT32_MAX : len)) : NULL;
	json_tokener_free(tok);
	if (!j) {
		*why = "the sidecar is not valid JSON";
		return -EBADMSG;
	}
	if (!json_object_object_get_ex(j, "duet_sidecar", &v) ||
	    json_object_get_int(v) != DC_SIDECAR_SCHEMA) {
		*why = "the sidecar lacks \"duet_sidecar\": 1";
		r = -EBADMSG;
		goto out;
	}
	r = dc_sidecar_new(&sc);
	if (!r && json_object_object_get_ex(j, "bdis", &a) &&
	    json_object_is_type(a, json_type_array))
		r = parse_bdis(sc, a, why);
	if (!r && json_object_object_get_ex(j, "files", &a) &&
	    json_object_is_type(a, json_type_array))
		r = parse_files(sc, a);
	if (!r) {
		*ret = sc;
		sc = NULL;
	}
out:
	dc_sidecar_free(sc);
	json_object_put(j);
	return r;
}

int dc_sidecar_read(const char *path, struct dc_sidecar **ret, const char **why)
{
	FILE *f = fopen(path, "re");
	size_t n = 0, cap = 0, got;
	char *buf = NULL;
	int r = 0;

	if (!f) {
		r = -errno;
		*why = strerror(errno);
		return r;
	}
	for (;;) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4096;
			char *nb = realloc(buf, nc);

			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap = nc;
		}
		got = fread(buf + n, 1, cap - n, f);
		if (!got) {
			if (ferror(f)) {
				r = -EIO;
				*why = strerror(EIO);
			}
			break;
		}
		n += got;
	}
	fclose(f);
	if (!r)
		r = dc_sidecar_parse(buf, n, ret, why);
	free(buf);
	return r;
}
