// SPDX-License-Identifier: GPL-2.0
/*
 * iommu_pages: the IOMMU pages a container's memory is mapped with.
 *
 * /sys/kernel/vfio_async/iommu_pages_{4k,2m,1g,other} count the IOMMU
 * page-table entries that map containers' memory now, by size, in every
 * domain. For each kind of memory, mapped at once (MAP_DMA) or deferred
 * (MAP_DMA_DEFERRED, then the background): 4 KiB pages give 4 KiB entries
 * (or 2 MiB ones where the pages happen to be physically contiguous), THP
 * and 2 MiB hugetlbfs pages one 2 MiB entry each, a 1 GiB hugetlbfs page one
 * 1 GiB entry. The counts must cover the mapping exactly, every page must
 * be reachable by a DMA, and an unmap must take every entry away.
 *
 * With a second device, its group is given a domain of its own
 * (join_domains=N): the mappings are copied into it with the same pages,
 * its DMA lands, and when the first group leaves, the copy alone holds
 * them (and records the pins) until the unmap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define SZ_1G		(1UL << 30)
#define IOVA_BUF	IOVA_BASE	/* 1 GiB aligned */
#define JOIN_DOMAINS	ASYNC_MODULE_SYSFS "/parameters/join_domains"

/* Entries by size: 4 KiB, 2 MiB, 1 GiB, other. */
struct pages {
	long n[4];
};

static const char *const page_files[4] = {
	ASYNC_SYSFS "/iommu_pages_4k", ASYNC_SYSFS "/iommu_pages_2m",
	ASYNC_SYSFS "/iommu_pages_1g", ASYNC_SYSFS "/iommu_pages_other",
};

static const size_t page_sizes[3] = { PAGE_4K, SZ_2M, SZ_1G };

FIXTURE(iommu_pages) {
	struct vfio_dev v;
	struct edu e;
	struct mem_buf m;
	long huge_old;
	long huge_kb;
	struct pages base;	/* with only the scratch page mapped */
};

FIXTURE_VARIANT(iommu_pages) {
	enum mem_backing backing;
	bool deferred;
};

/* Memory of backing @b, mapped at once and deferred. */
#define PAGES_VARIANTS(name, b)						\
	FIXTURE_VARIANT_ADD(iommu_pages, name##_sync) {			\
		.backing = (b),						\
	};								\
	FIXTURE_VARIANT_ADD(iommu_pages, name##_deferred) {		\
		.backing = (b), .deferred = true,			\
	}

PAGES_VARIANTS(anon, MEM_ANON);
PAGES_VARIANTS(thp, MEM_THP);
PAGES_VARIANTS(hugetlb_2m, MEM_HUGETLB);
PAGES_VARIANTS(hugetlb_1g, MEM_HUGETLB_1G);

