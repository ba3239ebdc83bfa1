// SPDX-License-Identifier: GPL-2.0
/*
 * channel: the balloon channel and VFIO_IOMMU_ASYNC_MAP_NOW, through
 * libvfio-async (lib/) and, for what the library would never send, the
 * raw rings.
 *
 * Ground truth is edu: a MAP_NOW's completion is followed at once by a
 * DMA into its ranges, which must land; a released chunk must fault. Hits
 * and misses are told apart by the completion's HIT flag and the
 * container's counters; kicks and calls by the module's counters and the
 * library's. Every test ends with pins and VmLck where it began.
 *
 * A "delayer" (a big deferred mapping below the target, swept first, as
 * in selftests/deferred) keeps a target's chunks pending while a test acts
 * on them; GET_STATUS tells, after the fact, whether it still did.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"
#include "vfio-async.h"

#define P		PAGE_4K
#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define CHUNK		SZ_2M
#define IOVA_HI		0x100000000ULL
#define DELAY_IOVA	IOVA_BASE
#define SETTLE_MS	120000
#define RELEASE_MS	10000
#define XFER		64
#define MAX_DONE	512
#define SWEEP_PARAM	ASYNC_MODULE_SYSFS "/parameters/sweep"

#define DRW	(VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE)

struct done {
	uint64_t cookie;
	int status;
	uint64_t error_iova;
	bool hit;
};

FIXTURE(channel) {
	struct vfio_dev v;
	struct edu edu;
	struct kmsg_watch kw;
	struct vfio_async *va;
	struct vfio_async_chan *ch;
	char dir[PATH_MAX];
	long pins0, lck0;
	struct done done[MAX_DONE];
	unsigned int ndone;
	void *mem[8];
	size_t memsz[8];
};

FIXTURE_SETUP(channel)
{
	const char *why = vfio_env_missing(VFIO_ASYNC_IOMMU);

	vfio_dev_init(&self->v);
	edu_init(&self->edu);
	self->kw.fd = -1;
	if (why)
		SKIP(return, "%s", why);
	open_edu_device(_metadata, &self->v, &self->edu, VFIO_ASYNC_IOMMU);
	ASSERT_OK(kmsg_watch_start(&self->kw, getenv("VFIO_BDF")));
	ASSERT_OK(async_container_dir(getpid(), self->dir, sizeof(self->dir)));
	ASSERT_OK(vfio_async_wrap(&self->va, self->v.container));
	ASSERT_TRUE(vfio_async_native(self->va));
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_OK(vmlck_kb(0, &self->lck0));
}

FIXTURE_TEARDOWN(channel)
{
	unsigned int i;

	vfio_async_chan_close(self->ch);
	vfio_async_close(self->va);
	/* A test that failed with the sweep off must not leave it so. */
	if (!access(SWEEP_PARAM, W_OK))
		sysfs_write(SWEEP_PARAM, "Y");
	kmsg_watch_stop(&self->kw);
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	for (i = 0; i < 8; i++)
		if (self->mem[i])
			munmap(self->mem[i], self->memsz[i]);
}

/* --- helpers -------------------------------------------------------------- */

static long ctr(FIXTURE_DATA(channel) *self, const char *name)
{
	char path[PATH_MAX + 32];
	long v = -1;

	snprintf(path, sizeof(path), "%s/%s", self->dir, name);
	sysfs_read_long(path, &v);
	return v;
}

/* Fresh anonymous memory, untouched; unmapped at teardown. */
static uint8_t *fresh(FIXTURE_DATA(channel) *self, size_t size)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	unsigned int i;

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_NOHUGEPAGE);
	for (i = 0; i < 8; i++) {
		if (!self->mem[i]) {
			self->mem[i] = p;
			self->memsz[i] = size;
			break;
		}
	}
	return p;
}

static void expect_baseline(struct __test_metadata *_metadata,
			    FIXTURE_DATA(channel) *self, const char *when)
{
	long pins, lck;
	int waited = 0;

	/* Released chunks' pages may take a moment to be counted back. */
	do {
		ASSERT_OK(pins_outstanding(&pins));
		if (pins == self->pins0)
			break;
		usleep(10000);
	} while ((waited += 10) < RELEASE_MS);
	ASSERT_OK(vmlck_kb(0, &lck));
	if (pins != self->pins0 || lck != self->lck0)
		TH_LOG("%s: pins %+ld, VmLck %+ld kB", when, pins - self->pins0,
		       lck - self->lck0);
	EXPECT_EQ(self->pins0, pins);
	EXPECT_EQ(self->lck0, lck);
}

static void on_done(void *opaque, uint64_t cookie, int status,
		    uint64_t error_iova, bool hit)
{
	FIXTURE_DATA(channel) *self = opaque;

	if (self->ndone < MAX_DONE)
		self->done[self->ndone++] = (struct done){
			cookie, status, error_iova, hit };
}

/* Reap until @want completions are in (or @ms pass); returns how many. */
static unsigned int wait_done(FIXTURE_DATA(channel) *self, unsigned int want,
			      int ms)
{
	long t0 = now_ms();

	while (self->ndone < want && now_ms() - t0 < ms) {
		struct pollfd pfd = { .fd = vfio_async_chan_fd(self->ch),
				      .events = POLLIN };

		poll(&pfd, 1, 50);
		vfio_async_chan_reap(self->ch, on_done, self);
	}
	return self->ndone;
}

static void on_done_one(void *opaque, uint64_t cookie, int status,
			uint64_t error_iova, bool hit)
{
	*(struct done *)opaque = (struct done){ cookie, status, error_iova,
						hit };
}

static struct done *find_done(FIXTURE_DATA(channel) *self, uint64_t cookie)
{
	unsigned int i;

	for (i = 0; i < self->ndone; i++)
		if (self->done[i].cookie == cookie)
			return &self->done[i];
	return NULL;
}

static int one(FIXTURE_DATA(channel) *self, enum vfio_async_op op,
	       uint64_t cookie, uint64_t iova, uint64_t size)
{
	struct vfio_async_range r = { iova, size };
	int ret = vfio_async_chan_submit(self->ch, op, cookie, &r, 1);

	return ret ? ret : vfio_async_chan_kick(self->ch);
}

