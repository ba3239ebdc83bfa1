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

/*
 * Extension: the balloon channel (VFIO_IOMMU_ASYNC_CHANNEL_CREATE), the
 * blocking VFIO_IOMMU_ASYNC_MAP_NOW, and released chunks in
 * struct vfio_iommu_async_status.
 */
#define VFIO_ASYNC_BALLOON_CHANNEL	0x41560003

/* First ioctl number of this backend. */
#define VFIO_ASYNC_BASE			(VFIO_BASE + 0x40)

/**
 * VFIO_IOMMU_MAP_DMA_DEFERRED - _IO(VFIO_TYPE, VFIO_ASYNC_BASE + 0),
 *	struct vfio_iommu_async_dma_map
 *
 * Map [iova, iova + size) to the caller's memory at vaddr, like
 * VFIO_IOMMU_MAP_DMA, but return at once: kernel threads pin and map it
 * in the background, in chunks of IOVA space, lowest IOVA first. A chunk
 * is 2 MiB, cut at IOVA multiples of its size; where all of the memory is
 * hugetlbfs pages larger than that, at IOVAs aligned as their addresses
 * are, a chunk is one such page (1 GiB pages: 1 GiB chunks, each one
 * IOMMU page). Until a chunk is mapped, device DMA to it faults, so a VMM
 * keeps the guest from handing that memory to a device (e.g. behind an
 * inflated virtio-balloon) until VFIO_IOMMU_ASYNC_GET_STATUS says it is
 * mapped.
 *
 * Everything that can be checked is checked before it returns, with the
 * errnos of VFIO_IOMMU_MAP_DMA: alignment and wrap (EINVAL), overlap with
 * any mapping (EEXIST), the usable IOVA ranges (EINVAL), the entry limit
 * (ENOSPC), that vaddr..vaddr+size is mapped in the caller with the access
 * asked for (EFAULT). RLIMIT_MEMLOCK is charged for the whole size now
 * (ENOMEM past it), so the background never runs out of it. The call's
 * cost does not grow with size.
 *
 * Only memory whose page faults the kernel serves without waiting on user
 * space may be deferred: anonymous, shmem (memfd, tmpfs) and hugetlbfs
 * memory that no userfaultfd watches. Any other file mapping (FUSE, ramfs,
 * a device's) gives EOPNOTSUPP; MAP_DMA and the NOW flag take them. The
 * check is made again before each batch of pages is pinned: a chunk whose
 * memory was replaced by such a mapping meanwhile fails with EOPNOTSUPP.
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
 * of mapped, pending (not yet, or being mapped now), failed and released
 * (given back by the balloon channel's RELEASE), so mapped_bytes +
 * pending_bytes + failed_bytes + released_bytes == deferred_bytes always.
 * released_bytes came with VFIO_ASYNC_BALLOON_CHANNEL: a caller whose
 * argsz ends before it gets the older structure filled, and may then see
 * the first four add up only while nothing is released.
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
	__u64	released_bytes;
};

#define VFIO_IOMMU_ASYNC_GET_STATUS	_IO(VFIO_TYPE, VFIO_ASYNC_BASE + 1)

/*
 * The balloon channel
 * -------------------
 * A VMM that keeps deferred memory behind an inflated virtio-balloon must
 * know that pages are mapped before the guest gets them back (a deflate),
 * and may give pages back to the host at run time (an inflate). It asks,
 * in requests, each with a 64-bit cookie and a list of IOVA ranges:
 *
 *   MAP_NOW   complete once every chunk the ranges touch is pinned
 *             and mapped in every IOMMU domain of the container. Chunks
 *             already mapped are a hit: a request whose chunks all are
 *             completes at once, without waiting for anything queued
 *             before it. Missing chunks are mapped ahead of the background
 *             sweep, a chunk being mapped is waited for, and a chunk that
 *             had failed (or was released) is mapped again, once.
 *   MAP_NEXT  a hint: map the chunks these ranges touch before the rest
 *             of the sweep, in the order given; completes at once (ENOSPC:
 *             too many hints queued, send fewer ahead).
 *   RELEASE   the ranges are back in the balloon: unmap and unpin the
 *             chunks of deferred mappings that lie wholly inside them, in
 *             whatever state they are, so that the VMM may discard that
 *             memory; chunks only partly covered, and mappings made at
 *             once, stay mapped. Released chunks leave the sweep and are
 *             mapped again only by a later MAP_NOW or MAP_NEXT. locked_vm
 *             stays charged, so mapping them again cannot fail for it.
 *             Completes when done; a MAP_NOW still waiting for a released
 *             chunk completes with ECANCELED.
 *
 * Ranges are page aligned, in ascending IOVA order, not overlapping, and
 * each lies inside mappings of the container. A request completes with
 * status 0 or -errno and, on error, an IOVA in the first range that
 * failed, where it failed (its start, or for ENOENT the first address not
 * inside mappings, for E2BIG the start of the first mapping beyond the
 * bound): EINVAL (a malformed request: unknown op or flags, no range, too
 * many, unaligned, wrapping, out of order), ENOENT (a range not inside
 * mappings), E2BIG (MAP_NOW, MAP_NEXT: the ranges lie in more than 2048
 * pieces of mappings, a range counting once for every mapping it lies
 * in; send fewer at a time), ECANCELED (its mapping was unmapped or its
 * chunk released while it waited), ENODEV (the container was released:
 * its VFIO container file closed while the channel stayed open), or the
 * errno with which pinning or mapping failed.
 *
 * Two ways in: VFIO_IOMMU_ASYNC_MAP_NOW, a blocking ioctl with MAP_NOW's
 * semantics; and a channel, shared-memory rings signalled through two
 * eventfds, in the manner of vhost's kick and call: a burst of requests
 * costs one kick, a burst of completions one call.
 */

