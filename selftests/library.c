// SPDX-License-Identifier: GPL-2.0
/*
 * library: libvfio-async's own behaviour, on whichever backend serves the
 * VM's tier: page frames to ranges, the balloon tracker's last-in
 * first-out order, the channel's error paths, and the example balloon
 * backend (lib/example/, built with pkg-config by scripts/lib-check) run
 * from start to end; and tools/vfio-async-bootsim (copied next to the
 * tests by make check), the seed's boot flow, whose DMA checks must pass,
 * and must fail when its MAP_NOW leaves pages out (-S). The channel's
 * requests and the fallback on stock type1 are selftests/channel's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"
#include "vfio-async.h"

#define MiB	(1ULL << 20)

TEST(pfns_to_ranges)
{
	const uint64_t pfns[] = { 5, 3, 4, 10, 10, 11, 0x100000 };
	struct vfio_async_range r[7];
	unsigned int n;

	n = vfio_async_pfns_to_ranges(pfns, 7, 12, r);
	ASSERT_EQ(3U, n);
	EXPECT_EQ(0x3000ULL, r[0].iova);
	EXPECT_EQ(0x3000ULL, r[0].size);
	EXPECT_EQ(0xa000ULL, r[1].iova);
	EXPECT_EQ(0x2000ULL, r[1].size);
	EXPECT_EQ(0x100000000ULL, r[2].iova);
	EXPECT_EQ(0x1000ULL, r[2].size);
	/* 2 MiB balloon pages. */
	n = vfio_async_pfns_to_ranges(pfns, 3, 21, r);
	ASSERT_EQ(1U, n);
	EXPECT_EQ(3 * 2 * MiB, r[0].iova);
	EXPECT_EQ(3 * 2 * MiB, r[0].size);
	EXPECT_EQ(0U, vfio_async_pfns_to_ranges(pfns, 0, 12, r));
}

static void expect_order(struct __test_metadata *_metadata,
			 struct vfio_async_balloon *b, const uint64_t *want,
			 unsigned int n)
{
	uint64_t got[64];
	unsigned int i, k;

	k = vfio_async_balloon_deflate_order(b, 0, got, 64);
	ASSERT_EQ(n, k);
	for (i = 0; i < n; i++)
		EXPECT_EQ(want[i], got[i]);
	EXPECT_EQ((uint64_t)n, vfio_async_balloon_pages(b));
}

TEST(balloon_tracker)
{
	const uint64_t in[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	const uint64_t out[] = { 10, 3, 99, 5000 };
	const uint64_t again[] = { 3, 7 };
	const uint64_t want1[] = { 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };
	const uint64_t want2[] = { 3, 9, 8, 7, 6, 5, 4, 2, 1 };
	const uint64_t want3[] = { 100999, 100998, 100997, 100996, 100995,
				   1004, 1003, 1002, 1001, 1000 };
	struct vfio_async_balloon *b;
	uint64_t got[8], *big, i;
	unsigned int n;

	ASSERT_EQ(-EINVAL, vfio_async_balloon_new(&b, 0));
	ASSERT_EQ(0, vfio_async_balloon_new(&b, 1 << 20));
	EXPECT_EQ(10U, vfio_async_balloon_inflate(b, in, 10));
	EXPECT_EQ(0U, vfio_async_balloon_inflate(b, in, 3));	/* in already */
	expect_order(_metadata, b, want1, 10);
	/* A guest may name pages not in the balloon: they are not passed on. */
	n = vfio_async_balloon_deflate(b, out, 4, got);
	ASSERT_EQ(2U, n);
	EXPECT_EQ(10ULL, got[0]);
	EXPECT_EQ(3ULL, got[1]);
	EXPECT_FALSE(vfio_async_balloon_contains(b, 3));
	EXPECT_TRUE(vfio_async_balloon_contains(b, 4));
	/* Back in: on top, once, the stale entry below not counted. */
	EXPECT_EQ(1U, vfio_async_balloon_inflate(b, again, 2));
	expect_order(_metadata, b, want2, 9);
	/* Windows of the order, as MAP_NEXT hints take them. */
	n = vfio_async_balloon_deflate_order(b, 7, got, 8);
	ASSERT_EQ(2U, n);
	EXPECT_EQ(2ULL, got[0]);
	EXPECT_EQ(1ULL, got[1]);

	/* Many in and out, from the middle: compaction keeps the order. */
	vfio_async_balloon_clear(b);
	EXPECT_EQ(0ULL, vfio_async_balloon_pages(b));
	big = malloc(100000 * sizeof(*big));
	ASSERT_NE(NULL, big);
	for (i = 0; i < 3; i++) {
		uint64_t k;

		for (k = 0; k < 100000; k++)
			big[k] = 1000 + k;
		vfio_async_balloon_inflate(b, big, 100000);
		for (k = 0; k < 99990; k++)
			big[k] = 1000 + 5 + k;
		vfio_async_balloon_deflate(b, big, 99990, big);
	}
	expect_order(_metadata, b, want3, 10);
	free(big);
	vfio_async_balloon_free(b);
}

TEST(channel_errors)
{
	struct vfio_async_chan_config cfg = { .requests = 4, .ranges = 16 };
	struct vfio_async_range r = { 0x100000000ULL, 2 * MiB };
	struct vfio_async_range many[32];
	struct vfio_async_chan *ch;
	struct vfio_async *va;
	struct vfio_dev v;
	unsigned int i;
	uint8_t *m;

	vfio_dev_init(&v);
	if (vfio_env_missing(VFIO_ASYNC_IOMMU) ||
	    vfio_dev_open_env(&v, VFIO_ASYNC_IOMMU))
		SKIP(return, "needs this module and VFIO_GROUP");
	ASSERT_EQ(0, vfio_async_wrap(&va, v.container));
	EXPECT_EQ(-EINVAL, vfio_async_map(va, 0, NULL, 4096, 1u << 7));
	EXPECT_EQ(-EINVAL, vfio_async_chan_open(va, &(struct vfio_async_chan_config){
		.requests = 8192 }, &ch));
	ASSERT_EQ(0, vfio_async_chan_open(va, &cfg, &ch));
	m = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_EQ(0, vfio_map(v.container, r.iova, m, r.size, VFIO_RW));
	EXPECT_EQ(-EINVAL, vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, 1, &r, 0));
	EXPECT_EQ(-EINVAL, vfio_async_chan_submit(ch, 9, 1, &r, 1));
	for (i = 0; i < 32; i++)
		many[i] = (struct vfio_async_range){ r.iova + i * 4096, 4096 };
	EXPECT_EQ(-EINVAL, vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, 1,
						  many, 32));
	/* Four request slots: the fifth waits for a reap. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, i,
						    &r, 1));
	EXPECT_EQ(-EAGAIN, vfio_async_chan_submit(ch, VFIO_ASYNC_MAP_NOW, 4, &r, 1));
	EXPECT_EQ(4U, vfio_async_chan_in_flight(ch));
	vfio_async_chan_close(ch);	/* with requests in flight */
	vfio_async_close(va);
	vfio_dev_close(&v);
	munmap(m, 2 * MiB);
}

