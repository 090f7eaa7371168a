#!/usr/bin/env bash
# Real Linux guests through vswitchd: two QEMU (TCG) guests on two vhost-user ports of one
# bridge, booted from the Debian cloud kernel + busybox initramfs that
# scripts/build-guest-image.sh builds (recipe: ../shared/notes/qemu-guests.md). QEMU is the
# vhost-user frontend (client), vswitchd the backend (server). Each guest runs one job given on
# its kernel command line and prints VSW-* marker lines on its serial console.
#
# Usage: test_qemu_ping.sh [CASE] [GUEST_CACHE]
#   ping     (default) microvm + virtio-net-device: A pings B 5 times, then says "bye" over TCP
#   mrg-off  the same with mrg_rxbuf=off on both devices (10-byte virtio-net header path)
#   jumbo    MTU 9000 on both guests, pings of 8972 bytes: each frame fills several mergeable
#            RX buffers (num_buffers > 1) in the receiving guest
#   jumbo-nomrg  the same, but B has mrg_rxbuf=off, so its RX buffers cannot hold a jumbo frame:
#            the 5 big pings are dropped and counted (tx_too_big on vm2), small traffic still flows
#            (B also has the GUEST_TSO offloads off: with them Linux posts 64 KiB "big packet"
#            buffers even without mrg_rxbuf, and the jumbo frames would fit)
#   mtu      both guests with host_mtu=1400 (QEMU sends NET_SET_MTU): accepted on br0 (MTU 1500),
#            port-list shows it, pings of 1400-byte packets pass; a third guest with
#            host_mtu=9000 is refused (msg_refused=1) and QEMU reports it and leaves that NIC
#            without a backend
#   http     B serves a 10 MB random file with busybox httpd, A fetches it with wget; the md5sum
#            and size printed by both sides must match
#   offload  the http case twice, A with every offload QEMU has on (it sends TSO frames and
#            partial checksums), B with csum, guest_csum, host/guest_tso4/6, host/guest_ecn off: B serves
#            and A fetches, then A serves and B fetches. vswitchd completes the checksums and
#            segments A's 64 KiB TCP frames in software for B; the md5 sums match both ways
#   q35      the ping case on q35 with virtio-net-pci,vectors=0 (QEMU 7.2 + vhost-user + MSI-X
#            crashes under TCG)
#   packed-reconnect  the reconnect case with packed virtqueues
#   server-reconnect, packed-server-reconnect  the same with QEMU as the server of the
#            vhost-user sockets (server=on,wait=off) and vswitchd's ports in client mode: the
#            restarted vswitchd restores them from its state file and connects again
#   migrate  live migration of guest A (pinging B) from port vm1 to port vm3: QEMU migrates over
#            a unix socket while vswitchd logs the pages it writes into A's memory (LOG_SHMFD,
#            LOG_ALL); the destination QEMU asks for a RARP announcement (SEND_RARP), the FDB
#            moves A's MAC to vm3 and the pings go on from the migrated guest
#   packed-migrate  the migrate case with packed virtqueues (used descriptors are logged in the
#            descriptor ring)
#   packed   both guests use packed virtqueues (packed=on, and virtio-mmio.force-legacy=false
#            since packed rings need a modern device; A with mergeable RX buffers, B without):
#            the guests' drivers negotiated RING_PACKED (bit 34 of VSW-FEATURES),
#            vswitchd runs packed rings on both ports, A pings B 5 times and says "bye"
#   packed-http  the http case over packed rings on both guests (the rings wrap many times)
#   packed-jumbo  the jumbo case over packed rings: num_buffers > 1 in packed RX rings
#   restart  the ping case twice on the same two ports: the guests power off (QEMU stops the
#            rings and disconnects) and new QEMUs connect to the same sockets
#   reconnect  A pings B once a line; in the middle vswitchd is killed with SIGKILL and started
#            again on the same run dir; QEMU (-chardev ...,reconnect=1) reconnects on its own and
#            the pings are answered again, without touching QEMU or the guests
# Env: VSWITCHD, VSWITCHCTL (meson's test env), VSW_SOURCE_ROOT, VSW_GUEST_CACHE,
#      QEMU (default qemu-system-x86_64), VSW_QEMU_KEEP=1 keeps the temp dir.
# Exit: 0 pass, 1 fail, 77 skip (packages missing and not installable). About 10 s per case
# (each guest boots in 3-4 s under TCG), 20 s for http.
set -euo pipefail

