#!/usr/bin/env bash
# Installs what vswitch needs to build, test and demo, from Debian 12's packages.
# Idempotent: does nothing when everything is already installed. Needs root.
set -euo pipefail

PKGS=(
  gcc pkg-config meson ninja-build        # build
  libdpdk-dev                             # rte_hash (FDB), rte_rcu_qsbr (RCU); EAL memory only
  libjansson-dev                          # JSON: control protocol, state
  libcmocka-dev                           # unit tests
  dpdk-dev                                # dpdk-testpmd: independent vhost-user peer in tests
  iproute2 procps psmisc                  # namespaces, process handling in tests
  qemu-system-x86 busybox-static linux-image-cloud-amd64 cpio lz4 zstd xz-utils kmod binutils
                                          # real Linux guests under QEMU (tests/qemu)
  clang libclang-rt-14-dev                # libFuzzer for long fuzz runs (tests/fuzz)
)
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
