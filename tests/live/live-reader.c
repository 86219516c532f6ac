// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which ring-buffer reader is in force, and that the read() fallback is
 * taken when the mapping is refused. Each case runs in a child with the
 * refuse-map.c shim preloaded (DUET_TEST_REFUSE says what it refuses:
 * mmap() with ENODEV as before 6.10, EBUSY as with a snapshot, EINVAL,
 * of one CPU only, or the first GET_READER) or with DUET_READER=read,
 * asks for the mapped reader, and must get read(), with the reason in
 * the description; then every page written on every CPU must come back
 * exactly (ADDED and DIRTY once each) with nothing lost. The same for
 * duet status --json and duet watch --json's start record. Without the
 * shim, on 6.10 and later, the mapped reader is in force.
 * Needs root; exits 77 otherwise.
 *
 * usage: live-reader SHIM DUET
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices.h"
#include "fsimg.h"
#include "live.h"
#include "livetest.h"

#define PAGES_PER_CPU 32

static bool kernel_maps(void)
{
	struct utsname u;
	int maj = 0, min = 0;

	return !uname(&u) && sscanf(u.release, "%d.%d", &maj, &min) == 2 &&
	       (maj > 6 || (maj == 6 && min >= 10));
}

static int page_fn(void *ud, int cpu, const void *page, size_t len)
{
	(void)ud;
	(void)cpu;
	(void)page;
	(void)len;
	return 0;
}

/*
 * The child: a source asking for the mapped reader; reader and a piece
 * of the reason it must state; every page written on every CPU back.
 */
static int child(const char *dir, const char *want, const char *why, bool with_page_fn)
{
	struct dc_live_opts o = { .sz = sizeof(o), .types = DC_ADDED | DC_DIRTY,
				  .types_explicit = true, .reader = DC_READER_MMAP };
	struct dc_recbuf recs = { 0 };
	struct dc_mounts m = { 0 };
	struct dc_bdi *bdis = NULL;
	uint32_t *devs = NULL;
	size_t nd = 0, nb = 0;
	char *roots[1] = { (char *)dir }, path[512], buf[4096];
	int ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN), npages, fd, r;
	uint8_t added[PAGES_PER_CPU * 64] = { 0 }, dirty[PAGES_PER_CPU * 64] = { 0 };
	unsigned int dups = 0, missing = 0;
	uint64_t ino, lost = 0;
	struct dc_live *l;
	struct stat st;

	if (ncpus > 64)
		ncpus = 64;
	npages = ncpus * PAGES_PER_CPU;
	if (dc_mounts_load(&m) || dc_devices_for_paths(&m, roots, 1, &devs, &nd) ||
	    dc_bdis_for_devices(&m, devs, nd, &bdis, &nb))
		return TEST_ERROR;
	o.devs = devs;
	o.ndevs = nd;
	o.bdis = bdis;
	o.nbdis = nb;
	o.stock_only = true;	/* one DIRTY source whatever the kernel */
	if (with_page_fn)
		o.page_fn = page_fn;
	r = dc_live_open(&o, &l);
	if (r) {
		fprintf(stderr, "dc_live_open: %s\n", strerror(-r));
		return TEST_ERROR;
	}
	CHECK(!strcmp(dc_live_reader(l), want), "reader %s, want %s (%s)", dc_live_reader(l), want,
	      dc_live_describe(l));
	CHECK(strstr(dc_live_describe(l), why), "the description says \"%s\": %s", why,
	      dc_live_describe(l));
	r = dc_live_start(l);
	if (r) {
		dc_live_free(l);
		return TEST_ERROR;
	}
	snprintf(path, sizeof(path), "%s/f-%d", dir, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || fstat(fd, &st)) {
		dc_live_free(l);
		return TEST_ERROR;
	}
	ino = st.st_ino;
	memset(buf, 'r', sizeof(buf));
	/* Pages from each CPU in turn: each CPU's buffer is read, mapped or not. */
	for (int c = 0; c < ncpus; c++) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(c, &set);
		sched_setaffinity(0, sizeof(set), &set);
		for (int i = 0; i < PAGES_PER_CPU; i++)
			if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				CHECK(0, "write");
	}
	close(fd);
	dc_live_stop(l);
	while (!dc_live_finished(l)) {
		if (dc_live_fetch(l, &recs) < 0)
			break;
		usleep(1000);
	}
	for (size_t i = 0; i < recs.n; i++) {
		const struct dc_record *x = &recs.rec[i];
		uint8_t *bits = x->type == DC_ADDED ? added : x->type == DC_DIRTY ? dirty : NULL;

		if (x->type == DC_LOST)
			lost += x->count;
		if (!bits || x->ino != ino)
			continue;
		for (uint64_t p = x->index; p < x->index + x->count; p++) {
			if (p >= (uint64_t)npages || bits[p])
				dups++;
			else
				bits[p] = 1;
		}
	}
	for (int p = 0; p < npages; p++)
		missing += !added[p] + !dirty[p];
	CHECK(dups == 0 && missing == 0, "ADDED and DIRTY exactly pages 0-%d once (%u missing, %u twice or out of range)",
	      npages - 1, missing, dups);
	CHECK(lost == 0, "nothing lost (%" PRIu64 ")", lost);
	unlink(path);
	dc_live_free(l);
	dc_recbuf_free(&recs);
	dc_mounts_free(&m);
	free(devs);
	free(bdis);
	return check_failures ? TEST_FAIL : TEST_PASS;
}

