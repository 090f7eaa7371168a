/*
 * vmm: vswitch-vmm, a small KVM VMM whose NICs are virtio-net devices served by vswitchd over
 * vhost-user (the VMM is out of the data path). See docs/vmm.md.
 *
 * vmm_run() builds the machine from a configuration, runs it until the guest powers off,
 * resets, or a signal (SIGINT, SIGTERM) arrives, and tears everything down, removing the
 * switch ports it created. Called once, from main().
 */
#ifndef VSW_VMM_H
#define VSW_VMM_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_MAX_NET_CFG 8

struct vmm_net_cfg {
    char bridge[32];      /* ask vswitchd for a port on this bridge ... */
    char vhost_path[108]; /* ... or connect to this vhost-user socket */
    uint8_t mac[6];
    bool mac_set;
};

struct vmm_config {
    const char *name;    /* told to vswitchd with the ports (vm-list); NULL: vm<pid> */
    const char *kernel;  /* bzImage, ELF vmlinux with a PVH note, or ELF64 test guest */
    const char *initrd;  /* with a bzImage or PVH kernel; may be NULL */
    const char *cmdline; /* handed to the guest; may be NULL */
    uint64_t mem_size;
    unsigned cpus;
    const char *ctl_socket; /* vswitchd control socket for --net BRIDGE */
    unsigned nnets;
    struct vmm_net_cfg nets[VMM_MAX_NET_CFG];
    bool dry_run;        /* build the machine (memory, tables, registers), then stop: status 0 */
    const char *console; /* NULL or "stdio", "none", "unix:PATH" (see docs/vmm.md) */
};

/*
 * Run the VM. Returns the process exit status: the byte the guest wrote to the exit port,
 * 0 after an ACPI power-off or a reset (or a successful dry run), or VMM_STATUS_ERROR when
 * the VMM failed (logged).
 */
#define VMM_STATUS_ERROR 125
int vmm_run(const struct vmm_config *cfg);
/* 0 when spec is a valid --console value (stdio, none, unix:PATH), else -EINVAL. */
int vmm_console_check(const char *spec);

#endif
