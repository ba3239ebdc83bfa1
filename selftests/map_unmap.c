// SPDX-License-Identifier: GPL-2.0
/*
 * map_unmap: the type1v2 container ioctls, with the exact errnos stock
 * vfio_iommu_type1 gives (drivers/vfio/vfio_iommu_type1.c, 6.1):
 * VFIO_IOMMU_GET_INFO (argsz protocol, capability chain), VFIO_IOMMU_MAP_DMA
 * (every bad input, overlaps, IOVA ranges, entry limit, RLIMIT_MEMLOCK) and
 * VFIO_IOMMU_UNMAP_DMA (returned size, v2 bisect rule, FLAG_ALL).
 *
 * Variants: IOMMU type (ours / TYPE1v2) x memory backing (4 KiB, THP,
 * hugetlb). No DMA here: see dma.c for what the device really sees.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P	PAGE_4K
/* 16 pages of 4 KiB, or 4 huge pages: the tests use offsets up to 16 P. */
#define NR_GRANULES	4
#define BUF_SIZE(g)	((g) == P ? 16 * P : NR_GRANULES * (g))
#define HUGE_RESERVE	(2 * NR_GRANULES + 2)	/* fixture + child + spare */

FIXTURE(mu) {
	struct vfio_dev v;
	struct mem_buf buf;
	size_t g;			/* backing granule: 4 KiB or 2 MiB */
	struct vfio_iova_range *ranges;
	uint32_t nr_ranges;
	long huge_old;
	char limit_path[128];
	long limit_old;
};

FIXTURE_VARIANT(mu) {
	unsigned long iommu_type;
	enum mem_backing backing;
};

IOMMU_MEM_VARIANTS(mu);

FIXTURE_SETUP(mu)
{
	const char *why = vfio_env_missing(variant->iommu_type);
	int ret;

	vfio_dev_init(&self->v);
	self->huge_old = -1;
	self->limit_old = -1;
	self->g = mem_granule(variant->backing);
	if (why)
		SKIP(return, "%s", why);

	why = variant_memory(variant->backing, BUF_SIZE(self->g), HUGE_RESERVE,
			     &self->huge_old, &self->buf, &ret);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_OK(ret);

	/* Container and group: mapping needs no device fd. */
	ret = vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
			    variant->iommu_type);
	if (ret)
		TH_LOG("%s failed", self->v.step);
	ASSERT_OK(ret);
	ASSERT_OK(vfio_iova_ranges(self->v.container, &self->ranges,
				   &self->nr_ranges));
	ASSERT_LT(0U, self->nr_ranges);
}

FIXTURE_TEARDOWN(mu)
{
	vfio_dev_close(&self->v);
	mem_free(&self->buf);
	free(self->ranges);
	if (self->limit_old >= 0)
		sysfs_write_long(self->limit_path, self->limit_old);
	hugetlb_restore(self->huge_old);
}

static uint32_t avail(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mu) *self)
{
	uint32_t a = 0;

	EXPECT_OK(vfio_dma_avail(self->v.container, &a));
	return a;
}

/* Raw MAP_DMA, every field chosen by the caller. */
static int map_raw(FIXTURE_DATA(mu) *self, uint32_t argsz, uint32_t flags,
		   uint64_t vaddr, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = argsz, .flags = flags, .vaddr = vaddr,
		.iova = iova, .size = size,
	};

	return vfio_map_raw(self->v.container, &m);
}

static int unmap_raw(FIXTURE_DATA(mu) *self, uint32_t argsz, uint32_t flags,
		     uint64_t iova, uint64_t size, uint64_t *unmapped)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = argsz, .flags = flags, .iova = iova, .size = size,
	};
	int ret = vfio_unmap_raw(self->v.container, &u);

	if (!ret && unmapped)
		*unmapped = u.size;
	return ret;
}

