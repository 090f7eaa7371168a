/*
 * virtio-mmio transport, modern (version 2) registers only (virtio 1.2, 4.2). Runs on vCPU
 * threads with one mutex per transport. The register state machine follows the spec's driver
 * initialization sequence (3.1.1); a write that is out of order (features after
 * FEATURES_OK, queue set-up before FEATURES_OK or after DRIVER_OK, status bits cleared other
 * than by a reset) is logged rate-limited and ignored. A queue whose size or addresses are
 * bad (not a power of two, misaligned, outside guest RAM) fails the device: it sets
 * DEVICE_NEEDS_RESET and does nothing until the driver resets it.
 *
 * Notifications bypass this file: QueueNotify is a KVM ioeventfd (the guest's kick goes to
 * the backend directly) and the device's call eventfd is a KVM irqfd. Since the backend
 * raises the interrupt without us, InterruptStatus reads "used buffer" whenever the device
 * runs (Firecracker does the same for vhost-user); drivers tolerate the spurious bit.
 */
#include "virtio.h"
#include "vu_proto.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MOD "virtio-mmio"

const char *const virtio_mmio_error_names[VIRTIO_MMIO_ERR_MAX] = {
#define VIRTIO_MMIO_ERR_NAME(e, s) [VIRTIO_MMIO_ERR_##e] = s,
    VIRTIO_MMIO_ERRORS(VIRTIO_MMIO_ERR_NAME)
#undef VIRTIO_MMIO_ERR_NAME
};

struct virtio_mmio {
    struct vmm *vm;
    struct virtio_dev *dev;
    uint64_t base;
    uint32_t gsi;
    pthread_mutex_t lock;
    uint32_t status;
    uint32_t dev_features_sel, drv_features_sel;
    uint64_t drv_features;
    uint32_t queue_sel;
    bool failed;
    bool ioeventfd_set[VIRTIO_MAX_QUEUES];
    bool irqfd_set;
    struct virtio_queue_cfg q[VIRTIO_MAX_QUEUES];
    uint64_t errors[VIRTIO_MMIO_ERR_MAX]; /* under lock */
};

/* Count a driver error (transport lock held). */
#define BAD(t, e) ((t)->errors[VIRTIO_MMIO_ERR_##e]++)

static void set_needs_reset(struct virtio_mmio *t, enum virtio_mmio_error err, const char *why)
{
    t->errors[err]++;
    VLOG_RL(WARN, MOD, "device at %#llx failed: %s (needs reset)", (unsigned long long)t->base,
            why);
    t->failed = true;
    t->status |= VIRTIO_STATUS_NEEDS_RESET;
}

static void do_reset(struct virtio_mmio *t)
{
    if (t->status & VIRTIO_STATUS_DRIVER_OK)
        t->dev->ops->reset(t->dev->opaque);
    t->status = 0;
    t->dev_features_sel = t->drv_features_sel = 0;
    t->drv_features = 0;
    t->queue_sel = 0;
    t->failed = false;
    memset(t->q, 0, sizeof(t->q));
}

static struct virtio_queue_cfg *cur_queue(struct virtio_mmio *t)
{
    return t->queue_sel < t->dev->num_queues ? &t->q[t->queue_sel] : NULL;
}

/* Queue registers may be written between FEATURES_OK and DRIVER_OK, on a queue not ready. */
static struct virtio_queue_cfg *writable_queue(struct virtio_mmio *t, const char *reg)
{
    struct virtio_queue_cfg *q = cur_queue(t);
    if (!q) {
        BAD(t, NO_QUEUE);
        VLOG_RL(WARN, MOD, "%s for queue %u, which does not exist", reg, t->queue_sel);
        return NULL;
    }
    if (!(t->status & VIRTIO_STATUS_FEATURES_OK) || (t->status & VIRTIO_STATUS_DRIVER_OK) ||
        q->ready) {
        BAD(t, SEQUENCE);
        VLOG_RL(WARN, MOD, "%s for queue %u in status %#x%s: ignored", reg, t->queue_sel, t->status,
                q->ready ? " (queue ready)" : "");
        return NULL;
    }
    return q;
}

static bool ring_ok(struct virtio_mmio *t, uint64_t gpa, uint64_t len, uint64_t align)
{
    return gpa % align == 0 && vmm_mem_ptr(&t->vm->mem, gpa, len) != NULL;
}

static void queue_set_ready(struct virtio_mmio *t, struct virtio_queue_cfg *q, uint32_t v)
{
    if (v == 0)
        return; /* already not ready (writable_queue checked) */
    uint64_t n = q->num;
    if (n == 0 || n > t->dev->queue_max || (n & (n - 1))) {
        set_needs_reset(t, VIRTIO_MMIO_ERR_BAD_RING,
                        "queue size is not a power of two within the maximum");
        return;
    }
    if (!ring_ok(t, q->desc, 16 * n, 16) || !ring_ok(t, q->driver, 6 + 2 * n, 2) ||
        !ring_ok(t, q->device, 6 + 8 * n, 4)) {
        set_needs_reset(t, VIRTIO_MMIO_ERR_BAD_RING,
                        "queue addresses misaligned or outside guest memory");
        return;
    }
    q->ready = true;
}

