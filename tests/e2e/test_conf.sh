#!/bin/sh
# End-to-end: the shipped deployment files. The systemd units pass
# `systemd-analyze verify`; the production nginx site (conf/nginx-site.conf,
# only its paths and ports changed, with a throwaway self-signed
# certificate) passes `nginx -t`, then serves for real in front of a
# worker: TLS, the redirect, the request id in both access logs, /metrics
# from loopback only, uploads rate limited with a JSON 429 while /health
# is not; and every shipped nginx file keeps fastcgi_read_timeout above
# the master's request_timeout. Run from the repo root.
set -u
. tests/e2e/lib.sh
HTTP_PORT=$(e2e_port 18085)
HTTPS_PORT=$(e2e_port 18086)
BASE=https://127.0.0.1:$HTTPS_PORT

work=$(mktemp -d /tmp/reface-conf.XXXXXX)
nginx_pid=
fcgi_pid=
cleanup() {
    [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null
    [ -n "$fcgi_pid" ] && kill -TERM "$fcgi_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
chmod 0755 "$work"

# --- systemd units ------------------------------------------------------------------
if command -v systemd-analyze > /dev/null; then
    # verify wants every ExecStart binary to exist: point the units at the
    # one just built, and change nothing else.
    mkdir "$work/units"
    for u in conf/reface.service conf/reface.socket conf/reface-spawn-fcgi.service; do
        sed "s|/usr/local/bin/reface-fcgi|$PWD/build/bin/reface-fcgi|" "$u" \
            > "$work/units/${u##*/}"
    done
    (cd "$work/units" && systemd-analyze verify ./reface.socket \
        ./reface.service ./reface-spawn-fcgi.service) > "$work/verify" 2>&1
    rc=$?
    sed 's/^/# /' "$work/verify"
    check "systemd-analyze verify: the three units, no warning" \
        sh -c "[ $rc -eq 0 ] && [ ! -s '$work/verify' ]"
    (cd "$work/units" && systemd-analyze security --offline=true \
        ./reface.service) > "$work/security" 2>&1
    echo "# $(grep 'Overall exposure level' "$work/security")"
else
    not_ok "systemd-analyze verify: NOT RUN, systemd-analyze is missing (scripts/install-deps.sh installs systemd)"
fi
unit=conf/reface.service
for line in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'User=reface' 'NoNewPrivileges=yes' \
    'ProtectSystem=strict' 'PrivateTmp=yes' 'MemoryMax=' 'KillMode=mixed'; do
    check "$unit has $line" grep -qF -- "$line" "$unit"
done
check "reface.socket listens where reface.service binds" \
    sh -c "grep -q '^ListenStream=/run/reface/reface.sock$' conf/reface.socket &&
        grep -q 'unix:/run/reface/reface.sock' conf/reface.service"

# --- request_timeout < fastcgi_read_timeout in every shipped config --------------
/usr/bin/python3 - conf/reface.conf conf/nginx-site.conf conf/nginx.conf.in \
    conf/reface-locations.conf <<'PY'
# The deadline of the master must fire before nginx gives up, or a stuck
# request is answered by nginx's timeout while its worker still runs.
# fastcgi_read_timeout inside "location = /ready" is exempt: /ready never
# runs a model.
import re, sys
conf, nginx_files = sys.argv[1], sys.argv[2:]
m = re.search(r'^\s*request_timeout\s*=\s*([0-9.]+)', open(conf).read(), re.M)
if not m:
    sys.exit("%s sets no request_timeout" % conf)
deadline = float(m.group(1))
errors, seen = [], 0
for path in nginx_files:
    text = re.sub(r'#.*', '', open(path).read())
    text = re.sub(r'location\s*=\s*/ready\s*\{[^}]*\}', '', text)
    for value, unit in re.findall(r'fastcgi_read_timeout\s+(\d+)(ms|s|m)?\s*;',
                                  text):
        secs = int(value) * {"ms": 0.001, "m": 60}.get(unit, 1)
        seen += path.endswith(("nginx-site.conf", "nginx.conf.in"))
        if secs <= deadline:
            errors.append("%s: fastcgi_read_timeout %s%s <= request_timeout %g"
                          % (path, value, unit, deadline))
    if path.endswith(("nginx-site.conf", "nginx.conf.in")) and \
            "fastcgi_read_timeout" not in text:
        errors.append("%s sets no fastcgi_read_timeout (nginx's default "
                      "is 60 s, keep it explicit)" % path)
print("# request_timeout %g s; %d server-level fastcgi_read_timeout checked"
      % (deadline, seen))
for e in errors:
    print("# " + e)
sys.exit(1 if errors else 0)
PY
check "request_timeout is below every fastcgi_read_timeout" [ $? -eq 0 ]

# --- the production site: nginx -t ----------------------------------------------
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
        -keyout "$work/key.pem" -out "$work/cert.pem" > /dev/null 2>&1; then
    not_ok "a self-signed certificate is generated"
fi
cp conf/reface-locations.conf "$work/reface-locations.conf"
sed -e "s|/etc/ssl/certs/reface.example.org.pem|$work/cert.pem|" \
    -e "s|/etc/ssl/private/reface.example.org.key|$work/key.pem|" \
    -e "s|/etc/nginx/snippets/reface-locations.conf|$work/reface-locations.conf|" \
    -e "s|unix:/run/reface/reface.sock|unix:$work/reface.sock|" \
    -e "s|/var/log/nginx/reface.access.log|$work/access.log|" \
    -e "s|^\( *\)listen 80;|\1listen 127.0.0.1:$HTTP_PORT;|" \
    -e "s|^\( *\)listen 443 ssl http2;|\1listen 127.0.0.1:$HTTPS_PORT ssl http2;|" \
    -e "/listen \[::\]:/d" \
    conf/nginx-site.conf > "$work/site.conf"
check "every deployment path of the site was replaced" \
    sh -c "! grep -E '/etc/ssl|/etc/nginx/snippets|/run/reface|/var/log|listen (80|443)' '$work/site.conf'"

user_line="# nginx runs as the invoking user"
user_flags=
if [ "$(id -u)" -eq 0 ]; then
    user_line="user www-data;"
    user_flags="--user www-data --group www-data"
fi
mkdir "$work/tmp"
[ "$(id -u)" -eq 0 ] && chown www-data "$work/tmp"
cat > "$work/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log notice;
events {
    worker_connections 64;
}
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $work/tmp/body;
    fastcgi_temp_path $work/tmp/fastcgi;
    proxy_temp_path $work/tmp/proxy;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/site.conf;
}
EOF
nginx -t -p "$work" -c "$work/nginx.conf" > "$work/nginx-t" 2>&1
rc=$?
sed 's/^/# /' "$work/nginx-t"
check "nginx -t accepts the production site" \
    sh -c "[ $rc -eq 0 ] && grep -q 'test is successful' '$work/nginx-t'"

# --- the production site, serving ---------------------------------------------
# shellcheck disable=SC2086
build/bin/reface-fcgi -c conf/reface.conf --socket "unix:$work/reface.sock" \
    --workers 1 $user_flags > "$work/fcgi.log" 2>&1 &
fcgi_pid=$!
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' > /dev/null 2>&1 &
nginx_pid=$!
up() {
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "$BASE/ready")" = 200 ]
}
check "the site serves /ready 200 over TLS" wait_until 60 up