CASE=${1:-ping}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${VSW_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
CACHE=${2:-${VSW_GUEST_CACHE:-$root/build-guest}}
VSWITCHD=${VSWITCHD:-$root/build/src/switch/vswitchd}
VSWITCHCTL=${VSWITCHCTL:-$root/build/ctl/vswitchctl}
QEMU=${QEMU:-qemu-system-x86_64}

case "$CASE" in
ping | mrg-off | jumbo | jumbo-nomrg | http | offload | q35 | packed | packed-http | packed-jumbo | \
    restart | reconnect | packed-reconnect | server-reconnect | packed-server-reconnect | mtu | \
    migrate | packed-migrate) ;;
*)
    echo "usage: $0 [ping|mrg-off|jumbo|jumbo-nomrg|http|offload|q35|packed|packed-http|packed-jumbo|restart|reconnect|packed-reconnect|server-reconnect|packed-server-reconnect|mtu|migrate|packed-migrate] [GUEST_CACHE]" >&2
    exit 2
    ;;
esac

for b in "$VSWITCHD" "$VSWITCHCTL"; do
    [ -x "$b" ] || {
        echo "FAIL: $b not built (set VSWITCHD / VSWITCHCTL)"
        exit 1
    }
done

# The guest image (installs the Debian packages it needs; 77 when it cannot).
rc=0
"$root/scripts/build-guest-image.sh" "$CACHE" >/dev/null || rc=$?
if [ $rc = 77 ]; then
    echo "SKIP: cannot install the packages for the QEMU guests (see above)"
    exit 77
elif [ $rc != 0 ]; then
    echo "FAIL: scripts/build-guest-image.sh exited with $rc"
    exit 1
fi
command -v "$QEMU" >/dev/null || {
    echo "SKIP: $QEMU not found (Debian package qemu-system-x86)"
    exit 77
}

