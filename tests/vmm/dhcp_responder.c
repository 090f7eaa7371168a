/*
 * dhcp-responder: a test-only DHCP server on a simulated guest (the vhost-user frontend
 * library), standing in for the switch's own DHCP service until it exists (test_vmm_dhcp.sh).
 * It offers one address to whoever asks, ACKs a REQUEST for it (NAKs anything else), and at
 * its own address answers ARP, ICMP echo and UDP echo (port 7), so the client can ping it.
 *
 *   dhcp-responder --socket PATH --mac MAC --ip SERVER --offer CLIENT [--mask M] [--router R]
 *                  [--dns D] [--lease SECONDS] [--bad-offers] [--time MS]
 *
 * --bad-offers: before its first OFFER it sends one malformed or unexpected reply of each kind
 * in bad_kinds[] (the client must ignore them all). Runs --time ms (default 60000) or until
 * SIGTERM/SIGINT, then prints "dhcp-responder: discover=N request=N ack=N nak=N icmp=N udp=N"
 * and exits 0 (2: usage or connect error). Single-threaded.
 */
#include "vhost_user.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ETH_LEN       14
#define IP_LEN        20
#define UDP_LEN       8
#define DHCP_FIXED    236
#define DHCP_MIN      (DHCP_FIXED + 4)
#define CONNECT_MS    5000
#define PORT_SERVER   67
#define PORT_CLIENT   68
#define PORT_ECHO     7
#define MSG_MAX       576
#define FRAME_MAX     2048
#define OPT_TYPE      53
#define OPT_SERVER    54
#define OPT_REQ_IP    50
#define OPT_END       255
#define DHCP_DISCOVER 1
#define DHCP_OFFER    2
#define DHCP_REQUEST  3
#define DHCP_ACK      5
#define DHCP_NAK      6

static const uint8_t cookie[4] = {99, 130, 83, 99};

struct responder {
    struct vuf_dev *dev;
    uint8_t mac[6];
    uint32_t ip, offer, mask, router, dns; /* network byte order */
    uint32_t lease;
    bool bad_offers, bad_sent;
    unsigned discover, request, ack, nak, icmp, udp;
    uint8_t rx[FRAME_MAX], tx[FRAME_MAX];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t now_ms(void)
{
    return vsw_now_ns() / 1000000;
}

static uint16_t csum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return htons((uint16_t)~s);
}

static void send_frame(struct responder *r, size_t len)
{
    if (len < 60) {
        memset(r->tx + len, 0, 60 - len);
        len = 60;
    }
    uint64_t start = now_ms();
    while (vuf_send(r->dev, r->tx, (uint32_t)len) == -EAGAIN && now_ms() - start < 1000)
        vuf_tx_pending(r->dev);
}

/* Ethernet + IPv4 headers into r->tx for plen payload bytes; returns the payload. */
static uint8_t *ip_build(struct responder *r, const uint8_t *dmac, uint32_t dst, uint8_t proto,
                         size_t plen)
{
    uint8_t *e = r->tx, *ip = r->tx + ETH_LEN;
    memcpy(e, dmac, 6);
    memcpy(e + 6, r->mac, 6);
    e[12] = 0x08;
    e[13] = 0x00;
    memset(ip, 0, IP_LEN);
    ip[0] = 0x45;
    uint16_t tot = htons((uint16_t)(IP_LEN + plen));
    memcpy(ip + 2, &tot, 2);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, &r->ip, 4);
    memcpy(ip + 16, &dst, 4);
    uint16_t c = csum(ip, IP_LEN);
    memcpy(ip + 10, &c, 2);
    return ip + IP_LEN;
}

static void udp_send(struct responder *r, const uint8_t *dmac, uint32_t dst, uint16_t sport,
                     uint16_t dport, const uint8_t *data, size_t len)
{
    uint8_t *u = ip_build(r, dmac, dst, 17, UDP_LEN + len);
    uint16_t v[4] = {htons(sport), htons(dport), htons((uint16_t)(UDP_LEN + len)), 0};
    memcpy(u, v, UDP_LEN);
    memcpy(u + UDP_LEN, data, len);
    send_frame(r, ETH_LEN + IP_LEN + UDP_LEN + len);
}

