// SPDX-License-Identifier: GPL-2.0
/*
 * security: what an unprivileged holder of a container can and cannot make
 * the kernel do.
 *
 *   rlimit_sync_and_deferred   RLIMIT_MEMLOCK bounds the sum of the sync and
 *                              the deferred bytes (and mlock()ed memory):
 *                              ENOMEM past it, through every ioctl, with
 *                              nothing charged or pinned by a refusal; a
 *                              64 GiB deferred map is refused under a small
 *                              limit and allowed (charged whole, at once)
 *                              under a big one
 *   vaddr_is_the_callers       a vaddr valid only in another process is
 *                              EFAULT; the same vaddr valid in both maps the
 *                              caller's page (edu DMA lands in the caller's
 *                              memory, not the other's)
 *   scm_rights_receiver_pays   a container fd received over a unix socket:
 *                              the receiver's mappings pin the receiver's
 *                              memory and are charged to it (its VmLck, its
 *                              RLIMIT_MEMLOCK, though the sender is root);
 *                              the sender's VmLck does not move; DMA lands
 *                              in the receiver's pages
 *   entry_limit_and_slab       dma_entry_limit bounds the entries (ENOSPC,
 *                              DMA_AVAIL 0) however small they are; the
 *                              kernel memory of an entry is bounded (Slab
 *                              per entry, and for a 64 GiB one); 10000
 *                              map/unmap cycles leave Slab within a small
 *                              slack and every counter at 0
 *   no_pin_after_mm_gone       a child makes a deferred map behind a big
 *                              "delayer", hands the container and group fds
 *                              to its parent (SCM_RIGHTS) and exits: chunks
 *                              claimed after that fail with -ESRCH
 *                              (first_error), failed_bytes grows, and
 *                              pinned_pages grows by no more than the chunks
 *                              that were in flight at the exit
 *
 * The unprivileged side is a forked child that opens the group and the
 * container as root, sets RLIMIT_MEMLOCK, then drops to uid/gid 65534 (so
 * it has no CAP_IPC_LOCK); it reports back through a pipe. Each test ends
 * with every pin back (nr_foll_pin_*), no container left, and the module's
 * counters at 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P		PAGE_4K
#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define CHUNK		SZ_2M
#define IOVA_HI		0x100000000ULL
#define IOVA_HUGE	(64 * GiB)	/* 64 GiB at 64 GiB: inside VT-d's 39 bits */
#define SETTLE_MS	120000
#define RELEASE_MS	20000
#define XFER		64
#define DRW	(VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE)
#define DNOW	(DRW | VFIO_ASYNC_MAP_FLAG_NOW)

/* --- helpers -------------------------------------------------------------- */

/* Send / receive file descriptors over a unix socket. */
static int send_fds(int sock, const int *fds, int n)
{
	char buf[CMSG_SPACE(4 * sizeof(int))] = { 0 }, c = 'F';
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static int recv_fds(int sock, int *fds, int n)
{
	char buf[CMSG_SPACE(4 * sizeof(int))], c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct cmsghdr *cm;

	if (recvmsg(sock, &msg, 0) != 1)
		return -EIO;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return -EPROTO;
	memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
	return 0;
}

/* In a child with the pipe end @wr: report what went wrong and exit 1. */
#define CHILD_EXPECT(cond, ...) do {					\
	if (!(cond)) {							\
		report(wr, __VA_ARGS__);				\
		_exit(1);						\
	}								\
} while (0)

static long vmlck(pid_t pid)
{
	long kb = -1;

	if (vmlck_kb(pid, &kb))
		return -1;
	return kb;
}

/* --- fixture -------------------------------------------------------------- */

FIXTURE(security) {
	long pins0;
	long limit_old;
};

FIXTURE_SETUP(security)
{
	const char *why = vfio_env_missing(VFIO_ASYNC_IOMMU);
	char what[128];

	self->limit_old = -1;
	if (why)
		SKIP(return, "%s", why);
	if (getuid())
		SKIP(return, "needs root (to drop privileges in children)");
	ASSERT_OK(pins_outstanding(&self->pins0));
	if (async_wait_clean(self->pins0, RELEASE_MS, what, sizeof(what)))
		TH_LOG("not clean at the start: %s", what);
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_EQ(0, async_containers());
}

FIXTURE_TEARDOWN(security)
{
	char what[128] = "";

	if (self->limit_old >= 0)
		sysfs_write_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
				 self->limit_old);
	if (_metadata->skip)
		return;
	if (async_wait_clean(self->pins0, RELEASE_MS, what, sizeof(what)))
		TH_LOG("left behind: %s", what);
	EXPECT_EQ(0, async_wait_clean(self->pins0, RELEASE_MS, what,
				      sizeof(what)));
}

