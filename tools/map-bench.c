// SPDX-License-Identifier: GPL-2.0
/*
 * map-bench: hand guest-RAM-like memory (fresh anonymous memory, not
 * faulted in, as a VMM has it at start) to the IOMMU in three ways, in the
 * same VM, and time each beside the floor:
 *
 *   type1     VFIO_IOMMU_MAP_DMA on stock vfio_iommu_type1
 *   async     VFIO_IOMMU_MAP_DMA on vfio_iommu_async
 *   floor1    no IOMMU at all: MADV_POPULATE_WRITE of the same fresh
 *             memory by one thread, the cost of allocating and zeroing it
 *             that any pin of cold memory pays too
 *   floorN    the same by one thread per online CPU
 *   deferred  VFIO_IOMMU_MAP_DMA_DEFERRED on vfio_iommu_async: the time the
 *             call takes (the best of CALL_TRIALS calls, each unmapped at
 *             once: under TCG a single call can be preempted for
 *             milliseconds), and the time until the background has mapped
 *             it all (polling VFIO_IOMMU_ASYNC_GET_STATUS every millisecond)
 *
 * Memory is 4 KiB pages (-b 4k, the default: THP refused), THP (-b thp),
 * or hugetlbfs pages of 2 MiB (-b hugetlb) or 1 GiB (-b hugetlb1g), not
 * faulted in, or faulted in first (-p). The hugetlbfs pool is grown to the
 * largest size asked for and given back at the end; a size it cannot hold
 * is skipped (1 GiB pages can only be set aside at boot: hugepagesz=1G
 * hugepages=N). Every mapping is proven by a DMA from edu to its first and
 * last page.
 * With -e ENTRIES, deferred mode hands SIZE over as that many equal
 * mappings, back to back: the sweep's cost per mapping.
 *
 *   map-bench [-r REPEAT] [-m type1,async,deferred,floor1,floorN] [-b 4k|thp|hugetlb|hugetlb1g] [-p] [-e ENTRIES] [-j] SIZE_MIB...
 *
 * Prints a table (best of REPEAT per cell), and with -j one JSON line per
 * size prefixed "map-bench-json: ". Needs VFIO_GROUP and VFIO_BDF
 * (scripts/vm-run sets them); type1 needs the module's type1v2_dropin off.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>

#include "edu.h"
#include "vfio_util.h"

#define MIB		(1UL << 20)
#define IOVA_BENCH	0x100000000ULL	/* 4 GiB: above the VT-d MSI window */
#define CALL_TRIALS	5

enum mode { MODE_TYPE1, MODE_ASYNC, MODE_DEFERRED, MODE_FLOOR1, MODE_FLOORN,
	    NR_MODES };

static const char *const mode_names[NR_MODES] = { "type1", "async",
						   "deferred", "floor1",
						   "floorN" };

struct result {
	double map_s;		/* the map call */
	double complete_s;	/* call until all mapped */
	double unmap_s;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The device writes a marker at @off of the mapping; did it land there? */
static int dma_lands(struct edu *e, uint8_t *buf, size_t off)
{
	static const uint8_t marker[16] = "map-bench-DMA-ok";
	uint8_t *p = buf + off;

	memset(p, 0, sizeof(marker));
	if (edu_dma(e, IOVA_BENCH + off, 0, sizeof(marker), true))
		return -EIO;
	return memcmp(p, marker, sizeof(marker)) ? -EFAULT : 0;
}

static int prime_marker(struct edu *e)
{
	static const uint8_t marker[16] = "map-bench-DMA-ok";

	return edu_buf_write(e, 0, marker, sizeof(marker));
}

static unsigned long entries = 1;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif

#define HUGE_2M		(2UL << 20)
#define HUGE_1G		(1UL << 30)
#define MAP_HUGE_2MB	(21 << 26)
#define MAP_HUGE_1GB	(30 << 26)
#define POOL		"/sys/kernel/mm/hugepages/hugepages-%lukB/nr_hugepages"

static bool thp;		/* -b thp: 2 MiB pages, else 4 KiB ones */
static size_t hugetlb;		/* -b hugetlb*: the page size, else 0 */
static bool prefault;		/* -p: faulted in before the map */

static const char *memory_name(void)
{
	return thp ? "thp" : hugetlb == HUGE_2M ? "hugetlb" :
	       hugetlb ? "hugetlb1g" : "4k";
}

/* The hugetlbfs pool's size in pages, set first to @pages if >= 0. */
static long pool_pages(long pages)
{
	char path[96];
	long got = -1;
	FILE *f;

	snprintf(path, sizeof(path), POOL, hugetlb >> 10);
	if (pages >= 0) {
		f = fopen(path, "w");
		if (f) {
			fprintf(f, "%ld\n", pages);
			fclose(f);
		}
	}
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &got) != 1)
			got = -1;
		fclose(f);
	}
	return got;
}

