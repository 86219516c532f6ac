// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Live tests of duet-backup, duet-scrub and duet-dedup on loop file
 * systems: exact outputs, identical with and without duet, against
 * expected content, files modified during a run (the tools stop
 * themselves after N files with DUET_TOOLS_TEST_STOP_AFTER), and errors.
 *
 * Usage: live-tools backup|scrub|dedup|errors|reflink|order BACKUP SCRUB DEDUP [FSTYPE]
 * (FSTYPE for backup, scrub, dedup: ext4 unless given)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "livetest.h"

static const char *backup_exe, *scrub_exe, *dedup_exe;
static char base[256];
static const char *long_name =
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn.long";

/* ---- helpers ---- */

static char *pj(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

static void fill(unsigned char *buf, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

/* Write n bytes (seeded) at off of dir/name, creating it. */
static void put(const char *dir, const char *name, off_t off, size_t n, uint32_t seed)
{
	char *p = pj(dir, name);
	unsigned char *buf = malloc(n + 1);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);

	if (fd < 0 || !buf)
		die("create %s: %s", p, strerror(errno));
	fill(buf, n, seed);
	if (n && pwrite(fd, buf, n, off) != (ssize_t)n)
		die("write %s: %s", p, strerror(errno));
	close(fd);
	free(buf);
	free(p);
}

static void append(const char *dir, const char *name, const char *text)
{
	char *p = pj(dir, name);
	int fd = open(p, O_WRONLY | O_APPEND);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("append %s: %s", p, strerror(errno));
	close(fd);
	free(p);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		die("command failed: %s", cmd);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *s = NULL;
	size_t len = 0;

	if (!f)
		return strdup("");
	if (getdelim(&s, &len, '\0', f) < 0) {
		free(s);
		s = strdup("");
	}
	fclose(f);
	return s;
}

struct run {
	int status;		/* exit status, or 128 + signal */
	char *out, *err;
	pid_t pid;
};

/*
 * Programs run as uid 65534 cannot be taken from the build tree, which may
 * lie under a directory that user cannot search (a checkout under /root).
 * tests/lib/stage-bins copies the tools and libduet into a directory under
 * /tmp that every user reaches; remove_base() removes it.
 */
static char stage[256];

static void stage_tools(void)
{
	const char *script = getenv("STAGE_BINS"), *root = getenv("BUILD_ROOT");
	char cmd[2048];
	FILE *p;

	if (!script || !root)
		die("STAGE_BINS and BUILD_ROOT must be set (meson test sets them)");
	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' '%s'", script, root, backup_exe,
		 scrub_exe, dedup_exe);
	p = popen(cmd, "r");
	if (!p || !fgets(stage, sizeof(stage), p))
		die("stage-bins failed");
	stage[strcspn(stage, "\n")] = '\0';
	if (pclose(p))
		die("stage-bins failed");
}

/* The staged copy of a tool given by its build-tree path. */
static const char *staged(const char *exe)
{
	static char buf[3][600];
	static int k;
	char *root = getenv("BUILD_ROOT") ? realpath(getenv("BUILD_ROOT"), NULL) : NULL;
	char *abs = realpath(exe, NULL);
	size_t n = root ? strlen(root) : 0;

	if (!stage[0] || !root || !abs || strncmp(abs, root, n) || abs[n] != '/')
		die("%s: not staged (stage_tools() first)", exe);
	k = (k + 1) % 3;
	snprintf(buf[k], sizeof(buf[k]), "%s%s", stage, abs + n);
	free(root);
	free(abs);
	return buf[k];
}

/*
 * Run argv (NULL-terminated); env "DUET_TOOLS_TEST_STOP_AFTER=N" if stop
 * > 0, "DUET_TOOLS_TEST_STOP_IN_FILE=-N" if stop < 0 (the tool stops after
 * the first chunk of the Nth file it reads), calling on_stop while the
 * tool is stopped. as_nobody: through setpriv as uid/gid 65534, running
 * the staged copy of the tool (see stage_tools()).
 */
/* With a stop in a file (stop < 0): also stop after this many files. */
static int also_stop_after;

static struct run run_tool(const char *const *argv, int stop, void (*on_stop)(void *), void *ud,
			   bool as_nobody)
{
	char o[300], e[300];
	struct run r = { 0 };
	const char *av[32];
	int n = 0, st, stops = 0;
	pid_t pid;

	snprintf(o, sizeof(o), "%s/out", base);
	snprintf(e, sizeof(e), "%s/err", base);
	if (as_nobody) {
		av[n++] = "setpriv";
		av[n++] = "--reuid=65534";
		av[n++] = "--regid=65534";
		av[n++] = "--clear-groups";
	}
	for (int i = 0; argv[i]; i++)
		av[n++] = argv[i];
	av[n] = NULL;
	if (as_nobody)
		av[4] = staged(argv[0]);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		char s[32];

		snprintf(s, sizeof(s), "%d", stop < 0 ? -stop : stop);
		/*
		 * meson test points LD_LIBRARY_PATH into the build tree, which
		 * uid 65534 may not reach: glibc would fail to load even libc.
		 * The staged tools find libduet through their RUNPATH.
		 */
		if (as_nobody)
			unsetenv("LD_LIBRARY_PATH");
		/* Nor its working directory (a checkout under /root): paths
		 * given to the tools are absolute. */
		if (as_nobody && chdir("/"))
			_exit(126);
		unsetenv("DUET_TOOLS_TEST_STOP_AFTER");
		unsetenv("DUET_TOOLS_TEST_STOP_IN_FILE");
		if (stop > 0)
			setenv("DUET_TOOLS_TEST_STOP_AFTER", s, 1);
		else if (stop < 0)
			setenv("DUET_TOOLS_TEST_STOP_IN_FILE", s, 1);
		if (stop < 0 && also_stop_after) {
			snprintf(s, sizeof(s), "%d", also_stop_after);
			setenv("DUET_TOOLS_TEST_STOP_AFTER", s, 1);
		}
		if (!freopen(o, "w", stdout) || !freopen(e, "w", stderr))
			_exit(126);
		execvp(av[0], (char **)av);
		_exit(127);
	}
	for (;;) {
		if (waitpid(pid, &st, WUNTRACED) < 0)
			die("waitpid: %s", strerror(errno));
		if (WIFSTOPPED(st)) {
			stops++;
			if (on_stop)
				on_stop(ud);
			kill(pid, SIGCONT);
			continue;
		}
		break;
	}
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.pid = pid;
	r.out = slurp(o);
	r.err = slurp(e);
	CHECK(!stop || !on_stop || stops == (stop < 0 && also_stop_after ? 2 : 1),
	      "%s: stopped %d times, expected %d", argv[0], stops,
	      stop < 0 && also_stop_after ? 2 : 1);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* The tool ran with duet: no warning that libduet could not start. */
static void check_duet_used(const struct run *r, const char *what)
{
	CHECK(!strstr(r->err, "libduet cannot start"), "%s: duet did not start: %s", what, r->err);
}

