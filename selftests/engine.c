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
 * - A large MAP_DMA is pinned in 64 MiB pieces by its caller and a helper
 *   thread, all or nothing.
 * - A second group behind the same IOMMU joins the first one's domain:
 *   mapping then costs the same number of calls, not one more per domain.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

#define SPLIT_SIZE	(256UL << 20)	/* four 64 MiB pieces */
#define SPLIT_PIECE	(64UL << 20)
#define UNMAP_SIZE	(512UL << 20)	/* an unmap is shared from 8 pieces */
#define HELPER_PIECES	ASYNC_SYSFS "/helper_pieces"
#define HELPER_UNMAP_PIECES	ASYNC_SYSFS "/helper_unmap_pieces"

/* 4 KiB memory, not faulted in, for a large MAP_DMA to pin. */
static uint8_t *cold_anon(struct __test_metadata *_metadata, size_t size)
{
	uint8_t *va = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, va);
	ASSERT_EQ(0, madvise(va, size, MADV_NOHUGEPAGE));
	return va;
}

/* A pattern DMAed to IOVA_ENGINE + @off lands at @va + @off. */
static void lands_at(struct __test_metadata *_metadata, struct edu *e,
		     uint8_t *va, size_t off)
{
	uint8_t data[64];

	pattern_fill(data, sizeof(data), 0x5e11 + off / PAGE_4K);
	ASSERT_OK(edu_buf_write(e, 0, data, sizeof(data)));
	ASSERT_OK(edu_dma(e, IOVA_ENGINE + off, 0, sizeof(data), true));
	if (memcmp(va + off, data, sizeof(data)))
		TH_LOG("DMA to offset 0x%zx did not land", off);
	EXPECT_EQ(0, memcmp(va + off, data, sizeof(data)));
}

/* A pattern DMAed to IOVA_ENGINE + @off does not reach @va + @off. */
static void blocked_at(struct __test_metadata *_metadata, struct edu *e,
		       uint8_t *va, size_t off)
{
	uint8_t data[64];

	pattern_fill(data, sizeof(data), 0xb10c + off / PAGE_4K);
	ASSERT_OK(edu_buf_write(e, 0, data, sizeof(data)));
	ASSERT_OK(edu_dma(e, IOVA_ENGINE + off, 0, sizeof(data), true));
	if (!memcmp(va + off, data, sizeof(data)))
		TH_LOG("DMA to offset 0x%zx landed after unmap", off);
	EXPECT_NE(0, memcmp(va + off, data, sizeof(data)));
}

/* Nothing is left mapped at IOVA_ENGINE: a piece maps there, and unmaps. */
static void iova_free_again(struct __test_metadata *_metadata, int container,
			    uint8_t *va)
{
	uint64_t unmapped;

	ASSERT_OK(vfio_map(container, IOVA_ENGINE, va, SPLIT_PIECE, VFIO_RW));
	ASSERT_OK(vfio_unmap(container, IOVA_ENGINE, SPLIT_PIECE, 0,
			     &unmapped));
	EXPECT_EQ(SPLIT_PIECE, unmapped);
}

/*
 * A large MAP_DMA, from a caller that may run on every CPU or on
 * @one_cpu only: helpers' pieces counted (some, not all; or none on one
 * CPU, where a helper would only wait for the caller's CPU), both ends of
 * every piece mapped to the right pages, and every pin and every byte of
 * VmLck given back by the unmap.
 */