/* A pattern DMAed into @iova lands in @mem (or faults, when @fault). */
static void dma_check(struct __test_metadata *_metadata,
		      FIXTURE_DATA(channel) *self, uint64_t iova, uint8_t *mem,
		      bool fault, uint32_t seed)
{
	uint8_t data[XFER], before[XFER];
	struct dmar_fault f;

	pattern_fill(data, XFER, seed);
	memcpy(before, mem, XFER);
	kmsg_drain(&self->kw);
	ASSERT_OK(edu_buf_write(&self->edu, 0, data, XFER));
	ASSERT_OK(edu_dma(&self->edu, iova, 0, XFER, true));
	if (fault) {
		EXPECT_EQ(0, memcmp(mem, before, XFER));
		EXPECT_EQ(1, kmsg_next_dmar_fault(&self->kw, &f, 300));
	} else {
		if (memcmp(mem, data, XFER))
			TH_LOG("DMA to 0x%llx did not land",
			       (unsigned long long)iova);
		EXPECT_EQ(0, memcmp(mem, data, XFER));
		EXPECT_NO_DMAR_FAULT(&self->kw);
	}
}

/*
 * Deferred maps: a delayer of @dsize fresh memory low, then @size of fresh
 * memory at @iova; returns the target memory.
 */
static uint8_t *delayed_target(struct __test_metadata *_metadata,
			       FIXTURE_DATA(channel) *self, uint64_t dsize,
			       uint64_t iova, uint64_t size)
{
	uint8_t *delay = fresh(self, dsize), *t = fresh(self, size);

	if (!delay || !t)
		return NULL;
	if (vfio_map_deferred(self->v.container, DELAY_IOVA, delay, dsize, DRW) ||
	    vfio_map_deferred(self->v.container, iova, t, size, DRW))
		return NULL;
	return t;
}

static void settle(struct __test_metadata *_metadata,
		   FIXTURE_DATA(channel) *self)
{
	struct vfio_iommu_async_status st;

	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, SETTLE_MS));
}

static void unmap_all(struct __test_metadata *_metadata,
		      FIXTURE_DATA(channel) *self)
{
	uint64_t n;

	ASSERT_OK(vfio_unmap(self->v.container, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL,
			     &n));
	/* The bounce page went too: map it again. */
	ASSERT_OK(edu_scratch_unmap(&self->edu));
	ASSERT_OK(edu_scratch_map(&self->edu, self->v.container,
				  IOVA_SCRATCH));
}

static void open_chan(struct __test_metadata *_metadata,
		      FIXTURE_DATA(channel) *self)
{
	ASSERT_OK(vfio_async_chan_open(self->va, NULL, &self->ch));
}

/* ========================================================================= */
/* 1. Creating a channel                                                     */
/* ========================================================================= */

static int create_raw(int c, struct vfio_iommu_async_channel_create *cr)
{
	int fd = ioctl(c, VFIO_IOMMU_ASYNC_CHANNEL_CREATE, cr);

	return fd < 0 ? -errno : fd;
}

TEST_F(channel, create_rules)
{
	struct {
		struct vfio_iommu_async_channel_create cr;
		uint32_t tail;
	} big;
	struct vfio_iommu_async_channel_create cr;
	int c = self->v.container, kick, call, fd, fd2, pipefd[2];
	void *m;

	RETURN_IF_SKIPPED();
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_ASYNC_BALLOON_CHANNEL));
	kick = eventfd(0, EFD_CLOEXEC);
	call = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, kick);
	ASSERT_LE(0, call);
	ASSERT_EQ(0, pipe(pipefd));
	/* A good request, then one field changed. */
#define CR(change) (cr = (struct vfio_iommu_async_channel_create){	\
	.argsz = sizeof(cr), .kick_fd = kick, .call_fd = call,		\
	.sq_entries = 64 }, (void)(change), &cr)

	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.argsz = 16)));
	big.cr = *CR(0);
	big.cr.argsz = sizeof(big);
	big.tail = 1;
	EXPECT_ERRNO(E2BIG, create_raw(c, &big.cr));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.flags = 1)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.sq_entries = 0)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.sq_entries = 48)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.sq_entries = 8192)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.cq_entries = 32)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.range_entries = 3)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.range_entries = 1 << 17)));
	EXPECT_ERRNO(EBADF, create_raw(c, CR(cr.kick_fd = -1)));
	EXPECT_ERRNO(EBADF, create_raw(c, CR(cr.call_fd = 9999)));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.kick_fd = pipefd[0])));
	EXPECT_ERRNO(EINVAL, create_raw(c, CR(cr.call_fd = pipefd[0])));

	fd = create_raw(c, CR(0));
	ASSERT_LE(0, fd);
	EXPECT_EQ(64U, cr.sq_entries);
	EXPECT_EQ(128U, cr.cq_entries);
	EXPECT_EQ(4096U, cr.range_entries);
	EXPECT_EQ(1024U, cr.max_ranges);
	EXPECT_EQ(0ULL, cr.mmap_size % P);
	EXPECT_LT(cr.cqes_off, cr.mmap_size);
	/* One per container. */
	EXPECT_ERRNO(EBUSY, create_raw(c, CR(0)));
	/* The whole mapping, shared, from offset 0, or nothing. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, cr.mmap_size - P, PROT_READ, MAP_SHARED,
				   fd, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, cr.mmap_size, PROT_READ, MAP_PRIVATE,
				   fd, 0));
	m = mmap(NULL, cr.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ((uint32_t)VFIO_ASYNC_SQ_NEED_KICK,
		  ((struct vfio_iommu_async_ring_hdr *)m)->sq_flags);
	munmap(m, cr.mmap_size);
	close(fd);
	/* Gone: a new one may be made. */
	fd2 = create_raw(c, CR(0));
	ASSERT_LE(0, fd2);
	close(fd2);
	close(kick);
	close(call);
	close(pipefd[0]);
	close(pipefd[1]);
#undef CR
}

/* ========================================================================= */
/* 2. The requests                                                           */
/* ========================================================================= */

