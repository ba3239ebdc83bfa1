// SPDX-License-Identifier: GPL-2.0
/*
 * deferred: VFIO_IOMMU_MAP_DMA_DEFERRED and VFIO_IOMMU_ASYNC_GET_STATUS.
 *
 * What is checked, and against what:
 *  - the UAPI: the extension, argsz/flags rules of both ioctls, the
 *    MAP_DMA errnos, the VMA checks made up front, the entry limit and
 *    RLIMIT_MEMLOCK charged for the whole size at the call;
 *  - ground truth from edu: once GET_STATUS says a range is mapped, DMA in
 *    both directions reaches exactly the right user bytes in every chunk;
 *    before that, it faults and leaves memory alone;
 *  - the counters: GET_STATUS adds up at every sample of a sweep, sysfs
 *    agrees with it and with the module-wide files;
 *  - teardown in every state of the sweep (unmap before/while/after,
 *    UNMAP_ALL, close, exit, SIGKILL, group detach), a background failure,
 *    and FLAG_NOW: pins (nr_foll_pin_* after stat_refresh) and VmLck come
 *    back exactly;
 *  - the cost of the call does not grow with the size.
 *
 * Determinism. The background maps a container's pending chunks lowest
 * IOVA first, at most `threads` of them in flight (module parameter). So a
 * "delayer" mapping at a low IOVA keeps the sweep busy while a test works
 * on a "target" mapping above it, and whenever GET_STATUS shows
 *	pending_bytes > target bytes + threads * 2 MiB
 * at least one delayer chunk is still unclaimed, hence no target chunk has
 * been claimed up to that sample (claims only move forward). Tests read
 * that AFTER acting on the target, so the verdict is exact; when the sweep
 * got there first they retry with a bigger delayer, and skip if it still
 * does. Teardown "mid-sweep" is proven after the fact: chunks_mapped,
 * which only ever grows, ends below the number of chunks.
 *
 * Test-the-test: VFIO_SELFTEST_SABOTAGE=map-shift or leak-pin (see
 * vfio_util.h) also apply to the deferred maps made here.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P		PAGE_4K
#define KiB		(1ULL << 10)
#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define CHUNK		SZ_2M
#define IOVA_HI		0x100000000ULL		/* above the 32-bit MSI window */
#define IOVA_ODD	(IOVA_HI + MiB)		/* not chunk aligned */
#define DELAY_IOVA	IOVA_BASE		/* below every target */
#define DELAY_MIN	(512 * MiB)		/* ~2 s of sweep under TCG */
#define DELAY_TRIES	2			/* 512 MiB, then 1 GiB */
#define SWEEP		(512 * MiB)		/* long enough to act mid-way */
#define SETTLE_MS	60000
#define RELEASE_MS	10000
#define XFER		64
#define MAX_MAPS	8
#define MSI_START	0xfee00000ULL
#define MSI_LAST	0xfeefffffULL

#define DRW	(VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE)
#define DNOW	(DRW | VFIO_ASYNC_MAP_FLAG_NOW)

/* The sysfs counters, per container and module-wide. */
enum {
	C_SYNC, C_DEFERRED, C_MAPPED, C_PENDING, C_FAILED, C_PINNED,
	C_CHUNKS, C_ERRORS, C_MAPCALLS, NR_C,
};

static const char *const cname[NR_C] = {
	"sync_bytes", "deferred_bytes", "mapped_bytes", "pending_bytes",
	"failed_bytes", "pinned_pages", "chunks_mapped", "background_errors",
	"iommu_map_calls",
};

struct ctrs {
	long v[NR_C];
};

FIXTURE(deferred) {
	struct vfio_dev v;
	struct edu edu;
	struct kmsg_watch kw;
	long nthreads;
	long pins_open, lck_open;	/* before anything was mapped */
	long pins0, lck0;		/* after setup (edu's bounce page) */
	char dir[PATH_MAX];		/* our container's sysfs directory */
	struct { void *p; size_t n; } maps[MAX_MAPS];
	long limit_old;			/* dma_entry_limit to restore, or -1 */
};

/* --- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static int dmap_raw(int c, void *arg)
{
	return ioctl(c, VFIO_IOMMU_MAP_DMA_DEFERRED, arg) ? -errno : 0;
}

static int status_raw(int c, void *arg)
{
	return ioctl(c, VFIO_IOMMU_ASYNC_GET_STATUS, arg) ? -errno : 0;
}

/* Poll until the sweep has mapped something: the sweep is under way. */
static int wait_started(int c, struct vfio_iommu_async_status *st,
			int timeout_ms)
{
	long t0 = now_ms();
	int ret;

	for (;;) {
		ret = vfio_async_status(c, st);
		if (ret)
			return ret;
		if (st->mapped_bytes || st->failed_bytes || !st->pending_bytes)
			return 0;
		if (now_ms() - t0 > timeout_ms)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

/*
 * True when, at sample @st, some deferred chunk below a target of
 * @target_bytes (the highest deferred range) is still unclaimed, so that
 * no chunk of the target has ever been claimed (see the top comment).
 */
static bool target_untouched(const struct vfio_iommu_async_status *st,
			     uint64_t target_bytes, long nthreads)
{
	return st->pending_bytes > target_bytes + nthreads * CHUNK;
}

/* Number of 2 MiB IOVA chunks [iova, iova + size) is cut into. */
static uint64_t nchunks(uint64_t iova, uint64_t size)
{
	return ((iova + size - 1) >> 21) - (iova >> 21) + 1;
}

static int ctrs_read(const char *dir, struct ctrs *c)
{
	char path[PATH_MAX + 32];
	int i, ret;

	for (i = 0; i < NR_C; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, cname[i]);
		ret = sysfs_read_long(path, &c->v[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int ctr_read(const char *dir, int i, long *v)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, cname[i]);
	return sysfs_read_long(path, v);
}

/* --- memory --------------------------------------------------------------- */

/* Fresh anonymous memory, not touched (the background faults it in). */
static void *anon(FIXTURE_DATA(deferred) *self, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int i;

	if (p == MAP_FAILED)
		return NULL;
	for (i = 0; i < MAX_MAPS; i++) {
		if (!self->maps[i].p) {
			self->maps[i].p = p;
			self->maps[i].n = size;
			return p;
		}
	}
	munmap(p, size);
	return NULL;
}

static void anon_free(FIXTURE_DATA(deferred) *self, void *p)
{
	int i;

	for (i = 0; i < MAX_MAPS; i++) {
		if (self->maps[i].p == p) {
			munmap(p, self->maps[i].n);
			self->maps[i].p = NULL;
		}
	}
}

/* --- fixture -------------------------------------------------------------- */

FIXTURE_SETUP(deferred)
{
	const char *why = vfio_env_missing(VFIO_ASYNC_IOMMU);
	int waited = 0;

	vfio_dev_init(&self->v);
	edu_init(&self->edu);
	self->kw.fd = -1;
	self->limit_old = -1;
	if (why)
		SKIP(return, "%s", why);

	ASSERT_OK(sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/threads",
				  &self->nthreads));
	ASSERT_LT(0, self->nthreads);
	/* No container of ours anywhere (one just closed may lag a little). */
	while (async_containers() != 0 && waited < RELEASE_MS) {
		usleep(10000);
		waited += 10;
	}
	ASSERT_EQ(0, async_containers());
	ASSERT_OK(pins_outstanding(&self->pins_open));
	ASSERT_OK(vmlck_kb(0, &self->lck_open));

	open_edu_device(_metadata, &self->v, &self->edu, VFIO_ASYNC_IOMMU);
	ASSERT_OK(kmsg_watch_start(&self->kw, getenv("VFIO_BDF")));
	ASSERT_OK(async_container_dir(getpid(), self->dir, sizeof(self->dir)));

	/* The measurement works: the bounce page is one pin, 4 kB locked. */
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_OK(vmlck_kb(0, &self->lck0));
	ASSERT_EQ(self->pins_open + 1, self->pins0);
	ASSERT_EQ(self->lck_open + 4, self->lck0);
}

FIXTURE_TEARDOWN(deferred)
{
	int i;

	kmsg_watch_stop(&self->kw);
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	for (i = 0; i < MAX_MAPS; i++)
		if (self->maps[i].p)
			munmap(self->maps[i].p, self->maps[i].n);
	if (self->limit_old >= 0)
		sysfs_write_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
				 self->limit_old);
}

/* Within RELEASE_MS: no container left, every pin back as at the start. */
static void expect_released(struct __test_metadata *_metadata,
			    FIXTURE_DATA(deferred) *self)
{
	int containers;
	long pins;

	EXPECT_EQ(0, async_wait_released(self->pins_open, RELEASE_MS, &pins,
					 &containers));
	EXPECT_EQ(0, containers);
	EXPECT_EQ(self->pins_open, pins);
}

/* Give the group up (for a child, or a container set up differently). */
static void fixture_release(struct __test_metadata *_metadata,
			    FIXTURE_DATA(deferred) *self)
{
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	expect_released(_metadata, self);
}

/* Pins and our VmLck moved by exactly @pages and @bytes since setup. */
static void expect_held(struct __test_metadata *_metadata,
			FIXTURE_DATA(deferred) *self, long pages, long bytes,
			const char *when)
{
	long p, l;

	ASSERT_OK(pins_outstanding(&p));
	ASSERT_OK(vmlck_kb(0, &l));
	if (p - self->pins0 != pages || l - self->lck0 != bytes >> 10)
		TH_LOG("%s: pins %+ld (want %+ld), VmLck %+ld kB (want %+ld kB)",
		       when, p - self->pins0, pages, l - self->lck0,
		       bytes >> 10);
	EXPECT_EQ(pages, p - self->pins0);
	EXPECT_EQ(bytes >> 10, l - self->lck0);
}

/* Unmap exactly one range of @size at @iova. */
static void unmap_expect(struct __test_metadata *_metadata, int c,
			 uint64_t iova, uint64_t size)
{
	uint64_t n = 0;

	ASSERT_OK(vfio_unmap(c, iova, size, 0, &n));
	EXPECT_EQ(size, n);
}

/* --- edu ----------------------------------------------------------------- */

/* A transfer the IOMMU should have blocked. */
struct xfer {
	uint64_t iova;
	uint32_t len;
	bool write;
};

/*
 * Every DMAR fault line logged since the last check names a page of one of
 * the @n blocked transfers, in its direction (there may be none at all: the
 * kernel rate-limits them, and VT-d records no new fault while one is
 * pending).
 */
static void faults_within(struct __test_metadata *_metadata,
			  FIXTURE_DATA(deferred) *self, const struct xfer *x,
			  int n)
{
	struct dmar_fault f;
	int ret, i, seen = 0;

	while ((ret = kmsg_next_dmar_fault(&self->kw, &f,
					   seen ? 100 : 300)) == 1) {
		seen++;
		for (i = 0; i < n; i++)
			if (f.addr >= (x[i].iova & ~(P - 1)) &&
			    f.addr <= x[i].iova + x[i].len - 1 &&
			    f.write == x[i].write)
				break;
		if (i == n)
			TH_LOG("unexpected DMAR fault: %s", f.line);
		EXPECT_GT(n, i);
	}
	EXPECT_LE(0, ret);
	if (!seen)
		TH_LOG("no DMAR fault line for 0x%llx (rate-limited?)",
		       (unsigned long long)x[0].iova);
}

static void fault_at(struct __test_metadata *_metadata,
		     FIXTURE_DATA(deferred) *self, uint64_t iova, uint32_t len,
		     bool write)
{
	struct xfer x = { .iova = iova, .len = len, .write = write };

	faults_within(_metadata, self, &x, 1);
}

/* The whole buffer holds exactly what it must. */
static void expect_same(struct __test_metadata *_metadata, const uint8_t *buf,
			const uint8_t *expect, size_t size, const char *what)
{
	ssize_t d = first_diff(buf, expect, size);

	if (d >= 0)
		TH_LOG("%s: differs at offset 0x%zx (page %zu): 0x%02x, expected 0x%02x",
		       what, (size_t)d, (size_t)d / P, buf[d], expect[d]);
	EXPECT_EQ(-1, d);
}

/* ========================================================================= */
/* 1. UAPI                                                                   */
/* ========================================================================= */

/*
 * The extension is offered by our backend, on our container and to a
 * container with no IOMMU yet; stock type1 knows neither it nor the ioctls.
 */
TEST_F(deferred, extension)
{
	struct vfio_iommu_async_status st;
	int c;

	RETURN_IF_SKIPPED();
	EXPECT_EQ(1, vfio_check_extension(self->v.container,
					  VFIO_ASYNC_DEFERRED_MAP));
	EXPECT_EQ(1, vfio_check_extension(self->v.container, VFIO_ASYNC_IOMMU));
	EXPECT_EQ(0, vfio_check_extension(self->v.container,
					  VFIO_ASYNC_DEFERRED_MAP + 0x100));

	c = vfio_container_new();
	ASSERT_LE(0, c);
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_ASYNC_DEFERRED_MAP));
	/* No IOMMU set: the VFIO core refuses to pass the ioctl on. */
	EXPECT_ERRNO(EINVAL, vfio_async_status(c, &st));
	close(c);

	/* Negative control: a container served by stock vfio_iommu_type1. */
	if (strcmp(type1v2_backend(), "vfio_iommu_type1")) {
		TH_LOG("type1v2 is served by %s: no stock type1 control",
		       type1v2_backend());
		return;
	}
	fixture_release(_metadata, self);
	ASSERT_OK(vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
				VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(0, vfio_check_extension(self->v.container,
					  VFIO_ASYNC_DEFERRED_MAP));
	EXPECT_ERRNO(ENOTTY, vfio_map_deferred(self->v.container, IOVA_HI, &st, P, DRW));
	EXPECT_ERRNO(ENOTTY, vfio_async_status(self->v.container, &st));
}

