#!/bin/bash
# shellcheck disable=SC2317 # small functions called only through wait_for and the trap
# vswitchd against an independent vhost-user frontend: DPDK testpmd with a net_virtio_user
# port on port "tp" of bridge br0, and a simulated guest (vsw-guest, "G") on port "g".
# testpmd forwards in macswap mode on its single port, so every frame G sends to testpmd's
# MAC comes back to G with the addresses swapped:
#   1. G sends 8 x 64 B and 4 x 1514 B to testpmd's MAC (unknown: flooded to tp) -> 12 back;
#   2. G sends 16 x 300 B (testpmd's MAC is learned now: unicast) -> 16 back;
#   3. testpmd itself sends a burst of 32 frames per queue pair to G's MAC (start tx_first).
# Checked: every frame arrives once, intact (vsw-guest checks each payload byte), at the right
# size; nothing else arrives; vswitchctl's counters, testpmd's port counters and the FDB agree;
# vswitchd exits cleanly (status 0, so the sanitizers found nothing).
#
# MODE picks testpmd's rings; the guest G always uses split rings, so a frame crosses between
# the two layouts in the switch. Each mode checks the features negotiated (port-list --json):
#   split           (default) split virtqueues, mergeable RX buffers (virtio-user asks for
#                   IN_ORDER unless in_order=0: the modes without "inorder" say in_order=0)
#   packed          packed_vq=1: packed virtqueues (VIRTIO_F_RING_PACKED)
#   inorder         in_order=1: split rings with VIRTIO_F_IN_ORDER
#   packed-inorder  packed_vq=1,in_order=1: packed rings with IN_ORDER
#   mrg-off         mrg_rxbuf=0: no mergeable RX buffers (one buffer per frame)
#   mq2             queues=2, testpmd --rxq=2 --txq=2: two queue pairs (VIRTIO_NET_F_MQ), both
#                   polled by vswitchd; testpmd's tx_first burst goes out on both
#
# Usage: VSWITCHD=... VSWITCHCTL=... VSW_GUEST=... test_testpmd_interop.sh [MODE] (meson's
# test env). Exit: 0 pass, 1 fail, 77 skip (no dpdk-testpmd). Runs in about 10 s.
set -u

MODE=${1:-split}
QUEUES=1
# feature bits: RING_PACKED 34, IN_ORDER 35, MRG_RXBUF 15, MQ 22
WANT_ON=15
WANT_OFF="34 35 22"
case "$MODE" in
split) VDEV_EXTRA=,in_order=0 ;;
packed) VDEV_EXTRA=,packed_vq=1,in_order=0 WANT_ON="15 34" WANT_OFF="35" ;;
inorder) VDEV_EXTRA=,in_order=1 WANT_ON="15 35" WANT_OFF="34" ;;
packed-inorder) VDEV_EXTRA=,packed_vq=1,in_order=1 WANT_ON="15 34 35" WANT_OFF='' ;;
mrg-off) VDEV_EXTRA=,mrg_rxbuf=0,in_order=0 WANT_ON='' WANT_OFF="15 34 35" ;;
mq2) VDEV_EXTRA=,in_order=0 QUEUES=2 WANT_ON="15 22" WANT_OFF="34 35" ;;
*)
    echo "usage: $0 [split|packed|inorder|packed-inorder|mrg-off|mq2]" >&2
    exit 2
    ;;
esac
TXF=$((32 * QUEUES)) # frames of testpmd's tx_first burst: 32 per forwarding stream

TESTPMD=$(command -v dpdk-testpmd) || {
    echo "SKIP: dpdk-testpmd not found (Debian package dpdk-dev)"
    exit 77
}
for v in VSWITCHD VSWITCHCTL VSW_GUEST; do
    if [ -z "${!v:-}" ] || [ ! -x "${!v}" ]; then
        echo "FAIL: $v is not set to an executable (meson's test env sets it)"
        exit 1
    fi
done

MAC_G=02:00:00:00:0c:01
MAC_TP=02:00:00:00:0d:01
tmp=$(mktemp -d /tmp/vsw-tp-interop.XXXXXX)
prefix=vswtpi$$
# Where DPDK keeps its runtime files for a --file-prefix (eal_get_runtime_dir).
if [ "$(id -u)" = 0 ]; then
    dpdk_run=/var/run/dpdk
else
    dpdk_run=${XDG_RUNTIME_DIR:-/tmp}/dpdk
fi
vsw_pid=
tp_pid=
g_pid=

ctl() { "$VSWITCHCTL" --socket "$tmp/vswitchd.sock" --timeout 10 "$@"; }

# Stop a process by PID: SIGTERM, up to 10 s (vswitchd's leak check at exit takes a moment
# under the sanitizers), then SIGKILL. Sets $stop_rc to its exit status.
stop_pid() {
    local p=$1
    stop_rc=
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    stop_rc=$?
}