request "$work/r" "http://127.0.0.1:$HTTP_PORT/health"
check "plain HTTP redirects to HTTPS" \
    sh -c "[ \"\$(cat '$work/r.status')\" = 301 ] && tr -d '\r' < '$work/r.headers' | grep -qi '^Location: https://'"

request "$work/p" -k -F "image=@images/ffhq_00064.jpg" "$BASE/predict"
check "predict 200 through the production site" [ "$(status_of "$work/p")" = 200 ]
rid=$(header_of "$work/p" X-Request-Id)
check "the client gets the request id" \
    sh -c "echo '$rid' | grep -Eq '^[0-9a-f]{32}$'"
check "nginx's access log has it, with the upstream" \
    wait_until 5 grep -q "\"POST /predict HTTP/[0-9.]*\" 200 .* id=$rid upstream=unix:" "$work/access.log"
check "the worker's access line has it (the FastCGI param)" \
    grep -q "access: POST /predict 200 .* id=$rid" "$work/fcgi.log"

request "$work/m" -k "$BASE/metrics"
check "/metrics from 127.0.0.1: 200" [ "$(status_of "$work/m")" = 200 ]
check "... Prometheus text" grep -q '^reface_requests_total{endpoint="/predict",status="200"} 1$' "$work/m.body"
request "$work/m2" -k --interface 127.0.0.2 "$BASE/metrics"
check "/metrics from 127.0.0.2: 403" [ "$(status_of "$work/m2")" = 403 ]
check "... JSON" [ "$(json_get "$work/m2.body" error)" = Forbidden ]

# 100 uploads' worth of requests on one connection, as fast as it goes:
# the first 21 (1 + burst 20) always pass; with 10 r/s refilled, some of
# the rest are refused unless the 100 took over 7.9 s.
mkdir "$work/burst.d"
curl -sk -o "$work/burst.d/#1" \
    -w '%{http_code} %{content_type} %header{x-request-id} %header{retry-after}\n' \
    "$BASE/predict?[1-100]" > "$work/burst" 2>/dev/null
passed=$(head -21 "$work/burst" | grep -c '^405 ')
limited=$(grep -c '^429 ' "$work/burst")
echo "# burst of 100 GET /predict: $(cut -d' ' -f1 "$work/burst" | sort | uniq -c | tr '\n' ' ')"
check "the first 21 uploads of a burst pass (the worker's 405)" [ "$passed" -eq 21 ]
check "the rest of the burst is rate limited ($limited x 429)" [ "$limited" -ge 1 ]
check "every 429 is JSON with its request id and Retry-After" \
    sh -c "! grep '^429 ' '$work/burst' | grep -Ev '^429 application/json [0-9a-f]{32} [0-9]+$'"
first=$(grep -n '^429 ' "$work/burst" | head -1 | cut -d: -f1)
check "a 429 says Too many requests" \
    [ "$(json_get "$work/burst.d/${first:-none}" error)" = "Too many requests" ]
curl -sk -o /dev/null -w '%{http_code}\n' "$BASE/health?[1-60]" \
    > "$work/hburst" 2>/dev/null
check "a burst of 60 /health is not limited" \
    sh -c "[ \$(grep -c '^200$' '$work/hburst') -eq 60 ]"

children="$(pgrep -P "$nginx_pid") $(pgrep -P "$fcgi_pid")"
kill -TERM "$nginx_pid" "$fcgi_pid"
wait "$nginx_pid" "$fcgi_pid" 2>/dev/null
all_gone() {
    for p in $nginx_pid $fcgi_pid $children; do
        kill -0 "$p" 2>/dev/null && return 1
    done
    return 0
}
check "nginx, the master and their children stop" wait_until 10 all_gone
nginx_pid=
fcgi_pid=

e2e_summary e2e_conf
[ "$e2e_failed" -eq 0 ]
