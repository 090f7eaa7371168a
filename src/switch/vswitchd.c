/*
 * vswitchd: the switch daemon. Parses the command line, starts the switch (PMD threads) and
 * the control server, and runs the control thread's event loop until SIGINT or SIGTERM.
 */
#include "ctl_server.h"
#include "loop.h"
#include "rpc.h"
#include "switch.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct vsw_loop *main_loop;

static void on_signal(int sig)
{
    (void)sig;
    if (main_loop)
        vsw_loop_stop(main_loop);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vswitchd [options]\n"
            "  --ctl PATH            control socket (default /run/vswitch/vswitchd.sock)\n"
            "  --run-dir DIR         where vhost-user sockets are created (default /run/vswitch)\n"
            "  --pmds N              number of PMD threads (default 1)\n"
            "  --pmd-cores LIST      CPU of each PMD, comma-separated (default: not pinned)\n"
            "  --no-sleep            PMDs busy-poll even when idle (default: sleep on kicks\n"
            "                        after --idle-us of no traffic)\n"
            "  --idle-us N           idle time before a PMD sleeps (default 200); it grows\n"
            "                        while the gaps in its traffic are short, up to\n"
            "  --idle-max-us N       (default 1000; = --idle-us: no adaptation)\n"
            "  --bridge NAME         create this bridge at start (may repeat)\n"
            "  --state FILE|none     configuration kept across restarts (default\n"
            "                        /var/lib/vswitch/state.json, or RUN_DIR/state.json when\n"
            "                        --run-dir is given)\n"
            "  --log-level LEVEL     err, warn, info (default) or debug\n"
            "  --version, --help\n");
}

static void die(const char *fmt, ...) VSW_PRINTF(1, 2);
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vswitchd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static unsigned parse_uint(const char *s, const char *what, unsigned max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > max)
        die("invalid %s '%s' (0..%u)", what, s, max);
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"ctl", required_argument, NULL, 'c'},
                                         {"run-dir", required_argument, NULL, 'r'},
                                         {"pmds", required_argument, NULL, 'p'},
                                         {"pmd-cores", required_argument, NULL, 'C'},
                                         {"no-sleep", no_argument, NULL, 'n'},
                                         {"idle-us", required_argument, NULL, 'i'},
                                         {"idle-max-us", required_argument, NULL, 'I'},
                                         {"bridge", required_argument, NULL, 'b'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"state", required_argument, NULL, 's'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *ctl_path = NULL;
    const char *state_opt = NULL;
    bool run_dir_given = false;
    const char *bridges[16];
    unsigned n_bridges = 0;
    static int cores[64];
    unsigned n_cores = 0;
    struct vsw_config cfg = {.run_dir = "/run/vswitch", .n_pmds = 1};
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ctl_path = optarg;
            break;
        case 'r':
            cfg.run_dir = optarg;
            run_dir_given = true;
            break;
        case 'p':
            cfg.n_pmds = parse_uint(optarg, "PMD count", 64);
            if (!cfg.n_pmds)
                die("--pmds must be at least 1");
            break;
        case 'C': {
            unsigned n = 0;
            char *dup = strdup(optarg), *save = NULL;
            for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (n == 64)
                    die("too many PMD cores");
                cores[n++] = (int)parse_uint(tok, "core", 4095);
            }
            free(dup);
            cfg.pmd_cores = cores;
            n_cores = n;
            if (cfg.n_pmds < n)
                cfg.n_pmds = n;
            break;
        }
        case 'n':
            cfg.pmd_no_sleep = true;
            break;
        case 'i':
            cfg.idle_sleep_us = parse_uint(optarg, "idle time", 10000000);
            break;
        case 'I':
            cfg.idle_max_us = parse_uint(optarg, "longest idle time", 10000000);
            break;
        case 's':
            state_opt = optarg;
            break;
        case 'b':
            if (n_bridges == ARRAY_SIZE(bridges))
                die("too many --bridge options");
            bridges[n_bridges++] = optarg;
            break;
        case 'l': {
            enum vsw_log_level lvl;
            if (vsw_log_parse_level(optarg, &lvl) < 0)
                die("invalid log level '%s'", optarg);
            vsw_log_set_level(lvl);
            break;
        }
        case 'V':
            printf("vswitchd %s\n", VSW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.pmd_cores && n_cores != cfg.n_pmds)
        die("--pmd-cores lists %u cores for %u PMDs", n_cores, cfg.n_pmds);
    char default_ctl[4096];
    if (!ctl_path) {
        snprintf(default_ctl, sizeof(default_ctl), "%s/vswitchd.sock", cfg.run_dir);
        ctl_path = default_ctl;
    }

    char state_buf[4096];
    if (state_opt && strcmp(state_opt, "none") == 0) {
        cfg.state_path = NULL;
    } else if (state_opt) {
        cfg.state_path = state_opt;
    } else if (run_dir_given) {
        snprintf(state_buf, sizeof(state_buf), "%s/state.json", cfg.run_dir);
        cfg.state_path = state_buf;
    } else {
        mkdir("/var/lib/vswitch", 0755);
        cfg.state_path = "/var/lib/vswitch/state.json";
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    main_loop = vsw_loop_create();
    if (!main_loop)
        die("cannot create the event loop: %s", strerror(errno));
    struct vsw_err err = {0};
    struct vsw *sw = vsw_create(&cfg, main_loop, &err);
    if (!sw)
        die("%s", err.msg);
    for (unsigned i = 0; i < n_bridges; i++) {
        int rc = vsw_br_add(sw, bridges[i], NULL, &err);
        if (rc < 0 && rc != -EEXIST) /* restored from the state file: fine */
            die("--bridge %s: %s", bridges[i], err.msg);
    }

    size_t n_methods;
    const struct rpc_method *methods = vsw_rpc_methods(&n_methods);
    struct ctl_server *srv = ctl_server_create(main_loop, ctl_path, methods, n_methods, sw);
    if (!srv)
        die("cannot listen on %s: %s", ctl_path, strerror(errno));
    vsw_log(VSW_LOG_INFO, "main", "vswitchd %s ready: control socket %s, %u PMD thread(s)",
            VSW_VERSION, ctl_path, cfg.n_pmds);

    vsw_loop_run(main_loop);

    vsw_log(VSW_LOG_INFO, "main", "shutting down");
    ctl_server_destroy(srv);
    vsw_destroy(sw);
    vsw_loop_destroy(main_loop);
    return 0;
}
