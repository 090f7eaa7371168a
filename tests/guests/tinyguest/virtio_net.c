/*
 * tinyguest: polled virtio-net driver for the virtio-mmio transport (modern registers,
 * virtio 1.2 sections 4.2 and 5.1). One RX and one TX queue of QN entries, rings and buffers
 * in .bss (identity-mapped, so guest-virtual = guest-physical). No interrupts: the driver
 * sets VRING_AVAIL_F_NO_INTERRUPT and polls the used rings.
 */
#include "tg.h"

#define QN       16
#define BUF_SIZE 2048
#define HDR_LEN  12 /* struct virtio_net_hdr_v1 with VIRTIO_F_VERSION_1 */

#define R_MAGIC     0x000
#define R_VERSION   0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT  0x010
#define R_DEV_FSEL  0x014
#define R_DRV_FEAT  0x020
#define R_DRV_FSEL  0x024
#define R_QSEL      0x030
#define R_QNUM_MAX  0x034
#define R_QNUM      0x038
#define R_QREADY    0x044
#define R_QNOTIFY   0x050
#define R_STATUS    0x070
#define R_QDESC     0x080
#define R_QDRIVER   0x090
#define R_QDEVICE   0x0a0
#define R_CONFIG    0x100

#define S_ACK         1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8

#define F_MAC_BIT      5
#define F_VERSION1_HI  (1u << 0) /* bit 32 */
#define DESC_F_WRITE   2
#define AVAIL_F_NO_INT 1

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct avail {
    uint16_t flags, idx, ring[QN], used_event;
};

struct used_elem {
    uint32_t id, len;
};

struct used {
    uint16_t flags, idx;
    struct used_elem ring[QN];
    uint16_t avail_event;
};

struct vq {
    struct desc desc[QN] __attribute__((aligned(16)));
    struct avail avail __attribute__((aligned(2)));
    struct used used __attribute__((aligned(4)));
    uint16_t avail_idx, last_used;
};

static struct vq rxq __attribute__((aligned(4096)));
static struct vq txq __attribute__((aligned(4096)));
static uint8_t rx_buf[QN][BUF_SIZE] __attribute__((aligned(64)));
static uint8_t tx_buf[QN][BUF_SIZE] __attribute__((aligned(64)));
static uint64_t mmio;

static uint16_t load16(volatile uint16_t *p)
{
    barrier();
    uint16_t v = *p;
    barrier();
    return v;
}

static bool setup_queue(unsigned idx, struct vq *q)
{
    mmio_write32(mmio + R_QSEL, idx);
    if (mmio_read32(mmio + R_QREADY) != 0 || mmio_read32(mmio + R_QNUM_MAX) < QN)
        return false;
    mmio_write32(mmio + R_QNUM, QN);
    mmio_write32(mmio + R_QDESC, (uint32_t)(uint64_t)q->desc);
    mmio_write32(mmio + R_QDESC + 4, (uint32_t)((uint64_t)q->desc >> 32));
    mmio_write32(mmio + R_QDRIVER, (uint32_t)(uint64_t)&q->avail);
    mmio_write32(mmio + R_QDRIVER + 4, (uint32_t)((uint64_t)&q->avail >> 32));
    mmio_write32(mmio + R_QDEVICE, (uint32_t)(uint64_t)&q->used);
    mmio_write32(mmio + R_QDEVICE + 4, (uint32_t)((uint64_t)&q->used >> 32));
    q->avail.flags = AVAIL_F_NO_INT;
    mmio_write32(mmio + R_QREADY, 1);
    return mmio_read32(mmio + R_QREADY) == 1;
}

