// SPDX-License-Identifier: GPL-2.0-only
/*
 * The balloon channel: a VMM's MAP_NOW, MAP_NEXT and RELEASE requests
 * through shared rings signalled by two eventfds, and the blocking
 * VFIO_IOMMU_ASYNC_MAP_NOW (see the UAPI header for the protocol).
 *
 * The rings are pages this module allocates (charged to the caller),
 * mapped into the kernel with vmap() and into the VMM by mmap() of the
 * channel's file. Whatever the VMM writes there is read once, with
 * READ_ONCE(), into a local copy, and checked before it is used.
 *
 * Two work items per channel, on an unbound workqueue:
 *   drain  woken by the kick eventfd (its wait-queue callback, in atomic
 *          context, only queues it): reads requests, answers hits and
 *          malformed requests at once, queues misses and hints, releases;
 *          it never pins, so a hit never waits for a miss to be mapped.
 *          It takes at most DRAIN_RUN requests per run, then requeues
 *          itself, so a flood cannot hold a CPU.
 *   map    maps the chunks misses wait for (the urgent queue), beside the
 *          pool's threads, which take them first too; it is outside the
 *          pool's shares, as a VMM's own MAP_DMA would be.
 * Completions are posted by whoever ends the request: drain, a pool
 * thread or map completing the last chunk, an unmap or release that
 * cancels it; under cq_lock. The call eventfd is signalled once per
 * batch the drain posts, and once per later completion, unless the VMM
 * said it is reaping (VFIO_ASYNC_CQ_NO_CALL).
 *
 * A request is taken only when a completion slot is free for it (counted
 * in @in_flight), and at most MAX_WAITING MAP_NOW requests wait at once:
 * the memory one channel holds is bounded by its ring sizes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "vfio_async.h"

#define SQ_MAX		4096
#define CQ_MAX		8192
#define RANGES_MAX	65536
#define REQ_RANGES_MAX	1024	/* ranges per ring request */
#define DRAIN_RUN	64	/* requests per drain run */
#define MAX_WAITING	64	/* MAP_NOW requests waiting at once */
#define NOW_STACK	8	/* ranges a blocking ioctl reads onto the stack */
#define NOW_BATCH	256	/* ranges per step of a longer one */
#define NOW_MAX		BIT(20)		/* ranges per blocking ioctl */

static struct workqueue_struct *vfio_async_chan_wq;

/**
 * struct vfio_async_channel - a container's balloon channel
 * @c: its container (a reference)
 * @kick: the kick eventfd's file, polled through @kick_wait
 * @kick_wqh: the wait queue @kick_wait is on
 * @kick_wait: our entry there; its callback queues @drain
 * @kick_pt: how vfs_poll() hands us @kick_wqh
 * @call: the call eventfd
 * @pages: the ring pages
 * @nr_pages: how many
 * @ring: their kernel mapping
 * @hdr: the shared header, in @ring
 * @sqes: the request array, in @ring
 * @ranges: the range table, in @ring
 * @cqes: the completion array, in @ring
 * @sq_entries: requests in @sqes, a power of two
 * @cq_entries: completions in @cqes, a power of two
 * @range_entries: ranges in @ranges, a power of two
 * @max_ranges: ranges per request
 * @sq_head: the next request @drain reads (only @drain touches it)
 * @scratch: @drain's copy of a request's ranges
 * @cq_lock: see below
 * @cq_tail: the next completion slot
 * @in_flight: requests taken and not completed (each holds a slot)
 * @waiting: struct chan_req of the MAP_NOW requests waiting
 * @nr_waiting: how many
 * @idle: woken when @in_flight drops to 0
 * @closing: the file is being released: take nothing more
 * @drain: reads requests
 * @map: maps what they wait for
 * @memcg: the creator's memory cgroup, which the drain's allocations are
 *	charged to (a reference)
 *
 * @cq_lock (a spinlock) protects @cq_tail, @in_flight, @waiting and
 * @nr_waiting, and the writing of completions.
 */
struct vfio_async_channel {
	struct vfio_async_container *c;
	struct file *kick;
	wait_queue_head_t *kick_wqh;
	wait_queue_entry_t kick_wait;
	poll_table kick_pt;
	struct eventfd_ctx *call;

	struct page **pages;
	unsigned int nr_pages;
	void *ring;
	struct vfio_iommu_async_ring_hdr *hdr;
	struct vfio_iommu_async_sqe *sqes;
	struct vfio_iommu_async_range *ranges;
	struct vfio_iommu_async_cqe *cqes;
	u32 sq_entries, cq_entries, range_entries, max_ranges;

