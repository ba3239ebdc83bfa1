// SPDX-License-Identifier: GPL-2.0-only
/*
 * The pin-and-map engine.
 *
 * Pinning: FOLL_LONGTERM, a batch of up to one page of page pointers at a
 * time, against the mm that created the mapping (held with mmget_not_zero()
 * only while pinning, so any thread may pin on its behalf and a dead
 * process's memory is never pinned). Where the kernel exports the lockless
 * walk (6.1), it pins what is already present first, a kernel thread
 * adopting that mm for the while; pin_user_pages_remote() faults in and
 * pins the rest. Consecutive PFNs are
 * gathered into a run that may span batches, and each run is mapped with a
 * single iommu_map() per domain, which lets the IOMMU driver use 2 MiB and
 * 1 GiB pages for THP and hugetlbfs memory.
 *
 * What is pinned: every page GUP returns but the zero page, which is
 * released at once and mapped unpinned, as are VM_PFNMAP PFNs without a
 * struct page or with a reserved one (device memory). Any other reserved
 * page is refused: its driver may free it while the device can still reach
 * it. So a PFN is pinned exactly when pfn_is_pinned() says so, and the
 * unpin side needs no per-page record.
 *
 * What may be deferred: memory whose faults cannot wait on user space
 * (anonymous, shmem/memfd, hugetlbfs; not userfaultfd-armed), since the
 * background threads that fault it in serve every container on the host
 * and cannot be interrupted. It is checked at map time and again under
 * mmap_lock before every batch is pinned, as the VMAs may have changed.
 *
 * locked_vm: a mapping made at once is charged for what is pinned, as
 * type1 charges it: for ordinary writable memory once for each range
 * pinned (prepay()), else batch by batch; a deferred one was charged for
 * its whole size when it was made (so the background can never fail for
 * lack of it), and pinning it charges nothing more.
 *
 * IOMMU pages: a run never crosses a chunk boundary of its mapping, so an
 * unmap of whole chunks finds the runs again as they were mapped, and each
 * run becomes the pages iommu_map() makes of it: the largest size the
 * domain offers that its IOVA and physical address are both aligned to and
 * that fits. They are counted per domain and size as runs are mapped,
 * copied and unmapped; an unmap that takes other than the window of runs
 * it asked for warns (more would mean a page crossed a chunk's end).
 *
 * All or nothing: vfio_async_pin_map() either maps the whole range asked
 * for in every domain, or leaves none of it mapped or pinned. Callers own
 * the range as a span in flight (see vfio_async.h), which keeps the domain
 * list and the mapping in place without a lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/hugetlb.h>
#include <linux/iommu.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/shmem_fs.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/userfaultfd_k.h>

#include "compat.h"
#include "vfio_async.h"

/* Pages per pin_user_pages_remote() call: one page of pointers. */
#define PIN_BATCH	(PAGE_SIZE / sizeof(struct page *))
/*
 * Pages that an unhurried batch may fault in: it holds the mapping
 * process's mmap_lock for no longer than that many faults (see
 * pin_map_pages()); pages already there it takes a whole batch at a time.
 */
#define PIN_FAULTS_UNHURRIED	16

/*
 * How long an unhurried pin lets those waiting for the mmap_lock go first
 * before it takes the lock again (see yield_mmap_lock()): polls of
 * MMAP_YIELD_US, at most MMAP_YIELD_POLLS of them.
 */
#define MMAP_YIELD_US		25
#define MMAP_YIELD_POLLS	40

/*
 * Runs read for an unmap, unpinned together once unmapped: a page of them,
 * or as many as the stack holds if no page can be had (an unmap cannot
 * fail).
 */
#define UNPIN_BATCH_MIN	16

/* Physically contiguous PFNs behind consecutive IOVAs. */
struct pfn_run {
	dma_addr_t iova;
	unsigned long pfn;
	unsigned long npages;
};

struct unpin_batch {
	unsigned int nr;
	unsigned int max;
	struct pfn_run *runs;
	struct pfn_run local[UNPIN_BATCH_MIN];
};

/* The counter of IOMMU pages of @size (4 KiB, 2 MiB, 1 GiB or other). */
static unsigned int page_size_index(size_t size)
{
	switch (size) {
	case SZ_4K:
		return 0;
	case SZ_2M:
		return 1;
	case SZ_1G:
		return 2;
	default:
		return 3;
	}
}

/*
 * The first step the IOMMU core cuts [@iova, +@len) at @phys into with
 * page sizes @pgsizes: the largest size aligned and fitting, taken up to
 * where a larger one could begin (only where both addresses are equally
 * aligned to it). Its page size in *@size; returns its length, 0 if none
 * fits.
 */
static size_t first_step(unsigned long pgsizes, dma_addr_t iova,
			 phys_addr_t phys, size_t len, size_t *size)
{
	unsigned long fit = pgsizes & GENMASK(__fls(len), 0);
	unsigned long larger;
	size_t count;

	if (iova | phys)
		fit &= GENMASK(__ffs(iova | phys), 0);
	if (!fit)
		return 0;
	*size = BIT(__fls(fit));
	count = len / *size;
	larger = pgsizes & ~GENMASK(__fls(fit), 0);
	if (larger) {
		size_t next = BIT(__ffs(larger));

		if (!((iova ^ phys) & (next - 1)))
			count = min_t(size_t, count,
				      (next - (iova & (next - 1))) / *size);
	}
	return count * *size;
}

/*
 * Count (@sign 1) or uncount (-1) the IOMMU pages domain @d holds for
 * [@iova, @iova + @len) mapped at @phys, as iommu_map() cuts it.
 */
