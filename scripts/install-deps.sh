#!/bin/sh
# Installs every Debian package Reface needs, and nothing when all are present.
# Called by `make run`, `make test` and the other targets; safe to rerun.
set -eu

PACKAGES="
build-essential pkg-config curl ca-certificates openssl procps
libfcgi-dev libmagic-dev libstb-dev libjansson-dev libssl-dev libseccomp-dev
libtorch-dev python3-torch python3-numpy python3-pil
nginx-light spawn-fcgi libfcgi-bin
clang-14 libclang-rt-14-dev valgrind wrk
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
        grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi

echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