static void set_status(struct virtio_mmio *t, uint32_t v)
{
    if (v == 0) {
        do_reset(t);
        return;
    }
    v &= 0xff; /* the status register is 8 bits wide */
    if (t->status & ~v) {
        BAD(t, SEQUENCE);
        VLOG_RL(WARN, MOD, "status %#x clears bits of %#x without a reset: ignored", v, t->status);
        return;
    }
    uint32_t added = v & ~t->status;
    if (t->failed && (added & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK))) {
        BAD(t, SEQUENCE);
        VLOG_RL(WARN, MOD, "status %#x on a failed device: ignored", v);
        return;
    }
    if (added & VIRTIO_STATUS_FEATURES_OK) {
        uint64_t offered = t->dev->ops->features(t->dev->opaque);
        if (!(v & VIRTIO_STATUS_DRIVER) || (t->drv_features & ~offered) ||
            !(t->drv_features & (1ull << VIRTIO_F_VERSION_1))) {
            BAD(t, FEATURES);
            VLOG_RL(WARN, MOD, "features %#llx not acceptable (offered %#llx, VERSION_1 needed)",
                    (unsigned long long)t->drv_features, (unsigned long long)offered);
            v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back and gives up */
        }
    }
    if ((added & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
        BAD(t, SEQUENCE);
        VLOG_RL(WARN, MOD, "DRIVER_OK without FEATURES_OK: ignored");
        v &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
    }
    t->status = v;
    if (added & VIRTIO_STATUS_DRIVER_OK & v) {
        int rc = t->dev->ops->activate(t->dev->opaque, t->drv_features, t->q, t->dev->num_queues);
        if (rc < 0) {
            t->status &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
            set_needs_reset(t, VIRTIO_MMIO_ERR_BACKEND, "the backend could not start");
        }
    }
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
    struct virtio_queue_cfg *q = cur_queue(t);
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION:
        return 2;
    case VIRTIO_MMIO_DEVICE_ID:
        return t->dev->device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        if (t->dev_features_sel > 1)
            return 0;
        return (uint32_t)(t->dev->ops->features(t->dev->opaque) >> (32 * t->dev_features_sel));
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return q ? t->dev->queue_max : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return (t->status & VIRTIO_STATUS_DRIVER_OK) ? VIRTIO_MMIO_INT_VRING : 0;
    case VIRTIO_MMIO_STATUS:
        return t->status;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return 0;
    case VIRTIO_MMIO_QUEUE_SEL:
        return t->queue_sel;
    default:
        BAD(t, BAD_REGISTER);
        VLOG_RL(INFO, MOD, "read of register %#llx (write-only or unknown): 0",
                (unsigned long long)off);
        return 0;
    }
}

static void set_half(uint64_t *r, uint32_t v, bool high)
{
    if (high)
        *r = (*r & 0xffffffffull) | ((uint64_t)v << 32);
    else
        *r = (*r & ~0xffffffffull) | v;
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
    struct virtio_queue_cfg *q;
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        t->dev_features_sel = v;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        t->drv_features_sel = v;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (!(t->status & VIRTIO_STATUS_DRIVER) || (t->status & VIRTIO_STATUS_FEATURES_OK)) {
            BAD(t, SEQUENCE);
            VLOG_RL(WARN, MOD, "driver features written in status %#x: ignored", t->status);
            break;
        }
        if (t->drv_features_sel <= 1)
            set_half(&t->drv_features, v, t->drv_features_sel == 1);
        else if (v) {
            BAD(t, FEATURES);
            VLOG_RL(INFO, MOD, "driver features word %u = %#x: no such features",
                    t->drv_features_sel, v);
        }
        break;
    case VIRTIO_MMIO_QUEUE_SEL:
        t->queue_sel = v;
        break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if ((q = writable_queue(t, "QueueNum")))
            q->num = (uint16_t)MIN(v, 0xffffu);
        if (q && v > 0xffff)
            q->num = 0; /* fails at QueueReady */
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if ((q = writable_queue(t, "QueueReady")))
            queue_set_ready(t, q, v);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if ((q = writable_queue(t, "QueueDesc")))
            set_half(&q->desc, v, off == VIRTIO_MMIO_QUEUE_DESC_HIGH);
        break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        if ((q = writable_queue(t, "QueueDriver")))
            set_half(&q->driver, v, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH);
        break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        if ((q = writable_queue(t, "QueueDevice")))
            set_half(&q->device, v, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Valid indices are ioeventfds and never get here (except without KVM, in tests). */
        if (v >= t->dev->num_queues) {
            BAD(t, NO_QUEUE);
            VLOG_RL(WARN, MOD, "notify for queue %u, which does not exist", v);
        }
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        break; /* the status is a constant while the backend raises the interrupts */
    case VIRTIO_MMIO_STATUS:
        set_status(t, v);
        break;
    default:
        BAD(t, BAD_REGISTER);
        VLOG_RL(INFO, MOD, "write %#x to register %#llx (read-only or unknown): ignored", v,
                (unsigned long long)off);
        break;
    }
}

