#!/bin/bash
# Integration: the tiny guest's DHCP client (ip=dhcp) against dhcp-responder, a DHCP server on
# a simulated guest on the same bridge (the switch serves no DHCP yet). The responder first
# sends one malformed or unexpected reply of each kind it knows (--bad-offers): the guest must
# ignore every one (saying why), take the good offer, REQUEST it, get the ACK, print the lease,
# and then ping and UDP-echo the responder's address.
# Needs /dev/kvm (else SKIP, exit 77). Every process is ended by its PID; the temp dir goes.
set -u
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"
DHCP_RESPONDER=${DHCP_RESPONDER:-$BUILD/tests/vmm/dhcp-responder}

vmm_require "$VSWITCHD" "$VSWITCHCTL" "$VSWITCH_VMM" "$TINYGUEST" "$DHCP_RESPONDER"
vmm_tmpdir vsw-vmm-dhcp
vmm_start_vswitchd

ctl port-add br0 dhcp0 >"$T/dhcp0.path" 2>&1 || { cat "$T/dhcp0.path"; echo "FAIL: port-add"; exit 1; }
"$DHCP_RESPONDER" --socket "$(tail -n1 "$T/dhcp0.path")" --mac 52:54:00:00:0d:01 \
    --ip 10.9.0.1 --offer 10.9.0.23 --mask 255.255.255.0 --router 10.9.0.1 --dns 10.9.0.53 \
    --lease 7200 --bad-offers --time 120000 >"$T/resp.out" 2>"$T/resp.err" &
RESP=$!
PIDS+=("$RESP")
for _ in $(seq 100); do
    grep -q connected "$T/resp.err" && break
    sleep 0.1
done

timeout "$GUEST_TIMEOUT" "$VSWITCH_VMM" --ctl "$T/vswitchd.sock" --kernel "$TINYGUEST" \
    --mem 16M --name dhcp --net br0,mac=52:54:00:00:0d:02 \
    --cmdline "ip=dhcp peer=10.9.0.1 count=2 timeout=5000 linger=0" >"$T/g.out" 2>"$T/g.err"
RC=$?
kill "$RESP"
wait "$RESP"
cat "$T/g.out" "$T/resp.out"
[ $RC -eq 0 ] || fail "guest exited $RC"
grep -q '^dhcp: offer 10.9.0.23 from 10.9.0.1$' "$T/g.out" || fail "no offer taken"
grep -q '^dhcp: lease ip=10.9.0.23 mask=255.255.255.0 router=10.9.0.1 dns=10.9.0.53 server=10.9.0.1 time=7200s ignored=[1-9]' \
    "$T/g.out" || fail "lease line"
# One line per kind of bad reply the responder sent (tests/vmm/dhcp_responder.c, bad_kinds).
for why in 'shorter than a DHCP header' 'not a BOOTREPLY' 'another transaction' \
    'for another client' 'bad magic cookie' 'an option runs past the end' 'no end option' \
    'message type of the wrong length' 'no server identifier' 'unusable address' \
    'bad subnet mask' 'not an OFFER while selecting'; do
    grep -q "^dhcp: ignored a reply: $why" "$T/g.out" || fail "bad reply not ignored: $why"
done
[ "$(grep -c '^dhcp: ignored a reply: unusable address' "$T/g.out")" -ge 2 ] ||
    fail "both bad yiaddr replies ignored"
[ "$(grep -c '^ping 10.9.0.1 seq=[0-9]* ok' "$T/g.out")" -eq 2 ] || fail "pings to the server"
grep -q '^udp echo 10.9.0.1 ok' "$T/g.out" || fail "udp echo to the server"
grep -q 'dhcp-responder: sent 13 bad replies' "$T/resp.out" || fail "responder's bad replies"
grep -Eq 'dhcp-responder: discover=[1-9][0-9]* request=[1-9][0-9]* ack=[1-9][0-9]* nak=0 icmp=2 udp=1' \
    "$T/resp.out" || fail "responder's counters"

if [ $FAILED -ne 0 ]; then
    for f in g.err resp.err vswitchd.log; do echo "--- $f"; cat "$T/$f"; done
    exit 1
fi
echo "PASS"
exit 0
