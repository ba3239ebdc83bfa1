// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-async-bootsim: the start of a VM with a pass-through device, as the
 * KVM Forum 2020 design has it (see the README), played by a VMM built on
 * libvfio-async alone, with QEMU's edu device as the passed-through one.
 *
 *   vfio-async-bootsim [options]
 *
 *   -g MIB     guest RAM (default 1024), laid out as q35 does: below 2 GiB,
 *              the rest from 4 GiB; IOVA = guest-physical address
 *   -e MIB     its low part mapped at once (default 64; the seed kept 4 GiB
 *              of 350: scaled down to this VM)
 *   -m MODE    async (this module: the rest deferred, behind the balloon),
 *              or type1 (everything mapped at once, as stock)
 *   -t TYPE    guest memory: 4k (default) or thp
 *   -o ORDER   the order the balloon takes pages in: linux (the default: 4
 *              MiB blocks from the top of memory down, ascending pages in a
 *              block, as a freshly booted Linux guest's buddy allocator
 *              hands them out), ascending, descending, random, or
 *              file:PATH (one page frame number per line)
 *   -G GRAN    balloon page: 4k (Linux's driver) or 2m (the seed's
 *              optimisation 2)
 *   -p PAGES   balloon pages per message (default 256 for 4k, 8 for 2m)
 *   -d MIB     how much to deflate after the start (default 64)
 *   -u MIB     guest memory in use in the deferred part before the balloon
 *              inflates (default 8), just above the eager part, plus -s
 *              PAGES scattered pages at the top (default 16)
 *   -H         send no MAP_NEXT hints (to see what they are worth)
 *   -w MSGS    hints ahead of the deflates, in messages (default 64)
 *   -S         sabotage: the MAP_NOW at the end of the inflation leaves out
 *              the scattered pages; their DMA check must then fail
 *   -j         also print the result as JSON, prefixed "bootsim-json: "
 *
 * The flow. t0: guest RAM is mmap()ed, fresh (nothing faulted in). The
 * low part is mapped at once; the rest, in async mode, deferred. The
 * guest's virtio_balloon inflates over the deferred part but what the
 * guest uses: messages of PAGES page frames, one in flight, recorded in
 * the balloon tracker. At the end of the inflation one MAP_NOW (through
 * the channel) covers everything not in the balloon: once it completes
 * the guest's device may DMA anywhere the guest owns. That is "VM start",
 * the figure that must not grow with guest size; in type1 mode it is when
 * MAP_DMA of everything returns. Then MAP_NEXT hints go out for the pages
 * the next deflates will take (last in, first out), and the host deflates
 * DEFLATE MiB in messages like the driver's: each one is a MAP_NOW whose
 * completion the "guest" waits for, then an edu DMA into the first and the
 * last page it got back (the ground truth that they are mapped, and map
 * the right memory); the pages still in use are checked the same way at
 * the start. Then it waits until the background has mapped everything.
 *
 * Exit status: 0, or 1 when a DMA check failed or something else did.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "edu.h"
#include "mem.h"
#include "vfio-async.h"
#include "vfio_util.h"

#define KiB		1024ULL
#define MiB		(1024 * KiB)
#define GiB		(1024 * MiB)
#define PAGE		(4 * KiB)
#define LOW_END		(2 * GiB)	/* q35 puts RAM above here at 4 GiB */
#define HIGH_START	(4 * GiB)
#define SCRATCH_IOVA	0x7f00000000ULL	/* edu's bounce page, far away */
#define XFER		64
#define MAX_LAT		65536

