/*
 * tinyguest: DHCP client (RFC 2131; options of RFC 2132). DISCOVER, take the first valid
 * OFFER, REQUEST it, wait for the ACK (a NAK or no answer starts over). Every message from
 * the network is checked before use: a reply that is short, not for our xid or MAC, has a bad
 * cookie, an option running past the end or of the wrong length, no end option, no message
 * type or server id, or an unusable address is ignored with a line on the serial console.
 * Polled from dhcp_run(); dhcp_input() is called by net_poll() on the same (only) CPU.
 */
#include "tg.h"

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP_FIXED       236 /* op .. file */
#define DHCP_MIN         (DHCP_FIXED + 4)
#define DHCP_FLAG_BCAST  0x8000
#define RETRY_MS         1000 /* shorter than RFC 2131's 4 s: the switch is local */
#define REQUEST_TRIES    4

enum {
    OPT_PAD = 0,
    OPT_MASK = 1,
    OPT_ROUTER = 3,
    OPT_DNS = 6,
    OPT_REQ_IP = 50,
    OPT_LEASE = 51,
    OPT_TYPE = 53,
    OPT_SERVER = 54,
    OPT_PARAMS = 55,
    OPT_CLIENT_ID = 61,
    OPT_END = 255,
};
enum { DISCOVER = 1, OFFER = 2, REQUEST = 3, ACK = 5, NAK = 6 };
enum { D_IDLE, D_SELECTING, D_REQUESTING, D_BOUND };

static const uint8_t cookie[4] = {99, 130, 83, 99};

static struct {
    int state;
    uint32_t xid;
    uint8_t mac[6];
    uint64_t start_ms, next_ms;
    unsigned tries;
    struct tg_lease offer, lease;
} d;
unsigned dhcp_ignored;

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void send_msg(uint8_t type)
{
    static uint8_t m[DHCP_MIN + 64];
    memset(m, 0, sizeof(m));
    m[0] = 1; /* BOOTREQUEST */
    m[1] = 1; /* Ethernet */
    m[2] = 6;
    put_be32(m + 4, d.xid);
    uint64_t secs = (now_ms() - d.start_ms) / 1000;
    m[8] = (uint8_t)(secs > 0xffff ? 0xff : secs >> 8);
    m[9] = (uint8_t)(secs > 0xffff ? 0xff : secs);
    m[10] = DHCP_FLAG_BCAST >> 8; /* we cannot take unicast before we have the address */
    memcpy(m + 28, d.mac, 6);
    memcpy(m + DHCP_FIXED, cookie, 4);
    uint8_t *o = m + DHCP_MIN;
    *o++ = OPT_TYPE;
    *o++ = 1;
    *o++ = type;
    *o++ = OPT_CLIENT_ID;
    *o++ = 7;
    *o++ = 1; /* hardware type, then the MAC */
    memcpy(o, d.mac, 6);
    o += 6;
    if (type == REQUEST) {
        *o++ = OPT_REQ_IP;
        *o++ = 4;
        memcpy(o, &d.offer.ip, 4);
        o += 4;
        *o++ = OPT_SERVER;
        *o++ = 4;
        memcpy(o, &d.offer.server, 4);
        o += 4;
    }
    *o++ = OPT_PARAMS;
    *o++ = 5;
    *o++ = OPT_MASK;
    *o++ = OPT_ROUTER;
    *o++ = OPT_DNS;
    *o++ = OPT_LEASE;
    *o++ = OPT_SERVER;
    *o++ = OPT_END;
    net_udp_send(NULL, 0xffffffffu, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, m, (uint32_t)(o - m));
}

static void new_discovery(void)
{
    d.xid = (uint32_t)(rdtsc() * 2654435761u) ^ get_be32(d.mac + 2);
    d.state = D_SELECTING;
    d.tries = 0;
    d.next_ms = 0;
}

