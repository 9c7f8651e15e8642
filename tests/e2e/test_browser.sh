#!/bin/sh
# End-to-end: the try-it page (web/) in a real browser. nginx serves the
# page's three files at fixed paths and nothing else; headless Debian
# chromium, driven by playwright-core (tests/e2e/browser/check_page.js),
# picks a sample photo, and what the page shows (ages, genders, emotion
# bars, boxes) must be what POST /predict answers for that photo. Saves a
# screenshot to build/browser/page.png. Run from the repo root.
set -u
. tests/e2e/lib.sh

E2E_PORT=$(e2e_port 18120)
E2E_BASE=http://127.0.0.1:$E2E_PORT
SHOT=build/browser/page.png
NODE_MODULES=build/node/node_modules
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
work=$(mktemp -d /tmp/reface-browser.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

# Missing tools are failures, not skips: scripts/install-deps.sh installs
# both, so their absence is a broken install.
check "chromium is installed ($CHROMIUM)" [ -x "$CHROMIUM" ]
check "playwright-core is installed in $NODE_MODULES" \
    [ -f "$NODE_MODULES/playwright-core/package.json" ]

if ! stack_start "$work/stack.log"; then
    not_ok "stack starts"
    e2e_summary e2e_browser
    exit 1
fi
ok "stack starts"

# --- what nginx serves -------------------------------------------------------
# json_error PREFIX STATUS MESSAGE: the reply is exactly the API's JSON error.
json_error() {
    [ "$(status_of "$1")" = "$2" ] &&
        [ "$(cat "$1.body")" = "{\"error\":\"$3\"}" ] &&
        [ "$(header_of "$1" Content-Type)" = application/json ]
}

request "$work/root" "$E2E_BASE/"
check "GET / is 200" [ "$(status_of "$work/root")" = 200 ]
check "GET / is HTML" \
    [ "$(header_of "$work/root" Content-Type)" = "text/html; charset=utf-8" ]
csp=$(header_of "$work/root" Content-Security-Policy)
case $csp in
    *"default-src 'none'"*"connect-src 'self'"*) ok "GET / has the CSP" ;;
    *) not_ok "GET / has the CSP" "$csp" ;;
esac
check "GET / is web/index.html" cmp -s "$work/root.body" web/index.html
check "GET / has a request id" [ -n "$(header_of "$work/root" X-Request-Id)" ]
request "$work/js" "$E2E_BASE/reface.js"
check "GET /reface.js is the script" cmp -s "$work/js.body" web/reface.js
check "reface.js is JavaScript" [ "$(header_of "$work/js" Content-Type)" = \
    "application/javascript; charset=utf-8" ]
request "$work/css" "$E2E_BASE/reface.css"
check "GET /reface.css is the style sheet" cmp -s "$work/css.body" web/reface.css
check "reface.css is CSS" [ "$(header_of "$work/css" Content-Type)" = text/css ]
request "$work/post" -X POST "$E2E_BASE/"
check "POST / is a JSON 405" json_error "$work/post" 405 "Method not allowed"
check "405 names the allowed methods" \
    [ "$(header_of "$work/post" Allow)" = "GET, HEAD" ]
check "405 has a request id" [ -n "$(header_of "$work/post" X-Request-Id)" ]
# Everything else stays the API's JSON 404, whatever the extension.
for p in /favicon.ico /index.htm /web/index.html /reface.jsx /.git/config; do
    request "$work/nf" "$E2E_BASE$p"
    check "GET $p is a JSON 404" json_error "$work/nf" 404 "Not found"
done

# --- the page in chromium ----------------------------------------------------
printf 'just some text, not an image\n' > "$work/not-an-image.jpg"
# A photo with no face in it: a plain grey picture.
/usr/bin/python3 -c '
import sys
from PIL import Image
Image.new("RGB", (320, 240), (128, 128, 128)).save(sys.argv[1])
' "$work/no-face.png"
# A phone-style JPEG: 256x200 pixels whose EXIF says "turn 90 degrees".
/usr/bin/python3 -c '
import sys
from PIL import Image
photo = Image.open(sys.argv[1]).crop((0, 0, 256, 200))
exif = Image.Exif()
exif[0x0112] = 6
photo.save(sys.argv[2], quality=92, exif=exif.tobytes())
' images/ffhq_00064.jpg "$work/exif-rotated.jpg"
rm -f "$SHOT"
# One face, the EXIF-rotated one, then the mosaic of five (the screenshot
# shows the last).
CHROMIUM=$CHROMIUM NODE_PATH=$NODE_MODULES \
    node tests/e2e/browser/check_page.js "$E2E_BASE" \
    "$work/not-an-image.jpg" "$work/no-face.png" "$SHOT" \
    images/ffhq_00064.jpg:1 "$work/exif-rotated.jpg:1" \
    images/mosaic_5faces.jpg:5 \
    > "$work/browser.out" 2>&1
rc=$?
cat "$work/browser.out"
e2e_passed=$((e2e_passed + $(grep -c '^ok ' "$work/browser.out")))
e2e_failed=$((e2e_failed + $(grep -c '^not ok ' "$work/browser.out")))
check "browser script exits 0" [ "$rc" -eq 0 ]
check "browser script made its checks" grep -q '^browser checks: [1-9]' \
    "$work/browser.out"
check "screenshot in $SHOT" [ -s "$SHOT" ]

check "stop leaves no process of the stack behind" stack_stop

e2e_summary e2e_browser
[ "$e2e_failed" -eq 0 ]
