// SPDX-License-Identifier: GPL-2.0
/*
 * hardening: the defects an outside review of the module found, each as
 * the behaviour required, checked against stock type1 where it has one.
 *
 *  - the top of the IOVA space: a mapping ending at the last IOVA the
 *    domain allows maps, DMA reaches it, unmap gives back every pin and
 *    every byte of VmLck; requests whose end would pass 2^64 are EINVAL
 *    (the module computes no exclusive end that could wrap; where the
 *    aperture reaches 2^64 itself, as on AMD, the same code serves);
 *  - device memory: a write mapping of a VM_PFNMAP range whose page table
 *    entries are read-only (a private writable mapping of a PCI BAR opened
 *    read-only) is refused, as type1 refuses it;
 *  - reserved pages: a page GUP returns that is reserved and not the zero
 *    page (the vDSO here; a driver's vm_insert_page() memory in general)
 *    is refused, so that no page is mapped without its pin;
 *  - the shared pool: a long MAP_DMA of one tenant does not hold the
 *    threads another tenant's sweep needs, a tenant whose chunks are slow
 *    holds at most its share of the threads, and one whose chunks fail
 *    does not slow another;
 *  - memory cgroups: page tables the background faults in are charged to
 *    the mapping process's cgroup.
 *
 * Needs VFIO_GROUP2/VFIO_BDF2 (the second edu) for the tests that use two
 * containers or that map the second device's BAR.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P		PAGE_4K
#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define CHUNK		SZ_2M
#define IOVA_HI		0x100000000ULL
#define XFER		64
#define SETTLE_MS	120000
#define ARM_TAIL	16		/* chunks: see sweep_ms_arm() */
#define RELEASE_MS	10000

#define DRW	(VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE)

FIXTURE(hardening) {
	struct vfio_dev v;
	struct edu edu;
	struct kmsg_watch kw;
	long pins0, lck0;
};

FIXTURE_VARIANT(hardening) {
	unsigned long iommu_type;
};

FIXTURE_VARIANT_ADD(hardening, type1v2) {
	.iommu_type = VFIO_TYPE1v2_IOMMU,
};

FIXTURE_VARIANT_ADD(hardening, async) {
	.iommu_type = VFIO_ASYNC_IOMMU,
};

FIXTURE_SETUP(hardening)
{
	const char *why = vfio_env_missing(variant->iommu_type);

	vfio_dev_init(&self->v);
	edu_init(&self->edu);
	self->kw.fd = -1;
	if (why)
		SKIP(return, "%s", why);
	open_edu_device(_metadata, &self->v, &self->edu, variant->iommu_type);
	ASSERT_OK(kmsg_watch_start(&self->kw, getenv("VFIO_BDF")));
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_OK(vmlck_kb(0, &self->lck0));
}

FIXTURE_TEARDOWN(hardening)
{
	kmsg_watch_stop(&self->kw);
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
}

/* Served by this module (our type, or type1v2 through the drop-in). */
static bool ours(const FIXTURE_VARIANT(hardening) *variant)
{
	const char *b = iommu_backend(variant->iommu_type);

	return b && !strcmp(b, "vfio_iommu_async");
}

/* The background's own tests: once, on our type. */
#define SKIP_UNLESS_ASYNC_TYPE() do {					\
	if (variant->iommu_type != VFIO_ASYNC_IOMMU)			\
		SKIP(return, "the deferred sweep: run on VFIO_ASYNC_IOMMU"); \
} while (0)

/* Pins and VmLck are back where the fixture started. */
static void expect_baseline(struct __test_metadata *_metadata,
			    FIXTURE_DATA(hardening) *self, const char *when)
{
	long pins, lck;

	ASSERT_OK(pins_outstanding(&pins));
	ASSERT_OK(vmlck_kb(0, &lck));
	if (pins != self->pins0 || lck != self->lck0)
		TH_LOG("%s: pins %+ld, VmLck %+ld kB", when, pins - self->pins0,
		       lck - self->lck0);
	EXPECT_EQ(self->pins0, pins);
	EXPECT_EQ(self->lck0, lck);
}

