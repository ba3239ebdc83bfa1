// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_IOMMU_PAGING_DOMAIN_ALLOC: iommu_paging_domain_alloc(dev), the
 * successor of iommu_domain_alloc(bus), which later kernels drop.
 * Linux 6.11 ("iommu: Add iommu_paging_domain_alloc()
 * interface").
 */
#include <linux/iommu.h>

#ifdef PROBE_NEW
static __maybe_unused struct iommu_domain *probe(struct device *dev)
{
	return iommu_paging_domain_alloc(dev);
}
#else
/* Compiles only where no such function is declared. */
int iommu_paging_domain_alloc;
#endif
