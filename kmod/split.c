// SPDX-License-Identifier: GPL-2.0-only
/*
 * A large range of one mapping, pinned and mapped, or unmapped and
 * unpinned, by several threads.
 *
 * The range is cut into pieces that its caller and up to threads - 1
 * helper threads claim one at a time, so the caller does pieces too rather
 * than waiting; helpers start once the caller's first piece shows that
 * the work is slow enough to pay for them. The helpers work for the
 * caller, so they are made for the one call and take on its cgroups (cpu,
 * cpuset, memory, hugetlb), its CPUs and its nice value: a tenant's map
 * or unmap costs its own budget, never the host's or another tenant's, as
 * vhost does with its workers.
 *
 * A map: only memory whose faults cannot wait on user space is shared out
 * (anonymous, shmem/memfd, hugetlbfs: what may be deferred), so a helper
 * never hangs on a FUSE server or a driver's fault handler; a range with
 * anything else is mapped by the caller alone. The whole range is the
 * caller's span in flight (see vfio_async.h) until the last piece is done,
 * so the pieces need no lock of ours: the domains and the mapping cannot
 * change under them, and IOMMU drivers map disjoint ranges of a domain
 * concurrently. All or nothing, as vfio_async_pin_map(): the first piece
 * that fails, or the caller being killed, stops the others at their next
 * batch, and the caller unmaps the pieces that were mapped.
 *
 * An unmap: the caller holds the container's lock with nothing of the
 * range in flight, so again the pieces need no lock, and IOMMU drivers
 * unmap disjoint ranges concurrently (the DMA API does so all the time).
 * Unmapping faults nothing, so any memory is shared out; it cannot fail,
 * and is never cut short: each piece is unmapped from every domain before
 * its pages are unpinned, and the caller returns once all are.
 *
 * A piece is a run of the mapping's chunks of at least 64 MiB (a chunk of
 * a mapping made at once is that size, or its hugetlbfs page size if
 * larger; see vfio_async.h): enough to pay for a helper and for charging
 * locked_vm once per piece (pages.c), and a cut never splits a page the
 * IOMMU could map whole. A range of less than two pieces' worth (eight
 * for an unmap) is not shared out.
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

#define SPLIT_PIECE_SHIFT	VFIO_ASYNC_CHUNK_SHIFT_SYNC
#define SPLIT_MIN		(2 * BIT(SPLIT_PIECE_SHIFT))
/*
 * An unmap is shared from 8 pieces: a piece unmaps several times faster
 * than it maps, and at 256 MiB of cold 4 KiB memory a helper made the
 * unmap slower (54 ms against 41 alone, under TCG), at 1 GiB faster (123
 * against 158).
 */
#define SPLIT_MIN_UNMAP		(8 * BIT(SPLIT_PIECE_SHIFT))
/*
 * The most helpers one call starts, whatever the thread count: each is
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
 * struct split_job - a range of one mapping, done in pieces
 * @c: container
 * @dma: the mapping
 * @unmap: the pieces are unmapped and unpinned, not pinned and mapped
 * @first: its chunk that begins piece 0
 * @end: the chunk after the last piece's
 * @per: chunks in a piece
 * @nr: number of pieces
 * @next: the next piece to claim
 * @stop: set once a piece failed: the others give up at their next batch
 * @lock: protects @error and @error_piece
 * @error: the -errno of the lowest piece that failed
 * @error_piece: that piece, or ULONG_MAX
 * @mapped: bitmap of the pieces mapped (a map only)
 */
