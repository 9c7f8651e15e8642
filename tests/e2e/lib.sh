# Helpers for the end-to-end tests: start the real stack (scripts/run.sh:
# the workers and nginx) on a loopback port, send requests with curl, count
# checks. Source it from a test script run at the repo root.

# E2E_PORT_OFFSET shifts every test port, so that several checkouts can run
# the suites at once on one machine. e2e_port N gives test port N shifted.
e2e_port() {
    echo $(($1 + ${E2E_PORT_OFFSET:-0}))
}
E2E_PORT=$(e2e_port 18080)
E2E_BASE=http://127.0.0.1:$E2E_PORT
e2e_passed=0
e2e_failed=0
e2e_stack_pid=

ok() {
    e2e_passed=$((e2e_passed + 1))
    echo "ok $1"
}

not_ok() {
    e2e_failed=$((e2e_failed + 1))
    echo "not ok $1${2:+: $2}"
}

# check NAME CONDITION-COMMAND...: one check from a command's exit status.
check() {
    name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# Starts scripts/run.sh in its own process group and waits for /health.
stack_start() {
    log=$1
    shift
    PORT=$E2E_PORT setsid env "$@" scripts/run.sh > "$log" 2>&1 &
    e2e_stack_pid=$!
    i=0
    until curl -fs -o /dev/null "$E2E_BASE/health"; do
        i=$((i + 1))
        if [ $i -gt 150 ] || ! kill -0 "$e2e_stack_pid" 2>/dev/null; then
            echo "e2e: the stack did not come up; log:" >&2
            tail -20 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Stops the stack's whole process group, as systemd would, and waits until
# none of its processes is left (a shell starts background jobs with SIGINT
# ignored, so SIGTERM stands in for Ctrl-C here). Returns 1 if any process
# of the group outlived the stop by 5 s.
stack_stop() {
    [ -n "$e2e_stack_pid" ] || return 0
    kill -TERM "-$e2e_stack_pid" 2>/dev/null || true
    i=0
    while pgrep -g "$e2e_stack_pid" > /dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if pgrep -g "$e2e_stack_pid" > /dev/null; then
        kill -KILL "-$e2e_stack_pid" 2>/dev/null || true
        e2e_stack_pid=
        return 1
    fi
    e2e_stack_pid=
}

# Pids of the stack's FastCGI processes (master and workers), sorted.
stack_fcgi_pids() {
    pgrep -g "$e2e_stack_pid" -f 'reface-fcgi' | sort | tr '\n' ' '
}

# request OUT_PREFIX CURL-ARGS...: writes OUT_PREFIX.status, .headers, .body
request() {
    out=$1
    shift
    curl -s -o "$out.body" -D "$out.headers" -w '%{http_code}' "$@" \
        > "$out.status" 2>/dev/null || echo 000 > "$out.status"
}

status_of() {
    cat "$1.status"
}

# json_get FILE KEY: prints a top-level value of a JSON body (Python is only
# the test's tool here; nothing Python runs in the service).
json_get() {
    /usr/bin/python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(json.dumps(v) if isinstance(v, (dict, list)) else v)
' "$1" "$2" 2>/dev/null
}

header_of() {
    tr -d '\r' < "$1.headers" | sed -n "s/^$2: //Ip" | head -1
}

e2e_summary() {
    echo "RESULT $1 $e2e_passed $e2e_failed"
}

# --- helpers of the operations tests (process management, /metrics) -------

# The stack's master: the reface-fcgi that scripts/run.sh started.
stack_master_pid() {
    pgrep -P "$e2e_stack_pid" -x reface-fcgi | head -1
}

# worker_pids MASTER: its live workers, one line each, sorted.
worker_pids() {
    pgrep -P "$1" -x reface-fcgi | sort
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.2 s until it
# succeeds (0) or SECONDS have passed (1).
wait_until() {
    wu_limit=$(($1 * 5))
    shift
    wu_i=0
    until "$@"; do
        wu_i=$((wu_i + 1))
        [ "$wu_i" -ge "$wu_limit" ] && return 1
        sleep 0.2
    done
}

# metric BASE SERIES: one value of BASE/metrics, e.g.
# metric "$E2E_BASE" 'reface_worker_restarts_total{cause="signal"}'.
# Prints nothing if the series is absent or /metrics did not answer.
metric() {
    curl -s "$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'
}

# metric_at_least BASE SERIES N: the series is there and >= N.
metric_at_least() {
    ma_v=$(metric "$1" "$2")
    [ -n "$ma_v" ] && awk -v v="$ma_v" -v n="$3" 'BEGIN { exit !(v >= n) }'
}

# ensure_ops_models: the test-only model of tests/e2e/make_ops_models.py in
# build/e2e-models, regenerated when the script is newer. Prints the folder.
ensure_ops_models() {
    om_dir=build/e2e-models
    if [ ! -f "$om_dir/STAMP" ] ||
        [ tests/e2e/make_ops_models.py -nt "$om_dir/STAMP" ]; then
        /usr/bin/python3 tests/e2e/make_ops_models.py "$om_dir" >&2 ||
            return 1
    fi
    echo "$om_dir"
}
