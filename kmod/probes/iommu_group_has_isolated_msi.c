// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_IOMMU_GROUP_HAS_ISOLATED_MSI: the IOMMU core answers whether a
 * group's MSIs are isolated, in place of irq_domain_check_msi_remap() and
 * IOMMU_CAP_INTR_REMAP.
 * Linux 6.3 ("iommu: Add iommu_group_has_isolated_msi()")
 * and the series that removed the old interfaces.
 */
#include <linux/iommu.h>
#include <linux/irqdomain.h>

static __maybe_unused bool probe(struct iommu_group *group, struct device *dev)
{
#ifdef PROBE_NEW
	return iommu_group_has_isolated_msi(group);
#else
	return irq_domain_check_msi_remap() ||
	       device_iommu_capable(dev, IOMMU_CAP_INTR_REMAP);
#endif
}
