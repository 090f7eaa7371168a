#!/bin/bash
# The Linux boot paths of vswitch-vmm, as far as this machine can take them (its KVM is nested
# PVM: a stock kernel runs in KVM's instruction emulator and cannot get far). With the Debian
# cloud kernel and initramfs of scripts/build-guest-image.sh:
#  1. --dry-run builds the whole machine (memory, ACPI tables with two NICs from vswitchd, PVH
#     start info or zero page, registers) for the PVH vmlinux, the bzImage and the tiny guest,
#     and the ports it asked for are gone afterwards; broken kernels are refused.
#  2. A real PVH boot, cut short by the emulator here (or a whole boot where KVM is hardware-
#     backed): the kernel's own log shows it took our memory map, command line, initrd and ACPI
#     tables (RSDP, XSDT, FADT, MADT, DSDT with its AML) and the MADT's IOAPIC.
#  3. When QEMU is installed: the DSDT's AML loaded by Linux in QEMU (as an SSDT): Linux makes
#     one virtio-mmio device per LNRO0005 entry and probes it at our address, and binds our
#     PNP0501 UART — what Debian's kernel needs to find vswitch-vmm's NICs.
# Usage: test_vmm_linux_boot.sh [GUEST_CACHE]. Skips (77) without /dev/kvm or the guest image.
set -u
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"

ACPI_SSDT=${ACPI_SSDT:-$BUILD/tests/vmm/acpi_ssdt}
CACHE=${1:-$BUILD/tests/qemu/guest-image}

vmm_require "$VSWITCHD" "$VSWITCHCTL" "$VSWITCH_VMM" "$TINYGUEST" "$ACPI_SSDT"
vmm_guest_image "$CACHE"

vmm_tmpdir vsw-vmm-linux-boot
vmm() { "$VSWITCH_VMM" --ctl "$T/vswitchd.sock" "$@"; }

vmm_start_vswitchd

# 1. Dry runs: each kind of kernel, two NICs (so two LNRO0005 devices), two vCPUs.
dry() { # name expect-in-log args...
    local name=$1 want=$2
    shift 2
    vmm --dry-run --name "$name" --mem 256M --cpus 2 --net br0 --net br0 "$@" \
        >"$T/$name.out" 2>"$T/$name.err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        cat "$T/$name.err"
        fail "dry run $name exited $rc"
        return
    fi
    grep -q "boot: $want" "$T/$name.err" || { cat "$T/$name.err"; fail "$name: not booted as $want"; }
    grep -q "ACPI: RSDP 0xe0000, .*(.*2 CPUs, 2 virtio-mmio)" "$T/$name.err" ||
        fail "$name: ACPI tables"
    grep -q "dry run: $name built" "$T/$name.err" || fail "$name: no dry-run summary"
    grep -q "port vm[0-9]*-1 on bridge br0" "$T/$name.err" || fail "$name: no ports asked for"
    echo "ok: dry run $name ($want)"
}
dry pvh "ELF with a PVH note" --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0"
grep -q "start_info at 0x7000, initrd $(stat -c %s "$INITRD") bytes" "$T/pvh.err" ||
    fail "pvh: start info / initrd"
dry bzimage "bzImage" --kernel "$BZIMAGE" --initrd "$INITRD" --cmdline "console=ttyS0"
grep -q "zero page at 0x7000" "$T/bzimage.err" || fail "bzimage: zero page"
dry raw "ELF64 without a PVH note" --kernel "$TINYGUEST"
grep -q "command line: virtio_mmio.device=4K@0xd0000000:16 virtio_mmio.device=4K@0xd0001000:17" \
    "$T/raw.err" || fail "raw: the test guest's command line"
# Linux finds its NICs in the DSDT: no virtio_mmio.device= for it.
grep -q "command line: console=ttyS0$" "$T/pvh.err" || fail "pvh: command line changed"
[ "$(ctl vm-list | wc -l)" -eq 1 ] || { ctl vm-list; fail "dry runs left ports behind"; }

# Broken kernels are refused with a reason, before anything runs.
head -c 1000000 "$VMLINUX" >"$T/cut-vmlinux"
head -c 100000 "$BZIMAGE" >"$T/cut-bzimage"
head -c 4096 /dev/urandom >"$T/noise"
for k in cut-vmlinux noise; do
    vmm --dry-run --kernel "$T/$k" >/dev/null 2>"$T/$k.err"
    rc=$?
    [ $rc -eq 125 ] && grep -q "vmm.*$T/$k" "$T/$k.err" || { cat "$T/$k.err"; fail "$k: exit $rc"; }
