// SPDX-License-Identifier: GPL-2.0
/*
 * fail_nth: every allocation and pin on the module's ioctl paths fails
 * cleanly, and so does every pin and iommu_map() of the background threads.
 *
 * Needs a kernel with fault injection (the debug kernel of `make
 * check-debug`); on Debian's kernel /proc/thread-self/fail-nth is absent
 * and every test skips.
 *
 * 1. The ioctl paths, with /proc/thread-self/fail-nth (see
 *    Documentation/fault-injection/fault-injection.rst): for N = 1, 2, ...
 *    the N-th fault-injection point the calling thread reaches inside one
 *    ioctl fails (failslab and fail_page_alloc, both with ignore-gfp-wait=N
 *    and fail_page_alloc with min-order=0 and ignore-gfp-highmem=N, plus
 *    the module's own points), until N is past the last point the call
 *    reaches and it succeeds. After every call that failed: it returned an
 *    errno, and pins (nr_foll_pin_*), VmLck and the module's counters
 *    (module-wide and the container's) are exactly as before; a map that
 *    failed left its IOVA unmapped (edu's DMA there does not land). A call
 *    may also absorb a fault (a fallback, e.g. kmemleak's object pool) and
 *    succeed: then it must have its whole effect. After the success, DMA
 *    through the new state works and undoing it restores the start.
 *    Paths: MAP_DMA (4 KiB pages, half of them not faulted in yet, across a
 *    page-table boundary of IOVA space; THP), MAP_DMA_DEFERRED (deferred,
 *    and FLAG_NOW), UNMAP_DMA (made at once; deferred), GET_INFO,
 *    ASYNC_GET_STATUS, group attach to a new container (SET_CONTAINER,
 *    then SET_IOMMU), a second group joining a container that has
 *    mappings (VFIO_GROUP2), the balloon channel's creation and the
 *    blocking MAP_NOW of a pending range (its waits, and the pins its
 *    caller makes while it helps: after a failure a second MAP_NOW maps
 *    it, by DMA).
 *
 * 2. The background, with the module's fault points
 *    /sys/kernel/debug/vfio_async/fail_chunk_{pin,map}: the k-th pin (or
 *    iommu_map) call of the threads fails, M times in a row, while they map
 *    a deferred range of 8 chunks. Then exactly M chunks failed:
 *    failed_bytes, background_errors, first_error (-ENOMEM at a chunk's
 *    IOVA), pins and VmLck say so; DMA to each failed chunk does not land,
 *    DMA to every other chunk does; unmap gives everything back.
 *
 * Each sweep prints "fail-nth: <path>: N=<n> ..." with the N the call
 * first succeeded at. FAIL_NTH_ONLY=<part of a test name> runs only the
 * tests whose name contains it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P		PAGE_4K
#define MiB		(1ULL << 20)
#define CHUNK		SZ_2M
#define IOVA_HI		0x100000000ULL

/* 64 KiB of 4 KiB pages across a 2 MiB boundary: two VT-d leaf tables. */
#define A4K_IOVA	(IOVA_BASE + SZ_2M - 32 * 1024)
#define A4K_SIZE	(64 * 1024ULL)
#define ATHP_IOVA	(IOVA_BASE + 8 * MiB)
#define ATHP_SIZE	SZ_2M
#define ADEF_IOVA	IOVA_HI
#define ADEF_SIZE	(4 * MiB)
#define BG_IOVA		(IOVA_HI + 64 * MiB)
#define BG_CHUNKS	8
#define BG_SIZE		(BG_CHUNKS * CHUNK)

#define MAX_N		20000
#define SETTLE_MS	60000
#define RELEASE_MS	10000
#define XFER		64
#define PROBE_OFF	0	/* edu buffer: what probes write */
#define READ_OFF	1024	/* edu buffer: where read checks land */

#define DRW	(VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE)
#define DNOW	(DRW | VFIO_ASYNC_MAP_FLAG_NOW)

#define FAILSLAB	"/sys/kernel/debug/failslab"
#define FAIL_PAGE	"/sys/kernel/debug/fail_page_alloc"
#define ASYNC_FAULTS	"/sys/kernel/debug/vfio_async"

/* The module's counters, per container and module-wide. */
enum {
	K_SYNC, K_DEFERRED, K_MAPPED, K_PENDING, K_FAILED, K_PINNED,
	K_CHUNKS, K_ERRORS, NR_K,
};

static const char *const kname[NR_K] = {
	"sync_bytes", "deferred_bytes", "mapped_bytes", "pending_bytes",
	"failed_bytes", "pinned_pages", "chunks_mapped", "background_errors",
};

/* Everything a failed call must leave as it was. */
struct snap {
	long pins;		/* nr_foll_pin_acquired - released */
	long lck;		/* our VmLck, kB */
	long containers;
	long g[NR_K];		/* module-wide */
	long k[NR_K];		/* the fixture's container */
};

/*
 * What a call that worked changes. chunks_mapped and background_errors
 * only ever grow: they are compared only with @ever (a NULL delta means
 * "nothing changed at all", those two included).
 */
struct delta {
	long pins, lck, containers;
	long k[NR_K];		/* module-wide and the container's alike */
	bool ever;
};

/* Back where it started, whatever the background did meanwhile. */
static const struct delta same = { .ever = false };

static bool ever_counter(int i)
{
	return i == K_CHUNKS || i == K_ERRORS;
}

/* Settings of a fault_attr directory in debugfs, saved to restore. */
#define MAX_KNOBS	10
struct knobs {
	char dir[96];
	int n;
	char name[MAX_KNOBS][32];
	char old[MAX_KNOBS][32];
};

FIXTURE(fail_nth) {
	struct vfio_dev v;
	struct edu edu;
	int fnth;			/* /proc/thread-self/fail-nth */
	char dir[PATH_MAX];		/* our container's sysfs directory */
	struct knobs slab, page, pin, map, point;
	struct snap base;		/* after setup */
	uint8_t probe[XFER];		/* edu's buffer at PROBE_OFF */
	long nthreads;
	/* The second device, for the attach paths. */
	int group2, container2, device2;
	struct edu edu2;
	/* Memory, unmapped in teardown. */
	struct { void *p; size_t n; } maps[8];
};

typedef FIXTURE_DATA(fail_nth) fx_t;

/* --- small helpers ------------------------------------------------------ */

/* Fresh anonymous 4 KiB-page memory, not faulted in; freed in teardown. */
static void *anon(fx_t *self, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned int i;

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_NOHUGEPAGE);
	for (i = 0; i < ARRAY_SIZE(self->maps); i++) {
		if (!self->maps[i].p) {
			self->maps[i].p = p;
			self->maps[i].n = size;
			return p;
		}
	}
	munmap(p, size);
	return NULL;
}

/* --- fail-nth ------------------------------------------------------------- */

static int fnth_open(void)
{
	char path[64];
	int fd = open("/proc/thread-self/fail-nth", O_RDWR);

	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth",
		 (long)syscall(SYS_gettid));
	fd = open(path, O_RDWR);
	return fd >= 0 ? fd : -errno;
}

/* The thread's N-th fault-injection point from now on fails. */
static int fnth_arm(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -errno;
}

/* How many points were still to go (0: the fault was injected); disarms. */
static long fnth_disarm(int fd)
{
	char buf[16] = "";
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
	long left;

	if (r <= 0)
		return r < 0 ? -errno : -EIO;
	left = strtol(buf, NULL, 10);
	if (pwrite(fd, "0", 1, 0) != 1)
		return -errno;
	return left;
}

