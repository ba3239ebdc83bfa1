// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_PIN_USER_PAGES_FAST_ONLY_GONE: pin_user_pages_fast_only() is no longer
 * declared (Linux 6.12 has none). Where it is (6.1), the slow GUP path
 * hands a THP out a page at a time, and the lockless walk is the fast way
 * to pin memory already present; later kernels' slow path grabs a large
 * folio's pages at once ("mm/gup: accelerate thp gup even for pages !=
 * NULL").
 */
#include <linux/mm.h>

#ifdef PROBE_NEW
/* Conflicts with the declaration, if there is one. */
static __maybe_unused void pin_user_pages_fast_only(void)
{
}
#else
static __maybe_unused int probe(struct page **pages)
{
	return pin_user_pages_fast_only(0, 1, FOLL_LONGTERM, pages);
}
#endif
