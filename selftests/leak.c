// SPDX-License-Identifier: GPL-2.0
/*
 * leak: pinned pages and locked memory come back.
 *
 * Two counters: pins outstanding system-wide (nr_foll_pin_acquired -
 * nr_foll_pin_released after /proc/sys/vm/stat_refresh), and VmLck of the
 * process that made the mappings (mm->locked_vm, which type1 charges).
 * Each test first checks that mapping moved both by exactly the mapped size
 * (so the measurement works: stock type1 variants run first), then that
 * they return to their starting values after unmap, UNMAP_ALL, container
 * close, group detach, failed maps, and the owning process exiting or being
 * killed with SIGKILL while holding mappings.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P		PAGE_4K
#define HUGE_RESERVE	6

FIXTURE(leak) {
	struct vfio_dev v;
	struct mem_buf buf;
	size_t g;
	long huge_old;
	long pins0;		/* pins outstanding before the test mapped */
	long lck0;		/* our VmLck (kB) before */
};

FIXTURE_VARIANT(leak) {
	unsigned long iommu_type;
	enum mem_backing backing;
};

IOMMU_MEM_VARIANTS(leak);

static size_t buf_size(enum mem_backing b)
{
	return b == MEM_ANON ? 64 * P : 2 * SZ_2M;
}

FIXTURE_SETUP(leak)
{
	const char *why = vfio_env_missing(variant->iommu_type);
	int ret;

	vfio_dev_init(&self->v);
	self->huge_old = -1;
	self->g = mem_granule(variant->backing);
	if (why)
		SKIP(return, "%s", why);
	why = variant_memory(variant->backing, buf_size(variant->backing),
			     HUGE_RESERVE, &self->huge_old, &self->buf, &ret);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_OK(ret);
	ret = vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
			    variant->iommu_type);
	if (ret)
		TH_LOG("%s failed", self->v.step);
	ASSERT_OK(ret);
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_OK(vmlck_kb(0, &self->lck0));
}

FIXTURE_TEARDOWN(leak)
{
	vfio_dev_close(&self->v);
	mem_free(&self->buf);
	hugetlb_restore(self->huge_old);
}

/* Pins and our VmLck moved by exactly @bytes (may be 0) since setup. */
#define EXPECT_HELD(bytes) do {						\
	long __p, __l;							\
	ASSERT_OK(pins_outstanding(&__p));				\
	ASSERT_OK(vmlck_kb(0, &__l));					\
	EXPECT_EQ((long)((bytes) / P), __p - self->pins0);		\
	EXPECT_EQ((long)((bytes) >> 10), __l - self->lck0);		\
} while (0)

TEST_F(leak, unmap)
{
	uint64_t n;

	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_RW));
	EXPECT_HELD(self->buf.size);
	ASSERT_OK(vfio_unmap(self->v.container, IOVA_BASE, self->buf.size, 0, &n));
	EXPECT_EQ(self->buf.size, n);
	EXPECT_HELD(0);

	/* Read-only mappings pin and charge the same. */
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_DMA_MAP_FLAG_READ));
	EXPECT_HELD(self->buf.size);
	ASSERT_OK(vfio_unmap(self->v.container, IOVA_BASE, self->buf.size, 0, &n));
	EXPECT_HELD(0);
}

TEST_F(leak, unmap_all_and_aliases)
{
	const size_t size = self->buf.size, half = size / 2;
	uint64_t n;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_map(c, IOVA_BASE, self->buf.va, half, VFIO_RW));
	ASSERT_OK(vfio_map(c, IOVA_BASE + 8 * SZ_2M, self->buf.va + half, half,
			   VFIO_RW));
	EXPECT_HELD(size);
	/* The same memory mapped twice is pinned and charged twice. */
	ASSERT_OK(vfio_map(c, IOVA_BASE + 16 * SZ_2M, self->buf.va, size,
			   VFIO_RW));
	EXPECT_HELD(2 * size);
	ASSERT_OK(vfio_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n));
	EXPECT_EQ(2 * size, n);
	EXPECT_HELD(0);
}

TEST_F(leak, container_close)
{
	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_RW));
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE + 8 * SZ_2M,
			   self->buf.va, P, VFIO_RW));
	EXPECT_HELD(self->buf.size + P);
	/* Mappings still in place: closing everything releases them. */
	vfio_dev_close(&self->v);
	EXPECT_HELD(0);
}

TEST_F(leak, group_detach)
{
	RETURN_IF_SKIPPED();
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_RW));
	EXPECT_HELD(self->buf.size);
	/* The last group leaving releases the IOMMU; the fd stays open. */
	ASSERT_OK(vfio_group_unset_container(self->v.group));
	EXPECT_HELD(0);
	/* And the container is usable again after a new SET_IOMMU. */
	ASSERT_OK(vfio_group_set_container(self->v.group, self->v.container));
	ASSERT_OK(vfio_set_iommu(self->v.container, variant->iommu_type));
	ASSERT_OK(vfio_map(self->v.container, IOVA_BASE, self->buf.va,
			   self->buf.size, VFIO_RW));
	EXPECT_HELD(self->buf.size);
	vfio_dev_close(&self->v);
	EXPECT_HELD(0);
}