/* --- 1. RLIMIT_MEMLOCK: sync + deferred ----------------------------------- */

static void rlimit_child(int wr)
{
	const uint64_t L = 16 * MiB;
	struct vfio_iommu_async_status st;
	uint8_t *m, *huge;
	struct vfio_dev v;
	uint64_t n;
	long base;
	int c, ret;

	m = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	/* 64 GiB of address space: its VMA passes the deferred checks. */
	huge = mmap(NULL, 64 * GiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHILD_EXPECT(m != MAP_FAILED && huge != MAP_FAILED, "mmap: %s",
		     strerror(errno));
	ret = vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL, VFIO_ASYNC_IOMMU);
	CHILD_EXPECT(!ret, "%s: %s", v.step, strerror(-ret));
	ret = drop_privileges(L);
	CHILD_EXPECT(!ret, "drop privileges: %s", strerror(-ret));
	c = v.container;
	base = vmlck(0);

	/* 10 MiB deferred + 4 MiB sync = 14 of 16. */
	ret = vfio_map_deferred(c, IOVA_HI, m, 10 * MiB, DRW);
	CHILD_EXPECT(!ret, "deferred 10 MiB: %s", strerror(-ret));
	CHILD_EXPECT(vmlck(0) - base == 10 << 10,
		     "VmLck %+ld kB after a 10 MiB deferred map (charged at once)",
		     vmlck(0) - base);
	ret = vfio_map(c, IOVA_HI + 16 * MiB, m + 10 * MiB, 4 * MiB, VFIO_RW);
	CHILD_EXPECT(!ret, "sync 4 MiB: %s", strerror(-ret));
	/* 4 more MiB in any form: refused, nothing charged or pinned. */
	ret = vfio_map_deferred(c, IOVA_HI + 32 * MiB, m + 14 * MiB, 4 * MiB, DRW);
	CHILD_EXPECT(ret == -ENOMEM, "deferred past the limit: %s",
		     ret ? strerror(-ret) : "success");
	ret = vfio_map(c, IOVA_HI + 32 * MiB, m + 14 * MiB, 4 * MiB, VFIO_RW);
	CHILD_EXPECT(ret == -ENOMEM, "sync past the limit: %s",
		     ret ? strerror(-ret) : "success");
	ret = vfio_map_deferred(c, IOVA_HI + 32 * MiB, m + 14 * MiB, 4 * MiB, DNOW);
	CHILD_EXPECT(ret == -ENOMEM, "NOW past the limit: %s",
		     ret ? strerror(-ret) : "success");
	CHILD_EXPECT(vmlck(0) - base == 14 << 10, "VmLck %+ld kB after refusals",
		     vmlck(0) - base);
	ret = vfio_async_status(c, &st);
	CHILD_EXPECT(!ret && st.deferred_bytes == 10 * MiB &&
		     st.sync_bytes == 4 * MiB,
		     "status after refusals: deferred %llu sync %llu",
		     (unsigned long long)st.deferred_bytes,
		     (unsigned long long)st.sync_bytes);
	/* Exactly up to the limit is fine; one page more is not. */
	ret = vfio_map_deferred(c, IOVA_HI + 32 * MiB, m + 14 * MiB, 2 * MiB, DRW);
	CHILD_EXPECT(!ret, "deferred up to the limit: %s", strerror(-ret));
	ret = vfio_map_deferred(c, IOVA_HI + 40 * MiB, m + 16 * MiB, P, DRW);
	CHILD_EXPECT(ret == -ENOMEM, "one page past the limit (deferred): %s",
		     ret ? strerror(-ret) : "success");
	ret = vfio_map(c, IOVA_HI + 40 * MiB, m + 16 * MiB, P, VFIO_RW);
	CHILD_EXPECT(ret == -ENOMEM, "one page past the limit (sync): %s",
		     ret ? strerror(-ret) : "success");
	/* The 64 GiB range: refused, quickly, nothing charged. */
	ret = vfio_map_deferred(c, IOVA_HUGE, huge, 64 * GiB, DRW);
	CHILD_EXPECT(ret == -ENOMEM, "64 GiB deferred under 16 MiB: %s",
		     ret ? strerror(-ret) : "success");
	CHILD_EXPECT(vmlck(0) - base == 16 << 10, "VmLck %+ld kB at the limit",
		     vmlck(0) - base);
	/* Unmapping gives the charge back, and the room to map again. */
	ret = vfio_unmap(c, IOVA_HI, 10 * MiB, 0, &n);
	CHILD_EXPECT(!ret && n == 10 * MiB, "unmap: %s", strerror(-ret));
	CHILD_EXPECT(vmlck(0) - base == 6 << 10, "VmLck %+ld kB after unmap",
		     vmlck(0) - base);
	ret = vfio_map_deferred(c, IOVA_HI, m + 20 * MiB, 10 * MiB, DRW);
	CHILD_EXPECT(!ret, "deferred 10 MiB again: %s", strerror(-ret));
	ret = vfio_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n);
	CHILD_EXPECT(!ret && n == 16 * MiB, "UNMAP_ALL: %llu bytes",
		     (unsigned long long)n);
	CHILD_EXPECT(vmlck(0) == base, "VmLck %+ld kB after UNMAP_ALL",
		     vmlck(0) - base);

	/* mlock()ed memory counts against the same limit. */
	ret = mlock(m + 24 * MiB, 8 * MiB);
	CHILD_EXPECT(!ret, "mlock: %s", strerror(errno));
	ret = vfio_map_deferred(c, IOVA_HI, m, 10 * MiB, DRW);
	CHILD_EXPECT(ret == -ENOMEM, "deferred 10 MiB with 8 MiB mlocked: %s",
		     ret ? strerror(-ret) : "success");
	ret = vfio_map_deferred(c, IOVA_HI, m, 8 * MiB, DRW);
	CHILD_EXPECT(!ret, "deferred 8 MiB with 8 MiB mlocked: %s",
		     strerror(-ret));
	ret = vfio_unmap(c, IOVA_HI, 8 * MiB, 0, &n);
	CHILD_EXPECT(!ret, "unmap: %s", strerror(-ret));
	munlock(m + 24 * MiB, 8 * MiB);
	report(wr, "ok");
	_exit(0);
}