/* All mapped already: a hit, completed at once, counted as one. */
TEST_F(channel, map_now_hit)
{
	const uint64_t size = 8 * MiB;
	long hits, misses;
	uint8_t *m;
	struct done *d;

	RETURN_IF_SKIPPED();
	m = fresh(self, size);
	ASSERT_NE(NULL, m);
	ASSERT_OK(vfio_map_deferred(self->v.container, IOVA_HI, m, size, DRW));
	settle(_metadata, self);
	open_chan(_metadata, self);
	hits = ctr(self, "hits");
	misses = ctr(self, "misses");
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NOW, 7, IOVA_HI + MiB, 3 * MiB));
	ASSERT_EQ(1U, wait_done(self, 1, 5000));
	d = find_done(self, 7);
	ASSERT_NE(NULL, d);
	EXPECT_EQ(0, d->status);
	EXPECT_TRUE(d->hit);
	EXPECT_EQ(hits + 1, ctr(self, "hits"));
	EXPECT_EQ(misses, ctr(self, "misses"));
	dma_check(_metadata, self, IOVA_HI + 2 * MiB, m + 2 * MiB, false, 1);
	unmap_all(_metadata, self);
}

/*
 * Pending chunks: a miss, mapped ahead of the sweep, completed when they
 * are; a DMA right after the completion lands.
 */
TEST_F_TIMEOUT(channel, map_now_miss, 120)
{
	const uint64_t size = 16 * MiB, iova = IOVA_HI + 4 * GiB;
	struct vfio_iommu_async_status st;
	long misses;
	uint8_t *t;
	struct done *d;

	RETURN_IF_SKIPPED();
	t = delayed_target(_metadata, self, 1 * GiB, iova, size);
	ASSERT_NE(NULL, t);
	open_chan(_metadata, self);
	misses = ctr(self, "misses");
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NOW, 9, iova + 4 * MiB, 6 * MiB));
	ASSERT_EQ(1U, wait_done(self, 1, 30000));
	d = find_done(self, 9);
	ASSERT_NE(NULL, d);
	EXPECT_EQ(0, d->status);
	EXPECT_FALSE(d->hit);
	EXPECT_EQ(misses + 1, ctr(self, "misses"));
	dma_check(_metadata, self, iova + 4 * MiB, t + 4 * MiB, false, 2);
	dma_check(_metadata, self, iova + 10 * MiB - XFER, t + 10 * MiB - XFER,
		  false, 3);
	/* It overtook the sweep: the delayer was not done. */
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	TH_LOG("at the completion: %llu MiB still pending",
	       (unsigned long long)(st.pending_bytes / MiB));
	EXPECT_LT(size, st.pending_bytes);
	settle(_metadata, self);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/*
 * A miss while the sweep has gigabytes to go completes in about the time
 * its chunks take to map, not the sweep's.
 */
TEST_F_TIMEOUT(channel, miss_overtakes_a_long_sweep, 240)
{
	const uint64_t dsize = 2 * GiB, iova = IOVA_HI + 4 * GiB;
	struct vfio_iommu_async_status st;
	long t0, lat;
	uint8_t *t;

	RETURN_IF_SKIPPED();
	t = delayed_target(_metadata, self, dsize, iova, CHUNK);
	ASSERT_NE(NULL, t);
	open_chan(_metadata, self);
	usleep(200 * 1000);	/* the sweep under way */
	t0 = now_ms();
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NOW, 1, iova, CHUNK));
	ASSERT_EQ(1U, wait_done(self, 1, 30000));
	lat = now_ms() - t0;
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	TH_LOG("one-chunk miss: %ld ms, with %llu MiB of the sweep left",
	       lat, (unsigned long long)(st.pending_bytes / MiB));
	EXPECT_EQ(0, self->done[0].status);
	EXPECT_LT(lat, 1000);
	EXPECT_LT(GiB, st.pending_bytes);
	dma_check(_metadata, self, iova + CHUNK - XFER, t + CHUNK - XFER, false,
		  4);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/* A hit queued behind a miss completes first. */
TEST_F_TIMEOUT(channel, hit_does_not_wait_for_a_miss, 120)
{
	const uint64_t iova = IOVA_HI + 4 * GiB;
	struct vfio_async_range miss = { iova, 4 * MiB };
	struct vfio_async_range hit = { IOVA_HI, 2 * MiB };
	uint8_t *low, *t;

	RETURN_IF_SKIPPED();
	low = fresh(self, 2 * MiB);
	ASSERT_NE(NULL, low);
	ASSERT_OK(vfio_map(self->v.container, IOVA_HI, low, 2 * MiB, VFIO_RW));
	t = delayed_target(_metadata, self, GiB, iova, 4 * MiB);
	ASSERT_NE(NULL, t);
	open_chan(_metadata, self);
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NOW, 1, &miss,
					 1));
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NOW, 2, &hit,
					 1));
	ASSERT_OK(vfio_async_chan_kick(self->ch));
	ASSERT_EQ(2U, wait_done(self, 2, 30000));
	EXPECT_EQ(2ULL, self->done[0].cookie);
	EXPECT_TRUE(self->done[0].hit);
	EXPECT_EQ(1ULL, self->done[1].cookie);
	EXPECT_FALSE(self->done[1].hit);
	EXPECT_EQ(0, self->done[1].status);
	dma_check(_metadata, self, iova, t, false, 5);
	unmap_all(_metadata, self);
}

/*
 * A burst of 64 hits: one kick, one call; the completions are reaped with
 * calls suppressed.
 */
TEST_F(channel, one_kick_one_call_per_burst)
{
	const unsigned int n = 64;
	struct vfio_async_chan_stats st;
	long kicks, calls;
	unsigned int i;
	uint8_t *m;

	RETURN_IF_SKIPPED();
	m = fresh(self, n * CHUNK);
	ASSERT_NE(NULL, m);
	ASSERT_OK(vfio_map(self->v.container, IOVA_HI, m, n * CHUNK, VFIO_RW));
	open_chan(_metadata, self);
	kicks = ctr(self, "kicks");
	calls = ctr(self, "calls");
	for (i = 0; i < n; i++) {
		struct vfio_async_range r = { IOVA_HI + i * CHUNK, CHUNK };

		ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NOW,
						 i, &r, 1));
	}
	ASSERT_OK(vfio_async_chan_kick(self->ch));
	ASSERT_EQ(n, wait_done(self, n, 5000));
	vfio_async_chan_stats(self->ch, &st);
	TH_LOG("%u requests: module %ld kicks, %ld calls; library %llu kicks, %llu saved, %llu reaps",
	       n, ctr(self, "kicks") - kicks, ctr(self, "calls") - calls,
	       (unsigned long long)st.kicks,
	       (unsigned long long)st.kicks_saved,
	       (unsigned long long)st.reaps);
	EXPECT_EQ(1, ctr(self, "kicks") - kicks);
	EXPECT_EQ(1, ctr(self, "calls") - calls);
	EXPECT_EQ(1ULL, st.kicks);
	for (i = 0; i < n; i++)
		EXPECT_TRUE(self->done[i].hit);
	unmap_all(_metadata, self);
}

