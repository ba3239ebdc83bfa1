// SPDX-License-Identifier: GPL-2.0
/*
 * In the nested guest: does a device's DMA reach memory the guest just got
 * back from the balloon? Allocate MIB MiB, find the guest-physical address
 * of each page in /proc/self/pagemap, and for up to SAMPLES pages at or
 * above MIN_PA (deferred memory) have the passed-through edu device copy
 * a pattern out of the page and back into it. Too few such pages: MIB
 * more, up to ROUNDS times. Exit 0 if every copy landed, 1 if one did not,
 * NOTHING_CHECKED (3) if no page was found above MIN_PA to check: a check
 * that checked nothing is neither a pass nor a caught sabotage.
 *
 *   guest-dma BDF MIB SAMPLES MIN_PA
 *
 * BDF is the edu device's sysfs name (0000:00:03.0); the program enables
 * memory decoding and bus mastering itself, through config space.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define PM_PRESENT	(1ULL << 63)
#define PM_PFN		((1ULL << 55) - 1)

#define REG_DMA_SRC	0x80
#define REG_DMA_DST	0x88
#define REG_DMA_COUNT	0x90
#define REG_DMA_CMD	0x98
#define CMD_START	0x1
#define CMD_TO_RAM	0x2
#define EDU_BUF		0x40000
#define COPY		1024		/* bytes per DMA: within edu's buffer */
#define ROUNDS		4		/* allocations of MIB to find pages above */
#define NOTHING_CHECKED	3

static volatile uint8_t *bar;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static int dma(uint64_t src, uint64_t dst, uint32_t cmd)
{
	uint64_t start = now_ms();

	*(volatile uint64_t *)(bar + REG_DMA_SRC) = src;
	*(volatile uint64_t *)(bar + REG_DMA_DST) = dst;
	*(volatile uint64_t *)(bar + REG_DMA_COUNT) = COPY;
	*(volatile uint32_t *)(bar + REG_DMA_CMD) = cmd | CMD_START;
	while (*(volatile uint32_t *)(bar + REG_DMA_CMD) & CMD_START)
		if (now_ms() - start > 10000)
			return -ETIMEDOUT;
	return 0;
}

static int open_device(const char *bdf)
{
	char path[128];
	uint16_t cmd;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &cmd, 2, 4) != 2)
		return -errno;
	cmd |= 0x2 | 0x4;	/* memory space, bus master */
	if (pwrite(fd, &cmd, 2, 4) != 2)
		return -errno;
	close(fd);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return -errno;
	bar = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return bar == MAP_FAILED ? -errno : 0;
}

/* The page's pattern went out through the device and came back. */
static int check_page(uint8_t *va, uint64_t pa, unsigned int seed)
{
	unsigned int i;
	uint8_t want[COPY];
	int ret;

	for (i = 0; i < COPY; i++)
		want[i] = va[i] = (uint8_t)(seed * 131 + i * 7 + 1);
	ret = dma(pa, EDU_BUF, 0);
	if (ret)
		return ret;
	memset(va, 0, COPY);
	ret = dma(EDU_BUF, pa, CMD_TO_RAM);
	if (ret)
		return ret;
	return memcmp(va, want, COPY) ? -EIO : 0;
}

/*
 * Fault in MIB MiB and find each page's guest-physical address, 0 for a
 * page not present. Returns the table, or NULL.
 */
static uint64_t *map_and_locate(int pm, unsigned long mib, uint8_t **buf)
{
	unsigned long i, n = mib * (1UL << 20) / PAGE;
	uint64_t *pa;

	*buf = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	pa = calloc(n, sizeof(*pa));
	if (*buf == MAP_FAILED || !pa ||
	    pread(pm, pa, n * 8, (uintptr_t)*buf / PAGE * 8) != (ssize_t)(n * 8))
		return NULL;
	for (i = 0; i < n; i++)
		pa[i] = pa[i] & PM_PRESENT ? (pa[i] & PM_PFN) * PAGE : 0;
	return pa;
}

/* Another MIB MiB leaves at least as much free (no OOM kill mid-test). */
static int room_for(unsigned long mib)
{
	struct sysinfo si;

	return !sysinfo(&si) &&
	       (uint64_t)si.freeram * si.mem_unit >= 2 * (mib << 20);
}

int main(int argc, char **argv)
{
	unsigned long mib, samples, i, j, n, stride, above = 0, failed = 0;
	unsigned long checked = 0, round;
	uint64_t min_pa, *pa = NULL, lo = ~0ULL, hi = 0;
	uint8_t *buf = NULL;
	int pm, ret;

	if (argc != 5) {
		fprintf(stderr, "usage: guest-dma BDF MIB SAMPLES MIN_PA\n");
		return 2;
	}
	mib = strtoul(argv[2], NULL, 0);
	samples = strtoul(argv[3], NULL, 0);
	min_pa = strtoull(argv[4], NULL, 0);
	ret = open_device(argv[1]);
	if (ret) {
		fprintf(stderr, "guest-dma: %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	pm = open("/proc/self/pagemap", O_RDONLY);
	n = mib * (1UL << 20) / PAGE;
	/*
	 * The allocator may serve a small request from memory below MIN_PA;
	 * keep what was had and take more, so the next comes from elsewhere.
	 */
	for (round = 0; round < ROUNDS && above < samples; round++) {
		if (round && !room_for(mib))
			break;
		pa = pm < 0 ? NULL : map_and_locate(pm, mib, &buf);
		if (!pa) {
			perror("guest-dma: allocate and find the pages");
			return 1;
		}
		for (i = 0, above = 0; i < n; i++) {
			if (!pa[i])
				continue;
			lo = pa[i] < lo ? pa[i] : lo;
			hi = pa[i] > hi ? pa[i] : hi;
			above += pa[i] >= min_pa;
		}
	}
	/* Spread the samples over the pages at or above MIN_PA. */
	stride = samples && above > samples ? above / samples : 1;
	for (i = 0, j = 0; i < n && checked < samples; i++) {
		if (!pa[i] || pa[i] < min_pa || j++ % stride)
			continue;
		ret = check_page(buf + i * PAGE, pa[i], i);
		checked++;
		if (ret) {
			failed++;
			printf("guest-dma: page at 0x%llx: %s\n",
			       (unsigned long long)pa[i],
			       ret == -EIO ? "the data did not land" : strerror(-ret));
		}
	}
	printf("guest-dma: %lu x %lu MiB at 0x%llx-0x%llx, %lu pages at or above 0x%llx in the last, %lu checked by DMA, %lu failed\n",
	       round, mib, (unsigned long long)lo, (unsigned long long)hi,
	       above, (unsigned long long)min_pa, checked, failed);
	if (failed)
		return 1;
	return checked ? 0 : NOTHING_CHECKED;
}
