/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio_iommu_async: private definitions shared by the module's files.
 *
 * Objects, one file each:
 *   container.c  struct vfio_async_container: the iommu_data VFIO hands us,
 *                its IOMMU domains and groups (attach, detach, replay).
 *   iova.c       the IOVA bookkeeping: the tree of struct vfio_async_dma and
 *                the list of usable IOVA ranges.
 *   split.c      a large range of a mapping, pinned and mapped (made at
 *                once) or unmapped and unpinned in pieces by its caller
 *                and helper threads.
 *   pages.c      the pin-and-map engine: pins user pages in batches, maps
 *                each physically contiguous run with one iommu_map(), and
 *                unmaps a window of runs at a time, then unpins them.
 *   deferred.c   the per-chunk state of mappings, the order chunks are
 *                mapped in (requests first, then the sweep), and the
 *                requests waiting for chunks.
 *   channel.c    the balloon channel: a VMM's requests through shared
 *                rings and eventfds, hit-checked or waited for.
 *   worker.c     the background threads that pin and map deferred chunks.
 *   ioctl.c      the container ioctls (type1v2 compatible, and ours).
 *   sysfs.c      /sys/kernel/vfio_async/, module-wide and per container.
 *   main.c       module parameters and registration with VFIO.
 *
 * Where a pinned PFN lives: nowhere but the IOMMU page table. A pinned page
 * is always mapped in every domain of its container, and the first domain
 * is the record used to find the PFNs to unpin (iommu_iova_to_phys()). So a
 * range is pinned exactly when it is mapped, and teardown needs no memory.
 *
 * Chunks: a mapping is cut at IOVA multiples of its chunk size, 2 MiB for
 * a deferred mapping and 64 MiB for one made at once, or the mapping's
 * hugetlbfs page size where that is larger (and, deferred, where the IOMMU
 * can map such a page whole): a chunk of huge-page memory is then one IOMMU
 * page, and the pieces a MAP_DMA is shared out in are its chunks. No IOMMU
 * page crosses a chunk boundary (runs are cut there), so unmapping whole
 * chunks never splits one, and what was mapped is found again run by run.
 * A chunk is pending, in flight (someone is pinning it with no lock held),
 * mapped (pinned and mapped in every domain), failed, or released (given
 * back by the balloon). Its state is one bit in one of four bitmaps of its
 * mapping (none for in flight): O(1) to look up once the mapping is found
 * in the rb-tree, in O(log n).
 *
 * Order: chunks a MAP_NOW request waits for (the urgent queue) come first,
 * then those MAP_NEXT hints named (the ahead queue, in the order given),
 * then the sweep: the lowest pending chunk of the leftmost mapping of the
 * sweep queue, a second rb-tree holding only the deferred mappings with
 * chunks left, so claiming costs the same with one mapping or 65535.
 * Requests wait per chunk: each range a request waits for is a struct
 * vfio_async_wait in an interval tree by IOVA, found in O(log n) when a
 * span of chunks completes.
 *
 * In flight: a span of chunks is claimed under chunk_lock, then pinned and
 * mapped with no lock held, and the result recorded under chunk_lock. A
 * mapping made at once (MAP_DMA) is in flight the same way while its
 * caller pins it, so no pin ever runs under a lock of ours. What a span in
 * flight relies on, the domain list and its mapping, only changes after
 * vfio_async_quiesce(), which stops new claims and waits for the spans in
 * flight; a background span notices the quiesce between two batches of
 * pages and gives its chunks back, so the wait is short.
 *
 * Naming: @last is inclusive, @end is exclusive. An IOVA range may end at
 * the top of the 64-bit space, where an exclusive end would wrap to 0, so
 * ends are offsets into their mapping (@start_off, @end_off: never above
 * its size) or inclusive IOVAs; dma->iova + dma->size is never computed.
 *
 * Lock order, outermost first:
 *   vfio_container::group_lock (VFIO core; write around attach_group and
 *                               detach_group. 6.1 and 6.12 call our ioctl
 *                               without it, so an ioctl racing the last
 *                               group's detach can see the container
 *                               released: a core bug type1 shares, not
 *                               fixable here)
 *   vfio_async_container::lock  (mutex: structure. Never held across a
 *                               pin but in one case VFIO's order never
 *                               makes: a first domain given mappings made
 *                               before it; held while a new domain is
 *                               given the existing mappings, which maps
 *                               and pins nothing new; a large unmap holds
 *                               it while it makes helper threads, which
 *                               takes cgroup_mutex and the hotplug lock,
 *                               and waits for them, which take nothing of
 *                               ours, see split.c)
 *   mm->mmap_lock               (read while pinning, write while accounting)
 *   vfio_async_container::chunk_lock (spinlock: chunk state, claims, waits)
 *   vfio_async_work_lock        (spinlock: the list of containers with work)
 *   vfio_async_channel::cq_lock (spinlock: the completion ring)
 * A waiter's done() runs with no spinlock of ours held (c->lock may be), so
 * posting a completion never nests in chunk_lock; the channel's kick
 * callback runs under the kick eventfd's wait-queue lock and only queues
 * work.
 * Nothing here is called with mmap_lock held, so the reverse never occurs.
 * Waiting for spans in flight is done with no lock of ours held.
 */
