/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test memory: buffers with a chosen backing (4 KiB anonymous, THP,
 * hugetlbfs), per-page patterns that make a wrong page visible, and the
 * counters that show pinned and locked memory.
 */
#ifndef MEM_H
#define MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum mem_backing {
	MEM_ANON,	/* 4 KiB anonymous pages (MADV_NOHUGEPAGE) */
	MEM_THP,	/* 2 MiB aligned anonymous + MADV_HUGEPAGE */
	MEM_HUGETLB,	/* MAP_HUGETLB, 2 MiB pages */
	MEM_HUGETLB_1G,	/* MAP_HUGETLB, 1 GiB pages */
};

struct mem_buf {
	uint8_t *va;		/* aligned to its huge page size */
	size_t size;
	void *map_base;		/* what to munmap */
	size_t map_len;
	enum mem_backing backing;
};

const char *mem_backing_name(enum mem_backing b);
/* Granule a size must be a multiple of for @b (4 KiB, 2 MiB or 1 GiB). */
size_t mem_granule(enum mem_backing b);

/*
 * Allocate and fault in @size bytes. Returns -ENOTSUP when THP did not give
 * huge pages (the caller skips), -ENOMEM when hugetlb pages are missing.
 */
int mem_alloc(struct mem_buf *m, enum mem_backing b, size_t size);
void mem_free(struct mem_buf *m);
/* kB of AnonHugePages in the VMA holding @addr (from /proc/self/smaps). */
long smaps_anon_huge_kb(const void *addr);

/*
 * Make sure @npages 2 MiB hugetlb pages are free, raising
 * /proc/sys/vm/nr_hugepages if needed; *old receives the value to restore
 * (-1 when nothing was changed). -ENOMEM if the kernel could not find them.
 */
int hugetlb_reserve(long npages, long *old);
void hugetlb_restore(long old);
/* The same for the pool of @kb-sized pages (2048, 1048576). */
int hugetlb_reserve_kb(long kb, long npages, long *old);
void hugetlb_restore_kb(long kb, long old);

/*
 * The memory a variant fixture tests with: reserves @huge_pages hugetlb
 * pages first for MEM_HUGETLB (*huge_old as for hugetlb_reserve()), then
 * allocates @size bytes of @b into @m. Returns NULL with *err = 0 on
 * success or -errno on a real failure, or why the variant cannot run here
 * (the caller skips).
 */
const char *variant_memory(enum mem_backing b, size_t size, long huge_pages,
			   long *huge_old, struct mem_buf *m, int *err);

/* Deterministic content: byte i of a buffer filled with seed s. */
uint8_t pattern_byte(uint32_t seed, size_t i);
void pattern_fill(void *p, size_t len, uint32_t seed);
/* Index of the first byte that differs from the pattern, or -1. */
ssize_t pattern_mismatch(const void *p, size_t len, uint32_t seed);
/* A different pattern in every 4 KiB page: page k gets seed ^ hash(k). */
uint32_t page_seed(uint32_t seed, size_t page);
void pattern_fill_pages(void *p, size_t len, uint32_t seed);
/* Index of the first byte that differs between a and b, or -1. */
ssize_t first_diff(const void *a, const void *b, size_t len);

/*
 * Pin accounting: /proc/sys/vm/stat_refresh (folds the per-CPU deltas),
 * then nr_foll_pin_acquired - nr_foll_pin_released from /proc/vmstat.
 */
int pins_outstanding(long *pins);
/*
 * The /proc/self/pagemap entries of the @n 4 KiB pages from @va into @ent:
 * PAGEMAP_PRESENT set for a page present, PAGEMAP_PFN() its frame (0
 * unless root).
 */
#define PAGEMAP_PRESENT		(1ULL << 63)
#define PAGEMAP_PFN(ent)	((ent) & ((1ULL << 55) - 1))
int pagemap_read(const void *va, size_t n, uint64_t *ent);
/* VmLck of @pid (0: self) in kB. */
int vmlck_kb(pid_t pid, long *kb);
/* Any "Name:  value kB" field of /proc/meminfo. */
int meminfo_kb(const char *field, long *kb);
int slab_settled_kb(long *kb);

#endif
