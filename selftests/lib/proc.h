/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Processes in the selftests: a monotonic clock in milliseconds, a child
 * that gives up root, a child's one-line report through a pipe, and a
 * child the parent talks with through a pipe each way.
 */
#ifndef PROC_H
#define PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/*
 * CLOCK_MONOTONIC in ms. Inline: vfio_util.o needs it too, and tools/
 * links the library objects it names without proc.o.
 */
static inline long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

/*
 * Become uid/gid 65534 (nobody, no supplementary groups) under an
 * RLIMIT_MEMLOCK of @memlock_bytes (soft and hard). Fds opened before stay
 * usable. 0 or -errno.
 */
int drop_privileges(uint64_t memlock_bytes);

/*
 * A child's report: "ok" or what went wrong, one line (at most 255 bytes)
 * written at once to @wr. A child that cannot write it _exit()s with 3.
 */
void __attribute__((format(printf, 2, 3)))
report(int wr, const char *fmt, ...);
/* Read one report into @msg; "no report (child died?)" when none came. */
void read_report(int rd, char *msg, size_t n);

/*
 * Fork a child that runs @child with the write end of a pipe (it exits 0
 * if @child returns), read its report into @msg and reap it: 0 with its
 * wait status in *status, or -errno when pipe, fork or waitpid failed.
 */
int run_child(void (*child)(int wr), char *msg, size_t n, int *status);

/*
 * fork() with a pipe each way, for a child the parent talks to. Each side
 * gets its own ends: in the child (0 returned) *rd reads what the parent
 * writes and *wr writes to the parent; in the parent (the child's pid
 * returned) the other way round. -errno, nothing left open, on failure.
 */
pid_t fork_with_pipes(int *rd, int *wr);

#endif
