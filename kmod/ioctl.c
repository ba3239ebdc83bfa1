// SPDX-License-Identifier: GPL-2.0-only
/*
 * The container ioctls. The type1 ones keep type1v2's structures, argsz
 * rules and errnos exactly, so a VMM cannot tell the backends apart by them.
 */
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "vfio_async.h"

static long check_extension(struct vfio_async_container *c,
			    unsigned long ext)
{
	switch (ext) {
	case VFIO_ASYNC_IOMMU:
	case VFIO_ASYNC_DEFERRED_MAP:
	case VFIO_ASYNC_BALLOON_CHANNEL:
	case VFIO_UNMAP_ALL:
		return 1;
	case VFIO_TYPE1v2_IOMMU:
		return vfio_async_type1v2_dropin;
	case VFIO_DMA_CC_IOMMU:
		return c && vfio_async_all_domains_enforce_cc(c);
	default:
		return 0;
	}
}

static int add_dma_avail_cap(struct vfio_async_container *c,
			     struct vfio_info_cap *caps)
{
	struct vfio_iommu_type1_info_dma_avail cap = {
		.header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
		.header.version = 1,
		.avail = c->dma_avail,
	};

	return vfio_info_add_capability(caps, &cap.header, sizeof(cap));
}

static int add_iova_range_cap(struct vfio_async_container *c,
			      struct vfio_info_cap *caps)
{
	struct vfio_iommu_type1_info_cap_iova_range *cap;
	struct vfio_async_iova_range *r;
	unsigned int nr = 0, i = 0;
	size_t size;
	int ret;

	list_for_each_entry(r, &c->iova_ranges, next)
		nr++;
	/* No domain yet: no ranges to report, as with type1. */
	if (!nr)
		return 0;

	size = struct_size(cap, iova_ranges, nr);
	cap = kzalloc(size, GFP_KERNEL);
	if (!cap)
		return -ENOMEM;

	cap->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
	cap->header.version = 1;
	cap->nr_iovas = nr;
	list_for_each_entry(r, &c->iova_ranges, next) {
		cap->iova_ranges[i].start = r->start;
		cap->iova_ranges[i].end = r->last;
		i++;
	}
	ret = vfio_info_add_capability(caps, &cap->header, size);
	kfree(cap);
	return ret;
}

static int get_info(struct vfio_async_container *c, void __user *arg)
{
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct vfio_iommu_type1_info info;
	size_t minsz, capsz;
	int ret;

	minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
	capsz = offsetofend(struct vfio_iommu_type1_info, cap_offset);

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	/* cap_offset came later: old callers' shorter argsz still works. */
	if (info.argsz >= capsz) {
		minsz = capsz;
		info.cap_offset = 0;
	}

	mutex_lock(&c->lock);
	info.flags = VFIO_IOMMU_INFO_PGSIZES;
	info.iova_pgsizes = c->pgsize_bitmap;
	ret = add_dma_avail_cap(c, &caps);
	if (!ret)
		ret = add_iova_range_cap(c, &caps);
	mutex_unlock(&c->lock);
	if (ret)
		goto out;

	if (caps.size) {
		info.flags |= VFIO_IOMMU_INFO_CAPS;
		if (info.argsz < sizeof(info) + caps.size) {
			info.argsz = sizeof(info) + caps.size;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user(arg + sizeof(info), caps.buf,
					 caps.size)) {
				ret = -EFAULT;
				goto out;
			}
			info.cap_offset = sizeof(info);
		}
	}
	if (copy_to_user(arg, &info, minsz))
		ret = -EFAULT;
out:
	kfree(caps.buf);
	return ret;
}

/* What a map request asks for, whichever ioctl it came through. */
struct map_request {
	u64 vaddr;
	u64 iova;
	u64 size;
	int prot;
	bool deferred;
};

static int check_map_args(struct vfio_async_container *c,
			  struct map_request *req)
{
	size_t pgsize = vfio_async_min_pgsize(c);

	if (!req->prot)
		return -EINVAL;
	if (!req->size || (req->size | req->iova | req->vaddr) & (pgsize - 1))
		return -EINVAL;
	/*
	 * The u64 fields must fit the kernel's types, and their last byte
	 * must not wrap; a range may end at the very top, so from here on
	 * only inclusive ends are computed (see "Naming" in vfio_async.h).
	 */
	if (req->size != (size_t)req->size ||
	    req->iova != (dma_addr_t)req->iova ||
	    req->vaddr != (unsigned long)req->vaddr)
		return -EINVAL;
	if (req->iova + req->size - 1 < req->iova ||
	    req->vaddr + req->size - 1 < req->vaddr)
		return -EINVAL;
	if (vfio_async_find_dma(c, req->iova, req->size))
		return -EEXIST;
	if (!c->dma_avail)
		return -ENOSPC;
	if (!vfio_async_iova_usable(c, req->iova, req->iova + req->size - 1))
		return -EINVAL;
	return 0;
}

