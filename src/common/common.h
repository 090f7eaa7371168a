/*
 * common: logging (per-module, rate-limited), time, drop-reason counters and small helpers
 * shared by every module. Thread-safe: logging may be called from any thread; the rate
 * limiter is per call site and lock-free.
 */
#ifndef VSW_COMMON_H
#define VSW_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))
#define likely(x)                       __builtin_expect(!!(x), 1)
#define unlikely(x)                     __builtin_expect(!!(x), 0)
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define MAX(a, b)                       ((a) > (b) ? (a) : (b))
#define VSW_PRINTF(f, a)                __attribute__((format(printf, f, a)))

/* ---- time ---- */
static inline uint64_t vsw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vsw_rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return vsw_now_ns();
#endif
}

/* ---- logging ---- */
enum vsw_log_level { VSW_LOG_ERR, VSW_LOG_WARN, VSW_LOG_INFO, VSW_LOG_DEBUG };

/* Set the global threshold; messages above it are discarded. Default: INFO. */
void vsw_log_set_level(enum vsw_log_level level);
/* Parse "err", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int vsw_log_parse_level(const char *s, enum vsw_log_level *out);
void vsw_log(enum vsw_log_level level, const char *module, const char *fmt, ...) VSW_PRINTF(3, 4);

/*
 * Rate limiter for one call site: at most `burst` messages per `interval_ns`; the number
 * suppressed is reported with the next message that passes. Lock-free; a lost race only
 * lets one extra message through.
 */
struct vsw_ratelimit {
    uint64_t window_start;
    uint32_t in_window;
    uint32_t suppressed;
};
bool vsw_ratelimit_pass(struct vsw_ratelimit *rl, uint32_t burst, uint64_t interval_ns,
                        uint32_t *suppressed);

#define VLOG(level, module, ...) vsw_log(VSW_LOG_##level, module, __VA_ARGS__)

/* Log at most 5 lines per second from this call site. For anything a guest or peer can trigger. */
#define VLOG_RL(level, module, fmt, ...)                                                           \
    do {                                                                                           \
        static struct vsw_ratelimit rl_;                                                           \
        uint32_t supp_;                                                                            \
        if (vsw_ratelimit_pass(&rl_, 5, 1000000000ull, &supp_)) {                                  \
            if (supp_)                                                                             \
                vsw_log(VSW_LOG_##level, module, fmt " (%u similar suppressed)", ##__VA_ARGS__,    \
                        supp_);                                                                    \
            else                                                                                   \
                vsw_log(VSW_LOG_##level, module, fmt, ##__VA_ARGS__);                              \
        }                                                                                          \
    } while (0)

/* ---- drop reasons ----
 * Every frame the dataplane discards is counted under exactly one of these. One list gives
 * the enum and the names shown by `vswitchctl stats`.
 */
#define VSW_DROP_REASONS(X)                                                                        \
    X(RX_BAD_DESC, "rx_bad_desc", "guest TX descriptor out of bounds, looping or malformed")       \
    X(RX_TOO_MANY_SEGS, "rx_too_many_segs", "frame spans more buffers than a packet can hold")     \
    X(RX_RUNT, "rx_runt", "frame shorter than an Ethernet header")                                 \
    X(RX_TOO_BIG, "rx_too_big", "frame longer than the maximum frame size")                        \
    X(RX_SRC_MCAST, "rx_src_mcast", "source MAC is multicast")                                     \
    X(RX_Q_STOPPED, "rx_queue_stopped", "frames in a stopped or disabled queue")                   \
    X(NO_DEST, "no_dest", "no port to send to (flood with no other member, or hairpin)")           \
    X(TX_NO_BUF, "tx_no_buffer", "destination guest had no free RX buffer")                        \
    X(TX_BAD_DESC, "tx_bad_desc", "destination RX descriptor out of bounds or malformed")          \
    X(TX_NOT_READY, "tx_not_ready", "destination queue not running")                               \
    X(TX_TOO_BIG, "tx_too_big", "frame larger than the destination's buffers")                     \
    X(RX_BAD_VNET_HDR, "rx_bad_vnet_hdr",                                                          \
      "virtio-net header asks for an offload not negotiated or not matching the frame")            \
    X(TX_OFFLOAD, "tx_offload_failed",                                                             \
      "software segmentation impossible (a segment spans too many source buffers)")                \
    X(TX_MTU, "tx_mtu_exceeded", "frame longer than the egress port's MTU (GSO frames excepted)")

enum vsw_drop {
#define VSW_DROP_ENUM_(e, name, help) VSW_DROP_##e,
    VSW_DROP_REASONS(VSW_DROP_ENUM_)
#undef VSW_DROP_ENUM_
        VSW_DROP__COUNT
};

/* The short name of a drop reason ("rx_bad_desc"), or "?" when out of range. */
const char *vsw_drop_name(unsigned reason);
const char *vsw_drop_help(unsigned reason);

/* ---- MAC addresses ---- */
struct vsw_mac {
    uint8_t b[6];
};
/* Parse "aa:bb:cc:dd:ee:ff". Returns 0 or -EINVAL. */
int vsw_mac_parse(const char *s, struct vsw_mac *out);
/* Format into buf (at least 18 bytes); returns buf. */
char *vsw_mac_format(const struct vsw_mac *m, char *buf);

/* ---- names ----
 * Names of bridges and ports: 1..31 bytes of [A-Za-z0-9_.-], not starting with '.' or '-'.
 * They become file names (socket paths), so this check is a security boundary.
 */
#define VSW_NAME_MAX 32
bool vsw_name_valid(const char *s);

#endif