TEST_F(mu, get_info)
{
	struct vfio_iommu_type1_info small, *info;
	const struct vfio_iommu_type1_info_cap_iova_range *r;
	const struct vfio_iommu_type1_info_dma_avail *a;
	const size_t minsz = offsetofend(struct vfio_iommu_type1_info,
					 iova_pgsizes);
	uint32_t need, i;
	char path[128];
	long limit;

	RETURN_IF_SKIPPED();

	/* Shorter than flags + iova_pgsizes: EINVAL. */
	memset(&small, 0, sizeof(small));
	small.argsz = minsz - 1;
	EXPECT_EQ(-1, ioctl(self->v.container, VFIO_IOMMU_GET_INFO, &small));
	EXPECT_EQ(EINVAL, errno);

	/* The bare minimum: fixed fields, argsz grows to what caps need. */
	memset(&small, 0, sizeof(small));
	small.argsz = minsz;
	small.cap_offset = 0xdeadbeef;	/* beyond minsz: must stay untouched */
	ASSERT_EQ(0, ioctl(self->v.container, VFIO_IOMMU_GET_INFO, &small));
	EXPECT_TRUE(!!(small.flags & VFIO_IOMMU_INFO_PGSIZES));
	EXPECT_TRUE(!!(small.flags & VFIO_IOMMU_INFO_CAPS));
	EXPECT_TRUE(!!(small.iova_pgsizes & P));
	EXPECT_EQ(0ULL, small.iova_pgsizes & (P - 1));
	EXPECT_LT(sizeof(small), small.argsz);
	EXPECT_EQ(0xdeadbeef, small.cap_offset);
	need = small.argsz;

	/* The whole struct, no room for caps: cap_offset 0, argsz grows. */
	memset(&small, 0, sizeof(small));
	small.argsz = sizeof(small);
	small.cap_offset = 0xdeadbeef;
	ASSERT_EQ(0, ioctl(self->v.container, VFIO_IOMMU_GET_INFO, &small));
	EXPECT_EQ(need, small.argsz);
	EXPECT_EQ(0U, small.cap_offset);

	/* Room for everything (and more): the chain. */
	info = calloc(1, need + 64);
	ASSERT_NE(NULL, info);
	info->argsz = need + 64;
	ASSERT_EQ(0, ioctl(self->v.container, VFIO_IOMMU_GET_INFO, info));
	EXPECT_EQ(need + 64, info->argsz);
	EXPECT_TRUE(!!(info->flags & VFIO_IOMMU_INFO_CAPS));
	EXPECT_LE(sizeof(*info), info->cap_offset);
	EXPECT_GT(need, info->cap_offset);

	r = (const void *)vfio_info_cap(info, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	ASSERT_NE(NULL, r);
	EXPECT_EQ(1, (int)r->header.version);
	ASSERT_LT(0U, r->nr_iovas);
	for (i = 0; i < r->nr_iovas; i++) {
		TH_LOG("iova range %u: 0x%llx-0x%llx", i,
		       (unsigned long long)r->iova_ranges[i].start,
		       (unsigned long long)r->iova_ranges[i].end);
		EXPECT_LE(r->iova_ranges[i].start, r->iova_ranges[i].end);
		if (i)
			EXPECT_LT(r->iova_ranges[i - 1].end + 1,
				  r->iova_ranges[i].start);
	}
	/* What the tests use is mappable; VT-d's MSI window is not. */
	EXPECT_TRUE(iova_range_valid(r->iova_ranges, r->nr_iovas,
				     IOVA_SCRATCH, P));
	EXPECT_TRUE(iova_range_valid(r->iova_ranges, r->nr_iovas,
				     IOVA_BASE, 16 * SZ_2M));
#if defined(__x86_64__)
	EXPECT_FALSE(iova_range_valid(r->iova_ranges, r->nr_iovas,
				      0xfee00000, P));
	EXPECT_FALSE(iova_range_valid(r->iova_ranges, r->nr_iovas,
				      0xfeeff000, P));
#endif

	a = (const void *)vfio_info_cap(info, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(1, (int)a->header.version);
	/* A fresh container has the whole dma_entry_limit available. */
	snprintf(path, sizeof(path), "/sys/module/%s/parameters/dma_entry_limit",
		 iommu_backend(variant->iommu_type));
	if (!sysfs_read_long(path, &limit)) {
		EXPECT_EQ(limit, (long)a->avail);
	} else {
		TH_LOG("%s unreadable", path);
	}
	free(info);

	/* DMA_AVAIL follows the mappings. */
	i = avail(_metadata, self);
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va, P,
			   VFIO_RW));
	EXPECT_EQ(i - 1, avail(_metadata, self));
	ASSERT_OK(vfio_unmap(self->v.container, IOVA_BASE, P, 0, NULL));
	EXPECT_EQ(i, avail(_metadata, self));
}

