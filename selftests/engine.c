// SPDX-License-Identifier: GPL-2.0
/*
 * engine: how the pin-and-map engine uses the IOMMU.
 *
 * - A physically contiguous run (a THP or hugetlbfs 2 MiB page at a 2 MiB
 *   aligned IOVA) is mapped with one iommu_map() call, which lets the IOMMU
 *   use a 2 MiB page; 4 KiB memory that happens to be scattered takes more.
 *   Counted by /sys/kernel/vfio_async/iommu_map_calls (ours only).
 * - Device memory (a VM_PFNMAP mmap of a VFIO BAR, as a VMM maps for
 *   peer-to-peer) maps without a pin and without locked_vm, as with type1.
 * - A second group behind the same IOMMU joins the first one's domain:
 *   mapping then costs the same number of calls, not one more per domain.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define IOVA_ENGINE	0x80000000ULL	/* 2 GiB: 2 MiB aligned, below the MSI hole */
#define MAP_CALLS	ASYNC_SYSFS "/iommu_map_calls"

FIXTURE(engine) {
	struct vfio_dev v;
	long huge_old;
};

FIXTURE_VARIANT(engine) {
	unsigned long iommu_type;
};

FIXTURE_VARIANT_ADD(engine, type1v2) {
	.iommu_type = VFIO_TYPE1v2_IOMMU,
};

FIXTURE_VARIANT_ADD(engine, async) {
	.iommu_type = VFIO_ASYNC_IOMMU,
};

FIXTURE_SETUP(engine)
{
	const char *why = vfio_env_missing(variant->iommu_type);
	int ret;

	vfio_dev_init(&self->v);
	self->huge_old = -1;
	if (why)
		SKIP(return, "%s", why);
	ret = vfio_dev_open_env(&self->v, variant->iommu_type);
	if (ret)
		TH_LOG("%s: %s", self->v.step, strerror(-ret));
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(engine)
{
	vfio_dev_close(&self->v);
	if (self->huge_old >= 0)
		hugetlb_restore(self->huge_old);
}

static bool served_by_async(unsigned long iommu_type)
{
	const char *b = iommu_backend(iommu_type);

	return b && !strcmp(b, "vfio_iommu_async");
}

/* iommu_map() calls one mapping of @m took; -1 if not our backend. */
static long map_calls_for(struct __test_metadata *_metadata,
			  struct vfio_dev *v, unsigned long type,
			  struct mem_buf *m)
{
	long before, after;
	uint64_t unmapped;

	if (!served_by_async(type))
		return -1;
	ASSERT_OK(sysfs_read_long(MAP_CALLS, &before));
	ASSERT_OK(vfio_map(v->container, IOVA_ENGINE, m->va, m->size, VFIO_RW));
	ASSERT_OK(sysfs_read_long(MAP_CALLS, &after));
	ASSERT_OK(vfio_unmap(v->container, IOVA_ENGINE, m->size, 0, &unmapped));
	ASSERT_EQ(m->size, unmapped);
	return after - before;
}

/* One domain: a 2 MiB huge page is one contiguous run, so one call. */
TEST_F(engine, thp_one_call_per_huge_page)
{
	struct mem_buf m;
	long calls;
	int ret;

	RETURN_IF_SKIPPED();
	if (!served_by_async(variant->iommu_type))
		SKIP(return, "iommu_map_calls is this module's counter");
	ret = mem_alloc(&m, MEM_THP, 4 * SZ_2M);
	if (ret == -ENOTSUP)
		SKIP(return, "no transparent huge pages");
	ASSERT_OK(ret);
	calls = map_calls_for(_metadata, &self->v, variant->iommu_type, &m);
	mem_free(&m);
	/* Neighbouring huge pages may even merge into one run. */
	EXPECT_LE(1, calls);
	EXPECT_GE(4, calls);
}

TEST_F(engine, hugetlb_one_call_per_huge_page)
{
	struct mem_buf m;
	long calls;
	int ret;

	RETURN_IF_SKIPPED();
	if (!served_by_async(variant->iommu_type))
		SKIP(return, "iommu_map_calls is this module's counter");
	ret = hugetlb_reserve(4, &self->huge_old);
	if (ret == -ENOMEM)
		SKIP(return, "no free hugetlb pages");
	ASSERT_OK(ret);
	ASSERT_OK(mem_alloc(&m, MEM_HUGETLB, 4 * SZ_2M));
	calls = map_calls_for(_metadata, &self->v, variant->iommu_type, &m);
	mem_free(&m);
	EXPECT_LE(1, calls);
	EXPECT_GE(4, calls);
}

/*
 * The contrast that shows the counter means something: the same size of
 * 4 KiB pages, every other one of a bigger buffer, cannot be contiguous.
 */
TEST_F(engine, scattered_pages_take_a_call_each)
{
	size_t n = 64, i;
	uint8_t *big, *va;
	long before, after;
	uint64_t unmapped;

	RETURN_IF_SKIPPED();
	if (!served_by_async(variant->iommu_type))
		SKIP(return, "iommu_map_calls is this module's counter");
	/* Fault in 2n pages, then give back every other one: holes in PFNs. */
	big = mmap(NULL, 2 * n * PAGE_4K, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, big);
	ASSERT_EQ(0, madvise(big, 2 * n * PAGE_4K, MADV_NOHUGEPAGE));
	memset(big, 1, 2 * n * PAGE_4K);
	va = mmap(NULL, n * PAGE_4K, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, va);
	ASSERT_EQ(0, madvise(va, n * PAGE_4K, MADV_NOHUGEPAGE));
	for (i = 0; i < n; i++) {
		munmap(big + 2 * i * PAGE_4K, PAGE_4K);
		va[i * PAGE_4K] = 1;	/* likely lands in the hole just made */
	}

	ASSERT_OK(sysfs_read_long(MAP_CALLS, &before));
	ASSERT_OK(vfio_map(self->v.container, IOVA_ENGINE, va, n * PAGE_4K,
			   VFIO_RW));
	ASSERT_OK(sysfs_read_long(MAP_CALLS, &after));
	ASSERT_OK(vfio_unmap(self->v.container, IOVA_ENGINE, n * PAGE_4K, 0,
			     &unmapped));
	/* Not one call for the lot: runs really follow physical contiguity. */
	EXPECT_LT(1, after - before);
	EXPECT_GE((long)n, after - before);
	munmap(va, n * PAGE_4K);
	munmap(big, 2 * n * PAGE_4K);
}

/* A BAR mmap is VM_PFNMAP: mapped for peer-to-peer, never pinned. */
TEST_F(engine, pfnmap_bar_maps_without_pin_or_locked_vm)
{
	struct edu e;
	long pins0, pins1, lck0, lck1;
	uint64_t unmapped;
	size_t len;

	RETURN_IF_SKIPPED();
	edu_init(&e);
	ASSERT_OK(edu_open(&e, self->v.device));
	len = e.bar_size;

	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));
	ASSERT_OK(vfio_map(self->v.container, IOVA_ENGINE, (void *)e.bar, len,
			   VFIO_RW));
	ASSERT_OK(pins_outstanding(&pins1));
	ASSERT_OK(vmlck_kb(0, &lck1));
	EXPECT_EQ(pins0, pins1);
	EXPECT_EQ(lck0, lck1);

	ASSERT_OK(vfio_unmap(self->v.container, IOVA_ENGINE, len, 0,
			     &unmapped));
	EXPECT_EQ(len, unmapped);
	ASSERT_OK(pins_outstanding(&pins1));
	EXPECT_EQ(pins0, pins1);
	edu_close(&e);
}