tmp=$(mktemp -d /tmp/vsw-qemu.XXXXXX)
run=$tmp/run
mkdir -p "$run"
vsd_pid=
qemu_pids=()

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local p
    set +e
    for p in "${qemu_pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${qemu_pids[@]}"; do
        for _ in $(seq 20); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ -n "$vsd_pid" ]; then
        kill "$vsd_pid" 2>/dev/null
        for _ in $(seq 30); do
            kill -0 "$vsd_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$vsd_pid" 2>/dev/null
        wait "$vsd_pid" 2>/dev/null
    fi
    if [ "${VSW_QEMU_KEEP:-0}" = 1 ]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL [$CASE]: $*"
    local f
    for f in "$tmp"/*.console "$tmp"/*.qemu.log "$tmp/vswitchd.log"; do
        [ -s "$f" ] || continue
        echo "---- $(basename "$f") (tail)"
        tail -n 30 "$f"
    done
    if [ -n "$vsd_pid" ] && kill -0 "$vsd_pid" 2>/dev/null; then
        echo "---- vswitchctl stats"
        ctl stats 2>&1 || true
    fi
    exit 1
}

ctl() { "$VSWITCHCTL" --socket "$run/vswitchd.sock" --timeout 10 "$@"; }

vswitchd_alive() {
    kill -0 "$vsd_pid" 2>/dev/null || fail "vswitchd died"
    ctl version >/dev/null || fail "vswitchd does not answer 'vswitchctl version'"
}

# --- the switch: the PMD sleeps on its kick eventfds when idle, so TCG gets the cores.
start_vswitchd() {
    "$VSWITCHD" --run-dir "$run" --ctl "$run/vswitchd.sock" --idle-us 200 --log-level debug \
        >>"$tmp/vswitchd.log" 2>&1 &
    vsd_pid=$!
    for _ in $(seq 100); do
        [ -S "$run/vswitchd.sock" ] && ctl version >/dev/null 2>&1 && break
        kill -0 "$vsd_pid" 2>/dev/null || fail "vswitchd exited at start"
        sleep 0.1
    done
    ctl version >/dev/null || fail "vswitchd did not start"
}
start_vswitchd
# Bridges have an MTU (default 1500): the jumbo cases need a bridge that carries 9000.
case "$CASE" in
*jumbo*) ctl br-add br0 --mtu 9000 >/dev/null || fail "br-add br0 --mtu 9000" ;;
*) ctl br-add br0 >/dev/null || fail "br-add br0" ;;
esac
sock_a=$(ctl port-add br0 vm1) || fail "port-add br0 vm1"
sock_b=$(ctl port-add br0 vm2) || fail "port-add br0 vm2"
if [ ! -S "$sock_a" ] || [ ! -S "$sock_b" ]; then
    fail "no vhost-user sockets: '$sock_a' '$sock_b'"
fi

MAC_A=52:54:00:00:00:01
MAC_B=52:54:00:00:00:02
IP_A=10.0.0.1
IP_B=10.0.0.2
# microvm under TCG hangs calibrating the TSC against the PIT unless told the frequency.
khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
[ "${khz:-0}" -gt 0 ] || fail "no cpu MHz in /proc/cpuinfo"

CHARDEV_EXTRA=
QEMU_EXTRA=()
# boot NAME SOCK MAC MACHINE DEVICE_EXTRA CMDLINE: start a guest in the background.
boot() {
    local name=$1 sock=$2 mac=$3 machine=$4 extra=$5 cmdline=$6 mach dev
    case "$machine" in
    microvm)
        mach=(-M microvm -machine memory-backend=mem)
        dev=virtio-net-device
        ;;
    q35)
        mach=(-M q35 -numa "node,memdev=mem")
        dev=virtio-net-pci,vectors=0
        ;;
    esac
    "$QEMU" -accel tcg -cpu max "${mach[@]}" -m 256M -smp 1 \
        -nodefaults -no-user-config -display none -monitor none -no-reboot \
        -serial "file:$tmp/$name.console" \
        -kernel "$CACHE/vmlinux" -initrd "$CACHE/initrd.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet tsc_early_khz=$khz vsw.wait=30 $cmdline" \
        -object memory-backend-memfd,id=mem,size=256M,share=on \
        -chardev "socket,id=c0,path=$sock$CHARDEV_EXTRA" -netdev vhost-user,id=n0,chardev=c0 \
        -device "$dev,netdev=n0,mac=$mac$extra" "${QEMU_EXTRA[@]}" \
        </dev/null >"$tmp/$name.qemu.log" 2>&1 &
    qemu_pids+=($!)
    eval "pid_$name=\$!"
}

# wait_guests SECONDS PID...: until all have exited; fails the test past the deadline.
wait_guests() {
    local deadline=$((SECONDS + $1)) p alive
    shift
    while :; do
        alive=0
        for p in "$@"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        [ $SECONDS -ge $deadline ] && fail "guests still running after $1 s"
        kill -0 "$vsd_pid" 2>/dev/null || fail "vswitchd died while the guests ran"
        sleep 0.2
    done
    for p in "$@"; do
        wait "$p" 2>/dev/null || true
    done
}

# has NAME REGEX: the guest's console has a line matching REGEX.
has() { grep -Eq "$2" "$tmp/$1.console" 2>/dev/null; }
expect() { has "$1" "$2" || fail "$1: no console line matching '$2'"; }

# Bit N of the guest's negotiated virtio features (VSW-FEATURES line, bit 0 first).
feature() {
    local bits
    bits=$(sed -n 's/^VSW-FEATURES \([01]*\).*/\1/p' "$tmp/$1.console" | tr -d '\r' | head -n 1)
    [ -n "$bits" ] || fail "$1: no VSW-FEATURES line"
    echo "${bits:$2:1}"
}