/* argsz: short is EINVAL; longer must have a zero tail (else E2BIG). */
TEST_F(deferred, map_argsz)
{
	struct {
		struct vfio_iommu_async_dma_map m;
		uint8_t tail[32];
	} a;
	const uint32_t shorts[] = { 0, 4, 8, 16, sizeof(a.m) - 1 };
	struct vfio_iommu_async_dma_map *big;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t *buf;
	unsigned int i;

	RETURN_IF_SKIPPED();
	buf = anon(self, 4 * MiB);
	ASSERT_NE(NULL, buf);

#define RESET_ARGS(sz) do {						\
	memset(&a, 0, sizeof(a));					\
	a.m.argsz = (sz);						\
	a.m.flags = DRW;						\
	a.m.vaddr = (uintptr_t)buf;					\
	a.m.iova = IOVA_HI;						\
	a.m.size = 4 * MiB;						\
} while (0)

	for (i = 0; i < ARRAY_SIZE(shorts); i++) {
		RESET_ARGS(shorts[i]);
		EXPECT_ERRNO(EINVAL, dmap_raw(c, &a));
	}
	/* Non-zero bytes past the structure: a newer caller, refused. */
	RESET_ARGS(sizeof(a));
	a.tail[0] = 1;
	EXPECT_ERRNO(E2BIG, dmap_raw(c, &a));
	RESET_ARGS(sizeof(a));
	a.tail[sizeof(a.tail) - 1] = 0x80;
	EXPECT_ERRNO(E2BIG, dmap_raw(c, &a));
	RESET_ARGS(sizeof(a.m) + 1);
	a.tail[0] = 1;
	EXPECT_ERRNO(E2BIG, dmap_raw(c, &a));
	/* Past a page it is no structure at all, zeroes or not. */
	big = calloc(1, 2 * P);
	ASSERT_NE(NULL, big);
	memcpy(big, &a.m, sizeof(a.m));
	big->argsz = P + 8;
	EXPECT_ERRNO(E2BIG, dmap_raw(c, big));
	/* Nothing was mapped by any of those. */
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);
	/* A page, zero past the structure: fine. */
	big->argsz = P;
	ASSERT_OK(dmap_raw(c, big));
	unmap_expect(_metadata, c, IOVA_HI, 4 * MiB);
	free(big);

	/* A byte the kernel does not look at (past argsz) is not its business. */
	RESET_ARGS(sizeof(a.m));
	a.tail[0] = 1;
	ASSERT_OK(dmap_raw(c, &a));
	unmap_expect(_metadata, c, IOVA_HI, 4 * MiB);

	/* Longer with a zero tail: works, and maps what it says. */
	RESET_ARGS(sizeof(a));
	ASSERT_OK(dmap_raw(c, &a));
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(4 * MiB, st.deferred_bytes);
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(4 * MiB, st.mapped_bytes);
	unmap_expect(_metadata, c, IOVA_HI, 4 * MiB);
	expect_held(_metadata, self, 0, 0, "after unmap");
#undef RESET_ARGS
}

/* flags: unknown bits and "no access" are EINVAL; R, W, RW all work. */
TEST_F(deferred, map_flags)
{
	const uint32_t bad[] = {
		0, VFIO_ASYNC_MAP_FLAG_NOW, DRW | (1u << 3), DRW | (1u << 31),
		VFIO_ASYNC_MAP_FLAG_READ | (1u << 8),
	};
	const uint32_t good[] = {
		VFIO_ASYNC_MAP_FLAG_READ, VFIO_ASYNC_MAP_FLAG_WRITE, DRW,
	};
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t *buf;
	unsigned int i;

	RETURN_IF_SKIPPED();
	buf = anon(self, 4 * MiB);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (vfio_map_deferred(c, IOVA_HI, buf, 4 * MiB, bad[i]) != -EINVAL)
			TH_LOG("flags 0x%x not refused with EINVAL", bad[i]);
		EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, buf, 4 * MiB, bad[i]));
	}
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);

	for (i = 0; i < ARRAY_SIZE(good); i++)
		ASSERT_OK(vfio_map_deferred(c, IOVA_HI + i * 8 * MiB, buf, 4 * MiB, good[i]));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(3 * 4 * MiB, st.deferred_bytes);
	EXPECT_EQ(3 * 4 * MiB, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.failed_bytes);
	for (i = 0; i < ARRAY_SIZE(good); i++)
		unmap_expect(_metadata, c, IOVA_HI + i * 8 * MiB, 4 * MiB);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* The MAP_DMA errnos, and that a refused request leaves nothing behind. */
TEST_F(deferred, map_errnos)
{
	struct vfio_iova_range *r;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint64_t top;
	uint8_t *buf;
	uint32_t nr;

	RETURN_IF_SKIPPED();
	buf = anon(self, 8 * MiB);
	ASSERT_NE(NULL, buf);
	ASSERT_OK(vfio_iova_ranges(c, &r, &nr));
	top = r[nr - 1].end;
	free(r);
	ASSERT_LT(IOVA_HI + 64 * MiB, top);

	/* Size and alignment. */
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, buf, 0, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, buf, P / 2, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, buf, P + 1, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI + 0x800, buf, P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, buf + 1, P, DRW));
	/* Wrap of the IOVA or of the user address. */
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, 0xfffffffffffff000ULL, buf, 2 * P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, (void *)0xfffffffffffff000ULL,
				  2 * P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI, buf, 1ULL << 63, DRW));
	/* Outside the aperture: at, across and far above its end. */
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, top + 1, buf, P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, top + 1 - P, buf, 2 * P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, 0xfffffffffffff000ULL, buf, P, DRW));
	/* The same holds for NOW, which takes the same checks. */
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, IOVA_HI + 0x800, buf, P, DNOW));

	/* Overlap with a mapping made at once: [HI, HI + 2M). */
	ASSERT_OK(vfio_map(c, IOVA_HI, buf, 2 * MiB, VFIO_RW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI, buf, 2 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI - MiB, buf, 2 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + 2 * MiB - P, buf, 2 * P, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI - MiB, buf, 4 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + P, buf, P, DRW));
	/* Adjacent is fine. */
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 2 * MiB, buf, 2 * MiB, DRW));
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI - 2 * MiB, buf, 2 * MiB, DRW));

	/* Overlap with a deferred one: [HI + 16M, HI + 20M), still pending or not. */
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 16 * MiB, buf, 4 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + 16 * MiB, buf, 4 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + 15 * MiB, buf, 2 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + 19 * MiB, buf, 2 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + 12 * MiB, buf, 8 * MiB, DRW));
	EXPECT_ERRNO(EEXIST, vfio_map_deferred(c, IOVA_HI + 17 * MiB, buf, P, DNOW));
	EXPECT_ERRNO(EEXIST, vfio_map(c, IOVA_HI + 18 * MiB, buf, P, VFIO_RW));

	/* Only the four good ones exist. */
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(8 * MiB, st.deferred_bytes);
	EXPECT_EQ(8 * MiB, st.mapped_bytes);
	EXPECT_EQ(2 * MiB + P, st.sync_bytes);
	unmap_expect(_metadata, c, IOVA_HI - 2 * MiB, 2 * MiB);
	unmap_expect(_metadata, c, IOVA_HI, 2 * MiB);
	unmap_expect(_metadata, c, IOVA_HI + 2 * MiB, 2 * MiB);
	unmap_expect(_metadata, c, IOVA_HI + 16 * MiB, 4 * MiB);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* VT-d's interrupt window 0xfee00000-0xfeefffff is not usable IOVA. */