void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
                        bool is_write)
{
    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t coff = off - VIRTIO_MMIO_CONFIG;
        if (coff >= t->dev->config_size || len > t->dev->config_size - coff) {
            BAD(t, CONFIG);
            VLOG_RL(INFO, MOD, "config access at %#llx len %u beyond the config space",
                    (unsigned long long)coff, len);
            if (!is_write)
                memset(data, 0, len);
        } else if (is_write) {
            BAD(t, CONFIG);
            VLOG_RL(INFO, MOD, "config write at %#llx: read-only, ignored",
                    (unsigned long long)coff);
        } else {
            t->dev->ops->config_read(t->dev->opaque, (uint32_t)coff, data, len);
        }
    } else if (len != 4 || off % 4) {
        BAD(t, UNALIGNED);
        VLOG_RL(WARN, MOD, "register access at %#llx len %u is not an aligned 32-bit access",
                (unsigned long long)off, len);
        if (!is_write)
            memset(data, 0xff, len);
    } else if (is_write) {
        uint32_t v;
        memcpy(&v, data, 4);
        reg_write(t, off, v);
    } else {
        uint32_t v = reg_read(t, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&t->lock);
}

static void mmio_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    virtio_mmio_access(opaque, off, data, len, is_write);
}

uint32_t virtio_mmio_status(struct virtio_mmio *t)
{
    pthread_mutex_lock(&t->lock);
    uint32_t s = t->status;
    pthread_mutex_unlock(&t->lock);
    return s;
}

void virtio_mmio_errors(struct virtio_mmio *t, uint64_t out[VIRTIO_MMIO_ERR_MAX])
{
    pthread_mutex_lock(&t->lock);
    memcpy(out, t->errors, sizeof(t->errors));
    pthread_mutex_unlock(&t->lock);
}

static int kvm_ioeventfd(struct virtio_mmio *t, unsigned qi, bool assign)
{
    struct kvm_ioeventfd io = {
        .datamatch = qi,
        .addr = t->base + VIRTIO_MMIO_QUEUE_NOTIFY,
        .len = 4,
        .fd = t->dev->kick_fd[qi],
        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    return ioctl(t->vm->vmfd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int kvm_irqfd(struct virtio_mmio *t, bool assign)
{
    struct kvm_irqfd irq = {
        .fd = (uint32_t)t->dev->call_fd,
        .gsi = t->gsi,
        .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };
    return ioctl(t->vm->vmfd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

struct virtio_mmio *virtio_mmio_create(struct vmm *vm, uint64_t base, uint32_t gsi,
                                       struct virtio_dev *dev)
{
    int rc = -EINVAL;
    struct virtio_mmio *t = calloc(1, sizeof(*t));
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    t->vm = vm;
    t->dev = dev;
    t->base = base;
    t->gsi = gsi;
    pthread_mutex_init(&t->lock, NULL);
    if (dev->num_queues > VIRTIO_MAX_QUEUES || dev->config_size > VMM_MMIO_SIZE - 0x100)
        goto fail;
    if (vm->vmfd >= 0) {
        for (unsigned i = 0; i < dev->num_queues; i++) {
            if ((rc = kvm_ioeventfd(t, i, true)) < 0) {
                VLOG(ERR, MOD, "KVM_IOEVENTFD: %s", strerror(-rc));
                goto fail;
            }
            t->ioeventfd_set[i] = true;
        }
        if ((rc = kvm_irqfd(t, true)) < 0) {
            VLOG(ERR, MOD, "KVM_IRQFD: %s", strerror(-rc));
            goto fail;
        }
        t->irqfd_set = true;
    }
    if ((rc = vmm_bus_add(&vm->mmio, base, VMM_MMIO_SIZE, mmio_io, t, "virtio-mmio")) < 0)
        goto fail;
    return t;
fail:
    virtio_mmio_destroy(t);
    errno = -rc;
    return NULL;
}

/* After the vCPUs stopped (the bus entry stays; nothing calls it any more). */
void virtio_mmio_destroy(struct virtio_mmio *t)
{
    if (!t)
        return;
    do_reset(t);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        if (t->ioeventfd_set[i])
            kvm_ioeventfd(t, i, false);
    }
    if (t->irqfd_set)
        kvm_irqfd(t, false);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
