/*
 * tinyguest: a freestanding 64-bit test guest for vswitch-vmm. No interrupts, no SSE, no
 * libc: a UART, a polled virtio-mmio virtio-net driver and just enough ARP/IPv4/ICMP/UDP to
 * ping and echo. Single CPU, identity-mapped by the VMM's page tables.
 */
#ifndef TG_H
#define TG_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef long int64_t;
typedef unsigned long size_t;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#define TG_EXIT_PORT 0xf4

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
    return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#define barrier() __asm__ volatile("" ::: "memory")
#define mb()      __asm__ volatile("mfence" ::: "memory")

static inline uint16_t htons(uint16_t v)
{
    return (uint16_t)((v >> 8) | (v << 8));
}
#define ntohs htons

/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void puts_(const char *s);
void put_dec(uint64_t v);
void put_hex(uint64_t v);
void put_ip(uint32_t ip_be);
void put_mac(const uint8_t *m);
__attribute__((noreturn)) void poweroff(uint8_t status);
/* Time from the TSC; tsc_khz comes from the command line (a guess without it). */
extern uint64_t tg_tsc_khz;
uint64_t now_ms(void);
/* Command line: the value of key=, copied into buf; false when absent. */
bool cmdline_get(const char *cmdline, const char *key, char *buf, size_t cap);
bool parse_u64(const char *s, uint64_t *out); /* decimal or 0x hex */
bool parse_ip(const char *s, uint32_t *out_be);

/* virtio_net.c */
bool vnet_init(uint64_t base, uint8_t mac[6]);
/* Send a frame (no virtio header); false when the TX ring stayed full. */
bool vnet_send(const void *frame, uint32_t len);
/* Receive one frame into buf; returns its length or 0. */
uint32_t vnet_recv(void *buf, uint32_t cap);
/* Misbehave towards the device and the VMM (evil=1); true when all of it was refused. */
bool vnet_abuse(uint64_t base);

/* net.c */
struct tg_net {
    uint8_t mac[6];
    uint32_t ip; /* network byte order */
};
void net_init(const struct tg_net *cfg);
/* Handle every frame waiting (ARP, ICMP echo, UDP echo). */
void net_poll(void);
/* Frames of ethertype 0x88b5 (vsw-guest) sent back to their sender so far. */
extern unsigned net_l2_echoed;
void net_set_ip(uint32_t ip_be);
/* One UDP datagram (our address as source, 0.0.0.0 before DHCP); dmac NULL: broadcast. */
void net_udp_send(const uint8_t *dmac, uint32_t dst_be, uint16_t sport, uint16_t dport,
                  const void *data, uint32_t len);
/* Ping `ip` once with sequence `seq`; true when the reply came within timeout_ms. */
bool net_ping(uint32_t ip, uint16_t seq, uint64_t timeout_ms);
/* Send a UDP datagram to ip:7 and wait for the echo. */
bool net_udp_echo(uint32_t ip, uint64_t timeout_ms);

/* smp.c: start every AP (INIT, SIPI, SIPI); true when each one ran the trampoline. */
#define TG_AP_MARK  0x9f00ul /* the APs' report: TG_AP_MAGIC, then their APIC id */
#define TG_AP_MAGIC 0xa5
bool smp_start_aps(void);

/* dhcp.c: a DHCP client (RFC 2131, options of RFC 2132) */
struct tg_lease {
    uint32_t ip, mask, router, dns, server; /* network byte order; 0 when not given */
    uint32_t seconds;                       /* lease time */
};
/* Get a lease for `mac` within timeout_ms; net_init() must have run (with ip 0). */
bool dhcp_run(const uint8_t mac[6], uint64_t timeout_ms, struct tg_lease *out);
/* A UDP payload for port 68 (called by net_poll). */
void dhcp_input(const uint8_t *msg, uint32_t len);
/* Messages dropped as malformed or unexpected so far. */
extern unsigned dhcp_ignored;

#endif
