/*
 * tinyguest main: read the command line, bring up the NIC, ping the peer and check a UDP
 * echo, keep answering for a while (so the peer can finish), print the verdict, power off.
 *
 * Command line (vswitch-vmm appends virtio_mmio.device= and tsc_khz=):
 *   ip=A.B.C.D       our address (required for networking; without it: hello and power off)
 *   ip=dhcp          get it from a DHCP server first (within dhcptimeout=MS, default 10000)
 *                    and print "dhcp: lease ip=A mask=M router=R dns=D server=S time=Ns"
 *   peer=A.B.C.D     whom to ping (optional: without it we only answer)
 *   count=N          pings (default 3)
 *   linger=MS        keep answering this long after our own tests (default 3000)
 *   timeout=MS       per ping / echo (default 5000)
 *   echo=1           first read a line from the serial port (within echotimeout=MS, default
 *                    10000) with the UART's receive interrupt enabled and print
 *                    "serial: iir 0x4 irq4 raised", "serial: line 'TEXT'", "serial: iir after 0x1"
 *   smp=1            first start the other CPUs (INIT/SIPI through the LAPIC) and print
 *                    "smp: cpu N started, apic id N" for each; FAIL if one does not start
 *   evil=1           first abuse the device and the VMM (see vnet_abuse), then work normally
 *   recover=N        instead of count= pings: ping the peer every 200 ms until some answered,
 *                    then some were lost (the switch went away), then N in a row answered
 *                    again ("recovered after L lost"); at most maxping=N pings (default 600)
 * Output lines the tests look for: "tinyguest: hello", "ping A.B.C.D seq=N ok",
 * "udp echo A.B.C.D ok", "l2 echo frames=N" (vsw-guest frames sent back), "tinyguest: PASS" /
 * "tinyguest: FAIL ...". Exit (port 0xf4): 0 pass, 1 fail.
 */
#include "tg.h"

static uint64_t opt_u64(const char *cmdline, const char *key, uint64_t def)
{
    char buf[32];
    uint64_t v;
    if (cmdline_get(cmdline, key, buf, sizeof(buf)) && parse_u64(buf, &v))
        return v;
    return def;
}

static void print_ping(uint32_t peer, uint64_t seq, bool ok)
{
    puts_("ping ");
    put_ip(peer);
    puts_(" seq=");
    put_dec(seq);
    puts_(ok ? " ok\n" : " timeout\n");
}

/* Wait ms while answering the peer (its pings must not go unanswered while we pause). */
static void poll_for(uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        net_poll();
}

/*
 * The reconnect test's guest side: the switch is killed and restarted while we ping. We must
 * see answers, then losses, then `need` answers in a row again, all without a reset of ours.
 */
static bool ping_until_recovered(uint32_t peer, uint64_t need, uint64_t timeout, uint64_t max)
{
    uint64_t answered = 0, lost = 0, run = 0;
    for (uint64_t seq = 1; seq <= max; seq++) {
        bool r = net_ping(peer, (uint16_t)seq, timeout);
        print_ping(peer, seq, r);
        if (r) {
            answered++;
            run++;
            if (lost && run >= need) {
                puts_("recovered after ");
                put_dec(lost);
                puts_(" lost\n");
                return true;
            }
        } else {
            run = 0;
            if (answered) /* losses before the first answer are the peer still booting */
                lost++;
        }
        poll_for(200);
    }
    return false;
}

static void fail(const char *why);

#define COM1_RBR 0x3f8
#define COM1_IER 0x3f9
#define COM1_IIR 0x3fa
#define COM1_LSR 0x3fd
#define PIC1_CMD 0x20

static void wait_rx(uint64_t end)
{
    while (!(inb(COM1_LSR) & 1)) {
        if (now_ms() > end)
            fail("no serial input");
    }
}

/*
 * Check the UART's receive side as an interrupt-driven driver would see it (we take no
 * interrupts, so the PIC's request register stands in for the CPU): with IER.RDI, data waiting
 * must show in IIR and raise IRQ 4, and reading it all must clear IIR again.
 */
static void serial_echo(uint64_t timeout)
{
    char line[80];
    unsigned n = 0;
    uint64_t end = now_ms() + timeout;
    outb(COM1_IER, 0x01);
    wait_rx(end);
    uint8_t iir = inb(COM1_IIR);
    outb(PIC1_CMD, 0x0a); /* OCW3: read IRR */
    uint8_t irr = inb(PIC1_CMD);
    puts_("serial: iir ");
    put_hex(iir & 0x0f);
    puts_((irr & 0x10) ? " irq4 raised\n" : " irq4 not raised\n");
    for (;;) {
        wait_rx(end);
        char c = (char)inb(COM1_RBR);
        if (c == '\n' || c == '\r')
            break;
        if (n < sizeof(line) - 1)
            line[n++] = c;
    }
    line[n] = 0;
    uint8_t after = inb(COM1_IIR);
    outb(COM1_IER, 0);
    puts_("serial: line '");
    puts_(line);
    puts_("'\nserial: iir after ");
    put_hex(after & 0x0f);
    puts_("\n");
}

