#!/bin/sh
# End-to-end overload, through nginx to two workers:
#
# 1. OVERLOAD_CLIENTS (1,000) connections at once, each a valid /predict
#    (tests/e2e/loadgen.py). Every one must get an answer: a correct
#    prediction, or a clean JSON 429/503; none may hang (the client waits
#    up to 150 s, past nginx's own 60 s timeouts) and nothing may crash
#    (same master, workers and nginx afterwards).
# 2. SLOW_CLIENTS (more than the workers) upload a valid image slowly,
#    slowloris style (tests/e2e/slowpost.py: the head at once, then 256
#    bytes every 0.25 s). While they are under way no worker is busy with
#    them (/metrics counts only itself in flight) and a normal request is
#    answered before any slow body is complete: nginx buffers the bodies.
#    Each slow upload is answered with a prediction once complete.
#
# Run from the repo root.
set -u
. tests/e2e/lib.sh

OVERLOAD_CLIENTS=${OVERLOAD_CLIENTS:-1000}
SLOW_CLIENTS=${SLOW_CLIENTS:-4}

E2E_PORT=$(e2e_port 18150)
E2E_BASE=http://127.0.0.1:$E2E_PORT
work=$(mktemp -d /tmp/reface-overload.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

if ! stack_start "$work/stack.log" REFACE_FLAGS="--workers 2"; then
    not_ok "stack starts"
    e2e_summary e2e_overload
    exit 1
fi
ok "stack starts"
master=$(pgrep -o -g "$e2e_stack_pid" -f 'reface-fcgi')
nginx_master=$(pgrep -g "$e2e_stack_pid" -f 'nginx: master')
worker_pids() {
    pgrep -P "$master" | sort | tr '\n' ' '
}
in_flight() {
    curl -s "$E2E_BASE/metrics" | awk '$1 == "reface_requests_in_flight" { print $2 }'
}
workers=$(worker_pids)
echo "net.core.somaxconn $(cat /proc/sys/net/core/somaxconn); open files $(ulimit -n)"
request "$work/warm" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"

# --- 1. a thousand at once ---------------------------------------------------
# With face detection two workers serve about 14 requests a second here,
# so the last of a thousand would wait past nginx's 60 s
# fastcgi_read_timeout. The workers answer 503 at once to what waited
# past queue_timeout (30 s) instead: everything is answered, cleanly,
# within that bound (before queue_timeout, 175 of 1,000 got nginx's 504).
/usr/bin/python3 tests/e2e/loadgen.py --port "$E2E_PORT" \
    --concurrency "$OVERLOAD_CLIENTS" --requests "$OVERLOAD_CLIENTS" \
    --clean 429,503 --timeout 150 > "$work/burst.json"
echo "burst: $(cat "$work/burst.json")"
okn=$(json_get "$work/burst.json" ok)
clean=$(json_get "$work/burst.json" clean)
check "burst: $OVERLOAD_CLIENTS requests sent" \
    [ "$(json_get "$work/burst.json" sent)" -eq "$OVERLOAD_CLIENTS" ]
check "burst: every one answered with a prediction ($okn) or a clean 429/503 ($clean)" \
    [ $((okn + clean)) -eq "$OVERLOAD_CLIENTS" ]
check "burst: no unclean answer" [ "$(json_get "$work/burst.json" unclean)" -eq 0 ]
check "burst: none hung" [ "$(json_get "$work/burst.json" timeout)" -eq 0 ]
check "burst: some were served" [ "$okn" -gt 0 ]
check "burst: the same workers" [ "$(worker_pids)" = "$workers" ]
check "burst: the same master" kill -0 "$master"
check "burst: the same nginx" kill -0 "$nginx_master"
request "$work/after" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "burst: a normal request is answered afterwards" \
    [ "$(json_get "$work/after.body" gender_name)" = male ]

# --- 2. slow uploads ---------------------------------------------------------
/usr/bin/python3 tests/e2e/slowpost.py "$E2E_PORT" "$SLOW_CLIENTS" 256 0.25 \
    "$work/slow.ready" > "$work/slow.json" &
slow=$!
i=0
while [ ! -s "$work/slow.ready" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
check "slow: $SLOW_CLIENTS uploads under way" [ -s "$work/slow.ready" ]
sleep 1
busy=$(in_flight)
request "$work/normal" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
normal_done=$(date +%s.%N)
busy2=$(in_flight)
wait $slow
echo "slow: $(cat "$work/slow.json")"
check "slow: no worker busy with the slow uploads (in flight: $busy, then $busy2; /metrics counts itself)" \
    [ "$busy:$busy2" = "1:1" ]
check "slow: a normal request was answered meanwhile" \
    [ "$(json_get "$work/normal.body" gender_name)" = male ]
first_body=$(/usr/bin/python3 -c "import json,sys; print(min(c['body_sent_at'] for c in json.load(open(sys.argv[1]))['clients']))" "$work/slow.json")
check "slow: before any slow body was complete ($normal_done < $first_body)" \
    /usr/bin/python3 -c "import sys; sys.exit(not $normal_done < $first_body)"
check "slow: each slow upload got a prediction once complete" \
    [ "$(/usr/bin/python3 -c "import json,sys; print(sum(c['status'] == 200 and c['prediction'] for c in json.load(open(sys.argv[1]))['clients']))" "$work/slow.json")" -eq "$SLOW_CLIENTS" ]
check "the same workers at the end" [ "$(worker_pids)" = "$workers" ]
check "no master or worker logged an error" \
    sh -c "! grep -a -E '^[^ ]+ (master|worker)\[[0-9]+\] ERROR' '$work/stack.log'"
check "nginx did not run out of connections" \
    sh -c "! grep -a 'worker_connections are not enough\|Too many open files' '$work/stack.log'"

echo "SUMMARY overload: clients=$OVERLOAD_CLIENTS ok=$okn clean_429_503=$clean" \
    "statuses=$(/usr/bin/python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['statuses']).replace(' ', ''))" "$work/burst.json")" \
    "seconds=$(json_get "$work/burst.json" seconds)" \
    "latency_max_s=$(json_get "$work/burst.json" latency_max)"
echo "SUMMARY slowloris: slow_clients=$SLOW_CLIENTS workers_busy_meanwhile=$((busy - 1))" \
    "normal_request=$(status_of "$work/normal") before_first_slow_body_complete=yes"
check "stop leaves no process of the stack behind" stack_stop
e2e_summary e2e_overload
[ "$e2e_failed" -eq 0 ]