	u32 sq_head;
	struct vfio_iommu_async_range *scratch;

	spinlock_t cq_lock;		/* see above */
	u32 cq_tail;
	unsigned int in_flight;
	struct list_head waiting;
	unsigned int nr_waiting;
	wait_queue_head_t idle;
	bool closing;

	struct work_struct drain;
	struct work_struct map;
	struct mem_cgroup *memcg;
};

/* A MAP_NOW request of the ring that waits for chunks. */
struct chan_req {
	struct vfio_async_waiter waiter;
	struct vfio_async_channel *ch;
	struct list_head node;		/* on ch->waiting */
	u64 cookie;
	ktime_t start;
};

/* ---- completions -------------------------------------------------------- */

/* Signal the call eventfd, unless the VMM is reaping. */
static void call_vmm(struct vfio_async_channel *ch)
{
	/* Pairs with the VMM's barrier between clearing NO_CALL and cq_tail. */
	smp_mb();
	if (READ_ONCE(ch->hdr->cq_flags) & VFIO_ASYNC_CQ_NO_CALL) {
		vfio_async_count(ch->c, VFIO_ASYNC_CALLS_SUPPRESSED, 1);
		return;
	}
	vfio_async_eventfd_signal(ch->call);
	vfio_async_count(ch->c, VFIO_ASYNC_CALLS, 1);
}

/*
 * Post the completion of a request taken from the ring; @call: signal
 * now, rather than once for a batch. The request's slot is given back
 * last, under cq_lock: once it is, the channel may be freed
 * (channel_release() waits for every slot, then for cq_lock).
 */
static void post(struct vfio_async_channel *ch, u64 cookie, int status,
		 u32 flags, u64 iova, bool call)
{
	struct vfio_iommu_async_cqe *cqe;

	spin_lock(&ch->cq_lock);
	cqe = &ch->cqes[ch->cq_tail & (ch->cq_entries - 1)];
	WRITE_ONCE(cqe->cookie, cookie);
	WRITE_ONCE(cqe->status, status);
	WRITE_ONCE(cqe->flags, flags);
	WRITE_ONCE(cqe->error_iova, status ? iova : 0);
	/* The entry before the index that publishes it. */
	smp_store_release(&ch->hdr->cq_tail, ++ch->cq_tail);
	spin_unlock(&ch->cq_lock);

	if (status)
		vfio_async_count(ch->c, VFIO_ASYNC_REQ_FAILED, 1);
	if (call)
		call_vmm(ch);

	spin_lock(&ch->cq_lock);
	if (!--ch->in_flight)
		wake_up_all(&ch->idle);
	spin_unlock(&ch->cq_lock);
}

/*
 * Is a completion slot free? One is taken for each request in flight and
 * each posted and not reaped. A cq_head the VMM made up (more reaped than
 * posted) counts as full: it only stalls the VMM's own ring. cq_lock held.
 */
static bool slot_free(struct vfio_async_channel *ch)
{
	u32 unreaped = ch->cq_tail - READ_ONCE(ch->hdr->cq_head);

	lockdep_assert_held(&ch->cq_lock);
	return unreaped <= ch->cq_entries &&
	       unreaped + ch->in_flight < ch->cq_entries;
}

static void latency(struct vfio_async_container *c, bool hit, ktime_t start)
{
	vfio_async_count_latency(c, hit, ktime_us_delta(ktime_get(), start));
}

/* A waiting MAP_NOW ended (mapped, failed or cancelled): complete it. */
static void req_done(struct vfio_async_waiter *waiter)
{
	struct chan_req *req = container_of(waiter, struct chan_req, waiter);
	struct vfio_async_channel *ch = req->ch;
	u64 cookie = req->cookie, iova = waiter->error_iova;
	int status = waiter->error;
	bool closing;

	spin_lock(&ch->cq_lock);
	list_del(&req->node);
	ch->nr_waiting--;
	closing = ch->closing;
	spin_unlock(&ch->cq_lock);
	latency(ch->c, false, req->start);
	kfree(req);
	/* Room for a MAP_NOW held back by MAX_WAITING; before the slot goes. */
	if (!closing)
		queue_work(vfio_async_chan_wq, &ch->drain);
	post(ch, cookie, status, 0, iova, true);
}

/* ---- requests ----------------------------------------------------------- */

/* The mappers of urgent chunks: this channel's map work and the pool. */
static void urgent_queued(struct vfio_async_channel *ch)
{
	queue_work(vfio_async_chan_wq, &ch->map);
	vfio_async_queue_work(ch->c);
}

