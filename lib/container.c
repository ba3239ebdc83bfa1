// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvfio-async: the container. Selects vfio_iommu_async when the module
 * is loaded (or already serves the container, as a type1v2 drop-in), and
 * otherwise uses stock type1v2, doing at once what would be deferred.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

int va_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* Does the backend serving @container know our ioctls? */
static bool backend_is_ours(int container)
{
	return ioctl(container, VFIO_CHECK_EXTENSION,
		     VFIO_ASYNC_DEFERRED_MAP) == 1;
}

EXPORT int vfio_async_wrap(struct vfio_async **vap, int container_fd)
{
	struct vfio_async *va;

	if (container_fd < 0)
		return -EBADF;
	va = calloc(1, sizeof(*va));
	if (!va)
		return -ENOMEM;
	va->container = container_fd;
	va->native = backend_is_ours(container_fd);
	*vap = va;
	return 0;
}

static void close_groups(struct vfio_async *va)
{
	while (va->ngroups)
		close(va->groups[--va->ngroups]);
}

EXPORT int vfio_async_open(struct vfio_async **vap, const char *const *groups,
			   unsigned int ngroups)
{
	struct vfio_async *va;
	unsigned long type;
	unsigned int i;
	int c, ret;

	if (!ngroups || ngroups > 8)
		return -EINVAL;
	c = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c < 0)
		return -errno;
	ret = vfio_async_wrap(&va, c);
	if (ret) {
		close(c);
		return ret;
	}
	va->own_fd = true;
	for (i = 0; i < ngroups; i++) {
		struct vfio_group_status st = { .argsz = sizeof(st) };
		int g = open(groups[i], O_RDWR | O_CLOEXEC);

		if (g < 0) {
			ret = -errno;
			goto err;
		}
		va->groups[va->ngroups++] = g;
		ret = va_ioctl(g, VFIO_GROUP_GET_STATUS, &st);
		if (!ret && !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
			ret = -EBUSY;
		if (!ret)
			ret = ioctl(g, VFIO_GROUP_SET_CONTAINER, &c) ? -errno : 0;
		if (ret)
			goto err;
	}
	/* Ours if it is there; else what every kernel has. */
	type = ioctl(c, VFIO_CHECK_EXTENSION, VFIO_ASYNC_IOMMU) == 1 ?
	       VFIO_ASYNC_IOMMU : VFIO_TYPE1v2_IOMMU;
	if (ioctl(c, VFIO_SET_IOMMU, type)) {
		ret = -errno;
		goto err;
	}
	va->native = backend_is_ours(c);
	*vap = va;
	return 0;
err:
	vfio_async_close(va);
	return ret;
}

EXPORT void vfio_async_close(struct vfio_async *va)
{
	if (!va)
		return;
	close_groups(va);
	if (va->own_fd)
		close(va->container);
	free(va);
}

EXPORT int vfio_async_container_fd(const struct vfio_async *va)
{
	return va->container;
}

EXPORT bool vfio_async_native(const struct vfio_async *va)
{
	return va->native;
}

EXPORT int vfio_async_map(struct vfio_async *va, uint64_t iova, void *vaddr,
			  uint64_t size, unsigned int flags)
{
	uint32_t prot = 0;

	if (flags & ~(VFIO_ASYNC_READ | VFIO_ASYNC_WRITE | VFIO_ASYNC_DEFER))
		return -EINVAL;
	if (flags & VFIO_ASYNC_READ)
		prot |= VFIO_DMA_MAP_FLAG_READ;
	if (flags & VFIO_ASYNC_WRITE)
		prot |= VFIO_DMA_MAP_FLAG_WRITE;
	if ((flags & VFIO_ASYNC_DEFER) && va->native) {
		struct vfio_iommu_async_dma_map m = {
			.argsz = sizeof(m), .vaddr = (uintptr_t)vaddr,
			.iova = iova, .size = size,
			/* The same bit values as MAP_DMA's. */
			.flags = prot,
		};

		return va_ioctl(va->container, VFIO_IOMMU_MAP_DMA_DEFERRED, &m);
	} else {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m), .flags = prot,
			.vaddr = (uintptr_t)vaddr, .iova = iova, .size = size,
		};

		return va_ioctl(va->container, VFIO_IOMMU_MAP_DMA, &m);
	}
}

EXPORT int vfio_async_unmap(struct vfio_async *va, uint64_t iova,
			    uint64_t size, uint64_t *unmapped)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .iova = iova, .size = size,
	};
	int ret = va_ioctl(va->container, VFIO_IOMMU_UNMAP_DMA, &u);

	if (unmapped)
		*unmapped = u.size;
	return ret;
}

EXPORT int vfio_async_progress(struct vfio_async *va,
			       struct vfio_async_progress *p)
{
	struct vfio_iommu_async_status st = { .argsz = sizeof(st) };
	int ret;

	memset(p, 0, sizeof(*p));
	if (!va->native)
		return 0;	/* everything was mapped at once */
	ret = va_ioctl(va->container, VFIO_IOMMU_ASYNC_GET_STATUS, &st);
	if (ret)
		return ret;
	p->deferred_bytes = st.deferred_bytes;
	p->mapped_bytes = st.mapped_bytes;
	p->pending_bytes = st.pending_bytes;
	p->failed_bytes = st.failed_bytes;
	p->released_bytes = st.released_bytes;
	p->sync_bytes = st.sync_bytes;
	p->first_error = st.first_error;
	p->first_error_iova = st.first_error_iova;
	return 0;
}

EXPORT int vfio_async_map_now(struct vfio_async *va,
			      const struct vfio_async_range *r, unsigned int n,
			      uint64_t *error_iova)
{
	struct vfio_iommu_async_map_now mn = {
		.argsz = sizeof(mn), .nr_ranges = n, .ranges = (uintptr_t)r,
	};
	int ret;

	/* The two structures are the same, field for field. */
	_Static_assert(sizeof(struct vfio_async_range) ==
		       sizeof(struct vfio_iommu_async_range), "range layout");
	if (!va->native)
		return n ? 0 : -EINVAL;
	ret = va_ioctl(va->container, VFIO_IOMMU_ASYNC_MAP_NOW, &mn);
	if (ret && error_iova)
		*error_iova = mn.error_iova;
	return ret;
}
