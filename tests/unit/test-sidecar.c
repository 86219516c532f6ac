// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The sidecar FILE.duet (consumer/sidecar.c): the writer's bytes exactly
 * (the format duet record has always written: existing recordings must
 * still be read, and other programs read it), read back, the sidecar of
 * tests/unit/report-cli.sh, and the sentences for bad ones.
 *
 * usage: test-sidecar DATADIR
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/check.h"
#include "devices.h"
#include "sidecar.h"

#define K(ma, mi) ((uint32_t)(ma) << 20 | (uint32_t)(mi))

/* json-c's plain form, '/' escaped: what duet record wrote before sidecar.c. */
static const char want[] =
	"{\"duet_sidecar\":1,\"trace\":\"t.dat\",\"clock\":\"mono\","
	"\"mounts\":[{\"kdev\":7340033,\"dev\":\"7:1\",\"root\":\"\\/\","
	"\"mount_point\":\"\\/mnt\\/my disk\",\"fstype\":\"ext4\"},"
	"{\"kdev\":7340034,\"dev\":\"7:2\",\"root\":\"\\/\",\"mount_point\":\"\\/data\\/a\","
	"\"fstype\":\"xfs\"}],"
	"\"bdis\":[{\"name\":\"7:1\",\"kdevs\":[7340033]},{\"name\":\"btrfs-2\",\"kdevs\":[45,46]}],"
	"\"files\":[{\"kdev\":7340033,\"ino\":13,\"paths\":[\"\\/mnt\\/my disk\\/b\"]},"
	"{\"kdev\":7340033,\"ino\":1099511627776,\"paths\":[\"\\/mnt\\/my disk\\/\\\"q\\\"\xc3\xa9\\t\"]},"
	"{\"kdev\":7340034,\"ino\":5,\"paths\":[\"\\/data\\/a\\/x\"]}]}";

static const struct dc_bdi bdis[] = {
	{ .name = "7:1", .devs = { K(7, 1) }, .ndevs = 1 },
	{ .name = "btrfs-2", .devs = { K(0, 45), K(0, 46) }, .ndevs = 2 },
};

static struct dc_sidecar *build(void)
{
	struct dc_sidecar *sc = NULL;

	CHECK_EQ(dc_sidecar_new(&sc), 0);
	if (!sc)
		return NULL;
	CHECK_EQ(dc_sidecar_add_file(sc, K(7, 1), 13, "/mnt/my disk/b"), 0);
	CHECK_EQ(dc_sidecar_add_file(sc, K(7, 1), 1ull << 40, "/mnt/my disk/\"q\"\xc3\xa9\t"), 0);
	CHECK_EQ(dc_sidecar_add_file(sc, K(7, 2), 5, "/data/a/x"), 0);
	/* A second name of a file: the first one is kept. */
	CHECK_EQ(dc_sidecar_add_file(sc, K(7, 1), 13, "/mnt/my disk/other"), 0);
	CHECK_EQ(dc_sidecar_nfiles(sc), 3);
	CHECK_STR(dc_sidecar_path(sc, K(7, 1), 13), "/mnt/my disk/b");
	CHECK(!dc_sidecar_path(sc, K(7, 2), 13));
	return sc;
}

static char *written(const struct dc_sidecar *sc, const struct dc_mounts *m,
		     const uint32_t *devs, size_t ndevs, size_t *len)
{
	int fd = memfd_create("sidecar", MFD_CLOEXEC);
	off_t n;
	char *buf;

	CHECK(fd >= 0);
	if (fd < 0)
		return NULL;
	CHECK_EQ(dc_sidecar_write(sc, fd, "/tmp/x/t.dat", m, devs, ndevs, bdis, 2), 0);
	n = lseek(fd, 0, SEEK_END);
	buf = calloc(1, (size_t)n + 1);
	if (buf && pread(fd, buf, (size_t)n, 0) != n) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)n;
	return buf;
}

static void test_write_read(const char *data)
{
	uint32_t devs[] = { K(7, 1), K(7, 2) };
	struct dc_sidecar *sc = build(), *back = NULL;
	struct dc_mounts m = { 0 };
	const struct dc_bdi *b;
	const char *why = NULL;
	char *text = check_slurp(data, "mountinfo.txt", NULL), *out;
	size_t len = 0, n;

	if (!sc || !text)
		return;
	CHECK_EQ(dc_mounts_parse(text, &m), 0);
	/* With devices: only their mounts. */
	out = written(sc, &m, devs, 2, &len);
	CHECK(out && len == sizeof(want) - 1 && !memcmp(out, want, len));
	if (out && strcmp(out, want))
		fprintf(stderr, "written: %s\nwanted:  %s\n", out, want);
	CHECK_EQ(dc_sidecar_parse(out, len, &back, &why), 0);
	if (back) {
		CHECK_EQ(dc_sidecar_nfiles(back), 3);
		CHECK_STR(dc_sidecar_path(back, K(7, 1), 13), "/mnt/my disk/b");
		CHECK_STR(dc_sidecar_path(back, K(7, 1), 1ull << 40), "/mnt/my disk/\"q\"\xc3\xa9\t");
		CHECK_STR(dc_sidecar_path(back, K(7, 2), 5), "/data/a/x");
		b = dc_sidecar_bdis(back, &n);
		CHECK_EQ(n, 2);
		if (n == 2) {
			CHECK_STR(b[1].name, "btrfs-2");
			CHECK_EQ(b[1].ndevs, 2);
			CHECK_EQ(b[1].devs[1], K(0, 46));
		}
	}
	dc_sidecar_free(back);
	free(out);
	/* Without devices (duet record without PATH): every mount. */
	out = written(sc, &m, NULL, 0, &len);
	CHECK(out && strstr(out, "\"mount_point\":\"\\/proc\""));
	CHECK(out && strstr(out, "\"mount_point\":\"\\/mnt\\/back\\\\slash\""));
	free(out);
	dc_mounts_free(&m);
	dc_sidecar_free(sc);
	free(text);
}