static struct {
	uint64_t guest, eager, deflate, used, scatter;
	bool type1, thp, hints, json, sabotage;
	int gran_shift;			/* 12 or 21 */
	unsigned int per_msg, ahead;
	const char *order;
} o = {
	.guest = GiB, .eager = 64 * MiB, .deflate = 64 * MiB, .used = 8 * MiB,
	.scatter = 16, .hints = true, .gran_shift = 12, .ahead = 64,
	.order = "linux",
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bootsim: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* ---- the guest's memory --------------------------------------------------- */

struct guest {
	uint8_t *ram;			/* guest-physical 0 at ram[0] ... */
	uint64_t size;			/* ... of the whole span, holes included */
	uint64_t low, high;		/* RAM below 2 GiB, from 4 GiB */
};

/* The host address of guest-physical @gpa. */
static uint8_t *hva(struct guest *g, uint64_t gpa)
{
	return g->ram + gpa;
}

static bool is_ram(struct guest *g, uint64_t gpa)
{
	return gpa < g->low || (gpa >= HIGH_START && gpa < HIGH_START + g->high);
}

/* Is @gpa in the deferred part (async mode)? */
static bool deferred(struct guest *g, uint64_t gpa)
{
	return is_ram(g, gpa) && gpa >= o.eager;
}

static void guest_alloc(struct guest *g)
{
	g->low = o.guest < LOW_END ? o.guest : LOW_END;
	g->high = o.guest - g->low;
	g->size = g->high ? HIGH_START + g->high : g->low;
	/* One span, the PCI hole included (never touched, never mapped). */
	g->ram = mmap(NULL, g->size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->ram == MAP_FAILED)
		die("mmap guest RAM", errno);
	madvise(g->ram, g->size, o.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

/* ---- the balloon's page order --------------------------------------------- */

struct pages {
	uint64_t *pfn;
	uint64_t n, cap;
};

static void pages_add(struct pages *p, uint64_t pfn)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 4096;
		p->pfn = realloc(p->pfn, p->cap * sizeof(*p->pfn));
		if (!p->pfn)
			die("realloc", ENOMEM);
	}
	p->pfn[p->n++] = pfn;
}

/* Balloon pages the guest uses itself: not to inflate, mapped at start. */
static bool in_use(struct guest *g, uint64_t gpa)
{
	uint64_t top = g->high ? HIGH_START + g->high : g->low;

	return (gpa >= o.eager && gpa < o.eager + o.used) ||
	       (gpa >= top - o.scatter * 64 * PAGE && (gpa / PAGE) % 64 == 0);
}

/* Is any page of the balloon page at @a in use? */
static bool granule_in_use(struct guest *g, uint64_t a)
{
	uint64_t p;

	for (p = a; p < a + (1ULL << o.gran_shift); p += PAGE)
		if (in_use(g, p))
			return true;
	return false;
}

/* Every deferred balloon page not in use, in the order the guest gives. */
static void inflate_order(struct guest *g, struct pages *p)
{
	const uint64_t gran = 1ULL << o.gran_shift, block = 4 * MiB;
	uint64_t top = g->high ? HIGH_START + g->high : g->low, b, a, i;

	if (!strcmp(o.order, "linux")) {
		for (b = (top - 1) / block * block;; b -= block) {
			for (a = b; a < b + block && a < top; a += gran)
				if (deferred(g, a) && !granule_in_use(g, a))
					pages_add(p, a >> o.gran_shift);
			if (!b)
				break;
		}
	} else if (!strcmp(o.order, "ascending") ||
		   !strcmp(o.order, "random")) {
		for (a = 0; a < top; a += gran)
			if (deferred(g, a) && !granule_in_use(g, a))
				pages_add(p, a >> o.gran_shift);
		if (!strcmp(o.order, "random")) {
			srandom(1);
			for (i = p->n - 1; i > 0; i--) {
				uint64_t j = random() % (i + 1), t = p->pfn[i];

				p->pfn[i] = p->pfn[j];
				p->pfn[j] = t;
			}
		}
	} else if (!strcmp(o.order, "descending")) {
		for (a = (top - gran); ; a -= gran) {
			if (deferred(g, a) && !granule_in_use(g, a))
				pages_add(p, a >> o.gran_shift);
			if (!a)
				break;
		}
	} else if (!strncmp(o.order, "file:", 5)) {
		FILE *f = fopen(o.order + 5, "r");
		unsigned long long pfn;

		if (!f)
			die(o.order + 5, errno);
		while (fscanf(f, "%llu", &pfn) == 1)
			if (deferred(g, pfn << o.gran_shift))
				pages_add(p, pfn);
		fclose(f);
	} else {
		die("unknown order (-o)", EINVAL);
	}
}

/* ---- the channel ------------------------------------------------------------ */

struct sim {
	struct guest g;
	struct vfio_dev dev;
	struct edu edu;
	struct vfio_async *va;
	struct vfio_async_chan *ch;
	struct vfio_async_balloon *b;
	uint64_t cookie;
	/* The completion waited for. */
	bool done, hit;
	int status;
	uint64_t error_iova;
	double t0, t_all;		/* the start; everything mapped, or 0 */
	/* Results. */
	double lat_hit[MAX_LAT], lat_miss[MAX_LAT];
	unsigned int nhit, nmiss;
	unsigned int dma_checks, dma_failed;
	unsigned int hinted;		/* messages hinted so far */
};

static void on_done(void *opaque, uint64_t cookie, int status,
		    uint64_t error_iova, bool hit)
{
	struct sim *s = opaque;

	if (cookie != s->cookie)
		return;		/* a hint's */
	s->done = true;
	s->hit = hit;
	s->status = status;
	s->error_iova = error_iova;
}

static void reap(struct sim *s, int timeout_ms)
{
	struct pollfd pfd = { .fd = vfio_async_chan_fd(s->ch), .events = POLLIN };

	poll(&pfd, 1, timeout_ms);
	if (vfio_async_chan_reap(s->ch, on_done, s) < 0)
		die("reap", errno);
}

/* Note when the background has mapped everything, the first time. */
static void note_progress(struct sim *s)
{
	struct vfio_async_progress pr;

	if (!s->t_all && !vfio_async_progress(s->va, &pr) && !pr.pending_bytes)
		s->t_all = now() - s->t0;
}

/* Submit one request and wait for its completion; its status. */
static int request(struct sim *s, enum vfio_async_op op,
		   const struct vfio_async_range *r, unsigned int n)
{
	double t0 = now();
	int ret;

	s->cookie++;
	s->done = false;
	while ((ret = vfio_async_chan_submit(s->ch, op, s->cookie, r, n)) ==
	       -EAGAIN)
		reap(s, 10);
	if (ret)
		die("submit", ret);
	ret = vfio_async_chan_kick(s->ch);
	if (ret)
		die("kick", ret);
	while (!s->done) {
		if (now() - t0 > 120)
			die("no completion within 120 s", ETIMEDOUT);
		reap(s, 100);
	}
	note_progress(s);
	return s->status;
}

/*
 * Hints for the deflates to come, in their order (last in, first out):
 * MAP_NEXT for each of the next @upto messages from the balloon's top not
 * hinted yet (s->hinted of them are).
 */
static void send_hints(struct sim *s, unsigned int upto)
{
	uint64_t *pfns = malloc(o.per_msg * sizeof(*pfns));
	struct vfio_async_range *r = malloc(o.per_msg * sizeof(*r));

	if (!pfns || !r)
		die("malloc", ENOMEM);
	for (; s->hinted < upto; s->hinted++) {
		unsigned int n = vfio_async_balloon_deflate_order(s->b,
				(uint64_t)s->hinted * o.per_msg, pfns, o.per_msg);
		unsigned int nr;
		int ret;

		if (!n)
			break;
		nr = vfio_async_pfns_to_ranges(pfns, n, o.gran_shift, r);
		s->cookie++;
		ret = vfio_async_chan_submit(s->ch, VFIO_ASYNC_MAP_NEXT,
					     s->cookie, r, nr);
		if (ret == -EAGAIN) {
			reap(s, 0);
			break;
		}
		if (ret)
			die("MAP_NEXT", ret);
	}
	vfio_async_chan_kick(s->ch);
	free(pfns);
	free(r);
}

/* ---- DMA checks ----------------------------------------------------------- */

static const uint8_t pattern[XFER] = "vfio-async-bootsim: this DMA went through the IOMMU";

/*
 * edu writes the pattern (in its buffer since the start) at @gpa, whose
 * bytes were cleared first: it must land in the guest's page. One DMA,
 * about 100 ms under QEMU.
 */
static void dma_check(struct sim *s, uint64_t gpa)
{
	uint8_t *p = hva(&s->g, gpa);

	s->dma_checks++;
	memset(p, 0, XFER);
	if (edu_dma(&s->edu, gpa, 0, XFER, true) || memcmp(p, pattern, XFER)) {
		s->dma_failed++;
		fprintf(stderr, "bootsim: DMA check FAILED at guest-physical 0x%llx\n",
			(unsigned long long)gpa);
	}
}

/* ---- the phases ----------------------------------------------------------- */

static void map_guest(struct sim *s)
{
	struct guest *g = &s->g;
	const unsigned int rw = VFIO_ASYNC_READ | VFIO_ASYNC_WRITE;
	int ret;

	if (o.type1) {
		ret = vfio_async_map(s->va, 0, hva(g, 0), g->low, rw);
		if (!ret && g->high)
			ret = vfio_async_map(s->va, HIGH_START, hva(g, HIGH_START),
					     g->high, rw);
		if (ret)
			die("MAP_DMA", ret);
		return;
	}
	ret = vfio_async_map(s->va, 0, hva(g, 0), o.eager, rw);
	if (!ret && g->low > o.eager)
		ret = vfio_async_map(s->va, o.eager, hva(g, o.eager),
				     g->low - o.eager, rw | VFIO_ASYNC_DEFER);
	if (!ret && g->high)
		ret = vfio_async_map(s->va, HIGH_START, hva(g, HIGH_START),
				     g->high, rw | VFIO_ASYNC_DEFER);
	if (ret)
		die("map", ret);
}

/* The guest's balloon driver fills the balloon, message by message. */
static unsigned int inflate(struct sim *s, struct pages *order)
{
	unsigned int msgs = 0;
	uint64_t i;

	for (i = 0; i < order->n; i += o.per_msg, msgs++) {
		unsigned int n = order->n - i < o.per_msg ? order->n - i :
							    o.per_msg;

		vfio_async_balloon_inflate(s->b, order->pfn + i, n);
	}
	return msgs;
}

/* Everything deferred the guest owns (not in the balloon), mapped now. */
static void map_owned(struct sim *s)
{
	const unsigned int max = vfio_async_chan_max_ranges(s->ch);
	struct vfio_async_range *r = malloc(max * sizeof(*r));
	struct guest *g = &s->g;
	uint64_t top = g->high ? HIGH_START + g->high : g->low, a;
	unsigned int n = 0;
	int ret;

	if (!r)
		die("malloc", ENOMEM);
	for (a = o.eager; a < top; a += PAGE) {
		if (!deferred(g, a) ||
		    vfio_async_balloon_contains(s->b, a >> o.gran_shift))
			continue;
		/* The sabotage: the scattered pages up there left out. */
		if (o.sabotage && a >= o.eager + o.used)
			continue;
		if (n && r[n - 1].iova + r[n - 1].size == a) {
			r[n - 1].size += PAGE;
			continue;
		}
		if (n == max) {
			ret = request(s, VFIO_ASYNC_MAP_NOW, r, n);
			if (ret)
				die("MAP_NOW of what the guest owns", ret);
			n = 0;
		}
		r[n].iova = a;
		r[n].size = PAGE;
		n++;
	}
	if (n) {
		ret = request(s, VFIO_ASYNC_MAP_NOW, r, n);
		if (ret)
			die("MAP_NOW of what the guest owns", ret);
	}
	free(r);
}

/* The pages in use: first and last of the low run, every scattered one. */
static void check_owned(struct sim *s)
{
	struct guest *g = &s->g;
	uint64_t top = g->high ? HIGH_START + g->high : g->low, a;

	dma_check(s, 0);
	dma_check(s, o.eager - PAGE);
	if (o.used) {
		dma_check(s, o.eager);
		dma_check(s, o.eager + o.used - PAGE);
	}
	for (a = top - o.scatter * 64 * PAGE; a < top; a += 64 * PAGE)
		if (deferred(g, a) &&
		    !vfio_async_balloon_contains(s->b, a >> o.gran_shift))
			dma_check(s, a);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, unsigned int n, double q)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(unsigned int)(q * (n - 1) + 0.5)];
}