/* The options of a DHCP message, walked with bounds checks: the value of `code` or NULL. */
static const uint8_t *dhcp_opt(const uint8_t *m, size_t len, uint8_t code, uint8_t *olen)
{
    for (size_t i = DHCP_MIN; i < len;) {
        if (m[i] == 0) {
            i++;
            continue;
        }
        if (m[i] == OPT_END || i + 2 > len || i + 2 + m[i + 1] > len)
            return NULL;
        if (m[i] == code) {
            *olen = m[i + 1];
            return m + i + 2;
        }
        i += 2u + m[i + 1];
    }
    return NULL;
}

static uint8_t *opt_put(uint8_t *o, uint8_t code, const void *v, uint8_t len)
{
    *o++ = code;
    *o++ = len;
    memcpy(o, v, len);
    return o + len;
}

/* A reply to request `req` of type `type`: returns its length in m. */
static size_t dhcp_reply(const struct responder *r, const uint8_t *req, uint8_t type, uint8_t *m)
{
    memset(m, 0, MSG_MAX);
    m[0] = 2;
    m[1] = 1;
    m[2] = 6;
    memcpy(m + 4, req + 4, 4);    /* xid */
    memcpy(m + 10, req + 10, 2);  /* flags */
    memcpy(m + 28, req + 28, 16); /* chaddr */
    if (type != DHCP_NAK)
        memcpy(m + 16, &r->offer, 4);
    memcpy(m + 20, &r->ip, 4);
    memcpy(m + DHCP_FIXED, cookie, 4);
    uint8_t *o = m + DHCP_MIN;
    o = opt_put(o, OPT_TYPE, &type, 1);
    o = opt_put(o, OPT_SERVER, &r->ip, 4);
    if (type != DHCP_NAK) {
        uint32_t lease = htonl(r->lease);
        o = opt_put(o, 51, &lease, 4);
        o = opt_put(o, 1, &r->mask, 4);
        if (r->router)
            o = opt_put(o, 3, &r->router, 4);
        if (r->dns)
            o = opt_put(o, 6, &r->dns, 4);
    }
    *o++ = OPT_END;
    return (size_t)(o - m);
}

/*
 * The malformed or unexpected replies of --bad-offers, each made from a good OFFER (m, len)
 * and returning the length to send. The client prints why it ignored each one.
 */
static size_t bad_short(uint8_t *m, size_t len)
{
    (void)m;
    (void)len;
    return 200;
}
static size_t bad_op(uint8_t *m, size_t len)
{
    m[0] = 1;
    return len;
}
static size_t bad_xid(uint8_t *m, size_t len)
{
    m[7] ^= 0x5a;
    return len;
}
static size_t bad_chaddr(uint8_t *m, size_t len)
{
    m[33] ^= 0xff;
    return len;
}
static size_t bad_cookie(uint8_t *m, size_t len)
{
    m[DHCP_FIXED + 3] = 0;
    return len;
}
static size_t bad_overrun(uint8_t *m, size_t len)
{
    m[len - 1] = 60; /* the END byte becomes an option claiming 200 bytes past the end */
    m[len] = 200;
    return len + 1;
}
static size_t bad_no_end(uint8_t *m, size_t len)
{
    m[len - 1] = 0; /* pad instead of END */
    return len;
}
static size_t bad_type_len(uint8_t *m, size_t len)
{
    m[DHCP_MIN + 1] = 2; /* type option: 2 bytes, swallowing the next option's code */
    return len;
}
static size_t bad_no_server(uint8_t *m, size_t len)
{
    m[DHCP_MIN + 3] = 60; /* server id becomes an option the client does not know */
    return len;
}
static size_t bad_yiaddr_zero(uint8_t *m, size_t len)
{
    memset(m + 16, 0, 4);
    return len;
}
static size_t bad_yiaddr_bcast(uint8_t *m, size_t len)
{
    memset(m + 16, 0xff, 4);
    return len;
}
static size_t bad_mask(uint8_t *m, size_t len)
{
    uint8_t *o = (uint8_t *)dhcp_opt(m, len, 1, &(uint8_t){0});
    if (o)
        memcpy(o, (const uint8_t[]){255, 0, 255, 0}, 4);
    return len;
}
static size_t bad_ack_early(uint8_t *m, size_t len)
{
    m[DHCP_MIN + 2] = DHCP_ACK;
    return len;
}

static const struct {
    const char *what;
    size_t (*make)(uint8_t *m, size_t len);
} bad_kinds[] = {
    {"short", bad_short},
    {"op", bad_op},
    {"xid", bad_xid},
    {"chaddr", bad_chaddr},
    {"cookie", bad_cookie},
    {"option overrun", bad_overrun},
    {"no end", bad_no_end},
    {"type length", bad_type_len},
    {"no server id", bad_no_server},
    {"yiaddr 0", bad_yiaddr_zero},
    {"yiaddr broadcast", bad_yiaddr_bcast},
    {"mask", bad_mask},
    {"ACK while selecting", bad_ack_early},
};

