// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: a stateful, seedable fuzzer of the vfio_iommu_async container API.
 *
 *   fuzz [-s SEED[,SEED...]] [-t SECONDS] [-T SECONDS] [-p PROCS] [-n STEPS]
 *        [-D PERMILLE] [-v]
 *
 *   -s  seeds to run (decimal or 0x hex); default: fresh random seeds
 *   -t  time budget of the whole run (default 60 s); with -s it is split
 *       between the seeds given
 *   -T  seconds per generated seed when -s is not given (default 20)
 *   -p  worker processes per seed (default 2, at most 8)
 *   -n  stop each worker after this many steps (for reproduction)
 *   -D  DMA checks per thousand steps (default 35)
 *   -v  print every step
 *
 * Output is TAP: one "ok"/"not ok" line per seed, diagnostics as "#"
 * lines, and a closing "# fuzz totals:" line that scripts/fuzz reads.
 *
 * Design
 * ------
 * Each seed forks PROCS workers. Worker i draws every decision from its own
 * generator, seeded from (SEED, i), so its sequence of operations depends on
 * nothing else: not on the other workers, not on timing. A worker owns one
 * container at a time and a model of it:
 *   - the mappings (IOVA, size, flags, sync or deferred, which bytes of
 *     which of its memory regions back them), the usable IOVA ranges and
 *     the entry limit read from GET_INFO when the container was set up;
 *   - its memory: six regions (4 KiB pages, THP, and an untouched one that
 *     only the background ever faults in), each with a shadow copy of what
 *     it must hold, which pages are present (munmap punches holes) and
 *     which are read-only (mprotect);
 *   - the edu device of each group it holds, and what its buffer holds.
 * The two edu groups are shared by all workers through flock()ed lock
 * files: a worker takes a group (blocking, always in index order, so no
 * deadlock), keeps it for a lease of a few hundred steps at most, then lets
 * it go; blocking changes timing only, never the sequence.
 *
 * Operations: MAP_DMA, MAP_DMA_DEFERRED with and without NOW, UNMAP_DMA of
 * exact, covering, bisecting and empty ranges and FLAG_ALL, GET_STATUS,
 * GET_INFO, CHECK_EXTENSION, each also with boundary and invalid arguments
 * (0, unaligned, huge, wrapping, beyond the aperture, in the MSI window,
 * overlapping, argsz too short/too long/with a non-zero tail, unknown flags,
 * NULL and half-readable argument pointers); group detach (UNSET_CONTAINER,
 * also with the device still open: EBUSY) and attach (SET_CONTAINER +
 * SET_IOMMU, or joining a live container), closing the container fd with
 * groups attached, device open/close, munmap and mprotect of memory under
 * mappings (and mmap back), waiting for the background, edu DMA, and
 * forking a child that maps into the container and is SIGKILLed at a
 * random moment.
 *
 * Invariants, checked after every step, none of them timing dependent:
 *   - every ioctl succeeds exactly when the model says it must, and fails
 *     with one of the errnos the model allows (several when the order of
 *     the checks is not part of the API);
 *   - GET_STATUS: deferred_bytes and sync_bytes equal the model's,
 *     mapped + pending + failed == deferred, sync + mapped pages <=
 *     pinned_pages <= that + what `threads` chunks in flight can pin (equal
 *     once nothing is pending), failed_bytes never exceeds the size of the
 *     deferred mappings whose memory was unmapped or write-protected under
 *     them ("tainted": only those may fail; the others must map), and a
 *     first_error points into such a range;
 *   - UNMAP_DMA returns exactly the bytes the model removes;
 *   - VmLck of the worker equals the bytes the model says it has charged;
 *   - GET_INFO: DMA_AVAIL == limit - mappings, the IOVA ranges unchanged;
 *   - DMA (edu, at a limited rate, ~100 ms each): to a sampled IOVA of a
 *     fully mapped mapping (sync, or deferred once GET_STATUS shows nothing
 *     pending) it lands in exactly the right bytes of the right page and
 *     nowhere else (all regions compared with their shadows); reads return
 *     the right bytes; a write to an unmapped IOVA (next to mappings, in
 *     ranges just unmapped, beyond the aperture) or through a read-only
 *     mapping changes nothing;
 *   - a child's mappings: after it is killed, unmapping its IOVA window
 *     returns exactly what it reported mapping (plus the one operation it
 *     may have been killed in), and everything adds up again.
 * When every worker of a seed has exited: pins outstanding
 * (nr_foll_pin_acquired - released) are back to their value before the
 * seed, /sys/kernel/vfio_async/{containers,pinned_pages,deferred_bytes,
 * sync_bytes,mapped_bytes,pending_bytes,failed_bytes} are 0, and the kernel
 * log has no WARNING/BUG/Oops since the seed started.
 *
 * A violation prints the seed, worker, step and the last operations, and
 * a command line that replays the same sequence (`-s SEED -p PROCS -n N`).
 * Some workers run unprivileged (uid 65534, RLIMIT_MEMLOCK of 16-64 MiB):
 * the model then predicts ENOMEM, sync and deferred charges together.
 *
 * VFIO_SELFTEST_SABOTAGE (see lib/vfio_util.h) applies to the well-formed
 * maps and unmaps: with any of its modes the fuzzer must report violations.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edu.h"
#include "kmsg.h"
#include "vfio-async.h"
#include "mem.h"
#include "proc.h"
#include "vfio_util.h"

#define P		4096ULL
#define MiB		(1ULL << 20)
#define CHUNK		(2 * MiB)
#define MAXP		8
#define MAX_MAPS	160
#define NREG		6
#define FRESH_REG	5		/* never touched by the CPU first */
#define NGROUPS		2
#define WIN_BASE	0x40000000ULL	/* where valid random maps go */
#define WIN_SIZE	(512 * MiB)
#define CHILD_WIN	0x70000000ULL	/* a child's maps go here */
#define CHILD_WIN_SIZE	(64 * MiB)
#define SCRATCH_IOVA	0x10000000ULL	/* edu's bounce page */
#define MODEL_CAP	(96 * MiB)	/* bytes mapped per container, at most */
#define HUGE_VMA	(256 * MiB)	/* unprivileged only: for ENOMEM */
#define BAR_AREA	(4 * MiB)	/* per group, for edu's BAR0 */
#define SETTLE_MS	120000
#define TRACE		24
#define MAX_TAINT	512
#define MSI_START	0xfee00000ULL

#define F_R		VFIO_ASYNC_MAP_FLAG_READ	/* == VFIO_DMA_MAP_FLAG_READ */
#define F_W		VFIO_ASYNC_MAP_FLAG_WRITE
#define F_NOW		VFIO_ASYNC_MAP_FLAG_NOW

/* Expected outcomes: a set of errnos; the empty set means success. */
enum {
	X_EINVAL = 1 << 0, X_EEXIST = 1 << 1, X_ENOSPC = 1 << 2,
	X_EFAULT = 1 << 3, X_ENOMEM = 1 << 4, X_E2BIG = 1 << 5,
	X_EBUSY = 1 << 6, X_ENODEV = 1 << 7, X_EBADF = 1 << 8,
	X_EOPNOTSUPP = 1 << 9,
	X_MAYBE = 1 << 10,	/* or success: the kernel may go either way */
	X_EBADFD = 1 << 11,
	X_OTHER = 1 << 30,
};

static unsigned int errbit(int err)
{
	switch (err) {
	case EINVAL: return X_EINVAL;
	case EEXIST: return X_EEXIST;
	case ENOSPC: return X_ENOSPC;
	case EFAULT: return X_EFAULT;
	case ENOMEM: return X_ENOMEM;
	case E2BIG: return X_E2BIG;
	case EBUSY: return X_EBUSY;
	case ENODEV: return X_ENODEV;
	case EBADF: return X_EBADF;
	case EOPNOTSUPP: return X_EOPNOTSUPP;
	case EBADFD: return X_EBADFD;
	default: return X_OTHER;
	}
}

static const char *xstr(unsigned int x, char *buf, size_t n)
{
	static const char *const names[] = {
		"EINVAL", "EEXIST", "ENOSPC", "EFAULT", "ENOMEM", "E2BIG",
		"EBUSY", "ENODEV", "EBADF", "EOPNOTSUPP", "success", "EBADFD",
	};
	size_t i, o = 0;

	if (!x)
		return "success";
	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (x & (1u << i))
			o += snprintf(buf + o, n - o, "%s%s", o ? "|" : "",
				      names[i]);
	if (x & X_OTHER)
		snprintf(buf + o, n - o, "%sother", o ? "|" : "");
	return buf;
}

/* --- generator ----------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_next(struct rng *r)
{
	return mix(r->s += 0x9e3779b97f4a7c15ULL);
}

static uint64_t rnd(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static bool chance(struct rng *r, unsigned int pct)
{
	return rnd(r, 100) < pct;
}

/* --- shared state between the parent and the workers --------------------- */

struct wstats {
	long steps, sequences, dma, children, ok_ops, err_ops, settles;
	long racing;		/* steps that ended with work pending */
	long fail_step;
	int failed, unpriv;
	char msg[480];
};

struct shared {
	volatile int abort;
	struct wstats w[MAXP];
};

/* --- options -------------------------------------------------------------- */

static struct {
	int procs;
	long max_steps;
	int dma_permille;
	bool verbose;
	int threads;
	bool dropin;
	const char *group[NGROUPS];
	const char *bdf[NGROUPS];
	int ngroups;
} opt = { .procs = 2, .dma_permille = 35 };

static struct shared *shm;

/* --- the worker ----------------------------------------------------------- */

struct region {
	uint8_t *va;
	size_t size;
	bool thp, fresh;
	uint8_t *shadow;	/* what the memory must hold */
	uint8_t *present;	/* per page: mapped in the process */
	uint8_t *ro;		/* per page: PROT_READ only */
	uint8_t *kind;		/* per page: what backs it (enum page_kind) */
	uint32_t seed, gen;
};

/*
 * Deferred mappings take only memory whose faults cannot wait on user
 * space: anonymous and memfd (shmem) pages, not ramfs files.
 */
enum page_kind { PK_ANON, PK_MEMFD, PK_RAMFS };

/* Where ramfs is mounted for op_mmap_file(), or "" (then memfd only). */
static char ramfs_dir[64];

struct mapping {
	uint64_t iova, size;
	int reg;		/* region backing it, -1 for the scratch page */
	uint64_t off;		/* offset in that region */
	uint32_t flags;		/* F_R | F_W */
	bool deferred;		/* made by MAP_DMA_DEFERRED without NOW */
	bool tainted;		/* its memory changed under it: unverifiable */
	bool scratch;
	bool pfnmap;		/* edu's BAR0: device memory, never pinned */
};

struct grp {
	int lockfd;
	int fd;			/* group fd, -1 when not held */
	bool attached;		/* in our container */
	int dev;		/* device fd, -1 when closed */
	struct edu edu;
	uint8_t ebuf[EDU_BUF_SIZE];	/* edu's buffer, where known */
	uint8_t eknown[EDU_BUF_SIZE];
	long lease_end;		/* step at which it is given back */
};

struct range {
	uint64_t start, end;	/* [start, end) */
};

struct worker {
	int idx;
	uint64_t seed;
	struct rng rng;
	bool unpriv;
	uint64_t rlimit;	/* bytes; 0 = CAP_IPC_LOCK, no limit */
	long lck_base;
	long step;
	long deadline_ms;

	struct grp g[NGROUPS];
	int container;		/* -1: none open */
	bool iommu;		/* VFIO_SET_IOMMU done: the model is live */
	char cdir[PATH_MAX];	/* its sysfs directory */

	struct mapping maps[MAX_MAPS];
	int nmaps;
	struct vfio_iova_range ranges[16];
	uint32_t nranges;
	long dma_limit;

	struct region reg[NREG];
	uint8_t *huge;		/* HUGE_VMA, untouched, unprivileged only */
	uint8_t *guard;		/* a PROT_NONE page */
	uint8_t *scratch;	/* edu bounce page, not in any region */
	uint8_t sshadow[P];
	uint8_t *arg;		/* 2 RW pages + 1 PROT_NONE, for arguments */
	uint8_t *ro_page;	/* a read-only page */
	uint8_t *bar_area;	/* where the groups' BAR0 go */

	/* The container's balloon channel (libvfio-async), opened on use. */
	struct vfio_async *va;
	struct vfio_async_chan *chan;
	long chans;			/* requests sent through it */

	struct range taint[MAX_TAINT];	/* this container's tainted ranges */
	int ntaint;
	bool taint_overflow;
	struct range unmapped[8];	/* recently unmapped IOVA ranges */
	int nunmapped;

	char desc[256];
	char trace[TRACE][288];
	struct wstats *st;
};


/* Print one line in one write(), so workers' lines never interleave. */
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, n) < 0)
		return;
}

static void worker_cleanup(struct worker *w);

static void __attribute__((format(printf, 2, 3), noreturn))
violation(struct worker *w, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	int i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("# FAIL seed 0x%llx worker %d step %ld: %s",
	    (unsigned long long)w->seed, w->idx, w->step, msg);
	say("#   in: %s", w->desc);
	say("#   last steps (oldest first):");
	for (i = 0; i < TRACE; i++) {
		const char *t = w->trace[(w->step + 1 + i) % TRACE];

		if (t[0])
			say("#     %s", t);
	}
	say("#   model: %d mappings, iommu %d, container %d", w->nmaps,
	    w->iommu, w->container);
	for (i = 0; i < w->nmaps; i++) {
		struct mapping *m = &w->maps[i];

		say("#     [%d] iova 0x%llx size 0x%llx %s%s%s%s reg %d off 0x%llx",
		    i, (unsigned long long)m->iova, (unsigned long long)m->size,
		    m->deferred ? "deferred" : "sync",
		    m->flags & F_R ? " R" : "", m->flags & F_W ? " W" : "",
		    m->tainted ? " tainted" : "", m->reg,
		    (unsigned long long)m->off);
	}
	say("#   reproduce: ./fuzz -s 0x%llx -p %d -n %ld -v",
	    (unsigned long long)(w->seed), opt.procs, w->step + 1);
	w->st->failed = 1;
	w->st->fail_step = w->step;
	snprintf(w->st->msg, sizeof(w->st->msg), "worker %d step %ld: %s",
		 w->idx, w->step, msg);
	shm->abort = 1;
	worker_cleanup(w);
	_exit(1);
}

/* Set the description of the step under way (and the trace). */
static void __attribute__((format(printf, 2, 3)))
step_desc(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->desc, sizeof(w->desc), fmt, ap);
	va_end(ap);
	snprintf(w->trace[w->step % TRACE], sizeof(w->trace[0]), "#%ld %s",
		 w->step, w->desc);
	if (opt.verbose)
		say("# w%d #%ld %s", w->idx, w->step, w->desc);
}

/* Check an outcome (0 or -errno) against the expected set. */
static void expect(struct worker *w, unsigned int want, int ret,
		   const char *what)
{
	char b[64];

	if (ret == 0 && (want == 0 || (want & X_MAYBE))) {
		w->st->ok_ops++;
		return;
	}
	if (ret < 0 && (errbit(-ret) & want)) {
		w->st->err_ops++;
		return;
	}
	violation(w, "%s: got %s, model expects %s", what,
		  ret ? strerror(-ret) : "success", xstr(want, b, sizeof(b)));
}