#ifndef VFIO_ASYNC_H
#define VFIO_ASYNC_H

#include <linux/iommu.h>
#include <linux/kobject.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/sysfs.h>
#include <linux/types.h>
#include <linux/wait.h>

#include "vfio_driver_ops.h"
#include <linux/vfio_iommu_async.h>

#define VFIO_ASYNC_VERSION	"0.2.0"

/* Chunk sizes (see above), unless the memory's pages are larger. */
#define VFIO_ASYNC_CHUNK_SHIFT_DEFERRED	21
#define VFIO_ASYNC_CHUNK_SHIFT_SYNC	26

/* Module parameters (main.c). */
extern bool vfio_async_type1v2_dropin;
extern bool vfio_async_allow_unsafe_interrupts;
extern unsigned int vfio_async_dma_entry_limit;
extern unsigned int vfio_async_threads;
extern bool vfio_async_join_domains;

/* IOMMU page sizes counted: 4 KiB, 2 MiB, 1 GiB and any other. */
#define VFIO_ASYNC_NR_PAGE_SIZES	4

/* Counters, kept per container and module-wide; one sysfs file each. */
enum vfio_async_counter {
	VFIO_ASYNC_SYNC_BYTES,		/* bytes of mappings made at once */
	VFIO_ASYNC_DEFERRED_BYTES,	/* bytes of deferred mappings ... */
	VFIO_ASYNC_MAPPED_BYTES,	/* ... mapped by now, */
	VFIO_ASYNC_PENDING_BYTES,	/* ... not yet (or in flight), */
	VFIO_ASYNC_FAILED_BYTES,	/* ... that could not be mapped */
	VFIO_ASYNC_PINNED_PAGES,
	VFIO_ASYNC_CHUNKS_MAPPED,	/* deferred chunks mapped, ever */
	VFIO_ASYNC_BACKGROUND_ERRORS,	/* deferred chunks failed, ever */
	VFIO_ASYNC_IOMMU_MAP_CALLS,	/* one per contiguous run and domain */
	VFIO_ASYNC_HELPER_PIECES,	/* pieces of MAP_DMAs helpers mapped */
	VFIO_ASYNC_HELPER_UNMAP_PIECES,	/* pieces helpers unmapped */
	VFIO_ASYNC_WORKERS_BUSY,	/* background threads mapping it now */
	VFIO_ASYNC_RELEASED_BYTES,	/* deferred bytes released, now */
	/* The balloon channel and VFIO_IOMMU_ASYNC_MAP_NOW (ever). */
	VFIO_ASYNC_REQ_MAP_NOW,		/* requests, by type */
	VFIO_ASYNC_REQ_MAP_NEXT,
	VFIO_ASYNC_REQ_RELEASE,
	VFIO_ASYNC_REQ_FAILED,		/* requests completed with an error */
	VFIO_ASYNC_RANGES_MAP_NOW,	/* ranges, by type */
	VFIO_ASYNC_RANGES_MAP_NEXT,
	VFIO_ASYNC_RANGES_RELEASE,
	VFIO_ASYNC_HITS,		/* MAP_NOW with every chunk mapped */
	VFIO_ASYNC_MISSES,		/* MAP_NOW that had to wait */
	VFIO_ASYNC_MERGES,		/* ranges queued onto an adjacent one */
	VFIO_ASYNC_RELEASE_CHUNKS,	/* chunks released */
	VFIO_ASYNC_RELEASE_BYTES,	/* their bytes */
	VFIO_ASYNC_KICKS,		/* kick eventfd signals received */
	VFIO_ASYNC_CALLS,		/* call eventfd signals sent */
	VFIO_ASYNC_CALLS_SUPPRESSED,	/* not sent: the VMM was reaping */
	/* IOMMU page-table entries mapping it now, by size, all domains. */
	VFIO_ASYNC_IOMMU_PAGES_4K,
	VFIO_ASYNC_IOMMU_PAGES_2M,
	VFIO_ASYNC_IOMMU_PAGES_1G,
	VFIO_ASYNC_IOMMU_PAGES_OTHER,	/* any other size */
	VFIO_ASYNC_NR_COUNTERS,
};

