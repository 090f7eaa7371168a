#!/usr/bin/env bash
# Builds a real Linux test guest from Debian packages, for QEMU (TCG) runs against vswitchd:
#   CACHE/vmlinux          ELF vmlinux of linux-image-cloud-amd64 (boots through its PVH note)
#   CACHE/initrd.cpio.gz   busybox-static + the virtio modules + an /init that runs one job
#   CACHE/kver             the kernel version used
# Recipe and measurements: ../shared/notes/qemu-guests.md.
#
# Usage: scripts/build-guest-image.sh [CACHE]      (default: build-guest/)
# Idempotent: when the outputs exist and no input changed (this script, the kernel, the
# modules, busybox) it only prints the paths. Installs its Debian packages if missing (root).
# Exit: 0 ok, 1 error, 77 the packages are missing and cannot be installed.
#
# The guest's job comes from the kernel command line (all optional but vsw.ip):
#   vsw.ip=10.0.0.1/24   address of eth0 (static)
#   vsw.peer=10.0.0.2    the other guest
#   vsw.role=ROLE        ping        ping the peer vsw.count times, then tell it "bye" (TCP 5000)
#                        serve       answer pings; wait for "bye" on TCP 5000
#                        http-serve  make a vsw.size MB random file, serve it with httpd, print
#                                    its md5sum, wait for "bye"
#                        http-get    fetch http://PEER/blob, print its md5sum and size, "bye"
#                        pingloop    vsw.count single pings, one "VSW-PING <i> ok|lost" line
#                                    each, then "bye"
#                        idle        configure eth0, print the markers, wait vsw.wait seconds
#   vsw.count=5 vsw.size=10 (MB) vsw.wait=40 (seconds for any wait on the peer)
#   vsw.mtu=N (eth0's MTU)  vsw.psize=56 (ping payload bytes, role ping)
# Console marker lines (one per line, at the start of the line):
#   VSW-BOOT <kernel release>          /init started
#   VSW-NET eth0 <mac> <ip>            eth0 configured
#   VSW-FEATURES <0101...>             virtio features negotiated by the driver, bit 0 first
#   VSW-MD5 <serve|get> <md5> <bytes>  checksum of the file served / fetched
#   VSW-RESULT <what> ok|fail ...      the job's verdict, e.g. "VSW-RESULT ping ok 5/5"
#   VSW-DONE                           just before poweroff -f
set -euo pipefail

CACHE=${1:-build-guest}
PKGS=(qemu-system-x86 busybox-static linux-image-cloud-amd64 cpio lz4 xz-utils zstd gzip kmod
    binutils)
# In the order they depend on each other (insmod does not resolve dependencies).
MODULES=(virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    failover net_failover virtio_net)

log() { echo "build-guest-image: $*" >&2; }
die() {
    log "$*"
    exit 1
}

install_packages() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        log "missing packages and cannot install them (need root and apt-get): ${missing[*]}"
        exit 77
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
    if ! "${apt[@]}" install "${missing[@]}" >&2; then
        apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || true
        "${apt[@]}" install "${missing[@]}" >&2 || {
            log "apt-get could not install: ${missing[*]}"
            exit 77
        }
    fi
}

# The newest installed cloud kernel, unless VSW_GUEST_KVER names one.
pick_kernel() {
    local kver=${VSW_GUEST_KVER:-}
    if [ -z "$kver" ]; then
        kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' |
            sed 's/^vmlinuz-//' | sort -V | tail -n 1)
    fi
    if [ -z "$kver" ] || [ ! -f "/boot/vmlinuz-$kver" ]; then
        die "no /boot/vmlinuz-*-cloud-amd64"
    fi
    [ -d "/lib/modules/$kver" ] || die "no /lib/modules/$kver"
    echo "$kver"
}

module_path() { # kver name
    local p
    p=$(modinfo -k "$1" -n "$2" 2>/dev/null) ||
        p=$(find "/lib/modules/$1" -name "$2.ko*" -print -quit)
    if [ -z "$p" ] || [ ! -f "$p" ]; then
        die "module $2 not found for kernel $1"
    fi
    echo "$p"
}

# Decompress a module to $2 whatever its compression (.ko, .ko.xz, .ko.zst, .ko.gz).
copy_module() {
    case "$1" in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" >"$2" ;;
    *.ko.zst) zstd -q -dc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
    *) die "unknown module format: $1" ;;
    esac
}

