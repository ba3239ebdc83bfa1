/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfio_iommu_async: a VFIO IOMMU backend, compatible with VFIO_TYPE1v2_IOMMU,
 * that can pin and map guest memory in the background.
 *
 * A container selects this backend with VFIO_SET_IOMMU(VFIO_ASYNC_IOMMU).
 * With the module parameter type1v2_dropin=1 it also answers
 * VFIO_TYPE1v2_IOMMU, so an unmodified VMM gets it in place of
 * vfio_iommu_type1. Either way the container then takes the type1 ioctls
 * (VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA) with
 * type1v2 semantics, plus the ioctls below.
 *
 * Numbers: the IOMMU type and extension numbers share VFIO's
 * VFIO_CHECK_EXTENSION space; this out-of-tree module takes them from a
 * block (0x4156xxxx, "AV") far from the small integers upstream allocates.
 * Ioctls are VFIO_TYPE ioctls from VFIO_BASE + 0x40 up, far above the
 * container ioctls upstream defines.
 */
#ifndef _UAPI_LINUX_VFIO_IOMMU_ASYNC_H
#define _UAPI_LINUX_VFIO_IOMMU_ASYNC_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/vfio.h>

/* The IOMMU type: VFIO_CHECK_EXTENSION answers 1, VFIO_SET_IOMMU takes it. */
#define VFIO_ASYNC_IOMMU		0x41560001

/* First ioctl number of this backend. */
#define VFIO_ASYNC_BASE			(VFIO_BASE + 0x40)

#endif /* _UAPI_LINUX_VFIO_IOMMU_ASYNC_H */
