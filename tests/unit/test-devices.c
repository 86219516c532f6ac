// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Mount table parsing and the path -> devices rules on a recorded
 * mountinfo (tests/data/mountinfo.txt) with escaped names, optional
 * fields, a btrfs subvolume, nested, sibling and shadowed mounts.
 *
 * usage: test-devices DATADIR
 */
#include <errno.h>

#include "../lib/check.h"
#include "devices.h"

#define K(ma, mi) ((uint32_t)(ma) << 20 | (uint32_t)(mi))

static const struct {
	uint32_t kdev;
	const char *mp, *fs, *src;
} want[] = {
	{ K(0, 21), "/proc", "proc", "proc" },
	{ K(0, 22), "/sys", "sysfs", "sysfs" },
	{ K(254, 0), "/", "ext4", "/dev/vda" },
	{ K(0, 13), "/sys/kernel/tracing", "tracefs", "nodev" },
	{ K(7, 1), "/mnt/my disk", "ext4", "/dev/loop1" },
	{ K(0, 45), "/home", "btrfs", "/dev/vdb2" },
	{ K(0, 46), "/data", "tmpfs", "tmpfs" },
	{ K(7, 2), "/data/a", "xfs", "/dev/loop2" },
	{ K(7, 3), "/data/ab", "ext4", "/dev/loop3" },
	{ K(7, 4), "/data/a/sub", "ext4", "/dev/loop4" },
	{ K(7, 5), "/mnt/shadow", "ext4", "/dev/loop5" },
	{ K(259, 0xfffff), "/mnt/shadow", "ext4", "/dev/nvme0n1p1\tx" },
	{ K(8, 1), "/mnt/back\\slash", "vfat", "/dev/sda1" },
};
#define NWANT (sizeof(want) / sizeof(want[0]))

static void test_parse(const struct dc_mounts *m)
{
	CHECK_EQ(m->n, NWANT);
	for (size_t i = 0; i < NWANT && i < m->n; i++) {
		CHECK_EQ(m->m[i].kdev, want[i].kdev);
		CHECK_STR(m->m[i].mnt_point, want[i].mp);
		CHECK_STR(m->m[i].fstype, want[i].fs);
		CHECK_STR(m->m[i].source, want[i].src);
	}
	CHECK_EQ(K(7, 1), 0x700001);
	CHECK_EQ(dc_kdev(259, 0xfffff), K(259, 0xfffff));
	CHECK_EQ(dc_kdev(7, 0x1fffff), K(7, 0xfffff));
	CHECK_EQ(dc_kdev_major(K(259, 0xfffff)), 259);
	CHECK_EQ(dc_kdev_minor(K(259, 0xfffff)), 0xfffff);
}

static void test_parse_edges(void)
{
	struct dc_mounts m;

	/* No trailing newline; blank lines. */
	CHECK_EQ(dc_mounts_parse("\n\n1 0 7:9 / /x rw - ext4 /dev/loop9 rw", &m), 0);
	CHECK_EQ(m.n, 1);
	if (m.n == 1) {
		CHECK_EQ(m.m[0].kdev, K(7, 9));
		CHECK_STR(m.m[0].mnt_point, "/x");
		CHECK_STR(m.m[0].source, "/dev/loop9");
	}
	dc_mounts_free(&m);
	CHECK_EQ(m.n, 0);
	CHECK(m.m == NULL);
	dc_mounts_free(&m);	/* twice is harmless */

	CHECK_EQ(dc_mounts_parse("", &m), 0);
	CHECK_EQ(m.n, 0);
	dc_mounts_free(&m);

	/* No " - " separator, or nothing after it: not a mount. */
	CHECK_EQ(dc_mounts_parse("1 0 7:9 / /x rw ext4 /dev/loop9 rw\n"
				 "2 0 7:8 / /y rw -\n"
				 "3 0 7:7 / /z rw - ext4\n", &m), 0);
	CHECK_EQ(m.n, 0);
	dc_mounts_free(&m);

	/* An escape cut short by the end of the field stays literal. */
	CHECK_EQ(dc_mounts_parse("1 0 7:9 / /x\\04 rw - ext4 a\\0 rw\n", &m), 0);
	CHECK_EQ(m.n, 1);
	if (m.n == 1) {
		CHECK_STR(m.m[0].mnt_point, "/x\\04");
		CHECK_STR(m.m[0].source, "a\\0");
	}
	dc_mounts_free(&m);
}

static const char *find(const struct dc_mounts *m, const char *path)
{
	const struct dc_mount *r = dc_mounts_find(m, path);

	return r ? r->mnt_point : "(none)";
}