# Traffic on both ports, both guest MACs learned on the right ports, no protocol errors;
# with PORT:REASON:MIN, that port counted at least MIN drops for REASON.
check_switch() {
    local want_drop=${1:-}
    vswitchd_alive
    local stats fdb
    stats=$(ctl --json stats) || fail "vswitchctl stats"
    fdb=$(ctl --json fdb-show br0) || fail "vswitchctl fdb-show br0"
    python3 - "$stats" "$fdb" "$MAC_A" "$MAC_B" "$want_drop" <<'EOF' || fail "switch state (see above)"
import json, sys
stats, fdb = json.loads(sys.argv[1]), json.loads(sys.argv[2])
want = {"vm1": sys.argv[3], "vm2": sys.argv[4]}
ok = True
ports = {p["name"]: p for p in stats["ports"]}
for name in want:
    p = ports.get(name)
    if p is None:
        print(f"port {name} missing from stats"); ok = False; continue
    print(f"{name}: rx {p['rx_packets']} pkts/{p['rx_bytes']} B, tx {p['tx_packets']} pkts/"
          f"{p['tx_bytes']} B, msg_errors {p['msg_errors']}, queue_errors {p['queue_errors']},"
          f" drops {p['drops']}")
    if p["rx_packets"] == 0 or p["tx_packets"] == 0:
        print(f"{name}: no traffic in both directions"); ok = False
    if p["msg_errors"] or p["queue_errors"]:
        print(f"{name}: vhost-user errors"); ok = False
learned = {e["mac"].lower(): e["port"] for e in fdb}
for name, mac in want.items():
    if learned.get(mac) != name:
        print(f"fdb: {mac} is on {learned.get(mac)}, want {name}"); ok = False
if sys.argv[5]:
    port, reason, least = sys.argv[5].split(":")
    got = ports.get(port, {}).get("drops", {}).get(reason, 0)
    if got < int(least):
        print(f"{port}: {got} drops for {reason}, want at least {least}"); ok = False
sys.exit(0 if ok else 1)
EOF
}

# The basic pair: B answers and waits for "bye", A pings B then says "bye".
ping_pair() { # machine device_extra_a device_extra_b [more kernel args for both]
    local more=${4:-}
    boot b "$sock_b" $MAC_B "$1" "$3" "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=serve $more"
    boot a "$sock_a" $MAC_A "$1" "$2" \
        "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=ping vsw.count=5 $more"
    # shellcheck disable=SC2154 # pid_a / pid_b are set by boot
    wait_guests 60 "$pid_a" "$pid_b"
    expect a '^VSW-NET eth0 '"$MAC_A"
    expect b '^VSW-NET eth0 '"$MAC_B"
    expect a '^VSW-RESULT ping ok 5/5'
    expect b '^VSW-RESULT serve ok bye'
    expect a '^VSW-DONE'
    expect b '^VSW-DONE'
}

# The 10 MB file arrived intact: sizes and md5 sums printed by both guests agree.
http_check() { # [SERVER GETTER] (default b a)
    local s=${1:-b} g=${2:-a}
    expect "$s" '^VSW-MD5 serve [0-9a-f]{32} 10485760'
    expect "$g" '^VSW-RESULT http ok 10485760 bytes'
    expect "$s" '^VSW-RESULT http-serve ok bye'
    sum_b=$(sed -n 's/^VSW-MD5 serve \([0-9a-f]*\) .*/\1/p' "$tmp/$s.console")
    sum_a=$(sed -n 's/^VSW-MD5 get \([0-9a-f]*\) .*/\1/p' "$tmp/$g.console")
    if [ -z "$sum_a" ] || [ "$sum_a" != "$sum_b" ]; then
        fail "md5 of the fetched file '$sum_a' differs from the served one '$sum_b'"
    fi
}

# vswitchd ran packed rings on both ports (it logs each port's negotiated features).
packed_ports() {
    local p rings
    for p in vm1 vm2; do
        rings=$(sed -n "s/.* $p: features 0x[0-9a-f]* (\([a-z]*\) rings).*/\1/p" "$tmp/vswitchd.log" |
            tail -n 1)
        [ "$rings" = packed ] || fail "vswitchd runs '$rings' rings on $p, want packed"
    done
}

t0=$SECONDS
case "$CASE" in
ping)
    ping_pair microvm "" ""
    check_switch
    msg="5/5 pings and a TCP message between two microvm guests"
    ;;
mrg-off)
    ping_pair microvm ",mrg_rxbuf=off" ",mrg_rxbuf=off"
    if [ "$(feature a 15)" != 0 ] || [ "$(feature b 15)" != 0 ]; then
        fail "a guest negotiated MRG_RXBUF although the device has mrg_rxbuf=off"
    fi
    check_switch
    msg="ping and TCP between two guests without mergeable RX buffers"
    ;;