/* Write back and drop the cached pages of every regular file under dir. */
static void evict_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		die("opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		char *p;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = pj(dir, de->d_name);
		if (!lstat(p, &st)) {
			if (S_ISDIR(st.st_mode)) {
				evict_tree(p);
			} else if (S_ISREG(st.st_mode)) {
				int fd = open(p, O_RDONLY);

				if (fd >= 0) {
					fdatasync(fd);
					posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
					close(fd);
				}
			}
		}
		free(p);
	}
	closedir(d);
}

/* Cached pages (cachestat) of the regular files under dir, but skip's. */
static uint64_t tree_cached(const char *dir, const char *skip)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t n = 0;

	if (!d)
		die("opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		struct { uint64_t off, len; } rg = { 0, 0 };
		uint64_t cs[5] = { 0 };
		struct stat st;
		char *p;
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = pj(dir, de->d_name);
		if (!lstat(p, &st) && S_ISDIR(st.st_mode)) {
			n += tree_cached(p, skip);
		} else if (S_ISREG(st.st_mode) && strcmp(de->d_name, skip)) {
			fd = open(p, O_RDONLY);
			if (fd < 0 || syscall(451, fd, &rg, cs, 0))
				die("cachestat %s: %s", p, strerror(errno));
			close(fd);
			n += cs[0];
		}
		free(p);
	}
	closedir(d);
	return n;
}

static void read_file(const char *p)
{
	char buf[65536];
	int fd = open(p, O_RDONLY);

	if (fd < 0)
		die("open %s: %s", p, strerror(errno));
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/* ---- the tree ---- */

static void set_times(const char *p, int i)
{
	struct timespec ts[2] = { { 1600000000 + i * 7, 123456789 + i },
				  { 1500000000 + i * 13, 987654321 - i } };

	if (utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW))
		die("utimensat %s: %s", p, strerror(errno));
}

/*
 * Nested directories, hard links, symlinks, sparse and empty files, a
 * 255-byte name, names with spaces and a newline, duplicates, owners,
 * modes and distinct times.
 */
static void make_tree(const char *s)
{
	static const char *const files[] = {
		"a.bin", "d1/b.bin", "d1/d2/c.txt", "d1/d2/d3/empty", "empty2",
		"dir with space/file with space", "new\nline", NULL /* long */, "sparse1",
		"sparse2", "d1/h1", "dupA1", "d1/dupA2", "dir with space/dupA3", "dupB1",
		"d1/d2/dupB2", "sz1", "sz2", "ro/inside.txt", "zz-cached.bin",
	};
	static const char *const dirs[] = { "d1/d2/d3", "d1/d2", "d1", "dir with space", "ro", "" };
	char *p;
	int fd;

	sh("mkdir -p '%s/d1/d2/d3' '%s/dir with space' '%s/ro'", s, s, s);
	put(s, "a.bin", 0, 100 << 10, 1);
	put(s, "d1/b.bin", 0, (1 << 20) + 17, 2);
	p = pj(s, "d1/d2/c.txt");
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "hello\n", 6) != 6)
		die("c.txt");
	close(fd);
	free(p);
	put(s, "d1/d2/d3/empty", 0, 0, 0);
	put(s, "empty2", 0, 0, 0);
	put(s, "dir with space/file with space", 0, 3000, 3);
	put(s, "new\nline", 0, 10, 4);
	put(s, long_name, 0, 5000, 5);
	put(s, "sparse1", 0, 4096, 6);
	put(s, "sparse1", 3 << 20, 8192, 16);
	p = pj(s, "sparse1");
	if (truncate(p, 8 << 20))
		die("truncate");
	free(p);
	put(s, "sparse2", 1 << 20, 4096, 26);
	put(s, "sparse2", (2 << 20) - 4096, 4096, 36);
	put(s, "d1/h1", 0, 20000, 7);
	sh("cd '%s' && ln d1/h1 d1/d2/h2 && ln d1/h1 h3 && ln -s a.bin sl-rel && "
	   "ln -s /nonexistent/x sl-abs && ln -s ../d1/d2 d1/sl-dir", s);
	put(s, "dupA1", 0, 50000, 8);
	put(s, "d1/dupA2", 0, 50000, 8);
	put(s, "dir with space/dupA3", 0, 50000, 8);
	put(s, "dupB1", 0, 4096, 9);
	put(s, "d1/d2/dupB2", 0, 4096, 9);
	put(s, "sz1", 0, 50000, 10);
	put(s, "sz2", 0, 50000, 8);
	put(s, "sz2", 49999, 1, 99);	/* dupA but the last byte */
	put(s, "ro/inside.txt", 0, 100, 11);
	put(s, "zz-cached.bin", 0, 200 << 10, 12);
	sh("cd '%s' && chown 1234:5678 d1/b.bin d1/h1 sl-rel && chmod 0600 d1/b.bin && "
	   "chmod 0755 d1/d2/c.txt && chmod 4750 d1/h1 && chown 42:43 d1/d2 && chmod 0700 d1/d2/d3",
	   s);
	/* times: files (and links' targets) first, then directories deepest first */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = pj(s, files[i] ? files[i] : long_name);
		set_times(p, (int)i);
		free(p);
	}
	p = pj(s, "sl-rel");
	set_times(p, 40);
	free(p);
	p = pj(s, "d1/sl-dir");
	set_times(p, 41);
	free(p);
	sh("chmod 0555 '%s/ro'", s);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		p = *dirs[i] ? pj(s, dirs[i]) : strdup(s);
		set_times(p, 50 + (int)i);
		free(p);
	}
}

/* ---- comparing trees ---- */

struct inomap {
	ino_t a, b;
};
static struct inomap inos[256];
static int ninos;

static bool same_data_map(int fa, int fb, off_t size)
{
	for (off_t off = 0; off < size;) {
		off_t da = lseek(fa, off, SEEK_DATA), db = lseek(fb, off, SEEK_DATA);
		off_t ha, hb;

		if (da != db)
			return false;
		if (da < 0)
			return true;
		ha = lseek(fa, da, SEEK_HOLE);
		hb = lseek(fb, db, SEEK_HOLE);
		if (ha != hb)
			return false;
		off = ha;
	}
	return true;
}

static bool same_content(const char *a, const char *b, off_t size)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	static char ba[65536], bb[65536];
	bool ok = fa >= 0 && fb >= 0;
	ssize_t n;

	while (ok && (n = read(fa, ba, sizeof(ba))) > 0)
		ok = read(fb, bb, (size_t)n) == n && !memcmp(ba, bb, (size_t)n);
	if (ok)
		ok = read(fb, bb, 1) == 0;
	if (ok)
		ok = same_data_map(fa, fb, size);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return ok;
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted names of dir (without . and ..) */
static int list_names(const char *dir, char ***ret)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		v = realloc(v, (size_t)(n + 1) * sizeof(*v));
		v[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(v, (size_t)n, sizeof(*v), cmp_names);
	*ret = v;
	return n;
}

