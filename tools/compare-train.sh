#!/usr/bin/env bash
# Side-by-side training speed of two scratchnet binaries (or one, at two thread counts),
# alternating runs so that a noisy minute hurts both alike; prints medians and ranges.
#
#   tools/compare-train.sh [--load N] [--reps R] [--batch B] [--epochs E] BIN[:THREADS[:ARGS]] ...
#
# e.g. tools/compare-train.sh --load 1 --reps 7 build/scratchnet:1 build/scratchnet:2
#      tools/compare-train.sh --reps 7 /tmp/old/scratchnet:2 "build/scratchnet:2:--augment none --deskew off"
#      tools/compare-train.sh "build/scratchnet:2:--augment none" build/scratchnet:2
# ARGS are more train flags for that entry (train now augments by default; a binary from
# before 2026-11-29 trains plain, so compare it with "--augment none --deskew off").
# --load N starts N CPU-bound busy processes for the duration (killed on exit).
set -euo pipefail
load=0 reps=5 batch=128 epochs=2
while [ $# -gt 0 ]; do
    case "$1" in
        --load) load=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "compare-train.sh: name at least one BIN[:THREADS]" >&2; exit 2; }
busy=()
cleanup() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 "$load"); do sh -c 'while :; do :; done' & busy+=($!); done
tmp=$(mktemp -d)
declare -A rates
for r in $(seq 1 "$reps"); do
    for spec in "$@"; do
        bin=${spec%%:*} rest=${spec#*:} extra=""
        [ "$rest" = "$spec" ] && rest=2
        threads=${rest%%:*}
        [ "$threads" != "$rest" ] && extra=${rest#*:}
        # shellcheck disable=SC2086 # extra is a list of flags
        line=$("$bin" train --epochs "$epochs" --batch "$batch" --threads "$threads" --quiet --save "$tmp/m.bin" $extra | tail -1)
        rates[$spec]+="${line##*samples_per_s=} "
    done
done
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'); load $load; batch $batch; $epochs epochs; $reps alternating runs each"
echo "| binary:threads | median samples/s | min | max |"
echo "|---|---:|---:|---:|"
for spec in "$@"; do
    sorted=$(echo ${rates[$spec]} | tr ' ' '\n' | sort -n)
    n=$(echo "$sorted" | wc -l)
    echo "| $spec | $(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p") | $(echo "$sorted" | head -1) | $(echo "$sorted" | tail -1) |"
done
rm -rf "$tmp"
