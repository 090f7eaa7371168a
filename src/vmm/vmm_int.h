/*
 * vmm internals: the pieces of vswitch-vmm and the contracts between them. One file per
 * piece (mem.c, vcpu.c, boot_raw.c, boot_linux.c, boot_pvh.c, elf.c, aml.c, acpi.c, bus.c,
 * serial.c, console.c, power.c, virtio_mmio.c, virtio_net.c, vhost_net.c, ctl_client.c), in the
 * style of kvmtool.
 *
 * Guest-physical layout (x86-64):
 *   0x0000_0000 .. low_size      RAM (low_size = min(mem, VMM_LOW_RAM_MAX)); boot structures
 *                                below 1 MiB, ACPI tables at 0xe_0000 (reserved in the e820)
 *   0xd000_0000 ..               virtio-mmio devices, VMM_MMIO_STRIDE apart
 *   0xfec0_0000, 0xfee0_0000     IOAPIC, LAPIC (in-kernel irqchip)
 *   0x1_0000_0000 ..             RAM above the 32-bit hole, when mem > VMM_LOW_RAM_MAX
 * One memfd backs all RAM; each range is its own KVM slot and vhost-user region.
 */
#ifndef VSW_VMM_INT_H
#define VSW_VMM_INT_H

#include "common.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMM_MODULE         "vmm"
#define VMM_LOW_RAM_MAX    0xc0000000ull /* 3 GiB: the rest goes above 4 GiB */
#define VMM_HIGH_RAM_START 0x100000000ull
#define VMM_MEM_MIN        (2ull << 20)
#define VMM_MEM_MAX        (64ull << 30)
#define VMM_MMIO_BASE      0xd0000000ull
#define VMM_MMIO_STRIDE    0x1000ull
#define VMM_MMIO_SIZE      0x200ull /* registers + config space per device */
#define VMM_MMIO_GSI_BASE  16       /* IOAPIC pins 16.. for virtio-mmio (like QEMU microvm) */
#define VMM_MAX_NETS       8
#define VMM_MAX_CPUS       8
#define VMM_IOAPIC_PINS    24 /* KVM's in-kernel IOAPIC: GSI 0..23 */
#define VMM_IOAPIC_ADDR    0xfec00000ull
#define VMM_LAPIC_ADDR     0xfee00000ull

/* ---- guest memory (mem.c) ---- */
struct vmm_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t offset; /* in the memfd */
    uint8_t *host;
};

struct vmm_mem {
    int memfd;
    uint8_t *base; /* the whole memfd mapped once, MAP_SHARED */
    uint64_t size;
    unsigned nregions;
    struct vmm_mem_region regions[2];
};

/*
 * Create guest memory of `size` bytes (a multiple of 2 MiB, VMM_MEM_MIN..VMM_MEM_MAX) from a
 * memfd, split around the 32-bit hole. Returns 0, -EINVAL (size), or -errno.
 */
int vmm_mem_init(struct vmm_mem *m, uint64_t size);
void vmm_mem_fini(struct vmm_mem *m);
/* Register every region with a KVM VM as user memory slots. 0 or -errno. */
int vmm_mem_register(const struct vmm_mem *m, int vmfd);
/* Host pointer to [gpa, gpa + len) when the range lies inside one region, else NULL. */
void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len);
/* Size of the RAM below the hole (where boot structures live). */
uint64_t vmm_mem_low_size(const struct vmm_mem *m);

/* ---- I/O dispatch (bus.c) ----
 * One bus for port I/O and one for MMIO. Devices are registered before the vCPUs start and
 * never removed, so lookups take no lock; a device's handler serializes itself.
 */
struct vmm_bus_dev;
typedef void (*vmm_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                          bool is_write);

struct vmm_bus {
    unsigned n;
    struct vmm_bus_range {
        uint64_t base, len;
        vmm_io_fn fn;
        void *opaque;
        const char *name;
    } r[32];
    uint64_t unclaimed; /* accesses no device took (atomic): counted guest errors */
};

/* Add a range. 0, -ENOSPC or -EEXIST (overlap). */
int vmm_bus_add(struct vmm_bus *b, uint64_t base, uint64_t len, vmm_io_fn fn, void *opaque,
                const char *name);
/* Dispatch an access; an unclaimed address is logged (rate-limited) and counted (except port
 * 0x80, the POST port), reads return all ones. Returns true when a device claimed it. */