migrate | packed-migrate)
    sock_c=$(ctl port-add br0 vm3) || fail "port-add br0 vm3"
    common=() dev_extra=
    if [ "$CASE" = packed-migrate ]; then
        common=(-global virtio-mmio.force-legacy=false)
        dev_extra=",packed=on"
    fi
    QEMU_EXTRA=("${common[@]}")
    boot b "$sock_b" $MAC_B microvm "$dev_extra" \
        "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=serve vsw.wait=90"
    QEMU_EXTRA=("${common[@]}" -qmp "unix:$tmp/a.qmp,server=on,wait=off")
    args="vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=pingloop vsw.count=80"
    boot a "$sock_a" $MAC_A microvm "$dev_extra" "$args"
    QEMU_EXTRA=("${common[@]}" -incoming "unix:$tmp/mig.sock")
    boot a2 "$sock_c" $MAC_A microvm "$dev_extra" "$args"
    QEMU_EXTRA=()
    oks() { # console -> answered pings
        local n
        n=$(grep -c '^VSW-PING [0-9]* ok' "$tmp/$1.console" 2>/dev/null) || true
        echo "${n:-0}"
    }
    deadline=$((SECONDS + 60))
    until [ "$(oks a)" -ge 3 ]; do
        [ $SECONDS -lt $deadline ] || fail "A: no 3 answered pings before the migration"
        sleep 0.2
    done
    python3 - "$tmp/a.qmp" "$tmp/mig.sock" <<'PYEOF' >"$tmp/migrate.out" 2>&1 || fail "migration failed: $(cat "$tmp/migrate.out")"
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def reply():
    while True:
        m = json.loads(f.readline())
        if "event" not in m:
            return m
def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
    f.flush()
    return reply()
json.loads(f.readline())  # greeting
cmd("qmp_capabilities")
r = cmd("migrate", uri="unix:" + sys.argv[2])
if "error" in r:
    sys.exit("migrate: %s" % r)
for _ in range(1200):
    st = cmd("query-migrate").get("return", {})
    if st.get("status") == "completed":
        print("completed", st.get("ram", {}).get("transferred"), "bytes")
        cmd("quit")
        sys.exit(0)
    if st.get("status") in ("failed", "cancelled"):
        sys.exit("migration %s: %s" % (st.get("status"), st))
    time.sleep(0.1)
