// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"
#include "vfio_util.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#define MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)
#define SZ_1G (1UL << 30)

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

const char *mem_backing_name(enum mem_backing b)
{
	switch (b) {
	case MEM_ANON:
		return "4 KiB anonymous";
	case MEM_THP:
		return "THP";
	case MEM_HUGETLB:
		return "hugetlb 2 MiB";
	case MEM_HUGETLB_1G:
		return "hugetlb 1 GiB";
	}
	return "?";
}

size_t mem_granule(enum mem_backing b)
{
	return b == MEM_ANON ? PAGE_4K : b == MEM_HUGETLB_1G ? SZ_1G : SZ_2M;
}

long smaps_anon_huge_kb(const void *addr)
{
	uintptr_t a = (uintptr_t)addr, lo, hi;
	char line[256];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = a >= lo && a < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

int mem_alloc(struct mem_buf *m, enum mem_backing b, size_t size)
{
	size_t g = mem_granule(b);
	uint8_t *p;

	memset(m, 0, sizeof(*m));
	m->backing = b;
	if (!size || size % g)
		return -EINVAL;

	switch (b) {
	case MEM_ANON:
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return neg_errno();
		/* THP is "always" on Debian: force small pages here. */
		if (madvise(p, size, MADV_NOHUGEPAGE)) {
			int err = neg_errno();

			munmap(p, size);
			return err;
		}
		m->map_base = p;
		m->map_len = size;
		m->va = p;
		break;
	case MEM_THP: {
		uintptr_t a;

		p = mmap(NULL, size + SZ_2M, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return neg_errno();
		m->map_base = p;
		m->map_len = size + SZ_2M;
		a = ((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1);
		m->va = (uint8_t *)a;
		if (madvise(m->va, size, MADV_HUGEPAGE)) {
			int err = neg_errno();

			mem_free(m);
			return err;
		}
		break;
	}
	case MEM_HUGETLB:
	case MEM_HUGETLB_1G:
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 (b == MEM_HUGETLB ? MAP_HUGE_2MB : MAP_HUGE_1GB), -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		m->map_base = p;
		m->map_len = size;
		m->va = p;
		break;
	default:
		return -EINVAL;
	}
	m->size = size;
	/* Fault every page in (write), so pinning finds real pages. */
	memset(m->va, 0x11, size);

	if (b == MEM_THP && smaps_anon_huge_kb(m->va) < (long)(size >> 10)) {
		mem_free(m);
		return -ENOTSUP;
	}
	return 0;
}

void mem_free(struct mem_buf *m)
{
	if (m->map_base)
		munmap(m->map_base, m->map_len);
	memset(m, 0, sizeof(*m));
}

int meminfo_kb(const char *field, long *kb)
{
	char line[128];
	size_t n = strlen(field);
	FILE *f = fopen("/proc/meminfo", "r");
	int ret = -ENOENT;

	if (!f)
		return neg_errno();
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, n) && line[n] == ':') {
			*kb = strtol(line + n + 1, NULL, 10);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * Freed slab objects sit in per-CPU lists and, with KASAN, in its
 * quarantine for a while: shrinking every cache hands them back, so that
 * Slab in /proc/meminfo is what is really allocated.
 */
int slab_settled_kb(long *kb)
{
	char path[512];
	struct dirent *e;
	DIR *dir;

	sysfs_write("/proc/sys/vm/drop_caches", "2");
	dir = opendir("/sys/kernel/slab");
	if (dir) {
		while ((e = readdir(dir))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink",
				 e->d_name);
			sysfs_write(path, "1");
		}
		closedir(dir);
	}
	return meminfo_kb("Slab", kb);
}

#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages/hugepages-%ldkB/%s"

static int pool_read(long kb, const char *file, long *val)
{
	char path[128];

	snprintf(path, sizeof(path), HUGEPAGES_DIR, kb, file);
	return sysfs_read_long(path, val);
}

static int pool_set(long kb, long npages)
{
	char path[128];

	snprintf(path, sizeof(path), HUGEPAGES_DIR, kb, "nr_hugepages");
	return sysfs_write_long(path, npages);
}

int hugetlb_reserve_kb(long kb, long npages, long *old)
{
	long total, free_pages;
	int ret;

	*old = -1;
	ret = pool_read(kb, "nr_hugepages", &total);
	if (ret)
		return ret == -ENOENT ? -ENOTSUP : ret;
	ret = pool_read(kb, "free_hugepages", &free_pages);
	if (ret)
		return ret;
	if (free_pages >= npages)
		return 0;
	ret = pool_set(kb, total + npages - free_pages);
	if (ret)
		return ret;
	*old = total;
	if (pool_read(kb, "free_hugepages", &free_pages) ||
	    free_pages < npages) {
		hugetlb_restore_kb(kb, *old);
		*old = -1;
		return -ENOMEM;
	}
	return 0;
}

void hugetlb_restore_kb(long kb, long old)
{
	if (old >= 0)
		pool_set(kb, old);
}

int hugetlb_reserve(long npages, long *old)
{
	return hugetlb_reserve_kb(2048, npages, old);
}

void hugetlb_restore(long old)
{
	hugetlb_restore_kb(2048, old);
}

/* splitmix64: a good 64-bit mix, so neighbouring seeds look unrelated. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint8_t pattern_byte(uint32_t seed, size_t i)
{
	return mix64(((uint64_t)seed << 32) ^ (i / 8)) >> (8 * (i % 8));
}

void pattern_fill(void *p, size_t len, uint32_t seed)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = pattern_byte(seed, i);
}

ssize_t pattern_mismatch(const void *p, size_t len, uint32_t seed)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != pattern_byte(seed, i))
			return i;
	return -1;
}

uint32_t page_seed(uint32_t seed, size_t page)
{
	return seed ^ (uint32_t)mix64(page + 1);
}

void pattern_fill_pages(void *p, size_t len, uint32_t seed)
{
	size_t off;

	for (off = 0; off < len; off += PAGE_4K)
		pattern_fill((uint8_t *)p + off,
			     len - off < PAGE_4K ? len - off : PAGE_4K,
			     page_seed(seed, off / PAGE_4K));
}

ssize_t first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return -1;
}

static int vmstat_read(const char *name, long *val)
{
	char line[128];
	size_t n = strlen(name);
	FILE *f = fopen("/proc/vmstat", "r");
	int ret = -ENOENT;

	if (!f)
		return neg_errno();
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, n) && line[n] == ' ') {
			*val = strtol(line + n + 1, NULL, 10);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

int pins_outstanding(long *pins)
{
	long acq, rel;
	int ret;

	/* Folds the per-CPU deltas; without it the counters lag. */
	ret = sysfs_write("/proc/sys/vm/stat_refresh", "1");
	if (ret)
		return ret;
	ret = vmstat_read("nr_foll_pin_acquired", &acq);
	if (!ret)
		ret = vmstat_read("nr_foll_pin_released", &rel);
	if (!ret)
		*pins = acq - rel;
	return ret;
}

int pagemap_read(const void *va, size_t n, uint64_t *ent)
{
	off_t at = (uintptr_t)va / 4096 * sizeof(*ent);
	ssize_t len = n * sizeof(*ent);
	int fd, ret = 0;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	if (pread(fd, ent, len, at) != len)
		ret = -EIO;
	close(fd);
	return ret;
}

int vmlck_kb(pid_t pid, long *kb)
{
	char path[64], line[128];
	FILE *f;
	int ret = -ENOENT;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	if (!f)
		return neg_errno();
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmLck: %ld kB", kb) == 1) {
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

const char *variant_memory(enum mem_backing b, size_t size, long huge_pages,
			   long *huge_old, struct mem_buf *m, int *err)
{
	static char why[96];
	int ret;

	*err = 0;
	if (b == MEM_HUGETLB) {
		ret = hugetlb_reserve(huge_pages, huge_old);
		if (ret) {
			snprintf(why, sizeof(why),
				 "cannot reserve %ld hugetlb pages: %s",
				 huge_pages, strerror(-ret));
			return why;
		}
	}
	ret = mem_alloc(m, b, size);
	if (ret == -ENOTSUP)
		return "THP: no AnonHugePages after MADV_HUGEPAGE";
	*err = ret;
	return NULL;
}