/* --- debugfs fault_attr knobs --------------------------------------------- */

static int knob_set(struct knobs *k, const char *name, const char *val)
{
	char path[160];
	int i, ret;

	for (i = 0; i < k->n && strcmp(k->name[i], name); i++)
		;
	if (i == k->n) {
		if (k->n == MAX_KNOBS)
			return -ENOSPC;
		snprintf(path, sizeof(path), "%s/%s", k->dir, name);
		ret = sysfs_read(path, k->old[i], sizeof(k->old[i]));
		if (ret)
			return ret;
		snprintf(k->name[i], sizeof(k->name[i]), "%s", name);
		k->n++;
	}
	snprintf(path, sizeof(path), "%s/%s", k->dir, name);
	return sysfs_write(path, val);
}

static int knob_get(struct knobs *k, const char *name, long *val)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", k->dir, name);
	return sysfs_read_long(path, val);
}

/* Put back what knob_set() changed, "times" (which arms it) first. */
static void knobs_restore(struct knobs *k)
{
	char path[160];
	int i;

	for (i = 0; i < k->n; i++) {
		if (strcmp(k->name[i], "times"))
			continue;
		snprintf(path, sizeof(path), "%s/times", k->dir);
		sysfs_write(path, "0");
	}
	for (i = k->n - 1; i >= 0; i--) {
		snprintf(path, sizeof(path), "%s/%s", k->dir, k->name[i]);
		sysfs_write(path, k->old[i]);
	}
	k->n = 0;
}

/*
 * failslab and fail_page_alloc fail whatever fail-nth picks: also the
 * allocations that may sleep, highmem, order 0. probability 100 with
 * task-filter Y and times -1 is the documented setting for fail-nth; no
 * task has make-it-fail set, so nothing fails without fail-nth. No
 * messages: a stack dump per fault would swamp the console.
 */
static int fnth_setup(fx_t *self)
{
	static const char *const common[][2] = {
		{ "verbose", "0" }, { "task-filter", "Y" }, { "interval", "1" },
		{ "space", "0" }, { "probability", "100" }, { "times", "-1" },
		{ "ignore-gfp-wait", "N" },
	};
	unsigned int i;
	int ret = 0;

	snprintf(self->slab.dir, sizeof(self->slab.dir), FAILSLAB);
	snprintf(self->page.dir, sizeof(self->page.dir), FAIL_PAGE);
	for (i = 0; i < ARRAY_SIZE(common) && !ret; i++) {
		ret = knob_set(&self->slab, common[i][0], common[i][1]);
		if (!ret)
			ret = knob_set(&self->page, common[i][0], common[i][1]);
	}
	if (!ret)
		ret = knob_set(&self->page, "ignore-gfp-highmem", "N");
	if (!ret)
		ret = knob_set(&self->page, "min-order", "0");
	/* The module's own points count too: quiet them the same way. */
	snprintf(self->pin.dir, sizeof(self->pin.dir), ASYNC_FAULTS
		 "/fail_chunk_pin");
	snprintf(self->map.dir, sizeof(self->map.dir), ASYNC_FAULTS
		 "/fail_chunk_map");
	if (!ret && !access(self->pin.dir, F_OK))
		ret = knob_set(&self->pin, "verbose", "0");
	if (!ret && !access(self->map.dir, F_OK))
		ret = knob_set(&self->map, "verbose", "0");
	return ret;
}

/* --- state ---------------------------------------------------------------- */

