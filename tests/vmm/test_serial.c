/*
 * The 8250 UART model (src/vmm/serial.c) through the port-I/O bus, without KVM (vmfd -1): the
 * transmit side into a pipe, the receive FIFO fed as the console does, LSR.DR, IIR priorities,
 * the IRQ 4 level, DLAB, FIFO clear, loopback, and the terminal's Ctrl-A escape.
 */
#include "vmm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define COM1 0x3f8
enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct env {
    struct vmm vm;
    struct vmm_serial *s;
    int pipe[2]; /* transmit side: [0] is what the console would print */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->vm.vmfd = -1;
    assert_int_equal(pipe2(e->pipe, O_NONBLOCK), 0);
    e->s = vmm_serial_create(&e->vm, e->pipe[1]);
    assert_non_null(e->s);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    vmm_serial_destroy(e->s);
    close(e->pipe[0]);
    close(e->pipe[1]);
    free(e);
    return 0;
}

static uint8_t rd(struct env *e, unsigned reg)
{
    uint8_t v = 0;
    assert_true(vmm_bus_access(&e->vm.pio, "pio", COM1 + reg, &v, 1, false));
    return v;
}

static void wr(struct env *e, unsigned reg, uint8_t v)
{
    assert_true(vmm_bus_access(&e->vm.pio, "pio", COM1 + reg, &v, 1, true));
}

static void test_transmit(void **state)
{
    struct env *e = *state;
    char out[64];
    assert_int_equal(rd(e, LSR) & 0x61, 0x60); /* THRE|TEMT, no data */
    for (const char *p = "hi\n"; *p; p++)
        wr(e, RBR, (uint8_t)*p);
    assert_int_equal(read(e->pipe[0], out, sizeof(out)), 3);
    assert_memory_equal(out, "hi\n", 3);
    /* Line-buffered: an unterminated line waits (until the UART goes away). */
    wr(e, RBR, 'x');
    assert_int_equal(read(e->pipe[0], out, sizeof(out)), -1);
}