/*
 * MAP_NEXT: hinted chunks at the top of a large pending sweep are mapped
 * before the ones below them.
 */
TEST_F_TIMEOUT(channel, map_next_goes_first, 180)
{
	const uint64_t size = 512 * MiB, iova = IOVA_HI;
	struct vfio_async_range r = { iova + size - 8 * MiB, 8 * MiB };
	struct vfio_iommu_async_status st;
	uint8_t *m;
	long t0;

	RETURN_IF_SKIPPED();
	m = fresh(self, size);
	ASSERT_NE(NULL, m);
	open_chan(_metadata, self);
	ASSERT_OK(vfio_map_deferred(self->v.container, iova, m, size, DRW));
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NEXT, 3, &r,
					 1));
	ASSERT_OK(vfio_async_chan_kick(self->ch));
	ASSERT_EQ(1U, wait_done(self, 1, 5000));
	EXPECT_EQ(0, self->done[0].status);
	/* Wait until 16 MiB are mapped: the 8 hinted ones must be in. */
	t0 = now_ms();
	do {
		ASSERT_OK(vfio_async_status(self->v.container, &st));
	} while (st.mapped_bytes < 16 * MiB && now_ms() - t0 < 30000);
	TH_LOG("%llu MiB mapped, %llu pending when the hint is checked",
	       (unsigned long long)(st.mapped_bytes / MiB),
	       (unsigned long long)(st.pending_bytes / MiB));
	ASSERT_LT(64 * MiB, st.pending_bytes);
	/*
	 * Below it, two thirds up, the sweep has not been. First: each check
	 * waits for a DMAR line, and a fast sweep is there within a second.
	 */
	dma_check(_metadata, self, iova + size * 2 / 3, m + size * 2 / 3, true,
		  8);
	dma_check(_metadata, self, iova + size - XFER, m + size - XFER, false,
		  6);
	dma_check(_metadata, self, iova + size - 8 * MiB, m + size - 8 * MiB,
		  false, 7);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/*
 * sweep=N: the threads map only what MAP_NOW and MAP_NEXT named (the
 * ioctl, the ring, the hint: DMA lands there), so what a VMM never asked
 * for stays pending (the QEMU end-to-end test's sabotage stands on this,
 * and checks the faults by DMA); sweep=Y maps the rest.
 */
TEST_F_TIMEOUT(channel, sweep_off_maps_only_what_is_asked, 180)
{
	const uint64_t size = 32 * MiB, iova = IOVA_HI;
	const uint64_t now_at = 8 * MiB, next_at = 20 * MiB, ring_at = 26 * MiB;
	struct vfio_async_range now = { iova + now_at, 4 * MiB };
	struct vfio_iommu_async_status st;
	uint64_t at = 0;
	struct done *d;
	uint8_t *m;
	long t0;

	RETURN_IF_SKIPPED();
	m = fresh(self, size);
	ASSERT_NE(NULL, m);
	ASSERT_OK(sysfs_write(SWEEP_PARAM, "N"));
	ASSERT_OK(vfio_map_deferred(self->v.container, iova, m, size, DRW));
	ASSERT_OK(vfio_async_map_now(self->va, &now, 1, &at));
	open_chan(_metadata, self);
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NEXT, 1, iova + next_at, CHUNK));
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NOW, 2, iova + ring_at, CHUNK));
	ASSERT_EQ(2U, wait_done(self, 2, 10000));
	d = find_done(self, 1);
	ASSERT_NE(NULL, d);
	EXPECT_EQ(0, d->status);
	d = find_done(self, 2);
	ASSERT_NE(NULL, d);
	EXPECT_EQ(0, d->status);
	EXPECT_FALSE(d->hit);
	t0 = now_ms();
	do {
		ASSERT_OK(vfio_async_status(self->v.container, &st));
	} while (st.mapped_bytes < 8 * MiB && now_ms() - t0 < 10000);
	/* Time the sweep would have needed for more. */
	usleep(500 * 1000);
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_EQ(8 * MiB, st.mapped_bytes);
	EXPECT_EQ(size - 8 * MiB, st.pending_bytes);
	dma_check(_metadata, self, iova + now_at, m + now_at, false, 40);
	dma_check(_metadata, self, iova + next_at + CHUNK - XFER,
		  m + next_at + CHUNK - XFER, false, 41);
	dma_check(_metadata, self, iova + ring_at, m + ring_at, false, 46);
	/*
	 * What was not asked for is pending (counted above), not DMAed into:
	 * the IOMMU's fault messages are rate limited (10 per 5 s), and the
	 * tests after this one count on theirs.
	 */

	ASSERT_OK(sysfs_write(SWEEP_PARAM, "Y"));
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, 60000));
	dma_check(_metadata, self, iova, m, false, 44);
	dma_check(_metadata, self, iova + size - XFER, m + size - XFER, false,
		  45);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/*
 * RELEASE: the chunks wholly inside are unmapped (DMA faults) and unpinned,
 * a chunk only partly covered stays; the sweep leaves them; a MAP_NOW
 * brings them back.
 */