TEST_F(deferred, map_msi_window)
{
	struct vfio_iova_range *r;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t *buf;
	uint32_t nr;

	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_iova_ranges(c, &r, &nr));
	/* GET_INFO says so (else the rest would prove nothing). */
	EXPECT_FALSE(iova_range_valid(r, nr, MSI_START, P));
	EXPECT_FALSE(iova_range_valid(r, nr, MSI_LAST + 1 - P, P));
	EXPECT_TRUE(iova_range_valid(r, nr, MSI_START - MiB, MiB));
	EXPECT_TRUE(iova_range_valid(r, nr, MSI_LAST + 1, MiB));
	free(r);

	buf = anon(self, 2 * MiB);
	ASSERT_NE(NULL, buf);
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_START, buf, P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_START + 512 * 1024, buf, P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_LAST + 1 - P, buf, P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_START - P, buf, 2 * P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_LAST + 1 - P, buf, 2 * P, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_START - MiB, buf, 2 * MiB, DRW));
	EXPECT_ERRNO(EINVAL, vfio_map_deferred(c, MSI_START, buf, P, DNOW));
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);

	/* Right below and right above: fine. */
	ASSERT_OK(vfio_map_deferred(c, MSI_START - MiB, buf, MiB, DRW));
	ASSERT_OK(vfio_map_deferred(c, MSI_LAST + 1, buf + MiB, MiB, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(2 * MiB, st.mapped_bytes);
	unmap_expect(_metadata, c, MSI_START - MiB, MiB);
	unmap_expect(_metadata, c, MSI_LAST + 1, MiB);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/*
 * The user range is checked up front: a hole, or a VMA without the access
 * asked for, is EFAULT and charges nothing. Several VMAs are fine.
 */
TEST_F(deferred, map_vaddr_checks)
{
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t *buf, *ro, *none;

	RETURN_IF_SKIPPED();
	/* A hole: page 2 of 8 unmapped. */
	buf = anon(self, 8 * P);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, munmap(buf + 2 * P, P));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, buf, 8 * P, DRW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, buf + 2 * P, P, DRW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, buf + P, 2 * P, VFIO_ASYNC_MAP_FLAG_READ));
	/* NOW finds the hole while pinning: undone, nothing left pinned. */
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, buf, 8 * P, DNOW));
	/*
	 * Kernel addresses up to the very top: the walk over the VMAs must
	 * not be skipped because vaddr + size wraps to 0.
	 */
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, (void *)-CHUNK,
					       CHUNK, DRW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, (void *)-P, P, DRW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, (void *)-CHUNK,
					       CHUNK, DNOW));
	expect_held(_metadata, self, 0, 0, "after refused maps");
	/* Either side of it is fine. */
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI, buf, 2 * P, DRW));
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 2 * P, buf + 3 * P, 5 * P, DRW));

	/* Read-only memory: not for a device that writes. */
	ro = mmap(NULL, 4 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI + MiB, ro, 4 * P, DRW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI + MiB, ro, 4 * P,
				  VFIO_ASYNC_MAP_FLAG_WRITE));
	/* No access at all. */
	none = mmap(NULL, 4 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI + 2 * MiB, none, 4 * P,
				  VFIO_ASYNC_MAP_FLAG_READ));
	/* Read-only for a device that only reads: fine. */
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + MiB, ro, 4 * P, VFIO_ASYNC_MAP_FLAG_READ));

	/* One range over three VMAs (RW, RWX, RW): fine. */
	buf = anon(self, 12 * P);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, mprotect(buf + 4 * P, 4 * P,
			      PROT_READ | PROT_WRITE | PROT_EXEC));
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 4 * MiB, buf, 12 * P, DRW));

	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ((2 + 5 + 4 + 12) * P, st.deferred_bytes);
	EXPECT_EQ((2 + 5 + 4 + 12) * P, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.failed_bytes);
	unmap_expect(_metadata, c, IOVA_HI, 2 * P);
	unmap_expect(_metadata, c, IOVA_HI + 2 * P, 5 * P);
	unmap_expect(_metadata, c, IOVA_HI + MiB, 4 * P);
	unmap_expect(_metadata, c, IOVA_HI + 4 * MiB, 12 * P);
	munmap(ro, 4 * P);
	munmap(none, 4 * P);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* dma_entry_limit (taken when a container is set up) gives ENOSPC. */
TEST_F(deferred, entry_limit)
{
	const char *param = ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit";
	struct vfio_iommu_async_status st;
	uint32_t avail = 0;
	uint8_t *buf;
	long old;
	int c, i;

	RETURN_IF_SKIPPED();
	buf = anon(self, 8 * P);
	ASSERT_NE(NULL, buf);
	fixture_release(_metadata, self);
	ASSERT_OK(sysfs_read_long(param, &old));
	self->limit_old = old;
	ASSERT_OK(sysfs_write_long(param, 3));
	ASSERT_OK(vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
				VFIO_ASYNC_IOMMU));
	/* Restored at once: this container keeps its own limit. */
	ASSERT_OK(sysfs_write_long(param, old));
	self->limit_old = -1;
	c = self->v.container;

	ASSERT_OK(vfio_dma_avail(c, &avail));
	EXPECT_EQ(3U, avail);
	for (i = 0; i < 3; i++)
		ASSERT_OK(vfio_map_deferred(c, IOVA_HI + i * CHUNK, buf + i * P, P, DRW));
	EXPECT_ERRNO(ENOSPC, vfio_map_deferred(c, IOVA_HI + 3 * CHUNK, buf, P, DRW));
	EXPECT_ERRNO(ENOSPC, vfio_map_deferred(c, IOVA_HI + 3 * CHUNK, buf, P, DNOW));
	EXPECT_ERRNO(ENOSPC, vfio_map(c, IOVA_HI + 3 * CHUNK, buf, P, VFIO_RW));
	ASSERT_OK(vfio_dma_avail(c, &avail));
	EXPECT_EQ(0U, avail);
	/* An unmap gives the entry back. */
	unmap_expect(_metadata, c, IOVA_HI + CHUNK, P);
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 3 * CHUNK, buf, P, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(3 * P, st.mapped_bytes);

	/* A new container takes the restored limit. */
	vfio_dev_close(&self->v);
	ASSERT_OK(vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
				VFIO_ASYNC_IOMMU));
	ASSERT_OK(vfio_dma_avail(self->v.container, &avail));
	EXPECT_EQ(old, (long)avail);
}

/*
 * A child that gave up root (fds opened first) under RLIMIT_MEMLOCK of
 * 16 MiB: the whole deferred size is charged at the call, so 32 MiB is
 * ENOMEM at once although nothing is pinned, and the budget adds up.
 * Reports the first wrong step through @wr, exits 0 when all went right.
 */
static void rlimit_child(int wr)
{
	struct vfio_iommu_async_status st;
	struct vfio_dev v;
	char msg[200] = "";
	long lck0 = -1, lck = -1;
	uint8_t *m;
	int ret;

#define CHILD_FAIL(...) do {						\
	snprintf(msg, sizeof(msg), __VA_ARGS__);			\
	goto out;							\
} while (0)

	if (vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL, VFIO_ASYNC_IOMMU))
		CHILD_FAIL("open: %s", v.step);
	m = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		CHILD_FAIL("mmap: %s", strerror(errno));
	ret = drop_privileges(16 * MiB);
	if (ret)
		CHILD_FAIL("drop privileges: %s", strerror(-ret));
	if (!geteuid())
		CHILD_FAIL("still root");
	if (vmlck_kb(0, &lck0))
		CHILD_FAIL("VmLck unreadable");

	ret = vfio_map_deferred(v.container, IOVA_HI, m, 32 * MiB, DRW);
	if (ret != -ENOMEM)
		CHILD_FAIL("32 MiB over a 16 MiB limit: %s, want ENOMEM",
			   ret ? strerror(-ret) : "success");
	if (vmlck_kb(0, &lck) || lck != lck0)
		CHILD_FAIL("VmLck %+ld kB after the refused map, want +0",
			   lck - lck0);
	if (vfio_async_status(v.container, &st) || st.deferred_bytes ||
	    st.pinned_pages)
		CHILD_FAIL("refused map left deferred %llu pinned %llu",
			   (unsigned long long)st.deferred_bytes,
			   (unsigned long long)st.pinned_pages);

	ret = vfio_map_deferred(v.container, IOVA_HI, m, 8 * MiB, DRW);
	if (ret)
		CHILD_FAIL("8 MiB under the limit: %s", strerror(-ret));
	if (vmlck_kb(0, &lck) || lck - lck0 != 8 * 1024)
		CHILD_FAIL("VmLck %+ld kB right after an 8 MiB map, want +8192",
			   lck - lck0);
	ret = vfio_map_deferred(v.container, IOVA_HI + 16 * MiB, m + 8 * MiB, 16 * MiB, DRW);
	if (ret != -ENOMEM)
		CHILD_FAIL("8 + 16 MiB over 16 MiB: %s, want ENOMEM",
			   ret ? strerror(-ret) : "success");
	ret = vfio_map_deferred(v.container, IOVA_HI + 16 * MiB, m + 8 * MiB, 8 * MiB, DRW);
	if (ret)
		CHILD_FAIL("8 + 8 MiB, exactly the limit: %s", strerror(-ret));
	/* Full: neither NOW nor MAP_DMA get a page more. */
	ret = vfio_map_deferred(v.container, IOVA_HI + 32 * MiB, m + 16 * MiB, P, DNOW);
	if (ret != -ENOMEM)
		CHILD_FAIL("NOW past the limit: %s, want ENOMEM",
			   ret ? strerror(-ret) : "success");
	ret = vfio_map(v.container, IOVA_HI + 32 * MiB, m + 16 * MiB, P, VFIO_RW);
	if (ret != -ENOMEM)
		CHILD_FAIL("MAP_DMA past the limit: %s, want ENOMEM",
			   ret ? strerror(-ret) : "success");

	/* Prepaid: the background never runs out of the limit. */
	if (vfio_async_wait_settled(v.container, &st, SETTLE_MS) ||
	    st.mapped_bytes != 16 * MiB || st.failed_bytes)
		CHILD_FAIL("sweep: mapped %llu failed %llu, want 16 MiB, 0",
			   (unsigned long long)st.mapped_bytes,
			   (unsigned long long)st.failed_bytes);
	if (vmlck_kb(0, &lck) || lck - lck0 != 16 * 1024)
		CHILD_FAIL("VmLck %+ld kB once mapped, want +16384 (no double charge)",
			   lck - lck0);
	if (vfio_unmap(v.container, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, NULL))
		CHILD_FAIL("unmap all failed");
	if (vmlck_kb(0, &lck) || lck != lck0)
		CHILD_FAIL("VmLck %+ld kB after unmap, want +0", lck - lck0);
out:
	report(wr, "%s", msg);
	_exit(msg[0] ? 1 : 0);
#undef CHILD_FAIL
}

TEST_F(deferred, rlimit_unprivileged)
{
	char msg[256];
	int status;

	RETURN_IF_SKIPPED();
	fixture_release(_metadata, self);
	ASSERT_OK(run_child(rlimit_child, msg, sizeof(msg), &status));
	if (msg[0])
		TH_LOG("child: %s", msg);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	expect_released(_metadata, self);
}

