// SPDX-License-Identifier: GPL-2.0-only
/*
 * The chunk state of mappings: what is mapped, what the background still
 * has to map, what it failed to, and which chunk it maps next.
 *
 * The background maps deferred mappings in IOVA order, lowest pending chunk
 * first: guests touch low memory first. Every state change of a deferred
 * chunk moves its bytes between the pending, mapped and failed counters
 * under the container's chunk_lock, so they always add up to the deferred
 * bytes.
 *
 * Whoever maps, a span of chunks goes the same way: claimed under
 * chunk_lock (vfio_async_claim_background(), vfio_async_begin_sync()),
 * mapped with no lock (vfio_async_map_span()), and recorded under
 * chunk_lock (vfio_async_complete_span()).
 */
#include <linux/bitmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>

#include "vfio_async.h"

static unsigned long *chunk_bitmap_alloc(unsigned long nchunks)
{
	return kvcalloc(BITS_TO_LONGS(nchunks), sizeof(unsigned long),
			GFP_KERNEL_ACCOUNT);
}

/**
 * vfio_async_dma_alloc - a new mapping, all of its chunks unmapped
 * @iova: first IOVA
 * @size: bytes, > 0, without wrap
 * @vaddr: user address in current->mm
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 * @deferred: mapped by the background; then every chunk starts pending
 */
struct vfio_async_dma *vfio_async_dma_alloc(dma_addr_t iova, size_t size,
					    unsigned long vaddr, int prot,
					    bool deferred)
{
	struct vfio_async_dma *dma = kzalloc(sizeof(*dma), GFP_KERNEL_ACCOUNT);

	if (!dma)
		return NULL;

	RB_CLEAR_NODE(&dma->sweep_node);
	dma->iova = iova;
	dma->size = size;
	dma->vaddr = vaddr;
	dma->prot = prot;
	dma->deferred = deferred;
	dma->nchunks = ((iova + size - 1) >> VFIO_ASYNC_CHUNK_SHIFT) -
		       (iova >> VFIO_ASYNC_CHUNK_SHIFT) + 1;

	dma->mapped = chunk_bitmap_alloc(dma->nchunks);
	if (!dma->mapped)
		goto err;
	if (deferred) {
		dma->pending = chunk_bitmap_alloc(dma->nchunks);
		dma->failed = chunk_bitmap_alloc(dma->nchunks);
		if (!dma->pending || !dma->failed)
			goto err;
		bitmap_fill(dma->pending, dma->nchunks);
	}

	/*
	 * RLIMIT_MEMLOCK is the group leader's, and locked_vm the mm's, for
	 * as long as the mapping lives, whoever pins or unpins it.
	 */
	dma->task = current->group_leader;
	get_task_struct(dma->task);
	dma->mm = current->mm;
	mmgrab(dma->mm);
	dma->lock_cap = capable(CAP_IPC_LOCK);
	return dma;
err:
	kvfree(dma->failed);
	kvfree(dma->pending);
	kvfree(dma->mapped);
	kfree(dma);
	return NULL;
}

void vfio_async_dma_free(struct vfio_async_dma *dma)
{
	WARN_ON_ONCE(!bitmap_empty(dma->mapped, dma->nchunks));
	put_task_struct(dma->task);
	mmdrop(dma->mm);
	kvfree(dma->failed);
	kvfree(dma->pending);
	kvfree(dma->mapped);
	kfree(dma);
}

/**
 * vfio_async_chunk_span - the offsets in @dma covered by chunks
 *	[@first, @end)
 * @dma: the mapping
 * @first: first chunk
 * @end: chunk after the last one
 * @start_off: receives the offset of the first byte
 * @end_off: receives the offset after the last byte
 *
 * Chunks are cut at 2 MiB boundaries of IOVA space, so the first and last
 * chunk of a mapping may be shorter.
 */
void vfio_async_chunk_span(struct vfio_async_dma *dma, unsigned long first,
			   unsigned long end, size_t *start_off,
			   size_t *end_off)
{
	dma_addr_t base = dma->iova >> VFIO_ASYNC_CHUNK_SHIFT;

	*start_off = first ? ((base + first) << VFIO_ASYNC_CHUNK_SHIFT) -
			     dma->iova : 0;
	*end_off = end < dma->nchunks ?
		   ((base + end) << VFIO_ASYNC_CHUNK_SHIFT) - dma->iova :
		   dma->size;
}

