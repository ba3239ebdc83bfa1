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
	[VFIO_ASYNC_HELPER_PIECES]	= "helper_pieces",
	[VFIO_ASYNC_HELPER_UNMAP_PIECES] = "helper_unmap_pieces",
	[VFIO_ASYNC_WORKERS_BUSY]	= "workers_busy",
	[VFIO_ASYNC_RELEASED_BYTES]	= "released_bytes",
	[VFIO_ASYNC_REQ_MAP_NOW]	= "requests_map_now",
	[VFIO_ASYNC_REQ_MAP_NEXT]	= "requests_map_next",
	[VFIO_ASYNC_REQ_RELEASE]	= "requests_release",
	[VFIO_ASYNC_REQ_FAILED]		= "requests_failed",
	[VFIO_ASYNC_RANGES_MAP_NOW]	= "ranges_map_now",
	[VFIO_ASYNC_RANGES_MAP_NEXT]	= "ranges_map_next",
	[VFIO_ASYNC_RANGES_RELEASE]	= "ranges_release",
	[VFIO_ASYNC_HITS]		= "hits",
	[VFIO_ASYNC_MISSES]		= "misses",
	[VFIO_ASYNC_MERGES]		= "merges",
	[VFIO_ASYNC_RELEASE_CHUNKS]	= "release_chunks",
	[VFIO_ASYNC_RELEASE_BYTES]	= "release_bytes",
	[VFIO_ASYNC_KICKS]		= "kicks",
	[VFIO_ASYNC_CALLS]		= "calls",
	[VFIO_ASYNC_CALLS_SUPPRESSED]	= "calls_suppressed",
	[VFIO_ASYNC_IOMMU_PAGES_4K]	= "iommu_pages_4k",
	[VFIO_ASYNC_IOMMU_PAGES_2M]	= "iommu_pages_2m",
	[VFIO_ASYNC_IOMMU_PAGES_1G]	= "iommu_pages_1g",
	[VFIO_ASYNC_IOMMU_PAGES_OTHER]	= "iommu_pages_other",
};

static struct kobject *vfio_async_kobj;

/* A read-only file showing counter @index of the module. */
struct counter_attr {
	struct kobj_attribute kattr;
	enum vfio_async_counter index;
};

static struct counter_attr global_counter_attrs[VFIO_ASYNC_NR_COUNTERS];

static ssize_t global_counter_show(struct kobject *kobj,
				   struct kobj_attribute *kattr, char *buf)
{
	struct counter_attr *ca = container_of(kattr, struct counter_attr,
					       kattr);

	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&vfio_async_totals.v[ca->index]));
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

/*
 * A latency histogram, on one line: the count of MAP_NOW requests that
 * completed in [0, 1) us, [1, 2), [2, 4), ... [2^22, inf).
 */
static ssize_t show_histogram(char *buf, atomic_long_t *h)
{
	int i, len = 0;

	for (i = 0; i < VFIO_ASYNC_LAT_BUCKETS; i++)
		len += sysfs_emit_at(buf, len, "%ld%c", atomic_long_read(&h[i]),
				     i == VFIO_ASYNC_LAT_BUCKETS - 1 ? '\n' : ' ');
	return len;
}

static ssize_t latency_hit_us_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return show_histogram(buf, vfio_async_totals.lat_hit);
}

static ssize_t latency_miss_us_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return show_histogram(buf, vfio_async_totals.lat_miss);
}

static struct kobj_attribute version_attr = __ATTR_RO(version);
static struct kobj_attribute containers_attr = __ATTR_RO(containers);
static struct kobj_attribute latency_hit_attr = __ATTR_RO(latency_hit_us);
static struct kobj_attribute latency_miss_attr = __ATTR_RO(latency_miss_us);

#define NR_GLOBAL_FIXED	4

/* The fixed files, then one per counter, then the terminating NULL. */
static struct attribute *global_attrs[NR_GLOBAL_FIXED +
				      VFIO_ASYNC_NR_COUNTERS + 1] = {
	&version_attr.attr,
	&containers_attr.attr,
	&latency_hit_attr.attr,
	&latency_miss_attr.attr,
};

