// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_VM_FLAGS_SET: vma->vm_flags is read-only, changed through
 * vm_flags_set() and its siblings.
 * Linux 6.3 ("mm: introduce vma->vm_flags wrapper functions").
 */
#include <linux/mm.h>

static __maybe_unused void probe(struct vm_area_struct *vma)
{
#ifdef PROBE_NEW
	vm_flags_set(vma, VM_DONTEXPAND);
#else
	vma->vm_flags |= VM_DONTEXPAND;
#endif
}
