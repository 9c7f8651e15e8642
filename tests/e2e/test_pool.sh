#!/bin/sh
# End-to-end: the master's process management through nginx. Workers are
# recycled after max_requests (with jitter) and no request fails; /metrics
# is Prometheus text whose counters, shared by all workers, move by exactly
# what was sent; the access line carries nginx's request id; a SIGKILLed
# worker is replaced while requests keep succeeding; a crash storm makes
# the master back off and recover; /ready is 503 when no worker answers.
# Run from the repo root.
set -u
. tests/e2e/lib.sh
E2E_PORT=$(e2e_port 18082)
E2E_BASE=http://127.0.0.1:$E2E_PORT

work=$(mktemp -d /tmp/reface-pool.XXXXXX)
stopped=
trap '[ -n "$stopped" ] && kill -CONT $stopped 2>/dev/null; stack_stop; rm -rf "$work"' EXIT INT TERM

photo=images/ffhq_00064.jpg
PREDICT_OK='reface_requests_total{endpoint="/predict",status="200"}'

# Two stacks: recycling first (every request, /ready too, counts towards
# max_requests, so its workers come and go all the time), then crashes,
# on a pool where only the test's kills end workers.
if ! stack_start "$work/stack.log" REFACE_FLAGS="--workers 2 \
        --max-requests 3 --max-requests-jitter 2"; then
    not_ok "stack starts"
    e2e_summary e2e_pool
    exit 1
fi
ok "stack starts"
master=$(stack_master_pid)
check "the master is found" [ -n "$master" ]

# number_of N: the value of a metric, 0 when the series is absent.
number_of() {
    v=$(metric "$E2E_BASE" "$1")
    echo "${v:-0}"
}

not_in_pool() {
    ! worker_pids "$master" | grep -qx "$1"
}

two_ready() {
    request "$work/ready" "$E2E_BASE/ready"
    [ "$(status_of "$work/ready")" = 200 ] &&
        [ "$(json_get "$work/ready.body" workers_ready)" = 2 ]
}

# --- /ready and /metrics ------------------------------------------------------
check "/ready reports both workers ready" wait_until 30 two_ready
check "/ready says ready" [ "$(json_get "$work/ready.body" status)" = ready ]

request "$work/m" "$E2E_BASE/metrics"
check "/metrics 200" [ "$(status_of "$work/m")" = 200 ]
check "/metrics is Prometheus text 0.0.4" \
    sh -c "tr -d '\r' < '$work/m.headers' | grep -qi '^Content-Type: text/plain; version=0.0.4'"
/usr/bin/python3 - "$work/m.body" <<'PY'
# Checks the exposition format: every family has HELP and TYPE, every
# sample line parses, histograms are cumulative with +Inf == _count.
import json, re, sys
text = open(sys.argv[1]).read()
errors = []
typed, helped, samples = {}, set(), {}
line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
for line in text.splitlines():
    if line.startswith("# HELP "):
        helped.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        typed[name] = kind
    elif line:
        m = line_re.match(line)
        if not m:
            errors.append("bad line: " + line)
            continue
        float(m.group(3))
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
want = {
    "reface_requests_total": "counter",
    "reface_stage_seconds": "histogram",
    "reface_requests_in_flight": "gauge",
    "reface_workers": "gauge",
    "reface_workers_ready": "gauge",
    "reface_worker_restarts_total": "counter",
    "reface_crash_backoffs_total": "counter",
    "reface_model_info": "gauge",
    "reface_model_load_seconds": "gauge",
}
for name, kind in want.items():
    if typed.get(name) != kind or name not in helped:
        errors.append("%s: TYPE %s, HELP %s" % (name, typed.get(name),
                                                 name in helped))
for stage in ["read", "sniff", "decode", "preprocess", "infer", "reply",
              "total"]:
    buckets = [(k, v) for k, v in samples.items()
               if k.startswith('reface_stage_seconds_bucket{stage="%s",' % stage)]
    values = [v for _, v in buckets]
    if len(buckets) < 2 or values != sorted(values):
        errors.append("stage %s: buckets not cumulative" % stage)
    inf = samples.get('reface_stage_seconds_bucket{stage="%s",le="+Inf"}' % stage)
    if inf != samples.get('reface_stage_seconds_count{stage="%s"}' % stage):
        errors.append("stage %s: +Inf bucket != _count" % stage)
for cause in ["exit", "signal", "deadline", "recycle", "reload"]:
    if 'reface_worker_restarts_total{cause="%s"}' % cause not in samples:
        errors.append("no restarts series for cause " + cause)
info = [k for k in samples if k.startswith("reface_model_info{")]
name = json.load(open("models/reface.json"))["name"]
if len(info) != 1 or 'name="%s"' % name not in info[0] \
        or not re.search(r'sha256="[0-9a-f]{64}"', info[0]):
    errors.append("model_info: %s" % info)
if samples.get("reface_workers_configured") != 2:
    errors.append("workers_configured is not 2")
if not samples.get("reface_model_load_seconds", 0) > 0:
    errors.append("model_load_seconds is not > 0")
if errors:
    print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
check "/metrics: families, histograms and labels are well formed" [ $? -eq 0 ]
check "/metrics counts this request in flight" \
    [ "$(awk '$1 == "reface_requests_in_flight" { print $2 }' "$work/m.body")" -ge 1 ]