static void count_pages(struct vfio_async_container *c,
			struct vfio_async_domain *d, dma_addr_t iova,
			phys_addr_t phys, size_t len, long sign)
{
	long n[VFIO_ASYNC_NR_PAGE_SIZES] = { 0 };
	unsigned int i;

	while (len) {
		size_t size, step = first_step(d->pgsizes, iova, phys, len,
					       &size);

		if (WARN_ON_ONCE(!step))
			break;
		n[page_size_index(size)] += step / size;
		iova += step;
		phys += step;
		len -= step;
	}
	for (i = 0; i < VFIO_ASYNC_NR_PAGE_SIZES; i++) {
		if (!n[i])
			continue;
		atomic_long_add(sign * n[i], &d->pages[i]);
		vfio_async_count(c, VFIO_ASYNC_IOMMU_PAGES_4K + i, sign * n[i]);
	}
}

/**
 * vfio_async_forget_pages - take the IOMMU pages of @d out of the counts
 * @c: container
 * @d: a domain leaving @c without being unmapped page by page (freed
 *     whole, or a failed replay target)
 *
 * Returns how many it held.
 */
long vfio_async_forget_pages(struct vfio_async_container *c,
			     struct vfio_async_domain *d)
{
	long held = 0, n;
	unsigned int i;

	for (i = 0; i < VFIO_ASYNC_NR_PAGE_SIZES; i++) {
		n = atomic_long_xchg(&d->pages[i], 0);
		vfio_async_count(c, VFIO_ASYNC_IOMMU_PAGES_4K + i, -n);
		held += n;
	}
	return held;
}

/* Bytes from @iova to the end of its chunk of @dma. */
static size_t to_chunk_end(struct vfio_async_dma *dma, dma_addr_t iova)
{
	size_t chunk = BIT_ULL(dma->chunk_shift);

	return chunk - (iova & (chunk - 1));
}

static bool chunk_starts_at(struct vfio_async_dma *dma, dma_addr_t iova)
{
	return !(iova & (BIT_ULL(dma->chunk_shift) - 1));
}

static bool pfn_is_pinned(unsigned long pfn)
{
	return pfn_valid(pfn) && !PageReserved(pfn_to_page(pfn));
}

/* Charge (@npages > 0) or credit (< 0) the mapping's locked_vm. */
int vfio_async_lock_acct(struct vfio_async_dma *dma, long npages)
{
	struct mm_struct *mm = dma->mm;
	int ret = 0;

	if (!npages)
		return 0;
	/* A gone mm has nothing left to credit, and must not be charged. */
	if (!mmget_not_zero(mm))
		return npages > 0 ? -ESRCH : 0;

	if (npages > 0) {
		ret = mmap_write_lock_killable(mm);
		if (!ret) {
			ret = __account_locked_vm(mm, npages, true, dma->task,
						  dma->lock_cap);
			mmap_write_unlock(mm);
		}
	} else {
		/* Not killable: a credit skipped would leak locked_vm. */
		mmap_write_lock(mm);
		__account_locked_vm(mm, -npages, false, dma->task,
				    dma->lock_cap);
		mmap_write_unlock(mm);
	}
	mmput(mm);
	return ret;
}

/*
 * Charge or credit locked_vm for pages pinned or unpinned; nothing for a
 * deferred mapping, charged in full when it was made.
 */
static int pin_acct(struct vfio_async_dma *dma, long npages)
{
	return dma->deferred ? 0 : vfio_async_lock_acct(dma, npages);
}

/**
 * vfio_async_vma_deferrable - may @vma back a deferred mapping?
 * @vma: a VMA of the mapping process, mmap_lock held
 *
 * Only memory whose page faults are served by the kernel alone: a fault
 * that waits on a user-space server (FUSE, userfaultfd, a driver's
 * file) would hold a shared background thread for as long as it likes.
 */
bool vfio_async_vma_deferrable(struct vm_area_struct *vma)
{
	if (userfaultfd_armed(vma) || (vma->vm_flags & (VM_IO | VM_PFNMAP)))
		return false;
	if (vma_is_anonymous(vma) || is_vm_hugetlb_page(vma))
		return true;
	return vma->vm_file && shmem_mapping(vma->vm_file->f_mapping);
}

/*
 * Is [@start, @last] of @mm mapped with @prot, and deferrable if
 * @deferred? mmap_lock held. Returns 0, -EFAULT (a hole, or the access is
 * not allowed) or -EOPNOTSUPP (memory that cannot be deferred). The cost
 * grows with the number of VMAs, not with the size.
 */
int vfio_async_check_vaddr(struct mm_struct *mm, unsigned long start,
			   unsigned long last, int prot, bool deferred)
{
	unsigned long addr = start;

	for (;;) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);

		if (!vma ||
		    ((prot & IOMMU_WRITE) && !(vma->vm_flags & VM_WRITE)) ||
		    ((prot & IOMMU_READ) && !(vma->vm_flags & VM_READ)))
			return -EFAULT;
		if (deferred && !vfio_async_vma_deferrable(vma))
			return -EOPNOTSUPP;
		if (vma->vm_end - 1 >= last)
			return 0;
		addr = vma->vm_end;
	}
}

/*
 * log2 of the smallest and the largest page the VMAs [@start, @last] of
 * @mm are made of: their hugetlbfs page size, PAGE_SHIFT for other memory,
 * and PUD_SHIFT for device memory (mapped by the IOMMU in any size, never
 * pinned or shared out). Holes count as nothing. mmap_lock held.
 */
