// SPDX-License-Identifier: LGPL-2.1-or-later
/* The sorted tree walk and the duet-driven order shared by the tools. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <xxhash.h>

#include "common.h"

struct pm_node {
	struct tl_entry *e;
	UT_hash_handle hh;
};

struct ino_key {
	dev_t dev;
	ino_t ino;
};

struct ino_node {
	struct ino_key k;
	int first;
	UT_hash_handle hh;
};

struct k_key {
	uint64_t ino, gen;
	uint32_t dev, pad;
};

struct k_node {
	struct k_key k;
	struct tl_entry *e;	/* NULL: not a file of ours */
	UT_hash_handle hh;
};

/*
 * The session's start-up, in the start-up thread (tl_duet_begin) or in
 * line. It lives in static storage, not in the tool's context: the
 * process's exit handler may need it after main() returned.
 */
static struct {
	pthread_t th;
	bool running;		/* the thread is to be joined */
	bool begun;		/* begun, in a thread or in line */
	bool exit_handler;
	const char *prog, *root;
	bool polite, want_modified;
	/* results: what is open; r, and whether the polite flag had to go */
	struct duet_session *s;
	struct duet_task *ex, *mod;
	int r;
	bool no_polite_duetd;
} st;

static void start_close(void);

uint64_t tl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tl_init(struct tl_ctx *c, const char *prog, const char *root, bool quiet, bool no_duet)
{
	const char *s = getenv("DUET_TOOLS_TEST_STOP_AFTER");
	size_t len = strlen(root);
	char *r;

	memset(c, 0, sizeof(*c));
	c->prog = prog;
	r = strdup(root);
	if (!r)
		abort();
	/* "a/b//" -> "a/b", but "/" stays "/" */
	while (len > 1 && r[len - 1] == '/')
		r[--len] = '\0';
	c->root = r;
	c->quiet = quiet;
	c->no_duet = no_duet;
	c->tty = !quiet && isatty(STDERR_FILENO);
	c->stop_after = s ? atoi(s) : 0;
	s = getenv("DUET_TOOLS_TEST_STOP_IN_FILE");
	c->stop_in_file = s ? atoi(s) : 0;
	s = getenv("DUET_TOOLS_RIDE_MS");
	c->ride_ms = s ? (unsigned int)atoi(s) : TL_RIDE_MS;
}

void tl_free(struct tl_ctx *c)
{
	struct pm_node *p, *pt;
	struct k_node *k, *kt;

	HASH_ITER(hh, (struct pm_node *)c->pathmap, p, pt) {
		HASH_DELETE(hh, *(struct pm_node **)&c->pathmap, p);
		free(p);
	}
	HASH_ITER(hh, (struct k_node *)c->kmap, k, kt) {
		HASH_DELETE(hh, *(struct k_node **)&c->kmap, k);
		free(k);
	}
	/* c's session is st's (tl_duet_start): closed once, there. */
	start_close();
	c->ex = c->mod = NULL;
	c->s = NULL;
	for (int i = 0; i < c->n; i++) {
		free(c->e[i]->rel);
		free(c->e[i]);
	}
	free(c->e);
	free(c->walk);
	free(c->q);
	free(c->root_abs);
	free((char *)c->root);
}

char *tl_path(const struct tl_ctx *c, const char *rel)
{
	char *p;

	if (!*rel)
		p = strdup(c->root);
	else if (asprintf(&p, "%s%s%s", c->root, strcmp(c->root, "/") ? "/" : "", rel) < 0)
		p = NULL;
	if (!p)
		abort();
	return p;
}

void tl_put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\\')
			fputs("\\\\", f);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

char *tl_unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*s) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		if (*s == '\\') {
			*o++ = '\\';
			s++;
		} else if (*s == 'n') {
			*o++ = '\n';
			s++;
		} else if (*s == 'x' && s[1] && s[2]) {
			char hex[3] = { s[1], s[2], 0 }, *end;
			long v = strtol(hex, &end, 16);

			if (*end || v <= 0) {
				free(out);
				return NULL;
			}
			*o++ = (char)v;
			s += 3;
		} else {
			free(out);
			return NULL;
		}
	}
	*o = '\0';
	return out;
}

void tl_err(struct tl_ctx *c, const char *rel, const char *fmt, ...)
{
	va_list ap;
	char *p = tl_path(c, rel);

	if (c->tty)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "%s: ", c->prog);
	tl_put_escaped(stderr, p);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	free(p);
	c->errors++;
}

