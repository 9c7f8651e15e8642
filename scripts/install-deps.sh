#!/bin/sh
# Installs every Debian package Reface needs, and nothing when all are present.
# Called by `make run`, `make test` and the other targets; safe to rerun.
set -eu

PACKAGES="
chromium fonts-dejavu-core
build-essential pkg-config curl ca-certificates openssl procps
libfcgi-dev libmagic-dev libstb-dev libjansson-dev libssl-dev libseccomp-dev
libturbojpeg0-dev libexif-dev
libtorch-dev python3-torch python3-numpy python3-pil
nginx-light spawn-fcgi systemd libfcgi-bin
clang-14 libclang-rt-14-dev valgrind wrk
python3-fastapi python3-uvicorn python3-multipart
"

# The browser test's npm packages (tests/e2e/browser/package-lock.json),
# installed by npm ci into build/node; never a browser download: the test
# drives Debian's chromium. Done again only when the lock file changes.
npm_dir=$(cd "$(dirname "$0")/.." && pwd)/build/node
npm_lock=$(dirname "$0")/../tests/e2e/browser/package-lock.json
if ! cmp -s "$npm_lock" "$npm_dir/package-lock.json" ||
    [ ! -d "$npm_dir/node_modules/playwright-core" ]; then
    echo "install-deps: npm ci into $npm_dir" >&2
    mkdir -p "$npm_dir"
    cp "$(dirname "$npm_lock")/package.json" "$npm_lock" "$npm_dir/"
    (cd "$npm_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
        npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
fi

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