/* Everything equal: names, types, modes, owners, times, contents, holes,
 * symlink targets, hard-link structure. Returns the number of differences. */
static int cmp_tree(const char *a, const char *b, bool owners)
{
	struct stat sa, sb;
	char **na = NULL, **nb = NULL;
	int diffs = 0, ca, cb;

	if (lstat(a, &sa) || lstat(b, &sb)) {
		fprintf(stderr, "cmp: %s or %s missing\n", a, b);
		return 1;
	}
#define D(cond, what)                                                    \
	do {                                                             \
		if (cond) {                                              \
			fprintf(stderr, "cmp: %s vs %s: %s\n", a, b, what); \
			diffs++;                                         \
		}                                                        \
	} while (0)
	D((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT), "type");
	if (diffs)
		return diffs;
	D(!S_ISLNK(sa.st_mode) && sa.st_mode != sb.st_mode, "mode");
	D(owners && (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid), "owner");
	D(sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec,
	  "mtime");
	D(sa.st_atim.tv_sec != sb.st_atim.tv_sec || sa.st_atim.tv_nsec != sb.st_atim.tv_nsec,
	  "atime");
	if (S_ISREG(sa.st_mode)) {
		D(sa.st_size != sb.st_size, "size");
		D(sa.st_nlink != sb.st_nlink, "link count");
		if (sa.st_nlink > 1) {
			int i;

			for (i = 0; i < ninos && inos[i].a != sa.st_ino; i++)
				;
			if (i == ninos && ninos < 256)
				inos[ninos++] = (struct inomap){ sa.st_ino, sb.st_ino };
			else
				D(inos[i].b != sb.st_ino, "hard links differ");
		}
		D(!same_content(a, b, sa.st_size), "content or holes");
	} else if (S_ISLNK(sa.st_mode)) {
		char ta[4096], tb[4096];
		ssize_t la = readlink(a, ta, sizeof(ta)), lb = readlink(b, tb, sizeof(tb));

		D(la != lb || la < 0 || memcmp(ta, tb, (size_t)la), "symlink target");
	} else if (S_ISDIR(sa.st_mode)) {
		ca = list_names(a, &na);
		cb = list_names(b, &nb);
		D(ca != cb, "number of entries");
		for (int i = 0; i < ca && i < cb; i++) {
			char *pa = pj(a, na[i]), *pb = pj(b, nb[i]);

			if (strcmp(na[i], nb[i])) {
				fprintf(stderr, "cmp: %s: '%s' vs '%s'\n", a, na[i], nb[i]);
				diffs++;
			} else {
				diffs += cmp_tree(pa, pb, owners);
			}
			free(pa);
			free(pb);
		}
		for (int i = 0; i < ca; i++)
			free(na[i]);
		for (int i = 0; i < cb; i++)
			free(nb[i]);
		free(na);
		free(nb);
		/* reading the directories must not have changed their times */
	}
#undef D
	return diffs;
}

static int tree_equal(const char *a, const char *b, bool owners)
{
	ninos = 0;
	return cmp_tree(a, b, owners) == 0;
}

/* ---- backup ---- */

struct mod_ctx {
	const char *src;
	const char *const *names;
};

static void modify_files(void *ud)
{
	struct mod_ctx *m = ud;

	for (int i = 0; m->names[i]; i++)
		append(m->src, m->names[i], "modified while the tool was stopped\n");
}

static struct tl_dummy {
	const char *dst;
	bool has_cached, has_first;
} probe;

static void probe_dst(void *ud)
{
	char *p = pj(probe.dst, "zz-cached.bin"), *q = pj(probe.dst, "a.bin");

	(void)ud;
	probe.has_cached = access(p, F_OK) == 0;
	probe.has_first = access(q, F_OK) == 0;
	free(p);
	free(q);
}

