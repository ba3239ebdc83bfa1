// SPDX-License-Identifier: GPL-2.0
/*
 * multi: containers and groups coming and going.
 *
 * With one edu device: a group detached (VFIO_GROUP_UNSET_CONTAINER) and
 * attached again, to a new container or to the same one, DMA working
 * through the new mappings and blocked at the old ones; UNSET refused while
 * the device is open.
 * With a second edu (VFIO_GROUP2 / VFIO_BDF2; skipped without): two
 * containers at once, isolated from each other, and a second group joining
 * a container that already has mappings (they are replayed into, or shared
 * with, its domain) and leaving it again.
 *
 * Variants: IOMMU type (ours / TYPE1v2), 4 KiB anonymous memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define P	PAGE_4K
#define BUF	(16 * P)
#define XFER	3000

/* One device as the tests hold it. */
struct side {
	struct vfio_dev v;
	struct edu edu;
};

FIXTURE(multi) {
	struct side s1, s2;
	struct mem_buf a, b;
	uint8_t *expect_a, *expect_b;
};

FIXTURE_VARIANT(multi) {
	unsigned long iommu_type;
};

FIXTURE_VARIANT_ADD(multi, type1v2) {
	.iommu_type = VFIO_TYPE1v2_IOMMU,
};

FIXTURE_VARIANT_ADD(multi, async) {
	.iommu_type = VFIO_ASYNC_IOMMU,
};

static void side_init(struct side *s)
{
	vfio_dev_init(&s->v);
	edu_init(&s->edu);
}

static void side_close(struct side *s)
{
	edu_close(&s->edu);
	vfio_dev_close(&s->v);
}

/*
 * Device fd + edu + bounce page at @scratch_iova in @container (the one
 * the group is attached to).
 */
static int side_device(struct side *s, int container, const char *bdf,
		       uint64_t scratch_iova)
{
	int ret = s->v.device = vfio_device_get(s->v.group, bdf);

	if (ret < 0)
		return ret;
	ret = edu_open(&s->edu, s->v.device);
	if (!ret)
		ret = edu_scratch_map(&s->edu, container, scratch_iova);
	return ret;
}

/* Give the device up (edu, fd), keep container and group. */
static void side_drop_device(struct side *s)
{
	edu_close(&s->edu);
	close_fd(&s->v.device);
}

static int side_open(struct side *s, const char *group, const char *bdf,
		     unsigned long type, uint64_t scratch_iova)
{
	int ret = vfio_dev_open(&s->v, group, NULL, type);

	return ret ? ret : side_device(s, s->v.container, bdf, scratch_iova);
}

FIXTURE_SETUP(multi)
{
	const char *why = vfio_env_missing(variant->iommu_type);

	side_init(&self->s1);
	side_init(&self->s2);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_OK(mem_alloc(&self->a, MEM_ANON, BUF));
	ASSERT_OK(mem_alloc(&self->b, MEM_ANON, BUF));
	pattern_fill_pages(self->a.va, BUF, 0xaaaa);
	pattern_fill_pages(self->b.va, BUF, 0xbbbb);
	self->expect_a = malloc(BUF);
	self->expect_b = malloc(BUF);
	ASSERT_NE(NULL, self->expect_a);
	ASSERT_NE(NULL, self->expect_b);
	memcpy(self->expect_a, self->a.va, BUF);
	memcpy(self->expect_b, self->b.va, BUF);
}

FIXTURE_TEARDOWN(multi)
{
	side_close(&self->s2);
	side_close(&self->s1);
	mem_free(&self->a);
	mem_free(&self->b);
	free(self->expect_a);
	free(self->expect_b);
}

static const char *group2(void)
{
	return getenv("VFIO_GROUP2") && getenv("VFIO_BDF2") ?
	       getenv("VFIO_GROUP2") : NULL;
}

/* The device writes @len pattern bytes (seed) to @iova. */
static int dev_write(struct side *s, uint64_t iova, uint32_t seed,
		     uint32_t len, uint8_t *data)
{
	int ret;

	pattern_fill(data, len, seed);
	ret = edu_buf_write(&s->edu, 0, data, len);
	return ret ? ret : edu_dma(&s->edu, iova, 0, len, true);
}

#define EXPECT_INTACT(buf, expect) do {					\
	ssize_t __d = first_diff((buf).va, (expect), BUF);		\
	if (__d >= 0)							\
		TH_LOG(#buf " differs at 0x%zx", (size_t)__d);		\
	EXPECT_EQ(-1, __d);						\
} while (0)

