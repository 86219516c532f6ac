// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duet top's view: the frame (rows of files or processes, sorted and
 * filtered), the keys, and the terminal, driven with plain ANSI escapes
 * (an alternate screen, no cursor, no echo) and restored on every exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "duet-cli.h"
#include "duet/duet.h"
#include "output.h"
#include "top.h"

const char *const top_sort_names[TS_NR] = {
	[TS_TOTAL] = "total", [TS_ADDED] = "added", [TS_REMOVED] = "removed",
	[TS_DIRTIED] = "dirtied", [TS_FLUSHED] = "flushed", [TS_REFAULTS] = "refaults",
	[TS_CACHED] = "cached", [TS_NAME] = "name",
};

/* Short names of the causes, for a column. */
static const char *const cause_short[CAUSE_NR] = {
	[CAUSE_KSWAPD] = "kswapd", [CAUSE_DIRECT] = "direct-reclaim",
	[CAUSE_DROP] = "drop-caches", [CAUSE_KERNEL] = "kernel",
	[CAUSE_PROCESS] = "truncate/invalidate",
};

/* ---- the terminal ---- */

static struct termios saved_tio;
static bool term_on;

void top_term_close(void)
{
	if (!term_on)
		return;
	term_on = false;
	/* The cursor back, the main screen back, the modes as they were. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
}

int top_term_open(struct top *t)
{
	struct termios tio;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "%s: standard input and output must be a terminal (or use --batch)\n",
			t->prog);
		return CLI_EXIT_FAIL;
	}
	if (tcgetattr(STDIN_FILENO, &saved_tio)) {
		fprintf(stderr, "%s: %s\n", t->prog, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	tio = saved_tio;
	tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	tio.c_cc[VMIN] = 0;
	tio.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
	term_on = true;
	atexit(top_term_close);
	fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
	fflush(stdout);
	return 0;
}

static void term_size(struct top *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col) {
		t->rows = ws.ws_row;
		t->cols = ws.ws_col;
	}
}

/* ---- keys ---- */

void top_keys(struct top *t, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (t->editing) {
			if (c == '\r' || c == '\n') {
				t->editing = false;
			} else if (c == 27) {	/* Escape: no filter */
				t->editing = false;
				t->filter_len = 0;
			} else if (c == 127 || c == 8) {
				if (t->filter_len)
					t->filter_len--;
			} else if (c >= 32 && t->filter_len + 1 < sizeof(t->filter)) {
				t->filter[t->filter_len++] = (char)c;
			}
			t->filter[t->filter_len] = '\0';
			continue;
		}
		switch (c) {
		case 'q':
			t->quit = true;
			break;
		case 's':
			t->sort = (enum top_sort)((t->sort + 1) % TS_NR);
			break;
		case '/':
			t->editing = true;
			t->filter_len = 0;
			t->filter[0] = '\0';
			break;
		case ' ':
		case 'p':
			t->paused = !t->paused;
			break;
		case '\t':
			t->processes = !t->processes;
			break;
		}
	}
	/* A change shows at once, paused or not. */
	top_frame(t);
}

/* ---- rows ---- */

static const struct top_counts *shown(const struct top *t, const struct top_counts *iv,
				      const struct top_counts *tot)
{
	return t->cumulative ? tot : iv;
}

static uint64_t total_of(const struct top_counts *c)
{
	return c->v[TC_ADDED] + c->v[TC_REMOVED] + c->v[TC_DIRTY] + c->v[TC_FLUSHED];
}

static bool active(const struct top_counts *c)
{
	for (int i = 0; i < TC_NR; i++)
		if (c->v[i])
			return true;
	return false;
}

static uint64_t key_of(const struct top_counts *c, enum top_sort s)
{
	switch (s) {
	case TS_ADDED:
		return c->v[TC_ADDED];
	case TS_REMOVED:
		return c->v[TC_REMOVED];
	case TS_DIRTIED:
		return c->v[TC_DIRTY];
	case TS_FLUSHED:
		return c->v[TC_FLUSHED];
	case TS_REFAULTS:
		return c->v[TC_REFAULT];
	default:
		return total_of(c);
	}
}

/* The cause of most pages removed, or NULL. */
static const char *main_cause(const struct top_counts *c)
{
	int best = -1;

	for (int i = 0; i < CAUSE_NR; i++)
		if (c->cause[i] && (best < 0 || c->cause[i] > c->cause[best]))
			best = i;
	return best < 0 ? NULL : cause_short[best];
}

static const struct top *sort_top;

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? 1 : a > b ? -1 : 0;	/* largest first */
}

