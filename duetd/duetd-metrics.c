// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd's metrics in the Prometheus text format (version 0.0.4):
 * --metrics [ADDR:]PORT serves GET /metrics over HTTP/1.x, and
 * --metrics-textfile DIR writes DIR/duetd.prom for node_exporter's
 * textfile collector (a temporary file, then rename: a scrape never sees
 * half a file), every METRICS_PERIOD_S seconds and at exit.
 *
 * The endpoint is read-only and bounded, and it never delays the event
 * path or the clients: every socket is non-blocking in the one epoll
 * loop; a request is at most REQ_MAX bytes and must be complete, and its
 * reply sent, within REQ_TIMEOUT_MS of the connection, else it is closed;
 * at most MAX_CONNS connections are open at once (more are closed at
 * accept). One request per connection (Connection: close). GET of
 * /metrics answers 200; any other path 404; any other method 405;
 * anything that is not HTTP 400; a request too long 431.
 *
 * Names follow Prometheus' conventions: a duet_ prefix, base units
 * (bytes, seconds), _total for counters, and labels from bounded sets
 * only: the event type, a task's name (at most 64 tasks), a dataset's
 * name (the options). No file, path or pid is ever a label.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "duetd.h"
#include "internal.h"

#define REQ_MAX		4096u
#define REQ_TIMEOUT_MS	2000u
#define MAX_CONNS	8u
#define METRICS_PERIOD_S 5u

struct mconn {
	struct src src;
	int fd;
	char in[REQ_MAX];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	uint64_t start_ns;
	struct mconn *next;
};

static struct {
	const char *listen;	/* --metrics */
	const char *textdir;	/* --metrics-textfile */
	int lfd, tfd;
	struct src lsrc, tsrc;
	struct mconn *conns;
	unsigned int nconns;
	uint64_t served, refused;
} m = { .lfd = -1, .tfd = -1 };

void metrics_option_listen(const char *arg)
{
	m.listen = arg;
}

void metrics_option_textfile(const char *arg)
{
	m.textdir = arg;
}

/* "PORT", "ADDR:PORT" or "[ADDR6]:PORT" into sa: 0, or -EINVAL. */
static int parse_addr(const char *arg, struct sockaddr_storage *sa, socklen_t *len)
{
	char host[64] = "127.0.0.1";
	const char *port = arg, *colon = strrchr(arg, ':');
	char *end;
	unsigned long p;

	if (colon) {
		size_t hl = (size_t)(colon - arg);

		if (arg[0] == '[' && hl >= 2 && arg[hl - 1] == ']') {
			arg++;
			hl -= 2;
		}
		if (!hl || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, arg, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || end == port || *end || !p || p > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (void *)sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		if (!strcmp(host, "localhost"))
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*s4);
	}
	return 0;
}