bool vmm_bus_access(struct vmm_bus *b, const char *what, uint64_t addr, uint8_t *data, uint32_t len,
                    bool is_write);

/* ---- raw 64-bit boot for test guests (elf.c, boot_raw.c) ---- */
struct vmm_elf_image {
    uint64_t entry;
    uint64_t lo, hi; /* lowest and highest (exclusive) guest-physical address loaded */
};

/*
 * Load an ELF64 x86-64 executable's PT_LOAD segments into guest memory at their physical
 * addresses. Every header field is checked: sizes, offsets inside the file, segments inside
 * guest memory and above `min_gpa`, filesz <= memsz, the entry inside a loaded segment.
 * Returns 0 or -ENOEXEC (not a loadable ELF64), -EINVAL (malformed), -ERANGE (does not fit).
 */
int vmm_elf_load(const struct vmm_mem *m, const uint8_t *img, size_t len, uint64_t min_gpa,
                 struct vmm_elf_image *out);
/* The same with `entry` (instead of e_entry) as the address that must lie inside a loaded
 * segment; with load false only check, leaving guest memory alone (out->lo/hi are set). */
int vmm_elf_load_entry(const struct vmm_mem *m, const uint8_t *img, size_t len, uint64_t min_gpa,
                       uint64_t entry, bool load, struct vmm_elf_image *out);
/*
 * The PVH entry point: the XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner "Xen", a 4- or 8-byte
 * little-endian value below 4 GiB) in the image's PT_NOTE segments. Returns 0 with *entry,
 * -ENOENT (a well-formed ELF64 without the note: raw boot), -ENOEXEC (not an ELF64 x86-64
 * image), -EINVAL (malformed program headers or notes: truncated, sizes out of the segment,
 * a PVH note of the wrong size or value).
 */
int vmm_elf_pvh_entry(const uint8_t *img, size_t len, uint32_t *entry);

/* Fixed locations the raw boot uses (all below 1 MiB, the test guest loads at 1 MiB). */
#define VMM_RAW_GDT         0x0500ull
#define VMM_RAW_PML4        0x1000ull
#define VMM_RAW_PDPT        0x2000ull
#define VMM_RAW_PD          0x3000ull /* 4 pages: identity map of 4 GiB with 2 MiB pages */
#define VMM_RAW_CMDLINE     0x8000ull
#define VMM_RAW_CMDLINE_MAX 4096u
#define VMM_RAW_STACK_TOP   0x80000ull
#define VMM_RAW_LOAD_MIN    0x100000ull

/* GDT selectors of the raw boot: null, null, code64 (0x10), data (0x18): the Linux boot
 * protocol's __BOOT_CS and __BOOT_DS, so one GDT serves both. */
#define VMM_GDT_CODE    0x10
#define VMM_GDT_DATA    0x18
#define VMM_GDT_ENTRIES 4

/* Build the GDT and the identity page tables (first 4 GiB) in guest memory. 0 or -ERANGE. */
int vmm_raw_build_tables(const struct vmm_mem *m);
/* Copy the command line (NUL-terminated, truncated never: -E2BIG when too long). */
int vmm_raw_put_cmdline(const struct vmm_mem *m, const char *cmdline);
/* Encode one GDT descriptor (flags: the access byte in bits 0-7, the flags nibble in 12-15). */
uint64_t vmm_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);

/* ---- vCPUs (vcpu.c) ---- */
struct vmm;

struct vmm_vcpu {
    struct vmm *vm;
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool started;
};

/* Boot state the BSP starts with. */
struct vmm_boot_regs {
    uint64_t rip, rsp, rdi, rsi, rbx;
    bool long_mode;   /* raw and bzImage boot: 64-bit with the raw page tables and GDT */
    bool protected32; /* PVH: 32-bit protected mode, paging off, the PVH GDT */
};

/* ---- Linux boot protocol, 64-bit entry (boot_linux.c) ---- */
#define VMM_LINUX_BOOT_PARAMS 0x7000ull /* the zero page */
#define VMM_LINUX_CMDLINE     0x20000ull
#define VMM_LINUX_CMDLINE_MAX 0x10000u
#define VMM_LINUX_KERNEL      0x100000ull /* protected-mode kernel load address */

struct vmm_bzimage {
    uint16_t version;
    size_t setup_size;  /* real-mode part, skipped */
    size_t hdr_end;     /* end of the setup header (offset in the image) */
    size_t kernel_size; /* protected-mode part */
    uint32_t init_size; /* memory the kernel needs from its load address */
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
};

