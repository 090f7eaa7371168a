/*
 * vsw-guest: a simulated guest for demos and shell tests. It connects to a vhost-user
 * backend with the frontend library (memfd memory, one queue pair) and runs a script of
 * steps: send test frames, receive and print them, expect counts.
 *
 *   vsw-guest --socket PATH --mac MAC [--name NAME] [--queue-size N] [--notify]
 *             --script "STEP; STEP; ..."
 *
 * Steps:
 *   sleep MS                  wait (frames arriving meanwhile stay queued)
 *   send DSTMAC [COUNT] [LEN] COUNT frames (default 1) of LEN bytes (default 64), ethertype
 *                             0x88b5; the payload carries this guest's name and a sequence number
 *   recv MS                   receive for MS ms, one line per frame
 *   expect N MS               receive until N frames arrived or MS ms passed; fail if fewer
 *   expect-none MS            fail if any frame arrives within MS ms
 *   count MS                  receive for MS ms, then print "NAME count N"
 * Each received frame prints "NAME rx src=MAC dst=MAC len=N from=SENDER" on stdout.
 *
 * Once connected it prints "NAME: connected to PATH" on stderr (scripts may wait for it).
 *
 * Exit status: 0 success, 1 an expectation failed (or a frame arrived corrupted, or the
 * backend broke the RX ring), 2 usage or connect error. Single-threaded.
 */
#include "vhost_user.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUEST_ETHERTYPE   0x88b5 /* IEEE local experimental */
#define GUEST_MAGIC       "VSWG"
#define GUEST_PAYLOAD_HDR (4 + 4 + VSW_NAME_MAX) /* magic, sequence (BE), name */
#define CONNECT_WAIT_MS   5000
#define SEND_STALL_MS     2000 /* a TX ring that stays full this long means a dead backend */
#define DRAIN_MS          1000
#define RECV_ALL          ULONG_MAX

enum step_kind { STEP_SLEEP, STEP_SEND, STEP_RECV, STEP_EXPECT, STEP_EXPECT_NONE, STEP_COUNT };

struct step {
    enum step_kind kind;
    struct vsw_mac dst;
    unsigned long count;
    unsigned long len;
    unsigned long ms;
};

struct guest {
    const char *name;
    struct vsw_mac mac;
    struct vuf_dev *dev;
    uint32_t seq;
    bool corrupt; /* a frame failed the payload check or could not be received */
    uint8_t frame[VSW_MAX_FRAME];
    uint8_t rxbuf[VSW_MAX_FRAME];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vsw-guest --socket PATH --mac MAC [--name NAME] [--queue-size N] [--notify]\n"
            "                 --script \"STEP; STEP; ...\"\n"
            "steps: sleep MS | send DSTMAC [COUNT] [LEN] | recv MS | expect N MS |\n"
            "       expect-none MS | count MS\n");
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Parse one step (already split into words). Returns 0 or -EINVAL with a message printed. */
static int parse_step(char **w, int n, struct step *st)
{
    const char *k = w[0];
    memset(st, 0, sizeof(*st));

    if (!strcmp(k, "sleep") && n == 2) {
        st->kind = STEP_SLEEP;
        if (parse_ulong(w[1], 0, 3600000, &st->ms) == 0)
            return 0;
    } else if (!strcmp(k, "send") && n >= 2 && n <= 4) {
        st->kind = STEP_SEND;
        st->count = 1;
        st->len = 64;
        if (vsw_mac_parse(w[1], &st->dst) == 0 &&
            (n < 3 || parse_ulong(w[2], 0, 100000000, &st->count) == 0) &&
            (n < 4 || parse_ulong(w[3], ETH_HLEN, VSW_MAX_FRAME, &st->len) == 0))
            return 0;
    } else if (!strcmp(k, "recv") && n == 2) {
        st->kind = STEP_RECV;
        if (parse_ulong(w[1], 0, 3600000, &st->ms) == 0)
            return 0;
    } else if (!strcmp(k, "expect") && n == 3) {
        st->kind = STEP_EXPECT;
        if (parse_ulong(w[1], 0, 100000000, &st->count) == 0 &&
            parse_ulong(w[2], 0, 3600000, &st->ms) == 0)
            return 0;
    } else if (!strcmp(k, "expect-none") && n == 2) {
        st->kind = STEP_EXPECT_NONE;
        if (parse_ulong(w[1], 0, 3600000, &st->ms) == 0)
            return 0;
    } else if (!strcmp(k, "count") && n == 2) {
        st->kind = STEP_COUNT;
        if (parse_ulong(w[1], 0, 3600000, &st->ms) == 0)
            return 0;
    }
    fprintf(stderr, "vsw-guest: bad step \"");
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s%s", i ? " " : "", w[i]);
    fprintf(stderr, "\"\n");
    return -EINVAL;
}

