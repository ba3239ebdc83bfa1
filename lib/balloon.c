// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvfio-async: the guest pages in the balloon, in the order they went
 * in. A stack of page frame numbers (4 bytes each: guests up to 16 TiB of
 * 4 KiB pages) and a bitmap of which pages are in. A page deflated from
 * the middle of the stack leaves a stale entry there: an entry counts
 * only while its page is in and no later entry names it, and the stack is
 * compacted once stale entries outnumber the live ones.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct vfio_async_balloon {
	uint64_t npages;
	uint64_t *in;		/* bitmap: page is in the balloon */
	uint32_t *stack;	/* pages in the order they went in */
	uint64_t len, cap;	/* entries, room */
	uint64_t live;		/* pages in */
};

#define BITS	64

static bool test_bit(const uint64_t *map, uint64_t i)
{
	return map[i / BITS] & (1ULL << (i % BITS));
}

static void set_bit(uint64_t *map, uint64_t i)
{
	map[i / BITS] |= 1ULL << (i % BITS);
}

static void clear_bit(uint64_t *map, uint64_t i)
{
	map[i / BITS] &= ~(1ULL << (i % BITS));
}

static size_t map_bytes(uint64_t npages)
{
	return (npages + BITS - 1) / BITS * sizeof(uint64_t);
}

EXPORT int vfio_async_balloon_new(struct vfio_async_balloon **bp,
				  uint64_t npages)
{
	struct vfio_async_balloon *b;

	if (!npages || npages > (1ULL << 32))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->npages = npages;
	b->in = calloc(1, map_bytes(npages));
	if (!b->in) {
		free(b);
		return -ENOMEM;
	}
	*bp = b;
	return 0;
}

EXPORT void vfio_async_balloon_free(struct vfio_async_balloon *b)
{
	if (!b)
		return;
	free(b->in);
	free(b->stack);
	free(b);
}

/*
 * Walk the live entries from the top (the latest) down, each page once:
 * @fn returns false to stop. @seen is a scratch bitmap of npages bits.
 */
static void walk_live(const struct vfio_async_balloon *b, uint64_t *seen,
		      bool (*fn)(void *arg, uint32_t pfn), void *arg)
{
	uint64_t i;

	memset(seen, 0, map_bytes(b->npages));
	for (i = b->len; i-- > 0;) {
		uint32_t pfn = b->stack[i];

		if (!test_bit(b->in, pfn) || test_bit(seen, pfn))
			continue;
		set_bit(seen, pfn);
		if (!fn(arg, pfn))
			return;
	}
}

struct compact {
	uint32_t *out;
	uint64_t n;
};

static bool keep(void *arg, uint32_t pfn)
{
	struct compact *k = arg;

	k->out[k->n++] = pfn;
	return true;
}

/* Drop stale entries; keeps the order. False without memory (harmless). */
static bool compact(struct vfio_async_balloon *b)
{
	struct compact k = { .n = 0 };
	uint64_t *seen, i;

	seen = malloc(map_bytes(b->npages));
	k.out = malloc(b->live * sizeof(*k.out) + 1);
	if (!seen || !k.out) {
		free(seen);
		free(k.out);
		return false;
	}
	walk_live(b, seen, keep, &k);
	/* Collected top down: store bottom up. */
	for (i = 0; i < k.n; i++)
		b->stack[i] = k.out[k.n - 1 - i];
	b->len = k.n;
	free(seen);
	free(k.out);
	return true;
}

static bool push(struct vfio_async_balloon *b, uint32_t pfn)
{
	if (b->len == b->cap && b->len > 2 * b->live)
		compact(b);	/* mostly stale entries: room in place */
	if (b->len == b->cap) {
		uint64_t cap = b->cap ? 2 * b->cap : 1024;
		uint32_t *s = realloc(b->stack, cap * sizeof(*s));

		if (!s)
			return false;
		b->stack = s;
		b->cap = cap;
	}
	b->stack[b->len++] = pfn;
	return true;
}

EXPORT unsigned int vfio_async_balloon_inflate(struct vfio_async_balloon *b,
					       const uint64_t *pfns,
					       unsigned int n)
{
	unsigned int i, added = 0;

	for (i = 0; i < n; i++) {
		uint64_t pfn = pfns[i];

		if (pfn >= b->npages || test_bit(b->in, pfn))
			continue;
		if (!push(b, pfn))
			break;
		set_bit(b->in, pfn);
		b->live++;
		added++;
	}
	return added;
}

EXPORT unsigned int vfio_async_balloon_deflate(struct vfio_async_balloon *b,
					       const uint64_t *pfns,
					       unsigned int n, uint64_t *out)
{
	unsigned int i, taken = 0;

	for (i = 0; i < n; i++) {
		uint64_t pfn = pfns[i];

		if (pfn >= b->npages || !test_bit(b->in, pfn))
			continue;
		clear_bit(b->in, pfn);
		b->live--;
		out[taken++] = pfn;
	}
	/* Deflates take from the top: pop what left it. */
	while (b->len && !test_bit(b->in, b->stack[b->len - 1]))
		b->len--;
	return taken;
}

EXPORT bool vfio_async_balloon_contains(const struct vfio_async_balloon *b,
					uint64_t pfn)
{
	return pfn < b->npages && test_bit(b->in, pfn);
}

EXPORT uint64_t vfio_async_balloon_pages(const struct vfio_async_balloon *b)
{
	return b->live;
}

struct order {
	uint64_t skip;
	uint64_t *out;
	unsigned int n, max;
};

static bool take(void *arg, uint32_t pfn)
{
	struct order *o = arg;

	if (o->skip) {
		o->skip--;
		return true;
	}
	o->out[o->n++] = pfn;
	return o->n < o->max;
}

EXPORT unsigned int
vfio_async_balloon_deflate_order(const struct vfio_async_balloon *b,
				 uint64_t skip, uint64_t *out, unsigned int max)
{
	struct order o = { .skip = skip, .out = out, .max = max };
	uint64_t *seen;

	if (!max || !b->live)
		return 0;
	seen = malloc(map_bytes(b->npages));
	if (!seen)
		return 0;
	walk_live(b, seen, take, &o);
	free(seen);
	return o.n;
}

EXPORT void vfio_async_balloon_clear(struct vfio_async_balloon *b)
{
	memset(b->in, 0, map_bytes(b->npages));
	b->len = 0;
	b->live = 0;
}
