// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dpolite: a libduet client for tests/daemon/polite.sh, driven line by
 * line on stdin (a bash coprocess), answering each line on stdout.
 *
 *   dpolite [-p] [-l] [-s SOCKET] DIR
 *
 * Registers one EXISTS task on DIR (cache-polite with -p; in-process
 * with -l, else daemon mode), waits for its registration scan and prints
 * "ready". Then, per line:
 *   read PATH    read PATH to its end in this process     -> "ok"
 *   done PATH    mark PATH done, whole (duet_task_set_done) -> "ok" or "error -E"
 *   fetch        fetch every pending item                   -> "ok N" (items)
 * End of input: exit 0. A registration that fails prints "error -E"
 * and exits 1. Bad usage: exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <duet/duet.h>

static struct duet_task *t;

static int read_file(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	return n < 0 ? -errno : 0;
}

static int done(const char *path)
{
	struct duet_fileid f;
	int r = duet_task_fileid(t, path, &f);

	return r ? r : duet_task_set_done(t, &f, 0, 0);
}

static int fetch_all(void)
{
	struct duet_item it[256];
	int n, total = 0;

	while ((n = duet_task_fetch(t, it, 256)) > 0)
		total += n;
	return n < 0 ? n : total;
}

int main(int argc, char **argv)
{
	struct duet_session_opts so = { .sz = sizeof(so), .flags = DUET_SESSION_DAEMON };
	struct duet_task_opts to = { .sz = sizeof(to), .name = "dpolite", .mask = DUET_EXISTS };
	struct duet_session *s;
	char line[4200];
	int opt, r;

	while ((opt = getopt(argc, argv, "pls:")) != -1) {
		switch (opt) {
		case 'p':
			to.flags = DUET_TASK_POLITE;
			break;
		case 'l':
			so.flags = DUET_SESSION_LOCAL;
			break;
		case 's':
			so.socket = optarg;
			break;
		default:
			fprintf(stderr, "usage: dpolite [-p] [-l] [-s SOCKET] DIR\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: dpolite [-p] [-l] [-s SOCKET] DIR\n");
		return 2;
	}
	to.path = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = duet_session_new(&so, &s);
	if (!r)
		r = duet_task_new(s, &to, &t);
	if (r) {
		printf("error %d\n", r);
		fprintf(stderr, "dpolite: %s\n", duet_strerror(r));
		return 1;
	}
	for (;;) {
		struct duet_task_status st = { .sz = sizeof(st) };

		if (duet_task_status(t, &st) || st.scan_done >= st.scan_files)
			break;
		usleep(2000);
	}
	fetch_all();
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "read ", 5))
			r = read_file(line + 5);
		else if (!strncmp(line, "done ", 5))
			r = done(line + 5);
		else if (!strcmp(line, "fetch"))
			r = fetch_all();
		else
			r = -EINVAL;
		if (r < 0)
			printf("error %d\n", r);
		else if (!strcmp(line, "fetch"))
			printf("ok %d\n", r);
		else
			printf("ok\n");
	}
	duet_task_free(t);
	duet_session_free(s);
	return 0;
}
