/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio_iommu_async: private definitions shared by the module's files.
 *
 * Objects, one file each:
 *   container.c  struct vfio_async_container: the iommu_data VFIO hands us,
 *                its IOMMU domains and groups (attach, detach, replay).
 *   iova.c       the IOVA bookkeeping: the tree of struct vfio_async_dma and
 *                the list of usable IOVA ranges.
 *   pages.c      the pin-and-map engine: pins user pages in batches, maps
 *                each physically contiguous run with one iommu_map(), and
 *                unmaps/unpins with batched IOTLB flushes.
 *   ioctl.c      the container ioctls (type1v2 compatible).
 *   sysfs.c      /sys/kernel/vfio_async/.
 *   main.c       module parameters and registration with VFIO.
 *
 * Where a pinned PFN lives: nowhere but the IOMMU page table. A pinned page
 * is always mapped in every domain of its container, and the first domain
 * is the record used to find the PFNs to unpin (iommu_iova_to_phys()). So a
 * range is pinned exactly when it is mapped, and teardown needs no memory.
 *
 * Naming: @last is inclusive, @end is exclusive.
 *
 * Lock order, outermost first:
 *   vfio_container::group_lock (VFIO core; read around ioctls, write around
 *                               attach_group/detach_group)
 *   vfio_async_container::lock
 *   mm->mmap_lock               (read while pinning, write while accounting)
 * Nothing here is called with mmap_lock held, so the reverse never occurs.
 */
#ifndef VFIO_ASYNC_H
#define VFIO_ASYNC_H

#include <linux/iommu.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/types.h>

#include "vfio_driver_ops.h"
#include <linux/vfio_iommu_async.h>

#define VFIO_ASYNC_VERSION	"0.1.0"

/* Module parameters (main.c). */
extern bool vfio_async_type1v2_dropin;
extern bool vfio_async_allow_unsafe_interrupts;
extern unsigned int vfio_async_dma_entry_limit;

/**
 * struct vfio_async_dma - one user mapping, as created by MAP_DMA
 * @node: in vfio_async_container::dma_tree, keyed by @iova
 * @iova: first IOVA
 * @size: bytes
 * @vaddr: user address backing @iova
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 * @mapped: bytes from @iova that are pinned and mapped in every domain; the
 *          rest is neither (the prefix grows while pinning)
 * @mm: the address space @vaddr belongs to; mmgrab()ed, so it stays valid
 *      while its pages may be gone: pin only under mmget_not_zero()
 * @task: group leader of the mapping process, for RLIMIT_MEMLOCK
 * @lock_cap: the mapping process had CAP_IPC_LOCK
 *
 * All fields are protected by vfio_async_container::lock.
 */
struct vfio_async_dma {
	struct rb_node node;
	dma_addr_t iova;
	size_t size;
	unsigned long vaddr;
	int prot;
	size_t mapped;
	struct mm_struct *mm;
	struct task_struct *task;
	bool lock_cap;
};

/**
 * struct vfio_async_domain - an IOMMU domain and the groups attached to it
 * @next: in vfio_async_container::domains
 * @domain: the IOMMU domain
 * @groups: struct vfio_async_group, attached to @domain
 * @enforce_cc: @domain blocks non-coherent (no-snoop) DMA
 */
struct vfio_async_domain {
	struct list_head next;
	struct iommu_domain *domain;
	struct list_head groups;
	bool enforce_cc;
};

struct vfio_async_group {
	struct list_head next;
	struct iommu_group *iommu_group;
};

/* An inclusive range of IOVAs devices may use. */
struct vfio_async_iova_range {
	struct list_head next;
	dma_addr_t start;
	dma_addr_t last;
};

/**
 * struct vfio_async_container - the backend's state for one VFIO container
 * @domains: struct vfio_async_domain; the first one is the PFN record
 * @dma_tree: struct vfio_async_dma by IOVA, never overlapping
 * @iova_ranges: sorted struct vfio_async_iova_range; empty means any IOVA
 *               (no domain yet)
 * @dma_avail: how many more mappings may be created
 * @pgsize_bitmap: page sizes every domain supports, at least PAGE_SIZE
 */
struct vfio_async_container {
	struct mutex lock;		/* protects every field below */
	struct list_head domains;
	struct rb_root dma_tree;
	struct list_head iova_ranges;
	unsigned int dma_avail;
	unsigned long pgsize_bitmap;
};

/* container.c */
void *vfio_async_open(unsigned long type);
void vfio_async_release(void *iommu_data);
int vfio_async_attach_group(void *iommu_data, struct iommu_group *iommu_group,
			    enum vfio_group_type type);
void vfio_async_detach_group(void *iommu_data, struct iommu_group *iommu_group);
struct iommu_domain *vfio_async_group_iommu_domain(void *iommu_data,
						   struct iommu_group *group);
bool vfio_async_all_domains_enforce_cc(struct vfio_async_container *c);
void vfio_async_remove_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma);

static inline size_t vfio_async_min_pgsize(struct vfio_async_container *c)
{
	return (size_t)1 << __ffs(c->pgsize_bitmap);
}

/* iova.c */
struct vfio_async_dma *vfio_async_find_dma(struct vfio_async_container *c,
					   dma_addr_t start, size_t size);
struct vfio_async_dma *vfio_async_first_dma_in(struct vfio_async_container *c,
					       dma_addr_t start, dma_addr_t last);
void vfio_async_link_dma(struct vfio_async_container *c,
			 struct vfio_async_dma *dma);
void vfio_async_unlink_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma);
bool vfio_async_iova_usable(struct vfio_async_container *c, dma_addr_t start,
			    dma_addr_t last);
int vfio_async_compute_iova_ranges(struct vfio_async_container *c,
				   struct vfio_async_domain *extra_domain,
				   struct list_head *ranges);
bool vfio_async_dmas_fit(struct vfio_async_container *c,
			 struct list_head *ranges);
void vfio_async_install_iova_ranges(struct vfio_async_container *c,
				    struct list_head *ranges);
void vfio_async_free_iova_ranges(struct list_head *ranges);

/* pages.c */
struct vfio_async_dma *vfio_async_dma_alloc(dma_addr_t iova, size_t size,
					    unsigned long vaddr, int prot);
void vfio_async_dma_free(struct vfio_async_dma *dma);
int vfio_async_pin_map(struct vfio_async_container *c,
		       struct vfio_async_dma *dma);
void vfio_async_unmap_unpin(struct vfio_async_container *c,
			    struct vfio_async_dma *dma);
int vfio_async_replay(struct vfio_async_container *c,
		      struct vfio_async_domain *from,
		      struct vfio_async_domain *to);

/* ioctl.c */
long vfio_async_ioctl(void *iommu_data, unsigned int cmd, unsigned long arg);

/* sysfs.c */
int vfio_async_sysfs_init(void);
void vfio_async_sysfs_exit(void);

/**
 * struct vfio_async_stats - module-wide counters shown in sysfs
 * @containers: containers using this backend
 * @pinned_pages: pages this module holds pinned
 * @mapped_bytes: bytes of user mappings that are pinned and mapped
 * @iommu_map_calls: iommu_map() calls made, one per contiguous run and domain
 */
struct vfio_async_stats {
	atomic_long_t containers;
	atomic_long_t pinned_pages;
	atomic_long_t mapped_bytes;
	atomic_long_t iommu_map_calls;
};

extern struct vfio_async_stats vfio_async_stats;

#endif /* VFIO_ASYNC_H */
