#!/bin/sh
# End-to-end: what reface.service and reface.socket rely on, without
# systemd as PID 1. systemd-socket-activate passes a listening socket the
# way a .socket unit does (the master must take it over its --socket), and
# a datagram socket stands in for $NOTIFY_SOCKET: READY=1 only once a
# worker has loaded the model, WATCHDOG=1 while one is ready, RELOADING=1
# then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM. Requests go
# straight to the FastCGI socket with cgi-fcgi. Last, a unix socket of the
# master's own, with its mode and group, and fast stops (SIGINT, SIGQUIT).
# Run from the repo root.
set -u
. tests/e2e/lib.sh

work=$(mktemp -d /tmp/reface-systemd.XXXXXX)
master=
listener=
cleanup() {
    [ -n "$master" ] && kill -KILL "$master" 2>/dev/null
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

for tool in systemd-socket-activate cgi-fcgi; do
    if ! command -v "$tool" > /dev/null; then
        not_ok "NOT RUN: $tool is missing (scripts/install-deps.sh installs systemd and libfcgi-bin)"
        e2e_summary e2e_systemd
        exit 1
    fi
done

# fcgi_get SOCKET PATH OUT: one GET over FastCGI; the raw answer in OUT.
fcgi_get() {
    env -i REQUEST_METHOD=GET DOCUMENT_URI="$2" SCRIPT_NAME="$2" \
        REQUEST_URI="$2" QUERY_STRING= REQUEST_ID=systemd-test \
        timeout 60 cgi-fcgi -bind -connect "$1" > "$3" 2>/dev/null
}

# The notify socket: every datagram, one line per assignment, stamped.
/usr/bin/python3 - "$work/notify.sock" "$work/notify.log" <<'PY' &
import datetime, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        data = s.recv(4096).decode()
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        for line in data.split("\n"):
            out.write("%s %s\n" % (stamp, line))
PY
listener=$!
check "the notify socket is up" wait_until 10 test -S "$work/notify.sock"

# systemd-socket-activate starts the master on the first connection, with
# the socket on fd 3; the --socket given must then be ignored.
# (It passes on only the environment given with -E.)
systemd-socket-activate -l "$work/act.sock" \
    -E "NOTIFY_SOCKET=$work/notify.sock" -E WATCHDOG_USEC=1000000 \
    build/bin/reface-fcgi -c conf/reface.conf --workers 1 \
    --socket "unix:$work/ignored.sock" > "$work/fcgi.log" 2>&1 &
master=$!
check "systemd-socket-activate listens" wait_until 10 test -S "$work/act.sock"
fcgi_get "$work/act.sock" /health "$work/h"
check "the first request starts the master and is answered 200" \
    grep -q '^Status: 200' "$work/h"
model_name=$(/usr/bin/python3 -c 'import json; print(json.load(open("models/reface.json"))["name"])')
check "it names the model ($model_name)" grep -q "\"model\":\"$model_name\"" "$work/h"
check "the master took the socket systemd passed" \
    grep -q "listening on systemd socket fd 3" "$work/fcgi.log"
check "... and made it close-on-exec" \
    sh -c "sed -n 's/^flags:\t//p' /proc/$master/fdinfo/3 | grep -q '^02'"
check "... and did not bind its --socket" [ ! -e "$work/ignored.sock" ]

# The master sees a worker ready at its next tick (a quarter second), so
# READY=1 may come just after that worker's first answer.
check "READY=1 is sent" wait_until 10 grep -q ' READY=1$' "$work/notify.log"
loaded=$(grep -m1 'model: loaded' "$work/fcgi.log" | cut -d' ' -f1)
ready=$(grep -m1 ' READY=1$' "$work/notify.log" | cut -d' ' -f1)
check "... not before a worker had loaded the model ($loaded <= $ready)" \
    sh -c "[ -n '$loaded' ] && ! [ '$ready' \\< '$loaded' ]"
check "STATUS says serving" grep -q ' STATUS=serving$' "$work/notify.log"
check "WATCHDOG=1 is sent every half WATCHDOG_USEC" \
    wait_until 10 sh -c "[ \$(grep -c ' WATCHDOG=1$' '$work/notify.log') -ge 3 ]"

kill -HUP "$master"
check "SIGHUP: RELOADING=1" wait_until 10 grep -q ' RELOADING=1$' "$work/notify.log"
check "... then READY=1 once the new worker serves" \
    wait_until 60 grep -q ' STATUS=reload done$' "$work/notify.log"
check "... after RELOADING=1" \
    sh -c "grep -n 'RELOADING=1\|STATUS=reload done' '$work/notify.log' | head -1 | grep -q RELOADING"
fcgi_get "$work/act.sock" /ready "$work/r"
check "/ready 200 after the reload" grep -q '^Status: 200' "$work/r"
check "... generation 2" grep -q '"generation":2' "$work/r"

kill -TERM "$master"
check "SIGTERM: STOPPING=1" wait_until 10 grep -q ' STOPPING=1$' "$work/notify.log"
check "the master exits" wait_until 30 sh -c "! kill -0 $master 2>/dev/null"
wait "$master"
rc=$?
master=
check "... with code 0" [ "$rc" -eq 0 ]
check "the socket systemd made is left to it" [ -S "$work/act.sock" ]

# --- a unix socket of our own: mode and group -----------------------------------
group=$(id -gn)
[ "$(id -u)" -eq 0 ] && group=www-data
build/bin/reface-fcgi -c conf/reface.conf --workers 1 \
    --socket "unix:$work/own.sock" --socket-mode 0640 \
    --socket-group "$group" > "$work/own.log" 2>&1 &
master=$!
check "the master binds its own unix socket" wait_until 10 test -S "$work/own.sock"
check "with socket_mode 0640 and socket_group $group" \
    [ "$(stat -c '%a %G' "$work/own.sock")" = "640 $group" ]
kill -INT "$master"
check "SIGINT: a fast stop" wait_until 30 sh -c "! kill -0 $master 2>/dev/null"
master=
check "... that removes the socket it bound" [ ! -e "$work/own.sock" ]
# The same stop sent the instant the socket exists, three times: the master
# holds its signals from the start of main(), so none is lost in the window
# before its loop (a background job of sh starts with SIGINT ignored; a
# SIGINT there was once dropped and the master ran on).
for try in 1 2 3; do
    build/bin/reface-fcgi -c conf/reface.conf --workers 1 \
        --socket "unix:$work/early.sock" > "$work/early.log" 2>&1 &
    master=$!
    until [ -S "$work/early.sock" ] || ! kill -0 "$master" 2>/dev/null; do
        sleep 0.01
    done
    kill -INT "$master"
    check "SIGINT the instant the socket exists ($try): the master stops" \
        wait_until 30 sh -c "! kill -0 $master 2>/dev/null"
    # If it did not stop, its worker must not outlive the test either.
    pkill -KILL -P "$master" 2>/dev/null
    kill -KILL "$master" 2>/dev/null
    wait "$master"
    master=
    rm -f "$work/early.sock"
done
# A master killed outright takes its workers with it (the kernel sends
# them SIGTERM), instead of leaving them on the socket.
build/bin/reface-fcgi -c conf/reface.conf --workers 2 \
    --socket "unix:$work/orphan.sock" > "$work/orphan.log" 2>&1 &
master=$!
check "SIGKILL: two workers start" wait_until 30 \
    sh -c "[ \$(pgrep -c -P $master) -eq 2 ]"
workers=$(pgrep -P "$master" | tr '\n' ' ')
kill -KILL "$master"
wait "$master"
master=
check "... and leave when their master is killed ($workers)" \
    wait_until 30 sh -c "for w in $workers; do kill -0 \$w 2>/dev/null && exit 1; done; exit 0"
for w in $workers; do kill -KILL "$w" 2>/dev/null; done
rm -f "$work/orphan.sock"
build/bin/reface-fcgi -c conf/reface.conf --workers 1 \
    --socket "unix:$work/own.sock" > "$work/quit.log" 2>&1 &
master=$!
check "SIGQUIT: a worker is started" \
    wait_until 10 grep -q "started worker" "$work/quit.log"
kill -QUIT "$master"
check "SIGQUIT: a fast stop too" wait_until 30 sh -c "! kill -0 $master 2>/dev/null"
wait "$master"
rc=$?
master=
check "... with code 0, its worker killed" \
    sh -c "[ $rc -eq 0 ] && grep -q 'Quit: fast stop' '$work/quit.log' && grep -q 'killed by signal 9' '$work/quit.log'"

e2e_summary e2e_systemd
[ "$e2e_failed" -eq 0 ]