static void detach_reattach(struct __test_metadata *_metadata,
			    FIXTURE_DATA(multi) *self,
			    const FIXTURE_VARIANT(multi) *variant, bool same)
{
	const char *grp = getenv("VFIO_GROUP"), *bdf = getenv("VFIO_BDF");
	struct side *s = &self->s1;
	uint8_t data[XFER];
	long pins0, pins;

	ASSERT_OK(pins_outstanding(&pins0));
	ASSERT_OK(side_open(s, grp, bdf, variant->iommu_type, IOVA_SCRATCH));
	ASSERT_OK(vfio_map(s->v.container, IOVA_BASE, self->a.va, BUF, VFIO_RW));
	ASSERT_OK(dev_write(s, IOVA_BASE + P, 0x1001, XFER, data));
	memcpy(self->expect_a + P, data, XFER);
	EXPECT_INTACT(self->a, self->expect_a);

	/* Detach: the device first (it holds the container), then unset. */
	side_drop_device(s);
	ASSERT_OK(vfio_group_unset_container(s->v.group));
	/* Last group gone: the IOMMU and its mappings are released. */
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0, pins);
	if (variant->iommu_type == VFIO_ASYNC_IOMMU)
		EXPECT_EQ(0, async_containers());
	/* Unset twice: there is no container any more. */
	EXPECT_ERRNO(EINVAL, vfio_group_unset_container(s->v.group));

	if (!same) {
		close_fd(&s->v.container);
		s->v.container = vfio_container_new();
		ASSERT_OK(s->v.container);
	} else {
		/* A container without groups has no IOMMU: nothing to map. */
		EXPECT_ERRNO(EINVAL, vfio_map(s->v.container, IOVA_BASE,
					      self->a.va, BUF, VFIO_RW));
	}
	ASSERT_OK(vfio_group_set_container(s->v.group, s->v.container));
	ASSERT_OK(vfio_set_iommu(s->v.container, variant->iommu_type));
	if (variant->iommu_type == VFIO_ASYNC_IOMMU)
		EXPECT_EQ(1, async_containers());
	ASSERT_OK(side_device(s, s->v.container, bdf, IOVA_SCRATCH));

	/* New mapping works... */
	ASSERT_OK(vfio_map(s->v.container, IOVA_BASE + BUF, self->b.va, BUF,
			   VFIO_RW));
	ASSERT_OK(dev_write(s, IOVA_BASE + BUF + 2 * P, 0x1002, XFER, data));
	memcpy(self->expect_b + 2 * P, data, XFER);
	EXPECT_INTACT(self->b, self->expect_b);
	/* ...the old one is gone: blocked, A untouched. */
	ASSERT_OK(dev_write(s, IOVA_BASE + P, 0x1003, XFER, data));
	EXPECT_INTACT(self->a, self->expect_a);
	/* The old IOVA is free for a new mapping. */
	ASSERT_OK(vfio_map(s->v.container, IOVA_BASE, self->a.va, BUF, VFIO_RW));
	ASSERT_OK(dev_write(s, IOVA_BASE + 5 * P, 0x1004, XFER, data));
	memcpy(self->expect_a + 5 * P, data, XFER);
	EXPECT_INTACT(self->a, self->expect_a);
	EXPECT_INTACT(self->b, self->expect_b);
}

TEST_F(multi, reattach_new_container)
{
	RETURN_IF_SKIPPED();
	detach_reattach(_metadata, self, variant, false);
}

TEST_F(multi, reattach_same_container)
{
	RETURN_IF_SKIPPED();
	detach_reattach(_metadata, self, variant, true);
}

TEST_F(multi, unset_busy_with_device_open)
{
	struct side *s = &self->s1;
	uint8_t data[XFER];

	RETURN_IF_SKIPPED();
	ASSERT_OK(side_open(s, getenv("VFIO_GROUP"), getenv("VFIO_BDF"),
			    variant->iommu_type, IOVA_SCRATCH));
	ASSERT_OK(vfio_map(s->v.container, IOVA_BASE, self->a.va, BUF, VFIO_RW));
	EXPECT_ERRNO(EBUSY, vfio_group_unset_container(s->v.group));
	/* A second open of the group is refused too. */
	EXPECT_ERRNO(EBUSY, vfio_group_open(getenv("VFIO_GROUP")));
	/* Nothing changed: DMA still works. */
	ASSERT_OK(dev_write(s, IOVA_BASE, 0x2001, XFER, data));
	memcpy(self->expect_a, data, XFER);
	EXPECT_INTACT(self->a, self->expect_a);
}

