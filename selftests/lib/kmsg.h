/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Watch the kernel log for VT-d DMA faults of our device, e.g.
 *   DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x40000000 ...
 * Extra evidence only: the kernel rate-limits these lines (about 5 faults
 * per 5 s are printed), so a missing line proves nothing; a fault line for
 * a transfer that should have worked, however, is a real failure.
 */
#ifndef KMSG_H
#define KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kmsg_watch {
	int fd;
	char dev[16];		/* "00:03.0" */
};

/* Start watching: only records logged after this call are seen. */
int kmsg_watch_start(struct kmsg_watch *w, const char *bdf);
void kmsg_watch_stop(struct kmsg_watch *w);

struct dmar_fault {
	bool write;		/* DMA Write (else DMA Read) */
	uint64_t addr;		/* page address VT-d reported */
	char line[256];
};

/*
 * Next DMAR fault of the watched device logged since the last call, waiting
 * up to @wait_ms for one to appear. 1 = found (in *f), 0 = none, -errno.
 */
int kmsg_next_dmar_fault(struct kmsg_watch *w, struct dmar_fault *f,
			 int wait_ms);
/* Drop every record logged so far. */
void kmsg_drain(struct kmsg_watch *w);

/*
 * Kernel reports: the records left to read on @fd (a non-blocking
 * /dev/kmsg fd, or -1 for none) that hold one of the @nbad strings. How
 * many; the text of the first one in @first.
 */
int kmsg_reports(int fd, const char *const *bad, size_t nbad, char *first,
		 size_t n);

#endif