enum { VMM_E820_RAM = 1, VMM_E820_RESERVED = 2 };
struct vmm_e820 {
    uint64_t addr, size;
    uint32_t type;
};

/* Check a bzImage's setup header. 0, -ENOEXEC (not a bzImage), -ENOTSUP (protocol older
 * than 2.12, or no 64-bit entry), -EINVAL (inconsistent sizes, or the file shorter than its
 * syssize says: truncated). */
int vmm_bzimage_parse(const uint8_t *img, size_t len, struct vmm_bzimage *out);
/* The e820 map for guest memory m: at most max entries, returns the count. */
unsigned vmm_e820_build(const struct vmm_mem *m, struct vmm_e820 *e, unsigned max);
/* Load kernel, initrd (may be NULL/0) and command line; fill the boot registers.
 * 0, a vmm_bzimage_parse() error, -ERANGE (does not fit in memory), -E2BIG (command line). */
int vmm_linux_load(const struct vmm_mem *m, const uint8_t *img, size_t len, const uint8_t *initrd,
                   size_t initrd_len, const char *cmdline, struct vmm_boot_regs *regs);

/* ---- PVH boot (boot_pvh.c): an ELF vmlinux entered through XEN_ELFNOTE_PHYS32_ENTRY ----
 * xen/include/public/arch-x86/hvm/start_info.h: the BSP starts in 32-bit protected mode with
 * paging off, flat 4 GiB CS/DS/ES/SS, a 32-bit TSS in TR, %ebx = the hvm_start_info. */
#define VMM_PVH_START_INFO  0x7000ull /* struct hvm_start_info (56 bytes) */
#define VMM_PVH_MODLIST     0x7040ull /* one hvm_modlist_entry: the initrd */
#define VMM_PVH_MEMMAP      0x7080ull /* hvm_memmap_table_entry[] */
#define VMM_PVH_MEMMAP_MAX  64u
#define VMM_PVH_CMDLINE_MAX 2048u /* x86 Linux's COMMAND_LINE_SIZE, NUL included */
#define VMM_PVH_MAGIC       0x336ec578u
#define VMM_PVH_GDT_ENTRIES 5 /* null, null, code32 0x10, data 0x18, TSS 0x20 */
#define VMM_PVH_GDT_TSS     0x20
#define VMM_PVH_NOTE_TYPE   18 /* XEN_ELFNOTE_PHYS32_ENTRY */

/* Write the PVH GDT at VMM_RAW_GDT. 0 or -ERANGE. */
int vmm_pvh_build_gdt(const struct vmm_mem *m);
/* Load an ELF vmlinux with a PVH note, the initrd (may be NULL/0) as high in low RAM as it
 * fits above the kernel, the command line, hvm_start_info + modlist + memmap; fill the boot
 * registers. 0, a vmm_elf_pvh_entry() error, -EINVAL (entry outside every loaded segment),
 * -ERANGE (does not fit), -E2BIG (command line). Checks everything before writing memory. */
int vmm_pvh_load(const struct vmm_mem *m, const uint8_t *img, size_t len, const uint8_t *initrd,
                 size_t initrd_len, const char *cmdline, struct vmm_boot_regs *regs);

/* ---- AML encoder (aml.c): the little of ACPI Machine Language our DSDT needs ----
 * Writes into a caller's buffer; any error (no room, a bad name or id) sets `err` and makes
 * every later call a no-op, so a builder checks once at the end. */
struct aml {
    uint8_t *buf;
    size_t len, cap;
    int err; /* 0, -ENOSPC or -EINVAL */
};
void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);
/* A NameString of one segment, optionally after the root prefix: "\\_SB" or "COM1". A
 * segment is 1-4 characters of A-Z 0-9 _, not starting with a digit, padded with '_'. */
void aml_name(struct aml *a, const char *name);
/* Smallest encoding: ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix, QWordPrefix. */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* "PNP0501" -> its compressed 32-bit EISA id (DWordPrefix). -EINVAL unless AAA#### */
void aml_eisaid(struct aml *a, const char *id);
int aml_eisaid_value(const char *id, uint32_t *out);
/* A package-length-prefixed body: begin returns a mark, end inserts the PkgLength there. */
size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *name);
size_t aml_package_begin(struct aml *a, uint8_t nelems);
void aml_end(struct aml *a, size_t mark);
/* Name(NAME, ...) with the value's bytes to follow (call aml_integer etc. next). */
void aml_name_decl(struct aml *a, const char *name);
/* Name(NAME, Buffer() {data}): a ResourceTemplate is such a buffer. */
void aml_name_buffer(struct aml *a, const char *name, const uint8_t *data, size_t n);
/* Resource descriptors (ACPI 6.4, 6.4), appended to a (a plain byte buffer). */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len); /* IO(Decode16, b, b, 1, len) */
void aml_res_irq(struct aml *a, uint8_t irq);               /* IRQNoFlags() {irq} */
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool rw);
void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool edge); /* consumer, active high, excl. */
void aml_res_end(struct aml *a);                              /* EndTag, checksum 0 */

