// SPDX-License-Identifier: GPL-2.0-only
/*
 * A mapping made at once, pinned by several threads.
 *
 * A large MAP_DMA is cut into pieces that its caller and up to threads - 1
 * helper threads claim one at a time, so the caller maps pieces too rather
 * than waiting; helpers start once the caller's first piece shows that
 * the memory pins slowly enough to pay for them. The helpers work
 * for the caller, so they are made for the one call and take on its
 * cgroups (cpu, cpuset, memory, hugetlb), its CPUs and its nice value: a
 * tenant's map costs its own budget, never the host's or another
 * tenant's, as vhost does with its workers.
 *
 * Only memory whose faults cannot wait on user space is shared out
 * (anonymous, shmem/memfd, hugetlbfs: what may be deferred), so a helper
 * never hangs on a FUSE server or a driver's fault handler; a range with
 * anything else is mapped by the caller alone.
 *
 * The whole range is the caller's span in flight (see vfio_async.h) until
 * the last piece is done, so the pieces need no lock of ours: the domains
 * and the mapping cannot change under them, and IOMMU drivers map disjoint
 * ranges of a domain concurrently.
 *
 * The pieces are the mapping's chunks: 64 MiB or its hugetlbfs page size
 * if larger (see vfio_async.h), enough to pay for a helper and for
 * charging locked_vm once per piece (pages.c), and a cut never splits a
 * page the IOMMU could map whole. A range of less than two pieces' worth
 * is not shared out.
 *
 * All or nothing, as vfio_async_pin_map(): the first piece that fails, or
 * the caller being killed, stops the others at their next batch, and the
 * caller unmaps the pieces that were mapped.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/cgroup.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "vfio_async.h"

#define SPLIT_MIN	(2 * BIT(VFIO_ASYNC_CHUNK_SHIFT_SYNC))
/*
 * The most helpers one map starts, whatever the thread count: each is
 * made for the call and attached to the caller's cgroups.
 */
#define SPLIT_HELPERS_MAX	15
/*
 * What making a helper costs the caller (kthread_create(), and attaching
 * it to cgroups, which waits for an RCU grace period), in microseconds: a
 * running mean of the last ones, from a first guess. Memory already
 * faulted in, huge pages above all, is pinned faster than that: sharing it
 * out made such maps slower than type1's.
 */
#define HELPER_COST_GUESS_US	5000
static atomic_long_t helper_cost_us = ATOMIC_LONG_INIT(HELPER_COST_GUESS_US);

/**
 * struct split_job - one mapping made at once, being pinned in pieces
 * @c: container
 * @dma: the mapping
 * @first: its chunk that is piece 0
 * @nr: number of pieces, chunks from @first
 * @next: the next piece to claim
 * @stop: set once a piece failed: the others give up at their next batch
 * @lock: protects @error and @error_piece
 * @error: the -errno of the lowest piece that failed
 * @error_piece: that piece, or ULONG_MAX
 * @mapped: bitmap of the pieces mapped
 */
struct split_job {
	struct vfio_async_container *c;
	struct vfio_async_dma *dma;
	unsigned long first;
	unsigned long nr;
	atomic_long_t next;
	atomic_t stop;
	spinlock_t lock;		/* see above */
	int error;
	unsigned long error_piece;
	unsigned long *mapped;
};

struct split_helper {
	struct split_job *job;
	struct completion done;
};

/*
 * May [@start_off, @end_off) of @dma be shared out? Not if it holds memory
 * a helper must not fault.
 */
static bool shareable(struct vfio_async_dma *dma, size_t start_off,
		      size_t end_off)
{
	int ret;

	if (!mmget_not_zero(dma->mm))
		return false;
	mmap_read_lock(dma->mm);
	ret = vfio_async_check_vaddr(dma->mm, dma->vaddr + start_off,
				     dma->vaddr + end_off - 1, dma->prot, true);
	mmap_read_unlock(dma->mm);
	mmput(dma->mm);
	return !ret;
}

/* Piece @i of @job: [*@lo, *@hi) of the mapping. */
static void piece_bounds(const struct split_job *job, unsigned long i,
			 size_t *lo, size_t *hi)
{
	vfio_async_chunk_span(job->dma, job->first + i, job->first + i + 1,
			      lo, hi);
}

/*
 * Piece @i failed with @err. The errno reported is the lowest piece's, as
 * type1, which maps in address order, would see it first; a piece stopped
 * because another failed has nothing to report.
 */
static void piece_failed(struct split_job *job, unsigned long i, int err)
{
	if (err == -ECANCELED)
		return;
	spin_lock(&job->lock);
	if (i < job->error_piece) {
		job->error_piece = i;
		job->error = err;
	}
	spin_unlock(&job->lock);
	atomic_set(&job->stop, 1);
}

/* Claim and map a piece; false when none is left or the job stopped. */
static bool map_next_piece(struct split_job *job, bool helper)
{
	unsigned long i;
	size_t lo, hi;
	int ret;

	if (atomic_read(&job->stop))
		return false;
	i = atomic_long_fetch_inc(&job->next);
	if (i >= job->nr)
		return false;
	piece_bounds(job, i, &lo, &hi);
	ret = vfio_async_pin_map(job->c, job->dma, lo, hi, false, &job->stop);
	if (ret) {
		piece_failed(job, i, ret);
		return false;
	}
	set_bit(i, job->mapped);
	if (helper)
		vfio_async_count(job->c, VFIO_ASYNC_HELPER_PIECES, 1);
	return true;
}

