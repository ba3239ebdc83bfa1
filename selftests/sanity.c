// SPDX-License-Identifier: GPL-2.0
/*
 * sanity: vfio_iommu_async and stock vfio_iommu_type1 coexist.
 *
 * - a fresh container always answers VFIO_TYPE1v2_IOMMU (stock is there);
 * - VFIO_ASYNC_IOMMU is answered iff our module is loaded;
 * - SET_IOMMU(VFIO_ASYNC_IOMMU) selects us: /sys/kernel/vfio_async/containers
 *   counts the container while it is set and drops back when it goes;
 * - a container set to VFIO_TYPE1v2_IOMMU is ours only with type1v2_dropin=Y,
 *   one set to VFIO_TYPE1_IOMMU (v1) is never ours;
 * - /sys/kernel/vfio_async/version is a sane version string;
 * - SET_IOMMU with an unknown type, without a group, or twice fails;
 * - the module cannot be removed while a container uses it, and can the
 *   moment the last one is closed, without anything of it running later
 *   (the debug kernel delays kobject releases by seconds to catch that).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define UNKNOWN_IOMMU_TYPE 0x7ffffff0UL

TEST(type1v2_always_answered)
{
	int c = vfio_container_new();

	ASSERT_OK(c);
	/* No IOMMU set yet: every registered backend is asked. */
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_TYPE1_IOMMU));
	EXPECT_EQ(0, vfio_check_extension(c, UNKNOWN_IOMMU_TYPE));
	close(c);
}

TEST(async_not_answered_without_module)
{
	int c;

	if (async_loaded())
		SKIP(return, "vfio_iommu_async is loaded");
	c = vfio_container_new();
	ASSERT_OK(c);
	EXPECT_EQ(0, vfio_check_extension(c, VFIO_ASYNC_IOMMU));
	EXPECT_EQ(-1, access(ASYNC_MODULE_SYSFS, F_OK));
	close(c);
}

TEST(async_answered_with_module)
{
	int c;

	if (!async_loaded())
		SKIP(return, "vfio_iommu_async not loaded");
	c = vfio_container_new();
	ASSERT_OK(c);
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_ASYNC_IOMMU));
	/* Stock type1 still answers its own types next to us. */
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(1, vfio_check_extension(c, VFIO_TYPE1_IOMMU));
	close(c);
}

static bool version_sane(const char *v)
{
	int parts = 0;

	/* MAJOR.MINOR.PATCH, then an optional -suffix / +suffix / ~suffix */
	while (parts < 3) {
		if (!isdigit((unsigned char)*v))
			return false;
		while (isdigit((unsigned char)*v))
			v++;
		parts++;
		if (parts < 3 && *v++ != '.')
			return false;
	}
	if (*v && *v != '-' && *v != '+' && *v != '~')
		return false;
	for (; *v; v++)
		if (!isalnum((unsigned char)*v) && !strchr("-+~._", *v))
			return false;
	return true;
}

TEST(async_version)
{
	char v[64], mv[64];

	if (!async_loaded())
		SKIP(return, "vfio_iommu_async not loaded");
	ASSERT_OK(sysfs_read(ASYNC_SYSFS "/version", v, sizeof(v)));
	TH_LOG("version '%s'", v);
	EXPECT_TRUE(version_sane(v));
	/* MODULE_VERSION, when set, must say the same. */
	if (!sysfs_read(ASYNC_MODULE_SYSFS "/version", mv, sizeof(mv)))
		EXPECT_STREQ(mv, v);
}

FIXTURE(dev) {
	struct vfio_dev v;
};

FIXTURE_SETUP(dev)
{
	vfio_dev_init(&self->v);
	if (vfio_env_missing(VFIO_TYPE1v2_IOMMU))
		SKIP(return, "%s", vfio_env_missing(VFIO_TYPE1v2_IOMMU));
	/* Without interrupt remapping only the test about it can set up. */
	if (getenv("VFIO_TEST_NO_INTREMAP") &&
	    !strstr(_metadata->name, "no_intremap"))
		SKIP(return, "needs interrupt remapping");
}

FIXTURE_TEARDOWN(dev)
{
	vfio_dev_close(&self->v);
}

/* Container and group only: SET_IOMMU is what these tests are about. */
static int open_unset(struct vfio_dev *d)
{
	int ret;

	vfio_dev_init(d);
	ret = d->container = vfio_container_new();
	if (ret < 0)
		return ret;
	ret = d->group = vfio_group_open(getenv("VFIO_GROUP"));
	if (ret < 0)
		return ret;
	return vfio_group_set_container(d->group, d->container);
}

