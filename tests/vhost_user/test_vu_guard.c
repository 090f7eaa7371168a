/*
 * A frontend that truncates its guest memory file after SET_MEM_TABLE (src/vhost_user/vu_guard.c):
 * the switch's next access to a page past the new end raises SIGBUS. The guard must turn that
 * into a stopped device with a counter — the process lives on, the device's queues stop, other
 * devices keep working, a new memory table starts it again — and must not swallow a SIGBUS
 * anywhere else.
 */
#include "vu_test_util.h"

#include <signal.h>
#include <sys/wait.h>

#define RXQ 0
#define TXQ 1

static struct pkt pkts[32];

/* One 60-byte frame from the guest's TX ring through the switch. */
static void tx_one(struct vut *v, uint8_t seed)
{
    static uint8_t stream[256];
    uint32_t len = vut_make_stream(stream, 12, 60, seed);
    uint64_t gpa = vut_alloc_buf(v, len);
    vut_guest_write(v, gpa, stream, len);
    uint16_t h = (uint16_t)(v->next_desc[TXQ]++ % VUT_QSIZE);
    vut_set_desc(&vut_desc(v, TXQ)[h], gpa, len, 0, 0);
    vut_post(v, TXQ, h);
}

static void expect_forwarding(struct vut *v, uint8_t seed)
{
    tx_one(v, seed);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    assert_int_equal(pkts[0].len, 60);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
}

static void test_truncated_memory_stops_the_device(void **state)
{
    (void)state;
    const int fds = vut_count_fds();
    struct vut *v = vut_new(), *other = vut_new();
    v->not_alone = other->not_alone = true;
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);
    vut_startup(other, VUT_F_ALL, VUT_PF_ALL, 2);
    expect_forwarding(v, 1);
    tx_one(v, 2); /* in flight when the memory goes */

    uint64_t faults = vu_guard_faults(), errors = vut_stats(v).queue_errors;
    assert_int_equal(ftruncate(v->memfd[0], 0), 0); /* the rings and buffers live in region 0 */
    /* From here on our own view of region 0 would SIGBUS too: the test no longer touches it. */
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    assert_int_equal(vu_guard_faults(), faults + 1);
    assert_false(vu_dev_queue_ready(v->dev, TXQ));
    struct pkt *p = &pkts[0];
    static uint8_t frame[60];
    pkt_from_buffer(p, frame, sizeof(frame));
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 0);
    assert_false(vu_dev_queue_ready(v->dev, RXQ));
    assert_true(vut_stats(v).queue_errors >= errors + 2);

    /* The other device never noticed. */
    expect_forwarding(other, 3);
    assert_int_equal(vu_guard_faults(), faults + 1);

    /* The frontend grows its file again and sets up from scratch: the device works again. */
    assert_int_equal(ftruncate(v->memfd[0], (off_t)v->file_len[0]), 0);
    v->next_desc[TXQ] = 0;
    v->next_buf = VUT_BUF_GPA;
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);
    assert_int_equal(v->dev->mem.faulted, 0);
    expect_forwarding(v, 4);
    vut_free(v);
    vut_free(other);
    assert_int_equal(vut_count_fds(), fds);
    assert_int_equal(vut_count_maps(), 0);
}

/*
 * A SIGBUS outside guest memory is a bug of ours and must still kill the process. Runs first:
 * the child installs the guard over the default disposition (not cmocka's handler).
 */
static void test_other_sigbus_is_not_swallowed(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGBUS, SIG_DFL);
        struct vut *v = vut_new();
        vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2); /* the guard is installed and armed */
        struct sigaction cur;
        if (sigaction(SIGBUS, NULL, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO))
            _exit(3); /* the guard is not there: this test would prove nothing */
        int fd = memfd_create("not-guest", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, 4096) != 0)
            _exit(2);
        volatile uint8_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED || ftruncate(fd, 0) != 0)
            _exit(2);
        m[0] = 1; /* must not return */
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st))
        fail_msg("the child exited with %d instead of dying of SIGBUS", WEXITSTATUS(st));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGBUS);
}

int main(void)
{
    vut_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_sigbus_is_not_swallowed),
        cmocka_unit_test(test_truncated_memory_stops_the_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