TEST_F_TIMEOUT(channel, release_and_back, 120)
{
	const uint64_t size = 16 * MiB, iova = IOVA_HI;
	/* Chunks 2 and 3 wholly, half of 4. */
	const uint64_t rel = iova + 2 * CHUNK, rel_size = 2 * CHUNK + CHUNK / 2;
	struct vfio_iommu_async_status st;
	long pins_before, pins_after, rc;
	uint8_t *m;

	RETURN_IF_SKIPPED();
	m = fresh(self, size);
	ASSERT_NE(NULL, m);
	ASSERT_OK(vfio_map_deferred(self->v.container, iova, m, size, DRW));
	settle(_metadata, self);
	open_chan(_metadata, self);
	ASSERT_OK(pins_outstanding(&pins_before));
	rc = ctr(self, "release_chunks");
	ASSERT_OK(one(self, VFIO_ASYNC_RELEASE, 4, rel, rel_size));
	ASSERT_EQ(1U, wait_done(self, 1, 10000));
	EXPECT_EQ(0, self->done[0].status);
	ASSERT_OK(pins_outstanding(&pins_after));
	EXPECT_EQ(2 * CHUNK / P, (uint64_t)(pins_before - pins_after));
	EXPECT_EQ(rc + 2, ctr(self, "release_chunks"));
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_EQ(2 * CHUNK, st.released_bytes);
	EXPECT_EQ(size - 2 * CHUNK, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.pending_bytes);
	EXPECT_EQ(st.deferred_bytes, st.mapped_bytes + st.pending_bytes +
		  st.failed_bytes + st.released_bytes);
	/* VmLck stays charged: mapping them again cannot fail for it. */
	dma_check(_metadata, self, rel, m + 2 * CHUNK, true, 9);
	dma_check(_metadata, self, rel + 2 * CHUNK, m + 4 * CHUNK, false, 10);
	dma_check(_metadata, self, iova + CHUNK, m + CHUNK, false, 11);
	/* The sweep leaves them alone. */
	usleep(500 * 1000);
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_EQ(2 * CHUNK, st.released_bytes);
	dma_check(_metadata, self, rel + CHUNK, m + 3 * CHUNK, true, 12);

	/* Discarded by the VMM, then asked for again: fresh pages mapped. */
	ASSERT_EQ(0, madvise(m + 2 * CHUNK, 2 * CHUNK, MADV_DONTNEED));
	self->ndone = 0;
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NOW, 5, rel, 2 * CHUNK));
	ASSERT_EQ(1U, wait_done(self, 1, 10000));
	EXPECT_EQ(0, self->done[0].status);
	EXPECT_FALSE(self->done[0].hit);
	dma_check(_metadata, self, rel, m + 2 * CHUNK, false, 13);
	dma_check(_metadata, self, rel + 2 * CHUNK - XFER,
		  m + 4 * CHUNK - XFER, false, 14);
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_EQ(0ULL, st.released_bytes);
	EXPECT_EQ(size, st.mapped_bytes);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/* ========================================================================= */
/* 3. The blocking ioctl                                                     */
/* ========================================================================= */

static int map_now_raw(int c, struct vfio_iommu_async_map_now *mn)
{
	return ioctl(c, VFIO_IOMMU_ASYNC_MAP_NOW, mn) ? -errno : 0;
}

TEST_F_TIMEOUT(channel, blocking_map_now, 120)
{
	const uint64_t iova = IOVA_HI + 4 * GiB;
	struct vfio_async_range r[2] = {
		{ iova, 2 * MiB }, { iova + 6 * MiB, 4 * MiB },
	};
	struct vfio_iommu_async_map_now mn;
	struct vfio_iommu_async_range bad[2];
	int c = self->v.container;
	uint64_t at = 0;
	uint8_t *t;

	RETURN_IF_SKIPPED();
	t = delayed_target(_metadata, self, GiB, iova, 16 * MiB);
	ASSERT_NE(NULL, t);
	ASSERT_OK(vfio_async_map_now(self->va, r, 2, &at));
	dma_check(_metadata, self, iova, t, false, 20);
	dma_check(_metadata, self, iova + 10 * MiB - XFER, t + 10 * MiB - XFER,
		  false, 21);
	/* Now all mapped: a hit. */
	ASSERT_OK(vfio_async_map_now(self->va, r, 2, &at));

	/* The rules. */
#define MN(change) (mn = (struct vfio_iommu_async_map_now){		\
	.argsz = sizeof(mn), .nr_ranges = 2, .ranges = (uintptr_t)bad }, \
	(void)(change), &mn)
	memcpy(bad, r, sizeof(bad));
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(mn.argsz = 8)));
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(mn.flags = 1)));
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(mn.nr_ranges = 0)));
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(mn.nr_ranges = (1 << 20) + 1)));
	EXPECT_ERRNO(EFAULT, map_now_raw(c, MN(mn.ranges = 8)));
	bad[1].iova = iova;	/* overlapping */
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(0)));
	EXPECT_EQ(iova, mn.error_iova);
	bad[1].iova = iova + 6 * MiB + 1;	/* unaligned */
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(0)));
	bad[1].iova = iova + 64 * MiB;	/* outside every mapping */
	EXPECT_ERRNO(ENOENT, map_now_raw(c, MN(0)));
	EXPECT_EQ(iova + 64 * MiB, mn.error_iova);
	bad[1].iova = -P;
	bad[1].size = 2 * P;	/* wrapping */
	EXPECT_ERRNO(EINVAL, map_now_raw(c, MN(0)));
#undef MN
	settle(_metadata, self);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/*
 * What one request may wait for is bounded: ranges over 2049 unmapped
 * mappings (released, so that the sweep leaves them) are E2BIG, at the
 * first mapping beyond the bound, through the ioctl and the ring, for
 * MAP_NOW and MAP_NEXT; over 2048 they are taken and mapped.
 */
TEST_F_TIMEOUT(channel, pieces_per_request_bounded, 240)
{
	const unsigned int nmaps = 2049;
	const uint64_t iova = IOVA_HI + 4 * GiB, beyond = iova + (nmaps - 1) * P;
	struct vfio_async_range all = { iova, nmaps * P };
	struct vfio_async_range most = { iova, (nmaps - 1) * P };
	uint64_t at = 0;
	unsigned int i;
	uint8_t *m;

	RETURN_IF_SKIPPED();
	m = fresh(self, nmaps * P);
	ASSERT_NE(NULL, m);
	for (i = 0; i < nmaps; i++)
		ASSERT_OK(vfio_map_deferred(self->v.container, iova + i * P,
					    m + i * P, P, DRW));
	settle(_metadata, self);
	open_chan(_metadata, self);
	ASSERT_OK(one(self, VFIO_ASYNC_RELEASE, 1, iova, nmaps * P));
	ASSERT_EQ(1U, wait_done(self, 1, 10000));
	ASSERT_EQ(0, self->done[0].status);
	self->ndone = 0;
	dma_check(_metadata, self, iova, m, true, 22);

	EXPECT_EQ(-E2BIG, vfio_async_map_now(self->va, &all, 1, &at));
	EXPECT_EQ(beyond, at);
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NOW, 2, &all,
					 1));
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NEXT, 3, &all,
					 1));
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NOW, 4, &most,
					 1));
	ASSERT_OK(vfio_async_chan_kick(self->ch));
	ASSERT_EQ(3U, wait_done(self, 3, 120000));
	EXPECT_EQ(-E2BIG, find_done(self, 2)->status);
	EXPECT_EQ(beyond, find_done(self, 2)->error_iova);
	EXPECT_EQ(-E2BIG, find_done(self, 3)->status);
	EXPECT_EQ(beyond, find_done(self, 3)->error_iova);
	EXPECT_EQ(0, find_done(self, 4)->status);
	dma_check(_metadata, self, beyond - P, m + (nmaps - 2) * P, false, 23);
	/* The one left out stays released. */
	dma_check(_metadata, self, beyond, m + (nmaps - 1) * P, true, 24);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/* ========================================================================= */
