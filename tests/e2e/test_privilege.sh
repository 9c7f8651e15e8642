#!/bin/sh
# End-to-end: least privilege. The serving workers run under the seccomp
# filter of fcgi/sandbox.c (Seccomp: 2, NoNewPrivs: 1) and, when started as
# root, as an unprivileged user; the master is not filtered; the unix
# socket is not world-writable; log rotation (SIGUSR1) still works with the
# filter on; `--sandbox off` really turns it off. Then the workers' own
# limits (max_body, max_pixels, max_parts, max_header), set lower than
# nginx's here, and queue_timeout are shown to hold for requests sent
# straight to the socket with cgi-fcgi (libfcgi-bin), bypassing nginx.
# Run from the repo root.
set -u
. tests/e2e/lib.sh

E2E_PORT=$(e2e_port 18110)
E2E_BASE=http://127.0.0.1:$E2E_PORT
work=$(mktemp -d /tmp/reface-priv.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

# The log folder must be writable by the user the master runs as, for the
# reopen after rotation.
mkdir "$work/logs"
if [ "$(id -u)" -eq 0 ]; then
    chown www-data "$work/logs"
    chmod 0755 "$work"
fi
logfile=$work/logs/reface.log

master_pid() {
    pgrep -o -g "$e2e_stack_pid" -f 'reface-fcgi'
}
worker_pids() {
    pgrep -P "$(master_pid)" | sort | tr '\n' ' '
}
# status_field PID FIELD: a field of /proc/PID/status, e.g. Seccomp.
status_field() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

if ! stack_start "$work/stack.log" REFACE_FLAGS="--workers 2 \
        --log-file $logfile --max-body 65536 --max-pixels 1000000 \
        --max-parts 4 --max-header 256"; then
    not_ok "stack starts"
    e2e_summary e2e_privilege
    exit 1
fi
ok "stack starts"

# --- the filter and the user ------------------------------------------------
master=$(master_pid)
workers=$(worker_pids)
check "two workers ($workers)" [ "$(echo $workers | wc -w)" -eq 2 ]
for pid in $workers; do
    check "worker $pid: Seccomp: 2 (filter mode)" \
        [ "$(status_field "$pid" Seccomp)" = 2 ]
    check "worker $pid: NoNewPrivs: 1" \
        [ "$(status_field "$pid" NoNewPrivs)" = 1 ]
    check "worker $pid does not run as root" \
        [ "$(status_field "$pid" Uid)" != 0 ]
done
check "the master is not filtered (it forks, reopens logs)" \
    [ "$(status_field "$master" Seccomp)" = 0 ]

sock=$(tr '\0' '\n' < "/proc/$master/cmdline" | sed -n 's/^unix://p')
mode=$(stat -c %a "$sock")
echo "socket $sock mode $mode owner $(stat -c %U:%G "$sock")"
check "the socket is not world-writable ($mode)" \
    [ $((0$mode & 2)) -eq 0 ]

request "$work/face" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "a filtered worker answers /predict" \
    [ "$(status_of "$work/face")" = 200 ]
check "with the right answer" \
    [ "$(json_get "$work/face.body" gender_name)" = male ]
request "$work/images" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/images"
check "and /images" [ "$(status_of "$work/images")" = 200 ]
request "$work/metrics" "$E2E_BASE/metrics"
check "and /metrics" [ "$(status_of "$work/metrics")" = 200 ]

# --- log rotation under the filter -------------------------------------------
# A filtered worker may not open the log again: on SIGUSR1 it leaves
# between requests and its replacement inherits the reopened file.
mv "$logfile" "$logfile.1"
kill -USR1 "$master"
i=0
until [ "$(grep -c 'model: loaded' "$logfile" 2>/dev/null)" -ge 2 ] || [ $i -gt 150 ]; do
    sleep 0.2
    i=$((i + 1))
done
check "SIGUSR1: the master reopens log_file" grep -q 'SIGUSR1: reopened' "$logfile"
check "SIGUSR1: both workers replaced, loading into the new file" \
    [ "$(grep -c 'model: loaded' "$logfile")" -ge 2 ]
check "the old workers said why they left (in the old file)" \
    [ "$(grep -c 'SIGUSR1: leaving' "$logfile.1")" -eq 2 ]
new_workers=$(worker_pids)
check "new worker pids ($new_workers)" [ "$new_workers" != "$workers" ]
request "$work/after" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "a request after rotation is served" \
    [ "$(status_of "$work/after")" = 200 ]
check "and logged in the new file" \
    grep -q 'access: POST /predict 200' "$logfile"
check "the replaced workers were recycled, not crashed" \
    grep -q 'cause=recycle' "$logfile"
for pid in $new_workers; do
    check "new worker $pid: Seccomp: 2" [ "$(status_field "$pid" Seccomp)" = 2 ]
done

# --- the worker's own limits, without nginx ---------------------------------
# direct KIND [NAME=VALUE...]: builds a body and sends it to the socket,
# with the extra FastCGI parameters given; the reply (FastCGI headers and
# body) goes to $work/direct.KIND. direct_as OUT KIND ...: the same, into
# $work/direct.OUT.
direct() {
    direct_as "$1" "$@"
}
direct_as() {
    out=$1
    kind=$2
    shift
    shift
    ctype=$(/usr/bin/python3 tests/e2e/fcgi_direct.py "$kind" "$work/body.$kind")
    env -i REQUEST_METHOD=POST DOCUMENT_URI=/predict \
        REQUEST_URI=/predict CONTENT_TYPE="$ctype" \
        CONTENT_LENGTH="$(stat -c %s "$work/body.$kind")" \
        REQUEST_ID="direct-$out" "$@" \
        cgi-fcgi -bind -connect "$sock" < "$work/body.$kind" \
        > "$work/direct.$out" 2>&1
}
# direct_is KIND STATUS ERROR: the status line and the exact JSON error.
direct_is() {
    tr -d '\r' < "$work/direct.$1" > "$work/direct.$1.txt"
    grep -q "^Status: $2 " "$work/direct.$1.txt" &&
        grep -qF "{\"error\":\"$3\"}" "$work/direct.$1.txt"
}

if ! command -v cgi-fcgi > /dev/null; then
    not_ok "cgi-fcgi (libfcgi-bin) is installed" "cannot test without nginx"
else
    direct face
    check "direct: a normal upload is answered 200" \
        grep -q '^Status: 200' "$work/direct.face"
    direct big
    check "direct: max_body (64 kB) holds without nginx: 413" \
        direct_is big 413 "Request body too large"
    direct pixels
    check "direct: max_pixels (1 Mpx) holds: 413 for 1.2 Mpx" \
        direct_is pixels 413 "Image dimensions too large"
    direct parts
    check "direct: max_parts (4) holds: 400 for 5 parts" \
        direct_is parts 400 "Too many parts in multipart body"
    direct header
    check "direct: max_header (256 bytes) holds: 400" \
        direct_is header 400 "Multipart part header too large"
    # queue_timeout (30 s by default): nginx stamps REQUEST_START ($msec);
    # a request stamped 100 s ago waited too long and is refused unread,
    # one stamped now is served.
    direct_as stale face REQUEST_START="$(($(date +%s) - 100)).250"
    check "direct: a request queued 100 s ago gets 503 at once" \
        direct_is stale 503 "Server busy, retry later"
    check "direct: with Retry-After" grep -q '^Retry-After: 1' "$work/direct.stale.txt"
    check "direct: the worker logged why" \
        grep -q 'id=direct-stale .*result=queue_timeout detail=waited 100' "$logfile"
    direct_as fresh face REQUEST_START="$(date +%s).000"
    check "direct: a request stamped now is served" \
        grep -q '^Status: 200' "$work/direct.fresh"
    check "the worker logged each refusal" \
        sh -c "[ \$(grep -c 'id=direct-' '$logfile') -ge 7 ]"
fi
check "same workers after the direct requests" [ "$(worker_pids)" = "$new_workers" ]
check "no worker logged an error or died" \
    sh -c "[ -s '$logfile' ] && [ -s '$logfile.1' ] &&
        ! grep -a 'ERROR\|killed by signal' '$logfile' '$logfile.1' '$work/stack.log'"
check "stop leaves no process of the stack behind" stack_stop

# --- sandbox = off -----------------------------------------------------------
if stack_start "$work/stack-off.log" REFACE_FLAGS="--workers 1 --sandbox off"; then
    for pid in $(worker_pids); do
        check "--sandbox off: worker $pid has Seccomp: 0" \
            [ "$(status_field "$pid" Seccomp)" = 0 ]
    done
    request "$work/off" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
    check "--sandbox off: it serves" [ "$(status_of "$work/off")" = 200 ]
else
    not_ok "stack starts with --sandbox off"
fi
check "stop leaves no process of the stack behind" stack_stop

e2e_summary e2e_privilege
[ "$e2e_failed" -eq 0 ]
