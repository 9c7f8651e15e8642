#!/bin/sh
# Fetch the pinned face-api npm tarball and extract the AgeGender and
# Expression weights that scripts/convert_faceapi.py converts, and the
# SSD MobileNet v1 face detector (scripts/convert_detector.py).
#
# Usage: scripts/fetch_faceapi.sh   (from the repo root; any cwd works)
# Output: build/npm/vladmandic-face-api-1.7.15.tgz (cached, verified)
#         build/npm/face-api/model/{age_gender,face_expression}_model*
#         build/npm/face-api/model/ssd_mobilenetv1_model*
# The tarball is downloaded only when it is missing or fails the check.
set -eu

PKG='@vladmandic/face-api'
VER='1.7.15'
TGZ_NAME='vladmandic-face-api-1.7.15.tgz'
# npm's "integrity" for this version: sha512 of the tarball, base64.
INTEGRITY='sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=='

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build/npm"
TGZ="$OUT/$TGZ_NAME"
MODEL="$OUT/face-api/model"

die() {
    echo "fetch_faceapi: $*" >&2
    exit 1
}

integrity_of() {
    printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | openssl base64 -A)"
}

verified() {
    [ -f "$TGZ" ] && [ "$(integrity_of "$TGZ")" = "$INTEGRITY" ]
}

command -v openssl >/dev/null 2>&1 || die "openssl not found"
mkdir -p "$OUT"

if verified; then
    echo "fetch_faceapi: cached $TGZ verified"
else
    command -v npm >/dev/null 2>&1 || die "npm not found"
    rm -f "$TGZ"
    echo "fetch_faceapi: npm pack $PKG@$VER"
    # npm pack prints the tarball name on stdout; its notices go to stderr.
    (cd "$OUT" && npm pack --silent "$PKG@$VER" >/dev/null) \
        || die "npm pack $PKG@$VER failed"
    [ -f "$TGZ" ] || die "npm pack did not write '$TGZ'"
    got=$(integrity_of "$TGZ")
    if [ "$got" != "$INTEGRITY" ]; then
        mv "$TGZ" "$TGZ.bad"
        die "integrity mismatch for '$TGZ': expected $INTEGRITY, got $got (kept as $TGZ.bad)"
    fi
    echo "fetch_faceapi: $TGZ verified"
fi

# Extract into a temporary folder, then move only the files we convert.
tmp="$OUT/extract.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT INT TERM
tar -xzf "$TGZ" -C "$tmp" \
    --wildcards 'package/model/age_gender_model*' \
    'package/model/face_expression_model*' \
    'package/model/ssd_mobilenetv1_model*' \
    || die "cannot extract model files from '$TGZ'"

# Files already there and identical are left alone, so that their mtimes
# do not make a Makefile rebuild models/faceapi.pt for nothing.
mkdir -p "$MODEL"
n=0
for f in "$tmp"/package/model/age_gender_model* \
         "$tmp"/package/model/face_expression_model* \
         "$tmp"/package/model/ssd_mobilenetv1_model*; do
    [ -f "$f" ] || die "expected model files missing in '$TGZ'"
    dst="$MODEL/$(basename "$f")"
    if ! cmp -s "$f" "$dst"; then
        cp "$f" "$dst"
        n=$((n + 1))
    fi
done
echo "fetch_faceapi: $MODEL up to date ($n files written)"
