// SPDX-License-Identifier: GPL-2.0
/*
 * sweep-probe: what the background sweep costs the VMM that owns the
 * memory, measured as a VMM would feel it: the latency of its own calls
 * while the threads map its deferred memory, against the same calls when
 * nothing runs.
 *
 *   mmap      mmap + munmap of 64 KiB of anonymous memory (mmap_lock for
 *             writing: it waits for every pin holding it for reading)
 *   deferred  VFIO_IOMMU_MAP_DMA_DEFERRED of 2 MiB (the container's lock,
 *             and the workers it wakes, which may preempt the caller)
 *   unmap     its VFIO_IOMMU_UNMAP_DMA (the unmap quiesces the sweep: it
 *             waits for the batches in flight)
 *   status    VFIO_IOMMU_ASYNC_GET_STATUS
 *
 * One round of the four, every 5 ms, on the main thread; first for
 * IDLE_ROUNDS rounds with nothing to map, then while SIZE_MIB of fresh
 * 4 KiB memory is being mapped by the background (the sweep), until it is
 * all mapped. Prints the median, 90th percentile and maximum of each, idle
 * and during the sweep, in microseconds, and with -j one JSON line
 * prefixed "sweep-probe-json: " (with -l, LABEL names the setting measured,
 * e.g. the module's parameters). Needs VFIO_GROUP and VFIO_BDF.
 *
 *   sweep-probe [-j] [-l LABEL] SIZE_MIB
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vfio_util.h"

#define MIB		(1UL << 20)
#define IOVA_SWEEP	0x100000000ULL	/* 4 GiB: what the sweep maps */
#define IOVA_PROBE	0x80000000ULL	/* 2 GiB: the probe's own mappings */
#define PROBE_MAP	(2 * MIB)
#define PROBE_MMAP	(64 * 1024)
#define IDLE_ROUNDS	100
#define MAX_ROUNDS	20000
#define ROUND_GAP_US	5000

enum call { CALL_MMAP, CALL_DEFERRED, CALL_UNMAP, CALL_STATUS, NR_CALLS };

static const char *const call_names[NR_CALLS] = { "mmap", "deferred",
						   "unmap", "status" };

struct samples {
	double us[NR_CALLS][MAX_ROUNDS];
	int n;
};

static struct samples idle, sweep;

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Fresh 4 KiB memory, not faulted in (THP refused). */
static void *fresh(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_NOHUGEPAGE);
	return p;
}

/* One round of the calls into @s; -errno if one failed. */
static int round_once(int container, void *probe_mem, struct samples *s,
		      struct vfio_iommu_async_status *st)
{
	uint64_t unmapped;
	double t;
	void *p;
	int ret;