TEST_F(leak, failed_maps)
{
	uint8_t *ro;
	int c = self->v.container;

	RETURN_IF_SKIPPED();
	/* Overlap: nothing pinned at all. */
	ASSERT_OK(vfio_map(c, IOVA_BASE, self->buf.va, P, VFIO_RW));
	EXPECT_ERRNO(EEXIST, vfio_map(c, IOVA_BASE, self->buf.va,
				      self->buf.size, VFIO_RW));
	EXPECT_HELD(P);
	ASSERT_OK(vfio_unmap(c, IOVA_BASE, P, 0, NULL));

	/* Write mapping of read-only memory: fails on the first page. */
	ro = mmap(NULL, 4 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
		  MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_BASE, ro, 4 * P, VFIO_RW));
	munmap(ro, 4 * P);
	EXPECT_HELD(0);

	/* Valid head, unmapped tail: the head was pinned, then undone. */
	ASSERT_EQ(0, munmap(self->buf.va + self->buf.size - self->g, self->g));
	EXPECT_ERRNO(EFAULT, vfio_map(c, IOVA_BASE, self->buf.va,
				      self->buf.size, VFIO_RW));
	EXPECT_HELD(0);
}

/*
 * A child opens its own container (the group can be open only once: the
 * parent closed it), maps, reports, then waits for the parent's verdict.
 * No harness macros in there: it reports through the pipe.
 */
enum child_end { CHILD_EXIT, CHILD_KILL };

struct child {
	pid_t pid;
	int to_child, from_child;
};

static void child_main(const FIXTURE_VARIANT(leak) *variant, size_t size,
		       size_t limit, int rd, int wr)
{
	struct vfio_dev v;
	struct mem_buf m;
	char c = 'K';
	int ret;

	if (mem_alloc(&m, variant->backing, size))
		c = 'a';
	else if (vfio_dev_open(&v, getenv("VFIO_GROUP"), NULL,
			       variant->iommu_type))
		c = 'o';
	else if (limit) {
		/* Unprivileged, under a limit: half maps, the rest must not. */
		if (drop_privileges(limit))
			c = 'u';
		else if (vfio_map(v.container, IOVA_BASE, m.va, limit, VFIO_RW))
			c = 'm';
		else if ((ret = vfio_map(v.container, IOVA_BASE + limit,
					 m.va + limit, size - limit, VFIO_RW)) !=
			 -ENOMEM)
			c = 'l';
	} else if (vfio_map(v.container, IOVA_BASE, m.va, size, VFIO_RW) ||
		   vfio_map(v.container, IOVA_BASE + 8 * SZ_2M, m.va, P,
			    VFIO_DMA_MAP_FLAG_READ)) {
		c = 'm';
	}
	if (write(wr, &c, 1) != 1)
		_exit(2);
	/* Wait for the parent: 'x' = exit holding everything; or SIGKILL. */
	while (read(rd, &c, 1) == 1 && c != 'x')
		;
	_exit(0);
}

static int child_start(struct __test_metadata *_metadata,
		       const FIXTURE_VARIANT(leak) *variant, size_t size,
		       size_t limit, struct child *ch)
{
	int rd, wr;
	char c = 0;

	ch->pid = fork_with_pipes(&rd, &wr);
	ASSERT_LE(0, ch->pid);
	if (ch->pid == 0)
		child_main(variant, size, limit, rd, wr);
	ch->to_child = wr;
	ch->from_child = rd;
	ASSERT_EQ(1, read(ch->from_child, &c, 1));
	if (c != 'K')
		TH_LOG("child failed: '%c'", c);
	return c == 'K' ? 0 : -EIO;
}

static int child_end(struct child *ch, enum child_end how)
{
	int status = -1;

	if (how == CHILD_KILL)
		kill(ch->pid, SIGKILL);
	else if (write(ch->to_child, "x", 1) != 1)
		kill(ch->pid, SIGKILL);
	waitpid(ch->pid, &status, 0);
	close(ch->to_child);
	close(ch->from_child);
	return status;
}

static void child_case(struct __test_metadata *_metadata,
		       FIXTURE_DATA(leak) *self,
		       const FIXTURE_VARIANT(leak) *variant, enum child_end how,
		       size_t limit)
{
	const size_t size = self->buf.size;
	size_t held = limit ? limit : size + P;
	struct child ch;
	long pins, lck0, lck;
	int status;

	/* The child needs the group; it can only be opened once. */
	vfio_dev_close(&self->v);
	ASSERT_OK(pins_outstanding(&self->pins0));
	ASSERT_OK(vmlck_kb(0, &lck0));

	ASSERT_OK(child_start(_metadata, variant, size, limit, &ch));
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ((long)(held / P), pins - self->pins0);
	ASSERT_OK(vmlck_kb(ch.pid, &lck));
	EXPECT_EQ((long)(held >> 10), lck);
	/* Charged to the child, not to us. */
	ASSERT_OK(vmlck_kb(0, &lck));
	EXPECT_EQ(lck0, lck);

	status = child_end(&ch, how);
	if (how == CHILD_KILL) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	} else {
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* By the time wait returns, the fds are closed and released. */
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(self->pins0, pins);

	/* The group is free again: the device is not stuck busy. */
	ASSERT_OK(vfio_dev_open(&self->v, getenv("VFIO_GROUP"), NULL,
				variant->iommu_type));
}

TEST_F(leak, child_exit_holding_mappings)
{
	RETURN_IF_SKIPPED();
	child_case(_metadata, self, variant, CHILD_EXIT, 0);
}

TEST_F(leak, child_sigkill_holding_mappings)
{
	RETURN_IF_SKIPPED();
	child_case(_metadata, self, variant, CHILD_KILL, 0);
}

/* RLIMIT_MEMLOCK refusal (ENOMEM) undoes its partial pinning. */
TEST_F(leak, child_rlimit_refusal)
{
	RETURN_IF_SKIPPED();
	child_case(_metadata, self, variant, CHILD_KILL, self->buf.size / 2);
}

TEST_HARNESS_MAIN