static void test_backup(void)
{
	char *src = pj(base, "fs/src"), *d1 = pj(base, "fs/dst-plain"), *d2 = pj(base, "fs/dst-duet");
	char *d3 = pj(base, "fs/dst-mod-plain"), *d4 = pj(base, "fs/dst-mod-duet");
	char *zz = pj(src, "zz-cached.bin");
	const char *a1[] = { backup_exe, "--no-duet", src, d1, NULL };
	const char *a2[] = { backup_exe, src, d2, NULL };
	const char *a3[] = { backup_exe, "--no-duet", src, d3, NULL };
	const char *a4[] = { backup_exe, src, d4, NULL };
	const char *const mods[] = { "a.bin", "zz-cached.bin", "d1/h1", "new\nline", "sz1", NULL };
	struct mod_ctx mc = { src, mods };
	struct run r1, r2, r3, r4;
	const char *expect = "20 files (12127861 bytes), 2 hard links, 3 symlinks, 5 directories copied\n";

	make_tree(src);
	r1 = run_tool(a1, 0, NULL, NULL, false);
	CHECK(r1.status == 0, "backup --no-duet: exit %d: %s", r1.status, r1.err);
	CHECK(tree_equal(src, d1, true), "backup --no-duet: the copy differs (see above)");
	CHECK(!strcmp(r1.out, expect), "backup --no-duet: output '%s', expected '%s'", r1.out, expect);

	/* Nothing cached but zz-cached.bin, the walk's last file: copied first. */
	evict_tree(src);
	read_file(zz);
	probe.dst = d2;
	r2 = run_tool(a2, 1, probe_dst, NULL, false);
	CHECK(r2.status == 0, "backup: exit %d: %s", r2.status, r2.err);
	check_duet_used(&r2, "backup");
	CHECK(probe.has_cached && !probe.has_first,
	      "backup: first file copied was not the cached one (cached %d, a.bin %d)",
	      probe.has_cached, probe.has_first);
	CHECK(strstr(r2.err, "duet: 1 of 20 files processed because their pages were cached"),
	      "backup: not exactly the one cached file first: %s", r2.err);
	CHECK(tree_equal(src, d2, true), "backup: the copy differs (see above)");
	CHECK(!strcmp(r1.out, r2.out), "backup: output differs with duet: '%s' vs '%s'", r1.out,
	      r2.out);
	/* --no-polite: the same copy and byte for byte the same output. */
	{
		char *d6 = pj(base, "fs/dst-nopolite");
		const char *a6[] = { backup_exe, "--no-polite", src, d6, NULL };
		struct run r6;

		evict_tree(src);
		read_file(zz);
		r6 = run_tool(a6, 0, NULL, NULL, false);
		CHECK(r6.status == 0, "backup --no-polite: exit %d: %s", r6.status, r6.err);
		check_duet_used(&r6, "backup --no-polite");
		CHECK(tree_equal(src, d6, true), "backup --no-polite: the copy differs");
		CHECK(!strcmp(r2.out, r6.out), "backup --no-polite: output '%s' vs '%s'", r6.out,
		      r2.out);
		run_free(&r6);
		free(d6);
	}

	/* Files modified after 3 files were copied: the copy has the new versions. */
	evict_tree(src);
	r3 = run_tool(a3, 3, modify_files, &mc, false);
	CHECK(r3.status == 0, "backup --no-duet (modified): exit %d: %s", r3.status, r3.err);
	CHECK(tree_equal(src, d3, true), "backup --no-duet (modified): the copy differs");
	evict_tree(src);
	read_file(zz);
	r4 = run_tool(a4, 3, modify_files, &mc, false);
	CHECK(r4.status == 0, "backup (modified): exit %d: %s", r4.status, r4.err);
	CHECK(tree_equal(src, d4, true), "backup (modified): the copy differs");
	/* each run appended one line to each of the 5 files */
	{
		size_t add = strlen("modified while the tool was stopped\n") * 5;
		char w3[256], w4[256];

		snprintf(w3, sizeof(w3), "20 files (%zu bytes), 2 hard links, 3 symlinks, "
			 "5 directories copied\n", (size_t)12127861 + add);
		snprintf(w4, sizeof(w4), "20 files (%zu bytes), 2 hard links, 3 symlinks, "
			 "5 directories copied\n", (size_t)12127861 + 2 * add);
		CHECK(!strcmp(r3.out, w3), "backup --no-duet (modified): '%s', expected '%s'", r3.out, w3);
		CHECK(!strcmp(r4.out, w4), "backup (modified): '%s', expected '%s'", r4.out, w4);
	}
	run_free(&r1);
	run_free(&r2);
	run_free(&r3);
	run_free(&r4);

	/*
	 * d1/b.bin (1 MiB + 17 bytes), the second file of the walk, modified
	 * after its first MiB was read: copied again at once, not at the end.
	 */
	{
		char *d5 = pj(base, "fs/dst-inc-plain"), *d6 = pj(base, "fs/dst-inc-duet");
		const char *a5[] = { backup_exe, "--no-duet", src, d5, NULL };
		const char *a6[] = { backup_exe, src, d6, NULL };
		const char *const bmod[] = { "d1/b.bin", NULL };
		struct mod_ctx bc = { src, bmod };
		const char *msg = "copied again: 1 files changed while copied, 0 changed after their copy";

		evict_tree(src);
		r1 = run_tool(a5, -2, modify_files, &bc, false);
		CHECK(r1.status == 0 && strstr(r1.err, msg), "backup --no-duet (modified in copy): exit %d, '%s'",
		      r1.status, r1.err);
		CHECK(tree_equal(src, d5, true), "backup --no-duet (modified in copy): the copy differs");
		evict_tree(src);
		r2 = run_tool(a6, -2, modify_files, &bc, false);
		CHECK(r2.status == 0 && strstr(r2.err, msg), "backup (modified in copy): exit %d, '%s'",
		      r2.status, r2.err);
		CHECK(tree_equal(src, d6, true), "backup (modified in copy): the copy differs");
		run_free(&r1);
		run_free(&r2);
		free(d5), free(d6);
	}
	free(src), free(d1), free(d2), free(d3), free(d4), free(zz);
}

/* ---- scrub ---- */

struct mline {
	char *rel;
	char *line;
};

static int cmp_mline(const void *a, const void *b)
{
	return strcmp(((const struct mline *)a)->rel, ((const struct mline *)b)->rel);
}

static void escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			fprintf(f, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
}