void vfio_async_page_shifts(struct mm_struct *mm, unsigned long start,
			    unsigned long last, unsigned int *smallest,
			    unsigned int *largest)
{
	struct vm_area_struct *vma;
	unsigned long addr = start;

	/* Not mmap_assert_locked(): with DEBUG_VM it needs dump_mm(). */
	lockdep_assert_held(&mm->mmap_lock);
	*smallest = UINT_MAX;
	*largest = PAGE_SHIFT;
	while ((vma = find_vma(mm, addr)) && vma->vm_start <= last) {
		unsigned int shift = vma->vm_flags & (VM_IO | VM_PFNMAP) ?
				     PUD_SHIFT :
				     __ffs(vma_kernel_pagesize(vma));

		*smallest = min(*smallest, shift);
		*largest = max(*largest, shift);
		if (vma->vm_end - 1 >= last)
			break;
		addr = vma->vm_end;
	}
	if (*smallest == UINT_MAX)
		*smallest = PAGE_SHIFT;
}

/* Release the pins of [pfn, pfn + npages); returns how many it released. */
static unsigned long unpin_pfns(struct vfio_async_container *c,
				unsigned long pfn, unsigned long npages,
				bool dirty)
{
	unsigned long i = 0, released = 0;

	while (i < npages) {
		unsigned long start = i;

		while (i < npages && pfn_is_pinned(pfn + i))
			i++;
		if (i > start) {
			unpin_user_page_range_dirty_lock(pfn_to_page(pfn + start),
							 i - start, dirty);
			released += i - start;
		}
		while (i < npages && !pfn_is_pinned(pfn + i))
			i++;
	}
	vfio_async_count(c, VFIO_ASYNC_PINNED_PAGES, -(long)released);
	return released;
}

/* Unpin what keep_pinnable() kept of a batch no run has taken. */
static long unpin_page_array(struct vfio_async_container *c,
			     struct page **pages, long npages)
{
	long i, released = 0;

	for (i = 0; i < npages; i++)
		released += unpin_pfns(c, page_to_pfn(pages[i]), 1, false);
	return released;
}

static void unpin_run(struct vfio_async_container *c,
		      struct vfio_async_dma *dma, struct pfn_run *run)
{
	unsigned long released;

	released = unpin_pfns(c, run->pfn, run->npages,
			      dma->prot & IOMMU_WRITE);
	pin_acct(dma, -(long)released);
	run->npages = 0;
}

/* Map @run in every domain, or in none; on failure the run is unpinned. */
static int map_run(struct vfio_async_container *c, struct vfio_async_dma *dma,
		   struct pfn_run *run)
{
	size_t len = run->npages << PAGE_SHIFT;
	struct vfio_async_domain *d;
	int ret = 0;

	list_for_each_entry(d, &c->domains, next) {
		ret = vfio_async_fault(VFIO_ASYNC_FAULT_CHUNK_MAP) ?:
		      vfio_async_iommu_map(d->domain, run->iova,
					   PFN_PHYS(run->pfn), len,
					   dma->prot | IOMMU_CACHE);
		if (ret)
			break;
		vfio_async_count(c, VFIO_ASYNC_IOMMU_MAP_CALLS, 1);
	}
	if (ret) {
		list_for_each_entry_continue_reverse(d, &c->domains, next)
			iommu_unmap(d->domain, run->iova, len);
		unpin_run(c, dma, run);
		return ret;
	}
	list_for_each_entry(d, &c->domains, next)
		count_pages(c, d, run->iova, PFN_PHYS(run->pfn), len, 1);
	run->npages = 0;
	return 0;
}

/*
 * The PFN behind @vaddr of a VM_PFNMAP mapping. Only device memory (no
 * struct page, or a reserved one) qualifies, since it is mapped without a
 * pin, and only where the page table itself allows the device's access: a
 * private writable mapping of a read-only file has read-only PTEs.
 */
static int lookup_pfnmap(struct mm_struct *mm, unsigned long vaddr,
			 bool write, unsigned long *pfn)
{
	struct vm_area_struct *vma = vma_lookup(mm, vaddr);
	int ret;

	if (!vma || !(vma->vm_flags & VM_PFNMAP))
		return -EFAULT;
	if (write && !(vma->vm_flags & VM_WRITE))
		return -EFAULT;

	ret = vfio_async_follow_pfn(vma, vaddr, write, pfn);
	if (ret) {
		/* Not populated, or write-protected: fault it as the device
		 * would need it, once, then look again.
		 */
		ret = fixup_user_fault(mm, vaddr, FAULT_FLAG_REMOTE |
				       (write ? FAULT_FLAG_WRITE : 0), NULL);
		if (ret)
			return ret;
		ret = vfio_async_follow_pfn(vma, vaddr, write, pfn);
		if (ret)
			return ret;
	}
	return pfn_is_pinned(*pfn) ? -EFAULT : 0;
}

/* Is @vaddr in a VM_PFNMAP mapping? mmap_lock held. */
static bool in_pfnmap(struct mm_struct *mm, unsigned long vaddr)
{
	struct vm_area_struct *vma = vma_lookup(mm, vaddr);

	return vma && (vma->vm_flags & VM_PFNMAP);
}

/*
 * The PFNs behind up to @npages pages from @vaddr of a VM_PFNMAP mapping,
 * into @pfns, under one mmap_lock: as many as could be found, or -errno
 * if not even the first.
 */
static long lookup_pfnmaps(struct mm_struct *mm, unsigned long vaddr,
			   unsigned long npages, bool write,
			   unsigned long *pfns)
{
	unsigned long i;
	int ret = 0;

	for (i = 0; i < npages; i++) {
		ret = lookup_pfnmap(mm, vaddr + i * PAGE_SIZE, write, &pfns[i]);
		if (ret)
			break;
	}
	return i ? i : ret;
}

