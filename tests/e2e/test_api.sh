#!/bin/sh
# End-to-end: the real workers behind a real nginx on loopback, real
# requests with curl. Every endpoint, every error of the API, the samples in
# images/, a 10 MB+ body, and an /images round trip. Run from the repo root.
set -u
. tests/e2e/lib.sh

work=$(mktemp -d /tmp/reface-e2e.XXXXXX)
trap 'stack_stop; rm -rf "$work"' EXIT INT TERM

if ! stack_start "$work/stack.log"; then
    not_ok "stack starts"
    e2e_summary e2e_api
    exit 1
fi
ok "stack starts"
pids_before=$(stack_fcgi_pids)

# --- /health ---------------------------------------------------------------
request "$work/h" "$E2E_BASE/health"
check "health 200" [ "$(status_of "$work/h")" = 200 ]
check "health status ok" [ "$(json_get "$work/h.body" status)" = ok ]
# The served model is the one conf/reface.conf names (what run.sh reads);
# its card says the name and the emotion labels the API must report.
served=$(sed -n 's/^model *= *//p' conf/reface.conf)
card=${served%.pt}.json
card_name=$(json_get "$card" name)
check "health names the model of the card" \
    [ "$(json_get "$work/h.body" model)" = "${card_name:-(no card)}" ]
check "health lists the card's emotion labels" /usr/bin/python3 -c '
import json, sys
h = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
sys.exit(0 if h["emotion_labels"] == c["emotion_labels"] else 1)' \
    "$work/h.body" "$card"
request "$work/hh" -I "$E2E_BASE/health"
check "HEAD health 200" [ "$(status_of "$work/hh")" = 200 ]

# --- /predict on every sample ----------------------------------------------
# expected: file, gender_name, age low, age high (the labels with the
# model's known error: see README "Accuracy"), query. The 48x48 FER+ face
# fills its whole frame, where the detector finds nothing: it is sent as a
# pre-aligned face, detect=false.
while IFS=, read -r file gender lo hi query; do
    request "$work/p" -F "image=@images/$file" "$E2E_BASE/predict?$query"
    check "predict $file 200" [ "$(status_of "$work/p")" = 200 ]
    check "predict $file is JSON" \
        [ "$(header_of "$work/p" Content-Type)" = application/json ]
    /usr/bin/python3 - "$work/p.body" "$gender" "$lo" "$hi" "$card" <<'PY'
import json, sys
body, gender, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = json.load(open(body))
labels = json.load(open(sys.argv[5]))["emotion_labels"]
errors = []
keys = ["face_detected", "image", "age", "gender", "gender_name",
        "gender_probability", "emotion", "emotion_confidence", "emotions",
        "faces"]
if list(r) != keys:
    errors.append("keys %s, expected %s" % (list(r), keys))
elif not r["faces"]:
    errors.append("no face")
else:
    face = dict(r["faces"][0])
    for k in ("box", "score"):
        face.pop(k, None)
    if face != {k: r[k] for k in keys[2:9]}:
        errors.append("top-level fields are not faces[0]'s")
if not errors:
    if not lo <= r["age"] <= hi:
        errors.append("age %s not in [%s, %s]" % (r["age"], lo, hi))
    if round(r["age"], 1) != r["age"]:
        errors.append("age has more than one decimal")
    if gender != "-" and r["gender_name"] != gender:
        errors.append("gender %s, expected %s" % (r["gender_name"], gender))
    if r["gender"] != (1 if r["gender_name"] == "male" else 0):
        errors.append("gender code disagrees with gender_name")
    if (r["gender_probability"] >= 0.5) != (r["gender"] == 1):
        errors.append("gender_probability is not P(male)")
    probs = list(r["emotions"].values())
    if sorted(probs, reverse=True) != probs:
        errors.append("emotions not most likely first")
    if abs(sum(probs) - 1) > 1e-3:
        errors.append("emotions sum to %g" % sum(probs))
    if list(r["emotions"])[0] != r["emotion"] or probs[0] != r["emotion_confidence"]:
        errors.append("emotion is not the top of emotions")
    if sorted(r["emotions"]) != sorted(labels):
        errors.append("labels %s are not the model card's %s"
                      % (sorted(r["emotions"]), sorted(labels)))
print("; ".join(errors))
sys.exit(1 if errors else 0)
PY
    if [ $? -eq 0 ]; then ok "predict $file fields"; else not_ok "predict $file fields"; fi
