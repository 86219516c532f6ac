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
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "duetd.h"

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