# --- recycling: 14 requests, workers leave after 3..5 -------------------------
before_ok=$(number_of "$PREDICT_OK")
before_infer=$(number_of 'reface_stage_seconds_count{stage="infer"}')
pids_before=$(worker_pids "$master")
failed=0
i=0
while [ $i -lt 14 ]; do
    request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
    [ "$(status_of "$work/p")" = 200 ] || failed=$((failed + 1))
    i=$((i + 1))
done
check "14 predictions while workers recycle: none failed" [ "$failed" -eq 0 ]
check "the master counts at least 2 recycled workers" \
    wait_until 30 metric_at_least "$E2E_BASE" \
    'reface_worker_restarts_total{cause="recycle"}' 2
limits=$(sed -n 's/.*worker: recycling after \([0-9]*\) requests.*/\1/p' \
    "$work/stack.log" | sort -u | tr '\n' ' ')
check "each worker left after 3 to 5 requests (max_requests 3 + jitter 2): $limits" \
    sh -c "[ -n '$limits' ] && for n in $limits; do [ \$n -ge 3 ] && [ \$n -le 5 ] || exit 1; done"
pids_after=$(worker_pids "$master")
gone=0
for p in $pids_before; do
    echo "$pids_after" | grep -qx "$p" || gone=$((gone + 1))
done
check "recycled workers have new pids ($gone of 2 replaced)" [ "$gone" -ge 1 ]
check "/metrics: /predict 200 moved by exactly 14 (any worker answers)" \
    [ "$(number_of "$PREDICT_OK")" -eq $((before_ok + 14)) ]
check "/metrics: infer histogram count moved by exactly 14" \
    [ "$(number_of 'reface_stage_seconds_count{stage="infer"}')" -eq $((before_infer + 14)) ]

# --- the access line of the last request --------------------------------------
rid=$(header_of "$work/p" X-Request-Id)
check "nginx returns the request id" sh -c "echo '$rid' | grep -Eq '^[0-9a-f]{32}$'"
check "the access line has time, worker pid, id, method, URI, status, bytes, stages" \
    grep -Eq "^[0-9T:.-]+Z worker\[[0-9]+\] INFO access: POST /predict 200 in=[0-9]+ out=[0-9]+ ms=[0-9.]+ id=$rid read_us=[0-9]+ sniff_us=[0-9]+ decode_us=[0-9]+ prep_us=[0-9]+ infer_us=[0-9]+ reply_us=[0-9]+ " \
    "$work/stack.log"

check "stop leaves no process of the first stack behind" stack_stop
check "no worker crashed on its own (every exit was a recycling)" \
    sh -c "! grep -Eq 'cause=(exit|signal)' '$work/stack.log'"

# --- crash respawn ---------------------------------------------------------------
if ! stack_start "$work/stack2.log" REFACE_FLAGS="--workers 2 \
        --crash-storm-exits 3 --crash-storm-window 60"; then
    not_ok "second stack starts"
    e2e_summary e2e_pool
    exit 1
fi
master=$(stack_master_pid)
check "pool of 2 ready workers" wait_until 30 two_ready
victim=$(worker_pids "$master" | head -1)
kill -KILL "$victim"
failed=0
for i in 1 2 3 4; do
    request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
    [ "$(status_of "$work/p")" = 200 ] || failed=$((failed + 1))
done
check "requests right after a worker is SIGKILLed succeed" [ "$failed" -eq 0 ]
check "the master logs the kill" \
    wait_until 10 grep -q "worker pid=$victim killed by signal 9" "$work/stack2.log"
check "the killed worker is replaced" wait_until 30 two_ready
check "it is gone from the pool" not_in_pool "$victim"
check "/metrics: restarts by signal = 1" \
    [ "$(number_of 'reface_worker_restarts_total{cause="signal"}')" -eq 1 ]

# --- crash storm: 3 abnormal exits within 60 s --------------------------------
for p in $(worker_pids "$master"); do
    kill -KILL "$p"
done
check "the master logs a crash storm and backs off" \
    wait_until 10 grep -q "crash storm: 3 abnormal worker exits" "$work/stack2.log"
check "the pool recovers after the backoff" wait_until 60 two_ready
check "/metrics: crash backoffs >= 1" \
    metric_at_least "$E2E_BASE" reface_crash_backoffs_total 1
request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
check "predict 200 after the storm" [ "$(status_of "$work/p")" = 200 ]

# --- /ready when no worker answers (stuck workers) ------------------------------
stopped=$(worker_pids "$master" | tr '\n' ' ')
# shellcheck disable=SC2086
kill -STOP $stopped
request "$work/nr" "$E2E_BASE/ready"
check "/ready is 503 while every worker is stuck" [ "$(status_of "$work/nr")" = 503 ]
check "... with a JSON body" [ "$(json_get "$work/nr.body" status)" = "not ready" ]
# shellcheck disable=SC2086
kill -CONT $stopped
stopped=
check "/ready is 200 again once they run" wait_until 20 two_ready

# --- SIGUSR1 without a log file ---------------------------------------------------
kill -USR1 "$master"
check "SIGUSR1 with no log_file is logged, not fatal" \
    wait_until 10 grep -q "SIGUSR1: logging to stderr" "$work/stack2.log"
request "$work/h" "$E2E_BASE/health"
check "health 200 after SIGUSR1" [ "$(status_of "$work/h")" = 200 ]

check "stop leaves no process of the second stack behind" stack_stop
check "no worker exited on its own (every exit was a kill of ours)" \
    sh -c "! grep -q 'cause=exit' '$work/stack2.log'"

e2e_summary e2e_pool
[ "$e2e_failed" -eq 0 ]
