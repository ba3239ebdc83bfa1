/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvfio-async: what a VMM needs to start guests with pass-through
 * devices in seconds, on top of the vfio_iommu_async kernel module, and
 * the same calls on any host: without the module, every deferred map is a
 * plain VFIO_IOMMU_MAP_DMA and every MAP_NOW completes at once.
 *
 * Three objects:
 *   struct vfio_async       a VFIO container: maps (at once or deferred),
 *                           unmaps, progress, a blocking MAP_NOW;
 *   struct vfio_async_chan  its balloon channel: MAP_NOW / MAP_NEXT /
 *                           RELEASE requests through shared rings,
 *                           completions reaped with a callback, a file
 *                           descriptor for the VMM's own event loop;
 *   struct vfio_async_balloon  the guest pages in the balloon, in the
 *                           order they went in, so that a balloon backend
 *                           forwards only what the guest reported and can
 *                           hint the order deflates will come in.
 *
 * Conventions: functions returning int give 0 (or a count) on success and
 * -errno on failure; none prints, exits or keeps global state. Addresses
 * are IOVAs, which for a VMM are guest-physical addresses. An object is
 * not thread safe: one thread (the VMM's main loop, say) drives it.
 *
 * ABI: the shared library is libvfio-async.so.0; every symbol is versioned
 * (node VFIO_ASYNC_0.2, the release that brought it). A structure in this
 * header never changes size or layout once released: what needs more
 * comes as a new structure and function, in a new version node. So a
 * program built against 0.2 keeps working with every later 0.x; the
 * soname changes only if that promise has to be broken.
 */
#ifndef VFIO_ASYNC_LIB_H
#define VFIO_ASYNC_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VFIO_ASYNC_LIB_VERSION	"0.2.0"

/* ---- the container ------------------------------------------------------ */

struct vfio_async;

/*
 * Open /dev/vfio/vfio, add the groups (paths such as /dev/vfio/12), and
 * select this module's backend when it is there, stock type1v2 when not.
 */
int vfio_async_open(struct vfio_async **va, const char *const *groups,
		    unsigned int ngroups);
/*
 * Use a container the VMM set up itself (VFIO_SET_IOMMU done, with either
 * backend). The library does not own @container_fd: closing is the VMM's.
 */
int vfio_async_wrap(struct vfio_async **va, int container_fd);
void vfio_async_close(struct vfio_async *va);

int vfio_async_container_fd(const struct vfio_async *va);
/* The module's deferred mapping and balloon channel are there. */
bool vfio_async_native(const struct vfio_async *va);

#define VFIO_ASYNC_READ		(1u << 0)
#define VFIO_ASYNC_WRITE	(1u << 1)
#define VFIO_ASYNC_DEFER	(1u << 2)	/* map in the background */

/*
 * Map @size bytes at @vaddr to @iova. With VFIO_ASYNC_DEFER the call
 * returns at once and the module maps it in the background (keep the
 * guest from giving that memory to a device until a MAP_NOW completes);
 * without the module it is mapped before the call returns.
 */
int vfio_async_map(struct vfio_async *va, uint64_t iova, void *vaddr,
		   uint64_t size, unsigned int flags);
/* Unmap the mappings within [@iova, @iova + @size); *@unmapped: bytes. */
int vfio_async_unmap(struct vfio_async *va, uint64_t iova, uint64_t size,
		     uint64_t *unmapped);

struct vfio_async_progress {
	uint64_t deferred_bytes;	/* of deferred mappings, ... */
	uint64_t mapped_bytes;		/* ... mapped, */
	uint64_t pending_bytes;		/* ... still to map, */
	uint64_t failed_bytes;		/* ... that could not be mapped, */
	uint64_t released_bytes;	/* ... given back by RELEASE */
	uint64_t sync_bytes;		/* mapped at once */
	int first_error;		/* -errno of the first failure, or 0 */
	uint64_t first_error_iova;
};

int vfio_async_progress(struct vfio_async *va, struct vfio_async_progress *p);

struct vfio_async_range {
	uint64_t iova;
	uint64_t size;
};

/*
 * Return once every chunk (2 MiB, or the hugetlbfs page size: see
 * VFIO_IOMMU_MAP_DMA_DEFERRED) the ranges touch is mapped (the calling
 * thread helps). Ranges: page aligned, ascending, not overlapping. On an
 * error of a range, *@error_iova (if not NULL) is its IOVA.
 */
int vfio_async_map_now(struct vfio_async *va,
		       const struct vfio_async_range *r, unsigned int n,
		       uint64_t *error_iova);

/* ---- ranges --------------------------------------------------------------- */

/*
 * Turn @n page frame numbers (pages of 1 << @page_shift bytes: 12 for
 * virtio-balloon's 4 KiB pages) into ascending, merged ranges in @out
 * (room for @n). Returns how many ranges.
 */
unsigned int vfio_async_pfns_to_ranges(const uint64_t *pfns, unsigned int n,
				       unsigned int page_shift,
				       struct vfio_async_range *out);

/* ---- the balloon channel ------------------------------------------------ */

struct vfio_async_chan;

enum vfio_async_op {
	VFIO_ASYNC_MAP_NOW = 1,		/* map before completing */
	VFIO_ASYNC_MAP_NEXT = 2,	/* map these next; completes at once */
	VFIO_ASYNC_RELEASE = 3,		/* unmap and unpin: back in the balloon */
};

/* Sizes of the rings; 0 takes the default (powers of two). */
struct vfio_async_chan_config {
	unsigned int requests;		/* in flight at once; default 256 */
	unsigned int ranges;		/* range slots; default 64 per request */
};

/*
 * Create the container's channel (one per container). Without the
 * module, an emulation with the same calls: MAP_NOW and MAP_NEXT complete
 * at once with 0 (everything is mapped), RELEASE with -EOPNOTSUPP (memory
 * stays pinned: do not discard it).
 */
int vfio_async_chan_open(struct vfio_async *va,
			 const struct vfio_async_chan_config *cfg,
			 struct vfio_async_chan **ch);
void vfio_async_chan_close(struct vfio_async_chan *ch);

/*
 * The file descriptor to poll (POLLIN) in the VMM's event loop: readable
 * when completions may be waiting. Reap them with vfio_async_chan_reap().
 */
int vfio_async_chan_fd(const struct vfio_async_chan *ch);

/*
 * Queue a request. Nothing reaches the module until vfio_async_chan_kick()
 * (so a burst costs one kick). Returns 0, -EAGAIN (no request slot or
 * range slot free: reap first), or -EINVAL (no range, or more than one
 * request may carry). The ranges must be page aligned, ascending and not
 * overlapping (vfio_async_pfns_to_ranges() makes them so).
 */
int vfio_async_chan_submit(struct vfio_async_chan *ch, enum vfio_async_op op,
			   uint64_t cookie, const struct vfio_async_range *r,
			   unsigned int n);
/* The same from page frame numbers, merged into ranges. */
int vfio_async_chan_submit_pfns(struct vfio_async_chan *ch,
				enum vfio_async_op op, uint64_t cookie,
				const uint64_t *pfns, unsigned int n,
				unsigned int page_shift);
/* Publish what was queued, and kick the module if it asked for it. */
int vfio_async_chan_kick(struct vfio_async_chan *ch);

/*
 * A completion: @status 0 or -errno, @error_iova the range that failed;
 * @hit: a MAP_NOW whose chunks were all mapped already.
 */
typedef void vfio_async_done_fn(void *opaque, uint64_t cookie, int status,
				uint64_t error_iova, bool hit);

/*
 * Call @fn for each completion waiting, then read the fd clear; returns
 * how many. Calls are suppressed while it reaps. Kicks the module if
 * requests waited for completion slots.
 */
int vfio_async_chan_reap(struct vfio_async_chan *ch, vfio_async_done_fn *fn,
			 void *opaque);

/* Requests submitted and not reaped yet. */
unsigned int vfio_async_chan_in_flight(const struct vfio_async_chan *ch);
/* The most ranges one request may carry. */
unsigned int vfio_async_chan_max_ranges(const struct vfio_async_chan *ch);

struct vfio_async_chan_stats {
	uint64_t requests;		/* submitted */
	uint64_t kicks;			/* eventfd writes */
	uint64_t kicks_saved;		/* not needed: the module was reading */
	uint64_t reaped;		/* completions */
	uint64_t reaps;			/* vfio_async_chan_reap() calls with any */
};

void vfio_async_chan_stats(const struct vfio_async_chan *ch,
			   struct vfio_async_chan_stats *st);

/* ---- the balloon tracker ------------------------------------------------ */

struct vfio_async_balloon;

/* For guest page frames 0 .. @npages - 1. */
int vfio_async_balloon_new(struct vfio_async_balloon **b, uint64_t npages);
void vfio_async_balloon_free(struct vfio_async_balloon *b);

/* Pages the guest put in (an inflate), in its order; returns how many
 * were not in already. */
unsigned int vfio_async_balloon_inflate(struct vfio_async_balloon *b,
					const uint64_t *pfns, unsigned int n);
/*
 * Pages the guest takes back (a deflate): copies into @out those that
 * were in the balloon (a guest may name others), removes them; returns
 * how many.
 */
unsigned int vfio_async_balloon_deflate(struct vfio_async_balloon *b,
					const uint64_t *pfns, unsigned int n,
					uint64_t *out);
bool vfio_async_balloon_contains(const struct vfio_async_balloon *b,
				 uint64_t pfn);
uint64_t vfio_async_balloon_pages(const struct vfio_async_balloon *b);

/*
 * The pages in the order deflates will take them back: last in, first
 * out, as the Linux driver's page list. Fills @out with up to @max of
 * them, skipping the first @skip; returns how many.
 */
unsigned int vfio_async_balloon_deflate_order(const struct vfio_async_balloon *b,
					      uint64_t skip, uint64_t *out,
					      unsigned int max);
/* Everything out: device reset, guest reboot. */
void vfio_async_balloon_clear(struct vfio_async_balloon *b);

#ifdef __cplusplus
}
#endif

#endif /* VFIO_ASYNC_LIB_H */
