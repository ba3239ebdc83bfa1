// SPDX-License-Identifier: GPL-2.0-only
/*
 * The container: the backend's state behind one VFIO container, its IOMMU
 * domains and the groups attached to them.
 *
 * A group joins an existing domain when the IOMMU driver accepts it there,
 * else it gets a new domain, which is given every existing mapping (copied
 * from the first domain, or pinned afresh when it is the first). When the
 * last domain goes, every mapping is unpinned and removed, as in type1.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/slab.h>
#include <linux/vfio.h>

#include "compat.h"
#include "vfio_async.h"

void *vfio_async_open(unsigned long type)
{
	static atomic_t next_id = ATOMIC_INIT(0);
	struct vfio_async_container *c;
	int ret;

	if (type != VFIO_ASYNC_IOMMU &&
	    !(type == VFIO_TYPE1v2_IOMMU && vfio_async_type1v2_dropin))
		return ERR_PTR(-EINVAL);

	c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);
	if (!c)
		return ERR_PTR(-ENOMEM);

	kref_init(&c->ref);
	mutex_init(&c->lock);
	spin_lock_init(&c->chunk_lock);
	INIT_LIST_HEAD(&c->domains);
	INIT_LIST_HEAD(&c->iova_ranges);
	INIT_LIST_HEAD(&c->work_node);
	init_waitqueue_head(&c->idle);
	INIT_LIST_HEAD(&c->urgent);
	INIT_LIST_HEAD(&c->ahead);
	c->dma_tree = RB_ROOT;
	c->sweep = RB_ROOT_CACHED;
	c->waits = RB_ROOT_CACHED;
	c->dma_avail = vfio_async_dma_entry_limit;
	c->pgsize_bitmap = PAGE_MASK;
	c->id = atomic_inc_return(&next_id);
	c->owner_pid = task_tgid_nr(current);
	get_task_comm(c->owner_comm, current);

	ret = vfio_async_container_sysfs_add(c);
	if (ret) {
		vfio_async_container_put(c);
		return ERR_PTR(ret);
	}
	atomic_long_inc(&vfio_async_nr_containers);
	return c;
}

static void container_free(struct kref *ref)
{
	struct vfio_async_container *c =
		container_of(ref, struct vfio_async_container, ref);

	mutex_destroy(&c->lock);
	kfree(c);
}

void vfio_async_container_get(struct vfio_async_container *c)
{
	kref_get(&c->ref);
}

/*
 * The last reference goes in release() or in a worker thread, both of
 * them module code that VFIO's reference or kthread_stop() outlives.
 */
void vfio_async_container_put(struct vfio_async_container *c)
{
	kref_put(&c->ref, container_free);
}

/* Stop new claims; chunk_lock orders it against them. */
static void quiesce_begin(struct vfio_async_container *c)
{
	lockdep_assert_held(&c->lock);

	spin_lock(&c->chunk_lock);
	c->quiesced++;
	spin_unlock(&c->chunk_lock);
}

static bool no_span_in_flight(struct vfio_async_container *c)
{
	bool idle;

	spin_lock(&c->chunk_lock);
	idle = !c->in_flight;
	spin_unlock(&c->chunk_lock);
	return idle;
}

/**
 * vfio_async_quiesce - stop background work on @c and wait for the spans
 *	in flight, before changing what they rely on
 * @c: container, lock held; dropped while waiting
 *
 * Undone by vfio_async_resume(); calls nest. A background span gives its
 * chunks back at its next batch, so the wait is one batch of pages for
 * the background; a map in progress in another thread of the VMM is
 * waited for whole, as type1 would. For paths that cannot fail (detach,
 * release); ioctls use vfio_async_quiesce_killable().
 */
void vfio_async_quiesce(struct vfio_async_container *c)
{
	quiesce_begin(c);
	while (!no_span_in_flight(c)) {
		mutex_unlock(&c->lock);
		wait_event(c->idle, no_span_in_flight(c));
		mutex_lock(&c->lock);
	}
}

/**
 * vfio_async_quiesce_killable - vfio_async_quiesce(), unless the caller
 *	is killed while it waits
 * @c: container, lock held; dropped while waiting
 *
 * Returns 0, quiesced (undo with vfio_async_resume()), or -EINTR, not
 * quiesced.
 */