/* Bytes of @dma in the chunks set in @bitmap. */
static size_t chunk_bytes(struct vfio_async_dma *dma, unsigned long *bitmap)
{
	unsigned long first, end;
	size_t start_off, end_off, bytes = 0;

	for_each_set_bitrange(first, end, bitmap, dma->nchunks) {
		vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
		bytes += end_off - start_off;
	}
	return bytes;
}

/**
 * map_all_now - pin and map all of a mapping made at once
 * @c: container, lock held, with a domain
 * @dma: the mapping, not deferred, nothing of it mapped
 *
 * All or nothing, in one pass, so runs of contiguous memory are not cut at
 * chunk boundaries and 1 GiB pages stay 1 GiB in the IOMMU. Only for a
 * first domain given mappings made before it, under the lock; VFIO
 * attaches groups before any map, so this does not happen in practice.
 */
static int map_all_now(struct vfio_async_container *c,
		       struct vfio_async_dma *dma)
{
	int ret;

	lockdep_assert_held(&c->lock);

	ret = vfio_async_pin_map(c, dma, 0, dma->size, false);
	if (!ret) {
		spin_lock(&c->chunk_lock);
		bitmap_fill(dma->mapped, dma->nchunks);
		spin_unlock(&c->chunk_lock);
	}
	return ret;
}

/**
 * vfio_async_unmap_all - unmap and unpin every mapped chunk of @dma
 * @c: container, lock held, quiesced
 * @dma: the mapping; a deferred one is left with those chunks pending
 */
void vfio_async_unmap_all(struct vfio_async_container *c,
			  struct vfio_async_dma *dma)
{
	unsigned long first, end;
	size_t start_off, end_off;

	lockdep_assert_held(&c->lock);

	for_each_set_bitrange(first, end, dma->mapped, dma->nchunks) {
		vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
		/* Not mapped for a hit-check from here on. */
		spin_lock(&c->chunk_lock);
		bitmap_clear(dma->mapped, first, end - first);
		if (dma->deferred) {
			bitmap_set(dma->pending, first, end - first);
			vfio_async_count(c, VFIO_ASYNC_MAPPED_BYTES,
					 -(long)(end_off - start_off));
			vfio_async_count(c, VFIO_ASYNC_PENDING_BYTES,
					 end_off - start_off);
			dma->next_pending = min(dma->next_pending, first);
			vfio_async_sweep_add(c, dma);
		}
		spin_unlock(&c->chunk_lock);
		vfio_async_unmap_unpin(c, dma, start_off, end_off);
	}
}

/**
 * vfio_async_forget_dma - take an unmapped mapping out of the counters and
 *	give back what it charged up front
 * @c: container, lock held, quiesced
 * @dma: the mapping, about to be freed
 */
void vfio_async_forget_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma)
{
	lockdep_assert_held(&c->lock);

	if (!dma->deferred) {
		vfio_async_count(c, VFIO_ASYNC_SYNC_BYTES, -(long)dma->size);
		return;
	}
	spin_lock(&c->chunk_lock);
	vfio_async_count(c, VFIO_ASYNC_PENDING_BYTES,
			 -(long)chunk_bytes(dma, dma->pending));
	vfio_async_count(c, VFIO_ASYNC_FAILED_BYTES,
			 -(long)chunk_bytes(dma, dma->failed));
	vfio_async_count(c, VFIO_ASYNC_DEFERRED_BYTES, -(long)dma->size);
	spin_unlock(&c->chunk_lock);
	vfio_async_lock_acct(dma, -(long)(dma->size >> PAGE_SHIFT));
}

/**
 * vfio_async_unmap_chunks_from - unmap @dma's mapped chunks below @limit
 *	from domain @to only, leaving the pins to the other domains
 * @to: a domain that is leaving, or a failed replay target
 * @dma: the mapping, its container quiesced
 * @limit: first chunk not to touch
 */
void vfio_async_unmap_chunks_from(struct iommu_domain *to,
				  struct vfio_async_dma *dma,
				  unsigned long limit)
{
	unsigned long first, end;
	size_t start_off, end_off;

	for_each_set_bitrange(first, end, dma->mapped, limit) {
		vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
		iommu_unmap(to, dma->iova + start_off, end_off - start_off);
	}
}

/* Give domain @to the mapped chunks of @dma, as @from has them. */
static int copy_chunks(struct iommu_domain *from, struct iommu_domain *to,
		       struct vfio_async_dma *dma)
{
	unsigned long first, end;
	size_t start_off, end_off;
	int ret;