int tl_cmp_rel(const void *a, const void *b)
{
	const struct tl_entry *x = *(struct tl_entry *const *)a, *y = *(struct tl_entry *const *)b;

	return strcmp(x->rel, y->rel);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct tl_entry *add_entry(struct tl_ctx *c, char *rel, const struct stat *st)
{
	struct tl_entry *e = calloc(1, sizeof(*e));
	struct pm_node *p = calloc(1, sizeof(*p));

	if (!e || !p)
		abort();
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->e = realloc(c->e, (size_t)c->cap * sizeof(*c->e));
		if (!c->e)
			abort();
	}
	e->rel = rel;
	e->st = *st;
	e->idx = c->n;
	e->link = c->n;
	c->e[c->n++] = e;
	p->e = e;
	HASH_ADD_KEYPTR(hh, *(struct pm_node **)&c->pathmap, e->rel, strlen(e->rel), p);
	return e;
}

/* List the directory dfd (entry rel) recursively, names sorted. */
static void list_dir(struct tl_ctx *c, int dfd, const char *rel, struct ino_node **inos)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		tl_err(c, rel, "cannot list: %s", strerror(errno));
		close(dfd);
		return;
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[n] = strdup(de->d_name);
		if (!names[n++])
			abort();
	}
	if (errno)
		tl_err(c, rel, "cannot list: %s", strerror(errno));
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		struct tl_entry *e;
		char *r;

		if (asprintf(&r, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0)
			abort();
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW)) {
			tl_err(c, r, "cannot stat: %s", strerror(errno));
			free(r);
			continue;
		}
		e = add_entry(c, r, &st);
		if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
			struct ino_key k = { st.st_dev, st.st_ino };
			struct ino_node *in;

			HASH_FIND(hh, *inos, &k, sizeof(k), in);
			if (in) {
				e->link = in->first;
			} else {
				in = calloc(1, sizeof(*in));
				if (!in)
					abort();
				in->k = k;
				in->first = e->idx;
				HASH_ADD(hh, *inos, k, sizeof(k), in);
			}
		}
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), names[i],
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd < 0)
				tl_err(c, r, "cannot list: %s", strerror(errno));
			else
				list_dir(c, fd, r, inos);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
}

int tl_list(struct tl_ctx *c)
{
	struct ino_node *inos = NULL, *in, *tmp;
	struct stat st;
	char *rel;
	int fd;

	if (stat(c->root, &st)) {
		int r = -errno;

		fprintf(stderr, "%s: ", c->prog);
		tl_put_escaped(stderr, c->root);
		fprintf(stderr, ": %s\n", strerror(-r));
		return r;
	}
	c->root_abs = realpath(c->root, NULL);
	rel = strdup("");
	if (!rel || !c->root_abs)
		abort();
	add_entry(c, rel, &st);
	if (!S_ISDIR(st.st_mode))
		return 0;
	fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		fprintf(stderr, "%s: ", c->prog);
		tl_put_escaped(stderr, c->root);
		fprintf(stderr, ": %s\n", strerror(-r));
		return r;
	}
	list_dir(c, fd, "", &inos);
	HASH_ITER(hh, inos, in, tmp) {
		HASH_DELETE(hh, inos, in);
		free(in);
	}
	return 0;
}

/*
 * Opens the session and its tasks and waits for the registration scan.
 * Prints nothing: it may run while the tool is still listing, and a
 * listing that fails prints its own error.
 */
static void *duet_open(void *arg)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	struct duet_task_opts to = { .sz = sizeof(to), .name = st.prog,
				     .mask = DUET_EXISTS, .path = st.root,
				     .flags = st.polite ? DUET_TASK_POLITE : 0 };
	int r;

	(void)arg;
	r = duet_session_new(&so, &st.s);
	if (!r)
		r = duet_task_new(st.s, &to, &st.ex);
	if (r == -EOPNOTSUPP && to.flags) {
		/* A duetd before cache-polite tasks: the rest works without. */
		st.no_polite_duetd = true;
		to.flags = 0;
		r = duet_task_new(st.s, &to, &st.ex);
	}
	/* The MODIFIED task holds no page back, polite or not (duet_task_new(3)). */
	to.flags = 0;
	if (!r && st.want_modified) {
		to.mask = DUET_MODIFIED;
		r = duet_task_new(st.s, &to, &st.mod);
	}
	st.r = r;
	if (r) {
		if (st.ex)
			duet_task_free(st.ex);
		duet_session_free(st.s);
		st.ex = NULL;
		st.s = NULL;
		return NULL;
	}
	/*
	 * Let the registration scan (cachestat, no reading) finish first, so
	 * the files cached at the start come before the walk's first file.
	 * It is quick; past 5 s the walk starts and the scan goes on behind.
	 */
	for (uint64_t end = tl_now_ns() + 5000000000ull; tl_now_ns() < end;) {
		struct duet_task_status ts = { .sz = sizeof(ts) };
		struct duet_task_status sm = { .sz = sizeof(sm) };

		if (duet_task_status(st.ex, &ts) ||
		    (st.mod && duet_task_status(st.mod, &sm)) ||
		    (ts.scan_done >= ts.scan_files && sm.scan_done >= sm.scan_files))
			break;
		usleep(1000);
	}
	return NULL;
}

