// SPDX-License-Identifier: GPL-2.0
/*
 * chan-bench: what the balloon channel costs, against what anything of
 * its kind must cost, in one process of the test VM:
 *
 *   null ioctl       VFIO_IOMMU_ASYNC_GET_STATUS, the floor of any ioctl
 *   ioctl hit        VFIO_IOMMU_ASYNC_MAP_NOW of a mapped 2 MiB range
 *   ping-pong        an eventfd round trip between two threads, the floor
 *                    of any notification to another thread and back
 *   ring hit         a MAP_NOW of a mapped range through the channel:
 *                    submit, kick, poll the call eventfd, reap
 *   miss             MAP_NOW of a pending 2 MiB range while the sweep maps
 *                    a gigabyte below it (ring), against
 *   standalone map   VFIO_IOMMU_MAP_DMA of 2 MiB of the same fresh memory,
 *                    the sweep running too
 *   per 1000 ranges  kicks and calls for 1000 hits sent in bursts of 50
 *
 * Latencies are medians over -n rounds (default 2000; misses 20). Goals
 * (issue "The balloon channel"): ioctl hit <= 3x null ioctl, ring hit <=
 * 2x ping-pong, miss <= 2x standalone map. Prints a table, and with -j
 * one JSON line prefixed "chan-bench-json: ". Needs VFIO_GROUP/VFIO_BDF.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "edu.h"
#include "vfio-async.h"
#include "vfio_util.h"

#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define CHUNK		(2 * MiB)
#define IOVA_HIT	0x100000000ULL
#define IOVA_SWEEP	0x200000000ULL
#define IOVA_MISS	0x400000000ULL
#define IOVA_SYNC	0x500000000ULL
#define MISS_ROUNDS	20

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

static void die(const char *what, int err)
{
	fprintf(stderr, "chan-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void *fresh(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	madvise(p, size, MADV_NOHUGEPAGE);
	return p;
}

/* ---- eventfd ping-pong -------------------------------------------------- */

static int ping[2];
static volatile int rounds_left;

static void wait_efd(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	while (poll(&p, 1, -1) < 1)
		;
	if (read(fd, &v, 8) != 8)
		die("read eventfd", errno);
}

static void *pong(void *arg __attribute__((unused)))
{
	uint64_t one = 1;

	while (rounds_left > 0) {
		wait_efd(ping[0]);
		if (write(ping[1], &one, 8) != 8)
			die("write eventfd", errno);
	}
	return NULL;
}

static double ping_pong(int n)
{
	double *v = malloc(n * sizeof(*v)), m;
	uint64_t one = 1;
	pthread_t t;
	int i;

	ping[0] = eventfd(0, 0);
	ping[1] = eventfd(0, 0);
	rounds_left = n;
	pthread_create(&t, NULL, pong, NULL);
	for (i = 0; i < n; i++) {
		double t0 = now_us();

		if (i == n - 1)
			rounds_left = 0;
		if (write(ping[0], &one, 8) != 8)
			die("write eventfd", errno);
		wait_efd(ping[1]);
		v[i] = now_us() - t0;
	}
	pthread_join(t, NULL);
	close(ping[0]);
	close(ping[1]);
	m = median(v, n);
	free(v);
	return m;
}

/* ---- the channel ---------------------------------------------------------- */

struct done {
	int n;
	int status;
	bool hit;
};

static void on_done(void *opaque, uint64_t cookie __attribute__((unused)),
		    int status, uint64_t iova __attribute__((unused)),
		    bool hit)
{
	struct done *d = opaque;

	d->n++;
	d->status = status;
	d->hit = hit;
}

/* Submit @n requests for @r, kick once, wait for all; 0 or status. */
static int ring_round(struct vfio_async_chan *ch, const struct vfio_async_range *r,
		      int n)
{
	struct done d = { 0 };
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, i, r, 1);
		if (ret)
			return ret;
	}
	ret = vfio_async_chan_kick(ch);
	if (ret)
		return ret;
	while (d.n < n) {
		struct pollfd p = { .fd = vfio_async_chan_fd(ch), .events = POLLIN };

		poll(&p, 1, 1000);
		ret = vfio_async_chan_reap(ch, on_done, &d);
		if (ret < 0)
			return ret;
	}
	return d.status;
}

static long ctr(const char *dir, const char *name)
{
	char path[4096 + 64];
	long v = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	sysfs_read_long(path, &v);
	return v;
}

