#!/usr/bin/env bash
# The run command: installs what is missing, builds (release), starts vswitchd, attaches
# simulated guests and shows what the switch does so far, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build -Dbuildtype=release -Dtests=disabled >/dev/null
ninja -C build >/dev/null

RUN=$(mktemp -d /tmp/vswitch-demo.XXXXXX)
VSWITCHD=build/src/switch/vswitchd
CTL="build/ctl/vswitchctl --socket $RUN/vswitchd.sock"
GUEST=build/tests/guests/vsw-guest
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "start vswitchd (1 PMD thread, sleeps on guest kicks when idle)"
$VSWITCHD --run-dir "$RUN" >"$RUN/vswitchd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$RUN/vswitchd.sock" ] && break; sleep 0.1; done

step "a bridge with three vhost-user ports"
show $CTL br-add br0
for vm in vm1 vm2 vm3; do show $CTL port-add br0 $vm; done
show $CTL br-add lab
show $CTL port-add lab vm4

step "attach four simulated guests (vhost-user frontends with their own memory and rings)"
# vm1 broadcasts; everybody on br0 hears it, vm4 on the other bridge does not.
# vm2 answers vm1 by unicast: the switch learnt vm1, so only vm1 gets it.
# vm3 sends to a MAC nobody has: unknown unicast floods to vm1 and vm2.
$GUEST --socket "$RUN/vm1.sock" --mac 02:00:00:00:00:01 --name vm1 \
  --script "sleep 300; send ff:ff:ff:ff:ff:ff 1; recv 2200" >"$RUN/vm1.out" 2>&1 & pids+=($!)
$GUEST --socket "$RUN/vm2.sock" --mac 02:00:00:00:00:02 --name vm2 \
  --script "sleep 600; send 02:00:00:00:00:01 3; recv 1900" >"$RUN/vm2.out" 2>&1 & pids+=($!)
$GUEST --socket "$RUN/vm3.sock" --mac 02:00:00:00:00:03 --name vm3 \
  --script "sleep 900; send 02:00:00:00:00:99 1; recv 1600" >"$RUN/vm3.out" 2>&1 & pids+=($!)
$GUEST --socket "$RUN/vm4.sock" --mac 02:00:00:00:00:04 --name vm4 \
  --script "recv 2500" >"$RUN/vm4.out" 2>&1 & pids+=($!)
sleep 0.5
show $CTL port-list
sleep 1

step "the learnt addresses, counters and PMD load (guests still attached)"
show $CTL fdb-show br0
show $CTL stats
show $CTL br-list
for p in "${pids[@]:1}"; do wait "$p" || true; done

step "what each guest sent and received"
for vm in vm1 vm2 vm3 vm4; do grep -v connected "$RUN/$vm.out" | sed "s/^/  /" || true; done

step "two VMs under vswitch-vmm on br0 (tiny test guests: polled virtio-net, ARP, ICMP, UDP)"
VMM=build/src/vmm/vswitch-vmm
TINY=build/tests/guests/tinyguest/tinyguest
if [ -c /dev/kvm ] && [ -x "$VMM" ] && [ -f "$TINY" ]; then
  # Each VMM asks vswitchd for a port on br0 (--net br0) and removes it when the guest ends.
  $VMM --ctl "$RUN/vswitchd.sock" --kernel "$TINY" --mem 16M --net br0,mac=52:54:00:00:00:0b \
    --cmdline "ip=10.0.0.2 peer=10.0.0.1 count=3 timeout=10000 linger=2000" >"$RUN/vmb.out" 2>&1 &
  pids+=($!); vmb=$!
  $VMM --ctl "$RUN/vswitchd.sock" --kernel "$TINY" --mem 16M --net br0,mac=52:54:00:00:00:0a \
    --cmdline "ip=10.0.0.1 peer=10.0.0.2 count=3 timeout=10000 linger=500" >"$RUN/vma.out" 2>&1 &
  pids+=($!); vma=$!
  for _ in $(seq 50); do [ "$($CTL port-list br0 | grep -c '^vm[0-9]')" -ge 2 ] && break; sleep 0.1; done
  show $CTL port-list br0
  wait "$vma" || true; wait "$vmb" || true
  for vm in vma vmb; do echo "  -- $vm serial console:"; sed 's/^/     /' "$RUN/$vm.out"; done
  show $CTL fdb-show br0
else
  echo "  (skipped: no /dev/kvm on this machine)"
fi

step "stop"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=("${pids[@]:1}")
tail -n 3 "$RUN/vswitchd.log" | sed 's/^/  /'
echo
echo "Done. Next: scripts/test.sh runs the whole test suite."