sys.exit("migration did not complete")
PYEOF
    # shellcheck disable=SC2154 # pid_a / pid_a2 / pid_b are set by boot
    wait_guests 20 "$pid_a"
    deadline=$((SECONDS + 60))
    # shellcheck disable=SC2154 # pid_a2 is set by boot
    until [ "$(oks a2)" -ge 3 ]; do
        [ $SECONDS -lt $deadline ] || fail "the migrated guest's pings are not answered (a2)"
        kill -0 "$pid_a2" 2>/dev/null || fail "the migrated guest stopped"
        sleep 0.2
    done
    wait_guests 120 "$pid_a2" "$pid_b"
    expect a2 '^VSW-RESULT pingloop ok'
    expect b '^VSW-RESULT serve ok bye'
    # The source logged its writes (LOG_ALL negotiated, a log mapped, no write outside it);
    # the destination announced A's MAC, which the FDB now has on vm3.
    feat=$(sed -n 's/.* vm1: features \(0x[0-9a-f]*\) .*/\1/p' "$tmp/vswitchd.log" |
        awk '{ print }' | while read -r x; do [ $((x >> 26 & 1)) = 1 ] && echo yes; done | head -n 1)
    [ "$feat" = yes ] || fail "vm1 never negotiated VHOST_F_LOG_ALL"
    grep -q " vm1: dirty log of " "$tmp/vswitchd.log" || fail "vm1: no dirty log mapped"
    got=$(ctl --json stats | python3 -c '
import json, sys
s = {p["name"]: p for p in json.load(sys.stdin)["ports"]}
print(s["vm1"]["log_errors"], s["vm3"]["rarp_sent"] >= 1, s["vm3"]["msg_errors"])')
    [ "$got" = "0 True 0" ] || fail "vm1 log_errors, vm3 rarp_sent >= 1, vm3 msg_errors: '$got'"
    fdb=$(ctl --json fdb-show br0 | python3 -c '
import json, sys
print([e["port"] for e in json.load(sys.stdin) if e["mac"] == sys.argv[1]])' "$MAC_A")
    [ "$fdb" = "['vm3']" ] || fail "A's MAC is on $fdb, want vm3"
    msg="guest A migrated from vm1 to vm3 under pings ($(cat "$tmp/migrate.out")), $(oks a) + $(oks a2) answered"
    ;;
mtu)
    # host_mtu: QEMU offers VIRTIO_NET_F_MTU and sends NET_SET_MTU (REPLY_ACK) when the driver
    # starts. 1400 fits br0's 1500: accepted, the ports' MTU, and pings of 1400-byte packets
    # pass. Then a third guest asks for 9000: refused, and QEMU leaves that NIC without a
    # backend ("MTU not supported by the backend"), as a guest that cannot be served.
    ping_pair microvm ",host_mtu=1400" ",host_mtu=1400" "vsw.psize=1372"
    check_switch
    # The guests are gone (port-list's guest_mtu belongs to a connection): vswitchd's log says
    # what it accepted, and the guests negotiated VIRTIO_NET_F_MTU (bit 3).
    for p in vm1 vm2; do
        grep -q " $p: MTU 1400\$" "$tmp/vswitchd.log" || fail "$p: vswitchd did not accept MTU 1400"
    done
    if [ "$(feature a 3)" != 1 ] || [ "$(feature b 3)" != 1 ]; then
        fail "a guest did not negotiate VIRTIO_NET_F_MTU"
    fi
    sock_c=$(ctl port-add br0 vm3) || fail "port-add br0 vm3"
    boot c "$sock_c" 52:54:00:00:00:03 microvm ",host_mtu=9000" \
        "vsw.ip=10.0.0.3/24 vsw.role=idle vsw.wait=3"
    # shellcheck disable=SC2154 # pid_c is set by boot
    wait_guests 60 "$pid_c"
    expect c '^VSW-NET eth0 52:54:00:00:00:03'
    refused=$(ctl --json stats vm3 | python3 -c '
import json, sys
p = json.load(sys.stdin)["ports"][0]
print(p["msg_refused"], p["msg_errors"])')
    [ "$refused" = "1 0" ] || fail "vm3: msg_refused and msg_errors are '$refused', want '1 0'"
    grep -q "MTU not supported by the backend" "$tmp/c.qemu.log" ||
        fail "QEMU did not report the refused MTU (c.qemu.log)"
    msg="NET_SET_MTU: 1400 accepted (pings of 1400-byte packets), 9000 refused on a 1500 bridge"
    ;;
jumbo)
    ping_pair microvm "" "" "vsw.mtu=9000 vsw.psize=8972"
    check_switch
    msg="5/5 pings of 8972 bytes (MTU 9000, mergeable RX buffers) between two guests"
    ;;
jumbo-nomrg)
    more="vsw.mtu=9000 vsw.psize=8972"
    boot b "$sock_b" $MAC_B microvm ",mrg_rxbuf=off,guest_tso4=off,guest_tso6=off,guest_ecn=off" \
        "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=serve $more"
    boot a "$sock_a" $MAC_A microvm "" \
        "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=ping vsw.count=5 $more"
    wait_guests 60 "$pid_a" "$pid_b"
    expect a '^VSW-RESULT ping fail 0/5'
    expect b '^VSW-RESULT serve ok bye'
    check_switch vm2:tx_too_big:5
    msg="jumbo frames to a guest without mergeable RX buffers dropped and counted, small traffic flows"
    ;;