static void large_map(struct __test_metadata *_metadata,
		      FIXTURE_DATA(engine) *self, bool async, bool one_cpu)
{
	long pins0, pins1, lck0, lck1, helped0 = 0, helped1 = 0;
	cpu_set_t all, one;
	uint64_t unmapped;
	struct edu e;
	uint8_t *va;
	size_t off;

	edu_init(&e);
	ASSERT_OK(edu_open(&e, self->v.device));
	ASSERT_OK(edu_scratch_map(&e, self->v.container, IOVA_SCRATCH));
	va = cold_anon(_metadata, SPLIT_SIZE);
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(all), &all));
	if (one_cpu) {
		CPU_ZERO(&one);
		CPU_SET(sched_getcpu(), &one);
		ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));
	}
	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));
	if (async)
		ASSERT_OK(sysfs_read_long(HELPER_PIECES, &helped0));

	ASSERT_OK(vfio_map(self->v.container, IOVA_ENGINE, va, SPLIT_SIZE,
			   VFIO_RW));
	if (async)
		ASSERT_OK(sysfs_read_long(HELPER_PIECES, &helped1));
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(all), &all));
	TH_LOG("%ld of %lu pieces mapped by a helper", helped1 - helped0,
	       SPLIT_SIZE / SPLIT_PIECE);
	if (async && one_cpu) {
		EXPECT_EQ(helped0, helped1);
	} else if (async) {
		EXPECT_GE(helped1 - helped0, 1);
		EXPECT_LT(helped1 - helped0, (long)(SPLIT_SIZE / SPLIT_PIECE));
	}
	ASSERT_OK(vmlck_kb(0, &lck1));
	EXPECT_EQ(lck0 + (long)(SPLIT_SIZE >> 10), lck1);
	for (off = 0; off < SPLIT_SIZE; off += SPLIT_PIECE) {
		lands_at(_metadata, &e, va, off);
		lands_at(_metadata, &e, va, off + SPLIT_PIECE - PAGE_4K);
	}

	ASSERT_OK(vfio_unmap(self->v.container, IOVA_ENGINE, SPLIT_SIZE, 0,
			     &unmapped));
	EXPECT_EQ(SPLIT_SIZE, unmapped);
	ASSERT_OK(pins_outstanding(&pins1));
	ASSERT_OK(vmlck_kb(0, &lck1));
	EXPECT_EQ(pins0, pins1);
	EXPECT_EQ(lck0, lck1);
	munmap(va, SPLIT_SIZE);
	edu_close(&e);
}

/* A large MAP_DMA is pinned by its caller and a helper (threads=2). */
TEST_F_TIMEOUT(engine, large_map_is_shared_with_a_helper, 600)
{
	RETURN_IF_SKIPPED();
	large_map(_metadata, self, served_by_async(variant->iommu_type),
		  false);
}

/* A caller that may run on one CPU only maps alone. */
TEST_F_TIMEOUT(engine, a_caller_on_one_cpu_maps_alone, 600)
{
	RETURN_IF_SKIPPED();
	large_map(_metadata, self, served_by_async(variant->iommu_type),
		  true);
}

/*
 * The UNMAP_DMA of a large mapping is shared with a helper too: its pieces
 * are counted, both ends of every piece are unmapped (a DMA there no
 * longer reaches the memory), and every pin and every byte of VmLck comes
 * back. The memory is faulted in first, each page written, so that a page
 * left mapped would show the DMA's bytes.
 */
TEST_F_TIMEOUT(engine, large_unmap_is_shared_with_a_helper, 600)
{
	long pins0, pins1, lck0, lck1, helped0 = 0, helped1 = 0;
	uint64_t unmapped;
	struct edu e;
	uint8_t *va;
	size_t off;

	RETURN_IF_SKIPPED();
	edu_init(&e);
	ASSERT_OK(edu_open(&e, self->v.device));
	ASSERT_OK(edu_scratch_map(&e, self->v.container, IOVA_SCRATCH));
	va = cold_anon(_metadata, UNMAP_SIZE);
	memset(va, 0x3c, UNMAP_SIZE);
	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));
	ASSERT_OK(vfio_map(self->v.container, IOVA_ENGINE, va, UNMAP_SIZE,
			   VFIO_RW));
	lands_at(_metadata, &e, va, 0);
	if (served_by_async(variant->iommu_type))
		ASSERT_OK(sysfs_read_long(HELPER_UNMAP_PIECES, &helped0));

	ASSERT_OK(vfio_unmap(self->v.container, IOVA_ENGINE, UNMAP_SIZE, 0,
			     &unmapped));
	EXPECT_EQ(UNMAP_SIZE, unmapped);
	if (served_by_async(variant->iommu_type)) {
		ASSERT_OK(sysfs_read_long(HELPER_UNMAP_PIECES, &helped1));
		TH_LOG("%ld of %lu pieces unmapped by a helper",
		       helped1 - helped0, UNMAP_SIZE / SPLIT_PIECE);
		EXPECT_GE(helped1 - helped0, 1);
		EXPECT_LT(helped1 - helped0, (long)(UNMAP_SIZE / SPLIT_PIECE));
	}
	for (off = 0; off < UNMAP_SIZE; off += SPLIT_PIECE) {
		blocked_at(_metadata, &e, va, off);
		blocked_at(_metadata, &e, va, off + SPLIT_PIECE - PAGE_4K);
	}
	ASSERT_OK(pins_outstanding(&pins1));
	ASSERT_OK(vmlck_kb(0, &lck1));
	EXPECT_EQ(pins0, pins1);
	EXPECT_EQ(lck0, lck1);
	munmap(va, UNMAP_SIZE);
	edu_close(&e);
}