/*
 * A deferred range is pinned later, by threads every container shares, so
 * check now that all of it is mapped with the access asked for, and with
 * memory those threads can fault in without waiting on user space. Either
 * way, learn the pages behind it, which set its chunk size: a deferred
 * mapping's chunk is its smallest page (a huge chunk only where every page
 * is one), one made at once is shared out by its largest.
 */
static int look_at_vaddr_range(struct map_request *req,
			       unsigned int *page_shift)
{
	unsigned long last = req->vaddr + req->size - 1;
	struct mm_struct *mm = current->mm;
	unsigned int smallest, largest;
	int ret = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	if (req->deferred)
		ret = vfio_async_check_vaddr(mm, req->vaddr, last, req->prot,
					     true);
	vfio_async_page_shifts(mm, req->vaddr, last, &smallest, &largest);
	mmap_read_unlock(mm);
	*page_shift = req->deferred ? smallest : largest;
	return ret;
}

/* A new deferred mapping: charge it all now, then leave it to the threads. */
static int add_deferred(struct vfio_async_container *c,
			struct vfio_async_dma *dma)
{
	int ret;

	ret = vfio_async_lock_acct(dma, dma->size >> PAGE_SHIFT);
	if (ret)
		return ret;

	c->dma_avail--;
	spin_lock(&c->chunk_lock);
	vfio_async_count(c, VFIO_ASYNC_DEFERRED_BYTES, dma->size);
	vfio_async_count(c, VFIO_ASYNC_PENDING_BYTES, dma->size);
	spin_unlock(&c->chunk_lock);
	vfio_async_link_dma(c, dma);
	vfio_async_queue_work(c);
	return 0;
}

/*
 * A new mapping made at once. It is linked under the lock, then pinned and
 * mapped by the caller with the lock dropped, as a span in flight
 * (map_sync()): the other tenants' workers and this VMM's other ioctls do
 * not wait for it; an unmap, attach or detach does, as with type1.
 * Returns true when there is something to map; without a domain yet,
 * attach will map it.
 */
static bool add_sync(struct vfio_async_container *c, struct vfio_async_dma *dma,
		     struct vfio_async_span *span)
{
	vfio_async_link_dma(c, dma);
	c->dma_avail--;
	vfio_async_count(c, VFIO_ASYNC_SYNC_BYTES, dma->size);
	if (list_empty(&c->domains))
		return false;
	vfio_async_begin_sync(c, dma, span);
	return true;
}

/* Pin and map a span add_sync() gave; lock not held. */
static int map_sync(struct vfio_async_container *c,
		    struct vfio_async_span *span)
{
	int ret = vfio_async_map_span(c, span);

	if (!ret) {
		vfio_async_complete_span(c, span, 0);
		return 0;
	}
	mutex_lock(&c->lock);
	vfio_async_abort_sync(c, span);
	mutex_unlock(&c->lock);
	return ret;
}

static int do_map(struct vfio_async_container *c, struct map_request *req)
{
	struct vfio_async_span span;
	struct vfio_async_dma *dma;
	unsigned int page_shift;
	bool to_map = false;
	int ret;

	mutex_lock(&c->lock);
	ret = check_map_args(c, req) ?: look_at_vaddr_range(req, &page_shift);
	if (ret)
		goto out_unlock;

	dma = vfio_async_dma_alloc(c, req->iova, req->size, req->vaddr,
				   req->prot, req->deferred, page_shift);
	if (!dma) {
		ret = -ENOMEM;
		goto out_unlock;
	}

	if (req->deferred) {
		ret = add_deferred(c, dma);
		if (ret)
			vfio_async_dma_free(dma);	/* never linked */
	} else {
		to_map = add_sync(c, dma, &span);
	}
out_unlock:
	mutex_unlock(&c->lock);
	return to_map ? map_sync(c, &span) : ret;
}

static int map_dma(struct vfio_async_container *c, void __user *arg)
{
	struct vfio_iommu_type1_dma_map map;
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
	struct map_request req = { .prot = 0 };

	if (copy_from_user(&map, arg, minsz))
		return -EFAULT;
	if (map.argsz < minsz ||
	    map.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE))
		return -EINVAL;

	if (map.flags & VFIO_DMA_MAP_FLAG_READ)
		req.prot |= IOMMU_READ;
	if (map.flags & VFIO_DMA_MAP_FLAG_WRITE)
		req.prot |= IOMMU_WRITE;
	req.vaddr = map.vaddr;
	req.iova = map.iova;
	req.size = map.size;
	return do_map(c, &req);
}