/*
 * How many pages from @vaddr the lockless walk may pin: it skips GUP's
 * VMA checks, so only within one VMA that GUP would take, and only where
 * this thread walks @dma's mm as its own (see adopt_mm()). mmap_lock held.
 */
static unsigned long lockless_span(struct vfio_async_dma *dma,
				   unsigned long vaddr, unsigned long npages)
{
	struct vm_area_struct *vma;

	if (current->mm != dma->mm || !vfio_async_have_pin_present_pages())
		return 0;
	vma = vma_lookup(dma->mm, vaddr);
	if (!vma || vma->vm_flags & (VM_IO | VM_PFNMAP))
		return 0;
	return min(npages, (vma->vm_end - vaddr) >> PAGE_SHIFT);
}

/*
 * Pin up to @npages from @vaddr, mmap_lock held: what is present by the
 * lockless walk, which takes a THP at once, then at most @max_gup by GUP,
 * which faults them in. The fault point sits between the two: an injected
 * failure gives back the pins the walk took and fails the batch, as a
 * failure of the whole pin would. As many as could be pinned, or -errno
 * if not even the first.
 */
static long pin_pages(struct vfio_async_dma *dma, unsigned long vaddr,
		      unsigned long npages, unsigned long max_gup,
		      unsigned int gup_flags, struct page **pages)
{
	unsigned long span = lockless_span(dma, vaddr, npages);
	long got = 0, ret;

	if (span)
		got = vfio_async_pin_present_pages(vaddr, span, gup_flags,
						   pages);
	ret = vfio_async_fault(VFIO_ASYNC_FAULT_CHUNK_PIN);
	if (ret) {
		unpin_user_pages(pages, got);
		return ret;
	}
	if (got < npages)
		ret = vfio_async_pin_user_pages(dma->mm,
						vaddr + (got << PAGE_SHIFT),
						min(npages - got, max_gup),
						gup_flags, pages + got);
	if (ret < 0)
		return got ?: ret;
	return got + ret;
}

/*
 * Pin up to @npages from @vaddr into @pages, GUP faulting in at most
 * @max_gup of them, or, when @vaddr is in a VM_PFNMAP mapping, find the
 * PFNs of a run of it, stored over @pages as unsigned longs. Returns the
 * number of entries, with *@pfnmap telling which, or -errno.
 */
static long pin_batch(struct vfio_async_dma *dma, unsigned long vaddr,
		      unsigned long npages, unsigned long max_gup,
		      struct page **pages, bool *pfnmap)
{
	unsigned int gup_flags = FOLL_LONGTERM;
	bool write = dma->prot & IOMMU_WRITE;
	long ret;

	if (write)
		gup_flags |= FOLL_WRITE;

	*pfnmap = false;
	mmap_read_lock(dma->mm);
	/* The VMAs may have changed since the deferred call: look again. */
	ret = dma->deferred ?
	      vfio_async_check_vaddr(dma->mm, vaddr,
				     vaddr + (npages << PAGE_SHIFT) - 1,
				     dma->prot, true) : 0;
	if (ret)
		goto out;

	/* Device memory has no pages to pin: GUP would refuse each one. */
	if (!dma->deferred && in_pfnmap(dma->mm, vaddr)) {
		*pfnmap = true;
		ret = lookup_pfnmaps(dma->mm, vaddr, npages, write,
				     (unsigned long *)pages);
		goto out;
	}
	ret = pin_pages(dma, vaddr, npages, max_gup, gup_flags, pages);
	if (!ret)
		ret = -EFAULT;
out:
	mmap_read_unlock(dma->mm);
	return ret;
}

/*
 * Let a thread waiting for @mm's mmap_lock (the VMM's mmap(), munmap(), a
 * locked_vm charge) have it before an unhurried pin takes it again. A
 * lone reader may take an rwsem for reading while a writer waits, until
 * the writer has waited RWSEM_WAIT_TIMEOUT (4 ms at HZ=250): a worker
 * that pins batch after batch would keep the writer waiting that long
 * each time, whatever the size of its batches. Bounded, so that a stream
 * of writers does not stop the sweep.
 */
static void yield_mmap_lock(struct mm_struct *mm)
{
	int polls = MMAP_YIELD_POLLS;

	while (mmap_lock_is_contended(mm) && polls--)
		usleep_range(MMAP_YIELD_US, 2 * MMAP_YIELD_US);
}

/*
 * How many of @pages[0..@npages) are consecutive pages of the large folio
 * that holds @pages[0], told by their pointers alone: the pages are not
 * read, which for a THP pinned whole would be 512 struct pages.
 */
static long folio_stretch(struct page **pages, long npages)
{
	struct folio *folio = page_folio(pages[0]);
	long n, left = folio_nr_pages(folio) - folio_page_idx(folio, pages[0]);

	npages = min(npages, left);
	for (n = 1; n < npages; n++)
		if (pages[n] != nth_page(pages[0], n))
			break;
	return n;
}

/*
 * How many pages an unhurried batch after one that ended at @last, still
 * pinned, may take by GUP: PIN_FAULTS_UNHURRIED, or the rest of @last's
 * hugetlbfs page, which the next addresses map (a hugetlbfs page is
 * mapped whole) and GUP takes without a fault. For a kernel without the
 * lockless walk, where a batch of 16 pages at a time would cost a 1 GiB
 * page more than its fault. Not for a THP: it may be mapped in part.
 */
