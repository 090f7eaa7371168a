/*
 * tinyguest: Ethernet, ARP, IPv4, ICMP echo (both ends) and a UDP echo service on port 7,
 * all polled. Frames are built in one static buffer; nothing here allocates.
 */
#include "tg.h"

#define ETH_P_IP        0x0800
#define ETH_P_ARP       0x0806
#define ETH_P_VSWG      0x88b5 /* vsw-guest test frames: echoed back to the sender */
#define IPPROTO_ICMP    1
#define IPPROTO_UDP     17
#define UDP_ECHO_PORT   7
#define UDP_CLIENT_PORT 40007
#define DHCP_CLIENT     68
#define ARP_SLOTS       8

struct eth {
    uint8_t dst[6], src[6];
    uint16_t type;
} __attribute__((packed));

struct arp {
    uint16_t htype, ptype;
    uint8_t hlen, plen;
    uint16_t op;
    uint8_t sha[6];
    uint32_t spa;
    uint8_t tha[6];
    uint32_t tpa;
} __attribute__((packed));

struct ip4 {
    uint8_t vihl, tos;
    uint16_t len, id, frag;
    uint8_t ttl, proto;
    uint16_t csum;
    uint32_t src, dst;
} __attribute__((packed));

struct icmp {
    uint8_t type, code;
    uint16_t csum, id, seq;
} __attribute__((packed));

struct udp {
    uint16_t sport, dport, len, csum;
} __attribute__((packed));