int main(int argc, char **argv)
{
	struct vfio_iommu_async_status st = { .argsz = sizeof(st) };
	struct vfio_async_range hit = { IOVA_HIT, CHUNK };
	double null_us, ioctl_us, ring_us, pp_us, miss_us, sync_us;
	double *v, *vm, *vs;
	int n = 2000, c, i, ret;
	long k0, c0, kicks, calls;
	struct vfio_async_chan *ch;
	struct vfio_async *va;
	bool json = false;
	struct vfio_dev d;
	char dir[4096];
	uint8_t *m;

	while ((c = getopt(argc, argv, "n:j")) != -1) {
		if (c == 'n')
			n = atoi(optarg);
		else if (c == 'j')
			json = true;
		else
			return 2;
	}
	v = malloc(n * sizeof(*v));
	vm = malloc(MISS_ROUNDS * sizeof(*vm));
	vs = malloc(MISS_ROUNDS * sizeof(*vs));
	vfio_dev_init(&d);
	ret = vfio_dev_open_env(&d, VFIO_ASYNC_IOMMU);
	if (ret)
		die(d.step, ret);
	ret = async_container_dir(getpid(), dir, sizeof(dir));
	if (!ret)
		ret = vfio_async_wrap(&va, d.container);
	if (!ret)
		ret = vfio_async_chan_open(va, NULL, &ch);
	if (ret)
		die("setup", ret);
	m = fresh(CHUNK);
	ret = vfio_map(d.container, IOVA_HIT, m, CHUNK, VFIO_RW);
	if (ret)
		die("map", ret);

	for (i = 0; i < n; i++) {
		double t0 = now_us();

		if (ioctl(d.container, VFIO_IOMMU_ASYNC_GET_STATUS, &st))
			die("GET_STATUS", errno);
		v[i] = now_us() - t0;
	}
	null_us = median(v, n);
	for (i = 0; i < n; i++) {
		double t0 = now_us();

		ret = vfio_async_map_now(va, &hit, 1, NULL);
		v[i] = now_us() - t0;
		if (ret)
			die("MAP_NOW ioctl", ret);
	}
	ioctl_us = median(v, n);
	for (i = 0; i < n; i++) {
		double t0 = now_us();

		ret = ring_round(ch, &hit, 1);
		v[i] = now_us() - t0;
		if (ret)
			die("ring MAP_NOW", ret);
	}
	ring_us = median(v, n);
	pp_us = ping_pong(n);

	/* Kicks and calls for 1000 hits, in bursts of 50. */
	k0 = ctr(dir, "kicks");
	c0 = ctr(dir, "calls");
	for (i = 0; i < 20; i++) {
		ret = ring_round(ch, &hit, 50);
		if (ret)
			die("burst", ret);
	}
	kicks = ctr(dir, "kicks") - k0;
	calls = ctr(dir, "calls") - c0;

	/* Misses above a sweep of a gigabyte, against MAP_DMA, alike. */
	if (vfio_map_deferred(d.container, IOVA_SWEEP, fresh(GiB), GiB,
			      VFIO_ASYNC_MAP_FLAG_READ | VFIO_ASYNC_MAP_FLAG_WRITE))
		die("sweep", errno);
	for (i = 0; i < MISS_ROUNDS; i++) {
		struct vfio_async_range r = { IOVA_MISS + i * CHUNK, CHUNK };
		double t0;

		ret = vfio_map_deferred(d.container, r.iova, fresh(CHUNK), CHUNK,
					VFIO_ASYNC_MAP_FLAG_READ |
					VFIO_ASYNC_MAP_FLAG_WRITE);
		if (ret)
			die("deferred", ret);
		t0 = now_us();
		ret = ring_round(ch, &r, 1);
		vm[i] = now_us() - t0;
		if (ret)
			die("miss", ret);
		t0 = now_us();
		ret = vfio_map(d.container, IOVA_SYNC + i * CHUNK, fresh(CHUNK),
			       CHUNK, VFIO_RW);
		vs[i] = now_us() - t0;
		if (ret)
			die("standalone map", ret);
	}
	if (vfio_async_status(d.container, &st))
		die("status", errno);
	miss_us = median(vm, MISS_ROUNDS);
	sync_us = median(vs, MISS_ROUNDS);

	printf("chan-bench: medians of %d rounds (misses: %d), microseconds\n", n,
	       MISS_ROUNDS);
	printf("  null ioctl (GET_STATUS)     %8.1f\n", null_us);
	printf("  MAP_NOW hit, ioctl          %8.1f   %.2fx null ioctl  (goal <= 3x)\n",
	       ioctl_us, ioctl_us / null_us);
	printf("  eventfd ping-pong           %8.1f\n", pp_us);
	printf("  MAP_NOW hit, ring           %8.1f   %.2fx ping-pong   (goal <= 2x)\n",
	       ring_us, ring_us / pp_us);
	printf("  MAP_DMA of 2 MiB, sweeping  %8.1f\n", sync_us);
	printf("  MAP_NOW miss of 2 MiB, ring %8.1f   %.2fx MAP_DMA     (goal <= 2x; sweep %llu MiB left)\n",
	       miss_us, miss_us / sync_us,
	       (unsigned long long)(st.pending_bytes / MiB));
	printf("  per 1000 ranges (bursts of 50): %ld kicks, %ld calls\n",
	       kicks, calls);
	if (json)
		printf("chan-bench-json: {\"null_ioctl_us\": %.2f, \"ioctl_hit_us\": %.2f, \"ping_pong_us\": %.2f, \"ring_hit_us\": %.2f, \"sync_map_us\": %.1f, \"miss_us\": %.1f, \"kicks_per_1000\": %ld, \"calls_per_1000\": %ld}\n",
		       null_us, ioctl_us, pp_us, ring_us, sync_us, miss_us, kicks,
		       calls);
	vfio_async_chan_close(ch);
	vfio_async_close(va);
	vfio_dev_close(&d);
	return 0;
}