static void start_join(void)
{
	if (!st.running)
		return;
	pthread_join(st.th, NULL);
	st.running = false;
}

/*
 * The start-up thread joined, if one runs, and what it opened closed:
 * by tl_free(), or at the exit of a tool that failed a step.
 */
static void start_close(void)
{
	start_join();
	if (st.ex)
		duet_task_free(st.ex);
	if (st.mod)
		duet_task_free(st.mod);
	duet_session_free(st.s);
	st.mod = st.ex = NULL;
	st.s = NULL;
}

static void start_setup(struct tl_ctx *c, bool want_modified)
{
	st.begun = true;
	st.prog = c->prog;
	st.root = c->root;
	st.polite = !c->no_polite;
	st.want_modified = want_modified;
	if (!st.exit_handler)
		st.exit_handler = !atexit(start_close);
}

void tl_duet_begin(struct tl_ctx *c, bool want_modified)
{
	if (c->no_duet || st.begun)
		return;
	start_setup(c, want_modified);
	/* Without the exit handler or a thread, tl_duet_start() opens it in line. */
	if (!st.exit_handler || pthread_create(&st.th, NULL, duet_open, NULL)) {
		st.begun = false;
		return;
	}
	st.running = true;
	/* Test hook: the session open before the tool goes on (see the man pages). */
	if (getenv("DUET_TOOLS_TEST_START_FIRST"))
		start_join();
}

void tl_duet_start(struct tl_ctx *c, bool want_modified)
{
	if (c->no_duet)
		return;
	if (st.running) {
		start_join();
	} else if (!st.begun) {
		start_setup(c, want_modified);
		duet_open(NULL);
	}
	if (st.no_polite_duetd)
		fprintf(stderr,
			"%s: warning: duetd is too old for cache-polite tasks (protocol minor 4): "
			"the pages read stay in the page cache (update duetd, or --no-polite)\n",
			c->prog);
	if (st.r)
		fprintf(stderr,
			"%s: warning: libduet cannot start (%s): no cached-first order, "
			"processing in plain walk order\n",
			c->prog, duet_strerror(st.r));
	st.no_polite_duetd = false;
	st.r = 0;
	c->s = st.s;
	c->ex = st.ex;
	c->mod = st.mod;
}

/* The entry an item names, or NULL (not under the tree, not listed). */
static struct tl_entry *resolve(struct tl_ctx *c, struct duet_task *t, const struct duet_item *it)
{
	struct k_key k = { .ino = it->ino, .gen = it->gen, .dev = it->dev };
	struct k_node *kn;
	struct pm_node *p = NULL;
	struct duet_fileid f = duet_item_fileid(it);
	size_t rl = strlen(c->root_abs);
	char buf[PATH_MAX + 256];
	const char *rel = NULL;

	HASH_FIND(hh, (struct k_node *)c->kmap, &k, sizeof(k), kn);
	if (kn)
		return kn->e;
	if (duet_task_path(t, &f, buf, sizeof(buf)))
		return NULL;	/* no name (yet, or any more): not cached as an answer */
	if (!strcmp(buf, c->root_abs))
		rel = "";
	else if (!strcmp(c->root_abs, "/"))
		rel = buf + 1;
	else if (!strncmp(buf, c->root_abs, rl) && buf[rl] == '/')
		rel = buf + rl + 1;
	if (rel)
		HASH_FIND(hh, (struct pm_node *)c->pathmap, rel, strlen(rel), p);
	kn = calloc(1, sizeof(*kn));
	if (!kn)
		abort();
	kn->k = k;
	if (p && S_ISREG(p->e->st.st_mode) && p->e->st.st_ino == it->ino) {
		kn->e = c->e[p->e->link];
		if (!kn->e->fid_known) {
			kn->e->fid = f;
			kn->e->fid_known = true;
		}
	}
	HASH_ADD(hh, *(struct k_node **)&c->kmap, k, sizeof(k), kn);
	return kn->e;
}