static unsigned long unhurried_gup_max(struct page *last)
{
	struct folio *folio = page_folio(last);
	unsigned long left;

	if (!folio_test_hugetlb(folio))
		return PIN_FAULTS_UNHURRIED;
	left = folio_nr_pages(folio) - folio_page_idx(folio, last) - 1;
	return clamp_t(unsigned long, left, PIN_FAULTS_UNHURRIED, PIN_BATCH);
}

/*
 * Release the pin of the zero page at once, so that what stays pinned is
 * exactly what pfn_is_pinned() says, and refuse any other reserved page.
 * A large folio's pages are taken a folio at a time, by the head's flag
 * (a device-dax folio is reserved, a hugetlb or THP one never is), not
 * page by page. Returns the number of pages left pinned, to charge; on
 * -EFAULT nothing of the batch is left pinned.
 */
static long keep_pinnable(struct vfio_async_container *c, struct page **pages,
			  long npages)
{
	long i, n, kept = 0;

	for (i = 0; i < npages; i += n) {
		struct folio *folio = page_folio(pages[i]);

		n = 1;
		if (folio_test_large(folio) && !folio_test_reserved(folio)) {
			n = folio_stretch(pages + i, npages - i);
			kept += n;
			continue;
		}
		if (!PageReserved(pages[i])) {
			kept++;
			continue;
		}
		if (!is_zero_pfn(page_to_pfn(pages[i]))) {
			unpin_user_pages(pages + i, npages - i);
			vfio_async_count(c, VFIO_ASYNC_PINNED_PAGES, kept);
			unpin_page_array(c, pages, i);
			return -EFAULT;
		}
		unpin_user_page(pages[i]);
	}
	vfio_async_count(c, VFIO_ASYNC_PINNED_PAGES, kept);
	return kept;
}

/*
 * Extend @run by @n PFNs from @pfn at @iova, consecutive and inside one
 * chunk, mapping the run first if they do not continue it or begin a
 * chunk.
 */
static int add_pfns(struct vfio_async_container *c, struct vfio_async_dma *dma,
		    struct pfn_run *run, dma_addr_t iova, unsigned long pfn,
		    unsigned long n)
{
	int ret;

	if (run->npages && pfn == run->pfn + run->npages &&
	    pfn_is_pinned(pfn) == pfn_is_pinned(run->pfn) &&
	    !chunk_starts_at(dma, iova)) {
		run->npages += n;
		return 0;
	}
	if (run->npages) {
		ret = map_run(c, dma, run);
		if (ret)
			return ret;
	}
	run->iova = iova;
	run->pfn = pfn;
	run->npages = n;
	return 0;
}

static int add_pfn(struct vfio_async_container *c, struct vfio_async_dma *dma,
		   struct pfn_run *run, dma_addr_t iova, unsigned long pfn)
{
	return add_pfns(c, dma, run, iova, pfn, 1);
}

/*
 * Hand a pinned batch to the run, a stretch of consecutive pages at a
 * time (a huge page is one or two); unpins what it can't use. A stretch
 * is cut where a chunk begins, and holds pinned pages only or the zero
 * page alone (keep_pinnable() left nothing else reserved).
 */
static int add_batch(struct vfio_async_container *c, struct vfio_async_dma *dma,
		     struct pfn_run *run, dma_addr_t iova, struct page **pages,
		     long npages)
{
	long i, j;
	int ret;

	for (i = 0; i < npages; i = j) {
		unsigned long pfn = page_to_pfn(pages[i]);

		for (j = i + 1; j < npages && !is_zero_pfn(pfn); j++)
			if (page_to_pfn(pages[j]) != pfn + (j - i) ||
			    chunk_starts_at(dma, iova + j * PAGE_SIZE) ||
			    is_zero_pfn(pfn + (j - i)))
				break;
		ret = add_pfns(c, dma, run, iova + i * PAGE_SIZE, pfn, j - i);
		if (ret) {
			/* add_pfns() did not take page i, nor those after it. */
			pin_acct(dma, -unpin_page_array(c, pages + i,
							npages - i));
			return ret;
		}
	}
	return 0;
}