reconnect | packed-reconnect | server-reconnect | packed-server-reconnect)
    CHARDEV_EXTRA=",reconnect=1"
    dev_extra=
    case "$CASE" in
    *server*)
        # QEMU listens; vswitchd's ports connect to it (and again after its restart).
        CHARDEV_EXTRA=",server=on,wait=off"
        for p in vm1 vm2; do
            ctl port-del $p >/dev/null || fail "port-del $p"
            ctl port-add br0 $p --mode client --path "$tmp/$p.qemu.sock" >/dev/null ||
                fail "port-add $p in client mode"
        done
        sock_a=$tmp/vm1.qemu.sock sock_b=$tmp/vm2.qemu.sock
        ;;
    esac
    if [ "${CASE#packed-}" != "$CASE" ]; then
        # QEMU keeps no position of a packed ring it could hand back after the backend died:
        # it sends its stale base again, and vswitchd finds the position in the ring itself.
        QEMU_EXTRA=(-global virtio-mmio.force-legacy=false)
        dev_extra=",packed=on"
    fi
    boot b "$sock_b" $MAC_B microvm "$dev_extra" "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=serve vsw.wait=60"
    boot a "$sock_a" $MAC_A microvm "$dev_extra" \
        "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=pingloop vsw.count=40"
    oks() {
        local n
        n=$(grep -c '^VSW-PING [0-9]* ok' "$tmp/a.console" 2>/dev/null) || true
        echo "${n:-0}"
    }
    deadline=$((SECONDS + 40))
    until [ "$(oks)" -ge 3 ]; do
        [ $SECONDS -lt $deadline ] || fail "A: no 3 answered pings before the restart"
        kill -0 "$pid_a" 2>/dev/null || fail "guest A stopped before the restart"
        sleep 0.2
    done
    kill -9 "$vsd_pid"
    wait "$vsd_pid" 2>/dev/null || true
    echo "---- vswitchd killed (SIGKILL), starting it again" >>"$tmp/vswitchd.log"
    start_vswitchd
    # The state file should bring the bridge and ports back; make sure they are there.
    if ! ctl port-list br0 2>/dev/null | grep -q vm1; then
        echo "note: ports not restored from the state file, adding them again"
        ctl br-add br0 >/dev/null 2>&1 || true
        ctl port-add br0 vm1 >/dev/null || fail "port-add br0 vm1 after the restart"
        ctl port-add br0 vm2 >/dev/null || fail "port-add br0 vm2 after the restart"
    fi
    before=$(wc -l <"$tmp/a.console")
    deadline=$((SECONDS + 40))
    until [ "$(tail -n +$((before + 1)) "$tmp/a.console" | grep -c '^VSW-PING [0-9]* ok')" -ge 3 ]; do
        [ $SECONDS -lt $deadline ] || fail "pings not answered again after the restart"
        kill -0 "$pid_a" 2>/dev/null || fail "guest A finished without answered pings after the restart"
        sleep 0.2
    done
    wait_guests 60 "$pid_a" "$pid_b"
    expect a '^VSW-RESULT pingloop ok'
    expect b '^VSW-RESULT serve ok bye'
    check_switch
    msg="vswitchd killed and restarted under two running guests; QEMU reconnected, pings answered again ($(grep -c '^VSW-PING [0-9]* lost' "$tmp/a.console" || true) lost)"
    ;;
