# Shared set-up of the vswitch-vmm test scripts (sourced, not run): binaries, KVM check, the
# Linux guest image, a temp dir whose processes are ended by PID, and a vswitchd with br0.
# shellcheck shell=bash

BUILD=${MESON_BUILD_ROOT:-$(cd "$(dirname "$0")/../../build" 2>/dev/null && pwd)}
SRC=${VSW_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
VSWITCHD=${VSWITCHD:-$BUILD/src/switch/vswitchd}
VSWITCHCTL=${VSWITCHCTL:-$BUILD/ctl/vswitchctl}
VSW_GUEST=${VSW_GUEST:-$BUILD/tests/guests/vsw-guest}
VSWITCH_VMM=${VSWITCH_VMM:-$BUILD/src/vmm/vswitch-vmm}
TINYGUEST=${TINYGUEST:-$BUILD/tests/guests/tinyguest/tinyguest}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-180}

skip() { echo "SKIP: $*"; exit 77; }

# Skip without a usable /dev/kvm; fail if any of the given binaries is missing.
vmm_require() {
    [ -e /dev/kvm ] || skip "/dev/kvm is missing"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not accessible to $(id -un)"
    for b in "$@"; do
        [ -x "$b" ] || { echo "FAIL: $b not built"; exit 1; }
    done
}

# Build (or reuse) the Debian kernel + busybox image in $1; sets VMLINUX, INITRD, BZIMAGE.
vmm_guest_image() {
    "$SRC/scripts/build-guest-image.sh" "$1" >/dev/null
    case $? in
    0) ;;
    77) skip "the guest image cannot be built here (packages missing)" ;;
    *) echo "FAIL: scripts/build-guest-image.sh"; exit 1 ;;
    esac
    VMLINUX=$1/vmlinux
    INITRD=$1/initrd.cpio.gz
    BZIMAGE=/boot/vmlinuz-$(cat "$1/kver")
}

# A temp dir $T (removed at exit) and $PIDS (each killed and reaped at exit).
vmm_tmpdir() {
    T=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap vmm_cleanup EXIT
}
vmm_cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ctl() { "$VSWITCHCTL" --socket "$T/vswitchd.sock" "$@"; }

# vswitchd in $T with bridge br0 and no state file; its PID in VSWD (and in PIDS).
vmm_start_vswitchd() {
    "$VSWITCHD" --run-dir "$T" --ctl "$T/vswitchd.sock" --state none --bridge br0 \
        >"$T/vswitchd.log" 2>&1 &
    VSWD=$!
    PIDS+=("$VSWD")
    for _ in $(seq 100); do
        [ -S "$T/vswitchd.sock" ] && ctl version >/dev/null 2>&1 && break
        sleep 0.1
    done
    ctl version >/dev/null 2>&1 || {
        cat "$T/vswitchd.log"
        echo "FAIL: vswitchd did not start"
        exit 1
    }
}
