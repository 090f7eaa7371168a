/*
 * 8250 UART at 0x3f8 (COM1, IRQ 4): enough of the chip for a polled test guest and for
 * Linux's 8250 driver (console=ttyS0).
 *
 * Transmit: bytes written to THR go to the console's fd (stdout or a socket client; -1: none),
 * line-buffered; a console that cannot take them drops them, the guest never waits. The
 * transmitter is always empty, so LSR always shows THRE|TEMT. The last VMM_SERIAL_HISTORY
 * bytes are kept, so a socket client that connects late sees the boot messages.
 * Receive: the main thread feeds console input (vmm_serial_input) into a FIFO that RBR reads
 * from; LSR.DR says it is not empty. The main thread takes only what fits (vmm_serial_rx_room),
 * so nothing is dropped: the terminal or pipe waits instead.
 * Interrupts: "received data" (IER.RDI and data waiting) has priority over "THR empty" (IER.THRI,
 * always true here); IRQ 4 is a level that follows them, set with KVM_IRQ_LINE.
 * Loopback (MCR.LOOP): THR feeds the receive FIFO, MSR mirrors MCR, as the Linux driver's
 * probe expects.
 *
 * Called on vCPU threads (register access) and the main thread (input); one mutex per UART.
 */
#include "vmm_int.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define UART_BASE 0x3f8
#define UART_IRQ  4

#define UART_LCR_DLAB  0x80
#define UART_IER_RDI   0x01
#define UART_IER_THRI  0x02
#define UART_IIR_NONE  0x01
#define UART_IIR_THRI  0x02
#define UART_IIR_RDI   0x04
#define UART_IIR_FIFO  0xc0
#define UART_FCR_CLRRX 0x02
#define UART_LSR_DR    0x01
#define UART_LSR_THRE  0x20
#define UART_LSR_TEMT  0x40
#define UART_MSR_CTS   0x10
#define UART_MSR_DSR   0x20
#define UART_MSR_RI    0x40
#define UART_MSR_DCD   0x80
#define UART_MCR_DTR   0x01
#define UART_MCR_RTS   0x02
#define UART_MCR_OUT1  0x04
#define UART_MCR_OUT2  0x08
#define UART_MCR_LOOP  0x10

struct vmm_serial {
    struct vmm *vm;
    pthread_mutex_t lock;
    int out_fd;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    bool irq_level;
    uint32_t len;
    char buf[256];
    uint32_t rx_head, rx_count; /* FIFO of rx[] */
    uint8_t rx[VMM_SERIAL_RX_MAX];
    uint64_t hist_total; /* bytes ever output; hist[] holds the last of them */
    char hist[VMM_SERIAL_HISTORY];
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* console gone or full (a non-blocking socket): drop, the guest runs on */
        p += w;
        n -= (size_t)w;
    }
}

static void flush_out(struct vmm_serial *s)
{
    for (uint32_t i = 0; i < s->len; i++)
        s->hist[(s->hist_total + i) % VMM_SERIAL_HISTORY] = s->buf[i];
    s->hist_total += s->len;
    if (s->out_fd >= 0)
        write_all(s->out_fd, s->buf, s->len);
    s->len = 0;
}

static bool rx_pending(const struct vmm_serial *s)
{
    return (s->ier & UART_IER_RDI) && s->rx_count;
}

static void update_irq(struct vmm_serial *s)
{
    bool level = rx_pending(s) || (s->ier & UART_IER_THRI);
    if (level == s->irq_level)
        return;
    s->irq_level = level;
    struct kvm_irq_level l = {.irq = UART_IRQ, .level = level};
    if (s->vm->vmfd >= 0 && ioctl(s->vm->vmfd, KVM_IRQ_LINE, &l) < 0)
        VLOG_RL(WARN, VMM_MODULE, "serial: KVM_IRQ_LINE: %m");
}

static size_t rx_push(struct vmm_serial *s, const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (; k < n && s->rx_count < VMM_SERIAL_RX_MAX; k++) {
        s->rx[(s->rx_head + s->rx_count) % VMM_SERIAL_RX_MAX] = p[k];
        s->rx_count++;
    }
    return k;
}

static uint8_t rx_pop(struct vmm_serial *s)
{
    if (!s->rx_count)
        return 0;
    uint8_t c = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % VMM_SERIAL_RX_MAX;
    s->rx_count--;
    return c;
}

