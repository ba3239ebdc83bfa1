// SPDX-License-Identifier: GPL-2.0-only
/*
 * /sys/kernel/vfio_async/: one value per file, module-wide at the top and
 * per container in a directory named pid<PID>-c<ID> after the process that
 * set the container up.
 */
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "vfio_async.h"

struct vfio_async_counters vfio_async_totals;
atomic_long_t vfio_async_nr_containers;

const char *const vfio_async_counter_names[VFIO_ASYNC_NR_COUNTERS] = {
	[VFIO_ASYNC_SYNC_BYTES]		= "sync_bytes",
	[VFIO_ASYNC_DEFERRED_BYTES]	= "deferred_bytes",
	[VFIO_ASYNC_MAPPED_BYTES]	= "mapped_bytes",
	[VFIO_ASYNC_PENDING_BYTES]	= "pending_bytes",
	[VFIO_ASYNC_FAILED_BYTES]	= "failed_bytes",
	[VFIO_ASYNC_PINNED_PAGES]	= "pinned_pages",
	[VFIO_ASYNC_CHUNKS_MAPPED]	= "chunks_mapped",
	[VFIO_ASYNC_BACKGROUND_ERRORS]	= "background_errors",
	[VFIO_ASYNC_IOMMU_MAP_CALLS]	= "iommu_map_calls",
};

static struct kobject *vfio_async_kobj;

/* A read-only file showing counter @index of a container or the module. */
struct counter_attr {
	struct kobj_attribute kattr;
	enum vfio_async_counter index;
};

static struct counter_attr global_counter_attrs[VFIO_ASYNC_NR_COUNTERS];
static struct counter_attr container_counter_attrs[VFIO_ASYNC_NR_COUNTERS];

static struct vfio_async_container *to_container(struct kobject *kobj)
{
	return container_of(kobj, struct vfio_async_container, kobj);
}

static ssize_t global_counter_show(struct kobject *kobj,
				   struct kobj_attribute *kattr, char *buf)
{
	struct counter_attr *ca = container_of(kattr, struct counter_attr,
					       kattr);

	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&vfio_async_totals.v[ca->index]));
}

static ssize_t container_counter_show(struct kobject *kobj,
				      struct kobj_attribute *kattr, char *buf)
{
	struct counter_attr *ca = container_of(kattr, struct counter_attr,
					       kattr);
	struct vfio_async_container *c = to_container(kobj);

	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&c->counters.v[ca->index]));
}

static ssize_t version_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", VFIO_ASYNC_VERSION);
}

static ssize_t containers_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&vfio_async_nr_containers));
}

static ssize_t owner_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct vfio_async_container *c = to_container(kobj);

	return sysfs_emit(buf, "%d %s\n", c->owner_pid, c->owner_comm);
}

static ssize_t first_error_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	struct vfio_async_container *c = to_container(kobj);
	dma_addr_t iova;
	int err;

	mutex_lock(&c->lock);
	err = c->first_error;
	iova = c->first_error_iova;
	mutex_unlock(&c->lock);
	return sysfs_emit(buf, "%d 0x%llx\n", err, (unsigned long long)iova);
}

static struct kobj_attribute version_attr = __ATTR_RO(version);
static struct kobj_attribute containers_attr = __ATTR_RO(containers);
static struct kobj_attribute owner_attr = __ATTR_RO(owner);
static struct kobj_attribute first_error_attr = __ATTR_RO(first_error);

/* The fixed files, then one per counter, then the terminating NULL. */
static struct attribute *global_attrs[2 + VFIO_ASYNC_NR_COUNTERS + 1] = {
	&version_attr.attr,
	&containers_attr.attr,
};

static struct attribute *container_attrs[2 + VFIO_ASYNC_NR_COUNTERS + 1] = {
	&owner_attr.attr,
	&first_error_attr.attr,
};

static const struct attribute_group global_group = {
	.attrs = global_attrs,
};

static const struct attribute_group container_group = {
	.attrs = container_attrs,
};

static const struct attribute_group *container_groups[] = {
	&container_group,
	NULL,
};

static void fill_counter_attrs(struct counter_attr *ca,
			       struct attribute **slots,
			       ssize_t (*show)(struct kobject *,
					       struct kobj_attribute *, char *))
{
	int i;

	for (i = 0; i < VFIO_ASYNC_NR_COUNTERS; i++) {
		sysfs_attr_init(&ca[i].kattr.attr);
		ca[i].kattr.attr.name = vfio_async_counter_names[i];
		ca[i].kattr.attr.mode = 0444;
		ca[i].kattr.show = show;
		ca[i].index = i;
		slots[i] = &ca[i].kattr.attr;
	}
}

static void container_kobj_release(struct kobject *kobj)
{
	struct vfio_async_container *c = to_container(kobj);

	mutex_destroy(&c->lock);
	kfree(c);
}

static const struct kobj_type container_ktype = {
	.release	= container_kobj_release,
	.sysfs_ops	= &kobj_sysfs_ops,
	.default_groups	= container_groups,
};

/* Give @c its directory; on failure @c is freed. */
int vfio_async_container_kobj_init(struct vfio_async_container *c)
{
	int ret;

	ret = kobject_init_and_add(&c->kobj, &container_ktype, vfio_async_kobj,
				   "pid%d-c%u", c->owner_pid, c->id);
	if (ret)
		kobject_put(&c->kobj);
	return ret;
}

int vfio_async_sysfs_init(void)
{
	int ret;

	fill_counter_attrs(global_counter_attrs, &global_attrs[2],
			   global_counter_show);
	fill_counter_attrs(container_counter_attrs, &container_attrs[2],
			   container_counter_show);

	vfio_async_kobj = kobject_create_and_add("vfio_async", kernel_kobj);
	if (!vfio_async_kobj)
		return -ENOMEM;

	ret = sysfs_create_group(vfio_async_kobj, &global_group);
	if (ret) {
		kobject_put(vfio_async_kobj);
		return ret;
	}
	return 0;
}

void vfio_async_sysfs_exit(void)
{
	sysfs_remove_group(vfio_async_kobj, &global_group);
	kobject_put(vfio_async_kobj);
}
