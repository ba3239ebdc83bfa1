# SPDX-License-Identifier: GPL-2.0-only
#
# vfio_iommu_async: build, lint, test and package.
#
#   make                 build the module for each target kernel
#   make check           install what is missing, build, boot the test VM, run
#                        the selftests (ours and stock type1), print a summary
#   make demo            boot the VM and show what the module does
#   make bench           stock type1 vs this module, side by side, in one VM
#   make lint            W=1 + sparse build and checkpatch --strict
#   make check-debug     the suite on a KASAN/lockdep/kmemleak debug kernel
#   make dkms-check      add/build/install with DKMS, then run the VM on that .ko
#   make deb             a Debian vfio-iommu-async-dkms package in build/
#   make fresh-check     the README's Quick start on a bare Debian 12 root
#   make qemu            Debian's QEMU 7.2 with qemu/patches/ (cached build)
#   make demo-qemu       a nested guest under that QEMU: start times, deflates
#   make check-qemu      its balloon flow, small (CI's tier): every DMA lands,
#                        a runtime inflate gives memory back, sabotage caught
#
# The targets are Debian 12's kernels: 6.1 and 6.12 (scripts/target-kernel;
# KERNEL_SERIES=6.12 picks one series, KERNELRELEASE=<release> one kernel,
# KDIR its build directory). The build machine's own kernel is never one.
# Each kernel's module is build/<release>/kmod/vfio_iommu_async.ko.
#
# Everything that depends on installed packages (the kernel releases, their
# build directories) is a recursive variable, expanded only in recipes,
# which run after "setup" has installed the packages: on a bare machine the
# first "make" installs them, then finds the kernels. Never use := for these.

KERNELRELEASES = $(or $(KERNELRELEASE),$(shell scripts/target-kernel --all))
ifdef KDIR
export KDIR
endif
BUILD := build
CHECKPATCH := $(BUILD)/ksrc/scripts/checkpatch.pl

.PHONY: all modules clean lint check check-layout selftests demo bench \
	setup dkms-check deb install check-debug fresh-check qemu demo-qemu \
	check-qemu

all: modules

# Resolved late, so that "make check" on a bare machine installs first.
modules: setup
	@test -n "$(KERNELRELEASES)" || { echo "no target kernel" >&2; exit 1; }
	@for r in $(KERNELRELEASES); do scripts/build-kmod $$r modules || exit 1; done

setup:
	@scripts/setup-host

install: modules
	@for r in $(KERNELRELEASES); do \
		scripts/build-kmod $$r modules_install && depmod -a $$r || exit 1; \
	done

$(CHECKPATCH): | setup
	scripts/ksrc-extract $(BUILD)/ksrc scripts/checkpatch.pl \
		scripts/spelling.txt scripts/const_structs.checkpatch

lint: setup $(CHECKPATCH)
	@mkdir -p $(BUILD)
	@for r in $(KERNELRELEASES); do \
		scripts/build-kmod $$r clean >/dev/null && \
		scripts/build-kmod $$r W=1 C=2 modules 2>&1 | tee $(BUILD)/lint-$$r.log; \
		! grep -E 'warning|error' $(BUILD)/lint-$$r.log || \
			{ echo "lint: compiler or sparse warnings above ($$r)" >&2; exit 1; }; \
	done
	$(CHECKPATCH) --no-tree --strict --terse \
		-f $(filter-out %.mod.c,$(wildcard kmod/*.c kmod/probes/*.c)) kmod/*.h include/uapi/linux/*.h

check-layout: modules
	@for r in $(KERNELRELEASES); do \
		scripts/check-vfio-layout $(BUILD)/$$r/kmod/vfio_iommu_async.ko $$r || exit 1; \
	done

selftests: setup
	$(MAKE) -C selftests
	$(MAKE) -C tools

check: modules selftests
	KERNELRELEASES="$(KERNELRELEASES)" scripts/run-checks

# Builds (and caches in ~/.cache/vfio-async) a debug 6.1 kernel first.
check-debug: setup
	scripts/check-debug

demo: modules selftests
	scripts/demo

bench: modules selftests
	scripts/bench

# scripts/qemu-build installs its own build dependencies and deb-src lines.
qemu: setup
	scripts/qemu-build

demo-qemu: setup
	scripts/qemu-e2e

check-qemu: setup
	BALLOON_MB=1024 STEPS=1 STEP_MB=256 scripts/qemu-e2e balloon

dkms-check: setup
	KERNELRELEASES="$(KERNELRELEASES)" scripts/dkms-check

deb: setup
	scripts/mkdeb $(BUILD)

# Not after setup: it checks that the commands above install what they need.
fresh-check:
	scripts/fresh-check

clean:
	-$(MAKE) -C selftests clean
	rm -rf $(BUILD)