/* MAP_NOW latency, log2 microsecond buckets: [0, 1), [1, 2), [2, 4) ... */
#define VFIO_ASYNC_LAT_BUCKETS	24

struct vfio_async_counters {
	atomic_long_t v[VFIO_ASYNC_NR_COUNTERS];
	atomic_long_t lat_hit[VFIO_ASYNC_LAT_BUCKETS];
	atomic_long_t lat_miss[VFIO_ASYNC_LAT_BUCKETS];
};

extern struct vfio_async_counters vfio_async_totals;
extern atomic_long_t vfio_async_nr_containers;
extern const char *const vfio_async_counter_names[VFIO_ASYNC_NR_COUNTERS];

/**
 * struct vfio_async_dma - one user mapping
 * @node: in vfio_async_container::dma_tree, keyed by @iova
 * @sweep_node: in vfio_async_container::sweep while it may have pending
 *		chunks; cleared (RB_EMPTY_NODE) otherwise
 * @iova: first IOVA
 * @size: bytes; @iova + @size - 1 does not wrap, @iova + @size may
 * @vaddr: user address backing @iova
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 * @chunk_shift: log2 of its chunk size (see above)
 * @nchunks: chunks in the mapping (see vfio_async_chunk_span())
 * @mapped: bitmap, chunks pinned and mapped in every domain
 * @pending: bitmap, deferred chunks nobody has claimed yet
 * @failed: bitmap, deferred chunks the background could not map
 * @released: bitmap, deferred chunks given back by the balloon channel
 * @next_pending: no pending chunk below this index
 * @deferred: made by MAP_DMA_DEFERRED: mapped by the background workers,
 *	      with locked_vm charged for all of it up front
 * @mm: the address space @vaddr belongs to; mmgrab()ed, so it stays valid
 *      while its pages may be gone: pin only under mmget_not_zero()
 * @task: group leader of the mapping process, for RLIMIT_MEMLOCK
 * @lock_cap: the mapping process had CAP_IPC_LOCK
 *
 * The fields set at creation never change. The tree links change under
 * both vfio_async_container::lock and ::chunk_lock; the bitmaps and
 * @next_pending under ::chunk_lock.
 */
struct vfio_async_dma {
	struct rb_node node;
	struct rb_node sweep_node;
	dma_addr_t iova;
	size_t size;
	unsigned long vaddr;
	int prot;
	unsigned int chunk_shift;
	unsigned long nchunks;
	unsigned long *mapped;
	unsigned long *pending;
	unsigned long *failed;
	unsigned long *released;
	unsigned long next_pending;
	bool deferred;
	struct mm_struct *mm;
	struct task_struct *task;
	bool lock_cap;
};

/* Where a claimed span came from, and where it goes back if given back. */
enum vfio_async_queue {
	VFIO_ASYNC_Q_SYNC,	/* a mapping made at once, by its caller */
	VFIO_ASYNC_Q_URGENT,	/* chunks a MAP_NOW waits for */
	VFIO_ASYNC_Q_AHEAD,	/* chunks MAP_NEXT named */
	VFIO_ASYNC_Q_SWEEP,	/* the rest, lowest IOVA first */
};

/**
 * struct vfio_async_span - chunks [@first, @first + @nr) of @dma, claimed:
 *	in flight until vfio_async_complete_span()
 * @dma: the mapping
 * @first: first chunk
 * @nr: number of chunks
 * @queue: where it came from
 * @background: not a mapping made at once: a quiesce (or its mapper being
 *		killed) makes it give its chunks back rather than finish
 * @pool: held by a thread of the shared pool (its share, workers_busy)
 */
