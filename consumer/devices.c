// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/btrfs.h>

#include "devices.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s, size_t n)
{
	char *o = malloc(n + 1), *p = o;

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*p++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	return o;
}

static int next_tok(const char **p, const char *end, const char **tok, size_t *len)
{
	const char *s = *p;

	while (s < end && *s == ' ')
		s++;
	if (s >= end)
		return -1;
	*tok = s;
	while (s < end && *s != ' ')
		s++;
	*len = (size_t)(s - *tok);
	*p = s;
	return 0;
}

int dc_mounts_parse(const char *text, struct dc_mounts *out)
{
	const char *line = text;

	memset(out, 0, sizeof(*out));
	while (*line) {
		const char *end = strchr(line, '\n'), *p = line, *tok, *sep;
		const char *mp = NULL, *fs = NULL, *src = NULL, *rt = NULL;
		size_t len, rtl = 0, mpl = 0, fsl = 0, srcl = 0;
		unsigned int maj = 0, min = 0;
		struct dc_mount *m;
		int field = 0;

		if (!end)
			end = line + strlen(line);
		sep = NULL;
		while (!next_tok(&p, end, &tok, &len)) {
			field++;
			if (field == 3 && sscanf(tok, "%u:%u", &maj, &min) != 2)
				break;
			if (field == 4) {
				rt = tok;
				rtl = len;
			}
			if (field == 5) {
				mp = tok;
				mpl = len;
			}
			if (field > 6 && len == 1 && tok[0] == '-') {
				sep = tok;
				break;
			}
		}
		if (sep && mp && !next_tok(&p, end, &fs, &fsl) && !next_tok(&p, end, &src, &srcl)) {
			m = realloc(out->m, (out->n + 1) * sizeof(*m));
			if (!m)
				goto nomem;
			out->m = m;
			m = &out->m[out->n];
			m->kdev = (maj << 20) | (min & 0xfffff);
			m->mnt_point = unescape(mp, mpl);
			m->fstype = unescape(fs, fsl);
			m->source = unescape(src, srcl);
			m->root = rt ? unescape(rt, rtl) : strdup("/");
			if (!m->mnt_point || !m->fstype || !m->source || !m->root) {
				free(m->root);
				free(m->mnt_point);
				free(m->fstype);
				free(m->source);
				goto nomem;
			}
			out->n++;
		}
		line = *end ? end + 1 : end;
	}
	return 0;
nomem:
	dc_mounts_free(out);
	return -ENOMEM;
}

static const char *fstype_of(long magic)
{
	switch ((unsigned long)magic) {
	case 0xEF53: return "ext4";		/* ext2, ext3 and ext4 share it */
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x794C7630: return "overlay";
	default: return "unknown";
	}
}

/*
 * In a chroot, mountinfo leaves out every mount whose mount point lies
 * outside the process's root, so the file system of the root itself has
 * no entry and nothing on it could be watched. Its device is the one
 * stat gives for / (the kernel's s_dev for every file system but btrfs,
 * whose subvolumes have their own anonymous devices: a btrfs chroot root
 * stays unwatchable).
 */
static int add_root_mount(struct dc_mounts *out)
{
	struct dc_mount *m, *nm;
	struct statfs sf;
	struct stat st;

	if (stat("/", &st) || statfs("/", &sf))
		return -errno;
	nm = realloc(out->m, (out->n + 1) * sizeof(*nm));
	if (!nm)
		return -ENOMEM;
	out->m = nm;
	m = &out->m[out->n];
	memset(m, 0, sizeof(*m));
	m->kdev = (uint32_t)(major(st.st_dev) << 20 | minor(st.st_dev));
	m->mnt_point = strdup("/");
	m->fstype = strdup(fstype_of((long)sf.f_type));
	m->source = strdup("");
	m->root = strdup("/");
	if (!m->mnt_point || !m->fstype || !m->source || !m->root) {
		free(m->mnt_point);
		free(m->fstype);
		free(m->source);
		free(m->root);
		return -ENOMEM;
	}
	out->n++;
	return 0;
}

int dc_mounts_load(struct dc_mounts *out)
{
	char *buf = NULL;
	size_t cap = 0, n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int r;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			char *b = realloc(buf, cap + 65536);

			if (!b) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = b;
			cap += 65536;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		if (!got)
			break;
		n += got;
	}
	fclose(f);
	buf[n] = '\0';
	r = dc_mounts_parse(buf, out);
	free(buf);
	if (!r && !dc_mounts_find(out, "/"))
		r = add_root_mount(out);
	return r;
}