/*
 * A MAP_NOW not all mapped: wait for its chunks. Returns 0 when it will
 * be completed later, else the status to complete it with now (1: it
 * turned out mapped).
 */
static int map_now_miss(struct vfio_async_channel *ch, u64 cookie,
			ktime_t start, unsigned int n, dma_addr_t *bad)
{
	struct vfio_async_container *c = ch->c;
	struct chan_req *req;
	int ret;

	req = kzalloc(sizeof(*req), GFP_KERNEL_ACCOUNT);
	if (!req)
		return -ENOMEM;
	req->ch = ch;
	req->cookie = cookie;
	req->start = start;
	req->waiter.done = req_done;

	/* On the list first: done() may run as soon as the waits exist. */
	spin_lock(&ch->cq_lock);
	list_add_tail(&req->node, &ch->waiting);
	ch->nr_waiting++;
	spin_unlock(&ch->cq_lock);

	mutex_lock(&c->lock);
	ret = c->gone ? -ENODEV :
	      vfio_async_want_ranges(c, ch->scratch, n, VFIO_ASYNC_Q_URGENT,
				     &req->waiter, bad);
	mutex_unlock(&c->lock);
	if (ret > 0) {
		urgent_queued(ch);
		return 0;
	}
	spin_lock(&ch->cq_lock);
	list_del(&req->node);
	ch->nr_waiting--;
	spin_unlock(&ch->cq_lock);
	kfree(req);
	return ret ? ret : 1;
}

/* Handle the request @sqe, whose @n ranges are in ch->scratch. */
static bool handle(struct vfio_async_channel *ch,
		   const struct vfio_iommu_async_sqe *sqe, unsigned int n)
{
	struct vfio_async_container *c = ch->c;
	ktime_t start = ktime_get();
	dma_addr_t bad = 0;
	int ret;

	ret = vfio_async_check_ranges(ch->scratch, n, &bad);
	if (!ret && READ_ONCE(c->gone))
		ret = -ENODEV;
	if (ret)
		goto post;

	switch (sqe->op) {
	case VFIO_ASYNC_OP_MAP_NOW:
		vfio_async_count(c, VFIO_ASYNC_REQ_MAP_NOW, 1);
		vfio_async_count(c, VFIO_ASYNC_RANGES_MAP_NOW, n);
		ret = vfio_async_ranges_mapped(c, ch->scratch, n, &bad);
		if (ret == 1) {
			vfio_async_count(c, VFIO_ASYNC_HITS, 1);
			latency(c, true, start);
			post(ch, sqe->cookie, 0, VFIO_ASYNC_CQE_HIT, 0, false);
			return true;
		}
		if (ret)
			break;
		vfio_async_count(c, VFIO_ASYNC_MISSES, 1);
		ret = map_now_miss(ch, sqe->cookie, start, n, &bad);
		if (!ret)
			return false;	/* completed when mapped */
		if (ret == 1) {
			latency(c, false, start);
			ret = 0;
		}
		break;
	case VFIO_ASYNC_OP_MAP_NEXT:
		vfio_async_count(c, VFIO_ASYNC_REQ_MAP_NEXT, 1);
		vfio_async_count(c, VFIO_ASYNC_RANGES_MAP_NEXT, n);
		mutex_lock(&c->lock);
		ret = vfio_async_want_ranges(c, ch->scratch, n,
					     VFIO_ASYNC_Q_AHEAD, NULL, &bad);
		mutex_unlock(&c->lock);
		if (ret >= 0) {
			vfio_async_queue_work(c);
			ret = 0;
		}
		break;
	case VFIO_ASYNC_OP_RELEASE:
		vfio_async_count(c, VFIO_ASYNC_REQ_RELEASE, 1);
		vfio_async_count(c, VFIO_ASYNC_RANGES_RELEASE, n);
		mutex_lock(&c->lock);
		ret = vfio_async_release_ranges(c, ch->scratch, n, &bad);
		mutex_unlock(&c->lock);
		break;
	}
post:
	post(ch, sqe->cookie, ret, 0, bad, false);
	return true;
}

/*
 * Copy request @idx and its ranges out of the shared pages, once, and
 * check what can be checked before its ranges are looked at. Returns the
 * number of ranges, or -EINVAL.
 */
static int fetch(struct vfio_async_channel *ch, u32 idx,
		 struct vfio_iommu_async_sqe *sqe)
{
	const struct vfio_iommu_async_sqe *src;
	u32 i, first;