cleanup() {
    stop_pid "$g_pid"
    stop_pid "$tp_pid"
    stop_pid "$vsw_pid"
    rm -rf "$tmp" "${dpdk_run:?}/$prefix"
    [ -n "$vsw_pid" ] && rmdir "$dpdk_run/vswitchd_$vsw_pid" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*"
    local f
    for f in vswitchd.log testpmd.log g.out g.err; do
        [ -s "$tmp/$f" ] && { echo "---- $f (tail)"; tail -n 30 "$tmp/$f"; }
    done
    exit 1
}

# Wait up to $1 tenths of a second for the command in the remaining arguments to succeed;
# give up at once if vswitchd or testpmd has died.
wait_for() {
    local n=$1
    shift
    while ! "$@" 2>/dev/null; do
        n=$((n - 1))
        [ $n -le 0 ] && return 1
        [ -n "$vsw_pid" ] && ! kill -0 "$vsw_pid" 2>/dev/null && fail "vswitchd exited"
        [ -n "$tp_pid" ] && ! kill -0 "$tp_pid" 2>/dev/null && fail "testpmd exited"
        sleep 0.1
    done
}

port_state() { # port -> state from port-list
    ctl --json port-list | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p["name"] == sys.argv[1]:
        print(p["state"])' "$1"
}
is_running() { [ "$(port_state "$1")" = running ]; }
is_listening() { [ "$(port_state "$1")" = listening ]; }

stat_of() { # port key -> counter
    ctl --json stats "$1" | python3 -c '
import json, sys
print(json.load(sys.stdin)["ports"][0][sys.argv[1]])' "$2"
}

# ---- the switch ----
"$VSWITCHD" --run-dir "$tmp" --ctl "$tmp/vswitchd.sock" >"$tmp/vswitchd.log" 2>&1 &
vsw_pid=$!
wait_for 150 test -S "$tmp/vswitchd.sock" || fail "vswitchd did not create its control socket"
wait_for 50 ctl version >/dev/null || fail "vswitchd does not answer"
ctl br-add br0 >/dev/null || fail "br-add"
ctl port-add br0 tp >/dev/null || fail "port-add tp"
ctl port-add br0 g >/dev/null || fail "port-add g"

# ---- testpmd: one virtio-user port, macswap ----
# It reads commands from a fifo; we hold a writer open so it never sees EOF, and stdbuf keeps
# its output line-buffered so we can watch it. --no-huge: no hugepage set-up needed (DPDK
# then backs its memory with memfd, which virtio-user can share); main and forwarding lcore
# share CPU 0 so testpmd busy-polls one core only.
mkfifo "$tmp/in"
exec {tp_in}<>"$tmp/in"
stdbuf -oL -eL "$TESTPMD" --lcores 0@0,1@0 --no-pci --no-huge -m 512 --file-prefix="$prefix" \
    --vdev "net_virtio_user0,path=$tmp/tp.sock,queues=$QUEUES,mac=$MAC_TP$VDEV_EXTRA" \
    -- -i --forward-mode=macswap --total-num-mbufs=16384 --eth-peer=0,$MAC_G \
    --rxq=$QUEUES --txq=$QUEUES \
    <"$tmp/in" >"$tmp/testpmd.log" 2>&1 &
tp_pid=$!

wait_for 200 grep -q "^Done" "$tmp/testpmd.log" || fail "testpmd did not finish start-up"
wait_for 50 is_running tp || fail "testpmd's port is not running on tp"
# The ring layout testpmd negotiated (vswitchd logs the features of each port).
want_rings="split"
case "$MODE" in packed*) want_rings=packed ;; esac
got_rings=$(sed -n 's/.* tp: features 0x[0-9a-f]* (\([a-z]*\) rings).*/\1/p' "$tmp/vswitchd.log" | tail -n 1)
[ "$got_rings" = "$want_rings" ] || fail "testpmd's port runs $got_rings rings, want $want_rings"
port_field() { # port key -> value from port-list --json
    ctl --json port-list | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p["name"] == sys.argv[1]:
        print(p[sys.argv[2]])' "$1" "$2"
}
feat=$(port_field tp features)
for b in $WANT_ON; do
    [ $((feat >> b & 1)) = 1 ] || fail "feature bit $b not negotiated by testpmd ($feat)"
done
for b in $WANT_OFF; do
    [ $((feat >> b & 1)) = 0 ] || fail "feature bit $b negotiated, not wanted in mode $MODE ($feat)"
done
pairs_up() { [ "$(port_field tp queue_pairs)" = "$QUEUES" ]; }
wait_for 50 pairs_up || fail "tp runs $(port_field tp queue_pairs) queue pairs, want $QUEUES"
echo start >&"$tp_in"
wait_for 50 grep -q "packet forwarding - ports=1" "$tmp/testpmd.log" ||
    fail "testpmd did not start forwarding"