/*
 * The last piece of a large MAP_DMA fails where the others cannot (a memfd
 * mapped past its end: the VMAs are fine, the pin of those pages is not):
 * EFAULT, and the pieces the caller and the helper mapped before it are
 * undone: no pin, no VmLck, the IOVA range free again.
 */
TEST_F_TIMEOUT(engine, a_late_piece_failing_undoes_the_others, 600)
{
	long pins0, pins1, lck0, lck1, helped0 = 0, helped1 = 0;
	uint8_t *va;
	int fd;

	RETURN_IF_SKIPPED();
	fd = memfd_create("engine-split", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, SPLIT_SIZE - SPLIT_PIECE / 2));
	va = mmap(NULL, SPLIT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, va);
	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));
	if (served_by_async(variant->iommu_type))
		ASSERT_OK(sysfs_read_long(HELPER_PIECES, &helped0));

	EXPECT_ERRNO(EFAULT, vfio_map(self->v.container, IOVA_ENGINE, va,
				      SPLIT_SIZE, VFIO_RW));
	if (served_by_async(variant->iommu_type)) {
		ASSERT_OK(sysfs_read_long(HELPER_PIECES, &helped1));
		TH_LOG("%ld pieces mapped by a helper, then undone",
		       helped1 - helped0);
		EXPECT_GE(helped1 - helped0, 1);
	}
	ASSERT_OK(pins_outstanding(&pins1));
	ASSERT_OK(vmlck_kb(0, &lck1));
	EXPECT_EQ(pins0, pins1);
	EXPECT_EQ(lck0, lck1);

	iova_free_again(_metadata, self->v.container, va);
	munmap(va, SPLIT_SIZE);
	close(fd);
}

/* The fixture's container, for run_child()'s child. */
static int split_container = -1;

/* Map SPLIT_SIZE under a limit half a piece short of it: ENOMEM. */
static void map_over_limit_child(int wr)
{
	uint8_t *va = mmap(NULL, SPLIT_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ret;

	if (va == MAP_FAILED || drop_privileges(SPLIT_SIZE - SPLIT_PIECE / 2)) {
		report(wr, "setup failed");
		return;
	}
	ret = vfio_map(split_container, IOVA_ENGINE, va, SPLIT_SIZE, VFIO_RW);
	if (ret != -ENOMEM)
		report(wr, "MAP_DMA over RLIMIT_MEMLOCK: %s, not ENOMEM",
		       ret ? strerror(-ret) : "success");
	else
		report(wr, "ok");
}

/*
 * RLIMIT_MEMLOCK half a piece short of a large MAP_DMA: ENOMEM, as type1,
 * though each piece but the last is charged at once; nothing stays pinned.
 */
TEST_F_TIMEOUT(engine, memlock_limit_within_the_last_piece, 600)
{
	long pins0, pins1;
	char msg[256];
	int status;

	RETURN_IF_SKIPPED();
	ASSERT_OK(pins_outstanding(&pins0));
	split_container = self->v.container;
	ASSERT_OK(run_child(map_over_limit_child, msg, sizeof(msg), &status));
	EXPECT_STREQ("ok", msg);
	ASSERT_OK(pins_outstanding(&pins1));
	EXPECT_EQ(pins0, pins1);
}

/*
 * kill -9 in the middle of a large MAP_DMA: the caller stops at its next
 * batch and the helper with it, promptly; every pin is given back and the
 * IOVA range is free again.
 */
TEST_F_TIMEOUT(engine, killed_during_a_large_map_leaves_nothing, 600)
{
	const size_t size = 4 * SPLIT_SIZE;
	long pins0, pins1, t_kill, waited;
	int status;
	uint8_t *va;
	pid_t pid;

	RETURN_IF_SKIPPED();
	ASSERT_OK(pins_outstanding(&pins0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		va = cold_anon(_metadata, size);
		vfio_map(self->v.container, IOVA_ENGINE, va, size, VFIO_RW);
		_exit(0);
	}
	usleep(1500 * 1000);
	t_kill = now_ms();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	waited = now_ms() - t_kill;
	TH_LOG("the mapper was gone %ld ms after SIGKILL", waited);
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_LT(waited, 3000);
	ASSERT_OK(pins_outstanding(&pins1));
	EXPECT_EQ(pins0, pins1);

	va = cold_anon(_metadata, SPLIT_PIECE);
	iova_free_again(_metadata, self->v.container, va);
	munmap(va, SPLIT_PIECE);
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
