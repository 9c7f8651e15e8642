"""Run face-api's frozen trunks once over labelled folders; cache features.

Usage (from the repo root):
    /usr/bin/python3 scripts/extract_features.py --src build/npm/face-api/model \
        --out build/features [--crop 0.8] [--jobs 2] [--limit N] DIR...

Each DIR holds images and a labels.csv (scripts/labels.py).  Every image
goes through the server's preprocessing (the centred crop the server uses by
default, zero-pad to a square, legacy bilinear 224, ImageNet normalisation:
scripts/preprocess.py mirrors core/preprocess.c) and the trunks of
scripts/reface_heads.py, once as it is and once mirrored left-right (the
mirrored copy is a training augmentation).  The result is one
OUT/<folder name>.npz per folder with the features and labels (NaN where a
label is missing).  A folder whose cache was written from the same
labels.csv, crop, limit and weights is not computed again.
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

_trunks = None
_crop = 0.8


def _init_worker(src, crop):
    global _trunks, _crop
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    _trunks = reface_heads.build_trunks(src)
    _crop = crop


def _features(paths):
    """Features of a chunk of images: (plain [n, 768], mirrored [n, 768])."""
    xs, xf = [], []
    for p in paths:
        crop = reface_heads.centre_crop(load_rgb(p), _crop)
        xs.append(to_model_input(crop))
        xf.append(to_model_input(np.ascontiguousarray(crop[:, ::-1])))
    x = torch.from_numpy(np.stack(xs + xf))
    f = _trunks(x).numpy()
    return f[:len(paths)], f[len(paths):]


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


def extract_folder(folder, args, pool):
    name = os.path.basename(os.path.normpath(folder))
    out_path = os.path.join(args.out, name + ".npz")
    key = cache_key(folder, args.src, args.crop, args.limit)
    if cached(out_path, key):
        print("extract_features: %s up to date" % out_path, flush=True)
        return out_path

    samples = labels.load_labels_csv(folder)
    if args.limit:
        samples = samples[:args.limit]
    paths = [s.path for s in samples]
    chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
    t0 = time.time()
    plain, mirrored = [], []
    for i, (fp, fm) in enumerate(pool.imap(_features, chunks)):
        plain.append(fp)
        mirrored.append(fm)
        if (i + 1) % 50 == 0:
            done = min((i + 1) * CHUNK, len(paths))
            print("extract_features: %s %d/%d (%.0f s)"
                  % (name, done, len(paths), time.time() - t0), flush=True)

    arrays = label_arrays(samples)
    arrays["features"] = np.concatenate(plain).astype(np.float32)
    arrays["features_mirrored"] = np.concatenate(mirrored).astype(np.float32)
    arrays["key_json"] = np.frombuffer(
        json.dumps(key, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    os.makedirs(args.out, exist_ok=True)
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out_path)
    print("extract_features: wrote %s (%d images, %.0f s)"
          % (out_path, len(paths), time.time() - t0), flush=True)
    return out_path


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
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    for f in MODEL_FILES:
        if not os.path.isfile(os.path.join(args.src, f)):
            sys.exit("extract_features: missing %s (run scripts/fetch_faceapi.sh)"
                     % os.path.join(args.src, f))
    for d in args.dirs:
        if not os.path.isfile(os.path.join(d, "labels.csv")):
            sys.exit("extract_features: %s has no labels.csv" % d)

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs, _init_worker, (args.src, args.crop)) as pool:
        for d in args.dirs:
            extract_folder(d, args, pool)


if __name__ == "__main__":
    main()