static void handle_dhcp(struct responder *r, const uint8_t *m, size_t len)
{
    static uint8_t out[MSG_MAX + 1];
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t tlen = 0, ilen = 0, slen = 0;
    if (len < DHCP_MIN || m[0] != 1 || memcmp(m + DHCP_FIXED, cookie, 4) != 0)
        return;
    const uint8_t *type = dhcp_opt(m, len, OPT_TYPE, &tlen);
    if (!type || tlen != 1)
        return;
    char mac[18];
    vsw_mac_format((const struct vsw_mac *)(m + 28), mac);
    if (type[0] == DHCP_DISCOVER) {
        r->discover++;
        size_t n = dhcp_reply(r, m, DHCP_OFFER, out);
        if (r->bad_offers && !r->bad_sent) {
            static uint8_t bad[MSG_MAX + 1];
            for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
                memcpy(bad, out, sizeof(bad));
                size_t bn = bad_kinds[i].make(bad, n);
                udp_send(r, bcast, 0xffffffffu, PORT_SERVER, PORT_CLIENT, bad, bn);
            }
            r->bad_sent = true;
            printf("dhcp-responder: sent %zu bad replies\n",
                   sizeof(bad_kinds) / sizeof(bad_kinds[0]));
        }
        udp_send(r, bcast, 0xffffffffu, PORT_SERVER, PORT_CLIENT, out, n);
        printf("dhcp-responder: DISCOVER from %s, OFFER sent\n", mac);
    } else if (type[0] == DHCP_REQUEST) {
        r->request++;
        const uint8_t *want = dhcp_opt(m, len, OPT_REQ_IP, &ilen);
        const uint8_t *srv = dhcp_opt(m, len, OPT_SERVER, &slen);
        bool ok = want && ilen == 4 && !memcmp(want, &r->offer, 4) && srv && slen == 4 &&
                  !memcmp(srv, &r->ip, 4);
        size_t n = dhcp_reply(r, m, ok ? DHCP_ACK : DHCP_NAK, out);
        udp_send(r, bcast, 0xffffffffu, PORT_SERVER, PORT_CLIENT, out, n);
        if (ok)
            r->ack++;
        else
            r->nak++;
        printf("dhcp-responder: REQUEST from %s, %s\n", mac, ok ? "ACK" : "NAK");
    }
}

static void handle_frame(struct responder *r, size_t len)
{
    const uint8_t *e = r->rx;
    if (len < ETH_LEN)
        return;
    uint16_t type = (uint16_t)(e[12] << 8 | e[13]);
    if (type == 0x0806 && len >= ETH_LEN + 28) {
        const uint8_t *a = e + ETH_LEN;
        if (a[7] != 1 || memcmp(a + 24, &r->ip, 4) != 0)
            return;
        uint8_t *o = r->tx;
        memcpy(o, a + 8, 6);
        memcpy(o + 6, r->mac, 6);
        o[12] = 0x08;
        o[13] = 0x06;
        memcpy(o + ETH_LEN, a, 6); /* htype, ptype, hlen, plen */
        o[ETH_LEN + 6] = 0;
        o[ETH_LEN + 7] = 2;
        memcpy(o + ETH_LEN + 8, r->mac, 6);
        memcpy(o + ETH_LEN + 14, &r->ip, 4);
        memcpy(o + ETH_LEN + 18, a + 8, 10); /* their MAC and IP */
        send_frame(r, ETH_LEN + 28);
        return;
    }
    if (type != 0x0800 || len < ETH_LEN + IP_LEN)
        return;
    const uint8_t *ip = e + ETH_LEN;
    size_t tot = (size_t)(ip[2] << 8 | ip[3]);
    if (ip[0] != 0x45 || tot < IP_LEN || tot > len - ETH_LEN || (ip[6] & 0x3f) || ip[7])
        return;
    const uint8_t *p = ip + IP_LEN;
    size_t plen = tot - IP_LEN;
    uint32_t src;
    memcpy(&src, ip + 12, 4);
    bool to_us = !memcmp(ip + 16, &r->ip, 4), bcast = !memcmp(ip + 16, "\xff\xff\xff\xff", 4);
    if (ip[9] == 17 && plen >= UDP_LEN) {
        size_t ulen = (size_t)(p[4] << 8 | p[5]);
        uint16_t sport = (uint16_t)(p[0] << 8 | p[1]), dport = (uint16_t)(p[2] << 8 | p[3]);
        if (ulen < UDP_LEN || ulen > plen)
            return;
        if ((to_us || bcast) && dport == PORT_SERVER && sport == PORT_CLIENT)
            handle_dhcp(r, p + UDP_LEN, ulen - UDP_LEN);
        else if (to_us && dport == PORT_ECHO && ulen - UDP_LEN <= 1400) {
            uint8_t data[1400];
            memcpy(data, p + UDP_LEN, ulen - UDP_LEN);
            udp_send(r, e + 6, src, PORT_ECHO, sport, data, ulen - UDP_LEN);
            r->udp++;
        }
    } else if (ip[9] == 1 && to_us && plen >= 8 && plen <= 1400 && p[0] == 8) {
        uint8_t data[1400];
        memcpy(data, p, plen);
        data[0] = 0;
        data[2] = data[3] = 0;
        uint16_t c = csum(data, plen);
        memcpy(data + 2, &c, 2);
        memcpy(ip_build(r, e + 6, src, 1, plen), data, plen);
        send_frame(r, ETH_LEN + IP_LEN + plen);
        r->icmp++;
    }
}

