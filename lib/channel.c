// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvfio-async: the balloon channel, the VMM's side of the rings (see
 * VFIO_IOMMU_ASYNC_CHANNEL_CREATE in the UAPI header for the protocol).
 *
 * Requests are written at the ring's tail with their ranges in the range
 * table, a slot per range, taken in order like a second ring whose head
 * follows the requests the module has read. Nothing is published until
 * vfio_async_chan_kick(): a burst costs one store-release, and one kick at
 * most, none while the module is still reading. Completions are reaped
 * with VFIO_ASYNC_CQ_NO_CALL set, so the module does not signal while we
 * read; clearing it is followed by a barrier and one more look.
 *
 * Without the module the same calls work on a local queue of
 * completions, signalled through an eventfd of our own.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

struct vfio_async_chan {
	struct vfio_async *va;
	int fd;				/* the channel, or -1 (emulated) */
	int kick, call;			/* eventfds; call is what we poll */
	void *map;
	size_t map_size;
	struct vfio_iommu_async_ring_hdr *hdr;
	struct vfio_iommu_async_sqe *sqes;
	struct vfio_iommu_async_range *ranges;
	struct vfio_iommu_async_cqe *cqes;
	uint32_t sq_entries, cq_entries, range_entries, max_ranges;

	uint32_t sq_tail;		/* ours, published at kick */
	uint32_t range_tail;		/* next range slot */
	uint32_t range_head;		/* first slot still in use */
	/* Range slots used by each request slot, to give them back. */
	uint32_t *req_ranges;
	uint32_t sq_freed;		/* requests whose slots are given back */
	unsigned int in_flight;		/* submitted, not reaped */

	/* Emulated: completions waiting, as a small queue. */
	struct vfio_iommu_async_cqe *emu;
	unsigned int emu_n, emu_cap;

	struct vfio_async_chan_stats st;
};

static void emu_free(struct vfio_async_chan *ch)
{
	free(ch->emu);
	if (ch->call >= 0)
		close(ch->call);
	free(ch);
}

/* No module: completions made here, at submit time. */
static int emu_open(struct vfio_async_chan *ch, unsigned int requests)
{
	ch->fd = -1;
	ch->emu_cap = requests;
	ch->emu = calloc(requests, sizeof(*ch->emu));
	ch->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ch->max_ranges = 1024;
	return ch->emu && ch->call >= 0 ? 0 : -ENOMEM;
}

static int native_open(struct vfio_async_chan *ch, unsigned int requests,
		       unsigned int ranges)
{
	struct vfio_iommu_async_channel_create cr = {
		.argsz = sizeof(cr), .sq_entries = requests,
		.range_entries = ranges,
	};
	uint8_t *m;
	int fd;

	ch->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ch->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ch->kick < 0 || ch->call < 0)
		return -errno;
	cr.kick_fd = ch->kick;
	cr.call_fd = ch->call;
	fd = ioctl(ch->va->container, VFIO_IOMMU_ASYNC_CHANNEL_CREATE, &cr);
	if (fd < 0)
		return -errno;
	ch->fd = fd;
	m = mmap(NULL, cr.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	ch->map = m;
	ch->map_size = cr.mmap_size;
	ch->hdr = (void *)(m + cr.hdr_off);
	ch->sqes = (void *)(m + cr.sqes_off);
	ch->ranges = (void *)(m + cr.ranges_off);
	ch->cqes = (void *)(m + cr.cqes_off);
	ch->sq_entries = cr.sq_entries;
	ch->cq_entries = cr.cq_entries;
	ch->range_entries = cr.range_entries;
	ch->max_ranges = cr.max_ranges;
	ch->req_ranges = calloc(cr.sq_entries, sizeof(*ch->req_ranges));
	return ch->req_ranges ? 0 : -ENOMEM;
}

EXPORT void vfio_async_chan_close(struct vfio_async_chan *ch)
{
	if (!ch)
		return;
	if (ch->map)
		munmap(ch->map, ch->map_size);
	if (ch->fd >= 0)
		close(ch->fd);
	if (ch->kick >= 0)
		close(ch->kick);
	free(ch->req_ranges);
	emu_free(ch);
}