/* 4. A hostile VMM                                                          */
/* ========================================================================= */

/* What a raw channel looks like to a test that writes the rings itself. */
struct raw {
	int fd, kick, call;
	uint8_t *m;
	struct vfio_iommu_async_channel_create cr;
	struct vfio_iommu_async_ring_hdr *hdr;
	struct vfio_iommu_async_sqe *sqes;
	struct vfio_iommu_async_range *ranges;
	struct vfio_iommu_async_cqe *cqes;
};

static int raw_open(int c, struct raw *r)
{
	r->kick = eventfd(0, EFD_CLOEXEC);
	r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->cr = (struct vfio_iommu_async_channel_create){
		.argsz = sizeof(r->cr), .kick_fd = r->kick, .call_fd = r->call,
		.sq_entries = 16, .range_entries = 64,
	};
	r->fd = create_raw(c, &r->cr);
	if (r->fd < 0)
		return r->fd;
	r->m = mmap(NULL, r->cr.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    r->fd, 0);
	if (r->m == MAP_FAILED)
		return -errno;
	r->hdr = (void *)(r->m + r->cr.hdr_off);
	r->sqes = (void *)(r->m + r->cr.sqes_off);
	r->ranges = (void *)(r->m + r->cr.ranges_off);
	r->cqes = (void *)(r->m + r->cr.cqes_off);
	return 0;
}

static void raw_close(struct raw *r)
{
	if (r->m && r->m != MAP_FAILED)
		munmap(r->m, r->cr.mmap_size);
	close(r->fd);
	close(r->kick);
	close(r->call);
}

/* Put request @i (slot i) with ranges from slot @rs, publish, kick. */
static void raw_push(struct raw *r, uint32_t i, uint16_t op, uint16_t flags,
		     uint32_t nr, uint32_t rs)
{
	uint64_t one = 1;

	r->sqes[i % 16] = (struct vfio_iommu_async_sqe){
		.cookie = 100 + i, .op = op, .flags = flags, .nr_ranges = nr,
		.range_start = rs,
	};
	__atomic_store_n(&r->hdr->sq_tail, i + 1, __ATOMIC_RELEASE);
	if (write(r->kick, &one, 8) != 8)
		return;
}

/* The completion of request @i, waited for up to 2 s; NULL if none. */
static struct vfio_iommu_async_cqe *raw_wait(struct raw *r, uint32_t i)
{
	long t0 = now_ms();

	while (now_ms() - t0 < 2000) {
		if (__atomic_load_n(&r->hdr->cq_tail, __ATOMIC_ACQUIRE) > i)
			return &r->cqes[i % r->cr.cq_entries];
		usleep(1000);
	}
	return NULL;
}

/*
 * Garbage in every field: each such request completes with EINVAL or
 * ENOENT and nothing else happens; good requests around them still work;
 * a tail beyond the ring stops the ring (VFIO_ASYNC_SQ_ERROR), nothing
 * else.
 */