TEST_F(mu, map_unmap_whole_buffer)
{
	uint64_t n = 0;

	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_RW));
	ASSERT_OK(vfio_unmap(self->v.container, IOVA_BASE, self->buf.size, 0, &n));
	EXPECT_EQ(self->buf.size, n);
	/* Read-only and write-only mappings are mappings too. */
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_DMA_MAP_FLAG_READ));
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE + self->buf.size,
			   self->buf.va, self->buf.size, VFIO_DMA_MAP_FLAG_WRITE));
	ASSERT_OK(vfio_unmap(self->v.container, IOVA_BASE, 2 * self->buf.size,
			     0, &n));
	EXPECT_EQ(2 * self->buf.size, n);
}

TEST_F(mu, map_bad_args)
{
	const uint32_t sz = sizeof(struct vfio_iommu_type1_dma_map);
	uint64_t va = (uintptr_t)self->buf.va, I = IOVA_BASE;
	uint32_t before;
	long pins0, pins1;

	RETURN_IF_SKIPPED();
	before = avail(_metadata, self);
	ASSERT_OK(pins_outstanding(&pins0));

	/* argsz shorter than the fields up to size */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz - 1, VFIO_RW, va, I, P));
	EXPECT_ERRNO(EINVAL, map_raw(self, 0, VFIO_RW, va, I, P));
	/* unknown flag bits */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW | (1 << 3), va, I, P));
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW | (1u << 31), va, I, P));
	/* neither READ nor WRITE */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, 0, va, I, P));
	/* VADDR update combined with protection bits */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW | VFIO_DMA_MAP_FLAG_VADDR,
				     va, I, P));
	/* zero size */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va, I, 0));
	/* unaligned iova, vaddr, size */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va, I + 0x800, P));
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va + 0x800, I, P));
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va, I, P + 0x800));
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va, I, P - 1));
	/* iova + size and vaddr + size wrap around */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va, ~0ULL - P + 1, 2 * P));
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, ~0ULL - P + 1, I, 2 * P));
	/* a size that only wraps together with the iova */
	EXPECT_ERRNO(EINVAL, map_raw(self, sz, VFIO_RW, va, I, ~0ULL - P + 1));

	/* A longer argsz is fine (extensible struct). */
	EXPECT_OK(map_raw(self, sz + 16, VFIO_RW, va, I, P));
	EXPECT_OK(vfio_unmap(self->v.container, I, P, 0, NULL));

	/* Nothing of the above left a mapping, a pin or used an entry. */
	EXPECT_EQ(before, avail(_metadata, self));
	ASSERT_OK(pins_outstanding(&pins1));
	EXPECT_EQ(pins0, pins1);
}