static uint8_t loop_msr(uint8_t mcr)
{
    return (uint8_t)(((mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
                     ((mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
                     ((mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
                     ((mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0));
}

static uint8_t serial_read(struct vmm_serial *s, uint64_t off)
{
    bool dlab = s->lcr & UART_LCR_DLAB;
    switch (off) {
    case 0:
        return dlab ? s->dll : rx_pop(s);
    case 1:
        return dlab ? s->dlm : s->ier;
    case 2: {
        uint8_t id = rx_pending(s)              ? UART_IIR_RDI
                     : (s->ier & UART_IER_THRI) ? UART_IIR_THRI
                                                : UART_IIR_NONE;
        return (uint8_t)(((s->fcr & 1) ? UART_IIR_FIFO : 0) | id);
    }
    case 3:
        return s->lcr;
    case 4:
        return s->mcr;
    case 5:
        return (uint8_t)(UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0));
    case 6:
        return (s->mcr & UART_MCR_LOOP) ? loop_msr(s->mcr)
                                        : (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
    default:
        return s->scr;
    }
}

static void serial_write(struct vmm_serial *s, uint64_t off, uint8_t v)
{
    bool dlab = s->lcr & UART_LCR_DLAB;
    switch (off) {
    case 0:
        if (dlab) {
            s->dll = v;
        } else if (s->mcr & UART_MCR_LOOP) {
            rx_push(s, &v, 1); /* a full FIFO drops it, as an overrun would */
        } else {
            s->buf[s->len++] = (char)v;
            if (v == '\n' || s->len == sizeof(s->buf))
                flush_out(s);
        }
        break;
    case 1:
        if (dlab)
            s->dlm = v;
        else
            s->ier = v & 0x0f;
        break;
    case 2:
        s->fcr = v;
        if (v & UART_FCR_CLRRX)
            s->rx_head = s->rx_count = 0;
        break;
    case 3:
        s->lcr = v;
        break;
    case 4:
        s->mcr = v & 0x1f;
        break;
    case 7:
        s->scr = v;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
}

static void serial_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct vmm_serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < len && off + i < 8; i++) {
        if (is_write)
            serial_write(s, off + i, data[i]);
        else
            data[i] = serial_read(s, off + i);
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

void vmm_serial_set_output(struct vmm_serial *s, int fd, bool replay)
{
    pthread_mutex_lock(&s->lock);
    if (s->len)
        flush_out(s); /* what the old console should have had */
    s->out_fd = fd;
    if (fd >= 0 && replay) {
        uint64_t n = s->hist_total < VMM_SERIAL_HISTORY ? s->hist_total : VMM_SERIAL_HISTORY;
        uint64_t start = (s->hist_total - n) % VMM_SERIAL_HISTORY;
        uint64_t first = n < VMM_SERIAL_HISTORY - start ? n : VMM_SERIAL_HISTORY - start;
        write_all(fd, s->hist + start, (size_t)first);
        write_all(fd, s->hist, (size_t)(n - first));
    }
    pthread_mutex_unlock(&s->lock);
}

size_t vmm_serial_rx_room(struct vmm_serial *s)
{
    pthread_mutex_lock(&s->lock);
    size_t room = VMM_SERIAL_RX_MAX - s->rx_count;
    pthread_mutex_unlock(&s->lock);
    return room;
}

size_t vmm_serial_input(struct vmm_serial *s, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&s->lock);
    size_t k = rx_push(s, p, n);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return k;
}

bool vmm_serial_irq(struct vmm_serial *s)
{
    pthread_mutex_lock(&s->lock);
    bool level = s->irq_level;
    pthread_mutex_unlock(&s->lock);
    return level;
}

int vmm_console_escape(struct vmm_console_esc *e, uint8_t *buf, size_t *n)
{
    size_t out = 0;
    for (size_t i = 0; i < *n; i++) {
        uint8_t c = buf[i];
        if (e->armed) {
            e->armed = false;
            if (c == 'x' || c == 'X') {
                *n = out;
                return 1;
            }
            if (c == VMM_CONSOLE_ESC)
                buf[out++] = c; /* Ctrl-A Ctrl-A: one Ctrl-A for the guest */
            /* Ctrl-A and anything else: both dropped (unknown command) */
        } else if (c == VMM_CONSOLE_ESC) {
            e->armed = true;
        } else {
            buf[out++] = c;
        }
    }
    *n = out;
    return 0;
}

struct vmm_serial *vmm_serial_create(struct vmm *vm, int out_fd)
{
    struct vmm_serial *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->vm = vm;
    s->out_fd = out_fd;
    pthread_mutex_init(&s->lock, NULL);
    int rc = vmm_bus_add(&vm->pio, UART_BASE, 8, serial_io, s, "uart");
    if (rc < 0) {
        free(s);
        errno = -rc;
        return NULL;
    }
    return s;
}

/* After the vCPUs stopped: write out a last unterminated line. */
void vmm_serial_destroy(struct vmm_serial *s)
{
    if (!s)
        return;
    if (s->len)
        flush_out(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