/* A label value, escaped as the text format asks (\\, \", \n). */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels: its HELP and TYPE lines and its value. */
static void one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	head(f, name, type, help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

/* The whole exposition into *buf (malloc'd): its length, or -ENOMEM. */
static ssize_t render(char **buf)
{
	static const char *const types[] = { "added", "removed", "dirty", "flushed" };
	struct duet__session_stats ss = { 0 };
	struct rusage ru;
	size_t len = 0;
	uint64_t pending = 0, resyncs = d.retired_resyncs;
	FILE *f = open_memstream(buf, &len);

	if (!f)
		return -ENOMEM;
	duet__session_stats(d.s, &ss);
	head(f, "duet_events_total", "counter", "Page events the daemon decoded, by type.");
	for (int k = 0; k < 4; k++)
		fprintf(f, "duet_events_total{type=\"%s\"} %" PRIu64 "\n", types[k], ss.ev_n[k]);
	head(f, "duet_event_pages_total", "counter",
	     "Pages those events covered, by type (an inode-level FLUSHED covers none).");
	for (int k = 0; k < 4; k++)
		fprintf(f, "duet_event_pages_total{type=\"%s\"} %" PRIu64 "\n", types[k],
			ss.ev_pages[k]);
	one(f, "duet_lost_events_total", "counter",
	    "Events the ring buffer dropped before duetd read them.", ss.lost_events);
	one(f, "duet_losses_total", "counter",
	    "Losses seen: each gave every task LOST and a resync.", ss.lost_notices);
	one(f, "duet_events_late_total", "counter",
	    "Events that reached a CPU's buffer after its reader's mark (each handed on "
	    "with a LOST).", ss.late);
	one(f, "duet_reader_wakeups_total", "counter",
	    "Times the ring-buffer readers woke (all CPUs).", ss.wakeups);
	one(f, "duet_polite_dropped_pages_total", "counter",
	    "Pages the cache-polite tasks' clients brought in and all tasks marked done, "
	    "dropped again.", ss.polite_dropped);
	head(f, "duet_polite_held", "gauge",
	     "1 while polite drops wait for another duet process (an in-process session) "
	     "to go.");
	fprintf(f, "duet_polite_held %d\n", ss.polite_held ? 1 : 0);
	head(f, "duet_latency_bound_seconds", "gauge",
	     "The latency bound in force while a task waits; 0 while the readers batch.");
	fprintf(f, "duet_latency_bound_seconds %.6f\n", (double)ss.latency_us / 1e6);
	head(f, "duet_clients", "gauge", "Connections open.");
	fprintf(f, "duet_clients %u\n", d.nclients);
	head(f, "duet_tasks", "gauge", "Client tasks registered (datasets apart).");
	fprintf(f, "duet_tasks %u\n", d.ntasks);
	head(f, "duet_task_pending_pages", "gauge", "Pages pending for a client task, by name.");
	for (struct client *c = d.clients; c; c = c->next) {
		struct duet_task_status st = { .sz = sizeof(st) };

		if (!c->task || duet_task_status(c->task, &st))
			continue;
		pending += st.pending;
		resyncs += st.resyncs;
		fputs("duet_task_pending_pages{task=\"", f);
		label(f, c->name);
		fprintf(f, "\",id=\"%u\"} %" PRIu64 "\n", c->id, st.pending);
	}
	one(f, "duet_pending_pages", "gauge", "Pages pending for all client tasks.", pending);
	one(f, "duet_resyncs_total", "counter", "Rescans of client tasks after a loss.", resyncs);
	one(f, "duet_engine_bytes", "gauge", "Memory the shared engine holds (estimate).",
	    ss.engine_bytes);
	if (!getrusage(RUSAGE_SELF, &ru)) {
		head(f, "duet_cpu_seconds_total", "counter", "CPU time of duetd, all threads.");
		fprintf(f, "duet_cpu_seconds_total %.6f\n",
			(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	}
	head(f, "duet_metrics_requests_total", "counter",
	     "Metrics requests answered, and connections refused over the bound.");
	fprintf(f, "duet_metrics_requests_total{result=\"served\"} %" PRIu64 "\n", m.served);
	fprintf(f, "duet_metrics_requests_total{result=\"refused\"} %" PRIu64 "\n", m.refused);
	datasets_metrics(f);
	if (fclose(f))
		return -ENOMEM;
	return (ssize_t)len;
}

static void conn_free(struct mconn *c)
{
	struct mconn **pp;

	for (pp = &m.conns; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	epoll_ctl(d.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
	m.nconns--;
}

static void respond(struct mconn *c, int code, const char *reason, const char *body,
		    size_t blen, const char *ctype)
{
	char hdr[256];
	int hl = snprintf(hdr, sizeof(hdr),
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n%s\r\n", code, reason, ctype, blen,
			  code == 405 ? "Allow: GET\r\n" : "");

	c->out = malloc((size_t)hl + blen);
	if (!c->out) {
		conn_free(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)hl);
	if (blen)
		memcpy(c->out + hl, body, blen);
	c->outlen = (size_t)hl + blen;
	c->outoff = 0;
	{
		struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &c->src };

		epoll_ctl(d.epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void plain(struct mconn *c, int code, const char *reason)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);

	respond(c, code, reason, body, (size_t)n, "text/plain; charset=utf-8");
}

/* A whole request head is in c->in: answer it. */
static void answer(struct mconn *c)
{
	char *sp1, *sp2, *q;

	c->in[c->inlen] = '\0';
	sp1 = strchr(c->in, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7)) {
		plain(c, 400, "Bad Request");
		return;
	}
	*sp1 = *sp2 = '\0';
	if (strcmp(c->in, "GET")) {
		plain(c, 405, "Method Not Allowed");
		return;
	}
	q = strchr(sp1 + 1, '?');
	if (q)
		*q = '\0';
	if (strcmp(sp1 + 1, "/metrics")) {
		plain(c, 404, "Not Found");
		return;
	}
	{
		char *body = NULL;
		ssize_t n = render(&body);

		if (n < 0) {
			free(body);
			plain(c, 503, "Service Unavailable");
			return;
		}
		m.served++;
		respond(c, 200, "OK", body, (size_t)n, "text/plain; version=0.0.4; charset=utf-8");
		free(body);
	}
}

static void on_conn(struct mconn *c, uint32_t events)
{
	if (c->out) {
		while (c->outoff < c->outlen) {
			ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0)
				break;
			c->outoff += (size_t)n;
		}
		conn_free(c);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->inlen, REQ_MAX - 1 - c->inlen);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_free(c);
			return;
		}
		c->inlen += (size_t)n;
		c->in[c->inlen] = '\0';
		if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
			answer(c);
			return;
		}
		if (c->inlen == REQ_MAX - 1) {
			plain(c, 431, "Request Header Fields Too Large");
			return;
		}
	}
}