/* --- model queries -------------------------------------------------------- */

static int overlap(struct worker *w, uint64_t iova, uint64_t size)
{
	uint64_t last = iova + size - 1;
	int i;

	for (i = 0; i < w->nmaps; i++)
		if (w->maps[i].iova <= last &&
		    iova <= w->maps[i].iova + w->maps[i].size - 1)
			return i;
	return -1;
}

static bool usable(struct worker *w, uint64_t iova, uint64_t size)
{
	uint64_t last = iova + size - 1;
	uint32_t i;

	for (i = 0; i < w->nranges; i++)
		if (iova >= w->ranges[i].start && last <= w->ranges[i].end)
			return true;
	return false;
}

#define ALL_BYTES	0
#define SYNC_BYTES	1
#define DEFERRED_BYTES	2
#define TAINTED_BYTES	3
#define LOCKED_BYTES	4
#define SYNC_PINNED	5
#define DEFERRED_PFNMAP	6

static uint64_t model_bytes(struct worker *w, int which)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < w->nmaps; i++) {
		struct mapping *m = &w->maps[i];

		if (which == ALL_BYTES || (which == SYNC_BYTES && !m->deferred) ||
		    (which == DEFERRED_BYTES && m->deferred) ||
		    (which == TAINTED_BYTES && m->deferred && m->tainted) ||
		    /* locked_vm: deferred charged whole; sync as pinned */
		    (which == LOCKED_BYTES && (m->deferred || !m->pfnmap)) ||
		    (which == SYNC_PINNED && !m->deferred && !m->pfnmap) ||
		    (which == DEFERRED_PFNMAP && m->deferred && m->pfnmap))
			n += m->size;
	}
	return n;
}
/* Which region holds [va, va + size) entirely, or -1. */
static int region_of(struct worker *w, uint64_t va, uint64_t size,
		     uint64_t *off)
{
	int i;

	for (i = 0; i < NREG; i++) {
		uint64_t b = (uintptr_t)w->reg[i].va;

		if (va >= b && size <= w->reg[i].size &&
		    va - b <= w->reg[i].size - size) {
			*off = va - b;
			return i;
		}
	}
	return -1;
}

/*
 * Can [va, va + size) be pinned with @flags? Only ranges inside one region
 * (each is fenced by PROT_NONE pages), or inside the huge VMA, can.
 */
static bool vaddr_ok(struct worker *w, uint64_t va, uint64_t size,
		     uint32_t flags)
{
	uint64_t off, pg;
	int r;

	if (w->huge && va >= (uintptr_t)w->huge && size <= HUGE_VMA &&
	    va - (uintptr_t)w->huge <= HUGE_VMA - size)
		return true;
	for (r = 0; r < NGROUPS; r++) {
		uint64_t b = (uintptr_t)w->bar_area + r * BAR_AREA;

		if (w->g[r].dev >= 0 && va >= b && size <= w->g[r].edu.bar_size &&
		    va - b <= w->g[r].edu.bar_size - size)
			return true;
	}
	r = region_of(w, va, size, &off);
	if (r < 0)
		return false;
	for (pg = off / P; pg < (off + size + P - 1) / P; pg++) {
		if (!w->reg[r].present[pg])
			return false;
		if ((flags & F_W) && w->reg[r].ro[pg])
			return false;
	}
	return true;
}

/* Can the memory at [va, va + size) back a deferred mapping? */
static bool deferrable(struct worker *w, uint64_t va, uint64_t size)
{
	uint64_t off, pg;
	int r;

	for (r = 0; r < NGROUPS; r++) {
		uint64_t b = (uintptr_t)w->bar_area + r * BAR_AREA;

		if (va < b + BAR_AREA && b < va + size)
			return false;	/* device memory */
	}
	r = region_of(w, va, size, &off);
	if (r < 0)
		return true;	/* the huge VMA, or not memory at all */
	for (pg = off / P; pg < (off + size + P - 1) / P; pg++)
		if (w->reg[r].present[pg] && w->reg[r].kind[pg] == PK_RAMFS)
			return false;
	return true;
}

static void taint_add(struct worker *w, uint64_t start, uint64_t size)
{
	if (w->ntaint == MAX_TAINT) {
		w->taint_overflow = true;
		return;
	}
	w->taint[w->ntaint].start = start;
	w->taint[w->ntaint].end = start + size;
	w->ntaint++;
}

/* Mappings backed by region @r bytes [off, off + len) become tainted. */
static void taint_region(struct worker *w, int r, uint64_t off, uint64_t len,
			 bool deferred_only)
{
	int i;

	for (i = 0; i < w->nmaps; i++) {
		struct mapping *m = &w->maps[i];

		if (m->reg != r || m->off >= off + len || off >= m->off + m->size)
			continue;
		if (deferred_only && !m->deferred)
			continue;
		if (!m->tainted)
			taint_add(w, m->iova, m->size);
		m->tainted = true;
	}
}

static void model_add(struct worker *w, const struct mapping *m)
{
	if (w->nmaps == MAX_MAPS)
		violation(w, "model full (fuzzer bug)");
	w->maps[w->nmaps++] = *m;
}

static void model_del(struct worker *w, int i)
{
	w->maps[i] = w->maps[--w->nmaps];
}

static void remember_unmapped(struct worker *w, uint64_t iova, uint64_t size)
{
	struct range *r = &w->unmapped[w->nunmapped++ % 8];

	r->start = iova;
	r->end = iova + size;
}

/* --- kernel state --------------------------------------------------------- */

static bool in_taint(struct worker *w, uint64_t iova)
{
	int i;

	for (i = 0; i < w->ntaint; i++)
		if (iova >= w->taint[i].start && iova < w->taint[i].end)
			return true;
	return false;
}

/* The invariants of GET_STATUS against the model (see the top comment). */
static void check_status(struct worker *w, const struct vfio_iommu_async_status *s,
			 const char *when)
{
	uint64_t def = model_bytes(w, DEFERRED_BYTES);
	uint64_t syn = model_bytes(w, SYNC_BYTES);
	uint64_t tainted = model_bytes(w, TAINTED_BYTES);
	uint64_t pinned_syn = model_bytes(w, SYNC_PINNED);
	uint64_t def_pfn = model_bytes(w, DEFERRED_PFNMAP);
	uint64_t lo, hi, inflight;

	if (!vfio_async_adds_up(s))
		violation(w, "%s: status does not add up: mapped %llu + pending %llu + failed %llu != deferred %llu",
			  when, (unsigned long long)s->mapped_bytes,
			  (unsigned long long)s->pending_bytes,
			  (unsigned long long)s->failed_bytes,
			  (unsigned long long)s->deferred_bytes);
	if (s->deferred_bytes != def || s->sync_bytes != syn)
		violation(w, "%s: status deferred %llu sync %llu, model %llu %llu",
			  when, (unsigned long long)s->deferred_bytes,
			  (unsigned long long)s->sync_bytes,
			  (unsigned long long)def, (unsigned long long)syn);
	if (s->failed_bytes > tainted)
		violation(w, "%s: failed_bytes %llu but only %llu bytes of deferred mappings had their memory changed",
			  when, (unsigned long long)s->failed_bytes,
			  (unsigned long long)tainted);
	/* Device memory is mapped, never pinned. */
	lo = (pinned_syn + (s->mapped_bytes > def_pfn ?
			    s->mapped_bytes - def_pfn : 0)) / P;
	/* A thread maps up to 16 chunks at once of what MAP_NEXT named. */
	inflight = s->pending_bytes < (uint64_t)opt.threads * 16 * CHUNK ?
		   s->pending_bytes : (uint64_t)opt.threads * 16 * CHUNK;
	hi = (pinned_syn + s->mapped_bytes + inflight) / P;
	if (!def_pfn && !s->pending_bytes && lo != hi)
		violation(w, "fuzzer bug: bounds");
	if (s->pinned_pages < lo || s->pinned_pages > hi)
		violation(w, "%s: pinned_pages %llu outside [%llu, %llu] (sync %llu + mapped %llu bytes, pending %llu)",
			  when, (unsigned long long)s->pinned_pages,
			  (unsigned long long)lo, (unsigned long long)hi,
			  (unsigned long long)syn,
			  (unsigned long long)s->mapped_bytes,
			  (unsigned long long)s->pending_bytes);
	if (s->first_error) {
		if (s->first_error != -EFAULT && s->first_error != -ESRCH &&
		    s->first_error != -ENOMEM && s->first_error != -EOPNOTSUPP)
			violation(w, "%s: first_error %d", when, s->first_error);
		if (!w->taint_overflow && !in_taint(w, s->first_error_iova))
			violation(w, "%s: first_error %d at 0x%llx, in no range whose memory changed",
				  when, s->first_error,
				  (unsigned long long)s->first_error_iova);
	}
}

static void check_state(struct worker *w, const char *when)
{
	struct vfio_iommu_async_status s;
	long lck, want;
	int ret;

	ret = vmlck_kb(0, &lck);
	if (ret)
		violation(w, "VmLck: %s", strerror(-ret));
	want = w->lck_base + (long)(model_bytes(w, LOCKED_BYTES) >> 10);
	if (lck != want)
		violation(w, "%s: VmLck %ld kB, model %ld kB", when, lck, want);
	if (!w->iommu)
		return;
	ret = vfio_async_status(w->container, &s);
	if (ret)
		violation(w, "%s: GET_STATUS: %s", when, strerror(-ret));
	check_status(w, &s, when);
	if (s.pending_bytes)
		w->st->racing++;
}

/* Poll until nothing is pending; then the exact invariants. */
static void settle(struct worker *w, struct vfio_iommu_async_status *s)
{
	long t0 = now_ms();
	int ret;

	for (;;) {
		ret = vfio_async_status(w->container, s);
		if (ret)
			violation(w, "settle: GET_STATUS: %s", strerror(-ret));
		check_status(w, s, "settling");
		if (!s->pending_bytes)
			break;
		if (now_ms() - t0 > SETTLE_MS)
			violation(w, "background never finished: %llu bytes still pending after %d s",
				  (unsigned long long)s->pending_bytes,
				  SETTLE_MS / 1000);
		usleep(2000);
	}
	if (!model_bytes(w, TAINTED_BYTES) && s->failed_bytes)
		violation(w, "settled with %llu failed bytes, none expected",
			  (unsigned long long)s->failed_bytes);
	w->st->settles++;
}

/* --- memory --------------------------------------------------------------- */

static void region_fill(struct region *r, uint64_t off, uint64_t len)
{
	if (r->fresh) {
		memset(r->shadow + off, 0, len);
		return;
	}
	r->gen++;
	pattern_fill_pages(r->va + off, len, r->seed ^ (r->gen * 0x9e3779b9u));
	memcpy(r->shadow + off, r->va + off, len);
}

static int region_alloc(struct region *r, size_t size, bool thp, bool fresh,
			uint32_t seed)
{
	size_t span = size + 4 * CHUNK;
	uint8_t *base, *va;

	memset(r, 0, sizeof(*r));
	/* PROT_NONE all around: a range running off the region faults. */
	base = mmap(NULL, span, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	va = (uint8_t *)(((uintptr_t)base + P + CHUNK - 1) & ~(CHUNK - 1));
	if (mmap(va, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
		 (fresh ? MAP_NORESERVE : 0), -1, 0) == MAP_FAILED)
		return -errno;
	madvise(va, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	r->va = va;
	r->size = size;
	r->thp = thp;
	r->fresh = fresh;
	r->seed = seed;
	r->shadow = calloc(1, size);
	r->present = malloc(size / P);
	r->ro = calloc(1, size / P);
	r->kind = calloc(1, size / P);
	if (!r->shadow || !r->present || !r->ro || !r->kind)
		return -ENOMEM;
	memset(r->present, 1, size / P);
	region_fill(r, 0, size);
	return 0;
}

/* Everything the workers' memory must hold still holds. */
static void verify_memory(struct worker *w, const char *when)
{
	int i;

	for (i = 0; i < NREG; i++) {
		struct region *r = &w->reg[i];
		uint64_t pg = 0, npg = r->size / P;

		while (pg < npg) {
			uint64_t end;
			ssize_t d;

			if (!r->present[pg]) {
				pg++;
				continue;
			}
			for (end = pg; end < npg && r->present[end]; end++)
				;
			d = first_diff(r->va + pg * P, r->shadow + pg * P,
				       (end - pg) * P);
			if (d >= 0) {
				uint64_t o = pg * P + d;

				violation(w, "%s: region %d offset 0x%llx (page %llu) holds 0x%02x, expected 0x%02x",
					  when, i, (unsigned long long)o,
					  (unsigned long long)(o / P),
					  r->va[o], r->shadow[o]);
			}
			pg = end;
		}
	}
	if (first_diff(w->scratch, w->sshadow, P) >= 0) {
		ssize_t d = first_diff(w->scratch, w->sshadow, P);

		violation(w, "%s: scratch page offset 0x%zx holds 0x%02x, expected 0x%02x",
			  when, (size_t)d, w->scratch[d], w->sshadow[d]);
	}
}

/* VFIO_IOMMU_ASYNC_MAP_NOW of one range; -errno. */
static int vfio_async_map_now_raw(int c, const struct vfio_async_range *r)
{
	struct vfio_iommu_async_map_now mn = {
		.argsz = sizeof(mn), .nr_ranges = 1, .ranges = (uintptr_t)r,
	};

	return ioctl(c, VFIO_IOMMU_ASYNC_MAP_NOW, &mn) ? -errno : 0;
}

/* --- groups, devices, containers ------------------------------------------ */

static void release_group(struct worker *w, int gi, bool unset);

/* The channel belongs to the container's backend: it goes with it. */
static void chan_drop(struct worker *w)
{
	vfio_async_chan_close(w->chan);
	vfio_async_close(w->va);
	w->chan = NULL;
	w->va = NULL;
}

/* The container lost its last group: VFIO released the IOMMU. */
static void model_drop_all(struct worker *w)
{
	int i;

	chan_drop(w);
	for (i = 0; i < w->nmaps; i++)
		remember_unmapped(w, w->maps[i].iova, w->maps[i].size);
	w->nmaps = 0;
	w->iommu = false;
	w->cdir[0] = '\0';
}

static int nattached(struct worker *w)
{
	int i, n = 0;

	for (i = 0; i < NGROUPS; i++)
		n += w->g[i].attached;
	return n;
}

static void device_close(struct worker *w, int gi)
{
	struct grp *g = &w->g[gi];
	int i;

	if (g->dev < 0)
		return;
	/* Its BAR goes away: a deferred chunk not mapped yet will fail. */
	for (i = 0; i < w->nmaps; i++) {
		struct mapping *m = &w->maps[i];

		if (m->pfnmap && m->reg == -2 - gi && !m->tainted) {
			m->tainted = true;
			taint_add(w, m->iova, m->size);
		}
	}
	edu_close(&g->edu);
	/* Keep the BAR's place ours: no other mmap may land in it. */
	if (mmap(w->bar_area + gi * BAR_AREA, BAR_AREA, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
		 0) == MAP_FAILED)
		violation(w, "re-reserve BAR area: %s", strerror(errno));
	close(g->dev);
	g->dev = -1;
	memset(g->eknown, 0, sizeof(g->eknown));
}

static void device_open(struct worker *w, int gi)
{
	struct grp *g = &w->g[gi];
	struct vfio_region_info ri;
	void *bar;
	int fd, ret;

	fd = vfio_device_get(g->fd, opt.bdf[gi]);
	if (fd < 0)
		violation(w, "VFIO_GROUP_GET_DEVICE_FD(%s): %s", opt.bdf[gi],
			  strerror(-fd));
	ret = edu_open(&g->edu, fd);
	if (ret)
		violation(w, "edu_open(%s): %s", opt.bdf[gi], strerror(-ret));
	/*
	 * Move BAR0 to a place of our own: left where mmap() put it, it may
	 * sit in a hole punched in a region, and a map of that range would
	 * then be part device memory (which the kernel maps, unpinned).
	 */
	memset(&ri, 0, sizeof(ri));
	ri.argsz = sizeof(ri);
	ri.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri) ||
	    ri.size != g->edu.bar_size || ri.size > BAR_AREA)
		violation(w, "BAR0 region info: %s", strerror(errno));
	munmap((void *)g->edu.bar, g->edu.bar_size);
	bar = mmap(w->bar_area + gi * BAR_AREA, ri.size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED, fd, ri.offset);
	if (bar == MAP_FAILED)
		violation(w, "mmap BAR0: %s", strerror(errno));
	g->edu.bar = bar;
	g->dev = fd;
	memset(g->eknown, 0, sizeof(g->eknown));
}