done <<'CASES'
ffhq_00064.jpg,male,17,31,
ffhq_00162.jpg,female,20,45,
utkface_12dc068b2d.jpg,female,25,45,
ferplus_fer0028735.png,-,0,100,detect=false
CASES

# --- several faces ----------------------------------------------------------
# images/mosaic_5faces.jpg: five dev faces in a 3x2 grid of 200 px cells,
# the sixth cell a plain gradient (images/README.md).
request "$work/m" -F "image=@images/mosaic_5faces.jpg" "$E2E_BASE/predict"
check "mosaic 200" [ "$(status_of "$work/m")" = 200 ]
check "mosaic: five faces, one per face cell, largest first" \
    /usr/bin/python3 - "$work/m.body" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
faces = r["faces"]
cells = sorted(((f["box"]["x"] + f["box"]["width"] // 2) // 200
                + 3 * ((f["box"]["y"] + f["box"]["height"] // 2) // 200))
               for f in faces)
areas = [f["box"]["width"] * f["box"]["height"] for f in faces]
ok = (r["face_detected"] is True and r["image"] == {"width": 600, "height": 400}
      and cells == [0, 1, 2, 3, 4] and areas == sorted(areas, reverse=True)
      and all(0.5 < f["score"] <= 1 for f in faces)
      and r["age"] == faces[0]["age"])
if not ok:
    print(json.dumps(r)[:600])
sys.exit(0 if ok else 1)
PY
request "$work/m3" -F "image=@images/mosaic_5faces.jpg" "$E2E_BASE/predict?max_faces=3"
check "max_faces=3 caps the mosaic at three" \
    [ "$(json_get "$work/m3.body" faces | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 3 ]
request "$work/mw" -F "image=@images/mosaic_5faces.jpg" "$E2E_BASE/predict?detect=false"
check "detect=false: one face, the whole image, face_detected false" \
    /usr/bin/python3 - "$work/mw.body" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = r["faces"]
sys.exit(0 if r["face_detected"] is False and len(f) == 1
         and f[0]["box"] == {"x": 0, "y": 0, "width": 600, "height": 400}
         and f[0]["score"] is None and "age" in r else 1)
PY

# A large JPEG is decoded at the scale its path needs: the mosaic at three
# times its size (1800x1200) keeps a shorter side of at least 1024 for the
# detector (full size here), and 280 for the centred crop alone (1/4:
# 450x300). A drawn reply shows the photo, so it keeps the larger decode.
/usr/bin/python3 -c '
import sys
from PIL import Image
Image.open(sys.argv[1]).resize((1800, 1200), Image.BILINEAR).save(sys.argv[2], quality=90)
' images/mosaic_5faces.jpg "$work/big.jpg"
request "$work/bd" -F "image=@$work/big.jpg" "$E2E_BASE/predict"
check "large JPEG, detection: decoded whole, five faces" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["image"] == {"width": 1800, "height": 1200}
         and len(r["faces"]) == 5 else 1)' "$work/bd.body"
request "$work/bw" -F "image=@$work/big.jpg" "$E2E_BASE/predict?detect=false"
check "large JPEG, detect=false: decoded at 1/4" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["image"] == {"width": 450, "height": 300}
         and r["faces"][0]["box"] == {"x": 0, "y": 0, "width": 450, "height": 300}
         else 1)' "$work/bw.body"
request "$work/bi" -F "image=@$work/big.jpg" "$E2E_BASE/images?detect=false&draw=true"
check "large JPEG, detect=false, draw=true: the PNG at full size" /usr/bin/python3 -c '
import sys
from PIL import Image
sys.exit(0 if Image.open(sys.argv[1]).size == (1800, 1200) else 1)' "$work/bi.body"

# A plain gradient (PNG written here): no face.
/usr/bin/python3 - "$work/gradient.png" <<'PY'
import struct, sys, zlib
w, h = 320, 240
raw = b"".join(b"\0" + bytes(v for x in range(w)
                              for v in (60 + x // 4, 90 + y // 3, 150))
               for y in range(h))
def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
PY
request "$work/g" -F "image=@$work/gradient.png" "$E2E_BASE/predict"
check "no face: 200" [ "$(status_of "$work/g")" = 200 ]
check "no face: face_detected false, faces empty, no prediction" \
    [ "$(cat "$work/g.body")" = '{"face_detected":false,"image":{"width":320,"height":240},"faces":[]}' ]

# Several image parts: one answer each, in order, errors included.
printf 'not a picture\n' > "$work/words.txt"
request "$work/s" -F "image=@images/mosaic_5faces.jpg" -F "image=@$work/words.txt" \
    -F "image=@$work/gradient.png" "$E2E_BASE/predict"
check "several images: a list of three answers" \
    /usr/bin/python3 - "$work/s.body" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
a, b, c = r["images"]
sys.exit(0 if list(r) == ["images"] and len(a["faces"]) == 5
         and b == {"error": "Unsupported image format", "status": 415}
         and c["face_detected"] is False else 1)
PY

expect_query_error() {
    request "$work/q" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/$1"
    check "$1 is 400" [ "$(status_of "$work/q")" = 400 ]
    check "$1 names the parameter" \
        [ "$(json_get "$work/q.body" error)" = "Invalid query parameter: $2" ]
}
expect_query_error "predict?max_faces=0" max_faces
expect_query_error "predict?max_faces=51" max_faces
expect_query_error "predict?min_face=-3" min_face
expect_query_error "predict?detect=perhaps" detect
expect_query_error "images?draw=2" draw

# /images: the box headers, and draw=true.
request "$work/im" -F "image=@images/mosaic_5faces.jpg" "$E2E_BASE/images"
check "images: X-Prediction-Faces 5" [ "$(header_of "$work/im" X-Prediction-Faces)" = 5 ]
box=$(/usr/bin/python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["faces"][0]["box"]; print("%d,%d,%d,%d" % (b["x"], b["y"], b["width"], b["height"]))' "$work/m.body")
check "images: X-Prediction-Box is the largest face" \
    [ "$(header_of "$work/im" X-Prediction-Box)" = "$box" ]
check "images: still the upload byte for byte" cmp -s "$work/im.body" images/mosaic_5faces.jpg
request "$work/d" -F "image=@images/mosaic_5faces.jpg" "$E2E_BASE/images?draw=true"
check "draw=true: 200 image/png" \
    [ "$(status_of "$work/d"):$(header_of "$work/d" Content-Type)" = "200:image/png" ]
check "draw=true: a 600x400 PNG, with the same headers" \
    /usr/bin/python3 - "$work/d.body" "$(header_of "$work/d" X-Prediction-Box)" "$box" <<'PY'
import struct, sys
png = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", png[16:24])
sys.exit(0 if png[:8] == b"\x89PNG\r\n\x1a\n" and (w, h) == (600, 400)
         and sys.argv[2] == sys.argv[3] else 1)
PY
mkdir -p build
cp "$work/d.body" build/e2e_draw.png

# --- /images round trip ------------------------------------------------------
request "$work/i" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/images"
check "images 200" [ "$(status_of "$work/i")" = 200 ]
check "images returns the upload byte for byte" cmp -s "$work/i.body" images/ffhq_00064.jpg
check "images Content-Type from libmagic" \
    [ "$(header_of "$work/i" Content-Type)" = image/jpeg ]
request "$work/p" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "X-Prediction-Age equals the JSON age" \
    [ "$(header_of "$work/i" X-Prediction-Age)" = "$(json_get "$work/p.body" age)" ]
check "X-Prediction-Gender equals gender_name" \
    [ "$(header_of "$work/i" X-Prediction-Gender)" = "$(json_get "$work/p.body" gender_name)" ]
check "X-Prediction-Gender-Code equals gender" \
    [ "$(header_of "$work/i" X-Prediction-Gender-Code)" = "$(json_get "$work/p.body" gender)" ]
check "X-Prediction-Gender-Probability equals gender_probability" \
    [ "$(header_of "$work/i" X-Prediction-Gender-Probability)" = "$(json_get "$work/p.body" gender_probability)" ]
check "X-Prediction-Emotion equals emotion" \
    [ "$(header_of "$work/i" X-Prediction-Emotion)" = "$(json_get "$work/p.body" emotion)" ]
check "X-Prediction-Emotion-Confidence equals emotion_confidence" \
    [ "$(header_of "$work/i" X-Prediction-Emotion-Confidence)" = "$(json_get "$work/p.body" emotion_confidence)" ]
emotions_header=$(header_of "$work/i" X-Prediction-Emotions)
check "X-Prediction-Emotions equals emotions" /usr/bin/python3 -c '
import json, sys
a = json.loads(sys.argv[1]); b = json.load(open(sys.argv[2]))["emotions"]
sys.exit(0 if list(a.items()) == list(b.items()) else 1)' "$emotions_header" "$work/p.body"
request "$work/ip" -F "image=@images/ferplus_fer0028735.png" "$E2E_BASE/images"
check "images PNG round trip" cmp -s "$work/ip.body" images/ferplus_fer0028735.png
check "images PNG Content-Type" [ "$(header_of "$work/ip" Content-Type)" = image/png ]

# --- errors ------------------------------------------------------------------
# expect_error NAME STATUS MESSAGE CURL-ARGS...
expect_error() {
    name=$1 want_status=$2 want_message=$3
    shift 3
    request "$work/e" "$@"
    got=$(status_of "$work/e")
    msg=$(json_get "$work/e.body" error)
    keys=$(/usr/bin/python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))))' "$work/e.body" 2>/dev/null)
    if [ "$got" = "$want_status" ] && [ "$msg" = "$want_message" ] &&
       [ "$keys" = error ] &&
       [ "$(header_of "$work/e" Content-Type)" = application/json ]; then
        ok "$name"
    else
        not_ok "$name" "status $got, body $(head -c 200 "$work/e.body")"
    fi
}

printf 'just some text, not an image\n' > "$work/text.jpg"
head -c 300 images/ffhq_00064.jpg > "$work/truncated.jpg"
# Valid PNG signatures and IHDRs claiming 8000 x 8000 pixels (over our
# 40 Mpx cap) and 30000 x 30000 (over stb's own 1 GiB limit as well).
for side in 8000 30000; do
/usr/bin/python3 - "$work/huge$side.png" $side <<'PY'
import struct, sys, zlib
side = int(sys.argv[2])
ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
chunk = b"IHDR" + ihdr
png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
open(sys.argv[1], "wb").write(png + b"\0" * 64)
PY
done
head -c 11000000 /dev/zero > "$work/big.bin"

expect_error "GET /predict is 405" 405 "Method not allowed" "$E2E_BASE/predict"
check "405 names the allowed method" [ "$(header_of "$work/e" Allow)" = POST ]
expect_error "GET /images is 405" 405 "Method not allowed" "$E2E_BASE/images"
expect_error "POST /health is 405" 405 "Method not allowed" -X POST "$E2E_BASE/health"
expect_error "unknown path is 404" 404 "Not found" "$E2E_BASE/nope"
expect_error "unknown path POST is 404" 404 "Not found" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict/x"
expect_error "no body is 400" 400 "Missing 'image' field in request" -X POST "$E2E_BASE/predict"
expect_error "wrong Content-Type is 400" 400 "Missing 'image' field in request" \
    -H 'Content-Type: application/json' --data-binary '{"image":1}' "$E2E_BASE/predict"
expect_error "missing image field is 400" 400 "Missing 'image' field in request" \
    -F "file=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
expect_error "malformed multipart is 400" 400 "Missing 'image' field in request" \
    -H 'Content-Type: multipart/form-data; boundary=xyz' --data-binary 'garbage without delimiters' "$E2E_BASE/predict"
expect_error "text named .jpg is 415" 415 "Unsupported image format" \
    -F "image=@$work/text.jpg;type=image/jpeg" "$E2E_BASE/predict"
expect_error "text named .jpg on /images is 415" 415 "Unsupported image format" \
    -F "image=@$work/text.jpg;type=image/jpeg" "$E2E_BASE/images"
expect_error "truncated JPEG is 400" 400 "Image could not be decoded" \
    -F "image=@$work/truncated.jpg" "$E2E_BASE/predict"
expect_error "image over the pixel cap is 413" 413 "Image dimensions too large" \
    -F "image=@$work/huge8000.png" "$E2E_BASE/predict"
expect_error "image over stb's 1 GiB limit is 413" 413 "Image dimensions too large" \
    -F "image=@$work/huge30000.png" "$E2E_BASE/predict"
expect_error "body over 10 MB is 413 from nginx" 413 "Request body too large" \
    -F "image=@$work/big.bin" "$E2E_BASE/predict"

# --- nothing died ------------------------------------------------------------
request "$work/after" -F "image=@images/ffhq_00064.jpg" "$E2E_BASE/predict"
check "a normal request still succeeds" [ "$(status_of "$work/after")" = 200 ]
pids_after=$(stack_fcgi_pids)
check "no worker died or restarted" [ "$pids_before" = "$pids_after" ]
check "master and workers were running" [ "$(echo $pids_after | wc -w)" -ge 2 ]
check "no worker logged an error" sh -c "! grep -a 'ERROR\|killed by signal' '$work/stack.log'"

check "stop leaves no process of the stack behind" stack_stop

e2e_summary e2e_api
[ "$e2e_failed" -eq 0 ]