/* The host deflates: messages like the driver's, each checked by DMA. */
static unsigned int deflate(struct sim *s)
{
	const uint64_t gran = 1ULL << o.gran_shift;
	uint64_t *pfns = malloc(o.per_msg * sizeof(*pfns));
	uint64_t *got = malloc(o.per_msg * sizeof(*got));
	struct vfio_async_range *r = malloc(o.per_msg * sizeof(*r));
	uint64_t left = o.deflate;
	unsigned int msgs = 0;

	if (!pfns || !got || !r)
		die("malloc", ENOMEM);
	while (left && vfio_async_balloon_pages(s->b)) {
		unsigned int n, nr;
		double t0;
		int ret;

		n = vfio_async_balloon_deflate_order(s->b, 0, pfns, o.per_msg);
		n = vfio_async_balloon_deflate(s->b, pfns, n, got);
		nr = vfio_async_pfns_to_ranges(got, n, o.gran_shift, r);
		t0 = now();
		ret = request(s, VFIO_ASYNC_MAP_NOW, r, nr);
		if (ret)
			die("MAP_NOW of a deflate", ret);
		if (s->hit && s->nhit < MAX_LAT)
			s->lat_hit[s->nhit++] = now() - t0;
		else if (!s->hit && s->nmiss < MAX_LAT)
			s->lat_miss[s->nmiss++] = now() - t0;
		/* The guest's pages, back: its device can reach them. */
		dma_check(s, r[0].iova);
		dma_check(s, r[nr - 1].iova + r[nr - 1].size - PAGE);
		msgs++;
		left = left > n * gran ? left - n * gran : 0;
		/* One message fewer ahead of the top: hint the next. */
		if (s->hinted)
			s->hinted--;
		if (o.hints)
			send_hints(s, o.ahead);
	}
	free(pfns);
	free(got);
	free(r);
	return msgs;
}