/* An IOVA range of a request. */
struct vfio_iommu_async_range {
	__u64	iova;
	__u64	size;
};

/**
 * VFIO_IOMMU_ASYNC_CHANNEL_CREATE - _IO(VFIO_TYPE, VFIO_ASYNC_BASE + 2),
 *	struct vfio_iommu_async_channel_create
 *
 * Create the container's balloon channel (one per container: EBUSY for a
 * second one while the first is open) and return its file descriptor. The
 * caller gives two eventfds: @kick_fd, which it writes after queueing
 * requests, and @call_fd, which the module signals after posting
 * completions. @sq_entries (1..4096), @cq_entries (@sq_entries..8192; 0
 * means twice @sq_entries) and @range_entries (1..65536; 0 means 64 per
 * request slot) are powers of two (EINVAL otherwise). The module fills in
 * @max_ranges (the most ranges one request may carry), @mmap_size and the
 * offsets of the shared header (struct vfio_iommu_async_ring_hdr), the
 * request array (struct vfio_iommu_async_sqe), the range table (struct
 * vfio_iommu_async_range) and the completion array (struct
 * vfio_iommu_async_cqe) in the mapping the VMM makes with
 * mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).
 * EBADF/EINVAL: a bad eventfd.
 *
 * Protocol. Indexes are free-running __u32 counters; entry i lives at
 * i & (entries - 1). The VMM writes requests at sq_tail, their ranges in
 * the range table (each request names its first slot, range_start; slots
 * wrap), then publishes sq_tail with a store-release; the module reads
 * from sq_head. The module writes completions at cq_tail and publishes it
 * with a store-release; the VMM reads from cq_head and publishes it. Every
 * request gets exactly one completion; the module takes a request only
 * when a completion slot is free for it, so the completion ring never
 * overflows (a VMM that does not reap stalls its own requests).
 *
 * Notification suppression, both ways. VFIO_ASYNC_SQ_NEED_KICK in sq_flags
 * is set by the module only when it has stopped reading requests: after
 * publishing sq_tail (or cq_head), a full barrier, the VMM kicks only if
 * it is set. VFIO_ASYNC_CQ_NO_CALL in cq_flags is set by the VMM while it
 * reaps: the module does not signal @call_fd then; the VMM clears it, makes
 * a full barrier and looks at cq_tail once more before it sleeps. Each side
 * sets its flag, makes a full barrier, then looks at the other side's
 * index, so no notification that is needed is ever lost.
 *
 * Nothing the VMM writes is trusted: every index and entry is read once
 * and checked; a malformed request completes with EINVAL and harms
 * nothing else. Work per kick is bounded; kernel memory per channel is
 * bounded by the ring sizes, 64 waiting MAP_NOW requests of at most 2048
 * pieces each and 4096 queued MAP_NEXT pieces per container, and charged
 * to the memory cgroup of the process that created the channel. Closing the channel
 * (or the container, or the process dying) cancels what is in flight.
 */
