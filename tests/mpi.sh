#!/bin/sh
# The MPI job tests (run by meson test when the build has MPI and mpiexec is there):
#  - mpiexec -n 2 and -n 3 sweeps give the serial sweep's summary.csv, sweep.csv and
#    reps.csv rows (timing columns aside), and --resume across ranks runs nothing again;
#  - mpiexec -n 1, 2 and 4 `scratchnet train --shards 4` save cmp-identical models, equal
#    to `train --shards 4` without a launcher; `--shards 1` is the ordinary training's
#    bits;
#  - a launcher of another MPI (its environment says 2 processes, the library 1), a rank
#    count that is not a power of two or does not divide the shards, and a job without
#    --shards are refused with exit 2.
# Usage: mpi.sh BUILD_DIR DATA_DIR MPIEXEC. Oversubscribed (more ranks than cores is the
# point on a 2-core machine) and allowed to run as root (CI containers).
set -eu
build=$1
data=$2
mpiexec=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export SOURCE_DATE_EPOCH=1764374400
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mpirun_n() { n=$1; shift; "$mpiexec" --oversubscribe -n "$n" "$@"; }

# ---- sweeps ---------------------------------------------------------------------------
grid="--sweep batch=32,64,128 opt=momentum,adam threads=1 --epochs 1 --val 500 --data $data --no-plot"
"$build/bench" $grid --quiet --out "$tmp/serial" 2>"$tmp/err" || { cat "$tmp/err" >&2; fail "serial sweep"; }
for n in 2 3; do
    mpirun_n "$n" "$build/bench" $grid --quiet --out "$tmp/n$n" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; fail "-n $n sweep"; }
    for f in summary sweep reps; do
        # run..status: the columns that do not measure time (12 of reps.csv, more of the others)
        cols=12
        grep -v '^#' "$tmp/serial/$f.csv" | cut -d, -f1-$cols >"$tmp/a"
        grep -v '^#' "$tmp/n$n/$f.csv" | cut -d, -f1-$cols >"$tmp/b"
        cmp -s "$tmp/a" "$tmp/b" || { diff "$tmp/a" "$tmp/b" >&2; fail "-n $n $f.csv differs from the serial sweep"; }
    done
    test "$(grep -vc '^#' "$tmp/n$n/summary.csv")" -eq 7 || fail "-n $n: 6 runs and a header"
    echo "ok: mpiexec -n $n sweep = serial sweep (summary, sweep, reps)"
done
mpirun_n 2 "$build/bench" $grid --out "$tmp/n2" --resume >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; fail "-n 2 --resume"; }
grep -q "3 of 6 runs already finished" "$tmp/out" || { cat "$tmp/out" >&2; fail "-n 2 --resume: rank 0's 3 runs finished"; }
grep -q "epoch 1/1" "$tmp/out" && { cat "$tmp/out" >&2; fail "-n 2 --resume ran a finished run again"; }
echo "ok: mpiexec -n 2 --resume finds every rank's runs finished"
if mpirun_n 2 "$build/bench" $grid --out "$tmp/n2" >"$tmp/out" 2>&1; then fail "-n 2 into a sweep without --resume/--force"; fi
grep -q "already holds a sweep" "$tmp/out" || fail "the refusal says why"

# ---- sharded training -----------------------------------------------------------------
train="train --data $data --epochs 2 --val 500 --quiet"
"$build/scratchnet" $train --threads 2 --save "$tmp/plain.bin" >/dev/null
"$build/scratchnet" $train --threads 2 --shards 1 --save "$tmp/s1.bin" >/dev/null
cmp "$tmp/plain.bin" "$tmp/s1.bin" || fail "--shards 1 is not the ordinary training's bits"
"$build/scratchnet" $train --threads 2 --shards 4 --save "$tmp/s4.bin" >"$tmp/s4.out"
for n in 1 2 4; do
    mpirun_n "$n" "$build/scratchnet" $train --threads 1 --shards 4 --save "$tmp/s4-n$n.bin" >"$tmp/out" 2>&1 ||
        { cat "$tmp/out" >&2; fail "-n $n train --shards 4"; }
    cmp "$tmp/s4.bin" "$tmp/s4-n$n.bin" || fail "-n $n train --shards 4: another model than one process's"
    test "$(grep -c '^epoch ' "$tmp/out")" -eq 2 || { cat "$tmp/out" >&2; fail "-n $n: rank 0 alone prints the epochs"; }
    # The validation (split over the ranks) and test figures are one process's, to the digit.
    for f in "$tmp/s4.out" "$tmp/out"; do grep -E '^(epoch|test_loss)' "$f" | sed 's/ epoch_s=.*//; s/ train_s=.*//'; done |
        sort | uniq -u | grep -q . && { cat "$tmp/s4.out" "$tmp/out" >&2; fail "-n $n: other loss or accuracy lines"; }
done
echo "ok: train --shards 4 under mpiexec -n 1, 2, 4 = one process (cmp), --shards 1 = ordinary training"
expect_2() { # expect_2 WHAT MESSAGE CMD...
    what=$1 msg=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>&1; rc=$?; set -e
    test "$rc" -eq 2 || { cat "$tmp/out" >&2; fail "$what: exit $rc, expected 2"; }
    grep -q "$msg" "$tmp/out" || { cat "$tmp/out" >&2; fail "$what: no '$msg'"; }
    echo "ok: $what: exit 2"
}
expect_2 "-n 3 --shards 3" "power of two" mpirun_n 3 "$build/scratchnet" $train --shards 3 --save "$tmp/x.bin"
expect_2 "-n 2 --shards 3" "must divide" mpirun_n 2 "$build/scratchnet" $train --shards 3 --save "$tmp/x.bin"
expect_2 "-n 2 without --shards" "give --shards" mpirun_n 2 "$build/scratchnet" $train --save "$tmp/x.bin"
expect_2 "a launcher of another MPI" "another MPI" env PMI_SIZE=2 PMI_RANK=0 "$build/bench" $grid --out "$tmp/mm"
test -e "$tmp/x.bin" && fail "a refused job wrote a model"
echo "all MPI tests passed"