/* Why msg is unusable, or NULL with *type and *l filled in. */
static const char *parse(const uint8_t *p, uint32_t len, uint8_t *type, struct tg_lease *l)
{
    bool end = false, have_mask = false;
    *type = 0;
    memset(l, 0, sizeof(*l));
    if (len < DHCP_MIN)
        return "shorter than a DHCP header";
    if (p[0] != 2 || p[1] != 1 || p[2] != 6)
        return "not a BOOTREPLY for Ethernet";
    if (get_be32(p + 4) != d.xid)
        return "another transaction (xid)";
    if (memcmp(p + 28, d.mac, 6) != 0)
        return "for another client (chaddr)";
    if (memcmp(p + DHCP_FIXED, cookie, 4) != 0)
        return "bad magic cookie";
    for (uint32_t i = DHCP_MIN; i < len && !end;) {
        uint8_t code = p[i];
        if (code == OPT_PAD) {
            i++;
            continue;
        }
        if (code == OPT_END) {
            end = true;
            break;
        }
        if (i + 2 > len || i + 2 + p[i + 1] > len)
            return "an option runs past the end";
        uint8_t olen = p[i + 1];
        const uint8_t *v = p + i + 2;
        switch (code) {
        case OPT_TYPE:
            if (olen != 1)
                return "message type of the wrong length";
            *type = v[0];
            break;
        case OPT_SERVER:
        case OPT_MASK:
        case OPT_LEASE:
            if (olen != 4)
                return "address or time option of the wrong length";
            if (code == OPT_SERVER) {
                memcpy(&l->server, v, 4);
            } else if (code == OPT_MASK) {
                memcpy(&l->mask, v, 4);
                have_mask = true;
            } else {
                l->seconds = get_be32(v);
            }
            break;
        case OPT_ROUTER:
        case OPT_DNS:
            if (olen < 4 || olen % 4)
                return "address list of the wrong length";
            memcpy(code == OPT_ROUTER ? &l->router : &l->dns, v, 4); /* the first one */
            break;
        default:
            break; /* options we did not ask for */
        }
        i += 2u + olen;
    }
    if (!end)
        return "no end option";
    if (*type != OFFER && *type != ACK && *type != NAK)
        return "no or an unknown message type";
    if (!l->server)
        return "no server identifier";
    if (*type == NAK)
        return NULL;
    memcpy(&l->ip, p + 16, 4);
    uint32_t host = get_be32(p + 16);
    if (host == 0 || host == 0xffffffffu || (host >> 28) == 0xe || (host >> 24) == 127)
        return "unusable address (yiaddr)";
    if (have_mask) {
        uint32_t m = get_be32((const uint8_t *)&l->mask);
        if (m == 0 || (~m & (~m + 1)) != 0) /* ones then zeros */
            return "bad subnet mask";
    }
    return NULL;
}

void dhcp_input(const uint8_t *msg, uint32_t len)
{
    uint8_t type;
    struct tg_lease l;
    if (d.state != D_SELECTING && d.state != D_REQUESTING)
        return;
    const char *why = parse(msg, len, &type, &l);
    if (!why && d.state == D_SELECTING && type != OFFER)
        why = "not an OFFER while selecting";
    if (!why && d.state == D_REQUESTING) {
        if (l.server != d.offer.server)
            why = "from another server";
        else if (type == NAK) {
            puts_("dhcp: NAK, discovering again\n");
            new_discovery();
            return;
        } else if (type != ACK)
            why = "not an ACK while requesting";
        else if (l.ip != d.offer.ip)
            why = "an ACK for another address";
    }
    if (why) {
        dhcp_ignored++;
        puts_("dhcp: ignored a reply: ");
        puts_(why);
        puts_("\n");
        return;
    }
    if (d.state == D_SELECTING) {
        d.offer = l;
        d.state = D_REQUESTING;
        d.tries = 0;
        d.next_ms = 0; /* request right away, from dhcp_run */
        puts_("dhcp: offer ");
        put_ip(l.ip);
        puts_(" from ");
        put_ip(l.server);
        puts_("\n");
    } else {
        d.lease = l;
        d.state = D_BOUND;
    }
}

bool dhcp_run(const uint8_t mac[6], uint64_t timeout_ms, struct tg_lease *out)
{
    memcpy(d.mac, mac, 6);
    d.start_ms = now_ms();
    uint64_t deadline = d.start_ms + timeout_ms;
    new_discovery();
    while (now_ms() < deadline) {
        net_poll();
        if (d.state == D_BOUND) {
            *out = d.lease;
            d.state = D_IDLE;
            return true;
        }
        uint64_t t = now_ms();
        if (t < d.next_ms)
            continue;
        if (d.state == D_REQUESTING && d.tries >= REQUEST_TRIES) {
            puts_("dhcp: no ACK, discovering again\n");
            new_discovery();
        }
        send_msg(d.state == D_SELECTING ? DISCOVER : REQUEST);
        d.tries++;
        d.next_ms = t + RETRY_MS;
    }
    d.state = D_IDLE;
    return false;
}
