/*
 * The machine: KVM VM with in-kernel irqchip and PIT, memory, vCPUs, devices, boot. The main
 * thread builds it, starts the vCPU threads, then waits in poll() for a stop request (a guest
 * power-off or reset from a vCPU, SIGINT/SIGTERM through a signalfd, or Ctrl-A x on the
 * console) and watches the vhost-user connections and the console's input; then it stops the
 * vCPUs and tears down in reverse order.
 */
#include "vmm.h"
#include "vmm_int.h"
#include "virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define VMM_TSS_ADDR      0xfffbd000ull
#define VMM_IDMAP_ADDR    0xfffbc000ull
#define VMM_MAX_IMAGE     (256u << 20)
#define VMM_CPUID_ENTRIES 256

void vmm_request_exit(struct vmm *vm, enum vmm_exit_kind kind, int status)
{
    int expected = VMM_EXIT_NONE;
    if (__atomic_compare_exchange_n(&vm->exit_kind, &expected, (int)kind, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        vm->exit_status = status;
        uint64_t one = 1;
        if (write(vm->stopfd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow with one write; nothing else can fail here. */
        }
    }
}

bool vmm_stopping(const struct vmm *vm)
{
    return __atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VMM_EXIT_NONE;
}

static int check_cap(int fd, int cap, const char *name)
{
    if (ioctl(fd, KVM_CHECK_EXTENSION, cap) <= 0) {
        VLOG(ERR, VMM_MODULE, "KVM lacks %s", name);
        return -ENOTSUP;
    }
    return 0;
}

static int vm_create(struct vmm *vm, const struct vmm_config *cfg)
{
    int rc;
    vm->kvmfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvmfd < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "/dev/kvm: %s", strerror(errno));
        return rc;
    }
    if (ioctl(vm->kvmfd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        VLOG(ERR, VMM_MODULE, "unexpected KVM API version");
        return -ENOTSUP;
    }
    if ((rc = check_cap(vm->kvmfd, KVM_CAP_IRQCHIP, "irqchip")) < 0 ||
        (rc = check_cap(vm->kvmfd, KVM_CAP_PIT2, "PIT2")) < 0 ||
        (rc = check_cap(vm->kvmfd, KVM_CAP_IOEVENTFD, "ioeventfd")) < 0 ||
        (rc = check_cap(vm->kvmfd, KVM_CAP_IRQFD, "irqfd")) < 0 ||
        (rc = check_cap(vm->kvmfd, KVM_CAP_USER_MEMORY, "user memory")) < 0 ||
        (rc = check_cap(vm->kvmfd, KVM_CAP_IMMEDIATE_EXIT, "immediate exit")) < 0)
        return rc;
    vm->vmfd = ioctl(vm->kvmfd, KVM_CREATE_VM, 0);
    if (vm->vmfd < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "KVM_CREATE_VM: %s", strerror(errno));
        return rc;
    }
    if (ioctl(vm->vmfd, KVM_SET_TSS_ADDR, (unsigned long)VMM_TSS_ADDR) < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        return rc;
    }
    uint64_t idmap = VMM_IDMAP_ADDR;
    if (ioctl(vm->vmfd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        VLOG(DEBUG, VMM_MODULE, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
    if (ioctl(vm->vmfd, KVM_CREATE_IRQCHIP, 0) < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
        return rc;
    }
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vmfd, KVM_CREATE_PIT2, &pit) < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "KVM_CREATE_PIT2: %s", strerror(errno));
        return rc;
    }
    if ((rc = vmm_mem_init(&vm->mem, cfg->mem_size)) < 0) {
        VLOG(ERR, VMM_MODULE, "guest memory of %llu bytes: %s", (unsigned long long)cfg->mem_size,
             strerror(-rc));
        return rc;
    }
    if ((rc = vmm_mem_register(&vm->mem, vm->vmfd)) < 0) {
        VLOG(ERR, VMM_MODULE, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-rc));
        return rc;
    }
    vm->cpuid = calloc(1, sizeof(*vm->cpuid) + VMM_CPUID_ENTRIES * sizeof(vm->cpuid->entries[0]));
    if (!vm->cpuid)
        return -ENOMEM;
    vm->cpuid->nent = VMM_CPUID_ENTRIES;
    if (ioctl(vm->kvmfd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        return rc;
    }
    vm->ncpus = cfg->cpus;
    for (unsigned i = 0; i < vm->ncpus; i++) {
        if ((rc = vmm_vcpu_init(vm, &vm->cpus[i], i)) < 0) {
            VLOG(ERR, VMM_MODULE, "vcpu%u: %s", i, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > VMM_MAX_IMAGE) {
        close(fd);
        return -EINVAL;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return buf ? -EIO : -ENOMEM;
    }
    *out = buf;
    *len = got;
    return 0;
}

/* The guest's command line: the user's, then for the raw-booted test guest what it needs to
 * know (its devices, the TSC rate). Linux finds the devices in the DSDT instead: a kernel with
 * VIRTIO_MMIO_CMDLINE_DEVICES would otherwise probe each one twice. */
static int build_cmdline(struct vmm *vm, const struct vmm_config *cfg, bool raw, char *buf,
                         size_t cap)
{
    size_t n = 0;
    int w = snprintf(buf, cap, "%s", cfg->cmdline ? cfg->cmdline : "");
    if (w < 0 || (size_t)w >= cap)
        return -E2BIG;
    n = (size_t)w;
    if (!raw)
        return 0;
    for (unsigned i = 0; i < cfg->nnets; i++) {
        w = snprintf(buf + n, cap - n, "%svirtio_mmio.device=4K@%#llx:%u", n ? " " : "",
                     (unsigned long long)(VMM_MMIO_BASE + i * VMM_MMIO_STRIDE),
                     VMM_MMIO_GSI_BASE + i);
        if (w < 0 || (size_t)w >= cap - n)
            return -E2BIG;
        n += (size_t)w;
    }
    int khz = ioctl(vm->cpus[0].fd, KVM_GET_TSC_KHZ, 0);
    if (khz > 0) {
        w = snprintf(buf + n, cap - n, "%stsc_khz=%d", n ? " " : "", khz);
        if (w < 0 || (size_t)w >= cap - n)
            return -E2BIG;
    }
    return 0;
}

static const char *boot_kind_name(enum vmm_boot_kind k)
{
    switch (k) {
    case VMM_BOOT_BZIMAGE:
        return "bzImage (Linux boot protocol, 64-bit entry)";
    case VMM_BOOT_PVH:
        return "ELF with a PVH note (32-bit PVH entry)";
    case VMM_BOOT_RAW:
        return "ELF64 without a PVH note (raw 64-bit entry)";
    }
    return "?";
}

enum vmm_boot_kind vmm_boot_detect(const uint8_t *img, size_t len, int *err)
{
    struct vmm_bzimage bz;
    uint32_t entry;
    *err = 0;
    if (len >= 0x206 && memcmp(img + 0x202, "HdrS", 4) == 0) {
        *err = vmm_bzimage_parse(img, len, &bz);
        return VMM_BOOT_BZIMAGE;
    }
    int rc = vmm_elf_pvh_entry(img, len, &entry);
    if (rc == 0)
        return VMM_BOOT_PVH;
    if (rc != -ENOENT)
        *err = rc;
    return VMM_BOOT_RAW;
}

/* ACPI tables for every boot: Linux needs them to find the NICs, the test guest ignores them. */
static int install_acpi(struct vmm *vm, unsigned nnets)
{
    struct vmm_acpi_dev devs[VMM_MAX_NETS];
    for (unsigned i = 0; i < nnets; i++)
        devs[i] = (struct vmm_acpi_dev){.base = VMM_MMIO_BASE + i * VMM_MMIO_STRIDE,
                                        .size = VMM_MMIO_SIZE,
                                        .gsi = VMM_MMIO_GSI_BASE + i};
    struct vmm_acpi_cfg acfg = {.ncpus = vm->ncpus, .ndevs = nnets, .devs = devs, .serial = true};
    struct vmm_acpi_layout lay;
    int rc = vmm_acpi_install(&vm->mem, &acfg, &lay);
    if (rc < 0) {
        VLOG(ERR, VMM_MODULE, "ACPI tables: %s", strerror(-rc));
        return rc;
    }
    VLOG(INFO, VMM_MODULE,
         "ACPI: RSDP %#llx, XSDT %#llx, FADT %#llx, MADT %#llx, DSDT %#llx (%zu bytes; "
         "%u CPUs, %u virtio-mmio)",
         (unsigned long long)lay.rsdp, (unsigned long long)lay.xsdt, (unsigned long long)lay.fadt,
         (unsigned long long)lay.madt, (unsigned long long)lay.dsdt, lay.size, vm->ncpus, nnets);
    return 0;
}

/* Load the kernel the way its format asks for, the ACPI tables, and set up the BSP. */
static int boot_kernel(struct vmm *vm, const struct vmm_config *cfg)
{
    uint8_t *img = NULL, *initrd = NULL;
    size_t len = 0, initrd_len = 0;
    char *cmdline = malloc(VMM_RAW_CMDLINE_MAX);
    struct vmm_boot_regs regs;
    struct vmm_elf_image elf = {0};
    int err, rc = read_file(cfg->kernel, &img, &len);
    if (rc < 0) {
        VLOG(ERR, VMM_MODULE, "%s: %s", cfg->kernel, strerror(-rc));
        goto out;
    }
    rc = -ENOMEM;
    if (!cmdline)
        goto out;
    enum vmm_boot_kind kind = vmm_boot_detect(img, len, &err);
    if (err < 0) {
        if (kind == VMM_BOOT_BZIMAGE)
            VLOG(ERR, VMM_MODULE, "%s: unusable bzImage header: %s", cfg->kernel, strerror(-err));
        else if (err == -ENOEXEC)
            VLOG(ERR, VMM_MODULE, "%s: neither a bzImage nor an ELF64 x86-64 executable",
                 cfg->kernel);
        else
            VLOG(ERR, VMM_MODULE, "%s: malformed ELF program headers or notes: %s", cfg->kernel,
                 strerror(-err));
        rc = err;
        goto out;
    }
    if (cfg->initrd && kind == VMM_BOOT_RAW) {
        VLOG(ERR, VMM_MODULE, "--initrd needs a bzImage or a PVH kernel");
        rc = -EINVAL;
        goto out;
    }
    if (cfg->initrd && (rc = read_file(cfg->initrd, &initrd, &initrd_len)) < 0) {
        VLOG(ERR, VMM_MODULE, "%s: %s", cfg->initrd, strerror(-rc));
        goto out;
    }
    if ((rc = build_cmdline(vm, cfg, kind == VMM_BOOT_RAW, cmdline, VMM_RAW_CMDLINE_MAX)) < 0) {
        VLOG(ERR, VMM_MODULE, "command line too long");
        goto out;
    }
    if ((rc = install_acpi(vm, cfg->nnets)) < 0)
        goto out;

    switch (kind) {
    case VMM_BOOT_BZIMAGE:
        rc = vmm_linux_load(&vm->mem, img, len, initrd, initrd_len, cmdline, &regs);
        break;
    case VMM_BOOT_PVH:
        rc = vmm_pvh_load(&vm->mem, img, len, initrd, initrd_len, cmdline, &regs);
        break;
    case VMM_BOOT_RAW:
        rc = vmm_elf_load(&vm->mem, img, len, VMM_RAW_LOAD_MIN, &elf);
        if (rc == 0 && (rc = vmm_raw_build_tables(&vm->mem)) == 0)
            rc = vmm_raw_put_cmdline(&vm->mem, cmdline);
        regs = (struct vmm_boot_regs){
            .rip = elf.entry,
            .rsp = VMM_RAW_STACK_TOP,
            .rdi = VMM_RAW_CMDLINE,
            .rsi = vm->mem.size,
            .long_mode = true,
        };
        break;
    }
    if (rc < 0) {
        VLOG(ERR, VMM_MODULE, "%s: cannot boot as a %s: %s", cfg->kernel, boot_kind_name(kind),
             strerror(-rc));
        goto out;
    }
    uint64_t info = kind == VMM_BOOT_PVH       ? regs.rbx
                    : kind == VMM_BOOT_BZIMAGE ? regs.rsi
                                               : regs.rdi;
    VLOG(INFO, VMM_MODULE, "boot: %s: entry %#llx, %s at %#llx, initrd %zu bytes",
         boot_kind_name(kind), (unsigned long long)regs.rip,
         kind == VMM_BOOT_PVH       ? "start_info"
         : kind == VMM_BOOT_BZIMAGE ? "zero page"
                                    : "command line",
         (unsigned long long)info, initrd_len);
    VLOG(INFO, VMM_MODULE, "command line: %s", cmdline);
    /* Only the BSP is set up: the others wait for INIT/SIPI from the guest (Linux sends them
     * to the APIC ids of the MADT; the test guest never does). */
    rc = vmm_vcpu_setup_boot(&vm->cpus[0], &regs);
    if (rc < 0)
        VLOG(ERR, VMM_MODULE, "vcpu0 registers: %s", strerror(-rc));
out:
    free(img);
    free(initrd);
    free(cmdline);
    return rc;
}

static int wait_for_stop(struct vmm *vm, int sigfd, struct vmm_net **nets, unsigned nnets,
                         struct vmm_console *con)
{
    for (;;) {
        struct pollfd p[2 + VMM_MAX_NETS + VMM_CONSOLE_POLLFDS];
        unsigned n = 0;
        p[n++] = (struct pollfd){.fd = vm->stopfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        for (unsigned i = 0; i < nnets; i++)
            p[n++] = (struct pollfd){.fd = vmm_net_pollfd(nets[i]), .events = POLLIN};
        int timeout = 1000;
        unsigned con_idx = n;
        unsigned ncon = vmm_console_pollfds(con, p + n, &timeout);
        n += ncon;
        int r = poll(p, n, timeout);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0)
            vmm_console_handle(con, p + con_idx, ncon);
        if (p[0].revents)
            return 0;
        if (p[1].revents) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                VLOG(INFO, VMM_MODULE, "signal %u: stopping the VM", si.ssi_signo);
                vmm_request_exit(vm, VMM_EXIT_POWEROFF, 0);
                return 0;
            }
        }
        for (unsigned i = 0; i < nnets; i++) {
            if (p[2 + i].revents || r == 0)
                vmm_net_poll(nets[i]);
        }
    }
}