	for_each_set_bitrange(first, end, dma->mapped, dma->nchunks) {
		vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
		ret = vfio_async_copy_mappings(from, to, dma, start_off,
					       end_off);
		if (ret) {
			vfio_async_unmap_chunks_from(to, dma, first);
			return ret;
		}
	}
	return 0;
}

/**
 * vfio_async_replay - give a new domain every existing mapping
 * @c: container, lock held, quiesced
 * @from: a domain holding them all, or NULL when @to is the first domain
 *	  (then already on c->domains) and nothing is mapped yet
 * @to: the new domain
 *
 * With a first domain, mappings made at once are pinned and mapped now;
 * deferred ones stay pending for the background. All or nothing: on
 * failure @to holds no mapping and nothing new is pinned.
 */
int vfio_async_replay(struct vfio_async_container *c,
		      struct vfio_async_domain *from,
		      struct vfio_async_domain *to)
{
	struct vfio_async_dma *dma;
	struct rb_node *node, *failed;
	int ret = 0;

	lockdep_assert_held(&c->lock);

	for (node = rb_first(&c->dma_tree); node; node = rb_next(node)) {
		dma = rb_entry(node, struct vfio_async_dma, node);
		if (from)
			ret = copy_chunks(from->domain, to->domain, dma);
		else if (!dma->deferred)
			ret = map_all_now(c, dma);
		if (ret)
			break;
	}
	if (!ret)
		return 0;

	failed = node;
	for (node = rb_first(&c->dma_tree); node != failed;
	     node = rb_next(node)) {
		dma = rb_entry(node, struct vfio_async_dma, node);
		if (from)
			vfio_async_unmap_chunks_from(to->domain, dma,
						     dma->nchunks);
		else if (!dma->deferred)
			vfio_async_unmap_all(c, dma);
	}
	return ret;
}

/* Lowest pending chunk of @dma, or dma->nchunks; chunk_lock held. */
static unsigned long next_pending_chunk(struct vfio_async_dma *dma)
{
	dma->next_pending = find_next_bit(dma->pending, dma->nchunks,
					  dma->next_pending);
	return dma->next_pending;
}

/*
 * The lowest deferred mapping with a pending chunk, or NULL. Mappings
 * found with none left leave the queue, so each is passed over once.
 */
static struct vfio_async_dma *first_pending_dma(struct vfio_async_container *c)
{
	struct rb_node *node;

	lockdep_assert_held(&c->chunk_lock);

	while ((node = rb_first_cached(&c->sweep))) {
		struct vfio_async_dma *dma = rb_entry(node, struct vfio_async_dma,
						      sweep_node);

		if (next_pending_chunk(dma) < dma->nchunks)
			return dma;
		vfio_async_sweep_del(c, dma);
	}
	return NULL;
}

/* Is there a chunk for the background to map? */
bool vfio_async_has_pending(struct vfio_async_container *c)
{
	bool pending;

	spin_lock(&c->chunk_lock);
	pending = first_pending_dma(c);
	spin_unlock(&c->chunk_lock);
	return pending;
}

/**
 * vfio_async_claim_background - take the next chunk for the background
 * @c: container
 * @share: how many of the pool's threads @c may hold at once
 * @span: receives the claimed chunk
 *
 * Never waits: only chunk_lock is taken. Returns false when @c holds its
 * share already, or when it has no chunk it can give now (none pending,
 * quiesced, or no domain to map into): then @c leaves the work list, in
 * the same critical section as the check, so that whoever makes a chunk
 * claimable afterwards queues it again.
 */
bool vfio_async_claim_background(struct vfio_async_container *c,
				 unsigned int share,
				 struct vfio_async_span *span)
{
	struct vfio_async_dma *dma = NULL;
	bool claimed = false;

	spin_lock(&c->chunk_lock);
	/* Domains only change while quiesced, which is checked first. */
	if (!c->quiesced && !list_empty(&c->domains))
		dma = first_pending_dma(c);
	if (!dma) {
		vfio_async_dequeue_work(c);
		goto out;
	}
	if (c->bg_in_flight >= share)
		goto out;

	span->dma = dma;
	span->first = dma->next_pending;
	span->nr = 1;
	span->background = true;
	clear_bit(span->first, dma->pending);
	c->in_flight++;
	c->bg_in_flight++;
	vfio_async_count(c, VFIO_ASYNC_WORKERS_BUSY, 1);
	claimed = true;
out:
	spin_unlock(&c->chunk_lock);
	return claimed;
}