/* Take group @gi: wait for its lock, open it (not attached yet). */
static void acquire_group(struct worker *w, int gi)
{
	struct grp *g = &w->g[gi];
	int fd, tries = 0;

	while (flock(g->lockfd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			violation(w, "flock: %s", strerror(errno));
		if (shm->abort) {
			worker_cleanup(w);
			_exit(0);
		}
		usleep(2000);
	}
	/* The previous holder closed it before unlocking: it is free. */
	while ((fd = vfio_group_open(opt.group[gi])) == -EBUSY && tries++ < 200)
		usleep(10000);
	if (fd < 0)
		violation(w, "open %s: %s", opt.group[gi], strerror(-fd));
	g->fd = fd;
	g->attached = false;
	g->lease_end = w->step + 30 + rnd(&w->rng, 300);
}

/* Give group @gi back: device closed, detached (UNSET or close), unlocked. */
static void release_group(struct worker *w, int gi, bool unset)
{
	struct grp *g = &w->g[gi];
	int ret;

	if (g->fd < 0)
		return;
	device_close(w, gi);
	if (g->attached) {
		if (unset) {
			ret = vfio_group_unset_container(g->fd);
			expect(w, 0, ret, "VFIO_GROUP_UNSET_CONTAINER");
		}
		g->attached = false;
		if (!nattached(w) && w->iommu)
			model_drop_all(w);
	}
	close(g->fd);	/* detaches, if still attached */
	g->fd = -1;
	flock(g->lockfd, LOCK_UN);
}

/* Where our container's sysfs directory is. */
static void find_cdir(struct worker *w)
{
	char prefix[32];
	struct dirent *e;
	int found = 0;
	DIR *d;

	snprintf(prefix, sizeof(prefix), "pid%d-c", (int)getpid());
	d = opendir(ASYNC_SYSFS);
	if (!d)
		violation(w, "opendir %s: %s", ASYNC_SYSFS, strerror(errno));
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		found++;
		snprintf(w->cdir, sizeof(w->cdir), ASYNC_SYSFS "/%s", e->d_name);
	}
	closedir(d);
	if (found != 1)
		violation(w, "%d sysfs directories %s*, want 1", found, prefix);
}

/* Check GET_INFO against the model; @learn: take the ranges from it. */
static void check_info(struct worker *w, bool learn)
{
	struct vfio_iova_range *r;
	uint32_t nr, avail, i;
	int ret;

	ret = vfio_iova_ranges(w->container, &r, &nr);
	if (ret)
		violation(w, "GET_INFO iova ranges: %s", strerror(-ret));
	if (learn) {
		if (nr == 0 || nr > 16)
			violation(w, "GET_INFO: %u IOVA ranges", nr);
		memcpy(w->ranges, r, nr * sizeof(*r));
		w->nranges = nr;
	} else if (nr != w->nranges || memcmp(r, w->ranges, nr * sizeof(*r))) {
		violation(w, "GET_INFO: IOVA ranges changed (%u, were %u)", nr,
			  w->nranges);
	}
	free(r);
	ret = vfio_dma_avail(w->container, &avail);
	if (ret)
		violation(w, "GET_INFO dma_avail: %s", strerror(-ret));
	if (avail != w->dma_limit - w->nmaps)
		violation(w, "DMA_AVAIL %u, model %ld - %d", avail, w->dma_limit,
			  w->nmaps);
	for (i = 0; i < w->nranges; i++)
		if (w->ranges[i].start > w->ranges[i].end)
			violation(w, "GET_INFO: empty IOVA range");
}

/*
 * Set up a container: the one already open (groups detached from it) or
 * a new one; one or both groups; SET_IOMMU. A new sequence begins.
 */
static void setup(struct worker *w)
{
	int home = w->idx % opt.ngroups, pick = rnd(&w->rng, 100);
	bool want[NGROUPS] = { false, false };
	bool early_iommu = chance(&w->rng, 20);
	int i, ret;

	if (opt.ngroups == 1 || pick < 70)
		want[home] = true;
	else if (pick < 85)
		want[!home] = true;
	else
		want[0] = want[1] = true;

	/*
	 * Groups held but detached keep their place; others are dropped, and
	 * so is any held above one still to take: locks go in index order.
	 */
	for (i = 0; i < NGROUPS; i++) {
		int j;

		if (w->g[i].fd >= 0 && !want[i])
			release_group(w, i, true);
		if (want[i] && w->g[i].fd < 0)
			for (j = i + 1; j < NGROUPS; j++)
				release_group(w, j, true);
	}

	step_desc(w, "setup: container %s, groups%s%s",
		  w->container >= 0 ? "reused" : "new",
		  want[0] ? " 0" : "", want[1] ? " 1" : "");
	if (w->container < 0) {
		w->container = vfio_container_new();
		if (w->container < 0)
			violation(w, "open /dev/vfio/vfio: %s",
				  strerror(-w->container));
	}
	/* Without a group, SET_IOMMU and the IOMMU ioctls are refused. */
	if (early_iommu) {
		expect(w, X_EINVAL, vfio_set_iommu(w->container, VFIO_ASYNC_IOMMU),
		       "SET_IOMMU without a group");
		expect(w, X_EINVAL, ioctl(w->container, VFIO_IOMMU_GET_INFO, w->arg) ?
		       -errno : 0, "GET_INFO without an IOMMU");
	}
	for (i = 0; i < NGROUPS; i++) {
		if (!want[i])
			continue;
		if (w->g[i].fd < 0)
			acquire_group(w, i);
		ret = vfio_group_set_container(w->g[i].fd, w->container);
		expect(w, 0, ret, "VFIO_GROUP_SET_CONTAINER");
		w->g[i].attached = true;
		/* One group, or both, attached when the IOMMU is set. */
		if (!w->iommu && (i == 1 || !want[1] || chance(&w->rng, 50))) {
			if (early_iommu)
				expect(w, X_ENODEV, vfio_set_iommu(w->container, 0x7fff1234),
				       "SET_IOMMU of an unknown type");
			ret = vfio_set_iommu(w->container, VFIO_ASYNC_IOMMU);
			expect(w, 0, ret, "VFIO_SET_IOMMU(VFIO_ASYNC_IOMMU)");
			w->iommu = true;
			w->nmaps = 0;
			w->ntaint = 0;
			w->taint_overflow = false;
			if (sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
					    &w->dma_limit))
				violation(w, "dma_entry_limit unreadable");
			check_info(w, true);
			find_cdir(w);
			w->st->sequences++;
			expect(w, X_EINVAL, vfio_set_iommu(w->container, VFIO_ASYNC_IOMMU),
			       "second SET_IOMMU");
		} else if (w->iommu) {
			/* Joined a live container: same ranges (same kind of device). */
			check_info(w, false);
		}
	}
}

/* --- map / unmap ---------------------------------------------------------- */

struct mreq {
	bool deferred;		/* the MAP_DMA_DEFERRED ioctl */
	uint32_t flags;
	uint64_t vaddr, iova, size;
	uint32_t argsz;
	bool tail;		/* non-zero byte past the structure */
	int ptr;		/* 0 fine, 1 NULL, 2 half readable */
	bool std;		/* well formed: through the sabotage wrappers */
	bool bar;		/* of edu's BAR0 (device memory) */
};

static unsigned int map_expect(struct worker *w, const struct mreq *q)
{
	uint32_t known = q->deferred ? (F_R | F_W | F_NOW) : (F_R | F_W);
	unsigned int e = 0;

	if (!w->iommu)
		return X_EINVAL;
	if (q->ptr == 1)
		return X_EFAULT;
	if (q->ptr == 2)
		e |= X_EFAULT;
	if (q->deferred) {
		if (q->argsz < sizeof(struct vfio_iommu_async_dma_map))
			e |= X_EINVAL;
		else if (q->argsz > 4096)
			e |= X_E2BIG;
		else if (q->argsz > sizeof(struct vfio_iommu_async_dma_map) &&
			 q->tail)
			e |= X_E2BIG;
	} else if (q->argsz < sizeof(struct vfio_iommu_type1_dma_map)) {
		e |= X_EINVAL;
	}
	if ((q->flags & ~known) || !(q->flags & (F_R | F_W)))
		e |= X_EINVAL;
	if (!q->size || ((q->size | q->iova | q->vaddr) & (P - 1))) {
		e |= X_EINVAL;
	} else if (q->iova + q->size - 1 < q->iova ||
		   q->vaddr + q->size - 1 < q->vaddr) {
		e |= X_EINVAL;
	} else {
		if (overlap(w, q->iova, q->size) >= 0)
			e |= X_EEXIST;
		if (w->nmaps >= w->dma_limit)
			e |= X_ENOSPC;
		if (!usable(w, q->iova, q->size))
			e |= X_EINVAL;
		if (!vaddr_ok(w, q->vaddr, q->size, q->flags))
			e |= X_EFAULT;
		if (q->deferred && !(q->flags & F_NOW) &&
		    !deferrable(w, q->vaddr, q->size))
			e |= X_EOPNOTSUPP;

		if (w->rlimit && !q->bar &&
		    model_bytes(w, LOCKED_BYTES) + q->size > w->rlimit)
			e |= X_ENOMEM;
		/* Deferred device memory is charged like any: up front. */
		if (w->rlimit && q->bar && q->deferred && !(q->flags & F_NOW) &&
		    model_bytes(w, LOCKED_BYTES) + q->size > w->rlimit)
			e |= X_ENOMEM;
	}
	/*
	 * Pinned now, with a shared ramfs page for a device that writes:
	 * Linux 6.5 and later refuse such long-term pins, 6.1 takes them.
	 * The pin comes before the charge, so over the limit the refusal
	 * may be seen first.
	 */
	if ((!e || e == X_ENOMEM) && (!q->deferred || (q->flags & F_NOW)) &&
	    (q->flags & F_W) && !q->bar && !deferrable(w, q->vaddr, q->size))
		e |= e ? X_EFAULT : X_EFAULT | X_MAYBE;
	return e;
}

/* MAP_DMA_DEFERRED with the sabotage modes of vfio_map() (lib). */
static int dmap(int c, struct vfio_iommu_async_dma_map *m)
{
	if (sabotage("map-shift") && m->size >= 2 * P) {
		m->vaddr += P;
		m->size -= P;
	}
	if (sabotage("ro-as-rw") && (m->flags & (F_R | F_W)) == F_R)
		m->flags |= F_W;
	if (sabotage("leak-pin") && m->size >= 2 * P) {
		static uint64_t hidden = 0x7100000000ULL;
		struct vfio_iommu_type1_dma_map h = {
			.argsz = sizeof(h), .flags = VFIO_RW,
			.vaddr = m->vaddr, .iova = hidden, .size = P,
		};

		vfio_map_raw(c, &h);
		hidden += P;
	}
	return ioctl(c, VFIO_IOMMU_MAP_DMA_DEFERRED, m) ? -errno : 0;
}

static int do_map(struct worker *w, const struct mreq *q)
{
	uint8_t *buf = w->arg;
	int c = w->container < 0 ? 0x7fff : w->container;
	int ret;

	memset(buf, 0, 2 * P);
	if (q->ptr == 2)	/* only the first 8 bytes are readable */
		buf = w->arg + 2 * P - 8;
	if (q->deferred) {
		struct vfio_iommu_async_dma_map m = {
			.argsz = q->argsz, .flags = q->flags, .vaddr = q->vaddr,
			.iova = q->iova, .size = q->size,
		};

		if (q->std && q->ptr == 0)
			return dmap(c, &m);
		memcpy(buf, &m, q->ptr == 2 ? 8 : sizeof(m));
		/* A non-zero byte inside argsz, past the structure. */
		if (q->tail && q->ptr == 0 && q->argsz > sizeof(m) &&
		    q->argsz <= 2 * P)
			buf[sizeof(m) + rnd(&w->rng, q->argsz - sizeof(m) < 8 ?
						 q->argsz - sizeof(m) : 8)] = 0x5a;
	} else {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = q->argsz, .flags = q->flags, .vaddr = q->vaddr,
			.iova = q->iova, .size = q->size,
		};

		if (q->std && q->ptr == 0)
			return vfio_map(c, q->iova, (void *)(uintptr_t)q->vaddr,
					q->size, q->flags);
		memcpy(buf, &m, q->ptr == 2 ? 8 : sizeof(m));
	}
	ret = ioctl(c, q->deferred ? VFIO_IOMMU_MAP_DMA_DEFERRED :
		    VFIO_IOMMU_MAP_DMA, q->ptr == 1 ? NULL : buf);
	return ret ? -errno : 0;
}

/* What /proc/self/maps has over [va, va + size), for a failure report. */
static void dump_maps(struct worker *w, uint64_t va, uint64_t size)
{
	char line[256];
	FILE *f = fopen("/proc/self/maps", "r");
	int i;

	for (i = 0; i < NREG; i++)
		say("#   region %d at %p size 0x%zx", i, w->reg[i].va,
		    w->reg[i].size);
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;

		if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 &&
		    lo < va + size && va < hi) {
			line[strcspn(line, "\n")] = '\0';
			say("#   maps: %s", line);
		}
	}
	if (f)
		fclose(f);
}

static void map_and_check(struct worker *w, struct mreq *q, int reg,
			  uint64_t off)
{
	unsigned int want = map_expect(w, q);
	char x[64];
	int ret;

	step_desc(w, "%s%s iova 0x%llx size 0x%llx vaddr 0x%llx%s flags 0x%x argsz %u%s%s -> want %s",
		  q->deferred ? "MAP_DMA_DEFERRED" : "MAP_DMA",
		  q->deferred && (q->flags & F_NOW) ? "(NOW)" : "",
		  (unsigned long long)q->iova, (unsigned long long)q->size,
		  (unsigned long long)q->vaddr, reg >= 0 ? "" : " (elsewhere)",
		  q->flags, q->argsz, q->tail ? " tail" : "",
		  q->ptr == 1 ? " NULL" : q->ptr == 2 ? " half-arg" : "",
		  xstr(want, x, sizeof(x)));
	ret = do_map(w, q);
	if (!ret && (want & X_EFAULT) && !(want & X_MAYBE) &&
	    q->vaddr < (1ULL << 47))
		dump_maps(w, q->vaddr, q->size);
	expect(w, want, ret, "map");
	if (!ret) {
		struct mapping m = {
			.iova = q->iova, .size = q->size, .reg = reg,
			.off = off, .flags = q->flags & (F_R | F_W),
			.deferred = q->deferred && !(q->flags & F_NOW),
		};

		if (reg < 0)	/* only the huge VMA: never succeeds */
			violation(w, "a map of memory outside the regions succeeded");
		model_add(w, &m);
	}
}

