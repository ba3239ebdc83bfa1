/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VFIO core's interface for IOMMU backends.
 *
 * The kernel keeps it in drivers/vfio/vfio.h, which no headers package
 * ships, so this module carries its own declaration. It must match the
 * target kernel's layout exactly: scripts/check-vfio-layout compares the
 * module's DWARF for these types against the BTF of the target kernel's
 * vfio.ko, and "make check" fails on any difference. kmod/Kbuild picks the
 * layout (VFIO_ASYNC_OPS_LAYOUT_*) from the kernel version: add a block here
 * and a line there for every kernel whose layout differs, and nothing else.
 */
#ifndef VFIO_ASYNC_DRIVER_OPS_H
#define VFIO_ASYNC_DRIVER_OPS_H

#include <linux/types.h>

struct iommu_domain;
struct iommu_group;
struct module;
struct page;
struct vfio_device;

#if defined(VFIO_ASYNC_OPS_LAYOUT_6_1)

enum vfio_group_type {
	VFIO_IOMMU,
	VFIO_EMULATED_IOMMU,
	VFIO_NO_IOMMU,
};

enum vfio_iommu_notify_type {
	VFIO_IOMMU_CONTAINER_CLOSE = 0,
};

struct vfio_iommu_driver_ops {
	char *name;
	struct module *owner;
	void *(*open)(unsigned long arg);
	void (*release)(void *iommu_data);
	long (*ioctl)(void *iommu_data, unsigned int cmd, unsigned long arg);
	int (*attach_group)(void *iommu_data, struct iommu_group *group,
			    enum vfio_group_type type);
	void (*detach_group)(void *iommu_data, struct iommu_group *group);
	int (*pin_pages)(void *iommu_data, struct iommu_group *group,
			 dma_addr_t user_iova, int npage, int prot,
			 struct page **pages);
	void (*unpin_pages)(void *iommu_data, dma_addr_t user_iova, int npage);
	void (*register_device)(void *iommu_data, struct vfio_device *vdev);
	void (*unregister_device)(void *iommu_data, struct vfio_device *vdev);
	int (*dma_rw)(void *iommu_data, dma_addr_t user_iova, void *data,
		      size_t count, bool write);
	struct iommu_domain *(*group_iommu_domain)(void *iommu_data,
						   struct iommu_group *group);
	void (*notify)(void *iommu_data, enum vfio_iommu_notify_type event);
};

#elif defined(VFIO_ASYNC_OPS_LAYOUT_6_12)

enum vfio_group_type {
	VFIO_IOMMU,
	VFIO_EMULATED_IOMMU,
	VFIO_NO_IOMMU,
};

/* 6.1's, without notify(). */
struct vfio_iommu_driver_ops {
	char *name;
	struct module *owner;
	void *(*open)(unsigned long arg);
	void (*release)(void *iommu_data);
	long (*ioctl)(void *iommu_data, unsigned int cmd, unsigned long arg);
	int (*attach_group)(void *iommu_data, struct iommu_group *group,
			    enum vfio_group_type type);
	void (*detach_group)(void *iommu_data, struct iommu_group *group);
	int (*pin_pages)(void *iommu_data, struct iommu_group *group,
			 dma_addr_t user_iova, int npage, int prot,
			 struct page **pages);
	void (*unpin_pages)(void *iommu_data, dma_addr_t user_iova, int npage);
	void (*register_device)(void *iommu_data, struct vfio_device *vdev);
	void (*unregister_device)(void *iommu_data, struct vfio_device *vdev);
	int (*dma_rw)(void *iommu_data, dma_addr_t user_iova, void *data,
		      size_t count, bool write);
	struct iommu_domain *(*group_iommu_domain)(void *iommu_data,
						   struct iommu_group *group);
};

#else
#error "vfio_iommu_async: no VFIO backend interface layout selected (see kmod/Kbuild)"
#endif

int vfio_register_iommu_driver(const struct vfio_iommu_driver_ops *ops);
void vfio_unregister_iommu_driver(const struct vfio_iommu_driver_ops *ops);

#endif /* VFIO_ASYNC_DRIVER_OPS_H */