static int snap_take(fx_t *self, struct snap *s)
{
	char path[PATH_MAX + 32];
	int i, ret;

	ret = pins_outstanding(&s->pins);
	if (!ret)
		ret = vmlck_kb(0, &s->lck);
	if (ret)
		return ret;
	s->containers = async_containers();
	if (s->containers < 0)
		return s->containers;
	for (i = 0; i < NR_K; i++) {
		snprintf(path, sizeof(path), ASYNC_SYSFS "/%s", kname[i]);
		ret = sysfs_read_long(path, &s->g[i]);
		if (ret)
			return ret;
		snprintf(path, sizeof(path), "%s/%s", self->dir, kname[i]);
		ret = sysfs_read_long(path, &s->k[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* The state moved from @from by exactly @d (NULL: not at all). */
static void expect_state(struct __test_metadata *_metadata, fx_t *self,
			 const struct snap *from, const struct delta *d,
			 const char *when)
{
	static const struct delta none = { .ever = true };
	struct snap now;
	int i;

	if (!d)
		d = &none;
	ASSERT_OK(snap_take(self, &now));
	if (now.pins - from->pins != d->pins)
		TH_LOG("%s: pins %+ld, want %+ld", when, now.pins - from->pins,
		       d->pins);
	EXPECT_EQ(d->pins, now.pins - from->pins);
	if (now.lck - from->lck != d->lck)
		TH_LOG("%s: VmLck %+ld kB, want %+ld kB", when,
		       now.lck - from->lck, d->lck);
	EXPECT_EQ(d->lck, now.lck - from->lck);
	if (now.containers - from->containers != d->containers)
		TH_LOG("%s: containers %+ld, want %+ld", when,
		       now.containers - from->containers, d->containers);
	EXPECT_EQ(d->containers, now.containers - from->containers);
	for (i = 0; i < NR_K; i++) {
		if (ever_counter(i) && !d->ever)
			continue;
		if (now.g[i] - from->g[i] != d->k[i] ||
		    now.k[i] - from->k[i] != d->k[i])
			TH_LOG("%s: %s %+ld (container %+ld), want %+ld", when,
			       kname[i], now.g[i] - from->g[i],
			       now.k[i] - from->k[i], d->k[i]);
		EXPECT_EQ(d->k[i], now.g[i] - from->g[i]);
		EXPECT_EQ(d->k[i], now.k[i] - from->k[i]);
	}
}

/* --- edu probes ----------------------------------------------------------- */

/*
 * Device -> RAM at @iova, backed by @va: with @lands the probe bytes must
 * arrive (then the old bytes are put back), else memory must stay as it
 * was. Returns whether they landed, or -errno.
 */
static int probe_write(struct edu *e, const uint8_t *probe, uint64_t iova,
		       uint8_t *va)
{
	uint8_t old[XFER];
	int ret, landed;

	memcpy(old, va, XFER);
	ret = edu_dma(e, iova, PROBE_OFF, XFER, true);
	if (ret)
		return ret;
	landed = !memcmp(va, probe, XFER);
	if (!landed && memcmp(va, old, XFER))
		return -EPROTO;		/* something else arrived */
	memcpy(va, old, XFER);
	return landed;
}

static void expect_lands(struct __test_metadata *_metadata, fx_t *self,
			 uint64_t iova, uint8_t *va, const char *what)
{
	int r = probe_write(&self->edu, self->probe, iova, va);

	if (r != 1)
		TH_LOG("%s: DMA to 0x%llx %s", what, (unsigned long long)iova,
		       r == 0 ? "did not land" : strerror(-r));
	EXPECT_EQ(1, r);
}

static void expect_blocked(struct __test_metadata *_metadata, fx_t *self,
			   uint64_t iova, uint8_t *va, const char *what)
{
	int r = probe_write(&self->edu, self->probe, iova, va);

	if (r != 0)
		TH_LOG("%s: DMA to 0x%llx %s", what, (unsigned long long)iova,
		       r == 1 ? "landed: the IOVA is mapped" : strerror(-r));
	EXPECT_EQ(0, r);
}

/* RAM -> device at @iova reads exactly the bytes at @va. */
static void expect_reads(struct __test_metadata *_metadata, fx_t *self,
			 uint64_t iova, const uint8_t *va, const char *what)
{
	uint8_t out[XFER];

	ASSERT_OK(edu_dma(&self->edu, iova, READ_OFF, XFER, false));
	ASSERT_OK(edu_buf_read(&self->edu, READ_OFF, out, XFER));
	if (memcmp(out, va, XFER))
		TH_LOG("%s: DMA read of 0x%llx returned other bytes", what,
		       (unsigned long long)iova);
	EXPECT_EQ(0, memcmp(out, va, XFER));
}

/* First and last page of a mapping: written through, last one read too. */
static void expect_mapped(struct __test_metadata *_metadata, fx_t *self,
			  uint64_t iova, uint8_t *va, uint64_t size,
			  const char *what)
{
	expect_lands(_metadata, self, iova, va, what);
	expect_lands(_metadata, self, iova + size - P, va + size - P, what);
	expect_reads(_metadata, self, iova + size - P + 8, va + size - P + 8,
		     what);
}

static void expect_unmapped(struct __test_metadata *_metadata, fx_t *self,
			    uint64_t iova, uint8_t *va, uint64_t size,
			    const char *what)
{
	expect_blocked(_metadata, self, iova, va, what);
	expect_blocked(_metadata, self, iova + size - P, va + size - P, what);
}

/* --- the sweep ------------------------------------------------------------ */

/*
 * One ioctl path. @call makes exactly the call under test and nothing
 * else (the armed fail-nth counts every point the thread reaches);
 * @prepare sets up what it needs, @failed checks and cleans up after a
 * call that failed, @done after one that worked. @before is the state
 * right before the call.
 */
struct path {
	const char *name;
	void (*prepare)(struct __test_metadata *_metadata, fx_t *self,
			void *ctx);
	int (*call)(fx_t *self, void *ctx);
	void (*failed)(struct __test_metadata *_metadata, fx_t *self,
		       void *ctx, const struct snap *before);
	void (*done)(struct __test_metadata *_metadata, fx_t *self, void *ctx,
		     const struct snap *before);
};

static void sweep(struct __test_metadata *_metadata, fx_t *self,
		  const struct path *p, void *ctx)
{
	unsigned int n, nfailed = 0, absorbed = 0, i;
	int errs[8] = { 0 }, nerrs[8] = { 0 }, nkinds = 0;
	char errtxt[160] = "";
	struct snap before;
	size_t off = 0;
	long left;
	int ret;

	for (n = 1; n <= MAX_N; n++) {
		if (p->prepare)
			p->prepare(_metadata, self, ctx);
		ASSERT_OK(snap_take(self, &before));

		ASSERT_OK(fnth_arm(self->fnth, n));
		ret = p->call(self, ctx);
		left = fnth_disarm(self->fnth);
		ASSERT_LE(0, left);

		if (left) {
			/* N is past every point the call reaches. */
			if (ret)
				TH_LOG("%s: N=%u: no fault injected, yet: %s",
				       p->name, n, strerror(-ret));
			ASSERT_EQ(0, ret);
			p->done(_metadata, self, ctx, &before);
			break;
		}
		if (!ret) {
			/* A fallback absorbed the fault: all of it happened. */
			absorbed++;
			p->done(_metadata, self, ctx, &before);
			continue;
		}
		if (ret > 0)
			TH_LOG("%s: N=%u: returned %d", p->name, n, ret);
		ASSERT_GT(0, ret);
		nfailed++;
		for (i = 0; i < (unsigned int)nkinds && errs[i] != -ret; i++)
			;
		if (i == (unsigned int)nkinds && nkinds < 8)
			errs[nkinds++] = -ret;
		if (i < 8)
			nerrs[i]++;
		p->failed(_metadata, self, ctx, &before);
		if (_metadata->passed == 0) {
			TH_LOG("%s: N=%u (%s): state not restored, stopping",
			       p->name, n, strerror(-ret));
			return;
		}
	}
	ASSERT_GE((unsigned int)MAX_N, n);
	for (i = 0; i < (unsigned int)nkinds && off < sizeof(errtxt); i++)
		off += snprintf(errtxt + off, sizeof(errtxt) - off, "%s%s x%d",
				i ? ", " : "", strerror(errs[i]), nerrs[i]);
	TH_LOG("fail-nth: %s: N=%u: %u injected faults failed the call (%s), %u absorbed",
	       p->name, n, nfailed, nkinds ? errtxt : "-", absorbed);
	printf("# fail-nth: %s: N=%u failed=%u absorbed=%u\n", p->name, n,
	       nfailed, absorbed);
	fflush(stdout);
}

/* --- fixture -------------------------------------------------------------- */

static const char *fnth_missing(void)
{
	int fd = fnth_open();

	if (fd < 0)
		return "no fault injection in this kernel (/proc/thread-self/fail-nth: needs CONFIG_FAULT_INJECTION)";
	close(fd);
	if (access(FAILSLAB "/ignore-gfp-wait", W_OK) ||
	    access(FAIL_PAGE "/min-order", W_OK))
		return "no failslab/fail_page_alloc in debugfs (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS)";
	return NULL;
}

FIXTURE_SETUP(fail_nth)
{
	const char *why = vfio_env_missing(VFIO_ASYNC_IOMMU);
	int ret, waited = 0;

	vfio_dev_init(&self->v);
	edu_init(&self->edu);
	edu_init(&self->edu2);
	self->fnth = -1;
	self->group2 = self->container2 = self->device2 = -1;
	if (!why)
		why = fnth_missing();
	if (why)
		SKIP(return, "%s", why);
	if (getenv("FAIL_NTH_ONLY") &&
	    !strstr(_metadata->name, getenv("FAIL_NTH_ONLY")))
		SKIP(return, "not selected by FAIL_NTH_ONLY");

	ASSERT_OK(sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/threads",
				  &self->nthreads));
	while (async_containers() != 0 && waited < RELEASE_MS) {
		usleep(10000);
		waited += 10;
	}
	ASSERT_EQ(0, async_containers());

	open_edu_device(_metadata, &self->v, &self->edu, VFIO_ASYNC_IOMMU);
	ASSERT_OK(async_container_dir(getpid(), self->dir, sizeof(self->dir)));
	pattern_fill(self->probe, XFER, 0x0fa11);
	ASSERT_OK(edu_buf_write(&self->edu, PROBE_OFF, self->probe, XFER));

	ret = fnth_setup(self);
	if (ret)
		TH_LOG("configuring failslab/fail_page_alloc: %s", strerror(-ret));
	ASSERT_OK(ret);
	self->fnth = fnth_open();
	ASSERT_LE(0, self->fnth);
	/*
	 * Fault in what runs while fail-nth is armed (a user page fault
	 * would count as a point), and check that it disarms.
	 */
	ASSERT_OK(fnth_arm(self->fnth, 0));
	ASSERT_EQ(0, fnth_disarm(self->fnth));
	ASSERT_OK(snap_take(self, &self->base));
}

FIXTURE_TEARDOWN(fail_nth)
{
	unsigned int i;

	if (self->fnth >= 0) {
		fnth_disarm(self->fnth);
		close(self->fnth);
	}
	knobs_restore(&self->point);
	knobs_restore(&self->map);
	knobs_restore(&self->pin);
	knobs_restore(&self->page);
	knobs_restore(&self->slab);
	edu_close(&self->edu2);
	close_fd(&self->device2);
	close_fd(&self->group2);
	close_fd(&self->container2);
	edu_close(&self->edu);
	vfio_dev_close(&self->v);
	for (i = 0; i < ARRAY_SIZE(self->maps); i++)
		if (self->maps[i].p)
			munmap(self->maps[i].p, self->maps[i].n);
}

/* ========================================================================= */
/* 1. The ioctl paths                                                        */
/* ========================================================================= */

/* A map request and what a successful one changes. */
struct map_ctx {
	const char *name;
	unsigned long cmd;	/* MAP_DMA or MAP_DMA_DEFERRED */
	uint32_t flags;
	uint64_t iova, size;
	uint8_t *va;
	union {
		struct vfio_iommu_type1_dma_map map;
		struct vfio_iommu_async_dma_map dmap;
	} arg;
	bool deferred;		/* mapped by the background */
	struct delta effect;	/* once mapped */
	struct delta residue;	/* once unmapped again */
	struct snap start;	/* before anything was mapped */
};

static int map_call(fx_t *self, void *ctx)
{
	struct map_ctx *m = ctx;

	return ioctl(self->v.container, m->cmd, &m->arg) ? -errno : 0;
}

static void map_failed(struct __test_metadata *_metadata, fx_t *self,
		       void *ctx, const struct snap *before)
{
	struct map_ctx *m = ctx;

	expect_state(_metadata, self, before, NULL, m->name);
	expect_unmapped(_metadata, self, m->iova, m->va, m->size, m->name);
}

static void map_done(struct __test_metadata *_metadata, fx_t *self,
		     void *ctx, const struct snap *before)
{
	struct map_ctx *m = ctx;
	struct vfio_iommu_async_status st;
	uint64_t n = 0;

	if (m->deferred) {
		ASSERT_OK(vfio_async_wait_settled(self->v.container, &st,
						  SETTLE_MS));
		EXPECT_EQ(m->size, st.mapped_bytes);
		EXPECT_EQ(0ULL, st.failed_bytes);
	}
	expect_state(_metadata, self, before, &m->effect, m->name);
	expect_mapped(_metadata, self, m->iova, m->va, m->size, m->name);
	ASSERT_OK(vfio_unmap(self->v.container, m->iova, m->size, 0, &n));
	EXPECT_EQ(m->size, n);
	expect_state(_metadata, self, before, &m->residue, m->name);
	expect_unmapped(_metadata, self, m->iova, m->va, m->size, m->name);
}

static const struct path map_path = {
	.call = map_call, .failed = map_failed, .done = map_done,
};

static void map_ctx_init(struct map_ctx *m, const char *name,
			 unsigned long cmd, uint32_t flags, uint64_t iova,
			 uint8_t *va, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->name = name;
	m->cmd = cmd;
	m->flags = flags;
	m->iova = iova;
	m->va = va;
	m->size = size;
	if (cmd == VFIO_IOMMU_MAP_DMA) {
		m->arg.map.argsz = sizeof(m->arg.map);
		m->arg.map.flags = flags;
		m->arg.map.vaddr = (uintptr_t)va;
		m->arg.map.iova = iova;
		m->arg.map.size = size;
	} else {
		m->arg.dmap.argsz = sizeof(m->arg.dmap);
		m->arg.dmap.flags = flags;
		m->arg.dmap.vaddr = (uintptr_t)va;
		m->arg.dmap.iova = iova;
		m->arg.dmap.size = size;
	}
	m->deferred = cmd == VFIO_IOMMU_MAP_DMA_DEFERRED &&
		      !(flags & VFIO_ASYNC_MAP_FLAG_NOW);
	m->effect.ever = m->residue.ever = true;
	m->effect.lck = size >> 10;
	m->effect.pins = size / P;
	m->effect.k[K_PINNED] = size / P;
	if (m->deferred) {
		/* Settled: all of it mapped by the threads, chunk by chunk. */
		m->effect.k[K_DEFERRED] = size;
		m->effect.k[K_MAPPED] = size;
		m->effect.k[K_CHUNKS] = ((iova + size - 1) >> 21) -
					(iova >> 21) + 1;
		m->residue.k[K_CHUNKS] = m->effect.k[K_CHUNKS];
	} else {
		m->effect.k[K_SYNC] = size;
	}
}

/* 16 pages: the first 8 written, the last 8 never touched (GUP faults). */
static uint8_t *half_touched(struct __test_metadata *_metadata, fx_t *self,
			     size_t size)
{
	uint8_t *va = anon(self, size);

	ASSERT_NE(NULL, va);
	pattern_fill_pages(va, size / 2, 0x4b);
	return va;
}

TEST_F_TIMEOUT(fail_nth, map_dma_4k, 900)
{
	struct map_ctx m;
	struct path p = map_path;

	RETURN_IF_SKIPPED();
	map_ctx_init(&m, "MAP_DMA 4k", VFIO_IOMMU_MAP_DMA, VFIO_RW, A4K_IOVA,
		     half_touched(_metadata, self, A4K_SIZE), A4K_SIZE);
	p.name = m.name;
	sweep(_metadata, self, &p, &m);
	expect_state(_metadata, self, &self->base, &same, "end");
}

TEST_F_TIMEOUT(fail_nth, map_dma_thp, 900)
{
	struct mem_buf mb;
	struct map_ctx m;
	struct path p = map_path;
	int ret;

	RETURN_IF_SKIPPED();
	ret = mem_alloc(&mb, MEM_THP, ATHP_SIZE);
	if (ret == -ENOTSUP)
		SKIP(return, "no transparent huge page");
	ASSERT_OK(ret);
	self->maps[ARRAY_SIZE(self->maps) - 1].p = mb.map_base;
	self->maps[ARRAY_SIZE(self->maps) - 1].n = mb.map_len;
	ASSERT_OK(snap_take(self, &self->base));
	map_ctx_init(&m, "MAP_DMA thp", VFIO_IOMMU_MAP_DMA, VFIO_RW,
		     ATHP_IOVA, mb.va, ATHP_SIZE);
	p.name = m.name;
	sweep(_metadata, self, &p, &m);
	expect_state(_metadata, self, &self->base, &same, "end");
}

TEST_F_TIMEOUT(fail_nth, map_deferred, 900)
{
	struct map_ctx m;
	struct path p = map_path;

	RETURN_IF_SKIPPED();
	map_ctx_init(&m, "MAP_DMA_DEFERRED", VFIO_IOMMU_MAP_DMA_DEFERRED, DRW,
		     ADEF_IOVA, half_touched(_metadata, self, ADEF_SIZE),
		     ADEF_SIZE);
	p.name = m.name;
	sweep(_metadata, self, &p, &m);
	expect_state(_metadata, self, &self->base, &same, "end");
}

TEST_F_TIMEOUT(fail_nth, map_deferred_now, 900)
{
	struct map_ctx m;
	struct path p = map_path;

	RETURN_IF_SKIPPED();
	map_ctx_init(&m, "MAP_DMA_DEFERRED NOW", VFIO_IOMMU_MAP_DMA_DEFERRED,
		     DNOW, A4K_IOVA, half_touched(_metadata, self, A4K_SIZE),
		     A4K_SIZE);
	p.name = m.name;
	sweep(_metadata, self, &p, &m);
	expect_state(_metadata, self, &self->base, &same, "end");
}

/* --- UNMAP_DMA ------------------------------------------------------------ */

struct unmap_ctx {
	struct map_ctx m;	/* the mapping to take down */
	struct vfio_iommu_type1_dma_unmap arg;
};

static void unmap_prepare(struct __test_metadata *_metadata, fx_t *self,
			  void *ctx)
{
	struct unmap_ctx *u = ctx;
	struct vfio_iommu_async_status st;

	ASSERT_OK(snap_take(self, &u->m.start));
	ASSERT_OK(map_call(self, &u->m));
	if (u->m.cmd == VFIO_IOMMU_MAP_DMA_DEFERRED) {
		ASSERT_OK(vfio_async_wait_settled(self->v.container, &st,
						  SETTLE_MS));
		ASSERT_EQ(u->m.size, st.mapped_bytes);
	}
	memset(&u->arg, 0, sizeof(u->arg));
	u->arg.argsz = sizeof(u->arg);
	u->arg.iova = u->m.iova;
	u->arg.size = u->m.size;
}

static int unmap_call(fx_t *self, void *ctx)
{
	struct unmap_ctx *u = ctx;

	return ioctl(self->v.container, VFIO_IOMMU_UNMAP_DMA, &u->arg) ?
	       -errno : 0;
}

/* Nothing was taken down: the mapping works as before; then unmap it. */
static void unmap_failed(struct __test_metadata *_metadata, fx_t *self,
			 void *ctx, const struct snap *before)
{
	struct unmap_ctx *u = ctx;
	uint64_t n = 0;

	expect_state(_metadata, self, before, NULL, u->m.name);
	expect_mapped(_metadata, self, u->m.iova, u->m.va, u->m.size,
		      u->m.name);
	ASSERT_OK(vfio_unmap(self->v.container, u->m.iova, u->m.size, 0, &n));
	expect_state(_metadata, self, &u->m.start, &u->m.residue, u->m.name);
}

static void unmap_done(struct __test_metadata *_metadata, fx_t *self,
		       void *ctx, const struct snap *before)
{
	struct unmap_ctx *u = ctx;

	EXPECT_EQ(u->m.size, u->arg.size);
	expect_state(_metadata, self, &u->m.start, &u->m.residue, u->m.name);
	expect_unmapped(_metadata, self, u->m.iova, u->m.va, u->m.size,
			u->m.name);
}

static const struct path unmap_path = {
	.prepare = unmap_prepare, .call = unmap_call,
	.failed = unmap_failed, .done = unmap_done,
};

TEST_F_TIMEOUT(fail_nth, unmap_dma, 900)
{
	struct unmap_ctx u;
	struct path p = unmap_path;

	RETURN_IF_SKIPPED();
	map_ctx_init(&u.m, "UNMAP_DMA", VFIO_IOMMU_MAP_DMA, VFIO_RW, A4K_IOVA,
		     half_touched(_metadata, self, A4K_SIZE), A4K_SIZE);
	p.name = u.m.name;
	sweep(_metadata, self, &p, &u);
	expect_state(_metadata, self, &self->base, &same, "end");
}

TEST_F_TIMEOUT(fail_nth, unmap_deferred, 900)
{
	struct unmap_ctx u;
	struct path p = unmap_path;

	RETURN_IF_SKIPPED();
	map_ctx_init(&u.m, "UNMAP_DMA deferred", VFIO_IOMMU_MAP_DMA_DEFERRED,
		     DRW, ADEF_IOVA, half_touched(_metadata, self, ADEF_SIZE),
		     ADEF_SIZE);
	p.name = u.m.name;
	sweep(_metadata, self, &p, &u);
	expect_state(_metadata, self, &self->base, &same, "end");
}

/* --- GET_INFO, GET_STATUS ------------------------------------------------- */

struct query_ctx {
	const char *name;
	union {
		struct vfio_iommu_type1_info info;
		struct vfio_iommu_async_status st;
		uint8_t raw[4096];
	} u;
};

static void info_prepare(struct __test_metadata *_metadata, fx_t *self,
			 void *ctx)
{
	struct query_ctx *q = ctx;

	memset(&q->u, 0, sizeof(q->u));
	q->u.info.argsz = sizeof(q->u);
}

static int info_call(fx_t *self, void *ctx)
{
	struct query_ctx *q = ctx;

	return ioctl(self->v.container, VFIO_IOMMU_GET_INFO, &q->u) ?
	       -errno : 0;
}

static void query_failed(struct __test_metadata *_metadata, fx_t *self,
			 void *ctx, const struct snap *before)
{
	struct query_ctx *q = ctx;

	expect_state(_metadata, self, before, NULL, q->name);
}

static void info_done(struct __test_metadata *_metadata, fx_t *self,
		      void *ctx, const struct snap *before)
{
	struct query_ctx *q = ctx;
	const struct vfio_iommu_type1_info_cap_iova_range *r;
	const struct vfio_iommu_type1_info_dma_avail *a;

	expect_state(_metadata, self, before, NULL, q->name);
	EXPECT_NE(0U, q->u.info.flags & VFIO_IOMMU_INFO_PGSIZES);
	EXPECT_NE(0U, q->u.info.flags & VFIO_IOMMU_INFO_CAPS);
	EXPECT_NE(0ULL, q->u.info.iova_pgsizes & P);
	r = (const void *)vfio_info_cap(&q->u.info,
					VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	a = (const void *)vfio_info_cap(&q->u.info,
					VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, a);
	EXPECT_LT(0U, r->nr_iovas);
	EXPECT_LT(0U, a->avail);
}

TEST_F_TIMEOUT(fail_nth, get_info, 300)
{
	static struct query_ctx q = { .name = "GET_INFO" };
	const struct path p = {
		.name = q.name, .prepare = info_prepare, .call = info_call,
		.failed = query_failed, .done = info_done,
	};

	RETURN_IF_SKIPPED();
	sweep(_metadata, self, &p, &q);
	expect_state(_metadata, self, &self->base, &same, "end");
}

static void status_prepare(struct __test_metadata *_metadata, fx_t *self,
			   void *ctx)
{
	struct query_ctx *q = ctx;

	memset(&q->u, 0, sizeof(q->u));
	q->u.st.argsz = sizeof(q->u.st);
}

static int status_call(fx_t *self, void *ctx)
{
	struct query_ctx *q = ctx;

	return ioctl(self->v.container, VFIO_IOMMU_ASYNC_GET_STATUS, &q->u) ?
	       -errno : 0;
}

static void status_done(struct __test_metadata *_metadata, fx_t *self,
			void *ctx, const struct snap *before)
{
	struct query_ctx *q = ctx;

	expect_state(_metadata, self, before, NULL, q->name);
	EXPECT_EQ((uint64_t)before->k[K_PINNED], q->u.st.pinned_pages);
	EXPECT_EQ((uint64_t)before->k[K_SYNC], q->u.st.sync_bytes);
}

TEST_F_TIMEOUT(fail_nth, get_status, 300)
{
	static struct query_ctx q = { .name = "ASYNC_GET_STATUS" };
	const struct path p = {
		.name = q.name, .prepare = status_prepare, .call = status_call,
		.failed = query_failed, .done = status_done,
	};

	RETURN_IF_SKIPPED();
	sweep(_metadata, self, &p, &q);
	expect_state(_metadata, self, &self->base, &same, "end");
}

/* --- the balloon channel ------------------------------------------------- */

struct chan_ctx {
	const char *name;
	struct vfio_iommu_async_channel_create cr;
	int kick, call;
};

static void chan_prepare(struct __test_metadata *_metadata, fx_t *self,
			 void *ctx)
{
	struct chan_ctx *q = ctx;

	q->cr = (struct vfio_iommu_async_channel_create){
		.argsz = sizeof(q->cr), .kick_fd = q->kick, .call_fd = q->call,
		.sq_entries = 64,
	};
}

static int chan_call(fx_t *self, void *ctx)
{
	struct chan_ctx *q = ctx;
	int fd = ioctl(self->v.container, VFIO_IOMMU_ASYNC_CHANNEL_CREATE,
		       &q->cr);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static void chan_failed(struct __test_metadata *_metadata, fx_t *self,
			void *ctx, const struct snap *before)
{
	expect_state(_metadata, self, before, NULL, ((struct chan_ctx *)ctx)->name);
}

static void chan_done(struct __test_metadata *_metadata, fx_t *self,
		      void *ctx, const struct snap *before)
{
	struct chan_ctx *q = ctx;

	expect_state(_metadata, self, before, NULL, q->name);
	EXPECT_LT(0ULL, q->cr.mmap_size);
}

TEST_F_TIMEOUT(fail_nth, channel_create, 300)
{
	static struct chan_ctx q = { .name = "CHANNEL_CREATE" };
	const struct path p = {
		.name = q.name, .prepare = chan_prepare, .call = chan_call,
		.failed = chan_failed, .done = chan_done,
	};

	RETURN_IF_SKIPPED();
	q.kick = eventfd(0, EFD_CLOEXEC);
	q.call = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, q.kick);
	ASSERT_LE(0, q.call);
	sweep(_metadata, self, &p, &q);
	close(q.kick);
	close(q.call);
	expect_state(_metadata, self, &self->base, &same, "end");
}

/*
 * MAP_NOW of a range kept pending behind a delayer: the registration of
 * its waits, and the pinning its caller does while it helps, may fail.
 * The target is faulted in beforehand, so that the allocations counted
 * are the module's and the IOMMU's, not a thousand page faults'.
 */
#define NOW_DELAY	(64 * MiB)
#define NOW_DELAY_IOVA	(IOVA_HI + 512 * MiB)

struct now_ctx {
	const char *name;
	uint8_t *delay, *va;
	struct vfio_iommu_async_range r;
	struct vfio_iommu_async_map_now mn;
};

static void now_prepare(struct __test_metadata *_metadata, fx_t *self,
			void *ctx)
{
	struct now_ctx *q = ctx;

	/* A fresh delayer below: the target stays pending. */
	madvise(q->delay, NOW_DELAY, MADV_DONTNEED);
	memset(q->va, 0x5a, ADEF_SIZE);
	ASSERT_OK(vfio_map_deferred(self->v.container, ADEF_IOVA, q->delay,
				    NOW_DELAY, DRW));
	ASSERT_OK(vfio_map_deferred(self->v.container, NOW_DELAY_IOVA, q->va,
				    ADEF_SIZE, DRW));
	q->mn = (struct vfio_iommu_async_map_now){
		.argsz = sizeof(q->mn), .nr_ranges = 1,
		.ranges = (uintptr_t)&q->r,
	};
}

static int now_call(fx_t *self, void *ctx)
{
	struct now_ctx *q = ctx;

	return ioctl(self->v.container, VFIO_IOMMU_ASYNC_MAP_NOW, &q->mn) ?
	       -errno : 0;
}

/* Mapped by DMA, then everything down and back to the fixture's start. */
static void now_check_and_undo(struct __test_metadata *_metadata, fx_t *self,
			       struct now_ctx *q)
{
	struct vfio_iommu_async_status st;
	uint64_t n;

	expect_mapped(_metadata, self, NOW_DELAY_IOVA, q->va, ADEF_SIZE,
		      q->name);
	ASSERT_OK(vfio_unmap(self->v.container, ADEF_IOVA, NOW_DELAY, 0, &n));
	ASSERT_OK(vfio_unmap(self->v.container, NOW_DELAY_IOVA, ADEF_SIZE, 0,
			     &n));
	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);
	expect_state(_metadata, self, &self->base, &same, q->name);
}

static void now_failed(struct __test_metadata *_metadata, fx_t *self,
		       void *ctx, const struct snap *before)
{
	struct now_ctx *q = ctx;
	struct vfio_iommu_async_status st;

	ASSERT_OK(vfio_async_status(self->v.container, &st));
	EXPECT_TRUE(vfio_async_adds_up(&st));
	/* A chunk that failed is tried again by the next MAP_NOW. */
	ASSERT_OK(now_call(self, q));
	now_check_and_undo(_metadata, self, q);
}

static void now_done(struct __test_metadata *_metadata, fx_t *self,
		     void *ctx, const struct snap *before)
{
	now_check_and_undo(_metadata, self, ctx);
}

TEST_F_TIMEOUT(fail_nth, map_now_pending, 1200)
{
	static struct now_ctx q = { .name = "MAP_NOW pending" };
	const struct path p = {
		.name = q.name, .prepare = now_prepare, .call = now_call,
		.failed = now_failed, .done = now_done,
	};

	RETURN_IF_SKIPPED();
	q.delay = anon(self, NOW_DELAY);
	q.va = anon(self, ADEF_SIZE);
	ASSERT_NE(NULL, q.delay);
	ASSERT_NE(NULL, q.va);
	q.r = (struct vfio_iommu_async_range){ NOW_DELAY_IOVA, ADEF_SIZE };
	sweep(_metadata, self, &p, &q);
	expect_state(_metadata, self, &self->base, &same, "end");
}

/* --- group attach --------------------------------------------------------- */

static const char *group2_missing(void)
{
	return getenv("VFIO_GROUP2") && getenv("VFIO_BDF2") ? NULL :
	       "no second device (VFIO_GROUP2/VFIO_BDF2 unset)";
}

/* Wait for a closed container of ours to be released. */
static void expect_containers(struct __test_metadata *_metadata, long want)
{
	int waited = 0;

	while (async_containers() != want && waited < RELEASE_MS) {
		usleep(10000);
		waited += 10;
	}
	EXPECT_EQ(want, async_containers());
}

struct attach_ctx {
	const char *name;
	bool set_iommu;		/* inject into SET_IOMMU, not SET_CONTAINER */
	uint8_t *va;		/* a buffer for the new container's check */
};

/* A new container; SET_CONTAINER already done when SET_IOMMU is tested. */
static void attach_prepare(struct __test_metadata *_metadata, fx_t *self,
			   void *ctx)
{
	struct attach_ctx *a = ctx;

	self->container2 = vfio_container_new();
	ASSERT_LE(0, self->container2);
	if (a->set_iommu)
		ASSERT_OK(vfio_group_set_container(self->group2,
						   self->container2));
}

static int attach_call(fx_t *self, void *ctx)
{
	struct attach_ctx *a = ctx;

	if (a->set_iommu)
		return ioctl(self->container2, VFIO_SET_IOMMU,
			     VFIO_ASYNC_IOMMU) ? -errno : 0;
	return ioctl(self->group2, VFIO_GROUP_SET_CONTAINER,
		     &self->container2) ? -errno : 0;
}

/* No container of ours came to be; the group can be set up again. */
static void attach_failed(struct __test_metadata *_metadata, fx_t *self,
			  void *ctx, const struct snap *before)
{
	struct attach_ctx *a = ctx;

	expect_state(_metadata, self, before, NULL, a->name);
	if (a->set_iommu)
		EXPECT_OK(vfio_group_unset_container(self->group2));
	ASSERT_OK(close_fd(&self->container2));
	expect_containers(_metadata, before->containers);
}

/* The new container works: map a buffer, DMA through the second edu. */
static void attach_done(struct __test_metadata *_metadata, fx_t *self,
			void *ctx, const struct snap *before)
{
	struct attach_ctx *a = ctx;
	const struct delta one = { .containers = 1, .ever = true };
	uint8_t data[XFER];
	uint64_t n = 0;

	if (!a->set_iommu)
		ASSERT_OK(vfio_set_iommu(self->container2, VFIO_ASYNC_IOMMU));
	expect_state(_metadata, self, before, &one, a->name);
	self->device2 = vfio_device_get(self->group2, getenv("VFIO_BDF2"));
	ASSERT_LE(0, self->device2);
	ASSERT_OK(edu_open(&self->edu2, self->device2));
	ASSERT_OK(edu_scratch_map(&self->edu2, self->container2,
				  IOVA_SCRATCH));
	ASSERT_OK(vfio_map(self->container2, IOVA_BASE, a->va, 2 * P,
			   VFIO_RW));
	pattern_fill(data, XFER, 0xa77ac4);
	ASSERT_OK(edu_buf_write(&self->edu2, 0, data, XFER));
	ASSERT_OK(edu_dma(&self->edu2, IOVA_BASE + P + 100, 0, XFER, true));
	EXPECT_EQ(0, memcmp(a->va + P + 100, data, XFER));
	ASSERT_OK(vfio_unmap(self->container2, IOVA_BASE, 2 * P, 0, &n));

	edu_close(&self->edu2);
	ASSERT_OK(close_fd(&self->device2));
	EXPECT_OK(vfio_group_unset_container(self->group2));
	ASSERT_OK(close_fd(&self->container2));
	expect_containers(_metadata, before->containers);
	expect_state(_metadata, self, before, NULL, a->name);
}

static void attach_sweep(struct __test_metadata *_metadata, fx_t *self,
			 bool set_iommu)
{
	struct attach_ctx a = {
		.name = set_iommu ? "SET_IOMMU (new container)" :
				    "SET_CONTAINER (new container)",
		.set_iommu = set_iommu,
	};
	const struct path p = {
		.name = a.name, .prepare = attach_prepare, .call = attach_call,
		.failed = attach_failed, .done = attach_done,
	};

	a.va = anon(self, 2 * P);
	ASSERT_NE(NULL, a.va);
	self->group2 = vfio_group_open(getenv("VFIO_GROUP2"));
	ASSERT_LE(0, self->group2);
	sweep(_metadata, self, &p, &a);
	expect_state(_metadata, self, &self->base, &same, "end");
}

TEST_F_TIMEOUT(fail_nth, attach_set_container, 900)
{
	RETURN_IF_SKIPPED();
	if (group2_missing())
		SKIP(return, "%s", group2_missing());
	attach_sweep(_metadata, self, false);
}

TEST_F_TIMEOUT(fail_nth, attach_set_iommu, 900)
{
	RETURN_IF_SKIPPED();
	if (group2_missing())
		SKIP(return, "%s", group2_missing());
	attach_sweep(_metadata, self, true);
}

/* A second group joins the fixture's container, which has mappings. */
struct join_ctx {
	const char *name;
	uint8_t *sync_va, *def_va;
};

static int join_call(fx_t *self, void *ctx)
{
	return ioctl(self->group2, VFIO_GROUP_SET_CONTAINER,
		     &self->v.container) ? -errno : 0;
}

/* The container is as it was, its mappings still work through edu 1. */
static void join_failed(struct __test_metadata *_metadata, fx_t *self,
			void *ctx, const struct snap *before)
{
	struct join_ctx *j = ctx;

	expect_state(_metadata, self, before, NULL, j->name);
	expect_lands(_metadata, self, A4K_IOVA + A4K_SIZE - P,
		     j->sync_va + A4K_SIZE - P, j->name);
	expect_lands(_metadata, self, ADEF_IOVA + ADEF_SIZE - P,
		     j->def_va + ADEF_SIZE - P, j->name);
}

/* edu 2 reaches both mappings; leaving again changes nothing. */
static void join_done(struct __test_metadata *_metadata, fx_t *self,
		      void *ctx, const struct snap *before)
{
	struct join_ctx *j = ctx;
	const uint64_t from = A4K_IOVA + 3 * P + 40;
	const uint64_t to = ADEF_IOVA + 2 * CHUNK - P + 80;
	uint8_t *from_va = j->sync_va + 3 * P + 40;
	uint8_t *to_va = j->def_va + 2 * CHUNK - P + 80;
	uint8_t old[XFER];

	expect_state(_metadata, self, before, NULL, j->name);
	self->device2 = vfio_device_get(self->group2, getenv("VFIO_BDF2"));
	ASSERT_LE(0, self->device2);
	ASSERT_OK(edu_open(&self->edu2, self->device2));
	/* RAM -> edu 2 from the sync mapping, edu 2 -> RAM into the other. */
	memcpy(old, to_va, XFER);
	ASSERT_OK(edu_dma(&self->edu2, from, 0, XFER, false));
	ASSERT_OK(edu_dma(&self->edu2, to, 0, XFER, true));
	EXPECT_EQ(0, memcmp(to_va, from_va, XFER));
	memcpy(to_va, old, XFER);
	edu_close(&self->edu2);
	ASSERT_OK(close_fd(&self->device2));
	ASSERT_OK(vfio_group_unset_container(self->group2));

	expect_state(_metadata, self, before, NULL, j->name);
	expect_lands(_metadata, self, A4K_IOVA, j->sync_va, j->name);
	expect_lands(_metadata, self, ADEF_IOVA, j->def_va, j->name);
}

TEST_F_TIMEOUT(fail_nth, attach_join_mapped, 900)
{
	struct join_ctx j = { .name = "SET_CONTAINER (join, mapped)" };
	const struct path p = {
		.name = j.name, .call = join_call, .failed = join_failed,
		.done = join_done,
	};
	struct vfio_iommu_async_status st;
	uint64_t n = 0;

	RETURN_IF_SKIPPED();
	if (group2_missing())
		SKIP(return, "%s", group2_missing());
	j.sync_va = half_touched(_metadata, self, A4K_SIZE);
	j.def_va = half_touched(_metadata, self, ADEF_SIZE);
	ASSERT_OK(vfio_map(self->v.container, A4K_IOVA, j.sync_va, A4K_SIZE,
			   VFIO_RW));
	ASSERT_OK(vfio_map_deferred(self->v.container, ADEF_IOVA, j.def_va, ADEF_SIZE,
		       DRW));
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, SETTLE_MS));
	ASSERT_EQ(ADEF_SIZE, st.mapped_bytes);
	self->group2 = vfio_group_open(getenv("VFIO_GROUP2"));
	ASSERT_LE(0, self->group2);

	sweep(_metadata, self, &p, &j);

	ASSERT_OK(vfio_unmap(self->v.container, A4K_IOVA, A4K_SIZE, 0, &n));
	EXPECT_EQ(A4K_SIZE, n);
	ASSERT_OK(vfio_unmap(self->v.container, ADEF_IOVA, ADEF_SIZE, 0, &n));
	EXPECT_EQ(ADEF_SIZE, n);
	expect_state(_metadata, self, &self->base, &same, "end");
}

/* ========================================================================= */
/* 2. The background                                                         */
/* ========================================================================= */

/*
 * Map BG_CHUNKS chunks deferred while fault point @point fails its @k-th
 * call and the @times - 1 after it (@times -1: every call from the k-th).
 */
static void background_case(struct __test_metadata *_metadata, fx_t *self,
			    const char *point, enum mem_backing backing,
			    unsigned int k, int times)
{
	const long nfail = times < 0 ? BG_CHUNKS : times;
	struct vfio_iommu_async_status st;
	struct snap start;
	struct mem_buf mb;
	struct delta d = { .ever = true };
	char val[32], fe[64], want[64], path[PATH_MAX + 16];
	unsigned int j, blocked = 0;
	uint64_t n = 0;
	uint8_t *va;
	long left;
	int ret;

	snprintf(self->point.dir, sizeof(self->point.dir), ASYNC_FAULTS "/%s",
		 point);
	if (access(self->point.dir, F_OK))
		SKIP(return, "%s: the module has no fault points (needs CONFIG_FAULT_INJECTION_DEBUG_FS)",
		     self->point.dir);

	ret = mem_alloc(&mb, backing, BG_SIZE);
	if (ret == -ENOTSUP)
		SKIP(return, "no transparent huge pages");
	ASSERT_OK(ret);
	self->maps[ARRAY_SIZE(self->maps) - 1].p = mb.map_base;
	self->maps[ARRAY_SIZE(self->maps) - 1].n = mb.map_len;
	va = mb.va;
	pattern_fill_pages(va, BG_SIZE, 0xb6 + k);
	ASSERT_OK(snap_take(self, &start));

	/* times 0 first: the point stays off until "times" arms it. */
	ASSERT_OK(knob_set(&self->point, "times", "0"));
	ASSERT_OK(knob_set(&self->point, "verbose", "1"));
	ASSERT_OK(knob_set(&self->point, "task-filter", "N"));
	ASSERT_OK(knob_set(&self->point, "interval", "1"));
	snprintf(val, sizeof(val), "%u", k);
	ASSERT_OK(knob_set(&self->point, "space", val));
	ASSERT_OK(knob_set(&self->point, "probability", "100"));
	snprintf(val, sizeof(val), "%d", times);
	ASSERT_OK(knob_set(&self->point, "times", val));

	ASSERT_OK(vfio_map_deferred(self->v.container, BG_IOVA, va, BG_SIZE, DRW));
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, SETTLE_MS));
	ASSERT_OK(knob_get(&self->point, "times", &left));
	knobs_restore(&self->point);
	if (times > 0)
		EXPECT_EQ(0, left);	/* every failure asked for happened */

	TH_LOG("%s space=%u times=%d: failed %llu of %d chunks, first_error %d at 0x%llx",
	       point, k, times,
	       (unsigned long long)(st.failed_bytes / CHUNK), BG_CHUNKS,
	       st.first_error, (unsigned long long)st.first_error_iova);
	EXPECT_EQ(BG_SIZE, st.deferred_bytes);
	EXPECT_EQ(nfail * CHUNK, st.failed_bytes);
	EXPECT_EQ(BG_SIZE - nfail * CHUNK, st.mapped_bytes);
	EXPECT_EQ(-ENOMEM, st.first_error);
	EXPECT_EQ(0ULL, (st.first_error_iova - BG_IOVA) % CHUNK);
	EXPECT_GT(BG_SIZE, st.first_error_iova - BG_IOVA);
	snprintf(path, sizeof(path), "%s/first_error", self->dir);
	ASSERT_OK(sysfs_read(path, fe, sizeof(fe)));
	snprintf(want, sizeof(want), "%d 0x%llx", st.first_error,
		 (unsigned long long)st.first_error_iova);
	EXPECT_STREQ(want, fe);

	d.pins = (BG_SIZE - nfail * CHUNK) / P;
	d.lck = BG_SIZE >> 10;
	d.k[K_DEFERRED] = BG_SIZE;
	d.k[K_MAPPED] = BG_SIZE - nfail * CHUNK;
	d.k[K_FAILED] = nfail * CHUNK;
	d.k[K_PINNED] = d.pins;
	d.k[K_CHUNKS] = BG_CHUNKS - nfail;
	d.k[K_ERRORS] = nfail;
	expect_state(_metadata, self, &start, &d, "settled");

	/* Each chunk: a failed one is not mapped at all, the rest are. */
	for (j = 0; j < BG_CHUNKS; j++) {
		uint64_t off = j * CHUNK + (j + 1) * 3 * P + 8 * j;
		int r = probe_write(&self->edu, self->probe, BG_IOVA + off,
				    va + off);

		ASSERT_LE(0, r);
		if (r)
			expect_reads(_metadata, self, BG_IOVA + off + 1000,
				     va + off + 1000, "mapped chunk");
		/* And the ends of the chunk. */
		ret = probe_write(&self->edu, self->probe, BG_IOVA + j * CHUNK,
				  va + j * CHUNK);
		EXPECT_EQ(r, ret);
		ret = probe_write(&self->edu, self->probe,
				  BG_IOVA + (j + 1) * CHUNK - XFER,
				  va + (j + 1) * CHUNK - XFER);
		EXPECT_EQ(r, ret);
		if (!r) {
			blocked++;
			TH_LOG("chunk %u (0x%llx) failed", j,
			       (unsigned long long)(BG_IOVA + j * CHUNK));
			if (j * CHUNK == st.first_error_iova - BG_IOVA)
				TH_LOG("... it is first_error's");
		} else {
			EXPECT_NE(j * CHUNK, st.first_error_iova - BG_IOVA);
		}
	}
	EXPECT_EQ(nfail, blocked);
	/* One thread claims and pins chunks strictly in order. */
	if (self->nthreads == 1 && !strcmp(point, "fail_chunk_pin"))
		EXPECT_EQ((k ? k - 1 : 0) * CHUNK,
			  st.first_error_iova - BG_IOVA);

	ASSERT_OK(vfio_unmap(self->v.container, BG_IOVA, BG_SIZE, 0, &n));
	EXPECT_EQ(BG_SIZE, n);
	memset(&d, 0, sizeof(d));
	d.ever = true;
	d.k[K_CHUNKS] = BG_CHUNKS - nfail;
	d.k[K_ERRORS] = nfail;
	expect_state(_metadata, self, &start, &d, "after unmap");
	expect_blocked(_metadata, self, BG_IOVA + 5 * P, va + 5 * P,
		       "after unmap");
}

TEST_F_TIMEOUT(fail_nth, background_pin_1st, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_pin", MEM_ANON, 1, 1);
}

TEST_F_TIMEOUT(fail_nth, background_pin_2nd, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_pin", MEM_ANON, 2, 1);
}

TEST_F_TIMEOUT(fail_nth, background_pin_4th_and_5th, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_pin", MEM_ANON, 4, 2);
}

TEST_F_TIMEOUT(fail_nth, background_pin_all, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_pin", MEM_ANON, 1, -1);
}

/* 4 KiB pages: several runs per chunk, so a later run fails mid-chunk. */
TEST_F_TIMEOUT(fail_nth, background_map_1st, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_map", MEM_ANON, 1, 1);
}

TEST_F_TIMEOUT(fail_nth, background_map_7th, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_map", MEM_ANON, 7, 1);
}

/* THP: one run per chunk. */
TEST_F_TIMEOUT(fail_nth, background_map_thp_3rd_and_4th, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_map", MEM_THP, 3, 2);
}

TEST_F_TIMEOUT(fail_nth, background_map_all, 300)
{
	RETURN_IF_SKIPPED();
	background_case(_metadata, self, "fail_chunk_map", MEM_ANON, 1, -1);
}

TEST_HARNESS_MAIN