/* A hole in the middle of the range: EFAULT, nothing stays pinned. */
TEST_F(engine, hole_in_range_is_refused_cleanly)
{
	long pins0, pins1;
	uint8_t *va;

	RETURN_IF_SKIPPED();
	va = mmap(NULL, 8 * PAGE_4K, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, va);
	memset(va, 1, 8 * PAGE_4K);
	ASSERT_EQ(0, munmap(va + 6 * PAGE_4K, PAGE_4K));

	ASSERT_OK(pins_outstanding(&pins0));
	EXPECT_ERRNO(EFAULT, vfio_map(self->v.container, IOVA_ENGINE, va,
				      8 * PAGE_4K, VFIO_RW));
	ASSERT_OK(pins_outstanding(&pins1));
	EXPECT_EQ(pins0, pins1);
	munmap(va, 8 * PAGE_4K);
}

/*
 * Both edu devices sit behind the same emulated VT-d: the second group is
 * attached to the existing domain, so a mapping is made once, not twice.
 */
TEST_F(engine, second_group_shares_the_domain)
{
	const char *group2 = getenv("VFIO_GROUP2");
	long alone, shared;
	struct mem_buf m;
	int g2, ret;

	RETURN_IF_SKIPPED();
	if (!served_by_async(variant->iommu_type))
		SKIP(return, "iommu_map_calls is this module's counter");
	if (!group2)
		SKIP(return, "no second device (VFIO_GROUP2 unset)");
	ret = mem_alloc(&m, MEM_THP, 4 * SZ_2M);
	if (ret == -ENOTSUP)
		SKIP(return, "no transparent huge pages");
	ASSERT_OK(ret);
	alone = map_calls_for(_metadata, &self->v, variant->iommu_type, &m);

	g2 = vfio_group_open(group2);
	ASSERT_LE(0, g2);
	ASSERT_OK(vfio_group_set_container(g2, self->v.container));
	shared = map_calls_for(_metadata, &self->v, variant->iommu_type, &m);
	EXPECT_OK(vfio_group_unset_container(g2));
	close(g2);
	mem_free(&m);
	TH_LOG("iommu_map calls: %ld with one group, %ld with two", alone,
	       shared);
	EXPECT_LE(1, alone);
	EXPECT_EQ(alone, shared);
}

TEST_HARNESS_MAIN
