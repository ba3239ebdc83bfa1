// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "proc.h"
#include "vfio_util.h"

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

int close_fd(int *fd)
{
	int ret = 0;

	if (*fd >= 0 && close(*fd))
		ret = neg_errno();
	*fd = -1;
	return ret;
}

void vfio_dev_init(struct vfio_dev *d)
{
	d->container = d->group = d->device = -1;
	d->iommu_type = 0;
	d->step[0] = '\0';
}

int vfio_container_new(void)
{
	int fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	if (ioctl(fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

int vfio_group_open(const char *group_path)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int fd = open(group_path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st)) {
		int err = neg_errno();

		close(fd);
		return err;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		close(fd);
		return -EBUSY;
	}
	return fd;
}

int vfio_group_set_container(int group, int container)
{
	return ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ? neg_errno() : 0;
}

int vfio_group_unset_container(int group)
{
	return ioctl(group, VFIO_GROUP_UNSET_CONTAINER) ? neg_errno() : 0;
}

int vfio_set_iommu(int container, unsigned long iommu_type)
{
	return ioctl(container, VFIO_SET_IOMMU, iommu_type) ? neg_errno() : 0;
}

int vfio_check_extension(int container, unsigned long ext)
{
	int ret = ioctl(container, VFIO_CHECK_EXTENSION, ext);

	return ret < 0 ? neg_errno() : ret;
}

int vfio_device_get(int group, const char *bdf)
{
	int fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);

	return fd < 0 ? neg_errno() : fd;
}

int vfio_dev_open(struct vfio_dev *d, const char *group_path, const char *bdf,
		  unsigned long iommu_type)
{
	int ret;

	vfio_dev_init(d);
	d->iommu_type = iommu_type;

	snprintf(d->step, sizeof(d->step), "open /dev/vfio/vfio");
	ret = d->container = vfio_container_new();
	if (ret < 0)
		goto fail;
	snprintf(d->step, sizeof(d->step), "open %s", group_path);
	ret = d->group = vfio_group_open(group_path);
	if (ret < 0)
		goto fail;
	snprintf(d->step, sizeof(d->step), "VFIO_GROUP_SET_CONTAINER");
	ret = vfio_group_set_container(d->group, d->container);
	if (ret)
		goto fail;
	snprintf(d->step, sizeof(d->step), "VFIO_SET_IOMMU(%s)",
		 iommu_type_name(iommu_type));
	ret = vfio_set_iommu(d->container, iommu_type);
	if (ret)
		goto fail;
	if (bdf) {
		snprintf(d->step, sizeof(d->step),
			 "VFIO_GROUP_GET_DEVICE_FD(%s)", bdf);
		ret = d->device = vfio_device_get(d->group, bdf);
		if (ret < 0)
			goto fail;
	}
	d->step[0] = '\0';
	return 0;
fail:
	if (ret >= 0)
		ret = -EIO;
	/* Keep the step for messages, close what is open. */
	close_fd(&d->device);
	close_fd(&d->group);
	close_fd(&d->container);
	return ret;
}

int vfio_dev_open_env(struct vfio_dev *d, unsigned long iommu_type)
{
	const char *group = getenv("VFIO_GROUP"), *bdf = getenv("VFIO_BDF");

	vfio_dev_init(d);
	if (!group || !bdf) {
		snprintf(d->step, sizeof(d->step), "VFIO_GROUP/VFIO_BDF unset");
		return -ENOENT;
	}
	return vfio_dev_open(d, group, bdf, iommu_type);
}

void vfio_dev_close(struct vfio_dev *d)
{
	close_fd(&d->device);
	close_fd(&d->group);
	close_fd(&d->container);
}

int vfio_map_raw(int container, struct vfio_iommu_type1_dma_map *map)
{
	return ioctl(container, VFIO_IOMMU_MAP_DMA, map) ? neg_errno() : 0;
}