	src = &ch->sqes[idx & (ch->sq_entries - 1)];
	sqe->cookie = READ_ONCE(src->cookie);
	sqe->op = READ_ONCE(src->op);
	sqe->flags = READ_ONCE(src->flags);
	sqe->nr_ranges = READ_ONCE(src->nr_ranges);
	sqe->range_start = READ_ONCE(src->range_start);
	sqe->__reserved = READ_ONCE(src->__reserved);

	if (sqe->op < VFIO_ASYNC_OP_MAP_NOW || sqe->op > VFIO_ASYNC_OP_RELEASE ||
	    sqe->flags || sqe->__reserved || !sqe->nr_ranges ||
	    sqe->nr_ranges > ch->max_ranges)
		return -EINVAL;
	first = sqe->range_start;
	for (i = 0; i < sqe->nr_ranges; i++) {
		const struct vfio_iommu_async_range *r =
			&ch->ranges[(first + i) & (ch->range_entries - 1)];

		ch->scratch[i].iova = READ_ONCE(r->iova);
		ch->scratch[i].size = READ_ONCE(r->size);
	}
	return sqe->nr_ranges;
}

/* Why drain_some() stopped. */
enum drain_stop {
	DRAIN_EMPTY,	/* no request left */
	DRAIN_BUDGET,	/* its share of the CPU: requeue */
	DRAIN_FULL,	/* no completion slot or waiting room: kicked later */
	DRAIN_BROKEN,	/* the VMM's indexes make no sense */
};

/* May the drain take one more request now? */
static bool room_for_one(struct vfio_async_channel *ch)
{
	lockdep_assert_held(&ch->cq_lock);
	return !ch->closing && ch->nr_waiting < MAX_WAITING && slot_free(ch);
}

/* Take a completion slot (and waiting room) for the next request. */
static bool can_take(struct vfio_async_channel *ch)
{
	bool ok;

	spin_lock(&ch->cq_lock);
	ok = room_for_one(ch);
	if (ok)
		ch->in_flight++;
	spin_unlock(&ch->cq_lock);
	return ok;
}

/* Has room come since the ring was found full? */
static bool room_now(struct vfio_async_channel *ch)
{
	bool ok;

	spin_lock(&ch->cq_lock);
	ok = room_for_one(ch);
	spin_unlock(&ch->cq_lock);
	return ok;
}

/*
 * Take requests until the ring is empty, the budget is spent, or no
 * completion slot (or waiting room) is left; count those posted.
 */
static enum drain_stop drain_some(struct vfio_async_channel *ch,
				  unsigned int *posted)
{
	struct vfio_iommu_async_ring_hdr *hdr = ch->hdr;
	unsigned int budget = DRAIN_RUN;
	/* Pairs with the VMM's release of sq_tail: the entries come first. */
	u32 tail = smp_load_acquire(&hdr->sq_tail);

	while (ch->sq_head != tail) {
		struct vfio_iommu_async_sqe sqe;
		int n;

		if (tail - ch->sq_head > ch->sq_entries)
			return DRAIN_BROKEN;
		if (!budget--)
			return DRAIN_BUDGET;
		if (!can_take(ch))
			return DRAIN_FULL;
		n = fetch(ch, ch->sq_head, &sqe);
		/*
		 * Copied: the VMM may reuse the slot and its ranges once it
		 * sees the head move (our reads ordered before this store).
		 */
		smp_store_release(&hdr->sq_head, ++ch->sq_head);
		if (n < 0) {
			post(ch, sqe.cookie, n, 0, 0, false);
			(*posted)++;
		} else if (handle(ch, &sqe, n)) {
			(*posted)++;
		}
		/* As above: entries published before the tail. */
		tail = smp_load_acquire(&hdr->sq_tail);
	}
	return DRAIN_EMPTY;
}

