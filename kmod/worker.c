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

static int thread_nice;
module_param_named(nice, thread_nice, int, 0444);
MODULE_PARM_DESC(nice,
		 "Nice value of the background mapping threads, -20..19 (default: 0)");

static char *thread_cpus = "";
module_param_named(cpus, thread_cpus, charp, 0444);
MODULE_PARM_DESC(cpus,
		 "CPUs the background threads may run on, as a cpulist such as 0-3,8 (default: all), to keep them off vCPU threads");

static bool sweep = true;
static int set_sweep(const char *val, const struct kernel_param *kp);
static const struct kernel_param_ops sweep_ops = {
	.set = set_sweep,
	.get = param_get_bool,
};
module_param_cb(sweep, &sweep_ops, &sweep, 0644);
MODULE_PARM_DESC(sweep,
		 "Map deferred memory in the background; N: only what MAP_NOW and MAP_NEXT ask for, so a range the VMM forgot stays unmapped (default: Y)");

/*
 * The containers that may have chunks pending, and the threads' wait. The
 * generation moves on whenever a container is queued or a background span
 * completes: a thread that found nothing to claim sleeps until it moves,
 * since only then can a claim that was refused (no chunk, or the
 * container at its share) succeed.
 */
static DEFINE_SPINLOCK(vfio_async_work_lock);
static LIST_HEAD(vfio_async_work_list);	/* under vfio_async_work_lock */
static unsigned int nr_queued;		/* its length, same lock */
static atomic_t work_gen = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(vfio_async_work_wait);

static struct task_struct **workers;
static unsigned int nr_workers;

static void work_moved_on(void)
{
	/* What changed is seen by whoever sees the generation move. */
	smp_mb__before_atomic();
	atomic_inc(&work_gen);
	wake_up_all(&vfio_async_work_wait);
}

/**
 * vfio_async_queue_work - tell the threads @c may have chunks to map
 * @c: container
 */
void vfio_async_queue_work(struct vfio_async_container *c)
{
	spin_lock(&vfio_async_work_lock);
	/* A released container is never queued again (see its release). */
	if (list_empty(&c->work_node) && !READ_ONCE(c->gone)) {
		list_add_tail(&c->work_node, &vfio_async_work_list);
		nr_queued++;
	}
	spin_unlock(&vfio_async_work_lock);
	work_moved_on();
}

/* @c has nothing the threads can do now. */
void vfio_async_dequeue_work(struct vfio_async_container *c)
{
	spin_lock(&vfio_async_work_lock);
	if (!list_empty(&c->work_node)) {
		list_del_init(&c->work_node);
		nr_queued--;
	}
	spin_unlock(&vfio_async_work_lock);
}

/* A background span completed: its container may claim again. */
void vfio_async_work_done(void)
{
	work_moved_on();
}

/*
 * With the sweep off, containers with only sweep work stay queued (a claim
 * refuses them without taking them off; they count in the shares, which
 * is the price of a mode meant for tests and on-demand VMMs), so turning
 * it on needs only a wake-up.
 */
static int set_sweep(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = kstrtobool(val, &on);

	if (ret)
		return ret;
	WRITE_ONCE(sweep, on);
	work_moved_on();
	return 0;
}

/*
 * The next container to serve, with a reference, or NULL; and the share
 * of the pool each container with work may hold: no tenant can take more
 * than its part of the threads, however much it has queued.
 */
static struct vfio_async_container *next_container(unsigned int *share)
{
	struct vfio_async_container *c;

	spin_lock(&vfio_async_work_lock);
	c = list_first_entry_or_null(&vfio_async_work_list,
				     struct vfio_async_container, work_node);
	if (c) {
		list_move_tail(&c->work_node, &vfio_async_work_list);
		vfio_async_container_get(c);
		*share = DIV_ROUND_UP(nr_workers, nr_queued);
	}
	spin_unlock(&vfio_async_work_lock);
	return c;
}

/* Map one chunk of @c in the background; false when @c gave none. */
static bool serve(struct vfio_async_container *c, unsigned int share)
{
	unsigned int flags = VFIO_ASYNC_CLAIM_POOL;
	struct vfio_async_span span;
	int ret;

	if (!READ_ONCE(sweep))
		flags |= VFIO_ASYNC_CLAIM_NO_SWEEP;
	if (!vfio_async_claim(c, flags, share, &span))
		return false;
	ret = vfio_async_map_span(c, &span);
	vfio_async_complete_span(c, &span, ret);
	return true;
}

/*
 * One round over the containers with work, one chunk each at most.
 * Returns whether any chunk was handled.
 */
static bool serve_round(void)
{
	unsigned int i, n, share;
	bool served = false;

	spin_lock(&vfio_async_work_lock);
	n = nr_queued;
	spin_unlock(&vfio_async_work_lock);

	for (i = 0; i < n && !kthread_should_stop(); i++) {
		struct vfio_async_container *c = next_container(&share);

		if (!c)
			break;
		served |= serve(c, share);
		vfio_async_container_put(c);
		cond_resched();
	}
	return served;
}

static int worker_main(void *unused)
{
	while (!kthread_should_stop()) {
		int gen = atomic_read(&work_gen);

		if (serve_round())
			continue;
		wait_event_interruptible(vfio_async_work_wait,
					 atomic_read(&work_gen) != gen ||
					 kthread_should_stop());
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

	if (!vfio_async_threads)
		vfio_async_threads = min(num_online_cpus(), 64U);
	if (vfio_async_threads > 64) {
		pr_err("threads=%u: must be 0-64\n", vfio_async_threads);
		return -EINVAL;
	}
	if (thread_nice < MIN_NICE || thread_nice > MAX_NICE) {
		pr_err("nice=%d: must be %d..%d\n", thread_nice, MIN_NICE,
		       MAX_NICE);
		return -EINVAL;
	}

	workers = kcalloc(vfio_async_threads, sizeof(*workers), GFP_KERNEL);
	if (!workers)
		return -ENOMEM;

	for (i = 0; i < vfio_async_threads; i++) {
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
