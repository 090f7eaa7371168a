/*
 * acpi_ssdt: write the AML of vswitch-vmm's DSDT (the UART and N virtio-mmio devices, laid
 * out as vswitch-vmm lays out its NICs) as an SSDT, so that another VMM's guest can load it
 * (QEMU: -acpitable file=OUT). test_vmm_linux_boot.sh boots the Debian kernel in QEMU with it
 * to see Linux itself parse our _HID/_CRS and probe one virtio-mmio device per entry.
 *
 *   acpi_ssdt OUT NDEVS
 */
#include "vmm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    static uint8_t buf[VMM_ACPI_SIZE];
    struct vmm_acpi_dev devs[VMM_ACPI_MAX_DEVS];
    struct vmm_acpi_layout lay;
    char *end;
    long n = argc == 3 ? strtol(argv[2], &end, 10) : -1;
    if (argc != 3 || *end || n < 0 || n > VMM_ACPI_MAX_DEVS) {
        fprintf(stderr, "usage: acpi_ssdt OUT NDEVS (0..%d)\n", VMM_ACPI_MAX_DEVS);
        return 2;
    }
    for (long i = 0; i < n; i++)
        devs[i] = (struct vmm_acpi_dev){.base = VMM_MMIO_BASE + (uint64_t)i * VMM_MMIO_STRIDE,
                                        .size = VMM_MMIO_SIZE,
                                        .gsi = VMM_MMIO_GSI_BASE + (uint32_t)i};
    struct vmm_acpi_cfg cfg = {.ncpus = 1, .ndevs = (unsigned)n, .devs = devs, .serial = true};
    if (vmm_acpi_build(&cfg, buf, sizeof(buf), VMM_ACPI_BASE, &lay) < 0) {
        fprintf(stderr, "acpi_ssdt: cannot build the tables\n");
        return 1;
    }
    uint8_t *t = buf + (lay.dsdt - VMM_ACPI_BASE);
    size_t len = lay.size - (lay.dsdt - VMM_ACPI_BASE);
    memcpy(t, "SSDT", 4);
    t[9] = 0;
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + t[i]);
    t[9] = (uint8_t)-sum;
    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(t, 1, len, f) != len || fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