/* A well formed request over region memory, the IOVA chosen to provoke. */
static void gen_map(struct worker *w, struct mreq *q, bool deferred,
		    int *regp, uint64_t *offp)
{
	int r = rnd(&w->rng, NREG);
	struct region *R = &w->reg[r];
	uint64_t npg = R->size / P, pages, off, iova;
	int kind = rnd(&w->rng, 100), pf = rnd(&w->rng, 100);

	/* Sizes: one page, a chunk, or anything up to the region. */
	if (R->fresh && kind >= 90)
		pages = npg;	/* a long sweep to race with */
	else if (kind < 15)
		pages = 1;
	else if (kind < 30 && npg >= CHUNK / P)
		pages = CHUNK / P;
	else
		pages = 1 + rnd(&w->rng, npg < 2048 ? npg : 2048);
	off = rnd(&w->rng, npg - pages + 1) * P;
	if (chance(&w->rng, 30) && R->size >= CHUNK + pages * P)
		off &= ~(CHUNK - 1);

	memset(q, 0, sizeof(*q));
	q->deferred = deferred;
	q->flags = pf < 70 ? (F_R | F_W) : pf < 90 ? F_R : F_W;
	if (R->fresh)	/* a read-only pin of it would be the zero page */
		q->flags = F_R | F_W;
	if (deferred && chance(&w->rng, 20))
		q->flags |= F_NOW;
	q->vaddr = (uintptr_t)R->va + off;
	q->size = pages * P;
	q->argsz = deferred ? sizeof(struct vfio_iommu_async_dma_map) :
			      sizeof(struct vfio_iommu_type1_dma_map);
	q->std = true;

	kind = rnd(&w->rng, 100);
	iova = WIN_BASE + rnd(&w->rng, (WIN_SIZE - q->size) / P + 1) * P;
	if (kind < 35) {
		iova &= ~(CHUNK - 1);
	} else if (kind < 50) {
		/* Ends just past a chunk boundary: a short first chunk. */
		iova = ((iova & ~(CHUNK - 1)) | CHUNK) - P * (1 + rnd(&w->rng, 3));
	} else if (kind < 75 && w->nmaps) {
		/* Right next to an existing mapping, either side. */
		struct mapping *m = &w->maps[rnd(&w->rng, w->nmaps)];

		iova = chance(&w->rng, 50) ? m->iova + m->size : m->iova - q->size;
	} else if (kind < 82 && w->nmaps) {
		/* Overlapping one: EEXIST. */
		struct mapping *m = &w->maps[rnd(&w->rng, w->nmaps)];

		iova = m->iova + rnd(&w->rng, m->size / P) * P;
	}
	q->iova = iova;
	*regp = r;
	*offp = off;
}

/* Turn a well formed request into a boundary or malformed one. */
static void mutate_map(struct worker *w, struct mreq *q, int *regp)
{
	uint64_t aperture_end = w->nranges ? w->ranges[w->nranges - 1].end : 0;
	int kind = rnd(&w->rng, 22);
	static const uint32_t argszs[] = { 0, 4, 8, 31, 33, 40, 72, 4096, 4097,
					   0xffffffff };

	switch (kind) {
	case 0: q->size = 0; break;
	case 1: q->size += 1 + rnd(&w->rng, P - 1); break;
	case 2: q->iova += 1 + rnd(&w->rng, P - 1); break;
	case 3: q->vaddr += 1 + rnd(&w->rng, P - 1); break;
	case 4:	/* IOVA wraps */
		q->iova = -(uint64_t)P * (1 + rnd(&w->rng, 4));
		if (q->size < 8 * P)
			q->size = 8 * P;
		break;
	case 5:	/* vaddr wraps */
		q->vaddr = -(uint64_t)P;
		if (q->size < 2 * P)
			q->size = 2 * P;
		break;
	case 6: {	/* huge */
		static const uint64_t huge[] = { 1ULL << 40, 1ULL << 63,
						 ~(P - 1), 1ULL << 39 };

		q->size = huge[rnd(&w->rng, 4)];
		break;
	}
	case 7:	/* past the aperture, or straddling its end */
		q->iova = chance(&w->rng, 50) ? aperture_end + 1 :
			  aperture_end + 1 - q->size + P;
		break;
	case 8:	/* ending exactly at the aperture's end: fine */
		q->iova = aperture_end + 1 - q->size;
		break;
	case 9:	/* in the MSI window, or straddling its start */
		q->iova = chance(&w->rng, 50) ? MSI_START :
			  MSI_START - P;
		if (q->size < 2 * P)
			q->size = 2 * P;
		break;
	case 10: /* ending just below it: fine */
		q->iova = MSI_START - q->size;
		break;
	case 11: /* IOVA 0 */
		q->iova = 0;
		break;
	case 12: q->flags &= ~(F_R | F_W); break;
	case 13: q->flags |= 1u << (3 + rnd(&w->rng, 29)); break;
	case 14:
	case 15:
		q->argsz = argszs[rnd(&w->rng, sizeof(argszs) / sizeof(argszs[0]))];
		q->tail = chance(&w->rng, 50);
		break;
	case 16: q->ptr = 1 + rnd(&w->rng, 2); break;
	case 17: /* memory that is no memory */
		switch (rnd(&w->rng, 4)) {
		case 0: q->vaddr = (uintptr_t)w->guard; break;
		case 1: q->vaddr = 0; break;
		case 2: q->vaddr = 0xffff888000000000ULL; break;
		default: q->vaddr = (uintptr_t)w->reg[*regp].va +
				    w->reg[*regp].size - P;
			if (q->size < 2 * P)	/* runs into the fence */
				q->size = 2 * P;
		}
		*regp = -1;
		break;
	case 18: /* unprivileged: more than RLIMIT_MEMLOCK allows */
		if (w->huge) {
			q->vaddr = (uintptr_t)w->huge;
			q->size = w->rlimit + P * (1 + rnd(&w->rng, 64));
			if (q->size > HUGE_VMA)
				q->size = HUGE_VMA;
			q->flags = F_R | F_W | (q->flags & F_NOW);
			*regp = -1;
		}
		break;
	case 19: /* an existing mapping, exactly */
		if (w->nmaps) {
			struct mapping *m = &w->maps[rnd(&w->rng, w->nmaps)];

			q->iova = m->iova;
			q->size = m->size;
		}
		break;
	case 20: /* argsz larger, tail all zero: fine */
		q->argsz += 8 * (1 + rnd(&w->rng, 64));
		q->tail = false;
		break;
	default: /* the deferred-only flag on MAP_DMA */
		q->flags |= F_NOW;
		break;
	}
	q->std = false;
}

static void op_map(struct worker *w, bool deferred, bool bogus)
{
	struct mreq q;
	uint64_t off = 0;
	int reg;

	gen_map(w, &q, deferred, &reg, &off);
	if (bogus)
		mutate_map(w, &q, &reg);
	if (!bogus && (model_bytes(w, ALL_BYTES) + q.size > MODEL_CAP ||
		       w->nmaps >= MAX_MAPS - 2)) {
		/* Enough mapped: make room instead, the same way each time. */
		struct mapping *m;
		uint64_t n = 0;
		int i, ret;

		if (!w->nmaps)
			return;
		i = rnd(&w->rng, w->nmaps);
		m = &w->maps[i];
		step_desc(w, "UNMAP_DMA (room) iova 0x%llx size 0x%llx",
			  (unsigned long long)m->iova, (unsigned long long)m->size);
		ret = vfio_unmap(w->container, m->iova, m->size, 0, &n);
		expect(w, 0, ret, "unmap");
		if (n != m->size)
			violation(w, "unmapped %llu bytes, model %llu",
				  (unsigned long long)n,
				  (unsigned long long)m->size);
		remember_unmapped(w, m->iova, m->size);
		model_del(w, i);
		return;
	}
	if (reg >= 0) {
		uint64_t o = 0;

		/* The model records where it points, if in a region. */
		reg = region_of(w, q.vaddr, q.size ? q.size : 1, &o);
		off = o;
	}
	map_and_check(w, &q, reg, off);
}

struct ureq {
	uint32_t argsz, flags;
	uint64_t iova, size;
	int ptr;
	bool std;
};

/* Expected errors; on success *removed is what goes. */
static unsigned int unmap_expect(struct worker *w, const struct ureq *q,
				 uint64_t *removed)
{
	uint64_t last;
	int i;

	*removed = 0;
	if (!w->iommu)
		return X_EINVAL;
	if (q->ptr)
		return X_EFAULT;
	if (q->argsz < offsetofend(struct vfio_iommu_type1_dma_unmap, size) ||
	    (q->flags & ~VFIO_DMA_UNMAP_FLAG_ALL))
		return X_EINVAL;
	if (q->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		if (q->iova || q->size)
			return X_EINVAL;
		*removed = model_bytes(w, ALL_BYTES);
		return 0;
	}
	if (!q->size || ((q->iova | q->size) & (P - 1)))
		return X_EINVAL;
	last = q->iova + q->size - 1;
	if (last < q->iova)
		return X_EINVAL;
	for (i = 0; i < w->nmaps; i++) {
		struct mapping *m = &w->maps[i];
		uint64_t mlast = m->iova + m->size - 1;

		if (m->iova <= last && q->iova <= mlast) {
			/* A mapping goes whole or not at all. */
			if (m->iova < q->iova || mlast > last)
				return X_EINVAL;
			*removed += m->size;
		}
	}
	return 0;
}

static void op_unmap(struct worker *w, int kind)
{
	struct ureq q = {
		.argsz = sizeof(struct vfio_iommu_type1_dma_unmap), .std = true,
	};
	struct vfio_iommu_type1_dma_unmap *u = (void *)w->arg;
	uint64_t removed, got = 0;
	unsigned int want;
	char x[64];
	int i, ret;

	switch (kind) {
	case 0:	/* exactly one mapping */
		if (w->nmaps) {
			struct mapping *m = &w->maps[rnd(&w->rng, w->nmaps)];

			q.iova = m->iova;
			q.size = m->size;
		} else {
			q.iova = WIN_BASE;
			q.size = CHUNK;
		}
		break;
	case 1: { /* from one mapping's start to another's end, or bisecting */
		struct mapping *a, *b;

		if (w->nmaps < 1) {
			q.iova = WIN_BASE + rnd(&w->rng, 64) * CHUNK;
			q.size = CHUNK * (1 + rnd(&w->rng, 8));
			break;
		}
		a = &w->maps[rnd(&w->rng, w->nmaps)];
		b = &w->maps[rnd(&w->rng, w->nmaps)];
		if (b->iova < a->iova) {
			struct mapping *t = a;

			a = b;
			b = t;
		}
		q.iova = a->iova;
		q.size = b->iova + b->size - a->iova;
		switch (rnd(&w->rng, 5)) {
		case 0: /* start inside a: EINVAL (if a is longer than a page) */
			q.iova += P * rnd(&w->rng, a->size / P);
			q.size -= q.iova - a->iova;
			break;
		case 1: /* end inside b */
			q.size -= P * rnd(&w->rng, b->size / P);
			break;
		case 2: /* a little space around */
			if (q.iova >= P)
				q.iova -= P, q.size += P;
			q.size += P;
			break;
		default:
			break;
		}
		if (!q.size)
			q.size = P;
		break;
	}
	case 2: /* UNMAP_ALL */
		q.flags = VFIO_DMA_UNMAP_FLAG_ALL;
		if (chance(&w->rng, 30))
			q.iova = P;	/* EINVAL */
		break;
	case 3: /* a range with nothing in it */
		q.iova = WIN_BASE + WIN_SIZE + rnd(&w->rng, 1024) * P;
		q.size = P * (1 + rnd(&w->rng, 1024));
		break;
	default: { /* malformed */
		static const uint32_t argszs[] = { 0, 8, 23, 24, 32, 4096 };

		q.iova = WIN_BASE + rnd(&w->rng, 64) * CHUNK;
		q.size = CHUNK;
		q.std = false;
		switch (rnd(&w->rng, 8)) {
		case 0: q.size = 0; break;
		case 1: q.iova |= 1 + rnd(&w->rng, P - 1); break;
		case 2: q.size |= 1 + rnd(&w->rng, P - 1); break;
		case 3: q.iova = -(uint64_t)P; q.size = 2 * P; break;
		case 4: q.flags = 1u << rnd(&w->rng, 32); break;
		case 5: q.argsz = argszs[rnd(&w->rng, 6)]; break;
		case 6: q.ptr = 1; break;
		default: q.size = ~(P - 1); break;
		}
	}
	}

	want = unmap_expect(w, &q, &removed);
	step_desc(w, "UNMAP_DMA iova 0x%llx size 0x%llx flags 0x%x argsz %u%s -> want %s (%llu bytes)",
		  (unsigned long long)q.iova, (unsigned long long)q.size,
		  q.flags, q.argsz, q.ptr ? " NULL" : "",
		  xstr(want, x, sizeof(x)), (unsigned long long)removed);
	if (q.std && !q.flags) {
		ret = vfio_unmap(w->container >= 0 ? w->container : 0x7fff, q.iova,
				 q.size, 0, &got);
	} else {
		memset(u, 0, sizeof(*u));
		u->argsz = q.argsz;
		u->flags = q.flags;
		u->iova = q.iova;
		u->size = q.size;
		ret = ioctl(w->container, VFIO_IOMMU_UNMAP_DMA,
			    q.ptr ? NULL : u) ? -errno : 0;
		got = u->size;
	}
	expect(w, want, ret, "unmap");
	if (ret)
		return;
	if (got != removed)
		violation(w, "UNMAP_DMA returned size %llu, model removes %llu",
			  (unsigned long long)got, (unsigned long long)removed);
	for (i = 0; i < w->nmaps; ) {
		struct mapping *m = &w->maps[i];

		if ((q.flags & VFIO_DMA_UNMAP_FLAG_ALL) ||
		    (m->iova >= q.iova && m->iova + m->size - 1 <= q.iova + q.size - 1)) {
			remember_unmapped(w, m->iova, m->size);
			model_del(w, i);
		} else {
			i++;
		}
	}
}

/* --- the other ioctls ----------------------------------------------------- */