static void test_find(const struct dc_mounts *m)
{
	const struct dc_mount *r;

	CHECK_STR(find(m, "/"), "/");
	CHECK_STR(find(m, "/etc/passwd"), "/");
	CHECK_STR(find(m, "/proc/self"), "/proc");
	CHECK_STR(find(m, "/procfs"), "/");
	CHECK_STR(find(m, "/sys/kernel"), "/sys");
	CHECK_STR(find(m, "/sys/kernel/tracing/trace"), "/sys/kernel/tracing");
	CHECK_STR(find(m, "/mnt/my disk/f"), "/mnt/my disk");
	CHECK_STR(find(m, "/mnt/my"), "/");
	CHECK_STR(find(m, "/home/u/.bashrc"), "/home");
	CHECK_STR(find(m, "/data"), "/data");
	CHECK_STR(find(m, "/data/a"), "/data/a");
	CHECK_STR(find(m, "/data/a/x"), "/data/a");
	CHECK_STR(find(m, "/data/ab/x"), "/data/ab");
	CHECK_STR(find(m, "/data/abc"), "/data");
	CHECK_STR(find(m, "/data/a/sub/f"), "/data/a/sub");
	CHECK_STR(find(m, "/data/a/subx"), "/data/a");
	CHECK_STR(find(m, "/mnt/back\\slash/f"), "/mnt/back\\slash");
	CHECK_STR(find(m, "relative/path"), "(none)");
	/* The later of two mounts on one point is the visible one. */
	r = dc_mounts_find(m, "/mnt/shadow/f");
	CHECK(r != NULL);
	if (r)
		CHECK_EQ(r->kdev, K(259, 0xfffff));
	r = dc_mounts_find(m, "/home/x");
	CHECK(r != NULL);
	if (r)
		CHECK_EQ(r->kdev, K(0, 45));
}

static void test_path_under(void)
{
	CHECK_EQ(dc_path_under("/a/b", "/a"), 1);
	CHECK_EQ(dc_path_under("/a", "/a"), 1);
	CHECK_EQ(dc_path_under("/a/", "/a"), 1);
	CHECK_EQ(dc_path_under("/ab", "/a"), 0);
	CHECK_EQ(dc_path_under("/a", "/a/b"), 0);
	CHECK_EQ(dc_path_under("/a/b", "/a/"), 1);
	CHECK_EQ(dc_path_under("/a/b", "/a//"), 1);
	CHECK_EQ(dc_path_under("/ab", "/a/"), 0);
	CHECK_EQ(dc_path_under("/x", "/"), 1);
	CHECK_EQ(dc_path_under("/", "/"), 1);
	CHECK_EQ(dc_path_under("x", "/"), 0);
	CHECK_EQ(dc_path_under("/data/a", "/data/ab"), 0);
	CHECK_EQ(dc_path_under("/data/ab", "/data/a"), 0);
}

static void check_devs(const struct dc_mounts *m, char *const *dirs, size_t ndirs,
		       const uint32_t *exp, size_t nexp)
{
	uint32_t *devs = NULL;
	size_t n = 0;

	CHECK_EQ(dc_devices_for_paths(m, dirs, ndirs, &devs, &n), 0);
	CHECK_EQ(n, nexp);
	for (size_t i = 0; i < n && i < nexp; i++)
		CHECK_EQ(devs[i], exp[i]);
	free(devs);
}

static void test_devices(const struct dc_mounts *m)
{
	char *a[] = { "/data/a" }, *data[] = { "/data" };
	char *nested[] = { "/data/a", "/data/a/sub" }, *ab_shadow[] = { "/data/ab", "/mnt/shadow" };
	char *root[] = { "/" }, *file[] = { "/data/a/sub/file.txt" }, *rel[] = { "rel" };
	const uint32_t e_a[] = { K(7, 2), K(7, 4) };
	const uint32_t e_data[] = { K(0, 46), K(7, 2), K(7, 3), K(7, 4) };
	/* The shadowed 7:5 stays: files opened before the shadowing live on it. */
	const uint32_t e_ab[] = { K(7, 3), K(259, 0xfffff), K(7, 5) };
	const uint32_t e_root[] = { K(254, 0), K(0, 21), K(0, 22), K(0, 13), K(7, 1),
				    K(0, 45), K(0, 46), K(7, 2), K(7, 3), K(7, 4),
				    K(7, 5), K(259, 0xfffff), K(8, 1) };
	const uint32_t e_file[] = { K(7, 4) };
	uint32_t *devs;
	size_t n;

	check_devs(m, a, 1, e_a, 2);
	check_devs(m, data, 1, e_data, 4);
	check_devs(m, nested, 2, e_a, 2);
	check_devs(m, ab_shadow, 2, e_ab, 3);
	check_devs(m, root, 1, e_root, sizeof(e_root) / sizeof(e_root[0]));
	check_devs(m, file, 1, e_file, 1);

	/* Appends to what the caller has, without duplicates. */
	devs = malloc(sizeof(*devs));
	if (!devs)
		return;
	devs[0] = K(7, 4);
	n = 1;
	CHECK_EQ(dc_devices_for_paths(m, a, 1, &devs, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(devs[0], K(7, 4));
	CHECK_EQ(devs[1], K(7, 2));
	CHECK_EQ(dc_devices_for_paths(m, rel, 1, &devs, &n), -ENOENT);
	free(devs);
}

int main(int argc, char **argv)
{
	struct dc_mounts m;
	char *text;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DATADIR\n", argv[0]);
		return TEST_ERROR;
	}
	text = check_slurp(argv[1], "mountinfo.txt", NULL);
	if (!text)
		return TEST_ERROR;
	CHECK_EQ(dc_mounts_parse(text, &m), 0);
	free(text);
	test_parse(&m);
	test_parse_edges();
	test_find(&m);
	test_path_under();
	test_devices(&m);
	dc_mounts_free(&m);
	return check_exit("test-devices");
}