TEST_F(mu, map_iova_ranges)
{
	const struct vfio_iova_range *r;
	uint32_t n, i, before;
	uint64_t last;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	r = self->ranges;
	n = self->nr_ranges;
	last = r[n - 1].end;
	before = avail(_metadata, self);

	/* The last page of the IOVA space maps, the next does not. */
	ASSERT_EQ(0ULL, (last + 1) % P);
	EXPECT_OK(vfio_map(c, last + 1 - P, self->buf.va, P, VFIO_RW));
	EXPECT_OK(vfio_unmap(c, last + 1 - P, P, 0, NULL));
	if (last + 1 != 0) {
		EXPECT_ERRNO(EINVAL, vfio_map(c, last + 1, self->buf.va, P,
					      VFIO_RW));
		EXPECT_ERRNO(EINVAL, vfio_map(c, last + 1 - P, self->buf.va,
					      2 * P, VFIO_RW));
		EXPECT_ERRNO(EINVAL, vfio_map(c, 1ULL << 52, self->buf.va, P,
					      VFIO_RW));
	}
	/* Holes between ranges (reserved regions) refuse maps. */
	for (i = 1; i < n; i++) {
		uint64_t hole = r[i - 1].end + 1;

		TH_LOG("hole 0x%llx-0x%llx", (unsigned long long)hole,
		       (unsigned long long)r[i].start - 1);
		EXPECT_ERRNO(EINVAL, vfio_map(c, hole, self->buf.va, P, VFIO_RW));
		EXPECT_ERRNO(EINVAL, vfio_map(c, r[i].start - P, self->buf.va,
					      P, VFIO_RW));
		/* straddling the start of the hole */
		EXPECT_ERRNO(EINVAL, vfio_map(c, hole - P, self->buf.va, 2 * P,
					      VFIO_RW));
		/* the pages either side of the hole are fine */
		EXPECT_OK(vfio_map(c, hole - P, self->buf.va, P, VFIO_RW));
		EXPECT_OK(vfio_map(c, r[i].start, self->buf.va, P, VFIO_RW));
		EXPECT_OK(vfio_unmap(c, hole - P, P, 0, NULL));
		EXPECT_OK(vfio_unmap(c, r[i].start, P, 0, NULL));
	}
#if defined(__x86_64__)
	/* VT-d: the interrupt (MSI) window is never DMA-mappable. */
	EXPECT_ERRNO(EINVAL, vfio_map(c, 0xfee00000, self->buf.va, P, VFIO_RW));
	EXPECT_ERRNO(EINVAL, vfio_map(c, 0xfeeff000, self->buf.va, P, VFIO_RW));
	EXPECT_ERRNO(EINVAL, vfio_map(c, 0xfed00000, self->buf.va, SZ_2M,
				      VFIO_RW));
#endif
	EXPECT_EQ(before, avail(_metadata, self));
}

TEST_F(mu, map_bad_vaddr)
{
	uint8_t *hole, *ro, *none;
	uint64_t I = IOVA_BASE;
	uint32_t before;
	long pins0, pins1;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	before = avail(_metadata, self);
	ASSERT_OK(pins_outstanding(&pins0));

	/* Nothing mapped there at all. */
	hole = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, 4 * P));
	EXPECT_ERRNO(EFAULT, vfio_map(c, I, hole, 4 * P, VFIO_RW));

	/* PROT_NONE memory cannot be pinned. */
	none = mmap(NULL, 4 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	EXPECT_ERRNO(EFAULT, vfio_map(c, I, none, 4 * P, VFIO_RW));
	EXPECT_ERRNO(EFAULT, vfio_map(c, I, none, 4 * P, VFIO_DMA_MAP_FLAG_READ));

	/* Read-only memory: device-readable yes, device-writable no. */
	ro = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	memset(ro, 0x5a, 4 * P);
	ASSERT_EQ(0, mprotect(ro, 4 * P, PROT_READ));
	EXPECT_ERRNO(EFAULT, vfio_map(c, I, ro, 4 * P, VFIO_RW));
	EXPECT_ERRNO(EFAULT, vfio_map(c, I, ro, 4 * P, VFIO_DMA_MAP_FLAG_WRITE));
	EXPECT_OK(vfio_map(c, I, ro, 4 * P, VFIO_DMA_MAP_FLAG_READ));
	EXPECT_OK(vfio_unmap(c, I, 4 * P, 0, NULL));

	/* Valid first part, unmapped tail: fails as a whole. */
	ASSERT_EQ(0, munmap(self->buf.va + self->buf.size - self->g, self->g));
	EXPECT_ERRNO(EFAULT, vfio_map(c, I, self->buf.va, self->buf.size,
				      VFIO_RW));
	/* ... and the IOVA range is free again afterwards. */
	EXPECT_OK(vfio_map(c, I, self->buf.va, self->buf.size - self->g,
			   VFIO_RW));
	EXPECT_OK(vfio_unmap(c, I, self->buf.size - self->g, 0, NULL));

	munmap(ro, 4 * P);
	munmap(none, 4 * P);
	EXPECT_EQ(before, avail(_metadata, self));
	ASSERT_OK(pins_outstanding(&pins1));
	EXPECT_EQ(pins0, pins1);
}