TEST_F_TIMEOUT(security, rlimit_sync_and_deferred, 60)
{
	char msg[256];
	int status;

	RETURN_IF_SKIPPED();
	ASSERT_OK(run_child(rlimit_child, msg, sizeof(msg), &status));
	if (strcmp(msg, "ok"))
		TH_LOG("unprivileged child: %s", msg);
	EXPECT_STREQ("ok", msg);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * A 64 GiB deferred map is allowed when RLIMIT_MEMLOCK allows it: charged
 * in full at the call (VmLck shows 64 GiB), unmapped before the sweep can
 * fault more than a few chunks in.
 */
static void huge_child(int wr)
{
	struct vfio_iommu_async_status st;
	uint8_t *huge;
	struct vfio_dev v;
	uint64_t n;
	long base, slab0, slab;
	int ret;

	huge = mmap(NULL, 64 * GiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHILD_EXPECT(huge != MAP_FAILED, "mmap 64 GiB: %s", strerror(errno));
	ret = vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL, VFIO_ASYNC_IOMMU);
	CHILD_EXPECT(!ret, "%s: %s", v.step, strerror(-ret));
	ret = drop_privileges(64 * GiB + 16 * MiB);
	CHILD_EXPECT(!ret, "drop privileges: %s", strerror(-ret));
	base = vmlck(0);
	CHILD_EXPECT(!meminfo_kb("Slab", &slab0), "meminfo");
	ret = vfio_map_deferred(v.container, IOVA_HUGE, huge, 64 * GiB, DRW);
	CHILD_EXPECT(!ret, "64 GiB deferred under a 64 GiB limit: %s",
		     strerror(-ret));
	CHILD_EXPECT(vmlck(0) - base == (long)(64 * GiB >> 10),
		     "VmLck %+ld kB after a 64 GiB deferred map", vmlck(0) - base);
	CHILD_EXPECT(!meminfo_kb("Slab", &slab), "meminfo");
	ret = vfio_async_status(v.container, &st);
	ret = vfio_unmap(v.container, IOVA_HUGE, 64 * GiB, 0, &n);
	CHILD_EXPECT(!ret && n == 64 * GiB, "unmap 64 GiB: %s", strerror(-ret));
	CHILD_EXPECT(vmlck(0) == base, "VmLck %+ld kB after unmap",
		     vmlck(0) - base);
	/* Its bookkeeping: three bitmaps of 32768 chunks, a few pages. */
	report(wr, "ok %ld %llu", slab - slab0,
	       (unsigned long long)st.mapped_bytes);
	_exit(0);
}

TEST_F_TIMEOUT(security, rlimit_allows_64g_deferred, 60)
{
	unsigned long long mapped = 0;
	long slab_kb = 0;
	char msg[256];
	int status;

	RETURN_IF_SKIPPED();
	ASSERT_OK(run_child(huge_child, msg, sizeof(msg), &status));
	if (strncmp(msg, "ok", 2))
		TH_LOG("unprivileged child: %s", msg);
	ASSERT_EQ(0, strncmp(msg, "ok", 2));
	sscanf(msg, "ok %ld %llu", &slab_kb, &mapped);
	TH_LOG("64 GiB deferred entry: Slab %+ld kB at the call, %llu MiB swept before the unmap",
	       slab_kb, mapped >> 20);
	/* Bounded: well under 1 MiB of kernel memory for the entry. */
	EXPECT_GT(1024, slab_kb);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* --- 2. the vaddr is the caller's ------------------------------------------ */

#define SHARED_VA	((void *)0x6f0000000000ULL)	/* both processes */
#define OTHERS_VA	((void *)0x6f4000000000ULL)	/* the other only */

/*
 * The other process: its own memory at SHARED_VA and OTHERS_VA, filled
 * with its own pattern; waits for the verdict, then checks its memory was
 * not touched by the device.
 */
static void other_child(int rd, int wr)
{
	uint8_t *a, *b;
	ssize_t d;
	char c;

	a = mmap(SHARED_VA, 4 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	b = mmap(OTHERS_VA, 4 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHILD_EXPECT(a == SHARED_VA && b == OTHERS_VA, "mmap fixed: %s",
		     strerror(errno));
	pattern_fill_pages(a, 4 * MiB, 0x07e4);
	pattern_fill_pages(b, 4 * MiB, 0x07e5);
	report(wr, "ready");
	if (read(rd, &c, 1) != 1)
		_exit(1);
	{
		uint8_t *ref = malloc(4 * MiB);

		pattern_fill_pages(ref, 4 * MiB, 0x07e4);
		d = first_diff(a, ref, 4 * MiB);
		CHILD_EXPECT(d < 0, "its memory at the shared vaddr changed at offset 0x%zx",
			     (size_t)d);
		pattern_fill_pages(ref, 4 * MiB, 0x07e5);
		d = first_diff(b, ref, 4 * MiB);
		CHILD_EXPECT(d < 0, "its memory at its own vaddr changed at offset 0x%zx",
			     (size_t)d);
	}
	report(wr, "ok");
	_exit(0);
}

TEST_F_TIMEOUT(security, vaddr_is_the_callers, 60)
{
	int rd, wr, status, c;
	struct vfio_iommu_async_status st;
	struct vfio_dev v;
	struct edu e;
	uint8_t *mine, data[XFER], *ref;
	long pins0, pins, lck0, lck, lck_other;
	char msg[256];
	ssize_t d;
	pid_t pid;

	RETURN_IF_SKIPPED();
	pid = fork_with_pipes(&rd, &wr);
	ASSERT_LE(0, pid);
	if (!pid)
		other_child(rd, wr);
	read_report(rd, msg, sizeof(msg));
	ASSERT_STREQ("ready", msg);

	/* We have our own memory at SHARED_VA, nothing at OTHERS_VA. */
	mine = mmap(SHARED_VA, 4 * MiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ(SHARED_VA, mine);
	pattern_fill_pages(mine, 4 * MiB, 0x3113);
	ref = malloc(4 * MiB);
	ASSERT_NE(NULL, ref);
	memcpy(ref, mine, 4 * MiB);

	edu_init(&e);
	ASSERT_OK(vfio_dev_open_env(&v, VFIO_ASYNC_IOMMU));
	ASSERT_OK(edu_open(&e, v.device));
	ASSERT_OK(edu_scratch_map(&e, v.container, IOVA_SCRATCH));
	c = v.container;
	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));
	ASSERT_OK(vmlck_kb(pid, &lck_other));

	/* Valid only over there: EFAULT, whichever way. */
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_HI, OTHERS_VA, 4 * MiB, VFIO_RW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, OTHERS_VA, 4 * MiB, DRW));
	EXPECT_ERRNO(EFAULT, vfio_map_deferred(c, IOVA_HI, OTHERS_VA, 4 * MiB, DNOW));
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0, pins);

	/* Valid in both: ours is what gets pinned and reached. */
	ASSERT_OK(vfio_map(c, IOVA_HI, SHARED_VA, 2 * MiB, VFIO_RW));
	ASSERT_OK(vfio_map_deferred(c, IOVA_HI + 2 * MiB, (uint8_t *)SHARED_VA + 2 * MiB,
		       2 * MiB, DRW));
	ASSERT_OK(vfio_async_wait_settled(c, &st, SETTLE_MS));
	EXPECT_EQ(2 * MiB, st.mapped_bytes);
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0 + (long)(4 * MiB / P), pins);
	pattern_fill(data, XFER, 0xd0d0);
	ASSERT_OK(edu_buf_write(&e, 0, data, XFER));
	ASSERT_OK(edu_dma(&e, IOVA_HI + 0x1234, 0, XFER, true));
	ASSERT_OK(edu_dma(&e, IOVA_HI + 3 * MiB + 0x567, 0, XFER, true));
	memcpy(ref + 0x1234, data, XFER);
	memcpy(ref + 3 * MiB + 0x567, data, XFER);
	d = first_diff(mine, ref, 4 * MiB);
	if (d >= 0)
		TH_LOG("our memory differs at 0x%zx", (size_t)d);
	EXPECT_EQ(-1, d);
	/* Charged to us; the other process's VmLck never moved. */
	ASSERT_OK(vmlck_kb(0, &lck));
	EXPECT_EQ(lck0 + (long)(4 * MiB >> 10), lck);
	ASSERT_OK(vmlck_kb(pid, &lck));
	EXPECT_EQ(lck_other, lck);

	ASSERT_EQ(1, write(wr, "v", 1));
	read_report(rd, msg, sizeof(msg));
	if (strcmp(msg, "ok"))
		TH_LOG("other process: %s", msg);
	EXPECT_STREQ("ok", msg);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	edu_close(&e);
	vfio_dev_close(&v);
	munmap(mine, 4 * MiB);
	free(ref);
}

