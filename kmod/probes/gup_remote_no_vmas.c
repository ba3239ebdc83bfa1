// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_GUP_REMOTE_NO_VMAS: pin_user_pages_remote() has no vmas argument.
 * Linux 6.5 ("mm/gup: remove unused vmas parameter from
 * pin_user_pages_remote()").
 */
#include <linux/mm.h>

static __maybe_unused long probe(struct mm_struct *mm, struct page **pages)
{
#ifdef PROBE_NEW
	return pin_user_pages_remote(mm, 0, 1, FOLL_LONGTERM, pages, NULL);
#else
	return pin_user_pages_remote(mm, 0, 1, FOLL_LONGTERM, pages, NULL,
				     NULL);
#endif
}
