/*
 * tinyguest main: read the command line, bring up the NIC, ping the peer and check a UDP
 * echo, keep answering for a while (so the peer can finish), print the verdict, power off.
 *
 * Command line (vswitch-vmm appends virtio_mmio.device= and tsc_khz=):
 *   ip=A.B.C.D       our address (required for networking; without it: hello and power off)
 *   peer=A.B.C.D     whom to ping (optional: without it we only answer)
 *   count=N          pings (default 3)
 *   linger=MS        keep answering this long after our own tests (default 3000)
 *   timeout=MS       per ping / echo (default 5000)
 *   evil=1           first abuse the device and the VMM (see vnet_abuse), then work normally
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
    if (!cmdline_get(cmdline, "ip", buf, sizeof(buf)))
        poweroff(0);
    if (!parse_ip(buf, &cfg.ip))
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
    puts_("tinyguest: ip ");
    put_ip(cfg.ip);
    puts_(" mac ");
    put_mac(cfg.mac);
    puts_("\n");

    uint64_t count = opt_u64(cmdline, "count", 3);
    uint64_t timeout = opt_u64(cmdline, "timeout", 5000);
    uint64_t linger = opt_u64(cmdline, "linger", 3000);
    unsigned ok = 0, udp_ok = 1;
    if (peer) {
        for (uint64_t seq = 1; seq <= count; seq++) {
            bool r = net_ping(peer, (uint16_t)seq, timeout);
            puts_("ping ");
            put_ip(peer);
            puts_(" seq=");
            put_dec(seq);
            puts_(r ? " ok\n" : " timeout\n");
            ok += r;
        }
        udp_ok = net_udp_echo(peer, timeout);
        puts_("udp echo ");
        put_ip(peer);
        puts_(udp_ok ? " ok\n" : " timeout\n");
    }
    uint64_t end = now_ms() + linger;
    while (now_ms() < end)
        net_poll();
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