/* The example VMM, from start to end, on this tier's backend. */
TEST(example_balloon_backend)
{
	const char *group = getenv("VFIO_GROUP");
	char self[4096], cmd[4352], line[256], last[256] = "";
	ssize_t len;
	FILE *f;
	int st;

	if (!group)
		SKIP(return, "VFIO_GROUP not set");
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ASSERT_LT(0, len);
	self[len] = 0;
	*strrchr(self, '/') = 0;
	snprintf(cmd, sizeof(cmd), "%s/example/balloon-backend", self);
	if (access(cmd, X_OK))
		SKIP(return, "no example/balloon-backend (scripts/lib-check builds it)");
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s 256 2>&1",
		 group);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		printf("# %s", line);
		strcpy(last, line);
	}
	st = pclose(f);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	EXPECT_STREQ("balloon-backend: ok\n", last);
}

/* Run @cmd; its exit status, its output in @out (the end of it). */
static int run_cmd(const char *cmd, char *out, size_t n)
{
	size_t used = 0;
	char line[256];
	FILE *f = popen(cmd, "r");
	int st;

	out[0] = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		printf("# %s", line);
		if (used + strlen(line) >= n)
			used = 0;
		strcpy(out + used, line);
		used += strlen(line);
	}
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The boot flow on a small guest: every DMA check passes. With -S, the
 * MAP_NOW at the end of the inflation leaves the scattered pages out:
 * their checks must fail (and the run with them), or the checks prove
 * nothing.
 */
FIXTURE(bootsim) {
	int unused;
};

FIXTURE_SETUP(bootsim)
{
}

FIXTURE_TEARDOWN(bootsim)
{
}

TEST_F_TIMEOUT(bootsim, checks_pass_and_can_fail, 300)
{
	char out[4096];

	if (access("./vfio-async-bootsim", X_OK))
		SKIP(return, "no ./vfio-async-bootsim (make check copies it)");
	if (vfio_env_missing(VFIO_ASYNC_IOMMU))
		SKIP(return, "%s", vfio_env_missing(VFIO_ASYNC_IOMMU));
	EXPECT_EQ(0, run_cmd("./vfio-async-bootsim -g 256 -d 8 2>&1", out,
			     sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "failed 0\n"));
	/*
	 * The pages left out are at the top: without hints the sweep, lowest
	 * IOVA first, reaches them seconds after the start is checked.
	 */
	EXPECT_EQ(1, run_cmd("./vfio-async-bootsim -g 512 -d 2 -H -S 2>&1",
			     out, sizeof(out)));
	EXPECT_EQ(NULL, strstr(out, "failed 0\n"));
}

TEST_HARNESS_MAIN