static struct tg_net me;
static struct {
    uint32_t ip;
    uint8_t mac[6];
} arp_cache[ARP_SLOTS];
static uint8_t rxf[2048], txf[2048];
static uint16_t ip_id;
static uint16_t last_echo_seq; /* sequence of the last echo reply for us */
static bool udp_echo_seen;
unsigned net_l2_echoed;
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t csum(const void *p, uint32_t len)
{
    const uint8_t *b = p;
    uint32_t s = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (len & 1)
        s += (uint32_t)b[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return htons((uint16_t)~s);
}

void net_init(const struct tg_net *cfg)
{
    me = *cfg;
}

void net_set_ip(uint32_t ip)
{
    me.ip = ip;
}

static const uint8_t *arp_lookup(uint32_t ip)
{
    for (unsigned i = 0; i < ARP_SLOTS; i++) {
        if (arp_cache[i].ip == ip)
            return arp_cache[i].mac;
    }
    return NULL;
}

static void arp_learn(uint32_t ip, const uint8_t *mac)
{
    unsigned free_slot = ARP_SLOTS;
    for (unsigned i = 0; i < ARP_SLOTS; i++) {
        if (arp_cache[i].ip == ip) {
            memcpy(arp_cache[i].mac, mac, 6);
            return;
        }
        if (!arp_cache[i].ip && free_slot == ARP_SLOTS)
            free_slot = i;
    }
    if (free_slot == ARP_SLOTS)
        free_slot = 0;
    arp_cache[free_slot].ip = ip;
    memcpy(arp_cache[free_slot].mac, mac, 6);
}

static void send_arp(uint16_t op, const uint8_t *dst_mac, uint32_t tpa)
{
    struct eth *e = (struct eth *)txf;
    struct arp *a = (struct arp *)(e + 1);
    memcpy(e->dst, op == 1 ? bcast : dst_mac, 6);
    memcpy(e->src, me.mac, 6);
    e->type = htons(ETH_P_ARP);
    a->htype = htons(1);
    a->ptype = htons(ETH_P_IP);
    a->hlen = 6;
    a->plen = 4;
    a->op = htons(op);
    memcpy(a->sha, me.mac, 6);
    a->spa = me.ip;
    if (op == 1)
        memset(a->tha, 0, 6);
    else
        memcpy(a->tha, dst_mac, 6);
    a->tpa = tpa;
    uint32_t len = sizeof(*e) + sizeof(*a);
    memset(txf + len, 0, 60 - len);
    vnet_send(txf, 60);
}

/* Fill Ethernet and IPv4 headers in txf for `plen` payload bytes; returns the payload. */
static uint8_t *ip_build(const uint8_t *dmac, uint32_t dst, uint8_t proto, uint32_t plen)
{
    struct eth *e = (struct eth *)txf;
    struct ip4 *ip = (struct ip4 *)(e + 1);
    memcpy(e->dst, dmac, 6);
    memcpy(e->src, me.mac, 6);
    e->type = htons(ETH_P_IP);
    *ip = (struct ip4){.vihl = 0x45,
                       .len = htons((uint16_t)(sizeof(*ip) + plen)),
                       .id = htons(ip_id++),
                       .ttl = 64,
                       .proto = proto,
                       .src = me.ip,
                       .dst = dst};
    ip->csum = csum(ip, sizeof(*ip));
    return (uint8_t *)(ip + 1);
}

static void ip_send(uint32_t plen)
{
    uint32_t len = sizeof(struct eth) + sizeof(struct ip4) + plen;
    if (len < 60) {
        memset(txf + len, 0, 60 - len);
        len = 60;
    }
    vnet_send(txf, len);
}

static void handle_arp(uint32_t len)
{
    if (len < sizeof(struct eth) + sizeof(struct arp))
        return;
    const struct arp *a = (const struct arp *)(rxf + sizeof(struct eth));
    if (a->htype != htons(1) || a->ptype != htons(ETH_P_IP) || a->hlen != 6 || a->plen != 4)
        return;
    if (a->spa)
        arp_learn(a->spa, a->sha);
    if (a->op == htons(1) && a->tpa == me.ip)
        send_arp(2, a->sha, a->spa);
}

static void handle_ip(uint32_t len)
{
    const struct eth *e = (const struct eth *)rxf;
    const struct ip4 *ip = (const struct ip4 *)(e + 1);
    if (len < sizeof(*e) + sizeof(*ip) || ip->vihl != 0x45 || (ip->frag & htons(0x3fff)))
        return;
    /* Without an address yet (DHCP), only broadcasts reach us; the server sends its replies
     * that way because our requests set the broadcast flag. */
    bool bcast_ip = ip->dst == 0xffffffffu;
    if (!(me.ip && ip->dst == me.ip) && !bcast_ip)
        return;
    uint32_t tot = ntohs(ip->len);
    if (tot < sizeof(*ip) || tot > len - sizeof(*e))
        return;
    uint32_t plen = tot - sizeof(*ip);
    const uint8_t *payload = (const uint8_t *)(ip + 1);
    if (ip->proto == IPPROTO_UDP && plen >= sizeof(struct udp)) {
        const struct udp *u = (const struct udp *)payload;
        uint32_t ulen = ntohs(u->len);
        if (u->dport == htons(DHCP_CLIENT) && ulen >= sizeof(*u) && ulen <= plen) {
            dhcp_input((const uint8_t *)(u + 1), ulen - (uint32_t)sizeof(*u));
            return;
        }
    }
    if (bcast_ip)
        return;
    if (ip->src)
        arp_learn(ip->src, e->src);

    if (ip->proto == IPPROTO_ICMP && plen >= sizeof(struct icmp)) {
        const struct icmp *ic = (const struct icmp *)payload;
        if (ic->type == 8 && plen <= 1400) {
            uint8_t *out = ip_build(e->src, ip->src, IPPROTO_ICMP, plen);
            memcpy(out, payload, plen);
            struct icmp *oc = (struct icmp *)out;
            oc->type = 0;
            oc->csum = 0;
            oc->csum = csum(out, plen);
            ip_send(plen);
        } else if (ic->type == 0 && ic->id == htons(0x7467)) {
            last_echo_seq = ntohs(ic->seq);
        }
    } else if (ip->proto == IPPROTO_UDP && plen >= sizeof(struct udp)) {
        const struct udp *u = (const struct udp *)payload;
        uint32_t ulen = ntohs(u->len);
        if (ulen < sizeof(*u) || ulen > plen)
            return;
        if (u->dport == htons(UDP_ECHO_PORT) && ulen <= 1400) {
            uint8_t *out = ip_build(e->src, ip->src, IPPROTO_UDP, ulen);
            memcpy(out, payload, ulen);
            struct udp *ou = (struct udp *)out;
            ou->sport = u->dport;
            ou->dport = u->sport;
            ou->csum = 0; /* optional over IPv4 */
            ip_send(ulen);
        } else if (u->sport == htons(UDP_ECHO_PORT) && u->dport == htons(UDP_CLIENT_PORT) &&
                   ulen == sizeof(*u) + 8 && memcmp(u + 1, "tg-echo!", 8) == 0) {
            udp_echo_seen = true;
        }
    }
}

void net_udp_send(const uint8_t *dmac, uint32_t dst, uint16_t sport, uint16_t dport,
                  const void *data, uint32_t len)
{
    uint32_t ulen = (uint32_t)sizeof(struct udp) + len;
    if (ulen > 1400)
        return;
    uint8_t *out = ip_build(dmac ? dmac : bcast, dst, IPPROTO_UDP, ulen);
    struct udp *u = (struct udp *)out;
    *u = (struct udp){.sport = htons(sport), .dport = htons(dport), .len = htons((uint16_t)ulen)};
    memcpy(u + 1, data, len);
    ip_send(ulen);
}

/* Send a simulated guest's frame back to it, payload untouched (it checks the bytes). */
static void l2_echo(uint32_t len)
{
    const struct eth *e = (const struct eth *)rxf;
    struct eth *o = (struct eth *)txf;
    memcpy(txf, rxf, len);
    memcpy(o->dst, e->src, 6);
    memcpy(o->src, me.mac, 6);
    vnet_send(txf, len);
    net_l2_echoed++;
}

void net_poll(void)
{
    uint32_t len;
    while ((len = vnet_recv(rxf, sizeof(rxf))) != 0) {
        if (len < sizeof(struct eth))
            continue;
        const struct eth *e = (const struct eth *)rxf;
        if (memcmp(e->dst, me.mac, 6) != 0 && memcmp(e->dst, bcast, 6) != 0)
            continue;
        if (e->type == htons(ETH_P_ARP))
            handle_arp(len);
        else if (e->type == htons(ETH_P_IP))
            handle_ip(len);
        else if (e->type == htons(ETH_P_VSWG) && memcmp(e->dst, me.mac, 6) == 0)
            l2_echo(len);
    }
}

/* Resolve ip, asking again every 500 ms, until deadline. */
static const uint8_t *resolve(uint32_t ip, uint64_t deadline)
{
    uint64_t next = 0;
    for (;;) {
        net_poll();
        const uint8_t *m = arp_lookup(ip);
        if (m)
            return m;
        uint64_t t = now_ms();
        if (t >= deadline)
            return NULL;
        if (t >= next) {
            send_arp(1, NULL, ip);
            next = t + 500;
        }
    }
}

bool net_ping(uint32_t ip, uint16_t seq, uint64_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    const uint8_t *mac = resolve(ip, deadline);
    if (!mac)
        return false;
    uint8_t dmac[6];
    memcpy(dmac, mac, 6);
    uint32_t plen = sizeof(struct icmp) + 32;
    uint8_t *out = ip_build(dmac, ip, IPPROTO_ICMP, plen);
    struct icmp *ic = (struct icmp *)out;
    *ic = (struct icmp){.type = 8, .id = htons(0x7467), .seq = htons(seq)};
    for (unsigned i = 0; i < 32; i++)
        out[sizeof(*ic) + i] = (uint8_t)('a' + i % 26);
    ic->csum = csum(out, plen);
    ip_send(plen);
    while (now_ms() < deadline) {
        net_poll();
        if (last_echo_seq == seq)
            return true;
    }
    return false;
}

bool net_udp_echo(uint32_t ip, uint64_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    const uint8_t *mac = resolve(ip, deadline);
    if (!mac)
        return false;
    uint8_t dmac[6];
    memcpy(dmac, mac, 6);
    uint32_t ulen = sizeof(struct udp) + 8;
    uint8_t *out = ip_build(dmac, ip, IPPROTO_UDP, ulen);
    struct udp *u = (struct udp *)out;
    *u = (struct udp){.sport = htons(UDP_CLIENT_PORT),
                      .dport = htons(UDP_ECHO_PORT),
                      .len = htons((uint16_t)ulen)};
    memcpy(u + 1, "tg-echo!", 8);
    udp_echo_seen = false;
    ip_send(ulen);
    while (now_ms() < deadline) {
        net_poll();
        if (udp_echo_seen)
            return true;
    }
    return false;
}