/*
 * Fresh memory as a VMM has it: 4 KiB pages (THP refused, as Debian's
 * kernels would otherwise give huge pages wherever they fit), THP, 2 MiB
 * aligned, or hugetlbfs pages; faulted in first with -p.
 */
static uint8_t *bench_alloc(size_t size)
{
	size_t len = size + (thp ? HUGE_2M : 0);
	uint8_t *p;
	uintptr_t a;

	if (hugetlb) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 (hugetlb == HUGE_2M ? MAP_HUGE_2MB : MAP_HUGE_1GB),
			 -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		if (prefault)
			madvise(p, size, MADV_POPULATE_WRITE);
		return p;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = thp ? ((uintptr_t)p + HUGE_2M - 1) & ~(HUGE_2M - 1) : (uintptr_t)p;
	if (thp && a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	if (thp && a + size < (uintptr_t)p + len)
		munmap((void *)(a + size), (uintptr_t)p + len - (a + size));
	madvise((void *)a, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (prefault)
		madvise((void *)a, size, MADV_POPULATE_WRITE);
	return (uint8_t *)a;
}

struct populate_part {
	pthread_t thread;
	uint8_t *va;
	size_t len;
	int ret;
};

static void *populate_part(void *arg)
{
	struct populate_part *p = arg;

	p->ret = madvise(p->va, p->len, MADV_POPULATE_WRITE) ? -errno : 0;
	return NULL;
}

/*
 * The floor: user space faulting the same fresh memory in (allocating and
 * zeroing it, which any pin of cold memory must do too), with @nr threads
 * on equal parts.
 */
static int bench_floor(size_t size, long nr, struct result *r)
{
	struct populate_part parts[64];
	size_t grain = hugetlb ? hugetlb : 4096;
	size_t part = (size / nr + grain - 1) & ~(grain - 1);
	uint8_t *buf;
	double t;
	long i;
	int ret = 0;

	buf = bench_alloc(size);
	if (!buf)
		return -errno;
	t = now();
	for (i = 0; i < nr; i++) {
		parts[i].va = buf + i * part;
		/* part * nr covers size; a part past the end is empty. */
		parts[i].len = i * part >= size ? 0 :
			       size - i * part < part ? size - i * part : part;
		parts[i].ret = -ECHILD;
		if (pthread_create(&parts[i].thread, NULL, populate_part,
				   &parts[i]))
			break;
	}
	nr = i;
	for (i = 0; i < nr; i++) {
		pthread_join(parts[i].thread, NULL);
		ret = ret ? ret : parts[i].ret;
	}
	r->map_s = r->complete_s = now() - t;
	t = now();
	munmap(buf, size);
	r->unmap_s = now() - t;
	return ret;
}

static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : n;
}

/* @size as @entries deferred mappings; all of them or none. */
static int map_deferred(int container, uint8_t *buf, size_t size)
{
	size_t part = size / entries;
	uint64_t unmapped;
	unsigned long i;
	int ret = 0;

	for (i = 0; i < entries && !ret; i++)
		ret = vfio_map_deferred(container, IOVA_BENCH + i * part,
					buf + i * part, part,
					VFIO_ASYNC_MAP_FLAG_READ |
					VFIO_ASYNC_MAP_FLAG_WRITE);
	if (ret && i > 1)
		vfio_unmap(container, IOVA_BENCH, (i - 1) * part, 0, &unmapped);
	return ret;
}

/* The best time of a deferred call, each one unmapped again at once. */
static int time_deferred_call(int container, void *buf, size_t size,
			      double *best)
{
	uint64_t unmapped;
	int i, ret;

	*best = 1e9;
	for (i = 0; i < CALL_TRIALS; i++) {
		double t = now();

		ret = map_deferred(container, buf, size);
		t = now() - t;
		if (ret)
			return ret;
		if (t < *best)
			*best = t;
		ret = vfio_unmap(container, IOVA_BENCH, size, 0, &unmapped);
		if (ret)
			return ret;
	}
	return 0;
}

/* Poll until nothing is pending; fails if any of it could not be mapped. */
static int wait_mapped(int container)
{
	struct vfio_iommu_async_status st;

	for (;;) {
		int ret = vfio_async_status(container, &st);

		if (ret)
			return ret;
		if (!st.pending_bytes)
			return st.failed_bytes ? st.first_error : 0;
		usleep(1000);
	}
}

static int bench_one(enum mode mode, size_t size, struct result *r)
{
	unsigned long type = mode == MODE_TYPE1 ? VFIO_TYPE1v2_IOMMU :
						  VFIO_ASYNC_IOMMU;
	struct vfio_dev d;
	struct edu e;
	uint64_t unmapped;
	uint8_t *buf;
	double t;
	int ret;

	if (mode == MODE_FLOOR1 || mode == MODE_FLOORN)
		return bench_floor(size, mode == MODE_FLOOR1 ? 1 : online_cpus(),
				   r);
	vfio_dev_init(&d);
	ret = vfio_dev_open_env(&d, type);
	if (ret) {
		fprintf(stderr, "open (%s): %s\n", d.step, strerror(-ret));
		return ret;
	}
	edu_init(&e);
	ret = edu_open(&e, d.device);
	if (!ret)
		ret = edu_scratch_map(&e, d.container, IOVA_SCRATCH);
	if (!ret)
		ret = prime_marker(&e);
	if (ret)
		goto out_close;

	buf = bench_alloc(size);
	if (!buf) {
		ret = -errno;
		goto out_close;
	}

	if (mode == MODE_DEFERRED) {
		ret = time_deferred_call(d.container, buf, size, &r->map_s);
		if (ret)
			goto out_unmap_mem;
		/* The background faulted some of it in meanwhile: start afresh. */
		munmap(buf, size);
		buf = bench_alloc(size);
		if (!buf) {
			ret = -errno;
			goto out_close;
		}
		t = now();
		ret = map_deferred(d.container, buf, size);
		if (!ret)
			ret = wait_mapped(d.container);
	} else {
		t = now();
		ret = vfio_map(d.container, IOVA_BENCH, buf, size, VFIO_RW);
		r->map_s = now() - t;
	}
	r->complete_s = now() - t;
	if (ret) {
		fprintf(stderr, "MAP_DMA %zu MiB: %s\n", size / MIB,
			strerror(-ret));
		goto out_unmap_mem;
	}

	ret = dma_lands(&e, buf, 0);
	if (!ret)
		ret = dma_lands(&e, buf, size - 4096);
	if (ret)
		fprintf(stderr, "DMA check failed: %s\n", strerror(-ret));

	t = now();
	if (vfio_unmap(d.container, IOVA_BENCH, size, 0, &unmapped) ||
	    unmapped != size)
		ret = ret ? ret : -EIO;
	r->unmap_s = now() - t;

out_unmap_mem:
	munmap(buf, size);
out_close:
	edu_close(&e);
	vfio_dev_close(&d);
	return ret;
}

static void usage(void)
{
	fprintf(stderr, "usage: map-bench [-r REPEAT] [-m type1,async,deferred,floor1,floorN] [-b 4k|thp|hugetlb|hugetlb1g] [-p] [-e ENTRIES] [-j] SIZE_MIB...\n");
	exit(2);
}

/* The module's threads parameter, 0 when it is not loaded. */
static long module_threads(void)
{
	FILE *f = fopen("/sys/module/vfio_iommu_async/parameters/threads", "r");
	long n = 0;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

static void print_json(size_t size, const bool *on, const struct result *best)
{
	int k;

	printf("map-bench-json: {\"size_mib\": %zu, \"entries\": %lu, \"threads\": %ld, \"memory\": \"%s\", \"prefaulted\": %s",
	       size / MIB, entries, module_threads(), memory_name(),
	       prefault ? "true" : "false");
	for (k = 0; k < NR_MODES; k++) {
		if (!on[k])
			continue;
		printf(", \"%s_map_s\": %.6f, \"%s_unmap_s\": %.6f",
		       mode_names[k], best[k].map_s, mode_names[k],
		       best[k].unmap_s);
		if (k == MODE_DEFERRED)
			printf(", \"deferred_complete_s\": %.6f",
			       best[k].complete_s);
	}
	printf("}\n");
}

int main(int argc, char **argv)
{
	bool on[NR_MODES] = { true, true, true, true, true }, json = false;
	int repeat = 1, opt, i, k, status = 0;
	size_t pool_bytes = 0;
	long pool_old = -1;

	while ((opt = getopt(argc, argv, "r:m:e:jb:p")) != -1) {
		if (opt == 'b') {
			thp = !strcmp(optarg, "thp");
			hugetlb = !strcmp(optarg, "hugetlb") ? HUGE_2M :
				  !strcmp(optarg, "hugetlb1g") ? HUGE_1G : 0;
			if (!thp && !hugetlb && strcmp(optarg, "4k"))
				usage();
		} else if (opt == 'p') {
			prefault = true;
		} else if (opt == 'r') {
			repeat = atoi(optarg);
		} else if (opt == 'e') {
			entries = strtoul(optarg, NULL, 0);
		} else if (opt == 'm') {
			for (k = 0; k < NR_MODES; k++)
				on[k] = strstr(optarg, mode_names[k]) != NULL;
		} else if (opt == 'j') {
			json = true;
		} else {
			usage();
		}
	}
	if (optind == argc || repeat < 1 || !entries)
		usage();
	for (i = optind; i < argc; i++) {
		size_t size = strtoul(argv[i], NULL, 0) * MIB;

		if (size % entries || (size / entries) % 4096 ||
		    (hugetlb && size % hugetlb)) {
			fprintf(stderr, "%s MiB does not split into %lu page-sized entries\n",
				argv[i], entries);
			return 2;
		}
		if (size > pool_bytes)
			pool_bytes = size;
	}
	if (hugetlb) {
		/* Grown, never shrunk: 1 GiB pages given back are gone. */
		pool_old = pool_pages(-1);
		if (pool_old >= 0 && (size_t)pool_old < pool_bytes / hugetlb)
			pool_pages(pool_bytes / hugetlb);
		pool_bytes = pool_pages(-1) > 0 ? pool_pages(-1) * hugetlb : 0;
		printf("hugetlbfs pool: %zu MiB\n", pool_bytes / MIB);
	}

	printf("module threads=%ld, %s memory%s\n", module_threads(),
	       memory_name(), prefault ? ", prefaulted" : "");
	printf("%-9s %9s %12s %12s %10s\n", "mode", "size_MiB", "call_s",
	       "all_mapped_s", "unmap_s");
	for (i = optind; i < argc; i++) {
		size_t size = strtoul(argv[i], NULL, 0) * MIB;
		struct result best[NR_MODES];

		if (hugetlb && size > pool_bytes) {
			printf("%-9s %9zu   skipped: the hugetlbfs pool holds %zu MiB\n",
			       "-", size / MIB, pool_bytes / MIB);
			continue;
		}
		for (k = 0; k < NR_MODES; k++) {
			best[k].map_s = best[k].complete_s = 1e9;
			if (!on[k])
				continue;
			for (int rep = 0; rep < repeat; rep++) {
				struct result r;

				if (bench_one(k, size, &r)) {
					status = 1;
					continue;
				}
				if (r.complete_s < best[k].complete_s)
					best[k] = r;
			}
			printf("%-9s %9zu %12.6f %12.3f %10.3f\n", mode_names[k],
			       size / MIB, best[k].map_s, best[k].complete_s,
			       best[k].unmap_s);
		}
		if (on[MODE_TYPE1] && on[MODE_DEFERRED])
			printf("%-9s %9zu   call: type1 / deferred = %.0fx; all mapped: deferred / type1 = %.2f\n",
			       "ratio", size / MIB,
			       best[MODE_TYPE1].map_s / best[MODE_DEFERRED].map_s,
			       best[MODE_DEFERRED].complete_s /
			       best[MODE_TYPE1].map_s);
		if (on[MODE_TYPE1] && on[MODE_ASYNC])
			printf("%-9s %9zu   MAP_DMA: async / type1 = %.2f\n",
			       "ratio", size / MIB,
			       best[MODE_ASYNC].map_s / best[MODE_TYPE1].map_s);
		if (on[MODE_FLOORN] && on[MODE_ASYNC] && on[MODE_DEFERRED])
			printf("%-9s %9zu   against floorN: async %.2f, deferred all mapped %.2f\n",
			       "ratio", size / MIB,
			       best[MODE_ASYNC].map_s / best[MODE_FLOORN].map_s,
			       best[MODE_DEFERRED].complete_s /
			       best[MODE_FLOORN].map_s);
		if (json)
			print_json(size, on, best);
		fflush(stdout);
	}
	if (pool_old >= 0)
		pool_pages(pool_old);
	return status;
}