/* --- 3. a container fd passed over a unix socket --------------------------- */

/*
 * The receiver: unprivileged, RLIMIT_MEMLOCK 12 MiB; maps its own memory
 * (at a vaddr the sender has nothing at) through the received container:
 * 4 MiB sync + 8 MiB deferred fit, one page more does not. It reports its
 * VmLck, waits for the sender's DMA, checks its memory shows it.
 */
#define RECV_VA	((void *)0x6e0000000000ULL)

static void receiver_child(int sock, int wr)
{
	struct vfio_iommu_async_status st;
	uint8_t *m, *ref, data[XFER];
	long base;
	ssize_t d;
	int c, ret;
	char cmd;

	m = mmap(RECV_VA, 16 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE |
		 MAP_POPULATE, -1, 0);
	ref = malloc(16 * MiB);
	CHILD_EXPECT(m == RECV_VA && ref, "mmap: %s", strerror(errno));
	pattern_fill_pages(m, 16 * MiB, 0x4ec5);
	memcpy(ref, m, 16 * MiB);
	ret = drop_privileges(12 * MiB);
	CHILD_EXPECT(!ret, "drop privileges: %s", strerror(-ret));
	ret = recv_fds(sock, &c, 1);
	CHILD_EXPECT(!ret, "recv_fds: %s", strerror(-ret));
	base = vmlck(0);

	ret = vfio_map(c, IOVA_HI, m, 4 * MiB, VFIO_RW);
	CHILD_EXPECT(!ret, "sync 4 MiB through the received fd: %s",
		     strerror(-ret));
	ret = vfio_map_deferred(c, IOVA_HI + 4 * MiB, m + 4 * MiB, 8 * MiB, DRW);
	CHILD_EXPECT(!ret, "deferred 8 MiB through the received fd: %s",
		     strerror(-ret));
	/* Its own limit, not the (root) sender's absence of one. */
	ret = vfio_map_deferred(c, IOVA_HI + 12 * MiB, m + 12 * MiB, P, DRW);
	CHILD_EXPECT(ret == -ENOMEM, "past the receiver's limit (deferred): %s",
		     ret ? strerror(-ret) : "success");
	ret = vfio_map(c, IOVA_HI + 12 * MiB, m + 12 * MiB, P, VFIO_RW);
	CHILD_EXPECT(ret == -ENOMEM, "past the receiver's limit (sync): %s",
		     ret ? strerror(-ret) : "success");
	CHILD_EXPECT(vmlck(0) - base == 12 << 10, "receiver VmLck %+ld kB",
		     vmlck(0) - base);
	ret = vfio_async_wait_settled(c, &st, SETTLE_MS);
	CHILD_EXPECT(!ret && st.mapped_bytes == 8 * MiB && !st.failed_bytes,
		     "settle: %s, mapped %llu failed %llu", strerror(-ret),
		     (unsigned long long)st.mapped_bytes,
		     (unsigned long long)st.failed_bytes);
	report(wr, "mapped");
	/* The sender DMAs into IOVA_HI + 0x1000 and IOVA_HI + 9 MiB. */
	if (read(sock, &cmd, 1) != 1)
		_exit(1);
	pattern_fill(data, XFER, 0x5c5c);
	memcpy(ref + 0x1000, data, XFER);
	memcpy(ref + 9 * MiB, data, XFER);
	d = first_diff(m, ref, 16 * MiB);
	CHILD_EXPECT(d < 0, "receiver memory at offset 0x%zx is not what the device wrote",
		     (size_t)d);
	report(wr, "ok");
	/* Exits holding nothing but the mappings in the sender's container. */
	_exit(0);
}

