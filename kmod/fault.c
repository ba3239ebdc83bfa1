// SPDX-License-Identifier: GPL-2.0-only
/*
 * Named fault points, for tests of the error paths the background threads
 * take: their allocations and pins are not the calling task's, so the
 * per-task /proc/<tid>/fail-nth cannot reach them.
 *
 *   fail_chunk_pin   pinning a batch of pages (pin_pages(), after the
 *                    lockless walk, whose pins it gives back, before GUP)
 *                    fails with -ENOMEM, as pin_user_pages_remote() would;
 *   fail_chunk_map   iommu_map() of a run into one domain (map_run())
 *                    fails with -ENOMEM.
 *
 * Each is a struct fault_attr with the usual knobs (probability, interval,
 * times, space, verbose, task-filter; see
 * Documentation/fault-injection/fault-injection.rst) under
 * /sys/kernel/debug/vfio_async/<name>/. By default they never fire. They
 * are consulted on every path, so /proc/<tid>/fail-nth counts them too on
 * the ioctl paths. One call per batch or run: with interval 1,
 * probability 100 and times 1, "space" = k fails the k-th call from then on.
 * should_fail() reads and updates "space" and "times" in separate steps;
 * the calls are serialized here, so that with several threads the count
 * of failures is still exactly "times".
 *
 * Without CONFIG_FAULT_INJECTION_DEBUG_FS (Debian's kernels) this file
 * compiles to nothing and vfio_async.h makes every point a constant 0.
 */
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/spinlock.h>

#include "vfio_async.h"

#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS

static DECLARE_FAULT_ATTR(fail_chunk_pin);
static DECLARE_FAULT_ATTR(fail_chunk_map);

static struct {
	const char *name;
	struct fault_attr *attr;
} const fault_points[VFIO_ASYNC_NR_FAULTS] = {
	[VFIO_ASYNC_FAULT_CHUNK_PIN] = { "fail_chunk_pin", &fail_chunk_pin },
	[VFIO_ASYNC_FAULT_CHUNK_MAP] = { "fail_chunk_map", &fail_chunk_map },
};

static struct dentry *fault_dir;
static DEFINE_SPINLOCK(fault_lock);

/**
 * vfio_async_fault - should fault point @point fail now?
 * @point: which one
 *
 * Returns -ENOMEM when it should, 0 otherwise.
 */
int vfio_async_fault(enum vfio_async_fault_point point)
{
	bool fail;

	spin_lock(&fault_lock);
	fail = should_fail(fault_points[point].attr, 1);
	spin_unlock(&fault_lock);
	return fail ? -ENOMEM : 0;
}

/* Debugfs is for tests: the module works the same without it. */
void vfio_async_fault_init(void)
{
	unsigned int i;

	fault_dir = debugfs_create_dir("vfio_async", NULL);
	if (IS_ERR(fault_dir))
		return;
	for (i = 0; i < VFIO_ASYNC_NR_FAULTS; i++)
		fault_create_debugfs_attr(fault_points[i].name, fault_dir,
					  fault_points[i].attr);
}

void vfio_async_fault_exit(void)
{
	unsigned int i;

	debugfs_remove_recursive(fault_dir);
	/* fault_create_debugfs_attr() keeps a reference for its messages. */
	for (i = 0; i < VFIO_ASYNC_NR_FAULTS; i++) {
		dput(fault_points[i].attr->dname);
		fault_points[i].attr->dname = NULL;
	}
}

#endif /* CONFIG_FAULT_INJECTION_DEBUG_FS */