struct split_job {
	struct vfio_async_container *c;
	struct vfio_async_dma *dma;
	bool unmap;
	unsigned long first;
	unsigned long end;
	unsigned long per;
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

static void split_job_init(struct split_job *job,
			   struct vfio_async_container *c,
			   struct vfio_async_dma *dma, unsigned long first,
			   unsigned long end, bool unmap)
{
	unsigned int shift = dma->chunk_shift;

	*job = (struct split_job) {
		.c = c, .dma = dma, .unmap = unmap, .first = first,
		.end = end, .error_piece = ULONG_MAX,
		.per = shift < SPLIT_PIECE_SHIFT ?
		       BIT(SPLIT_PIECE_SHIFT - shift) : 1,
	};
	job->nr = DIV_ROUND_UP(end - first, job->per);
	spin_lock_init(&job->lock);
}

/* Piece @i of @job: [*@lo, *@hi) of the mapping. */
static void piece_bounds(const struct split_job *job, unsigned long i,
			 size_t *lo, size_t *hi)
{
	unsigned long a = job->first + i * job->per;

	vfio_async_chunk_span(job->dma, a, min(a + job->per, job->end), lo,
			      hi);
}

/*
 * Is [@start_off, @end_off) worth sharing out? Not with one thread, nor
 * when it is less than two pieces (eight for an unmap).
 */
static bool worth_sharing(const struct split_job *job, size_t start_off,
			  size_t end_off)
{
	size_t least = job->unmap ? SPLIT_MIN_UNMAP : SPLIT_MIN;

	return vfio_async_threads >= 2 && job->nr >= 2 &&
	       end_off - start_off >= least;
}

/*
 * May [@start_off, @end_off) of @dma be pinned by helpers? Not if it holds
 * memory a helper must not fault.
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

/* Map or unmap piece @i; false if it failed. */
static bool do_piece(struct split_job *job, unsigned long i, bool helper)
{
	size_t lo, hi;
	int ret;

	piece_bounds(job, i, &lo, &hi);
	if (job->unmap) {
		vfio_async_unmap_unpin(job->c, job->dma, lo, hi);
		if (helper)
			vfio_async_count(job->c,
					 VFIO_ASYNC_HELPER_UNMAP_PIECES, 1);
		return true;
	}
	ret = vfio_async_pin_map(job->c, job->dma, lo, hi, 0, &job->stop);
	if (ret) {
		piece_failed(job, i, ret);
		return false;
	}
	set_bit(i, job->mapped);
	if (helper)
		vfio_async_count(job->c, VFIO_ASYNC_HELPER_PIECES, 1);
	return true;
}

/* Claim and do a piece; false when none is left or the job stopped. */
static bool next_piece(struct split_job *job, bool helper)
{
	unsigned long i;

	if (atomic_read(&job->stop))
		return false;
	i = atomic_long_fetch_inc(&job->next);
	return i < job->nr && do_piece(job, i, helper);
}

/* Claim and do pieces until none is left or the job stops. */
static void do_pieces(struct split_job *job, bool helper)
{
	while (next_piece(job, helper))
		;
}

static int help(void *arg)
{
	struct split_helper *h = arg;

	do_pieces(h->job, true);
	/* Out through the core: no instruction of ours runs after this. */
	kthread_complete_and_exit(&h->done, 0);
}

/*
 * Start a helper for the calling thread: in its cgroups, on its CPUs, at
 * its nice value. False if none could be made; the caller does more.
 */
static bool helper_start(struct split_helper *h, struct split_job *job)
{
	ktime_t start = ktime_get();
	struct task_struct *t;
	long cost;

	h->job = job;
	init_completion(&h->done);
	t = kthread_create(help, h, "vfio-async-%s/%d",
			   job->unmap ? "unmap" : "map", task_pid_nr(current));
	if (IS_ERR(t))
		return false;
	if (cgroup_attach_task_all(current, t)) {
		/* Never woken, so help() never runs. */
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
 * Wait for a helper. A map's caller killed meanwhile stops the helpers at
 * their next batch rather than at the end of their pieces; an unmap is
 * never cut short.
 */
static void helper_wait(struct split_job *job, struct split_helper *h)
{
	if (job->unmap) {
		wait_for_completion(&h->done);
	} else if (wait_for_completion_killable(&h->done)) {
		piece_failed(job, 0, -EINTR);
		wait_for_completion(&h->done);
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

/*
 * Do all of @job, with as many helpers as pay for themselves. False, with
 * nothing done, if there was no memory for the bookkeeping, or if no
 * helper could run beside the caller: one on a single CPU, or a kernel
 * thread's (a release by a kworker's delayed fput), whose CPU and cgroups
 * the helpers would take, not the tenant's.
 */
static bool run_shared(struct split_job *job)
{
	unsigned int nr_helpers = 0, want, i;
	struct split_helper *helpers;
	ktime_t start;

	want = min3((unsigned long)vfio_async_threads - 1, job->nr - 1,
		    (unsigned long)SPLIT_HELPERS_MAX);
	want = min(want, (unsigned int)current->nr_cpus_allowed - 1);
	if (!want || (current->flags & PF_KTHREAD))
		return false;
	helpers = kcalloc(want, sizeof(*helpers), GFP_KERNEL_ACCOUNT);
	if (!job->unmap)
		job->mapped = bitmap_zalloc(job->nr, GFP_KERNEL_ACCOUNT);
	if (!helpers || (!job->unmap && !job->mapped)) {
		kfree(helpers);
		bitmap_free(job->mapped);
		return false;
	}

	/* The first piece alone tells how slow this work is. */
	start = ktime_get();
	if (next_piece(job, false)) {
		s64 first_us = ktime_us_delta(ktime_get(), start);

		while (nr_helpers < want &&
		       helper_pays(first_us, job->nr - 1, nr_helpers + 1) &&
		       helper_start(&helpers[nr_helpers], job))
			nr_helpers++;
	}
	do_pieces(job, false);
	for (i = 0; i < nr_helpers; i++)
		helper_wait(job, &helpers[i]);

	if (job->error)
		unmap_pieces(job);
	kfree(helpers);
	bitmap_free(job->mapped);
	return true;
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
	struct split_job job;
	size_t start_off, end_off;

	split_job_init(&job, c, dma, first, end, false);
	vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
	if (worth_sharing(&job, start_off, end_off) &&
	    shareable(dma, start_off, end_off) && run_shared(&job))
		return job.error;
	return vfio_async_pin_map(c, dma, start_off, end_off, 0, NULL);
}

/**
 * vfio_async_unmap_unpin_split - vfio_async_unmap_unpin() of chunks
 *	[@first, @end) of @dma, by its caller and helpers
 * @c: container, lock held, nothing of the range in flight
 * @dma: the mapping, the chunks all mapped
 * @first: first chunk
 * @end: chunk after the last
 *
 * A range too small to share, a module loaded with threads=1, no memory
 * for the bookkeeping, or no helper to be had (a caller being killed
 * cannot make one): the caller unmaps it alone.
 */
void vfio_async_unmap_unpin_split(struct vfio_async_container *c,
				  struct vfio_async_dma *dma,
				  unsigned long first, unsigned long end)
{
	struct split_job job;
	size_t start_off, end_off;

	lockdep_assert_held(&c->lock);

	split_job_init(&job, c, dma, first, end, true);
	vfio_async_chunk_span(dma, first, end, &start_off, &end_off);
	if (worth_sharing(&job, start_off, end_off) && run_shared(&job))
		return;
	vfio_async_unmap_unpin(c, dma, start_off, end_off);
}
