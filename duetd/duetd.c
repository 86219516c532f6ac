// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd: one tracing instance and one engine for every task on the
 * machine; clients (libduet in daemon mode) talk to it over a Unix socket
 * (libduet/proto.h).
 *
 * Threads: the main thread runs the socket loop (epoll) and calls the
 * in-process session's API; the session's pump thread feeds the engine.
 * Every client request is answered from the main thread.
 *
 * Bounds. A client costs at most: one input buffer (a request is at most
 * DP_MAX_REQUEST bytes), one reply (at most DP_MAX_REPLY; no request is
 * read while a reply is unsent; a buffer larger than a full FETCH is
 * given back once sent), its task's pending pages in the shared table, at
 * most --max-pending (past it the task gets LOST and is fed nothing until
 * it fetches: internal.h), and its task's done marks, at most
 * --max-done-marks. READY is sent once until the next FETCH. So a stopped
 * client never makes the daemon buffer more. How many clients there may
 * be, per user and in all, and how long one may stall, is
 * duetd-limits.c's; what DAEMON_STATUS tells whom, duetd-status.c's.
 *
 * Permissions. A client that is not root learns about a file only if it
 * could open it itself (duetd-creds.c). A client in another mount
 * namespace is refused at HELLO: every path is resolved in duetd's.
 *
 * Files: duetd.c (this: options, setup, the event loop), duetd-conn.c
 * (connections), duetd-requests.c (requests), duetd-creds.c (acting as
 * a client, its mount namespace), duetd-limits.c (bounds), duetd-status.c (DAEMON_STATUS),
 * duetd-datasets.c (--dataset).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "duetd.h"
#include "source.h"
#include "engine.h"
#include "live.h"
#include "duet/duet.h"

/*
 * --max-done-marks: about 190 bytes a mark (184 measured with 1,048,576
 * whole-file marks of files the engine knew nothing else about), so
 * 65,536 marks are about 12 MiB a task, 192 MiB for one user's 16 tasks
 * and 768 MiB for the engine's 64: within reach of a small machine, and
 * room for a task that marks every file of a tree of 65,536 files.
 */
#define DEFAULT_MAX_DONE_MARKS	65536

struct duetd d = {
	.socket = DP_DEFAULT_SOCKET,
	.mode = 0666,
	.max_pending = 262144,
	.max_done_marks = DEFAULT_MAX_DONE_MARKS,
	.max_clients = 1024,
	.max_tasks_per_user = 16,
	.request_timeout_s = 5,
	.idle_timeout_s = 60,
	.tfd = -1,
	.spare_fd = -1,
	.next_id = 1,
};

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("duetd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void session_log(void *ud, int level, const char *msg)
{
	if (level <= 4 || d.verbose)
		fprintf(stderr, "duetd: %s\n", msg);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fputs("usage: duetd [options]\n"
	      "Serves page-cache events to libduet programs, including unprivileged ones.\n"
	      "  -s, --socket PATH          socket (default " DP_DEFAULT_SOCKET ")\n"
	      "  -m, --socket-mode MODE     octal socket mode (default 0666: everyone may\n"
	      "                             connect; what each client sees is checked per file)\n"
	      "  -g, --socket-group GROUP   the socket's group (with e.g. --socket-mode 0660)\n"
	      "  -p, --max-pending PAGES    bound on a task's pending pages (default 262144);\n"
	      "                             past it the task gets LOST and a resync\n"
	      "  -d, --max-done-marks N     bound on a task's done marks (default 65536, 0:\n"
	      "                             none); past it marking fails with EDQUOT\n"
	      "  -u, --max-tasks-per-user N tasks per non-root user (default 16; 64 in all);\n"
	      "                             past it registering fails with ENOSPC\n"
	      "  -c, --max-connections N    connections in all (default 1024); past it a\n"
	      "                             connection is refused with a sentence\n"
	      "  -C, --max-connections-per-user N\n"
	      "                             connections of one non-root user (default a\n"
	      "                             quarter of --max-connections); past it likewise\n"
	      "  -t, --request-timeout S    a connection whose request stays incomplete for S\n"
	      "                             seconds is closed (default 5)\n"
	      "  -i, --idle-timeout S       a connection without a task that sends no request\n"
	      "                             for S seconds is closed (default 60)\n"
	      "  -b, --buffer-kb KB         per-CPU ring buffer size\n"
	      "      --latency-ms MS        while a client waits for items, each comes\n"
	      "                             within about MS of its event (default 2; a\n"
	      "                             client's task may ask for its own)\n"
	      "      --backend NAME         the event source: tracefs (default, the ring\n"
	      "                             buffer) or perf (perf_event_open, its plugin)\n"
	      "  -D, --dataset NAME=DIR     keep DIR's page cache current from the events,\n"
	      "                             for `duet ls --dataset NAME` (repeatable)\n"
	      "      --metrics [ADDR:]PORT  serve GET /metrics (Prometheus text format) on\n"
	      "                             ADDR (default 127.0.0.1)\n"
	      "      --metrics-textfile DIR write DIR/duetd.prom every 5 s (node_exporter's\n"
	      "                             textfile collector)\n"
	      "  -f, --config FILE          options from FILE, one per line (\"dataset web=/srv\",\n"
	      "                             \"max-pending 65536\"; '#' comments), before the\n"
	      "                             command line's\n"
	      "      --stock                ignore the patched kernel events\n"
	      "  -v, --verbose              log clients and tasks\n",
	      f);
}

/* A number option in [min, max]: 0, or says why not and returns 2. */
static int num(const char *name, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
		say("bad --%s %s (%llu to %llu)", name, arg, (unsigned long long)min,
		    (unsigned long long)max);
		return 2;
	}
	*out = v;
	return 0;
}

