#!/bin/sh
# End-to-end: the master's signals through nginx. SIGHUP rolls a model
# swap out under load with no failed request (and the new model is the one
# served); a SIGHUP to a broken model keeps the running one; SIGUSR1
# reopens log_file after a rotation; SIGTERM lets a request in flight
# finish before the master exits. Run from the repo root.
set -u
. tests/e2e/lib.sh
E2E_PORT=$(e2e_port 18084)
E2E_BASE=http://127.0.0.1:$E2E_PORT

work=$(mktemp -d /tmp/reface-reload.XXXXXX)
trap 'touch "$work/stop"; stack_stop; rm -rf "$work"' EXIT INT TERM

models=$(ensure_ops_models)
if [ -z "$models" ]; then
    not_ok "the test model is generated (tests/e2e/make_ops_models.py)"
    e2e_summary e2e_reload
    exit 1
fi
photo=images/ffhq_00064.jpg

# The master re-reads the model on SIGHUP as the user it dropped to (as
# root, scripts/run.sh makes that www-data), and reopens the log as it too.
chmod 0755 "$work"
mkdir "$work/m" "$work/logs"
chmod 0777 "$work/logs"
cp models/faceapi.pt "$work/m/model.pt"
cp models/faceapi.json "$work/m/model.json"
chmod 0644 "$work/m/model.pt" "$work/m/model.json"
flog=$work/logs/reface.log

if ! stack_start "$work/stack.log" REFACE_FLAGS="--workers 2 \
        --model $work/m/model.pt --log-file $flog"; then
    not_ok "stack starts"
    e2e_summary e2e_reload
    exit 1
fi
ok "stack starts"
master=$(stack_master_pid)
check "the master logs to log_file" \
    wait_until 10 grep -q "master: starting 2 workers" "$flog"

two_ready() {
    request "$work/r" "$E2E_BASE/ready"
    [ "$(status_of "$work/r")" = 200 ] &&
        [ "$(json_get "$work/r.body" workers_ready)" = 2 ]
}
check "both workers ready" wait_until 30 two_ready

