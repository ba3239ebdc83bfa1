// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define NOBODY		65534
#define REPORT_MAX	256

int drop_privileges(uint64_t memlock_bytes)
{
	struct rlimit rl = {
		.rlim_cur = memlock_bytes, .rlim_max = memlock_bytes,
	};

	/*
	 * In this order, while each step is still allowed: raising the hard
	 * limit needs CAP_SYS_RESOURCE, the groups and the gid need root.
	 */
	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(0, NULL) ||
	    setgid(NOBODY) || setuid(NOBODY))
		return -errno;
	return 0;
}

void report(int wr, const char *fmt, ...)
{
	char msg[REPORT_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 1)
		n = sizeof(msg) - 1;
	/* With its NUL: one write, one read (under PIPE_BUF, atomic). */
	if (write(wr, msg, n + 1) < 0)
		_exit(3);
}

void read_report(int rd, char *msg, size_t n)
{
	ssize_t r = read(rd, msg, n - 1);

	msg[r > 0 ? r : 0] = '\0';
	if (r <= 0)
		snprintf(msg, n, "no report (child died?)");
}

pid_t fork_with_pipes(int *rd, int *wr)
{
	int down[2], up[2], err;
	pid_t pid;

	if (pipe(down))
		return -errno;
	if (pipe(up)) {
		err = -errno;
		goto close_down;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(up[0]);
		close(up[1]);
		goto close_down;
	}
	/* Down: parent to child; up: child to parent. */
	if (!pid) {
		close(down[1]);
		close(up[0]);
		*rd = down[0];
		*wr = up[1];
	} else {
		close(down[0]);
		close(up[1]);
		*rd = up[0];
		*wr = down[1];
	}
	return pid;

close_down:
	close(down[0]);
	close(down[1]);
	return err;
}

int run_child(void (*child)(int wr), char *msg, size_t n, int *status)
{
	pid_t pid, ret;
	int rd, wr;

	pid = fork_with_pipes(&rd, &wr);
	if (pid < 0)
		return pid;
	if (!pid) {
		close(rd);
		child(wr);
		_exit(0);
	}
	/* Nothing to tell it; a child that dies unheard reads as EOF. */
	close(wr);
	read_report(rd, msg, n);
	close(rd);
	do
		ret = waitpid(pid, status, 0);
	while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : 0;
}