static void op_status(struct worker *w)
{
	struct vfio_iommu_async_status *s = (void *)w->arg;
	static const uint32_t argszs[] = { 0, 8, 71, 72, 80, 4096, 4097 };
	unsigned int want = 0;
	uint32_t argsz = sizeof(*s), flags = 0;
	int kind = rnd(&w->rng, 6), ret;
	bool tail = false;
	void *p = s;
	char x[64];

	memset(w->arg, 0, 2 * P);
	if (kind == 1) {
		argsz = argszs[rnd(&w->rng, 7)];
		tail = chance(&w->rng, 50);
	} else if (kind == 2) {
		flags = 1u << rnd(&w->rng, 32);
	} else if (kind == 3) {
		p = chance(&w->rng, 50) ? NULL : (void *)w->ro_page;
	}
	if (!w->iommu)
		want = X_EINVAL;
	else if (!p)
		want = X_EFAULT;
	else if (argsz < offsetof(struct vfio_iommu_async_status,
				  released_bytes))
		want = X_EINVAL;	/* shorter than the first version */
	else if (argsz > 4096 || (argsz > sizeof(*s) && tail))
		want = X_E2BIG;
	else if (flags)
		want = X_EINVAL;
	else if (p == w->ro_page)
		want = X_EFAULT;	/* the answer cannot be written */
	step_desc(w, "GET_STATUS argsz %u flags 0x%x%s%s -> want %s", argsz,
		  flags, tail ? " tail" : "",
		  !p ? " NULL" : p == w->ro_page ? " read-only" : "",
		  xstr(want, x, sizeof(x)));
	if (p == s) {
		s->argsz = argsz;
		s->flags = flags;
		if (tail && argsz > sizeof(*s) && argsz <= 2 * P)
			w->arg[sizeof(*s) + rnd(&w->rng, argsz - sizeof(*s) < 8 ?
						argsz - sizeof(*s) : 8)] = 1;
	}
	ret = ioctl(w->iommu ? w->container : (w->container >= 0 ? w->container : 0x7fff),
		    VFIO_IOMMU_ASYNC_GET_STATUS, p) ? -errno : 0;
	expect(w, want, ret, "GET_STATUS");
	/* The first version has no released_bytes: it adds up only with. */
	if (!ret && argsz >= sizeof(*s))
		check_status(w, s, "GET_STATUS");
}

static void op_info(struct worker *w)
{
	struct vfio_iommu_type1_info *info = (void *)w->arg;
	static const uint32_t argszs[] = { 0, 8, 15, 16, 20, 23, 24, 25 };
	uint32_t argsz;
	int ret;

	if (chance(&w->rng, 50)) {
		step_desc(w, "GET_INFO (whole chain)");
		if (!w->iommu) {
			ret = ioctl(w->container >= 0 ? w->container : 0x7fff,
				    VFIO_IOMMU_GET_INFO, info) ? -errno : 0;
			expect(w, X_EINVAL, ret, "GET_INFO");
			return;
		}
		check_info(w, false);
		return;
	}
	argsz = argszs[rnd(&w->rng, 8)];
	step_desc(w, "GET_INFO argsz %u", argsz);
	memset(info, 0, 2 * P);
	info->argsz = argsz;
	ret = ioctl(w->iommu ? w->container : (w->container >= 0 ? w->container : 0x7fff),
		    VFIO_IOMMU_GET_INFO, info) ? -errno : 0;
	if (!w->iommu || argsz < 16) {
		expect(w, X_EINVAL, ret, "GET_INFO");
		return;
	}
	expect(w, 0, ret, "GET_INFO");
	if (!(info->flags & VFIO_IOMMU_INFO_PGSIZES) ||
	    !(info->iova_pgsizes & P))
		violation(w, "GET_INFO: flags 0x%x pgsizes 0x%llx", info->flags,
			  (unsigned long long)info->iova_pgsizes);
	if (argsz >= 20) {
		/* Too short for the chain: says how much it needs. */
		if (!(info->flags & VFIO_IOMMU_INFO_CAPS) ||
		    info->argsz <= sizeof(*info) || info->cap_offset)
			violation(w, "GET_INFO argsz %u: flags 0x%x argsz %u cap_offset %u",
				  argsz, info->flags, info->argsz,
				  info->cap_offset);
	} else if (info->argsz != argsz && info->argsz <= sizeof(*info)) {
		/* As type1: an old caller is told the size of the chain too. */
		violation(w, "GET_INFO argsz %u: argsz became %u", argsz,
			  info->argsz);
	}
}

static void op_extension(struct worker *w)
{
	static const struct { unsigned long ext; int want; } t[] = {
		{ VFIO_ASYNC_IOMMU, 1 }, { VFIO_ASYNC_DEFERRED_MAP, 1 },
		{ VFIO_UNMAP_ALL, 1 }, { VFIO_TYPE1v2_IOMMU, -2 },
		{ VFIO_DMA_CC_IOMMU, -1 }, { VFIO_TYPE1_IOMMU, -3 },
		{ VFIO_UPDATE_VADDR, 0 }, { VFIO_TYPE1_NESTING_IOMMU, -3 },
		{ VFIO_ASYNC_BALLOON_CHANNEL, 1 }, { 0x41560004, 0 },
		{ 0x12345678, 0 }, { 0, 0 },
	};
	int i = rnd(&w->rng, sizeof(t) / sizeof(t[0])), want = t[i].want, ret;
	int c = w->container;

	step_desc(w, "CHECK_EXTENSION 0x%lx on %s", t[i].ext,
		  w->iommu ? "our container" : "a container without IOMMU");
	if (c < 0)
		return;
	ret = vfio_check_extension(c, t[i].ext);
	if (want == -2)		/* our drop-in answer, or type1's */
		want = w->iommu ? opt.dropin : 1;
	if (want == -3)		/* type1 knows these; we do not */
		want = w->iommu ? 0 : 1;
	if (want == -1) {	/* coherency: either, but a boolean */
		if (ret != 0 && ret != 1)
			violation(w, "CHECK_EXTENSION(DMA_CC): %d", ret);
		return;
	}
	if (ret != want)
		violation(w, "CHECK_EXTENSION(0x%lx): %d, want %d", t[i].ext,
			  ret, want);
}

/* --- memory operations ---------------------------------------------------- */

static void pick_range(struct worker *w, int *r, uint64_t *off, uint64_t *len)
{
	struct region *R;
	uint64_t npg, pages;

	*r = rnd(&w->rng, NREG);
	R = &w->reg[*r];
	npg = R->size / P;
	pages = 1 + rnd(&w->rng, npg / 4 > 0 ? npg / 4 : 1);
	*off = rnd(&w->rng, npg - pages + 1) * P;
	*len = pages * P;
}

/*
 * "munmap" part of a region: mappings over it can no longer be verified.
 * The hole is a PROT_NONE mapping of our own, not a real one: address
 * space given back would be the kernel's to give to the next mmap (the
 * channel's rings, say), which later operations of the region would then
 * map over. For GUP and the deferred checks it is the same: no access.
 */
static void op_munmap(struct worker *w)
{
	uint64_t off, len, pg;
	int r;

	pick_range(w, &r, &off, &len);
	step_desc(w, "munmap region %d [0x%llx, +0x%llx)", r,
		  (unsigned long long)off, (unsigned long long)len);
	if (mmap(w->reg[r].va + off, len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
		 0) == MAP_FAILED)
		violation(w, "munmap (PROT_NONE): %s", strerror(errno));
	for (pg = off / P; pg < (off + len) / P; pg++)
		w->reg[r].present[pg] = 0;
	taint_region(w, r, off, len, false);
}