bool sabotage(const char *mode)
{
	const char *s = getenv("VFIO_SELFTEST_SABOTAGE");
	size_t n = strlen(mode);

	for (; s && *s; s += strcspn(s, ","), s += !!*s)
		if (!strncmp(s, mode, n) && (s[n] == ',' || !s[n]))
			return true;
	return false;
}

/* leak-pin: one page of @vaddr mapped (pinned) at *@hidden for good. */
static void leak_pin(int container, const void *vaddr, uint64_t *hidden)
{
	vfio_map_raw(container, &(struct vfio_iommu_type1_dma_map){
		.argsz = sizeof(struct vfio_iommu_type1_dma_map),
		.flags = VFIO_RW, .vaddr = (uintptr_t)vaddr,
		.iova = *hidden, .size = PAGE_4K });
	*hidden += PAGE_4K;
}

/*
 * See vfio_util.h: a deliberately broken backend, for test-the-test.
 * map-shift maps IOVA page k to user page k + 1; leak-pin pins one page
 * more, at a hidden IOVA (*@hidden, advanced), that is never unmapped.
 */
static void sabotage_map(int container, const void *vaddr, __u64 *uvaddr,
			 __u64 *size, uint64_t *hidden)
{
	if (*size < 2 * PAGE_4K)
		return;
	if (sabotage("map-shift")) {
		*uvaddr += PAGE_4K;
		*size -= PAGE_4K;
	}
	if (sabotage("leak-pin"))
		leak_pin(container, vaddr, hidden);
}

int vfio_map(int container, uint64_t iova, const void *vaddr, uint64_t size,
	     uint32_t flags)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = flags,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	static uint64_t hidden = 0x7000000000ULL;

	sabotage_map(container, vaddr, &map.vaddr, &map.size, &hidden);
	if (sabotage("ro-as-rw") && flags == VFIO_DMA_MAP_FLAG_READ)
		map.flags = VFIO_RW;
	return vfio_map_raw(container, &map);
}

int vfio_map_deferred(int container, uint64_t iova, const void *vaddr,
		      uint64_t size, uint32_t flags)
{
	struct vfio_iommu_async_dma_map map = {
		.argsz = sizeof(map),
		.flags = flags,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	static uint64_t hidden = 0x7100000000ULL;

	sabotage_map(container, vaddr, &map.vaddr, &map.size, &hidden);
	return ioctl(container, VFIO_IOMMU_MAP_DMA_DEFERRED, &map) ? -errno : 0;
}

int vfio_async_status(int container, struct vfio_iommu_async_status *st)
{
	memset(st, 0, sizeof(*st));
	st->argsz = sizeof(*st);
	return ioctl(container, VFIO_IOMMU_ASYNC_GET_STATUS, st) ? -errno : 0;
}

bool vfio_async_adds_up(const struct vfio_iommu_async_status *st)
{
	return st->mapped_bytes + st->pending_bytes + st->failed_bytes +
	       st->released_bytes == st->deferred_bytes;
}

int vfio_async_wait_settled(int container, struct vfio_iommu_async_status *st,
			    long timeout_ms)
{
	long t0 = now_ms();
	int ret;

	for (;;) {
		ret = vfio_async_status(container, st);
		if (ret)
			return ret;
		if (!vfio_async_adds_up(st))
			return -EPROTO;
		if (!st->pending_bytes)
			return 0;
		if (now_ms() - t0 > timeout_ms)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

int async_container_dir(pid_t pid, char *out, size_t n)
{
	char prefix[32];
	struct dirent *e;
	int found = 0;
	DIR *d;

	snprintf(prefix, sizeof(prefix), "pid%d-c", (int)pid);
	d = opendir(ASYNC_SYSFS);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		found++;
		snprintf(out, n, ASYNC_SYSFS "/%s", e->d_name);
	}
	closedir(d);
	return found == 1 ? 0 : found ? -EEXIST : -ENOENT;
}

int vfio_unmap_raw(int container, struct vfio_iommu_type1_dma_unmap *unmap)
{
	return ioctl(container, VFIO_IOMMU_UNMAP_DMA, unmap) ? neg_errno() : 0;
}

int vfio_unmap(int container, uint64_t iova, uint64_t size, uint32_t flags,
	       uint64_t *unmapped)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.flags = flags,
		.iova = iova,
		.size = size,
	};
	int ret;

	if (sabotage("unmap-noop") && !flags) {
		if (unmapped)
			*unmapped = size;
		return 0;
	}
	ret = vfio_unmap_raw(container, &unmap);
	if (!ret && unmapped)
		*unmapped = unmap.size;
	return ret;
}

