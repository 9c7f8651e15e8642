#!/bin/sh
# Runs the libFuzzer harnesses built by `make fuzz-build` (build/fuzz/).
#   run.sh smoke        what `make test` runs: each harness replays its
#                       regression inputs, then fuzzes a fixed number of
#                       inputs from a fixed seed (bounded, repeatable);
#                       prints "RESULT fuzz_smoke <passed> <failed>".
#   run.sh long SECONDS what `make fuzz` runs: each harness for SECONDS,
#                       growing build/fuzz/corpus/<harness>; crashes land
#                       in build/fuzz/crashes/. Prints executions, corpus
#                       size and findings per harness.
# Run from the repository root.
set -u
mode=${1:-smoke}
seconds=${2:-600}
out=build/fuzz
passed=0
failed=0

# Inputs per harness in smoke mode: a few seconds each on a quiet core.
smoke_runs() {
    case $1 in
    multipart) echo 200000 ;;
    image) echo 10000 ;;
    handler) echo 10000 ;;
    esac
}

result() { # result NAME OK-OR-NOT DETAIL
    if [ "$2" = ok ]; then
        passed=$((passed + 1))
        echo "ok $1${3:+: $3}"
    else
        failed=$((failed + 1))
        echo "not ok $1${3:+: $3}"
    fi
}

for h in multipart image handler; do
    bin=$out/fuzz_$h
    dict=tests/fuzz/$h.dict
    seeds=tests/fuzz/corpus/$h
    regress=tests/fuzz/regressions/$h
    if [ ! -x "$bin" ]; then
        result "fuzz_$h built" no "missing $bin (make fuzz-build)"
        continue
    fi
    mkdir -p "$out/crashes" "$out/corpus/$h"
    log=$out/$h.$mode.log

    if [ "$mode" = smoke ]; then
        # Every input that once crashed must now pass. Each allocation is
        # filled with 0xFF first (ASan fills only its first 4 kB with 0xBE
        # otherwise): a read of memory the code never wrote then goes
        # wrong the same way on every run, instead of only when the heap
        # happens to hold the garbage that once crashed it
        # (jpeg_undefined_huffman_table: UBSan reports it on every replay
        # without core/image.c's zeroed allocations).
        if [ -d "$regress" ] && [ -n "$(ls "$regress")" ]; then
            if ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}malloc_fill_byte=255:max_malloc_fill_size=268435456" \
                "$bin" "$regress"/* > "$log.regress" 2>&1; then
                result "fuzz_$h replays $(ls "$regress" | wc -l) regression inputs" ok
            else
                result "fuzz_$h regression inputs" no "see $log.regress"
            fi
        fi
        work=$(mktemp -d /tmp/reface-fuzz.XXXXXX)
        "$bin" -dict="$dict" -seed=1 -runs="$(smoke_runs $h)" \
            -max_total_time=60 -artifact_prefix="$work/" \
            "$work" "$seeds" > "$log" 2>&1
        rc=$?
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
        if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
            result "fuzz_$h smoke" ok "$runs inputs, no finding"
        else
            result "fuzz_$h smoke" no "exit $rc; see $log"
            grep -a 'ERROR\|runtime error\|SUMMARY' "$log" | head -5
            cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
                "$out/crashes/" 2>/dev/null
        fi
        rm -rf "$work"
    else
        "$bin" -dict="$dict" -max_total_time="$seconds" \
            -artifact_prefix="$out/crashes/$h-" -print_final_stats=1 \
            "$out/corpus/$h" "$seeds" > "$log" 2>&1
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        corpus=$(ls "$out/corpus/$h" | wc -l)
        if [ "$rc" -eq 0 ]; then
            result "fuzz_$h ${seconds}s" ok "$execs executions, corpus $corpus, no finding"
        else
            result "fuzz_$h ${seconds}s" no "exit $rc after $execs executions; see $log"
            grep -a 'ERROR\|runtime error\|SUMMARY' "$log" | head -5
        fi
    fi
done

echo "RESULT fuzz_$mode $passed $failed"
[ "$failed" -eq 0 ]
