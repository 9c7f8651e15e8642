#!/bin/sh
# End-to-end: scale-out with nginx as the load balancer. Two backends, each
# a master with its workers on its own loopback address over TCP
# (127.0.0.2 and 127.0.0.3, standing for two hosts), behind one nginx whose
# upstream block has the production site's settings (least_conn,
# max_fails=3, fail_timeout=10s, fastcgi_next_upstream error timeout).
# Two clients send a bounded stream of /predict; mid-stream backend A's
# master and all its workers are SIGKILLed. Every request started a second
# after the kill must succeed and come from backend B; the requests that
# failed during the kill are counted and explained. Run from the repo root.
set -u
. tests/e2e/lib.sh
E2E_PORT=$(e2e_port 18087)
E2E_BASE=http://127.0.0.1:$E2E_PORT
PORT_A=$(e2e_port 19001)
PORT_B=$(e2e_port 19002)
ADDR_A=127.0.0.2:$PORT_A
ADDR_B=127.0.0.3:$PORT_B
PER_CLIENT=${SCALEOUT_REQUESTS:-60}
KILL_AFTER=${SCALEOUT_KILL_AFTER:-40}

work=$(mktemp -d /tmp/reface-scaleout.XXXXXX)
pid_a=
pid_b=
nginx_pid=
cleanup() {
    for p in $pid_a $pid_b; do
        kill -KILL "-$p" 2>/dev/null
    done
    [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
chmod 0755 "$work"
photo=images/ffhq_00064.jpg

user_line="# nginx runs as the invoking user"
user_flags=
if [ "$(id -u)" -eq 0 ]; then
    user_line="user www-data;"
    user_flags="--user www-data --group www-data"
fi

# Each backend in its own process group (setsid), as if on its own host.
# shellcheck disable=SC2086
setsid build/bin/reface-fcgi -c conf/reface.conf --socket "$ADDR_A" \
    --workers 1 $user_flags > "$work/a.log" 2>&1 &
pid_a=$!
# shellcheck disable=SC2086
setsid build/bin/reface-fcgi -c conf/reface.conf --socket "$ADDR_B" \
    --workers 1 $user_flags > "$work/b.log" 2>&1 &
pid_b=$!

mkdir "$work/tmp"
[ "$(id -u)" -eq 0 ] && chown www-data "$work/tmp"
cp conf/reface-locations.conf "$work/"
cat > "$work/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log notice;
events {
    worker_connections 256;
}
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path $work/tmp/body;
    fastcgi_temp_path $work/tmp/fastcgi;
    proxy_temp_path $work/tmp/proxy;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;

    # As conf/nginx-site.conf, with two hosts.
    upstream reface_workers {
        least_conn;
        server $ADDR_A max_fails=3 fail_timeout=10s;
        server $ADDR_B max_fails=3 fail_timeout=10s;
    }

    server {
        listen 127.0.0.1:$E2E_PORT;
        fastcgi_connect_timeout 2s;
        fastcgi_read_timeout 60s;
        fastcgi_next_upstream error timeout;
        fastcgi_next_upstream_tries 3;
        fastcgi_next_upstream_timeout 10s;
        # For the test: which backend answered.
        add_header X-Upstream \$upstream_addr always;
        include $work/reface-locations.conf;
    }
}
EOF
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' > /dev/null 2>&1 &
nginx_pid=$!

# both_ready: each backend has answered /ready (nginx spreads the polls).
both_ready() {
    curl -s -o /dev/null -D "$work/rh" "$E2E_BASE/ready" > /dev/null 2>&1
    up=$(tr -d '\r' < "$work/rh" | sed -n 's/^X-Upstream: //p')
    if grep -q '^HTTP/1.1 200' "$work/rh"; then
        case $up in *"$ADDR_A") touch "$work/ready_a" ;; esac
        case $up in *"$ADDR_B") touch "$work/ready_b" ;; esac
    fi
    [ -f "$work/ready_a" ] && [ -f "$work/ready_b" ]
}
check "both backends answer through nginx" wait_until 60 both_ready

# client N: PER_CLIENT requests, one line each:
# start end status upstream error
client() {
    i=0
    while [ $i -lt "$PER_CLIENT" ]; do
        t0=$(date +%s.%N)
        out=$(curl -s -o "$work/c$1.body" \
            -w '%{http_code} %header{x-upstream}' \
            -F "image=@$photo" "$E2E_BASE/predict" 2>/dev/null)
        t1=$(date +%s.%N)
        err=-
        case $out in 200*) ;; *) err=$(tr -d '\n' < "$work/c$1.body") ;; esac
        # The upstream list has ", " between tries: keep it one field.
        set -- "$1" "$(echo "$out" | cut -d' ' -f1)" \
            "$(echo "$out" | cut -d' ' -f2- | tr -d ' ')"
        echo "$t0 $t1 $2 ${3:--} $err" >> "$work/client$1"
        i=$((i + 1))
    done
}
: > "$work/client1"
: > "$work/client2"
client 1 &
c1=$!
client 2 &
c2=$!

