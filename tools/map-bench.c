// SPDX-License-Identifier: GPL-2.0
/*
 * map-bench: time VFIO_IOMMU_MAP_DMA / UNMAP_DMA of guest-RAM-like memory
 * (fresh anonymous memory, not faulted in, as a VMM hands it over) with
 * stock vfio_iommu_type1 and with vfio_iommu_async, in the same VM, and
 * prove each mapping by a DMA from edu at its first and last page.
 *
 *   map-bench [-r REPEAT] [-b type1|async|both] SIZE_MIB...
 *
 * Prints one line per backend and size, and a ratio line per size.
 * Needs VFIO_GROUP and VFIO_BDF (scripts/vm-run sets them).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "edu.h"
#include "vfio_util.h"

#define MIB		(1UL << 20)
#define IOVA_BENCH	0x100000000ULL	/* 4 GiB: above the VT-d MSI window */

struct result {
	double map_s;
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

static int bench_one(unsigned long type, size_t size, struct result *r)
{
	struct vfio_dev d;
	struct edu e;
	uint64_t unmapped;
	uint8_t *buf;
	double t;
	int ret;

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

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		ret = -errno;
		goto out_close;
	}

	t = now();
	ret = vfio_map(d.container, IOVA_BENCH, buf, size, VFIO_RW);
	r->map_s = now() - t;
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
	fprintf(stderr, "usage: map-bench [-r REPEAT] [-b type1|async|both] SIZE_MIB...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int repeat = 1, opt, i, k, status = 0;
	const char *which = "both";

	while ((opt = getopt(argc, argv, "r:b:")) != -1) {
		if (opt == 'r')
			repeat = atoi(optarg);
		else if (opt == 'b')
			which = optarg;
		else
			usage();
	}
	if (optind == argc || repeat < 1)
		usage();

	printf("%-8s %10s %10s %10s\n", "backend", "size_MiB", "map_s",
	       "unmap_s");
	for (i = optind; i < argc; i++) {
		size_t size = strtoul(argv[i], NULL, 0) * MIB;
		struct result best[2] = { { 1e9, 1e9 }, { 1e9, 1e9 } };
		static const char *const names[2] = { "type1", "async" };
		static const unsigned long types[2] = { VFIO_TYPE1v2_IOMMU,
							VFIO_ASYNC_IOMMU };

		for (k = 0; k < 2; k++) {
			if (strcmp(which, "both") && strcmp(which, names[k]))
				continue;
			for (int rep = 0; rep < repeat; rep++) {
				struct result r;

				if (bench_one(types[k], size, &r)) {
					status = 1;
					continue;
				}
				if (r.map_s < best[k].map_s)
					best[k] = r;
			}
			printf("%-8s %10zu %10.3f %10.3f\n", names[k],
			       size / MIB, best[k].map_s, best[k].unmap_s);
		}
		if (!strcmp(which, "both") && best[1].map_s > 0)
			printf("%-8s %10zu %10.2fx (type1 map time / async map time)\n",
			       "ratio", size / MIB, best[0].map_s / best[1].map_s);
		fflush(stdout);
	}
	return status;
}