# ---- the guest ----
# Steps 1 and 2, then it waits for testpmd's burst (step 3), then for nothing more.
timeout 40 "$VSW_GUEST" --socket "$tmp/g.sock" --mac $MAC_G --name G \
    --script "send $MAC_TP 8 64; send $MAC_TP 4 1514; expect 12 10000;
              send $MAC_TP 16 300; expect 16 10000; expect $TXF 20000; expect-none 300" \
    >"$tmp/g.out" 2>"$tmp/g.err" &
g_pid=$!

# Once G got its 28 frames back, testpmd sends its own burst to G.
tx_done() { [ "$(stat_of g tx_packets)" = 28 ]; }
wait_for 150 tx_done || fail "G did not get its 28 frames back (g tx_packets $(stat_of g tx_packets))"
echo stop >&"$tp_in"
echo "start tx_first" >&"$tp_in"

wait "$g_pid"
rc_g=$?
g_pid=
[ $rc_g = 0 ] || fail "guest G exited with $rc_g"

# ---- what G received: exactly the frames expected, once each ----
got=$(awk '$2 == "rx" { $1 = $2 = ""; sub(/^ +/, ""); print }' "$tmp/g.out" | sort | uniq -c |
    sed 's/^ *//')
want="$TXF src=$MAC_TP dst=$MAC_G len=64 from=?
16 src=$MAC_TP dst=$MAC_G len=300 from=G
8 src=$MAC_TP dst=$MAC_G len=64 from=G
4 src=$MAC_TP dst=$MAC_G len=1514 from=G"
[ "$(sort <<<"$got")" = "$(sort <<<"$want")" ] || fail "G received:
$got
want
$want"

# ---- counters: vswitchctl ----
stats_line() { # port -> "rx_packets rx_bytes tx_packets tx_bytes drops queue_errors msg_errors"
    ctl --json stats "$1" | python3 -c '
import json, sys
p = json.load(sys.stdin)["ports"][0]
print(p["rx_packets"], p["rx_bytes"], p["tx_packets"], p["tx_bytes"], len(p["drops"]),
      p["queue_errors"], p["msg_errors"])'
}
check_stats() { # port want
    local got
    got=$(stats_line "$1")
    [ "$got" = "$2" ] || fail "stats $1: got \"$got\", want \"$2\" (rx_packets rx_bytes tx_packets tx_bytes drop_reasons queue_errors msg_errors)"
}
g_bytes=$((8 * 64 + 4 * 1514 + 16 * 300))
check_stats g "28 $g_bytes $((28 + TXF)) $((g_bytes + TXF * 64)) 0 0 0"
check_stats tp "$((28 + TXF)) $((g_bytes + TXF * 64)) 28 $g_bytes 0 0 0"

# ---- the FDB ----
fdb=$(ctl --json fdb-show br0 | python3 -c '
import json, sys
print(" ".join(sorted(e["mac"] + "@" + e["port"] for e in json.load(sys.stdin))))')
[ "$fdb" = "$MAC_G@g $MAC_TP@tp" ] || fail "fdb-show br0: $fdb"

# ---- counters: testpmd (28 received and swapped back, 28 + TXF sent) ----
echo stop >&"$tp_in"
echo "show port stats 0" >&"$tp_in"
port_stats() { sed -n '/NIC statistics for port 0/,$p' "$tmp/testpmd.log"; }
has_tx_line() { port_stats | grep -q "TX-packets:"; }
wait_for 50 has_tx_line || fail "no port stats from testpmd"
tp_rx=$(port_stats | grep -m1 "RX-packets:" | awk '{ print $2 }')
tp_tx=$(port_stats | grep -m1 "TX-packets:" | awk '{ print $2 }')
if [ "$tp_rx" != 28 ] || [ "$tp_tx" != $((28 + TXF)) ]; then
    fail "testpmd port 0: RX $tp_rx TX $tp_tx, want 28 and $((28 + TXF))"
fi

# ---- clean shutdown ----
echo quit >&"$tp_in"
for _ in $(seq 50); do
    kill -0 "$tp_pid" 2>/dev/null || break
    sleep 0.1
done
stop_pid "$tp_pid"
tp_pid=
wait_for 50 is_listening tp || fail "tp did not go back to listening"
kill -0 "$vsw_pid" 2>/dev/null || fail "vswitchd died"
stop_pid "$vsw_pid"
[ "$stop_rc" = 0 ] || fail "vswitchd exited with status $stop_rc"
rmdir "$dpdk_run/vswitchd_$vsw_pid" 2>/dev/null
vsw_pid=

echo "PASS [$MODE]: guest <-> vswitchd <-> testpmd virtio-user ($want_rings rings): 28 frames swapped back, $TXF from testpmd"
exit 0
