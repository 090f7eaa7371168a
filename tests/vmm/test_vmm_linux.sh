#!/bin/bash
# Linux guests under vswitch-vmm: two Debian cloud kernels with the busybox initramfs of
# scripts/build-guest-image.sh on one vswitchd bridge ping each other. Guest "lin-ping" boots
# the ELF vmlinux through PVH, guest "lin-serve" the bzImage through the Linux boot protocol,
# so both boot paths and the ACPI tables (Debian's kernel finds the virtio-mmio NICs only in
# the DSDT) are exercised. vm-list shows both while they run; their ports go with them.
#
# Needs KVM backed by hardware virtualization (vmx or svm in /proc/cpuinfo): under a nested or
# emulated KVM (this project's build machine: nested PVM) a stock kernel cannot run under
# vswitch-vmm, and the test is skipped (77) saying why. Usage: test_vmm_linux.sh [GUEST_CACHE]
set -u
GUEST_TIMEOUT=${GUEST_TIMEOUT:-240}
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"
CACHE=${1:-$BUILD/tests/qemu/guest-image}

[ -e /dev/kvm ] || skip "/dev/kvm is missing"
grep -qwE 'vmx|svm' /proc/cpuinfo ||
    skip "KVM is not hardware-backed here (no vmx/svm in /proc/cpuinfo): Linux guests cannot run under vswitch-vmm"
vmm_require "$VSWITCHD" "$VSWITCHCTL" "$VSWITCH_VMM"
vmm_guest_image "$CACHE"

vmm_tmpdir vsw-vmm-linux

vmm_start_vswitchd

guest() { # name kernel mac cmdline
    timeout "$GUEST_TIMEOUT" "$VSWITCH_VMM" --ctl "$T/vswitchd.sock" --name "$1" --kernel "$2" \
        --initrd "$INITRD" --mem 256M --cpus 2 --net "br0,mac=$3" \
        --cmdline "console=ttyS0 panic=-1 $4" >"$T/$1.out" 2>"$T/$1.err" &
    PIDS+=("$!")
}
guest lin-serve "$BZIMAGE" 52:54:00:00:0d:02 \
    "vsw.ip=10.0.0.2/24 vsw.peer=10.0.0.1 vsw.role=serve vsw.wait=120"
PID_S=$!
guest lin-ping "$VMLINUX" 52:54:00:00:0d:01 \
    "vsw.ip=10.0.0.1/24 vsw.peer=10.0.0.2 vsw.role=ping vsw.count=5 vsw.wait=120"
PID_P=$!

for _ in $(seq 100); do
    [ "$(ctl vm-list 2>/dev/null | grep -c '^lin-')" -ge 2 ] && break
    sleep 0.1
done
ctl vm-list | tee "$T/vm-list.out"
[ "$(grep -c '^lin-' "$T/vm-list.out")" -eq 2 ] || fail "vm-list does not show both guests"

wait "$PID_P"; RC_P=$?
wait "$PID_S"; RC_S=$?
for g in lin-ping lin-serve; do
    echo "--- $g"
    grep -E "^VSW-|Linux version|virtio" "$T/$g.out"
done
[ $RC_P -eq 0 ] || fail "lin-ping exited $RC_P"
[ $RC_S -eq 0 ] || fail "lin-serve exited $RC_S"
for g in lin-ping lin-serve; do
    grep -q "^VSW-NET eth0 " "$T/$g.out" || fail "$g: no eth0 (virtio-mmio NIC not found via ACPI?)"
    grep -q "^VSW-DONE" "$T/$g.out" || fail "$g: did not finish"
done
grep -q "^VSW-RESULT ping ok 5/5" "$T/lin-ping.out" || fail "lin-ping: pings"
grep -q "^VSW-RESULT serve ok" "$T/lin-serve.out" || fail "lin-serve: no bye from the peer"
[ "$(ctl vm-list | wc -l)" -eq 1 ] || { ctl vm-list; fail "vm-list not empty after the guests"; }
if ctl port-list | grep -q '^vm[0-9]'; then
    ctl port-list
    fail "VMM ports left behind"
fi

if [ $FAILED -ne 0 ]; then
    for f in lin-ping.out lin-ping.err lin-serve.out lin-serve.err vswitchd.log; do
        echo "--- $f"
        cat "$T/$f"
    done
    exit 1
fi
echo "PASS"
exit 0
