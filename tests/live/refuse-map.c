// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * LD_PRELOAD shim for live-reader: refuses, on a kernel that would map,
 * what another kernel or tracefs instance refuses, so that the read()
 * fallback is taken for real. DUET_TEST_REFUSE says what:
 *   mmap:ERRNO[:CPU]  mmap() of trace_pipe_raw (of that CPU only) fails
 *   ioctl:ERRNO       TRACE_MMAP_IOCTL_GET_READER fails
 * Nothing else is touched. Both mmap and mmap64 are defined: the
 * project builds with _FILE_OFFSET_BITS=64, which calls the latter.
 */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#define GET_READER _IO('R', 0x20)

static bool refused(const char *what, int fd, int *err)
{
	const char *spec = getenv("DUET_TEST_REFUSE"), *p;
	char link[64], path[4096], want[64];
	size_t wl = strlen(what);
	ssize_t n;
	int cpu = -1;

	if (!spec || strncmp(spec, what, wl) || spec[wl] != ':')
		return false;
	*err = atoi(spec + wl + 1);
	p = strchr(spec + wl + 1, ':');
	if (p)
		cpu = atoi(p + 1);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return false;
	path[n] = '\0';
	if (cpu < 0)
		snprintf(want, sizeof(want), "/trace_pipe_raw");
	else
		snprintf(want, sizeof(want), "/per_cpu/cpu%d/trace_pipe_raw", cpu);
	return (size_t)n >= strlen(want) && !strcmp(path + n - strlen(want), want);
}

static void *map(const char *name, void *addr, size_t len, int prot, int flags, int fd,
		 off64_t off)
{
	void *(*real)(void *, size_t, int, int, int, off64_t) =
		(void *(*)(void *, size_t, int, int, int, off64_t))dlsym(RTLD_NEXT, name);
	int err;

	if (fd >= 0 && refused("mmap", fd, &err)) {
		errno = err;
		return MAP_FAILED;
	}
	return real(addr, len, prot, flags, fd, off);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return map("mmap", addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return map("mmap64", addr, len, prot, flags, fd, off);
}

int ioctl(int fd, unsigned long req, ...)
{
	int (*real)(int, unsigned long, ...) =
		(int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	va_list ap;
	void *arg;
	int err;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == GET_READER && refused("ioctl", fd, &err)) {
		errno = err;
		return -1;
	}
	return real(fd, req, arg);
}
