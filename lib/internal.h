/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvfio-async: what the library's files share. */
#ifndef VFIO_ASYNC_LIB_INTERNAL_H
#define VFIO_ASYNC_LIB_INTERNAL_H

#include <errno.h>
#include <linux/vfio.h>
#include <linux/vfio_iommu_async.h>

#include "vfio-async.h"

#define EXPORT __attribute__((visibility("default")))

struct vfio_async {
	int container;
	bool own_fd;		/* opened by vfio_async_open(): closed with it */
	bool native;		/* our backend: deferred maps, the channel */
	int groups[8];
	unsigned int ngroups;
};

/* ioctl() as -errno. */
int va_ioctl(int fd, unsigned long req, void *arg);

#endif