struct vfio_async_span {
	struct vfio_async_dma *dma;
	unsigned long first;
	unsigned long nr;
	enum vfio_async_queue queue;
	bool background;
	bool pool;
};

/*
 * Chunks [@first, @end) of @dma, queued to be mapped before the sweep: on
 * vfio_async_container::urgent or ::ahead. Claims take the pending chunks
 * in it from the front; chunks no longer pending are passed over.
 */
struct vfio_async_prio {
	struct list_head next;
	struct vfio_async_dma *dma;
	unsigned long first;
	unsigned long end;
};

struct vfio_async_wait;

/**
 * struct vfio_async_waiter - a request waiting for chunks to be mapped
 * @waits: its struct vfio_async_wait still waiting
 * @error: 0, or the -errno that ended it
 * @error_iova: the IOVA of the range that failed
 * @done: called once, when every wait is done or one failed, with no
 *	  spinlock of ours held; the owner may free it from then on
 * @done_node: on a list of waiters whose done() is due
 * @finished: done() is due or called; set under chunk_lock
 */
struct vfio_async_waiter {
	struct list_head waits;
	int error;
	dma_addr_t error_iova;
	void (*done)(struct vfio_async_waiter *w);
	struct list_head done_node;
	bool finished;
};

/**
 * struct vfio_async_wait - the chunks of one range of a waiter, in one
 *	mapping, that were not mapped when it asked
 * @rb: in vfio_async_container::waits
 * @start: IOVA of its first chunk (the interval tree's key)
 * @last: last IOVA of its last chunk
 * @subtree_last: the interval tree's
 * @dma: the mapping
 * @first: first chunk
 * @end: chunk after the last
 * @remaining: chunks not mapped yet
 * @range_iova: IOVA of the request's range, for the error report
 * @waiter: whose
 * @node: in waiter->waits
 */
struct vfio_async_wait {
	struct rb_node rb;
	dma_addr_t start;
	dma_addr_t last;
	dma_addr_t subtree_last;
	struct vfio_async_dma *dma;
	unsigned long first;
	unsigned long end;
	unsigned long remaining;
	dma_addr_t range_iova;
	struct vfio_async_waiter *waiter;
	struct list_head node;
};

/**
 * struct vfio_async_domain - an IOMMU domain and the groups attached to it
 * @next: in vfio_async_container::domains
 * @domain: the IOMMU domain
 * @groups: struct vfio_async_group, attached to @domain
 * @enforce_cc: @domain blocks non-coherent (no-snoop) DMA
 * @pgsizes: its page sizes when it joined the container, with which its
 *	     pages are counted both ways (a driver may change the domain's)
 * @pages: its page-table entries mapping the container's memory, by size
 *	   (the VFIO_ASYNC_IOMMU_PAGES_* counters, from the 4K one on)
 */
struct vfio_async_domain {
	struct list_head next;
	struct iommu_domain *domain;
	struct list_head groups;
	bool enforce_cc;
	unsigned long pgsizes;
	atomic_long_t pages[VFIO_ASYNC_NR_PAGE_SIZES];
};

struct vfio_async_group {
	struct list_head next;
	struct iommu_group *iommu_group;
};

/* An inclusive range of IOVAs devices may use. */
struct vfio_async_iova_range {
	struct list_head next;
	dma_addr_t start;
	dma_addr_t last;
};

/* One sysfs file of a container: a counter, or one of the fixed files. */
struct vfio_async_attr {
	struct kobj_attribute kattr;
	struct vfio_async_container *c;
	int index;
};

/* The fixed files of a container's directory, then one per counter. */
#define VFIO_ASYNC_NR_FIXED_ATTRS	4
#define VFIO_ASYNC_NR_ATTRS	(VFIO_ASYNC_NR_FIXED_ATTRS + VFIO_ASYNC_NR_COUNTERS)