TEST_F_TIMEOUT(security, scm_rights_receiver_pays, 60)
{
	struct vfio_iommu_async_status st;
	long pins0, pins, lck0, lck, lck_recv;
	uint8_t *mine, data[XFER];
	int sv[2], pfd[2], status;
	struct vfio_dev v;
	struct edu e;
	char msg[256];
	uint64_t n;
	pid_t pid;

	RETURN_IF_SKIPPED();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[0]);
		close(pfd[0]);
		receiver_child(sv[1], pfd[1]);
	}
	close(sv[1]);
	close(pfd[1]);

	/* The sender (root) has memory of its own at the receiver's vaddr. */
	mine = mmap(RECV_VA, 16 * MiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE |
		    MAP_POPULATE, -1, 0);
	ASSERT_EQ(RECV_VA, mine);
	pattern_fill_pages(mine, 16 * MiB, 0x5e4d);

	edu_init(&e);
	ASSERT_OK(vfio_dev_open_env(&v, VFIO_ASYNC_IOMMU));
	ASSERT_OK(edu_open(&e, v.device));
	ASSERT_OK(edu_scratch_map(&e, v.container, IOVA_SCRATCH));
	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));
	ASSERT_OK(send_fds(sv[0], &v.container, 1));

	read_report(pfd[0], msg, sizeof(msg));
	if (strcmp(msg, "mapped"))
		TH_LOG("receiver: %s", msg);
	ASSERT_STREQ("mapped", msg);
	/* Pinned: 12 MiB of the receiver's; charged: to it alone. */
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0 + (long)(12 * MiB / P), pins);
	ASSERT_OK(vmlck_kb(0, &lck));
	EXPECT_EQ(lck0, lck);
	ASSERT_OK(vmlck_kb(pid, &lck_recv));
	EXPECT_EQ((long)(12 * MiB >> 10), lck_recv);
	ASSERT_OK(vfio_async_status(v.container, &st));
	EXPECT_EQ(4 * MiB + P, st.sync_bytes);
	EXPECT_EQ(8 * MiB, st.deferred_bytes);

	/* The device reaches the receiver's pages, not ours. */
	pattern_fill(data, XFER, 0x5c5c);
	ASSERT_OK(edu_buf_write(&e, 0, data, XFER));
	ASSERT_OK(edu_dma(&e, IOVA_HI + 0x1000, 0, XFER, true));
	ASSERT_OK(edu_dma(&e, IOVA_HI + 9 * MiB, 0, XFER, true));
	{
		uint8_t *ref = malloc(16 * MiB);
		ssize_t d;

		ASSERT_NE(NULL, ref);
		pattern_fill_pages(ref, 16 * MiB, 0x5e4d);
		d = first_diff(mine, ref, 16 * MiB);
		if (d >= 0)
			TH_LOG("the sender's memory changed at 0x%zx", (size_t)d);
		EXPECT_EQ(-1, d);
		free(ref);
	}
	ASSERT_EQ(1, write(sv[0], "d", 1));
	read_report(pfd[0], msg, sizeof(msg));
	if (strcmp(msg, "ok"))
		TH_LOG("receiver: %s", msg);
	EXPECT_STREQ("ok", msg);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Gone, its mappings stay (pinned) in our container until unmapped. */
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0 + (long)(12 * MiB / P), pins);
	ASSERT_OK(vfio_unmap(v.container, IOVA_HI, 12 * MiB, 0, &n));
	EXPECT_EQ(12 * MiB, n);
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0, pins);
	ASSERT_OK(vmlck_kb(0, &lck));
	EXPECT_EQ(lck0, lck);
	edu_close(&e);
	vfio_dev_close(&v);
	close(sv[0]);
	close(pfd[0]);
	munmap(mine, 16 * MiB);
}