/*
 * Copy in an extensible structure: @minsz is its first version's size.
 * Shorter is EINVAL; longer with non-zero bytes we do not know, or longer
 * than a page, is E2BIG.
 */
static int copy_args_from_user(void *dst, size_t size, size_t minsz,
			       void __user *arg)
{
	u32 argsz;

	if (get_user(argsz, (u32 __user *)arg))
		return -EFAULT;
	if (argsz < minsz)
		return -EINVAL;
	/* Beyond a page it cannot be a structure; do not scan for zeroes. */
	if (argsz > PAGE_SIZE)
		return -E2BIG;
	return copy_struct_from_user(dst, size, arg, argsz);
}

static int map_dma_deferred(struct vfio_async_container *c, void __user *arg)
{
	const u32 known = VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE |
			  VFIO_ASYNC_MAP_FLAG_NOW;
	struct vfio_iommu_async_dma_map map;
	struct map_request req = { .prot = 0 };
	int ret;

	ret = copy_args_from_user(&map, sizeof(map), sizeof(map), arg);
	if (ret)
		return ret;
	if (map.flags & ~known)
		return -EINVAL;

	if (map.flags & VFIO_ASYNC_MAP_FLAG_READ)
		req.prot |= IOMMU_READ;
	if (map.flags & VFIO_ASYNC_MAP_FLAG_WRITE)
		req.prot |= IOMMU_WRITE;
	req.deferred = !(map.flags & VFIO_ASYNC_MAP_FLAG_NOW);
	req.vaddr = map.vaddr;
	req.iova = map.iova;
	req.size = map.size;
	return do_map(c, &req);
}

static int get_status(struct vfio_async_container *c, void __user *arg)
{
	/* released_bytes came later: older callers get the older size. */
	const size_t v1 = offsetofend(struct vfio_iommu_async_status,
				      first_error_iova);
	struct vfio_iommu_async_status st;
	struct vfio_async_counters *n = &c->counters;
	int ret;

	ret = copy_args_from_user(&st, sizeof(st), v1, arg);
	if (ret)
		return ret;
	if (st.flags)
		return -EINVAL;

	/* Under chunk_lock, so that the four byte counts add up. */
	spin_lock(&c->chunk_lock);
	st.deferred_bytes = atomic_long_read(&n->v[VFIO_ASYNC_DEFERRED_BYTES]);
	st.mapped_bytes = atomic_long_read(&n->v[VFIO_ASYNC_MAPPED_BYTES]);
	st.pending_bytes = atomic_long_read(&n->v[VFIO_ASYNC_PENDING_BYTES]);
	st.failed_bytes = atomic_long_read(&n->v[VFIO_ASYNC_FAILED_BYTES]);
	st.sync_bytes = atomic_long_read(&n->v[VFIO_ASYNC_SYNC_BYTES]);
	st.pinned_pages = atomic_long_read(&n->v[VFIO_ASYNC_PINNED_PAGES]);
	st.first_error = c->first_error;
	st.first_error_iova = c->first_error_iova;
	st.released_bytes = atomic_long_read(&n->v[VFIO_ASYNC_RELEASED_BYTES]);
	spin_unlock(&c->chunk_lock);

	return copy_to_user(arg, &st, min_t(size_t, st.argsz, sizeof(st))) ?
	       -EFAULT : 0;
}

static int check_unmap_args(struct vfio_async_container *c,
			    struct vfio_iommu_type1_dma_unmap *unmap)
{
	size_t pgsize = vfio_async_min_pgsize(c);
	struct vfio_async_dma *dma;
	u64 last;

	if (unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL)
		return unmap->iova || unmap->size ? -EINVAL : 0;

	if (!unmap->size || (unmap->iova | unmap->size) & (pgsize - 1))
		return -EINVAL;
	last = unmap->iova + unmap->size - 1;
	if (last < unmap->iova || unmap->size > SIZE_MAX)
		return -EINVAL;

	/* type1v2: a mapping is unmapped whole, never split. */
	dma = vfio_async_find_dma(c, unmap->iova, 1);
	if (dma && dma->iova != unmap->iova)
		return -EINVAL;
	dma = vfio_async_find_dma(c, last, 1);
	if (dma && dma->iova + dma->size - 1 != last)
		return -EINVAL;
	return 0;
}

/* How many mappings an unmap looks through before it just quiesces. */
#define UNMAP_LOOK_MAX	16

