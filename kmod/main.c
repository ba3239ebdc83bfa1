// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_async: module parameters and registration with the VFIO core.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>

#include "vfio_async.h"

bool vfio_async_type1v2_dropin;
module_param_named(type1v2_dropin, vfio_async_type1v2_dropin, bool, 0644);
MODULE_PARM_DESC(type1v2_dropin,
		 "Also answer VFIO_TYPE1v2_IOMMU, ahead of vfio_iommu_type1, so unmodified VMMs use this backend (default: N)");

bool vfio_async_allow_unsafe_interrupts;
module_param_named(allow_unsafe_interrupts, vfio_async_allow_unsafe_interrupts,
		   bool, 0644);
MODULE_PARM_DESC(allow_unsafe_interrupts,
		 "Accept groups whose platform has no interrupt remapping (MSI isolation); unsafe (default: N)");

unsigned int vfio_async_dma_entry_limit = U16_MAX;
module_param_named(dma_entry_limit, vfio_async_dma_entry_limit, uint, 0644);
MODULE_PARM_DESC(dma_entry_limit,
		 "Maximum number of user DMA mappings per container, taken when the container is set up (default: 65535)");

bool vfio_async_join_domains = true;
module_param_named(join_domains, vfio_async_join_domains, bool, 0644);
MODULE_PARM_DESC(join_domains,
		 "Put a new group into an existing IOMMU domain that accepts it (default: Y); N gives each group a domain of its own, mapped as a copy of the others: slower, for testing that copy");

unsigned int vfio_async_threads;
module_param_named(threads, vfio_async_threads, uint, 0444);
MODULE_PARM_DESC(threads,
		 "Background mapping threads, shared by all containers; also how many threads, its caller included, pin one large MAP_DMA; 1-64, or 0 for one per online CPU up to 64 (default: 0)");

static const struct vfio_iommu_driver_ops vfio_async_ops = {
	.name			= "vfio-iommu-async",
	.owner			= THIS_MODULE,
	.open			= vfio_async_open,
	.release		= vfio_async_release,
	.ioctl			= vfio_async_ioctl,
	.attach_group		= vfio_async_attach_group,
	.detach_group		= vfio_async_detach_group,
	.group_iommu_domain	= vfio_async_group_iommu_domain,
};

static int __init vfio_async_init(void)
{
	int ret;

	ret = vfio_async_sysfs_init();
	if (ret)
		return ret;

	ret = vfio_async_workers_start();
	if (ret)
		goto err_sysfs;

	ret = vfio_async_channel_init();
	if (ret)
		goto err_workers;

	ret = vfio_register_iommu_driver(&vfio_async_ops);
	if (ret)
		goto err_channel;
	vfio_async_fault_init();
	return 0;

err_channel:
	vfio_async_channel_exit();
err_workers:
	vfio_async_workers_stop();
err_sysfs:
	vfio_async_sysfs_exit();
	return ret;
}

static void __exit vfio_async_exit(void)
{
	/* No container is left: each holds a module reference. */
	vfio_unregister_iommu_driver(&vfio_async_ops);
	vfio_async_fault_exit();
	vfio_async_channel_exit();
	vfio_async_workers_stop();
	vfio_async_sysfs_exit();
}

module_init(vfio_async_init);
module_exit(vfio_async_exit);

MODULE_VERSION(VFIO_ASYNC_VERSION);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("VFIO IOMMU backend, type1v2 compatible, that pins and maps guest memory in the background");
MODULE_SOFTDEP("pre: vfio_iommu_type1");