done
vmm --dry-run --kernel "$T/cut-bzimage" --mem 64M >/dev/null 2>"$T/cut-bz.err"
rc=$?
[ $rc -eq 125 ] || { cat "$T/cut-bz.err"; fail "cut bzImage: exit $rc"; }
vmm --dry-run --kernel "$TINYGUEST" --initrd "$INITRD" >/dev/null 2>"$T/raw-initrd.err"
[ $? -eq 125 ] && grep -q "needs a bzImage or a PVH kernel" "$T/raw-initrd.err" ||
    fail "--initrd with the raw test guest"
vmm --dry-run --kernel "$VMLINUX" --mem 16M >/dev/null 2>"$T/small.err"
[ $? -eq 125 ] || fail "a kernel larger than guest memory"
echo "ok: broken or misfitting kernels refused"

# 2. A real PVH boot. Here the emulator gives up early (the VMM then exits 125); where KVM is
# hardware-backed the guest runs its /init, which powers off (no vsw.ip) with status 0.
timeout 180 "$VSWITCH_VMM" --kernel "$VMLINUX" --initrd "$INITRD" --mem 256M --name early \
    --cmdline "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 vsw.role=idle vsw.wait=1" \
    >"$T/early.out" 2>"$T/early.err"
rc=$?
echo "PVH boot ended with status $rc; the guest's log:"
grep -E "Linux version|BIOS-e820|Command line|RAMDISK|ACPI:|IOAPIC|smpboot|VSW-" "$T/early.out"
want=(
    "Linux version"
    "BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable"
    "BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable"
    "Command line: console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 vsw.role=idle"
    "RAMDISK: \[mem 0x"
    "ACPI: RSDP 0x00000000000E0000 000024 (v02 VSWTCH)"
    "ACPI: XSDT 0x[0-9A-F]* 000034 (v01 VSWTCH VSWVMM"
    "ACPI: FACP 0x[0-9A-F]* 000114 (v06 VSWTCH VSWVMM"
    "ACPI: DSDT 0x[0-9A-F]* [0-9A-F]* (v02 VSWTCH VSWVMM"
    "ACPI: APIC 0x[0-9A-F]* [0-9A-F]* (v05 VSWTCH VSWVMM"
    "IOAPIC\[0\]: apic_id 0, version [0-9]*, address 0xfec00000, GSI 0-23"
)
for w in "${want[@]}"; do
    grep -q "$w" "$T/early.out" || fail "PVH boot: no \"$w\" in the guest's log"
done
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
    [ $rc -eq 0 ] && grep -q "^VSW-DONE" "$T/early.out" || fail "PVH boot on hardware KVM: exit $rc"
fi
echo "ok: Linux took the PVH start info, memory map, initrd and ACPI tables"

# 3. Linux itself reading the DSDT's AML (in QEMU, where it can run here).
QEMU=$(command -v qemu-system-x86_64 || true)
if [ -z "$QEMU" ]; then
    echo "note: qemu-system-x86_64 not installed: the DSDT is checked by the unit tests only"
else
    "$ACPI_SSDT" "$T/ssdt.aml" 3 || fail "acpi_ssdt"
    KHZ=$(awk '/cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo)
    timeout 300 "$QEMU" -accel tcg -cpu max -M q35 -m 256M -smp 1 -nographic -no-reboot \
        -serial mon:stdio -kernel "$VMLINUX" -initrd "$INITRD" \
        -append "console=ttyS0 panic=-1 tsc_early_khz=${KHZ:-2000000} vsw.role=idle vsw.wait=1" \
        -acpitable file="$T/ssdt.aml" </dev/null >"$T/qemu.out" 2>&1
    grep -E "SSDT|LNRO0005|0x3f8" "$T/qemu.out"
    grep -q "ACPI: SSDT .*VSWTCH VSWVMM" "$T/qemu.out" || fail "QEMU: our table not loaded"
    for i in 0 1 2; do
        # QEMU has nothing at 0xd000n000: the probe reads no "virt" magic, which proves Linux
        # made the device from our _HID and mapped our Memory32Fixed.
        grep -q "virtio-mmio LNRO0005:0$i: Wrong magic value" "$T/qemu.out" ||
            fail "QEMU: Linux did not probe LNRO0005:0$i"
    done
    grep -q "ttyS0 at I/O 0x3f8 (irq = 4" "$T/qemu.out" || fail "QEMU: no PNP0501 UART"
    echo "ok: Linux parsed the DSDT's AML (3 virtio-mmio devices, the UART)"
fi

if [ $FAILED -ne 0 ]; then
    for f in vswitchd.log early.err; do echo "--- $f"; cat "$T/$f"; done
    exit 1
fi
echo "PASS"
exit 0
