// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_EVENTFD_SIGNAL_NO_COUNT: eventfd_signal() always adds 1.
 * Linux 6.8 ("eventfd: simplify eventfd_signal()").
 */
#include <linux/eventfd.h>

static __maybe_unused void probe(struct eventfd_ctx *ctx)
{
#ifdef PROBE_NEW
	eventfd_signal(ctx);
#else
	eventfd_signal(ctx, 1);
#endif
}