/* Split the script on ';' and whitespace. Returns the number of steps or -EINVAL. */
static int parse_script(char *script, struct step **out)
{
    struct step *steps = NULL;
    int nsteps = 0;
    char *save = NULL;

    for (char *s = strtok_r(script, ";", &save); s; s = strtok_r(NULL, ";", &save)) {
        char *words[8], *wsave = NULL;
        int n = 0;
        for (char *w = strtok_r(s, " \t\n", &wsave); w; w = strtok_r(NULL, " \t\n", &wsave)) {
            if (n == (int)ARRAY_SIZE(words)) {
                fprintf(stderr, "vsw-guest: too many words in step \"%s\"\n", words[0]);
                free(steps);
                return -EINVAL;
            }
            words[n++] = w;
        }
        if (n == 0)
            continue; /* empty step, e.g. a trailing ';' */
        struct step *grown = realloc(steps, sizeof(*steps) * (size_t)(nsteps + 1));
        if (!grown) {
            free(steps);
            return -ENOMEM;
        }
        steps = grown;
        if (parse_step(words, n, &steps[nsteps]) < 0) {
            free(steps);
            return -EINVAL;
        }
        nsteps++;
    }
    *out = steps;
    return nsteps;
}

static uint64_t now_ms(void)
{
    return vsw_now_ns() / 1000000;
}

static void sleep_ms(unsigned long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Filler byte at frame offset `off` of frame `seq`: lets the receiver spot corruption. */
static uint8_t fill_byte(uint32_t off, uint32_t seq)
{
    return (uint8_t)(off * 7u + seq);
}

static void build_frame(struct guest *g, const struct vsw_mac *dst, uint32_t len, uint32_t seq)
{
    uint8_t hdr[ETH_HLEN + GUEST_PAYLOAD_HDR];
    struct eth_hdr eth = {.dst = *dst, .src = g->mac, .type = __builtin_bswap16(GUEST_ETHERTYPE)};
    uint32_t be_seq = __builtin_bswap32(seq);

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, &eth, ETH_HLEN);
    memcpy(hdr + ETH_HLEN, GUEST_MAGIC, 4);
    memcpy(hdr + ETH_HLEN + 4, &be_seq, 4);
    memcpy(hdr + ETH_HLEN + 8, g->name, strlen(g->name));
    uint32_t n = MIN(len, (uint32_t)sizeof(hdr));
    memcpy(g->frame, hdr, n);
    for (uint32_t off = n; off < len; off++)
        g->frame[off] = fill_byte(off, seq);
}

