#!/bin/bash
# plot-vsw-bench.sh: PNG plots of a `vsw-bench --json` result (needs jq and gnuplot).
#
#   bench/plot-vsw-bench.sh RESULT.json [OUT.png]      (default: RESULT.png)
#
# Four panels (empty panels say "no data"), from the unpaced points with 1 PMD that match:
#   rate vs frame size      bidir, 2 guests, 1 flow: Mpps and Gbit/s, mergeable buffers on/off
#   rate vs learnt MACs     bidir, 2 guests, 64 B: Mpps and cycles/pkt
#   cycles/pkt vs ports     64 B, 1 flow per guest, one line per traffic mode
#   latency                 every paced point (--rate > 0): p50, p99, p99.9 in microseconds
# Medians over the rounds; the error bars of the rate panels are the min-max over the rounds.
set -u -o pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 RESULT.json [OUT.png]" >&2; exit 2; }
IN=$1
OUT=${2:-${IN%.json}.png}
command -v jq >/dev/null || { echo "$0: jq not found" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found" >&2; exit 1; }
jq -e '.tool == "vsw-bench"' "$IN" >/dev/null || { echo "$0: $IN is not vsw-bench JSON" >&2; exit 1; }

TMP=$(mktemp -d /tmp/vsw-plot.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Rows: x y ymin ymax y2, for the points of a selection, sorted by x.
rows() { # rows JQ_SELECT X_EXPR Y2_EXPR
    jq -r ".results[] | select(.median.rx_mpps != null) | select($1) |
        [($2), .median.rx_mpps, ([.rounds[].rx_mpps] | min), ([.rounds[].rx_mpps] | max), ($3)]
        | map(tostring) | join(\" \")" "$IN" | sort -n -k1,1
}
# Points are selected by what they are, not by scenario name: a point two scenarios share
# is measured once, under the first scenario's name.
base='.rate_mpps == 0 and .pmds <= 1 and (.sleep | not)'
rows "$base and .mode == \"bidir\" and .ports == 2 and .flows_per_guest == 1 and .mrg" \
    .size .median.gbps >"$TMP/size-mrg"
rows "$base and .mode == \"bidir\" and .ports == 2 and .flows_per_guest == 1 and (.mrg | not)" \
    .size .median.gbps >"$TMP/size-nomrg"
rows "$base and .mode == \"bidir\" and .ports == 2 and .size == 64 and .mrg" .macs \
    '.median.cycles_per_pkt // "NaN"' >"$TMP/macs"
for m in uni bidir ring bcast unknown; do
    rows "$base and .mode == \"$m\" and .size == 64 and .flows_per_guest == 1 and .mrg" .ports \
        '.median.cycles_per_pkt // "NaN"' >"$TMP/ports-$m"
done
# Latency: index, p50, p99, p99.9, label.
jq -r '[.results[] | select(.latency_us != null)] | to_entries[] |
    "\(.key) \(.value.latency_us.p50) \(.value.latency_us.p99) \(.value.latency_us.p99_9) \"\(.value.size) B \(.value.rate_mpps) Mpps sleep \(if .value.sleep then "on" else "off" end)\""' \
    "$IN" >"$TMP/lat"

# gnuplot fails on an empty data file: plot a "no data" label there instead.
have() { [ -s "$TMP/$1" ]; }
# (with fixed ranges and no log scale: gnuplot refuses to autoscale a plot of nothing)
nodata='unset logscale; set xrange [0:1]; set yrange [0:1]; set label 99 "no data" at graph 0.5,0.5 center; plot NaN notitle; unset label 99; set autoscale'
date=$(jq -r .date "$IN")
rounds=$(jq -r .rounds "$IN")

{
    cat <<EOF
set terminal pngcairo size 1400,1000 font "sans,10"
set output "$OUT"
set multiplot layout 2,2 title "vsw-bench $date: simulated guests, medians of $rounds round(s) (bars: min-max)"
set grid
set key top right
set title "rate vs frame size (bidir, 2 guests)"
set xlabel "frame bytes (no FCS)"
set logscale x 2
set ylabel "Mpps"
set y2label "Gbit/s"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
EOF
    if have size-mrg || have size-nomrg; then
        p=()
        have size-mrg && p+=("\"$TMP/size-mrg\" using 1:2:3:4 with yerrorlines pt 7 lc rgb \"#d62728\" title \"Mpps, mrg on\"" \
            "\"$TMP/size-mrg\" using 1:5 axes x1y2 with linespoints dt 2 pt 6 lc rgb \"#d62728\" title \"Gbit/s, mrg on\"")
        have size-nomrg && p+=("\"$TMP/size-nomrg\" using 1:2:3:4 with yerrorlines pt 5 lc rgb \"#1f77b4\" title \"Mpps, mrg off\"" \
            "\"$TMP/size-nomrg\" using 1:5 axes x1y2 with linespoints dt 2 pt 4 lc rgb \"#1f77b4\" title \"Gbit/s, mrg off\"")
        (IFS=,; echo "plot ${p[*]}")
    else
        echo "$nodata"
    fi
    cat <<EOF
unset logscale x
set logscale x 10
set title "rate vs learnt MACs (bidir 64 B, 2 guests)"
set xlabel "MACs in the FDB"
set ylabel "Mpps"
set y2label "cycles/pkt"
EOF
    if have macs; then
        echo "plot \"$TMP/macs\" using 1:2:3:4 with yerrorlines pt 7 lc rgb \"#d62728\" title \"Mpps\", \"$TMP/macs\" using 1:5 axes x1y2 with linespoints dt 2 pt 6 lc rgb \"#2ca02c\" title \"cycles/pkt\""
    else
        echo "$nodata"
    fi
    cat <<EOF
unset logscale x
set logscale x 2
unset y2tics
unset y2label
set title "PMD cycles per dequeued frame vs ports (64 B)"
set xlabel "guests on the bridge"
set ylabel "cycles/pkt"
EOF
    p=()
    for m in uni bidir ring bcast unknown; do
        have "ports-$m" && p+=("\"$TMP/ports-$m\" using 1:5 with linespoints pt 7 title \"$m\"")
    done
    if [ ${#p[@]} -gt 0 ]; then (IFS=,; echo "plot ${p[*]}"); else echo "$nodata"; fi
    cat <<EOF
unset logscale x
set logscale y 10
set title "one-way latency of paced points (generator to sink, one process)"
set xlabel ""
set ylabel "microseconds"
set yrange [*:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.6 border -1
set xtics rotate by -20
EOF
    if have lat; then
        echo "plot \"$TMP/lat\" using 2:xtic(5) title \"p50\", \"\" using 3 title \"p99\", \"\" using 4 title \"p99.9\""
    else
        echo "$nodata"
    fi
    echo "unset multiplot"
} >"$TMP/plot.gp"
gnuplot "$TMP/plot.gp" || { echo "$0: gnuplot failed (script: $TMP/plot.gp)" >&2; trap - EXIT; exit 1; }
echo "$OUT"
