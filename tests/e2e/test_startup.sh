#!/bin/sh
# End-to-end: the master's start-up behaviour without nginx. --help, a
# missing model, a model that breaks the contract (the master must exit 1
# with the reason, not respawn in a loop), and a socket that is not one.
# Run from the repo root after `make all` (the unit tests generate the
# small models in build/test-models).
set -u
. tests/e2e/lib.sh

work=$(mktemp -d /tmp/reface-start.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
bin=build/bin/reface-fcgi

$bin --help > "$work/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]
for word in socket workers model threads max_body max_pixels SIGTERM SIGINT spawn-fcgi; do
    check "--help documents $word" grep -q -- "$word" "$work/help"
done

$bin --no-such-flag > "$work/bad" 2>&1
check "an unknown flag exits 2" [ $? -eq 2 ]
$bin --workers many > "$work/bad" 2>&1
check "a bad value exits 2 and names the key" \
    sh -c "[ $? -eq 2 ] && grep -q workers '$work/bad'"

timeout 20 $bin --socket "unix:$work/s.sock" --model "$work/none.pt" \
    > "$work/missing" 2>&1
rc=$?
check "a missing model exits 1" [ $rc -eq 1 ]
check "a missing model is named in the log" grep -q "none.pt" "$work/missing"

if [ ! -f build/test-models/wrong_cols.pt ]; then
    build/test/test_model tests/unit/model > /dev/null 2>&1
fi
start=$(date +%s)
timeout 30 $bin --socket "unix:$work/s.sock" --workers 2 \
    --model build/test-models/wrong_cols.pt > "$work/contract" 2>&1
rc=$?
check "a contract violation exits 1, not a respawn loop" [ $rc -eq 1 ]
check "it stops within 10 s" [ $(($(date +%s) - start)) -le 10 ]
check "the log says what is wrong" grep -q "model contract: output has 3 columns" "$work/contract"
check "no worker was respawned" sh -c "[ \$(grep -c 'started worker' '$work/contract') -le 2 ]"

touch "$work/plain"
timeout 10 $bin --socket "unix:$work/plain" > "$work/notsock" 2>&1
check "refuses to replace a file that is not a socket" \
    sh -c "[ $? -eq 1 ] && [ -f '$work/plain' ] && grep -q 'not a socket' '$work/notsock'"

timeout 10 $bin < /dev/null > "$work/nofd0" 2>&1
check "without --socket, fd 0 must be a listening socket" \
    sh -c "[ $? -eq 1 ] && grep -q 'fd 0 is not a listening socket' '$work/nofd0'"

e2e_summary e2e_startup
[ "$e2e_failed" -eq 0 ]
