/*
 * tinyguest: start the application processors the way an OS does (Intel SDM vol. 3, "MP
 * initialization": INIT, then two STARTUP IPIs through the local APIC's ICR) and check that
 * each one ran code. The VMM creates every vCPU but sets up only the BSP: the others wait in
 * KVM's in-kernel LAPIC for exactly this. The count of CPUs comes from CPUID 1 (EBX 23:16),
 * which the VMM fills in; APIC ids are 0..n-1, as in the VMM's MADT.
 */
#include "tg.h"

#define LAPIC         0xfee00000ul
#define LAPIC_SVR     0x0f0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define ICR_INIT      0x00004500u /* INIT, level assert */
#define ICR_STARTUP   0x00004600u /* STARTUP, vector in bits 7:0 */
#define ICR_PENDING   0x00001000u /* delivery status */
#define AP_TRAMPOLINE 0x9000ul    /* SIPI vector 0x09: a free page below 1 MiB */
#define AP_WAIT_MS    2000

extern const uint8_t tg_ap_start[], tg_ap_end[];

static void cpuid1(uint32_t *ebx)
{
    uint32_t a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    *ebx = b;
}

static void delay_ms(uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        ;
}

static void send_ipi(uint32_t apic_id, uint32_t icr)
{
    mmio_write32(LAPIC + LAPIC_ICR_HI, apic_id << 24);
    mmio_write32(LAPIC + LAPIC_ICR_LO, icr);
    uint64_t end = now_ms() + 100;
    while ((mmio_read32(LAPIC + LAPIC_ICR_LO) & ICR_PENDING) && now_ms() < end)
        ;
}

bool smp_start_aps(void)
{
    volatile uint8_t *mark = (volatile uint8_t *)TG_AP_MARK;
    uint32_t ebx;
    cpuid1(&ebx);
    unsigned ncpus = (ebx >> 16) & 0xff, bsp = ebx >> 24, started = 0;
    puts_("smp: ");
    put_dec(ncpus);
    puts_(" cpus, bsp apic id ");
    put_dec(bsp);
    puts_("\n");
    memcpy((void *)AP_TRAMPOLINE, tg_ap_start, (size_t)(tg_ap_end - tg_ap_start));
    /* Software-enable the APIC (spurious vector 0xff): the ICR sends nothing otherwise. */
    mmio_write32(LAPIC + LAPIC_SVR, mmio_read32(LAPIC + LAPIC_SVR) | 0x1ff);
    for (unsigned id = 0; id < ncpus; id++) {
        if (id == bsp)
            continue;
        mark[0] = 0;
        mark[1] = 0xff;
        barrier();
        send_ipi(id, ICR_INIT);
        delay_ms(10);
        for (unsigned i = 0; i < 2 && mark[0] != TG_AP_MAGIC; i++) {
            send_ipi(id, ICR_STARTUP | (uint32_t)(AP_TRAMPOLINE >> 12));
            delay_ms(1);
        }
        uint64_t end = now_ms() + AP_WAIT_MS;
        while (mark[0] != TG_AP_MAGIC && now_ms() < end)
            ;
        puts_("smp: cpu ");
        put_dec(id);
        if (mark[0] == TG_AP_MAGIC) {
            puts_(" started, apic id ");
            put_dec(mark[1]);
            puts_("\n");
            started++;
        } else {
            puts_(" did not start\n");
        }
    }
    return ncpus > 0 && started == ncpus - 1;
}