static void usage(void)
{
	fprintf(stderr, "usage: vfio-async-bootsim [-g MIB] [-e MIB] [-m async|type1] [-t 4k|thp] [-o ORDER] [-G 4k|2m] [-p PAGES] [-d MIB] [-u MIB] [-s PAGES] [-w MSGS] [-H] [-S] [-j]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "g:e:m:t:o:G:p:d:u:s:w:HSj")) != -1) {
		switch (c) {
		case 'g': o.guest = strtoull(optarg, NULL, 0) * MiB; break;
		case 'e': o.eager = strtoull(optarg, NULL, 0) * MiB; break;
		case 'm': o.type1 = !strcmp(optarg, "type1"); break;
		case 't': o.thp = !strcmp(optarg, "thp"); break;
		case 'o': o.order = optarg; break;
		case 'G': o.gran_shift = !strcmp(optarg, "2m") ? 21 : 12; break;
		case 'p': o.per_msg = strtoul(optarg, NULL, 0); break;
		case 'd': o.deflate = strtoull(optarg, NULL, 0) * MiB; break;
		case 'u': o.used = strtoull(optarg, NULL, 0) * MiB; break;
		case 's': o.scatter = strtoull(optarg, NULL, 0); break;
		case 'w': o.ahead = strtoul(optarg, NULL, 0); break;
		case 'H': o.hints = false; break;
		case 'S': o.sabotage = true; break;
		case 'j': o.json = true; break;
		default: usage();
		}
	}
	if (!o.per_msg)
		o.per_msg = o.gran_shift == 21 ? 8 : 256;
	if (o.eager < 2 * MiB || o.eager % (2 * MiB) ||
	    o.eager + o.used >= o.guest || o.guest % (2 * MiB))
		die("sizes: -e and -g in 2 MiB steps, -e + -u below -g", EINVAL);
}

