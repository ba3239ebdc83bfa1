// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_IOMMU_MAP_GFP: iommu_map() takes a gfp_t.
 * Linux 6.3 ("iommu: Add a gfp parameter to iommu_map()").
 */
#include <linux/iommu.h>

static __maybe_unused int probe(struct iommu_domain *d)
{
#ifdef PROBE_NEW
	return iommu_map(d, 0, 0, PAGE_SIZE, IOMMU_READ, GFP_KERNEL);
#else
	return iommu_map(d, 0, 0, PAGE_SIZE, IOMMU_READ);
#endif
}