TEST_F(mu, map_overlap)
{
	uint64_t I = IOVA_BASE + 16 * P, n;
	uint8_t *va = self->buf.va;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	/* A: [I, I + 4P) */
	ASSERT_OK(vfio_map(c, I, va, 4 * P, VFIO_RW));
	EXPECT_ERRNO(EEXIST, vfio_map(c, I, va, 4 * P, VFIO_RW));	/* same */
	EXPECT_ERRNO(EEXIST, vfio_map(c, I, va + 8 * P, P, VFIO_RW));	/* head */
	EXPECT_ERRNO(EEXIST, vfio_map(c, I + P, va, P, VFIO_RW));	/* inside */
	EXPECT_ERRNO(EEXIST, vfio_map(c, I + 3 * P, va, 2 * P, VFIO_RW)); /* tail */
	EXPECT_ERRNO(EEXIST, vfio_map(c, I - P, va, 2 * P, VFIO_RW));	/* before */
	EXPECT_ERRNO(EEXIST, vfio_map(c, I - P, va, 6 * P, VFIO_RW));	/* covers */
	EXPECT_ERRNO(EEXIST, vfio_map(c, I, va, 4 * P, VFIO_DMA_MAP_FLAG_READ));
	/* Adjacent on both sides is fine, so is aliasing the same memory. */
	EXPECT_OK(vfio_map(c, I + 4 * P, va + 4 * P, P, VFIO_RW));
	EXPECT_OK(vfio_map(c, I - P, va + 8 * P, P, VFIO_RW));
	EXPECT_OK(vfio_map(c, I + 64 * P, va, 4 * P, VFIO_RW));
	ASSERT_OK(vfio_unmap(c, I - P, 6 * P, 0, &n));
	EXPECT_EQ(6 * P, n);
	ASSERT_OK(vfio_unmap(c, I + 64 * P, 4 * P, 0, &n));
	EXPECT_EQ(4 * P, n);
}

static const char *limit_param(unsigned long iommu_type)
{
	static char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/dma_entry_limit",
		 iommu_backend(iommu_type));
	return path;
}

TEST_F(mu, dma_entry_limit)
{
	const long limit = 3;
	uint32_t a = 0;
	int c, i;

	RETURN_IF_SKIPPED();
	snprintf(self->limit_path, sizeof(self->limit_path), "%s",
		 limit_param(variant->iommu_type));
	ASSERT_OK(sysfs_read_long(self->limit_path, &self->limit_old));
	ASSERT_OK(sysfs_write_long(self->limit_path, limit));

	/* The limit is taken when the container's IOMMU is opened. */
	vfio_dev_close(&self->v);
	ASSERT_OK(vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
				variant->iommu_type));
	c = self->v.container;
	ASSERT_OK(vfio_dma_avail(c, &a));
	EXPECT_EQ(limit, (long)a);

	for (i = 0; i < limit; i++)
		ASSERT_OK(vfio_map(c, IOVA_BASE + 2 * i * P, self->buf.va + i * P,
				   P, VFIO_RW));
	ASSERT_OK(vfio_dma_avail(c, &a));
	EXPECT_EQ(0U, a);
	EXPECT_ERRNO(ENOSPC, vfio_map(c, IOVA_BASE + 2 * i * P, self->buf.va,
				      P, VFIO_RW));
	/* Exhaustion is checked before anything else about the request. */
	EXPECT_ERRNO(ENOSPC, vfio_map(c, 0xfee00000, self->buf.va, P, VFIO_RW));
	/* An overlap is still an overlap. */
	EXPECT_ERRNO(EEXIST, vfio_map(c, IOVA_BASE, self->buf.va, P, VFIO_RW));

	/* Unmapping gives the entry back. */
	ASSERT_OK(vfio_unmap(c, IOVA_BASE, P, 0, NULL));
	ASSERT_OK(vfio_dma_avail(c, &a));
	EXPECT_EQ(1U, a);
	EXPECT_OK(vfio_map(c, IOVA_BASE + 2 * i * P, self->buf.va, P, VFIO_RW));
	EXPECT_ERRNO(ENOSPC, vfio_map(c, IOVA_BASE, self->buf.va, P, VFIO_RW));

	/* Other containers are unaffected by the one that is full. */
	ASSERT_OK(sysfs_write_long(self->limit_path, self->limit_old));
	self->limit_old = -1;
}