static const struct attribute_group global_group = {
	.attrs = global_attrs,
};

/*
 * A container's files. Its directory is a kobject of the kernel's own
 * type, whose release (possibly delayed, with DEBUG_KOBJECT_RELEASE) runs
 * no code of this module; each file's attribute lives in the container and
 * points back at it, and kobject_del() waits for every reader, so the
 * container may go as soon as its directory is deleted.
 */
enum {
	ATTR_OWNER = -1,
	ATTR_FIRST_ERROR = -2,
	ATTR_LATENCY_HIT = -3,
	ATTR_LATENCY_MISS = -4,
};

static ssize_t container_attr_show(struct kobject *kobj,
				   struct kobj_attribute *kattr, char *buf)
{
	struct vfio_async_attr *a = container_of(kattr, struct vfio_async_attr,
						 kattr);
	struct vfio_async_container *c = a->c;
	dma_addr_t iova;
	int err;

	switch (a->index) {
	case ATTR_OWNER:
		return sysfs_emit(buf, "%d %s\n", c->owner_pid, c->owner_comm);
	case ATTR_FIRST_ERROR:
		spin_lock(&c->chunk_lock);
		err = c->first_error;
		iova = c->first_error_iova;
		spin_unlock(&c->chunk_lock);
		return sysfs_emit(buf, "%d 0x%llx\n", err,
				  (unsigned long long)iova);
	case ATTR_LATENCY_HIT:
		return show_histogram(buf, c->counters.lat_hit);
	case ATTR_LATENCY_MISS:
		return show_histogram(buf, c->counters.lat_miss);
	default:
		return sysfs_emit(buf, "%ld\n",
				  atomic_long_read(&c->counters.v[a->index]));
	}
}

static void init_container_attr(struct vfio_async_container *c, int slot,
				const char *name, int index)
{
	struct vfio_async_attr *a = &c->attrs[slot];

	sysfs_attr_init(&a->kattr.attr);
	a->kattr.attr.name = name;
	a->kattr.attr.mode = 0444;
	a->kattr.show = container_attr_show;
	a->c = c;
	a->index = index;
	c->attr_ptrs[slot] = &a->kattr.attr;
}

/* Give @c its directory, pid<PID>-c<ID>/, with its files. */
int vfio_async_container_sysfs_add(struct vfio_async_container *c)
{
	char name[32];
	int i, ret;

	init_container_attr(c, 0, "owner", ATTR_OWNER);
	init_container_attr(c, 1, "first_error", ATTR_FIRST_ERROR);
	init_container_attr(c, 2, "latency_hit_us", ATTR_LATENCY_HIT);
	init_container_attr(c, 3, "latency_miss_us", ATTR_LATENCY_MISS);
	for (i = 0; i < VFIO_ASYNC_NR_COUNTERS; i++)
		init_container_attr(c, VFIO_ASYNC_NR_FIXED_ATTRS + i,
				    vfio_async_counter_names[i], i);
	c->attr_group.attrs = c->attr_ptrs;

	snprintf(name, sizeof(name), "pid%d-c%u", c->owner_pid, c->id);
	c->dir = kobject_create_and_add(name, vfio_async_kobj);
	if (!c->dir)
		return -ENOMEM;
	ret = sysfs_create_group(c->dir, &c->attr_group);
	if (ret) {
		kobject_put(c->dir);
		c->dir = NULL;
	}
	return ret;
}

void vfio_async_container_sysfs_del(struct vfio_async_container *c)
{
	sysfs_remove_group(c->dir, &c->attr_group);
	kobject_del(c->dir);
	kobject_put(c->dir);
	c->dir = NULL;
}

int vfio_async_sysfs_init(void)
{
	int i, ret;

	for (i = 0; i < VFIO_ASYNC_NR_COUNTERS; i++) {
		struct counter_attr *ca = &global_counter_attrs[i];

		sysfs_attr_init(&ca->kattr.attr);
		ca->kattr.attr.name = vfio_async_counter_names[i];
		ca->kattr.attr.mode = 0444;
		ca->kattr.show = global_counter_show;
		ca->index = i;
		global_attrs[NR_GLOBAL_FIXED + i] = &ca->kattr.attr;
	}

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