/* GET_STATUS: argsz and flags rules; it fills what it owns, nothing more. */
TEST_F(deferred, status_args)
{
	struct {
		struct vfio_iommu_async_status st;
		uint8_t tail[16];
	} a;
	/* The first version ended before released_bytes. */
	const uint32_t v1 = offsetof(struct vfio_iommu_async_status,
				     released_bytes);
	const uint32_t shorts[] = { 0, 4, 8, v1 - 1 };
	const uint32_t bad_flags[] = { 1, 2, 1u << 31 };
	struct vfio_iommu_async_status *big;
	uint8_t zero[sizeof(a.tail)] = { 0 };
	int c = self->v.container;
	unsigned int i;

	RETURN_IF_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(shorts); i++) {
		memset(&a, 0, sizeof(a));
		a.st.argsz = shorts[i];
		EXPECT_ERRNO(EINVAL, status_raw(c, &a));
	}
	for (i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		memset(&a, 0, sizeof(a));
		a.st.argsz = sizeof(a.st);
		a.st.flags = bad_flags[i];
		EXPECT_ERRNO(EINVAL, status_raw(c, &a));
	}
	memset(&a, 0, sizeof(a));
	a.st.argsz = sizeof(a);
	a.tail[3] = 1;
	EXPECT_ERRNO(E2BIG, status_raw(c, &a));
	/* Past a page: E2BIG, zeroes or not; a page exactly: fine. */
	big = calloc(1, 2 * P);
	ASSERT_NE(NULL, big);
	big->argsz = P + 8;
	EXPECT_ERRNO(E2BIG, status_raw(c, big));
	big->argsz = P;
	EXPECT_OK(status_raw(c, big));
	EXPECT_EQ(P, big->sync_bytes);
	free(big);

	/* Longer, zero tail: fills every field (junk overwritten), not the tail. */
	memset(&a, 0, sizeof(a));
	memset(&a.st, 0x5a, sizeof(a.st));
	a.st.argsz = sizeof(a);
	a.st.flags = 0;
	ASSERT_OK(status_raw(c, &a));
	EXPECT_EQ(0ULL, a.st.deferred_bytes);
	EXPECT_EQ(0ULL, a.st.mapped_bytes);
	EXPECT_EQ(0ULL, a.st.pending_bytes);
	EXPECT_EQ(0ULL, a.st.failed_bytes);
	EXPECT_EQ(P, a.st.sync_bytes);		/* edu's bounce page */
	EXPECT_EQ(1ULL, a.st.pinned_pages);
	EXPECT_EQ(0, a.st.first_error);
	EXPECT_EQ(0ULL, a.st.first_error_iova);
	EXPECT_EQ(0ULL, a.st.released_bytes);
	EXPECT_EQ(-1, first_diff(a.tail, zero, sizeof(zero)));

	/* An older caller's size: filled up to it, nothing written past. */
	memset(&a, 0x5a, sizeof(a));
	a.st.argsz = v1;
	a.st.flags = 0;
	ASSERT_OK(status_raw(c, &a));
	EXPECT_EQ(P, a.st.sync_bytes);
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, a.st.released_bytes);
}

/* FLAG_NOW maps before returning: nothing pending, DMA works at once. */
TEST_F(deferred, flag_now)
{
	const size_t size = 32 * MiB;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t data[XFER], *buf, *expect;
	struct ctrs k;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	expect = malloc(size);
	ASSERT_NE(NULL, expect);
	pattern_fill_pages(buf, size, 0x404);
	memcpy(expect, buf, size);

	ASSERT_OK(vfio_map_deferred(c, IOVA_ODD, buf, size, DNOW));
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.pending_bytes);
	EXPECT_EQ(0ULL, st.deferred_bytes);
	EXPECT_EQ(0ULL, st.mapped_bytes);		/* counts deferred bytes only */
	EXPECT_EQ(P + size, st.sync_bytes);
	EXPECT_EQ(1 + size / P, st.pinned_pages);
	ASSERT_OK(ctrs_read(self->dir, &k));
	EXPECT_EQ((long)(P + size), k.v[C_SYNC]);
	EXPECT_EQ(0, k.v[C_PENDING]);
	/* Charged as pinned, like MAP_DMA. */
	expect_held(_metadata, self, size / P, size, "after NOW map");

	/* The device reaches both ends at once. */
	pattern_fill(data, XFER, 0x1234);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, XFER));
	ASSERT_OK(edu_dma(&self->edu, IOVA_ODD, 0, XFER, true));
	ASSERT_OK(edu_dma(&self->edu, IOVA_ODD + size - XFER, 0, XFER, true));
	memcpy(expect, data, XFER);
	memcpy(expect + size - XFER, data, XFER);
	expect_same(_metadata, buf, expect, size, "after DMA");
	EXPECT_NO_DMAR_FAULT(&self->kw);

	unmap_expect(_metadata, c, IOVA_ODD, size);
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(P, st.sync_bytes);
	expect_held(_metadata, self, 0, 0, "after unmap");
	free(expect);
}

/*
 * The call's cost does not grow with the size: the best of 5 deferred maps
 * of 2 GiB and of 64 GiB (MAP_NORESERVE memory never touched; root has no
 * RLIMIT_MEMLOCK) against the best of 5 of 4 MiB. Each is unmapped at
 * once, before the background pins much of it.
 */
TEST_F(deferred, cost_flat_in_size)
{
	uint64_t sizes[] = { 4 * MiB, 2 * GiB, 64 * GiB };
	uint64_t best[ARRAY_SIZE(sizes)];
	struct vfio_iova_range *r;
	int c = self->v.container;
	unsigned int i, rep;
	long lck_mid = 0;
	uint8_t *big;
	uint32_t nr;

	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_iova_ranges(c, &r, &nr));
	while (!iova_range_valid(r, nr, IOVA_HI, sizes[2]))
		sizes[2] /= 2;
	free(r);
	ASSERT_LE(16 * GiB, sizes[2]);
	big = anon(self, sizes[2]);
	ASSERT_NE(NULL, big);

	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		best[i] = UINT64_MAX;
	for (rep = 0; rep < 5; rep++) {
		for (i = 0; i < ARRAY_SIZE(sizes); i++) {
			uint64_t t0, dt, n = 0;

			t0 = now_ns();
			ASSERT_OK(vfio_map_deferred(c, IOVA_HI, big, sizes[i], DRW));
			dt = now_ns() - t0;
			if (i == 2 && !rep)
				ASSERT_OK(vmlck_kb(0, &lck_mid));
			ASSERT_OK(vfio_unmap(c, IOVA_HI, sizes[i], 0, &n));
			EXPECT_EQ(sizes[i], n);
			if (dt < best[i])
				best[i] = dt;
		}
	}
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		TH_LOG("deferred map of %6llu MiB: best %7.3f ms",
		       (unsigned long long)(sizes[i] / MiB), best[i] / 1e6);
	/* Charged up front, whatever the size. */
	EXPECT_EQ((long)(sizes[2] >> 10), lck_mid - self->lck0);
	for (i = 1; i < ARRAY_SIZE(sizes); i++)
		EXPECT_LT(best[i], 10 * best[0] + 1000000);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* ========================================================================= */
/* 2. DMA ground truth                                                       */
/* ========================================================================= */

/*
 * 32 MiB at an IOVA 1 MiB past a chunk boundary (17 chunks, the first and
 * last one 1 MiB): once mapped, the device reads and writes the start, the
 * middle (across a page boundary) and the end of every chunk, each at a
 * different user page holding a different pattern.
 */
/*
 * Every chunk of a deferred mapping reaches its memory, both ways, at its
 * start, middle and end. With @partly, every other 64 KiB is dropped
 * before the call, so the background pins each batch partly by the
 * lockless walk (what is present, on Linux 6.1) and partly by GUP.
 */
static void every_chunk(struct __test_metadata *_metadata,
			FIXTURE_DATA(deferred) *self, bool partly)
{
	const uint64_t size = 32 * MiB, iova = IOVA_ODD;
	const uint64_t n = nchunks(iova, size);
	struct vfio_iommu_async_status st;
	uint8_t data[EDU_BUF_SIZE], out[EDU_BUF_SIZE];
	uint64_t off[3 * 20];
	unsigned int npos = 0, i;
	uint8_t *buf, *expect;
	uint64_t k;

	ASSERT_EQ(17ULL, n);
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	expect = malloc(size);
	ASSERT_NE(NULL, expect);
	pattern_fill_pages(buf, size, 0xc0ffee);
	for (k = 64 * KiB; partly && k < size; k += 128 * KiB)
		ASSERT_OK(madvise(buf + k, 64 * KiB, MADV_DONTNEED));

	for (k = 0; k < n; k++) {
		uint64_t cs = ((iova >> 21) + k) << 21, ce = cs + CHUNK;

		cs = cs < iova ? iova : cs;
		ce = ce > iova + size ? iova + size : ce;
		off[npos++] = cs - iova;			/* start */
		off[npos++] = (cs + ce) / 2 - XFER / 2 - iova;	/* middle */
		off[npos++] = ce - XFER - iova;			/* end */
	}
	ASSERT_GE((unsigned int)EDU_MAX_END, npos * XFER);

	ASSERT_OK(vfio_map_deferred(self->v.container, iova, buf, size, DRW));
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, SETTLE_MS));
	EXPECT_EQ(size, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.failed_bytes);
	/* What was dropped, the pin faulted in. */
	memcpy(expect, buf, size);

	/* RAM -> device: slot i of edu's buffer gets position i. */
	pattern_fill(data, npos * XFER, 0xbad0bad0);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, npos * XFER));
	for (i = 0; i < npos; i++)
		ASSERT_OK(edu_dma(&self->edu, iova + off[i], i * XFER, XFER,
				  false));
	ASSERT_OK(edu_buf_read(&self->edu, 0, out, npos * XFER));
	for (i = 0; i < npos; i++) {
		ssize_t d = first_diff(out + i * XFER, buf + off[i], XFER);

		if (d >= 0)
			TH_LOG("read of chunk %u %s (offset 0x%llx): byte %zd differs",
			       i / 3, i % 3 == 0 ? "start" : i % 3 == 1 ?
			       "middle" : "end", (unsigned long long)off[i], d);
		EXPECT_EQ(-1, d);
	}
	expect_same(_metadata, buf, expect, size, "after reads");

	/* Device -> RAM: position i gets slot i, a pattern of its own. */
	pattern_fill(data, npos * XFER, 0x600d);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, npos * XFER));
	for (i = 0; i < npos; i++) {
		ASSERT_OK(edu_dma(&self->edu, iova + off[i], i * XFER, XFER,
				  true));
		memcpy(expect + off[i], data + i * XFER, XFER);
	}
	expect_same(_metadata, buf, expect, size, "after writes");
	EXPECT_NO_DMAR_FAULT(&self->kw);

	unmap_expect(_metadata, self->v.container, iova, size);
	expect_held(_metadata, self, 0, 0, "after unmap");
	free(expect);
}

TEST_F_TIMEOUT(deferred, dma_every_chunk, 120)
{
	RETURN_IF_SKIPPED();
	every_chunk(_metadata, self, false);
}

TEST_F_TIMEOUT(deferred, dma_every_chunk_partly_present, 120)
{
	RETURN_IF_SKIPPED();
	every_chunk(_metadata, self, true);
}

/*
 * Before the background gets to a range, DMA there faults and memory stays
 * untouched; once GET_STATUS says mapped, the same transfers work. The
 * range is kept pending by a delayer below it (see the top comment).
 */
