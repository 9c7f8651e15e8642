#!/bin/sh
# The whole test suite, as `make test` runs it (after building the normal
# and the ASan/UBSan binaries and generating the model). Every suite prints
# "RESULT <suite> <passed> <failed>"; a suite that crashes or prints no such
# line counts as one failure. Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

logs=build/test-logs
mkdir -p "$logs"
total_passed=0
total_failed=0

# run_suite NAME COMMAND...: runs one suite, adds up its RESULT line.
run_suite() {
    name=$1
    shift
    start=$(date +%s)
    "$@" > "$logs/$name.log" 2>&1
    rc=$?
    line=$(grep -a '^RESULT ' "$logs/$name.log" | tail -1)
    passed=$(echo "$line" | awk '{print $3}')
    failed=$(echo "$line" | awk '{print $4}')
    if [ -z "$line" ]; then
        passed=0
        failed=1
        echo "FAIL $name: no RESULT line (exit $rc); see $logs/$name.log"
        tail -5 "$logs/$name.log" | sed 's/^/    /'
    elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        echo "FAIL $name: exit $rc with no failed check; see $logs/$name.log"
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    printf '%-28s %4d passed %3d failed  %3ds\n' "$name" "$passed" "$failed" \
        $(($(date +%s) - start))
    if [ "$failed" -gt 0 ]; then
        grep -a '^not ok\|FAIL\|ERROR: AddressSanitizer\|runtime error' \
            "$logs/$name.log" | head -10 | sed 's/^/    /'
    fi
}

# ASan fills only the first 4 kB of an allocation (with 0xBE); filling all
# of it with 0xFF makes a read of memory never written go wrong on every
# run (test_image's undefined Huffman table, for one). The normal build
# sees glibc's memory as it comes.
FILL_ALLOCATIONS=malloc_fill_byte=255:max_malloc_fill_size=268435456

# Unit tests: each binary gets its fixture folder tests/unit/<name>.
for variant in build build/san; do
    for bin in "$variant"/test/test_*; do
        [ -x "$bin" ] || continue
        base=${bin##*/test_}
        label=unit_$base
        [ "$variant" = build/san ] && label=san_$base
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:$FILL_ALLOCATIONS \
        LSAN_OPTIONS=suppressions=tests/lsan.supp:print_suppressions=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_suite "$label" "$bin" "tests/unit/$base"
    done
done

# libFuzzer harnesses (make fuzz-build): regression inputs, then a bounded,
# fixed-seed run of each.
run_suite fuzz_smoke sh tests/fuzz/run.sh smoke

run_suite python_parity /usr/bin/python3 tests/python/test_parity.py
run_suite python_detector_parity /usr/bin/python3 tests/python/test_detector_parity.py
run_suite python_head_solver /usr/bin/python3 tests/python/test_head_solver.py
run_suite python_training_smoke sh tests/python/test_training_smoke.sh
run_suite python_heads_smoke sh tests/python/test_heads_smoke.sh

for t in tests/e2e/test_*.sh; do
    name=${t##*/}
    name=e2e_${name#test_}
    run_suite "${name%.sh}" sh "$t"
done

echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