/* argv run with env (NAME=VALUE each; NULLs skipped) added; its exit status. */
static int run(char **argv, const char *env1, const char *env2, const char *env3, const char *out)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (!pid) {
		if (env1)
			putenv((char *)env1);
		if (env2)
			putenv((char *)env2);
		if (env3)
			putenv((char *)env3);
		if (out) {
			int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			if (fd < 0 || dup2(fd, 1) < 0)
				_exit(TEST_ERROR);
		}
		execv(argv[0], argv);
		_exit(TEST_ERROR);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static bool file_has(const char *path, const char *what)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *refuse, *want, *why;
	} cases[] = {
		{ "no mmap (before 6.10)", "DUET_TEST_REFUSE=mmap:19", "read",
		  "read() (mapping refused: No such device)" },
		{ "a snapshot", "DUET_TEST_REFUSE=mmap:16", "read",
		  "read() (mapping refused: Device or resource busy)" },
		{ "EINVAL", "DUET_TEST_REFUSE=mmap:22", "read",
		  "read() (mapping refused: Invalid argument)" },
		{ "one CPU's buffer only", "DUET_TEST_REFUSE=mmap:22:1", "read",
		  "read() (mapping refused: Invalid argument)" },
		{ "GET_READER", "DUET_TEST_REFUSE=ioctl:25", "read",
		  "read() (mapping refused: Inappropriate ioctl for device)" },
		{ "DUET_READER=read", "DUET_READER=read", "read", "read() (DUET_READER=read)" },
		{ "raw pages", NULL, "read", "read() (raw pages are stored as read() gives them)" },
		{ "nothing refused", NULL, "mmap", "ring buffer read: mmap (" },
	};
	char preload[600], base[128], out[200], self[4096];
	const char *dir;
	struct fsimg img;
	ssize_t n;

	if (argc == 6 && !strcmp(argv[1], "child"))
		return child(argv[2], argv[3], argv[4], !strcmp(argv[5], "page_fn"));
	if (argc != 3) {
		fprintf(stderr, "usage: %s SHIM DUET\n", argv[0]);
		return TEST_ERROR;
	}
	livetest_require();
	setvbuf(stdout, NULL, _IOLBF, 0);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return TEST_ERROR;
	self[n] = '\0';
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", argv[1]);
	snprintf(base, sizeof(base), "/tmp/duet-reader-%d", (int)getpid());
	mkdir(base, 0755);
	if (fsimg_make(&img, "ext4", 128, base)) {
		rmdir(base);
		printf("SKIP: cannot make an ext4 loop file system\n");
		return TEST_SKIP;
	}
	dir = base;
	unsetenv("DUET_READER");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool pf = strstr(cases[i].name, "raw pages") != NULL;
		const char *want = cases[i].want, *why = cases[i].why;
		char *cargv[] = { self, "child", (char *)dir, NULL, NULL, pf ? "page_fn" : "-", NULL };
		const char *refuse = cases[i].refuse;
		int r;

		if (!strcmp(want, "mmap") && !kernel_maps()) {
			want = "read";
			why = "read() (mapping refused: ";
		}
		cargv[3] = (char *)want;
		cargv[4] = (char *)why;
		r = run(cargv, refuse && !strncmp(refuse, "DUET_TEST", 9) ? preload : NULL, refuse,
			NULL, NULL);
		CHECK(r == 0, "%s: the child failed (%d)", cases[i].name, r);
		printf("%s %s: %s in force, every page back\n", r ? "not ok" : "ok", cases[i].name,
		       want);
	}
	/*
	 * The commands say the same: duet status, duet watch's start record,
	 * asked for the mapped reader (whatever the default) and refused, then not.
	 */
	snprintf(out, sizeof(out), "%s.out", base);
	for (int k = 0; k < 2; k++) {
		char *status[] = { argv[2], "status", "--json", NULL };
		char *watch[] = { argv[2], "watch", "--json", "--duration", "0.2", (char *)dir, NULL };
		const char *want = k ? "\"reader\":\"mmap\"" : "\"reader\":\"read\"";
		unsigned int before = check_failures;
		int r;

		if (k && !kernel_maps())
			break;
		r = run(status, "DUET_READER=mmap", k ? NULL : preload,
			k ? NULL : "DUET_TEST_REFUSE=mmap:19", out);
		CHECK(r == 0 && file_has(out, want), "duet status --json has %s (exit %d)", want, r);
		r = run(watch, "DUET_READER=mmap", k ? NULL : preload,
			k ? NULL : "DUET_TEST_REFUSE=mmap:19", out);
		CHECK(r == 0 && file_has(out, want), "duet watch --json's start has %s (exit %d)",
		      want, r);
		printf("%s duet status and watch say %s\n",
		       check_failures > before ? "not ok" : "ok", want);
	}
	unlink(out);
	fsimg_destroy(&img);
	rmdir(base);
	return check_exit("live-reader");
}