static int cmp_file(const void *pa, const void *pb)
{
	const struct top_file *a = *(struct top_file *const *)pa, *b = *(struct top_file *const *)pb;
	const struct top *t = sort_top;
	int r;

	if (t->sort == TS_NAME)
		r = strcmp(a->path ? a->path : "", b->path ? b->path : "");
	else if (t->sort == TS_CACHED)
		r = a->cached < b->cached ? 1 : a->cached > b->cached ? -1 : 0;
	else
		r = cmp_u64(key_of(shown(t, &a->iv, &a->tot), t->sort),
			    key_of(shown(t, &b->iv, &b->tot), t->sort));
	if (!r)
		r = strcmp(a->path ? a->path : "", b->path ? b->path : "");
	return r;
}

static int cmp_proc(const void *pa, const void *pb)
{
	const struct top_proc *a = *(struct top_proc *const *)pa, *b = *(struct top_proc *const *)pb;
	const struct top *t = sort_top;
	int r;

	if (t->sort == TS_NAME)
		r = strcmp(a->comm, b->comm);
	else
		r = cmp_u64(key_of(shown(t, &a->iv, &a->tot), t->sort),
			    key_of(shown(t, &b->iv, &b->tot), t->sort));
	return r ? r : a->pid - b->pid;
}

static int take_cached(void *ud, const struct duet_residency *r, size_t n)
{
	int64_t *ret = ud;

	if (n && !r[0].error)
		*ret = (int64_t)r[0].cached;
	return 0;
}

/*
 * Pages of the file in the page cache now, or -1: duet_residency(), so
 * cachestat with this process's rights, and duetd's count where the
 * kernel counts only for the owner (a user's view of root's files).
 */
static int64_t cached_now(const char *path)
{
	struct duet_residency_opts o = { .sz = sizeof(o) };
	int64_t r = -1;

	duet_residency(path, &o, take_cached, &r);
	return r;
}

static bool matches(const struct top *t, const char *s)
{
	return !t->filter[0] || (s && strstr(s, t->filter));
}

/* A line: on a terminal cut to its width, then cleared to its end. */
struct frame {
	struct top *t;
	int line;	/* lines written */
	int max;	/* lines that fit; 0: no limit (batch) */
};

static void put(struct frame *fr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct frame *fr, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	if (fr->max && fr->line >= fr->max)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!fr->t->batch && fr->t->cols > 0 && strlen(buf) > (size_t)fr->t->cols)
		buf[fr->t->cols] = '\0';
	fputs(buf, stdout);
	fputs(fr->t->batch ? "\n" : "\033[K\n", stdout);
	fr->line++;
}

