#!/bin/bash
# The vhost-user frontend library (through vsw-guest) against an independent backend: DPDK
# testpmd's vhost PMD with two ports in io forward mode (port 0 <-> port 1). Guest A on port 0
# and guest B on port 1 exchange frames both ways: small frames, full-size frames, jumbo and
# 64 KiB frames (chained TX descriptors, mergeable RX buffers), with B waiting on its call
# eventfd (--notify) and A polling. vsw-guest itself checks every payload byte.
#
# Usage: VSW_GUEST=path/to/vsw-guest test_frontend_testpmd.sh   (meson's test env sets it)
# Exit: 0 pass, 1 fail, 77 skip (no dpdk-testpmd). Runs in about 10 s.
set -u

TESTPMD=$(command -v dpdk-testpmd) || {
    echo "SKIP: dpdk-testpmd not found (Debian package dpdk-dev)"
    exit 77
}
GUEST=${VSW_GUEST:-${1:-}}
if [ -z "$GUEST" ] || [ ! -x "$GUEST" ]; then
    echo "FAIL: vsw-guest not found: set VSW_GUEST or pass its path"
    exit 1
fi

MAC_A=02:00:00:00:0a:01
MAC_B=02:00:00:00:0b:01
tmp=$(mktemp -d /tmp/vsw-fe-testpmd.XXXXXX)
prefix=vswfe$$
# Where DPDK keeps its runtime files for --file-prefix (eal_get_runtime_dir).
if [ "$(id -u)" = 0 ]; then
    dpdk_run=/var/run/dpdk/$prefix
else
    dpdk_run=${XDG_RUNTIME_DIR:-/tmp}/dpdk/$prefix
fi
pids=()
tp_pid=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    # testpmd shuts its ports down on SIGTERM; give it a moment, then insist.
    for _ in $(seq 30); do
        local alive=0
        for p in "${pids[@]}"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp" "$dpdk_run"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*"
    local f
    for f in testpmd.log a.out a.err b.out b.err; do
        [ -s "$tmp/$f" ] && { echo "---- $f (tail)"; tail -n 25 "$tmp/$f"; }
    done
    exit 1
}

# Wait up to $1 tenths of a second for the command in the remaining arguments to succeed;
# give up at once if testpmd has died.
wait_for() {
    local n=$1
    shift
    while ! "$@" 2>/dev/null; do
        n=$((n - 1))
        [ $n -le 0 ] && return 1
        [ -n "$tp_pid" ] && ! kill -0 "$tp_pid" 2>/dev/null && fail "testpmd exited"
        sleep 0.1
    done
}

# testpmd reads commands from a fifo; we hold a writer open so it never sees EOF, and
# stdbuf keeps its output line-buffered so we can watch it. --no-huge needs no hugepage
# set-up (and rules out --in-memory, so cleanup removes the runtime dir).
mkfifo "$tmp/in"
exec {tp_in}<>"$tmp/in"
stdbuf -oL -eL "$TESTPMD" -l 0-1 --no-pci --no-huge -m 512 --file-prefix="$prefix" \
    --vdev "net_vhost0,iface=$tmp/s0,queues=1" --vdev "net_vhost1,iface=$tmp/s1,queues=1" \
    -- -i --forward-mode=io --total-num-mbufs=16384 \
    <"$tmp/in" >"$tmp/testpmd.log" 2>&1 &
tp_pid=$!
pids+=("$tp_pid")

wait_for 200 test -S "$tmp/s1" || fail "testpmd did not create its vhost sockets"
wait_for 100 grep -q "^Done" "$tmp/testpmd.log" || fail "testpmd did not finish start-up"
echo start >&"$tp_in"
wait_for 50 grep -q "packet forwarding - ports=2" "$tmp/testpmd.log" ||
    fail "testpmd did not start forwarding"

# B receives A's frames, then answers; A sends once B is connected, then waits for the answer.
# Each guest finishes its own expectations; the timeouts only bound a broken run.
timeout 25 "$GUEST" --socket "$tmp/s1" --mac $MAC_B --name B --notify --queue-size 128 \
    --script "expect 11 10000; send $MAC_A 3 64; send $MAC_A 1 1514; send $MAC_A 1 20000;
              send $MAC_A 1 65562; expect-none 300" >"$tmp/b.out" 2>"$tmp/b.err" &
pid_b=$!
pids+=("$pid_b")
wait_for 60 grep -q "connected" "$tmp/b.err" || fail "guest B did not connect"

timeout 25 "$GUEST" --socket "$tmp/s0" --mac $MAC_A --name A \
    --script "sleep 500; send $MAC_B 8 128; send $MAC_B 2 1514; send $MAC_B 1 9000;
              expect 6 10000; expect-none 300" >"$tmp/a.out" 2>"$tmp/a.err" &
pid_a=$!
pids+=("$pid_a")

wait $pid_a
rc_a=$?
wait $pid_b
rc_b=$?
[ $rc_a = 0 ] || fail "guest A exited with $rc_a"
[ $rc_b = 0 ] || fail "guest B exited with $rc_b"

# Exactly what was sent arrived, once, from the right sender, at the right size.
check() { # file, expected "count len from src" lines, by length
    local got
    got=$(awk '$2 == "rx" { sub("len=", "", $5); print $5, $6, $3 }' "$1" | sort -n | uniq -c |
        awk '{ print $1, $2, $3, $4 }')
    [ "$got" = "$2" ] || fail "$(basename "$1"): got
$got
want
$2"
}
check "$tmp/b.out" "8 128 from=A src=$MAC_A
2 1514 from=A src=$MAC_A
1 9000 from=A src=$MAC_A"
check "$tmp/a.out" "3 64 from=B src=$MAC_B
1 1514 from=B src=$MAC_B
1 20000 from=B src=$MAC_B
1 65562 from=B src=$MAC_B"

echo "PASS: vsw-guest frames both ways through testpmd's vhost backend (notify and poll modes)"
exit 0