/* ---- ACPI tables (acpi.c): RSDP, XSDT, FADT (hardware-reduced), MADT, DSDT ----
 * The RSDP sits at VMM_ACPI_BASE, in the legacy BIOS area that Linux scans, and its address
 * also goes to the kernel (boot_params.acpi_rsdp_addr, hvm_start_info.rsdp_paddr). */
#define VMM_ACPI_BASE     0xe0000ull
#define VMM_ACPI_SIZE     0x20000u /* 0xe0000 - 0xfffff, reserved in the e820 */
#define VMM_ACPI_MAX_DEVS (VMM_IOAPIC_PINS - VMM_MMIO_GSI_BASE) /* one GSI each */

struct vmm_acpi_dev { /* one virtio-mmio device */
    uint64_t base;
    uint32_t size;
    uint32_t gsi;
};

struct vmm_acpi_cfg {
    unsigned ncpus; /* 1..VMM_MAX_CPUS: one LAPIC each, APIC id = vCPU index */
    unsigned ndevs; /* 0..VMM_ACPI_MAX_DEVS */
    const struct vmm_acpi_dev *devs;
    bool serial; /* COM1 at 0x3f8, IRQ 4 */
};

/* Where each table landed (guest-physical). */
struct vmm_acpi_layout {
    uint64_t rsdp, xsdt, fadt, madt, dsdt;
    size_t size; /* bytes used from the base */
};

/*
 * Build the tables into buf (cap bytes), which the guest sees at `gpa` (16-aligned, below
 * 4 GiB). 0, -EINVAL (no CPU or too many, too many devices, a device outside 32-bit space,
 * of size 0, overlapping another, or with a GSI outside 16..23 or shared), -ENOSPC (cap too
 * small; nothing is written beyond cap).
 */
int vmm_acpi_build(const struct vmm_acpi_cfg *cfg, uint8_t *buf, size_t cap, uint64_t gpa,
                   struct vmm_acpi_layout *out);
/* Build into guest memory at VMM_ACPI_BASE. Same errors, -ERANGE without RAM there. */
int vmm_acpi_install(const struct vmm_mem *m, const struct vmm_acpi_cfg *cfg,
                     struct vmm_acpi_layout *out);

/* What --kernel is: a bzImage (the "HdrS" header), an ELF with a PVH note, or any other
 * ELF64 (raw 64-bit entry). *err is 0, or why an image of that kind cannot be booted (a
 * vmm_bzimage_parse() or vmm_elf_pvh_entry() error; for RAW the ELF is checked on load). */
enum vmm_boot_kind { VMM_BOOT_RAW, VMM_BOOT_BZIMAGE, VMM_BOOT_PVH };
enum vmm_boot_kind vmm_boot_detect(const uint8_t *img, size_t len, int *err);

int vmm_vcpu_init(struct vmm *vm, struct vmm_vcpu *c, unsigned id);
int vmm_vcpu_setup_boot(struct vmm_vcpu *c, const struct vmm_boot_regs *r);
int vmm_vcpu_start(struct vmm_vcpu *c);
/* Make a vCPU leave KVM_RUN and stop (any thread). */
void vmm_vcpu_kick(struct vmm_vcpu *c);
void vmm_vcpu_join(struct vmm_vcpu *c);
void vmm_vcpu_fini(struct vmm_vcpu *c);

/* ---- the machine (vmm.c) ---- */
enum vmm_exit_kind { VMM_EXIT_NONE, VMM_EXIT_POWEROFF, VMM_EXIT_RESET, VMM_EXIT_ERROR };

