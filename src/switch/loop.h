/*
 * loop: the control thread's event loop (epoll): fds with callbacks and periodic timers.
 * Single-threaded: every function here is called from the control thread only.
 */
#ifndef VSW_LOOP_H
#define VSW_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct vsw_loop;
/* Called with the epoll events that fired. May remove itself or other fds. */
typedef void (*vsw_loop_fd_cb)(int fd, uint32_t events, void *arg);
typedef void (*vsw_loop_timer_cb)(void *arg);

struct vsw_loop *vsw_loop_create(void);
void vsw_loop_destroy(struct vsw_loop *loop);
/* Watch fd for events (EPOLLIN, ...). Returns 0 or -errno (EEXIST if already watched). */
int vsw_loop_add_fd(struct vsw_loop *loop, int fd, uint32_t events, vsw_loop_fd_cb cb, void *arg);
/* Stop watching fd (does not close it). Safe from inside any callback. */
void vsw_loop_del_fd(struct vsw_loop *loop, int fd);
/* Call cb every period_ms. Returns a timer id >= 0 or -errno. */
int vsw_loop_add_timer(struct vsw_loop *loop, unsigned period_ms, vsw_loop_timer_cb cb, void *arg);
/* Run until vsw_loop_stop() (from a callback or a signal handler). Returns 0. */
int vsw_loop_run(struct vsw_loop *loop);
/* Async-signal-safe. */
void vsw_loop_stop(struct vsw_loop *loop);

#endif
