#!/bin/sh
# End-to-end: the workers started the way conf/reface-spawn-fcgi.service
# starts them (spawn-fcgi -n binds the socket, reface-fcgi inherits it on
# fd 0), behind nginx. Run from the repo root.
set -u
. tests/e2e/lib.sh
E2E_PORT=$(e2e_port 18081)
E2E_BASE=http://127.0.0.1:$E2E_PORT

work=$(mktemp -d /tmp/reface-e2e.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

if ! command -v spawn-fcgi > /dev/null; then
    not_ok "spawn-fcgi is installed (scripts/install-deps.sh installs it)"
    e2e_summary e2e_spawn_fcgi
    exit 1
fi
if stack_start "$work/stack.log" SPAWN_FCGI=1; then
    ok "stack starts under spawn-fcgi"
else
    not_ok "stack starts under spawn-fcgi"
fi
check "master logged the inherited socket" \
    grep -aq "listening on inherited fd 0" "$work/stack.log"
request "$work/h" "$E2E_BASE/health"
check "health 200 over the inherited socket" [ "$(status_of "$work/h")" = 200 ]
request "$work/p" -F "image=@images/utkface_12dc068b2d.jpg" "$E2E_BASE/predict"
check "predict 200 over the inherited socket" [ "$(status_of "$work/p")" = 200 ]
check "predict answers female for the female sample" \
    [ "$(json_get "$work/p.body" gender_name)" = female ]
if [ "$(id -u)" -eq 0 ]; then
    check "workers run as www-data, not root" \
        sh -c "[ -z \"\$(pgrep -u root -g $e2e_stack_pid -f reface-fcgi)\" ]"
fi
check "stop leaves no process of the stack behind" stack_stop

e2e_summary e2e_spawn_fcgi
[ "$e2e_failed" -eq 0 ]
