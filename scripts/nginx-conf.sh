#!/bin/sh
# Writes the nginx config for a local Reface stack into RUNDIR/nginx.conf,
# from conf/nginx.conf.in. Used by `make run` and the end-to-end tests.
# usage: scripts/nginx-conf.sh RUNDIR PORT SOCKET_PATH [NGINX_USER]
set -eu

rundir=$1
port=$2
socket=$3
user=${4:-}
here=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$rundir"
for d in nginx-body nginx-fastcgi nginx-proxy nginx-uwsgi nginx-scgi; do
    mkdir -p "$rundir/$d"
    if [ -n "$user" ]; then
        chown "$user" "$rundir/$d"
    fi
done
cp "$here/conf/reface-locations.conf" "$rundir/reface-locations.conf"
# The page's files, copied so that nginx's user can read them wherever the
# checkout lives.
rm -rf "$rundir/web"
cp -R "$here/web" "$rundir/web"

user_line="# nginx runs as the invoking user"
if [ -n "$user" ]; then
    user_line="user $user;"
fi

sed -e "s|@RUNDIR@|$rundir|g" \
    -e "s|@PORT@|$port|g" \
    -e "s|@SOCKET@|$socket|g" \
    -e "s|@CONFDIR@|$rundir|g" \
    -e "s|@USER_LINE@|$user_line|g" \
    "$here/conf/nginx.conf.in" > "$rundir/nginx.conf"
