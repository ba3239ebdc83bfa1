# SPDX-License-Identifier: GPL-2.0-only
#
# vfio_iommu_async: build, lint, test and package.
#
#   make                 build kmod/vfio_iommu_async.ko for the target kernel
#   make check           install what is missing, build, boot the test VM, run
#                        the selftests (ours and stock type1), print a summary
#   make demo            boot the VM and show what the module does
#   make bench           stock type1 vs this module, side by side, in one VM
#   make lint            W=1 + sparse build and checkpatch --strict
#   make check-debug     the suite on a KASAN/lockdep/kmemleak debug kernel
#   make dkms-check      add/build/install with DKMS, then run the VM on that .ko
#   make deb             a Debian vfio-iommu-async-dkms package in build/
#   make fresh-check     the README's Quick start on a bare Debian 12 root
#
# The target is Debian 12's 6.1 kernel; the build machine's own kernel is not
# one. KERNELRELEASE and KDIR override what scripts/target-kernel finds.
#
# Everything that depends on installed packages (the kernel release, its
# build directory) is a recursive variable, expanded only in recipes, which
# run after "setup" has installed the packages: on a bare machine the first
# "make" installs them, then finds the kernel. Never use := for these.

KERNELRELEASE ?= $(shell scripts/target-kernel)
KDIR ?= /lib/modules/$(KERNELRELEASE)/build

KBUILD_ARGS = -C $(KDIR) M=$(CURDIR)/kmod CONFIG_VFIO_IOMMU_ASYNC=m
KO := kmod/vfio_iommu_async.ko
BUILD := build
CHECKPATCH := $(BUILD)/ksrc/scripts/checkpatch.pl

.PHONY: all modules clean lint check check-layout selftests demo bench \
	setup dkms-check deb install check-debug fresh-check

all: modules

# Resolved late, so that "make check" on a bare machine installs first.
modules: setup
	@test -n "$(KERNELRELEASE)" && test -d "$(KDIR)" || \
		{ echo "no kernel build directory '$(KDIR)'" >&2; exit 1; }
	$(MAKE) $(KBUILD_ARGS) modules

setup:
	@scripts/setup-host

install: modules
	$(MAKE) $(KBUILD_ARGS) modules_install
	depmod -a $(KERNELRELEASE)

$(CHECKPATCH): | setup
	scripts/ksrc-extract $(BUILD)/ksrc scripts/checkpatch.pl \
		scripts/spelling.txt scripts/const_structs.checkpatch

lint: setup $(CHECKPATCH)
	$(MAKE) $(KBUILD_ARGS) clean
	$(MAKE) $(KBUILD_ARGS) W=1 C=2 modules 2>&1 | tee $(BUILD)/lint.log
	@! grep -E 'warning|error' $(BUILD)/lint.log || \
		{ echo "lint: compiler or sparse warnings above" >&2; exit 1; }
	$(CHECKPATCH) --no-tree --strict --terse \
		-f $(filter-out %.mod.c,$(wildcard kmod/*.c)) kmod/*.h include/uapi/linux/*.h

check-layout: modules
	scripts/check-vfio-layout $(KO) $(KERNELRELEASE)

selftests: setup
	$(MAKE) -C selftests

check: modules check-layout selftests
	scripts/run-checks

# Builds (and caches in ~/.cache/vfio-async) a debug 6.1 kernel first.
check-debug: setup
	scripts/check-debug

demo: modules selftests
	scripts/demo

bench: modules selftests
	scripts/bench

dkms-check: setup
	scripts/dkms-check

deb: setup
	scripts/mkdeb $(BUILD)

# Not after setup: it checks that the commands above install what they need.
fresh-check:
	scripts/fresh-check

clean:
	-$(MAKE) $(KBUILD_ARGS) clean
	-$(MAKE) -C selftests clean
	rm -rf $(BUILD)