/* A pattern DMAed to @iova lands in @mem, with no fault. */
static void dma_lands(struct __test_metadata *_metadata,
		      FIXTURE_DATA(hardening) *self, uint64_t iova,
		      const uint8_t *mem, uint32_t seed)
{
	uint8_t data[XFER];

	pattern_fill(data, XFER, seed);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, XFER));
	ASSERT_OK(edu_dma(&self->edu, iova, 0, XFER, true));
	EXPECT_EQ(0, memcmp(mem, data, XFER));
	EXPECT_NO_DMAR_FAULT(&self->kw);
}

static void unmap_one(struct __test_metadata *_metadata, int c, uint64_t iova,
		      uint64_t size)
{
	uint64_t n = 0;

	ASSERT_OK(vfio_unmap(c, iova, size, 0, &n));
	EXPECT_EQ(size, n);
}

/* The last IOVA the container's domain allows. */
static uint64_t top_iova(struct __test_metadata *_metadata, int c)
{
	struct vfio_iova_range *r = NULL;
	uint32_t nr = 0;
	uint64_t top;

	if (vfio_iova_ranges(c, &r, &nr) || !nr) {
		free(r);
		return 0;
	}
	top = r[nr - 1].end;
	free(r);
	return top;
}

/* ========================================================================= */
/* 1. The top of the IOVA space                                              */
/* ========================================================================= */

TEST_F_TIMEOUT(hardening, top_of_the_aperture, 120)
{
	const uint64_t size = CHUNK;
	int c = self->v.container;
	uint64_t top, iova;
	uint8_t *buf;

	RETURN_IF_SKIPPED();
	top = top_iova(_metadata, c);
	ASSERT_NE(0ULL, top);
	TH_LOG("highest usable IOVA 0x%llx", (unsigned long long)top);
	ASSERT_EQ(0ULL, (top + 1) & (CHUNK - 1));
	iova = top - size + 1;
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0, size);
	kmsg_drain(&self->kw);

	/* Made at once: maps, reaches the last page, gives everything back. */
	ASSERT_OK(vfio_map(c, iova, buf, size, VFIO_RW));
	dma_lands(_metadata, self, top - P + 1, buf + size - P, 0x70);
	dma_lands(_metadata, self, iova, buf, 0x71);
	unmap_one(_metadata, c, iova, size);
	expect_baseline(_metadata, self, "after the sync map at the top");

	if (ours(variant)) {
		struct vfio_iommu_async_status st;

		ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
		ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
		EXPECT_EQ(size, st.mapped_bytes);
		dma_lands(_metadata, self, top - P + 1, buf + size - P, 0x72);
		unmap_one(_metadata, c, iova, size);
		expect_baseline(_metadata, self,
				"after the deferred map at the top");
	}

	/* Ending at 2^64 or beyond: outside the aperture, or wrapping. */
	EXPECT_ERRNO(EINVAL, vfio_map(c, -size, buf, size, VFIO_RW));
	EXPECT_ERRNO(EINVAL, vfio_map(c, -size, buf, 2 * size, VFIO_RW));
	EXPECT_ERRNO(EINVAL, vfio_map(c, top - P + 1, buf, 2 * P, VFIO_RW));
	if (ours(variant)) {
		EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, -size, buf, size, DRW));
		EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, -size, buf, 2 * size,
						       DRW));
	}
	expect_baseline(_metadata, self, "after the refusals");
	munmap(buf, size);
}

/* ========================================================================= */
/* 2. Device memory whose page table is read-only                            */
/* ========================================================================= */

/*
 * The second edu's BAR0 through sysfs, opened read-only and mapped
 * MAP_PRIVATE with PROT_WRITE: the VMA allows writes (copy on write), its
 * PTEs do not. A device must not get write access through it.
 */
TEST_F(hardening, pfnmap_readonly_pte)
{
	const char *bdf2 = getenv("VFIO_BDF2");
	int c = self->v.container, fd;
	char path[128];
	void *ro_map, *rw_map;

	RETURN_IF_SKIPPED();
	if (!bdf2)
		SKIP(return, "no second device (VFIO_BDF2 unset)");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf2);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ro_map = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	rw_map = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (ro_map == MAP_FAILED || rw_map == MAP_FAILED)
		SKIP(return, "cannot mmap %s: %s", path, strerror(errno));

	/* Reading it is fine, for both backends. */
	ASSERT_OK(vfio_map(c, IOVA_HI, ro_map, P, VFIO_DMA_MAP_FLAG_READ));
	unmap_one(_metadata, c, IOVA_HI, P);
	/* Writing through read-only PTEs is not. */
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_HI, rw_map, P, VFIO_RW));
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_HI, rw_map, P,
				      VFIO_DMA_MAP_FLAG_WRITE));
	expect_baseline(_metadata, self, "after the refusals");
	munmap(ro_map, P);
	munmap(rw_map, P);
}