bool vnet_init(uint64_t base, uint8_t mac[6])
{
    mmio = base;
    if (mmio_read32(mmio + R_MAGIC) != 0x74726976 || mmio_read32(mmio + R_VERSION) != 2 ||
        mmio_read32(mmio + R_DEVICE_ID) != 1) {
        puts_("vnet: no modern virtio-net device at ");
        put_hex(base);
        puts_("\n");
        return false;
    }
    mmio_write32(mmio + R_STATUS, 0);
    mmio_write32(mmio + R_STATUS, S_ACK);
    mmio_write32(mmio + R_STATUS, S_ACK | S_DRIVER);
    mmio_write32(mmio + R_DEV_FSEL, 0);
    uint32_t lo = mmio_read32(mmio + R_DEV_FEAT);
    mmio_write32(mmio + R_DEV_FSEL, 1);
    uint32_t hi = mmio_read32(mmio + R_DEV_FEAT);
    if (!(hi & F_VERSION1_HI))
        return false;
    mmio_write32(mmio + R_DRV_FSEL, 0);
    mmio_write32(mmio + R_DRV_FEAT, lo & (1u << F_MAC_BIT));
    mmio_write32(mmio + R_DRV_FSEL, 1);
    mmio_write32(mmio + R_DRV_FEAT, F_VERSION1_HI);
    mmio_write32(mmio + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(mmio_read32(mmio + R_STATUS) & S_FEATURES_OK)) {
        puts_("vnet: features refused\n");
        return false;
    }
    if (!setup_queue(0, &rxq) || !setup_queue(1, &txq)) {
        puts_("vnet: queue set-up failed\n");
        return false;
    }
    for (unsigned i = 0; i < QN; i++) {
        rxq.desc[i] = (struct desc){(uint64_t)rx_buf[i], BUF_SIZE, DESC_F_WRITE, 0};
        rxq.avail.ring[i] = (uint16_t)i;
    }
    rxq.avail_idx = QN;
    barrier();
    rxq.avail.idx = QN;
    if (lo & (1u << F_MAC_BIT)) {
        for (unsigned i = 0; i < 6; i++)
            mac[i] = *(volatile uint8_t *)(mmio + R_CONFIG + i);
    }
    mmio_write32(mmio + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    if (mmio_read32(mmio + R_STATUS) != (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)) {
        puts_("vnet: device did not start, status ");
        put_hex(mmio_read32(mmio + R_STATUS));
        puts_("\n");
        return false;
    }
    mmio_write32(mmio + R_QNOTIFY, 0);
    return true;
}

bool vnet_send(const void *frame, uint32_t len)
{
    if (len > BUF_SIZE - HDR_LEN)
        return false;
    uint64_t start = now_ms();
    while ((uint16_t)(txq.avail_idx - load16(&txq.used.idx)) >= QN) {
        if (now_ms() - start > 1000)
            return false;
    }
    uint16_t slot = txq.avail_idx % QN;
    memset(tx_buf[slot], 0, HDR_LEN);
    memcpy(tx_buf[slot] + HDR_LEN, frame, len);
    txq.desc[slot] = (struct desc){(uint64_t)tx_buf[slot], HDR_LEN + len, 0, 0};
    txq.avail.ring[slot] = slot;
    txq.avail_idx++;
    barrier();
    txq.avail.idx = txq.avail_idx;
    mb();
    mmio_write32(mmio + R_QNOTIFY, 1);
    return true;
}

uint32_t vnet_recv(void *buf, uint32_t cap)
{
    if (rxq.last_used == load16(&rxq.used.idx))
        return 0;
    struct used_elem e = rxq.used.ring[rxq.last_used % QN];
    rxq.last_used++;
    uint32_t n = 0;
    if (e.id < QN && e.len > HDR_LEN && e.len <= BUF_SIZE) {
        n = e.len - HDR_LEN;
        if (n > cap)
            n = 0;
        else
            memcpy(buf, rx_buf[e.id] + HDR_LEN, n);
    }
    if (e.id < QN) {
        rxq.avail.ring[rxq.avail_idx % QN] = (uint16_t)e.id;
        rxq.avail_idx++;
        barrier();
        rxq.avail.idx = rxq.avail_idx;
        mb();
        mmio_write32(mmio + R_QNOTIFY, 0);
    }
    return n;
}

/*
 * Hostile driver (evil=1): what a buggy or malicious guest might do to the VMM. Each step
 * must be refused without harm; then a reset must give a working device again.
 */
bool vnet_abuse(uint64_t base)
{
    bool ok = true;
    mmio = base;
    /* Ports and MMIO nobody owns. */
    outb(0x510, 0x5a);
    (void)inb(0x511);
    mmio_write32(0xd0800000, 0xdeadbeef);
    (void)mmio_read32(0xd0800004);
    /* Narrow register accesses. */
    *(volatile uint8_t *)(mmio + R_STATUS) = S_ACK;
    (void)*(volatile uint16_t *)(mmio + R_MAGIC);
    /* Queue set-up before features, DRIVER_OK before FEATURES_OK. */
    mmio_write32(mmio + R_STATUS, 0);
    mmio_write32(mmio + R_STATUS, S_ACK | S_DRIVER);
    mmio_write32(mmio + R_QSEL, 0);
    mmio_write32(mmio + R_QNUM, QN);
    mmio_write32(mmio + R_QREADY, 1);
    if (mmio_read32(mmio + R_QREADY) != 0)
        ok = false;
    mmio_write32(mmio + R_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
    if (mmio_read32(mmio + R_STATUS) & S_DRIVER_OK)
        ok = false;
    /* A queue far outside guest memory must fail the device (DEVICE_NEEDS_RESET). */
    mmio_write32(mmio + R_DRV_FSEL, 1);
    mmio_write32(mmio + R_DRV_FEAT, F_VERSION1_HI);
    mmio_write32(mmio + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    mmio_write32(mmio + R_QSEL, 0);
    mmio_write32(mmio + R_QNUM, QN);
    mmio_write32(mmio + R_QDESC, 0x7fff0000);
    mmio_write32(mmio + R_QDESC + 4, 0x12);
    mmio_write32(mmio + R_QREADY, 1);
    uint32_t st = mmio_read32(mmio + R_STATUS);
    if (mmio_read32(mmio + R_QREADY) != 0 || !(st & 0x40))
        ok = false;
    mmio_write32(mmio + R_QNOTIFY, 77); /* no such queue */
    mmio_write32(mmio + R_STATUS, 0);
    if (mmio_read32(mmio + R_STATUS) != 0)
        ok = false;
    puts_("evil: hostile accesses done, device status after bad queue ");
    put_hex(st);
    puts_(ok ? ", refused as expected\n" : ", NOT refused\n");
    return ok;
}