TEST_F(channel, hostile_requests)
{
	const struct {
		uint16_t op, flags;
		uint32_t nr;
		uint64_t iova, size;
		int err;
	} cases[] = {
		{ 0, 0, 1, IOVA_HI, P, EINVAL },		/* op */
		{ 9, 0, 1, IOVA_HI, P, EINVAL },
		{ 1, 1, 1, IOVA_HI, P, EINVAL },		/* flags */
		{ 1, 0, 0, IOVA_HI, P, EINVAL },		/* no range */
		{ 1, 0, 2000, IOVA_HI, P, EINVAL },		/* too many */
		{ 1, 0, 1, IOVA_HI + 1, P, EINVAL },		/* unaligned */
		{ 1, 0, 1, IOVA_HI, 0, EINVAL },		/* empty */
		{ 1, 0, 1, -P, 2 * P, EINVAL },			/* wraps */
		{ 1, 0, 1, IOVA_HI + GiB, P, ENOENT },		/* unmapped */
		{ 1, 0, 1, IOVA_HI, 64 * MiB, ENOENT },		/* runs off */
		{ 2, 0, 1, IOVA_HI + GiB, P, ENOENT },
		{ 3, 0, 1, IOVA_HI + GiB, P, ENOENT },
		{ 1, 0, 1, IOVA_HI, ~0ULL & ~(P - 1), EINVAL },	/* absurd */
	};
	const uint32_t n = sizeof(cases) / sizeof(cases[0]);
	struct vfio_iommu_async_cqe *e;
	int c = self->v.container;
	struct raw r = { .fd = -1 };
	uint32_t i, k = 0;
	uint8_t *m;

	RETURN_IF_SKIPPED();
	m = fresh(self, 4 * MiB);
	ASSERT_NE(NULL, m);
	ASSERT_OK(vfio_map(c, IOVA_HI, m, 4 * MiB, VFIO_RW));
	ASSERT_OK(raw_open(c, &r));

	for (i = 0; i < n; i++, k++) {
		r.ranges[k % 64] = (struct vfio_iommu_async_range){
			cases[i].iova, cases[i].size };
		raw_push(&r, k, cases[i].op, cases[i].flags, cases[i].nr, k);
		e = raw_wait(&r, k);
		ASSERT_NE(NULL, e);
		if (e->status != -cases[i].err)
			TH_LOG("case %u: status %d, want %d", i, e->status,
			       -cases[i].err);
		EXPECT_EQ(-cases[i].err, e->status);
		EXPECT_EQ(100ULL + k, e->cookie);
		__atomic_store_n(&r.hdr->cq_head, k + 1, __ATOMIC_RELEASE);
	}
	/* Overlapping and out of order, in one request. */
	r.ranges[k % 64] = (struct vfio_iommu_async_range){ IOVA_HI + MiB, MiB };
	r.ranges[(k + 1) % 64] = (struct vfio_iommu_async_range){ IOVA_HI, 2 * MiB };
	raw_push(&r, k, 1, 0, 2, k);
	e = raw_wait(&r, k);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(-EINVAL, e->status);
	EXPECT_EQ(IOVA_HI, e->error_iova);
	__atomic_store_n(&r.hdr->cq_head, ++k, __ATOMIC_RELEASE);
	/* A good one still works. */
	r.ranges[k % 64] = (struct vfio_iommu_async_range){ IOVA_HI, 4 * MiB };
	raw_push(&r, k, 1, 0, 1, k);
	e = raw_wait(&r, k);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(0, e->status);
	EXPECT_EQ((uint32_t)VFIO_ASYNC_CQE_HIT, e->flags);
	__atomic_store_n(&r.hdr->cq_head, ++k, __ATOMIC_RELEASE);

	/* A tail from nowhere: the ring is stopped, nothing else. */
	__atomic_store_n(&r.hdr->sq_tail, k + 1000, __ATOMIC_RELEASE);
	raw_push(&r, k + 1000, 1, 0, 1, 0);
	usleep(200 * 1000);
	EXPECT_NE(0U, r.hdr->sq_flags & VFIO_ASYNC_SQ_ERROR);
	EXPECT_EQ(k, r.hdr->sq_head);
	raw_close(&r);
	dma_check(_metadata, self, IOVA_HI, m, false, 30);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/* A VMM that never reaps stalls its own ring, and nothing else. */
TEST_F(channel, full_completion_ring_stalls_only_its_vmm)
{
	int c = self->v.container;
	struct raw r = { .fd = -1 };
	uint32_t i, taken;
	uint8_t *m;
	uint64_t one = 1;

	RETURN_IF_SKIPPED();
	m = fresh(self, 2 * MiB);
	ASSERT_NE(NULL, m);
	ASSERT_OK(vfio_map(c, IOVA_HI, m, 2 * MiB, VFIO_RW));
	ASSERT_OK(raw_open(c, &r));
	r.ranges[0] = (struct vfio_iommu_async_range){ IOVA_HI, 2 * MiB };
	/* 32 completion slots: fill them with hits, never reaping. */
	for (i = 0; i < r.cr.cq_entries + 8; i++) {
		/* One request slot at a time: wait for each to be read. */
		raw_push(&r, i, 1, 0, 1, 0);
		usleep(2000);
		if (i >= r.cr.cq_entries)
			continue;
		ASSERT_NE(NULL, raw_wait(&r, i));
	}
	usleep(200 * 1000);
	taken = r.hdr->sq_head;
	EXPECT_EQ(r.cr.cq_entries, taken);
	EXPECT_EQ(r.cr.cq_entries, r.hdr->cq_tail);
	EXPECT_NE(0U, r.hdr->sq_flags & VFIO_ASYNC_SQ_NEED_KICK);
	/* Reaping and kicking lets it go on. */
	__atomic_store_n(&r.hdr->cq_head, r.hdr->cq_tail, __ATOMIC_RELEASE);
	ASSERT_EQ(8, write(r.kick, &one, 8));
	ASSERT_NE(NULL, raw_wait(&r, i - 1));
	raw_close(&r);
	unmap_all(_metadata, self);
}

/* ========================================================================= */
/* 5. Teardown with requests in flight                                       */
/* ========================================================================= */

/* An unmap of the range a MAP_NOW waits for: it completes, ECANCELED. */
TEST_F_TIMEOUT(channel, unmap_cancels_waiting, 120)
{
	const uint64_t iova = IOVA_HI + 4 * GiB, size = 32 * MiB;
	struct vfio_iommu_async_status st;
	uint64_t n;
	uint8_t *t;

	RETURN_IF_SKIPPED();
	t = delayed_target(_metadata, self, 2 * GiB, iova, size);
	ASSERT_NE(NULL, t);
	open_chan(_metadata, self);
	ASSERT_OK(one(self, VFIO_ASYNC_MAP_NOW, 1, iova, size));
	ASSERT_OK(vfio_unmap(self->v.container, iova, size, 0, &n));
	ASSERT_EQ(1U, wait_done(self, 1, 30000));
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	/*
	 * It made it before the unmap, or was cancelled while it waited, or
	 * was read after the unmap (its range gone).
	 */
	TH_LOG("status %d", self->done[0].status);
	EXPECT_TRUE(self->done[0].status == 0 ||
		    self->done[0].status == -ECANCELED ||
		    self->done[0].status == -ENOENT);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/*
 * Many MAP_NOWs waiting, each on a page of two chunks of its own, so that
 * a request's two waits are neighbours among the waits by IOVA; then a
 * RELEASE of every chunk in the same burst: each request completes
 * (mapped before, or cancelled), none is left waiting. A walk that lost
 * its place when it ended both waits of a request at once would leave
 * some for ever. Nothing stays pinned.
 */
TEST_F_TIMEOUT(channel, release_ends_every_waiting_request, 120)
{
	const unsigned int nreq = 24;
	const uint64_t iova = IOVA_HI + 4 * GiB, size = 2 * nreq * CHUNK;
	struct vfio_iommu_async_status st;
	unsigned int i, j, cancelled = 0;
	uint8_t *t;

	RETURN_IF_SKIPPED();
	t = delayed_target(_metadata, self, GiB, iova, size);
	ASSERT_NE(NULL, t);
	open_chan(_metadata, self);
	for (i = 0; i < nreq; i++) {
		struct vfio_async_range r[2];

		for (j = 0; j < 2; j++) {
			r[j].iova = iova + (2 * i + j) * CHUNK;
			r[j].size = P;
		}
		ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_MAP_NOW,
						 i, r, 2));
	}
	ASSERT_OK(vfio_async_chan_submit(self->ch, VFIO_ASYNC_RELEASE, nreq,
					 &(struct vfio_async_range){ iova, size },
					 1));
	ASSERT_OK(vfio_async_chan_kick(self->ch));
	ASSERT_EQ(nreq + 1, wait_done(self, nreq + 1, 60000));
	for (i = 0; i < nreq; i++) {
		struct done *d = find_done(self, i);

		ASSERT_NE(NULL, d);
		EXPECT_TRUE(d->status == 0 || d->status == -ECANCELED);
		cancelled += d->status == -ECANCELED;
	}
	EXPECT_EQ(0, find_done(self, nreq)->status);
	TH_LOG("%u of %u requests cancelled by the release", cancelled, nreq);
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_EQ(size, st.released_bytes);
	unmap_all(_metadata, self);
	expect_baseline(_metadata, self, "after unmap");
}