static unsigned int pow2_at_least(unsigned int v)
{
	unsigned int p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

EXPORT int vfio_async_chan_open(struct vfio_async *va,
				const struct vfio_async_chan_config *cfg,
				struct vfio_async_chan **chp)
{
	unsigned int requests = cfg && cfg->requests ? cfg->requests : 256;
	unsigned int ranges = cfg && cfg->ranges ? cfg->ranges : 0;
	struct vfio_async_chan *ch;
	int ret;

	if (requests > 4096 || ranges > 65536)
		return -EINVAL;
	requests = pow2_at_least(requests);
	ranges = ranges ? pow2_at_least(ranges) : 0;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->va = va;
	ch->fd = ch->kick = ch->call = -1;
	ret = va->native ? native_open(ch, requests, ranges) :
			   emu_open(ch, requests);
	if (ret) {
		vfio_async_chan_close(ch);
		return ret;
	}
	*chp = ch;
	return 0;
}

EXPORT int vfio_async_chan_fd(const struct vfio_async_chan *ch)
{
	return ch->call;
}

EXPORT unsigned int vfio_async_chan_in_flight(const struct vfio_async_chan *ch)
{
	return ch->in_flight;
}

EXPORT unsigned int vfio_async_chan_max_ranges(const struct vfio_async_chan *ch)
{
	return ch->max_ranges;
}

EXPORT void vfio_async_chan_stats(const struct vfio_async_chan *ch,
				  struct vfio_async_chan_stats *st)
{
	*st = ch->st;
}

/* What the emulation answers, at once. */
static int emu_submit(struct vfio_async_chan *ch, enum vfio_async_op op,
		      uint64_t cookie, const struct vfio_async_range *r)
{
	struct vfio_iommu_async_cqe *e;

	if (ch->emu_n == ch->emu_cap)
		return -EAGAIN;
	e = &ch->emu[ch->emu_n++];
	e->cookie = cookie;
	/* Mapped at once, always; nothing can be given back. */
	e->status = op == VFIO_ASYNC_RELEASE ? -EOPNOTSUPP : 0;
	e->flags = op == VFIO_ASYNC_MAP_NOW ? VFIO_ASYNC_CQE_HIT : 0;
	e->error_iova = e->status ? r[0].iova : 0;
	ch->in_flight++;
	ch->st.requests++;
	return 0;
}

/* Give back the range slots of requests the module has read. */
static void free_range_slots(struct vfio_async_chan *ch)
{
	uint32_t head = __atomic_load_n(&ch->hdr->sq_head, __ATOMIC_ACQUIRE);

	while (ch->sq_freed != head) {
		ch->range_head += ch->req_ranges[ch->sq_freed &
						 (ch->sq_entries - 1)];
		ch->sq_freed++;
	}
}

EXPORT int vfio_async_chan_submit(struct vfio_async_chan *ch,
				  enum vfio_async_op op, uint64_t cookie,
				  const struct vfio_async_range *r,
				  unsigned int n)
{
	struct vfio_iommu_async_sqe *sqe;
	unsigned int i;

	if (!n || n > ch->max_ranges ||
	    op < VFIO_ASYNC_MAP_NOW || op > VFIO_ASYNC_RELEASE)
		return -EINVAL;
	if (ch->fd < 0)
		return emu_submit(ch, op, cookie, r);

	/* A request slot and a completion slot: the module takes none else. */
	if (ch->in_flight >= ch->sq_entries)
		return -EAGAIN;
	free_range_slots(ch);
	if (ch->sq_tail - ch->sq_freed >= ch->sq_entries ||
	    ch->range_tail - ch->range_head + n > ch->range_entries)
		return -EAGAIN;

	for (i = 0; i < n; i++) {
		struct vfio_iommu_async_range *slot =
			&ch->ranges[(ch->range_tail + i) & (ch->range_entries - 1)];

		slot->iova = r[i].iova;
		slot->size = r[i].size;
	}
	sqe = &ch->sqes[ch->sq_tail & (ch->sq_entries - 1)];
	sqe->cookie = cookie;
	sqe->op = op;
	sqe->flags = 0;
	sqe->nr_ranges = n;
	sqe->range_start = ch->range_tail;
	sqe->__reserved = 0;
	ch->req_ranges[ch->sq_tail & (ch->sq_entries - 1)] = n;
	ch->range_tail += n;
	ch->sq_tail++;
	ch->in_flight++;
	ch->st.requests++;
	return 0;
}

EXPORT int vfio_async_chan_submit_pfns(struct vfio_async_chan *ch,
				       enum vfio_async_op op, uint64_t cookie,
				       const uint64_t *pfns, unsigned int n,
				       unsigned int page_shift)
{
	struct vfio_async_range *r;
	unsigned int nr;
	int ret;

	if (!n)
		return -EINVAL;
	r = malloc(n * sizeof(*r));
	if (!r)
		return -ENOMEM;
	nr = vfio_async_pfns_to_ranges(pfns, n, page_shift, r);
	ret = vfio_async_chan_submit(ch, op, cookie, r, nr);
	free(r);
	return ret;
}

static int write_kick(struct vfio_async_chan *ch)
{
	uint64_t one = 1;

	ch->st.kicks++;
	return write(ch->kick, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

EXPORT int vfio_async_chan_kick(struct vfio_async_chan *ch)
{
	uint64_t one = 1;

	if (ch->fd < 0) {
		/* Emulated: the completions are there; say so. */
		if (ch->emu_n && write(ch->call, &one, sizeof(one)) < 0)
			return -errno;
		return 0;
	}
	if (ch->sq_tail == ch->hdr->sq_tail)
		return 0;
	__atomic_store_n(&ch->hdr->sq_tail, ch->sq_tail, __ATOMIC_RELEASE);
	/* Pairs with the module's barrier between NEED_KICK and sq_tail. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ch->hdr->sq_flags, __ATOMIC_RELAXED) &
	    VFIO_ASYNC_SQ_NEED_KICK)
		return write_kick(ch);
	ch->st.kicks_saved++;
	return 0;
}

static int emu_reap(struct vfio_async_chan *ch, vfio_async_done_fn *fn,
		    void *opaque)
{
	unsigned int i, n = ch->emu_n;
	uint64_t v;

	if (read(ch->call, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	ch->emu_n = 0;
	for (i = 0; i < n; i++)
		fn(opaque, ch->emu[i].cookie, ch->emu[i].status,
		   ch->emu[i].error_iova, ch->emu[i].flags & VFIO_ASYNC_CQE_HIT);
	ch->in_flight -= n;
	ch->st.reaped += n;
	if (n)
		ch->st.reaps++;
	return n;
}

/* Read what the ring holds from cq_head; returns how many. */
static unsigned int reap_ring(struct vfio_async_chan *ch,
			      vfio_async_done_fn *fn, void *opaque)
{
	struct vfio_iommu_async_ring_hdr *hdr = ch->hdr;
	uint32_t head = hdr->cq_head, tail;
	unsigned int n = 0;

	tail = __atomic_load_n(&hdr->cq_tail, __ATOMIC_ACQUIRE);
	while (head != tail) {
		const struct vfio_iommu_async_cqe *e =
			&ch->cqes[head & (ch->cq_entries - 1)];

		fn(opaque, e->cookie, e->status, e->error_iova,
		   e->flags & VFIO_ASYNC_CQE_HIT);
		head++;
		n++;
	}
	/* Slots given back, after the entries were read. */
	__atomic_store_n(&hdr->cq_head, head, __ATOMIC_RELEASE);
	return n;
}

EXPORT int vfio_async_chan_reap(struct vfio_async_chan *ch,
				vfio_async_done_fn *fn, void *opaque)
{
	struct vfio_iommu_async_ring_hdr *hdr;
	unsigned int n = 0, got;
	uint64_t v;

	if (ch->fd < 0)
		return emu_reap(ch, fn, opaque);
	hdr = ch->hdr;
	if (read(ch->call, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	/* Reaping: the module need not call. */
	__atomic_store_n(&hdr->cq_flags, VFIO_ASYNC_CQ_NO_CALL,
			 __ATOMIC_RELAXED);
	do {
		while ((got = reap_ring(ch, fn, opaque)))
			n += got;
		/* Done: calls again, then one more look for what raced it. */
		__atomic_store_n(&hdr->cq_flags, 0, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		got = __atomic_load_n(&hdr->cq_tail, __ATOMIC_ACQUIRE) !=
		      hdr->cq_head;
		if (got)
			__atomic_store_n(&hdr->cq_flags, VFIO_ASYNC_CQ_NO_CALL,
					 __ATOMIC_RELAXED);
	} while (got);

	ch->in_flight -= n;
	ch->st.reaped += n;
	if (n)
		ch->st.reaps++;
	/* The module may have stopped for want of completion slots. */
	if (n && ch->sq_tail != hdr->sq_head) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&hdr->sq_flags, __ATOMIC_RELAXED) &
		    VFIO_ASYNC_SQ_NEED_KICK)
			write_kick(ch);
	}
	return n;
}
