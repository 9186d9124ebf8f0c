#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan + UBSan and runs each for SECONDS
# (default 60) from the seed corpus in tests/fuzz/corpus. Fails on any crash, leak,
# sanitizer report or timeout; prints how many executions ran clean.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Ddraw=disabled -Dopenmp=disabled >/dev/null
fi
ninja -C build-fuzz >/dev/null
status=0
for t in idx model image sweep_spec; do
    work=$(mktemp -d)
    cp -r tests/fuzz/corpus/$t/. "$work/"
    log=build-fuzz/fuzz_$t.log
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        build-fuzz/tests/fuzz/fuzz_$t "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix=build-fuzz/crash-$t- >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        echo "fuzz $t: clean, $runs executions in ${seconds}s"
    else
        echo "fuzz $t: FAILED (see $log)"
        tail -40 "$log"
        status=1
    fi
    rm -rf "$work"
done
exit $status