/*
 * RLIMIT_MEMLOCK: root has CAP_IPC_LOCK, so the check only bites an
 * unprivileged user. A child keeps the root-opened container fd, drops to
 * nobody, and maps. Runs in a child of the test: no harness macros there,
 * the exit code says which step failed.
 */
static int rlimit_child(FIXTURE_DATA(mu) *self,
			const FIXTURE_VARIANT(mu) *variant, uint64_t *got)
{
	size_t size = BUF_SIZE(self->g), half = size / 2;
	int c = self->v.container, ret;
	struct mem_buf m;
	uint64_t n;

	/* Own memory: hugetlb MAP_PRIVATE COW after fork could SIGBUS. */
	if (mem_alloc(&m, variant->backing, size))
		return 10;
	if (drop_privileges(half))
		return 11;
	/* Exactly the limit: fine. */
	ret = vfio_map(c, IOVA_BASE, m.va, half, VFIO_RW);
	if (ret) {
		*got = -ret;
		return 20;
	}
	/* One page more: ENOMEM, whole request undone. */
	ret = vfio_map(c, IOVA_BASE + half, m.va + half, P, VFIO_RW);
	if (ret != -ENOMEM) {
		*got = -ret;
		return 21;
	}
	ret = vfio_map(c, IOVA_BASE + half, m.va + half, half, VFIO_RW);
	if (ret != -ENOMEM) {
		*got = -ret;
		return 22;
	}
	/* Read-only mappings count the same. */
	ret = vfio_map(c, IOVA_BASE + half, m.va + half, P,
		       VFIO_DMA_MAP_FLAG_READ);
	if (ret != -ENOMEM) {
		*got = -ret;
		return 23;
	}
	/* Unmapping gives the budget back. */
	if (vfio_unmap(c, IOVA_BASE, half, 0, &n) || n != half)
		return 24;
	ret = vfio_map(c, IOVA_BASE + half, m.va + half, half, VFIO_RW);
	if (ret) {
		*got = -ret;
		return 25;
	}
	if (vfio_unmap(c, IOVA_BASE + half, half, 0, &n) || n != half)
		return 26;
	return 0;
}

TEST_F(mu, rlimit_memlock)
{
	uint64_t *got, n = 1;
	int status;
	pid_t pid;

	RETURN_IF_SKIPPED();
	got = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, got);
	*got = 0;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(rlimit_child(self, variant, got));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status))
		TH_LOG("child failed at step %d (errno %s)", WEXITSTATUS(status),
		       *got ? strerror((int)*got) : "-");
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The child cleaned up after itself. */
	ASSERT_OK(vfio_unmap(self->v.container, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ(0ULL, n);
	munmap(got, P);
}

TEST_F(mu, unmap_bisect)
{
	uint64_t I = IOVA_BASE + SZ_2M, n = 1, g = self->g;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	/* One mapping of two granules (two 2 MiB pages for huge backings). */
	ASSERT_OK(vfio_map(c, I, self->buf.va, 2 * g, VFIO_RW));

	/* v2: an unmap must not split a mapping. */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I, P, 0, NULL));		/* head */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I, g, 0, NULL));		/* half */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I + g, g, 0, NULL));	/* tail */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I + P, P, 0, NULL));	/* inside */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I + 2 * g - P, P, 0, NULL));
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I - P, 2 * P, 0, NULL)); /* start */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I + P, 2 * g, 0, NULL)); /* end */

	/* A range that only touches its edges from outside is empty. */
	ASSERT_OK(vfio_unmap(c, I - P, P, 0, &n));
	EXPECT_EQ(0ULL, n);
	ASSERT_OK(vfio_unmap(c, I + 2 * g, P, 0, &n));
	EXPECT_EQ(0ULL, n);

	/* Still all there: the exact range unmaps it, size returned. */
	ASSERT_OK(vfio_unmap(c, I, 2 * g, 0, &n));
	EXPECT_EQ(2 * g, n);
	/* Twice: nothing left, success with size 0. */
	n = 1;
	ASSERT_OK(vfio_unmap(c, I, 2 * g, 0, &n));
	EXPECT_EQ(0ULL, n);
}