/* ========================================================================= */
/* 3. Reserved pages                                                         */
/* ========================================================================= */

#define KPF_RESERVED	32	/* in /proc/kpageflags */

/* Is the page behind @va (in this process) PageReserved? -errno if unknown. */
static int page_reserved(const void *va)
{
	uint64_t ent, flags;
	int fd, ret;

	ret = pagemap_read(va, 1, &ent);
	if (ret)
		return ret;
	if (!(ent & PAGEMAP_PRESENT))
		return -EIO;
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = pread(fd, &flags, 8, PAGEMAP_PFN(ent) * 8) == 8 ?
	      !!(flags & (1ULL << KPF_RESERVED)) : -EIO;
	close(fd);
	return ret;
}

/*
 * The vDSO's pages, handed out by GUP: kernel image pages, PageReserved on
 * Linux 6.1 (not on 6.12, whose vDSO pages are ordinary: then there is no
 * reserved page here to try).
 */
static void *vdso_range(size_t *size)
{
	char line[256];
	void *found = NULL;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (strstr(line, "[vdso]") &&
		    sscanf(line, "%lx-%lx", &start, &end) == 2) {
			found = (void *)start;
			*size = end - start;
			break;
		}
	}
	fclose(f);
	return found;
}

TEST_F(hardening, reserved_page_refused)
{
	int c = self->v.container;
	size_t size = 0;
	void *vdso;

	RETURN_IF_SKIPPED();
	if (!ours(variant))
		SKIP(return, "type1 maps reserved pages without keeping a pin");
	vdso = vdso_range(&size);
	ASSERT_NE(NULL, vdso);
	ASSERT_EQ((uintptr_t)vdso, getauxval(AT_SYSINFO_EHDR));
	if (page_reserved(vdso) != 1)
		SKIP(return, "the vDSO's pages are not reserved on this kernel");
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_HI, vdso, size,
				      VFIO_DMA_MAP_FLAG_READ));
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_HI, vdso, P,
				      VFIO_DMA_MAP_FLAG_READ));
	expect_baseline(_metadata, self, "after the refusals");
}

/* ========================================================================= */
/* 4. The shared pool of background threads                                  */
/* ========================================================================= */

/* A second container, with the second edu's group. */
static int open_second(struct vfio_dev *v2)
{
	vfio_dev_init(v2);
	return vfio_dev_open(v2, getenv("VFIO_GROUP2"), getenv("VFIO_BDF2"),
			     VFIO_ASYNC_IOMMU);
}

/* Fresh memory, untouched; prefaulted when @touch. */
static uint8_t *fresh(size_t size, bool touch)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_NOHUGEPAGE);
	if (touch)
		memset(p, 0x5a, size);
	return p;
}

/*
 * Deferred map @size of @mem at @iova in @c, then: the ms until its first
 * chunk is mapped (*first) and until all of it is (the return value), or
 * -errno.
 */
static long sweep_ms_arm(int c, uint64_t iova, void *mem, size_t size,
			long *first, volatile bool *arm)
{
	struct vfio_iommu_async_status st;
	long t0 = now_ms();
	int ret;

	*first = -1;
	ret = vfio_map_deferred(c, iova, mem, size, DRW);
	if (ret)
		return ret;
	for (;;) {
		ret = vfio_async_status(c, &st);
		if (ret)
			return ret;
		if (*first < 0 && (st.mapped_bytes || st.failed_bytes)) {
			*first = now_ms() - t0;
			if (arm)
				*arm = true;
		}
		/*
		 * Near the end: once the last chunk is claimed this container
		 * leaves the work list, and the others may have the whole
		 * pool again. Prefaulted chunks are mapped faster than this
		 * loop polls (0.4 ms each on 6.1), so stop counting
		 * ARM_TAIL chunks before, not one.
		 */
		if (arm && st.pending_bytes <= ARM_TAIL * CHUNK)
			*arm = false;
		if (!st.pending_bytes)
			return now_ms() - t0;
		if (now_ms() - t0 > SETTLE_MS)
			return -ETIMEDOUT;
		usleep(500);
	}
}

