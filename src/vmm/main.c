/*
 * vswitch-vmm: command line parsing, then vmm_run(). See docs/vmm.md.
 *
 *   vswitch-vmm --kernel vmlinux|bzImage|ELF [--initrd FILE] [--cmdline S] [--mem 64M]
 *               [--cpus 1] [--name NAME] [--net BRIDGE[,mac=M] | --net vhost-user:PATH[,mac=M]]...
 *               [--console stdio|none|unix:PATH] [--ctl SOCKET] [--log-level L] [--dry-run]
 */
#include "vmm.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CTL "/run/vswitch/vswitchd.sock"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vswitch-vmm --kernel vmlinux|bzImage|ELF [--initrd FILE] [--cmdline STRING]\n"
            "                   [--mem SIZE] [--cpus N] [--name NAME]\n"
            "                   [--net BRIDGE[,mac=MAC]] [--net vhost-user:PATH[,mac=MAC]]...\n"
            "                   [--console stdio|none|unix:PATH] [--ctl SOCKET]\n"
            "                   [--log-level err|warn|info|debug] [--dry-run]\n"
            "  --kernel   found out from its contents: a Linux ELF vmlinux with a PVH note\n"
            "             (PVH entry), a bzImage (boot protocol 2.12+, 64-bit entry), or any\n"
            "             other ELF64 (the test guest: entered in 64-bit mode, raw boot)\n"
            "  --mem      guest memory, e.g. 64M or 1G (multiple of 2M; default 64M)\n"
            "  --name     the VM's name in `vswitchctl vm-list` (default vm<pid>)\n"
            "  --net      a virtio-net NIC on a vswitchd bridge (port created and removed by\n"
            "             the VMM) or on an existing vhost-user socket\n"
            "  --console  the serial port: stdio (default; input from stdin when it is a pipe\n"
            "             or our terminal, where Ctrl-A x quits), none, or unix:PATH (a\n"
            "             socket: one client at a time gets the output and types input)\n"
            "  --ctl      vswitchd control socket (default $VSWITCH_SOCK or %s)\n"
            "  --dry-run  build the machine (memory, ACPI tables, boot structures, registers)\n"
            "             and exit 0 without running it\n"
            "exit status: the byte the guest wrote to port 0xf4, 0 after an ACPI power-off\n"
            "             or reset, 2 usage error, %d VMM failure\n",
            DEFAULT_CTL, VMM_STATUS_ERROR);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    case '\0':
        break;
    default:
        return -EINVAL;
    }
    if (*end || v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

/* BRIDGE[,mac=M] or vhost-user:PATH[,mac=M] */
static int parse_net(const char *arg, struct vmm_net_cfg *n)
{
    char buf[256];
    memset(n, 0, sizeof(*n));
    if (strlen(arg) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, arg);
    char *opts = strchr(buf, ',');
    if (opts)
        *opts++ = 0;
    if (strncmp(buf, "vhost-user:", 11) == 0) {
        if (!buf[11] || strlen(buf + 11) >= sizeof(n->vhost_path))
            return -EINVAL;
        strcpy(n->vhost_path, buf + 11);
    } else {
        if (!vsw_name_valid(buf))
            return -EINVAL;
        strcpy(n->bridge, buf);
    }
    while (opts && *opts) {
        char *next = strchr(opts, ',');
        if (next)
            *next++ = 0;
        if (strncmp(opts, "mac=", 4) == 0) {
            struct vsw_mac m;
            if (vsw_mac_parse(opts + 4, &m) < 0 || (m.b[0] & 1))
                return -EINVAL;
            memcpy(n->mac, m.b, 6);
            n->mac_set = true;
        } else {
            return -EINVAL;
        }
        opts = next;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, 'k'},
        {"initrd", required_argument, NULL, 'i'},
        {"cmdline", required_argument, NULL, 'c'},
        {"mem", required_argument, NULL, 'm'},
        {"cpus", required_argument, NULL, 'p'},
        {"net", required_argument, NULL, 'n'},
        {"ctl", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'N'},
        {"dry-run", no_argument, NULL, 'D'},
        {"console", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vmm_config cfg = {.mem_size = 64ull << 20, .cpus = 1};
    const char *env = getenv("VSWITCH_SOCK");
    cfg.ctl_socket = env && *env ? env : DEFAULT_CTL;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            cfg.kernel = optarg;
            break;
        case 'i':
            cfg.initrd = optarg;
            break;
        case 'c':
            cfg.cmdline = optarg;
            break;
        case 'm':
            if (parse_size(optarg, &cfg.mem_size) < 0) {
                fprintf(stderr, "vswitch-vmm: bad --mem %s\n", optarg);
                return 2;
            }
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 8) {
                fprintf(stderr, "vswitch-vmm: --cpus must be 1..8\n");
                return 2;
            }
            cfg.cpus = (unsigned)v;
            break;
        }
        case 'n':
            if (cfg.nnets == VMM_MAX_NET_CFG) {
                fprintf(stderr, "vswitch-vmm: at most %d --net\n", VMM_MAX_NET_CFG);
                return 2;
            }
            if (parse_net(optarg, &cfg.nets[cfg.nnets]) < 0) {
                fprintf(stderr, "vswitch-vmm: bad --net %s\n", optarg);
                return 2;
            }
            cfg.nnets++;
            break;
        case 's':
            cfg.ctl_socket = optarg;
            break;
        case 'l': {
            enum vsw_log_level lvl;
            if (vsw_log_parse_level(optarg, &lvl) < 0) {
                fprintf(stderr, "vswitch-vmm: bad --log-level %s\n", optarg);
                return 2;
            }
            vsw_log_set_level(lvl);
            break;
        }
        case 'N':
            if (!vsw_name_valid(optarg)) {
                fprintf(stderr,
                        "vswitch-vmm: bad --name %s (1-%d of A-Z a-z 0-9 _ . -, not starting "
                        "with . or -)\n",
                        optarg, VSW_NAME_MAX - 1);
                return 2;
            }
            cfg.name = optarg;
            break;
        case 'D':
            cfg.dry_run = true;
            break;
        case 'C':
            if (vmm_console_check(optarg) < 0) {
                fprintf(stderr, "vswitch-vmm: bad --console %s (stdio, none or unix:PATH)\n",
                        optarg);
                return 2;
            }
            cfg.console = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !cfg.kernel) {
        usage(stderr);
        return 2;
    }
    if (cfg.mem_size < (2ull << 20) || cfg.mem_size % (2ull << 20)) {
        fprintf(stderr, "vswitch-vmm: --mem must be a multiple of 2M, at least 2M\n");
        return 2;
    }
    return vmm_run(&cfg);
}
