// SPDX-License-Identifier: GPL-2.0-only
/*
 * The chunk state of mappings: what is mapped, what is still to map and in
 * which order, what failed, what the balloon gave back; and the requests
 * waiting for chunks.
 *
 * Order: the chunks MAP_NOW requests wait for (urgent), then those MAP_NEXT
 * named (ahead), then the sweep, lowest pending chunk first: guests touch
 * low memory first. Every state change of a deferred chunk moves its bytes
 * between the pending, mapped, failed and released counters under the
 * container's chunk_lock, so they always add up to the deferred bytes.
 *
 * Whoever maps, a span of chunks goes the same way: claimed under
 * chunk_lock (vfio_async_claim(), vfio_async_begin_sync()), mapped with no
 * lock (vfio_async_map_span()), and recorded under chunk_lock
 * (vfio_async_complete_span()), which also tells the waits on its chunks.
 *
 * A wait counts the chunks of its range that were not mapped when it was
 * made; each of them ends exactly once while the wait exists: mapped (the
 * count drops), failed (the waiter fails), or cancelled by an unmap or a
 * release (the waiter fails with ECANCELED). A span given back by a
 * quiesce ends nothing: its chunks are pending again.
 */
#include <linux/bitmap.h>
#include <linux/interval_tree_generic.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "vfio_async.h"

/* The most a request's span maps at once: 32 MiB, or one chunk. */
#define SPAN_MAX_BYTES		SZ_32M

/* The most MAP_NEXT entries queued per container. */
#define AHEAD_MAX		4096
/*
 * Pieces (a range in one mapping) a request may wait for: with the
 * waiting requests per channel, it bounds what waits cost in memory.
 */
#define WANT_SEGMENTS_MAX	2048

#define WAIT_START(w)	((w)->start)
#define WAIT_LAST(w)	((w)->last)
INTERVAL_TREE_DEFINE(struct vfio_async_wait, rb, dma_addr_t, subtree_last,
		     WAIT_START, WAIT_LAST, static, wait_tree)

static unsigned long *chunk_bitmap_alloc(unsigned long nchunks)
{
	return kvcalloc(BITS_TO_LONGS(nchunks), sizeof(unsigned long),
			GFP_KERNEL_ACCOUNT);
}

/*
 * The chunk size of a new mapping whose memory has pages of 1 << @page_shift
 * bytes (the largest for one made at once, the smallest for a deferred
 * one). A deferred chunk is a huge page only where the IOMMU can map it as
 * one (its IOVA and address equally aligned, a page size of every
 * domain): otherwise a request would wait for all of it for nothing.
 */
static unsigned int chunk_shift_for(struct vfio_async_container *c,
				    dma_addr_t iova, unsigned long vaddr,
				    bool deferred, unsigned int page_shift)
{
	if (!deferred)
		return max_t(unsigned int, page_shift,
			     VFIO_ASYNC_CHUNK_SHIFT_SYNC);
	if (page_shift > VFIO_ASYNC_CHUNK_SHIFT_DEFERRED &&
	    !((iova ^ vaddr) & (BIT_ULL(page_shift) - 1)) &&
	    (c->pgsize_bitmap & BIT_ULL(page_shift)))
		return page_shift;
	return VFIO_ASYNC_CHUNK_SHIFT_DEFERRED;
}

/**
 * vfio_async_dma_alloc - a new mapping, all of its chunks unmapped
 * @c: container, lock held
 * @iova: first IOVA
 * @size: bytes, > 0, without wrap
 * @vaddr: user address in current->mm
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 * @deferred: mapped by the background; then every chunk starts pending
 * @page_shift: log2 of the page size that sets its chunk size
 */
