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
 * The ioctls below are extensible the way VFIO's are: argsz says how much
 * of the structure the caller passes, flags say which optional parts mean
 * something. An argsz shorter than the first version of a structure gives
 * EINVAL; a longer one whose extra bytes are not all zero, or one over a
 * page (4096), gives E2BIG, so a newer caller learns this module does not
 * know them; unknown flags give EINVAL.
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

/*
 * Extension: VFIO_IOMMU_MAP_DMA_DEFERRED and VFIO_IOMMU_ASYNC_GET_STATUS
 * are available.
 */
#define VFIO_ASYNC_DEFERRED_MAP		0x41560002

/* First ioctl number of this backend. */
#define VFIO_ASYNC_BASE			(VFIO_BASE + 0x40)

/**
 * VFIO_IOMMU_MAP_DMA_DEFERRED - _IO(VFIO_TYPE, VFIO_ASYNC_BASE + 0),
 *	struct vfio_iommu_async_dma_map
 *
 * Map [iova, iova + size) to the caller's memory at vaddr, like
 * VFIO_IOMMU_MAP_DMA, but return at once: kernel threads pin and map it
 * in the background, in 2 MiB chunks of IOVA space, lowest IOVA first.
 * Until a chunk is mapped, device DMA to it faults, so a VMM keeps the
 * guest from handing that memory to a device (e.g. behind an inflated
 * virtio-balloon) until VFIO_IOMMU_ASYNC_GET_STATUS says it is mapped.
 *
 * Everything that can be checked is checked before it returns, with the
 * errnos of VFIO_IOMMU_MAP_DMA: alignment and wrap (EINVAL), overlap with
 * any mapping (EEXIST), the usable IOVA ranges (EINVAL), the entry limit
 * (ENOSPC), that vaddr..vaddr+size is mapped in the caller with the access
 * asked for (EFAULT). RLIMIT_MEMLOCK is charged for the whole size now
 * (ENOMEM past it), so the background never runs out of it. The call's
 * cost does not grow with size.
 *
 * A chunk the background cannot map (the memory was unmapped meanwhile,
 * the process is gone, pinning failed) is recorded as failed: see
 * VFIO_IOMMU_ASYNC_GET_STATUS. VFIO_IOMMU_UNMAP_DMA takes deferred
 * mappings like any other, whatever state their chunks are in.
 *
 * VFIO_ASYNC_MAP_FLAG_NOW maps it all before returning instead, on the
 * same path as VFIO_IOMMU_MAP_DMA (locked_vm charged as pages are pinned),
 * so a VMM can map low memory at once and defer the rest with one API.
 */
struct vfio_iommu_async_dma_map {
	__u32	argsz;
	__u32	flags;
#define VFIO_ASYNC_MAP_FLAG_READ	(1 << 0)	/* device may read */
#define VFIO_ASYNC_MAP_FLAG_WRITE	(1 << 1)	/* device may write */
#define VFIO_ASYNC_MAP_FLAG_NOW		(1 << 2)	/* map before returning */
	__u64	vaddr;
	__u64	iova;
	__u64	size;
};

#define VFIO_IOMMU_MAP_DMA_DEFERRED	_IO(VFIO_TYPE, VFIO_ASYNC_BASE + 0)

/**
 * VFIO_IOMMU_ASYNC_GET_STATUS - _IO(VFIO_TYPE, VFIO_ASYNC_BASE + 1),
 *	struct vfio_iommu_async_status
 *
 * The container's mapping progress. The caller sets argsz and flags (0);
 * the module fills the rest. Of the deferred bytes, each is in exactly one
 * of mapped, pending (not yet, or being mapped now) and failed, so
 * mapped_bytes + pending_bytes + failed_bytes == deferred_bytes always.
 * sync_bytes counts mappings made at once (MAP_DMA, or the NOW flag).
 * first_error is the -errno of the first chunk that failed and
 * first_error_iova its first IOVA; 0 when none has.
 */
struct vfio_iommu_async_status {
	__u32	argsz;
	__u32	flags;
	__u64	deferred_bytes;
	__u64	mapped_bytes;
	__u64	pending_bytes;
	__u64	failed_bytes;
	__u64	sync_bytes;
	__u64	pinned_pages;
	__s32	first_error;
	__u32	__reserved;
	__u64	first_error_iova;
};

#define VFIO_IOMMU_ASYNC_GET_STATUS	_IO(VFIO_TYPE, VFIO_ASYNC_BASE + 1)

#endif /* _UAPI_LINUX_VFIO_IOMMU_ASYNC_H */