/* What the guest did wrong, once at the end (each case was logged rate-limited when it
 * happened): unclaimed port I/O and MMIO, and each NIC's virtio-mmio errors. */
static void log_guest_errors(struct vmm *vm, struct virtio_mmio **mmio, unsigned nnets)
{
    uint64_t pio = __atomic_load_n(&vm->pio.unclaimed, __ATOMIC_RELAXED);
    uint64_t mm = __atomic_load_n(&vm->mmio.unclaimed, __ATOMIC_RELAXED);
    if (pio || mm)
        VLOG(WARN, VMM_MODULE, "guest errors: unclaimed port I/O %llu, unclaimed MMIO %llu",
             (unsigned long long)pio, (unsigned long long)mm);
    for (unsigned i = 0; i < nnets; i++) {
        uint64_t err[VIRTIO_MMIO_ERR_MAX];
        char line[256];
        size_t n = 0;
        virtio_mmio_errors(mmio[i], err);
        for (unsigned k = 0; k < VIRTIO_MMIO_ERR_MAX; k++) {
            if (!err[k])
                continue;
            int w = snprintf(line + n, sizeof(line) - n, " %s=%llu", virtio_mmio_error_names[k],
                             (unsigned long long)err[k]);
            if (w < 0 || (size_t)w >= sizeof(line) - n)
                break;
            n += (size_t)w;
        }
        if (n)
            VLOG(WARN, VMM_MODULE, "guest errors: net%u virtio-mmio:%s", i, line);
    }
}