/*
 * Must an unmap of [@start, @last] wait for the spans in flight? Not when
 * every mapping in it was made at once and is mapped whole: nothing of
 * those can be in flight, and other mappings' spans do not depend on
 * them, so such an unmap waits neither for another thread's MAP_DMA nor
 * for the background's batches. Lock held.
 */
static bool unmap_must_quiesce(struct vfio_async_container *c,
			       dma_addr_t start, dma_addr_t last)
{
	struct vfio_async_dma *dma;
	unsigned int n = 0;
	bool must = false;

	spin_lock(&c->chunk_lock);
	dma = vfio_async_first_dma_in(c, start, last);
	while (dma && dma->iova <= last) {
		struct rb_node *next = rb_next(&dma->node);

		if (dma->deferred || ++n > UNMAP_LOOK_MAX ||
		    !bitmap_full(dma->mapped, dma->nchunks)) {
			must = true;
			break;
		}
		dma = next ? rb_entry(next, struct vfio_async_dma, node) : NULL;
	}
	spin_unlock(&c->chunk_lock);
	return must;
}

static int do_unmap(struct vfio_async_container *c,
		    struct vfio_iommu_type1_dma_unmap *unmap)
{
	dma_addr_t start = unmap->iova, last = unmap->iova + unmap->size - 1;
	struct vfio_async_dma *dma;
	u64 unmapped = 0;
	bool quiesce;
	int ret;

	mutex_lock(&c->lock);
	/* Spans in flight must land before their mapping can go. */
	quiesce = (unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL) || last < start ||
		  unmap_must_quiesce(c, start, last);
	ret = quiesce ? vfio_async_quiesce_killable(c) : 0;
	if (ret) {
		mutex_unlock(&c->lock);
		unmap->size = 0;
		return ret;
	}
	ret = check_unmap_args(c, unmap);
	if (ret)
		goto out;

	if (unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		start = 0;
		last = (dma_addr_t)-1;
	}
	while ((dma = vfio_async_first_dma_in(c, start, last))) {
		unmapped += dma->size;
		vfio_async_remove_dma(c, dma);
	}
out:
	if (quiesce)
		vfio_async_resume(c);
	mutex_unlock(&c->lock);
	unmap->size = unmapped;
	return ret;
}

static int unmap_dma(struct vfio_async_container *c, void __user *arg)
{
	struct vfio_iommu_type1_dma_unmap unmap;
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
	int ret;

	if (copy_from_user(&unmap, arg, minsz))
		return -EFAULT;
	/* Dirty tracking and vaddr updates are not offered. */
	if (unmap.argsz < minsz || unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL)
		return -EINVAL;

	ret = do_unmap(c, &unmap);
	if (copy_to_user(arg, &unmap, minsz))
		return -EFAULT;
	return ret;
}

static int channel_create(struct vfio_async_container *c, void __user *arg)
{
	struct vfio_iommu_async_channel_create cr;
	int ret;

	ret = copy_args_from_user(&cr, sizeof(cr), sizeof(cr), arg);
	return ret ? ret : vfio_async_channel_create(c, &cr, arg);
}

static int map_now(struct vfio_async_container *c, void __user *arg)
{
	struct vfio_iommu_async_map_now mn;
	int ret;

	ret = copy_args_from_user(&mn, sizeof(mn), sizeof(mn), arg);
	if (ret)
		return ret;
	ret = vfio_async_map_now(c, &mn);
	/* Where it went wrong: 0 for errors of no range in particular. */
	if (ret && put_user(mn.error_iova, (u64 __user *)(arg +
			    offsetof(struct vfio_iommu_async_map_now,
				     error_iova))))
		return -EFAULT;
	return ret;
}

long vfio_async_ioctl(void *iommu_data, unsigned int cmd, unsigned long arg)
{
	struct vfio_async_container *c = iommu_data;
	void __user *uarg = (void __user *)arg;

	if (cmd == VFIO_CHECK_EXTENSION)
		return check_extension(c, arg);
	if (!c)
		return -EINVAL;

	switch (cmd) {
	case VFIO_IOMMU_GET_INFO:
		return get_info(c, uarg);
	case VFIO_IOMMU_MAP_DMA:
		return map_dma(c, uarg);
	case VFIO_IOMMU_UNMAP_DMA:
		return unmap_dma(c, uarg);
	case VFIO_IOMMU_MAP_DMA_DEFERRED:
		return map_dma_deferred(c, uarg);
	case VFIO_IOMMU_ASYNC_GET_STATUS:
		return get_status(c, uarg);
	case VFIO_IOMMU_ASYNC_CHANNEL_CREATE:
		return channel_create(c, uarg);
	case VFIO_IOMMU_ASYNC_MAP_NOW:
		return map_now(c, uarg);
	default:
		return -ENOTTY;
	}
}