static void test_receive(void **state)
{
    struct env *e = *state;
    assert_int_equal(vmm_serial_rx_room(e->s), VMM_SERIAL_RX_MAX);
    assert_int_equal(vmm_serial_input(e->s, (const uint8_t *)"ab", 2), 2);
    assert_int_equal(vmm_serial_rx_room(e->s), VMM_SERIAL_RX_MAX - 2);
    assert_int_equal(rd(e, LSR) & 1, 1);
    assert_int_equal(rd(e, RBR), 'a');
    assert_int_equal(rd(e, LSR) & 1, 1);
    assert_int_equal(rd(e, RBR), 'b');
    assert_int_equal(rd(e, LSR) & 1, 0);
    assert_int_equal(rd(e, RBR), 0); /* empty: nothing new */

    /* A full FIFO takes what fits; the rest stays with the caller, in order. */
    uint8_t big[VMM_SERIAL_RX_MAX + 10];
    for (unsigned i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    assert_int_equal(vmm_serial_input(e->s, big, sizeof(big)), VMM_SERIAL_RX_MAX);
    assert_int_equal(vmm_serial_rx_room(e->s), 0);
    assert_int_equal(vmm_serial_input(e->s, big, 1), 0);
    for (unsigned i = 0; i < VMM_SERIAL_RX_MAX; i++)
        assert_int_equal(rd(e, RBR), (uint8_t)i);
    assert_int_equal(rd(e, LSR) & 1, 0);
    /* The FIFO wraps around. */
    assert_int_equal(vmm_serial_input(e->s, (const uint8_t *)"xyz", 3), 3);
    assert_int_equal(rd(e, RBR), 'x');
    /* FCR bit 1 clears it. */
    wr(e, FCR, 0x03);
    assert_int_equal(rd(e, LSR) & 1, 0);
    assert_int_equal(rd(e, IIR) & 0xc0, 0xc0); /* FIFOs enabled */
}

static void test_interrupts(void **state)
{
    struct env *e = *state;
    /* Nothing enabled: no interrupt whatever happens. */
    assert_int_equal(rd(e, IIR) & 0x0f, 0x01);
    vmm_serial_input(e->s, (const uint8_t *)"q", 1);
    assert_int_equal(rd(e, IIR) & 0x0f, 0x01);
    assert_false(vmm_serial_irq(e->s));
    /* RDI with data waiting: IIR says "received data", the line is up. */
    wr(e, IER, 0x01);
    assert_int_equal(rd(e, IIR) & 0x0f, 0x04);
    assert_true(vmm_serial_irq(e->s));
    /* It has priority over THR empty. */
    wr(e, IER, 0x03);
    assert_int_equal(rd(e, IIR) & 0x0f, 0x04);
    /* Read empty: THR empty remains. */
    assert_int_equal(rd(e, RBR), 'q');
    assert_int_equal(rd(e, IIR) & 0x0f, 0x02);
    assert_true(vmm_serial_irq(e->s));
    /* RDI only and nothing waiting: the line drops; input raises it again from the main
     * thread's side (vmm_serial_input), not only on a register access. */
    wr(e, IER, 0x01);
    assert_int_equal(rd(e, IIR) & 0x0f, 0x01);
    assert_false(vmm_serial_irq(e->s));
    vmm_serial_input(e->s, (const uint8_t *)"r", 1);
    assert_true(vmm_serial_irq(e->s));
    assert_int_equal(rd(e, RBR), 'r');
    assert_false(vmm_serial_irq(e->s));
    /* IER keeps only its 4 defined bits. */
    wr(e, IER, 0xff);
    assert_int_equal(rd(e, IER), 0x0f);
}

static void test_dlab_and_loopback(void **state)
{
    struct env *e = *state;
    char out[8];
    vmm_serial_input(e->s, (const uint8_t *)"k", 1);
    /* With DLAB, offsets 0 and 1 are the divisor: the FIFO is not touched. */
    wr(e, LCR, 0x83);
    wr(e, RBR, 0x01);
    wr(e, IER, 0x00);
    assert_int_equal(rd(e, RBR), 0x01);
    assert_int_equal(rd(e, IER), 0x00);
    wr(e, LCR, 0x03);
    assert_int_equal(rd(e, LCR), 0x03);
    assert_int_equal(rd(e, RBR), 'k');
    /* Loopback: THR goes to RBR, not to the console; MSR mirrors MCR. */
    wr(e, MCR, 0x10 | 0x0f);
    assert_int_equal(rd(e, MSR) & 0xf0, 0xf0);
    wr(e, MCR, 0x10 | 0x01);
    assert_int_equal(rd(e, MSR) & 0xf0, 0x20);
    wr(e, RBR, 0x5a);
    assert_int_equal(rd(e, LSR) & 1, 1);
    assert_int_equal(rd(e, RBR), 0x5a);
    wr(e, MCR, 0x0b);
    assert_int_equal(rd(e, MSR) & 0xb0, 0xb0); /* DCD DSR CTS: a cable is there */
    assert_int_equal(read(e->pipe[0], out, sizeof(out)), -1);
    wr(e, SCR, 0x77);
    assert_int_equal(rd(e, SCR), 0x77);
    /* A 2-byte access covers two registers; beyond the UART's 8 ports nobody answers. */
    uint8_t two[2] = {0, 0};
    assert_true(vmm_bus_access(&e->vm.pio, "pio", COM1 + 3, two, 2, false));
    assert_int_equal(two[0], 0x03);
    assert_false(vmm_bus_access(&e->vm.pio, "pio", COM1 + 7, two, 2, false));
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        int quit;
        bool armed_after;
    } cases[] = {
        {"plain", "plain", 0, false},
        {"ab\x01xcd", "ab", 1, false},
        {"\x01X", "", 1, false},
        {"a\x01\x01"
         "b",
         "a\x01"
         "b",
         0, false},
        {"a\x01z"
         "b",
         "ab", 0, false},
        {"tail\x01", "tail", 0, true},
        {"\x03\x04", "\x03\x04", 0, false}, /* Ctrl-C, Ctrl-D go to the guest */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vmm_console_esc esc = {0};
        uint8_t buf[32];
        size_t n = strlen(cases[i].in);
        memcpy(buf, cases[i].in, n);
        assert_int_equal(vmm_console_escape(&esc, buf, &n), cases[i].quit);
        assert_int_equal(n, strlen(cases[i].out));
        assert_memory_equal(buf, cases[i].out, n);
        assert_int_equal(esc.armed, cases[i].armed_after);
    }
    /* Across reads: Ctrl-A at the end of one, x at the start of the next. */
    struct vmm_console_esc esc = {0};
    uint8_t a[] = {'m', 0x01}, b[] = {'x', 'n'};
    size_t na = sizeof(a), nb = sizeof(b);
    assert_int_equal(vmm_console_escape(&esc, a, &na), 0);
    assert_int_equal(na, 1);
    assert_int_equal(vmm_console_escape(&esc, b, &nb), 1);
    assert_int_equal(nb, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlab_and_loopback, setup, teardown),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
