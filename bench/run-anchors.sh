#!/bin/bash
# run-anchors.sh: vswitchd against its anchors, measured back to back in one run (issue 5).
#
# The classic vhost/virtio-user loopback (../shared/notes/anchor-bench.md): the switch under
# test (SUT) has two vhost-user ports on core 1; DPDK testpmd on core 0 plays two guests with
# two virtio-user ports in io forward mode, seeded with `start tx_first 32`, so bursts
# circulate p0 -> SUT -> p1 -> testpmd -> p0 ... in both directions. The rate is the sum of
# the generator's Rx-pps over both ports over a window after a warm-up. SUTs:
#   vswitchd  this project (server-mode vhost-user ports on a MAC-learning bridge; the
#             generator's --eth-peer MACs make the frames known unicast)
#   testpmd   testpmd vhost io forward (no lookup: the ceiling of a two-copy forwarder)
#   ovs       Open vSwitch 3.1 with DPDK, bridge with the default NORMAL flow (MAC learning)
# A case is VARIANT:SIZE: the variant sets the ring layout and features both sides use
# (split, packed = packed virtqueues, nomrg = no mergeable RX buffers, mq2 = two queue pairs,
# inorder = VIRTIO_F_IN_ORDER; see variant_*() below: adding one is a few lines), the size
# the frame bytes. Every round measures every SUT of a case at every case; within a round the
# SUTs run back to back (order reversed every other round), and vswitchd is compared with
# each anchor as the ratio of the pair measured in the same round, then the median over the
# rounds. Absolute rates on this 2-vCPU machine drift by 8-28% between runs; the ratios are
# the result.
#
# One command: installs what is missing (apt-get), reserves hugepages on a private hugetlbfs
# mount, measures, prints the table, writes bench/results/<date>.json and .png, and undoes
# everything it set up (processes by PID, DPDK files by prefix, the mount, nr_hugepages).
#
# Usage: bench/run-anchors.sh [options]   (root; see --help)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

ROUNDS=5
WINDOW=3
WARMUP=2
CASES="split:64 split:1518 split:9000 packed:64 packed:1518 nomrg:1518 mq2:64"
OVS_VARIANTS="split" # OVS is slow to start: by default it anchors the split cases only
SUTS="vswitchd testpmd ovs"
GEN_CORE=0
SUT_CORE=1
HUGEPAGES=1024 # 2 MiB pages: generator 512 MiB + the largest SUT (OVS, 1024 MiB) + slack
OUT_DIR=$HERE/results
BUILD_DIR=
VSWITCHD=
VSWITCHCTL=
INSTALL=1
PLOT=1
VSW_BENCH=0
VSW_SCENARIOS=all
VSW_ROUNDS=
VSW_WINDOW=1
VSW_WARMUP=0.3
QUICK=0
KEEP=0
QUIET=15      # % of the machine's CPU time others may use before a measurement starts
QUIET_WAIT=120 # seconds to wait for that, then measure anyway (and say so)

usage() {
    cat <<EOF
usage: $0 [options]
  --rounds N        rounds; every round measures every SUT at every case (default $ROUNDS)
  --window SEC      measurement window (default $WINDOW)
  --warmup SEC      traffic before the window opens (default $WARMUP)
  --cases LIST      VARIANT:SIZE,... (default ${CASES// /,});
                    variants: split, packed, nomrg, mq2 (2 queue pairs), inorder
  --sizes LIST      same as --cases split:SIZE,... (frame sizes 60..9000)
  --suts LIST       vswitchd,testpmd,ovs (default ${SUTS// /,}); ratios need vswitchd
  --ovs-variants L  variants OVS is measured in (default $OVS_VARIANTS; "all")
  --quick           3 rounds, 2 s windows, cases split:64,split:1518,packed:64; with
                    --vsw-bench: vsw-bench --quick, 3 rounds (about 5 minutes in all)
  --build DIR       meson build dir with vswitchd and vswitchctl (default: build-bench,
                    else build, under the source root)
  --vswitchd PATH, --vswitchctl PATH
  --out DIR         where <date>.json and <date>.png go (default bench/results)
  --hugepages N     2 MiB pages to have reserved while running (default $HUGEPAGES)
  --no-install      do not apt-get install missing packages
  --no-plot         no PNG
  --vsw-bench       also run vsw-bench (our lighter generator) at the end: its scenarios
                    (ports, MACs, flooding, mrg, PMDs, latency, idle wake-up), JSON + PNG
  --vsw-scenarios L vsw-bench scenarios (default $VSW_SCENARIOS)
  --vsw-rounds N    vsw-bench rounds (default: --rounds)
  --vsw-window SEC  vsw-bench window per point (default $VSW_WINDOW; warm-up $VSW_WARMUP)
  --quiet PCT       before each measurement wait until other processes use less than PCT %
                    of the machine's CPU time over a second (default $QUIET; 100: never wait)
  --quiet-wait SEC  wait at most this long for it (default $QUIET_WAIT)
  --keep            keep the temporary directory (logs) for debugging
Every sample records "others_pct": the CPU time used by processes other than the SUT and
the generator during its window, in % of the machine (2 CPUs = 100 %). Samples taken while
others were busy are noisy; look at it before trusting a ratio.
EOF
}

die() {
    echo "run-anchors: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --window) WINDOW=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --sizes) CASES=$(tr ',' '\n' <<<"$2" | sed 's/^/split:/' | tr '\n' ' '); shift ;;
    --cases) CASES=${2//,/ }; shift ;;
    --ovs-variants) OVS_VARIANTS=${2//,/ }; shift ;;
    --quick) QUICK=1 ;;
    --vsw-scenarios) VSW_SCENARIOS=$2; shift ;;
    --vsw-rounds) VSW_ROUNDS=$2; shift ;;
    --vsw-window) VSW_WINDOW=$2; shift ;;
    --suts) SUTS=${2//,/ }; shift ;;
    --build) BUILD_DIR=$2; shift ;;
    --vswitchd) VSWITCHD=$2; shift ;;
    --vswitchctl) VSWITCHCTL=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    --hugepages) HUGEPAGES=$2; shift ;;
    --no-install) INSTALL=0 ;;
    --no-plot) PLOT=0 ;;
    --vsw-bench) VSW_BENCH=1 ;;
    --keep) KEEP=1 ;;
    --quiet) QUIET=$2; shift ;;
    --quiet-wait) QUIET_WAIT=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    ROUNDS=3 WINDOW=2 WARMUP=1.5 CASES="split:64 split:1518 packed:64"