static long sweep_ms(int c, uint64_t iova, void *mem, size_t size, long *first)
{
	return sweep_ms_arm(c, iova, mem, size, first, NULL);
}

struct sync_map {
	int c;
	uint64_t iova;
	void *mem;
	size_t size;
	int ret;
	long ms;
};

static void *sync_map_thread(void *arg)
{
	struct sync_map *s = arg;
	long t0 = now_ms();

	s->ret = vfio_map(s->c, s->iova, s->mem, s->size, VFIO_RW);
	s->ms = now_ms() - t0;
	return NULL;
}

/* A's MAP_DMA of @mem in a thread, and B's sweep of @b meanwhile. */
static long sweep_during_map(struct __test_metadata *_metadata, int a, int b,
			     uint8_t *amem, size_t asize, uint8_t *bmem,
			     size_t bsize, long *first, long *map_ms)
{
	struct sync_map sm = { .c = a, .iova = IOVA_HI + GiB, .mem = amem,
			       .size = asize };
	pthread_t t;
	long ms;

	if (pthread_create(&t, NULL, sync_map_thread, &sm))
		return -EAGAIN;
	usleep(200 * 1000);
	ms = sweep_ms(b, IOVA_HI, bmem, bsize, first);
	pthread_join(t, NULL);
	*map_ms = sm.ms;
	if (sm.ret)
		return sm.ret;
	unmap_one(_metadata, a, IOVA_HI + GiB, asize);
	if (ms > 0)
		unmap_one(_metadata, b, IOVA_HI, bsize);
	return ms;
}

/*
 * Tenant A makes a long MAP_DMA while it has deferred memory pending;
 * tenant B's deferred map, made while it runs, starts at once (before,
 * A's map held the container lock for its whole pin, the threads that
 * came to A's pending chunks slept on it, and B's first chunk waited for
 * A's map to return) and takes about twice as long as it does next to
 * the same MAP_DMA without A's backlog: the pool is split, never held.
 */
TEST_F_TIMEOUT(hardening, long_map_does_not_stall_another_tenant, 300)
{
	const size_t a_def = 512 * MiB, a_sync = 512 * MiB, b_size = 128 * MiB;
	struct vfio_iommu_async_status st;
	long alone, first_alone, map_alone, with, first_with, map_with;
	uint8_t *a1, *a2, *a3, *b1, *b2;
	struct vfio_dev v2;
	int a = self->v.container;

	RETURN_IF_SKIPPED();
	SKIP_UNLESS_ASYNC_TYPE();
	if (!getenv("VFIO_GROUP2"))
		SKIP(return, "no second device (VFIO_GROUP2 unset)");
	ASSERT_OK(open_second(&v2));
	a1 = fresh(a_def, false);
	a2 = fresh(a_sync, false);
	a3 = fresh(a_sync, false);
	b1 = fresh(b_size, false);
	b2 = fresh(b_size, false);
	ASSERT_TRUE(a1 && a2 && a3 && b1 && b2);

	alone = sweep_during_map(_metadata, a, v2.container, a2, a_sync, b1,
				 b_size, &first_alone, &map_alone);
	ASSERT_LT(0, alone);
	ASSERT_OK(vfio_map_deferred(a, IOVA_HI, a1, a_def, DRW));
	with = sweep_during_map(_metadata, a, v2.container, a3, a_sync, b2,
				b_size, &first_with, &map_with);
	ASSERT_OK(vfio_async_status(a, &st));
	TH_LOG("B during A's %zu MiB MAP_DMA: first chunk %ld ms, all %ld ms (the map %ld ms); with A's backlog too: first %ld ms, all %ld ms (the map %ld ms, A pending %llu MiB)",
	       (size_t)(a_sync / MiB), first_alone, alone, map_alone,
	       first_with, with, map_with,
	       (unsigned long long)(st.pending_bytes / MiB));
	ASSERT_LT(0, with);
	/*
	 * The point: B did not wait for A's map to return. Then: with two
	 * threads split between two tenants, B's sweep takes twice as long;
	 * on the test VM's two vCPUs, shared with A's own map and TCG's
	 * noise, up to 2.8x was seen. A pool that served A's backlog first
	 * (no rotation, no share) gave 5x: the bound sits between.
	 */
	EXPECT_LT(first_with + 200, map_with);
	EXPECT_LT(first_with, 500);
	EXPECT_LE(with, 7 * alone / 2 + 200);

	ASSERT_OK(vfio_async_wait_settled(a, &st, SETTLE_MS));
	unmap_one(_metadata, a, IOVA_HI, a_def);
	vfio_dev_close(&v2);
	munmap(a1, a_def);
	munmap(a2, a_sync);
	munmap(a3, a_sync);
	munmap(b1, b_size);
	munmap(b2, b_size);
	expect_baseline(_metadata, self, "after unmap");
}

