#!/bin/sh
# End-to-end: /ready before and after the model is loaded, and the request
# deadline enforced by the master. The workers serve the test-only model of
# tests/e2e/make_ops_models.py: it takes over a second to start, answers a
# photo at once and spins for ten minutes on a white image, so only the
# master's request_timeout (4 s here) can end that request. Last, a
# graceful stop whose stop_timeout (1 s here) runs out. Run from the repo
# root.
set -u
. tests/e2e/lib.sh
E2E_PORT=$(e2e_port 18083)
E2E_BASE=http://127.0.0.1:$E2E_PORT

work=$(mktemp -d /tmp/reface-deadline.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

models=$(ensure_ops_models)
if [ -z "$models" ]; then
    not_ok "the test model is generated (tests/e2e/make_ops_models.py)"
    e2e_summary e2e_deadline
    exit 1
fi
photo=images/ffhq_00064.jpg

# Not stack_start: /ready is polled from the moment nginx is up, while the
# workers are still loading the model.
PORT=$E2E_PORT setsid env REFACE_FLAGS="--workers 2 --model $models/slow.pt \
    --request-timeout 4 --stop-timeout 1" scripts/run.sh \
    > "$work/stack.log" 2>&1 &
e2e_stack_pid=$!
: > "$work/ready.seq"
i=0
while [ $i -lt 600 ] && kill -0 "$e2e_stack_pid" 2>/dev/null; do
    code=$(curl -s -o "$work/ready.body" -w '%{http_code}' "$E2E_BASE/ready")
    at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    echo "$code $at" >> "$work/ready.seq"
    if [ "$code" = 503 ] && [ ! -f "$work/first503.body" ]; then
        cp "$work/ready.body" "$work/first503.body"
        echo "$at" > "$work/first503.at"
    fi
    [ "$code" = 200 ] && break
    i=$((i + 1))
    sleep 0.1
done
check "/ready becomes 200" [ "$code" = 200 ]
check "/ready was 503 first, while the workers were loading" \
    [ -f "$work/first503.body" ]
check "that 503 is JSON {\"status\":\"not ready\"}" \
    [ "$(json_get "$work/first503.body" status)" = "not ready" ]
loaded=$(grep -a -m1 'model: loaded' "$work/stack.log" | cut -d' ' -f1)
check "that 503 came before any worker had loaded the model" \
    sh -c "[ -n '$loaded' ] && [ \"\$(cat '$work/first503.at')\" \\< '$loaded' ]"
check "the 200 names the ready workers" \
    [ "$(json_get "$work/ready.body" status)" = ready ]
master=$(stack_master_pid)

# --- a request past the deadline ------------------------------------------------
two_ready() {
    request "$work/r" "$E2E_BASE/ready"
    [ "$(status_of "$work/r")" = 200 ] &&
        [ "$(json_get "$work/r.body" workers_ready)" = 2 ]
}
check "both workers ready" wait_until 30 two_ready
pids_before=$(worker_pids "$master")
start=$(date +%s)
request "$work/slow" -F "image=@$models/white.png" "$E2E_BASE/predict?detect=false" &
slow_pid=$!
sleep 0.5
request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
check "another request is served while one is stuck" \
    [ "$(status_of "$work/p")" = 200 ]
wait "$slow_pid"
took=$(($(date +%s) - start))
check "the stuck request is answered 502 (took ${took} s)" \
    [ "$(status_of "$work/slow")" = 502 ]
check "... well before nginx's 60 s fastcgi_read_timeout" [ "$took" -lt 30 ]
check "... with nginx's JSON error" \
    [ "$(json_get "$work/slow.body" error)" = "Worker failed to answer" ]
check "... as application/json" \
    [ "$(header_of "$work/slow" Content-Type)" = application/json ]
rid=$(header_of "$work/slow" X-Request-Id)
check "... with its request id ($rid)" \
    sh -c "echo '$rid' | grep -Eq '^[0-9a-f]{32}$'"
check "the master logs the kill with that request id" \
    grep -Eq "master: worker pid=[0-9]+ over request_timeout \(4\.0 s\) on request id=$rid after [0-9.]+ s; killed" \
    "$work/stack.log"
check "nginx saw the worker's connection close, not its own timeout" \
    sh -c "grep -a 'upstream prematurely closed connection' '$work/stack.log' | grep -q 'POST /predict' &&
        ! grep -a 'upstream timed out' '$work/stack.log' | grep -q 'POST /predict'"
check "/metrics: restarts by deadline = 1" \
    wait_until 10 metric_at_least "$E2E_BASE" \
    'reface_worker_restarts_total{cause="deadline"}' 1
check "... and not counted as a crash" \
    [ "$(metric "$E2E_BASE" 'reface_worker_restarts_total{cause="signal"}')" = 0 ]
request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
check "the next request succeeds" [ "$(status_of "$work/p")" = 200 ]
check "the killed worker is replaced" wait_until 30 two_ready
killed=$(sed -n "s/.*worker pid=\([0-9]*\) over request_timeout.*/\1/p" \
    "$work/stack.log" | head -1)
check "the killed worker ($killed) was one of the pool" \
    sh -c "echo '$pids_before' | grep -qx '$killed'"
check "... and is gone" sh -c "! pgrep -P $master -x reface-fcgi | grep -qx '$killed'"

# --- SIGTERM whose stop_timeout runs out -----------------------------------------
request "$work/stop" -F "image=@$models/white.png" "$E2E_BASE/predict?detect=false" &
slow_pid=$!
check "a stuck request is in flight" \
    wait_until 10 metric_at_least "$E2E_BASE" reface_requests_in_flight 2
kill -TERM "$master"
check "the master exits" wait_until 30 sh -c "! kill -0 $master 2>/dev/null"
wait "$slow_pid"
check "it gave up after stop_timeout (1 s), not request_timeout (4 s)" \
    grep -q "graceful stop timed out; killing 1 workers" "$work/stack.log"
check "the stuck request is answered 502" [ "$(status_of "$work/stop")" = 502 ]
check "only the first stuck request hit request_timeout" \
    [ "$(grep -c 'over request_timeout' "$work/stack.log")" -eq 1 ]

check "stop leaves no process of the stack behind" stack_stop

e2e_summary e2e_deadline
[ "$e2e_failed" -eq 0 ]