static void drain_work(struct work_struct *work)
{
	struct vfio_async_channel *ch = container_of(work,
						     struct vfio_async_channel,
						     drain);
	struct vfio_iommu_async_ring_hdr *hdr = ch->hdr;
	struct mem_cgroup *old_memcg;
	unsigned int posted = 0;
	enum drain_stop stop;

	if (READ_ONCE(hdr->sq_flags) & VFIO_ASYNC_SQ_ERROR)
		return;
	/* What requests allocate is the VMM's, not the kworker's. */
	old_memcg = set_active_memcg(ch->memcg);
	for (;;) {
		/* Draining: the VMM need not kick. */
		WRITE_ONCE(hdr->sq_flags, 0);
		/*
		 * The flag's store before the ring's reads, against the
		 * VMM's tail store before its load of the flag.
		 */
		smp_mb();
		stop = drain_some(ch, &posted);
		if (stop == DRAIN_BROKEN) {
			/* More requests than the ring holds: read no more. */
			WRITE_ONCE(hdr->sq_flags, VFIO_ASYNC_SQ_ERROR);
			break;
		}
		if (stop == DRAIN_BUDGET)
			break;
		/*
		 * Stopping: ask for a kick, then look again, so that a request
		 * published (or a completion reaped) before the VMM saw the
		 * flag is not left behind. When full, the VMM kicks once it
		 * has reaped, or a waiting request's completion requeues us.
		 */
		WRITE_ONCE(hdr->sq_flags, VFIO_ASYNC_SQ_NEED_KICK);
		/* The flag before the loads of sq_tail and cq_head. */
		smp_mb();
		if (stop == DRAIN_FULL ? !room_now(ch) :
		    READ_ONCE(hdr->sq_tail) == ch->sq_head)
			break;
	}
	set_active_memcg(old_memcg);
	if (posted)
		call_vmm(ch);
	if (stop == DRAIN_BUDGET)
		queue_work(vfio_async_chan_wq, &ch->drain);
}

/* Map the chunks waiting requests want, until none is left to claim. */
static void map_work(struct work_struct *work)
{
	struct vfio_async_channel *ch = container_of(work,
						     struct vfio_async_channel,
						     map);
	struct vfio_async_span span;

	while (!READ_ONCE(ch->closing) &&
	       vfio_async_claim(ch->c, VFIO_ASYNC_CLAIM_URGENT_ONLY, UINT_MAX,
				&span)) {
		vfio_async_complete_span(ch->c, &span,
					 vfio_async_map_span(ch->c, &span));
		cond_resched();
	}
}

/* ---- the kick eventfd --------------------------------------------------- */

/* Called under the eventfd's wait-queue lock, in atomic context. */
static int kick_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync,
		       void *key)
{
	struct vfio_async_channel *ch = container_of(wait,
						     struct vfio_async_channel,
						     kick_wait);

	if (!(key_to_poll(key) & EPOLLIN))
		return 0;
	vfio_async_count(ch->c, VFIO_ASYNC_KICKS, 1);
	queue_work(vfio_async_chan_wq, &ch->drain);
	return 0;
}

static void kick_queue_proc(struct file *file, wait_queue_head_t *wqh,
			    poll_table *pt)
{
	struct vfio_async_channel *ch = container_of(pt,
						     struct vfio_async_channel,
						     kick_pt);

	ch->kick_wqh = wqh;
	add_wait_queue(wqh, &ch->kick_wait);
}

/* Watch the kick eventfd; a kick already pending drains at once. */
static void kick_attach(struct vfio_async_channel *ch)
{
	__poll_t mask;

	init_waitqueue_func_entry(&ch->kick_wait, kick_wakeup);
	init_poll_funcptr(&ch->kick_pt, kick_queue_proc);
	mask = vfs_poll(ch->kick, &ch->kick_pt);
	if (mask & EPOLLIN)
		queue_work(vfio_async_chan_wq, &ch->drain);
}

static void kick_detach(struct vfio_async_channel *ch)
{
	if (ch->kick_wqh)
		remove_wait_queue(ch->kick_wqh, &ch->kick_wait);
}

/* ---- the channel's file ------------------------------------------------- */

static int channel_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vfio_async_channel *ch = file->private_data;

	if (vma->vm_pgoff ||
	    vma->vm_end - vma->vm_start != (size_t)ch->nr_pages << PAGE_SHIFT)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vfio_async_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return vm_map_pages(vma, ch->pages, ch->nr_pages);
}

static void free_ring(struct vfio_async_channel *ch)
{
	unsigned int i;

	if (ch->ring)
		vunmap(ch->ring);
	for (i = 0; i < ch->nr_pages && ch->pages; i++)
		if (ch->pages[i])
			__free_page(ch->pages[i]);
	kvfree(ch->pages);
}

static void channel_free(struct vfio_async_channel *ch)
{
	if (ch->call)
		eventfd_ctx_put(ch->call);
	if (ch->kick)
		fput(ch->kick);
	free_ring(ch);
	kvfree(ch->scratch);
	mem_cgroup_put(ch->memcg);
	vfio_async_container_put(ch->c);
	kfree(ch);
}