/* The largest value of a workers_busy file seen while armed. */
struct busy_watch {
	char path[PATH_MAX + 16];
	volatile bool stop, armed;
	long max;
};

/* Polls in every phase of a test, armed or not, so they all bear its cost. */
static void *busy_thread(void *arg)
{
	struct busy_watch *w = arg;
	long v;

	while (!w->stop) {
		/* Armed before the read and after: only samples inside count. */
		bool armed = w->armed;

		if (!sysfs_read_long(w->path, &v) && armed && w->armed &&
		    v > w->max)
			w->max = v;
		usleep(1000);
	}
	return NULL;
}

/*
 * A thread that does what a worker on cold memory does to the machine,
 * until told to stop: faults in and zeroes fresh 4 KiB pages, 2 MiB at a
 * time, and gives them back.
 */
static void *hog_thread(void *arg)
{
	volatile bool *stop = arg;
	uint8_t *m = fresh(CHUNK, false);

	if (!m)
		return NULL;
	while (!*stop) {
		size_t i;

		for (i = 0; i < CHUNK; i += P)
			m[i] = 1;
		madvise(m, CHUNK, MADV_DONTNEED);
	}
	munmap(m, CHUNK);
	return NULL;
}

/*
 * An unmap of a mapping made at once and mapped whole does not wait for
 * another thread's long MAP_DMA in the same container (nothing of the
 * first can be in flight). Type1 holds its lock across the pin, so there
 * it waits: ours only. The other map completes, and is intact.
 */
TEST_F_TIMEOUT(hardening, unmap_does_not_wait_for_another_map, 300)
{
	const size_t big = 1 * GiB, small = 2 * MiB;
	struct sync_map sm = { .c = self->v.container, .iova = IOVA_HI + GiB,
			       .size = big };
	int c = self->v.container;
	uint8_t *s1;
	pthread_t t;
	long t0, ms;
	int done;

	RETURN_IF_SKIPPED();
	if (!ours(variant))
		SKIP(return, "type1 holds its lock across the pin: the unmap waits");
	s1 = fresh(small, true);
	sm.mem = fresh(big, false);
	ASSERT_TRUE(s1 && sm.mem);
	ASSERT_OK(vfio_map(c, IOVA_HI, s1, small, VFIO_RW));
	dma_lands(_metadata, self, IOVA_HI, s1, 0x73);

	sm.ret = -EINPROGRESS;
	ASSERT_EQ(0, pthread_create(&t, NULL, sync_map_thread, &sm));
	usleep(300 * 1000);
	t0 = now_ms();
	unmap_one(_metadata, c, IOVA_HI, small);
	ms = now_ms() - t0;
	done = __atomic_load_n(&sm.ret, __ATOMIC_ACQUIRE) != -EINPROGRESS;
	pthread_join(t, NULL);
	TH_LOG("unmap took %ld ms while a 1 GiB MAP_DMA ran (%ld ms in all)",
	       ms, sm.ms);
	EXPECT_FALSE(done);
	EXPECT_LT(ms, 500);
	ASSERT_OK(sm.ret);
	dma_lands(_metadata, self, IOVA_HI + GiB + big - P,
		  (uint8_t *)sm.mem + big - P, 0x74);
	unmap_one(_metadata, c, IOVA_HI + GiB, big);
	munmap(sm.mem, big);
	munmap(s1, small);
	expect_baseline(_metadata, self, "after both");
}

