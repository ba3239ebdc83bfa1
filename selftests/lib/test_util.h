/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Glue between the kselftest harness and the helpers. Include after
 * kselftest_harness.h.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include "edu.h"
#include "kmsg.h"
#include "mem.h"
#include "proc.h"
#include "vfio_util.h"

/*
 * The 6.1 harness runs the test body even when FIXTURE_SETUP called SKIP()
 * (only a failed setup stops it). Every TEST_F that uses a skipping fixture
 * starts with this.
 */
#define RETURN_IF_SKIPPED() do { if (_metadata->skip) return; } while (0)

/*
 * The variants shared by map_unmap, dma and leak: each IOMMU type (ours,
 * and VFIO_TYPE1v2_IOMMU served by whichever backend answers it) times
 * each memory backing. The fixture's variant must have these two fields.
 */
#define IOMMU_MEM_VARIANTS(f)						\
	FIXTURE_VARIANT_ADD(f, type1v2_anon) {				\
		.iommu_type = VFIO_TYPE1v2_IOMMU, .backing = MEM_ANON,	\
	};								\
	FIXTURE_VARIANT_ADD(f, type1v2_thp) {				\
		.iommu_type = VFIO_TYPE1v2_IOMMU, .backing = MEM_THP,	\
	};								\
	FIXTURE_VARIANT_ADD(f, type1v2_hugetlb) {			\
		.iommu_type = VFIO_TYPE1v2_IOMMU, .backing = MEM_HUGETLB, \
	};								\
	FIXTURE_VARIANT_ADD(f, async_anon) {				\
		.iommu_type = VFIO_ASYNC_IOMMU, .backing = MEM_ANON,	\
	};								\
	FIXTURE_VARIANT_ADD(f, async_thp) {				\
		.iommu_type = VFIO_ASYNC_IOMMU, .backing = MEM_THP,	\
	};								\
	FIXTURE_VARIANT_ADD(f, async_hugetlb) {				\
		.iommu_type = VFIO_ASYNC_IOMMU, .backing = MEM_HUGETLB,	\
	}

/* Assert that a helper returning 0 / -errno succeeded, naming the errno. */
#define ASSERT_OK(expr) do {						\
	int __r = (expr);						\
	if (__r < 0)							\
		TH_LOG("%s: %s", #expr, strerror(-__r));		\
	ASSERT_LE(0, __r);						\
} while (0)
#define EXPECT_OK(expr) do {						\
	int __r = (expr);						\
	if (__r < 0)							\
		TH_LOG("%s: %s", #expr, strerror(-__r));		\
	EXPECT_LE(0, __r);						\
} while (0)
/* Assert that a helper failed with exactly -err. */
#define ASSERT_ERRNO(err, expr) do {					\
	int __r = (expr);						\
	if (__r != -(err))						\
		TH_LOG("%s: want %s, got %s", #expr, strerror(err),	\
		       __r ? strerror(-__r) : "success");		\
	ASSERT_EQ(-(err), __r);						\
} while (0)
#define EXPECT_ERRNO(err, expr) do {					\
	int __r = (expr);						\
	if (__r != -(err))						\
		TH_LOG("%s: want %s, got %s", #expr, strerror(err),	\
		       __r ? strerror(-__r) : "success");		\
	EXPECT_EQ(-(err), __r);						\
} while (0)

/*
 * What every DMA fixture starts with: VFIO_GROUP's device on a container
 * of @type, driven as edu @e, with its scratch page mapped.
 */
static inline void open_edu_device(struct __test_metadata *_metadata,
				   struct vfio_dev *v, struct edu *e,
				   unsigned long type)
{
	int ret = vfio_dev_open_env(v, type);

	if (ret)
		TH_LOG("%s failed", v->step);
	ASSERT_OK(ret);
	ASSERT_OK(edu_open(e, v->device));
	ASSERT_OK(edu_scratch_map(e, v->container, IOVA_SCRATCH));
}

/* A transfer that should have worked: no DMAR fault line on watch @kw. */
#define EXPECT_NO_DMAR_FAULT(kw) do {					\
	struct dmar_fault __f;						\
	int __r = kmsg_next_dmar_fault((kw), &__f, 0);			\
									\
	if (__r == 1)							\
		TH_LOG("unexpected DMAR fault: %s", __f.line);		\
	EXPECT_EQ(0, __r);						\
} while (0)

#endif
