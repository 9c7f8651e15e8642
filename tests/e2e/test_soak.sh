#!/bin/sh
# End-to-end soak: SOAK_REQUESTS requests of mixed valid and invalid input
# (tests/e2e/loadgen.py --mix soak: a valid upload half of the time, else a
# case of the hostile corpus, each answer checked against what it must
# be) through nginx to two workers, in SOAK_ROUNDS rounds, after a warm-up
# of SOAK_WARMUP requests that takes every code path once. Each worker's
# RSS and PSS (kB, /proc/PID/smaps_rollup) are printed at the start, after
# every round and at the end. Passes when every answer was the expected
# one, the same two workers served everything, and each worker's RSS grew
# by less than SOAK_MAX_GROWTH_KB from the start (a leak of a few hundred
# bytes per request would exceed that within 100,000 requests).
#
# `make test` runs 3,000 requests; `make soak` runs 100,000
# (SOAK_REQUESTS=... to change). Run from the repo root.
set -u
. tests/e2e/lib.sh

SOAK_REQUESTS=${SOAK_REQUESTS:-3000}
SOAK_ROUNDS=${SOAK_ROUNDS:-5}
SOAK_WARMUP=${SOAK_WARMUP:-300}
SOAK_CONCURRENCY=${SOAK_CONCURRENCY:-4}
SOAK_MAX_GROWTH_KB=${SOAK_MAX_GROWTH_KB:-4096}

E2E_PORT=$(e2e_port 18140)
E2E_BASE=http://127.0.0.1:$E2E_PORT
work=$(mktemp -d /tmp/reface-soak.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

if ! stack_start "$work/stack.log" REFACE_FLAGS="--workers 2"; then
    not_ok "stack starts"
    e2e_summary e2e_soak
    exit 1
fi
ok "stack starts"
master=$(pgrep -o -g "$e2e_stack_pid" -f 'reface-fcgi')
worker_pids() {
    pgrep -P "$master" | sort | tr '\n' ' '
}
mem_of() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/smaps_rollup"
}
# snapshot LABEL: appends "LABEL PID RSS PSS" for each worker.
snapshot() {
    for pid in $workers; do
        echo "$1 $pid $(mem_of "$pid" Rss 2>/dev/null) $(mem_of "$pid" Pss 2>/dev/null)" >> "$work/mem"
    done
}
loadgen() {
    /usr/bin/python3 tests/e2e/loadgen.py --port "$E2E_PORT" --mix soak \
        --concurrency "$SOAK_CONCURRENCY" --timeout 60 "$@"
}
total_sent=0
total_ok=0
total_timeout=0

loadgen --requests "$SOAK_WARMUP" --seed 1000 > "$work/warm.json"
check "warm-up: all $SOAK_WARMUP answers as expected" \
    [ "$(json_get "$work/warm.json" ok)" -eq "$SOAK_WARMUP" ]
workers=$(worker_pids)
snapshot start

per_round=$((SOAK_REQUESTS / SOAK_ROUNDS))
start=$(date +%s)
r=1
while [ $r -le "$SOAK_ROUNDS" ]; do
    n=$per_round
    [ $r -eq "$SOAK_ROUNDS" ] && n=$((SOAK_REQUESTS - per_round * (SOAK_ROUNDS - 1)))
    loadgen --requests "$n" --seed "$r" > "$work/round$r.json"
    total_sent=$((total_sent + $(json_get "$work/round$r.json" sent)))
    total_ok=$((total_ok + $(json_get "$work/round$r.json" ok)))
    total_timeout=$((total_timeout + $(json_get "$work/round$r.json" timeout)))
    if [ "$(json_get "$work/round$r.json" failed)" -ne 0 ]; then
        echo "round $r: $(cat "$work/round$r.json")"
    fi
    snapshot "round$r"
    echo "round $r: $total_sent sent, $total_ok as expected, $(($(date +%s) - start)) s"
    r=$((r + 1))
done
elapsed=$(($(date +%s) - start))

check "$SOAK_REQUESTS requests sent ($total_sent)" [ "$total_sent" -eq "$SOAK_REQUESTS" ]
check "every answer was the expected one ($total_ok of $total_sent)" \
    [ "$total_ok" -eq "$total_sent" ]
check "no request hung" [ "$total_timeout" -eq 0 ]
check "the same workers served everything" [ "$(worker_pids)" = "$workers" ]

echo "worker memory (kB), from the start to the end of the soak:"
for pid in $workers; do
    line=$(awk -v p="$pid" '$2 == p { printf "%s RSS %s PSS %s; ", $1, $3, $4 }' "$work/mem")
    echo "  worker $pid: $line"
    rss0=$(awk -v p="$pid" '$1 == "start" && $2 == p { print $3 }' "$work/mem")
    pss0=$(awk -v p="$pid" '$1 == "start" && $2 == p { print $4 }' "$work/mem")
    rss1=$(mem_of "$pid" Rss 2>/dev/null)
    pss1=$(mem_of "$pid" Pss 2>/dev/null)
    if [ -z "$rss1" ]; then
        not_ok "worker $pid is still there to measure"
        continue
    fi
    echo "SUMMARY soak worker $pid: RSS $rss0 -> $rss1 kB ($((rss1 - rss0))), PSS $pss0 -> $pss1 kB ($((pss1 - pss0)))"
    check "worker $pid RSS grew by less than $SOAK_MAX_GROWTH_KB kB ($((rss1 - rss0)))" \
        [ $((rss1 - rss0)) -lt "$SOAK_MAX_GROWTH_KB" ]
done

request "$work/after" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "a normal request still gets the right answer" \
    [ "$(json_get "$work/after.body" gender_name)" = male ]
check "no master or worker logged an error" \
    sh -c "! grep -a -E '^[^ ]+ (master|worker)\[[0-9]+\] ERROR' '$work/stack.log'"
echo "SUMMARY soak: requests=$total_sent as_expected=$total_ok seconds=$elapsed" \
    "statuses=$(cat "$work"/round*.json | /usr/bin/python3 -c '
import json, sys
t = {}
for line in sys.stdin:
    for k, v in json.loads(line)["statuses"].items():
        t[k] = t.get(k, 0) + v
print(json.dumps(t, sort_keys=True).replace(" ", ""))')"
if [ "$e2e_failed" -gt 0 ]; then
    # Kept for the post-mortem: the work folder is removed on exit.
    mkdir -p build/test-logs
    cp "$work/stack.log" build/test-logs/e2e_soak-stack.log
    echo "stack log kept in build/test-logs/e2e_soak-stack.log; its end:"
    grep -a -v 'INFO access' "$work/stack.log" | tail -15
fi
check "stop leaves no process of the stack behind" stack_stop
e2e_summary e2e_soak
[ "$e2e_failed" -eq 0 ]
