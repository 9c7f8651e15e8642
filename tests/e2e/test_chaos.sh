#!/bin/sh
# End-to-end chaos: a bounded load run through nginx (tests/e2e/loadgen.py,
# valid uploads, CHAOS_CONCURRENCY at a time) while faults hit the workers.
#
# 1. SIGKILL a random worker every second, CHAOS_KILLS times. Only the
#    requests in flight on a killed worker may fail: at most one per kill,
#    each a clean JSON 502 from nginx; every other answer is a correct
#    prediction, none hangs (while no worker is up, requests wait in the
#    socket's backlog). Each killed worker is reaped and replaced; the time
#    from the kill to the replacement's model being loaded is reported (a
#    replacement killed while still loading has none).
# 2. SIGSTOP one busy worker (one holding a request). The master's
#    request_timeout (CHAOS_TIMEOUT s here) must reclaim it: killed, logged
#    with cause=deadline, replaced; the other worker keeps answering
#    meanwhile, and at most that one request fails.
#
# crash_storm_exits is raised so that the back-off after repeated crashes
# (tested on its own elsewhere) does not stretch the run. Run from the repo
# root.
set -u
. tests/e2e/lib.sh

CHAOS_KILLS=${CHAOS_KILLS:-10}
CHAOS_CONCURRENCY=${CHAOS_CONCURRENCY:-6}
CHAOS_TIMEOUT=${CHAOS_TIMEOUT:-5}