TEST_F_TIMEOUT(deferred, dma_faults_until_mapped, 120)
{
	const uint64_t size = 4 * MiB, iova = IOVA_HI;
	const uint64_t woff = 3 * MiB + 100, roff = 8 * P + 8;
	struct vfio_iommu_async_status st0, st1, st;
	int c = self->v.container;
	const struct xfer blocked[] = {
		{ .iova = iova + woff, .len = XFER, .write = true },
		{ .iova = iova + roff, .len = XFER, .write = false },
	};
	uint8_t data[2 * XFER], out[XFER];
	uint8_t *buf, *expect;
	bool conclusive = false;
	long pend = 0;
	int attempt;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	expect = malloc(size);
	ASSERT_NE(NULL, expect);
	pattern_fill_pages(buf, size, 0xfa017);
	memcpy(expect, buf, size);
	/* edu slot 0: what the device writes; slot 1: poison for reads. */
	pattern_fill(data, 2 * XFER, 0x77);

	for (attempt = 0; attempt < DELAY_TRIES && !conclusive; attempt++) {
		const uint64_t dsize = DELAY_MIN << attempt;
		uint8_t *delay = anon(self, dsize);

		ASSERT_NE(NULL, delay);
		ASSERT_OK(edu_buf_write(&self->edu, 0, data, 2 * XFER));
		kmsg_drain(&self->kw);
		ASSERT_OK(vfio_map_deferred(c, DELAY_IOVA, delay, dsize, DRW));
		ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
		ASSERT_OK(vfio_async_status(c, &st0));
		ASSERT_OK(ctr_read(self->dir, C_PENDING, &pend));
		ASSERT_OK(edu_dma(&self->edu, iova + woff, 0, XFER, true));
		ASSERT_OK(edu_dma(&self->edu, iova + roff, XFER, XFER, false));
		ASSERT_OK(vfio_async_status(c, &st1));
		conclusive = target_untouched(&st1, size, self->nthreads);
		if (conclusive) {
			/* Pending, by both accounts, while the device tried. */
			EXPECT_LT(size, st0.pending_bytes);
			EXPECT_LT((long)size, pend);
			EXPECT_TRUE(vfio_async_adds_up(&st1));
			/* Its write was blocked: memory untouched... */
			expect_same(_metadata, buf, expect, size,
				    "after DMA to a pending range");
			/* ...and its read did not get the user's bytes. */
			ASSERT_OK(edu_buf_read(&self->edu, XFER, out, XFER));
			EXPECT_NE(-1, first_diff(out, buf + roff, XFER));
			faults_within(_metadata, self, blocked, 2);
		} else {
			TH_LOG("sweep reached the target before the DMA was checked (delayer %llu MiB): retrying",
			       (unsigned long long)(dsize / MiB));
		}
		/* The delayer goes: the background moves on to the target. */
		unmap_expect(_metadata, c, DELAY_IOVA, dsize);
		anon_free(self, delay);
		if (!conclusive)
			unmap_expect(_metadata, c, iova, size);
	}
	if (!conclusive)
		SKIP(return, "could not keep the range pending long enough");

	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	ASSERT_EQ(size, st.deferred_bytes);
	ASSERT_EQ(size, st.mapped_bytes);
	/* The same two transfers now reach the right bytes. */
	kmsg_drain(&self->kw);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, 2 * XFER));
	ASSERT_OK(edu_dma(&self->edu, iova + woff, 0, XFER, true));
	memcpy(expect + woff, data, XFER);
	expect_same(_metadata, buf, expect, size, "after DMA to the mapped range");
	ASSERT_OK(edu_dma(&self->edu, iova + roff, XFER, XFER, false));
	ASSERT_OK(edu_buf_read(&self->edu, XFER, out, XFER));
	EXPECT_EQ(-1, first_diff(out, buf + roff, XFER));
	EXPECT_NO_DMAR_FAULT(&self->kw);

	unmap_expect(_metadata, c, iova, size);
	expect_held(_metadata, self, 0, 0, "after unmap");
	free(expect);
}

/* ========================================================================= */
/* 3. Counters                                                               */
/* ========================================================================= */

/*
 * Sampled all through a sweep: GET_STATUS adds up at every sample, mapped
 * only grows and pending only shrinks (in sysfs too); at the end the
 * per-container and module-wide files agree with GET_STATUS, and
 * chunks_mapped grew by the number of chunks. `owner` names us.
 */
TEST_F_TIMEOUT(deferred, counters_add_up, 60)
{
	const uint64_t size = 256 * MiB, iova = IOVA_ODD;
	const uint64_t n = nchunks(iova, size);
	struct vfio_iommu_async_status st, prev = { 0 };
	long s_mapped, s_pending, s_prev_mapped = 0, s_prev_pending = LONG_MAX;
	long samples = 0, mid = 0, bad = 0, backwards = 0, s_backwards = 0;
	char owner[64], want[64], comm[32], path[PATH_MAX + 16];
	struct ctrs k0, g0, k, g;
	int c = self->v.container;
	uint8_t *buf;
	long t0;

	RETURN_IF_SKIPPED();
	ASSERT_EQ(129ULL, n);
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);

	/* owner: our pid and command name. */
	ASSERT_OK(sysfs_read("/proc/self/comm", comm, sizeof(comm)));
	snprintf(want, sizeof(want), "%d %s", (int)getpid(), comm);
	snprintf(path, sizeof(path), "%s/owner", self->dir);
	ASSERT_OK(sysfs_read(path, owner, sizeof(owner)));
	EXPECT_STREQ(want, owner);

	ASSERT_EQ(1, async_containers());
	ASSERT_OK(ctrs_read(self->dir, &k0));
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g0));

	ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
	t0 = now_ms();
	do {
		ASSERT_OK(vfio_async_status(c, &st));
		samples++;
		if (!vfio_async_adds_up(&st)) {
			if (!bad)
				TH_LOG("sample %ld: %llu + %llu + %llu != %llu",
				       samples,
				       (unsigned long long)st.mapped_bytes,
				       (unsigned long long)st.pending_bytes,
				       (unsigned long long)st.failed_bytes,
				       (unsigned long long)st.deferred_bytes);
			bad++;
		}
		if (st.deferred_bytes != size || st.failed_bytes ||
		    st.mapped_bytes < prev.mapped_bytes ||
		    (samples > 1 && st.pending_bytes > prev.pending_bytes))
			backwards++;
		if (st.mapped_bytes && st.pending_bytes)
			mid++;
		prev = st;

		ASSERT_OK(ctr_read(self->dir, C_MAPPED, &s_mapped));
		ASSERT_OK(ctr_read(self->dir, C_PENDING, &s_pending));
		if (s_mapped < s_prev_mapped || s_pending > s_prev_pending ||
		    s_mapped > (long)size || s_pending > (long)size)
			s_backwards++;
		s_prev_mapped = s_mapped;
		s_prev_pending = s_pending;
		ASSERT_GT(SETTLE_MS, now_ms() - t0);
	} while (st.pending_bytes);
	TH_LOG("%ld samples over %ld ms, %ld mid-sweep", samples,
	       now_ms() - t0, mid);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, backwards);
	EXPECT_EQ(0, s_backwards);
	EXPECT_LT(0, mid);

	/* The end: all mapped, and every view agrees. */
	EXPECT_EQ(size, st.deferred_bytes);
	EXPECT_EQ(size, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.failed_bytes);
	EXPECT_EQ(P, st.sync_bytes);
	EXPECT_EQ(1 + size / P, st.pinned_pages);
	ASSERT_OK(ctrs_read(self->dir, &k));
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g));
	EXPECT_EQ((long)st.sync_bytes, k.v[C_SYNC]);
	EXPECT_EQ((long)st.deferred_bytes, k.v[C_DEFERRED]);
	EXPECT_EQ((long)st.mapped_bytes, k.v[C_MAPPED]);
	EXPECT_EQ(0, k.v[C_PENDING]);
	EXPECT_EQ(0, k.v[C_FAILED]);
	EXPECT_EQ((long)st.pinned_pages, k.v[C_PINNED]);
	EXPECT_EQ((long)n, k.v[C_CHUNKS] - k0.v[C_CHUNKS]);
	EXPECT_EQ(0, k.v[C_ERRORS] - k0.v[C_ERRORS]);
	EXPECT_LE((long)n, k.v[C_MAPCALLS] - k0.v[C_MAPCALLS]);
	/* Module-wide, with one container: the same. */
	EXPECT_EQ(1, async_containers());
	EXPECT_EQ(k.v[C_SYNC], g.v[C_SYNC]);
	EXPECT_EQ(k.v[C_DEFERRED], g.v[C_DEFERRED]);
	EXPECT_EQ(k.v[C_MAPPED], g.v[C_MAPPED]);
	EXPECT_EQ(k.v[C_PENDING], g.v[C_PENDING]);
	EXPECT_EQ(k.v[C_FAILED], g.v[C_FAILED]);
	EXPECT_EQ(k.v[C_PINNED], g.v[C_PINNED]);
	EXPECT_EQ(k.v[C_CHUNKS] - k0.v[C_CHUNKS], g.v[C_CHUNKS] - g0.v[C_CHUNKS]);
	EXPECT_EQ(k.v[C_ERRORS] - k0.v[C_ERRORS], g.v[C_ERRORS] - g0.v[C_ERRORS]);
	EXPECT_EQ(k.v[C_MAPCALLS] - k0.v[C_MAPCALLS],
		  g.v[C_MAPCALLS] - g0.v[C_MAPCALLS]);
	expect_held(_metadata, self, size / P, size, "all mapped");

	/* After the unmap: the gauges drop back, the "ever" counts stay. */
	unmap_expect(_metadata, c, iova, size);
	ASSERT_OK(ctrs_read(self->dir, &k));
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g));
	EXPECT_EQ(0, k.v[C_DEFERRED]);
	EXPECT_EQ(0, k.v[C_MAPPED]);
	EXPECT_EQ(1, k.v[C_PINNED]);
	EXPECT_EQ((long)n, k.v[C_CHUNKS] - k0.v[C_CHUNKS]);
	EXPECT_EQ(0, g.v[C_DEFERRED]);
	EXPECT_EQ(0, g.v[C_MAPPED]);
	EXPECT_EQ(1, g.v[C_PINNED]);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* ========================================================================= */
/* 4. Interactions                                                           */
/* ========================================================================= */

/*
 * locked_vm is charged for the whole size at the call (VmLck read before
 * the sweep is done), not again while pinning, and given back on unmap.
 */