int vfio_iommu_info(int container, struct vfio_iommu_type1_info **out)
{
	struct vfio_iommu_type1_info *info;
	uint32_t argsz = sizeof(*info);
	int tries;

	*out = NULL;
	for (tries = 0; tries < 4; tries++) {
		info = calloc(1, argsz);
		if (!info)
			return -ENOMEM;
		info->argsz = argsz;
		if (ioctl(container, VFIO_IOMMU_GET_INFO, info)) {
			int err = neg_errno();

			free(info);
			return err;
		}
		if (info->argsz <= argsz) {
			*out = info;
			return 0;
		}
		argsz = info->argsz;
		free(info);
	}
	return -EOVERFLOW;
}

const struct vfio_info_cap_header *
vfio_info_cap(const struct vfio_iommu_type1_info *info, uint16_t id)
{
	uint32_t off, hops = 0;

	if (!(info->flags & VFIO_IOMMU_INFO_CAPS))
		return NULL;
	for (off = info->cap_offset; off; hops++) {
		const struct vfio_info_cap_header *h;

		/* A malformed chain ends the walk instead of looping. */
		if (hops > 64 || off < sizeof(*info) ||
		    off + sizeof(*h) > info->argsz)
			return NULL;
		h = (const void *)((const char *)info + off);
		if (h->id == id)
			return h;
		off = h->next;
	}
	return NULL;
}