static void fail(const char *why)
{
    puts_("tinyguest: FAIL ");
    puts_(why);
    puts_("\n");
    poweroff(1);
}

/* "4K@0xd0000000:16" -> 0xd0000000 */
static bool mmio_base(const char *cmdline, uint64_t *base)
{
    char buf[64];
    if (!cmdline_get(cmdline, "virtio_mmio.device", buf, sizeof(buf)))
        return false;
    char *at = buf;
    while (*at && *at != '@')
        at++;
    if (!*at)
        return false;
    char *colon = at + 1;
    while (*colon && *colon != ':')
        colon++;
    *colon = 0;
    return parse_u64(at + 1, base);
}

void tg_main(const char *cmdline)
{
    char buf[32];
    struct tg_net cfg = {0};
    uint32_t peer = 0;
    uint64_t base;

    puts_("tinyguest: hello\n");
    tg_tsc_khz = opt_u64(cmdline, "tsc_khz", tg_tsc_khz);
    if (!tg_tsc_khz)
        tg_tsc_khz = 1000000;
    if (opt_u64(cmdline, "smp", 0) && !smp_start_aps())
        fail("not every CPU started");
    if (opt_u64(cmdline, "echo", 0))
        serial_echo(opt_u64(cmdline, "echotimeout", 10000));
    if (!cmdline_get(cmdline, "ip", buf, sizeof(buf)))
        poweroff(0);
    bool dhcp = memcmp(buf, "dhcp", 5) == 0;
    if (!dhcp && !parse_ip(buf, &cfg.ip))
        fail("bad ip=");
    if (cmdline_get(cmdline, "peer", buf, sizeof(buf)) && !parse_ip(buf, &peer))
        fail("bad peer=");
    if (!mmio_base(cmdline, &base))
        fail("no virtio_mmio.device= on the command line");
    if (opt_u64(cmdline, "evil", 0) && !vnet_abuse(base))
        fail("the VMM accepted hostile virtio-mmio accesses");
    if (!vnet_init(base, cfg.mac))
        fail("virtio-net set-up");
    net_init(&cfg);
    if (dhcp) {
        struct tg_lease l;
        if (!dhcp_run(cfg.mac, opt_u64(cmdline, "dhcptimeout", 10000), &l))
            fail("no DHCP lease");
        puts_("dhcp: lease ip=");
        put_ip(l.ip);
        puts_(" mask=");
        put_ip(l.mask);
        puts_(" router=");
        put_ip(l.router);
        puts_(" dns=");
        put_ip(l.dns);
        puts_(" server=");
        put_ip(l.server);
        puts_(" time=");
        put_dec(l.seconds);
        puts_("s ignored=");
        put_dec(dhcp_ignored);
        puts_("\n");
        cfg.ip = l.ip;
        net_set_ip(l.ip);
    }
    puts_("tinyguest: ip ");
    put_ip(cfg.ip);
    puts_(" mac ");
    put_mac(cfg.mac);
    puts_("\n");

    uint64_t count = opt_u64(cmdline, "count", 3);
    uint64_t timeout = opt_u64(cmdline, "timeout", 5000);
    uint64_t linger = opt_u64(cmdline, "linger", 3000);
    uint64_t recover = opt_u64(cmdline, "recover", 0);
    unsigned ok = 0, udp_ok = 1;
    if (peer && recover) {
        if (!ping_until_recovered(peer, recover, timeout, opt_u64(cmdline, "maxping", 600)))
            fail("no recovery after lost pings");
        count = ok = 0;
    }
    if (peer) {
        for (uint64_t seq = 1; seq <= count; seq++) {
            bool r = net_ping(peer, (uint16_t)seq, timeout);
            print_ping(peer, seq, r);
            ok += r;
        }
        udp_ok = net_udp_echo(peer, timeout);
        puts_("udp echo ");
        put_ip(peer);
        puts_(udp_ok ? " ok\n" : " timeout\n");
    }
    poll_for(linger);
    if (net_l2_echoed) {
        puts_("l2 echo frames=");
        put_dec(net_l2_echoed);
        puts_("\n");
    }
    if (peer && (ok != count || !udp_ok))
        fail("not every ping or echo was answered");
    puts_("tinyguest: PASS\n");
    poweroff(0);
}