/* mmap fresh memory into a region's holes. */
static void op_mmap_back(struct worker *w)
{
	int r = rnd(&w->rng, NREG);
	struct region *R = &w->reg[r];
	uint64_t pg = 0, npg = R->size / P;

	step_desc(w, "mmap back the holes of region %d", r);
	while (pg < npg) {
		uint64_t end;

		if (R->present[pg]) {
			pg++;
			continue;
		}
		for (end = pg; end < npg && !R->present[end]; end++)
			;
		if (mmap(R->va + pg * P, (end - pg) * P, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
			 (R->fresh ? MAP_NORESERVE : 0), -1, 0) == MAP_FAILED)
			violation(w, "mmap: %s", strerror(errno));
		madvise(R->va + pg * P, (end - pg) * P,
			R->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		memset(R->present + pg, 1, end - pg);
		memset(R->ro + pg, 0, end - pg);
		memset(R->kind + pg, PK_ANON, end - pg);
		region_fill(R, pg * P, (end - pg) * P);
		pg = end;
	}
}

/*
 * Put a shared file mapping over part of a region, as a VMM could behind a
 * deferred mapping's back: a memfd (shmem, which deferred mappings take)
 * or a ramfs file (which they refuse, at the call and when a worker pins).
 */
static void op_mmap_file(struct worker *w)
{
	bool ramfs = ramfs_dir[0] && chance(&w->rng, 50);
	uint64_t off, len;
	char path[96];
	int r, fd;

	pick_range(w, &r, &off, &len);
	step_desc(w, "mmap a %s file over region %d [0x%llx, +0x%llx)",
		  ramfs ? "ramfs" : "memfd", r, (unsigned long long)off,
		  (unsigned long long)len);
	if (ramfs) {
		snprintf(path, sizeof(path), "%s/w%d-%ld", ramfs_dir, w->idx,
			 w->step);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			unlink(path);
	} else {
		fd = memfd_create("fuzz", 0);
	}
	if (fd < 0 || ftruncate(fd, len))
		violation(w, "%s file: %s", ramfs ? "ramfs" : "memfd",
			  strerror(errno));
	if (mmap(w->reg[r].va + off, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		violation(w, "mmap file: %s", strerror(errno));
	close(fd);
	taint_region(w, r, off, len, false);
	memset(w->reg[r].present + off / P, 1, len / P);
	memset(w->reg[r].ro + off / P, 0, len / P);
	memset(w->reg[r].kind + off / P, ramfs ? PK_RAMFS : PK_MEMFD, len / P);
	region_fill(&w->reg[r], off, len);
}

/* mprotect part of a region read-only, or back to read-write. */
static void op_mprotect(struct worker *w)
{
	uint64_t off, len, pg;
	bool ro = chance(&w->rng, 50);
	int r;

	pick_range(w, &r, &off, &len);
	step_desc(w, "mprotect region %d [0x%llx, +0x%llx) %s", r,
		  (unsigned long long)off, (unsigned long long)len,
		  ro ? "read-only" : "read-write");
	for (pg = off / P; pg < (off + len) / P; ) {
		uint64_t end;

		if (!w->reg[r].present[pg]) {
			pg++;
			continue;
		}
		for (end = pg; end < (off + len) / P && w->reg[r].present[end]; end++)
			w->reg[r].ro[end] = ro;
		if (mprotect(w->reg[r].va + pg * P, (end - pg) * P,
			     ro ? PROT_READ : PROT_READ | PROT_WRITE))
			violation(w, "mprotect: %s", strerror(errno));
		pg = end;
	}
	/* A chunk not pinned yet may now fail a write pin. */
	if (ro)
		taint_region(w, r, off, len, true);
}

/* --- DMA ------------------------------------------------------------------ */

static int scratch_index(struct worker *w)
{
	int i;

	for (i = 0; i < w->nmaps; i++)
		if (w->maps[i].scratch)
			return i;
	return -1;
}

/* Map edu's bounce page if the model says it can be; false if not. */
static bool ensure_scratch(struct worker *w)
{
	struct mreq q = {
		.flags = F_R | F_W, .vaddr = (uintptr_t)w->scratch,
		.iova = SCRATCH_IOVA, .size = P,
		.argsz = sizeof(struct vfio_iommu_type1_dma_map), .std = true,
	};
	struct mapping m = {
		.iova = SCRATCH_IOVA, .size = P, .reg = -1,
		.flags = F_R | F_W, .scratch = true,
	};
	unsigned int want;
	int ret;

	if (scratch_index(w) >= 0)
		return true;
	want = map_expect(w, &q);
	/* vaddr_ok() knows regions only; the scratch page is fine. */
	want &= ~X_EFAULT;
	ret = vfio_map(w->container, SCRATCH_IOVA, w->scratch, P, VFIO_RW);
	expect(w, want, ret, "map of the bounce page");
	if (ret)
		return false;
	model_add(w, &m);
	return true;
}

static void dma(struct worker *w, struct grp *g, uint64_t iova, uint32_t eo,
		uint32_t len, bool to_ram)
{
	int ret = edu_dma(&g->edu, iova, eo, len, to_ram);

	if (ret)
		violation(w, "edu DMA %s 0x%llx len %u: %s",
			  to_ram ? "to" : "from", (unsigned long long)iova, len,
			  strerror(-ret));
}

/* Make edu's buffer [eo, eo + len) known: load it from the bounce page. */
static void edu_load(struct worker *w, struct grp *g, uint32_t eo,
		     uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len && g->eknown[eo + i]; i++)
		;
	if (i == len)
		return;
	for (i = 0; i < len; i++)
		w->scratch[i] = rng_next(&w->rng);
	memcpy(w->sshadow, w->scratch, len);
	dma(w, g, SCRATCH_IOVA, eo, len, false);
	memcpy(g->ebuf + eo, w->scratch, len);
	memset(g->eknown + eo, 1, len);
}

/* An IOVA range of @len bytes no mapping covers, near where things are. */
static bool pick_unmapped(struct worker *w, uint64_t r1, uint64_t r2,
			  uint32_t len, uint64_t *iova)
{
	uint64_t aperture_end = w->ranges[w->nranges - 1].end;
	int tries;

	for (tries = 0; tries < 6; tries++) {
		uint64_t c, k = mix(r1 + tries);

		switch ((r2 + tries) % 5) {
		case 0: /* just past a mapping */
			if (!w->nmaps)
				continue;
			c = w->maps[k % w->nmaps].iova + w->maps[k % w->nmaps].size;
			break;
		case 1: /* just before one */
			if (!w->nmaps)
				continue;
			c = w->maps[k % w->nmaps].iova - P + (k >> 32) % (P - len);
			break;
		case 2: /* where a mapping was */
			if (!w->nunmapped)
				continue;
			{
				struct range *u = &w->unmapped[k % (w->nunmapped < 8 ? w->nunmapped : 8)];

				c = u->start + ((k >> 20) % ((u->end - u->start) / P)) * P;
			}
			break;
		case 3: /* past the aperture */
			c = aperture_end + 1 + (k % 64) * P;
			break;
		default:
			c = WIN_BASE + (k % (WIN_SIZE / P)) * P;
		}
		if (c + len - 1 < c)
			continue;
		/*
		 * Never into the reserved ranges: a write to the MSI window is
		 * an interrupt request (QEMU's VT-d resets the guest on a bad
		 * one). Usable ranges, or past the aperture, only.
		 */
		if (!usable(w, c, len) && c <= aperture_end)
			continue;
		if (overlap(w, c, len) < 0) {
			*iova = c;
			return true;
		}
	}
	return false;
}

/* DMA @len bytes into @m at @off through group @gi; the data must land. */
static void dma_write_mapping(struct worker *w, int gi, struct mapping *m,
			      uint64_t off, uint32_t eo, uint32_t len)
{
	struct region *R = &w->reg[m->reg];
	struct grp *g = &w->g[gi];
	uint64_t iova = m->iova + off;

	step_desc(w, "DMA write %u bytes to 0x%llx (mapping 0x%llx %s, region %d +0x%llx) via group %d",
		  len, (unsigned long long)iova, (unsigned long long)m->iova,
		  m->deferred ? "deferred" : "sync", m->reg,
		  (unsigned long long)(m->off + off), gi);
	edu_load(w, g, eo, len);
	dma(w, g, iova, eo, len, true);
	memcpy(R->shadow + m->off + off, g->ebuf + eo, len);
	verify_memory(w, "after a DMA write to a mapped IOVA");
}

static void op_dma(struct worker *w)
{
	/* Every random draw first: the sequence must not depend on timing. */
	uint64_t r1 = rng_next(&w->rng), r2 = rng_next(&w->rng);
	uint64_t r3 = rng_next(&w->rng);
	int kind = rnd(&w->rng, 100), gi, i, n = 0, cand[MAX_MAPS];
	uint32_t eo = rnd(&w->rng, 2048), len = 1 + rnd(&w->rng, 256);
	struct vfio_iommu_async_status s;
	struct mapping *m = NULL;
	struct grp *g;
	uint64_t iova, off;

	if (!w->iommu || !nattached(w)) {
		step_desc(w, "DMA: no container");
		return;
	}
	gi = w->g[r3 % NGROUPS].attached ? (int)(r3 % NGROUPS) :
					    (int)!(r3 % NGROUPS);
	g = &w->g[gi];
	if (g->dev < 0) {
		step_desc(w, "DMA: open device of group %d", gi);
		device_open(w, gi);
	}
	step_desc(w, "DMA: bounce page");
	if (!ensure_scratch(w))
		return;

	/* 0-39 write to a mapping, 40-59 read one, 60-74 write through a
	 * read-only one, 75-99 write where nothing is mapped. */
	for (i = 0; i < w->nmaps; i++) {
		struct mapping *c = &w->maps[i];

		if (c->scratch || c->tainted || c->pfnmap)
			continue;
		if (kind < 40 && !(c->flags & F_W))
			continue;
		if (kind >= 40 && kind < 60 && !(c->flags & F_R))
			continue;
		if (kind >= 60 && kind < 75 && c->flags != F_R)
			continue;
		cand[n++] = i;
	}
	if (kind < 75 && n) {
		m = &w->maps[cand[r1 % n]];
		off = (r2 % m->size) & ~(P - 1);
		off += (r2 >> 32) % P;
		if (len > m->size - off)
			len = m->size - off;
		iova = m->iova + off;
		if (m->deferred) {
			step_desc(w, "DMA: settle before using deferred 0x%llx",
				  (unsigned long long)m->iova);
			settle(w, &s);
		}
	} else {
		kind = 99;
		if (!pick_unmapped(w, r1, r2, len, &iova)) {
			step_desc(w, "DMA: no unmapped IOVA found");
			return;
		}
	}
	w->st->dma++;

	if (kind < 40) {
		dma_write_mapping(w, gi, m, off, eo, len);
	} else if (kind < 60) {
		struct region *R = &w->reg[m->reg];
		uint32_t so = (r3 >> 16) % (P - len);

		step_desc(w, "DMA read %u bytes from 0x%llx (mapping 0x%llx %s, region %d +0x%llx) via group %d",
			  len, (unsigned long long)iova,
			  (unsigned long long)m->iova,
			  m->deferred ? "deferred" : "sync", m->reg,
			  (unsigned long long)(m->off + off), gi);
		dma(w, g, iova, eo, len, false);
		memcpy(g->ebuf + eo, R->shadow + m->off + off, len);
		memset(g->eknown + eo, 1, len);
		dma(w, g, SCRATCH_IOVA + so, eo, len, true);
		memcpy(w->sshadow + so, g->ebuf + eo, len);
		verify_memory(w, "after a DMA read of a mapped IOVA");
	} else if (kind < 75) {
		step_desc(w, "DMA write %u bytes through read-only mapping at 0x%llx via group %d",
			  len, (unsigned long long)iova, gi);
		edu_load(w, g, eo, len);
		dma(w, g, iova, eo, len, true);
		verify_memory(w, "after a DMA write through a read-only mapping");
	} else {
		step_desc(w, "DMA write %u bytes to unmapped 0x%llx via group %d",
			  len, (unsigned long long)iova, gi);
		edu_load(w, g, eo, len);
		dma(w, g, iova, eo, len, true);
		verify_memory(w, "after a DMA write to an unmapped IOVA");
	}
}

static void chan_done_cb(void *opaque, uint64_t cookie, int status,
			 uint64_t error_iova, bool hit)
{
	int *st = opaque;

	*st = status;
}

/* Send one request through the channel (opened on first use); its status. */
static int chan_request(struct worker *w, enum vfio_async_op op,
			const struct vfio_async_range *r)
{
	long t0 = now_ms();
	int st = 1, ret;

	if (!w->chan) {
		ret = vfio_async_wrap(&w->va, w->container);
		if (!ret)
			ret = vfio_async_chan_open(w->va, NULL, &w->chan);
		if (ret)
			violation(w, "channel open: %s", strerror(-ret));
	}
	w->chans++;
	ret = vfio_async_chan_submit(w->chan, op, w->chans, r, 1);
	if (!ret)
		ret = vfio_async_chan_kick(w->chan);
	if (ret)
		violation(w, "channel submit: %s (%u in flight, native %d)",
			  strerror(-ret), vfio_async_chan_in_flight(w->chan),
			  vfio_async_native(w->va));
	while (st == 1) {
		struct pollfd pfd = { .fd = vfio_async_chan_fd(w->chan),
				      .events = POLLIN };

		if (now_ms() - t0 > 60000)
			violation(w, "channel: no completion within 60 s");
		poll(&pfd, 1, 100);
		ret = vfio_async_chan_reap(w->chan, chan_done_cb, &st);
		if (ret < 0)
			violation(w, "channel reap: %s", strerror(-ret));
	}
	return st;
}

/*
 * The balloon channel, or the blocking MAP_NOW: 0-49 MAP_NOW of part of a
 * deferred mapping, then a DMA into it with nothing settled (the ground
 * truth of the completion); 50-64 MAP_NEXT of one (0, or ENOSPC with too
 * many queued); 65-74 RELEASE of one (its chunks wholly inside are given
 * back: the mapping is unverifiable from then on); 75-99 a range that
 * runs outside every mapping: ENOENT, or EINVAL when it is malformed.
 */
static void op_chan(struct worker *w)
{
	uint64_t r1 = rng_next(&w->rng), r2 = rng_next(&w->rng);
	uint64_t r3 = rng_next(&w->rng);
	int kind = rnd(&w->rng, 100), i, n = 0, cand[MAX_MAPS], gi, st;
	bool blocking = chance(&w->rng, 40);
	uint32_t eo = rnd(&w->rng, 2048), len = 1 + rnd(&w->rng, 256);
	struct vfio_async_range r;
	struct mapping *m;
	uint64_t off, pages;

	if (!w->iommu || !nattached(w)) {
		step_desc(w, "channel: no container");
		return;
	}
	for (i = 0; i < w->nmaps; i++) {
		struct mapping *c = &w->maps[i];

		if (c->deferred && !c->tainted && (kind >= 50 || (c->flags & F_W)))
			cand[n++] = i;
	}
	if (kind >= 75 || !n) {
		/* From a mapping's last page on, or anywhere unmapped. */
		r.iova = n ? w->maps[cand[r1 % n]].iova +
			     w->maps[cand[r1 % n]].size - P :
			     0x7000000000ULL + (r2 % 4096) * P;
		r.size = (2 + r3 % 64) * P;
		if (r3 & 1)
			r.iova += 1 + r2 % (P - 1);	/* unaligned */
		step_desc(w, "channel: MAP_NOW [0x%llx, +0x%llx) running out of the mappings",
			  (unsigned long long)r.iova, (unsigned long long)r.size);
		st = chan_request(w, VFIO_ASYNC_MAP_NOW, &r);
		/* Past the end of one mapping another may begin: any of these. */
		if (st != -ENOENT && st != -EINVAL && st != 0)
			violation(w, "channel: MAP_NOW out of the mappings: status %d",
				  st);
		return;
	}
	m = &w->maps[cand[r1 % n]];
	pages = m->size / P;
	off = (r2 % pages) * P;
	r.iova = m->iova + off;
	r.size = (1 + (r2 >> 32) % (pages - off / P)) * P;

	if (kind < 50) {
		step_desc(w, "%s [0x%llx, +0x%llx) of deferred 0x%llx",
			  blocking ? "MAP_NOW (ioctl)" : "channel: MAP_NOW",
			  (unsigned long long)r.iova, (unsigned long long)r.size,
			  (unsigned long long)m->iova);
		st = blocking ? vfio_async_map_now_raw(w->container, &r) :
				chan_request(w, VFIO_ASYNC_MAP_NOW, &r);
		if (st)
			violation(w, "MAP_NOW of an untouched deferred range: %s",
				  strerror(-st));
		gi = w->g[r3 % NGROUPS].attached ? (int)(r3 % NGROUPS) :
						    (int)!(r3 % NGROUPS);
		if (w->g[gi].dev < 0)
			device_open(w, gi);
		if (!ensure_scratch(w))
			return;
		off += (r3 >> 20) % r.size;
		off &= ~(P - 1);
		if (len > m->size - off)
			len = m->size - off;
		w->st->dma++;
		dma_write_mapping(w, gi, m, off, eo, len);
	} else if (kind < 65) {
		step_desc(w, "channel: MAP_NEXT [0x%llx, +0x%llx)",
			  (unsigned long long)r.iova, (unsigned long long)r.size);
		st = chan_request(w, VFIO_ASYNC_MAP_NEXT, &r);
		if (st && st != -ENOSPC)
			violation(w, "MAP_NEXT: %s", strerror(-st));
	} else {
		step_desc(w, "channel: RELEASE [0x%llx, +0x%llx) of deferred 0x%llx",
			  (unsigned long long)r.iova, (unsigned long long)r.size,
			  (unsigned long long)m->iova);
		st = chan_request(w, VFIO_ASYNC_RELEASE, &r);
		if (st)
			violation(w, "RELEASE: %s", strerror(-st));
		/* Released chunks are unmapped until asked for: unverifiable. */
		taint_add(w, m->iova, m->size);
		m->tainted = true;
	}
}

/*
 * Map part of edu's BAR0 (VM_PFNMAP device memory, faulted in by vfio-pci)
 * sync or deferred: mapped, never pinned; a deferred one is charged to
 * locked_vm like any other, a sync one is not (nothing gets pinned).
 */
static void op_bar(struct worker *w)
{
	int gi = rnd(&w->rng, NGROUPS), pick = rnd(&w->rng, 100);
	uint64_t pages, off, iova;
	struct mreq q;
	struct grp *g;
	char x[64];
	unsigned int want;
	int ret;

	if (!w->g[gi].attached)
		gi = !gi;
	g = &w->g[gi];
	if (!w->iommu || !g->attached) {
		step_desc(w, "BAR map: no group");
		return;
	}
	if (g->dev < 0) {
		step_desc(w, "BAR map: open device of group %d", gi);
		device_open(w, gi);
	}
	pages = 1 + rnd(&w->rng, g->edu.bar_size / P);
	off = rnd(&w->rng, g->edu.bar_size / P - pages + 1) * P;
	iova = WIN_BASE + rnd(&w->rng, WIN_SIZE / CHUNK) * CHUNK +
	       (chance(&w->rng, 50) ? 0 : rnd(&w->rng, CHUNK / P) * P);
	memset(&q, 0, sizeof(q));
	q.deferred = pick < 70;
	q.flags = (pick % 3 == 0) ? F_R : F_R | F_W;
	if (q.deferred && pick < 15)
		q.flags |= F_NOW;
	q.vaddr = (uintptr_t)w->bar_area + gi * BAR_AREA + off;
	q.iova = iova;
	q.size = pages * P;
	q.argsz = q.deferred ? sizeof(struct vfio_iommu_async_dma_map) :
			       sizeof(struct vfio_iommu_type1_dma_map);
	q.bar = true;
	want = map_expect(w, &q);
	step_desc(w, "%s%s of BAR0 of group %d +0x%llx size 0x%llx at iova 0x%llx flags 0x%x -> want %s",
		  q.deferred ? "MAP_DMA_DEFERRED" : "MAP_DMA",
		  q.flags & F_NOW ? "(NOW)" : "", gi, (unsigned long long)off,
		  (unsigned long long)q.size, (unsigned long long)iova, q.flags,
		  xstr(want, x, sizeof(x)));
	ret = do_map(w, &q);
	expect(w, want, ret, "map of device memory");
	if (!ret) {
		struct mapping m = {
			.iova = q.iova, .size = q.size, .reg = -2 - gi,
			.off = off, .flags = q.flags & (F_R | F_W),
			.deferred = q.deferred && !(q.flags & F_NOW),
			.pfnmap = true,
		};

		model_add(w, &m);
	}
}

/* --- groups as operations -------------------------------------------------- */

/* VFIO_GROUP_UNSET_CONTAINER of one group; EBUSY while its device is open. */
static void op_detach(struct worker *w)
{
	int gi = rnd(&w->rng, NGROUPS), ret;
	bool busy = chance(&w->rng, 30);
	struct grp *g;

	if (!w->g[gi].attached)
		gi = !gi;
	g = &w->g[gi];
	if (!g->attached) {
		step_desc(w, "detach: nothing attached");
		return;
	}
	if (busy && g->dev < 0)
		device_open(w, gi);
	if (g->dev >= 0) {
		step_desc(w, "UNSET_CONTAINER group %d with its device open", gi);
		ret = vfio_group_unset_container(g->fd);
		expect(w, X_EBUSY, ret, "UNSET_CONTAINER with the device open");
		check_state(w, "after a refused detach");
		device_close(w, gi);
	}
	step_desc(w, "UNSET_CONTAINER group %d (%d attached, %d mappings)", gi,
		  nattached(w), w->nmaps);
	ret = vfio_group_unset_container(g->fd);
	expect(w, 0, ret, "UNSET_CONTAINER");
	g->attached = false;
	if (!nattached(w))
		model_drop_all(w);
	/* A detached group in hand: maybe give it back now. */
	if (chance(&w->rng, 50))
		release_group(w, gi, true);
}

/* Add the other group to our live container (lock order: index order). */
static void op_attach(struct worker *w)
{
	int gi = -1, i, ret;

	for (i = 0; i < NGROUPS && i < opt.ngroups; i++) {
		if (w->g[i].attached)
			continue;
		/* Only groups above every one held: never wait holding a higher one. */
		if (i == 0 && w->g[1].fd >= 0)
			continue;
		gi = i;
		break;
	}
	if (!w->iommu || gi < 0) {
		step_desc(w, "attach: nothing to attach");
		return;
	}
	step_desc(w, "SET_CONTAINER group %d into the live container (%d mappings)",
		  gi, w->nmaps);
	if (w->g[gi].fd < 0)
		acquire_group(w, gi);
	if (chance(&w->rng, 20)) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		/* The VFIO core's answer: EINVAL on 6.1, EBADFD on 6.12. */
		expect(w, X_EINVAL | X_EBADFD,
		       vfio_group_set_container(w->g[gi].fd, nul),
		       "SET_CONTAINER with /dev/null");
		close(nul);
		expect(w, X_EBADF, vfio_group_set_container(w->g[gi].fd, -1),
		       "SET_CONTAINER with fd -1");
	}
	ret = vfio_group_set_container(w->g[gi].fd, w->container);
	expect(w, 0, ret, "SET_CONTAINER");
	w->g[gi].attached = true;
	expect(w, X_EINVAL, vfio_group_set_container(w->g[gi].fd, w->container),
	       "SET_CONTAINER twice");
	check_info(w, false);
}

/* Close the container fd with groups still attached, then let them go. */
static void op_close(struct worker *w)
{
	bool unset = chance(&w->rng, 50), fd_first = chance(&w->rng, 70);
	int i;

	step_desc(w, "close: container fd %s, groups by %s (%d mappings)",
		  fd_first ? "first" : "last", unset ? "UNSET" : "close",
		  w->nmaps);
	if (w->container < 0)
		return;
	if (fd_first) {
		close(w->container);
		w->container = -1;
	}
	for (i = 0; i < NGROUPS; i++)
		release_group(w, i, unset);
	if (w->iommu)
		violation(w, "fuzzer bug: container still live");
	if (w->container >= 0) {
		/* Deprivileged: no IOMMU any more. */
		struct vfio_iommu_async_status s;

		expect(w, X_EINVAL, vfio_async_status(w->container, &s),
		       "GET_STATUS after the last group left");
		close(w->container);
		w->container = -1;
	}
	/* The container's directory is gone with it. */
	{
		char prefix[32];
		struct dirent *e;
		DIR *d = opendir(ASYNC_SYSFS);

		snprintf(prefix, sizeof(prefix), "pid%d-c", (int)getpid());
		while (d && (e = readdir(d)))
			if (!strncmp(e->d_name, prefix, strlen(prefix)))
				violation(w, "%s/%s still there after close",
					  ASYNC_SYSFS, e->d_name);
		if (d)
			closedir(d);
	}
}

static void op_device(struct worker *w)
{
	int gi = rnd(&w->rng, NGROUPS);
	struct grp *g = &w->g[gi];

	if (g->fd < 0) {
		step_desc(w, "device: group %d not held", gi);
		return;
	}
	if (g->dev >= 0) {
		step_desc(w, "close device of group %d", gi);
		device_close(w, gi);
	} else if (g->attached && w->iommu) {
		step_desc(w, "open device of group %d", gi);
		device_open(w, gi);
	} else {
		int fd;

		step_desc(w, "GET_DEVICE_FD of detached group %d", gi);
		fd = vfio_device_get(g->fd, opt.bdf[gi]);
		if (fd >= 0)
			close(fd);
		expect(w, X_EINVAL, fd < 0 ? fd : 0,
		       "GET_DEVICE_FD without a container");
	}
}

static void op_sysfs(struct worker *w)
{
	static const char *const f[] = { "sync_bytes", "deferred_bytes" };
	char path[PATH_MAX + 32], buf[128], want[128], comm[32];
	long v, m[2] = { (long)model_bytes(w, SYNC_BYTES),
			 (long)model_bytes(w, DEFERRED_BYTES) };
	int i;

	step_desc(w, "sysfs of %s", w->cdir);
	if (!w->iommu)
		return;
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", w->cdir, f[i]);
		if (sysfs_read_long(path, &v))
			violation(w, "cannot read %s", path);
		if (v != m[i])
			violation(w, "%s: %ld, model %ld", path, v, m[i]);
	}
	snprintf(path, sizeof(path), "%s/owner", w->cdir);
	if (sysfs_read(path, buf, sizeof(buf)) ||
	    sysfs_read("/proc/self/comm", comm, sizeof(comm)))
		violation(w, "cannot read %s", path);
	snprintf(want, sizeof(want), "%d %s", (int)getpid(), comm);
	if (strcmp(buf, want))
		violation(w, "%s: '%s', want '%s'", path, buf, want);
	snprintf(path, sizeof(path), "%s/first_error", w->cdir);
	if (sysfs_read(path, buf, sizeof(buf)))
		violation(w, "cannot read %s", path);
	{
		int err;
		unsigned long long a;

		if (sscanf(buf, "%d 0x%llx", &err, &a) != 2 ||
		    (err && err != -EFAULT && err != -ESRCH && err != -ENOMEM &&
		     err != -EOPNOTSUPP))
			violation(w, "%s: '%s'", path, buf);
	}
}