/* Claim and map pieces until none is left or the job stops. */
static void map_pieces(struct split_job *job, bool helper)
{
	while (map_next_piece(job, helper))
		;
}

static int help_map(void *arg)
{
	struct split_helper *h = arg;

	map_pieces(h->job, true);
	/* Out through the core: no instruction of ours runs after this. */
	kthread_complete_and_exit(&h->done, 0);
}

/*
 * Start a helper for the calling thread: in its cgroups, on its CPUs, at
 * its nice value. False if none could be made; the caller maps more.
 */
static bool helper_start(struct split_helper *h, struct split_job *job)
{
	ktime_t start = ktime_get();
	struct task_struct *t;
	long cost;

	h->job = job;
	init_completion(&h->done);
	t = kthread_create(help_map, h, "vfio-async-map/%d",
			   task_pid_nr(current));
	if (IS_ERR(t))
		return false;
	if (cgroup_attach_task_all(current, t)) {
		/* Never woken, so help_map() never runs. */
		kthread_stop(t);
		return false;
	}
	set_cpus_allowed_ptr(t, current->cpus_ptr);
	set_user_nice(t, task_nice(current));
	wake_up_process(t);
	cost = ktime_us_delta(ktime_get(), start);
	atomic_long_set(&helper_cost_us,
			(7 * atomic_long_read(&helper_cost_us) + cost) / 8);
	return true;
}

/*
 * Is helper number @k (from 1) worth making, when the caller took @first_us
 * for the first piece and @left pieces remain? It shortens the rest, alone
 * about first_us * left, from 1/k to 1/(k + 1) of that: by more than it
 * costs to make?
 */
static bool helper_pays(s64 first_us, unsigned long left, unsigned int k)
{
	return first_us * left / (k * (k + 1)) >
	       atomic_long_read(&helper_cost_us);
}

/*
 * Wait for the helpers; a caller killed meanwhile stops them at their next
 * batch rather than at the end of their pieces.
 */
static void helpers_wait(struct split_job *job, struct split_helper *h,
			 unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		if (wait_for_completion_killable(&h[i].done)) {
			piece_failed(job, 0, -EINTR);
			wait_for_completion(&h[i].done);
		}
	}
}

/* The pieces mapped are undone: the map as a whole failed. */
static void unmap_pieces(struct split_job *job)
{
	unsigned long first, end;

	for_each_set_bitrange(first, end, job->mapped, job->nr) {
		size_t lo, hi, unused;

		piece_bounds(job, first, &lo, &unused);
		piece_bounds(job, end - 1, &unused, &hi);
		vfio_async_unmap_unpin(job->c, job->dma, lo, hi);
	}
}

/**
 * vfio_async_pin_map_split - vfio_async_pin_map() of chunks [@first, @end)
 *	of a mapping made at once, by its caller and helpers
 * @c: container, with at least one domain, no lock of ours held
 * @dma: the mapping, the chunks the caller's span in flight
 * @first: first chunk
 * @end: chunk after the last
 *
 * All or nothing. A range too small to share or holding memory helpers
 * must not fault, a module loaded with threads=1, or no memory for the
 * bookkeeping: the caller maps it alone.
 */
int vfio_async_pin_map_split(struct vfio_async_container *c,
			     struct vfio_async_dma *dma, unsigned long first,
			     unsigned long end)
{
	struct split_job job = {
		.c = c, .dma = dma, .first = first, .nr = end - first,
		.error_piece = ULONG_MAX,
	};
	unsigned int nr_helpers = 0, want;
	struct split_helper *helpers;
	size_t start_off, end_off;
	ktime_t start;

	vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
	if (vfio_async_threads < 2 || job.nr < 2 ||
	    end_off - start_off < SPLIT_MIN ||
	    !shareable(dma, start_off, end_off))
		goto alone;
	want = min3((unsigned long)vfio_async_threads - 1, job.nr - 1,
		    (unsigned long)SPLIT_HELPERS_MAX);
	helpers = kcalloc(want, sizeof(*helpers), GFP_KERNEL_ACCOUNT);
	job.mapped = bitmap_zalloc(job.nr, GFP_KERNEL_ACCOUNT);
	if (!helpers || !job.mapped)
		goto alone_free;
	spin_lock_init(&job.lock);

	/* The first piece alone tells how fast this memory pins. */
	start = ktime_get();
	if (map_next_piece(&job, false)) {
		s64 first_us = ktime_us_delta(ktime_get(), start);

		while (nr_helpers < want &&
		       helper_pays(first_us, job.nr - 1, nr_helpers + 1) &&
		       helper_start(&helpers[nr_helpers], &job))
			nr_helpers++;
	}
	map_pieces(&job, false);
	helpers_wait(&job, helpers, nr_helpers);

	if (job.error)
		unmap_pieces(&job);
	kfree(helpers);
	bitmap_free(job.mapped);
	return job.error;

alone_free:
	kfree(helpers);
	bitmap_free(job.mapped);
alone:
	return vfio_async_pin_map(c, dma, start_off, end_off, false, NULL);
}
