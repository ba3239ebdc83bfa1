// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "edu.h"
#include "vfio_util.h"

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

static uint32_t rd32(struct edu *e, uint32_t reg)
{
	return *(volatile uint32_t *)(e->bar + reg);
}

static void wr32(struct edu *e, uint32_t reg, uint32_t val)
{
	*(volatile uint32_t *)(e->bar + reg) = val;
}

static void wr64(struct edu *e, uint32_t reg, uint64_t val)
{
	*(volatile uint64_t *)(e->bar + reg) = val;
}

static int region_info(int device, uint32_t index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	return ioctl(device, VFIO_DEVICE_GET_REGION_INFO, ri) ? neg_errno() : 0;
}

void edu_init(struct edu *e)
{
	memset(e, 0, sizeof(*e));
	e->device = -1;
	e->container = -1;
}

int edu_open(struct edu *e, int device_fd)
{
	struct vfio_region_info bar, cfg;
	uint16_t cmd;
	uint32_t id;
	void *p;
	int ret;

	edu_init(e);
	e->device = device_fd;

	ret = region_info(device_fd, VFIO_PCI_CONFIG_REGION_INDEX, &cfg);
	if (ret)
		return ret;
	e->cfg_offset = cfg.offset;
	if (pread(device_fd, &id, 4, cfg.offset + PCI_VENDOR_ID) != 4)
		return neg_errno();
	if (id != EDU_VENDOR_DEVICE)
		return -ENODEV;

	/* Memory decoding for the BAR, bus mastering for DMA. */
	if (pread(device_fd, &cmd, 2, cfg.offset + PCI_COMMAND) != 2)
		return neg_errno();
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(device_fd, &cmd, 2, cfg.offset + PCI_COMMAND) != 2)
		return neg_errno();

	ret = region_info(device_fd, VFIO_PCI_BAR0_REGION_INDEX, &bar);
	if (ret)
		return ret;
	if (!(bar.flags & VFIO_REGION_INFO_FLAG_MMAP) || bar.size < 0x100)
		return -ENOTSUP;
	p = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, device_fd,
		 bar.offset);
	if (p == MAP_FAILED)
		return neg_errno();
	e->bar = p;
	e->bar_size = bar.size;

	/* edu identifies itself as 0xRRrr00ed; liveness returns ~value. */
	if ((rd32(e, EDU_REG_ID) & 0xff) != 0xed) {
		edu_close(e);
		return -ENODEV;
	}
	wr32(e, EDU_REG_LIVENESS, 0x5a5aa5a5);
	if (rd32(e, EDU_REG_LIVENESS) != ~0x5a5aa5a5u) {
		edu_close(e);
		return -EIO;
	}
	/* A transfer left running by someone else must finish first. */
	for (ret = 0; ret < EDU_DMA_TIMEOUT_MS; ret++) {
		if (!(rd32(e, EDU_REG_DMA_CMD) & EDU_CMD_START))
			return 0;
		usleep(1000);
	}
	edu_close(e);
	return -ETIMEDOUT;
}

void edu_close(struct edu *e)
{
	edu_scratch_unmap(e);
	if (e->bar)
		munmap((void *)e->bar, e->bar_size);
	e->bar = NULL;
	e->bar_size = 0;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int edu_dma(struct edu *e, uint64_t iova, uint32_t edu_off, uint32_t count,
	    bool to_ram)
{
	uint64_t dev = EDU_BUF_ADDR + edu_off;
	struct timespec t0;

	if (!e->bar || !count || edu_off >= EDU_BUF_SIZE ||
	    count > EDU_MAX_END - edu_off)
		return -EINVAL;
	if (rd32(e, EDU_REG_DMA_CMD) & EDU_CMD_START)
		return -EBUSY;

	wr64(e, EDU_REG_DMA_SRC, to_ram ? dev : iova);
	wr64(e, EDU_REG_DMA_DST, to_ram ? iova : dev);
	wr64(e, EDU_REG_DMA_COUNT, count);
	wr32(e, EDU_REG_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rd32(e, EDU_REG_DMA_CMD) & EDU_CMD_START) {
		if (elapsed_ms(&t0) > EDU_DMA_TIMEOUT_MS)
			return -ETIMEDOUT;
		usleep(2000);
	}
	return 0;
}

int edu_scratch_map(struct edu *e, int container, uint64_t iova)
{
	void *p;
	int ret;

	if (e->scratch)
		return -EBUSY;
	p = mmap(NULL, PAGE_4K, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return neg_errno();
	ret = vfio_map(container, iova, p, PAGE_4K, VFIO_RW);
	if (ret) {
		munmap(p, PAGE_4K);
		return ret;
	}
	e->scratch = p;
	e->scratch_iova = iova;
	e->container = container;
	return 0;
}

int edu_scratch_unmap(struct edu *e)
{
	int ret = 0;

	if (!e->scratch)
		return 0;
	/* The container may already be gone (closed first): ignore that. */
	if (e->container >= 0)
		ret = vfio_unmap(e->container, e->scratch_iova, PAGE_4K, 0, NULL);
	munmap(e->scratch, PAGE_4K);
	e->scratch = NULL;
	e->container = -1;
	return ret == -EBADF ? 0 : ret;
}

int edu_buf_write(struct edu *e, uint32_t edu_off, const void *data,
		  uint32_t len)
{
	if (!e->scratch)
		return -EINVAL;
	if (edu_off >= EDU_BUF_SIZE || len > EDU_MAX_END - edu_off)
		return -EINVAL;
	memcpy(e->scratch, data, len);
	return edu_dma(e, e->scratch_iova, edu_off, len, false);
}

int edu_buf_read(struct edu *e, uint32_t edu_off, void *data, uint32_t len)
{
	int ret;

	if (!e->scratch)
		return -EINVAL;
	if (edu_off >= EDU_BUF_SIZE || len > EDU_MAX_END - edu_off)
		return -EINVAL;
	/* Poison first, so a transfer that did not happen is visible. */
	memset(e->scratch, 0xe7, len);
	ret = edu_dma(e, e->scratch_iova, edu_off, len, true);
	if (!ret)
		memcpy(data, e->scratch, len);
	return ret;
}