/**
 * struct vfio_async_container - the backend's state for one VFIO container
 * @ref: held by VFIO (until release) and by a worker serving it
 * @id: unique number, part of the directory's name
 * @owner_pid: thread group that set the container up
 * @owner_comm: its command name
 * @dir: its sysfs directory, a kobject of the kernel's own type, so that
 *	 nothing of this module runs when its last reference goes
 * @attrs: the files in @dir; @attr_ptrs and @attr_group list them
 * @lock: see below
 * @domains: struct vfio_async_domain; the first one is the PFN record
 * @iova_ranges: sorted struct vfio_async_iova_range; empty means any IOVA
 *               (no domain yet)
 * @dma_avail: how many more mappings may be created
 * @pgsize_bitmap: page sizes every domain supports, at least PAGE_SIZE
 * @chunk_lock: see below
 * @dma_tree: struct vfio_async_dma by IOVA, never overlapping
 * @sweep: the deferred ones among them that may have pending chunks, by
 *	   IOVA: the background takes the leftmost, in O(1), however many
 *	   mappings are done
 * @quiesced: callers of vfio_async_quiesce() not yet resumed; nothing is
 *	      claimed while non-zero
 * @in_flight: spans claimed and not completed
 * @bg_in_flight: of those, the background's (its share of the pool)
 * @idle: woken when @in_flight drops to 0
 * @urgent: struct vfio_async_prio that MAP_NOW requests wait for, oldest
 *	    first
 * @ahead: struct vfio_async_prio that MAP_NEXT named, in their order
 * @nr_ahead: entries on @ahead (bounded)
 * @waits: struct vfio_async_wait by IOVA (an interval tree)
 * @first_error: -errno of the first chunk that failed, or 0
 * @first_error_iova: its IOVA
 * @work_node: in vfio_async_work_list while it may have work (under
 *	       vfio_async_work_lock)
 * @channel: its balloon channel, or NULL (under @lock)
 * @gone: released by VFIO; a channel still open finds nothing here, and
 *	the container is not queued for the threads again (set under @lock;
 *	read under it, or with READ_ONCE() where it is not held)
 * @counters: this container's counters (atomic, read without a lock)
 *
 * @lock (a mutex) serialises changes of structure: @domains (and their
 * groups), @iova_ranges, @dma_avail, @pgsize_bitmap, and adding or
 * removing a mapping. It is never held across a pin, nor across a wait but
 * for the helpers of a large unmap (split.c), which take no lock of ours.
 * @chunk_lock (a spinlock, taken under @lock when both are) protects the
 * chunk state: every mapping's bitmaps, @sweep, @urgent, @ahead, @waits,
 * @quiesced, @in_flight, @bg_in_flight, @first_error(_iova), and the byte
 * counters' moves, so that they always add up. @dma_tree changes under both, and may be read
 * under either. Claims take only @chunk_lock: a worker never waits for an
 * ioctl of another tenant.
 */
struct vfio_async_container {
	struct kref ref;
	unsigned int id;
	pid_t owner_pid;
	char owner_comm[TASK_COMM_LEN];
	struct kobject *dir;
	struct vfio_async_attr attrs[VFIO_ASYNC_NR_ATTRS];
	struct attribute *attr_ptrs[VFIO_ASYNC_NR_ATTRS + 1];
	struct attribute_group attr_group;

	struct mutex lock;		/* see above */
	struct list_head domains;
	struct list_head iova_ranges;
	unsigned int dma_avail;
	unsigned long pgsize_bitmap;

	spinlock_t chunk_lock;		/* see above */
	struct rb_root dma_tree;
	struct rb_root_cached sweep;
	unsigned int quiesced;
	unsigned int in_flight;
	unsigned int bg_in_flight;
	wait_queue_head_t idle;
	struct list_head urgent;
	struct list_head ahead;
	unsigned int nr_ahead;
	struct rb_root_cached waits;
	int first_error;
	dma_addr_t first_error_iova;

	struct list_head work_node;
	struct vfio_async_channel *channel;
	bool gone;
	struct vfio_async_counters counters;
};

struct vfio_async_channel;

static inline void vfio_async_count(struct vfio_async_container *c,
				    enum vfio_async_counter i, long delta)
{
	atomic_long_add(delta, &c->counters.v[i]);
	atomic_long_add(delta, &vfio_async_totals.v[i]);
}

/* Count a MAP_NOW's completion time, @us microseconds, hit or miss. */
static inline void vfio_async_count_latency(struct vfio_async_container *c,
					    bool hit, u64 us)
{
	int b = us ? min_t(int, fls64(us), VFIO_ASYNC_LAT_BUCKETS - 1) : 0;

	atomic_long_inc(hit ? &c->counters.lat_hit[b] : &c->counters.lat_miss[b]);
	atomic_long_inc(hit ? &vfio_async_totals.lat_hit[b] :
			&vfio_async_totals.lat_miss[b]);
}

