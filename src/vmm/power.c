/*
 * Power control: how a guest ends the machine.
 *   - port VMM_EXIT_PORT (0xf4): a byte written powers off; the VMM exits with that status.
 *     The test guest uses it (like QEMU's isa-debug-exit, without the shift).
 *   - ACPI: the hardware-reduced FADT's SLEEP_CONTROL_REG (VMM_ACPI_SLP_CNT): SLP_EN with
 *     SLP_TYP 5 (S5, as the DSDT's \_S5 says) powers off; SLEEP_STATUS_REG reads 0. The
 *     legacy PM1a control (VMM_ACPI_PM1A_CNT) does the same with its own bit layout; the PM1a
 *     event block reads as zero and SCI_EN as set. The FADT's RESET_REG is port 0xcf9.
 *   - port 0xcf9 (reset control) with RST_CPU, and the i8042 command 0xfe: reset. vswitch-vmm
 *     ends on a reset (like kvmtool and Firecracker); whoever started it restarts it.
 * vCPU threads; stateless, so no lock.
 */
#include "vmm_int.h"

#include <string.h>

#define PM1_CNT_SCI_EN  0x0001
#define PM1_CNT_SLP_EN  0x2000
#define SLP_CNT_SLP_EN  0x20 /* ACPI_X_SLEEP_ENABLE; SLP_TYP in bits 2-4 */
#define RST_CNT_RST_CPU 0x04
#define I8042_DATA      0x60
#define I8042_CMD       0x64
#define I8042_CMD_RESET 0xfe

static void exit_port(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)off;
    (void)len;
    if (!is_write) {
        data[0] = 0;
        return;
    }
    vmm_request_exit(opaque, VMM_EXIT_POWEROFF, data[0]);
}

static void pm1_evt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)opaque;
    (void)off;
    if (!is_write)
        memset(data, 0, len);
}

static void pm1_cnt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    uint16_t v = 0;
    if (!is_write) {
        v = PM1_CNT_SCI_EN;
        for (uint32_t i = 0; i < len; i++)
            data[i] = off + i < 2 ? (uint8_t)(v >> (8 * (off + i))) : 0;
        return;
    }
    if (off != 0 || len < 2)
        return;
    v = (uint16_t)(data[0] | (data[1] << 8));
    if ((v & PM1_CNT_SLP_EN) && ((v >> 10) & 7) == VMM_ACPI_SLP_TYP_S5) {
        VLOG(INFO, VMM_MODULE, "guest powered off (ACPI S5)");
        vmm_request_exit(opaque, VMM_EXIT_POWEROFF, 0);
    }
}

static void sleep_cnt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)off;
    (void)len;
    if (!is_write) {
        data[0] = 0;
        return;
    }
    if ((data[0] & SLP_CNT_SLP_EN) && ((data[0] >> 2) & 7) == VMM_ACPI_SLP_TYP_S5) {
        VLOG(INFO, VMM_MODULE, "guest powered off (ACPI S5, sleep control register)");
        vmm_request_exit(opaque, VMM_EXIT_POWEROFF, 0);
    }
}

static void sleep_sts(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)opaque;
    (void)off;
    if (!is_write)
        memset(data, 0, len); /* WAK_STS never set: we do not wake from S5 */
}

static void reset_port(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)off;
    (void)len;
    if (!is_write) {
        data[0] = 0;
        return;
    }
    if (data[0] & RST_CNT_RST_CPU) {
        VLOG(INFO, VMM_MODULE, "guest reset (port 0xcf9)");
        vmm_request_exit(opaque, VMM_EXIT_RESET, 0);
    }
}

static void i8042(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    if (!is_write) {
        memset(data, 0, len); /* status: no data, input buffer empty */
        return;
    }
    if (off == I8042_CMD - I8042_DATA && data[0] == I8042_CMD_RESET) {
        VLOG(INFO, VMM_MODULE, "guest reset (i8042)");
        vmm_request_exit(opaque, VMM_EXIT_RESET, 0);
    }
}

int vmm_power_init(struct vmm *vm)
{
    int rc;
    if ((rc = vmm_bus_add(&vm->pio, VMM_EXIT_PORT, 1, exit_port, vm, "exit")) < 0 ||
        (rc = vmm_bus_add(&vm->pio, VMM_ACPI_PM1A_EVT, 4, pm1_evt, vm, "pm1a_evt")) < 0 ||
        (rc = vmm_bus_add(&vm->pio, VMM_ACPI_PM1A_CNT, 2, pm1_cnt, vm, "pm1a_cnt")) < 0 ||
        (rc = vmm_bus_add(&vm->pio, VMM_ACPI_SLP_CNT, 1, sleep_cnt, vm, "sleep_cnt")) < 0 ||
        (rc = vmm_bus_add(&vm->pio, VMM_ACPI_SLP_STS, 1, sleep_sts, vm, "sleep_sts")) < 0 ||
        (rc = vmm_bus_add(&vm->pio, VMM_RESET_PORT, 1, reset_port, vm, "reset")) < 0 ||
        (rc = vmm_bus_add(&vm->pio, I8042_DATA, 5, i8042, vm, "i8042")) < 0)
        return rc;
    return 0;
}