struct vmm {
    char name[VSW_NAME_MAX]; /* --name, told to vswitchd with the ports (vm-list) */
    int kvmfd, vmfd;
    struct vmm_mem mem;
    struct vmm_bus pio, mmio;
    unsigned ncpus;
    struct vmm_vcpu cpus[VMM_MAX_CPUS];
    struct kvm_cpuid2 *cpuid;
    int stopfd; /* eventfd: written once when the machine must stop */
    int exit_kind;
    int exit_status; /* for POWEROFF through the test exit port */
};

/* Ask the machine to stop (any thread; the first request wins). */
void vmm_request_exit(struct vmm *vm, enum vmm_exit_kind kind, int status);
bool vmm_stopping(const struct vmm *vm);

/* ---- devices ---- */
/* 8250 UART at 0x3f8 writing to fd `out` (-1: nowhere yet) (serial.c). NULL and errno on
 * failure. */
struct vmm_serial;
#define VMM_SERIAL_RX_MAX  64   /* receive FIFO: console input waits outside while it is full */
#define VMM_SERIAL_HISTORY 4096 /* output kept for a console that attaches later */
struct vmm_serial *vmm_serial_create(struct vmm *vm, int out_fd);
void vmm_serial_destroy(struct vmm_serial *s);
/* Send output to fd from now on (-1: nowhere), after flushing a pending partial line to the
 * old one; with replay, first write the kept history to fd. */
void vmm_serial_set_output(struct vmm_serial *s, int fd, bool replay);
/* Console input for the guest (main thread): queue up to n bytes, return how many fit. */
size_t vmm_serial_input(struct vmm_serial *s, const uint8_t *p, size_t n);
/* Bytes the receive FIFO can take now. */
size_t vmm_serial_rx_room(struct vmm_serial *s);
/* The level the UART drives on IRQ 4 (for tests). */
bool vmm_serial_irq(struct vmm_serial *s);

/* The terminal escape (as in QEMU's -nographic): Ctrl-A x ends the VM, Ctrl-A Ctrl-A sends one
 * Ctrl-A; Ctrl-A and any other key are dropped. The state carries across reads. */
#define VMM_CONSOLE_ESC 0x01
struct vmm_console_esc {
    bool armed; /* the last byte was Ctrl-A */
};
/* Filter buf[0..*n) in place (*n shrinks). Returns 1 when Ctrl-A x was seen (*n = the bytes
 * before it), else 0. */
int vmm_console_escape(struct vmm_console_esc *e, uint8_t *buf, size_t *n);

/* ---- the console (console.c): where the UART's output goes, where its input comes from ----
 * spec: NULL or "stdio" (stdout; input from stdin when it is a pipe, a socket or a terminal
 * we are in the foreground of), "none", or "unix:PATH" (a listening socket; one client at a
 * time gets the output, after the last VMM_SERIAL_HISTORY bytes, and types input). Main thread
 * only. */
struct vmm_console;
#define VMM_CONSOLE_POLLFDS 2
/* Open the console and point the UART at it. NULL and errno on failure (logged). */
struct vmm_console *vmm_console_open(struct vmm *vm, struct vmm_serial *serial, const char *spec);
/* Restore the terminal, close sockets (the UART's output goes nowhere). NULL is fine. */
void vmm_console_close(struct vmm_console *c);
/* Fill up to VMM_CONSOLE_POLLFDS entries; lower *timeout_ms when input waits for the guest. */
unsigned vmm_console_pollfds(struct vmm_console *c, struct pollfd *p, int *timeout_ms);
/* After poll(): p and n as vmm_console_pollfds gave them. */
void vmm_console_handle(struct vmm_console *c, const struct pollfd *p, unsigned n);

/* Power: the test exit port, ACPI PM1a control, reset port 0xcf9 and the i8042 reset. */
#define VMM_EXIT_PORT       0xf4  /* a byte written here: power off, VMM exit status = the byte */
#define VMM_ACPI_PM1A_EVT   0x600 /* PM1a event block (4 bytes) */
#define VMM_ACPI_PM1A_CNT   0x604 /* PM1a control (2 bytes): SLP_EN with SLP_TYP 5 = S5 */
#define VMM_ACPI_SLP_CNT    0x608 /* FADT SLEEP_CONTROL_REG (1 byte): SLP_EN with SLP_TYP 5 = S5 */
#define VMM_ACPI_SLP_STS    0x609 /* FADT SLEEP_STATUS_REG (1 byte): reads 0 */
#define VMM_ACPI_SLP_TYP_S5 5     /* the DSDT's \_S5_ and what the power ports look for */
#define VMM_RESET_PORT      0xcf9
int vmm_power_init(struct vmm *vm);

#endif