/*
 * Cancel the waiting MAP_NOWs whose done() is not due yet; the drain is
 * stopped. Whether done() is due is decided under chunk_lock, so it is
 * held across the walk: a request done() is due for stays on the list,
 * and done() takes it off and frees it.
 */
static void cancel_waiting(struct vfio_async_channel *ch)
{
	struct chan_req *req, *tmp;
	LIST_HEAD(cancelled);

	spin_lock(&ch->c->chunk_lock);
	spin_lock(&ch->cq_lock);
	list_for_each_entry_safe(req, tmp, &ch->waiting, node) {
		if (!vfio_async_waiter_cancel_locked(ch->c, &req->waiter))
			continue;
		list_move(&req->node, &cancelled);
		ch->nr_waiting--;
		if (!--ch->in_flight)
			wake_up_all(&ch->idle);
	}
	spin_unlock(&ch->cq_lock);
	spin_unlock(&ch->c->chunk_lock);
	list_for_each_entry_safe(req, tmp, &cancelled, node)
		kfree(req);
}

/*
 * The channel goes (its file's last reference, so no mapping of the rings
 * is left): stop taking requests, cancel those waiting, wait for the
 * completions under way, and free it all.
 */
static int channel_release(struct inode *inode, struct file *file)
{
	struct vfio_async_channel *ch = file->private_data;
	struct vfio_async_container *c;

	if (!ch)
		return 0;	/* a failed create's file */
	c = ch->c;
	spin_lock(&ch->cq_lock);
	ch->closing = true;
	spin_unlock(&ch->cq_lock);
	kick_detach(ch);
	cancel_work_sync(&ch->drain);
	cancel_work_sync(&ch->map);
	cancel_waiting(ch);

	/* Completions under way give their slots back last: wait for them. */
	wait_event(ch->idle, !READ_ONCE(ch->in_flight));
	spin_lock(&ch->cq_lock);
	spin_unlock(&ch->cq_lock);
	cancel_work_sync(&ch->drain);	/* done() may have queued it */
	cancel_work_sync(&ch->map);

	mutex_lock(&c->lock);
	c->channel = NULL;
	mutex_unlock(&c->lock);
	channel_free(ch);
	return 0;
}

static const struct file_operations channel_fops = {
	.owner		= THIS_MODULE,
	.mmap		= channel_mmap,
	.release	= channel_release,
	.llseek		= noop_llseek,
};

/* ---- VFIO_IOMMU_ASYNC_CHANNEL_CREATE ------------------------------------ */

static bool pow2_in(u32 v, u32 max)
{
	return v && v <= max && is_power_of_2(v);
}

/* Check and complete the sizes asked for; lay the mapping out. */
static int channel_layout(struct vfio_iommu_async_channel_create *cr)
{
	u64 off;

	if (!cr->cq_entries)
		cr->cq_entries = 2 * cr->sq_entries;
	if (!cr->range_entries)
		cr->range_entries = min_t(u64, 64ULL * cr->sq_entries,
					  RANGES_MAX);
	if (!pow2_in(cr->sq_entries, SQ_MAX) ||
	    !pow2_in(cr->cq_entries, CQ_MAX) ||
	    cr->cq_entries < cr->sq_entries ||
	    !pow2_in(cr->range_entries, RANGES_MAX))
		return -EINVAL;

	cr->max_ranges = min_t(u32, cr->range_entries, REQ_RANGES_MAX);
	cr->hdr_off = 0;
	off = PAGE_SIZE;
	cr->sqes_off = off;
	off += PAGE_ALIGN(cr->sq_entries * sizeof(struct vfio_iommu_async_sqe));
	cr->ranges_off = off;
	off += PAGE_ALIGN(cr->range_entries *
			  sizeof(struct vfio_iommu_async_range));
	cr->cqes_off = off;
	off += PAGE_ALIGN(cr->cq_entries * sizeof(struct vfio_iommu_async_cqe));
	cr->mmap_size = off;
	return 0;
}

/* Pages for the rings, charged to the caller, and their kernel mapping. */
static int alloc_ring(struct vfio_async_channel *ch, u64 size)
{
	unsigned int i;

	ch->nr_pages = size >> PAGE_SHIFT;
	ch->pages = kvcalloc(ch->nr_pages, sizeof(*ch->pages),
			     GFP_KERNEL_ACCOUNT);
	if (!ch->pages)
		return -ENOMEM;
	for (i = 0; i < ch->nr_pages; i++) {
		ch->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!ch->pages[i])
			return -ENOMEM;
	}
	ch->ring = vmap(ch->pages, ch->nr_pages, VM_MAP, PAGE_KERNEL);
	return ch->ring ? 0 : -ENOMEM;
}