# The kernel's scripts/extract-vmlinux, for the formats Debian uses: find each compressed
# stream's magic in the bzImage, decompress from there, keep the first result that is ELF.
extract_vmlinux() { # bzImage out
    local img=$1 out=$2 fmt magic off
    for fmt in lz4 gzip xz zstd; do
        case $fmt in
        lz4) magic='\x02\x21\x4c\x18' ;;
        gzip) magic='\x1f\x8b\x08' ;;
        xz) magic='\xfd\x37\x7a\x58\x5a\x00' ;;
        zstd) magic='\x28\xb5\x2f\xfd' ;;
        esac
        while read -r off; do
            # Trailing data after the stream makes the decompressors complain: ignore that
            # and judge by the result.
            case $fmt in
            lz4) tail -c +$((off + 1)) "$img" | lz4 -dc >"$out" 2>/dev/null || true ;;
            gzip) tail -c +$((off + 1)) "$img" | gzip -dc >"$out" 2>/dev/null || true ;;
            xz) tail -c +$((off + 1)) "$img" | xz -dc >"$out" 2>/dev/null || true ;;
            zstd) tail -c +$((off + 1)) "$img" | zstd -q -dc >"$out" 2>/dev/null || true ;;
            esac
            if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
                log "vmlinux: $fmt stream at offset $off"
                return 0
            fi
        done < <(LC_ALL=C grep -aboP "$magic" "$img" 2>/dev/null | cut -d: -f1)
    done
    die "no ELF vmlinux found in $img"
}

write_init() { # file
    cat >"$1" <<'EOF'
#!/bin/sh
# vswitch test guest /init: one job from the kernel command line, markers on the console.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mkdir -p /tmp /www
mount -t tmpfs tmpfs /tmp

finish() {
    echo "VSW-DONE"
    sync
    poweroff -f
    sleep 10
}
result() { echo "VSW-RESULT $*"; }

echo "VSW-BOOT $(uname -r)"

ip= peer= role=idle count=5 size=10 wait=40 mtu= psize=56
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    vsw.ip=*) ip=${arg#vsw.ip=} ;;
    vsw.peer=*) peer=${arg#vsw.peer=} ;;
    vsw.role=*) role=${arg#vsw.role=} ;;
    vsw.count=*) count=${arg#vsw.count=} ;;
    vsw.size=*) size=${arg#vsw.size=} ;;
    vsw.wait=*) wait=${arg#vsw.wait=} ;;
    vsw.mtu=*) mtu=${arg#vsw.mtu=} ;;
    vsw.psize=*) psize=${arg#vsw.psize=} ;;
    esac
done

for m in $(cat /etc/vsw-modules); do
    insmod "/lib/modules/$m.ko" || echo "VSW-WARN insmod $m failed"
done

n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
if [ ! -e /sys/class/net/eth0 ] || [ -z "$ip" ]; then
    result net fail "no eth0 or no vsw.ip"
    finish
fi
ip link set lo up
ip addr add "$ip" dev eth0
if [ -n "$mtu" ] && ! ip link set eth0 mtu "$mtu"; then
    result net fail "cannot set MTU $mtu"
    finish
fi
ip link set eth0 up
echo "VSW-NET eth0 $(cat /sys/class/net/eth0/address) $ip"
# The virtio feature bits the driver negotiated, bit 0 first (e.g. 15 MRG_RXBUF, 34 RING_PACKED).
echo "VSW-FEATURES $(cat /sys/class/net/eth0/device/features 2>/dev/null)"

# Wait until the peer answers a ping (it boots at the same time as we do).
wait_peer() {
    local t=0
    while [ $t -lt "$wait" ]; do
        ping -c 1 -W 1 "$peer" >/dev/null 2>&1 && return 0
        t=$((t + 1))
    done
    return 1
}

# Tell the peer we are done, so it can stop: TCP to its port 5000.
say_bye() {
    local t=0
    while [ $t -lt 20 ]; do
        echo bye | nc -w 2 "$peer" 5000 >/dev/null 2>&1 && return 0
        sleep 0.5
        t=$((t + 1))
    done
    echo "VSW-WARN bye not delivered"
}

# Wait for the peer's "bye" on TCP 5000.
wait_bye() {
    timeout "$wait" nc -l -p 5000 >/tmp/bye 2>/dev/null
    if grep -q bye /tmp/bye; then
        result "$1" ok bye
    else
        result "$1" fail "no bye within ${wait}s"
    fi
}

case "$role" in
ping)
    if ! wait_peer; then
        result ping fail "peer $peer not reachable within ${wait}s"
        finish
    fi
    got=$(ping -c "$count" -s "$psize" -i 0.2 -W 2 "$peer" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    if [ "${got:-0}" = "$count" ]; then
        result ping ok "$got/$count"
    else
        result ping fail "${got:-0}/$count"
    fi
    say_bye
    ;;
serve)
    wait_bye serve
    ;;