/*
 * Tenant A's chunks are slow (cold memory, faulted and zeroed as it is
 * pinned), B's are quick (prefaulted): with the threads handed out chunk
 * by chunk, A would end up holding all of them. A may hold only its share
 * while B has work, and B's chunks do not wait for A's: A maps fewer
 * than three quarters as many chunks as B meanwhile (chunk by chunk, as
 * many). Times are logged beside it ("alone" next to a thread that
 * faults in and zeroes memory as A's worker does), not judged: on the
 * test VM's two vCPUs they measure how the CPUs are shared more than the
 * pool. Then A's memory is gone (every chunk fails): B is not slowed.
 */
TEST_F_TIMEOUT(hardening, a_tenant_holds_its_share_only, 300)
{
	const size_t a_size = GiB, b_size = 256 * MiB;
	struct vfio_iommu_async_status st;
	long threads, alone, first, with;
	struct busy_watch bw = { .max = 0 };
	volatile bool hog_stop;
	long a_chunks, a_after;
	char path[PATH_MAX + 32];
	pthread_t t, hog;
	uint8_t *a, *b;
	struct vfio_dev v2;
	char dir[PATH_MAX];

	RETURN_IF_SKIPPED();
	SKIP_UNLESS_ASYNC_TYPE();
	if (!getenv("VFIO_GROUP2"))
		SKIP(return, "no second device (VFIO_GROUP2 unset)");
	ASSERT_OK(sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/threads",
				  &threads));
	if (threads < 2)
		SKIP(return, "one background thread: nothing to share");
	ASSERT_OK(async_container_dir(getpid(), dir, sizeof(dir)));
	ASSERT_OK(open_second(&v2));
	b = fresh(b_size, true);
	ASSERT_NE(NULL, b);
	snprintf(bw.path, sizeof(bw.path), "%s/workers_busy", dir);
	ASSERT_OK(sysfs_read_long(bw.path, &bw.max));
	ASSERT_EQ(0, pthread_create(&t, NULL, busy_thread, &bw));

	hog_stop = false;
	ASSERT_EQ(0, pthread_create(&hog, NULL, hog_thread, (void *)&hog_stop));
	alone = sweep_ms(v2.container, IOVA_HI, b, b_size, &first);
	hog_stop = true;
	pthread_join(hog, NULL);
	ASSERT_LT(0, alone);
	unmap_one(_metadata, v2.container, IOVA_HI, b_size);

	/*
	 * Slow chunks for A; its share is threads / 2 while B has work,
	 * counted from B's first chunk on (until then A may hold them all:
	 * B had no work when they were claimed).
	 */
	a = fresh(a_size, false);
	ASSERT_NE(NULL, a);
	ASSERT_OK(vfio_map_deferred(self->v.container, IOVA_HI, a, a_size, DRW));
	usleep(100 * 1000);
	bw.max = 0;
	snprintf(path, sizeof(path), "%s/chunks_mapped", dir);
	ASSERT_OK(sysfs_read_long(path, &a_chunks));
	with = sweep_ms_arm(v2.container, IOVA_HI, b, b_size, &first,
			    &bw.armed);
	ASSERT_OK(sysfs_read_long(path, &a_after));
	bw.armed = false;
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	TH_LOG("B alone (next to a faulting thread) %ld ms, next to A's cold sweep %ld ms (first chunk %ld ms); A held at most %ld of %ld threads meanwhile (A still pending: %llu MiB)",
	       alone, with, first, bw.max, threads,
	       (unsigned long long)(st.pending_bytes / MiB));
	ASSERT_LT(0, with);
	EXPECT_LT(0ULL, st.pending_bytes);	/* A was busy all along */
	EXPECT_LE(bw.max, (threads + 1) / 2);
	/*
	 * Handed out chunk by chunk, B would get one chunk per A chunk that
	 * ends; with a thread of its own, B's quick chunks run back to back
	 * while A's slow ones end now and then. The time depends on how the
	 * two vCPUs are shared; this count less so. Measured: chunk by chunk
	 * A maps as many as B (130 to 128); with shares 11-16 on a stock
	 * kernel, 48-65 on the debug kernel, where KASAN slows B's prefaulted
	 * chunks more than A's zeroing: three quarters keeps both apart.
	 */
	TH_LOG("A mapped %ld chunks while B mapped its %zu", a_after - a_chunks,
	       (size_t)(b_size / CHUNK));
	EXPECT_LT(a_after - a_chunks, (long)(b_size / CHUNK * 3 / 4));
	unmap_one(_metadata, v2.container, IOVA_HI, b_size);
	unmap_one(_metadata, self->v.container, IOVA_HI, a_size);

	/* A's memory is gone: its chunks fail; B still gets on. */
	ASSERT_OK(vfio_map_deferred(self->v.container, IOVA_HI, a, a_size, DRW));
	ASSERT_EQ(0, munmap(a, a_size));
	with = sweep_ms(v2.container, IOVA_HI, b, b_size, &first);
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, SETTLE_MS));
	bw.stop = true;
	pthread_join(t, NULL);
	TH_LOG("B next to A's failing chunks: %ld ms (A: %llu MiB failed, %llu mapped before its memory went)",
	       with, (unsigned long long)(st.failed_bytes >> 20),
	       (unsigned long long)(st.mapped_bytes >> 20));
	/* A few chunks of memory faulted in before may have made it. */
	EXPECT_EQ(a_size, st.failed_bytes + st.mapped_bytes);
	EXPECT_LT(a_size / 2, st.failed_bytes);
	EXPECT_LE(with, 2 * alone + 100);
	unmap_one(_metadata, v2.container, IOVA_HI, b_size);
	unmap_one(_metadata, self->v.container, IOVA_HI, a_size);
	vfio_dev_close(&v2);
	munmap(b, b_size);
	expect_baseline(_metadata, self, "after unmap");
}