/*
 * --config FILE: each line "NAME VALUE" (or "NAME=VALUE", or "NAME" for
 * a flag) is the long option --NAME VALUE; '#' starts a comment. The
 * file's options come before the command line's, which win where an
 * option holds one value. Returns the options as an argv (argv[0] kept;
 * the strings stay allocated for the daemon's life), or NULL after saying
 * why.
 */
static char **load_config(int argc, char **argv, int *nargc)
{
	const char *file = NULL;
	char **av, *line = NULL;
	size_t cap = 0, n = 1, max = 16;
	unsigned int lineno = 0;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-f")) && i + 1 < argc)
			file = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			file = argv[i] + 9;
	}
	av = calloc(max, sizeof(*av));
	if (!av)
		return NULL;
	av[0] = argv[0];
	*nargc = 1;
	if (!file)
		return av;
	f = fopen(file, "re");
	if (!f) {
		say("--config %s: %s", file, strerror(errno));
		free(av);
		return NULL;
	}
	while (getline(&line, &cap, f) > 0) {
		char *p = line, *name, *val, *hash = strchr(line, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\r\n")] = '\0';
		if (!*p)
			continue;
		name = p;
		p += strcspn(p, " \t=");
		val = NULL;
		if (*p) {
			*p++ = '\0';
			while (*p == ' ' || *p == '\t' || *p == '=')
				p++;
			val = p;
			for (char *e = p + strlen(p); e > p && (e[-1] == ' ' || e[-1] == '\t');)
				*--e = '\0';
			if (!*val)
				val = NULL;
		}
		if (!strcmp(name, "config")) {
			say("%s:%u: config files do not nest", file, lineno);
			goto fail;
		}
		if (n + 2 >= max) {
			char **g = realloc(av, 2 * max * sizeof(*av));

			if (!g)
				goto fail;
			av = g;
			max *= 2;
		}
		if (asprintf(&av[n], "--%s", name) < 0 || (val && !(av[n + 1] = strdup(val))))
			goto fail;
		n += val ? 2 : 1;
	}
	free(line);
	fclose(f);
	av[n] = NULL;
	*nargc = (int)n;
	return av;
fail:
	free(line);
	fclose(f);
	free(av);
	return NULL;
}

