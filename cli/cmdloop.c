// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The event loop shared by duet watch and duet record: an epoll set with
 * the event source, the path index, a signalfd and a 1 s statistics
 * timer.
 */
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "duet-cli.h"

int cmdloop_open(struct cmdloop *l, const sigset_t *sigs, int src_fd, int idx_fd)
{
	struct itimerspec it = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[4] = { src_fd, idx_fd, -1, -1 };

	l->sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	l->efd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->sfd < 0 || l->efd < 0 || l->tfd < 0) {
		cmdloop_close(l);
		return -1;
	}
	timerfd_settime(l->tfd, 0, &it, NULL);
	fds[2] = l->sfd;
	fds[3] = l->tfd;
	for (int i = 0; i < 4; i++) {
		if (fds[i] < 0)
			continue;
		ev.data.fd = fds[i];
		epoll_ctl(l->efd, EPOLL_CTL_ADD, fds[i], &ev);
	}
	return 0;
}

void cmdloop_close(struct cmdloop *l)
{
	if (l->sfd >= 0)
		close(l->sfd);
	if (l->efd >= 0)
		close(l->efd);
	if (l->tfd >= 0)
		close(l->tfd);
	l->sfd = l->efd = l->tfd = -1;
}
