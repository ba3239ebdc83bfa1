/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers for the vfio_iommu_async selftests: a container, a group
 * and a device opened from $VFIO_GROUP / $VFIO_BDF, thin ioctl wrappers that
 * return -errno, the GET_INFO capability chain, and the sysfs knobs of the
 * backends (ours and stock vfio_iommu_type1).
 *
 * Every function that can fail returns 0 (or a non-negative value) on
 * success and -errno on failure; none of them prints or exits, so they are
 * safe in forked children of a test as well as in the test itself.
 */
#ifndef VFIO_UTIL_H
#define VFIO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/vfio.h>
#include <linux/vfio_iommu_async.h>

#ifndef offsetofend
#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))
#endif

#define PAGE_4K		4096UL
#define SZ_2M		(2UL << 20)

/* Where the tests put things in IOVA space (all inside VT-d's 39-bit range). */
#define IOVA_SCRATCH	0x10000000ULL	/* edu's bounce page */
#define IOVA_BASE	0x40000000ULL	/* test buffers (2 MiB aligned) */

#define ASYNC_SYSFS		"/sys/kernel/vfio_async"
#define ASYNC_MODULE_SYSFS	"/sys/module/vfio_iommu_async"
#define TYPE1_MODULE_SYSFS	"/sys/module/vfio_iommu_type1"

/* An open container + group (+ device), as a VMM would hold them. */
struct vfio_dev {
	int container;		/* -1 when not open */
	int group;
	int device;
	unsigned long iommu_type;
	char step[64];		/* what failed, for messages */
};

void vfio_dev_init(struct vfio_dev *d);
/* Open container, group, SET_CONTAINER, SET_IOMMU(type), device. */
int vfio_dev_open(struct vfio_dev *d, const char *group_path, const char *bdf,
		  unsigned long iommu_type);
/* Same, from $VFIO_GROUP and $VFIO_BDF (-ENOENT when unset). */
int vfio_dev_open_env(struct vfio_dev *d, unsigned long iommu_type);
/* Close device, group, container (in that order); idempotent. */
void vfio_dev_close(struct vfio_dev *d);

/* Lower level steps; each returns an fd or 0, or -errno. */
int vfio_container_new(void);
int vfio_group_open(const char *group_path);
int vfio_group_set_container(int group, int container);
int vfio_group_unset_container(int group);
int vfio_set_iommu(int container, unsigned long iommu_type);
int vfio_check_extension(int container, unsigned long ext);
int vfio_device_get(int group, const char *bdf);
int close_fd(int *fd);

/*
 * Container ioctls.
 *
 * Test-the-test: with VFIO_SELFTEST_SABOTAGE=mode[,mode...] in the
 * environment, vfio_map()/vfio_unmap() misbehave the way a buggy backend
 * would, and the suite must then fail (the raw variants never do):
 *   map-shift   map one page short, IOVA page k -> user page k + 1
 *   ro-as-rw    READ-only requests get READ|WRITE
 *   leak-pin    every map of 2+ pages also maps (pins) one page for good
 *   unmap-noop  a plain unmap reports success and unmaps nothing
 */
bool sabotage(const char *mode);
int vfio_map(int container, uint64_t iova, const void *vaddr, uint64_t size,
	     uint32_t flags);
int vfio_map_raw(int container, struct vfio_iommu_type1_dma_map *map);
/* This module's ioctls (same sabotage modes as vfio_map for MAP_DEFERRED). */
int vfio_map_deferred(int container, uint64_t iova, const void *vaddr,
		      uint64_t size, uint32_t flags);
int vfio_async_status(int container, struct vfio_iommu_async_status *st);
/* mapped + pending + failed + released == deferred: every sample shows it. */
bool vfio_async_adds_up(const struct vfio_iommu_async_status *st);
/*
 * Poll GET_STATUS (every 2 ms) until nothing is pending: 0, -ETIMEDOUT
 * after @timeout_ms, -EPROTO as soon as a sample does not add up, or
 * -errno; *st is the last sample.
 */
int vfio_async_wait_settled(int container, struct vfio_iommu_async_status *st,
			    long timeout_ms);
/* The sysfs directory of the one container process @pid set up. */
int async_container_dir(pid_t pid, char *out, size_t n);
int vfio_unmap(int container, uint64_t iova, uint64_t size, uint32_t flags,
	       uint64_t *unmapped);
int vfio_unmap_raw(int container, struct vfio_iommu_type1_dma_unmap *unmap);
#define VFIO_RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/*
 * VFIO_IOMMU_GET_INFO with the argsz growth protocol: a first call with the
 * bare struct learns the needed argsz, a second one fetches the chain.
 * *info is malloc()ed; free() it.
 */
int vfio_iommu_info(int container, struct vfio_iommu_type1_info **info);
const struct vfio_info_cap_header *
vfio_info_cap(const struct vfio_iommu_type1_info *info, uint16_t id);
/* The IOVA ranges (malloc()ed copy) and DMA_AVAIL from GET_INFO. */
int vfio_iova_ranges(int container, struct vfio_iova_range **ranges,
		     uint32_t *nr);
int vfio_dma_avail(int container, uint32_t *avail);
bool iova_range_valid(const struct vfio_iova_range *r, uint32_t nr,
		      uint64_t iova, uint64_t size);

/* sysfs / procfs. */
int sysfs_read(const char *path, char *buf, size_t size);	/* strips \n */
int sysfs_write(const char *path, const char *val);
int sysfs_read_long(const char *path, long *val);
int sysfs_write_long(const char *path, long val);

/* Our module. */
bool async_loaded(void);
int async_containers(void);		/* >= 0, or -errno */
int async_dropin(void);			/* 1 (Y), 0 (N), or -errno */
/*
 * The module-wide counters that are 0 when no container is left
 * (containers included): 0 when they all are, else 1 with the first one
 * that is not (or cannot be read) in @why.
 */
int async_totals_nonzero(char *why, size_t n);
/*
 * Wait up to @timeout_ms (polling every 10 ms) until no container is left
 * and the pins outstanding are back to @pins0: 0 or -ETIMEDOUT, with the
 * last sample in *pins (LONG_MIN: unreadable) and *containers.
 */
int async_wait_released(long pins0, long timeout_ms, long *pins,
			int *containers);
/*
 * Wait the same way until the module holds nothing: every counter of
 * async_totals_nonzero() at 0 and the pins back to @pins0. 0, or
 * -ETIMEDOUT with what was still held in @why.
 */
int async_wait_clean(long pins0, long timeout_ms, char *why, size_t n);
/* Module (directory name under /sys/module) that serves VFIO_TYPE1v2_IOMMU. */
const char *type1v2_backend(void);
/* Module serving @iommu_type, or NULL if none can. */
const char *iommu_backend(unsigned long iommu_type);
const char *iommu_type_name(unsigned long iommu_type);

/* Skip reasons shared by the tests; NULL when the variant can run. */
const char *vfio_env_missing(unsigned long iommu_type);

#endif
