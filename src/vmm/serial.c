/*
 * 8250 UART at 0x3f8 (COM1, IRQ 4): enough of the chip for a polled test guest and for
 * Linux's 8250 driver (console=ttyS0). Transmit only: bytes written to THR go to an fd
 * (stdout), line-buffered. The transmitter is always empty, so LSR always shows THRE|TEMT
 * and "THR empty" is the only interrupt; the line follows IER.THRI as a level.
 * Called on vCPU threads; one mutex per UART.
 */
#include "vmm_int.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define UART_BASE 0x3f8
#define UART_IRQ  4

#define UART_LCR_DLAB 0x80
#define UART_IER_THRI 0x02
#define UART_IIR_NONE 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_FIFO 0xc0
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_MSR_DCD  0x80
#define UART_MSR_DSR  0x20
#define UART_MSR_CTS  0x10
#define UART_MCR_LOOP 0x10

struct vmm_serial {
    struct vmm *vm;
    pthread_mutex_t lock;
    int out_fd;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    bool irq_level;
    uint32_t len;
    char buf[256];
};

static void flush_out(struct vmm_serial *s)
{
    const char *p = s->buf;
    uint32_t n = s->len;
    while (n > 0) {
        ssize_t w = write(s->out_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* console gone: drop output, the guest keeps running */
        p += w;
        n -= (uint32_t)w;
    }
    s->len = 0;
}

static void update_irq(struct vmm_serial *s)
{
    bool level = (s->ier & UART_IER_THRI) != 0;
    if (level == s->irq_level)
        return;
    s->irq_level = level;
    struct kvm_irq_level l = {.irq = UART_IRQ, .level = level};
    if (s->vm->vmfd >= 0 && ioctl(s->vm->vmfd, KVM_IRQ_LINE, &l) < 0)
        VLOG_RL(WARN, VMM_MODULE, "serial: KVM_IRQ_LINE: %m");
}

static uint8_t serial_read(struct vmm_serial *s, uint64_t off)
{
    bool dlab = s->lcr & UART_LCR_DLAB;
    switch (off) {
    case 0:
        return dlab ? s->dll : 0; /* no input */
    case 1:
        return dlab ? s->dlm : s->ier;
    case 2:
        return (uint8_t)(((s->fcr & 1) ? UART_IIR_FIFO : 0) |
                         ((s->ier & UART_IER_THRI) ? UART_IIR_THRI : UART_IIR_NONE));
    case 3:
        return s->lcr;
    case 4:
        return s->mcr;
    case 5:
        return UART_LSR_THRE | UART_LSR_TEMT;
    case 6:
        return (s->mcr & UART_MCR_LOOP) ? 0 : (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
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
        } else if (!(s->mcr & UART_MCR_LOOP)) {
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