static void queue(struct tl_ctx *c, struct tl_entry *e, int why)
{
	if (c->nq == c->qcap) {
		c->qcap = c->qcap ? c->qcap * 2 : 256;
		c->q = realloc(c->q, (size_t)c->qcap * sizeof(*c->q));
		if (!c->q)
			abort();
	}
	c->q[c->nq].e = e;
	c->q[c->nq++].why = why;
	/*
	 * Only ADDED items keep the walk waiting: each names a file not yet
	 * done, so they end; a file written to all the time would send
	 * DIRTY items for ever.
	 */
	if (why == TL_CACHED)
		c->last_item_ns = tl_now_ns();
}

static void poll_task(struct tl_ctx *c, struct duet_task *t, bool mod)
{
	struct pollfd pfd = { .fd = duet_task_fd(t), .events = POLLIN };
	uint64_t now = tl_now_ns(), *last = mod ? &c->mod_fetch_ns : &c->ex_fetch_ns;
	struct duet_item it[256];
	int n;

	/*
	 * The fd is readable while pages are pending (duet_task_fd(3)): a
	 * fetch when it is not would find nothing, at the price of the
	 * session's lock (in-process) or a round trip (duetd). A LOST item
	 * alone need not make it readable: a fetch at least every
	 * TL_FETCH_NS takes it.
	 */
	if (pfd.fd >= 0 && now - *last < TL_FETCH_NS && poll(&pfd, 1, 0) == 0)
		return;
	*last = now;
	while ((n = duet_task_fetch(t, it, 256)) > 0) {
		struct tl_entry *prev = NULL;

		for (int i = 0; i < n; i++) {
			struct tl_entry *e;

			if (it[i].flags & DUET_ITEM_LOST)
				continue;
			if (it[i].state != (mod ? DUET_DIRTY : DUET_ADDED))
				continue;
			e = resolve(c, t, &it[i]);
			/* items come in (dev, ino, index) order: one per file */
			if (!e || e == prev || !(e->flags & TL_WANT))
				continue;
			prev = e;
			if (!mod && (e->flags & TL_DONE))
				continue;
			/*
			 * The file being read now (its own reads' pages): nothing
			 * to queue, and no reason for the walk to wait for more.
			 */
			if (!mod && (e->flags & TL_BUSY))
				continue;
			queue(c, e, mod ? TL_DIRTY : TL_CACHED);
		}
	}
}

void tl_poll(struct tl_ctx *c)
{
	if (c->ex)
		poll_task(c, c->ex, false);
	if (c->mod)
		poll_task(c, c->mod, true);
}

/* The tool's callback, with e busy meanwhile. */
static void visit(struct tl_ctx *c, struct tl_entry *e, int why)
{
	e->flags |= TL_BUSY;
	c->depth++;
	c->fn(c, e, why);
	c->depth--;
	e->flags &= ~TL_BUSY;
}

void tl_drain(struct tl_ctx *c, tl_fn fn)
{
	struct tl_qent *aside = NULL;
	int naside = 0;

	c->fn = fn;
	tl_poll(c);
	while (c->nq) {
		struct tl_qent q = c->q[--c->nq];

		/* queued twice, or processed since it was queued */
		if (q.why == TL_CACHED && (q.e->flags & TL_DONE))
			continue;
		/*
		 * The long file being read around us: it is being processed.
		 * A DIRTY item for it waits for the outer drain (the file was
		 * written to meanwhile); an ADDED one means nothing new.
		 */
		if (q.e->flags & TL_BUSY) {
			if (q.why == TL_DIRTY) {
				void *p = realloc(aside, (size_t)(naside + 1) * sizeof(*aside));

				if (!p)
					abort();
				aside = p;
				aside[naside++] = q;
			}
			continue;
		}
		if (q.why == TL_CACHED || !(q.e->flags & TL_DONE))
			c->cached_first++;
		visit(c, q.e, q.why);
		tl_poll(c);
	}
	for (int i = 0; i < naside; i++)
		queue(c, aside[i].e, aside[i].why);
	free(aside);
}

void tl_between(struct tl_ctx *c)
{
	tl_poll(c);
	if (c->depth == 1 && c->nq && c->fn)
		tl_drain(c, c->fn);
}

void tl_done(struct tl_ctx *c, struct tl_entry *e)
{
	e->flags |= TL_DONE;
	tl_mark_done(c, e);
}