TEST_F(mu, unmap_several)
{
	uint64_t I = IOVA_BASE, n = 0;
	uint8_t *va = self->buf.va;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	/* A [I, I+2P), B [I+3P, I+4P), C [I+8P, I+12P); holes between. */
	ASSERT_OK(vfio_map(c, I, va, 2 * P, VFIO_RW));
	ASSERT_OK(vfio_map(c, I + 3 * P, va + 3 * P, P, VFIO_RW));
	ASSERT_OK(vfio_map(c, I + 8 * P, va, 4 * P, VFIO_RW));

	/* Covering A and B but splitting C: refused, nothing unmapped. */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I, 10 * P, 0, NULL));
	/* Starting inside A: refused. */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I + P, 4 * P, 0, NULL));
	/* A hole-only range: nothing. */
	ASSERT_OK(vfio_unmap(c, I + 4 * P, 4 * P, 0, &n));
	EXPECT_EQ(0ULL, n);
	/* A and B, the range running into the holes: size of A + B. */
	ASSERT_OK(vfio_unmap(c, I - 16 * P, 24 * P, 0, &n));
	EXPECT_EQ(3 * P, n);
	/* C alone is left. */
	ASSERT_OK(vfio_unmap(c, I, 64 * P, 0, &n));
	EXPECT_EQ(4 * P, n);
}

TEST_F(mu, unmap_bad_args)
{
	const uint32_t sz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
	uint64_t I = IOVA_BASE, n;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_map(c, I, self->buf.va, 4 * P, VFIO_RW));

	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz - 1, 0, I, 4 * P, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, 0, 0, I, 4 * P, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 1 << 3, I, 4 * P, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 1u << 31, I, 4 * P, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 0, I, 0, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 0, I + 0x800, 4 * P, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 0, I, 4 * P - 1, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 0, I, 4 * P + 0x800, NULL));
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, 0, ~0ULL - P + 1, 2 * P, NULL));
	/* Dirty bitmap together with ALL */
	EXPECT_ERRNO(EINVAL, unmap_raw(self, sz, VFIO_DMA_UNMAP_FLAG_ALL |
				       VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
				       0, 0, NULL));

	/* The mapping survived all of that. */
	ASSERT_OK(unmap_raw(self, sz, 0, I, 4 * P, &n));
	EXPECT_EQ(4 * P, n);
}

TEST_F(mu, unmap_all)
{
	uint64_t I = IOVA_BASE, n = 0;
	uint32_t a0;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_UNMAP_ALL));
	a0 = avail(_metadata, self);
	ASSERT_OK(vfio_map(c, I, self->buf.va, 2 * P, VFIO_RW));
	ASSERT_OK(vfio_map(c, I + 4 * P, self->buf.va, self->buf.size, VFIO_RW));
	ASSERT_OK(vfio_map(c, 0x100000000ULL, self->buf.va, P,
			   VFIO_DMA_MAP_FLAG_READ));

	/* ALL takes no range. */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, P, 0, VFIO_DMA_UNMAP_FLAG_ALL, NULL));
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, 0, P, VFIO_DMA_UNMAP_FLAG_ALL, NULL));
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, I, 2 * P, VFIO_DMA_UNMAP_FLAG_ALL,
					NULL));
	EXPECT_EQ(a0 - 3, avail(_metadata, self));

	ASSERT_OK(vfio_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ(3 * P + self->buf.size, n);
	EXPECT_EQ(a0, avail(_metadata, self));
	/* Empty container: success, nothing unmapped. */
	n = 1;
	ASSERT_OK(vfio_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ(0ULL, n);
	/* The IOVAs are free again. */
	ASSERT_OK(vfio_map(c, I, self->buf.va, 2 * P, VFIO_RW));
	ASSERT_OK(vfio_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ(2 * P, n);
}

TEST_HARNESS_MAIN