fi
VSW_ROUNDS=${VSW_ROUNDS:-$ROUNDS}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds: a positive integer"
[[ $VSW_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--vsw-rounds: a positive integer"
[[ $VSW_WINDOW =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--vsw-window: seconds"
[[ $WINDOW =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--window: seconds"
[[ $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--warmup: seconds"
[[ $HUGEPAGES =~ ^[0-9]+$ ]] || die "--hugepages: a count"
[[ $QUIET =~ ^[0-9]+$ ]] || die "--quiet: a percentage"
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "--quiet-wait: seconds"
for c in $CASES; do
    v=${c%%:*} s=${c#*:}
    case $v in split | packed | nomrg | mq2 | inorder) ;; *) die "unknown variant in case $c" ;; esac
    [[ $s =~ ^[0-9]+$ ]] && [ "$s" -ge 60 ] && [ "$s" -le 9000 ] || die "bad size in case $c"
done
for s in $SUTS; do
    case $s in vswitchd | testpmd | ovs) ;; *) die "unknown SUT $s" ;; esac
done
[ "$(id -u)" = 0 ] || die "needs root (hugepages, mount)"

# ---- dependencies ----
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema

install_deps() {
    local pkgs=()
    command -v dpdk-testpmd >/dev/null || pkgs+=(dpdk-dev)
    [ -x "$OVS_VSWITCHD" ] || pkgs+=(openvswitch-switch-dpdk)
    command -v gnuplot >/dev/null || pkgs+=(gnuplot-nox)
    command -v jq >/dev/null || pkgs+=(jq)
    [ ${#pkgs[@]} = 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "missing packages: ${pkgs[*]} (run without --no-install)"
    echo "run-anchors: installing ${pkgs[*]}"
    # Debian's policy-rc.d (if any) keeps the OVS packages from starting system daemons.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" \
        >/dev/null || die "apt-get install ${pkgs[*]} failed"
}
install_deps
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found"
case " $SUTS " in *" ovs "*) [ -x "$OVS_VSWITCHD" ] || die "$OVS_VSWITCHD not found" ;; esac
[ "$PLOT" = 0 ] || command -v gnuplot >/dev/null || die "gnuplot not found"

if [ -z "$BUILD_DIR" ]; then
    for d in "$ROOT/build-bench" "$ROOT/build"; do
        [ -x "$d/src/switch/vswitchd" ] && { BUILD_DIR=$d; break; }
    done
fi
VSWITCHD=${VSWITCHD:-${BUILD_DIR:+$BUILD_DIR/src/switch/vswitchd}}
VSWITCHCTL=${VSWITCHCTL:-${BUILD_DIR:+$BUILD_DIR/ctl/vswitchctl}}
case " $SUTS " in
*" vswitchd "*)
    [ -n "$VSWITCHD" ] && [ -x "$VSWITCHD" ] || die "vswitchd not found (build it, or --build DIR)"
    [ -n "$VSWITCHCTL" ] && [ -x "$VSWITCHCTL" ] || die "vswitchctl not found"
    ;;
esac

# ---- state and clean-up ----
TMP=$(mktemp -d /tmp/vsw-anchors.XXXXXX)
PFX=vswa$$ # DPDK file prefixes: ${PFX}gen, ${PFX}sut, ${PFX}ovs
HUGE_DIR=$TMP/huge
HP_ORIG=
HP_SET=
MOUNTED=
declare -A TP_PID TP_FD TP_LOG
SEQ=0 # numbers the logs of successive processes
PIDS=() # everything else we started

# Stop one process: SIGTERM, up to $2 tenths of a second, then SIGKILL.
stop_pid() {
    local pid=$1 n=${2:-50}
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    while [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        n=$((n - 1))
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

dpdk_runtime_dir() { echo "/var/run/dpdk/$1"; }

# Stop a process from PIDS and forget it (its PID may be reused later).
stop_forget() {
    local pid=$1 p kept=()
    stop_pid "$pid"
    for p in "${PIDS[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    PIDS=("${kept[@]}")
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local name p
    trap - EXIT INT TERM
    for name in "${!TP_PID[@]}"; do
        tp_stop "$name"
    done
    for ((p = ${#PIDS[@]} - 1; p >= 0; p--)); do
        stop_pid "${PIDS[p]}"
    done
    PIDS=()
    for p in gen sut ovs; do
        rm -f "$HUGE_DIR/${PFX}${p}"map_* 2>/dev/null
        rm -rf "$(dpdk_runtime_dir "${PFX}${p}")"
    done
    if [ -n "$MOUNTED" ]; then
        umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED"
        MOUNTED=
    fi
    if [ -n "$HP_SET" ]; then
        # Only if nobody changed it meanwhile.
        [ "$(cat /proc/sys/vm/nr_hugepages)" = "$HP_SET" ] &&
            echo "$HP_ORIG" >/proc/sys/vm/nr_hugepages
        HP_SET=
    fi
    if [ "$KEEP" = 1 ]; then
        echo "run-anchors: logs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'echo "run-anchors: interrupted" >&2; exit 130' INT TERM

# ---- hugepages on a private hugetlbfs mount (passed to every DPDK process as --huge-dir) ----
hugepages_setup() {
    HP_ORIG=$(cat /proc/sys/vm/nr_hugepages)
    local free
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    if [ "$free" -lt "$HUGEPAGES" ]; then
        HP_SET=$((HP_ORIG + HUGEPAGES - free))
        echo "$HP_SET" >/proc/sys/vm/nr_hugepages
        HP_SET=$(cat /proc/sys/vm/nr_hugepages)
        free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
        [ "$free" -ge $((HUGEPAGES * 3 / 4)) ] ||
            die "only $free free 2 MiB hugepages after asking for $HUGEPAGES"
    fi
    mkdir -p "$HUGE_DIR"
    mount -t hugetlbfs -o pagesize=2M nodev "$HUGE_DIR" || die "cannot mount hugetlbfs"
    MOUNTED=$HUGE_DIR
}

# ---- testpmd driven through a fifo on stdin ----
# tp_start NAME CORE ARGS...: start testpmd on CORE (main and forwarding lcore both there).
tp_start() {
    local name=$1 core=$2
    shift 2
    SEQ=$((SEQ + 1))
    local fifo=$TMP/$name.in log=$TMP/$SEQ-$name.log fd
    TP_LOG[$name]=$log
    rm -f "$fifo"
    mkfifo "$fifo"
    # A writer that stays open: without it testpmd reads EOF and quits.
    exec {fd}<>"$fifo"
    TP_FD[$name]=$fd
    taskset -c "$core" stdbuf -oL -eL dpdk-testpmd --lcores "0@$core,1@$core" --no-pci \
        --huge-dir "$HUGE_DIR" "$@" <"$fifo" >"$log" 2>&1 &
    TP_PID[$name]=$!
    local n=300
    while ! grep -q 'testpmd>' "$log" 2>/dev/null; do
        kill -0 "${TP_PID[$name]}" 2>/dev/null || { tail -n 20 "$log" >&2; die "testpmd $name exited"; }
        n=$((n - 1))
        [ $n -gt 0 ] || die "testpmd $name did not start (log: $log)"
        sleep 0.1
    done
}

tp_cmd() {
    echo "$2" >&"${TP_FD[$1]}"
}

# tp_query NAME CMD PATTERN COUNT: send CMD, wait until COUNT new lines match PATTERN, print
# the new output.
tp_query() {
    local name=$1 cmd=$2 pat=$3 count=$4 log=${TP_LOG[$1]}
    local before n=50
    before=$(wc -l <"$log")
    tp_cmd "$name" "$cmd"
    while [ "$(tail -n +$((before + 1)) "$log" | grep -c -- "$pat")" -lt "$count" ]; do
        n=$((n - 1))
        [ $n -gt 0 ] || { echo "run-anchors: no answer from $name to '$cmd'" >&2; return 1; }
        sleep 0.1
    done
    tail -n +$((before + 1)) "$log"
}

tp_stop() {
    local name=$1 pid=${TP_PID[$1]:-}
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        tp_cmd "$name" "stop" 2>/dev/null
        tp_cmd "$name" "quit" 2>/dev/null
        local n=50
        while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
            n=$((n - 1))
        done
    fi
    stop_pid "$pid" 30
    local fd=${TP_FD[$name]}
    exec {fd}>&-
    unset "TP_PID[$name]" "TP_FD[$name]" "TP_LOG[$name]"
}

# ---- the generator: two virtio-user ports, io forward, on GEN_CORE ----
MAC0=02:00:00:00:00:10
MAC1=02:00:00:00:00:11

# ---- variants: what both sides of a case use ----
# virtio-user devargs of the generator's ports.
variant_devargs() {
    case $1 in
    packed) echo ",packed_vq=1" ;;
    nomrg) echo ",mrg_rxbuf=0" ;;
    inorder) echo ",in_order=1" ;;
    *) echo "" ;;
    esac
}
variant_queues() { [ "$1" = mq2 ] && echo 2 || echo 1; }
# testpmd options for a frame size: jumbo frames in one mbuf, and a port MTU that admits them.
# A bounded pool: with jumbo mbufs testpmd's default pool grows past -m and starves the next
# DPDK process of hugepages.
size_args() { [ "$1" -gt 1518 ] && echo "--mbuf-size=9728 --total-num-mbufs=16384"; }
case_suts() { # the SUTs measured in a case, in the round's order
    local v=$1 u
    shift
    for u in "$@"; do
        if [ "$u" = ovs ] && [ "$OVS_VARIANTS" != all ] && [[ " $OVS_VARIANTS " != *" $v "* ]]; then
            continue
        fi
        echo "$u"
    done
}

gen_start() { # gen_start SOCK0 SOCK1 SIZE VARIANT
    local q dev
    q=$(variant_queues "$4")
    dev=$(variant_devargs "$4")
    # shellcheck disable=SC2046 # size_args is a list of words
    tp_start gen "$GEN_CORE" --file-prefix="${PFX}gen" -m 512 --single-file-segments \
        --vdev "net_virtio_user0,path=$1,queues=$q,mac=$MAC0$dev" \
        --vdev "net_virtio_user1,path=$2,queues=$q,mac=$MAC1$dev" \
        -- -i --forward-mode=io --nb-cores=1 --record-core-cycles --rxq="$q" --txq="$q" \
        $(size_args "$3") --eth-peer=0,$MAC1 --eth-peer=1,$MAC0
    grep -q "Port 1: " "${TP_LOG[gen]}" || { tail -n 20 "${TP_LOG[gen]}" >&2; die "generator: no port 1"; }
    tp_cmd gen "set txpkts $3"
    tp_cmd gen "start tx_first 32"
}

# Print "RX_PACKETS_SUM RX_PPS_SUM" from one "show port stats all".
gen_stats() {
    tp_query gen "show port stats all" "Tx-pps:" 2 |
        awk '/RX-packets:/ {p += $2} /Rx-pps:/ {r += $2} END {printf "%d %d\n", p, r}'
}

# ---- SUT: vswitchd ----
VSW_CTL_SOCK=
vsw_ctl() { "$VSWITCHCTL" --socket "$VSW_CTL_SOCK" "$@"; }

sut_vswitchd_start() {
    local dir=$TMP/vsw
    rm -rf "$dir"
    mkdir -p "$dir"
    VSW_CTL_SOCK=$dir/ctl.sock
    SEQ=$((SEQ + 1))
    taskset -c "$SUT_CORE" "$VSWITCHD" --run-dir "$dir" --ctl "$VSW_CTL_SOCK" \
        --pmd-cores "$SUT_CORE" --no-sleep --log-level warn >"$TMP/$SEQ-vswitchd.log" 2>&1 &
    SUT_PID=$!
    PIDS+=("$SUT_PID")
    local n=100
    until vsw_ctl version >/dev/null 2>&1; do
        kill -0 "$SUT_PID" 2>/dev/null || { cat "$TMP/$SEQ-vswitchd.log" >&2; die "vswitchd exited"; }
        n=$((n - 1))
        [ $n -gt 0 ] || die "vswitchd did not answer"
        sleep 0.1
    done
    # --mtu 9000: a bridge drops frames above its MTU (default 1500); the 9000 B cases need it.
    vsw_ctl br-add br0 --mtu 9000 >/dev/null && vsw_ctl port-add br0 p0 >/dev/null &&
        vsw_ctl port-add br0 p1 >/dev/null || die "vswitchd: bridge set-up failed"
    SOCK0=$dir/p0.sock
    SOCK1=$dir/p1.sock
}

# Print "BUSY_CYCLES PACKETS" summed over the PMDs.
sut_vswitchd_counters() {
    vsw_ctl --json stats | jq -r '[([.pmds[].busy_cycles] | add), ([.pmds[].packets] | add)] | @tsv'
}
sut_vswitchd_mark() { SUT_MARK=$(sut_vswitchd_counters); }
sut_vswitchd_cpp() {
    local now
    now=$(sut_vswitchd_counters) || return 1
    awk -v a="$SUT_MARK" -v b="$now" 'BEGIN { split(a, x); split(b, y);
        if (y[2] > x[2]) printf "%.0f\n", (y[1] - x[1]) / (y[2] - x[2]); else print "null" }'
}
sut_vswitchd_stop() {
    stop_forget "$SUT_PID"
    rm -rf "$(dpdk_runtime_dir "vswitchd_$SUT_PID")" # the EAL's (empty) runtime dir
}

# ---- SUT: testpmd vhost io forward ----
sut_testpmd_start() { # SIZE VARIANT
    local dir=$TMP/tp q
    q=$(variant_queues "$2")
    rm -rf "$dir"
    mkdir -p "$dir"
    SOCK0=$dir/sock0
    SOCK1=$dir/sock1
    # shellcheck disable=SC2046 # size_args is a list of words
    tp_start sut "$SUT_CORE" --file-prefix="${PFX}sut" -m 512 \
        --vdev "net_vhost0,iface=$SOCK0,queues=$q" --vdev "net_vhost1,iface=$SOCK1,queues=$q" \
        -- -i --forward-mode=io --nb-cores=1 --record-core-cycles --rxq="$q" --txq="$q" \
        $(size_args "$1")
    tp_cmd sut "start"
}
# "show fwd stats all" with --record-core-cycles: "CPU cycles/packet=X (busy cycles=B /
# total RX packets=P) ..."; the counters run from `start`, so take differences.
sut_testpmd_counters() {
    tp_query sut "show fwd stats all" "Accumulated forward statistics" 1 >/dev/null || return 1
    sleep 0.3
    tail -n 40 "${TP_LOG[sut]}" | grep 'CPU cycles/packet=' | tail -n 1 |
        sed -E 's/.*\((busy|total) cycles=([0-9]+) \/ total [A-Za-z]+ packets=([0-9]+)\).*/\2\t\3/'
}
sut_testpmd_mark() { SUT_MARK=$(sut_testpmd_counters); }
sut_testpmd_cpp() {
    local now
    now=$(sut_testpmd_counters) || return 1
    awk -v a="$SUT_MARK" -v b="$now" 'BEGIN { split(a, x); split(b, y);
        if (y[2] > x[2]) printf "%.0f\n", (y[1] - x[1]) / (y[2] - x[2]); else print "null" }'
}
sut_testpmd_stop() { tp_stop sut; }

# ---- SUT: OVS-DPDK, NORMAL ----
ovs() { ovs-vsctl --db="unix:$TMP/ovs/db.sock" --timeout=60 "$@"; }
ovs_appctl() { ovs-appctl -t "$TMP/ovs/ovs-vswitchd.ctl" "$@"; }

sut_ovs_start() {
    local dir=$TMP/ovs
    rm -rf "$dir"
    mkdir -p "$dir"
    export OVS_RUNDIR=$dir OVS_LOGDIR=$dir OVS_DBDIR=$dir OVS_SYSCONFDIR=$dir OVS_PKGDATADIR=/usr/share/openvswitch
    ovsdb-tool create "$dir/conf.db" "$OVS_SCHEMA" || die "ovsdb-tool create failed"
    ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb-server.pid" \
        --unixctl="$dir/ovsdb-server.ctl" --log-file="$dir/ovsdb-server.log" >/dev/null 2>&1 &
    OVSDB_PID=$!
    PIDS+=("$OVSDB_PID")
    local n=100
    until [ -S "$dir/db.sock" ]; do
        n=$((n - 1))
        [ $n -gt 0 ] || die "ovsdb-server did not start"
        sleep 0.1
    done
    ovs --no-wait init
    ovs --no-wait set Open_vSwitch . other_config:dpdk-init=true \
        other_config:dpdk-lcore-mask=$((1 << SUT_CORE)) \
        other_config:pmd-cpu-mask=$((1 << SUT_CORE)) other_config:dpdk-socket-mem=1024 \
        other_config:dpdk-extra="--file-prefix=${PFX}ovs --no-pci --huge-dir $HUGE_DIR"
    taskset -c "$SUT_CORE" "$OVS_VSWITCHD" "unix:$dir/db.sock" --pidfile="$dir/ovs-vswitchd.pid" \
        --unixctl="$dir/ovs-vswitchd.ctl" --log-file="$dir/ovs-vswitchd.log" >/dev/null 2>&1 &
    SUT_PID=$!
    PIDS+=("$SUT_PID")
    n=300
    until grep -q "DPDK Enabled - initialized" "$dir/ovs-vswitchd.log" 2>/dev/null; do
        kill -0 "$SUT_PID" 2>/dev/null || { tail -n 20 "$dir/ovs-vswitchd.log" >&2; die "ovs-vswitchd exited"; }
        n=$((n - 1))
        [ $n -gt 0 ] || die "OVS DPDK did not initialise (log: $dir/ovs-vswitchd.log)"
        sleep 0.1
    done
    # Jumbo frames: OVS drops frames longer than the port MTU (1500 unless asked).
    local mtu=()
    [ "$1" -gt 1518 ] && mtu=(mtu_request=9000)
    ovs add-br br0 -- set bridge br0 datapath_type=netdev &&
        ovs add-port br0 vhost0 -- set Interface vhost0 type=dpdkvhostuser ofport_request=1 "${mtu[@]}" &&
        ovs add-port br0 vhost1 -- set Interface vhost1 type=dpdkvhostuser ofport_request=2 "${mtu[@]}" ||
        die "OVS bridge set-up failed"
    SOCK0=$dir/vhost0
    SOCK1=$dir/vhost1
    n=100
    until [ -S "$SOCK0" ] && [ -S "$SOCK1" ]; do
        n=$((n - 1))
        [ $n -gt 0 ] || die "OVS did not create its vhost-user sockets"
        sleep 0.1
    done
}
sut_ovs_mark() { ovs_appctl dpif-netdev/pmd-stats-clear >/dev/null; }
# "avg processing cycles per packet: X (busy/packets)"
sut_ovs_cpp() {
    ovs_appctl dpif-netdev/pmd-stats-show |
        awk '/avg processing cycles per packet/ {v = $6} END {print (v == "" ? "null" : sprintf("%.0f", v))}'
}
sut_ovs_stop() {
    ovs_appctl exit >/dev/null 2>&1
    stop_forget "$SUT_PID"
    stop_forget "$OVSDB_PID"
    rm -f "$HUGE_DIR/${PFX}ovs"map_*
    rm -rf "$(dpdk_runtime_dir "${PFX}ovs")"
    unset OVS_RUNDIR OVS_LOGDIR OVS_DBDIR OVS_SYSCONFDIR OVS_PKGDATADIR
}

# ---- how busy the rest of the machine is ----
NCPU=$(nproc)
HZ=$(getconf CLK_TCK)
# Busy jiffies of all CPUs (user nice system irq softirq steal), then of the given PIDs.
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
pids_busy() {
    local p t=0 st
    for p in "$@"; do
        # Fields after the ")" of comm: utime and stime are the 12th and 13th.
        st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        st=${st##*) }
        t=$((t + $(awk '{print $12 + $13}' <<<"$st")))
    done
    echo "$t"
}
# others_pct BUSY0 OURS0 T0_NS BUSY1 OURS1 T1_NS
others_pct() {
    awk -v b0="$1" -v o0="$2" -v t0="$3" -v b1="$4" -v o1="$5" -v t1="$6" -v hz="$HZ" -v n="$NCPU" \
        'BEGIN { v = ((b1 - b0) - (o1 - o0)) / ((t1 - t0) / 1e9 * hz * n) * 100;
                 printf "%.0f", v < 0 ? 0 : v }'
}
# Nothing of ours runs between measurements: everything busy is someone else.
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) b0 t0 pct said=0
    while :; do
        b0=$(cpu_busy)
        t0=$(date +%s%N)
        sleep 1
        pct=$(others_pct "$b0" 0 "$t0" "$(cpu_busy)" 0 "$(date +%s%N)")
        [ "$pct" -lt "$QUIET" ] && return 0
        if [ $SECONDS -ge $deadline ]; then
            echo "  (others still use $pct % of the CPUs; measuring anyway)"
            return 0
        fi
        [ $said = 1 ] || echo "  (others use $pct % of the CPUs; waiting up to ${QUIET_WAIT} s for < $QUIET %)"
        said=1
    done
}

# ---- one measurement ----
RESULTS=$TMP/results.tsv # round case sut mpps cycles_per_pkt others_pct

measure() { # measure ROUND CASE SUT
    local round=$1 case=$2 sut=$3 s1 cpp mpps others b0 o0 t0
    local variant=${case%%:*} size=${case#*:}
    [ "$QUIET" -ge 100 ] || wait_quiet
    "sut_${sut}_start" "$size" "$variant"
    gen_start "$SOCK0" "$SOCK1" "$size" "$variant"
    sleep "$WARMUP"
    gen_stats >/dev/null || die "generator stats failed" # opens testpmd's Rx-pps interval
    "sut_${sut}_mark"
    local ours=("${TP_PID[gen]}" "${PIDS[@]}" ${TP_PID[sut]:+"${TP_PID[sut]}"})
    b0=$(cpu_busy) o0=$(pids_busy "${ours[@]}") t0=$(date +%s%N)
    sleep "$WINDOW"
    s1=$(gen_stats) || die "generator stats failed"
    others=$(others_pct "$b0" "$o0" "$t0" "$(cpu_busy)" "$(pids_busy "${ours[@]}")" "$(date +%s%N)")
    cpp=$("sut_${sut}_cpp") || cpp=null
    tp_stop gen
    rm -f "$HUGE_DIR/${PFX}gen"map_*
    "sut_${sut}_stop"
    # Rx-pps of the second "show" covers exactly the window (testpmd times it itself).
    mpps=$(awk -v b="$s1" 'BEGIN { split(b, y); printf "%.3f", y[2] / 1e6 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$sut" "$mpps" "${cpp:-null}" "$others" >>"$RESULTS"
    printf '  round %-2s %12s B  %-9s %7s Mpps  %5s cycles/pkt  (others %s %%)\n' \
        "$round" "$case" "$sut" "$mpps" "${cpp:-null}" "$others"
}

# ---- run ----
DATE=$(date -u +%Y-%m-%dT%H%M%SZ)
hugepages_setup
: >"$RESULTS"
echo "run-anchors: $ROUNDS rounds of [${SUTS// /, }] x [${CASES// /, }] (OVS in: $OVS_VARIANTS), ${WARMUP} s warm-up + ${WINDOW} s window; SUT on core $SUT_CORE, generator on core $GEN_CORE"
read -r -a sut_list <<<"$SUTS"
for ((r = 1; r <= ROUNDS; r++)); do
    order=("${sut_list[@]}")
    if ((r % 2 == 0)); then # A B C, then C B A: drift within a round cancels over pairs
        order=()
        for ((i = ${#sut_list[@]} - 1; i >= 0; i--)); do order+=("${sut_list[i]}"); done
    fi
    for case in $CASES; do
        for sut in $(case_suts "${case%%:*}" "${order[@]}"); do
            measure "$r" "$case" "$sut"
        done
    done
done

# ---- summary: per-round ratios, medians ----
echo
summary=$(awk -F'\t' -v sizes="$CASES" -v rounds="$ROUNDS" -v quiet="$QUIET" '
function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n == 0 ? "-" : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
}
function fmt(v, f) { return v == "" || v == "-" ? "-" : sprintf(f, v) }
# A sample is quiet when others used less than the threshold during its window.
function q(r, s, u) { return (r SUBSEP s SUBSEP u) in m && oth[r, s, u] < quiet }
function cell(r, s, u) { return (r SUBSEP s SUBSEP u) in m ? sprintf("%.3f%s", m[r, s, u], q(r, s, u) ? " " : "*") : "- " }
function line(a, b, c, d, e, f, g) { printf "%-8s %12s %10s %10s %10s %12s %10s\n", a, b, c, d, e, f, g }
{ m[$1, $2, $3] = $4; cyc[$1, $2, $3] = $5; oth[$1, $2, $3] = $6 }
END {
    line("round", "case", "vswitchd", "testpmd", "ovs", "vsw/testpmd", "vsw/ovs")
    ns = split(sizes, S, " "); nu = split("vswitchd testpmd ovs", U, " ")
    for (k = 1; k <= ns; k++) {
        s = S[k]
        for (r = 1; r <= rounds; r++) {
            rt = ro = ""
            if ((r SUBSEP s SUBSEP "testpmd") in m && m[r, s, "testpmd"] > 0 && (r SUBSEP s SUBSEP "vswitchd") in m) {
                rt = m[r, s, "vswitchd"] / m[r, s, "testpmd"]; A[++na] = rt
                if (q(r, s, "vswitchd") && q(r, s, "testpmd")) QA[++nqa] = rt
            }
            if ((r SUBSEP s SUBSEP "ovs") in m && m[r, s, "ovs"] > 0 && (r SUBSEP s SUBSEP "vswitchd") in m) {
                ro = m[r, s, "vswitchd"] / m[r, s, "ovs"]; B[++nb] = ro
                if (q(r, s, "vswitchd") && q(r, s, "ovs")) QB[++nqb] = ro
            }
            line(r, s, cell(r, s, "vswitchd"), cell(r, s, "testpmd"), cell(r, s, "ovs"), fmt(rt, "%.3f "), fmt(ro, "%.3f "))
        }
        for (pass = 0; pass <= 2; pass++) {
            for (u = 1; u <= nu; u++) {
                n = 0
                for (r = 1; r <= rounds; r++)
                    if ((r SUBSEP s SUBSEP U[u]) in m && (pass == 0 || q(r, s, U[u])) &&
                        (pass < 2 || cyc[r, s, U[u]] != "null"))
                        X[++n] = pass == 2 ? cyc[r, s, U[u]] : m[r, s, U[u]]
                med[u] = fmt(median(X, n), pass == 2 ? "%.0f " : "%.3f ")
                delete X
            }
            if (pass == 0)
                line("median", s, med[1], med[2], med[3], fmt(median(A, na), "%.3f "), fmt(median(B, nb), "%.3f "))
            else if (pass == 1)
                line("quiet", s, med[1], med[2], med[3], fmt(median(QA, nqa), "%.3f ") "(" nqa ")", fmt(median(QB, nqb), "%.3f ") "(" nqb ")")
            else
                line("cyc/pkt", s, med[1], med[2], med[3], "", "")
        }
        delete A; delete B; delete QA; delete QB; na = nb = nqa = nqb = 0
    }
}' "$RESULTS")
echo "Mpps (sum of the generator's Rx-pps over both ports); ratios per back-to-back pair."
echo "* = others used >= $QUIET % of the CPUs during that window. median: all rounds;"
echo "quiet: medians over quiet samples, ratios over pairs of quiet samples (count);"
echo "cyc/pkt: median SUT cycles per packet over quiet samples."
echo "$summary"

# ---- JSON ----
mkdir -p "$OUT_DIR"
JSON=$OUT_DIR/$DATE.json
vsw_rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
jq -n --rawfile tsv "$RESULTS" \
    --arg date "$DATE" --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
    --arg kernel "$(uname -r)" --argjson ncpu "$(nproc)" --arg vsw_rev "$vsw_rev" \
    --arg dpdk "$(dpkg-query -W -f '${Version}' dpdk-dev 2>/dev/null)" \
    --arg ovs "$(dpkg-query -W -f '${Version}' openvswitch-switch-dpdk 2>/dev/null)" \
    --argjson rounds "$ROUNDS" --argjson window "$WINDOW" --argjson warmup "$WARMUP" \
    --argjson gen_core "$GEN_CORE" --argjson sut_core "$SUT_CORE" --argjson quiet "$QUIET" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
($tsv | split("\n") | map(select(length > 0) | split("\t")
    | {round: (.[0] | tonumber), case: .[1], variant: (.[1] | split(":")[0]),
       size: (.[1] | split(":")[1] | tonumber), sut: .[2], mpps: (.[3] | tonumber),
       cycles_per_pkt: (.[4] | fromjson), others_pct: (.[5] | tonumber)})) as $s
| ($s | map(.case) | unique) as $cases
| {
    date: $date,
    machine: {cpu: $cpu, cpus: $ncpu, kernel: $kernel},
    versions: {vswitch: $vsw_rev, dpdk: $dpdk, ovs: $ovs},
    method: {generator: "dpdk-testpmd virtio-user x2, io forward, start tx_first 32, --eth-peer",
             variants: {split: "split rings, mrg_rxbuf", packed: "packed_vq=1", nomrg: "mrg_rxbuf=0",
                        mq2: "queues=2, --rxq=2 --txq=2 on both testpmds", inorder: "in_order=1"},
             jumbo: "frames > 1518 B: testpmd --mbuf-size=9728, OVS mtu_request=9000",
             rate: "sum of the generator Rx-pps over both ports over the window",
             others_pct: "CPU time of other processes during the window, % of all CPUs",
             quiet_pct: $quiet,
             rounds: $rounds, window_s: $window, warmup_s: $warmup,
             gen_core: $gen_core, sut_core: $sut_core},
    samples: $s,
    summary: [$cases[] as $z | ($s | map(select(.case == $z))) as $zs | {
        case: $z, variant: ($z | split(":")[0]), size: ($z | split(":")[1] | tonumber),
        median_mpps: ($zs | group_by(.sut) | map({key: .[0].sut, value: (map(.mpps) | median)}) | from_entries),
        median_cycles_per_pkt: ($zs | group_by(.sut) | map({key: .[0].sut, value: (map(.cycles_per_pkt | select(. != null)) | median)}) | from_entries),
        ratios: ([$zs[] | select(.sut == "vswitchd")] | map(. as $v | {round: $v.round} + ([
            ("testpmd", "ovs") as $a | $zs[] | select(.round == $v.round and .sut == $a and .mpps > 0)
            | {("vswitchd_over_" + $a): ($v.mpps / .mpps),
               ($a + "_pair_quiet"): ($v.others_pct < $quiet and .others_pct < $quiet)}] | add // {})))
    } | .median_ratio = {
            vswitchd_over_testpmd: ([.ratios[].vswitchd_over_testpmd | select(. != null)] | median),
            vswitchd_over_ovs: ([.ratios[].vswitchd_over_ovs | select(. != null)] | median)}
      | .median_ratio_quiet_pairs = {
            vswitchd_over_testpmd: ([.ratios[] | select(.testpmd_pair_quiet == true) | .vswitchd_over_testpmd] | median),
            vswitchd_over_ovs: ([.ratios[] | select(.ovs_pair_quiet == true) | .vswitchd_over_ovs] | median)}
      | .median_mpps_quiet = ([$zs[] | select(.others_pct < $quiet)] | group_by(.sut)
            | map({key: .[0].sut, value: (map(.mpps) | median)}) | from_entries)
      | .median_cycles_per_pkt_quiet = ([$zs[] | select(.others_pct < $quiet and .cycles_per_pkt != null)]
            | group_by(.sut) | map({key: .[0].sut, value: (map(.cycles_per_pkt) | median)}) | from_entries)]
  }' >"$JSON" || die "writing $JSON failed"
echo
echo "run-anchors: wrote $JSON"

# ---- plot ----
if [ "$PLOT" = 1 ]; then
    PNG=$OUT_DIR/$DATE.png
    dat=$TMP/plot.dat med=$TMP/plot-med.dat rat=$TMP/plot-ratio.dat
    # x position of a SUT's column: size group + SUT offset.
    xpos='def xs: {"vswitchd": -0.25, "testpmd": 0, "ovs": 0.25};'
    jq -r "$xpos"' (.summary | map(.case)) as $z | .samples[] |
        .case as $s | "\(($z | index($s)) + xs[.sut]) \(.mpps) \(.sut)"' "$JSON" >"$dat"
    jq -r "$xpos"' .summary | to_entries[] | .key as $i | .value.median_mpps | to_entries[] |
        "\($i + xs[.key]) \(.value) \(.key)"' "$JSON" >"$med"
    # Ratios: spread the rounds a little around their size so they do not hide each other.
    # Columns: x, vsw/testpmd, vsw/ovs, then the same two again only for quiet pairs.
    jq -r --argjson n "$ROUNDS" '.summary | to_entries[] | .key as $i | .value.ratios[] |
        "\($i - 0.15 + (if $n > 1 then 0.3 * (.round - 1) / ($n - 1) else 0.15 end)) \(.vswitchd_over_testpmd // "NaN") \(.vswitchd_over_ovs // "NaN") \(if .testpmd_pair_quiet then .vswitchd_over_testpmd else "NaN" end) \(if .ovs_pair_quiet then .vswitchd_over_ovs else "NaN" end)"' \
        "$JSON" >"$rat"
    # The summary's case order (sorted), as the x positions above use it.
    cases_sorted=$(jq -r '[.summary[].case] | join(" ")' "$JSON")
    xt=$(awk -v sizes="$cases_sorted" 'BEGIN { n = split(sizes, S, " "); for (i = 1; i <= n; i++)
        printf "%s\"%s B\" %d", (i > 1 ? ", " : ""), S[i], i - 1 }')
    xmax=$(($(wc -w <<<"$CASES") - 1)).6
    gnuplot <<EOF || echo "run-anchors: gnuplot failed" >&2
set terminal pngcairo size 1200,520 font "sans,10"
set output "$PNG"
set multiplot layout 1,2 title "vswitchd vs anchors: testpmd virtio-user loopback, each switch on one core; $DATE, $ROUNDS rounds, ${WINDOW} s windows"
set xtics ($xt)
set xrange [-0.6:$xmax]
set yrange [0:*]
set grid ytics
set key below horizontal
set title "rate: every round (points), median (bars)"
set ylabel "Mpps (generator Rx, both directions)"
set style fill transparent solid 0.25 noborder
set boxwidth 0.22
plot "$med" using (strcol(3) eq "vswitchd" ? \$1 : 1/0):2 with boxes lc rgb "#d62728" notitle, \
     "$med" using (strcol(3) eq "testpmd" ? \$1 : 1/0):2 with boxes lc rgb "#1f77b4" notitle, \
     "$med" using (strcol(3) eq "ovs" ? \$1 : 1/0):2 with boxes lc rgb "#2ca02c" notitle, \
     "$dat" using (strcol(3) eq "vswitchd" ? \$1 : 1/0):2 with points pt 7 ps 1.1 lc rgb "#d62728" title "vswitchd", \
     "$dat" using (strcol(3) eq "testpmd" ? \$1 : 1/0):2 with points pt 5 ps 1.1 lc rgb "#1f77b4" title "testpmd vhost io", \
     "$dat" using (strcol(3) eq "ovs" ? \$1 : 1/0):2 with points pt 9 ps 1.1 lc rgb "#2ca02c" title "OVS-DPDK NORMAL"
set title "vswitchd / anchor, per back-to-back pair (filled: both samples quiet)"
set ylabel "ratio"
set arrow 1 from -0.6,1 to $xmax,1 nohead dt 2 lc rgb "#555555"
plot "$rat" using 1:2 with points pt 4 ps 1.1 lc rgb "#1f77b4" notitle, \
     "$rat" using 1:3 with points pt 8 ps 1.1 lc rgb "#2ca02c" notitle, \
     "$rat" using 1:4 with points pt 5 ps 1.1 lc rgb "#1f77b4" title "vswitchd / testpmd", \
     "$rat" using 1:5 with points pt 9 ps 1.1 lc rgb "#2ca02c" title "vswitchd / OVS"
unset multiplot
EOF
    [ -s "$PNG" ] && echo "run-anchors: wrote $PNG"
fi

# ---- our own, lighter generator: the scenarios no anchor covers ----
if [ "$VSW_BENCH" = 1 ]; then
    if [ -z "$BUILD_DIR" ] || [ ! -x "$BUILD_DIR/bench/vsw-bench" ]; then
        echo "run-anchors: no vsw-bench in the build dir; skipping it" >&2
    else
        VJSON=$OUT_DIR/$DATE-vsw-bench.json
        quick=()
        [ "$QUICK" = 1 ] && quick=(--quick)
        # Guests on huge pages, as QEMU guests of a vhost-user switch are in production
        # (64 guests need 128 pages; the anchors' reservation is free again by now).
        huge=()
        [ "$HUGEPAGES" -ge 256 ] && huge=(--guest-hugepages)
        echo
        echo "vsw-bench scenarios [$VSW_SCENARIOS] (simulated guests on core $GEN_CORE${huge:+, memory on 2 MiB pages}; vswitchd PMD on core $SUT_CORE), $VSW_ROUNDS rounds:"
        [ "$QUIET" -ge 100 ] || wait_quiet
        if "$BUILD_DIR/bench/vsw-bench" --vswitchd "$VSWITCHD" --vswitchctl "$VSWITCHCTL" \
            --scenario "$VSW_SCENARIOS" "${quick[@]}" --rounds "$VSW_ROUNDS" \
            --duration "$VSW_WINDOW" --warmup "$VSW_WARMUP" \
            --pmd-cores "$SUT_CORE,$GEN_CORE" --gen-core "$GEN_CORE" "${huge[@]}" \
            --json >"$VJSON"; then
            :
        else
            echo "run-anchors: vsw-bench reported a failure (see above); its JSON is kept" >&2
        fi
        jq -r '["scenario", "mode", "ports", "macs", "size", "mrg", "pmds", "sleep", "rate", "Mpps", "cyc/pkt", "pmdcpu%", "oth%", "p50us", "p99us", "p99.9us"],
            (.results[] | [.scenario, .mode, .ports, .macs, .size, (if .mrg then "on" else "off" end),
             .pmds, (if .sleep then "on" else "off" end), (if .rate_mpps > 0 then .rate_mpps else "max" end),
             (.median.rx_mpps * 1000 | round / 1000), (.median.cycles_per_pkt // null | if . then round else "-" end),
             (.median.pmd_cpu_pct // null | if . then (. * 10 | round / 10) else "-" end),
             (.median.others_pct // null | if . then round else "-" end),
             (.latency_us.p50 // "-"), (.latency_us.p99 // "-"), (.latency_us.p99_9 // "-")])
            | map(tostring) | @tsv' "$VJSON" 2>/dev/null | column -t -s $'\t' | sed 's/^/  /'
        echo "run-anchors: wrote $VJSON"
        if [ "$PLOT" = 1 ]; then
            "$HERE/plot-vsw-bench.sh" "$VJSON" "${VJSON%.json}.png" >/dev/null &&
                echo "run-anchors: wrote ${VJSON%.json}.png"
        fi
    fi
fi
exit 0