TEST_F(dev, async_containers_count)
{
	RETURN_IF_SKIPPED();
	if (!async_loaded())
		SKIP(return, "vfio_iommu_async not loaded");

	ASSERT_EQ(0, async_containers());
	ASSERT_OK(vfio_dev_open_env(&self->v, VFIO_ASYNC_IOMMU));
	EXPECT_EQ(1, async_containers());
	/* Set to us, the container answers with our backend. */
	EXPECT_EQ(1, vfio_check_extension(self->v.container, VFIO_ASYNC_IOMMU));
	vfio_dev_close(&self->v);
	EXPECT_EQ(0, async_containers());

	/* Detaching the last group releases the IOMMU, fd still open. */
	ASSERT_OK(open_unset(&self->v));
	EXPECT_EQ(0, async_containers());
	ASSERT_OK(vfio_set_iommu(self->v.container, VFIO_ASYNC_IOMMU));
	EXPECT_EQ(1, async_containers());
	ASSERT_OK(vfio_group_unset_container(self->v.group));
	EXPECT_EQ(0, async_containers());
	vfio_dev_close(&self->v);
	EXPECT_EQ(0, async_containers());
}

/* Each container holds the module: rmmod is refused until it is closed. */
TEST_F(dev, rmmod_refused_while_container_exists)
{
	RETURN_IF_SKIPPED();
	if (!async_loaded())
		SKIP(return, "vfio_iommu_async not loaded");

	ASSERT_OK(vfio_dev_open_env(&self->v, VFIO_ASYNC_IOMMU));
	errno = 0;
	EXPECT_EQ(-1, syscall(SYS_delete_module, "vfio_iommu_async",
			      O_NONBLOCK));
	EXPECT_EQ(EWOULDBLOCK, errno);
	EXPECT_TRUE(async_loaded());
	EXPECT_EQ(1, async_containers());
}

/* The parameters of the loaded module, as "name=value ..." for modprobe. */
static int async_params(char *out, size_t n)
{
	static const char *const names[] = {
		"type1v2_dropin", "allow_unsafe_interrupts", "dma_entry_limit",
		"threads", "nice", "cpus", "sweep",
	};
	char path[128], val[64];
	size_t used = 0;
	unsigned int i;
	int ret;

	out[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), ASYNC_MODULE_SYSFS "/parameters/%s",
			 names[i]);
		ret = sysfs_read(path, val, sizeof(val));
		if (ret)
			return ret;
		if (!val[0] || !strcmp(val, "(null)"))
			continue;
		used += snprintf(out + used, n - used, " %s=%s", names[i], val);
		if (used >= n)
			return -E2BIG;
	}
	return 0;
}

/*
 * rmmod right after the last container goes, then wait: a container's
 * sysfs directory may be released seconds later (DEBUG_KOBJECT_RELEASE
 * delays every kobject release by 1-4 s), and nothing of the module may
 * run then. Loaded again with the same parameters for the tests after.
 */
TEST_F_TIMEOUT(dev, rmmod_right_after_close, 60)
{
	char params[512], cmd[640];

	RETURN_IF_SKIPPED();
	if (!async_loaded())
		SKIP(return, "vfio_iommu_async not loaded");
	ASSERT_OK(async_params(params, sizeof(params)));

	ASSERT_OK(vfio_dev_open_env(&self->v, VFIO_ASYNC_IOMMU));
	vfio_dev_close(&self->v);
	EXPECT_EQ(0, syscall(SYS_delete_module, "vfio_iommu_async",
			     O_NONBLOCK));
	EXPECT_FALSE(async_loaded());
	/* Longer than the longest delayed release. */
	sleep(6);
	snprintf(cmd, sizeof(cmd), "modprobe vfio_iommu_async%s", params);
	ASSERT_EQ(0, system(cmd));
	ASSERT_TRUE(async_loaded());
	EXPECT_EQ(0, async_containers());
}

/*
 * Without interrupt remapping a device could forge MSIs: both backends
 * refuse the group with EPERM unless allow_unsafe_interrupts is set. Only
 * meaningful in a VM whose IOMMU has interrupt remapping off
 * (run-checks' nointremap tier sets VFIO_TEST_NO_INTREMAP=1).
 */