/* --- 4. entries: ENOSPC, bounded kernel memory ------------------------------ */

static int set_entry_limit(FIXTURE_DATA(security) *self, long limit)
{
	if (self->limit_old < 0 &&
	    sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
			    &self->limit_old))
		return -EIO;
	return sysfs_write_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
				limit);
}

/* Slab (reclaimable + not) in kB, after letting RCU frees through. */
static long slab_kb(void)
{
	long kb = -1;

	usleep(50000);
	if (slab_settled_kb(&kb))
		return -1;
	return kb;
}

TEST_F_TIMEOUT(security, entry_limit_and_slab, 120)
{
	const int limit = 4096, cycles = 10000;
	struct vfio_iommu_async_status st;
	long slab0, slab_full, slab_end, t0;
	uint32_t avail;
	struct vfio_dev v;
	uint8_t *m;
	uint64_t n;
	int i, ret;

	RETURN_IF_SKIPPED();
	ASSERT_OK(set_entry_limit(self, limit));
	m = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_OK(vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL,
				VFIO_ASYNC_IOMMU));
	slab0 = slab_kb();

	/* As many one-page deferred entries as the limit allows... */
	for (i = 0; i < limit; i++) {
		ret = vfio_map_deferred(v.container, IOVA_HI + (uint64_t)i * 2 * P,
			   m + (i % 512) * P, P, DRW);
		if (ret) {
			TH_LOG("entry %d: %s", i, strerror(-ret));
			break;
		}
	}
	ASSERT_EQ(limit, i);
	/* ...and not one more, whatever the ioctl. */
	EXPECT_ERRNO(ENOSPC, vfio_map_deferred(v.container, IOVA_BASE, m, P, DRW));
	EXPECT_ERRNO(ENOSPC, vfio_map_deferred(v.container, IOVA_BASE, m, P, DNOW));
	EXPECT_ERRNO(ENOSPC, vfio_map(v.container, IOVA_BASE, m, P, VFIO_RW));
	ASSERT_OK(vfio_dma_avail(v.container, &avail));
	EXPECT_EQ(0U, avail);
	ASSERT_OK(vfio_async_wait_settled(v.container, &st, SETTLE_MS));
	EXPECT_EQ((uint64_t)limit * P, st.mapped_bytes);
	slab_full = slab_kb();
	TH_LOG("%d one-page deferred entries: Slab %+ld kB (%ld bytes each)",
	       limit, slab_full - slab0, (slab_full - slab0) * 1024 / limit);
	/* A small, fixed cost per entry: well under 1 KiB. */
	EXPECT_GT(1024 * (long)limit / 1024, slab_full - slab0);
	ASSERT_OK(vfio_unmap(v.container, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ((uint64_t)limit * P, n);
	ASSERT_OK(vfio_dma_avail(v.container, &avail));
	EXPECT_EQ((uint32_t)limit, avail);

	/* Map/unmap cycles, deferred and sync, 4 KiB to 2 MiB: no growth. */
	t0 = now_ms();
	for (i = 0; i < cycles; i++) {
		uint64_t size = P << (i % 10), iova = IOVA_HI + (i % 64) * CHUNK;

		ret = (i & 1) ? vfio_map_deferred(v.container, iova, m, size, DRW) :
				vfio_map(v.container, iova, m, size, VFIO_RW);
		if (!ret)
			ret = vfio_unmap(v.container, iova, size, 0, &n);
		if (ret || n != size) {
			TH_LOG("cycle %d: %s", i, strerror(-ret));
			break;
		}
	}
	EXPECT_EQ(cycles, i);
	ASSERT_OK(vfio_async_status(v.container, &st));
	EXPECT_EQ(0ULL, st.deferred_bytes);
	EXPECT_EQ(0ULL, st.sync_bytes);
	EXPECT_EQ(0ULL, st.pinned_pages);
	vfio_dev_close(&v);
	slab_end = slab_kb();
	TH_LOG("%d map/unmap cycles in %ld ms: Slab %+ld kB from the start",
	       cycles, now_ms() - t0, slab_end - slab0);
	/* Back within a small slack (per-CPU caches, other activity). */
	EXPECT_GT(512L, slab_end - slab0);
	munmap(m, 2 * MiB);
}

/* --- 5. nothing pinned once the mm is gone ---------------------------------- */

#define DELAYER		(512 * MiB)
#define TARGET		(128 * MiB)

/*
 * The child: a container on the group, a deferred "delayer" at a low IOVA
 * and the target above it, both of its own fresh memory; it hands the
 * container and the group to the parent and exits at once.
 */
static void mm_child(int sock, int wr)
{
	struct vfio_dev v;
	uint8_t *d, *t;
	int fds[2], ret;

	d = mmap(NULL, DELAYER, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	t = mmap(NULL, TARGET, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHILD_EXPECT(d != MAP_FAILED && t != MAP_FAILED, "mmap: %s",
		     strerror(errno));
	ret = vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL, VFIO_ASYNC_IOMMU);
	CHILD_EXPECT(!ret, "%s: %s", v.step, strerror(-ret));
	ret = drop_privileges(DELAYER + TARGET + MiB);
	CHILD_EXPECT(!ret, "drop privileges: %s", strerror(-ret));
	ret = vfio_map_deferred(v.container, IOVA_BASE, d, DELAYER, DRW);
	CHILD_EXPECT(!ret, "delayer: %s", strerror(-ret));
	ret = vfio_map_deferred(v.container, IOVA_HI, t, TARGET, DRW);
	CHILD_EXPECT(!ret, "target: %s", strerror(-ret));
	fds[0] = v.container;
	fds[1] = v.group;
	ret = send_fds(sock, fds, 2);
	CHILD_EXPECT(!ret, "send_fds: %s", strerror(-ret));
	report(wr, "ok");
	_exit(0);
}

/*
 * One round: 0 when the dead child's range stopped being pinned, 1 when
 * it went on, -1 when the sweep ended before the child was reaped (no
 * verdict); @why says what was seen.
 */
static int mm_gone_round(struct __test_metadata *_metadata, long threads,
			 char *why, size_t n)
{
	struct vfio_iommu_async_status st0, st;
	int sv[2], pfd[2], fds[2] = { -1, -1 }, status = 0, bad = 0, ret;
	long pins_exit, pins_end;
	char msg[256];
	uint64_t un;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(pfd))
		return snprintf(why, n, "socketpair/pipe"), 1;
	pid = fork();
	if (pid < 0)
		return snprintf(why, n, "fork"), 1;
	if (!pid) {
		close(sv[0]);
		close(pfd[0]);
		mm_child(sv[1], pfd[1]);
	}
	close(sv[1]);
	close(pfd[1]);
	read_report(pfd[0], msg, sizeof(msg));
	if (strcmp(msg, "ok") || recv_fds(sv[0], fds, 2)) {
		waitpid(pid, &status, 0);
		snprintf(why, n, "child: %s", msg);
		bad = 1;
		goto out;
	}
	/* Reaped: its mm has no task any more (exit_mm precedes the zombie). */
	do
		ret = waitpid(pid, &status, 0);
	while (ret < 0 && errno == EINTR);
	if (ret != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		snprintf(why, n, "waitpid: %d (%s), status 0x%x", ret,
			 ret < 0 ? strerror(errno) : "ok", status);
		bad = 1;
		goto out;
	}
	if (vfio_async_status(fds[0], &st0) || pins_outstanding(&pins_exit)) {
		snprintf(why, n, "GET_STATUS");
		bad = 1;
		goto out;
	}
	if (!st0.pending_bytes) {
		bad = -1;
		goto unmap;
	}
	if (vfio_async_wait_settled(fds[0], &st, SETTLE_MS) ||
	    pins_outstanding(&pins_end)) {
		snprintf(why, n, "settle");
		bad = 1;
		goto unmap;
	}
	snprintf(why, n, "at the exit: mapped %llu MiB, pending %llu MiB, pinned %llu; settled: mapped %llu MiB, failed %llu MiB, pinned %llu, first_error %d at 0x%llx",
		 (unsigned long long)st0.mapped_bytes >> 20,
		 (unsigned long long)st0.pending_bytes >> 20,
		 (unsigned long long)st0.pinned_pages,
		 (unsigned long long)st.mapped_bytes >> 20,
		 (unsigned long long)st.failed_bytes >> 20,
		 (unsigned long long)st.pinned_pages, st.first_error,
		 (unsigned long long)st.first_error_iova);
	/* At most the chunks in flight at the exit were still mapped. */
	if (st.pinned_pages > st0.pinned_pages + threads * (CHUNK / P) ||
	    st.mapped_bytes > st0.mapped_bytes + threads * CHUNK ||
	    pins_end > pins_exit + threads * (long)(CHUNK / P) ||
	    st.failed_bytes + threads * CHUNK < st0.pending_bytes ||
	    st.first_error != -ESRCH || st.mapped_bytes / P != st.pinned_pages)
		bad = 1;
unmap:
	/* Unmapped: every pin of the dead process's memory is released. */
	if (vfio_unmap(fds[0], 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &un) ||
	    un != DELAYER + TARGET || vfio_async_status(fds[0], &st) ||
	    st.pinned_pages) {
		snprintf(why, n, "UNMAP_ALL: %llu bytes, %llu pinned left",
			 (unsigned long long)un,
			 (unsigned long long)st.pinned_pages);
		bad = 1;
	}
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	close(sv[0]);
	close(pfd[0]);
	return bad;
}

TEST_F_TIMEOUT(security, no_pin_after_mm_gone, 180)
{
	int round, verdicts = 0, ret = 0;
	char why[512];
	long threads;

	RETURN_IF_SKIPPED();
	ASSERT_OK(sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/threads",
				  &threads));
	/* Three rounds: the background threads' timing varies. */
	for (round = 0; round < 3; round++) {
		why[0] = '\0';
		ret = mm_gone_round(_metadata, threads, why, sizeof(why));
		if (why[0])
			TH_LOG("round %d: %s", round, why);
		if (ret > 0)
			break;
		verdicts += !ret;
	}
	EXPECT_GE(0, ret);
	if (!verdicts && ret < 0)
		SKIP(return, "the sweep always finished before the child was reaped");
}

TEST_HARNESS_MAIN