void tl_mark_done(struct tl_ctx *c, struct tl_entry *e)
{
	if (!c->ex || !S_ISREG(e->st.st_mode))
		return;
	if (!e->fid_known) {
		char *p = tl_path(c, e->rel);

		if (!duet_task_fileid(c->ex, p, &e->fid))
			e->fid_known = true;
		free(p);
	}
	if (e->fid_known)
		duet_task_set_done(c->ex, &e->fid, 0, 0);
}

/* While items keep coming (the last less than ride_ms ago), process what
 * they name instead of walking: others are reading for us. */
static void ride(struct tl_ctx *c, tl_fn fn)
{
	uint64_t wait = (uint64_t)c->ride_ms * 1000000ull;

	for (;;) {
		uint64_t now;
		struct pollfd pfd = { .fd = duet_task_fd(c->ex), .events = POLLIN };

		tl_drain(c, fn);
		now = tl_now_ns();
		if (now - c->last_item_ns >= wait || pfd.fd < 0)
			return;
		poll(&pfd, 1, (int)((c->last_item_ns + wait - now + 999999) / 1000000));
	}
}

void tl_run(struct tl_ctx *c, tl_fn fn)
{
	struct tl_entry **w = c->walk ? c->walk : c->e;
	int n = c->walk ? c->nwalk : c->n;

	for (int i = 0; i < n; i++) {
		struct tl_entry *e = w[i];

		if (c->ex && c->ride_ms)
			ride(c, fn);
		else
			tl_drain(c, fn);
		c->fn = fn;
		if ((e->flags & TL_WANT) && !(e->flags & TL_DONE))
			visit(c, e, TL_WALK);
	}
	tl_drain(c, fn);
}

void tl_progress(struct tl_ctx *c, uint64_t bytes)
{
	c->processed++;
	c->bytes += bytes;
	if (c->tty) {
		uint64_t now = tl_now_ns();

		if (now - c->last_progress_ns > 200000000ull) {
			c->last_progress_ns = now;
			fprintf(stderr, "\r\033[K%s: %d/%d files %s, %llu MiB, %llu cached first",
				c->prog, c->processed, c->total, c->what ? c->what : "done",
				(unsigned long long)(c->bytes >> 20),
				(unsigned long long)c->cached_first);
		}
	}
	if (c->stop_after && c->processed == c->stop_after)
		raise(SIGSTOP);
}

void tl_test_reading(struct tl_ctx *c)
{
	if (c->stop_in_file && ++c->files_read == c->stop_in_file)
		raise(SIGSTOP);
}

void tl_progress_end(struct tl_ctx *c)
{
	if (c->tty && c->last_progress_ns)
		fputs("\r\033[K", stderr);
	/* On stderr: stdout stays the same with and without duet. */
	if (!c->quiet && c->ex)
		fprintf(stderr, "%s: duet: %llu of %d files processed because their pages were cached\n",
			c->prog, (unsigned long long)c->cached_first, c->total);
}

bool tl_same_version(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int tl_hash_file(struct tl_ctx *c, const char *rel, struct stat *before, struct stat *after,
		 uint8_t hash[16])
{
	static char *buf;
	uint64_t got = 0;
	XXH3_state_t *x;
	XXH128_canonical_t can;
	char *p = tl_path(c, rel);
	int fd, r = 0;
	ssize_t n;

	if (!buf && !(buf = malloc(1u << 20)))
		abort();
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	free(p);
	if (fd < 0)
		return -errno;
	if (fstat(fd, before)) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(before->st_mode)) {
		r = -EINVAL;
		goto out;
	}
	x = XXH3_createState();
	if (!x)
		abort();
	XXH3_128bits_reset(x);
	while ((n = read(fd, buf, 1u << 20)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		/* buf is consumed here: tl_between() may hash another file. */
		XXH3_128bits_update(x, buf, (size_t)n);
		if (!got)
			tl_test_reading(c);
		c->bytes_read += (uint64_t)n;
		if ((got + (uint64_t)n) / TL_POLL_CHUNK != got / TL_POLL_CHUNK)
			tl_between(c);
		got += (uint64_t)n;
	}
	if (!r) {
		XXH128_canonicalFromHash(&can, XXH3_128bits_digest(x));
		memcpy(hash, can.digest, 16);
		if (fstat(fd, after))
			r = -errno;
	}
	XXH3_freeState(x);
out:
	close(fd);
	return r;
}

void tl_hash_hex(const uint8_t hash[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", hash[i]);
}
