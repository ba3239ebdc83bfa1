// SPDX-License-Identifier: GPL-2.0-only
/*
 * A mapping made at once, pinned by several threads.
 *
 * A large MAP_DMA is cut into pieces that its caller and up to threads - 1
 * helper threads claim one at a time, so the caller maps pieces too rather
 * than waiting. The helpers work for the caller, so they are made for the
 * one call and take on its cgroups (cpu, cpuset, memory, hugetlb), its
 * CPUs and its nice value: a tenant's map costs its own budget, never the
 * host's or another tenant's, as vhost does with its workers.
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
 * Pieces are 64 MiB or more: enough to pay for a helper and for charging
 * locked_vm once per piece (pages.c), and cut at IOVA multiples of their
 * size, never below the largest hugetlbfs page of the range, so that a cut
 * never splits a page the IOMMU could map whole.
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
#include <linux/hugetlb.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "vfio_async.h"

#define PIECE_MIN	SZ_64M

/**
 * struct split_job - one mapping made at once, being pinned in pieces
 * @c: container
 * @dma: the mapping
 * @start_off: first byte, an offset in @dma
 * @end_off: end, exclusive
 * @first_len: length of piece 0 (up to the first cut)
 * @piece: length of the others (but the last)
 * @nr: number of pieces
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
	size_t start_off;
	size_t end_off;
	size_t first_len;
	size_t piece;
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
 * May [@start_off, @end_off) of @dma be shared out, and how long must a
 * piece be? 0 when the range holds memory a helper must not fault.
 */
static size_t piece_len(struct vfio_async_dma *dma, size_t start_off,
			size_t end_off)
{
	unsigned long addr = dma->vaddr + start_off;
	unsigned long last = dma->vaddr + end_off - 1;
	size_t len = PIECE_MIN;

	if (!mmget_not_zero(dma->mm))
		return 0;
	mmap_read_lock(dma->mm);
	if (vfio_async_check_vaddr(dma->mm, addr, last, dma->prot, true)) {
		len = 0;
	} else {
		struct vm_area_struct *vma;

		/* check_vaddr() found the range covered by VMAs. */
		while (addr <= last && (vma = vma_lookup(dma->mm, addr))) {
			len = max_t(size_t, len, vma_kernel_pagesize(vma));
			if (vma->vm_end - 1 >= last)
				break;
			addr = vma->vm_end;
		}
	}
	mmap_read_unlock(dma->mm);
	mmput(dma->mm);
	return len;
}

/* Piece @i of @job: [*@lo, *@hi) of the mapping. */
static void piece_bounds(const struct split_job *job, unsigned long i,
			 size_t *lo, size_t *hi)
{
	if (!i) {
		*lo = job->start_off;
		*hi = job->start_off + job->first_len;
		return;
	}
	*lo = job->start_off + job->first_len + (i - 1) * job->piece;
	*hi = min(job->end_off, *lo + job->piece);
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

/* Claim and map pieces until none is left or the job stops. */
static void map_pieces(struct split_job *job, bool helper)
{
	while (!atomic_read(&job->stop)) {
		unsigned long i = atomic_long_fetch_inc(&job->next);
		size_t lo, hi;
		int ret;

		if (i >= job->nr)
			return;
		piece_bounds(job, i, &lo, &hi);
		ret = vfio_async_pin_map(job->c, job->dma, lo, hi, false,
					 &job->stop);
		if (ret) {
			piece_failed(job, i, ret);
			return;
		}
		set_bit(i, job->mapped);
		if (helper)
			vfio_async_count(job->c, VFIO_ASYNC_HELPER_PIECES, 1);
	}
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
	struct task_struct *t;

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
	return true;
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

/* Cut [@start_off, @end_off) of @dma at IOVA multiples of @piece. */
static void job_cut(struct split_job *job, struct vfio_async_dma *dma,
		    size_t start_off, size_t end_off, size_t piece)
{
	size_t len = end_off - start_off;
	size_t head = (piece - ((dma->iova + start_off) & (piece - 1))) &
		      (piece - 1);

	job->start_off = start_off;
	job->end_off = end_off;
	job->piece = piece;
	job->first_len = min(len, head ?: piece);
	job->nr = 1 + DIV_ROUND_UP(len - job->first_len, piece);
}

/**
 * vfio_async_pin_map_split - vfio_async_pin_map() of a mapping made at
 *	once, by its caller and helpers
 * @c: container, with at least one domain, no lock of ours held
 * @dma: the mapping, the range the caller's span in flight
 * @start_off: offset in @dma, page aligned
 * @end_off: offset in @dma, page aligned, exclusive
 *
 * All or nothing. A range too small to share or holding memory helpers
 * must not fault, a module loaded with threads=1, or no memory for the
 * bookkeeping: the caller maps it alone.
 */
int vfio_async_pin_map_split(struct vfio_async_container *c,
			     struct vfio_async_dma *dma, size_t start_off,
			     size_t end_off)
{
	struct split_job job = {
		.c = c, .dma = dma, .error_piece = ULONG_MAX,
	};
	unsigned int nr_helpers = 0, want;
	struct split_helper *helpers;
	size_t piece;

	piece = vfio_async_threads > 1 && end_off - start_off >= 2 * PIECE_MIN ?
		piece_len(dma, start_off, end_off) : 0;
	if (!piece)
		goto alone;
	job_cut(&job, dma, start_off, end_off, piece);
	want = min_t(unsigned long, vfio_async_threads - 1, job.nr - 1);
	if (!want)
		goto alone;
	helpers = kcalloc(want, sizeof(*helpers), GFP_KERNEL_ACCOUNT);
	job.mapped = bitmap_zalloc(job.nr, GFP_KERNEL_ACCOUNT);
	if (!helpers || !job.mapped)
		goto alone_free;
	spin_lock_init(&job.lock);

	while (nr_helpers < want && helper_start(&helpers[nr_helpers], &job))
		nr_helpers++;
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
