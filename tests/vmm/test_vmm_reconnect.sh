#!/bin/bash
# Integration: a vswitchd restart under running VMs. Two tiny guests on br0 ping each other
# (recover=3: answers, then losses, then 3 answers in a row); guest a's NIC is a port made
# beforehand (--net vhost-user:PATH), guest b's a port its VMM asks for (--net br0). Once both
# have answers, vswitchd is killed with SIGKILL and started again with the same state file and
# run dir: the ports come back from state.json, each VMM reconnects and replays its vhost-user
# set-up with the same features, and the guests ping (and UDP-echo) again without a reset.
# Then the same with vswitchd run without a state file (--state none): the new vswitchd does
# not have the ports, and each VMM creates its port again (port-add with its VM); a port the
# same vswitchd deletes (an administrator's port-del) is not created again.
# Needs /dev/kvm (else SKIP, exit 77). Every process is ended by its PID; the temp dir goes.
set -u
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"

vmm_require "$VSWITCHD" "$VSWITCHCTL" "$VSWITCH_VMM" "$TINYGUEST"
vmm_tmpdir vsw-vmm-reconnect

start_vswitchd() { # log file [extra options]
    local log=$1
    shift
    "$VSWITCHD" --run-dir "$T" --ctl "$T/vswitchd.sock" --log-level debug "$@" >"$log" 2>&1 &
    VSWD=$!
    PIDS+=("$VSWD")
    for _ in $(seq 100); do
        ctl version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$log"
    echo "FAIL: vswitchd did not start"
    exit 1
}
start_vswitchd "$T/vswitchd1.log" --state "$T/state.json"
ctl br-add br0 || fail "br-add br0"
ctl port-add br0 vma >"$T/vma.path" 2>&1 || fail "port-add vma"
VMA_SOCK=$(tail -n1 "$T/vma.path")

vm() { # name cmdline net
    timeout "$GUEST_TIMEOUT" "$VSWITCH_VMM" --ctl "$T/vswitchd.sock" --kernel "$TINYGUEST" \
        --mem 16M --name "$1" --net "$3" --cmdline "$2" --log-level debug >"$T/$1.out" \
        2>"$T/$1.err" &
    PIDS+=("$!")
}
vm b "ip=10.0.0.2 peer=10.0.0.1 recover=3 timeout=1000 linger=5000" br0
PID_B=$!
vm a "ip=10.0.0.1 peer=10.0.0.2 recover=3 timeout=1000 linger=2000" "vhost-user:$VMA_SOCK"
PID_A=$!

oks() { grep -c '^ping .* ok' "$T/$1.out" 2>/dev/null; }
wait_pings() { # guest pid guest pid
    for _ in $(seq 600); do
        [ "$(oks "$1")" -ge 3 ] && [ "$(oks "$3")" -ge 3 ] && return 0
        kill -0 "$2" 2>/dev/null && kill -0 "$4" 2>/dev/null || break
        sleep 0.1
    done
    cat "$T/$1.out" "$T/$3.out" "$T/$1.err" "$T/$3.err"
    echo "FAIL: the guests did not ping each other before the restart"
    exit 1
}
wait_pings a "$PID_A" b "$PID_B"
echo "ok: guests ping each other; killing vswitchd (pid $VSWD)"
VMM_B=$(ps -o pid= --ppid "$PID_B" | tr -d ' ') # the VMM is the child of `timeout`
PORT_B=vm$VMM_B-0
grep -q '"vma"' "$T/state.json" && grep -q "\"$PORT_B\"" "$T/state.json" ||
    { cat "$T/state.json"; fail "ports not in the state file"; }
kill -9 "$VSWD"
wait "$VSWD" 2>/dev/null
sleep 1.5 # both guests lose pings while the switch is away
start_vswitchd "$T/vswitchd2.log" --state "$T/state.json"
echo "ok: vswitchd restarted (pid $VSWD)"
# The VM a port is for is in the state file too: vm-list still knows VM b.
ctl vm-list >"$T/vm-list.out" 2>&1
grep -Eq "^b +$VMM_B +$PORT_B@br0\$" "$T/vm-list.out" ||
    { cat "$T/vm-list.out"; fail "vm-list after the restart"; }