static int do_send(struct guest *g, const struct step *st)
{
    char dst[18];

    for (unsigned long i = 0; i < st->count; i++) {
        uint32_t seq = g->seq++;
        build_frame(g, &st->dst, (uint32_t)st->len, seq);
        uint64_t start = now_ms();
        int rc;
        while ((rc = vuf_send(g->dev, g->frame, (uint32_t)st->len)) == -EAGAIN) {
            if (now_ms() - start > SEND_STALL_MS) {
                fprintf(stderr, "%s: TX ring full for %d ms after %lu of %lu frames\n", g->name,
                        SEND_STALL_MS, i, st->count);
                return 1;
            }
            sleep_ms(1);
        }
        if (rc < 0) {
            fprintf(stderr, "%s: send failed: %s\n", g->name, strerror(-rc));
            return 1;
        }
    }
    printf("%s tx dst=%s count=%lu len=%lu\n", g->name, vsw_mac_format(&st->dst, dst), st->count,
           st->len);
    return 0;
}

/* Print one received frame; check the filler of our own test frames. */
static void show_frame(struct guest *g, uint32_t len)
{
    const uint8_t *p = g->rxbuf;
    char src[18], dst[18], from[VSW_NAME_MAX + 1] = "?";
    bool bad = false;

    if (len < ETH_HLEN) {
        printf("%s rx runt len=%u\n", g->name, len);
        return;
    }
    struct eth_hdr eth;
    memcpy(&eth, p, ETH_HLEN);
    if (len >= ETH_HLEN + 8 && __builtin_bswap16(eth.type) == GUEST_ETHERTYPE &&
        !memcmp(p + ETH_HLEN, GUEST_MAGIC, 4)) {
        uint32_t be_seq, seq;
        memcpy(&be_seq, p + ETH_HLEN + 4, 4);
        seq = __builtin_bswap32(be_seq);
        uint32_t name_room = MIN(len - (ETH_HLEN + 8), (uint32_t)VSW_NAME_MAX);
        memcpy(from, p + ETH_HLEN + 8, name_room);
        from[name_room] = 0;
        for (uint32_t off = ETH_HLEN + GUEST_PAYLOAD_HDR; off < len; off++) {
            if (p[off] != fill_byte(off, seq)) {
                bad = true;
                break;
            }
        }
        if (!from[0] || !vsw_name_valid(from))
            strcpy(from, "?");
    }
    printf("%s rx src=%s dst=%s len=%u from=%s%s\n", g->name, vsw_mac_format(&eth.src, src),
           vsw_mac_format(&eth.dst, dst), len, from, bad ? " CORRUPT" : "");
    if (bad)
        g->corrupt = true;
}

/*
 * Receive for up to `ms`, stopping early once `stop_at` frames arrived (RECV_ALL: never).
 * Returns the number of frames.
 */
static unsigned long receive(struct guest *g, unsigned long ms, unsigned long stop_at)
{
    uint64_t deadline = now_ms() + ms;
    unsigned long n = 0;

    for (;;) {
        uint64_t t = now_ms();
        if (n >= stop_at)
            break;
        if (t >= deadline)
            break;
        int rc = vuf_recv_wait(g->dev, g->rxbuf, sizeof(g->rxbuf), (int)(deadline - t));
        if (rc == -EAGAIN)
            continue;
        if (rc == -EMSGSIZE) {
            fprintf(stderr, "%s: dropped a frame larger than %zu bytes\n", g->name,
                    sizeof(g->rxbuf));
            g->corrupt = true;
            continue;
        }
        if (rc < 0) {
            /* The backend broke the ring; it will not get better by asking again. */
            fprintf(stderr, "%s: receive error: %s\n", g->name, strerror(-rc));
            g->corrupt = true;
            break;
        }
        show_frame(g, (uint32_t)rc);
        n++;
    }
    return n;
}