# The kill: once KILL_AFTER requests are done, backend A's master and every
# worker of it, at once (its process group).
done_count() {
    [ "$(cat "$work/client1" "$work/client2" | wc -l)" -ge "$KILL_AFTER" ]
}
wait_until 120 done_count
a_procs=$(pgrep -g "$pid_a" | tr '\n' ' ')
log_lines=$(wc -l < "$work/error.log")
kill_at=$(date +%s.%N)
kill -KILL "-$pid_a"
wait "$c1" "$c2"
check "backend A's master and workers ($a_procs) are all gone" \
    sh -c "! pgrep -g $pid_a > /dev/null"

/usr/bin/python3 - "$kill_at" "$ADDR_A" "$ADDR_B" "$work/client1" \
    "$work/client2" "$work/error.log" "$log_lines" <<'PY'
# Splits the stream at the kill and checks it. Prints the figures the
# README quotes.
import sys
kill_at, addr_a, addr_b = float(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = []
for path in sys.argv[4:6]:
    for line in open(path):
        t0, t1, status, upstream, err = line.split(" ", 4)
        rows.append((float(t0), float(t1), status, upstream, err.strip()))
rows.sort()
before = [r for r in rows if r[1] < kill_at]
during = [r for r in rows if r[0] < kill_at <= r[1]]
after = [r for r in rows if r[0] >= kill_at]
settled = [r for r in after if r[0] >= kill_at + 1.0]
failed = [r for r in rows if r[2] != "200"]
errors = []
served = lambda rs, a: sum(1 for r in rs if r[2] == "200"
                           and r[3].split(",")[-1] == a)
if not (served(before, addr_a) and served(before, addr_b)):
    errors.append("before the kill both backends should serve: A %d, B %d"
                  % (served(before, addr_a), served(before, addr_b)))
if any(r[2] != "200" for r in before):
    errors.append("a request failed before the kill")
bad = [r for r in settled if r[2] != "200" or r[3].split(",")[-1] != addr_b]
if bad:
    errors.append("%d requests started 1 s after the kill failed or did not "
                  "come from B: %s" % (len(bad), bad[:3]))
if len(settled) < 10:
    errors.append("only %d requests after the failover window"
                  % len(settled))
retried = sum(1 for r in after if "," in r[3])
first_ok = min((r[1] for r in after if r[2] == "200"), default=None)
print("# %d requests: %d finished before the kill, %d in flight at it, "
      "%d started after it (%d of them 1 s or more after)"
      % (len(rows), len(before), len(during), len(after), len(settled)))
print("# failed: %d (%s)" % (len(failed), ", ".join(
    "%s %s from %s" % (r[2], r[4], r[3]) for r in failed) or "none"))
print("# after the kill: %d of %d answered 200, all by %s: %s; %d tried A "
      "first (refused) and were passed on to B"
      % (sum(1 for r in after if r[2] == "200"), len(after), addr_b,
         "yes" if not bad else "no", retried))
if first_ok is not None:
    print("# first success after the kill: %.0f ms after it"
          % ((first_ok - kill_at) * 1e3))
reasons = {}
for line in open(sys.argv[6]).readlines()[int(sys.argv[7]):]:
    for key in ("prematurely closed", "Connection refused",
                "Connection reset", "timed out"):
        if key in line and "upstream" in line:
            reasons[key] = reasons.get(key, 0) + 1
print("# nginx's error log since the kill: %s" % (", ".join(
    "%s x%d" % kv for kv in sorted(reasons.items())) or "nothing"))
for e in errors:
    print("# " + e)
sys.exit(1 if errors else 0)
PY
check "after the failover window every request succeeds, served by B" [ $? -eq 0 ]

request "$work/p" -F "image=@$photo" "$E2E_BASE/predict"
check "a request after the stream: 200 from B" \
    sh -c "[ \"\$(cat '$work/p.status')\" = 200 ] && [ \"\$(tr -d '\r' < '$work/p.headers' | sed -n 's/^X-Upstream: //p')\" = '$ADDR_B' ]"
check "backend B never lost a worker" sh -c "! grep -q 'respawning' '$work/b.log'"

e2e_summary e2e_scaleout
[ "$e2e_failed" -eq 0 ]