struct vfio_iommu_async_channel_create {
	__u32	argsz;
	__u32	flags;
	__s32	kick_fd;
	__s32	call_fd;
	__u32	sq_entries;
	__u32	cq_entries;
	__u32	range_entries;
	__u32	max_ranges;
	__u64	mmap_size;
	__u64	hdr_off;
	__u64	sqes_off;
	__u64	ranges_off;
	__u64	cqes_off;
};

#define VFIO_IOMMU_ASYNC_CHANNEL_CREATE	_IO(VFIO_TYPE, VFIO_ASYNC_BASE + 2)

/* The shared header. Each index is written by one side only. */
struct vfio_iommu_async_ring_hdr {
	__u32	sq_head;	/* module: next request it reads */
	__u32	sq_tail;	/* VMM: next request slot it writes */
	__u32	sq_flags;	/* module: VFIO_ASYNC_SQ_* */
	__u32	__pad0;
	__u32	cq_head;	/* VMM: next completion it reads */
	__u32	cq_tail;	/* module: next completion slot it writes */
	__u32	cq_flags;	/* VMM: VFIO_ASYNC_CQ_* */
	__u32	__pad1;
};

#define VFIO_ASYNC_SQ_NEED_KICK		(1 << 0)
/* The VMM claimed more requests than the ring holds: none is read again. */
#define VFIO_ASYNC_SQ_ERROR		(1 << 1)
#define VFIO_ASYNC_CQ_NO_CALL		(1 << 0)

#define VFIO_ASYNC_OP_MAP_NOW		1
#define VFIO_ASYNC_OP_MAP_NEXT		2
#define VFIO_ASYNC_OP_RELEASE		3

/* A request; @flags and @__reserved are 0. */
struct vfio_iommu_async_sqe {
	__u64	cookie;
	__u16	op;
	__u16	flags;
	__u32	nr_ranges;
	__u32	range_start;
	__u32	__reserved;
};

/* A completion; VFIO_ASYNC_CQE_HIT: a MAP_NOW that needed no mapping. */
struct vfio_iommu_async_cqe {
	__u64	cookie;
	__s32	status;
	__u32	flags;
	__u64	error_iova;
};

#define VFIO_ASYNC_CQE_HIT		(1 << 0)

/**
 * VFIO_IOMMU_ASYNC_MAP_NOW - _IO(VFIO_TYPE, VFIO_ASYNC_BASE + 3),
 *	struct vfio_iommu_async_map_now
 *
 * MAP_NOW, blocking: return once every chunk @nr_ranges ranges at @ranges
 * (a user pointer to struct vfio_iommu_async_range; 1..1048576 of them)
 * touch is mapped, the calling thread helping to map them. Errnos as for a
 * MAP_NOW request, and EFAULT (@ranges unreadable), EINTR (killed while
 * waiting; whatever it mapped stays mapped); on an error of a range,
 * @error_iova is set as a request's error IOVA is.
 */
struct vfio_iommu_async_map_now {
	__u32	argsz;
	__u32	flags;
	__u32	nr_ranges;
	__u32	__reserved;
	__u64	ranges;
	__u64	error_iova;
};

#define VFIO_IOMMU_ASYNC_MAP_NOW	_IO(VFIO_TYPE, VFIO_ASYNC_BASE + 3)

#endif /* _UAPI_LINUX_VFIO_IOMMU_ASYNC_H */
