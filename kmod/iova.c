// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOVA bookkeeping: the user mappings of a container, in an rb-tree by IOVA,
 * and the ranges of IOVA its devices can use.
 *
 * The usable ranges are derived, never edited: they are recomputed from the
 * domains' apertures and the groups' reserved regions whenever a group comes
 * or goes, so attach and detach share one path and a failed attach leaves
 * nothing to undo.
 */
#include <linux/iommu.h>
#include <linux/slab.h>

#include "vfio_async.h"

static dma_addr_t dma_last(struct vfio_async_dma *dma)
{
	return dma->iova + dma->size - 1;
}

/**
 * vfio_async_first_dma_in - the lowest mapping overlapping [@start, @last]
 * @c: container, lock or chunk_lock held
 * @start: first IOVA
 * @last: last IOVA, inclusive
 */
struct vfio_async_dma *vfio_async_first_dma_in(struct vfio_async_container *c,
					       dma_addr_t start, dma_addr_t last)
{
	struct rb_node *node = c->dma_tree.rb_node;
	struct vfio_async_dma *found = NULL;

	lockdep_assert(lockdep_is_held(&c->lock) ||
		       lockdep_is_held(&c->chunk_lock));

	while (node) {
		struct vfio_async_dma *dma = rb_entry(node, struct vfio_async_dma,
						      node);

		if (dma_last(dma) < start) {
			node = node->rb_right;
		} else {
			/* Overlaps or lies above: a lower one may still fit. */
			if (dma->iova <= last)
				found = dma;
			node = node->rb_left;
		}
	}
	return found;
}

/* Any mapping overlapping [@start, @start + @size); @size must be > 0. */
struct vfio_async_dma *vfio_async_find_dma(struct vfio_async_container *c,
					   dma_addr_t start, size_t size)
{
	return vfio_async_first_dma_in(c, start, start + size - 1);
}

static bool dma_less(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct vfio_async_dma, node)->iova <
	       rb_entry(b, struct vfio_async_dma, node)->iova;
}

static bool sweep_less(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct vfio_async_dma, sweep_node)->iova <
	       rb_entry(b, struct vfio_async_dma, sweep_node)->iova;
}

/* Queue deferred @dma for the background, if it is not queued yet. */
void vfio_async_sweep_add(struct vfio_async_container *c,
			  struct vfio_async_dma *dma)
{
	lockdep_assert_held(&c->chunk_lock);
	if (RB_EMPTY_NODE(&dma->sweep_node))
		rb_add_cached(&dma->sweep_node, &c->sweep, sweep_less);
}

void vfio_async_sweep_del(struct vfio_async_container *c,
			  struct vfio_async_dma *dma)
{
	lockdep_assert_held(&c->chunk_lock);
	if (!RB_EMPTY_NODE(&dma->sweep_node)) {
		rb_erase_cached(&dma->sweep_node, &c->sweep);
		RB_CLEAR_NODE(&dma->sweep_node);
	}
}

/* Add @dma to the tree (and a deferred one to the sweep); lock held. */
void vfio_async_link_dma(struct vfio_async_container *c,
			 struct vfio_async_dma *dma)
{
	lockdep_assert_held(&c->lock);
	spin_lock(&c->chunk_lock);
	rb_add(&dma->node, &c->dma_tree, dma_less);
	if (dma->deferred)
		vfio_async_sweep_add(c, dma);
	spin_unlock(&c->chunk_lock);
}

void vfio_async_unlink_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma)
{
	lockdep_assert_held(&c->lock);
	spin_lock(&c->chunk_lock);
	vfio_async_sweep_del(c, dma);
	rb_erase(&dma->node, &c->dma_tree);
	spin_unlock(&c->chunk_lock);
}

/* Is [@start, @last] inside one usable range? */
bool vfio_async_iova_usable(struct vfio_async_container *c, dma_addr_t start,
			    dma_addr_t last)
{
	struct vfio_async_iova_range *r;

	lockdep_assert_held(&c->lock);

	if (list_empty(&c->iova_ranges))
		return true;

	list_for_each_entry(r, &c->iova_ranges, next)
		if (start >= r->start && last <= r->last)
			return true;
	return false;
}

void vfio_async_free_iova_ranges(struct list_head *ranges)
{
	struct vfio_async_iova_range *r, *tmp;

	list_for_each_entry_safe(r, tmp, ranges, next) {
		list_del(&r->next);
		kfree(r);
	}
}

static int new_range(struct list_head *before, dma_addr_t start,
		     dma_addr_t last)
{
	struct vfio_async_iova_range *r = kmalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return -ENOMEM;
	r->start = start;
	r->last = last;
	list_add_tail(&r->next, before);
	return 0;
}

