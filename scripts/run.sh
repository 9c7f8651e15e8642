#!/bin/sh
# `make run`: the workers and nginx in the foreground on
# http://127.0.0.1:${PORT:-8080}. Ctrl-C (or SIGTERM) stops both and leaves
# no process behind. As root, both run as www-data and the run state lives
# in a fresh folder under /tmp (www-data cannot enter /root); otherwise
# everything runs as you, under build/run.
set -eu

port=${PORT:-8080}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [ "$(id -u)" -eq 0 ]; then
    rundir=$(mktemp -d /tmp/reface-run.XXXXXX)
    chmod 0755 "$rundir"
    run_user=www-data
    user_flags="--user www-data --group www-data"
else
    rundir=$here/build/run
    mkdir -p "$rundir"
    run_user=
    user_flags=
fi
socket=$rundir/reface.sock

scripts/nginx-conf.sh "$rundir" "$port" "$socket" "$run_user"
nginx -t -q -p "$rundir" -c "$rundir/nginx.conf" -g 'daemon off;'

# REFACE_FLAGS: extra reface-fcgi flags (the tests' knobs), e.g.
# REFACE_FLAGS="--workers 1 --max-requests 5".
extra_flags=${REFACE_FLAGS:-}
# REFACE_BIN: another build of the server, e.g. build/san/bin/reface-fcgi.
bin=$here/${REFACE_BIN:-build/bin/reface-fcgi}
fcgi_pid=
nginx_pid=
stop() {
    trap - INT TERM EXIT
    [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null || true
    [ -n "$fcgi_pid" ] && kill -TERM "$fcgi_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    case $rundir in /tmp/reface-run.*) rm -rf "$rundir" ;; esac
}
trap stop INT TERM EXIT

if [ "${SPAWN_FCGI:-0}" = 1 ]; then
    # The deployment of conf/reface-spawn-fcgi.service: spawn-fcgi binds
    # the socket and execs reface-fcgi with it on fd 0.
    # As root, reface-fcgi reads the model and then drops to www-data
    # itself (the repo may sit where www-data cannot read, e.g. /root).
    spawn_owner=
    if [ -n "$run_user" ]; then
        spawn_owner="-U $run_user -G $run_user"
    fi
    # shellcheck disable=SC2086
    spawn-fcgi -n -s "$socket" -M 0660 $spawn_owner -- \
        "$bin" -c conf/reface.conf $user_flags \
        $extra_flags &
else
    # shellcheck disable=SC2086
    "$bin" -c conf/reface.conf --socket "unix:$socket" \
        $user_flags $extra_flags &
fi
fcgi_pid=$!

# Wait for the socket: the master binds it before forking workers.
i=0
while [ ! -S "$socket" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$fcgi_pid" 2>/dev/null; then
        echo "run: reface-fcgi did not start; see its log above" >&2
        exit 1
    fi
    sleep 0.1
done

nginx -p "$rundir" -c "$rundir/nginx.conf" -g 'daemon off;' &
nginx_pid=$!

echo "run: serving on http://127.0.0.1:$port (Ctrl-C to stop)" >&2
echo "run: try: curl -F image=@images/ffhq_00064.jpg http://127.0.0.1:$port/predict" >&2
echo "run: or open http://127.0.0.1:$port/ in a browser" >&2

# Whichever stops first, stop the other.
while kill -0 "$fcgi_pid" 2>/dev/null && kill -0 "$nginx_pid" 2>/dev/null; do
    sleep 0.5
done
echo "run: a process exited; stopping" >&2