restart)
    ping_pair microvm "" ""
    check_switch
    mkdir "$tmp/first"
    mv "$tmp"/*.console "$tmp"/*.qemu.log "$tmp/first/"
    ping_pair microvm "" ""
    check_switch
    msg="two pairs of guests one after the other on the same ports, 5/5 pings each"
    ;;
http)
    boot b "$sock_b" $MAC_B microvm "" "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=http-serve vsw.size=10"
    boot a "$sock_a" $MAC_A microvm "" "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=http-get"
    wait_guests 90 "$pid_a" "$pid_b"
    http_check
    check_switch
    msg="10 MB over HTTP between two guests, md5 $sum_a on both sides"
    ;;
offload)
    # QEMU leaves host_tso4/6 and host_ecn on with csum=off (Linux would not use them): off too.
    nooff=",csum=off,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off"
    nooff+=",host_tso4=off,host_tso6=off,host_ecn=off"
    boot b "$sock_b" $MAC_B microvm "$nooff" "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=http-serve vsw.size=10"
    boot a "$sock_a" $MAC_A microvm "" "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=http-get"
    wait_guests 90 "$pid_a" "$pid_b"
    http_check b a
    # Bits 0 CSUM, 1 GUEST_CSUM, 7 GUEST_TSO4, 11 HOST_TSO4: on for A, off for B.
    for bit in 0 1 7 11; do
        [ "$(feature a $bit)" = 1 ] || fail "guest A did not negotiate feature bit $bit"
        [ "$(feature b $bit)" = 0 ] || fail "guest B negotiated feature bit $bit although it is off"
    done
    sum_first=$sum_a
    check_switch
    mkdir "$tmp/first"
    mv "$tmp"/*.console "$tmp"/*.qemu.log "$tmp/first/"
    before=$(ctl --json stats) || fail "vswitchctl stats"
    boot a "$sock_a" $MAC_A microvm "" "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=http-serve vsw.size=10"
    boot b "$sock_b" $MAC_B microvm "$nooff" "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=http-get"
    wait_guests 90 "$pid_a" "$pid_b"
    http_check a b
    check_switch
    # A sent TSO frames: B received several frames for each (only segmentation multiplies).
    after=$(ctl --json stats) || fail "vswitchctl stats"
    python3 - "$before" "$after" <<'EOF2' || fail "no sign of software segmentation (see above)"
import json, sys
b, a = ({p["name"]: p for p in json.loads(s)["ports"]} for s in sys.argv[1:3])
sent = a["vm1"]["rx_packets"] - b["vm1"]["rx_packets"]
got = a["vm2"]["tx_packets"] - b["vm2"]["tx_packets"]
print(f"A sent {sent} frames, B received {got}")
sys.exit(0 if got > 2 * sent else 1)
EOF2
    msg="10 MB over HTTP each way between a guest with offloads and one without (md5 $sum_first, then $sum_a)"
    ;;
q35)
    ping_pair q35 "" ""
    check_switch
    msg="5/5 pings and a TCP message between two q35 guests (virtio-net-pci, vectors=0)"
    ;;
packed)
    # microvm's virtio-mmio is legacy unless told otherwise: no VERSION_1, so no packed rings.
    QEMU_EXTRA=(-global virtio-mmio.force-legacy=false)
    ping_pair microvm ",packed=on" ",packed=on,mrg_rxbuf=off"
    [ "$(feature a 34)" = 1 ] || fail "guest A did not negotiate RING_PACKED with packed=on"
    [ "$(feature b 34)" = 1 ] || fail "guest B did not negotiate RING_PACKED with packed=on"
    [ "$(feature a 15)" = 1 ] || fail "guest A did not negotiate MRG_RXBUF"
    [ "$(feature b 15)" = 0 ] || fail "guest B negotiated MRG_RXBUF although mrg_rxbuf=off"
    packed_ports
    check_switch
    msg="5/5 pings and a TCP message between two guests on packed rings (with and without mergeable RX buffers)"
    ;;
packed-jumbo)
    QEMU_EXTRA=(-global virtio-mmio.force-legacy=false)
    ping_pair microvm ",packed=on" ",packed=on" "vsw.mtu=9000 vsw.psize=8972"
    [ "$(feature a 34)" = 1 ] && [ "$(feature b 34)" = 1 ] || fail "a guest did not negotiate RING_PACKED"
    packed_ports
    check_switch
    msg="5/5 pings of 8972 bytes (MTU 9000, mergeable RX buffers) between two guests on packed rings"
    ;;
packed-http)
    QEMU_EXTRA=(-global virtio-mmio.force-legacy=false)
    boot b "$sock_b" $MAC_B microvm ",packed=on" "vsw.ip=$IP_B/24 vsw.peer=$IP_A vsw.role=http-serve vsw.size=10"
    boot a "$sock_a" $MAC_A microvm ",packed=on" "vsw.ip=$IP_A/24 vsw.peer=$IP_B vsw.role=http-get"
    wait_guests 90 "$pid_a" "$pid_b"
    http_check
    [ "$(feature a 34)" = 1 ] && [ "$(feature b 34)" = 1 ] || fail "a guest did not negotiate RING_PACKED"
    packed_ports
    check_switch
    msg="10 MB over HTTP between two guests on packed rings, md5 $sum_a on both sides"
    ;;
esac
vswitchd_alive
# Stop vswitchd the way a user does: it must exit 0, with nothing from the sanitizers (the
# suite builds it with ASan + UBSan) after serving QEMU's messages and rings.
kill -TERM "$vsd_pid"
vsd_rc=0
for _ in $(seq 100); do
    kill -0 "$vsd_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$vsd_pid" 2>/dev/null && fail "vswitchd did not exit within 10 s of SIGTERM"
wait "$vsd_pid" || vsd_rc=$?
vsd_pid=
[ "$vsd_rc" = 0 ] || fail "vswitchd exited with $vsd_rc on SIGTERM"
if grep -Eq 'Sanitizer|runtime error:' "$tmp/vswitchd.log"; then
    fail "sanitizer report in vswitchd's log"
fi
echo "PASS [$CASE]: $msg ($((SECONDS - t0)) s)"
