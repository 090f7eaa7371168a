/*
 * Tests of the control thread's event loop (src/switch/loop.c): fd callbacks, periodic timers,
 * deleting fds from inside callbacks (self, another fd with a pending event, re-adding the
 * same fd number), and stopping from a callback, a signal handler, another thread, or before
 * run. Single test thread except where a test starts one to call vsw_loop_stop().
 */
#include "loop.h"

#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

struct ctx {
    struct vsw_loop *loop;
    int calls;
    int fds[4];
    uint32_t last_events;
};

static void stop_cb(void *arg)
{
    vsw_loop_stop(arg);
}

/* Guard: stop any test that would otherwise hang, and make it fail. */
static int add_guard(struct vsw_loop *loop)
{
    return vsw_loop_add_timer(loop, 2000, stop_cb, loop);
}

static void read_stop_cb(int fd, uint32_t events, void *arg)
{
    struct ctx *c = arg;
    char b[16];
    assert_true(read(fd, b, sizeof(b)) > 0);
    c->calls++;
    c->last_events = events;
    vsw_loop_stop(c->loop);
}

static void test_fd_callback(void **state)
{
    (void)state;
    struct ctx c = {.loop = vsw_loop_create()};
    int p[2];
    assert_non_null(c.loop);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(vsw_loop_add_fd(c.loop, p[0], EPOLLIN, read_stop_cb, &c), 0);
    assert_int_equal(vsw_loop_add_fd(c.loop, p[0], EPOLLIN, read_stop_cb, &c), -EEXIST);
    assert_true(add_guard(c.loop) >= 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(vsw_loop_run(c.loop), 0);
    assert_int_equal(c.calls, 1);
    assert_true(c.last_events & EPOLLIN);
    vsw_loop_destroy(c.loop);
    close(p[0]);
    close(p[1]);
}

static void test_bad_args(void **state)
{
    (void)state;
    struct vsw_loop *loop = vsw_loop_create();
    assert_non_null(loop);
    assert_int_equal(vsw_loop_add_fd(loop, -1, EPOLLIN, read_stop_cb, NULL), -EBADF);
    assert_int_equal(vsw_loop_add_fd(loop, 999, EPOLLIN, read_stop_cb, NULL), -EBADF);
    assert_int_equal(vsw_loop_add_timer(loop, 0, stop_cb, loop), -EINVAL);
    vsw_loop_del_fd(loop, 500); /* not watched: no-op */
    vsw_loop_del_fd(loop, -3);
    vsw_loop_destroy(loop);
}

struct tick {
    struct vsw_loop *loop;
    int n;
    int added;
    int inner;
};

static void inner_cb(void *arg)
{
    struct tick *t = arg;
    t->inner++;
}

static void tick_cb(void *arg)
{
    struct tick *t = arg;
    if (++t->n == 1) {
        /* A timer added from a timer callback (the array may move under run_timers). */
        for (int i = 0; i < 8; i++)
            assert_true(vsw_loop_add_timer(t->loop, 5, inner_cb, t) >= 0);
        t->added = 1;
    }
    if (t->n == 5)
        vsw_loop_stop(t->loop);
}

static void test_timer(void **state)
{
    (void)state;
    struct tick t = {.loop = vsw_loop_create()};
    assert_non_null(t.loop);
    int id0 = vsw_loop_add_timer(t.loop, 10, tick_cb, &t);
    assert_true(id0 >= 0);
    assert_true(add_guard(t.loop) > id0);
    uint64_t t0 = vsw_now_ns();
    assert_int_equal(vsw_loop_run(t.loop), 0);
    uint64_t ms = (vsw_now_ns() - t0) / 1000000;
    assert_int_equal(t.n, 5);
    assert_true(ms >= 48); /* 5 periods of 10 ms */
    assert_true(ms < 1000);
    assert_true(t.inner > 0);
    vsw_loop_destroy(t.loop);
}

/* Each callback deletes the other fd: whichever runs first, the other must not run. */
static void del_other_cb(int fd, uint32_t events, void *arg)
{
    struct ctx *c = arg;
    (void)events;
    c->calls++;
    for (int i = 0; i < 2; i++)
        vsw_loop_del_fd(c->loop, c->fds[i]);
    (void)fd;
}

static void test_del_other_in_callback(void **state)
{
    (void)state;
    struct ctx c = {.loop = vsw_loop_create()};
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    c.fds[0] = a[0];
    c.fds[1] = b[0];
    assert_int_equal(vsw_loop_add_fd(c.loop, a[0], EPOLLIN, del_other_cb, &c), 0);
    assert_int_equal(vsw_loop_add_fd(c.loop, b[0], EPOLLIN, del_other_cb, &c), 0);
    /* Both ready before the loop waits: their events arrive in one batch. */
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_true(vsw_loop_add_timer(c.loop, 50, stop_cb, c.loop) >= 0);
    assert_int_equal(vsw_loop_run(c.loop), 0);
    assert_int_equal(c.calls, 1);
    /* Deleted fds can be watched again. */
    assert_int_equal(vsw_loop_add_fd(c.loop, a[0], EPOLLIN, read_stop_cb, &c), 0);
    assert_int_equal(vsw_loop_run(c.loop), 0);
    assert_int_equal(c.calls, 2);
    vsw_loop_destroy(c.loop);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

/* Delete and close itself, then watch a new pipe that likely reuses the same fd number. */
static void reuse_cb(int fd, uint32_t events, void *arg);

static void second_cb(int fd, uint32_t events, void *arg)
{
    struct ctx *c = arg;
    (void)events;
    char b[4];
    assert_int_equal(read(fd, b, sizeof(b)), 1);
    assert_int_equal(b[0], 'y');
    c->calls += 10;
    vsw_loop_stop(c->loop);
}

static void reuse_cb(int fd, uint32_t events, void *arg)
{
    struct ctx *c = arg;
    (void)events;
    c->calls++;
    vsw_loop_del_fd(c->loop, fd);
    close(fd);
    int p[2];
    assert_int_equal(pipe(p), 0);
    c->fds[2] = p[0];
    c->fds[3] = p[1];
    assert_int_equal(vsw_loop_add_fd(c->loop, p[0], EPOLLIN, second_cb, c), 0);
    assert_int_equal(write(p[1], "y", 1), 1);
}

static void test_del_self_and_reuse(void **state)
{
    (void)state;
    struct ctx c = {.loop = vsw_loop_create()};
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(vsw_loop_add_fd(c.loop, p[0], EPOLLIN, reuse_cb, &c), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_true(add_guard(c.loop) >= 0);
    assert_int_equal(vsw_loop_run(c.loop), 0);
    assert_int_equal(c.calls, 11);
    close(p[1]);
    close(c.fds[2]);
    close(c.fds[3]);
    vsw_loop_destroy(c.loop);
}

static struct vsw_loop *sig_loop;

static void on_alarm(int sig)
{
    (void)sig;
    vsw_loop_stop(sig_loop);
}

static void test_stop_from_signal(void **state)
{
    (void)state;
    sig_loop = vsw_loop_create();
    assert_non_null(sig_loop);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = {.it_value = {.tv_usec = 30000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    uint64_t t0 = vsw_now_ns();
    /* No fds and no timers: epoll_wait would block forever without the stop eventfd. */
    assert_int_equal(vsw_loop_run(sig_loop), 0);
    assert_true(vsw_now_ns() - t0 < 1000000000ull);
    signal(SIGALRM, SIG_DFL);
    vsw_loop_destroy(sig_loop);
}

static void *stopper(void *arg)
{
    usleep(20000);
    vsw_loop_stop(arg);
    return NULL;
}

static void test_stop_from_thread(void **state)
{
    (void)state;
    struct vsw_loop *loop = vsw_loop_create();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stopper, loop), 0);
    assert_int_equal(vsw_loop_run(loop), 0);
    pthread_join(th, NULL);
    vsw_loop_destroy(loop);
}

static void test_stop_before_run(void **state)
{
    (void)state;
    struct vsw_loop *loop = vsw_loop_create();
    vsw_loop_stop(loop);
    assert_int_equal(vsw_loop_run(loop), 0); /* returns at once */
    /* The stop was consumed: the next run waits for a new one (here: a timer). */
    struct tick t = {.loop = loop};
    assert_true(vsw_loop_add_timer(loop, 5, tick_cb, &t) >= 0);
    assert_int_equal(vsw_loop_run(loop), 0);
    assert_int_equal(t.n, 5);
    vsw_loop_destroy(loop);
}

static void test_destroy_with_fds(void **state)
{
    (void)state;
    struct vsw_loop *loop = vsw_loop_create();
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(vsw_loop_add_fd(loop, p[0], EPOLLIN, read_stop_cb, NULL), 0);
    assert_int_equal(vsw_loop_add_fd(loop, p[1], EPOLLOUT, read_stop_cb, NULL), 0);
    vsw_loop_destroy(loop); /* frees the entries, leaves the fds open */
    assert_int_equal(write(p[1], "x", 1), 1);
    close(p[0]);
    close(p[1]);
    vsw_loop_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_callback),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_timer),
        cmocka_unit_test(test_del_other_in_callback),
        cmocka_unit_test(test_del_self_and_reuse),
        cmocka_unit_test(test_stop_from_signal),
        cmocka_unit_test(test_stop_from_thread),
        cmocka_unit_test(test_stop_before_run),
        cmocka_unit_test(test_destroy_with_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