/* The sidecar report-cli.sh gives duet report: the first of two paths. */
static void test_report_fixture(void)
{
	static const char text[] =
		"{\"duet_sidecar\":1,\"trace\":\"w6.dat\",\"clock\":\"mono\",\n"
		" \"mounts\":[{\"kdev\":7340032,\"dev\":\"7:0\",\"root\":\"/\",\"mount_point\":\"/mnt\",\"fstype\":\"ext4\"}],\n"
		" \"bdis\":[{\"name\":\"7:0\",\"kdevs\":[7340032]}],\n"
		" \"files\":[{\"kdev\":7340032,\"ino\":13,\"paths\":[\"/mnt/b\"]},\n"
		"          {\"kdev\":7340032,\"ino\":14,\"paths\":[\"/mnt/with space/c\",\"/mnt/c2\"]}]}\n";
	struct dc_sidecar *sc = NULL;
	const char *why = NULL;
	size_t n = 0;

	CHECK_EQ(dc_sidecar_parse(text, sizeof(text) - 1, &sc, &why), 0);
	if (!sc)
		return;
	CHECK_STR(dc_sidecar_path(sc, 7340032, 14), "/mnt/with space/c");
	CHECK_STR(dc_sidecar_path(sc, 7340032, 13), "/mnt/b");
	CHECK_EQ(dc_sidecar_bdis(sc, &n)[0].devs[0], 7340032);
	CHECK_EQ(n, 1);
	dc_sidecar_free(sc);
}

static void bad(const char *text, int want_r, const char *want_why)
{
	struct dc_sidecar *sc = NULL;
	const char *why = NULL;

	CHECK_EQ(dc_sidecar_parse(text, strlen(text), &sc, &why), want_r);
	CHECK(!sc);
	CHECK_STR(why, want_why);
	dc_sidecar_free(sc);
}

static void test_bad(void)
{
	static const char sparse[] = "{\"duet_sidecar\":1,\"files\":[{\"kdev\":1},"
				     "{\"kdev\":1,\"ino\":2,\"paths\":[]},"
				     "{\"kdev\":1,\"ino\":3,\"paths\":[null]},"
				     "{\"kdev\":1,\"ino\":4,\"paths\":[\"/d\"]}]}";
	struct dc_sidecar *sc = NULL;
	const char *why = NULL;
	size_t n = 0;

	bad("", -EBADMSG, "the sidecar is not valid JSON");
	bad("not json", -EBADMSG, "the sidecar is not valid JSON");
	bad("{\"duet_sidecar\":1", -EBADMSG, "the sidecar is not valid JSON");
	bad("{\"duet_sidecar\": 2}", -EBADMSG, "the sidecar lacks \"duet_sidecar\": 1");
	bad("[1]", -EBADMSG, "the sidecar lacks \"duet_sidecar\": 1");
	bad("{\"duet_sidecar\":1,\"bdis\":[{\"name\":\"7:0\"}]}", -EBADMSG,
	    "a sidecar bdi lacks name or kdevs");
	bad("{\"duet_sidecar\":1,\"bdis\":[{\"name\":null,\"kdevs\":[1]}]}", -EBADMSG,
	    "a sidecar bdi lacks name or kdevs");
	/* Files that say too little are skipped, the others kept. */
	CHECK_EQ(dc_sidecar_parse(sparse, strlen(sparse), &sc, &why), 0);
	if (sc) {
		CHECK_EQ(dc_sidecar_nfiles(sc), 1);
		CHECK_STR(dc_sidecar_path(sc, 1, 4), "/d");
		dc_sidecar_bdis(sc, &n);
		CHECK_EQ(n, 0);
	}
	dc_sidecar_free(sc);
	sc = NULL;
	CHECK_EQ(dc_sidecar_read("/nonexistent/t.dat.duet", &sc, &why), -ENOENT);
	CHECK(!sc);
	CHECK_STR(why, strerror(ENOENT));
	dc_sidecar_free(NULL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DATADIR\n", argv[0]);
		return TEST_ERROR;
	}
	test_write_read(argv[1]);
	test_report_fixture();
	test_bad();
	return check_exit("test-sidecar");
}