int main(int argc, char **argv)
{
	struct vfio_async_chan_stats cs;
	struct pages order = { 0 };
	double t0, t_start, t_all, t_map;
	unsigned int msgs_in, msgs_out;
	struct sim *s;
	int ret;

	parse(argc, argv);
	s = calloc(1, sizeof(*s));
	if (!s)
		die("calloc", ENOMEM);
	vfio_dev_init(&s->dev);
	edu_init(&s->edu);
	ret = vfio_dev_open_env(&s->dev, o.type1 ? VFIO_TYPE1v2_IOMMU :
						   VFIO_ASYNC_IOMMU);
	if (ret)
		die(s->dev.step, ret);
	ret = edu_open(&s->edu, s->dev.device);
	if (!ret)
		ret = edu_scratch_map(&s->edu, s->dev.container, SCRATCH_IOVA);
	if (!ret)
		ret = edu_buf_write(&s->edu, 0, pattern, XFER);
	if (ret)
		die("edu", ret);
	ret = vfio_async_wrap(&s->va, s->dev.container);
	if (!ret)
		ret = vfio_async_chan_open(s->va, NULL, &s->ch);
	if (ret)
		die("libvfio-async", ret);
	if (o.type1 == vfio_async_native(s->va))
		die(o.type1 ? "type1 mode, but this module serves type1v2 (drop-in?)" :
			      "async mode, but the module is not there", EINVAL);

	guest_alloc(&s->g);
	ret = vfio_async_balloon_new(&s->b, s->g.size >> o.gran_shift);
	if (ret)
		die("balloon", ret);
	inflate_order(&s->g, &order);

	/* The VMM starts. */
	s->t0 = t0 = now();
	map_guest(s);
	t_map = now() - t0;
	msgs_in = inflate(s, &order);
	if (!o.type1)
		map_owned(s);
	t_start = now() - t0;
	note_progress(s);
	/* From here on the guest's device may DMA anywhere the guest owns. */
	check_owned(s);
	if (o.hints)
		send_hints(s, o.ahead);
	msgs_out = deflate(s);

	while (!s->t_all) {
		usleep(2000);
		note_progress(s);
	}
	t_all = s->t_all;
	vfio_async_chan_stats(s->ch, &cs);

	printf("bootsim: %s, guest %llu MiB (%s, low %llu MiB at once), balloon %s pages in %s order, hints %s\n",
	       o.type1 ? "stock type1" : "vfio_iommu_async",
	       (unsigned long long)(o.guest / MiB), o.thp ? "THP" : "4 KiB",
	       (unsigned long long)(o.type1 ? o.guest / MiB : o.eager / MiB),
	       o.gran_shift == 21 ? "2 MiB" : "4 KiB", o.order,
	       o.hints ? "on" : "off");
	printf("  VM start          %8.3f s (the first maps %.3f s, %u inflate messages, %llu MiB in the balloon)\n",
	       t_start, t_map, msgs_in,
	       (unsigned long long)((vfio_async_balloon_pages(s->b) << o.gran_shift) / MiB));
	printf("  all mapped        %8.3f s\n", t_all);
	printf("  deflates          %8u (%llu MiB), hits %u, misses %u, hit rate %.1f%%\n",
	       msgs_out, (unsigned long long)(o.deflate / MiB), s->nhit,
	       s->nmiss, msgs_out ? 100.0 * s->nhit / msgs_out : 0.0);
	printf("  deflate latency   hit p50 %.0f us p99 %.0f us; miss p50 %.0f us p99 %.0f us\n",
	       1e6 * pct(s->lat_hit, s->nhit, 0.5),
	       1e6 * pct(s->lat_hit, s->nhit, 0.99),
	       1e6 * pct(s->lat_miss, s->nmiss, 0.5),
	       1e6 * pct(s->lat_miss, s->nmiss, 0.99));
	printf("  kicks             %.2f per request (%llu kicks, %llu saved, %llu requests)\n",
	       cs.requests ? (double)cs.kicks / cs.requests : 0.0,
	       (unsigned long long)cs.kicks, (unsigned long long)cs.kicks_saved,
	       (unsigned long long)cs.requests);
	printf("  DMA checks        %u, failed %u\n", s->dma_checks, s->dma_failed);
	if (o.json)
		printf("bootsim-json: {\"mode\": \"%s\", \"guest_mib\": %llu, \"memory\": \"%s\", \"eager_mib\": %llu, \"granule\": \"%s\", \"order\": \"%s\", \"hints\": %s, \"vm_start_s\": %.4f, \"first_maps_s\": %.4f, \"all_mapped_s\": %.4f, \"inflate_msgs\": %u, \"deflates\": %u, \"hits\": %u, \"misses\": %u, \"hit_rate\": %.4f, \"hit_p50_us\": %.0f, \"hit_p99_us\": %.0f, \"miss_p50_us\": %.0f, \"miss_p99_us\": %.0f, \"requests\": %llu, \"kicks\": %llu, \"kicks_saved\": %llu, \"dma_checks\": %u, \"dma_failed\": %u}\n",
		       o.type1 ? "type1" : "async",
		       (unsigned long long)(o.guest / MiB), o.thp ? "thp" : "4k",
		       (unsigned long long)(o.type1 ? o.guest / MiB : o.eager / MiB),
		       o.gran_shift == 21 ? "2m" : "4k", o.order,
		       o.hints ? "true" : "false", t_start, t_map, t_all, msgs_in,
		       msgs_out, s->nhit, s->nmiss,
		       msgs_out ? (double)s->nhit / msgs_out : 0.0,
		       1e6 * pct(s->lat_hit, s->nhit, 0.5),
		       1e6 * pct(s->lat_hit, s->nhit, 0.99),
		       1e6 * pct(s->lat_miss, s->nmiss, 0.5),
		       1e6 * pct(s->lat_miss, s->nmiss, 0.99),
		       (unsigned long long)cs.requests,
		       (unsigned long long)cs.kicks,
		       (unsigned long long)cs.kicks_saved, s->dma_checks,
		       s->dma_failed);

	vfio_async_chan_close(s->ch);
	vfio_async_balloon_free(s->b);
	vfio_async_close(s->va);
	edu_close(&s->edu);
	vfio_dev_close(&s->dev);
	return s->dma_failed ? 1 : 0;
}
