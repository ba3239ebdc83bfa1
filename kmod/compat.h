/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel interfaces that differ between the kernels this module builds
 * for, each behind one helper. Which form a kernel has is decided by the
 * probes of kmod/configure (compat_config.h, HAVE_*), never by version.
 */
#ifndef VFIO_ASYNC_COMPAT_H
#define VFIO_ASYNC_COMPAT_H

#include <linux/eventfd.h>
#include <linux/iommu.h>
#include <linux/irqdomain.h>
#include <linux/mm.h>

#include "compat_config.h"

/* Page tables the IOMMU driver allocates are charged to the active memcg. */
static inline int vfio_async_iommu_map(struct iommu_domain *domain,
				       unsigned long iova, phys_addr_t paddr,
				       size_t size, int prot)
{
#ifdef HAVE_IOMMU_MAP_GFP
	return iommu_map(domain, iova, paddr, size, prot, GFP_KERNEL_ACCOUNT);
#else
	return iommu_map(domain, iova, paddr, size, prot);
#endif
}

/* Caller holds @mm's mmap_lock for read; it is not dropped. */
static inline long vfio_async_pin_user_pages(struct mm_struct *mm,
					     unsigned long start,
					     unsigned long nr_pages,
					     unsigned int gup_flags,
					     struct page **pages)
{
#ifdef HAVE_GUP_REMOTE_NO_VMAS
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL);
#else
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL, NULL);
#endif
}

/*
 * Pin the pages of [@start, +@nr_pages) of current->mm that are already
 * present, by the lockless page-table walk: it neither faults nor takes
 * mmap_lock, and on 6.1 it takes a THP at once where GUP's slow path goes
 * page by page (see the probe). Returns how many pages from @start it
 * pinned; 0 where it stopped at the first, or where this kernel does not
 * export the walk. The caller pins the rest with GUP.
 */
static inline long vfio_async_pin_present_pages(unsigned long start,
						unsigned long nr_pages,
						unsigned int gup_flags,
						struct page **pages)
{
#ifdef HAVE_PIN_USER_PAGES_FAST_ONLY_GONE
	return 0;
#else
	return pin_user_pages_fast_only(start, nr_pages, gup_flags, pages);
#endif
}

static inline bool vfio_async_have_pin_present_pages(void)
{
#ifdef HAVE_PIN_USER_PAGES_FAST_ONLY_GONE
	return false;
#else
	return true;
#endif
}

static inline void vfio_async_eventfd_signal(struct eventfd_ctx *ctx)
{
#ifdef HAVE_EVENTFD_SIGNAL_NO_COUNT
	eventfd_signal(ctx);
#else
	eventfd_signal(ctx, 1);
#endif
}

/**
 * vfio_async_follow_pfn - the PFN a VM_PFNMAP page table maps at @addr
 * @vma: the VMA of @addr, mmap_lock held
 * @addr: user address
 * @write: the device will write: the PTE itself must allow writes
 * @pfn: receives the PFN
 *
 * Returns 0, -EFAULT when a write is asked of a read-only PTE, or the
 * kernel's error when nothing is mapped there (yet).
 */
static inline int vfio_async_follow_pfn(struct vm_area_struct *vma,
					unsigned long addr, bool write,
					unsigned long *pfn)
{
#ifdef HAVE_FOLLOW_PFNMAP
	struct follow_pfnmap_args args = { .vma = vma, .address = addr };
	int ret;

	ret = follow_pfnmap_start(&args);
	if (ret)
		return ret;
	*pfn = args.pfn;
	ret = write && !args.writable ? -EFAULT : 0;
	follow_pfnmap_end(&args);
	return ret;
#else
	spinlock_t *ptl;	/* the PTE lock follow_pte() takes */
	pte_t *ptep;
	int ret;

	ret = follow_pte(vma->vm_mm, addr, &ptep, &ptl);
	if (ret)
		return ret;
	__acquire(ptl);		/* follow_pte() took it, unannotated */
	*pfn = pte_pfn(*ptep);
	ret = write && !pte_write(*ptep) ? -EFAULT : 0;
	pte_unmap_unlock(ptep, ptl);
	return ret;
#endif
}

static inline void vfio_async_vm_flags_set(struct vm_area_struct *vma,
					   unsigned long flags)
{
#ifdef HAVE_VM_FLAGS_SET
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/* A paging domain for @dev's IOMMU, or NULL. */
static inline struct iommu_domain *vfio_async_domain_alloc(struct device *dev)
{
#ifdef HAVE_IOMMU_PAGING_DOMAIN_ALLOC
	struct iommu_domain *domain = iommu_paging_domain_alloc(dev);

	return IS_ERR(domain) ? NULL : domain;
#else
	return iommu_domain_alloc(dev->bus);
#endif
}

#ifndef HAVE_IOMMU_GROUP_HAS_ISOLATED_MSI
static inline int vfio_async_dev_has_intr_remap(struct device *dev, void *u)
{
	return device_iommu_capable(dev, IOMMU_CAP_INTR_REMAP);
}
#endif

/* Can no device of @group forge an MSI write to another's vector? */
static inline bool vfio_async_msi_isolated(struct iommu_group *group)
{
#ifdef HAVE_IOMMU_GROUP_HAS_ISOLATED_MSI
	return iommu_group_has_isolated_msi(group);
#else
	return irq_domain_check_msi_remap() ||
	       iommu_group_for_each_dev(group, NULL,
					vfio_async_dev_has_intr_remap);
#endif
}

#endif /* VFIO_ASYNC_COMPAT_H */
