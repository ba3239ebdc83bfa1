// SPDX-License-Identifier: GPL-2.0-only
/*
 * Background mapping threads.
 *
 * A fixed pool of kernel threads serves every container that has deferred
 * chunks pending. Containers with work sit on one list, served round-robin
 * a chunk at a time, so one big VM does not starve another. A thread holds
 * the container lock only to claim a chunk and to record the result; it
 * pins and maps with no lock held (see "In flight" in vfio_async.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "vfio_async.h"

static unsigned int nr_threads = 2;
module_param_named(threads, nr_threads, uint, 0444);
MODULE_PARM_DESC(threads,
		 "Background mapping threads, shared by all containers, 1-64 (default: 2)");

static int thread_nice;
module_param_named(nice, thread_nice, int, 0444);
MODULE_PARM_DESC(nice,
		 "Nice value of the background mapping threads, -20..19 (default: 0)");

static char *thread_cpus = "";
module_param_named(cpus, thread_cpus, charp, 0444);
MODULE_PARM_DESC(cpus,
		 "CPUs the background threads may run on, as a cpulist such as 0-3,8 (default: all), to keep them off vCPU threads");

/* The containers that may have chunks pending, and the threads' wait. */
static DEFINE_SPINLOCK(vfio_async_work_lock);
static LIST_HEAD(vfio_async_work_list);	/* under vfio_async_work_lock */
static DECLARE_WAIT_QUEUE_HEAD(vfio_async_work_wait);

static struct task_struct **workers;
static unsigned int nr_workers;

/**
 * vfio_async_queue_work - tell the threads @c may have chunks to map
 * @c: container, lock held (so it cannot race with the dequeue below)
 */
void vfio_async_queue_work(struct vfio_async_container *c)
{
	lockdep_assert_held(&c->lock);

	spin_lock(&vfio_async_work_lock);
	if (list_empty(&c->work_node))
		list_add_tail(&c->work_node, &vfio_async_work_list);
	spin_unlock(&vfio_async_work_lock);
	wake_up(&vfio_async_work_wait);
}

/* @c has nothing the threads can do now; lock held. */
void vfio_async_dequeue_work(struct vfio_async_container *c)
{
	lockdep_assert_held(&c->lock);

	spin_lock(&vfio_async_work_lock);
	list_del_init(&c->work_node);
	spin_unlock(&vfio_async_work_lock);
}

/* The next container to serve, with a reference, or NULL. */
static struct vfio_async_container *next_container(void)
{
	struct vfio_async_container *c;

	spin_lock(&vfio_async_work_lock);
	c = list_first_entry_or_null(&vfio_async_work_list,
				     struct vfio_async_container, work_node);
	if (c) {
		list_move_tail(&c->work_node, &vfio_async_work_list);
		kobject_get(&c->kobj);
	}
	spin_unlock(&vfio_async_work_lock);
	return c;
}

static bool work_queued(void)
{
	bool queued;

	spin_lock(&vfio_async_work_lock);
	queued = !list_empty(&vfio_async_work_list);
	spin_unlock(&vfio_async_work_lock);
	return queued;
}

/**
 * vfio_async_map_one_chunk - pin and map the next pending chunk of @c
 * @c: container, lock not held
 *
 * Returns 1 when it handled a chunk (mapped or failed), 0 when @c had none
 * to give; @c then leaves the work list until something queues it again.
 */
int vfio_async_map_one_chunk(struct vfio_async_container *c)
{
	struct vfio_async_dma *dma;
	size_t start_off, end_off;
	unsigned long chunk;
	int ret;

	mutex_lock(&c->lock);
	if (!vfio_async_claim_chunk(c, &dma, &chunk)) {
		vfio_async_dequeue_work(c);
		mutex_unlock(&c->lock);
		return 0;
	}
	mutex_unlock(&c->lock);

	vfio_async_chunk_span(dma, chunk, chunk + 1, &start_off, &end_off);
	ret = vfio_async_pin_map(c, dma, start_off, end_off);

	mutex_lock(&c->lock);
	vfio_async_complete_chunk(c, dma, chunk, ret);
	mutex_unlock(&c->lock);
	return 1;
}

static int worker_main(void *unused)
{
	while (!kthread_should_stop()) {
		struct vfio_async_container *c = next_container();

		if (!c) {
			wait_event_interruptible(vfio_async_work_wait,
						 work_queued() ||
						 kthread_should_stop());
			continue;
		}
		vfio_async_map_one_chunk(c);
		kobject_put(&c->kobj);
		cond_resched();
	}
	return 0;
}

static int set_worker_cpus(struct task_struct *t)
{
	cpumask_var_t mask;
	int ret;

	if (!thread_cpus || !*thread_cpus)
		return 0;
	if (!alloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	ret = cpulist_parse(thread_cpus, mask);
	if (!ret && !cpumask_intersects(mask, cpu_online_mask))
		ret = -EINVAL;
	if (!ret)
		ret = set_cpus_allowed_ptr(t, mask);
	free_cpumask_var(mask);
	return ret;
}

int vfio_async_workers_start(void)
{
	unsigned int i;
	int ret;

	if (!nr_threads || nr_threads > 64) {
		pr_err("threads=%u: must be 1-64\n", nr_threads);
		return -EINVAL;
	}
	if (thread_nice < MIN_NICE || thread_nice > MAX_NICE) {
		pr_err("nice=%d: must be %d..%d\n", thread_nice, MIN_NICE,
		       MAX_NICE);
		return -EINVAL;
	}

	workers = kcalloc(nr_threads, sizeof(*workers), GFP_KERNEL);
	if (!workers)
		return -ENOMEM;

	for (i = 0; i < nr_threads; i++) {
		struct task_struct *t;

		t = kthread_create(worker_main, NULL, "vfio-async/%u", i);
		if (IS_ERR(t)) {
			ret = PTR_ERR(t);
			goto err;
		}
		ret = set_worker_cpus(t);
		if (ret) {
			pr_err("cpus=%s: not a usable cpulist\n", thread_cpus);
			kthread_stop(t);
			goto err;
		}
		set_user_nice(t, thread_nice);
		workers[nr_workers++] = t;
		wake_up_process(t);
	}
	return 0;
err:
	vfio_async_workers_stop();
	return ret;
}

void vfio_async_workers_stop(void)
{
	while (nr_workers)
		kthread_stop(workers[--nr_workers]);
	kfree(workers);
	workers = NULL;
}