TEST_F(deferred, locked_vm_up_front)
{
	const uint64_t size = 256 * MiB;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t *buf;
	long lck;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	ASSERT_OK(vfio_map_deferred(c, IOVA_ODD, buf, size, DRW));
	ASSERT_OK(vmlck_kb(0, &lck));
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ((long)(size >> 10), lck - self->lck0);
	/* Read after VmLck: this much was not even pinned yet. */
	EXPECT_LT(0ULL, st.pending_bytes);
	EXPECT_GT(size / P, st.pinned_pages);
	TH_LOG("right after the call: VmLck +%ld kB, %llu pages pinned",
	       lck - self->lck0, (unsigned long long)st.pinned_pages - 1);

	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(size, st.mapped_bytes);
	expect_held(_metadata, self, size / P, size, "all mapped");
	unmap_expect(_metadata, c, IOVA_ODD, size);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* Unmap before the sweep got to the range: nothing of it was pinned. */
TEST_F_TIMEOUT(deferred, unmap_before_sweep, 90)
{
	const uint64_t size = 32 * MiB;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	bool conclusive = false;
	uint8_t *buf;
	int attempt;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	for (attempt = 0; attempt < DELAY_TRIES && !conclusive; attempt++) {
		const uint64_t dsize = DELAY_MIN << attempt;
		uint8_t *delay = anon(self, dsize);
		long lck;

		ASSERT_NE(NULL, delay);
		ASSERT_OK(vfio_map_deferred(c, DELAY_IOVA, delay, dsize, DRW));
		ASSERT_OK(vfio_map_deferred(c, IOVA_ODD, buf, size, DRW));
		ASSERT_OK(vmlck_kb(0, &lck));
		EXPECT_EQ((long)((dsize + size) >> 10), lck - self->lck0);
		unmap_expect(_metadata, c, IOVA_ODD, size);
		ASSERT_OK(vfio_async_status(c, &st));
		/* Only the delayer is left, with a chunk still unclaimed. */
		conclusive = target_untouched(&st, 0, self->nthreads);
		EXPECT_EQ(dsize, st.deferred_bytes);
		EXPECT_TRUE(vfio_async_adds_up(&st));
		ASSERT_OK(vmlck_kb(0, &lck));
		EXPECT_EQ((long)(dsize >> 10), lck - self->lck0);
		unmap_expect(_metadata, c, DELAY_IOVA, dsize);
		anon_free(self, delay);
		if (!conclusive)
			TH_LOG("sweep passed the range before its unmap (delayer %llu MiB): retrying",
			       (unsigned long long)(dsize / MiB));
	}
	expect_held(_metadata, self, 0, 0, "after unmap");
	if (!conclusive)
		SKIP(return, "could not keep the range pending long enough");
}

/* Unmap while the sweep is in the middle of the range. */
TEST_F_TIMEOUT(deferred, unmap_during_sweep, 60)
{
	const uint64_t size = SWEEP, iova = IOVA_ODD;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	long chunks0, chunks;
	uint8_t *buf;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	ASSERT_OK(ctr_read(self->dir, C_CHUNKS, &chunks0));
	ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
	ASSERT_OK(wait_started(c, &st, SETTLE_MS));
	ASSERT_LT(0ULL, st.mapped_bytes);
	unmap_expect(_metadata, c, iova, size);
	/* Proof it was mid-way: fewer chunks were ever mapped than it has. */
	ASSERT_OK(ctr_read(self->dir, C_CHUNKS, &chunks));
	TH_LOG("%ld of %llu chunks mapped when unmapped", chunks - chunks0,
	       (unsigned long long)nchunks(iova, size));
	EXPECT_LT(chunks - chunks0, (long)nchunks(iova, size));
	EXPECT_LT(0, chunks - chunks0);

	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);
	EXPECT_EQ(0ULL, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.pending_bytes);
	EXPECT_EQ(1ULL, st.pinned_pages);
	expect_held(_metadata, self, 0, 0, "after unmap");
	/* The IOVA is free again. */
	ASSERT_OK(vfio_map_deferred(c, iova, buf, 4 * MiB, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(4 * MiB, st.mapped_bytes);
	unmap_expect(_metadata, c, iova, 4 * MiB);
	expect_held(_metadata, self, 0, 0, "after the second unmap");
}

/* Unmap after the sweep: everything pinned once, all of it released. */
TEST_F(deferred, unmap_after_sweep)
{
	const uint64_t size = 64 * MiB;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint8_t *buf;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	ASSERT_OK(vfio_map_deferred(c, IOVA_ODD, buf, size, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(size, st.mapped_bytes);
	expect_held(_metadata, self, size / P, size, "all mapped");
	unmap_expect(_metadata, c, IOVA_ODD, size);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/*
 * One unmap over a mapping made at once and a deferred one (which may be
 * pending yet); a third one outside stays. Splitting is refused.
 */
TEST_F(deferred, unmap_deferred_and_sync)
{
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	uint64_t n = 0;
	uint8_t *buf;

	RETURN_IF_SKIPPED();
	buf = anon(self, 64 * MiB);
	ASSERT_NE(NULL, buf);
	ASSERT_OK(vfio_map(c, IOVA_HI, buf, 16 * MiB, VFIO_RW));
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 16 * MiB, buf + 16 * MiB, 32 * MiB, DRW));
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 64 * MiB, buf + 48 * MiB, 8 * MiB, DRW));

	/* type1v2: no unmap may cut a mapping in two. */
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, IOVA_HI + 16 * MiB, 2 * MiB, 0, &n));
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, IOVA_HI + 18 * MiB, 30 * MiB, 0, &n));
	EXPECT_ERRNO(EINVAL, vfio_unmap(c, IOVA_HI, 20 * MiB, 0, &n));

	ASSERT_OK(vfio_unmap(c, IOVA_HI, 48 * MiB, 0, &n));
	EXPECT_EQ(48 * MiB, n);
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(8 * MiB, st.deferred_bytes);
	EXPECT_EQ(8 * MiB, st.mapped_bytes);
	EXPECT_EQ(P, st.sync_bytes);
	expect_held(_metadata, self, 8 * MiB / P, 8 * MiB, "one left");
	unmap_expect(_metadata, c, IOVA_HI + 64 * MiB, 8 * MiB);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/* UNMAP_ALL in the middle of a sweep takes everything, sync ones too. */
TEST_F_TIMEOUT(deferred, unmap_all_mid_sweep, 60)
{
	const uint64_t size = SWEEP;
	struct vfio_iommu_async_status st;
	int c = self->v.container;
	long chunks0, chunks;
	uint8_t *buf, *sbuf;
	uint64_t n = 0;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	sbuf = anon(self, 16 * MiB);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, sbuf);
	ASSERT_OK(ctr_read(self->dir, C_CHUNKS, &chunks0));
	ASSERT_OK(vfio_map(c, IOVA_HI, sbuf, 16 * MiB, VFIO_RW));
	ASSERT_OK(vfio_map_deferred(c, DELAY_IOVA, buf, size, DRW));
	ASSERT_OK(wait_started(c, &st, SETTLE_MS));
	ASSERT_LT(0ULL, st.mapped_bytes);
	ASSERT_OK(vfio_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ(size + 16 * MiB + P, n);	/* and edu's bounce page */
	ASSERT_OK(ctr_read(self->dir, C_CHUNKS, &chunks));
	TH_LOG("%ld of %llu chunks mapped at UNMAP_ALL", chunks - chunks0,
	       (unsigned long long)nchunks(DELAY_IOVA, size));
	EXPECT_LT(chunks - chunks0, (long)nchunks(DELAY_IOVA, size));

	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);
	EXPECT_EQ(0ULL, st.pending_bytes);
	EXPECT_EQ(0ULL, st.sync_bytes);
	EXPECT_EQ(0ULL, st.pinned_pages);
	expect_held(_metadata, self, -1, -(long)P, "after UNMAP_ALL");

	/* Still a working container. */
	ASSERT_OK(vfio_map_deferred(c, IOVA_ODD, buf, 4 * MiB, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(4 * MiB, st.mapped_bytes);
	unmap_expect(_metadata, c, IOVA_ODD, 4 * MiB);
	expect_held(_metadata, self, -1, -(long)P, "after the second unmap");
}

/* Closing every fd mid-sweep releases the container and all it pinned. */
TEST_F_TIMEOUT(deferred, close_mid_sweep, 60)
{
	const uint64_t size = SWEEP;
	struct vfio_iommu_async_status st;
	struct ctrs g0, g;
	char dir[PATH_MAX];
	uint8_t *buf;
	long lck;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	ASSERT_NE(NULL, buf);
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g0));
	ASSERT_OK(vfio_map_deferred(self->v.container, DELAY_IOVA, buf, size, DRW));
	ASSERT_OK(wait_started(self->v.container, &st, SETTLE_MS));
	ASSERT_LT(0ULL, st.mapped_bytes);

	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	expect_released(_metadata, self);
	ASSERT_OK(vmlck_kb(0, &lck));
	EXPECT_EQ(self->lck_open, lck);
	EXPECT_ERRNO(ENOENT, async_container_dir(getpid(), dir, sizeof(dir)));

	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g));
	TH_LOG("%ld of %llu chunks mapped at close",
	       g.v[C_CHUNKS] - g0.v[C_CHUNKS],
	       (unsigned long long)nchunks(DELAY_IOVA, size));
	EXPECT_LT(g.v[C_CHUNKS] - g0.v[C_CHUNKS],
		  (long)nchunks(DELAY_IOVA, size));
	EXPECT_EQ(0, g.v[C_SYNC]);
	EXPECT_EQ(0, g.v[C_DEFERRED]);
	EXPECT_EQ(0, g.v[C_MAPPED]);
	EXPECT_EQ(0, g.v[C_PENDING]);
	EXPECT_EQ(0, g.v[C_FAILED]);
	EXPECT_EQ(0, g.v[C_PINNED]);
}

/*
 * A child holds a container mid-sweep, then exits or is killed: once it is
 * reaped (and a bounded while after), the container is gone, every pin is
 * back and the group can be opened again.
 */
enum child_end { CHILD_EXIT, CHILD_KILL };

static void sweep_child(uint64_t size, int rd, int wr)
{
	struct vfio_iommu_async_status st;
	uint8_t *m = MAP_FAILED;
	char msg[128] = "K";
	struct vfio_dev v;
	char c;

	if (vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL, VFIO_ASYNC_IOMMU)) {
		snprintf(msg, sizeof(msg), "open: %s", v.step);
		goto out;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		snprintf(msg, sizeof(msg), "mmap: %s", strerror(errno));
	else if (vfio_map_deferred(v.container, DELAY_IOVA, m, size, DRW))
		snprintf(msg, sizeof(msg), "deferred map: %s", strerror(errno));
	else if (wait_started(v.container, &st, SETTLE_MS) ||
		 !st.mapped_bytes || !st.pending_bytes)
		snprintf(msg, sizeof(msg), "not mid-sweep: mapped %llu pending %llu",
			 (unsigned long long)st.mapped_bytes,
			 (unsigned long long)st.pending_bytes);
out:
	if (write(wr, msg, strlen(msg) + 1) < 0)
		_exit(3);
	/* 'x': exit holding everything; or wait for SIGKILL. */
	while (read(rd, &c, 1) == 1 && c != 'x')
		;
	_exit(0);
}