struct vfio_async_dma *vfio_async_dma_alloc(struct vfio_async_container *c,
					    dma_addr_t iova, size_t size,
					    unsigned long vaddr, int prot,
					    bool deferred,
					    unsigned int page_shift)
{
	struct vfio_async_dma *dma = kzalloc(sizeof(*dma), GFP_KERNEL_ACCOUNT);

	lockdep_assert_held(&c->lock);
	if (!dma)
		return NULL;

	RB_CLEAR_NODE(&dma->sweep_node);
	dma->iova = iova;
	dma->size = size;
	dma->vaddr = vaddr;
	dma->prot = prot;
	dma->deferred = deferred;
	dma->chunk_shift = chunk_shift_for(c, iova, vaddr, deferred,
					   page_shift);
	dma->nchunks = ((iova + size - 1) >> dma->chunk_shift) -
		       (iova >> dma->chunk_shift) + 1;

	dma->mapped = chunk_bitmap_alloc(dma->nchunks);
	if (!dma->mapped)
		goto err;
	if (deferred) {
		dma->pending = chunk_bitmap_alloc(dma->nchunks);
		dma->failed = chunk_bitmap_alloc(dma->nchunks);
		dma->released = chunk_bitmap_alloc(dma->nchunks);
		if (!dma->pending || !dma->failed || !dma->released)
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
	kvfree(dma->released);
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
	kvfree(dma->released);
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
 * Chunks are cut at IOVA multiples of the chunk size, so the first and
 * last chunk of a mapping may be shorter.
 */
void vfio_async_chunk_span(struct vfio_async_dma *dma, unsigned long first,
			   unsigned long end, size_t *start_off,
			   size_t *end_off)
{
	dma_addr_t base = dma->iova >> dma->chunk_shift;

	*start_off = first ? ((base + first) << dma->chunk_shift) -
			     dma->iova : 0;
	*end_off = end < dma->nchunks ?
		   ((base + end) << dma->chunk_shift) - dma->iova :
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
 * All or nothing, in one pass. Only for a
 * first domain given mappings made before it, under the lock; VFIO
 * attaches groups before any map, so this does not happen in practice.
 */
static int map_all_now(struct vfio_async_container *c,
		       struct vfio_async_dma *dma)
{
	int ret;

	lockdep_assert_held(&c->lock);

	ret = vfio_async_pin_map(c, dma, 0, dma->size, 0, NULL);
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
		vfio_async_unmap_unpin_split(c, dma, first, end);
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
	vfio_async_count(c, VFIO_ASYNC_RELEASED_BYTES,
			 -(long)chunk_bytes(dma, dma->released));
	vfio_async_count(c, VFIO_ASYNC_DEFERRED_BYTES, -(long)dma->size);
	spin_unlock(&c->chunk_lock);
	vfio_async_lock_acct(dma, -(long)(dma->size >> PAGE_SHIFT));
}

/*
 * Unmap @dma's mapped chunks below @limit from domain @to only, a failed
 * replay target, leaving the pins to the other domains; its container
 * quiesced.
 */
static void unmap_chunks_from(struct iommu_domain *to,
			      struct vfio_async_dma *dma, unsigned long limit)
{
	unsigned long first, end;
	size_t start_off, end_off;

	for_each_set_bitrange(first, end, dma->mapped, limit) {
		vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
		iommu_unmap(to, dma->iova + start_off, end_off - start_off);
	}
}

/* Give domain @to the mapped chunks of @dma, as @from has them. */
static int copy_chunks(struct vfio_async_container *c,
		       struct iommu_domain *from, struct vfio_async_domain *to,
		       struct vfio_async_dma *dma)
{
	unsigned long first, end;
	size_t start_off, end_off;
	int ret;

	for_each_set_bitrange(first, end, dma->mapped, dma->nchunks) {
		vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
		ret = vfio_async_copy_mappings(c, from, to, dma, start_off,
					       end_off);
		if (ret) {
			unmap_chunks_from(to->domain, dma, first);
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
			ret = copy_chunks(c, from->domain, to, dma);
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
			unmap_chunks_from(to->domain, dma, dma->nchunks);
		else if (!dma->deferred)
			vfio_async_unmap_all(c, dma);
	}
	/* Copies are unmapped from @to alone, not page by page. */
	if (from)
		vfio_async_forget_pages(c, to);
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

/* Chunks from @first of @dma are pending again: sweep them; chunk_lock held. */
static void make_pending(struct vfio_async_container *c,
			 struct vfio_async_dma *dma, unsigned long first)
{
	lockdep_assert_held(&c->chunk_lock);
	dma->next_pending = min(dma->next_pending, first);
	vfio_async_sweep_add(c, dma);
}

/* The most chunks of @dma one span of a request takes. */
static unsigned long span_max_chunks(struct vfio_async_dma *dma)
{
	return max_t(unsigned long, 1, SPAN_MAX_BYTES >> dma->chunk_shift);
}

/*
 * Take the run of pending chunks at the front of @q, at most
 * span_max_chunks(); entries with none left are dropped. chunk_lock held.
 */
static bool claim_queued(struct vfio_async_container *c, struct list_head *q,
			 struct vfio_async_span *span)
{
	struct vfio_async_prio *p, *tmp;

	lockdep_assert_held(&c->chunk_lock);
	list_for_each_entry_safe(p, tmp, q, next) {
		unsigned long first, end;

		first = find_next_bit(p->dma->pending, p->end, p->first);
		if (first >= p->end) {
			if (q == &c->ahead)
				c->nr_ahead--;
			list_del(&p->next);
			kfree(p);
			continue;
		}
		end = find_next_zero_bit(p->dma->pending,
					 min(p->end,
					     first + span_max_chunks(p->dma)),
					 first);
		span->dma = p->dma;
		span->first = first;
		span->nr = end - first;
		p->first = end;
		return true;
	}
	return false;
}

static bool claim_sweep(struct vfio_async_container *c,
			struct vfio_async_span *span)
{
	struct vfio_async_dma *dma = first_pending_dma(c);

	lockdep_assert_held(&c->chunk_lock);
	if (!dma)
		return false;
	span->dma = dma;
	span->first = dma->next_pending;
	span->nr = 1;
	return true;
}

/*
 * With the sweep off, what a request waits for must still be found: a
 * given-back span that could not be queued again is left to the sweep
 * (see requeue_span()). Walks every wait of @c (bounded: the requests per
 * channel times their pieces), only in that mode and only once the
 * queues are empty.
 */
static bool claim_awaited(struct vfio_async_container *c,
			  struct vfio_async_span *span)
{
	struct vfio_async_wait *w;
	unsigned long first;

	lockdep_assert_held(&c->chunk_lock);
	for (w = wait_tree_iter_first(&c->waits, 0, ~(dma_addr_t)0); w;
	     w = wait_tree_iter_next(w, 0, ~(dma_addr_t)0)) {
		first = find_next_bit(w->dma->pending, w->end, w->first);
		if (first < w->end) {
			span->dma = w->dma;
			span->first = first;
			span->nr = 1;
			return true;
		}
	}
	return false;
}

/**
 * vfio_async_claim - take the next span of chunks to map
 * @c: container
 * @flags: VFIO_ASYNC_CLAIM_POOL for a thread of the shared pool, which may
 *	   hold @share spans of @c at once; VFIO_ASYNC_CLAIM_URGENT_ONLY to
 *	   take only chunks a MAP_NOW waits for; VFIO_ASYNC_CLAIM_NO_SWEEP to
 *	   take only chunks a MAP_NOW or MAP_NEXT named
 * @share: see above
 * @span: receives the claimed span
 *
 * Never waits: only chunk_lock is taken. Returns false when @c is at its
 * share, or has nothing to give now (nothing pending, quiesced, or no
 * domain to map into); in the latter case a pool thread takes @c off the
 * work list, in the same critical section as the check, so that whoever
 * makes a chunk claimable afterwards queues it again.
 */
bool vfio_async_claim(struct vfio_async_container *c, unsigned int flags,
		      unsigned int share, struct vfio_async_span *span)
{
	bool pool = flags & VFIO_ASYNC_CLAIM_POOL;
	bool claimed = false;

	spin_lock(&c->chunk_lock);
	/* Domains only change while quiesced, which is checked first. */
	if (c->quiesced || list_empty(&c->domains) ||
	    (!(flags & VFIO_ASYNC_CLAIM_URGENT_ONLY) && !first_pending_dma(c))) {
		if (pool)
			vfio_async_dequeue_work(c);
		goto out;
	}
	if (pool && c->bg_in_flight >= share)
		goto out;

	if (claim_queued(c, &c->urgent, span))
		span->queue = VFIO_ASYNC_Q_URGENT;
	else if (flags & VFIO_ASYNC_CLAIM_URGENT_ONLY)
		goto out;
	else if (claim_queued(c, &c->ahead, span))
		span->queue = VFIO_ASYNC_Q_AHEAD;
	else if (!(flags & VFIO_ASYNC_CLAIM_NO_SWEEP) && claim_sweep(c, span))
		span->queue = VFIO_ASYNC_Q_SWEEP;
	else if ((flags & VFIO_ASYNC_CLAIM_NO_SWEEP) && claim_awaited(c, span))
		span->queue = VFIO_ASYNC_Q_URGENT;
	else
		goto out;

	span->background = true;
	span->pool = pool;
	bitmap_clear(span->dma->pending, span->first, span->nr);
	c->in_flight++;
	if (pool) {
		c->bg_in_flight++;
		vfio_async_count(c, VFIO_ASYNC_WORKERS_BUSY, 1);
	}
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
	span->queue = VFIO_ASYNC_Q_SYNC;
	span->background = false;
	span->pool = false;
	spin_lock(&c->chunk_lock);
	c->in_flight++;
	spin_unlock(&c->chunk_lock);
}

/* Pin and map the chunks of a claimed span; no lock held. */
int vfio_async_map_span(struct vfio_async_container *c,
			struct vfio_async_span *span)
{
	unsigned int flags = 0;
	size_t start_off, end_off;

	if (span->queue == VFIO_ASYNC_Q_SYNC)
		return vfio_async_pin_map_split(c, span->dma, span->first,
						span->first + span->nr);
	vfio_async_chunk_span(span->dma, span->first, span->first + span->nr,
			      &start_off, &end_off);
	if (span->background)
		flags |= VFIO_ASYNC_PIN_QUIESCE;
	/* A MAP_NOW waits for its chunks; the sweep and MAP_NEXT's, nobody. */
	if (span->queue == VFIO_ASYNC_Q_SWEEP ||
	    span->queue == VFIO_ASYNC_Q_AHEAD)
		flags |= VFIO_ASYNC_PIN_UNHURRIED;
	return vfio_async_pin_map(c, span->dma, start_off, end_off, flags,
				  NULL);
}

/* Count a span out of flight; chunk_lock held. */
static void span_done(struct vfio_async_container *c,
		      struct vfio_async_span *span)
{
	lockdep_assert_held(&c->chunk_lock);
	if (span->pool) {
		c->bg_in_flight--;
		vfio_async_count(c, VFIO_ASYNC_WORKERS_BUSY, -1);
	}
	if (!--c->in_flight)
		wake_up_all(&c->idle);
}

/* The IOVA range of chunks [@first, @end) of @dma, inclusive. */
static void chunks_iova(struct vfio_async_dma *dma, unsigned long first,
			unsigned long end, dma_addr_t *start, dma_addr_t *last)
{
	size_t start_off, end_off;

	vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
	*start = dma->iova + start_off;
	*last = dma->iova + end_off - 1;
}

/* A wait is over: out of the tree and of its waiter. chunk_lock held. */
static void wait_free(struct vfio_async_container *c,
		      struct vfio_async_wait *w)
{
	lockdep_assert_held(&c->chunk_lock);
	wait_tree_remove(w, &c->waits);
	list_del(&w->node);
	kfree(w);
}

/* Free every wait of @waiter; chunk_lock held. */
static void waiter_free_waits(struct vfio_async_container *c,
			      struct vfio_async_waiter *waiter)
{
	struct vfio_async_wait *w, *tmp;

	list_for_each_entry_safe(w, tmp, &waiter->waits, node)
		wait_free(c, w);
}

/*
 * End @waiter with @err (0: all mapped) at @iova: its waits leave the tree
 * and it goes on @done for its done() call. chunk_lock held.
 */
static void finish_waiter(struct vfio_async_container *c,
			  struct vfio_async_waiter *waiter, int err,
			  dma_addr_t iova, struct list_head *done)
{
	lockdep_assert_held(&c->chunk_lock);
	if (waiter->finished)
		return;
	waiter_free_waits(c, waiter);
	waiter->error = err;
	waiter->error_iova = iova;
	waiter->finished = true;
	list_add_tail(&waiter->done_node, done);
}

/* Call done() of the waiters on @done; no spinlock of ours held. */
static void call_done(struct list_head *done)
{
	struct vfio_async_waiter *waiter, *tmp;

	list_for_each_entry_safe(waiter, tmp, done, done_node) {
		list_del(&waiter->done_node);
		waiter->done(waiter);
	}
}

/*
 * Chunks [@first, @end) of @dma ended: mapped when @err is 0, else failed
 * or cancelled with @err. Tell the waits on them. chunk_lock held.
 */
static void chunks_ended(struct vfio_async_container *c,
			 struct vfio_async_dma *dma, unsigned long first,
			 unsigned long end, int err, struct list_head *done)
{
	struct vfio_async_wait *w, *next;
	dma_addr_t start, last;

	lockdep_assert_held(&c->chunk_lock);
	chunks_iova(dma, first, end, &start, &last);
	for (w = wait_tree_iter_first(&c->waits, start, last); w; w = next) {
		struct vfio_async_waiter *waiter = w->waiter;

		next = wait_tree_iter_next(w, start, last);
		if (w->dma != dma)
			continue;
		if (err) {
			/*
			 * Its other waits go too, next among them maybe: look
			 * again from the start (what is finished is gone).
			 */
			finish_waiter(c, waiter, err, w->range_iova, done);
			next = wait_tree_iter_first(&c->waits, start, last);
			continue;
		}
		w->remaining -= min(end, w->end) - max(first, w->first);
		if (!w->remaining) {
			wait_free(c, w);
			if (list_empty(&waiter->waits))
				finish_waiter(c, waiter, 0, 0, done);
		}
	}
}

/* Does a request wait for chunks of @span? chunk_lock held. */
static bool span_awaited(struct vfio_async_container *c,
			 struct vfio_async_span *span)
{
	struct vfio_async_wait *w;
	dma_addr_t start, last;

	chunks_iova(span->dma, span->first, span->first + span->nr, &start,
		    &last);
	for (w = wait_tree_iter_first(&c->waits, start, last); w;
	     w = wait_tree_iter_next(w, start, last))
		if (w->dma == span->dma)
			return true;
	return false;
}

/*
 * A given-back span goes back to the front of its queue, so that what a
 * request waits for keeps its place; to the urgent queue, whatever its
 * own, when a request waits for it (it came to wait while the span was
 * in flight, and found nothing to queue). Without memory for that, the
 * sweep still takes it. chunk_lock held.
 */
static void requeue_span(struct vfio_async_container *c,
			 struct vfio_async_span *span)
{
	struct list_head *q = span->queue == VFIO_ASYNC_Q_URGENT ? &c->urgent :
			      span->queue == VFIO_ASYNC_Q_AHEAD ? &c->ahead :
			      NULL;
	struct vfio_async_prio *p;

	lockdep_assert_held(&c->chunk_lock);
	if (q != &c->urgent && span_awaited(c, span))
		q = &c->urgent;
	if (!q)
		return;
	p = kmalloc(sizeof(*p), GFP_ATOMIC | __GFP_NOWARN);
	if (!p)
		return;
	p->dma = span->dma;
	p->first = span->first;
	p->end = span->first + span->nr;
	list_add(&p->next, q);
	if (q == &c->ahead)
		c->nr_ahead++;
}

/*
 * Record the outcome of a deferred span; chunk_lock held. Returns true
 * when it was given back.
 */
static bool record_deferred(struct vfio_async_container *c,
			    struct vfio_async_span *span, int ret,
			    struct list_head *done)
{
	struct vfio_async_dma *dma = span->dma;
	size_t start_off, end_off;
	long bytes;

	lockdep_assert_held(&c->chunk_lock);
	if (ret == -EAGAIN || ret == -EINTR) {
		/* Given back (quiesced, or its mapper killed): pending again. */
		bitmap_set(dma->pending, span->first, span->nr);
		make_pending(c, dma, span->first);
		requeue_span(c, span);
		return true;
	}

	vfio_async_chunk_span(dma, span->first, span->first + span->nr,
			      &start_off, &end_off);
	bytes = end_off - start_off;
	vfio_async_count(c, VFIO_ASYNC_PENDING_BYTES, -bytes);
	if (!ret) {
		bitmap_set(dma->mapped, span->first, span->nr);
		vfio_async_count(c, VFIO_ASYNC_MAPPED_BYTES, bytes);
		vfio_async_count(c, VFIO_ASYNC_CHUNKS_MAPPED, span->nr);
	} else {
		bitmap_set(dma->failed, span->first, span->nr);
		vfio_async_count(c, VFIO_ASYNC_FAILED_BYTES, bytes);
		vfio_async_count(c, VFIO_ASYNC_BACKGROUND_ERRORS, span->nr);
		if (!c->first_error) {
			c->first_error = ret;
			c->first_error_iova = dma->iova + start_off;
		}
	}
	chunks_ended(c, dma, span->first, span->first + span->nr, ret, done);
	return false;
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
	bool requeue = false;
	LIST_HEAD(done);

	spin_lock(&c->chunk_lock);
	if (span->dma->deferred) {
		/*
		 * Given back while not quiesced (its mapper was killed): the
		 * threads may have taken @c off their list meanwhile, and
		 * no resume will bring it back.
		 */
		requeue = record_deferred(c, span, ret, &done) && !c->quiesced;
	} else if (!WARN_ON_ONCE(ret)) {
		bitmap_fill(span->dma->mapped, span->dma->nchunks);
		chunks_ended(c, span->dma, 0, span->dma->nchunks, 0, &done);
	}
	span_done(c, span);
	spin_unlock(&c->chunk_lock);
	call_done(&done);
	if (requeue)
		vfio_async_queue_work(c);
	else if (span->background)
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

/* ------------------------------------------------------------------------
 * Requests: ranges checked, hit-checked, queued, waited for, released.
 */

/**
 * vfio_async_check_ranges - are @n ranges well formed?
 * @r: the ranges
 * @n: how many, at least 1
 * @bad: receives the IOVA of the first that is not
 *
 * Page aligned, not empty, not wrapping, in ascending order and not
 * overlapping. Returns 0 or -EINVAL.
 */
int vfio_async_check_ranges(const struct vfio_iommu_async_range *r,
			    unsigned int n, dma_addr_t *bad)
{
	u64 prev_last = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		u64 last = r[i].iova + r[i].size - 1;

		if (!r[i].size || ((r[i].iova | r[i].size) & ~PAGE_MASK) ||
		    last < r[i].iova || r[i].iova != (dma_addr_t)r[i].iova ||
		    (i && r[i].iova <= prev_last)) {
			*bad = r[i].iova;
			return -EINVAL;
		}
		prev_last = last;
	}
	return 0;
}

/* Chunk index of @iova in @dma, which holds it. */
static unsigned long chunk_of(struct vfio_async_dma *dma, dma_addr_t iova)
{
	return (iova >> dma->chunk_shift) - (dma->iova >> dma->chunk_shift);
}

static dma_addr_t dma_last(struct vfio_async_dma *dma)
{
	return dma->iova + dma->size - 1;
}

/* What walk_dmas_of_range() calls on chunks [@first, @end) of @dma. */
typedef int (*range_chunks_fn)(struct vfio_async_container *c,
			       struct vfio_async_dma *dma, unsigned long first,
			       unsigned long end, void *arg);

/*
 * Walk the mappings [@start, @last] lies in, calling @fn on the chunks of
 * each that the range touches (@whole: only those wholly inside). Returns
 * @fn's first error, or -ENOENT (*@bad: the IOVA) at a gap. Lock or
 * chunk_lock held.
 */
static int walk_dmas_of_range(struct vfio_async_container *c, dma_addr_t start,
			      dma_addr_t last, bool whole, dma_addr_t *bad,
			      range_chunks_fn fn, void *arg)
{
	dma_addr_t at = start;

	for (;;) {
		struct vfio_async_dma *dma = vfio_async_find_dma(c, at, 1);
		dma_addr_t seg_last;
		unsigned long first, end;
		int ret;

		if (!dma || dma->iova > at) {
			*bad = at;
			return -ENOENT;
		}
		seg_last = min(last, dma_last(dma));
		first = chunk_of(dma, at);
		end = chunk_of(dma, seg_last) + 1;
		if (whole) {
			/* Only chunks whose every byte lies in the range. */
			size_t s_off, e_off;

			vfio_async_chunk_span(dma, first, first + 1, &s_off,
					      &e_off);
			if (dma->iova + s_off < at)
				first++;
			vfio_async_chunk_span(dma, end - 1, end, &s_off, &e_off);
			if (dma->iova + e_off - 1 > seg_last)
				end--;
		}
		if (first < end) {
			ret = fn(c, dma, first, end, arg);
			if (ret) {
				*bad = at;
				return ret;
			}
		}
		if (seg_last == last)
			return 0;
		at = seg_last + 1;
	}
}

static int chunks_all_mapped(struct vfio_async_container *c,
			     struct vfio_async_dma *dma, unsigned long first,
			     unsigned long end, void *arg)
{
	return find_next_zero_bit(dma->mapped, end, first) < end ? 1 : 0;
}

/**
 * vfio_async_ranges_mapped - the hit-check: is every chunk @n ranges
 *	touch mapped?
 * @c: container
 * @r: the ranges, checked by vfio_async_check_ranges()
 * @n: how many
 * @bad: receives the IOVA of a range not inside mappings
 *
 * O(log n) per range, under chunk_lock only. Returns 1 (all mapped), 0
 * (some not), or -ENOENT.
 */
int vfio_async_ranges_mapped(struct vfio_async_container *c,
			     const struct vfio_iommu_async_range *r,
			     unsigned int n, dma_addr_t *bad)
{
	unsigned int i;
	int ret = 1;

	spin_lock(&c->chunk_lock);
	for (i = 0; i < n && ret == 1; i++) {
		int err = walk_dmas_of_range(c, r[i].iova,
					     r[i].iova + r[i].size - 1, false,
					     bad, chunks_all_mapped, NULL);

		ret = err < 0 ? err : err ? 0 : 1;
	}
	spin_unlock(&c->chunk_lock);
	return ret;
}

/* What a request's ranges need, per mapping they touch (one segment). */
struct want {
	struct vfio_async_waiter *waiter;
	enum vfio_async_queue queue;
	struct list_head prios;		/* allocated, not used yet */
	struct list_head waits;
	dma_addr_t range_iova;
	unsigned int segments;
	struct list_head *done;
};

/* Count a segment; a request may have WANT_SEGMENTS_MAX. */
static int count_segment(struct vfio_async_container *c,
			 struct vfio_async_dma *dma, unsigned long first,
			 unsigned long end, void *arg)
{
	return ++((struct want *)arg)->segments > WANT_SEGMENTS_MAX ? -E2BIG :
								     0;
}

/* For a walk that only checks the ranges lie inside mappings. */
static int inside_mappings(struct vfio_async_container *c,
			   struct vfio_async_dma *dma, unsigned long first,
			   unsigned long end, void *arg)
{
	return 0;
}

/* Allocate, with the lock held, what registering the segments needs. */
static int want_alloc(struct want *wt)
{
	unsigned int i;

	for (i = 0; i < wt->segments; i++) {
		struct vfio_async_prio *p = kmalloc(sizeof(*p), GFP_KERNEL_ACCOUNT);

		if (!p)
			return -ENOMEM;
		list_add(&p->next, &wt->prios);
		if (wt->waiter) {
			struct vfio_async_wait *w = kzalloc(sizeof(*w),
							    GFP_KERNEL_ACCOUNT);

			if (!w)
				return -ENOMEM;
			list_add(&w->node, &wt->waits);
		}
	}
	return 0;
}

static void want_free(struct want *wt)
{
	struct vfio_async_prio *p, *ptmp;
	struct vfio_async_wait *w, *wtmp;

	list_for_each_entry_safe(p, ptmp, &wt->prios, next)
		kfree(p);
	list_for_each_entry_safe(w, wtmp, &wt->waits, node)
		kfree(w);
}

/*
 * Queue chunks [@first, @end) of @dma on @q, onto the last entry when it
 * ends where they begin (a merge: one span for both). chunk_lock held.
 */
static void queue_chunks(struct vfio_async_container *c, struct list_head *q,
			 struct want *wt, struct vfio_async_dma *dma,
			 unsigned long first, unsigned long end)
{
	struct vfio_async_prio *p;

	lockdep_assert_held(&c->chunk_lock);
	if (!list_empty(q)) {
		p = list_last_entry(q, struct vfio_async_prio, next);
		if (p->dma == dma && p->end == first) {
			p->end = end;
			vfio_async_count(c, VFIO_ASYNC_MERGES, 1);
			return;
		}
	}
	p = list_first_entry(&wt->prios, struct vfio_async_prio, next);
	list_move_tail(&p->next, q);
	p->dma = dma;
	p->first = first;
	p->end = end;
	if (q == &c->ahead)
		c->nr_ahead++;
}

/* Set bits of @bits in [@first, @end). */
static unsigned long count_bits(const unsigned long *bits, unsigned long first,
				unsigned long end)
{
	unsigned long a = first, b, n = 0;

	for_each_set_bitrange_from(a, b, bits, end)
		n += b - a;
	return n;
}

/*
 * Chunks that failed or were released become pending again: a request
 * asks for them (the one retry of a failed chunk). chunk_lock held.
 */
static void repend(struct vfio_async_container *c, struct vfio_async_dma *dma,
		   unsigned long *bits, enum vfio_async_counter from,
		   unsigned long first, unsigned long end)
{
	unsigned long a = first, b;

	lockdep_assert_held(&c->chunk_lock);
	for_each_set_bitrange_from(a, b, bits, end) {
		size_t s_off, e_off;

		vfio_async_chunk_span(dma, a, b, &s_off, &e_off);
		bitmap_clear(bits, a, b - a);
		bitmap_set(dma->pending, a, b - a);
		vfio_async_count(c, from, -(long)(e_off - s_off));
		vfio_async_count(c, VFIO_ASYNC_PENDING_BYTES, e_off - s_off);
		make_pending(c, dma, a);
	}
}

/* Register one segment of a request; chunk_lock held. */
static int want_segment(struct vfio_async_container *c,
			struct vfio_async_dma *dma, unsigned long first,
			unsigned long end, void *arg)
{
	struct want *wt = arg;
	struct vfio_async_wait *w;
	unsigned long missing;

	lockdep_assert_held(&c->chunk_lock);
	missing = (end - first) - count_bits(dma->mapped, first, end);
	if (!missing)
		return 0;
	if (!dma->deferred) {
		/* Being mapped by its MAP_DMA caller: a MAP_NEXT need not wait. */
		if (!wt->waiter)
			return 0;
		goto wait;
	}
	repend(c, dma, dma->failed, VFIO_ASYNC_FAILED_BYTES, first, end);
	repend(c, dma, dma->released, VFIO_ASYNC_RELEASED_BYTES, first, end);
	queue_chunks(c, wt->queue == VFIO_ASYNC_Q_URGENT ? &c->urgent :
		     &c->ahead, wt, dma, first, end);

	if (!wt->waiter)
		return 0;
wait:
	w = list_first_entry(&wt->waits, struct vfio_async_wait, node);
	list_move_tail(&w->node, &wt->waiter->waits);
	w->dma = dma;
	w->first = first;
	w->end = end;
	w->remaining = missing;
	w->range_iova = wt->range_iova;
	w->waiter = wt->waiter;
	chunks_iova(dma, first, end, &w->start, &w->last);
	wait_tree_insert(w, &c->waits);
	return 0;
}

/**
 * vfio_async_want_ranges - queue the chunks @n ranges touch to be mapped
 *	before the sweep, and make @waiter wait for those not mapped yet
 * @c: container, lock held (the mappings stay as they are)
 * @r: the ranges, checked by vfio_async_check_ranges()
 * @n: how many
 * @queue: VFIO_ASYNC_Q_URGENT (MAP_NOW) or VFIO_ASYNC_Q_AHEAD (MAP_NEXT)
 * @waiter: initialised by the caller (its done()), or NULL for MAP_NEXT
 * @bad: receives the IOVA of the range that failed
 *
 * Returns the number of waits made (0: everything was mapped, and
 * done() will not be called), or -errno: -ENOENT (a range not inside
 * mappings), -E2BIG (more than WANT_SEGMENTS_MAX pieces), -ENOSPC (too
 * many MAP_NEXT queued), -ENOMEM; then nothing was
 * queued or waited for. Whoever maps urgent chunks is then to be told
 * (the pool is; vfio_async_queue_work() by the caller).
 */
int vfio_async_want_ranges(struct vfio_async_container *c,
			   const struct vfio_iommu_async_range *r,
			   unsigned int n, enum vfio_async_queue queue,
			   struct vfio_async_waiter *waiter, dma_addr_t *bad)
{
	struct want wt = { .waiter = waiter, .queue = queue };
	struct vfio_async_wait *w;
	unsigned int i;
	int ret = 0, nwaits = 0;

	lockdep_assert_held(&c->lock);
	INIT_LIST_HEAD(&wt.prios);
	INIT_LIST_HEAD(&wt.waits);
	if (waiter) {
		INIT_LIST_HEAD(&waiter->waits);
		waiter->finished = false;
		waiter->error = 0;
	}

	/* The mappings cannot change under the lock: count, allocate, add. */
	for (i = 0; i < n && !ret; i++)
		ret = walk_dmas_of_range(c, r[i].iova, r[i].iova + r[i].size - 1,
					 false, bad, count_segment, &wt);
	if (!ret && queue == VFIO_ASYNC_Q_AHEAD &&
	    READ_ONCE(c->nr_ahead) + wt.segments > AHEAD_MAX) {
		*bad = r[0].iova;
		ret = -ENOSPC;
	}
	if (!ret)
		ret = want_alloc(&wt);
	if (ret) {
		want_free(&wt);
		return ret;
	}

	spin_lock(&c->chunk_lock);
	for (i = 0; i < n; i++) {
		wt.range_iova = r[i].iova;
		walk_dmas_of_range(c, r[i].iova, r[i].iova + r[i].size - 1,
				   false, bad, want_segment, &wt);
	}
	if (waiter)
		list_for_each_entry(w, &waiter->waits, node)
			nwaits++;
	spin_unlock(&c->chunk_lock);
	want_free(&wt);
	return nwaits;
}

/**
 * vfio_async_waiter_cancel - stop @waiter waiting
 * @c: container
 * @waiter: waiting, or finished
 *
 * Returns true when it was still waiting: then done() will not be called.
 * False: done() is due or running, and the waiter is the callee's until
 * it returns.
 */
bool vfio_async_waiter_cancel(struct vfio_async_container *c,
			      struct vfio_async_waiter *waiter)
{
	bool cancelled;

	spin_lock(&c->chunk_lock);
	cancelled = vfio_async_waiter_cancel_locked(c, waiter);
	spin_unlock(&c->chunk_lock);
	return cancelled;
}

/* vfio_async_waiter_cancel() with chunk_lock held. */
bool vfio_async_waiter_cancel_locked(struct vfio_async_container *c,
				     struct vfio_async_waiter *waiter)
{
	lockdep_assert_held(&c->chunk_lock);
	if (waiter->finished)
		return false;
	waiter_free_waits(c, waiter);
	waiter->finished = true;
	return true;
}

/* Fail every wait on chunks [@first, @end) of @dma; chunk_lock held. */
static void cancel_waits(struct vfio_async_container *c,
			 struct vfio_async_dma *dma, unsigned long first,
			 unsigned long end, struct list_head *done)
{
	chunks_ended(c, dma, first, end, -ECANCELED, done);
}

/* Drop queued entries of @dma; chunk_lock held. */
static void unqueue_dma(struct vfio_async_container *c,
			struct vfio_async_dma *dma, struct list_head *q)
{
	struct vfio_async_prio *p, *tmp;

	lockdep_assert_held(&c->chunk_lock);
	list_for_each_entry_safe(p, tmp, q, next) {
		if (p->dma != dma)
			continue;
		if (q == &c->ahead)
			c->nr_ahead--;
		list_del(&p->next);
		kfree(p);
	}
}

/**
 * vfio_async_forget_waits - a mapping goes: what waited for it fails with
 *	ECANCELED, and its queued chunks are dropped
 * @c: container, lock held, quiesced or @dma in flight
 * @dma: the mapping
 */
void vfio_async_forget_waits(struct vfio_async_container *c,
			     struct vfio_async_dma *dma)
{
	LIST_HEAD(done);

	spin_lock(&c->chunk_lock);
	cancel_waits(c, dma, 0, dma->nchunks, &done);
	unqueue_dma(c, dma, &c->urgent);
	unqueue_dma(c, dma, &c->ahead);
	spin_unlock(&c->chunk_lock);
	call_done(&done);
}

/*
 * Release chunks [@first, @end) of @dma: the mapped ones are unmapped and
 * unpinned, and all of them leave every queue for the released state.
 * Lock held, quiesced, so nothing of them is in flight.
 */
static int release_segment(struct vfio_async_container *c,
			   struct vfio_async_dma *dma, unsigned long first,
			   unsigned long end, void *arg)
{
	struct list_head *done = arg;
	unsigned long a = first, b;
	size_t s_off, e_off;

	if (!dma->deferred)
		return 0;	/* made at once: stays mapped */

	/* Not mapped for a hit-check from here on; then unpinned. */
	for_each_set_bitrange_from(a, b, dma->mapped, end) {
		vfio_async_chunk_span(dma, a, b, &s_off, &e_off);
		spin_lock(&c->chunk_lock);
		bitmap_clear(dma->mapped, a, b - a);
		bitmap_set(dma->released, a, b - a);
		vfio_async_count(c, VFIO_ASYNC_MAPPED_BYTES,
				 -(long)(e_off - s_off));
		vfio_async_count(c, VFIO_ASYNC_RELEASED_BYTES, e_off - s_off);
		vfio_async_count(c, VFIO_ASYNC_RELEASE_CHUNKS, b - a);
		vfio_async_count(c, VFIO_ASYNC_RELEASE_BYTES, e_off - s_off);
		spin_unlock(&c->chunk_lock);
		vfio_async_unmap_unpin(c, dma, s_off, e_off);
	}

	spin_lock(&c->chunk_lock);
	for (a = first; a < end; a++) {
		enum vfio_async_counter from;

		if (test_and_clear_bit(a, dma->pending))
			from = VFIO_ASYNC_PENDING_BYTES;
		else if (test_and_clear_bit(a, dma->failed))
			from = VFIO_ASYNC_FAILED_BYTES;
		else
			continue;	/* released already, or just now */
		vfio_async_chunk_span(dma, a, a + 1, &s_off, &e_off);
		set_bit(a, dma->released);
		vfio_async_count(c, from, -(long)(e_off - s_off));
		vfio_async_count(c, VFIO_ASYNC_RELEASED_BYTES, e_off - s_off);
		vfio_async_count(c, VFIO_ASYNC_RELEASE_CHUNKS, 1);
		vfio_async_count(c, VFIO_ASYNC_RELEASE_BYTES, e_off - s_off);
	}
	cancel_waits(c, dma, first, end, done);
	spin_unlock(&c->chunk_lock);
	return 0;
}

/**
 * vfio_async_release_ranges - the balloon took @n ranges back: release the
 *	chunks of deferred mappings wholly inside them
 * @c: container, lock held
 * @r: the ranges, checked by vfio_async_check_ranges()
 * @n: how many
 * @bad: receives the IOVA of a range not inside mappings
 *
 * Chunks in any state: a span in flight is waited for (or given back)
 * first. MAP_NOW requests waiting for a released chunk fail with
 * ECANCELED. Returns 0, -ENOENT or -EINTR (killed while waiting).
 */
int vfio_async_release_ranges(struct vfio_async_container *c,
			      const struct vfio_iommu_async_range *r,
			      unsigned int n, dma_addr_t *bad)
{
	unsigned int i;
	LIST_HEAD(done);
	int ret;

	lockdep_assert_held(&c->lock);

	/* The quiesce drops the lock: the mappings are looked at after it. */
	ret = vfio_async_quiesce_killable(c);
	if (ret)
		return ret;
	/* Every range must be inside mappings before anything is released. */
	for (i = 0; i < n && !ret; i++)
		ret = walk_dmas_of_range(c, r[i].iova, r[i].iova + r[i].size - 1,
					 false, bad, inside_mappings, NULL);
	for (i = 0; i < n && !ret; i++)
		walk_dmas_of_range(c, r[i].iova, r[i].iova + r[i].size - 1,
				   true, bad, release_segment, &done);
	vfio_async_resume(c);
	call_done(&done);
	return ret;
}