static int pages_read(struct pages *p)
{
	int i, ret;

	for (i = 0; i < 4; i++) {
		ret = sysfs_read_long(page_files[i], &p->n[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* What the test's mapping adds to the base, per size. */
static struct pages pages_delta(const struct pages *now,
				const struct pages *base)
{
	struct pages d;
	int i;

	for (i = 0; i < 4; i++)
		d.n[i] = now->n[i] - base->n[i];
	return d;
}

static size_t buf_size(enum mem_backing b)
{
	return b == MEM_HUGETLB_1G ? SZ_1G : 8 * SZ_2M;
}

FIXTURE_SETUP(iommu_pages)
{
	const char *why = vfio_env_missing(VFIO_ASYNC_IOMMU);
	size_t size = buf_size(variant->backing);
	int ret;

	vfio_dev_init(&self->v);
	edu_init(&self->e);
	memset(&self->m, 0, sizeof(self->m));
	self->huge_old = -1;
	self->huge_kb = 0;
	if (why)
		SKIP(return, "%s", why);
	if (variant->backing == MEM_HUGETLB || variant->backing == MEM_HUGETLB_1G) {
		self->huge_kb = variant->backing == MEM_HUGETLB ? 2048 : 1048576;
		ret = hugetlb_reserve_kb(self->huge_kb,
					 size / (self->huge_kb << 10),
					 &self->huge_old);
		if (ret)
			SKIP(return, "no free %s pages: %s",
			     mem_backing_name(variant->backing), strerror(-ret));
	}
	ret = mem_alloc(&self->m, variant->backing, size);
	if (ret == -ENOTSUP)
		SKIP(return, "THP: no AnonHugePages after MADV_HUGEPAGE");
	ASSERT_OK(ret);
	open_edu_device(_metadata, &self->v, &self->e, VFIO_ASYNC_IOMMU);
	ASSERT_OK(pages_read(&self->base));
}

FIXTURE_TEARDOWN(iommu_pages)
{
	edu_close(&self->e);
	vfio_dev_close(&self->v);
	mem_free(&self->m);
	if (self->huge_kb)
		hugetlb_restore_kb(self->huge_kb, self->huge_old);
}

/* Map the buffer at IOVA_BUF the variant's way, and wait for all of it. */
static void map_buffer(struct __test_metadata *_metadata,
		       FIXTURE_DATA(iommu_pages) *self,
		       const FIXTURE_VARIANT(iommu_pages) *variant)
{
	struct vfio_iommu_async_status st;

	if (!variant->deferred) {
		ASSERT_OK(vfio_map(self->v.container, IOVA_BUF, self->m.va,
				   self->m.size, VFIO_RW));
		return;
	}
	ASSERT_OK(vfio_map_deferred(self->v.container, IOVA_BUF, self->m.va,
				    self->m.size, VFIO_RW));
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, 120000));
	EXPECT_EQ(self->m.size, st.mapped_bytes);
	EXPECT_EQ(0ULL, st.failed_bytes);
}

/*
 * The entries @d counts, times @domains, map the buffer exactly, with
 * the sizes its memory allows.
 */
static void expect_pages(struct __test_metadata *_metadata,
			 const FIXTURE_VARIANT(iommu_pages) *variant,
			 const struct pages *d, size_t size, long domains)
{
	size_t covered = 0;
	int i;

	TH_LOG("%s, %s, %ld domain(s): %ld x 4K, %ld x 2M, %ld x 1G, %ld other",
	       mem_backing_name(variant->backing),
	       variant->deferred ? "deferred" : "at once", domains, d->n[0],
	       d->n[1], d->n[2], d->n[3]);
	for (i = 0; i < 3; i++)
		covered += d->n[i] * page_sizes[i];
	EXPECT_EQ(domains * size, covered);
	EXPECT_EQ(0, d->n[3]);
	switch (variant->backing) {
	case MEM_ANON:
		/* Contiguous by chance at most: never a 1 GiB page. */
		EXPECT_EQ(0, d->n[2]);
		break;
	case MEM_THP:
	case MEM_HUGETLB:
		EXPECT_EQ(domains * (long)(size / SZ_2M), d->n[1]);
		break;
	case MEM_HUGETLB_1G:
		EXPECT_EQ(domains * (long)(size / SZ_1G), d->n[2]);
		break;
	}
}

/* A pattern @e DMAs to IOVA_BUF + @off lands at the buffer's @off. */
static void lands_at(struct __test_metadata *_metadata, struct edu *e,
		     struct mem_buf *m, size_t off)
{
	uint8_t data[64];

	pattern_fill(data, sizeof(data), 0x9a9e + off / PAGE_4K);
	ASSERT_OK(edu_buf_write(e, 0, data, sizeof(data)));
	ASSERT_OK(edu_dma(e, IOVA_BUF + off, 0, sizeof(data), true));
	if (memcmp(m->va + off, data, sizeof(data)))
		TH_LOG("DMA to offset 0x%zx did not land", off);
	EXPECT_EQ(0, memcmp(m->va + off, data, sizeof(data)));
}

/*
 * The first and last page of the buffer, and inside every huge page (of
 * 2 MiB for 4 KiB memory) a page that moves with its index, so that each
 * part of a page is reached by some huge page (a DMA takes ~100 ms).
 */
static void lands_everywhere(struct __test_metadata *_metadata,
			     struct edu *e, struct mem_buf *m)
{
	size_t step = m->backing == MEM_HUGETLB_1G ? SZ_1G : SZ_2M, off, i;

	lands_at(_metadata, e, m, 0);
	for (off = 0, i = 1; off < m->size; off += step, i++)
		lands_at(_metadata, e, m, off + (step / 8 * i) % step);
	lands_at(_metadata, e, m, m->size - PAGE_4K);
}

/* The counts are those of @then again. */
static void expect_pages_as(struct __test_metadata *_metadata,
			    const struct pages *then)
{
	struct pages now, d;

	ASSERT_OK(pages_read(&now));
	d = pages_delta(&now, then);
	EXPECT_EQ(0, d.n[0] | d.n[1] | d.n[2] | d.n[3]);
}

/*
 * Unmap the buffer: every entry it added goes (the counts are @base's
 * again), and every pin (as many as @pins0).
 */
static void unmap_buffer(struct __test_metadata *_metadata, int container,
			 size_t size, const struct pages *base, long pins0)
{
	uint64_t unmapped;
	long pins;

	ASSERT_OK(vfio_unmap(container, IOVA_BUF, size, 0, &unmapped));
	EXPECT_EQ(size, unmapped);
	expect_pages_as(_metadata, base);
	ASSERT_OK(pins_outstanding(&pins));
	EXPECT_EQ(pins0, pins);
}

TEST_F_TIMEOUT(iommu_pages, follow_the_memory, 600)
{
	struct pages now, d;
	long pins0;

	RETURN_IF_SKIPPED();
	ASSERT_OK(pins_outstanding(&pins0));
	map_buffer(_metadata, self, variant);
	ASSERT_OK(pages_read(&now));
	d = pages_delta(&now, &self->base);
	expect_pages(_metadata, variant, &d, self->m.size, 1);
	lands_everywhere(_metadata, &self->e, &self->m);
	unmap_buffer(_metadata, self->v.container, self->m.size, &self->base,
		     pins0);
}

static const char *group2(void)
{
	return getenv("VFIO_GROUP2") && getenv("VFIO_BDF2") ?
	       getenv("VFIO_GROUP2") : NULL;
}

/*
 * The second device's group joins @container in a domain of its own
 * (join_domains=N), which is given a copy of every mapping; its edu @e2
 * gets its scratch page (mapped in both domains).
 */
static void join_second_domain(struct __test_metadata *_metadata,
			       int container, struct vfio_dev *v2,
			       struct edu *e2)
{
	int ret;

	ASSERT_OK(sysfs_write(JOIN_DOMAINS, "N"));
	v2->group = vfio_group_open(group2());
	ret = v2->group < 0 ? v2->group :
	      vfio_group_set_container(v2->group, container);
	sysfs_write(JOIN_DOMAINS, "Y");
	ASSERT_OK(ret);
	v2->device = vfio_device_get(v2->group, getenv("VFIO_BDF2"));
	ASSERT_OK(v2->device);
	ASSERT_OK(edu_open(e2, v2->device));
	ASSERT_OK(edu_scratch_map(e2, container, IOVA_SCRATCH + PAGE_4K));
}

/*
 * A second group in a domain of its own: the mappings are copied in with
 * the same pages (twice the entries, the scratch pages aside), the second
 * device's DMA lands; the first group leaves, the copy holds them alone
 * and still takes the first device's place; the unmap empties it.
 */
TEST_F_TIMEOUT(iommu_pages, copied_into_a_second_domain, 600)
{
	struct pages before, now, d;
	struct vfio_dev v2;
	long pins0;
	struct edu e2;

	RETURN_IF_SKIPPED();
	if (!group2())
		SKIP(return, "no second device (VFIO_GROUP2/VFIO_BDF2 unset)");
	vfio_dev_init(&v2);
	edu_init(&e2);
	ASSERT_OK(pins_outstanding(&pins0));
	map_buffer(_metadata, self, variant);
	ASSERT_OK(pages_read(&before));

	join_second_domain(_metadata, self->v.container, &v2, &e2);

	/*
	 * The copy: the buffer and the first scratch page; the second
	 * scratch page is mapped in both domains.
	 */
	ASSERT_OK(pages_read(&now));
	d = pages_delta(&now, &before);
	d.n[0] -= 3;
	expect_pages(_metadata, variant, &d, self->m.size, 1);
	lands_everywhere(_metadata, &e2, &self->m);

	/*
	 * The first group leaves, its scratch page unmapped first: its
	 * domain goes whole, the copy stays, with the entries the first
	 * domain had (its scratch page's place taken by the second's).
	 */
	edu_close(&self->e);
	close_fd(&self->v.device);
	ASSERT_OK(vfio_group_unset_container(self->v.group));
	expect_pages_as(_metadata, &before);
	lands_everywhere(_metadata, &e2, &self->m);

	/* Left: one scratch page, as before the buffer was mapped. */
	unmap_buffer(_metadata, self->v.container, self->m.size, &self->base,
		     pins0);
	edu_close(&e2);
	vfio_dev_close(&v2);
}

/*
 * The copy keeps the cuts of the first domain: a deferred mapping of a
 * 1 GiB hugetlbfs page followed by a 2 MiB one has 2 MiB chunks (its
 * smallest page), so the 1 GiB page is 512 IOMMU pages of 2 MiB; copied
 * run by run, it must stay so in the second domain (merged into one
 * 1 GiB page there, unmapping one chunk would take all of it).
 */
TEST_F_TIMEOUT(iommu_pages, copy_keeps_the_chunk_cuts, 600)
{
	struct vfio_iommu_async_status st;
	const size_t size = SZ_1G + SZ_2M;
	struct pages before, now, d;
	long pins0, huge2m_old;
	struct vfio_dev v2;
	uint64_t unmapped;
	struct edu e2;
	uint8_t *tail;

	RETURN_IF_SKIPPED();
	if (variant->backing != MEM_HUGETLB_1G || !variant->deferred)
		SKIP(return, "one case: deferred 1 GiB hugetlbfs");
	if (!group2())
		SKIP(return, "no second device (VFIO_GROUP2/VFIO_BDF2 unset)");
	if (hugetlb_reserve_kb(2048, 1, &huge2m_old))
		SKIP(return, "no free 2 MiB hugetlbfs page");
	vfio_dev_init(&v2);
	edu_init(&e2);
	tail = mmap(self->m.va + SZ_1G, SZ_2M, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << 26) |
		    MAP_FIXED_NOREPLACE, -1, 0);
	if (tail == MAP_FAILED) {
		hugetlb_restore_kb(2048, huge2m_old);
		SKIP(return, "no room for a 2 MiB page after the 1 GiB one");
	}
	memset(tail, 0x22, SZ_2M);
	ASSERT_OK(pins_outstanding(&pins0));

	ASSERT_OK(vfio_map_deferred(self->v.container, IOVA_BUF, self->m.va,
				    size, VFIO_RW));
	ASSERT_OK(vfio_async_wait_settled(self->v.container, &st, 120000));
	ASSERT_OK(pages_read(&before));
	d = pages_delta(&before, &self->base);
	TH_LOG("first domain: %ld x 4K, %ld x 2M, %ld x 1G", d.n[0], d.n[1],
	       d.n[2]);
	EXPECT_EQ(513, d.n[1]);
	EXPECT_EQ(0, d.n[0] | d.n[2] | d.n[3]);

	join_second_domain(_metadata, self->v.container, &v2, &e2);
	ASSERT_OK(pages_read(&now));
	d = pages_delta(&now, &before);
	d.n[0] -= 3;	/* the first scratch page copied, the second twice */
	TH_LOG("the copy: %ld x 4K, %ld x 2M, %ld x 1G", d.n[0], d.n[1],
	       d.n[2]);
	EXPECT_EQ(513, d.n[1]);
	EXPECT_EQ(0, d.n[0] | d.n[2] | d.n[3]);
	lands_at(_metadata, &e2, &self->m, 0);
	lands_at(_metadata, &e2, &self->m, SZ_1G / 2 + PAGE_4K);
	lands_at(_metadata, &e2, &self->m, SZ_1G + PAGE_4K);

	ASSERT_OK(vfio_unmap(self->v.container, IOVA_BUF, size, 0, &unmapped));
	EXPECT_EQ(size, unmapped);
	edu_close(&e2);
	vfio_dev_close(&v2);
	ASSERT_OK(pins_outstanding(&now.n[0]));
	EXPECT_EQ(pins0, now.n[0]);
	munmap(tail, SZ_2M);
	hugetlb_restore_kb(2048, huge2m_old);
}

TEST_HARNESS_MAIN