/**
 * vfio_async_begin_sync - claim all of a new mapping made at once, for its
 *	caller to map
 * @c: container, lock held, with a domain
 * @dma: the mapping, just linked, not deferred
 * @span: receives the span
 */
void vfio_async_begin_sync(struct vfio_async_container *c,
			   struct vfio_async_dma *dma,
			   struct vfio_async_span *span)
{
	lockdep_assert_held(&c->lock);

	span->dma = dma;
	span->first = 0;
	span->nr = dma->nchunks;
	span->background = false;
	spin_lock(&c->chunk_lock);
	c->in_flight++;
	spin_unlock(&c->chunk_lock);
}

/* Pin and map the chunks of a claimed span; no lock held. */
int vfio_async_map_span(struct vfio_async_container *c,
			struct vfio_async_span *span)
{
	size_t start_off, end_off;

	vfio_async_chunk_span(span->dma, span->first, span->first + span->nr,
			      &start_off, &end_off);
	return vfio_async_pin_map(c, span->dma, start_off, end_off,
				  span->background);
}

/* Count a span out of flight; chunk_lock held. */
static void span_done(struct vfio_async_container *c,
		      struct vfio_async_span *span)
{
	if (span->background) {
		c->bg_in_flight--;
		vfio_async_count(c, VFIO_ASYNC_WORKERS_BUSY, -1);
	}
	if (!--c->in_flight)
		wake_up_all(&c->idle);
}

/* Record the outcome of a deferred span; chunk_lock held. */
static void record_deferred(struct vfio_async_container *c,
			    struct vfio_async_span *span, int ret)
{
	struct vfio_async_dma *dma = span->dma;
	size_t start_off, end_off;
	long bytes;

	if (ret == -EAGAIN && span->background) {
		/* Given back by a quiesce: still pending, nothing counted. */
		bitmap_set(dma->pending, span->first, span->nr);
		dma->next_pending = min(dma->next_pending, span->first);
		vfio_async_sweep_add(c, dma);
		return;
	}

	vfio_async_chunk_span(dma, span->first, span->first + span->nr,
			      &start_off, &end_off);
	bytes = end_off - start_off;
	vfio_async_count(c, VFIO_ASYNC_PENDING_BYTES, -bytes);
	if (!ret) {
		bitmap_set(dma->mapped, span->first, span->nr);
		vfio_async_count(c, VFIO_ASYNC_MAPPED_BYTES, bytes);
		vfio_async_count(c, VFIO_ASYNC_CHUNKS_MAPPED, span->nr);
		return;
	}
	bitmap_set(dma->failed, span->first, span->nr);
	vfio_async_count(c, VFIO_ASYNC_FAILED_BYTES, bytes);
	vfio_async_count(c, VFIO_ASYNC_BACKGROUND_ERRORS, span->nr);
	if (!c->first_error) {
		c->first_error = ret;
		c->first_error_iova = dma->iova + start_off;
	}
}

/**
 * vfio_async_complete_span - record how mapping a claimed span ended
 * @c: container
 * @span: the span
 * @ret: 0 when it is mapped, else -errno (nothing of it is mapped)
 *
 * A span of a mapping made at once must have succeeded: its caller
 * removes a failed one before it takes it out of flight
 * (vfio_async_abort_sync()).
 */
void vfio_async_complete_span(struct vfio_async_container *c,
			      struct vfio_async_span *span, int ret)
{
	spin_lock(&c->chunk_lock);
	if (span->dma->deferred)
		record_deferred(c, span, ret);
	else if (!WARN_ON_ONCE(ret))
		bitmap_fill(span->dma->mapped, span->dma->nchunks);
	span_done(c, span);
	spin_unlock(&c->chunk_lock);
	if (span->background)
		vfio_async_work_done();
}

/**
 * vfio_async_abort_sync - remove a mapping made at once whose span failed
 * @c: container, lock held
 * @span: its span, still in flight, so nobody else has removed it
 */
void vfio_async_abort_sync(struct vfio_async_container *c,
			   struct vfio_async_span *span)
{
	lockdep_assert_held(&c->lock);

	vfio_async_remove_dma(c, span->dma);
	spin_lock(&c->chunk_lock);
	span_done(c, span);
	spin_unlock(&c->chunk_lock);
}