static int channel_setup(struct vfio_async_channel *ch,
			 struct vfio_iommu_async_channel_create *cr)
{
	struct eventfd_ctx *kick_ctx;
	int ret;

	ch->kick = fget(cr->kick_fd);
	if (!ch->kick)
		return -EBADF;
	/* Only an eventfd: fails for any other file. */
	kick_ctx = eventfd_ctx_fileget(ch->kick);
	if (IS_ERR(kick_ctx))
		return PTR_ERR(kick_ctx);
	eventfd_ctx_put(kick_ctx);
	ch->call = eventfd_ctx_fdget(cr->call_fd);
	if (IS_ERR(ch->call)) {
		ret = PTR_ERR(ch->call);
		ch->call = NULL;
		return ret;
	}

	ret = alloc_ring(ch, cr->mmap_size);
	if (ret)
		return ret;
	ch->scratch = kvcalloc(cr->max_ranges, sizeof(*ch->scratch),
			       GFP_KERNEL_ACCOUNT);
	if (!ch->scratch)
		return -ENOMEM;
	ch->hdr = ch->ring + cr->hdr_off;
	ch->sqes = ch->ring + cr->sqes_off;
	ch->ranges = ch->ring + cr->ranges_off;
	ch->cqes = ch->ring + cr->cqes_off;
	ch->sq_entries = cr->sq_entries;
	ch->cq_entries = cr->cq_entries;
	ch->range_entries = cr->range_entries;
	ch->max_ranges = cr->max_ranges;
	/* Nothing read yet: a kick is needed to start. */
	ch->hdr->sq_flags = VFIO_ASYNC_SQ_NEED_KICK;
	return 0;
}

/**
 * vfio_async_channel_create - VFIO_IOMMU_ASYNC_CHANNEL_CREATE
 * @c: container
 * @req: what the caller asked for, copied in
 * @arg: where to copy the answer out, before the new fd is installed
 *
 * Returns the channel's new file descriptor, or -errno.
 */
int vfio_async_channel_create(struct vfio_async_container *c,
			      const struct vfio_iommu_async_channel_create *req,
			      void __user *arg)
{
	struct vfio_iommu_async_channel_create cr = *req;
	struct vfio_async_channel *ch;
	struct file *file;
	int ret, fd;

	if (cr.flags)
		return -EINVAL;
	ret = channel_layout(&cr);
	if (ret)
		return ret;

	ch = kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT);
	if (!ch)
		return -ENOMEM;
	vfio_async_container_get(c);
	ch->c = c;
	ch->memcg = get_mem_cgroup_from_mm(current->mm);
	spin_lock_init(&ch->cq_lock);
	INIT_LIST_HEAD(&ch->waiting);
	init_waitqueue_head(&ch->idle);
	INIT_WORK(&ch->drain, drain_work);
	INIT_WORK(&ch->map, map_work);
	ret = channel_setup(ch, &cr);
	if (ret)
		goto err_free;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}
	file = anon_inode_getfile("[vfio-async-channel]", &channel_fops, ch,
				  O_RDWR | O_CLOEXEC);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_fd;
	}
	if (copy_to_user(arg, &cr, min_t(u32, cr.argsz, sizeof(cr)))) {
		ret = -EFAULT;
		goto err_file;
	}

	mutex_lock(&c->lock);
	ret = c->channel ? -EBUSY : 0;
	if (!ret)
		c->channel = ch;
	mutex_unlock(&c->lock);
	if (ret)
		goto err_file;

	kick_attach(ch);
	fd_install(fd, file);
	return fd;

err_file:
	/* Its release would undo what is not done yet: drop it bare. */
	file->private_data = NULL;
	fput(file);
err_fd:
	put_unused_fd(fd);
err_free:
	channel_free(ch);
	return ret;
}

/* ---- VFIO_IOMMU_ASYNC_MAP_NOW ------------------------------------------- */

struct now_waiter {
	struct vfio_async_waiter waiter;
	struct completion done;
};

static void now_done(struct vfio_async_waiter *waiter)
{
	complete(&container_of(waiter, struct now_waiter, waiter)->done);
}

/*
 * Wait for @nw, mapping urgent chunks meanwhile (this thread helps rather
 * than sleeps). Returns 0 when it finished, -EINTR when killed first.
 */