int vfio_async_quiesce_killable(struct vfio_async_container *c)
{
	quiesce_begin(c);
	while (!no_span_in_flight(c)) {
		int ret;

		mutex_unlock(&c->lock);
		ret = wait_event_killable(c->idle, no_span_in_flight(c));
		mutex_lock(&c->lock);
		if (ret) {
			vfio_async_resume(c);
			return ret;
		}
	}
	return 0;
}

void vfio_async_resume(struct vfio_async_container *c)
{
	bool queue;

	lockdep_assert_held(&c->lock);

	spin_lock(&c->chunk_lock);
	queue = !--c->quiesced;
	spin_unlock(&c->chunk_lock);
	if (queue && vfio_async_has_pending(c))
		vfio_async_queue_work(c);
}

/*
 * Unmap, unpin and forget @dma; lock held, and quiesced, or @dma in flight
 * (its own span), or made at once and mapped whole (nothing of it can be
 * in flight).
 */
void vfio_async_remove_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma)
{
	vfio_async_forget_waits(c, dma);
	vfio_async_unmap_all(c, dma);
	vfio_async_forget_dma(c, dma);
	vfio_async_unlink_dma(c, dma);
	vfio_async_dma_free(dma);
	c->dma_avail++;
}

static void remove_all_dmas(struct vfio_async_container *c)
{
	struct rb_node *node;

	while ((node = rb_first(&c->dma_tree)))
		vfio_async_remove_dma(c, rb_entry(node, struct vfio_async_dma,
						  node));
}

void vfio_async_release(void *iommu_data)
{
	struct vfio_async_container *c = iommu_data;

	/* VFIO detaches every group before it releases the container. */
	mutex_lock(&c->lock);
	vfio_async_quiesce(c);	/* for good: never resumed */
	/*
	 * A channel may outlive the container: it finds it gone. Before the
	 * dequeue, so that a channel's vfio_async_queue_work() racing this
	 * either is undone by it or sees the flag: the work list holds no
	 * reference, and the channel's may be the last.
	 */
	WRITE_ONCE(c->gone, true);
	vfio_async_dequeue_work(c);
	WARN_ON(!list_empty(&c->domains));
	remove_all_dmas(c);
	vfio_async_free_iova_ranges(&c->iova_ranges);
	mutex_unlock(&c->lock);

	atomic_long_dec(&vfio_async_nr_containers);
	/* No sysfs reader runs once this returns; a worker may still hold @c. */
	vfio_async_container_sysfs_del(c);
	vfio_async_container_put(c);
}

static struct vfio_async_group *find_group(struct vfio_async_container *c,
					   struct iommu_group *iommu_group,
					   struct vfio_async_domain **domain)
{
	struct vfio_async_domain *d;
	struct vfio_async_group *g;

	list_for_each_entry(d, &c->domains, next) {
		list_for_each_entry(g, &d->groups, next) {
			if (g->iommu_group == iommu_group) {
				if (domain)
					*domain = d;
				return g;
			}
		}
	}
	return NULL;
}

static int first_dev_domain_alloc(struct device *dev, void *data)
{
	struct iommu_domain **domain = data;

	*domain = vfio_async_domain_alloc(dev);
	return 1; /* the first device is enough */
}

/* Set up the MSI window for IOMMUs whose MSIs go through the page table. */
static int get_sw_msi_cookie(struct vfio_async_domain *d,
			     struct iommu_group *iommu_group)
{
	struct iommu_resv_region *region;
	bool sw_msi = false;
	phys_addr_t base = 0;
	LIST_HEAD(resv);
	int ret;

	ret = iommu_get_group_resv_regions(iommu_group, &resv);
	if (ret)
		return ret;
	list_for_each_entry(region, &resv, list) {
		if (region->type == IOMMU_RESV_SW_MSI) {
			sw_msi = true;
			base = region->start;
		}
	}
	iommu_put_resv_regions(NULL, &resv);

	if (!sw_msi)
		return 0;
	ret = iommu_get_msi_cookie(d->domain, base);
	return ret == -ENODEV ? 0 : ret;
}