static void arm(bool on)
{
	struct itimerspec its = { 0 };

	if (on) {
		its.it_value.tv_nsec = 250000000;
		its.it_interval.tv_nsec = 250000000;
	}
	if (m.textdir) {
		/* The textfile is written every METRICS_PERIOD_S seconds anyway. */
		if (!on) {
			its.it_value.tv_sec = METRICS_PERIOD_S;
			its.it_interval.tv_sec = METRICS_PERIOD_S;
		}
	}
	timerfd_settime(m.tfd, 0, &its, NULL);
}

static void on_accept(void)
{
	for (;;) {
		int fd = accept4(m.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct mconn *c;

		if (fd < 0)
			return;
		if (m.nconns >= MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
			m.refused++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->src.kind = SRC_METRICS;
		c->src.mc = c;
		c->start_ns = now_ns();
		ev.data.ptr = &c->src;
		if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = m.conns;
		m.conns = c;
		if (!m.nconns++)
			arm(true);
	}
}

/* DIR/duetd.prom, atomically: 0, or -errno. */
static int write_textfile(void)
{
	char tmp[PATH_MAX], dst[PATH_MAX], *body = NULL;
	ssize_t n = render(&body);
	int fd, r = 0;

	if (n < 0)
		return (int)n;
	snprintf(dst, sizeof(dst), "%s/duetd.prom", m.textdir);
	/* node_exporter reads only *.prom: the temporary name is not one. */
	snprintf(tmp, sizeof(tmp), "%s/.duetd.prom.%d", m.textdir, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(body);
		return -errno;
	}
	if (write(fd, body, (size_t)n) != n || fsync(fd))
		r = errno ? -errno : -EIO;
	close(fd);
	if (!r && rename(tmp, dst))
		r = -errno;
	if (r)
		unlink(tmp);
	free(body);
	return r;
}

static void on_timer(void)
{
	static uint64_t last_text_ns;
	uint64_t x, now = now_ns();

	while (read(m.tfd, &x, sizeof(x)) > 0)
		;
	for (struct mconn *c = m.conns, *next; c; c = next) {
		next = c->next;
		if (now - c->start_ns > (uint64_t)REQ_TIMEOUT_MS * 1000000u)
			conn_free(c);
	}
	if (m.textdir && now - last_text_ns >= (uint64_t)METRICS_PERIOD_S * 1000000000u) {
		int r = write_textfile();

		last_text_ns = now;
		if (r)
			say("--metrics-textfile %s: %s", m.textdir, strerror(-r));
	}
	if (!m.nconns)
		arm(false);
}

void on_metrics(struct src *s, uint32_t events)
{
	if (s->kind == SRC_METRICS_LISTEN)
		on_accept();
	else if (s->kind == SRC_METRICS_TIMER)
		on_timer();
	else
		on_conn(s->mc, events);
}

/* Set up what the options ask: 0, or says why not and returns 1. */
int metrics_start(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sockaddr_storage sa;
	socklen_t sl;
	int one = 1, r;

	if (!m.listen && !m.textdir)
		return 0;
	if (m.textdir) {
		struct stat st;

		if (stat(m.textdir, &st) || !S_ISDIR(st.st_mode) || access(m.textdir, W_OK | X_OK)) {
			say("--metrics-textfile %s: %s", m.textdir,
			    errno ? strerror(errno) : "not a directory");
			return 1;
		}
		r = write_textfile();
		if (r) {
			say("--metrics-textfile %s: %s", m.textdir, strerror(-r));
			return 1;
		}
	}
	m.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (m.tfd < 0) {
		say("timerfd: %s", strerror(errno));
		return 1;
	}
	m.tsrc.kind = SRC_METRICS_TIMER;
	ev.data.ptr = &m.tsrc;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, m.tfd, &ev);
	arm(false);
	if (!m.listen)
		return 0;
	if (parse_addr(m.listen, &sa, &sl)) {
		say("bad --metrics %s ([ADDR:]PORT; the address defaults to 127.0.0.1)", m.listen);
		return 1;
	}
	m.lfd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m.lfd < 0 || setsockopt(m.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(m.lfd, (struct sockaddr *)&sa, sl) || listen(m.lfd, 16)) {
		say("--metrics %s: %s", m.listen, strerror(errno));
		return 1;
	}
	m.lsrc.kind = SRC_METRICS_LISTEN;
	ev.data.ptr = &m.lsrc;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, m.lfd, &ev);
	say("metrics: GET /metrics on %s", m.listen);
	return 0;
}

void metrics_stop(void)
{
	while (m.conns)
		conn_free(m.conns);
	if (m.textdir && m.tfd >= 0) {
		int r = write_textfile();

		if (r)
			say("--metrics-textfile %s: %s", m.textdir, strerror(-r));
	}
	if (m.lfd >= 0)
		close(m.lfd);
	if (m.tfd >= 0)
		close(m.tfd);
	m.lfd = m.tfd = -1;
}