/* container.c */
void *vfio_async_open(unsigned long type);
void vfio_async_release(void *iommu_data);
void vfio_async_container_get(struct vfio_async_container *c);
void vfio_async_container_put(struct vfio_async_container *c);
int vfio_async_attach_group(void *iommu_data, struct iommu_group *iommu_group,
			    enum vfio_group_type type);
void vfio_async_detach_group(void *iommu_data, struct iommu_group *iommu_group);
struct iommu_domain *vfio_async_group_iommu_domain(void *iommu_data,
						   struct iommu_group *group);
bool vfio_async_all_domains_enforce_cc(struct vfio_async_container *c);
void vfio_async_remove_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma);
int vfio_async_quiesce_killable(struct vfio_async_container *c);
void vfio_async_quiesce(struct vfio_async_container *c);
void vfio_async_resume(struct vfio_async_container *c);

static inline size_t vfio_async_min_pgsize(struct vfio_async_container *c)
{
	return (size_t)1 << __ffs(c->pgsize_bitmap);
}

/* iova.c */
struct vfio_async_dma *vfio_async_find_dma(struct vfio_async_container *c,
					   dma_addr_t start, size_t size);
struct vfio_async_dma *vfio_async_first_dma_in(struct vfio_async_container *c,
					       dma_addr_t start, dma_addr_t last);
void vfio_async_link_dma(struct vfio_async_container *c,
			 struct vfio_async_dma *dma);
void vfio_async_sweep_add(struct vfio_async_container *c,
			  struct vfio_async_dma *dma);
void vfio_async_sweep_del(struct vfio_async_container *c,
			  struct vfio_async_dma *dma);
void vfio_async_unlink_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma);
bool vfio_async_iova_usable(struct vfio_async_container *c, dma_addr_t start,
			    dma_addr_t last);
int vfio_async_compute_iova_ranges(struct vfio_async_container *c,
				   struct vfio_async_domain *extra_domain,
				   struct list_head *ranges);
bool vfio_async_dmas_fit(struct vfio_async_container *c,
			 struct list_head *ranges);
void vfio_async_install_iova_ranges(struct vfio_async_container *c,
				    struct list_head *ranges);
void vfio_async_free_iova_ranges(struct list_head *ranges);

/* pages.c */
bool vfio_async_vma_deferrable(struct vm_area_struct *vma);
int vfio_async_check_vaddr(struct mm_struct *mm, unsigned long start,
			   unsigned long last, int prot, bool deferred);
void vfio_async_page_shifts(struct mm_struct *mm, unsigned long start,
			    unsigned long last, unsigned int *smallest,
			    unsigned int *largest);
long vfio_async_forget_pages(struct vfio_async_container *c,
			     struct vfio_async_domain *d);
/* vfio_async_pin_map() flags */
#define VFIO_ASYNC_PIN_QUIESCE		BIT(0)
#define VFIO_ASYNC_PIN_UNHURRIED	BIT(1)
int vfio_async_pin_map(struct vfio_async_container *c,
		       struct vfio_async_dma *dma, size_t start_off,
		       size_t end_off, unsigned int flags, const atomic_t *stop);
void vfio_async_unmap_unpin(struct vfio_async_container *c,
			    struct vfio_async_dma *dma, size_t start_off,
			    size_t end_off);
int vfio_async_lock_acct(struct vfio_async_dma *dma, long npages);
int vfio_async_copy_mappings(struct vfio_async_container *c,
			     struct iommu_domain *from,
			     struct vfio_async_domain *to,
			     struct vfio_async_dma *dma, size_t start_off,
			     size_t end_off);

/* split.c */
int vfio_async_pin_map_split(struct vfio_async_container *c,
			     struct vfio_async_dma *dma, unsigned long first,
			     unsigned long end);
void vfio_async_unmap_unpin_split(struct vfio_async_container *c,
				  struct vfio_async_dma *dma,
				  unsigned long first, unsigned long end);

/* deferred.c */
struct vfio_async_dma *vfio_async_dma_alloc(struct vfio_async_container *c,
					    dma_addr_t iova, size_t size,
					    unsigned long vaddr, int prot,
					    bool deferred,
					    unsigned int page_shift);
void vfio_async_dma_free(struct vfio_async_dma *dma);
void vfio_async_chunk_span(struct vfio_async_dma *dma, unsigned long first,
			   unsigned long end, size_t *start_off,
			   size_t *end_off);