/* ========================================================================= */
/* 5. Memory cgroups                                                         */
/* ========================================================================= */

#define CG_ROOT	"/sys/fs/cgroup"
#define CG_TEST	CG_ROOT "/vfio-async-test"

/* "pagetables" of the test cgroup's memory.stat, in bytes, or -1. */
static long cg_pagetables(void)
{
	char line[128];
	long v = -1;
	FILE *f = fopen(CG_TEST "/memory.stat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "pagetables %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cg_setup(void)
{
	if (access(CG_ROOT "/cgroup.controllers", F_OK) &&
	    mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL))
		return -errno;
	if (sysfs_write(CG_ROOT "/cgroup.subtree_control", "+memory"))
		return -EOPNOTSUPP;
	if (mkdir(CG_TEST, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * In a child moved into a cgroup of its own: a deferred map of 1 GiB of
 * fresh 4 KiB memory, which the background faults in. The PTE pages for
 * it (2 MiB) must be charged to the child's cgroup, not to no one.
 */
TEST_F_TIMEOUT(hardening, page_tables_charged_to_the_mapper, 180)
{
	const size_t size = GiB;
	long before, after;
	char pid[16];
	int status, ret;
	pid_t child;

	RETURN_IF_SKIPPED();
	SKIP_UNLESS_ASYNC_TYPE();
	ret = cg_setup();
	if (ret)
		SKIP(return, "no cgroup2 memory controller: %s", strerror(-ret));
	/* The child sets up a container of its own. */
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_OK(vmlck_kb(0, &self->lck0));

	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		struct vfio_iommu_async_status st;
		struct vfio_dev v;
		uint8_t *m;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (sysfs_write(CG_TEST "/cgroup.procs", pid))
			_exit(2);
		vfio_dev_init(&v);
		m = fresh(size, false);
		if (!m || vfio_dev_open_env(&v, VFIO_ASYNC_IOMMU))
			_exit(3);
		before = cg_pagetables();
		if (vfio_map_deferred(v.container, IOVA_HI, m, size, DRW) ||
		    vfio_async_wait_settled(v.container, &st, SETTLE_MS))
			_exit(4);
		after = cg_pagetables();
		printf("# cgroup pagetables: %ld kB before, %ld kB after the sweep\n",
		       before >> 10, after >> 10);
		fflush(stdout);
		/* 2 MiB of PTE pages for 1 GiB; nothing without the charge. */
		_exit(before >= 0 && after - before >= (long)(size / 1024) ? 0 : 1);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	rmdir(CG_TEST);
	expect_baseline(_metadata, self, "after the child");
}

TEST_HARNESS_MAIN