/*
 * The channel closed, the group detached, the process killed, with
 * requests waiting: everything ends, nothing stays pinned or charged.
 */
static void teardown_child(int how, int wr)
{
	const uint64_t iova = IOVA_HI + 4 * GiB;
	struct vfio_async_chan *ch;
	struct vfio_async *va;
	struct vfio_dev v;
	unsigned int i;
	uint8_t *d, *t;
	int ret;

	vfio_dev_init(&v);
	ret = vfio_dev_open_env(&v, VFIO_ASYNC_IOMMU);
	d = mmap(NULL, GiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	t = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ret || d == MAP_FAILED || t == MAP_FAILED ||
	    vfio_map_deferred(v.container, DELAY_IOVA, d, GiB, DRW) ||
	    vfio_map_deferred(v.container, iova, t, 64 * MiB, DRW) ||
	    vfio_async_wrap(&va, v.container) ||
	    vfio_async_chan_open(va, NULL, &ch)) {
		report(wr, "setup failed");
		_exit(1);
	}
	for (i = 0; i < 32; i++) {
		struct vfio_async_range r = { iova + i * CHUNK, CHUNK };

		vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, i, &r, 1);
	}
	vfio_async_chan_kick(ch);
	usleep(20 * 1000);
	switch (how) {
	case 0:	/* the channel closed */
		vfio_async_chan_close(ch);
		break;
	case 1:	/* the group detached */
		vfio_group_unset_container(v.group);
		break;
	case 2:	/* the rings unmapped, the container closed */
		vfio_dev_close(&v);
		break;
	}
	report(wr, "ok");
	if (how == 3)
		pause();	/* killed */
	_exit(0);
}

static void run_teardown(struct __test_metadata *_metadata,
			 FIXTURE_DATA(channel) *self, int how)
{
	int containers, status, rd, wr;
	char msg[128];
	long pins;
	pid_t pid;

	/* The child sets up a container of its own. */
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	ASSERT_OK(pins_outstanding(&self->pins0));
	pid = fork_with_pipes(&rd, &wr);
	ASSERT_LE(0, pid);
	if (!pid)
		teardown_child(how, wr);
	read_report(rd, msg, sizeof(msg));
	EXPECT_STREQ("ok", msg);
	if (how == 3)
		kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(rd);
	EXPECT_EQ(0, async_wait_released(self->pins0, RELEASE_MS, &pins,
					 &containers));
	EXPECT_EQ(self->pins0, pins);
	EXPECT_EQ(0, containers);
}

TEST_F_TIMEOUT(channel, close_channel_with_requests_waiting, 60)
{
	RETURN_IF_SKIPPED();
	run_teardown(_metadata, self, 0);
}

TEST_F_TIMEOUT(channel, detach_with_requests_waiting, 60)
{
	RETURN_IF_SKIPPED();
	run_teardown(_metadata, self, 1);
}

TEST_F_TIMEOUT(channel, close_container_with_requests_waiting, 60)
{
	RETURN_IF_SKIPPED();
	run_teardown(_metadata, self, 2);
}

TEST_F_TIMEOUT(channel, sigkill_with_requests_waiting, 60)
{
	RETURN_IF_SKIPPED();
	run_teardown(_metadata, self, 3);
}

/* ========================================================================= */
/* 6. The library without the module                                        */
/* ========================================================================= */

/* Stock type1 in place of ours: the same calls work, mapping at once. */
TEST(library_fallback_on_type1)
{
	const char *group = getenv("VFIO_GROUP");
	struct vfio_async_progress p;
	struct vfio_async_chan *ch;
	struct vfio_async_range r = { IOVA_HI, 4 * MiB };
	struct vfio_async *va;
	struct vfio_dev v;
	struct done d = { .status = 1 };
	uint8_t *m;
	uint64_t n;

	if (!group || !getenv("VFIO_BDF"))
		SKIP(return, "VFIO_GROUP/VFIO_BDF not set");
	vfio_dev_init(&v);
	ASSERT_OK(vfio_dev_open(&v, group, NULL, VFIO_TYPE1v2_IOMMU));
	if (!strcmp(type1v2_backend(), "vfio_iommu_async")) {
		vfio_dev_close(&v);
		SKIP(return, "type1v2 is served by this module (drop-in)");
	}
	ASSERT_OK(vfio_async_wrap(&va, v.container));
	EXPECT_FALSE(vfio_async_native(va));
	m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_OK(vfio_async_map(va, IOVA_HI, m, 4 * MiB, VFIO_ASYNC_READ |
				 VFIO_ASYNC_WRITE | VFIO_ASYNC_DEFER));
	ASSERT_OK(vfio_async_progress(va, &p));
	EXPECT_EQ(0ULL, p.pending_bytes);
	ASSERT_OK(vfio_async_map_now(va, &r, 1, NULL));
	ASSERT_OK(vfio_async_chan_open(va, NULL, &ch));
	ASSERT_OK(vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, 5, &r, 1));
	ASSERT_OK(vfio_async_chan_kick(ch));
	ASSERT_EQ(1, vfio_async_chan_reap(ch, on_done_one, &d));
	EXPECT_EQ(0, d.status);
	EXPECT_TRUE(d.hit);
	ASSERT_OK(vfio_async_chan_submit(ch, VFIO_ASYNC_RELEASE, 6, &r, 1));
	ASSERT_OK(vfio_async_chan_kick(ch));
	ASSERT_EQ(1, vfio_async_chan_reap(ch, on_done_one, &d));
	EXPECT_EQ(-EOPNOTSUPP, d.status);
	vfio_async_chan_close(ch);
	ASSERT_OK(vfio_async_unmap(va, IOVA_HI, 4 * MiB, &n));
	EXPECT_EQ(4 * MiB, n);
	vfio_async_close(va);
	vfio_dev_close(&v);
	munmap(m, 4 * MiB);
}

TEST_HARNESS_MAIN
