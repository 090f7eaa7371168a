/*
 * vCPUs: one thread each, running KVM_RUN in a loop with one switch on the exit reason
 * (kvmtool's kvm-cpu.c is the model). Port I/O and MMIO exits go to the buses; everything
 * that ends the machine goes through vmm_request_exit(). A vCPU is stopped by setting
 * kvm_run.immediate_exit and signalling its thread (SIGUSR1, no-op handler), so a stop
 * request can never be lost between the check and the next KVM_RUN.
 *
 * Set-up (init, registers, CPUID) runs on the main thread before the vCPU thread starts.
 */
#include "vmm_int.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VMM_KICK_SIGNAL SIGUSR1

#define CR0_PE   (1ull << 0)
#define CR0_MP   (1ull << 1)
#define CR0_ET   (1ull << 4)
#define CR0_NE   (1ull << 5)
#define CR0_PG   (1ull << 31)
#define CR4_PAE  (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static void kick_handler(int sig)
{
    (void)sig; /* only here to interrupt KVM_RUN */
}

static int setup_cpuid(struct vmm_vcpu *c)
{
    struct kvm_cpuid2 *src = c->vm->cpuid;
    size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
    struct kvm_cpuid2 *cp = malloc(sz);
    if (!cp)
        return -ENOMEM;
    memcpy(cp, src, sz);
    for (uint32_t i = 0; i < cp->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cp->entries[i];
        switch (e->function) {
        case 1:
            /* Initial APIC id, logical processor count, and "running on a hypervisor". */
            e->ebx = (e->ebx & 0x0000ffffu) | (c->id << 24) | ((c->vm->ncpus & 0xff) << 16);
            e->ecx |= 1u << 31;
            break;
        case 0xb:
        case 0x1f:
            e->edx = c->id; /* x2APIC id */
            break;
        default:
            break;
        }
    }
    int rc = ioctl(c->fd, KVM_SET_CPUID2, cp) < 0 ? -errno : 0;
    free(cp);
    return rc;
}

/* LINT0 takes the 8259's ExtINT, LINT1 NMIs, as a BIOS would leave them. */
static int setup_lapic(struct vmm_vcpu *c)
{
    struct kvm_lapic_state l;
    if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
        return -errno;
    uint32_t *lint0 = (uint32_t *)&l.regs[APIC_LVT_LINT0];
    uint32_t *lint1 = (uint32_t *)&l.regs[APIC_LVT_LINT1];
    *lint0 = (*lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    *lint1 = (*lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
    if (ioctl(c->fd, KVM_SET_LAPIC, &l) < 0)
        return -errno;
    return 0;
}

/* The MSRs firmware would leave set: fast strings on, MTRRs enabled with write-back as the
 * default type (Linux otherwise disables PAT). Best effort: KVM may refuse one of them. */
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE    0x2ff
#define MISC_ENABLE_FAST_STR 1ull
#define MTRR_DEF_ENABLE_WB   ((1ull << 11) | 6)

static void setup_msrs(struct vmm_vcpu *c)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[2];
    } m = {.hdr.nmsrs = 2,
           .e = {{.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STR},
                 {.index = MSR_MTRR_DEF_TYPE, .data = MTRR_DEF_ENABLE_WB}}};
    int n = ioctl(c->fd, KVM_SET_MSRS, &m);
    if (n != 2)
        VLOG(DEBUG, VMM_MODULE, "vcpu%u: KVM_SET_MSRS set %d of 2", c->id, n);
}

int vmm_vcpu_init(struct vmm *vm, struct vmm_vcpu *c, unsigned id)
{
    memset(c, 0, sizeof(*c));
    c->vm = vm;
    c->id = id;
    c->fd = ioctl(vm->vmfd, KVM_CREATE_VCPU, (unsigned long)id);
    if (c->fd < 0)
        return -errno;
    int sz = ioctl(vm->kvmfd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz < (int)sizeof(struct kvm_run))
        return sz < 0 ? -errno : -EINVAL;
    c->run_size = (size_t)sz;
    c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (c->run == MAP_FAILED) {
        c->run = NULL;
        return -errno;
    }
    int rc = setup_cpuid(c);
    if (rc == 0)
        rc = setup_lapic(c);
    if (rc == 0)
        setup_msrs(c);
    if (rc == 0) {
        struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
        if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
            rc = -errno;
    }
    return rc;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
    *s = (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = code64 ? 0 : 1,
        .s = 1,
        .l = code64 ? 1 : 0,
        .g = 1,
    };
}

