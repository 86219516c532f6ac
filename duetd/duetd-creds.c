// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * duetd acting as a client: per-thread file system credentials.
 *
 * A client that is not root learns about a file only if it could open it
 * itself: every check runs faccessat(AT_EACCESS) on the file's path in a
 * thread that has taken the client's fsuid, fsgid and groups (setfsuid(2)
 * and setgroups are per thread at the system call level; dropping fsuid
 * 0 drops the file capabilities too), so search permission on every
 * directory, the file's mode, ACLs and LSMs all count. The checks run in
 * the main thread and, through the session's visibility hook, in the
 * pump thread; each thread has its own credentials.
 *
 * Those checks, and every path the daemon resolves or reports, are made in
 * duetd's mount namespace: a client in another one (unshare -m, a
 * container) would get a view of other files than its own, silently. So
 * its HELLO is refused (client_mntns()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "duetd.h"

/*
 * Linux 6.5; older C libraries lack the name. This is asm-generic's
 * number (x86, arm, riscv...); the architectures with numbers of their
 * own go without, as on an older kernel.
 */
#if !defined(SO_PEERPIDFD) && !defined(__alpha__) && !defined(__mips__) && \
	!defined(__hppa__) && !defined(__sparc__)
#define SO_PEERPIDFD 77
#endif

/*
 * Whose credentials this thread acts with now (NULL: duetd's own). A
 * check made while already acting as that client (a save, which runs as
 * the client, checks each mark's visibility) must not switch back to root
 * half-way through.
 */
static __thread const struct creds *acting;

void as_client(const struct creds *c)
{
	/* Raw system calls: glibc's wrappers would change every thread. */
	syscall(SYS_setgroups, (size_t)c->ngroups, c->groups);
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	acting = c;
}

void as_self(void)
{
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	syscall(SYS_setgroups, (size_t)0, NULL);
	acting = NULL;
}

/* 0 if the client can access path with mode (R_OK, X_OK...), else -errno. */
int client_access(const struct creds *c, const char *path, int mode)
{
	const struct creds *was = acting;
	int r;

	if (!c->uid)
		return faccessat(AT_FDCWD, path, mode, 0) ? -errno : 0;
	if (was != c)
		as_client(c);
	r = faccessat(AT_FDCWD, path, mode, AT_EACCESS) ? -errno : 0;
	if (was != c) {
		as_self();
		if (was)
			as_client(was);
	}
	return r;
}

/* The session's visibility hook: a file the client could open for reading. */
int client_visible(void *ud, const char *path)
{
	struct client *c = ud;

	return !client_access(&c->cr, path, R_OK);
}

/* ---- the client's mount namespace ---- */

static struct stat self_mnt;
static bool self_mnt_known;

void mntns_init(void)
{
	if (stat("/proc/self/ns/mnt", &self_mnt)) {
		say("cannot read /proc/self/ns/mnt (%s): clients in other mount namespaces are "
		    "not refused", strerror(errno));
		return;
	}
	self_mnt_known = true;
}

/*
 * A pidfd of the process that connected (*pfd -1 if this kernel or C
 * library has none): 0, or -ESRCH if it has exited.
 */
static int peer_pidfd(int fd, int *pfd)
{
	*pfd = -1;
#ifdef SO_PEERPIDFD
	socklen_t len = sizeof(*pfd);

	if (!getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, pfd, &len))
		return 0;
	*pfd = -1;
	/* EINVAL from kernels that give no pidfd of a reaped process. */
	if (errno == ESRCH || errno == EINVAL)
		return -ESRCH;
#endif
	return 0;
}

/*
 * Whether the process that connected on fd (pid, from SO_PEERCRED, in
 * duetd's pid namespace) shares duetd's mount namespace: 0 if it does (or
 * it cannot be told), -EXDEV if it is in another, -ESRCH if it has
 * exited. Called at HELLO, which libduet sends from the process that
 * connected and then waits for, so a legitimate client is there to be
 * looked at.
 *
 * Exited is refused: its connection may live on in a child in another
 * namespace, and a pid reused since could be anyone's. The pidfd names
 * that process and no other: if it says the process is still there after
 * /proc/PID was read, what was read was that process's.
 *
 * Cannot be told (no pid in duetd's pid namespace; /proc/PID/ns/mnt not
 * readable: duetd without CAP_SYS_PTRACE, a security module) is let in,
 * and said once (and each time with -v): a daemon that cannot look would
 * otherwise refuse every client. The per-file checks with the client's
 * credentials still decide what it may learn.
 */
int client_mntns(int fd, pid_t pid)
{
	static bool warned;
	char path[32];
	struct stat st;
	int pfd, r;

	if (!self_mnt_known)
		return 0;
	if (pid <= 0) {
		r = 0;
		goto unknown;
	}
	r = peer_pidfd(fd, &pfd);
	if (r)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	if (stat(path, &st))
		/* A zombie has no namespaces any more: gone as well. */
		r = errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	else if (st.st_dev != self_mnt.st_dev || st.st_ino != self_mnt.st_ino)
		r = -EXDEV;
	else
		r = 0;
	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		/* Readable: it has exited (and pid may be another's now). */
		if (poll(&p, 1, 0) > 0)
			r = -ESRCH;
		close(pfd);
	}
	if (r == 0 || r == -EXDEV || r == -ESRCH)
		return r;
unknown:
	if (!warned || d.verbose)
		say("cannot read the mount namespace of client pid %d (%s): let in unchecked%s",
		    (int)pid, pid <= 0 ? "not in duetd's pid namespace" : strerror(-r),
		    d.verbose ? "" : " (said once; -v says each time)");
	warned = true;
	return 0;
}