int vfio_iova_ranges(int container, struct vfio_iova_range **ranges,
		     uint32_t *nr)
{
	const struct vfio_iommu_type1_info_cap_iova_range *cap;
	struct vfio_iommu_type1_info *info;
	int ret = vfio_iommu_info(container, &info);

	*ranges = NULL;
	*nr = 0;
	if (ret)
		return ret;
	cap = (const void *)vfio_info_cap(info,
					  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	if (!cap) {
		free(info);
		return -ENOENT;
	}
	*ranges = calloc(cap->nr_iovas ? cap->nr_iovas : 1, sizeof(**ranges));
	if (!*ranges) {
		free(info);
		return -ENOMEM;
	}
	memcpy(*ranges, cap->iova_ranges, cap->nr_iovas * sizeof(**ranges));
	*nr = cap->nr_iovas;
	free(info);
	return 0;
}

int vfio_dma_avail(int container, uint32_t *avail)
{
	const struct vfio_iommu_type1_info_dma_avail *cap;
	struct vfio_iommu_type1_info *info;
	int ret = vfio_iommu_info(container, &info);

	if (ret)
		return ret;
	cap = (const void *)vfio_info_cap(info, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	if (cap)
		*avail = cap->avail;
	free(info);
	return cap ? 0 : -ENOENT;
}

bool iova_range_valid(const struct vfio_iova_range *r, uint32_t nr,
		      uint64_t iova, uint64_t size)
{
	uint64_t last = iova + size - 1;
	uint32_t i;

	if (!size || last < iova)
		return false;
	for (i = 0; i < nr; i++)
		if (iova >= r[i].start && last <= r[i].end)
			return true;
	return false;
}

int sysfs_read(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	n = read(fd, buf, size - 1);
	if (n < 0) {
		int err = neg_errno();

		close(fd);
		return err;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int sysfs_write(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	n = write(fd, val, len);
	if (n < 0) {
		int err = neg_errno();

		close(fd);
		return err;
	}
	close(fd);
	return (size_t)n == len ? 0 : -EIO;
}

int sysfs_read_long(const char *path, long *val)
{
	char buf[64], *end;
	int ret = sysfs_read(path, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*val = strtol(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int sysfs_write_long(const char *path, long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", val);
	return sysfs_write(path, buf);
}

bool async_loaded(void)
{
	struct stat st;

	return stat(ASYNC_SYSFS, &st) == 0;
}

int async_containers(void)
{
	long v;
	int ret = sysfs_read_long(ASYNC_SYSFS "/containers", &v);

	return ret ? ret : (int)v;
}

int async_dropin(void)
{
	char buf[16];
	int ret = sysfs_read(ASYNC_MODULE_SYSFS "/parameters/type1v2_dropin",
			     buf, sizeof(buf));

	if (ret)
		return ret;
	if (buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1')
		return 1;
	if (buf[0] == 'N' || buf[0] == 'n' || buf[0] == '0')
		return 0;
	return -EINVAL;
}

int async_totals_nonzero(char *why, size_t n)
{
	static const char *const names[] = {
		"containers", "pinned_pages", "deferred_bytes", "sync_bytes",
		"mapped_bytes", "pending_bytes", "failed_bytes", "workers_busy",
	};
	char path[128];
	unsigned int i;
	long v;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), ASYNC_SYSFS "/%s", names[i]);
		if (sysfs_read_long(path, &v)) {
			snprintf(why, n, "%s unreadable", names[i]);
			return 1;
		}
		if (v) {
			snprintf(why, n, "%s = %ld", names[i], v);
			return 1;
		}
	}
	return 0;
}

int async_wait_released(long pins0, long timeout_ms, long *pins,
			int *containers)
{
	long t0 = now_ms();

	for (;;) {
		*containers = async_containers();
		if (pins_outstanding(pins))
			*pins = LONG_MIN;
		if (*containers == 0 && *pins == pins0)
			return 0;
		if (now_ms() - t0 > timeout_ms)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

int async_wait_clean(long pins0, long timeout_ms, char *why, size_t n)
{
	long t0 = now_ms(), pins;

	for (;;) {
		bool clean = !async_totals_nonzero(why, n);

		if (clean && pins_outstanding(&pins)) {
			snprintf(why, n, "pins outstanding unreadable");
			clean = false;
		} else if (clean && pins != pins0) {
			snprintf(why, n, "pins outstanding %+ld", pins - pins0);
			clean = false;
		}
		if (clean)
			return 0;
		if (now_ms() - t0 > timeout_ms)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

const char *type1v2_backend(void)
{
	if (async_loaded() && async_dropin() == 1)
		return "vfio_iommu_async";
	return "vfio_iommu_type1";
}

const char *iommu_backend(unsigned long iommu_type)
{
	switch (iommu_type) {
	case VFIO_ASYNC_IOMMU:
		return async_loaded() ? "vfio_iommu_async" : NULL;
	case VFIO_TYPE1v2_IOMMU:
		return type1v2_backend();
	case VFIO_TYPE1_IOMMU:
		return "vfio_iommu_type1";
	default:
		return NULL;
	}
}

const char *iommu_type_name(unsigned long iommu_type)
{
	switch (iommu_type) {
	case VFIO_ASYNC_IOMMU:
		return "VFIO_ASYNC_IOMMU";
	case VFIO_TYPE1v2_IOMMU:
		return "VFIO_TYPE1v2_IOMMU";
	case VFIO_TYPE1_IOMMU:
		return "VFIO_TYPE1_IOMMU";
	default:
		return "unknown IOMMU type";
	}
}

const char *vfio_env_missing(unsigned long iommu_type)
{
	if (!getenv("VFIO_GROUP") || !getenv("VFIO_BDF"))
		return "VFIO_GROUP/VFIO_BDF not set (no device bound to vfio-pci)";
	if (iommu_type == VFIO_ASYNC_IOMMU && !async_loaded())
		return "vfio_iommu_async not loaded";
	return NULL;
}
