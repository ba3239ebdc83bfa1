// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_FOLLOW_PFNMAP: follow_pfnmap_start()/_end() replace follow_pte()
 * (whose 6.1 form takes the mm) and follow_pfn().
 * Linux 6.12 ("mm: new follow_pfnmap API").
 */
#include <linux/mm.h>

static __maybe_unused unsigned long probe(struct vm_area_struct *vma,
					  unsigned long addr)
{
#ifdef PROBE_NEW
	struct follow_pfnmap_args args = { .vma = vma, .address = addr };
	unsigned long pfn;

	if (follow_pfnmap_start(&args))
		return 0;
	pfn = args.writable ? args.pfn : 0;
	follow_pfnmap_end(&args);
	return pfn;
#else
	spinlock_t *ptl;	/* the PTE lock follow_pte() takes */
	pte_t *ptep;
	unsigned long pfn;

	if (follow_pte(vma->vm_mm, addr, &ptep, &ptl))
		return 0;
	pfn = pte_write(*ptep) ? pte_pfn(*ptep) : 0;
	pte_unmap_unlock(ptep, ptl);
	return pfn;
#endif
}