/* The options into d: -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "max-pending", required_argument, NULL, 'p' },
		{ "max-done-marks", required_argument, NULL, 'd' },
		{ "max-tasks-per-user", required_argument, NULL, 'u' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "max-connections-per-user", required_argument, NULL, 'C' },
		{ "request-timeout", required_argument, NULL, 't' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "buffer-kb", required_argument, NULL, 'b' },
		{ "latency-ms", required_argument, NULL, 'L' },
		{ "stock", no_argument, NULL, 'S' },
		{ "dataset", required_argument, NULL, 'D' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "metrics-textfile", required_argument, NULL, 'T' },
		{ "config", required_argument, NULL, 'f' },
		{ "backend", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v, per_user = 0;
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:m:g:p:d:u:c:C:t:i:b:D:f:vh", lo, NULL)) != -1) {
		switch (opt) {
		case 's':
			d.socket = optarg;
			break;
		case 'm':
			d.mode = (unsigned int)strtoul(optarg, &end, 8);
			if (*end || d.mode > 0777) {
				say("bad --socket-mode %s (octal, e.g. 0660)", optarg);
				return 2;
			}
			break;
		case 'g': {
			struct group *g = getgrnam(optarg);

			if (!g) {
				say("no group %s", optarg);
				return 2;
			}
			d.gid = g->gr_gid;
			d.have_gid = true;
			break;
		}
		case 'p':
			if (num("max-pending", optarg, 1, UINT32_MAX, &d.max_pending))
				return 2;
			break;
		case 'd':
			if (num("max-done-marks", optarg, 0, UINT32_MAX, &d.max_done_marks))
				return 2;
			break;
		case 'u':
			if (num("max-tasks-per-user", optarg, 1, DE_MAX_TASKS, &v))
				return 2;
			d.max_tasks_per_user = (unsigned int)v;
			break;
		case 'c':
			if (num("max-connections", optarg, 1, 1u << 20, &v))
				return 2;
			d.max_clients = (unsigned int)v;
			break;
		case 'C':
			if (num("max-connections-per-user", optarg, 1, 1u << 20, &per_user))
				return 2;
			break;
		case 't':
			if (num("request-timeout", optarg, 1, 3600, &v))
				return 2;
			d.request_timeout_s = (unsigned int)v;
			break;
		case 'i':
			if (num("idle-timeout", optarg, 1, 86400, &v))
				return 2;
			d.idle_timeout_s = (unsigned int)v;
			break;
		case 'b':
			if (num("buffer-kb", optarg, 0, UINT32_MAX, &v))
				return 2;
			d.buffer_kb = (unsigned int)v;
			break;
		case 'L':
			if (num("latency-ms", optarg, 1, 100000, &v))
				return 2;
			d.latency_ms = (unsigned int)v;
			break;
		case 'S':
			d.stock = true;
			break;
		case 'D':
			if (dataset_option(optarg))
				return 2;
			break;
		case 'M':
			metrics_option_listen(optarg);
			break;
		case 'T':
			metrics_option_textfile(optarg);
			break;
		case 'B': {
			enum dc_backend b;

			if (dc_backend_parse(optarg, &b)) {
				say("--backend is tracefs or perf (got \"%s\")", optarg);
				return 2;
			}
			d.backend = dc_backend_name(b);
			break;
		}
		case 'f':
			break;	/* read before the command line (load_config) */
		case 'v':
			d.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* A user's share: a quarter, so it takes four users to fill the rest. */
	d.max_per_user = per_user ? (unsigned int)per_user :
				    (d.max_clients / 4 ? d.max_clients / 4 : 1);
	if (d.max_per_user > d.max_clients) {
		say("--max-connections-per-user %u is more than --max-connections %u",
		    d.max_per_user, d.max_clients);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so) };
	struct epoll_event ev = { .events = EPOLLIN };
	struct src lsrc = { SRC_LISTEN, NULL }, ssrc = { SRC_SIGNAL, NULL };
	sigset_t sigs;
	int r, rc = 0;

	{
		int cargc;
		char **cargv = load_config(argc, argv, &cargc);

		if (!cargv)
			return 2;
		if (cargc > 1) {
			r = parse_options(cargc, cargv);
			if (r >= 0) {
				if (r)
					say("(in the --config file)");
				return r;
			}
			optind = 1;
		}
	}
	r = parse_options(argc, argv);
	if (r >= 0)
		return r;
	if (geteuid()) {
		say("must run as root: it reads the tracing ring buffer and checks each client's "
		    "rights");
		return 1;
	}
	r = limits_fds();
	if (r == -EMFILE)
		return 2;	/* the options ask for more than the system allows */
	if (r) {
		say("RLIMIT_NOFILE: %s", strerror(-r));
		return 1;
	}
	d.start_ns = now_ns();
	mntns_init();
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Stale instances of dead daemons (and other dead duet programs) go now,
	 * not only when the first task opens ours. */
	r = dc_instances_reap();
	if (r > 0)
		say("removed %d tracing instances of processes that are gone", r);
	so.log = session_log;
	so.buffer_kb = d.buffer_kb;
	so.latency_ms = d.latency_ms;
	so.flags = DUET_SESSION_LOCAL | (d.stock ? DUET_SESSION_STOCK : 0);
	so.backend = d.backend;
	r = duet_session_new(&so, &d.s);
	if (r == -EOPNOTSUPP && d.backend && !strcmp(d.backend, "perf")) {
		say("--backend=perf: no perf backend here (its plugin perf-source.so is built with "
		    "libperf by scripts/setup; DUET_PERF_PLUGIN names another)");
		return 1;
	}
	if (r) {
		say("cannot open the page-cache event source: %s", duet_strerror(r));
		return 1;
	}
	d.lfd = listen_socket();
	if (d.lfd < 0) {
		say("%s: %s", d.socket,
		    d.lfd == -EADDRINUSE ? "another duetd is running on this socket" : strerror(-d.lfd));
		duet_session_free(d.s);
		return 1;
	}
	d.sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d.sfd < 0 || d.epfd < 0 || limits_init()) {
		say("%s", strerror(errno));
		rc = 1;
		goto out;
	}
	if (datasets_start() || metrics_start()) {
		rc = 1;
		goto out;
	}
	ev.data.ptr = &lsrc;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.lfd, &ev);
	ev.data.ptr = &ssrc;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.sfd, &ev);
	say("listening on %s (mode %04o): %u connections, %u per user; %" PRIu64 " pending "
	    "pages and %" PRIu64 " done marks per task; timeouts %u s (request), %u s (idle); "
	    "%llu of %llu file descriptors", d.socket, d.mode, d.max_clients, d.max_per_user,
	    d.max_pending, d.max_done_marks, d.request_timeout_s, d.idle_timeout_s,
	    (unsigned long long)d.fd_need, (unsigned long long)d.fd_limit);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(d.epfd, evs, 64, d.retiring ? 2 : -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say("epoll: %s", strerror(errno));
			rc = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;

			if (s->c && s->c->dead)
				continue;
			switch (s->kind) {
			case SRC_LISTEN:
				limits_accept();
				break;
			case SRC_SIGNAL:
				say("exiting on signal");
				goto out;
			case SRC_TIMER:
				limits_tick();
				break;
			case SRC_SOCK:
				on_sock(s->c, evs[i].events);
				break;
			case SRC_TASK:
				on_task(s->c);
				break;
			case SRC_DATASET:
				on_dataset(s->ds);
				break;
			case SRC_METRICS_LISTEN:
			case SRC_METRICS_TIMER:
			case SRC_METRICS:
				on_metrics(s, evs[i].events);
				break;
			}
		}
		free_zombies();
		if (d.retiring)
			retire_tick(false);
	}
out:
	while (d.clients)
		client_free(d.clients);
	retire_tick(true);
	free_zombies();
	limits_free();
	metrics_stop();
	datasets_free();
	close(d.lfd);
	unlink(d.socket);
	duet_session_free(d.s);	/* removes the tracing instance */
	return rc;
}