int vmm_vcpu_setup_boot(struct vmm_vcpu *c, const struct vmm_boot_regs *r)
{
    struct kvm_sregs sregs;
    if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    if (r->long_mode) {
        seg_flat(&sregs.cs, VMM_GDT_CODE, 0xb, true);
        seg_flat(&sregs.ds, VMM_GDT_DATA, 0x3, false);
        sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
        sregs.gdt.base = VMM_RAW_GDT;
        sregs.gdt.limit = VMM_GDT_ENTRIES * 8 - 1;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr3 = VMM_RAW_PML4;
        sregs.cr4 = CR4_PAE;
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
        sregs.efer = EFER_LME | EFER_LMA;
    } else if (r->protected32) {
        /* PVH: 32-bit flat segments, TR a 32-bit TSS, paging off, CR4 and EFER clear. */
        seg_flat(&sregs.cs, VMM_GDT_CODE, 0xb, false);
        seg_flat(&sregs.ds, VMM_GDT_DATA, 0x3, false);
        sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
        sregs.tr = (struct kvm_segment){
            .base = 0, .limit = 0x67, .selector = VMM_PVH_GDT_TSS, .type = 0xb, .present = 1};
        sregs.gdt.base = VMM_RAW_GDT;
        sregs.gdt.limit = VMM_PVH_GDT_ENTRIES * 8 - 1;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.cr0 = CR0_PE | CR0_ET;
        sregs.efer = 0;
    }
    if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0)
        return -errno;

    struct kvm_regs regs = {
        .rflags = 0x2,
        .rip = r->rip,
        .rsp = r->rsp,
        .rdi = r->rdi,
        .rsi = r->rsi,
        .rbx = r->rbx,
    };
    if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}

static void dump_regs(struct vmm_vcpu *c)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
        return;
    VLOG(ERR, VMM_MODULE,
         "vcpu%u: rip %#llx rsp %#llx rax %#llx rflags %#llx cr0 %#llx cr3 %#llx cr4 %#llx "
         "efer %#llx cs %#x",
         c->id, (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rax,
         (unsigned long long)r.rflags, (unsigned long long)s.cr0, (unsigned long long)s.cr3,
         (unsigned long long)s.cr4, (unsigned long long)s.efer, s.cs.selector);
}

static void handle_io(struct vmm_vcpu *c)
{
    struct kvm_run *run = c->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool wr = run->io.direction == KVM_EXIT_IO_OUT;
    /* String I/O (rep outsb/insb) arrives as count back-to-back accesses. */
    for (uint32_t i = 0; i < run->io.count; i++)
        vmm_bus_access(&c->vm->pio, "pio", run->io.port, data + (size_t)i * run->io.size,
                       run->io.size, wr);
}

static void *vcpu_thread(void *arg)
{
    struct vmm_vcpu *c = arg;
    struct vmm *vm = c->vm;
    struct kvm_run *run = c->run;
    char name[16];

    snprintf(name, sizeof(name), "vcpu%u", c->id);
    pthread_setname_np(pthread_self(), name);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, VMM_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (!vmm_stopping(vm)) {
        if (ioctl(c->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_RELAXED);
                continue;
            }
            VLOG(ERR, VMM_MODULE, "vcpu%u: KVM_RUN: %s", c->id, strerror(errno));
            vmm_request_exit(vm, VMM_EXIT_ERROR, 0);
            break;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(c);
            break;
        case KVM_EXIT_MMIO:
            vmm_bus_access(&vm->mmio, "mmio", run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                           run->mmio.is_write);
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_HLT:
            /* With the in-kernel LAPIC a halt only exits when nothing can ever wake it. */
            VLOG(INFO, VMM_MODULE, "vcpu%u halted for good: powering off", c->id);
            vmm_request_exit(vm, VMM_EXIT_POWEROFF, 0);
            break;
        case KVM_EXIT_SHUTDOWN:
            VLOG(INFO, VMM_MODULE, "vcpu%u: triple fault (guest reset)", c->id);
            dump_regs(c);
            vmm_request_exit(vm, VMM_EXIT_RESET, 0);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                vmm_request_exit(vm, VMM_EXIT_RESET, 0);
            else
                vmm_request_exit(vm, VMM_EXIT_POWEROFF, 0);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            VLOG(ERR, VMM_MODULE, "vcpu%u: entry failed, reason %#llx", c->id,
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            dump_regs(c);
            vmm_request_exit(vm, VMM_EXIT_ERROR, 0);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            VLOG(ERR, VMM_MODULE, "vcpu%u: KVM internal error, suberror %u", c->id,
                 run->internal.suberror);
            dump_regs(c);
            vmm_request_exit(vm, VMM_EXIT_ERROR, 0);
            break;
        default:
            VLOG(ERR, VMM_MODULE, "vcpu%u: unexpected exit reason %u", c->id, run->exit_reason);
            dump_regs(c);
            vmm_request_exit(vm, VMM_EXIT_ERROR, 0);
            break;
        }
    }
    return NULL;
}

int vmm_vcpu_start(struct vmm_vcpu *c)
{
    static bool handler_set;
    if (!handler_set) {
        struct sigaction sa = {.sa_handler = kick_handler}; /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        if (sigaction(VMM_KICK_SIGNAL, &sa, NULL) < 0)
            return -errno;
        handler_set = true;
    }
    int rc = pthread_create(&c->thread, NULL, vcpu_thread, c);
    if (rc)
        return -rc;
    c->started = true;
    return 0;
}

void vmm_vcpu_kick(struct vmm_vcpu *c)
{
    if (!c->started)
        return;
    __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELEASE);
    pthread_kill(c->thread, VMM_KICK_SIGNAL);
}

void vmm_vcpu_join(struct vmm_vcpu *c)
{
    if (c->started)
        pthread_join(c->thread, NULL);
    c->started = false;
}

void vmm_vcpu_fini(struct vmm_vcpu *c)
{
    if (c->run)
        munmap(c->run, c->run_size);
    if (c->fd > 0)
        close(c->fd);
    c->run = NULL;
    c->fd = -1;
}
