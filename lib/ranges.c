// SPDX-License-Identifier: LGPL-2.1-or-later
/* libvfio-async: page frame numbers to merged, ascending ranges. */
#include <stdlib.h>

#include "internal.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

EXPORT unsigned int vfio_async_pfns_to_ranges(const uint64_t *pfns,
					      unsigned int n,
					      unsigned int page_shift,
					      struct vfio_async_range *out)
{
	const uint64_t page = 1ULL << page_shift;
	uint64_t *sorted;
	unsigned int i, nr = 0;

	if (!n)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted) {
		/* No memory to sort: one range per page, in the order given,
		 * would not be ascending; report nothing rather than that. */
		return 0;
	}
	for (i = 0; i < n; i++)
		sorted[i] = pfns[i];
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (i = 0; i < n; i++) {
		uint64_t iova = sorted[i] << page_shift;

		if (nr && out[nr - 1].iova + out[nr - 1].size >= iova) {
			/* Adjacent, or a page named twice. */
			if (out[nr - 1].iova + out[nr - 1].size == iova)
				out[nr - 1].size += page;
			continue;
		}
		out[nr].iova = iova;
		out[nr].size = page;
		nr++;
	}
	free(sorted);
	return nr;
}