E2E_PORT=$(e2e_port 18120)
E2E_BASE=http://127.0.0.1:$E2E_PORT
work=$(mktemp -d /tmp/reface-chaos.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

if ! stack_start "$work/stack.log" REFACE_FLAGS="--workers 2 \
        --request-timeout $CHAOS_TIMEOUT --crash-storm-exits 1000"; then
    not_ok "stack starts"
    e2e_summary e2e_chaos
    exit 1
fi
ok "stack starts"
master=$(pgrep -o -g "$e2e_stack_pid" -f 'reface-fcgi')

worker_pids() {
    pgrep -P "$master" | sort | tr '\n' ' '
}
random_worker() {
    pgrep -P "$master" | shuf -n 1
}
# wait_ready N: until /metrics says N workers are ready (60 s at most).
wait_ready() {
    i=0
    while [ $i -lt 300 ]; do
        if curl -s "$E2E_BASE/metrics" | grep -q "^reface_workers_ready $1\$"
        then
            return 0
        fi
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}
# jq_py FILE EXPR: evaluates a Python expression over the JSON in FILE (j).
jq_py() {
    /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
loadgen() {
    /usr/bin/python3 tests/e2e/loadgen.py --port "$E2E_PORT" \
        --concurrency "$CHAOS_CONCURRENCY" --clean 502,503 --timeout 60 "$@"
}
# reface_errors: ERROR lines of the master or workers (nginx's own error
# lines about closed upstreams are expected here).
reface_errors() {
    grep -a -E '^[^ ]+ (master|worker)\[[0-9]+\] ERROR' "$work/stack.log"
}

for i in 1 2 3 4; do
    request "$work/warm" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
done

# --- 1. SIGKILL a random worker every second ---------------------------------
loadgen --duration $((CHAOS_KILLS + 3)) > "$work/kill.json" &
lg=$!
sleep 1
: > "$work/kills"
n=0
while [ $n -lt "$CHAOS_KILLS" ]; do
    pid=$(random_worker)
    if [ -n "$pid" ]; then
        echo "$(date +%s.%N) $pid" >> "$work/kills"
        kill -KILL "$pid"
        n=$((n + 1))
    fi
    sleep 1
done
wait $lg
check "the pool is back to 2 ready workers" wait_ready 2
/usr/bin/python3 tests/e2e/chaos_report.py "$work/stack.log" "$work/kills" \
    > "$work/kill-report.json"

kills=$(wc -l < "$work/kills")
sent=$(json_get "$work/kill.json" sent)
okn=$(json_get "$work/kill.json" ok)
failed=$(json_get "$work/kill.json" failed)
echo "kill phase: load $(cat "$work/kill.json")"
echo "kill phase: report $(cat "$work/kill-report.json")"
check "kill: $kills workers killed" [ "$kills" -eq "$CHAOS_KILLS" ]
# With a worker killed every second and each replacement loading two
# models, the pool is short most of the time: what must hold is that
# requests keep being answered, at least one per kill.
check "kill: requests were sent ($sent) and answered throughout ($okn)" \
    [ "$okn" -ge "$kills" ]
check "kill: failed ($failed) <= kills ($kills)" [ "$failed" -le "$kills" ]
check "kill: no unclean answer" [ "$(json_get "$work/kill.json" unclean)" -eq 0 ]
check "kill: no request hung" [ "$(json_get "$work/kill.json" timeout)" -eq 0 ]
check "kill: every failure is a clean JSON 502/503" \
    [ "$(json_get "$work/kill.json" clean)" -eq "$failed" ]
check "kill: each killed worker was reaped with signal 9" \
    [ "$(jq_py "$work/kill-report.json" \
        "sum(e.get('signal') == 9 for e in j['each'])")" -eq "$kills" ]
check "kill: each was replaced" \
    [ "$(json_get "$work/kill-report.json" replaced)" -eq "$kills" ]
check "kill: each replacement loaded the model or was killed itself first" \
    [ "$(json_get "$work/kill-report.json" replacement_loaded_or_hit)" -eq "$kills" ]
check "kill: some replacements loaded during the run" \
    [ "$(json_get "$work/kill-report.json" respawned)" -gt 0 ]
request "$work/after-kill" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "kill: a normal request is answered afterwards" \
    [ "$(json_get "$work/after-kill.body" gender_name)" = male ]

# --- 2. SIGSTOP a busy worker: the deadline reclaims it ----------------------
loadgen --duration $((CHAOS_TIMEOUT + 8)) > "$work/stop.json" &
lg=$!
sleep 1
# Stop a worker that holds a request (a socket besides the listening one);
# one stopped while idle in accept() holds nothing and is let go again.
stopped=
idle_stops=0
: > "$work/stops"
while [ -z "$stopped" ] && [ $idle_stops -lt 20 ]; do
    pid=$(random_worker)
    kill -STOP "$pid"
    sleep 0.05
    if [ "$(ls -l "/proc/$pid/fd" 2>/dev/null | grep -c 'socket:')" -ge 2 ]; then
        stopped=$pid
        echo "$(date +%s.%N) $pid" >> "$work/stops"
    else
        kill -CONT "$pid"
        idle_stops=$((idle_stops + 1))
        sleep 0.2
    fi
done
check "stop: a busy worker was stopped ($idle_stops idle ones let go)" \
    [ -n "$stopped" ]
i=0
while [ -n "$stopped" ] && [ -d "/proc/$stopped" ] && [ $i -lt $(((CHAOS_TIMEOUT + 10) * 5)) ]; do
    sleep 0.2
    i=$((i + 1))
done
wait $lg
check "the pool is back to 2 ready workers" wait_ready 2
/usr/bin/python3 tests/e2e/chaos_report.py "$work/stack.log" "$work/stops" \
    > "$work/stop-report.json"
echo "stop phase: load $(cat "$work/stop.json")"
echo "stop phase: report $(cat "$work/stop-report.json")"
reap_s=$(jq_py "$work/stop-report.json" "j['each'][0].get('reap_s', -1) if j['each'] else -1")
check "stop: the master killed it past request_timeout" \
    grep -q "worker pid=$stopped over request_timeout" "$work/stack.log"
check "stop: reaped with cause=deadline" \
    [ "$(jq_py "$work/stop-report.json" \
        "j['each'][0].get('cause') if j['each'] else None")" = deadline ]
check "stop: reclaimed within request_timeout + 5 s (${reap_s} s)" \
    /usr/bin/python3 -c "import sys; sys.exit(not 0 <= $reap_s <= $CHAOS_TIMEOUT + 5)"
check "stop: replaced by a worker that loaded the model" \
    [ "$(json_get "$work/stop-report.json" respawned)" -eq 1 ]
# The seconds while it was stopped, in loadgen's timeline.
served_meanwhile=$(/usr/bin/python3 -c "
import json, sys
lg = json.load(open(sys.argv[1])); rp = json.load(open(sys.argv[2]))
e = rp['each'][0] if rp['each'] else {}
t0 = e.get('at', 0) - lg['started_at']
t1 = t0 + e.get('reap_s', 0)
print(sum(n for s, n in enumerate(lg['ok_per_second']) if t0 + 1 <= s and s + 1 <= t1))
" "$work/stop.json" "$work/stop-report.json")
check "stop: the other worker answered while it was stopped ($served_meanwhile ok)" \
    [ "$served_meanwhile" -gt 0 ]
check "stop: at most the stopped request failed" \
    [ "$(json_get "$work/stop.json" failed)" -le 1 ]
check "stop: no unclean answer" [ "$(json_get "$work/stop.json" unclean)" -eq 0 ]
check "stop: no request hung" [ "$(json_get "$work/stop.json" timeout)" -eq 0 ]

if reface_errors > /dev/null; then
    not_ok "no master or worker ERROR line" "$(reface_errors | head -3)"
else
    ok "no master or worker ERROR line"
fi

echo "SUMMARY chaos kill: kills=$kills sent=$sent ok=$okn failed=$failed" \
    "statuses=$(jq_py "$work/kill.json" "json.dumps(j['statuses'])")" \
    "respawns=$(json_get "$work/kill-report.json" respawned)" \
    "respawn_median_s=$(json_get "$work/kill-report.json" respawn_median_s)" \
    "respawn_max_s=$(json_get "$work/kill-report.json" respawn_max_s)"
echo "SUMMARY chaos stop: sent=$(json_get "$work/stop.json" sent)" \
    "ok=$(json_get "$work/stop.json" ok)" \
    "failed=$(json_get "$work/stop.json" failed) reclaimed_after_s=$reap_s" \
    "respawn_s=$(jq_py "$work/stop-report.json" "j['each'][0].get('respawn_s') if j['each'] else None")" \
    "ok_while_stopped=$served_meanwhile"
check "stop leaves no process of the stack behind" stack_stop
e2e_summary e2e_chaos
[ "$e2e_failed" -eq 0 ]