# load OUT: /predict one after another until $work/stop exists; one status
# per line.
load() {
    while [ ! -f "$work/stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' -F "image=@$photo" \
            "$E2E_BASE/predict" >> "$1"
    done
}

# --- SIGHUP: swap the model under load ------------------------------------------
pids_before=$(worker_pids "$master")
: > "$work/load1"
: > "$work/load2"
load "$work/load1" &
load1=$!
load "$work/load2" &
load2=$!
sleep 1
# Replace the files the way a deployment should: a rename is atomic.
cp "$models/slow.json" "$work/m/.model.json" && mv "$work/m/.model.json" "$work/m/model.json"
cp "$models/slow.pt" "$work/m/.model.pt" && mv "$work/m/.model.pt" "$work/m/model.pt"
chmod 0644 "$work/m/model.pt" "$work/m/model.json"
kill -HUP "$master"
# The new model takes over a second to start (make_ops_models.py): until
# every worker runs it, /metrics still names the old one.
check "/metrics names the old model while the reload runs" \
    sh -c "curl -s '$E2E_BASE/metrics' | grep -q '^reface_model_info{name=\"faceapi-agegender-expression\",.*generation=\"1\"} 1$'"
check "the master rolls generation 2 out" \
    wait_until 90 grep -q "reload: every worker runs generation 2" "$flog"
sleep 1
touch "$work/stop"
wait "$load1" "$load2"
rm -f "$work/stop"
total=$(cat "$work/load1" "$work/load2" | wc -l)
bad=$(cat "$work/load1" "$work/load2" | grep -vc '^200$')
echo "# $total requests during the reload, $bad not 200: $(cat "$work/load1" "$work/load2" | sort | uniq -c | tr '\n' ' ')"
check "requests kept flowing during the reload ($total)" [ "$total" -ge 10 ]
check "no request failed during the reload ($bad of $total)" [ "$bad" -eq 0 ]
check "workers were replaced one at a time (2 retired)" \
    [ "$(grep -c 'reload: retiring worker' "$flog")" -eq 2 ]
names=""
for i in 1 2 3 4 5 6; do
    request "$work/h" "$E2E_BASE/health"
    names="$names $(json_get "$work/h.body" model)"
done
check "every worker now serves the new model:$names" \
    sh -c "echo '$names' | tr ' ' '\n' | grep -v '^$' | sort -u | grep -qx reface-test-slow &&
        [ \$(echo '$names' | tr ' ' '\n' | grep -v '^$' | sort -u | wc -l) -eq 1 ]"
check "/metrics: model_info names it, generation 2" \
    sh -c "curl -s '$E2E_BASE/metrics' | grep -q '^reface_model_info{name=\"reface-test-slow\",sha256=\"$(sha256sum "$models/slow.pt" | cut -d' ' -f1)\",generation=\"2\"} 1$'"
check "/metrics: restarts by reload = 2" \
    [ "$(metric "$E2E_BASE" 'reface_worker_restarts_total{cause="reload"}')" = 2 ]
# none_of PIDS: no pid of the list is a worker of the master any more.
none_of() {
    for p in $1; do
        worker_pids "$master" | grep -qx "$p" && return 1
    done
    return 0
}
check "none of the old workers is left" wait_until 10 none_of "$pids_before"

# --- SIGHUP to a broken model: the running one stays ---------------------------
pids_before=$(worker_pids "$master")
printf 'not a TorchScript file\n' > "$work/m/.model.pt"
mv "$work/m/.model.pt" "$work/m/model.pt"
chmod 0644 "$work/m/model.pt"
kill -HUP "$master"
check "a reload whose model cannot start is reverted" \
    wait_until 60 grep -q "reload failed: generation 3 cannot start .*keeping generation 2" "$flog"
request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
check "predict 200 after the failed reload" [ "$(status_of "$work/p")" = 200 ]
request "$work/h" "$E2E_BASE/health"
check "the previous model is still served" \
    [ "$(json_get "$work/h.body" model)" = reface-test-slow ]
check "/metrics: generation back to 2" \
    sh -c "curl -s '$E2E_BASE/metrics' | grep -q '^reface_model_info{name=\"reface-test-slow\",.*generation=\"2\"} 1$'"
check "no worker was retired for it" \
    [ "$(worker_pids "$master")" = "$pids_before" ]
check "the master did not stop" kill -0 "$master"

# --- SIGUSR1 after a rotation ----------------------------------------------------
mv "$flog" "$flog.1"
kill -USR1 "$master"
check "SIGUSR1: the master reopens log_file" \
    wait_until 10 grep -qs "SIGUSR1: reopened $flog" "$flog"
sleep 0.5
request "$work/h" "$E2E_BASE/health"
rid=$(header_of "$work/h" X-Request-Id)
check "the workers write to the new file too" \
    wait_until 10 grep -qs "access: GET /health 200 .* id=$rid" "$flog"
check "the rotated file kept the earlier lines" \
    grep -q "reload failed: generation 3" "$flog.1"

# --- SIGTERM with a request in flight ------------------------------------------
request "$work/slow" -F "image=@$models/grey.png" "$E2E_BASE/predict?detect=false" &
slow_pid=$!
check "the slow request is in flight" \
    wait_until 10 metric_at_least "$E2E_BASE" reface_requests_in_flight 2
kill -TERM "$master"
wait "$slow_pid"
check "the request in flight completes with 200" \
    [ "$(status_of "$work/slow")" = 200 ]
check "... and a prediction" [ "$(json_get "$work/slow.body" age)" = 30.0 ]
check "the master exits" wait_until 30 sh -c "! kill -0 $master 2>/dev/null"
check "it stopped gracefully" \
    grep -q "SIGTERM: graceful stop" "$flog"
check "... without running out of time" \
    sh -c "! grep -q 'graceful stop timed out' '$flog'"
check "... and says so" grep -q "master: stopped" "$flog"

check "stop leaves no process of the stack behind" stack_stop

e2e_summary e2e_reload
[ "$e2e_failed" -eq 0 ]
