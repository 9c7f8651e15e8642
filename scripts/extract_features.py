"""Run face-api's frozen trunks once over labelled folders; cache features.

Usage (from the repo root):
    /usr/bin/python3 scripts/extract_features.py --src build/npm/face-api/model \
        --out build/features [--crop 0.8] [--jobs 2] [--limit N] \
        [--rects build/rects/NAME.tsv ... --detector models/detector.pt] DIR...

Each DIR holds images and a labels.csv (scripts/labels.py).  Every image
goes through the server's preprocessing (the centred crop the server uses by
default, zero-pad to a square, legacy bilinear 224, ImageNet normalisation:
scripts/preprocess.py mirrors core/preprocess.c) and the trunks of
scripts/reface_heads.py, once as it is and once mirrored left-right (the
mirrored copy is a training augmentation).  The result is one
OUT/<folder name>.npz per folder with the features and labels (NaN where a
label is missing).  A folder whose cache was written from the same
labels.csv, crop, limit and weights is not computed again.

With --rects, the folder whose name is the rectangles file's stem also gets
the server's other view: OUT/<folder name>.detected.npz holds the features
of the crop the C pipeline gave the attribute model with detection (the
largest face), for the images where a face was found.  The rectangles come
from the server's own code (`reface-eval --rects`, core/predict.c), so
nothing of the detector is re-implemented here; this script only cuts them
out and runs the same preprocessing mirror.  That cache is keyed on the
rectangles file's and the detector's bytes as well, so a changed detector
or rectangle computes it again.  The server decodes small JPEGs with
stb_image and PIL differs by a few grey levels; PNGs are identical.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labels  # noqa: E402
import reface_heads  # noqa: E402
from faceapi_nets import MODEL_FILES  # noqa: E402
from preprocess import load_rgb, to_model_input  # noqa: E402

# Bumped when the way features are computed changes, so old caches go.
FEATURE_VERSION = 1
CHUNK = 32
DETECTED_SUFFIX = ".detected"

_trunks = None
_crop = 0.8


def _init_worker(src, crop):
    global _trunks, _crop
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    _trunks = reface_heads.build_trunks(src)
    _crop = crop


def _features(items):
    """Features of a chunk of (path, rect) pairs: (plain [n, 768], mirrored
    [n, 768]).  rect is the (x, y, width, height) the server cut, or None
    for the centred crop."""
    xs, xf = [], []
    for p, rect in items:
        if rect is None:
            crop = reface_heads.centre_crop(load_rgb(p), _crop)
        else:
            x, y, w, h = rect
            crop = load_rgb(p)[y:y + h, x:x + w]
        xs.append(to_model_input(crop))
        xf.append(to_model_input(np.ascontiguousarray(crop[:, ::-1])))
    x = torch.from_numpy(np.stack(xs + xf))
    f = _trunks(x).numpy()
    return f[:len(items)], f[len(items):]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(folder, src, crop, limit):
    return {
        "feature_version": FEATURE_VERSION,
        "labels_sha256": sha256_file(os.path.join(folder, "labels.csv")),
        "weights_sha256": {f: sha256_file(os.path.join(src, f))
                           for f in MODEL_FILES},
        "crop": crop,
        "limit": limit,
    }


def detected_key(base, rects_path, detector):
    """The centre key without the crop, plus what chose the rectangles."""
    key = dict(base, view="detected",
               rects_sha256=sha256_file(rects_path),
               detector_sha256=sha256_file(detector))
    del key["crop"]
    return key


def read_rects(path):
    """reface-eval --rects output -> {file: (image_w, image_h, rect|None)}."""
    rects = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or line.startswith("file\t"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 9:
                sys.exit("extract_features: %s: malformed row %r" % (path, line))
            rect = None
            if cols[3] == "1":
                rect = tuple(int(v) for v in cols[4:8])
            rects[cols[0]] = (int(cols[1]), int(cols[2]), rect)
    return rects


def detected_items(samples, rects, rects_path):
    """The samples with a face and their rectangles; exits when the file
    does not cover the folder or was cut from differently sized pixels."""
    from PIL import Image

    keep, items = [], []
    for s in samples:
        name = os.path.basename(s.path)
        if name not in rects:
            sys.exit("extract_features: %s has no row for %s (stale? rerun "
                     "reface-eval --rects)" % (rects_path, name))
        w, h, rect = rects[name]
        if rect is None:
            continue
        with Image.open(s.path) as im:
            size = im.size
        if size != (w, h):
            # The server decoded a large JPEG at a reduced scale, or turned
            # it by its EXIF orientation: its pixels are not PIL's.
            sys.exit("extract_features: %s is %dx%d, the server's pixels "
                     "%dx%d: not supported for training"
                     % (s.path, size[0], size[1], w, h))
        keep.append(s)
        items.append((s.path, rect))
    return keep, items


def cached(out_path, key):
    if not os.path.isfile(out_path):
        return False
    try:
        with np.load(out_path) as z:
            have = json.loads(bytes(z["key_json"]).decode("utf-8"))
    except (OSError, KeyError, ValueError):
        return False
    return have == key


def label_arrays(samples):
    n = len(samples)
    emo = np.full((n, len(labels.EMOTIONS)), np.nan, dtype=np.float32)
    for i, s in enumerate(samples):
        if s.emotions is not None:
            emo[i] = s.emotions
    return {
        "files": np.array([os.path.basename(s.path) for s in samples]),
        "source": np.array([s.source for s in samples]),
        "age": np.array([s.age for s in samples], dtype=np.float32),
        "male": np.array([s.male for s in samples], dtype=np.float32),
        "emotions": emo,
    }


def write_cache(out_path, name, samples, items, key, pool, extra=None):
    """Runs the trunks over items ((path, rect) pairs of `samples`) and
    writes features, labels and key to out_path."""
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    t0 = time.time()
    plain = [np.zeros((0, reface_heads.FEAT_DIM), np.float32)]
    mirrored = [np.zeros((0, reface_heads.FEAT_DIM), np.float32)]
    for i, (fp, fm) in enumerate(pool.imap(_features, chunks)):
        plain.append(fp)
        mirrored.append(fm)
        if (i + 1) % 50 == 0:
            done = min((i + 1) * CHUNK, len(items))
            print("extract_features: %s %d/%d (%.0f s)"
                  % (name, done, len(items), time.time() - t0), flush=True)

    arrays = label_arrays(samples)
    arrays.update(extra or {})
    arrays["features"] = np.concatenate(plain).astype(np.float32)
    arrays["features_mirrored"] = np.concatenate(mirrored).astype(np.float32)
    arrays["key_json"] = np.frombuffer(
        json.dumps(key, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out_path)
    print("extract_features: wrote %s (%d images, %.0f s)"
          % (out_path, len(items), time.time() - t0), flush=True)


def extract_folder(folder, args, pool, rects_path=None):
    name = os.path.basename(os.path.normpath(folder))
    out_path = os.path.join(args.out, name + ".npz")
    key = cache_key(folder, args.src, args.crop, args.limit)
    samples = labels.load_labels_csv(folder)
    if args.limit:
        samples = samples[:args.limit]
    if cached(out_path, key):
        print("extract_features: %s up to date" % out_path, flush=True)
    else:
        write_cache(out_path, name, samples, [(s.path, None) for s in samples],
                    key, pool)
    if rects_path is None:
        return

    det_path = os.path.join(args.out, name + DETECTED_SUFFIX + ".npz")
    det_key = detected_key(key, rects_path, args.detector)
    if cached(det_path, det_key):
        print("extract_features: %s up to date" % det_path, flush=True)
        return
    keep, items = detected_items(samples, read_rects(rects_path), rects_path)
    print("extract_features: %s: a face in %d of %d images (%s)"
          % (name, len(keep), len(samples), rects_path), flush=True)
    rect = np.array([r for _, r in items], dtype=np.int32).reshape(-1, 4)
    write_cache(det_path, name + DETECTED_SUFFIX, keep, items, det_key, pool,
                {"rect": rect})


# glibc returns every large tensor's pages to the kernel and faults them in
# again on the next batch; these thresholds keep them, which halves the
# time of a forward here (a third of it was system time).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "2147483647",
              "MALLOC_TRIM_THRESHOLD_": "4294967295",
              "MALLOC_TOP_PAD_": "268435456"}


def main():
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        env = dict(os.environ, **MALLOC_ENV)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="build/npm/face-api/model",
                    help="folder with face-api's model files")
    ap.add_argument("--out", default="build/features")
    ap.add_argument("--crop", type=float, default=0.8,
                    help="centred crop, as the server's `crop` setting")
    ap.add_argument("--jobs", type=int, default=2,
                    help="worker processes (one torch thread each)")
    ap.add_argument("--limit", type=int, default=0,
                    help="only the first N rows of each labels.csv")
    ap.add_argument("--rects", action="append", default=[],
                    help="reface-eval --rects file named <folder name>.tsv: "
                    "also cache that folder's detector crops")
    ap.add_argument("--detector", default="models/detector.pt",
                    help="the detector the rectangles came from (cache key)")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    for f in MODEL_FILES:
        if not os.path.isfile(os.path.join(args.src, f)):
            sys.exit("extract_features: missing %s (run scripts/fetch_faceapi.sh)"
                     % os.path.join(args.src, f))
    for d in args.dirs:
        if not os.path.isfile(os.path.join(d, "labels.csv")):
            sys.exit("extract_features: %s has no labels.csv" % d)
    names = [os.path.basename(os.path.normpath(d)) for d in args.dirs]
    rects_for = {}
    for r in args.rects:
        stem = os.path.splitext(os.path.basename(r))[0]
        if stem not in names:
            sys.exit("extract_features: %s names no folder of %s"
                     % (r, " ".join(names)))
        rects_for[stem] = r
    if rects_for and not os.path.isfile(args.detector):
        sys.exit("extract_features: no detector %s" % args.detector)

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs, _init_worker, (args.src, args.crop)) as pool:
        for d, name in zip(args.dirs, names):
            extract_folder(d, args, pool, rects_for.get(name))


if __name__ == "__main__":
    main()