	t = now_us();
	p = mmap(NULL, PROBE_MMAP, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	munmap(p, PROBE_MMAP);
	s->us[CALL_MMAP][s->n] = now_us() - t;

	t = now_us();
	ret = vfio_map_deferred(container, IOVA_PROBE, probe_mem, PROBE_MAP,
				VFIO_ASYNC_MAP_FLAG_READ |
				VFIO_ASYNC_MAP_FLAG_WRITE);
	s->us[CALL_DEFERRED][s->n] = now_us() - t;
	if (ret)
		return ret;

	t = now_us();
	ret = vfio_unmap(container, IOVA_PROBE, PROBE_MAP, 0, &unmapped);
	s->us[CALL_UNMAP][s->n] = now_us() - t;
	if (ret)
		return ret;

	t = now_us();
	ret = vfio_async_status(container, st);
	s->us[CALL_STATUS][s->n] = now_us() - t;
	if (ret)
		return ret;
	s->n++;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The @q quantile (0..1) of @n samples, sorted in place. */
static double quantile(double *v, int n, double q)
{
	int i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (int)(q * (n - 1) + 0.5);
	return v[i];
}

struct summary {
	double p50, p90, max;
};

static struct summary summarize(double *v, int n)
{
	struct summary s = { quantile(v, n, 0.5), quantile(v, n, 0.9),
			     quantile(v, n, 1.0) };

	return s;
}

int main(int argc, char **argv)
{
	struct vfio_iommu_async_status st;
	struct summary si[NR_CALLS], ss[NR_CALLS];
	void *probe_mem, *mem;
	const char *label = "";
	bool json = false;
	struct vfio_dev d;
	uint64_t unmapped;
	double t0, t_all;
	size_t size;
	int opt, k, ret;

	while ((opt = getopt(argc, argv, "jl:")) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 'l')
			label = optarg;
		else
			goto usage;
	}
	if (optind != argc - 1)
		goto usage;
	size = strtoul(argv[optind], NULL, 0) * MIB;
	if (!size)
		goto usage;

	vfio_dev_init(&d);
	ret = vfio_dev_open_env(&d, VFIO_ASYNC_IOMMU);
	if (ret) {
		fprintf(stderr, "open (%s): %s\n", d.step, strerror(-ret));
		return 1;
	}
	probe_mem = fresh(PROBE_MAP);
	mem = fresh(size);
	if (!probe_mem || !mem) {
		perror("mmap");
		return 1;
	}
	/* The probe's 2 MiB faulted in: the calls, not the zeroing. */
	memset(probe_mem, 1, PROBE_MAP);

	for (idle.n = 0; idle.n < IDLE_ROUNDS;) {
		ret = round_once(d.container, probe_mem, &idle, &st);
		if (ret)
			goto fail;
		usleep(ROUND_GAP_US);
	}

	t0 = now_us();
	ret = vfio_map_deferred(d.container, IOVA_SWEEP, mem, size,
				VFIO_ASYNC_MAP_FLAG_READ |
				VFIO_ASYNC_MAP_FLAG_WRITE);
	if (ret)
		goto fail;
	do {
		usleep(ROUND_GAP_US);
		ret = round_once(d.container, probe_mem, &sweep, &st);
		if (ret)
			goto fail;
	} while (st.pending_bytes && sweep.n < MAX_ROUNDS);
	t_all = (now_us() - t0) / 1e6;
	if (st.pending_bytes || st.failed_bytes) {
		fprintf(stderr, "the sweep did not finish: %llu pending, %llu failed\n",
			(unsigned long long)st.pending_bytes,
			(unsigned long long)st.failed_bytes);
		return 1;
	}
	vfio_unmap(d.container, IOVA_SWEEP, size, 0, &unmapped);

	printf("sweep-probe %s: %zu MiB swept in %.2f s; %d rounds idle, %d during the sweep (us)\n",
	       label, size / MIB, t_all, idle.n, sweep.n);
	printf("%-9s %9s %9s %9s   %9s %9s %9s\n", "call", "idle_p50",
	       "idle_p90", "idle_max", "sweep_p50", "sweep_p90", "sweep_max");
	for (k = 0; k < NR_CALLS; k++) {
		si[k] = summarize(idle.us[k], idle.n);
		ss[k] = summarize(sweep.us[k], sweep.n);
		printf("%-9s %9.0f %9.0f %9.0f   %9.0f %9.0f %9.0f\n",
		       call_names[k], si[k].p50, si[k].p90, si[k].max,
		       ss[k].p50, ss[k].p90, ss[k].max);
	}
	if (json) {
		printf("sweep-probe-json: {\"label\": \"%s\", \"size_mib\": %zu, \"sweep_s\": %.3f, \"rounds_idle\": %d, \"rounds_sweep\": %d",
		       label, size / MIB, t_all, idle.n, sweep.n);
		for (k = 0; k < NR_CALLS; k++)
			printf(", \"%s\": {\"idle_p50_us\": %.0f, \"idle_p90_us\": %.0f, \"idle_max_us\": %.0f, \"sweep_p50_us\": %.0f, \"sweep_p90_us\": %.0f, \"sweep_max_us\": %.0f}",
			       call_names[k], si[k].p50, si[k].p90, si[k].max,
			       ss[k].p50, ss[k].p90, ss[k].max);
		printf("}\n");
	}
	vfio_dev_close(&d);
	return 0;
fail:
	fprintf(stderr, "sweep-probe: %s\n", strerror(-ret));
	return 1;
usage:
	fprintf(stderr, "usage: sweep-probe [-j] [-l LABEL] SIZE_MIB\n");
	return 2;
}