static void update_pgsize_bitmap(struct vfio_async_container *c)
{
	struct vfio_async_domain *d;
	unsigned long bitmap = PAGE_MASK;

	list_for_each_entry(d, &c->domains, next)
		bitmap &= d->domain->pgsize_bitmap;

	/* Sub-page IOMMU pages can still map whole CPU pages. */
	if (bitmap & ~PAGE_MASK) {
		bitmap &= PAGE_MASK;
		bitmap |= PAGE_SIZE;
	}
	c->pgsize_bitmap = bitmap ? bitmap : PAGE_SIZE;
}

/*
 * Put @g straight into an existing domain of the driver behind @ops, if
 * the driver accepts it there: one domain fewer to map into, and @g is
 * never detached on the way, which is what could fail (a detach must
 * re-attach the blocking domain). The driver refuses a device the domain
 * cannot serve (VT-d: no snoop control on a domain enforcing coherency),
 * so KVM's answer on coherency stays true. Returns the domain or NULL.
 */
static struct vfio_async_domain *
join_existing_domain(struct vfio_async_container *c,
		     const struct iommu_domain_ops *ops,
		     struct vfio_async_group *g)
{
	struct vfio_async_domain *d;

	list_for_each_entry(d, &c->domains, next) {
		/* 6.1's core does not check a domain's driver: we must. */
		if (d->domain->ops != ops)
			continue;
		if (!iommu_attach_group(d->domain, g->iommu_group)) {
			list_add(&g->next, &d->groups);
			return d;
		}
	}
	return NULL;
}

static struct vfio_async_domain *new_domain(struct iommu_group *iommu_group)
{
	struct vfio_async_domain *d;

	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&d->groups);

	iommu_group_for_each_dev(iommu_group, &d->domain,
				 first_dev_domain_alloc);
	if (!d->domain) {
		kfree(d);
		return ERR_PTR(-EIO);
	}
	return d;
}

static void free_domain(struct vfio_async_domain *d)
{
	iommu_domain_free(d->domain);
	kfree(d);
}

static int attach_fresh_domain(struct vfio_async_domain *d,
			       struct vfio_async_group *g)
{
	const struct iommu_domain_ops *ops = d->domain->ops;
	int ret;

	ret = iommu_attach_group(d->domain, g->iommu_group);
	if (ret)
		return ret;
	list_add(&g->next, &d->groups);

	/*
	 * Asked only once a device is attached: the driver answers for the
	 * devices it has. Blocking no-snoop DMA lets KVM skip WBINVD.
	 */
	if (ops->enforce_cache_coherency)
		d->enforce_cc = ops->enforce_cache_coherency(d->domain);
	return 0;
}

/* Give the container the new domain @d, with every existing mapping. */
static int add_domain(struct vfio_async_container *c,
		      struct vfio_async_domain *d, struct vfio_async_group *g)
{
	struct vfio_async_domain *from = NULL;
	int ret;

	ret = get_sw_msi_cookie(d, g->iommu_group);
	if (ret)
		return ret;

	d->pgsizes = d->domain->pgsize_bitmap;

	if (!list_empty(&c->domains))
		from = list_first_entry(&c->domains, struct vfio_async_domain,
					next);
	/* The first domain is the PFN record: replay pins into it in place. */
	list_add_tail(&d->next, &c->domains);
	ret = vfio_async_replay(c, from, d);
	if (ret) {
		list_del(&d->next);
		return ret;
	}
	update_pgsize_bitmap(c);
	return 0;
}

int vfio_async_attach_group(void *iommu_data, struct iommu_group *iommu_group,
			    enum vfio_group_type type)
{
	struct vfio_async_container *c = iommu_data;
	struct vfio_async_domain *d, *fresh;
	struct vfio_async_group *g;
	LIST_HEAD(ranges);
	int ret;

	/* Mediated devices would need pin_pages()/dma_rw(): not offered. */
	if (type != VFIO_IOMMU)
		return -EOPNOTSUPP;

	/*
	 * Without interrupt remapping a device could forge MSI writes to any
	 * vector, so such groups are refused unless the admin allows it.
	 */
	if (!vfio_async_allow_unsafe_interrupts &&
	    !vfio_async_msi_isolated(iommu_group)) {
		pr_warn("group %d: no interrupt remapping; refused (see allow_unsafe_interrupts)\n",
			iommu_group_id(iommu_group));
		return -EPERM;
	}

	g = kzalloc(sizeof(*g), GFP_KERNEL_ACCOUNT);
	if (!g)
		return -ENOMEM;
	g->iommu_group = iommu_group;