static void collect(const char *root, const char *rel, struct mline **v, int *n)
{
	char *dir = *rel ? pj(root, rel) : strdup(root);
	char **names;
	int c = list_names(dir, &names);

	for (int i = 0; i < c; i++) {
		char *r, *p = pj(dir, names[i]);
		struct stat st;

		if (asprintf(&r, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0)
			die("oom");
		lstat(p, &st);
		if (S_ISDIR(st.st_mode)) {
			collect(root, r, v, n);
		} else if (S_ISREG(st.st_mode)) {
			XXH3_state_t *x = XXH3_createState();
			XXH128_canonical_t can;
			char buf[65536], *line;
			size_t len;
			ssize_t k;
			int fd = open(p, O_RDONLY);
			FILE *f = open_memstream(&line, &len);

			XXH3_128bits_reset(x);
			while ((k = read(fd, buf, sizeof(buf))) > 0)
				XXH3_128bits_update(x, buf, (size_t)k);
			close(fd);
			XXH128_canonicalFromHash(&can, XXH3_128bits_digest(x));
			XXH3_freeState(x);
			for (int j = 0; j < 16; j++)
				fprintf(f, "%02x", can.digest[j]);
			fprintf(f, " %lld %lld.%09ld ", (long long)st.st_size,
				(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			escape(f, r);
			fputc('\n', f);
			fclose(f);
			*v = realloc(*v, (size_t)(*n + 1) * sizeof(**v));
			(*v)[*n].rel = strdup(r);
			(*v)[(*n)++].line = line;
		}
		free(r);
		free(p);
		free(names[i]);
	}
	free(names);
	free(dir);
}

/* The manifest we expect: our own hashes, sorted by path. */
static char *expected_manifest(const char *root, int *nfiles)
{
	struct mline *v = NULL;
	int n = 0;
	char *s;
	size_t len;
	FILE *f = open_memstream(&s, &len);

	collect(root, "", &v, &n);
	qsort(v, (size_t)n, sizeof(*v), cmp_mline);
	fputs("# duet-scrub manifest v1: xxh3-128 size mtime path\n", f);
	for (int i = 0; i < n; i++) {
		fputs(v[i].line, f);
		free(v[i].line);
		free(v[i].rel);
	}
	free(v);
	fclose(f);
	*nfiles = n;
	return s;
}

static void test_scrub(void)
{
	char *src = pj(base, "fs/src"), *m1 = pj(base, "m-plain"), *m2 = pj(base, "m-duet");
	const char *c1[] = { scrub_exe, "--no-duet", "--create", "--manifest", m1, src, NULL };
	const char *c2[] = { scrub_exe, "--create", "--manifest", m2, src, NULL };
	const char *v1[] = { scrub_exe, "--no-duet", "--manifest", m1, src, NULL };
	const char *v2[] = { scrub_exe, "--manifest", m1, src, NULL };
	const char *const mods[] = { "d1/d2/c.txt", NULL };
	struct mod_ctx mc = { src, mods };
	struct run r1, r2;
	char *exp, *got1, *got2, want[512], *p;
	int n;

	make_tree(src);
	exp = expected_manifest(src, &n);
	CHECK(n == 22, "scrub: tree has %d names of files, expected 22", n);
	r1 = run_tool(c1, 0, NULL, NULL, false);
	evict_tree(src);
	read_file(p = pj(src, "zz-cached.bin"));
	free(p);
	r2 = run_tool(c2, 0, NULL, NULL, false);
	check_duet_used(&r2, "scrub --create");
	CHECK(strstr(r2.err, "duet: 1 of 20 files processed because their pages were cached"),
	      "scrub --create: not exactly the one cached file first: %s", r2.err);
	got1 = slurp(m1);
	got2 = slurp(m2);
	CHECK(r1.status == 0 && r2.status == 0, "scrub --create: exit %d, %d: %s %s", r1.status,
	      r2.status, r1.err, r2.err);
	CHECK(!strcmp(got1, exp), "scrub --create --no-duet: manifest\n%s\nexpected\n%s", got1, exp);
	CHECK(!strcmp(got1, got2), "scrub --create: manifests differ with duet");
	CHECK(!strcmp(r1.out, r2.out), "scrub --create: outputs differ");
	/*
	 * Polite (the default): zz-cached.bin, cached before it ran, stays;
	 * every page the scrub read in is dropped again.
	 */
	CHECK(tree_cached(src, "") - tree_cached(src, "zz-cached.bin") >= 1,
	      "scrub: zz-cached.bin was dropped");
	CHECK(tree_cached(src, "zz-cached.bin") == 0,
	      "scrub: %llu pages it read are still cached",
	      (unsigned long long)tree_cached(src, "zz-cached.bin"));
	run_free(&r2);
	/* --no-polite: the same manifest and output, and the pages stay. */
	{
		char *m3 = pj(base, "m-nopolite");
		const char *c3[] = { scrub_exe, "--no-polite", "--create", "--manifest", m3, src,
				     NULL };
		char *got3;

		evict_tree(src);
		read_file(p = pj(src, "zz-cached.bin"));
		free(p);
		r2 = run_tool(c3, 0, NULL, NULL, false);
		check_duet_used(&r2, "scrub --no-polite");
		got3 = slurp(m3);
		CHECK(!strcmp(got1, got3), "scrub --create --no-polite: manifest differs");
		CHECK(!strcmp(r1.out, r2.out), "scrub --no-polite: output '%s' vs '%s'", r2.out,
		      r1.out);
		CHECK(tree_cached(src, "zz-cached.bin") > 100,
		      "scrub --no-polite: the pages read were dropped (%llu left)",
		      (unsigned long long)tree_cached(src, "zz-cached.bin"));
		free(got3);
		run_free(&r2);
		unlink(m3);
		free(m3);
	}
	run_free(&r1);

	/* all good */
	snprintf(want, sizeof(want), "%d ok, 0 mismatched, 0 changed, 0 missing, 0 new, 0 unreadable\n", n);
	r1 = run_tool(v1, 0, NULL, NULL, false);
	r2 = run_tool(v2, 0, NULL, NULL, false);
	CHECK(r1.status == 0 && !strcmp(r1.out, want), "scrub --no-duet: exit %d, '%s'", r1.status, r1.out);
	CHECK(r2.status == 0 && !strcmp(r2.out, want), "scrub: exit %d, '%s'", r2.status, r2.out);
	run_free(&r1), run_free(&r2);

	/* modified while the tool is stopped after one file: changed, not corrupt */
	snprintf(want, sizeof(want),
		 "CHANGED d1/d2/c.txt\n%d ok, 0 mismatched, 1 changed, 0 missing, 0 new, 0 unreadable\n",
		 n - 1);
	r1 = run_tool(v1, 1, modify_files, &mc, false);
	CHECK(r1.status == 1 && !strcmp(r1.out, want), "scrub --no-duet (modified): exit %d, '%s'",
	      r1.status, r1.out);
	run_free(&r1);
	sh("'%s' -q --no-duet --create --manifest '%s' '%s'", scrub_exe, m1, src);
	evict_tree(src);
	read_file(p = pj(src, "d1/d2/c.txt"));
	free(p);
	r2 = run_tool(v2, 1, modify_files, &mc, false);
	CHECK(r2.status == 1 && !strcmp(r2.out, want), "scrub (modified): exit %d, '%s'",
	      r2.status, r2.out);
	run_free(&r2);

	/* corrupt (same size and mtime), changed, missing, new */
	sh("'%s' -q --no-duet --create --manifest '%s' '%s'", scrub_exe, m1, src);
	{
		struct stat st;
		struct timespec ts[2];
		int fd;

		p = pj(src, "a.bin");
		lstat(p, &st);
		fd = open(p, O_WRONLY);
		if (fd < 0 || pwrite(fd, "X", 1, 5000) != 1)
			die("corrupt a.bin");
		close(fd);
		ts[0] = st.st_atim;
		ts[1] = st.st_mtim;
		utimensat(AT_FDCWD, p, ts, 0);
		free(p);
	}
	append(src, "d1/d2/c.txt", "more\n");
	sh("rm '%s/empty2' && echo new > '%s/newfile'", src, src);
	snprintf(want, sizeof(want),
		 "MISMATCH a.bin\nCHANGED d1/d2/c.txt\nMISSING empty2\nNEW newfile\n"
		 "%d ok, 1 mismatched, 1 changed, 1 missing, 1 new, 0 unreadable\n", n - 3);
	r1 = run_tool(v1, 0, NULL, NULL, false);
	r2 = run_tool(v2, 0, NULL, NULL, false);
	CHECK(r1.status == 1 && !strcmp(r1.out, want), "scrub --no-duet (corrupt): exit %d, '%s'",
	      r1.status, r1.out);
	CHECK(r2.status == 1 && !strcmp(r2.out, want), "scrub (corrupt): exit %d, '%s'", r2.status,
	      r2.out);
	run_free(&r1), run_free(&r2);
	free(exp), free(got1), free(got2), free(src), free(m1), free(m2);
}

/* ---- dedup ---- */

static const char *dedup_expect =
	"group 1: 2 files of 4096 bytes\n"
	"\td1/d2/dupB2\n"
	"\tdupB1\n"
	"group 2: 3 files of 50000 bytes\n"
	"\td1/dupA2\n"
	"\tdir with space/dupA3\n"
	"\tdupA1\n"
	"2 groups, 3 duplicate files, 104096 bytes duplicated\n";

static void test_dedup(void)
{
	char *src = pj(base, "fs/src"), *p;
	const char *a1[] = { dedup_exe, "--no-duet", src, NULL };
	const char *a2[] = { dedup_exe, src, NULL };
	const char *a3[] = { dedup_exe, "--reflink", src, NULL };
	struct run r1, r2, r3;

	make_tree(src);
	r1 = run_tool(a1, 0, NULL, NULL, false);
	evict_tree(src);
	read_file(p = pj(src, "dupA1"));
	free(p);
	r2 = run_tool(a2, 0, NULL, NULL, false);
	check_duet_used(&r2, "dedup");
	CHECK(strstr(r2.err, "duet: 1 of 7 files processed because their pages were cached"),
	      "dedup: not exactly the one cached file first: %s", r2.err);
	CHECK(r1.status == 0 && !strcmp(r1.out, dedup_expect), "dedup --no-duet: exit %d, '%s'",
	      r1.status, r1.out);
	CHECK(r2.status == 0 && !strcmp(r2.out, dedup_expect), "dedup: exit %d, '%s'", r2.status,
	      r2.out);
	/* --no-polite: byte for byte the same output. */
	{
		const char *a4[] = { dedup_exe, "--no-polite", src, NULL };
		struct run r4;

		evict_tree(src);
		read_file(p = pj(src, "dupA1"));
		free(p);
		r4 = run_tool(a4, 0, NULL, NULL, false);
		check_duet_used(&r4, "dedup --no-polite");
		CHECK(r4.status == 0 && !strcmp(r4.out, r2.out), "dedup --no-polite: exit %d, '%s'",
		      r4.status, r4.out);
		run_free(&r4);
	}
	/* ext4 has no reflinks: a clear message, nothing replaced */
	r3 = run_tool(a3, 0, NULL, NULL, false);
	CHECK(r3.status == 1 && strstr(r3.err, "does not support reflinks"),
	      "dedup --reflink on ext4: exit %d, '%s'", r3.status, r3.err);
	run_free(&r1), run_free(&r2), run_free(&r3);
	free(src);
}

/* Shared extents of the file's first extent (FIEMAP). */
static bool first_extent_shared(const char *p, uint64_t *phys)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[4];
	} f = { 0 };
	int fd = open(p, O_RDONLY);
	bool r;

	f.fm.fm_length = FIEMAP_MAX_OFFSET;
	f.fm.fm_extent_count = 4;
	f.fm.fm_flags = FIEMAP_FLAG_SYNC;
	r = fd >= 0 && !ioctl(fd, FS_IOC_FIEMAP, &f.fm) && f.fm.fm_mapped_extents > 0 &&
	    (f.ext[0].fe_flags & FIEMAP_EXTENT_SHARED);
	*phys = f.fm.fm_mapped_extents ? f.ext[0].fe_physical : 0;
	if (fd >= 0)
		close(fd);
	return r;
}

static void test_reflink(void)
{
	char *src = pj(base, "bt/src"), *ref = pj(base, "bt/ref");
	const char *a1[] = { dedup_exe, "--reflink", src, NULL };
	const char *a2[] = { dedup_exe, "--no-duet", src, NULL };
	const char *want =
		"group 1: 2 files of 4096 bytes\n"
		"\td1/d2/dupB2\n"
		"\tdupB1 (reflinked)\n"
		"group 2: 3 files of 50000 bytes\n"
		"\td1/dupA2\n"
		"\tdir with space/dupA3 (reflinked)\n"
		"\tdupA1 (reflinked)\n"
		"group 3: 2 files of 7000 bytes\n"
		"\tdupC1\n"
		"\tdupC2 (hard links: not reflinked)\n"
		"3 groups, 4 duplicate files, 111096 bytes duplicated, 3 files reflinked\n";
	const char *after =
		"group 1: 2 files of 4096 bytes\n"
		"\td1/d2/dupB2\n"
		"\tdupB1\n"
		"group 2: 3 files of 50000 bytes\n"
		"\td1/dupA2\n"
		"\tdir with space/dupA3\n"
		"\tdupA1\n"
		"group 3: 2 files of 7000 bytes\n"
		"\tdupC1\n"
		"\tdupC2\n"
		"3 groups, 4 duplicate files, 111096 bytes duplicated\n";
	struct run r1, r2;
	uint64_t pa, pb, pc;

	make_tree(src);
	/* a duplicate with another hard link is left alone */
	put(src, "dupC1", 0, 7000, 13);
	put(src, "dupC2", 0, 7000, 13);
	sh("ln '%s/dupC2' '%s/dupC3' && touch -d @1400000000 '%s' '%s/dupC1' '%s/dupC2'", src, src,
	   src, src, src);
	sh("cp -a '%s' '%s'", src, ref);
	r1 = run_tool(a1, 0, NULL, NULL, false);
	check_duet_used(&r1, "dedup --reflink");
	CHECK(r1.status == 0 && !strcmp(r1.out, want), "dedup --reflink: exit %d, '%s' %s",
	      r1.status, r1.out, r1.err);
	/* same contents, modes, owners, times as before; extents shared */
	CHECK(tree_equal(ref, src, true), "dedup --reflink changed the tree (see above)");
	{
		char *x = pj(src, "d1/dupA2"), *y = pj(src, "dupA1"), *z = pj(src, "dir with space/dupA3");
		bool sx = first_extent_shared(x, &pa), sy = first_extent_shared(y, &pb);
		bool sz = first_extent_shared(z, &pc);

		CHECK(sx && sy && sz && pa == pb && pb == pc,
		      "dedup --reflink: extents not shared (%d %d %d, %llu %llu %llu)", sx, sy, sz,
		      (unsigned long long)pa, (unsigned long long)pb, (unsigned long long)pc);
		free(x), free(y), free(z);
	}
	r2 = run_tool(a2, 0, NULL, NULL, false);
	CHECK(r2.status == 0 && !strcmp(r2.out, after), "dedup after reflink: '%s'", r2.out);
	run_free(&r1), run_free(&r2);
	free(src), free(ref);
}

/* ---- errors ---- */

static void test_errors(void)
{
	char *src = pj(base, "fs/src"), *missing = pj(base, "fs/nonexistent");
	char *full = pj(base, "small/dst"), *ps = pj(base, "fs/perm"), *pd = pj(base, "fs/perm-dst");
	char *pm = pj(base, "fs/perm-m/manifest");
	const char *a1[] = { backup_exe, "-q", missing, full, NULL };
	const char *a2[] = { backup_exe, "--no-duet", src, full, NULL };
	const char *a3[] = { backup_exe, ps, pd, NULL };
	const char *a4[] = { scrub_exe, "--manifest", pm, ps, NULL };
	const char *a5[] = { dedup_exe, ps, NULL };
	const char *a6[] = { scrub_exe, "--manifest", missing, src, NULL };
	char *file_dst = pj(base, "fs/a-file");
	const char *a7[] = { backup_exe, "-q", src, file_dst, NULL };
	struct run r;
	char **names = NULL;
	int n;

	/* source missing: the listing's error alone, not the start-up's too */
	r = run_tool(a1, 0, NULL, NULL, false);
	CHECK(r.status == 2 && strstr(r.err, "nonexistent: No such file or directory") &&
	      !strstr(r.err, "libduet"),
	      "backup of a missing source: exit %d, '%s'", r.status, r.err);
	CHECK(!livetest_instances_of(r.pid), "backup of a missing source: its tracing instance is left");
	run_free(&r);
	/*
	 * A step that fails after the session started (in its own thread,
	 * beside the listing) exits at once: the exit closes the session.
	 * Once with the session surely open first (the listing of this small
	 * tree may end before the session has its instance), once as it
	 * comes.
	 */
	sh("mkdir -p '%s' && : > '%s'", src, file_dst);
	for (int first = 1; first >= 0; first--) {
		if (first)
			setenv("DUET_TOOLS_TEST_START_FIRST", "1", 1);
		r = run_tool(a7, 0, NULL, NULL, false);
		unsetenv("DUET_TOOLS_TEST_START_FIRST");
		CHECK(r.status == 2 && strstr(r.err, "exists and is not a directory"),
		      "backup to a file%s: exit %d, '%s'", first ? " (session first)" : "",
		      r.status, r.err);
		CHECK(!livetest_instances_of(r.pid), "backup to a file%s: its tracing instance is left",
		      first ? " (session first)" : "");
		run_free(&r);
	}
	r = run_tool(a6, 0, NULL, NULL, false);
	CHECK(r.status == 2 && strstr(r.err, "cannot open manifest"),
	      "scrub with a missing manifest: exit %d, '%s'", r.status, r.err);
	run_free(&r);

	/* destination full: the big file fails, the small ones before and after are copied */
	sh("mkdir -p '%s'", src);
	put(src, "a-small", 0, 1000, 1);
	put(src, "b-big", 0, 40 << 20, 2);
	put(src, "c-small", 0, 1000, 3);
	r = run_tool(a2, 0, NULL, NULL, false);
	CHECK(r.status == 1 && strstr(r.err, "b-big: cannot write") &&
	      strstr(r.err, "No space left on device"),
	      "backup to a full file system: exit %d, '%s'", r.status, r.err);
	n = list_names(full, &names);
	CHECK(n == 2 && !strcmp(names[0], "a-small") && !strcmp(names[1], "c-small"),
	      "backup to a full file system: %d entries in the destination (%s ...)", n,
	      n > 0 ? names[0] : "");
	{
		char *x = pj(src, "c-small"), *y = pj(full, "c-small");

		CHECK(same_content(x, y, 1000), "backup to a full file system: c-small differs");
		free(x), free(y);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	run_free(&r);

	/* a file the user cannot read (as uid 65534: root reads everything) */
	sh("mkdir -p '%s' '%s' && mkdir -p \"$(dirname '%s')\" && chown 65534:65534 '%s' \"$(dirname '%s')\"",
	   ps, pd, pm, pd, pm);
	put(ps, "a.txt", 0, 3000, 5);
	put(ps, "secret", 0, 3000, 5);
	put(ps, "z.txt", 0, 3000, 5);
	sh("chmod 0 '%s/secret'", ps);
	r = run_tool(a3, 0, NULL, NULL, true);
	CHECK(r.status == 1 && strstr(r.err, "secret: cannot open: Permission denied") &&
	      strstr(r.err, "libduet cannot start"),
	      "backup of an unreadable file: exit %d, '%s'", r.status, r.err);
	{
		char *x = pj(ps, "z.txt"), *y = pj(pd, "z.txt"), *z = pj(pd, "a.txt");

		CHECK(same_content(x, y, 3000) && same_content(x, z, 3000),
		      "backup of an unreadable file: the others were not copied");
		free(x), free(y), free(z);
	}
	run_free(&r);
	sh("'%s' -q --no-duet --create --manifest '%s' '%s'", scrub_exe, pm, ps);
	r = run_tool(a4, 0, NULL, NULL, true);
	CHECK(r.status == 1 &&
	      !strcmp(r.out, "UNREADABLE secret: Permission denied\n"
			     "2 ok, 0 mismatched, 0 changed, 0 missing, 0 new, 1 unreadable\n"),
	      "scrub of an unreadable file: exit %d, '%s'", r.status, r.out);
	run_free(&r);
	r = run_tool(a5, 0, NULL, NULL, true);
	CHECK(r.status == 1 && strstr(r.err, "secret: cannot read: Permission denied") &&
	      !strcmp(r.out, "group 1: 2 files of 3000 bytes\n\ta.txt\n\tz.txt\n"
			     "1 groups, 1 duplicate files, 3000 bytes duplicated\n"),
	      "dedup with an unreadable file: exit %d, '%s' '%s'", r.status, r.out, r.err);
	run_free(&r);
	free(src), free(missing), free(full), free(ps), free(pd), free(pm), free(file_dst);
}

/* ---- natural orders ---- */

#define NORD 8
static const int ord_pages[NORD] = { 3, 7, 5, 1, 7, 3, 5, 1 };	/* pairs of sizes */
static const int ord_made[NORD] = { 5, 2, 7, 0, 3, 6, 1, 4 };	/* creation order */

struct ord_check {
	const char *dir;
	const char *what;
	int expect[NORD];	/* files cached when the tool stops: the first n of its order */
	int n;
};

static bool any_cached(const char *p)
{
	int fd = open(p, O_RDONLY);
	struct stat st;
	unsigned char vec[64];
	void *m;
	bool r = false;

	if (fd < 0 || fstat(fd, &st))
		die("open %s: %s", p, strerror(errno));
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap %s: %s", p, strerror(errno));
	if (mincore(m, (size_t)st.st_size, vec))
		die("mincore %s: %s", p, strerror(errno));
	for (off_t i = 0; i < (st.st_size + 4095) / 4096; i++)
		r |= vec[i] & 1;
	munmap(m, (size_t)st.st_size);
	close(fd);
	return r;
}

static void ord_on_stop(void *ud)
{
	struct ord_check *oc = ud;

	for (int i = 0; i < NORD; i++) {
		char name[16], *p;
		bool want = false;

		snprintf(name, sizeof(name), "o%d", i);
		p = pj(oc->dir, name);
		for (int k = 0; k < oc->n; k++)
			want |= oc->expect[k] == i;
		CHECK(any_cached(p) == want, "%s: o%d %s when stopped after %d files", oc->what, i,
		      want ? "not read" : "read", oc->n);
		free(p);
	}
}

static uint64_t phys_of(const char *p)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[1];
	} f = { 0 };
	int fd = open(p, O_RDONLY);

	f.fm.fm_length = FIEMAP_MAX_OFFSET;
	f.fm.fm_extent_count = 1;
	f.fm.fm_flags = FIEMAP_FLAG_SYNC;
	if (fd < 0 || ioctl(fd, FS_IOC_FIEMAP, &f.fm) || f.fm.fm_mapped_extents != 1)
		die("FIEMAP %s: %s", p, strerror(errno));
	close(fd);
	return f.ext[0].fe_physical;
}

