#!/bin/sh
# End-to-end leak check: the AddressSanitizer + UBSan build of the server
# (make SAN=1 build/san/bin/reface-fcgi; LeakSanitizer is part of ASan)
# behind nginx, LEAK_REQUESTS mixed requests (tests/e2e/loadgen.py --mix
# soak: valid uploads and the hostile corpus, every answer checked), then a
# graceful stop, so that the master and each worker leave through exit()
# and LeakSanitizer checks the heap of each. Passes when every process
# wrote its exit report and none reports a leak or an error.
#
# The workers run with --sandbox off here: LeakSanitizer stops the process
# with ptrace, which the sandbox forbids. A small leaking program built
# with the same flags is the positive control: the same settings must
# catch its leak. Run from the repo root.
set -u
. tests/e2e/lib.sh

LEAK_REQUESTS=${LEAK_REQUESTS:-300}
bin=build/san/bin/reface-fcgi

E2E_PORT=$(e2e_port 18130)
E2E_BASE=http://127.0.0.1:$E2E_PORT
work=$(mktemp -d /tmp/reface-leaks.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM
# The workers run as www-data when we are root: they write here too.
mkdir -m 1777 "$work/asan" "$work/control"
chmod 0755 "$work"

if [ ! -x "$bin" ]; then
    not_ok "the ASan server is built" "make SAN=1 $bin"
    e2e_summary e2e_leaks
    exit 1
fi
san_env="ASAN_OPTIONS=detect_leaks=1:atexit=1:log_path=$work/asan/asan"
lsan_env="LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
ubsan_env="UBSAN_OPTIONS=print_stacktrace=1:log_path=$work/asan/ubsan"

# --- positive control ------------------------------------------------------
if gcc -fsanitize=address,undefined -g -O0 tests/e2e/leak_control.c \
        -o "$work/control/leak" 2> "$work/control/cc.log"; then
    env ASAN_OPTIONS=detect_leaks=1:log_path=$work/control/asan "$lsan_env" \
        "$work/control/leak"
    check "control: the same settings catch a leak in a forked child" \
        sh -c "cat '$work/control/asan'.* 2>/dev/null | grep -q 'LeakSanitizer: detected memory leaks' &&
               cat '$work/control/asan'.* | grep -q '4242 byte'"
else
    not_ok "control: the leaking program builds" "$(head -3 "$work/control/cc.log")"
fi

# --- the server ------------------------------------------------------------
if ! stack_start "$work/stack.log" REFACE_BIN=$bin \
        REFACE_FLAGS="--workers 2 --sandbox off" \
        "$san_env" "$lsan_env" "$ubsan_env"; then
    not_ok "the ASan server starts"
    e2e_summary e2e_leaks
    exit 1
fi
ok "the ASan server starts"
master=$(pgrep -o -g "$e2e_stack_pid" -f 'reface-fcgi')
workers=$(pgrep -P "$master" | sort | tr '\n' ' ')

/usr/bin/python3 tests/e2e/loadgen.py --port "$E2E_PORT" --concurrency 4 \
    --requests "$LEAK_REQUESTS" --mix soak > "$work/load.json"
echo "load: $(cat "$work/load.json")"
check "all $LEAK_REQUESTS requests got their expected answer" \
    [ "$(json_get "$work/load.json" ok)" -eq "$LEAK_REQUESTS" ]
check "the same workers served them all" \
    [ "$(pgrep -P "$master" | sort | tr '\n' ' ')" = "$workers" ]

# Graceful stop of the master alone (the whole group would get a second
# SIGTERM from scripts/run.sh, which means a fast stop).
kill -TERM "$master"
i=0
while kill -0 "$master" 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.2
    i=$((i + 1))
done
check "the master stopped gracefully" \
    grep -q 'master: stopped' "$work/stack.log"
for pid in $master $workers; do
    check "process $pid ran LeakSanitizer at exit (its exit report exists)" \
        grep -q 'AddressSanitizer exit stats' "$work/asan/asan.$pid"
done
check "each worker left normally (exit 0, not killed)" \
    sh -c "[ \$(grep -c 'worker: stopping' '$work/stack.log') -eq 2 ] &&
           ! grep -a 'exited with code [1-9]\|killed by signal' '$work/stack.log'"
leaks=$(cat "$work/asan/"* 2>/dev/null | grep -c 'LeakSanitizer: detected')
check "no process reports a leak ($leaks reports)" [ "$leaks" -eq 0 ]
check "no ASan error" sh -c "! cat '$work/asan/'* | grep -q 'ERROR: AddressSanitizer'"
check "no UBSan error" \
    sh -c "! cat '$work/asan/'* '$work/stack.log' | grep -q 'runtime error'"
if [ "$leaks" -gt 0 ]; then
    cat "$work/asan/"* | grep -A12 'LeakSanitizer: detected' | head -60
fi
echo "SUMMARY leaks: requests=$LEAK_REQUESTS processes_checked=$(echo $master $workers | wc -w) leak_reports=$leaks"
check "stop leaves no process of the stack behind" stack_stop
e2e_summary e2e_leaks
[ "$e2e_failed" -eq 0 ]