http-serve)
    dd if=/dev/urandom of=/www/blob bs=1M count="$size" 2>/dev/null
    echo "VSW-MD5 serve $(md5sum </www/blob | cut -d' ' -f1) $(wc -c </www/blob)"
    httpd -p 80 -h /www
    wait_bye http-serve
    ;;
http-get)
    if ! wait_peer; then
        result http fail "peer $peer not reachable within ${wait}s"
        finish
    fi
    t=0
    ok=
    while [ $t -lt "$wait" ]; do
        if wget -q -O /tmp/blob "http://$peer/blob" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 1
        t=$((t + 1))
    done
    if [ -n "$ok" ]; then
        echo "VSW-MD5 get $(md5sum </tmp/blob | cut -d' ' -f1) $(wc -c </tmp/blob)"
        result http ok "$(wc -c </tmp/blob) bytes"
    else
        result http fail "wget http://$peer/blob failed"
    fi
    say_bye
    ;;
pingloop)
    # One ping at a time, a line each, vsw.count times: for tests that break the path in the
    # middle (restart the switch) and look for pings answered again afterwards.
    if ! wait_peer; then
        result pingloop fail "peer $peer not reachable within ${wait}s"
        finish
    fi
    echo "VSW-READY"
    i=0 ok=0
    while [ $i -lt "$count" ]; do
        if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then
            echo "VSW-PING $i ok"
            ok=$((ok + 1))
        else
            echo "VSW-PING $i lost"
        fi
        sleep 0.2
        i=$((i + 1))
    done
    result pingloop ok "$ok/$count answered"
    say_bye
    ;;
idle)
    result idle ok
    sleep "$wait"
    ;;
*)
    result "$role" fail "unknown role"
    ;;
esac
finish
EOF
    chmod 755 "$1"
}

install_packages
KVER=$(pick_kernel)
VMLINUZ=/boot/vmlinuz-$KVER
BUSYBOX=$(command -v busybox || true)
[ -x /bin/busybox ] && BUSYBOX=/bin/busybox
[ -n "$BUSYBOX" ] || die "busybox not found"
# It runs alone in the initramfs: no program interpreter (dynamic loader) allowed.
if readelf -l "$BUSYBOX" | grep -q 'program interpreter'; then
    die "$BUSYBOX is not statically linked (Debian package busybox-static)"
fi

mod_paths=()
for m in "${MODULES[@]}"; do
    mod_paths+=("$(module_path "$KVER" "$m")")
done

# Everything the outputs depend on; unchanged stamp = nothing to do.
stamp=$( {
    echo "kver $KVER"
    sha256sum "${BASH_SOURCE[0]}" "$VMLINUZ" "$BUSYBOX" "${mod_paths[@]}" | cut -d' ' -f1
} | sha256sum | cut -d' ' -f1)

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
exec {lockfd}>"$CACHE/.lock"
flock "$lockfd" # another test building the same cache: wait for it

if [ -s "$CACHE/vmlinux" ] && [ -s "$CACHE/initrd.cpio.gz" ] && [ -f "$CACHE/stamp" ] &&
    [ "$(cat "$CACHE/stamp")" = "$stamp" ]; then
    log "up to date: $CACHE (kernel $KVER)"
    echo "$CACHE"
    exit 0
fi

log "building in $CACHE (kernel $KVER)"
work=$(mktemp -d "$CACHE/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

extract_vmlinux "$VMLINUZ" "$work/vmlinux"
if command -v readelf >/dev/null && ! readelf -n "$work/vmlinux" | grep -q 'Xen'; then
    log "warning: no Xen/PVH ELF note in vmlinux; QEMU may not boot it with -kernel"
fi

root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,www}
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
for i in "${!MODULES[@]}"; do
    copy_module "${mod_paths[$i]}" "$root/lib/modules/${MODULES[$i]}.ko"
done
echo "${MODULES[*]}" >"$root/etc/vsw-modules"
write_init "$root/init"
# The kernel opens /dev/console for /init before devtmpfs is mounted: give it one (needs
# root; /init also reopens the console after mounting devtmpfs, so this is belt and braces).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --quiet --owner=0:0) >"$work/initrd.cpio"
gzip -9n <"$work/initrd.cpio" >"$work/initrd.cpio.gz"

mv -f "$work/vmlinux" "$CACHE/vmlinux"
mv -f "$work/initrd.cpio.gz" "$CACHE/initrd.cpio.gz"
echo "$KVER" >"$CACHE/kver"
echo "$stamp" >"$CACHE/stamp"
log "built $CACHE/vmlinux and $CACHE/initrd.cpio.gz"
echo "$CACHE"
