/*
 * itest: helpers shared by the integration tests. They run the real vswitchd ($VSWITCHD) in a
 * private temporary run directory, configure it through the real vswitchctl ($VSWITCHCTL, run
 * as a subprocess: it is the user interface under test), and play guests with the vhost-user
 * frontend library (polling, no call notifications).
 *
 * The helpers assert with cmocka: call them from inside a cmocka test, setup or teardown.
 * Single-threaded.
 */
#ifndef VSW_ITEST_H
#define VSW_ITEST_H

#include "vhost_user.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ITEST_ETHERTYPE 0x88b5 /* IEEE local experimental */
#define ITEST_NONE_MS   300    /* how long "nothing arrives" is watched */
#define ITEST_RECV_MS   3000   /* a frame that is due must arrive within this */
#define ITEST_WAIT_MS   5000   /* state changes (port running, stats) must happen within this */

struct itest_daemon {
    pid_t pid;      /* 0 once reaped */
    int status;     /* waitpid status, once exited */
    bool exited;    /* reaped, status not yet judged by itest_daemon_stop() */
    pid_t dpdk_pid; /* the pid its DPDK runtime dir is named after */
    char dir[64];   /* temporary run dir, removed by itest_daemon_stop() */
    char ctl[96];   /* control socket */
    char log[96];   /* vswitchd's stdout and stderr */
};

/*
 * Start vswitchd with --run-dir and --ctl in a fresh temporary directory, plus `extra`
 * arguments (NULL-terminated, may be NULL), and wait until its control socket accepts.
 * The daemon is killed if the test process dies.
 */
void itest_daemon_start(struct itest_daemon *d, const char *const extra[]);
/*
 * SIGTERM, wait (then SIGKILL), remove the run dir. Returns 0 when the daemon exited with
 * status 0 (so the sanitizers found nothing at exit), -1 otherwise (its log is printed).
 * Safe to call on a daemon never started or already stopped.
 */
int itest_daemon_stop(struct itest_daemon *d);
/* True while the daemon process runs (it did not crash or exit). */
bool itest_daemon_alive(struct itest_daemon *d);
/* Print the tail of the daemon's log on stderr (for failures). */
void itest_daemon_dump_log(const struct itest_daemon *d);

/* One vswitchctl run: exit status (or -1 when killed by a signal), its stdout and stderr. */
struct itest_run {
    int status;
    char *out;
    char *err;
};
/* Run vswitchctl --socket CTL ARGS... (NULL-terminated). `r` may be NULL. Returns the status. */
int itest_ctl(struct itest_daemon *d, struct itest_run *r, ...) __attribute__((sentinel));
int itest_ctl_argv(struct itest_daemon *d, struct itest_run *r, const char *const argv[]);
void itest_run_free(struct itest_run *r);
/* Run vswitchctl and assert it exits 0. */
void itest_ctl_ok(struct itest_daemon *d, ...) __attribute__((sentinel));
/* Run vswitchctl --json ARGS..., assert exit 0, return the parsed result (caller decrefs). */
json_t *itest_ctl_json(struct itest_daemon *d, ...) __attribute__((sentinel));

/* ---- reading results ---- */
/* The integer member `key` of `obj` (asserted present, an integer, not negative). */
uint64_t itest_u64(const json_t *obj, const char *key);
/* `stats --json PORT`: the port's object (a new reference). */
json_t *itest_port_stats(struct itest_daemon *d, const char *port);
/* A drop counter of a port's stats object (0 when absent). */
uint64_t itest_drop(const json_t *port_stats, const char *reason);
/* The port's state from port-list ("listening", "connected", "running"), or "" if no port. */
void itest_port_state(struct itest_daemon *d, const char *port, char *out, size_t cap);
/* Wait until the port is in `state`; assert it gets there within ITEST_WAIT_MS. */
void itest_wait_port_state(struct itest_daemon *d, const char *port, const char *state);
/* The bridge's entry of br-list (a new reference), asserted present. */
json_t *itest_br_info(struct itest_daemon *d, const char *bridge);
/* fdb-show BRIDGE: the port name of `mac` ("aa:bb:..."), or NULL if not in the table. The
 * returned string lives in a static buffer. Also asserts the table has `n_entries` entries
 * unless that is negative, one entry per MAC, and only dynamic entries (the tests add no
 * static ones). */
const char *itest_fdb_port(struct itest_daemon *d, const char *bridge, const char *mac,
                           int n_entries);

/* ---- guests ---- */
/* The socket path of a vhost-user port in the daemon's run dir. */
void itest_port_path(const struct itest_daemon *d, const char *port, char *out, size_t cap);
/* Connect a polling guest to PORT and wait until the port is running. */
struct vuf_dev *itest_guest(struct itest_daemon *d, const char *port);
/* The same with the guest's own configuration (ring size, huge pages, ...). */
struct vuf_dev *itest_guest_cfg(struct itest_daemon *d, const char *port,
                                const struct vuf_config *cfg);

/* 02:00:00:00:00:xx */
struct vsw_mac itest_mac(uint8_t last);
/* "02:00:00:00:00:xx" into a static rotating buffer. */
const char *itest_mac_str(const struct vsw_mac *m);
/*
 * Build a test frame of `len` bytes (>= 22): dst, src, ITEST_ETHERTYPE, "ITST", seq (BE),
 * then a pattern that depends on seq. Returns len.
 */
size_t itest_frame(uint8_t *buf, size_t len, const struct vsw_mac *dst, const struct vsw_mac *src,
                   uint32_t seq);
/* Send a frame, retrying while the TX ring is full (asserts it goes within ITEST_WAIT_MS). */
void itest_send(struct vuf_dev *g, const uint8_t *frame, size_t len);
/* Build and send one frame. */
void itest_send_frame(struct vuf_dev *g, const struct vsw_mac *dst, const struct vsw_mac *src,
                      uint32_t seq, size_t len);
/* Assert that the next frame `g` receives (within ITEST_RECV_MS) is exactly `frame`. */
void itest_expect(struct vuf_dev *g, const char *name, const uint8_t *frame, size_t len);
/* Like itest_expect for the frame itest_frame() builds from these arguments. */
void itest_expect_frame(struct vuf_dev *g, const char *name, const struct vsw_mac *dst,
                        const struct vsw_mac *src, uint32_t seq, size_t len);
/* Assert that none of the n guests receives anything within ITEST_NONE_MS. */
void itest_expect_none(struct vuf_dev *const gs[], const char *const names[], size_t n);

#endif