TEST_F(multi, two_containers_isolated)
{
	struct side *s1 = &self->s1, *s2 = &self->s2;
	uint8_t data[XFER];

	RETURN_IF_SKIPPED();
	if (!group2())
		SKIP(return, "no second device (VFIO_GROUP2/VFIO_BDF2 unset)");
	ASSERT_OK(side_open(s1, getenv("VFIO_GROUP"), getenv("VFIO_BDF"),
			    variant->iommu_type, IOVA_SCRATCH));
	ASSERT_OK(side_open(s2, group2(), getenv("VFIO_BDF2"),
			    variant->iommu_type, IOVA_SCRATCH));
	if (variant->iommu_type == VFIO_ASYNC_IOMMU)
		EXPECT_EQ(2, async_containers());

	/* The same IOVA means different memory in each container. */
	ASSERT_OK(vfio_map(s1->v.container, IOVA_BASE, self->a.va, BUF, VFIO_RW));
	ASSERT_OK(vfio_map(s2->v.container, IOVA_BASE, self->b.va, BUF, VFIO_RW));
	ASSERT_OK(dev_write(s1, IOVA_BASE + P, 0x3001, XFER, data));
	memcpy(self->expect_a + P, data, XFER);
	ASSERT_OK(dev_write(s2, IOVA_BASE + P, 0x3002, XFER, data));
	memcpy(self->expect_b + P, data, XFER);
	EXPECT_INTACT(self->a, self->expect_a);
	EXPECT_INTACT(self->b, self->expect_b);

	/* A mapping in one container is not reachable from the other. */
	ASSERT_OK(vfio_map(s1->v.container, IOVA_BASE + BUF, self->b.va, BUF,
			   VFIO_RW));
	ASSERT_OK(dev_write(s2, IOVA_BASE + BUF, 0x3003, XFER, data));
	EXPECT_INTACT(self->b, self->expect_b);

	/* Closing one leaves the other working. */
	side_close(s1);
	ASSERT_OK(dev_write(s2, IOVA_BASE + 3 * P, 0x3004, XFER, data));
	memcpy(self->expect_b + 3 * P, data, XFER);
	EXPECT_INTACT(self->b, self->expect_b);
	EXPECT_INTACT(self->a, self->expect_a);
}

TEST_F(multi, second_group_joins_and_leaves)
{
	struct side *s1 = &self->s1, *s2 = &self->s2;
	uint8_t data[XFER];

	RETURN_IF_SKIPPED();
	if (!group2())
		SKIP(return, "no second device (VFIO_GROUP2/VFIO_BDF2 unset)");
	ASSERT_OK(side_open(s1, getenv("VFIO_GROUP"), getenv("VFIO_BDF"),
			    variant->iommu_type, IOVA_SCRATCH));
	ASSERT_OK(vfio_map(s1->v.container, IOVA_BASE, self->a.va, BUF, VFIO_RW));

	/* Group 2 joins the container that already has A mapped. */
	s2->v.group = vfio_group_open(group2());
	ASSERT_OK(s2->v.group);
	ASSERT_OK(vfio_group_set_container(s2->v.group, s1->v.container));
	/* s2->v.container stays -1: the container fd is s1's. */
	ASSERT_OK(side_device(s2, s1->v.container, getenv("VFIO_BDF2"),
			      IOVA_SCRATCH + P));
	if (variant->iommu_type == VFIO_ASYNC_IOMMU)
		EXPECT_EQ(1, async_containers());

	/* The existing mapping reaches device 2. */
	ASSERT_OK(dev_write(s2, IOVA_BASE + 4 * P, 0x4001, XFER, data));
	memcpy(self->expect_a + 4 * P, data, XFER);
	EXPECT_INTACT(self->a, self->expect_a);
	/* A new one reaches both. */
	ASSERT_OK(vfio_map(s1->v.container, IOVA_BASE + BUF, self->b.va, BUF,
			   VFIO_RW));
	ASSERT_OK(dev_write(s1, IOVA_BASE + BUF, 0x4002, XFER, data));
	memcpy(self->expect_b, data, XFER);
	ASSERT_OK(dev_write(s2, IOVA_BASE + BUF + 8 * P, 0x4003, XFER, data));
	memcpy(self->expect_b + 8 * P, data, XFER);
	EXPECT_INTACT(self->b, self->expect_b);

	/* Group 2 leaves: device 1 keeps working, mappings intact. */
	side_drop_device(s2);
	ASSERT_OK(vfio_group_unset_container(s2->v.group));
	ASSERT_OK(dev_write(s1, IOVA_BASE + 9 * P, 0x4004, XFER, data));
	memcpy(self->expect_a + 9 * P, data, XFER);
	EXPECT_INTACT(self->a, self->expect_a);
	EXPECT_INTACT(self->b, self->expect_b);
}

TEST_HARNESS_MAIN