static int run_step(struct guest *g, const struct step *st)
{
    unsigned long n;

    switch (st->kind) {
    case STEP_SLEEP:
        sleep_ms(st->ms);
        return 0;
    case STEP_SEND:
        return do_send(g, st);
    case STEP_RECV:
        receive(g, st->ms, RECV_ALL);
        return 0;
    case STEP_EXPECT:
        n = receive(g, st->ms, st->count);
        if (n < st->count) {
            fprintf(stderr, "%s: expected %lu frames within %lu ms, got %lu\n", g->name, st->count,
                    st->ms, n);
            return 1;
        }
        return 0;
    case STEP_EXPECT_NONE:
        n = receive(g, st->ms, 1);
        if (n) {
            fprintf(stderr, "%s: expected no frame within %lu ms, got one\n", g->name, st->ms);
            return 1;
        }
        return 0;
    case STEP_COUNT:
        n = receive(g, st->ms, RECV_ALL);
        printf("%s count %lu\n", g->name, n);
        return 0;
    }
    return 1;
}

static struct vuf_dev *connect_retry(const char *path, const struct vuf_config *cfg)
{
    uint64_t deadline = now_ms() + CONNECT_WAIT_MS;

    for (;;) {
        struct vuf_dev *d = vuf_connect(path, cfg);
        if (d)
            return d;
        int err = errno;
        /* The socket may not exist yet, or nobody listens yet: the backend is starting. */
        if ((err != ENOENT && err != ECONNREFUSED) || now_ms() >= deadline) {
            fprintf(stderr, "vsw-guest: cannot connect to %s: %s\n", path, strerror(err));
            return NULL;
        }
        sleep_ms(50);
    }
}

int main(int argc, char **argv)
{
    static struct guest g; /* two 64 KiB frame buffers: not on the stack */
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'}, {"mac", required_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'n'},   {"queue-size", required_argument, NULL, 'q'},
        {"script", required_argument, NULL, 'S'}, {"notify", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct vuf_config cfg = {0};
    const char *path = NULL, *mac = NULL;
    char *script = NULL;
    unsigned long qsize = 0;
    int c;

    setvbuf(stdout, NULL, _IOLBF, 0);
    g.name = "guest";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            path = optarg;
            break;
        case 'm':
            mac = optarg;
            break;
        case 'n':
            g.name = optarg;
            break;
        case 'q':
            if (parse_ulong(optarg, 1, VIRTQ_MAX_SIZE, &qsize) < 0 || (qsize & (qsize - 1))) {
                fprintf(stderr, "vsw-guest: --queue-size must be a power of two up to %d\n",
                        VIRTQ_MAX_SIZE);
                return 2;
            }
            cfg.queue_size = (uint16_t)qsize;
            break;
        case 'S':
            script = optarg;
            break;
        case 'N':
            cfg.notify = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !path || !mac || !script) {
        fprintf(stderr, "vsw-guest: --socket, --mac and --script are required\n");
        usage(stderr);
        return 2;
    }
    if (vsw_mac_parse(mac, &g.mac) < 0) {
        fprintf(stderr, "vsw-guest: bad MAC address \"%s\"\n", mac);
        return 2;
    }
    if (!vsw_name_valid(g.name)) {
        fprintf(stderr, "vsw-guest: bad name \"%s\" (1-31 of [A-Za-z0-9_.-])\n", g.name);
        return 2;
    }

    struct step *steps;
    int nsteps = parse_script(script, &steps);
    if (nsteps < 0) {
        usage(stderr);
        return 2;
    }

    g.dev = connect_retry(path, &cfg);
    if (!g.dev) {
        free(steps);
        return 2;
    }
    fprintf(stderr, "%s: connected to %s\n", g.name, path);

    int rc = 0;
    for (int i = 0; i < nsteps && rc == 0; i++)
        rc = run_step(&g, &steps[i]);

    /* Give the backend time to take what we sent before the disconnect stops the queues. */
    uint64_t deadline = now_ms() + DRAIN_MS;
    while (vuf_tx_pending(g.dev) && now_ms() < deadline)
        sleep_ms(1);
    vuf_close(g.dev);
    free(steps);
    if (rc == 0 && g.corrupt) {
        fprintf(stderr, "%s: received corrupted frames\n", g.name);
        rc = 1;
    }
    return rc;
}