int vmm_run(const struct vmm_config *cfg)
{
    struct vmm *vm = calloc(1, sizeof(*vm));
    struct vmm_serial *serial = NULL;
    struct vmm_net *nets[VMM_MAX_NETS] = {0};
    struct virtio_mmio *mmio[VMM_MAX_NETS] = {0};
    struct vmm_console *con = NULL;
    int status = VMM_STATUS_ERROR;
    int sigfd = -1;
    int rc;

    if (!vm)
        goto out;
    if (cfg->name)
        snprintf(vm->name, sizeof(vm->name), "%s", cfg->name);
    else
        snprintf(vm->name, sizeof(vm->name), "vm%u", (unsigned)getpid());
    vm->kvmfd = vm->vmfd = vm->stopfd = -1;
    vm->mem.memfd = -1;
    if (cfg->nnets > VMM_MAX_NETS || cfg->cpus == 0 || cfg->cpus > VMM_MAX_CPUS)
        goto out;

    /* Signals go to the signalfd; vCPU threads inherit the mask (they unblock only SIGUSR1). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* A console or vswitchd that went away is an error to handle, not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    sigdelset(&set, SIGUSR1);
    sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    vm->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sigfd < 0 || vm->stopfd < 0)
        goto out;

    if ((rc = vm_create(vm, cfg)) < 0)
        goto out;
    if (!(serial = vmm_serial_create(vm, -1)) || vmm_power_init(vm) < 0)
        goto out;

    for (unsigned i = 0; i < cfg->nnets; i++) {
        nets[i] = vmm_net_create(vm, &cfg->nets[i], cfg->ctl_socket, i);
        if (!nets[i])
            goto out;
        mmio[i] = virtio_mmio_create(vm, VMM_MMIO_BASE + i * VMM_MMIO_STRIDE, VMM_MMIO_GSI_BASE + i,
                                     vmm_net_virtio(nets[i]));
        if (!mmio[i])
            goto out;
    }

    if (boot_kernel(vm, cfg) < 0)
        goto out;
    if (cfg->dry_run) {
        VLOG(INFO, VMM_MODULE,
             "dry run: %s built (memory, ACPI tables, boot structures, "
             "registers); not starting the vCPUs",
             vm->name);
        status = 0;
        goto out;
    }

    /* Before the vCPUs: the guest's first line must find its console. */
    if (!(con = vmm_console_open(vm, serial, cfg->console)))
        goto out;
    for (unsigned i = 0; i < vm->ncpus; i++) {
        if ((rc = vmm_vcpu_start(&vm->cpus[i])) < 0) {
            VLOG(ERR, VMM_MODULE, "vcpu%u thread: %s", i, strerror(-rc));
            vmm_request_exit(vm, VMM_EXIT_ERROR, 0);
            break;
        }
    }
    wait_for_stop(vm, sigfd, nets, cfg->nnets, con);
    for (unsigned i = 0; i < vm->ncpus; i++)
        vmm_vcpu_kick(&vm->cpus[i]);
    for (unsigned i = 0; i < vm->ncpus; i++)
        vmm_vcpu_join(&vm->cpus[i]);
    /* After the vCPUs: their last output still reaches a socket client. */
    vmm_console_close(con);
    con = NULL;

    log_guest_errors(vm, mmio, cfg->nnets);

    switch (vm->exit_kind) {
    case VMM_EXIT_POWEROFF:
        status = vm->exit_status;
        break;
    case VMM_EXIT_RESET:
        VLOG(INFO, VMM_MODULE, "guest reset: exiting (restart it from outside)");
        status = 0;
        break;
    default:
        status = VMM_STATUS_ERROR;
        break;
    }

out:
    if (vm) {
        /* Devices first (their ports go away in vswitchd), then the machine. */
        for (unsigned i = 0; i < VMM_MAX_NETS; i++) {
            virtio_mmio_destroy(mmio[i]);
            vmm_net_destroy(nets[i]);
        }
        vmm_console_close(con);
        vmm_serial_destroy(serial);
        for (unsigned i = 0; i < vm->ncpus; i++)
            vmm_vcpu_fini(&vm->cpus[i]);
        vmm_mem_fini(&vm->mem);
        free(vm->cpuid);
        if (vm->vmfd >= 0)
            close(vm->vmfd);
        if (vm->kvmfd >= 0)
            close(vm->kvmfd);
        if (vm->stopfd >= 0)
            close(vm->stopfd);
    }
    if (sigfd >= 0)
        close(sigfd);
    free(vm);
    return status;
}