TEST_F(dev, no_intremap_refused_unless_allowed)
{
	const char *param = ASYNC_MODULE_SYSFS "/parameters/allow_unsafe_interrupts";
	char old[8];

	RETURN_IF_SKIPPED();
	if (!getenv("VFIO_TEST_NO_INTREMAP"))
		SKIP(return, "the VM has interrupt remapping");

	ASSERT_OK(open_unset(&self->v));
	EXPECT_ERRNO(EPERM, vfio_set_iommu(self->v.container,
					   VFIO_TYPE1v2_IOMMU));
	if (!async_loaded())
		return;

	EXPECT_ERRNO(EPERM, vfio_set_iommu(self->v.container,
					   VFIO_ASYNC_IOMMU));
	ASSERT_OK(sysfs_read(param, old, sizeof(old)));
	ASSERT_OK(sysfs_write(param, "Y"));
	EXPECT_OK(vfio_set_iommu(self->v.container, VFIO_ASYNC_IOMMU));
	EXPECT_EQ(1, async_containers());
	ASSERT_OK(sysfs_write(param, old));
}

TEST_F(dev, type1_containers_not_ours)
{
	int dropin;

	RETURN_IF_SKIPPED();
	if (!async_loaded())
		SKIP(return, "vfio_iommu_async not loaded");
	dropin = async_dropin();
	ASSERT_OK(dropin);
	TH_LOG("type1v2_dropin=%s", dropin ? "Y" : "N");

	ASSERT_EQ(0, async_containers());
	ASSERT_OK(vfio_dev_open_env(&self->v, VFIO_TYPE1v2_IOMMU));
	/* With dropin we answer TYPE1v2 first; without, stock does. */
	EXPECT_EQ(dropin, async_containers());
	vfio_dev_close(&self->v);
	EXPECT_EQ(0, async_containers());

	/* Type1 v1 semantics are never ours. */
	ASSERT_OK(vfio_dev_open_env(&self->v, VFIO_TYPE1_IOMMU));
	EXPECT_EQ(0, async_containers());
	vfio_dev_close(&self->v);
}

TEST_F(dev, set_iommu_unknown_type)
{
	RETURN_IF_SKIPPED();
	ASSERT_OK(open_unset(&self->v));
	/* Nobody answers the type: vfio's SET_IOMMU gives ENODEV. */
	EXPECT_ERRNO(ENODEV, vfio_set_iommu(self->v.container,
					    UNKNOWN_IOMMU_TYPE));
	if (!async_loaded())
		EXPECT_ERRNO(ENODEV, vfio_set_iommu(self->v.container,
						    VFIO_ASYNC_IOMMU));
	/* The failures left the container usable. */
	EXPECT_OK(vfio_set_iommu(self->v.container, VFIO_TYPE1v2_IOMMU));
}

TEST_F(dev, set_iommu_without_group)
{
	int c;

	RETURN_IF_SKIPPED();
	c = vfio_container_new();
	ASSERT_OK(c);
	EXPECT_ERRNO(EINVAL, vfio_set_iommu(c, VFIO_TYPE1v2_IOMMU));
	if (async_loaded()) {
		EXPECT_ERRNO(EINVAL, vfio_set_iommu(c, VFIO_ASYNC_IOMMU));
		EXPECT_EQ(0, async_containers());
	}
	close(c);
}

TEST_F(dev, set_iommu_twice)
{
	RETURN_IF_SKIPPED();
	ASSERT_OK(open_unset(&self->v));
	ASSERT_OK(vfio_set_iommu(self->v.container, VFIO_TYPE1v2_IOMMU));
	EXPECT_ERRNO(EINVAL, vfio_set_iommu(self->v.container,
					    VFIO_TYPE1v2_IOMMU));
	if (async_loaded()) {
		int before = async_containers();

		EXPECT_ERRNO(EINVAL, vfio_set_iommu(self->v.container,
						    VFIO_ASYNC_IOMMU));
		EXPECT_EQ(before, async_containers());
		vfio_dev_close(&self->v);

		ASSERT_OK(open_unset(&self->v));
		ASSERT_OK(vfio_set_iommu(self->v.container, VFIO_ASYNC_IOMMU));
		EXPECT_ERRNO(EINVAL, vfio_set_iommu(self->v.container,
						    VFIO_TYPE1v2_IOMMU));
		EXPECT_EQ(1, async_containers());
	}
}

TEST_HARNESS_MAIN