/*
 * Each tool's own order, files made in an order unrelated to their names
 * and sizes: stopped after n files (no duet and with duet, nothing else
 * reading), exactly the first n of its order are cached: scrub by the
 * physical address of the first extent, dedup largest size first (by name
 * within a size), backup by name.
 */
static void test_order(void)
{
	char *dir = pj(base, "fs/order"), *man = pj(base, "manifest");
	uint64_t phys[NORD];
	int byphys[NORD];
	struct ord_check oc = { .dir = dir };
	/*
	 * Residency is the witness of what was read: the duet runs are
	 * --no-polite, or the pages they read would be dropped again.
	 */
	const char *sc[][8] = {
		{ scrub_exe, "--no-duet", "-q", "--create", "--manifest", man, dir, NULL },
		{ scrub_exe, "--no-polite", "-q", "--create", "--manifest", man, dir, NULL },
	};
	const char *dd[][4] = { { dedup_exe, "--no-duet", dir, NULL },
				{ dedup_exe, "--no-polite", dir, NULL } };

	if (mkdir(dir, 0755))
		die("mkdir %s: %s", dir, strerror(errno));
	for (int k = 0; k < NORD; k++) {
		int i = ord_made[k];
		char name[16], *p;
		int fd;

		snprintf(name, sizeof(name), "o%d", i);
		put(dir, name, 0, (size_t)ord_pages[i] * 4096, (uint32_t)(100 + i));
		p = pj(dir, name);
		fd = open(p, O_RDONLY);
		if (fd < 0 || fsync(fd))
			die("fsync %s: %s", p, strerror(errno));
		close(fd);
		free(p);
	}
	for (int i = 0; i < NORD; i++) {
		char name[16], *p;

		snprintf(name, sizeof(name), "o%d", i);
		p = pj(dir, name);
		phys[i] = phys_of(p);
		free(p);
		byphys[i] = i;
	}
	for (int i = 1; i < NORD; i++)
		for (int k = i; k > 0 && phys[byphys[k]] < phys[byphys[k - 1]]; k--) {
			int t = byphys[k];

			byphys[k] = byphys[k - 1];
			byphys[k - 1] = t;
		}
	/* the check means something only if physical order is not name order */
	CHECK(byphys[0] != 0 || byphys[1] != 1 || byphys[2] != 2,
	      "order: physical order is name order; the test cannot tell them apart");
	for (int m = 0; m < 2; m++) {
		struct run r;

		evict_tree(dir);
		oc.what = m ? "scrub (duet)" : "scrub --no-duet";
		oc.n = 3;
		memcpy(oc.expect, byphys, sizeof(byphys));
		r = run_tool(sc[m], 3, ord_on_stop, &oc, false);
		CHECK(r.status == 0, "%s: exit %d: %s", oc.what, r.status, r.err);
		if (m)
			check_duet_used(&r, oc.what);
		run_free(&r);

		evict_tree(dir);
		oc.what = m ? "dedup (duet)" : "dedup --no-duet";
		oc.n = 4;
		memcpy(oc.expect, (int[]){ 1, 4, 2, 6 }, 4 * sizeof(int));
		r = run_tool(dd[m], 4, ord_on_stop, &oc, false);
		CHECK(r.status == 0, "%s: exit %d: %s", oc.what, r.status, r.err);
		if (m)
			check_duet_used(&r, oc.what);
		run_free(&r);
	}
	free(dir);
	free(man);
}