/* Keep only the part of @ranges inside [@start, @last]. */
static void clip_ranges(struct list_head *ranges, dma_addr_t start,
			dma_addr_t last)
{
	struct vfio_async_iova_range *r, *tmp;

	list_for_each_entry_safe(r, tmp, ranges, next) {
		r->start = max(r->start, start);
		r->last = min(r->last, last);
		if (r->start > r->last) {
			list_del(&r->next);
			kfree(r);
		}
	}
}

/* Remove [@start, @last] from @ranges, splitting a range it falls inside. */
static int punch_hole(struct list_head *ranges, dma_addr_t start,
		      dma_addr_t last)
{
	struct vfio_async_iova_range *r, *tmp;

	list_for_each_entry_safe(r, tmp, ranges, next) {
		if (last < r->start || start > r->last)
			continue;

		if (start > r->start && last < r->last) {
			int ret = new_range(r->next.next, last + 1, r->last);

			if (ret)
				return ret;
			r->last = start - 1;
		} else if (start > r->start) {
			r->last = start - 1;
		} else if (last < r->last) {
			r->start = last + 1;
		} else {
			list_del(&r->next);
			kfree(r);
		}
	}
	return 0;
}

static int exclude_group_resv(struct list_head *ranges,
			      struct iommu_group *group)
{
	struct iommu_resv_region *region;
	LIST_HEAD(resv);
	int ret;

	ret = iommu_get_group_resv_regions(group, &resv);
	if (ret)
		goto out;

	list_for_each_entry(region, &resv, list) {
		/* Relaxable direct maps may be given up for a user mapping. */
		if (region->type == IOMMU_RESV_DIRECT_RELAXABLE)
			continue;
		ret = punch_hole(ranges, region->start,
				 region->start + region->length - 1);
		if (ret)
			break;
	}
out:
	iommu_put_resv_regions(NULL, &resv);
	return ret;
}

static int apply_domain(struct list_head *ranges, struct vfio_async_domain *d)
{
	struct iommu_domain_geometry *geo = &d->domain->geometry;
	struct vfio_async_group *g;
	int ret;

	clip_ranges(ranges, geo->aperture_start, geo->aperture_end);
	list_for_each_entry(g, &d->groups, next) {
		ret = exclude_group_resv(ranges, g->iommu_group);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * vfio_async_compute_iova_ranges - the IOVA ranges the container's devices
 *	can use, given its domains (plus @extra_domain, not yet listed)
 * @c: container, lock held
 * @extra_domain: a domain about to be added, or NULL
 * @ranges: empty list; filled on success, left empty on failure
 *
 * With no domain at all the result is empty, meaning "any IOVA".
 */
int vfio_async_compute_iova_ranges(struct vfio_async_container *c,
				   struct vfio_async_domain *extra_domain,
				   struct list_head *ranges)
{
	struct vfio_async_domain *d;
	int ret;

	lockdep_assert_held(&c->lock);

	if (list_empty(&c->domains) && !extra_domain)
		return 0;

	ret = new_range(ranges, 0, (dma_addr_t)-1);
	if (ret)
		return ret;

	list_for_each_entry(d, &c->domains, next) {
		ret = apply_domain(ranges, d);
		if (ret)
			goto err;
	}
	if (extra_domain) {
		ret = apply_domain(ranges, extra_domain);
		if (ret)
			goto err;
	}
	return 0;
err:
	vfio_async_free_iova_ranges(ranges);
	return ret;
}

/* Does every existing mapping lie inside @ranges? */
bool vfio_async_dmas_fit(struct vfio_async_container *c,
			 struct list_head *ranges)
{
	struct vfio_async_iova_range *r;
	struct rb_node *node;

	lockdep_assert_held(&c->lock);

	if (list_empty(ranges))
		return true;

	for (node = rb_first(&c->dma_tree); node; node = rb_next(node)) {
		struct vfio_async_dma *dma = rb_entry(node, struct vfio_async_dma,
						      node);
		bool fits = false;

		list_for_each_entry(r, ranges, next) {
			if (dma->iova >= r->start && dma_last(dma) <= r->last) {
				fits = true;
				break;
			}
		}
		if (!fits)
			return false;
	}
	return true;
}

/* Replace the container's ranges with @ranges, which is left empty. */
void vfio_async_install_iova_ranges(struct vfio_async_container *c,
				    struct list_head *ranges)
{
	lockdep_assert_held(&c->lock);

	vfio_async_free_iova_ranges(&c->iova_ranges);
	list_splice_init(ranges, &c->iova_ranges);
}