	mutex_lock(&c->lock);
	vfio_async_quiesce(c);
	ret = -EINVAL;
	if (find_group(c, iommu_group, NULL))
		goto err_free_group;

	/* Allocated first only to learn which driver serves the group. */
	fresh = new_domain(iommu_group);
	if (IS_ERR(fresh)) {
		ret = PTR_ERR(fresh);
		goto err_free_group;
	}
	d = READ_ONCE(vfio_async_join_domains) ?
	    join_existing_domain(c, fresh->domain->ops, g) : NULL;
	if (d) {
		free_domain(fresh);
		fresh = NULL;
	} else {
		ret = attach_fresh_domain(fresh, g);
		if (ret)
			goto err_free_domain;
		d = fresh;
	}

	/* The group's aperture and reserved regions must spare every mapping. */
	ret = vfio_async_compute_iova_ranges(c, fresh, &ranges);
	if (ret)
		goto err_detach;
	ret = -EINVAL;
	if (!vfio_async_dmas_fit(c, &ranges))
		goto err_free_ranges;

	if (fresh) {
		ret = add_domain(c, fresh, g);
		if (ret)
			goto err_free_ranges;
	}

	vfio_async_install_iova_ranges(c, &ranges);
	vfio_async_resume(c);
	mutex_unlock(&c->lock);
	return 0;

err_free_ranges:
	vfio_async_free_iova_ranges(&ranges);
err_detach:
	list_del(&g->next);
	iommu_detach_group(d->domain, iommu_group);
err_free_domain:
	if (fresh)
		free_domain(fresh);
err_free_group:
	vfio_async_resume(c);
	mutex_unlock(&c->lock);
	kfree(g);
	return ret;
}

void vfio_async_detach_group(void *iommu_data, struct iommu_group *iommu_group)
{
	struct vfio_async_container *c = iommu_data;
	struct vfio_async_domain *d;
	struct vfio_async_group *g;
	LIST_HEAD(ranges);
	bool emptied;
	long held;

	mutex_lock(&c->lock);
	vfio_async_quiesce(c);
	g = find_group(c, iommu_group, &d);
	if (WARN_ON(!g))
		goto out_unlock;

	/*
	 * The last domain holds the only record of the pinned PFNs: unpin
	 * through it before it goes. The mappings go too, as with type1.
	 */
	emptied = list_is_singular(&d->groups) &&
		  list_is_singular(&c->domains);
	if (emptied)
		remove_all_dmas(c);

	iommu_detach_group(d->domain, iommu_group);
	list_del(&g->next);
	kfree(g);

	if (list_empty(&d->groups)) {
		/*
		 * No device uses it any more and the other domains hold the
		 * same mappings and the record of the pins (the next one
		 * records if it was the first): freed whole, not unmapped
		 * first run by run, as type1 frees it.
		 */
		list_del(&d->next);
		held = vfio_async_forget_pages(c, d);
		/* Unmapped page by page just now, it must hold none. */
		WARN_ON_ONCE(emptied && held);
		free_domain(d);
		update_pgsize_bitmap(c);
	}

	/* Fewer groups can only widen the ranges; on failure keep the old. */
	if (!vfio_async_compute_iova_ranges(c, NULL, &ranges))
		vfio_async_install_iova_ranges(c, &ranges);
out_unlock:
	vfio_async_resume(c);
	mutex_unlock(&c->lock);
}

struct iommu_domain *vfio_async_group_iommu_domain(void *iommu_data,
						   struct iommu_group *group)
{
	struct vfio_async_container *c = iommu_data;
	struct iommu_domain *domain = ERR_PTR(-ENODEV);
	struct vfio_async_domain *d;

	mutex_lock(&c->lock);
	if (find_group(c, group, &d))
		domain = d->domain;
	mutex_unlock(&c->lock);
	return domain;
}

bool vfio_async_all_domains_enforce_cc(struct vfio_async_container *c)
{
	struct vfio_async_domain *d;
	bool ret = true;

	mutex_lock(&c->lock);
	list_for_each_entry(d, &c->domains, next) {
		if (!d->enforce_cc) {
			ret = false;
			break;
		}
	}
	mutex_unlock(&c->lock);
	return ret;
}