/* --- a child that maps into our container and is killed -------------------- */

struct crec {
	uint32_t op;
	int32_t ret;		/* 1: attempt, else the result (0 / -errno) */
	uint64_t iova, size;
	uint8_t deferred, unmap;
};

static void child_main(struct worker *w, uint64_t cseed, int nops, int wr)
{
	struct rng r = { .s = cseed };
	struct { uint64_t iova, size; } done[16];
	int ndone = 0, i;
	uint8_t *fresh;

	/* Its own memory, untouched: the background faults it in. */
	fresh = mmap(NULL, 8 * MiB, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	for (i = 0; i < nops; i++) {
		struct crec rec = { .op = i, .ret = 1 };
		int ret;

		if (ndone && chance(&r, 25)) {
			int k = rnd(&r, ndone);

			rec.unmap = 1;
			rec.iova = done[k].iova;
			rec.size = done[k].size;
			if (write(wr, &rec, sizeof(rec)) != sizeof(rec))
				_exit(2);
			ret = vfio_unmap(w->container, rec.iova, rec.size, 0, NULL);
			if (!ret)
				done[k] = done[--ndone];
		} else {
			bool own = fresh != MAP_FAILED && chance(&r, 60);
			uint64_t size = P * (1 + rnd(&r, 1024));
			uint8_t *va = own ? fresh : w->reg[2].va;
			uint32_t flags = F_R | F_W;

			if (chance(&r, 40))
				size = CHUNK * (1 + rnd(&r, 2));
			if (size > (own ? 8 * MiB : w->reg[2].size))
				size = CHUNK;
			rec.deferred = chance(&r, 60);
			rec.iova = CHILD_WIN + rnd(&r, (CHILD_WIN_SIZE - size) / P + 1) * P;
			if (chance(&r, 50))
				rec.iova &= ~(CHUNK - 1);
			rec.size = size;
			if (write(wr, &rec, sizeof(rec)) != sizeof(rec))
				_exit(2);
			if (rec.deferred) {
				struct vfio_iommu_async_dma_map m = {
					.argsz = sizeof(m), .vaddr = (uintptr_t)va,
					.iova = rec.iova, .size = size,
					.flags = flags | (chance(&r, 20) ? F_NOW : 0),
				};

				ret = ioctl(w->container, VFIO_IOMMU_MAP_DMA_DEFERRED,
					    &m) ? -errno : 0;
			} else {
				ret = vfio_map(w->container, rec.iova, va, size,
					       flags);
			}
			if (!ret && ndone < 16) {
				done[ndone].iova = rec.iova;
				done[ndone].size = size;
				ndone++;
			} else if (!ret) {
				rec.ret = 0;	/* reported, but not unmapped later */
			}
		}
		rec.ret = ret;
		if (write(wr, &rec, sizeof(rec)) != sizeof(rec))
			_exit(2);
	}
	for (;;)
		pause();
}

/* A mapping the child reported, as the parent learns it from its records. */
struct child_map {
	uint64_t iova, size;
	bool alive;		/* not unmapped since */
};
#define CHILD_MAPS	16	/* the parent follows this many */

/*
 * Apply one record of the child to @maps: an attempt (ret 1) is @pending,
 * its outcome @unknown, until its result comes. 1 for a result, else 0.
 */
static int child_rec(const struct crec *rec, struct child_map *maps, int *nm,
		     struct crec *pending, bool *unknown)
{
	int i;

	if (rec->ret == 1) {
		*pending = *rec;
		*unknown = true;
		return 0;
	}
	*unknown = false;
	if (rec->unmap) {
		for (i = 0; i < *nm; i++)
			if (maps[i].alive && maps[i].iova == rec->iova &&
			    maps[i].size == rec->size && !rec->ret) {
				maps[i].alive = false;
				break;
			}
	} else if (!rec->ret && *nm < CHILD_MAPS) {
		maps[*nm].iova = rec->iova;
		maps[*nm].size = rec->size;
		maps[*nm].alive = true;
		(*nm)++;
	}
	return 1;
}

static void op_child(struct worker *w)
{
	uint64_t cseed = rng_next(&w->rng);
	int nops = 1 + rnd(&w->rng, 10), j = rnd(&w->rng, nops + 1);
	unsigned int delay = rnd(&w->rng, 3000);
	struct child_map maps[CHILD_MAPS];
	struct crec rec, pending = { .ret = 0 };
	struct vfio_iommu_async_status s;
	int pfd[2], status, results = 0, nm = 0, i;
	uint64_t sum = 0, got = 0, alt;
	bool unknown = false;
	pid_t pid;

	if (!w->iommu || overlap(w, CHILD_WIN, CHILD_WIN_SIZE) >= 0) {
		step_desc(w, "child: no container, or its window is in use");
		return;
	}
	step_desc(w, "fork a child: %d ops, killed after result %d + %u us",
		  nops, j, delay);
	if (pipe(pfd))
		violation(w, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		violation(w, "fork: %s", strerror(errno));
	if (!pid) {
		close(pfd[0]);
		child_main(w, cseed, nops, pfd[1]);
	}
	close(pfd[1]);
	w->st->children++;
	/* Read its records until the j-th result, then kill it. */
	while (results < j && read(pfd[0], &rec, sizeof(rec)) == sizeof(rec))
		results += child_rec(&rec, maps, &nm, &pending, &unknown);
	usleep(delay);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		violation(w, "waitpid: %s", strerror(errno));
	while (read(pfd[0], &rec, sizeof(rec)) == sizeof(rec))
		child_rec(&rec, maps, &nm, &pending, &unknown);
	close(pfd[0]);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		violation(w, "child ended with status 0x%x", status);

	/* Its mappings are still there; everything must still add up. */
	if (vfio_async_status(w->container, &s))
		violation(w, "GET_STATUS after the child: %s", strerror(errno));
	if (!vfio_async_adds_up(&s))
		violation(w, "status does not add up after the child died");
	taint_add(w, CHILD_WIN, CHILD_WIN_SIZE);

	for (i = 0; i < nm; i++)
		if (maps[i].alive)
			sum += maps[i].size;
	/* The operation it may have been killed in either happened or not. */
	alt = sum;
	if (unknown) {
		if (pending.unmap)
			alt = sum - pending.size;
		else
			alt = sum + pending.size;
	}
	step_desc(w, "unmap the dead child's window: want %llu or %llu bytes",
		  (unsigned long long)sum, (unsigned long long)alt);
	if (vfio_unmap(w->container, CHILD_WIN, CHILD_WIN_SIZE, 0, &got))
		violation(w, "unmap of the child's window: %s", strerror(errno));
	if (got != sum && got != alt)
		violation(w, "the child's window held %llu bytes; it reported %llu (or %llu)",
			  (unsigned long long)got, (unsigned long long)sum,
			  (unsigned long long)alt);
	remember_unmapped(w, CHILD_WIN, CHILD_WIN_SIZE);
}

/* --- the worker loop ------------------------------------------------------- */

static void worker_cleanup(struct worker *w)
{
	int i;

	for (i = 0; i < NGROUPS; i++)
		if (w->g[i].fd >= 0) {
			device_close(w, i);
			close(w->g[i].fd);
			w->g[i].fd = -1;
			w->g[i].attached = false;
			flock(w->g[i].lockfd, LOCK_UN);
		}
	chan_drop(w);
	if (w->container >= 0)
		close(w->container);
	w->container = -1;
	w->iommu = false;
	w->nmaps = 0;
}

enum op {
	OP_MAP, OP_DMAP, OP_BOGUS_MAP, OP_UNMAP, OP_UNMAP_RANGE, OP_UNMAP_ALL,
	OP_UNMAP_EMPTY, OP_BOGUS_UNMAP, OP_STATUS, OP_INFO, OP_EXT, OP_SETTLE,
	OP_DETACH, OP_ATTACH, OP_CLOSE, OP_DEVICE, OP_MUNMAP, OP_MMAP,
	OP_MPROTECT, OP_CHILD, OP_SYSFS, OP_BAR, OP_MMAP_FILE, OP_CHAN, NR_OPS,
};

/* Relative weights, per thousand roughly; DMA is drawn separately. */
static const int weight[NR_OPS] = {
	[OP_MAP] = 140, [OP_DMAP] = 170, [OP_BOGUS_MAP] = 110,
	[OP_UNMAP] = 120, [OP_UNMAP_RANGE] = 50, [OP_UNMAP_ALL] = 8,
	[OP_UNMAP_EMPTY] = 15, [OP_BOGUS_UNMAP] = 30, [OP_STATUS] = 40,
	[OP_INFO] = 25, [OP_EXT] = 20, [OP_SETTLE] = 20, [OP_DETACH] = 10,
	[OP_ATTACH] = 15, [OP_CLOSE] = 6, [OP_DEVICE] = 15, [OP_MUNMAP] = 15,
	[OP_MMAP] = 20, [OP_MPROTECT] = 15, [OP_CHILD] = 12, [OP_SYSFS] = 15,
	[OP_BAR] = 15, [OP_MMAP_FILE] = 12, [OP_CHAN] = 40,
};

static void one_step(struct worker *w)
{
	int total = 0, pick, i, op;

	/* Leases: a group held long enough goes back to the others. */
	for (i = 0; i < NGROUPS; i++) {
		if (w->g[i].fd >= 0 && w->step >= w->g[i].lease_end) {
			step_desc(w, "lease of group %d over: release it", i);
			release_group(w, i, chance(&w->rng, 50));
			check_state(w, "after a lease ended");
			return;
		}
	}
	if (!w->iommu) {
		/* A container the last group left: no IOMMU ioctl works. */
		if (w->container >= 0 && chance(&w->rng, 30)) {
			switch (rnd(&w->rng, 5)) {
			case 0: op_map(w, chance(&w->rng, 50), false); break;
			case 1: op_unmap(w, 0); break;
			case 2: op_status(w); break;
			case 3: op_info(w); break;
			default: op_extension(w); break;
			}
			check_state(w, "after an ioctl without IOMMU");
			return;
		}
		setup(w);
		check_state(w, "after setup");
		return;
	}
	if ((int)rnd(&w->rng, 1000) < opt.dma_permille) {
		op_dma(w);
		check_state(w, "after DMA");
		return;
	}
	for (i = 0; i < NR_OPS; i++)
		total += weight[i];
	pick = rnd(&w->rng, total);
	for (op = 0; op < NR_OPS; op++) {
		if (pick < weight[op])
			break;
		pick -= weight[op];
	}
	switch (op) {
	case OP_MAP: op_map(w, false, false); break;
	case OP_DMAP: op_map(w, true, false); break;
	case OP_BOGUS_MAP: op_map(w, chance(&w->rng, 50), true); break;
	case OP_UNMAP: op_unmap(w, 0); break;
	case OP_UNMAP_RANGE: op_unmap(w, 1); break;
	case OP_UNMAP_ALL: op_unmap(w, 2); break;
	case OP_UNMAP_EMPTY: op_unmap(w, 3); break;
	case OP_BOGUS_UNMAP: op_unmap(w, 4); break;
	case OP_STATUS: op_status(w); break;
	case OP_INFO: op_info(w); break;
	case OP_EXT: op_extension(w); break;
	case OP_SETTLE: {
		struct vfio_iommu_async_status s;

		step_desc(w, "wait for the background to settle");
		settle(w, &s);
		break;
	}
	case OP_DETACH: op_detach(w); break;
	case OP_ATTACH: op_attach(w); break;
	case OP_CLOSE: op_close(w); break;
	case OP_DEVICE: op_device(w); break;
	case OP_MUNMAP: op_munmap(w); break;
	case OP_MMAP: op_mmap_back(w); break;
	case OP_MPROTECT: op_mprotect(w); break;
	case OP_MMAP_FILE: op_mmap_file(w); break;
	case OP_CHAN: op_chan(w); break;
	case OP_CHILD: op_child(w); break;
	case OP_SYSFS: op_sysfs(w); break;
	case OP_BAR: op_bar(w); break;
	}
	check_state(w, "after the step");
}

static void worker_main(uint64_t seed, int idx, long deadline_ms)
{
	static struct worker wk;
	struct worker *w = &wk;
	static const size_t sizes[NREG] = { 1 * MiB, 2 * MiB, 4 * MiB,
					    4 * MiB, 8 * MiB, 32 * MiB };
	static const bool thp[NREG] = { false, false, true, false, true, true };
	int i, ret;

	memset(w, 0, sizeof(*w));
	w->idx = idx;
	w->seed = seed;
	w->rng.s = mix(seed ^ mix(idx + 1));
	w->st = &shm->w[idx];
	w->container = -1;
	w->deadline_ms = deadline_ms;
	for (i = 0; i < NGROUPS; i++) {
		char lockpath[64];

		/* Its own open file: flock() locks belong to open files. */
		snprintf(lockpath, sizeof(lockpath), "/tmp/fuzz-group%d.lock", i);
		w->g[i].lockfd = open(lockpath, O_RDWR | O_CLOEXEC);
		if (w->g[i].lockfd < 0)
			violation(w, "%s: %s", lockpath, strerror(errno));
		w->g[i].fd = -1;
		w->g[i].dev = -1;
		edu_init(&w->g[i].edu);
	}
	step_desc(w, "worker start");
	for (i = 0; i < NREG; i++) {
		ret = region_alloc(&w->reg[i], sizes[i], thp[i], i == FRESH_REG,
				   (uint32_t)mix(seed + idx * 100 + i));
		if (ret)
			violation(w, "region %d: %s", i, strerror(-ret));
	}
	w->guard = mmap(NULL, P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w->bar_area = mmap(NULL, NGROUPS * BAR_AREA, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (w->bar_area == MAP_FAILED)
		violation(w, "mmap: %s", strerror(errno));
	w->scratch = mmap(NULL, P, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	w->arg = mmap(NULL, 3 * P, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	w->ro_page = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE |
			  MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (w->ro_page != MAP_FAILED) {
		/* A well formed GET_STATUS request the answer cannot be written to. */
		((struct vfio_iommu_async_status *)w->ro_page)->argsz =
			sizeof(struct vfio_iommu_async_status);
		mprotect(w->ro_page, P, PROT_READ);
	}
	if (w->guard == MAP_FAILED || w->scratch == MAP_FAILED ||
	    w->arg == MAP_FAILED || w->ro_page == MAP_FAILED ||
	    mprotect(w->arg + 2 * P, P, PROT_NONE))
		violation(w, "mmap: %s", strerror(errno));
	memset(w->scratch, 0, P);
	memset(w->sshadow, 0, P);

	/* Some workers are unprivileged, under RLIMIT_MEMLOCK. */
	w->unpriv = chance(&w->rng, 40) && getuid() == 0;
	if (w->unpriv) {
		w->rlimit = (16 + rnd(&w->rng, 49)) * MiB;
		w->huge = mmap(NULL, HUGE_VMA, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (w->huge == MAP_FAILED)
			w->huge = NULL;
		ret = drop_privileges(w->rlimit);
		if (ret)
			violation(w, "cannot drop privileges: %s",
				  strerror(-ret));
		w->st->unpriv = 1;
	}
	if (vmlck_kb(0, &w->lck_base))
		violation(w, "VmLck unreadable");

	for (w->step = 1; ; w->step++) {
		if (shm->abort || now_ms() >= w->deadline_ms ||
		    (opt.max_steps && w->step > opt.max_steps))
			break;
		one_step(w);
		w->st->steps = w->step;
	}
	w->step--;
	step_desc(w, "worker end: release everything");
	for (i = 0; i < NGROUPS; i++)
		release_group(w, i, chance(&w->rng, 50));
	if (w->container >= 0)
		close(w->container);
	w->container = -1;
	check_state(w, "at the end");
	if (w->lck_base != 0) {
		long l;

		vmlck_kb(0, &l);
		if (l != w->lck_base)
			violation(w, "VmLck %ld kB at the end", l);
	}
	_exit(0);
}

/* --- the parent ------------------------------------------------------------- */

/* Kernel log records that fail a seed (see kmsg_reports()). */
static const char *const kernel_bad[] = {
	"WARNING:", "BUG:", "Oops", "general protection", "Call Trace",
	"KASAN:", "UBSAN:", "kernel BUG", "blocked for more than",
	"suspected memory leak",
};

static int set_group_modes(mode_t mode, mode_t *old)
{
	struct stat st;
	int i;

	for (i = 0; i < opt.ngroups; i++) {
		if (old) {
			if (stat(opt.group[i], &st))
				return -errno;
			old[i] = st.st_mode & 07777;
		}
		if (chmod(opt.group[i], old && mode == 0 ? old[i] : mode))
			return -errno;
	}
	return 0;
}

struct seed_result {
	long steps, sequences, dma, children, ok_ops, err_ops, settles, racing;
	int unpriv;
};

static int run_seed(uint64_t seed, int seconds, struct seed_result *res,
		    char *why, size_t whyn)
{
	char lockpath[64];
	int lockfds[NGROUPS], kfd, i, failed = 0;
	long limit_old = -1, limit, pins0, t0 = now_ms(), deadline;
	pid_t pids[MAXP];
	mode_t modes[NGROUPS];
	struct rng r = { .s = mix(seed) };

	memset(res, 0, sizeof(*res));
	why[0] = '\0';
	memset(shm, 0, sizeof(*shm));
	deadline = t0 + seconds * 1000L;

	/* Per seed: a small entry limit now and then, to reach ENOSPC. */
	limit = chance(&r, 50) ? 8 + (long)rnd(&r, 40) : 65535;
	if (sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
			    &limit_old) ||
	    sysfs_write_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
			     limit)) {
		snprintf(why, whyn, "cannot set dma_entry_limit");
		return 1;
	}
	for (i = 0; i < NGROUPS; i++) {
		snprintf(lockpath, sizeof(lockpath), "/tmp/fuzz-group%d.lock", i);
		lockfds[i] = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		if (lockfds[i] < 0 || fchmod(lockfds[i], 0666)) {
			snprintf(why, whyn, "%s: %s", lockpath, strerror(errno));
			return 1;
		}
	}
	/* Unprivileged workers open the groups too. */
	if (set_group_modes(0666, modes)) {
		snprintf(why, whyn, "chmod %s: %s", opt.group[0], strerror(errno));
		return 1;
	}
	kfd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kfd >= 0)
		lseek(kfd, 0, SEEK_END);
	if (pins_outstanding(&pins0)) {
		snprintf(why, whyn, "pins_outstanding unreadable");
		return 1;
	}
	say("# seed 0x%llx: %d workers, %d s, dma_entry_limit %ld",
	    (unsigned long long)seed, opt.procs, seconds, limit);
	fflush(stdout);

	for (i = 0; i < opt.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			snprintf(why, whyn, "fork: %s", strerror(errno));
			opt.procs = i;
			failed = 1;
			break;
		}
		if (!pids[i])
			worker_main(seed, i, deadline);
	}

	/* Wait; a worker still there long after the deadline is hung. */
	for (;;) {
		int left = 0, status;

		for (i = 0; i < opt.procs; i++) {
			if (!pids[i])
				continue;
			if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				pids[i] = 0;
				if (!WIFEXITED(status) || WEXITSTATUS(status)) {
					failed = 1;
					if (!shm->w[i].failed) {
						shm->w[i].failed = 1;
						snprintf(shm->w[i].msg, sizeof(shm->w[i].msg),
							 "worker %d died: status 0x%x",
							 i, status);
					}
					shm->abort = 1;
				}
				continue;
			}
			left++;
		}
		if (!left)
			break;
		if (now_ms() > deadline + SETTLE_MS + 60000) {
			for (i = 0; i < opt.procs; i++)
				if (pids[i]) {
					say("# worker %d hung (step %ld): killing it",
					    i, shm->w[i].steps);
					if (!shm->w[i].failed) {
						shm->w[i].failed = 1;
						snprintf(shm->w[i].msg, sizeof(shm->w[i].msg),
							 "worker %d hung at step %ld",
							 i, shm->w[i].steps);
					}
					kill(pids[i], SIGKILL);
				}
			failed = 1;
		}
		usleep(20000);
	}
	for (i = 0; i < opt.procs; i++) {
		struct wstats *s = &shm->w[i];

		res->steps += s->steps;
		res->sequences += s->sequences;
		res->dma += s->dma;
		res->children += s->children;
		res->ok_ops += s->ok_ops;
		res->err_ops += s->err_ops;
		res->settles += s->settles;
		res->racing += s->racing;
		res->unpriv += s->unpriv;
		if (s->failed && !why[0])
			snprintf(why, whyn, "%s", s->msg);
	}

	/* Everyone gone: nothing may be left behind. */
	if (!failed) {
		char w2[200] = "";

		if (async_wait_clean(pins0, 10000, w2, sizeof(w2))) {
			failed = 1;
			snprintf(why, whyn, "after all workers exited: %s", w2);
		}
	}
	{
		char rec[201];

		if (kmsg_reports(kfd, kernel_bad,
				 sizeof(kernel_bad) / sizeof(kernel_bad[0]),
				 rec, sizeof(rec))) {
			if (!why[0] || !failed)
				snprintf(why, whyn, "kernel: %s", rec);
			else
				say("# kernel: %s", rec);
			failed = 1;
		}
	}
	if (kfd >= 0)
		close(kfd);
	set_group_modes(0, modes);
	sysfs_write_long(ASYNC_MODULE_SYSFS "/parameters/dma_entry_limit",
			 limit_old);
	for (i = 0; i < NGROUPS; i++)
		close(lockfds[i]);
	say("# seed 0x%llx: %ld steps (%ld with background work pending), %ld sequences, %ld DMA checks, %ld children, %ld settles, %ld ok / %ld refused ioctls, %d unprivileged, %ld s%s%s",
	    (unsigned long long)seed, res->steps, res->racing, res->sequences,
	    res->dma, res->children, res->settles, res->ok_ops, res->err_ops,
	    res->unpriv,
	    (now_ms() - t0 + 500) / 1000, failed ? ": " : "", failed ? why : "");
	return failed;
}

static int parse_seeds(const char *arg, uint64_t *seeds, int max)
{
	char *copy = strdup(arg), *tok, *save = NULL, *end;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok && n < max;
	     tok = strtok_r(NULL, ",", &save)) {
		errno = 0;
		seeds[n] = strtoull(tok, &end, 0);
		if (errno || *end || end == tok) {
			free(copy);
			return -1;
		}
		n++;
	}
	free(copy);
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fuzz [-s SEED[,SEED...]] [-t SECONDS] [-T SECONDS] [-p PROCS]\n"
		"            [-n STEPS] [-D PERMILLE] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seeds[256];
	int nseeds = 0, total = 60, per = 20, c, i, failed = 0;
	bool t_given = false;
	long t0 = now_ms();
	struct seed_result sum = { 0 };
	long v;

	while ((c = getopt(argc, argv, "s:t:T:p:n:D:vh")) != -1) {
		switch (c) {
		case 's':
			nseeds = parse_seeds(optarg, seeds, 256);
			if (nseeds <= 0)
				usage();
			break;
		case 't': total = atoi(optarg); t_given = true; break;
		case 'T': per = atoi(optarg); break;
		case 'p': opt.procs = atoi(optarg); break;
		case 'n': opt.max_steps = atol(optarg); break;
		case 'D': opt.dma_permille = atoi(optarg); break;
		case 'v': opt.verbose = true; break;
		default: usage();
		}
	}
	if (total <= 0 || per <= 0 || opt.procs < 1 || opt.procs > MAXP)
		usage();

	say("TAP version 13");
	opt.group[0] = getenv("VFIO_GROUP");
	opt.bdf[0] = getenv("VFIO_BDF");
	opt.group[1] = getenv("VFIO_GROUP2");
	opt.bdf[1] = getenv("VFIO_BDF2");
	opt.ngroups = opt.group[1] && opt.bdf[1] ? 2 : 1;
	if (!opt.group[0] || !opt.bdf[0] || !async_loaded() || getuid()) {
		say("1..0 # SKIP %s", getuid() ? "needs root" :
		    !async_loaded() ? "vfio_iommu_async not loaded" :
		    "VFIO_GROUP/VFIO_BDF not set");
		return 4;
	}
	if (opt.ngroups == 1)
		say("# only one edu group: every worker shares it");
	if (sysfs_read_long(ASYNC_MODULE_SYSFS "/parameters/threads", &v) || v < 1) {
		say("1..0 # SKIP cannot read the threads parameter");
		return 4;
	}
	opt.threads = v;
	opt.dropin = async_dropin() == 1;

	if (nseeds) {
		if (t_given)
			per = total / nseeds > 0 ? total / nseeds : 1;
		else if (opt.max_steps)
			per = 3600;
	} else {
		int fd = open("/dev/urandom", O_RDONLY);

		if (total < per)
			per = total;
		nseeds = total / per;
		if (nseeds > 256)
			nseeds = 256;
		if (fd < 0 || read(fd, seeds, nseeds * sizeof(seeds[0])) !=
			      (ssize_t)(nseeds * sizeof(seeds[0]))) {
			for (i = 0; i < nseeds; i++)
				seeds[i] = mix(now_ms() + i);
		}
		if (fd >= 0)
			close(fd);
		for (i = 0; i < nseeds; i++)
			seeds[i] &= 0xffffffffffffULL;	/* shorter to type */
	}

	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		say("Bail out! mmap: %s", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A ramfs for op_mmap_file(), writable by the unprivileged workers. */
	snprintf(ramfs_dir, sizeof(ramfs_dir), "/tmp/fuzz-ramfs");
	if ((mkdir(ramfs_dir, 0777) && errno != EEXIST) ||
	    mount("ramfs", ramfs_dir, "ramfs", 0, "mode=1777")) {
		say("# no ramfs (%s): memfd files only", strerror(errno));
		ramfs_dir[0] = 0;
	}
	say("1..%d", nseeds);
	say("# fuzz: %d seed(s) of %d s, %d worker(s), %d group(s), threads=%d, DMA %d/1000 steps",
	    nseeds, per, opt.procs, opt.ngroups, opt.threads, opt.dma_permille);
	for (i = 0; i < nseeds; i++) {
		struct seed_result r;
		char why[512];
		int bad = run_seed(seeds[i], per, &r, why, sizeof(why));

		sum.steps += r.steps;
		sum.sequences += r.sequences;
		sum.dma += r.dma;
		sum.children += r.children;
		failed += bad;
		if (bad)
			say("not ok %d seed 0x%llx: %s", i + 1,
			    (unsigned long long)seeds[i], why);
		else
			say("ok %d seed 0x%llx", i + 1,
			    (unsigned long long)seeds[i]);
	}
	say("# fuzz totals: seeds=%d failed=%d steps=%ld sequences=%ld dma=%ld children=%ld seconds=%ld",
	    nseeds, failed, sum.steps, sum.sequences, sum.dma, sum.children,
	    (now_ms() - t0 + 500) / 1000);
	say("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0",
	    nseeds - failed, failed);
	return failed ? 1 : 0;
}