static void who(char *buf, size_t len, int pid)
{
	if (pid < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s/%d", out_comm(pid), pid);
}

/* --loads: the figures shown (the interval's, or since the start). */
static struct rloads loads_shown(const struct top *t, const struct top_file *f)
{
	struct rloads l = f->ld;

	if (t->cumulative) {
		l.demand += f->ld_tot.demand;
		l.readahead += f->ld_tot.readahead;
		l.other += f->ld_tot.other;
		l.hits += f->ld_tot.hits;
	}
	return l;
}

static void file_rows(struct top *t, struct frame *fr)
{
	size_t n = HASH_COUNT(t->files), k = 0;
	struct top_file **v = calloc(n ? n : 1, sizeof(*v)), *f, *tmp;

	if (!v)
		return;
	HASH_ITER(hh, t->files, f, tmp) {
		struct rloads l = loads_shown(t, f);

		if (!active(shown(t, &f->iv, &f->tot)) &&
		    !(t->loads && (l.demand || l.readahead || l.other || l.hits)))
			continue;
		if (t->refresh_path)
			t->refresh_path(t, f);
		if (!matches(t, f->path))
			continue;
		v[k++] = f;
	}
	/* Residency of the rows that can be shown (all of them when sorting by it). */
	for (size_t i = 0; i < k; i++)
		v[i]->cached = -1;
	if (t->sort == TS_CACHED || fr->max == 0)
		for (size_t i = 0; i < k; i++)
			v[i]->cached = v[i]->path ? cached_now(v[i]->path) : -1;
	sort_top = t;
	qsort(v, k, sizeof(*v), cmp_file);
	put(fr, "%8s %8s %8s %8s %8s %8s %s%-18s %-18s %-19s %s", "ADDED", "REMOVED", "DIRTIED",
	    t->flush_inode ? "FLUSHES" : "FLUSHED", "REFAULTS", "CACHED",
	    t->loads ? "  DEMAND READAHEAD     HITS " : "", "ADDED-BY", "EVICTED-BY", "CAUSE",
	    "PATH");
	for (size_t i = 0; i < k && (!fr->max || fr->line < fr->max); i++) {
		const struct top_counts *c;
		char cached[24], a[48], e[48], lds[64] = "";
		const char *cause;

		f = v[i];
		if (t->loads) {
			struct rloads l = loads_shown(t, f);

			snprintf(lds, sizeof(lds), "%8" PRIu64 " %9" PRIu64 " %8" PRIu64 " ",
				 l.demand, l.readahead, l.hits);
		}
		c = shown(t, &f->iv, &f->tot);
		if (f->cached < 0 && f->path)
			f->cached = cached_now(f->path);
		if (f->cached < 0)
			snprintf(cached, sizeof(cached), "-");
		else
			snprintf(cached, sizeof(cached), "%" PRId64, f->cached);
		cause = t->via_duetd ? "n/a" : main_cause(c);
		if (t->via_duetd) {
			snprintf(a, sizeof(a), "n/a");
			snprintf(e, sizeof(e), "n/a");
		} else {
			who(a, sizeof(a), f->adder);
			who(e, sizeof(e), f->evictor);
		}
		put(fr, "%8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8s %s%-18s %-18s %-19s %s%s",
		    c->v[TC_ADDED], c->v[TC_REMOVED], c->v[TC_DIRTY], c->v[TC_FLUSHED],
		    c->v[TC_REFAULT], cached, lds, a, e, cause ? cause : "-",
		    f->path ? f->path : "?", f->deleted ? " (deleted)" : "");
	}
	free(v);
}

static void proc_rows(struct top *t, struct frame *fr)
{
	size_t n = HASH_COUNT(t->procs), k = 0;
	struct top_proc **v, *p, *tmp;

	if (t->via_duetd) {
		put(fr, "No process view through duetd: it never tells a user about other users'");
		put(fr, "processes, so its items carry no pid. Run duet top as root for it.");
		return;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return;
	HASH_ITER(hh, t->procs, p, tmp)
		if (active(shown(t, &p->iv, &p->tot)) && matches(t, p->comm))
			v[k++] = p;
	sort_top = t;
	qsort(v, k, sizeof(*v), cmp_proc);
	put(fr, "%8s %-16s %8s %8s %8s %8s %8s %s", "PID", "COMM", "ADDED", "REMOVED", "DIRTIED",
	    t->flush_inode ? "FLUSHES" : "FLUSHED", "REFAULTS", "CAUSE");
	for (size_t i = 0; i < k && (!fr->max || fr->line < fr->max); i++) {
		const struct top_counts *c = shown(t, &v[i]->iv, &v[i]->tot);
		const char *cause = main_cause(c);

		put(fr, "%8d %-16s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %s",
		    v[i]->pid, v[i]->comm, c->v[TC_ADDED], c->v[TC_REMOVED], c->v[TC_DIRTY],
		    c->v[TC_FLUSHED], c->v[TC_REFAULT], cause ? cause : "-");
	}
	free(v);
}

void top_frame(struct top *t)
{
	struct frame fr = { .t = t };
	char now[16];
	time_t tt = time(NULL);
	struct tm tm;

	if (!t->batch) {
		term_size(t);
		/* A newline on the last row would scroll the header away. */
		fr.max = t->rows > 1 ? t->rows - 1 : 1;
		fputs("\033[H", stdout);
	}
	localtime_r(&tt, &tm);
	strftime(now, sizeof(now), "%H:%M:%S", &tm);
	put(&fr, "duet top - %s  %s  %s %g s  files %u  events %" PRIu64 "  lost %" PRIu64 "%s%s",
	    now, t->processes ? "processes" : "files", t->cumulative ? "cumulative, every" : "interval",
	    t->interval, HASH_COUNT(t->files), t->events, t->lost,
	    t->pages.full ? "  (refaults: at least)" : "", t->paused ? "  PAUSED" : "");
	put(&fr, "%s%s%s", t->via_duetd ? "through duetd (files you may read; no pids, no causes)" :
		 t->describe ? t->describe : "", t->scanning[0] ? "  " : "", t->scanning);
	if (t->editing)
		put(&fr, "filter: %s_   (Enter: keep, Esc: none)", t->filter);
	else if (!t->batch)
		put(&fr, "keys: s sort (%s)  / filter (%s)  space/p pause  Tab %s  q quit",
		    top_sort_names[t->sort], t->filter[0] ? t->filter : "none",
		    t->processes ? "files" : "processes");
	else
		put(&fr, "sort %s, filter %s", top_sort_names[t->sort], t->filter[0] ? t->filter : "none");
	if (t->processes)
		proc_rows(t, &fr);
	else
		file_rows(t, &fr);
	if (t->batch)
		fputs("\n", stdout);
	else
		fputs("\033[J", stdout);
	fflush(stdout);
}
