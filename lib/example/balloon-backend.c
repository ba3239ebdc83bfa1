// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * An example for VMM authors: the calls of libvfio-async a virtio-balloon
 * backend makes, in the order it makes them, without a real guest.
 *
 *   balloon-backend GROUP_PATH [GUEST_MIB]
 *
 * It sets up the container (this module's backend if it is loaded, stock
 * type1 otherwise: the same calls work), maps the guest's low 64 MiB at
 * once and defers the rest, then plays the balloon's part: an inflate
 * (the inflate handler records the pages), the end of the inflation
 * (MAP_NOW of what the guest kept, MAP_NEXT hints in deflate order), and
 * a few deflates, each answered only from the completion callback, as a
 * real backend pushes the deflate's used buffer only then. Everything is
 * driven from one poll() loop, as a VMM's main loop would.
 *
 * Build: cc balloon-backend.c $(pkg-config --cflags --libs vfio-async)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vfio-async.h>

#define MiB		(1ULL << 20)
#define PAGE_SHIFT	12
#define EAGER		(64 * MiB)
#define PER_MSG		256		/* PFNs per message, as Linux sends */

static int fail(const char *what, int err)
{
	fprintf(stderr, "balloon-backend: %s: %s\n", what, strerror(-err));
	return 1;
}

/* The deflate whose answer the "guest" waits for. */
struct pending {
	uint64_t cookie;
	int done;
};

/* Completion callback: here a backend pushes the held deflate element. */
static void on_done(void *opaque, uint64_t cookie, int status,
		    uint64_t error_iova, bool hit)
{
	struct pending *p = opaque;

	if (status)
		fprintf(stderr, "request %llu failed: %s at 0x%llx\n",
			(unsigned long long)cookie, strerror(-status),
			(unsigned long long)error_iova);
	if (cookie == p->cookie) {
		printf("deflate %llu answered (%s)\n", (unsigned long long)cookie,
		       hit ? "already mapped" : "mapped for it");
		p->done = 1;
	}
}

/* The VMM's main loop, until the request @p waits for is answered. */
static int run_until_done(struct vfio_async_chan *ch, struct pending *p)
{
	struct pollfd pfd = { .fd = vfio_async_chan_fd(ch), .events = POLLIN };

	while (!p->done) {
		int ret = poll(&pfd, 1, 10000);

		if (ret <= 0)
			return ret ? -errno : -ETIMEDOUT;
		ret = vfio_async_chan_reap(ch, on_done, p);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *groups[1];
	uint64_t guest = (argc > 2 ? strtoull(argv[2], NULL, 0) : 256) * MiB;
	uint64_t npages = guest >> PAGE_SHIFT, i, *pfns, *got;
	struct vfio_async_balloon *b;
	struct vfio_async_progress pr;
	struct vfio_async_chan *ch;
	struct vfio_async *va;
	struct pending p = { 0 };
	unsigned int n, k;
	uint8_t *ram;
	int ret;

	if (argc < 2 || guest <= EAGER) {
		fprintf(stderr, "usage: balloon-backend GROUP_PATH [GUEST_MIB > 64]\n");
		return 2;
	}
	groups[0] = argv[1];
	ret = vfio_async_open(&va, groups, 1);
	if (ret)
		return fail("open", ret);
	printf("backend: %s\n", vfio_async_native(va) ?
	       "vfio_iommu_async (deferred mapping, balloon channel)" :
	       "stock type1 (everything mapped at once)");

	/* Guest RAM: the low part at once, the rest behind the balloon. */
	ram = mmap(NULL, guest, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return fail("mmap", -errno);
	ret = vfio_async_map(va, 0, ram, EAGER, VFIO_ASYNC_READ | VFIO_ASYNC_WRITE);
	if (!ret)
		ret = vfio_async_map(va, EAGER, ram + EAGER, guest - EAGER,
				     VFIO_ASYNC_READ | VFIO_ASYNC_WRITE |
				     VFIO_ASYNC_DEFER);
	if (ret)
		return fail("map", ret);
	ret = vfio_async_chan_open(va, NULL, &ch);
	if (!ret)
		ret = vfio_async_balloon_new(&b, npages);
	if (ret)
		return fail("channel", ret);

	/* Inflate handler: record what the guest put in, in its order. */
	pfns = malloc(npages * sizeof(*pfns));
	got = malloc(PER_MSG * sizeof(*got));
	if (!pfns || !got)
		return fail("malloc", -ENOMEM);
	for (i = EAGER >> PAGE_SHIFT, n = 0; i < npages; i++)
		if (i % 512)	/* the guest keeps one page in every 2 MiB */
			pfns[n++] = i;
	vfio_async_balloon_inflate(b, pfns, n);
	printf("balloon: %llu MiB\n",
	       (unsigned long long)(vfio_async_balloon_pages(b) << PAGE_SHIFT >> 20));

	/* End of the inflation: what the guest kept is mapped now. */
	for (i = EAGER >> PAGE_SHIFT, n = 0; i < npages; i++)
		if (!vfio_async_balloon_contains(b, i))
			pfns[n++] = i;
	for (k = 0; k < n; k += vfio_async_chan_max_ranges(ch)) {
		unsigned int m = n - k < vfio_async_chan_max_ranges(ch) ?
				 n - k : vfio_async_chan_max_ranges(ch);

		p.cookie++;
		p.done = 0;
		ret = vfio_async_chan_submit_pfns(ch, VFIO_ASYNC_MAP_NOW,
						  p.cookie, pfns + k, m,
						  PAGE_SHIFT);
		if (!ret)
			ret = vfio_async_chan_kick(ch);
		if (!ret)
			ret = run_until_done(ch, &p);
		if (ret)
			return fail("MAP_NOW of what the guest kept", ret);
	}
	printf("the guest may start its device now\n");

	/* Map ahead in the order deflates will take the pages back. */
	n = vfio_async_balloon_deflate_order(b, 0, pfns, 16 * PER_MSG);
	for (k = 0; k < n; k += PER_MSG) {
		ret = vfio_async_chan_submit_pfns(ch, VFIO_ASYNC_MAP_NEXT,
						  1000 + k, pfns + k, PER_MSG,
						  PAGE_SHIFT);
		if (ret)
			return fail("MAP_NEXT", ret);
	}
	vfio_async_chan_kick(ch);

	/* Deflate handler: the guest's pages back only once mapped. */
	for (k = 0; k < 4; k++) {
		n = vfio_async_balloon_deflate_order(b, 0, pfns, PER_MSG);
		n = vfio_async_balloon_deflate(b, pfns, n, got);
		p.cookie = 100 + k;
		p.done = 0;
		ret = vfio_async_chan_submit_pfns(ch, VFIO_ASYNC_MAP_NOW,
						  p.cookie, got, n, PAGE_SHIFT);
		if (!ret)
			ret = vfio_async_chan_kick(ch);
		if (!ret)
			ret = run_until_done(ch, &p);
		if (ret)
			return fail("deflate", ret);
	}

	ret = vfio_async_progress(va, &pr);
	if (ret)
		return fail("progress", ret);
	printf("progress: %llu of %llu MiB deferred mapped\n",
	       (unsigned long long)(pr.mapped_bytes >> 20),
	       (unsigned long long)(pr.deferred_bytes >> 20));

	/* Device reset or guest reboot: the balloon's record is void. */
	vfio_async_balloon_clear(b);
	vfio_async_balloon_free(b);
	vfio_async_chan_close(ch);
	vfio_async_unmap(va, 0, guest, NULL);
	vfio_async_close(va);
	printf("balloon-backend: ok\n");
	return 0;
}