wait "$PID_A"; RC_A=$?
wait "$PID_B"; RC_B=$?
cat "$T/a.out" "$T/b.out"
for g in a b; do
    rc=RC_${g^^}
    [ "${!rc}" -eq 0 ] || fail "guest $g exited ${!rc}"
    grep -q '^recovered after [1-9][0-9]* lost' "$T/$g.out" || fail "guest $g: no recovery"
    grep -q '^udp echo .* ok' "$T/$g.out" || fail "guest $g: udp echo after the restart"
    [ "$(grep -c 'tinyguest: hello' "$T/$g.out")" -eq 1 ] || fail "guest $g rebooted"
    grep -q 'vswitchd went away' "$T/$g.err" || fail "VMM $g did not notice the restart"
    grep -q 'reconnected' "$T/$g.err" || fail "VMM $g did not reconnect"
done
# The restarted vswitchd got the ports from the state file, and the VMMs' set-up again.
grep -q 'restored 1 bridge(s) and 2 port(s)' "$T/vswitchd2.log" || fail "ports not restored"
for p in vma "$PORT_B"; do
    f1=$(grep -o "$p: features [0-9a-fx]*" "$T/vswitchd1.log" | tail -n1)
    f2=$(grep -o "$p: features [0-9a-fx]*" "$T/vswitchd2.log" | tail -n1)
    [ -n "$f1" ] && [ "$f1" = "$f2" ] || fail "port $p: features before/after: '$f1' / '$f2'"
done
# The VMM of b removed its port at exit, also from the restarted switch; vma stays.
if ctl port-list | grep -q '^vm[0-9]'; then
    ctl port-list
    fail "VMM port left behind"
fi
ctl port-list br0 | grep -q '^vma' || fail "port vma is gone"


# --- vswitchd without a state file: the VMMs create their ports again.
kill "$VSWD"
wait "$VSWD"
start_vswitchd "$T/vswitchd3.log" --state none --bridge br0
vm c "ip=10.0.1.2 peer=10.0.1.1 recover=3 timeout=1000 linger=30000" br0
PID_C=$!
vm d "ip=10.0.1.1 peer=10.0.1.2 recover=3 timeout=1000 linger=1000" br0
PID_D=$!
wait_pings c "$PID_C" d "$PID_D"
VMM_C=$(ps -o pid= --ppid "$PID_C" | tr -d ' ')
PORT_C=vm$VMM_C-0
echo "ok: guests c and d ping each other; killing vswitchd (pid $VSWD, no state file)"
kill -9 "$VSWD"
wait "$VSWD" 2>/dev/null
sleep 1.5
start_vswitchd "$T/vswitchd4.log" --state none --bridge br0
wait "$PID_D"; RC_D=$?
cat "$T/d.out"
[ $RC_D -eq 0 ] || fail "guest d exited $RC_D"
grep -q '^recovered after [1-9][0-9]* lost' "$T/d.out" || fail "guest d: no recovery"
for g in c d; do
    grep -q "port vm[0-9]*-0 created again on bridge br0" "$T/$g.err" ||
        fail "VMM $g did not create its port again"
done
ctl vm-list >"$T/vm-list2.out" 2>&1
grep -Eq "^c +$VMM_C +$PORT_C@br0\$" "$T/vm-list2.out" ||
    { cat "$T/vm-list2.out"; fail "vm-list: VM c with its port created again"; }
# An administrator's port-del is final: the VMM says so and leaves it.
for _ in $(seq 100); do
    grep -q '^recovered' "$T/c.out" && break
    sleep 0.1
done
ctl port-del "$PORT_C" || fail "port-del $PORT_C"
sleep 2.5
ctl port-list | grep -q "^$PORT_C" && fail "the VMM created a deleted port again"
grep -q "port $PORT_C was deleted in vswitchd (pid $VSWD): the NIC stays down" "$T/c.err" ||
    fail "VMM c did not notice the port-del"
kill "$PID_C"
wait "$PID_C"
cat "$T/c.out"
grep -q '^recovered after [1-9][0-9]* lost' "$T/c.out" || fail "guest c: no recovery"
grep -q 'signal 15: stopping the VM' "$T/c.err" || fail "VMM c did not stop on SIGTERM"

if [ $FAILED -ne 0 ]; then
    for f in a.err b.err c.err d.err vswitchd1.log vswitchd2.log vswitchd3.log vswitchd4.log; do
        echo "--- $f"
        cat "$T/$f"
    done
    exit 1
fi
echo "PASS"
exit 0
