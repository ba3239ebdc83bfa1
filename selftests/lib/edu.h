/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's "edu" PCI device (1234:11e8) driven from user space through a VFIO
 * device fd: BAR0 mmapped via VFIO_DEVICE_GET_REGION_INFO, bus mastering
 * enabled through the config region, and DMA between its 4 KiB buffer and
 * an IOVA, which the emulated VT-d translates through the container.
 *
 * Traps (see platform-facts): a transfer must end strictly before the end of
 * edu's buffer (QEMU 7.2 aborts the whole VM otherwise), so edu_dma()
 * refuses edu_off + count > EDU_BUF_SIZE - 1; each transfer takes ~100 ms.
 */
#ifndef EDU_H
#define EDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDU_VENDOR_DEVICE	0x11e81234u

#define EDU_REG_ID		0x00
#define EDU_REG_LIVENESS	0x04
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_COUNT	0x90
#define EDU_REG_DMA_CMD		0x98
#define EDU_CMD_START		0x1
#define EDU_CMD_TO_RAM		0x2	/* direction: device -> RAM */

#define EDU_BUF_ADDR		0x40000	/* buffer in device address space */
#define EDU_BUF_SIZE		4096
#define EDU_MAX_END		(EDU_BUF_SIZE - 1)	/* QEMU 7.2 off-by-one */

#define EDU_DMA_TIMEOUT_MS	5000

struct edu {
	int device;			/* VFIO device fd (not owned) */
	volatile uint8_t *bar;		/* BAR0 mapping */
	size_t bar_size;
	uint64_t cfg_offset;		/* config region offset in the fd */
	/* Bounce page for edu_buf_read/write: mapped R/W at scratch_iova. */
	int container;
	uint8_t *scratch;
	uint64_t scratch_iova;
};

void edu_init(struct edu *e);
/* Map BAR0, check the ID register, enable memory + bus mastering. */
int edu_open(struct edu *e, int device_fd);
/* Unmap BAR0 (a partial unmap would keep the group busy) and scratch. */
void edu_close(struct edu *e);

/*
 * One transfer of @count bytes between IOVA @iova and edu's buffer at
 * offset @edu_off; @to_ram selects device -> RAM. Polls completion.
 * Returns 0, -EINVAL (range unsafe for QEMU 7.2), or -ETIMEDOUT.
 * A transfer the IOMMU blocks still "completes" from edu's point of view.
 */
int edu_dma(struct edu *e, uint64_t iova, uint32_t edu_off, uint32_t count,
	    bool to_ram);

/* Allocate a 4 KiB bounce page and map it R/W at @iova in @container. */
int edu_scratch_map(struct edu *e, int container, uint64_t iova);
int edu_scratch_unmap(struct edu *e);
/* Copy into / out of edu's buffer through the bounce page (one DMA). */
int edu_buf_write(struct edu *e, uint32_t edu_off, const void *data,
		  uint32_t len);
int edu_buf_read(struct edu *e, uint32_t edu_off, void *data, uint32_t len);

#endif