static int now_help(struct vfio_async_container *c, struct now_waiter *nw)
{
	struct vfio_async_span span;

	while (!completion_done(&nw->done)) {
		if (vfio_async_claim(c, VFIO_ASYNC_CLAIM_URGENT_ONLY, UINT_MAX,
				     &span)) {
			vfio_async_complete_span(c, &span,
						 vfio_async_map_span(c, &span));
			if (fatal_signal_pending(current))
				goto killed;
			continue;
		}
		/* What is left is being mapped by others. */
		if (!wait_for_completion_killable(&nw->done))
			return 0;
		goto killed;
	}
	return 0;
killed:
	if (!vfio_async_waiter_cancel(c, &nw->waiter))
		wait_for_completion(&nw->done);	/* ended meanwhile */
	return -EINTR;
}

/* One step of the blocking MAP_NOW: @n checked ranges. */
static int map_now_step(struct vfio_async_container *c,
			const struct vfio_iommu_async_range *r,
			unsigned int n, bool *hit, dma_addr_t *bad)
{
	struct now_waiter nw = { .waiter.done = now_done };
	int ret;

	ret = vfio_async_ranges_mapped(c, r, n, bad);
	if (ret)
		return ret < 0 ? ret : 0;
	*hit = false;
	init_completion(&nw.done);
	mutex_lock(&c->lock);
	ret = vfio_async_want_ranges(c, r, n, VFIO_ASYNC_Q_URGENT, &nw.waiter,
				     bad);
	mutex_unlock(&c->lock);
	if (ret <= 0)
		return ret;
	vfio_async_queue_work(c);
	ret = now_help(c, &nw);
	if (ret)
		return ret;
	*bad = nw.waiter.error_iova;
	return nw.waiter.error;
}

/**
 * vfio_async_map_now - VFIO_IOMMU_ASYNC_MAP_NOW
 * @c: container
 * @mn: the request, copied in; @mn->error_iova is set on an error of a
 *	range
 *
 * The ranges are read NOW_BATCH at a time: the memory it holds does not
 * grow with their number. A deflate's few ranges stay on the stack, so
 * that a hit costs no allocation.
 */
int vfio_async_map_now(struct vfio_async_container *c,
		       struct vfio_iommu_async_map_now *mn)
{
	struct vfio_iommu_async_range few[NOW_STACK], *r = few;
	unsigned int batch = NOW_STACK;
	ktime_t start = ktime_get();
	u64 prev_last = 0, done = 0;
	dma_addr_t bad = 0;
	bool hit = true;
	int ret = 0;

	if (mn->flags || mn->__reserved || !mn->nr_ranges ||
	    mn->nr_ranges > NOW_MAX)
		return -EINVAL;
	if (mn->nr_ranges > NOW_STACK) {
		r = kmalloc_array(NOW_BATCH, sizeof(*r), GFP_KERNEL_ACCOUNT);
		if (!r)
			return -ENOMEM;
		batch = NOW_BATCH;
	}

	vfio_async_count(c, VFIO_ASYNC_REQ_MAP_NOW, 1);
	vfio_async_count(c, VFIO_ASYNC_RANGES_MAP_NOW, mn->nr_ranges);
	while (done < mn->nr_ranges && !ret) {
		unsigned int n = min_t(u64, batch, mn->nr_ranges - done);
		void __user *src = u64_to_user_ptr(mn->ranges) +
				   done * sizeof(*r);

		if (copy_from_user(r, src, n * sizeof(*r))) {
			ret = -EFAULT;
			break;
		}
		/* In order across the steps too. */
		ret = vfio_async_check_ranges(r, n, &bad);
		if (!ret && done && r[0].iova <= prev_last) {
			bad = r[0].iova;
			ret = -EINVAL;
		}
		if (!ret)
			ret = map_now_step(c, r, n, &hit, &bad);
		prev_last = r[n - 1].iova + r[n - 1].size - 1;
		done += n;
	}
	if (r != few)
		kfree(r);

	vfio_async_count(c, hit ? VFIO_ASYNC_HITS : VFIO_ASYNC_MISSES, 1);
	if (ret) {
		vfio_async_count(c, VFIO_ASYNC_REQ_FAILED, 1);
		mn->error_iova = bad;
	} else {
		vfio_async_count_latency(c, hit,
					 ktime_us_delta(ktime_get(), start));
	}
	return ret;
}

int vfio_async_channel_init(void)
{
	vfio_async_chan_wq = alloc_workqueue("vfio-async-channel", WQ_UNBOUND,
					     0);
	return vfio_async_chan_wq ? 0 : -ENOMEM;
}

void vfio_async_channel_exit(void)
{
	destroy_workqueue(vfio_async_chan_wq);
}
