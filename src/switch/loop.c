/*
 * loop: the control thread's event loop. epoll for fds; periodic timers are kept in an array
 * and turned into the epoll_wait timeout, so a timer costs no fd. Stopping goes through an
 * eventfd plus a flag, both async-signal-safe.
 *
 * Thread: everything runs on the control thread, except vsw_loop_stop() which may be called
 * from a signal handler or another thread. No locks.
 *
 * Deleting from inside a callback: each watched fd has a heap entry that epoll hands back in
 * data.ptr. vsw_loop_del_fd() only marks the entry dead and moves it to a graveyard that is
 * freed after the current batch of events is dispatched, so later events of the same batch
 * that point at it are skipped instead of calling a stale callback (even if the fd number was
 * closed and reused by a new vsw_loop_add_fd() meanwhile: that gets a new entry).
 */
#include "loop.h"

#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 64

struct loop_fd {
    int fd;
    bool dead;
    vsw_loop_fd_cb cb;
    void *arg;
    struct loop_fd *next_dead;
};

struct loop_timer {
    uint64_t period_ns;
    uint64_t deadline_ns;
    vsw_loop_timer_cb cb;
    void *arg;
};

struct vsw_loop {
    int epfd;
    int stop_fd; /* eventfd written by vsw_loop_stop() to wake epoll_wait */
    volatile sig_atomic_t stop;

    struct loop_fd **fds; /* indexed by fd number; NULL when not watched */
    size_t n_fds;         /* size of the fds array */
    struct loop_fd *graveyard;

    struct loop_timer *timers;
    size_t n_timers, cap_timers;
};

struct vsw_loop *vsw_loop_create(void)
{
    struct vsw_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epfd < 0 || loop->stop_fd < 0)
        goto fail;
    /* data.ptr NULL marks the stop eventfd: no loop_fd entry for it. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stop_fd, &ev) < 0)
        goto fail;
    return loop;

fail:;
    int e = errno;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->stop_fd >= 0)
        close(loop->stop_fd);
    free(loop);
    errno = e;
    return NULL;
}

static void free_graveyard(struct vsw_loop *loop)
{
    while (loop->graveyard) {
        struct loop_fd *e = loop->graveyard;
        loop->graveyard = e->next_dead;
        free(e);
    }
}

void vsw_loop_destroy(struct vsw_loop *loop)
{
    if (!loop)
        return;
    for (size_t i = 0; i < loop->n_fds; i++)
        free(loop->fds[i]);
    free(loop->fds);
    free_graveyard(loop);
    free(loop->timers);
    close(loop->stop_fd);
    close(loop->epfd);
    free(loop);
}

int vsw_loop_add_fd(struct vsw_loop *loop, int fd, uint32_t events, vsw_loop_fd_cb cb, void *arg)
{
    if (fd < 0 || !cb)
        return fd < 0 ? -EBADF : -EINVAL;
    if ((size_t)fd < loop->n_fds && loop->fds[fd])
        return -EEXIST;
    if ((size_t)fd >= loop->n_fds) {
        size_t n = MAX((size_t)fd + 1, loop->n_fds * 2);
        struct loop_fd **fds = realloc(loop->fds, n * sizeof(*fds));
        if (!fds)
            return -ENOMEM;
        memset(fds + loop->n_fds, 0, (n - loop->n_fds) * sizeof(*fds));
        loop->fds = fds;
        loop->n_fds = n;
    }
    struct loop_fd *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->fd = fd;
    e->cb = cb;
    e->arg = arg;
    struct epoll_event ev = {.events = events, .data.ptr = e};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        free(e);
        return err;
    }
    loop->fds[fd] = e;
    return 0;
}

void vsw_loop_del_fd(struct vsw_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd])
        return;
    struct loop_fd *e = loop->fds[fd];
    /* May fail with EBADF if the caller closed the fd first; the kernel already forgot it. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->fds[fd] = NULL;
    e->dead = true;
    e->next_dead = loop->graveyard;
    loop->graveyard = e;
}

int vsw_loop_add_timer(struct vsw_loop *loop, unsigned period_ms, vsw_loop_timer_cb cb, void *arg)
{
    if (period_ms == 0 || !cb)
        return -EINVAL;
    if (loop->n_timers > INT32_MAX)
        return -ENOSPC;
    if (loop->n_timers == loop->cap_timers) {
        size_t cap = loop->cap_timers ? loop->cap_timers * 2 : 4;
        struct loop_timer *t = realloc(loop->timers, cap * sizeof(*t));
        if (!t)
            return -ENOMEM;
        loop->timers = t;
        loop->cap_timers = cap;
    }
    struct loop_timer *t = &loop->timers[loop->n_timers];
    t->period_ns = (uint64_t)period_ms * 1000000ull;
    t->deadline_ns = vsw_now_ns() + t->period_ns;
    t->cb = cb;
    t->arg = arg;
    return (int)loop->n_timers++;
}

/* Milliseconds until the earliest timer, rounded up so we never wake just before it. */
static int next_timeout_ms(const struct vsw_loop *loop, uint64_t now)
{
    if (loop->n_timers == 0)
        return -1;
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < loop->n_timers; i++)
        first = MIN(first, loop->timers[i].deadline_ns);
    if (first <= now)
        return 0;
    uint64_t ms = (first - now + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void run_timers(struct vsw_loop *loop)
{
    uint64_t now = vsw_now_ns();
    /* Index, not pointer: a callback may add timers and move the array. */
    for (size_t i = 0; i < loop->n_timers && !loop->stop; i++) {
        struct loop_timer *t = &loop->timers[i];
        if (t->deadline_ns > now)
            continue;
        /*
         * Next deadline on the period grid, but skip missed periods instead of firing a burst
         * of catch-up calls after a stall.
         */
        t->deadline_ns += t->period_ns;
        if (t->deadline_ns <= now)
            t->deadline_ns = now + t->period_ns;
        vsw_loop_timer_cb cb = t->cb;
        cb(loop->timers[i].arg);
    }
}

int vsw_loop_run(struct vsw_loop *loop)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];

    while (!loop->stop) {
        int timeout = next_timeout_ms(loop, vsw_now_ns());
        int n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno != EINTR)
                VLOG_RL(ERR, "loop", "epoll_wait: %s", strerror(errno));
            n = 0;
        }
        for (int i = 0; i < n && !loop->stop; i++) {
            struct loop_fd *e = evs[i].data.ptr;
            if (!e || e->dead)
                continue;
            e->cb(e->fd, evs[i].events, e->arg);
        }
        free_graveyard(loop);
        if (!loop->stop)
            run_timers(loop);
        free_graveyard(loop);
    }

    /* Re-arm for a later vsw_loop_run(); a stop before run makes it return at once. */
    uint64_t v;
    while (read(loop->stop_fd, &v, sizeof(v)) > 0)
        ;
    loop->stop = 0;
    return 0;
}

void vsw_loop_stop(struct vsw_loop *loop)
{
    /* Only a sig_atomic_t store and write(2): both async-signal-safe. Keep the handler's errno. */
    int saved = errno;
    uint64_t one = 1;
    loop->stop = 1;
    ssize_t r = write(loop->stop_fd, &one, sizeof(one));
    (void)r;
    errno = saved;
}
