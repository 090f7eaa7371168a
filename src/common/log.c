/*
 * Logging to stderr with a timestamp, level and module. Any thread. One fprintf per line
 * (stdio locks the stream), so lines from different threads do not interleave.
 */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static enum vsw_log_level log_level = VSW_LOG_INFO;
static const char *const level_names[] = {"ERR", "WARN", "INFO", "DEBUG"};

void vsw_log_set_level(enum vsw_log_level level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int vsw_log_parse_level(const char *s, enum vsw_log_level *out)
{
    static const char *const names[] = {"err", "warn", "info", "debug"};
    for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum vsw_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void vsw_log(enum vsw_log_level level, const char *module, const char *fmt, ...)
{
    if (level > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %-8s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, level_names[level], module, msg);
}

bool vsw_ratelimit_pass(struct vsw_ratelimit *rl, uint32_t burst, uint64_t interval_ns,
                        uint32_t *suppressed)
{
    uint64_t now = vsw_now_ns();
    uint64_t start = __atomic_load_n(&rl->window_start, __ATOMIC_RELAXED);
    *suppressed = 0;
    if (now - start >= interval_ns) {
        __atomic_store_n(&rl->window_start, now, __ATOMIC_RELAXED);
        __atomic_store_n(&rl->in_window, 0, __ATOMIC_RELAXED);
        *suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
    }
    if (__atomic_add_fetch(&rl->in_window, 1, __ATOMIC_RELAXED) <= burst)
        return true;
    __atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
    return false;
}
