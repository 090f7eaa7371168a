#!/bin/bash
# Integration: vswitchd with bridges br0 and br1, two tiny guests under vswitch-vmm that ping
# each other over br0 and check a UDP echo, and a simulated guest (vsw-guest) whose frames one
# tiny guest sends back. Guest b's NIC is a port its VMM asks for (--net br0); guest a takes a
# port made beforehand (--net vhost-user:PATH) and has a second NIC on br1 that its VMM asks
# for. `vswitchctl vm-list` shows both VMs (--name a, --name b) with the ports their VMMs
# created while they run, and none after; those ports are gone, the given one is not.
# Needs /dev/kvm (else SKIP, exit 77). Every process is ended by its PID; the temp dir goes.
set -u
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"


vmm_require "$VSWITCHD" "$VSWITCHCTL" "$VSW_GUEST" "$VSWITCH_VMM" "$TINYGUEST"

vmm_tmpdir vsw-vmm-test

vmm_start_vswitchd

# A trivial boot first: if this fails, nothing else can work.
timeout 60 "$VSWITCH_VMM" --kernel "$TINYGUEST" --mem 16M >"$T/hello.out" 2>"$T/hello.err"
rc=$?
grep -q "tinyguest: hello" "$T/hello.out" && [ $rc -eq 0 ] ||
    { cat "$T/hello.out" "$T/hello.err"; echo "FAIL: trivial guest (exit $rc)"; exit 1; }
echo "ok: trivial guest boots and powers off"

MAC_B=52:54:00:00:0b:02
ctl br-add br1 || fail "br-add br1"
ctl vm-list | grep -q . && [ "$(ctl vm-list | wc -l)" -eq 1 ] || fail "vm-list not empty at start"
vm() { # name cmdline net...
    local name=$1 cmdline=$2 nets=()
    shift 2
    for n in "$@"; do nets+=(--net "$n"); done
    timeout "$GUEST_TIMEOUT" "$VSWITCH_VMM" --ctl "$T/vswitchd.sock" --kernel "$TINYGUEST" \
        --mem 16M --name "$name" "${nets[@]}" --cmdline "$cmdline" >"$T/$name.out" \
        2>"$T/$name.err" &
    PIDS+=("$!")
}
vm b "ip=10.0.0.2 peer=10.0.0.1 count=3 timeout=10000 linger=10000" "br0,mac=$MAC_B"
PID_B=$!
# Guest a takes a port made beforehand (--net vhost-user:PATH) and first misbehaves (evil=1);
# its second NIC (on br1, unused by the tiny guest) is a port its VMM creates.
ctl port-add br0 vma >"$T/vma.path" 2>&1 || fail "port-add vma"
vm a "ip=10.0.0.1 peer=10.0.0.2 count=3 timeout=10000 linger=3000 evil=1" \
    "vhost-user:$(tail -n1 "$T/vma.path")" br1
PID_A=$!

# vm-list shows both VMs while they run: name, VMM pid, the ports their VMMs created.
for _ in $(seq 100); do
    [ "$(ctl vm-list 2>/dev/null | grep -c '^[ab] ')" -ge 2 ] && break
    sleep 0.1
done
ctl vm-list >"$T/vm-list.out" 2>&1
cat "$T/vm-list.out"
# (The VMM is the child of `timeout`: its pid is in its port names.)
vmm_pid() { ps -o pid= --ppid "$1" | tr -d ' '; }
VMM_A=$(vmm_pid "$PID_A") VMM_B=$(vmm_pid "$PID_B")
grep -Eq "^a +$VMM_A +vm$VMM_A-1@br1\$" "$T/vm-list.out" || fail "vm-list: VM a (pid $VMM_A)"
grep -Eq "^b +$VMM_B +vm$VMM_B-0@br0\$" "$T/vm-list.out" || fail "vm-list: VM b (pid $VMM_B)"
ctl --json vm-list | grep -q '"pid": '"$VMM_A" || fail "vm-list --json"

wait "$PID_A"; RC_A=$?
cat "$T/a.out"
[ $RC_A -eq 0 ] || fail "guest a exited $RC_A"
[ "$(grep -c '^ping 10.0.0.2 seq=[0-9]* ok' "$T/a.out")" -eq 3 ] || fail "guest a: pings"
grep -q '^udp echo 10.0.0.2 ok' "$T/a.out" || fail "guest a: udp echo"
grep -q '^evil: .*refused as expected' "$T/a.out" || fail "guest a: hostile accesses not refused"
# ... and counted: 2 unknown ports, 2 unknown MMIO addresses, 2 narrow register accesses, 3
# writes out of the driver sequence, a notify for queue 77, a ring outside memory.
grep -q 'guest errors: unclaimed port I/O 2, unclaimed MMIO 2$' "$T/a.err" ||
    fail "guest a: unclaimed accesses not counted"
grep -q 'guest errors: net0 virtio-mmio: unaligned=2 out_of_order=3 no_such_queue=1 bad_ring=1$' \
    "$T/a.err" || fail "guest a: virtio-mmio errors not counted"

# The simulated guest's frames come back from guest b (which lingers a while).
"$VSWITCHCTL" --socket "$T/vswitchd.sock" port-add br0 sim0 >"$T/sim0.path" 2>&1 ||
    fail "port-add sim0"
SIM_SOCK=$(tail -n1 "$T/sim0.path")
timeout 30 "$VSW_GUEST" --socket "$SIM_SOCK" --mac 52:54:00:00:0c:01 --name sim0 \
    --script "send $MAC_B 3; expect 3 5000" >"$T/sim0.out" 2>"$T/sim0.err"
RC_S=$?
cat "$T/sim0.out"
[ $RC_S -eq 0 ] || { cat "$T/sim0.err"; fail "vsw-guest exited $RC_S"; }

wait "$PID_B"; RC_B=$?
cat "$T/b.out"
[ $RC_B -eq 0 ] || fail "guest b exited $RC_B"
[ "$(grep -c '^ping 10.0.0.1 seq=[0-9]* ok' "$T/b.out")" -eq 3 ] || fail "guest b: pings"
grep -q '^l2 echo frames=3' "$T/b.out" || fail "guest b: did not echo the simulated guest's frames"
grep -q 'guest errors' "$T/b.err" && fail "guest b: errors counted for a well-behaved guest"

# The VMMs removed the ports they created, and left the one they were given.
if ctl port-list | grep -q '^vm[0-9]'; then
    ctl port-list
    fail "VMM ports left behind"
fi
[ "$(ctl vm-list | wc -l)" -eq 1 ] || { ctl vm-list; fail "vm-list not empty after the VMs"; }
ctl port-list br0 | grep -q '^vma' || fail "the VMM deleted a port it did not create"

if [ $FAILED -ne 0 ]; then
    for f in a.err b.err vswitchd.log; do echo "--- $f"; cat "$T/$f"; done
    exit 1
fi
echo "PASS"
exit 0
