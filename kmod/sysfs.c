// SPDX-License-Identifier: GPL-2.0-only
/*
 * /sys/kernel/vfio_async/: one value per file.
 */
#include <linux/kobject.h>
#include <linux/sysfs.h>

#include "vfio_async.h"

struct vfio_async_stats vfio_async_stats;

static struct kobject *vfio_async_kobj;

static ssize_t version_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", VFIO_ASYNC_VERSION);
}

static struct kobj_attribute version_attr = __ATTR_RO(version);

/* A read-only file showing one counter of vfio_async_stats. */
struct stat_attr {
	struct kobj_attribute kattr;
	atomic_long_t *value;
};

static ssize_t stat_show(struct kobject *kobj, struct kobj_attribute *kattr,
			 char *buf)
{
	struct stat_attr *sa = container_of(kattr, struct stat_attr, kattr);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(sa->value));
}

static struct stat_attr stat_attrs[] = {
	{ __ATTR(containers, 0444, stat_show, NULL),
	  &vfio_async_stats.containers },
	{ __ATTR(pinned_pages, 0444, stat_show, NULL),
	  &vfio_async_stats.pinned_pages },
	{ __ATTR(mapped_bytes, 0444, stat_show, NULL),
	  &vfio_async_stats.mapped_bytes },
	{ __ATTR(iommu_map_calls, 0444, stat_show, NULL),
	  &vfio_async_stats.iommu_map_calls },
};

static struct attribute *vfio_async_attrs[] = {
	&version_attr.attr,
	&stat_attrs[0].kattr.attr,
	&stat_attrs[1].kattr.attr,
	&stat_attrs[2].kattr.attr,
	&stat_attrs[3].kattr.attr,
	NULL,
};

static const struct attribute_group vfio_async_attr_group = {
	.attrs = vfio_async_attrs,
};

int vfio_async_sysfs_init(void)
{
	int ret;

	vfio_async_kobj = kobject_create_and_add("vfio_async", kernel_kobj);
	if (!vfio_async_kobj)
		return -ENOMEM;

	ret = sysfs_create_group(vfio_async_kobj, &vfio_async_attr_group);
	if (ret) {
		kobject_put(vfio_async_kobj);
		return ret;
	}
	return 0;
}

void vfio_async_sysfs_exit(void)
{
	sysfs_remove_group(vfio_async_kobj, &vfio_async_attr_group);
	kobject_put(vfio_async_kobj);
}