static void child_case(struct __test_metadata *_metadata,
		       FIXTURE_DATA(deferred) *self, enum child_end how)
{
	const uint64_t size = SWEEP;
	int rd, wr, status;
	char msg[128] = "", dir[PATH_MAX], owner[64], want[64], comm[32];
	char path[PATH_MAX + 16];
	struct ctrs g0, g;
	long pins, lck, pend, t0;
	pid_t pid;

	fixture_release(_metadata, self);
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g0));
	pid = fork_with_pipes(&rd, &wr);
	ASSERT_LE(0, pid);
	if (!pid)
		sweep_child(size, rd, wr);
	if (read(rd, msg, sizeof(msg) - 1) < 0)
		msg[0] = '\0';
	close(rd);
	if (strcmp(msg, "K")) {
		TH_LOG("child: %s", msg);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ASSERT_STREQ("K", msg);
	}

	/* Mid-sweep, seen from here: its directory, pins, its VmLck. */
	ASSERT_OK(async_container_dir(pid, dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/owner", dir);
	ASSERT_OK(sysfs_read(path, owner, sizeof(owner)));
	ASSERT_OK(sysfs_read("/proc/self/comm", comm, sizeof(comm)));
	snprintf(want, sizeof(want), "%d %s", (int)pid, comm);	/* inherited */
	EXPECT_STREQ(want, owner);
	ASSERT_OK(ctr_read(dir, C_PENDING, &pend));
	EXPECT_LT(0, pend);
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_LT(self->pins_open, pins);
	ASSERT_OK(vmlck_kb(pid, &lck));
	EXPECT_EQ((long)(size >> 10), lck);

	if (how == CHILD_KILL || write(wr, "x", 1) != 1)
		kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(wr);
	if (how == CHILD_KILL) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	} else {
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	t0 = now_ms();
	expect_released(_metadata, self);
	TH_LOG("released %ld ms after waitpid", now_ms() - t0);
	EXPECT_ERRNO(ENOENT, async_container_dir(pid, dir, sizeof(dir)));

	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g));
	TH_LOG("%ld of %llu chunks mapped, %ld failed, before release",
	       g.v[C_CHUNKS] - g0.v[C_CHUNKS],
	       (unsigned long long)nchunks(DELAY_IOVA, size),
	       g.v[C_ERRORS] - g0.v[C_ERRORS]);
	EXPECT_LT(g.v[C_CHUNKS] - g0.v[C_CHUNKS],
		  (long)nchunks(DELAY_IOVA, size));
	EXPECT_EQ(0, g.v[C_DEFERRED]);
	EXPECT_EQ(0, g.v[C_MAPPED]);
	EXPECT_EQ(0, g.v[C_PENDING]);
	EXPECT_EQ(0, g.v[C_FAILED]);
	EXPECT_EQ(0, g.v[C_PINNED]);

	/* The group is free again. */
	ASSERT_OK(vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
				VFIO_ASYNC_IOMMU));
}

TEST_F_TIMEOUT(deferred, exit_mid_sweep, 60)
{
	RETURN_IF_SKIPPED();
	child_case(_metadata, self, CHILD_EXIT);
}

TEST_F_TIMEOUT(deferred, sigkill_mid_sweep, 60)
{
	RETURN_IF_SKIPPED();
	child_case(_metadata, self, CHILD_KILL);
}

/*
 * The group leaves its container (VFIO_GROUP_UNSET_CONTAINER) while the
 * sweep has work: everything is released; attached to a new container,
 * its deferred maps complete and the device reaches them.
 */
TEST_F_TIMEOUT(deferred, detach_reattach_pending, 90)
{
	const uint64_t size = 32 * MiB, iova = IOVA_ODD, dsize = SWEEP;
	struct vfio_iommu_async_status st;
	uint8_t data[XFER], *buf, *delay, *expect;
	char dir[PATH_MAX];
	struct ctrs g0, g;
	int old, c;
	long lck;

	RETURN_IF_SKIPPED();
	buf = anon(self, size);
	delay = anon(self, dsize);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, delay);
	expect = malloc(size);
	ASSERT_NE(NULL, expect);
	pattern_fill_pages(buf, size, 0xde7ac4);
	memcpy(expect, buf, size);

	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g0));
	ASSERT_OK(vfio_map_deferred(self->v.container, DELAY_IOVA, delay, dsize, DRW));
	ASSERT_OK(vfio_map_deferred(self->v.container, iova, buf, size, DRW));
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_LT(size, st.pending_bytes);

	/* The device must go first (it holds the group's container). */
	edu_close(&self->edu);
	ASSERT_OK(close_fd(&self->v.device));
	ASSERT_OK(vfio_group_unset_container(self->v.group));
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g));
	TH_LOG("%ld of %llu chunks mapped at detach",
	       g.v[C_CHUNKS] - g0.v[C_CHUNKS],
	       (unsigned long long)(nchunks(DELAY_IOVA, dsize) +
				    nchunks(iova, size)));
	EXPECT_LT(g.v[C_CHUNKS] - g0.v[C_CHUNKS],
		  (long)nchunks(DELAY_IOVA, dsize));
	expect_released(_metadata, self);
	ASSERT_OK(vmlck_kb(0, &lck));
	EXPECT_EQ(self->lck_open, lck);
	/* The old container has no IOMMU any more. */
	EXPECT_ERRNO(EINVAL, vfio_async_status(self->v.container, &st));

	/* A new container for the same group. */
	old = self->v.container;
	c = vfio_container_new();
	ASSERT_LE(0, c);
	self->v.container = c;
	close(old);
	ASSERT_OK(vfio_group_set_container(self->v.group, c));
	ASSERT_OK(vfio_set_iommu(c, VFIO_ASYNC_IOMMU));
	self->v.device = vfio_device_get(self->v.group, getenv("VFIO_BDF"));
	ASSERT_LE(0, self->v.device);
	ASSERT_OK(edu_open(&self->edu, self->v.device));
	ASSERT_OK(edu_scratch_map(&self->edu, c, IOVA_SCRATCH));
	ASSERT_OK(async_container_dir(getpid(), dir, sizeof(dir)));
	EXPECT_STRNE(self->dir, dir);

	ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(size, st.deferred_bytes);
	EXPECT_EQ(size, st.mapped_bytes);
	kmsg_drain(&self->kw);
	pattern_fill(data, XFER, 0x4e3);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, XFER));
	ASSERT_OK(edu_dma(&self->edu, iova, 0, XFER, true));
	ASSERT_OK(edu_dma(&self->edu, iova + size - XFER, 0, XFER, true));
	memcpy(expect, data, XFER);
	memcpy(expect + size - XFER, data, XFER);
	expect_same(_metadata, buf, expect, size, "after DMA");
	EXPECT_NO_DMAR_FAULT(&self->kw);
	expect_held(_metadata, self, size / P, size, "new container mapped");
	unmap_expect(_metadata, c, iova, size);
	expect_held(_metadata, self, 0, 0, "after unmap");
	free(expect);
}

/*
 * Memory unmapped by the process after the deferred map, before the sweep
 * gets there: those chunks fail (recorded, counted, first_error), the rest
 * is mapped, DMA to a failed chunk faults, no oops, unmap frees it all.
 * Holes: two whole chunks (2, 3) and one page in the middle of chunk 5
 * (which is pinned in part first, then undone).
 */
TEST_F_TIMEOUT(deferred, background_failure, 120)
{
	const uint64_t size = 16 * MiB, iova = IOVA_HI;
	const uint64_t failed_iova[] = {
		iova + 2 * CHUNK, iova + 3 * CHUNK, iova + 5 * CHUNK,
	};
	struct vfio_iommu_async_status st;
	uint8_t data[XFER], *buf = NULL, *expect;
	char fe[64], want[64], path[PATH_MAX + 16];
	struct ctrs k0, g0, k, g;
	int c = self->v.container;
	bool conclusive = false;
	unsigned int i;
	int attempt;

	RETURN_IF_SKIPPED();
	expect = malloc(size);
	ASSERT_NE(NULL, expect);
	ASSERT_OK(ctrs_read(self->dir, &k0));
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g0));

	for (attempt = 0; attempt < DELAY_TRIES && !conclusive; attempt++) {
		const uint64_t dsize = DELAY_MIN << attempt;
		uint8_t *delay = anon(self, dsize);

		ASSERT_NE(NULL, delay);
		buf = anon(self, size);
		ASSERT_NE(NULL, buf);
		pattern_fill_pages(buf, size, 0xfa11);
		memcpy(expect, buf, size);
		ASSERT_OK(vfio_map_deferred(c, DELAY_IOVA, delay, dsize, DRW));
		ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
		ASSERT_EQ(0, munmap(buf + 2 * CHUNK, 2 * CHUNK));
		ASSERT_EQ(0, munmap(buf + 5 * CHUNK + CHUNK / 2, P));
		ASSERT_OK(vfio_async_status(c, &st));
		conclusive = target_untouched(&st, size, self->nthreads);
		/* Holes made first, or not: the delayer goes either way. */
		unmap_expect(_metadata, c, DELAY_IOVA, dsize);
		anon_free(self, delay);
		if (conclusive)
			break;
		TH_LOG("sweep reached the range before its memory was unmapped (delayer %llu MiB): retrying",
		       (unsigned long long)(dsize / MiB));
		unmap_expect(_metadata, c, iova, size);
		anon_free(self, buf);
	}
	if (!conclusive)
		SKIP(return, "could not keep the range pending long enough");

	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(size, st.deferred_bytes);
	EXPECT_EQ(3 * CHUNK, st.failed_bytes);
	EXPECT_EQ(size - 3 * CHUNK, st.mapped_bytes);
	EXPECT_EQ(1 + (size - 3 * CHUNK) / P, st.pinned_pages);
	TH_LOG("first_error %d at 0x%llx", st.first_error,
	       (unsigned long long)st.first_error_iova);
	EXPECT_EQ(-EFAULT, st.first_error);
	for (i = 0; i < ARRAY_SIZE(failed_iova); i++)
		if (st.first_error_iova == failed_iova[i])
			break;
	EXPECT_GT(ARRAY_SIZE(failed_iova), i);

	ASSERT_OK(ctrs_read(self->dir, &k));
	ASSERT_OK(ctrs_read(ASYNC_SYSFS, &g));
	EXPECT_EQ(3 * (long)CHUNK, k.v[C_FAILED]);
	EXPECT_EQ(3, k.v[C_ERRORS] - k0.v[C_ERRORS]);
	EXPECT_EQ(3, g.v[C_ERRORS] - g0.v[C_ERRORS]);
	EXPECT_EQ(k.v[C_FAILED], g.v[C_FAILED]);
	snprintf(path, sizeof(path), "%s/first_error", self->dir);
	ASSERT_OK(sysfs_read(path, fe, sizeof(fe)));
	snprintf(want, sizeof(want), "%d 0x%llx", st.first_error,
		 (unsigned long long)st.first_error_iova);
	EXPECT_STREQ(want, fe);
	expect_held(_metadata, self, (size - 3 * CHUNK) / P, size,
		    "settled with failures");

	/* Chunk 5 (pinned in part, then undone) faults; 4 and 6 work. */
	kmsg_drain(&self->kw);
	pattern_fill(data, XFER, 0x5ad);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, XFER));
	ASSERT_OK(edu_dma(&self->edu, iova + 5 * CHUNK, 0, XFER, true));
	expect_same(_metadata, buf + 5 * CHUNK, expect + 5 * CHUNK, CHUNK / 2,
		    "failed chunk 5");
	fault_at(_metadata, self, iova + 5 * CHUNK, XFER, true);
	ASSERT_OK(edu_dma(&self->edu, iova + 5 * CHUNK - XFER, 0, XFER, true));
	ASSERT_OK(edu_dma(&self->edu, iova + 6 * CHUNK, 0, XFER, true));
	memcpy(expect + 5 * CHUNK - XFER, data, XFER);
	memcpy(expect + 6 * CHUNK, data, XFER);
	expect_same(_metadata, buf, expect, 2 * CHUNK, "chunks 0-1");
	expect_same(_metadata, buf + 4 * CHUNK, expect + 4 * CHUNK,
		    CHUNK + CHUNK / 2, "chunk 4, first half of 5");
	expect_same(_metadata, buf + 5 * CHUNK + CHUNK / 2 + P,
		    expect + 5 * CHUNK + CHUNK / 2 + P,
		    size - 5 * CHUNK - CHUNK / 2 - P, "rest");
	EXPECT_NO_DMAR_FAULT(&self->kw);

	unmap_expect(_metadata, c, iova, size);
	ASSERT_OK(vfio_async_status(c, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);
	EXPECT_EQ(0ULL, st.failed_bytes);
	EXPECT_EQ(1ULL, st.pinned_pages);
	expect_held(_metadata, self, 0, 0, "after unmap");
	free(expect);
}