static int parse_ip(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    *out = a.s_addr;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dhcp-responder --socket PATH --mac MAC --ip SERVER --offer CLIENT\n"
               "                      [--mask M] [--router R] [--dns D] [--lease SECONDS]\n"
               "                      [--bad-offers] [--time MS]\n");
}

int main(int argc, char **argv)
{
    static struct responder r;
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"mac", required_argument, NULL, 'm'},
        {"ip", required_argument, NULL, 'i'},
        {"offer", required_argument, NULL, 'o'},
        {"mask", required_argument, NULL, 'k'},
        {"router", required_argument, NULL, 'r'},
        {"dns", required_argument, NULL, 'd'},
        {"lease", required_argument, NULL, 'l'},
        {"time", required_argument, NULL, 't'},
        {"bad-offers", no_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool have_mac = false, have_ip = false, have_offer = false;
    unsigned long time_ms = 60000;
    int c, bad = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    r.mask = htonl(0xffffff00u);
    r.lease = 3600;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            path = optarg;
            break;
        case 'm':
            have_mac = vsw_mac_parse(optarg, (struct vsw_mac *)r.mac) == 0;
            bad |= !have_mac;
            break;
        case 'i':
            have_ip = parse_ip(optarg, &r.ip) == 0;
            bad |= !have_ip;
            break;
        case 'o':
            have_offer = parse_ip(optarg, &r.offer) == 0;
            bad |= !have_offer;
            break;
        case 'k':
            bad |= parse_ip(optarg, &r.mask) < 0;
            break;
        case 'r':
            bad |= parse_ip(optarg, &r.router) < 0;
            break;
        case 'd':
            bad |= parse_ip(optarg, &r.dns) < 0;
            break;
        case 'l':
            r.lease = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            time_ms = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            r.bad_offers = true;
            break;
        default:
            bad = 1;
        }
    }
    if (bad || optind != argc || !path || !have_mac || !have_ip || !have_offer) {
        usage(stderr);
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct vuf_config cfg = {0};
    uint64_t deadline = now_ms() + CONNECT_MS;
    while (!(r.dev = vuf_connect(path, &cfg))) {
        if ((errno != ENOENT && errno != ECONNREFUSED) || now_ms() >= deadline) {
            fprintf(stderr, "dhcp-responder: cannot connect to %s: %s\n", path, strerror(errno));
            return 2;
        }
        struct timespec ts = {.tv_nsec = 50000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "dhcp-responder: connected to %s\n", path);

    uint64_t end = now_ms() + time_ms;
    while (!stop && now_ms() < end) {
        int n = vuf_recv_wait(r.dev, r.rx, sizeof(r.rx), 100);
        if (n > 0)
            handle_frame(&r, (size_t)n);
        else if (n != -EAGAIN && n != -EMSGSIZE && n != -EINTR)
            break;
        vuf_tx_pending(r.dev);
    }
    printf("dhcp-responder: discover=%u request=%u ack=%u nak=%u icmp=%u udp=%u\n", r.discover,
           r.request, r.ack, r.nak, r.icmp, r.udp);
    vuf_close(r.dev);
    return 0;
}
