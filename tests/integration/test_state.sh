#!/usr/bin/env bash
# Integration: the configuration survives a restart of vswitchd (kill -9 included), and a
# corrupt state file is reported, set aside and never silently replaced.
# Uses $VSWITCHD, $VSWITCHCTL and $VSW_GUEST from the meson test environment.
set -uo pipefail

T=$(mktemp -d /tmp/vsw-state-test.XXXXXX)
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

fail() {
    echo "FAIL: $*"
    [ -f "$T/d.log" ] && tail -n 20 "$T/d.log"
    exit 1
}
ctl() { "$VSWITCHCTL" --socket "$T/vswitchd.sock" "$@"; }
start() {
    "$VSWITCHD" --run-dir "$T" >>"$T/d.log" 2>&1 &
    DPID=$!
    for _ in $(seq 100); do ctl version >/dev/null 2>&1 && return 0; sleep 0.05; done
    fail "vswitchd did not come up"
}

start
ctl br-add br0 --age 42 --max-macs 100 --mtu 9000 || fail "br-add"
ctl br-add lab || fail "br-add lab"
ctl port-add br0 vm1 >/dev/null || fail "port-add vm1"
ctl port-add lab vm2 >/dev/null || fail "port-add vm2"
ctl port-add br0 cl1 --mode client --path "$T/frontend.sock" >/dev/null || fail "client port"
ctl fdb-add br0 02:00:00:00:00:10 vm1 || fail "fdb-add"
before_ports=$(ctl --json port-list | tr -d ' \n' | sed 's/"state":"[a-z]*"//g')
before_fdb=$(ctl fdb-show br0)
before_br=$(ctl br-list | awk '{print $1, $2, $3, $4, $5}') # name ports age max_macs mtu

kill -9 "$DPID"; wait "$DPID" 2>/dev/null; DPID=""
start
grep -q "restored 2 bridge(s) and 3 port(s)" "$T/d.log" || fail "no restore line in the log"
after_ports=$(ctl --json port-list | tr -d ' \n' | sed 's/"state":"[a-z]*"//g')
[ "$before_ports" = "$after_ports" ] || fail "ports differ: $before_ports vs $after_ports"
[ "$before_fdb" = "$(ctl fdb-show br0)" ] || fail "static MAC lost"
[ "$before_br" = "$(ctl br-list | awk '{print $1, $2, $3, $4, $5}')" ] || fail "bridges differ"
grep -q '"mtu": 9000' "$T/state.json" || fail "the bridge MTU is not in the state file"

# The restored port forwards: a guest on vm1 and one on a new port of br0 exchange frames.
ctl port-add br0 vm3 >/dev/null || fail "port-add vm3"
"$VSW_GUEST" --socket "$T/vm1.sock" --mac 02:00:00:00:00:01 --name vm1 \
    --script "recv 200; expect 2 3000" >"$T/g1.out" 2>&1 &
G1=$!
"$VSW_GUEST" --socket "$T/vm3.sock" --mac 02:00:00:00:00:03 --name vm3 \
    --script "sleep 500; send 02:00:00:00:00:01 2" >"$T/g3.out" 2>&1 || fail "guest vm3"
wait "$G1" || { cat "$T/g1.out"; fail "guest vm1 did not get the frames"; }

# A deletion is saved too.
ctl port-del vm3 || fail "port-del"
ctl br-del lab --force || fail "br-del"
kill "$DPID"; wait "$DPID"; rc=$?; DPID=""
[ $rc -eq 0 ] || fail "vswitchd exited $rc on SIGTERM"
start
ctl port-list | grep -q "^vm3 " && fail "deleted port came back"
ctl br-list | grep -q "^lab " && fail "deleted bridge came back"

# A corrupt file: reported, moved aside, daemon starts empty and keeps working.
kill "$DPID"; wait "$DPID"; DPID=""
printf '{"version":1,"bridges":[{"name":"ok"},{"name":"../evil"}],"ports":[]}\n' >"$T/state.json"
cp "$T/state.json" "$T/bad.copy"
start
grep -q "moved it to" "$T/d.log" || fail "corrupt file not reported"
aside=$(ls "$T"/state.json.corrupt-* 2>/dev/null | head -n1)
[ -n "$aside" ] || fail "corrupt file not set aside"
cmp -s "$aside" "$T/bad.copy" || fail "the set-aside file was changed"
[ -z "$(ctl br-list | tail -n +2)" ] || fail "half-applied state: $(ctl br-list)"
ctl br-add fresh || fail "daemon not usable after a corrupt state file"
kill "$DPID"; wait "$DPID"; DPID=""

# --state none: nothing is written.
"$VSWITCHD" --run-dir "$T/nostate" --state none >>"$T/d.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
    "$VSWITCHCTL" --socket "$T/nostate/vswitchd.sock" version >/dev/null 2>&1 && break
    sleep 0.05
done
"$VSWITCHCTL" --socket "$T/nostate/vswitchd.sock" br-add x || fail "br-add with --state none"
[ ! -e "$T/nostate/state.json" ] || fail "--state none wrote a file"
echo "PASS"