/* ========================================================================= */
/* 9. What memory the background may fault in                                */
/* ========================================================================= */

/*
 * The background threads are shared by every container on the host and
 * cannot be interrupted, so a deferred mapping takes only memory whose
 * faults the kernel serves alone: anonymous, shmem (memfd, /dev/shm) and
 * hugetlbfs, not userfaultfd-armed. Any other file (ramfs stands in for
 * FUSE here, whose faults wait on a user-space server) and device memory
 * are refused with EOPNOTSUPP; MAP_DMA and the NOW flag still take them.
 */

#define RAMFS_DIR	"/tmp/deferred-ramfs"

/* A @size file on a ramfs of its own (mounted once), or -errno. */
static int ramfs_file(size_t size)
{
	int fd;

	if (mkdir(RAMFS_DIR, 0700) && errno != EEXIST)
		return -errno;
	if (access(RAMFS_DIR "/.mounted", F_OK)) {
		if (mount("ramfs", RAMFS_DIR, "ramfs", 0, "mode=0700"))
			return -errno;
		fd = open(RAMFS_DIR "/.mounted", O_CREAT | O_WRONLY, 0600);
		if (fd >= 0)
			close(fd);
	}
	fd = open(RAMFS_DIR "/f", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	unlink(RAMFS_DIR "/f");
	if (ftruncate(fd, size)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Map @fd's first @size bytes, shared or private; NULL on failure. */
static void *map_file(int fd, size_t size, int flags, void *at)
{
	void *p = mmap(at, size, PROT_READ | PROT_WRITE,
		       flags | (at ? MAP_FIXED : 0), fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Anonymous memory registered with a userfaultfd (missing faults). */
static void *uffd_armed(size_t size, int *uffd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	void *p;

	*uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (*uffd < 0 || ioctl(*uffd, UFFDIO_API, &api))
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	reg.range.start = (uintptr_t)p;
	reg.range.len = size;
	if (ioctl(*uffd, UFFDIO_REGISTER, &reg)) {
		munmap(p, size);
		return NULL;
	}
	return p;
}

/* DMA a pattern into the first and the last page of [iova, +size). */
static void dma_lands(struct __test_metadata *_metadata,
		      FIXTURE_DATA(deferred) *self, uint64_t iova,
		      uint8_t *mem, uint64_t size, const char *what)
{
	uint64_t at[2] = { 0, size - P };
	uint8_t data[XFER];
	int i;

	for (i = 0; i < 2; i++) {
		pattern_fill(data, XFER, 0x9a9e + i);
		ASSERT_OK(edu_buf_write(&self->edu, 0, data, XFER));
		ASSERT_OK(edu_dma(&self->edu, iova + at[i], 0, XFER, true));
		if (memcmp(mem + at[i], data, XFER))
			TH_LOG("%s: DMA to offset 0x%llx did not land", what,
			       (unsigned long long)at[i]);
		EXPECT_EQ(0, memcmp(mem + at[i], data, XFER));
	}
	EXPECT_NO_DMAR_FAULT(&self->kw);
}

TEST_F_TIMEOUT(deferred, memory_kinds, 120)
{
	const uint64_t size = 4 * MiB;
	struct vfio_iommu_async_status st;
	int c = self->v.container, fd, uffd = -1, i;
	uint8_t *p, *q, *mixed, *ok[3];
	long huge_old = -1;
	char shm[64];

	RETURN_IF_SKIPPED();
	kmsg_drain(&self->kw);

	/*
	 * ramfs, shared and private: refused; MAP_DMA and NOW take it
	 * (private here: Linux 6.5 and later refuse long-term write pins of
	 * shared file mappings that need dirty tracking, ramfs's included).
	 */
	fd = ramfs_file(size);
	ASSERT_LE(0, fd);
	p = map_file(fd, size, MAP_SHARED, NULL);
	q = map_file(fd, size, MAP_PRIVATE, NULL);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, q);
	EXPECT_ERRNO(EOPNOTSUPP, vfio_map_deferred(c, IOVA_HI, p, size, DRW));
	EXPECT_ERRNO(EOPNOTSUPP, vfio_map_deferred(c, IOVA_HI, q, size, DRW));
	EXPECT_ERRNO(EOPNOTSUPP, vfio_map_deferred(c, IOVA_HI, p, size,
						   VFIO_ASYNC_MAP_FLAG_READ));
	ASSERT_OK(vfio_map(c, IOVA_HI, q, size, VFIO_RW));
	dma_lands(_metadata, self, IOVA_HI, q, size, "ramfs private, MAP_DMA");
	unmap_expect(_metadata, c, IOVA_HI, size);
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI, q, size, DNOW));
	dma_lands(_metadata, self, IOVA_HI, q, size, "ramfs private, NOW");
	unmap_expect(_metadata, c, IOVA_HI, size);

	/* One ramfs page at the end of an anonymous range is enough. */
	mixed = anon(self, size);
	ASSERT_NE(NULL, mixed);
	ASSERT_NE(NULL, map_file(fd, P, MAP_SHARED, mixed + size - P));
	EXPECT_ERRNO(EOPNOTSUPP, vfio_map_deferred(c, IOVA_HI, mixed, size,
						   DRW));
	close(fd);

	/* userfaultfd-armed anonymous memory: refused. */
	p = uffd_armed(size, &uffd);
	if (p) {
		EXPECT_ERRNO(EOPNOTSUPP, vfio_map_deferred(c, IOVA_HI + 16 * MiB,
							   p, size, DRW));
		munmap(p, size);
		close(uffd);
	} else {
		TH_LOG("no userfaultfd (%s): that case not checked",
		       strerror(errno));
	}

	/* Device memory (edu's BAR0): refused. */
	EXPECT_ERRNO(EOPNOTSUPP,
		     vfio_map_deferred(c, IOVA_HI + 16 * MiB,
				       (void *)self->edu.bar,
				       self->edu.bar_size, DRW));
	expect_held(_metadata, self, 0, 0, "after the refusals");

	/* memfd, a /dev/shm file, hugetlbfs: mapped by the background. */
	fd = memfd_create("deferred", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	ok[0] = map_file(fd, size, MAP_SHARED, NULL);
	close(fd);
	snprintf(shm, sizeof(shm), "/dev/shm/deferred-%d", getpid());
	fd = open(shm, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	unlink(shm);
	ASSERT_EQ(0, ftruncate(fd, size));
	ok[1] = map_file(fd, size, MAP_SHARED, NULL);
	close(fd);
	ok[2] = NULL;
	if (!hugetlb_reserve(size / CHUNK, &huge_old)) {
		fd = memfd_create("deferred-huge", MFD_HUGETLB);
		if (fd >= 0 && !ftruncate(fd, size))
			ok[2] = map_file(fd, size, MAP_SHARED, NULL);
		if (fd >= 0)
			close(fd);
	}
	ASSERT_NE(NULL, ok[0]);
	ASSERT_NE(NULL, ok[1]);
	if (!ok[2])
		TH_LOG("no hugetlbfs memory: that kind not checked");
	for (i = 0; i < 3; i++)
		if (ok[i])
			ASSERT_OK(vfio_map_deferred(c, IOVA_HI + (i + 1) * 16 * MiB,
						    ok[i], size, DRW));
	/* And the anonymous part of the mixed range, without its last page. */
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI, mixed, size - P, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(0ULL, st.failed_bytes);
	for (i = 0; i < 3; i++) {
		if (!ok[i])
			continue;
		dma_lands(_metadata, self, IOVA_HI + (i + 1) * 16 * MiB, ok[i],
			  size, i == 0 ? "memfd" : i == 1 ? "/dev/shm" : "hugetlbfs");
		unmap_expect(_metadata, c, IOVA_HI + (i + 1) * 16 * MiB, size);
		munmap(ok[i], size);
	}
	unmap_expect(_metadata, c, IOVA_HI, size - P);
	if (huge_old >= 0)
		hugetlb_restore(huge_old);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

/*
 * The VMAs are checked again when a worker pins: memory swapped for a
 * ramfs file after the deferred call fails exactly the chunks it covers,
 * with EOPNOTSUPP, and the rest is mapped.
 */
TEST_F_TIMEOUT(deferred, vma_swapped_after_the_call, 120)
{
	const uint64_t size = 16 * MiB, iova = IOVA_HI, half = size / 2;
	struct vfio_iommu_async_status st;
	int c = self->v.container, fd, attempt;
	bool conclusive = false;
	uint8_t *buf = NULL;
	struct xfer x;

	RETURN_IF_SKIPPED();
	fd = ramfs_file(half);
	ASSERT_LE(0, fd);
	for (attempt = 0; attempt < DELAY_TRIES && !conclusive; attempt++) {
		const uint64_t dsize = DELAY_MIN << attempt;
		uint8_t *delay = anon(self, dsize);

		ASSERT_NE(NULL, delay);
		buf = anon(self, size);
		ASSERT_NE(NULL, buf);
		ASSERT_OK(vfio_map_deferred(c, DELAY_IOVA, delay, dsize, DRW));
		ASSERT_OK(vfio_map_deferred(c, iova, buf, size, DRW));
		ASSERT_NE(NULL, map_file(fd, half, MAP_SHARED, buf + half));
		ASSERT_OK(vfio_async_status(c, &st));
		conclusive = target_untouched(&st, size, self->nthreads);
		unmap_expect(_metadata, c, DELAY_IOVA, dsize);
		anon_free(self, delay);
		if (conclusive)
			break;
		TH_LOG("sweep reached the range before the swap (delayer %llu MiB): retrying",
		       (unsigned long long)(dsize / MiB));
		unmap_expect(_metadata, c, iova, size);
		anon_free(self, buf);
	}
	close(fd);
	if (!conclusive)
		SKIP(return, "could not keep the range pending long enough");

	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(half, st.failed_bytes);
	EXPECT_EQ(half, st.mapped_bytes);
	EXPECT_EQ(-EOPNOTSUPP, st.first_error);
	EXPECT_LE(iova + half, st.first_error_iova);
	EXPECT_GT(iova + size, st.first_error_iova);
	expect_held(_metadata, self, half / P, size, "settled");

	kmsg_drain(&self->kw);
	dma_lands(_metadata, self, iova, buf, half, "the anonymous half");
	x.iova = iova + half;
	x.len = XFER;
	x.write = true;
	ASSERT_OK(edu_dma(&self->edu, x.iova, 0, XFER, true));
	faults_within(_metadata, self, &x, 1);
	unmap_expect(_metadata, c, iova, size);
	expect_held(_metadata, self, 0, 0, "after unmap");
}

TEST_HARNESS_MAIN