void vfio_async_begin_sync(struct vfio_async_container *c,
			   struct vfio_async_dma *dma,
			   struct vfio_async_span *span);
void vfio_async_unmap_all(struct vfio_async_container *c,
			  struct vfio_async_dma *dma);
void vfio_async_forget_dma(struct vfio_async_container *c,
			   struct vfio_async_dma *dma);
int vfio_async_replay(struct vfio_async_container *c,
		      struct vfio_async_domain *from,
		      struct vfio_async_domain *to);
bool vfio_async_has_pending(struct vfio_async_container *c);

/* What vfio_async_claim() may take. */
#define VFIO_ASYNC_CLAIM_POOL		BIT(0)	/* a pool thread: its share */
#define VFIO_ASYNC_CLAIM_URGENT_ONLY	BIT(1)	/* only what requests wait for */
#define VFIO_ASYNC_CLAIM_NO_SWEEP	BIT(2)	/* only what requests named */
bool vfio_async_claim(struct vfio_async_container *c, unsigned int flags,
		      unsigned int share, struct vfio_async_span *span);
int vfio_async_check_ranges(const struct vfio_iommu_async_range *r,
			    unsigned int n, dma_addr_t *bad);
int vfio_async_ranges_mapped(struct vfio_async_container *c,
			     const struct vfio_iommu_async_range *r,
			     unsigned int n, dma_addr_t *bad);
int vfio_async_want_ranges(struct vfio_async_container *c,
			   const struct vfio_iommu_async_range *r,
			   unsigned int n, enum vfio_async_queue queue,
			   struct vfio_async_waiter *waiter, dma_addr_t *bad);
bool vfio_async_waiter_cancel(struct vfio_async_container *c,
			      struct vfio_async_waiter *waiter);
bool vfio_async_waiter_cancel_locked(struct vfio_async_container *c,
				     struct vfio_async_waiter *waiter);
int vfio_async_release_ranges(struct vfio_async_container *c,
			      const struct vfio_iommu_async_range *r,
			      unsigned int n, dma_addr_t *bad);
void vfio_async_forget_waits(struct vfio_async_container *c,
			     struct vfio_async_dma *dma);
int vfio_async_map_span(struct vfio_async_container *c,
			struct vfio_async_span *span);
void vfio_async_complete_span(struct vfio_async_container *c,
			      struct vfio_async_span *span, int ret);
void vfio_async_abort_sync(struct vfio_async_container *c,
			   struct vfio_async_span *span);

/* channel.c */
int vfio_async_channel_create(struct vfio_async_container *c,
			      const struct vfio_iommu_async_channel_create *req,
			      void __user *arg);
int vfio_async_map_now(struct vfio_async_container *c,
		       struct vfio_iommu_async_map_now *mn);
int vfio_async_channel_init(void);
void vfio_async_channel_exit(void);

/* worker.c */
int vfio_async_workers_start(void);
void vfio_async_workers_stop(void);
void vfio_async_queue_work(struct vfio_async_container *c);
void vfio_async_dequeue_work(struct vfio_async_container *c);
void vfio_async_work_done(void);

/* fault.c: named fault points, /sys/kernel/debug/vfio_async/<name>/ */
enum vfio_async_fault_point {
	VFIO_ASYNC_FAULT_CHUNK_PIN,	/* fail_chunk_pin: pin_pages() */
	VFIO_ASYNC_FAULT_CHUNK_MAP,	/* fail_chunk_map: iommu_map() of a run */
	VFIO_ASYNC_NR_FAULTS,
};

#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS
int vfio_async_fault(enum vfio_async_fault_point point);
void vfio_async_fault_init(void);
void vfio_async_fault_exit(void);
#else
/* -ENOMEM when @point should fail now; never without fault injection. */
static inline int vfio_async_fault(enum vfio_async_fault_point point)
{
	return 0;
}

static inline void vfio_async_fault_init(void) { }
static inline void vfio_async_fault_exit(void) { }
#endif

/* ioctl.c */
long vfio_async_ioctl(void *iommu_data, unsigned int cmd, unsigned long arg);

/* sysfs.c */
int vfio_async_sysfs_init(void);
void vfio_async_sysfs_exit(void);
int vfio_async_container_sysfs_add(struct vfio_async_container *c);
void vfio_async_container_sysfs_del(struct vfio_async_container *c);

#endif /* VFIO_ASYNC_H */