void dc_mounts_free(struct dc_mounts *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->m[i].mnt_point);
		free(m->m[i].fstype);
		free(m->m[i].source);
		free(m->m[i].root);
	}
	free(m->m);
	m->m = NULL;
	m->n = 0;
}

int dc_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (strncmp(path, dir, n))
		return 0;
	return path[n] == '\0' || path[n] == '/';
}

const struct dc_mount *dc_mounts_find(const struct dc_mounts *m, const char *path)
{
	const struct dc_mount *best = NULL;
	size_t bestlen = 0;

	/* Later entries shadow earlier ones on the same mount point. */
	for (size_t i = 0; i < m->n; i++) {
		size_t len = strlen(m->m[i].mnt_point);

		if (dc_path_under(path, m->m[i].mnt_point) && (!best || len >= bestlen)) {
			best = &m->m[i];
			bestlen = len;
		}
	}
	return best;
}

static int add_dev(uint32_t **devs, size_t *n, uint32_t d)
{
	uint32_t *nd;

	for (size_t i = 0; i < *n; i++)
		if ((*devs)[i] == d)
			return 0;
	nd = realloc(*devs, (*n + 1) * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	nd[(*n)++] = d;
	*devs = nd;
	return 0;
}

int dc_devices_for_paths(const struct dc_mounts *m, char *const *dirs, size_t ndirs,
			 uint32_t **devs, size_t *ndevs)
{
	for (size_t i = 0; i < ndirs; i++) {
		const struct dc_mount *top = dc_mounts_find(m, dirs[i]);
		int r;

		if (!top)
			return -ENOENT;
		r = add_dev(devs, ndevs, top->kdev);
		if (r)
			return r;
		for (size_t j = 0; j < m->n; j++) {
			if (!dc_path_under(m->m[j].mnt_point, dirs[i]))
				continue;
			r = add_dev(devs, ndevs, m->m[j].kdev);
			if (r)
				return r;
		}
	}
	return 0;
}

static int link_base(const char *path, char *out, size_t len)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	const char *b;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	b = strrchr(buf, '/');
	b = b ? b + 1 : buf;
	if (strlen(b) >= len)
		return -ENAMETOOLONG;
	strcpy(out, b);
	return 0;
}

static int btrfs_bdi(const char *mnt_point, char *out, size_t len)
{
	struct btrfs_ioctl_fs_info_args fi;
	char path[128];
	int fd = open(mnt_point, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;
	const unsigned char *u = fi.fsid;

	if (fd < 0)
		return -errno;
	memset(&fi, 0, sizeof(fi));
	r = ioctl(fd, BTRFS_IOC_FS_INFO, &fi);
	close(fd);
	if (r < 0)
		return -errno;
	snprintf(path, sizeof(path),
		 "/sys/fs/btrfs/%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x/bdi",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
	return link_base(path, out, len);
}

static int block_bdi(uint32_t kdev, char *out, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/bdi", kdev >> 20, kdev & 0xfffff);
	if (!link_base(path, out, len))
		return 0;
	/* A partition uses its disk's bdi. */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../bdi", kdev >> 20, kdev & 0xfffff);
	return link_base(path, out, len);
}

int dc_bdis_for_devices(const struct dc_mounts *m, const uint32_t *devs, size_t ndevs,
			struct dc_bdi **bdis, size_t *nbdis)
{
	for (size_t i = 0; i < ndevs; i++) {
		const struct dc_mount *mnt = NULL;
		char name[32];
		struct dc_bdi *b = NULL;
		int r = -ENOENT;

		for (size_t j = 0; j < m->n; j++)
			if (m->m[j].kdev == devs[i])
				mnt = &m->m[j];
		if (mnt && !strcmp(mnt->fstype, "btrfs"))
			r = btrfs_bdi(mnt->mnt_point, name, sizeof(name));
		else if (devs[i] >> 20)
			r = block_bdi(devs[i], name, sizeof(name));
		if (r)
			continue;
		for (size_t j = 0; j < *nbdis; j++)
			if (!strcmp((*bdis)[j].name, name))
				b = &(*bdis)[j];
		if (!b) {
			struct dc_bdi *nb = realloc(*bdis, (*nbdis + 1) * sizeof(*nb));

			if (!nb)
				return -ENOMEM;
			*bdis = nb;
			b = &nb[(*nbdis)++];
			memset(b, 0, sizeof(*b));
			strcpy(b->name, name);
		}
		if (b->ndevs < DC_BDI_MAX_DEVS)
			b->devs[b->ndevs++] = devs[i];
	}
	return 0;
}