static void remove_base(void)
{
	char cmd[512];

	fsimg_cleanup_all();
	if (stage[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", stage);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", stage);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", base);
}

struct between {
	const char *src, *dst;
	int stops;
};

static void between_on_stop(void *ud)
{
	struct between *b = ud;
	struct stat st;
	char *p;

	if (++b->stops == 1) {
		/* Inside a-big: another process brings s3 into the cache. */
		read_file(p = pj(b->src, "s3"));
		free(p);
		return;
	}
	/* After the first file done: s3, copied between a-big's chunks. */
	p = pj(b->dst, "s3");
	CHECK(!stat(p, &st) && st.st_size == 65536,
	      "between: s3 is not the first file copied (cached while a-big was read)");
	free(p);
	p = pj(b->dst, "a-big");
	CHECK(stat(p, &st) && errno == ENOENT, "between: a-big was copied before s3");
	free(p);
}

/*
 * Cached files are processed between the chunks of a long file: backup
 * (name order) stops inside a-big (32 MiB), another process reads s3,
 * and the first file copied is s3, before a-big is finished.
 */
static void test_between(void)
{
	char *src = pj(base, "fs/between"), *dst = pj(base, "fs/between-dst");
	struct between b = { src, dst, 0 };
	const char *av[] = { backup_exe, "-q", src, dst, NULL };
	struct run r;

	if (mkdir(src, 0755))
		die("mkdir %s: %s", src, strerror(errno));
	put(src, "a-big", 0, 32u << 20, 7);
	for (int i = 1; i <= 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", i);
		put(src, name, 0, 65536, (uint32_t)(20 + i));
	}
	evict_tree(src);
	also_stop_after = 1;
	r = run_tool(av, -1, between_on_stop, &b, false);
	also_stop_after = 0;
	check_duet_used(&r, "between");
	CHECK(r.status == 0, "between: exit %d: %s", r.status, r.err);
	CHECK(b.stops == 2, "between: stopped %d times", b.stops);
	CHECK(tree_equal(src, dst, true), "between: the copy differs");
	run_free(&r);
	free(src);
	free(dst);
}

int main(int argc, char **argv)
{
	static struct fsimg fs, small;	/* the cleanup at exit points at them */
	char *mnt;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: live-tools backup|scrub|dedup|errors|reflink|order BACKUP SCRUB DEDUP [FSTYPE]\n");
		return TEST_ERROR;
	}
	livetest_require_root();
	backup_exe = argv[2];
	scrub_exe = argv[3];
	dedup_exe = argv[4];
	snprintf(base, sizeof(base), "/tmp/duet-tools-%d", (int)getpid());
	if (mkdir(base, 0755))
		die("mkdir %s: %s", base, strerror(errno));
	/* registered before fsimg's handler: runs after the unmounts, also on die() */
	atexit(remove_base);
	if (!strcmp(argv[1], "reflink")) {
		mnt = pj(base, "bt");
		if (fsimg_make(&fs, "btrfs", 256, mnt))
			die("cannot make a btrfs image");
	} else {
		const char *type = argc == 6 ? argv[5] : "ext4";

		mnt = pj(base, "fs");
		if (fsimg_make(&fs, type, 320, mnt))
			die("cannot make an %s image", type);
	}
	/* Reading must not move atimes: they are compared. */
	sh("mount -o remount,noatime '%s'", mnt);
	if (!strcmp(argv[1], "errors")) {
		char *m = pj(base, "small");

		if (fsimg_make(&small, "ext4", 32, m))
			die("cannot make a small ext4 image");
		free(m);
		stage_tools();
		test_errors();
	} else if (!strcmp(argv[1], "backup")) {
		test_backup();
	} else if (!strcmp(argv[1], "scrub")) {
		test_scrub();
	} else if (!strcmp(argv[1], "dedup")) {
		test_dedup();
	} else if (!strcmp(argv[1], "reflink")) {
		test_reflink();
	} else if (!strcmp(argv[1], "order")) {
		test_order();
		test_between();
	} else {
		die("unknown test %s", argv[1]);
	}
	fsimg_cleanup_all();
	free(mnt);
	return check_exit(argv[1]);
}
