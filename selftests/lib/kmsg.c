// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmsg.h"

int kmsg_watch_start(struct kmsg_watch *w, const char *bdf)
{
	const char *p;

	w->fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	if (lseek(w->fd, 0, SEEK_END) < 0) {
		int err = -errno;

		close(w->fd);
		w->fd = -1;
		return err;
	}
	/* "0000:00:03.0" is logged as "00:03.0" */
	p = bdf ? strchr(bdf, ':') : NULL;
	snprintf(w->dev, sizeof(w->dev), "%s", p ? p + 1 : (bdf ? bdf : ""));
	return 0;
}

void kmsg_watch_stop(struct kmsg_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

static int parse_fault(const struct kmsg_watch *w, const char *msg,
		       struct dmar_fault *f)
{
	char want[48];
	size_t n;
	const char *p;

	p = strstr(msg, "DMAR: [DMA ");
	if (!p)
		return 0;
	snprintf(want, sizeof(want), "Request device [%s]", w->dev);
	if (w->dev[0] && !strstr(p, want))
		return 0;
	f->write = !strncmp(p + strlen("DMAR: [DMA "), "Write", 5);
	p = strstr(p, "fault addr ");
	if (!p)
		return 0;
	f->addr = strtoull(p + strlen("fault addr "), NULL, 16);
	n = strnlen(msg, sizeof(f->line) - 1);
	memcpy(f->line, msg, n);
	f->line[n] = '\0';
	return 1;
}

int kmsg_next_dmar_fault(struct kmsg_watch *w, struct dmar_fault *f,
			 int wait_ms)
{
	char rec[1024];
	int waited = 0;

	if (w->fd < 0)
		return -EBADF;
	for (;;) {
		ssize_t n = read(w->fd, rec, sizeof(rec) - 1);

		if (n > 0) {
			char *msg, *nl;

			rec[n] = '\0';
			/* "prio,seq,usec,flags;text\n[ continuation]" */
			msg = strchr(rec, ';');
			msg = msg ? msg + 1 : rec;
			nl = strchr(msg, '\n');
			if (nl)
				*nl = '\0';
			if (parse_fault(w, msg, f))
				return 1;
			continue;
		}
		if (n < 0 && errno == EPIPE)	/* overwritten records */
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (waited >= wait_ms)
			return 0;
		usleep(10000);
		waited += 10;
	}
}

void kmsg_drain(struct kmsg_watch *w)
{
	struct dmar_fault f;

	while (kmsg_next_dmar_fault(w, &f, 0) == 1)
		;
}

int kmsg_reports(int fd, const char *const *bad, size_t nbad, char *first,
		 size_t n)
{
	char rec[2048];
	int found = 0;
	size_t i;
	ssize_t r;

	if (fd < 0)
		return 0;
	while ((r = read(fd, rec, sizeof(rec) - 1)) != 0) {
		char *msg;

		if (r < 0) {
			/* EPIPE: records overwritten before we read them. */
			if (errno == EPIPE)
				continue;
			break;
		}
		rec[r] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		for (i = 0; i < nbad; i++) {
			if (strstr(msg, bad[i])) {
				if (!found++)
					snprintf(first, n, "%s", msg);
				break;
			}
		}
	}
	return found;
}
