#!/bin/sh
# Writes the committed seed corpora of fuzz_image and fuzz_handler from the
# unit tests' fixtures (tests/unit/image, tests/unit/orient,
# tests/unit/handler). Rerun from
# the repository root only to change the seeds; make fuzz never runs it.
set -eu
img=tests/unit/image
out=tests/fuzz/corpus

for f in "$img"/*.png "$img"/*.jpg "$img"/*.gif "$img"/*.bmp \
         "$img"/refuse.*; do
    cp "$f" "$out/image/${f##*/}"
done
# JPEGs with an EXIF orientation (a quarter turn and a mirrored one), for
# img_decode_scaled()'s libexif and turning paths.
for n in 5 6; do
    cp tests/unit/orient/orient_$n.jpg "$out/image/orient_$n.jpg"
done
# Truncations, so the decoders' early-exit paths are seeded too.
for f in "$img"/rgb37x23.png "$img"/photo40x30.jpg "$img"/pal24x17.gif \
         "$img"/rgb13x9.bmp; do
    head -c 100 "$f" > "$out/image/head100_${f##*/}"
done

# handler seeds: "METHOD\nPATH\nCONTENT-TYPE\n" then the body.
b=FuzzSeedBoundary
part() { # part FIELD FILE: one multipart body holding FILE as FIELD
    printf -- '--%s\r\nContent-Disposition: form-data; name="%s"; ' "$b" "$1"
    printf 'filename="x"\r\nContent-Type: image/jpeg\r\n\r\n'
    cat "$2"
    printf '\r\n--%s--\r\n' "$b"
}
seed() { # seed NAME METHOD PATH CTYPE [FIELD FILE]
    {
        printf '%s\n%s\n%s\n' "$2" "$3" "$4"
        if [ $# -ge 6 ]; then part "$5" "$6"; fi
    } > "$out/handler/$1"
}
ct="multipart/form-data; boundary=$b"
seed predict_png POST /predict "$ct" image "$img/rgb37x23.png"
seed predict_jpg POST /predict "$ct" image "$img/photo40x30.jpg"
seed predict_gif POST /predict "$ct" image "$img/pal24x17.gif"
seed images_bmp POST /images "$ct" image "$img/rgb13x9.bmp"
seed images_grey POST /images "$ct" image "$img/grey20x31.png"
seed predict_text POST /predict "$ct" image "$img/text.jpg"
seed predict_other_field POST /predict "$ct" file "$img/rgb13x9.bmp"
seed predict_no_ct POST /predict - image "$img/rgb13x9.bmp"
seed health GET /health -
seed health_head HEAD /health -
seed health_post POST /health -
seed not_found GET /nope -