/* Hand the PFNs pin_batch() found in device memory to the run. */
static int add_pfnmap_batch(struct vfio_async_container *c,
			    struct vfio_async_dma *dma, struct pfn_run *run,
			    dma_addr_t iova, const unsigned long *pfns,
			    long npages)
{
	long i;
	int ret;

	for (i = 0; i < npages; i++) {
		ret = add_pfn(c, dma, run, iova + i * PAGE_SIZE, pfns[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Stop pinning? A process being killed stops its own map; a background
 * span stops when its container is quiesced, and gives its chunks back;
 * a piece of a split map stops when another piece failed (split.c).
 */
static int pin_interrupted(struct vfio_async_container *c,
			   unsigned int flags, const atomic_t *stop)
{
	if (fatal_signal_pending(current))
		return -EINTR;
	if ((flags & VFIO_ASYNC_PIN_QUIESCE) && READ_ONCE(c->quiesced))
		return -EAGAIN;
	if (stop && atomic_read(stop))
		return -ECANCELED;
	return 0;
}

/*
 * Charge locked_vm for all of [@start_off, @end_off) at once, rather than
 * a batch at a time, each charge taking mmap_lock for writing against the
 * other pinning threads and the vCPUs' faults. Only where every page will
 * be pinned and charged anyway: writable memory of the kinds that may be
 * deferred (no zero page, no device memory), so that nothing is charged
 * for long that type1 would not charge. Returns the pages charged, or 0:
 * then batch by batch, as type1, also where the limit refuses the whole
 * range, so that what is refused is exactly what type1 refuses.
 */
static long prepay(struct vfio_async_dma *dma, size_t start_off,
		   size_t end_off)
{
	long npages = (end_off - start_off) >> PAGE_SHIFT;
	int ret;

	if (dma->deferred || !(dma->prot & IOMMU_WRITE) ||
	    npages <= (long)PIN_BATCH)
		return 0;
	mmap_read_lock(dma->mm);
	ret = vfio_async_check_vaddr(dma->mm, dma->vaddr + start_off,
				     dma->vaddr + end_off - 1, dma->prot, true);
	mmap_read_unlock(dma->mm);
	if (ret || vfio_async_lock_acct(dma, npages))
		return 0;
	return npages;
}

/*
 * Pin and map [@start_off, @end_off) of @dma; on failure, unpins what it
 * pinned and returns how far it mapped in *@done (the caller unmaps that).
 *
 * A batch of cold memory is faulted in and zeroed under mmap_lock, for
 * reading, and the VMM's own mmap() and munmap() wait for it, as does a
 * quiesce (an unmap) for the batch in flight. An unhurried pin (the sweep,
 * what MAP_NEXT named) works for nobody who waits, so it faults in at most
 * PIN_FAULTS_UNHURRIED pages a batch (cutting a batch only once the lock
 * is found contended did not help: the writer has waited for that batch
 * by then), and lets a waiter have the lock before it takes it for the
 * next batch (yield_mmap_lock()). The rest keep whole batches: their
 * callers wait for all of it anyway.
 */
static int pin_map_pages(struct vfio_async_container *c,
			 struct vfio_async_dma *dma, size_t start_off,
			 size_t end_off, unsigned int flags,
			 const atomic_t *stop, struct page **pages,
			 size_t *done)
{
	/* An empty run where mapping starts: what lies below it is mapped. */
	struct pfn_run run = { .iova = dma->iova + start_off, .npages = 0 };
	bool unhurried = flags & VFIO_ASYNC_PIN_UNHURRIED;
	unsigned long max_gup = unhurried ? PIN_FAULTS_UNHURRIED : PIN_BATCH;
	size_t pos = start_off;
	long prepaid, used = 0;
	int ret = 0;

	prepaid = prepay(dma, start_off, end_off);

	while (pos < end_off) {
		unsigned long want;
		long got, charged;
		bool pfnmap;

		if (unhurried)
			yield_mmap_lock(dma->mm);
		ret = pin_interrupted(c, flags, stop);
		if (ret)
			break;

		want = min_t(size_t, PIN_BATCH, (end_off - pos) >> PAGE_SHIFT);
		got = pin_batch(dma, dma->vaddr + pos, want, max_gup, pages,
				&pfnmap);
		if (got < 0) {
			ret = got;
			break;
		}
		if (pfnmap) {
			ret = add_pfnmap_batch(c, dma, &run, dma->iova + pos,
					       (unsigned long *)pages, got);
			if (ret)
				break;
			pos += got << PAGE_SHIFT;
			continue;
		}

		if (unhurried)
			max_gup = unhurried_gup_max(pages[got - 1]);
		charged = keep_pinnable(c, pages, got);
		if (charged < 0) {
			ret = charged;
			break;
		}
		if (prepaid) {
			used += charged;
		} else {
			ret = pin_acct(dma, charged);
			if (ret) {
				unpin_page_array(c, pages, got);
				break;
			}
		}
		ret = add_batch(c, dma, &run, dma->iova + pos, pages, got);
		if (ret)
			break;
		pos += got << PAGE_SHIFT;
		cond_resched();
	}

	if (run.npages) {
		if (ret)
			unpin_run(c, dma, &run);
		else
			ret = map_run(c, dma, &run);
	}
	/*
	 * What was unpinned on the way was credited as it went; what was
	 * prepaid and never pinned (the zero page, device memory, the part
	 * not reached) is credited now.
	 */
	if (prepaid > used)
		vfio_async_lock_acct(dma, used - prepaid);
	/* What is mapped ends where the open run, now gone, began. */
	*done = ret ? (run.iova - dma->iova) : end_off;
	return ret;
}

/*
 * Does a task still use @dma's mm? mm_users alone cannot tell: background
 * threads pinning in turn keep it above zero after the process is gone.
 * With memcg (Debian's kernels) the mm's owner is cleared when its last
 * task leaves it; without, the mapping process's group leader stands in.
 */
static bool mm_still_used(struct vfio_async_dma *dma)
{
#ifdef CONFIG_MEMCG
	return rcu_access_pointer(dma->mm->owner);
#else
	return !(READ_ONCE(dma->task->flags) & PF_EXITING);
#endif
}

/*
 * Let a kernel thread (a worker, a helper of a split map, the channel's)
 * walk @dma's page tables as its own while it pins, for the lockless walk,
 * which walks only current->mm's. Returns whether it must let go after.
 */
static bool adopt_mm(struct vfio_async_dma *dma)
{
	if (!vfio_async_have_pin_present_pages() ||
	    !(current->flags & PF_KTHREAD) || current->mm)
		return false;
	kthread_use_mm(dma->mm);
	return true;
}

/**
 * vfio_async_pin_map - pin and map [@start_off, @end_off) of @dma in every
 *	domain
 * @c: container, with at least one domain
 * @dma: the mapping, the range owned by the caller as a span in flight
 * @start_off: offset in @dma, page aligned
 * @end_off: offset in @dma, page aligned, exclusive, at most @dma->size
 * @flags: VFIO_ASYNC_PIN_QUIESCE: not the mapping process's own call: give
 *	   up (-EAGAIN) as soon as the container is quiesced;
 *	   VFIO_ASYNC_PIN_UNHURRIED: nobody waits for it: let the mapping
 *	   process have its mmap_lock first (see pin_map_pages())
 * @stop: or NULL; give up (-ECANCELED) as soon as it is set
 *
 * All or nothing: on failure nothing of the range stays mapped or pinned.
 * Page tables faulted in on the way are charged to the mapping process's
 * memory cgroup, whoever pins.
 */
int vfio_async_pin_map(struct vfio_async_container *c,
		       struct vfio_async_dma *dma, size_t start_off,
		       size_t end_off, unsigned int flags, const atomic_t *stop)
{
	struct mem_cgroup *memcg, *old_memcg;
	struct page **pages;
	size_t done = start_off;
	int ret;

	if (!mmget_not_zero(dma->mm))
		return -ESRCH;
	if (!mm_still_used(dma)) {
		mmput(dma->mm);
		return -ESRCH;
	}

	pages = (struct page **)__get_free_page(GFP_KERNEL);
	if (pages) {
		bool adopted = adopt_mm(dma);

		memcg = get_mem_cgroup_from_mm(dma->mm);
		old_memcg = set_active_memcg(memcg);
		ret = pin_map_pages(c, dma, start_off, end_off, flags, stop,
				    pages, &done);
		set_active_memcg(old_memcg);
		mem_cgroup_put(memcg);
		if (adopted)
			kthread_unuse_mm(dma->mm);
		free_page((unsigned long)pages);
	} else {
		ret = -ENOMEM;
	}
	mmput(dma->mm);

	if (ret && done > start_off)
		vfio_async_unmap_unpin(c, dma, start_off, done);
	return ret;
}

/*
 * Unpin the runs of @batch, all unmapped and flushed from the IOTLB;
 * returns how many pages it released, for the caller to credit.
 */
static long unpin_batch_runs(struct vfio_async_container *c,
			     struct vfio_async_dma *dma,
			     struct unpin_batch *batch)
{
	long released = 0;
	unsigned int i;

	for (i = 0; i < batch->nr; i++) {
		released += unpin_pfns(c, batch->runs[i].pfn,
				       batch->runs[i].npages,
				       dma->prot & IOMMU_WRITE);
		cond_resched();
	}
	batch->nr = 0;
	return released;
}

static void unpin_batch_init(struct unpin_batch *batch)
{
	batch->nr = 0;
	batch->runs = (struct pfn_run *)__get_free_page(GFP_KERNEL |
							__GFP_NOWARN);
	if (batch->runs) {
		batch->max = PAGE_SIZE / sizeof(*batch->runs);
	} else {
		batch->runs = batch->local;
		batch->max = UNPIN_BATCH_MIN;
	}
}

static void unpin_batch_free(struct unpin_batch *batch)
{
	if (batch->runs != batch->local)
		free_page((unsigned long)batch->runs);
}

/* Length of the physically contiguous mapping at @iova, up to @max. */
static size_t contiguous_len(struct iommu_domain *domain, dma_addr_t iova,
			     phys_addr_t phys, size_t max)
{
	size_t len = PAGE_SIZE;

	while (len < max &&
	       iommu_iova_to_phys(domain, iova + len) == phys + len) {
		len += PAGE_SIZE;
		/* A 1 GiB chunk is 262144 lookups. */
		if (IS_ALIGNED(len, SZ_2M))
			cond_resched();
	}
	return len;
}

/*
 * Read the runs of [*@off, @end_off) of @dma into @batch until it is full,
 * at a chunk's end (so that no window splits an IOMMU page) or a hole, and
 * count them out of every domain; *@off ends after the last run read.
 * False if it stopped at a hole, which never happens (all is mapped).
 */
static bool read_runs(struct vfio_async_container *c,
		      struct iommu_domain *domain, struct vfio_async_dma *dma,
		      size_t *off, size_t end_off, struct unpin_batch *batch)
{
	size_t stop = *off + min(end_off - *off,
				 to_chunk_end(dma, dma->iova + *off));
	struct vfio_async_domain *d;

	while (*off < stop && batch->nr < batch->max) {
		struct pfn_run *run = &batch->runs[batch->nr];
		dma_addr_t iova = dma->iova + *off;
		phys_addr_t phys = iommu_iova_to_phys(domain, iova);
		size_t len;

		if (!phys)
			return false;
		len = contiguous_len(domain, iova, phys, stop - *off);
		list_for_each_entry(d, &c->domains, next)
			count_pages(c, d, iova, phys, len, -1);
		run->iova = iova;
		run->pfn = PHYS_PFN(phys);
		run->npages = len >> PAGE_SHIFT;
		batch->nr++;
		*off += len;
	}
	return true;
}

/*
 * A domain unmapped only the first @unmapped bytes of a window at @iova
 * whose runs are @batch's from @first: what it kept stays pinned, a leak
 * rather than a freed page a device still reaches, and counted again in
 * every domain (after the warning, the counts may be off).
 */
static void keep_still_mapped(struct vfio_async_container *c,
			      struct unpin_batch *batch, unsigned int first,
			      dma_addr_t iova, size_t unmapped)
{
	struct vfio_async_domain *d;
	unsigned int i;

	for (i = first; i < batch->nr; i++) {
		struct pfn_run *run = &batch->runs[i];
		size_t at = run->iova - iova, len = run->npages << PAGE_SHIFT;
		size_t gone = at < unmapped ? min(len, unmapped - at) : 0;

		if (gone == len)
			continue;
		list_for_each_entry(d, &c->domains, next)
			count_pages(c, d, run->iova + gone,
				    PFN_PHYS(run->pfn) + gone, len - gone, 1);
		run->npages = gone >> PAGE_SHIFT;
	}
}

/*
 * Unmap @len bytes at @iova from domain @d, one call per step of a single
 * page size (cut where a larger page could begin), each flushed from the
 * IOTLB on its own: VT-d frees the page tables a call empties at the next
 * sync, and within one gather a step of another size runs that sync
 * before its own range is flushed. Returns how much was unmapped.
 */
static size_t unmap_steps(struct vfio_async_domain *d, dma_addr_t iova,
			  size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t size, step, unmapped;

		step = first_step(d->pgsizes, iova + done, iova + done,
				  len - done, &size);
		if (!step)
			step = len - done;
		unmapped = iommu_unmap(d->domain, iova + done, step);
		done += min(unmapped, step);
		if (unmapped != step)
			break;
	}
	return done;
}

/*
 * Unmap @len bytes at @iova from every domain; returns the least any of
 * them unmapped.
 */
static size_t unmap_window(struct vfio_async_container *c, dma_addr_t iova,
			   size_t len)
{
	struct vfio_async_domain *d;
	size_t least = len;

	list_for_each_entry(d, &c->domains, next) {
		size_t unmapped = unmap_steps(d, iova, len);

		if (WARN_ONCE(unmapped != len,
			      "IOVA 0x%llx: unmapped 0x%zx of 0x%zx\n",
			      (u64)iova, unmapped, len))
			least = min(least, unmapped);
	}
	return least;
}

/*
 * A page at @iova the record domain does not map, which never happens:
 * the other domains may still map it. Its PFN, if pinned, is lost.
 */
static void unmap_hole(struct vfio_async_container *c, dma_addr_t iova)
{
	struct vfio_async_domain *d;

	d = list_first_entry(&c->domains, struct vfio_async_domain, next);
	list_for_each_entry_continue(d, &c->domains, next)
		iommu_unmap(d->domain, iova, PAGE_SIZE);
}

/*
 * Unmap [@start_off, @end_off) of @dma from every domain, and unpin; its
 * runs leave the page counts of every domain. The runs of a window (up to
 * a chunk's end or a batch's worth) are read from the record domain first
 * and unmapped with one call per domain: a call per run made unmapping
 * cold 4 KiB memory over 1.5x slower. locked_vm is credited once, at the
 * end: each credit takes the mmap_lock for writing.
 */
static void unmap_unpin_runs(struct vfio_async_container *c,
			     struct iommu_domain *record,
			     struct vfio_async_dma *dma, size_t start_off,
			     size_t end_off)
{
	struct unpin_batch batch;
	size_t off = start_off;
	long released = 0;

	unpin_batch_init(&batch);
	while (off < end_off) {
		unsigned int first = batch.nr;
		size_t win_off = off, len, unmapped;
		bool whole;

		whole = read_runs(c, record, dma, &off, end_off, &batch);
		len = off - win_off;
		if (len) {
			unmapped = unmap_window(c, dma->iova + win_off, len);
			if (unmapped < len)
				keep_still_mapped(c, &batch, first,
						  dma->iova + win_off, unmapped);
		}
		if (WARN_ON_ONCE(!whole)) {
			unmap_hole(c, dma->iova + off);
			off += PAGE_SIZE;
		}
		if (batch.nr == batch.max)
			released += unpin_batch_runs(c, dma, &batch);
		cond_resched();
	}
	released += unpin_batch_runs(c, dma, &batch);
	unpin_batch_free(&batch);
	pin_acct(dma, -released);
}

/**
 * vfio_async_unmap_unpin - undo vfio_async_pin_map() of [@start_off,
 *	@end_off): unmap it from every domain, unpin its pages and credit
 *	locked_vm
 * @c: container
 * @dma: the mapping
 * @start_off: offset in @dma
 * @end_off: offset in @dma, exclusive; all of the range must be mapped
 */
void vfio_async_unmap_unpin(struct vfio_async_container *c,
			    struct vfio_async_dma *dma, size_t start_off,
			    size_t end_off)
{
	struct vfio_async_domain *record;

	record = list_first_entry(&c->domains, struct vfio_async_domain, next);
	unmap_unpin_runs(c, record->domain, dma, start_off, end_off);
}

/*
 * Copy the mapping of [@start_off, @end_off) of @dma from @from into @to,
 * run by run as it was mapped, and count its pages. On failure nothing of
 * the range is left in @to; its counts are the caller's to forget.
 */
int vfio_async_copy_mappings(struct vfio_async_container *c,
			     struct iommu_domain *from,
			     struct vfio_async_domain *to,
			     struct vfio_async_dma *dma, size_t start_off,
			     size_t end_off)
{
	size_t off = start_off;
	int ret;

	while (off < end_off) {
		dma_addr_t iova = dma->iova + off;
		phys_addr_t phys = iommu_iova_to_phys(from, iova);
		size_t len;

		if (WARN_ON_ONCE(!phys)) {
			ret = -EFAULT;
			goto err;
		}
		len = min(end_off - off, to_chunk_end(dma, iova));
		len = contiguous_len(from, iova, phys, len);
		ret = vfio_async_iommu_map(to->domain, iova, phys, len,
					   dma->prot | IOMMU_CACHE);
		if (ret)
			goto err;
		count_pages(c, to, iova, phys, len, 1);
		off += len;
		cond_resched();
	}
	return 0;
err:
	if (off > start_off)
		iommu_unmap(to->domain, dma->iova + start_off, off - start_off);
	return ret;
}
