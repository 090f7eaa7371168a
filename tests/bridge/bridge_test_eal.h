/*
 * The DPDK EAL the bridge's unit tests need for rte_hash: no hugepages, no PCI, no shared
 * config, a file prefix of the test's name and pid (so parallel tests never meet), and the
 * process's CPU affinity given back (rte_eal_init pins the calling thread to one core; the
 * concurrency tests want both). Returns 0 or -1.
 */
#ifndef VSW_BRIDGE_TEST_EAL_H
#define VSW_BRIDGE_TEST_EAL_H

#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include <rte_eal.h>

static inline int bridge_test_eal_init(const char *name, const char *mem_mb)
{
    char prefix[64];
    char *argv[] = {(char *)"test",
                    (char *)"--no-huge",
                    (char *)"--no-pci",
                    (char *)"-m",
                    (char *)mem_mb,
                    (char *)"--no-shconf",
                    (char *)"--no-telemetry",
                    (char *)"--log-level=error",
                    prefix};
    cpu_set_t cpus;
    int ret;

    snprintf(prefix, sizeof(prefix), "--file-prefix=%s_%d", name, (int)getpid());
    if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0)
        return -1;
    ret = rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv);
    sched_setaffinity(0, sizeof(cpus), &cpus);
    return ret < 0 ? -1 : 0;
}

#endif
