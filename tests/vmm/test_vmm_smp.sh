#!/bin/bash
# Integration: --cpus N. The VMM sets up only the BSP; the other vCPUs wait in KVM's in-kernel
# LAPIC. The tiny guest (smp=1) starts each of them as an OS does (INIT, STARTUP, STARTUP to
# APIC ids 1..N-1, the ids of our MADT and CPUID) and each runs a real-mode trampoline that
# reports its CPUID APIC id. Checked for 2 and 4 vCPUs, and that one vCPU starts none.
# Needs /dev/kvm (else SKIP, exit 77).
set -u
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"

vmm_require "$VSWITCH_VMM" "$TINYGUEST"
vmm_tmpdir vsw-vmm-smp

for n in 1 2 4; do
    timeout 60 "$VSWITCH_VMM" --kernel "$TINYGUEST" --mem 16M --cpus $n --cmdline 'smp=1' \
        >"$T/$n.out" 2>"$T/$n.err" </dev/null
    rc=$?
    cat "$T/$n.out"
    [ $rc -eq 0 ] || { cat "$T/$n.err"; fail "--cpus $n: exit $rc"; }
    grep -q "^smp: $n cpus, bsp apic id 0" "$T/$n.out" || fail "--cpus $n: CPU count"
    for ((id = 1; id < n; id++)); do
        grep -q "^smp: cpu $id started, apic id $id\$" "$T/$n.out" || fail "--cpus $n: cpu $id"
    done
    [ "$(grep -c '^smp: cpu' "$T/$n.out")" -eq $((n - 1)) ] || fail "--cpus $n: AP count"
done
[ $FAILED -eq 0 ] || exit 1
echo "PASS"
exit 0
