"""Compare two trained head files on the same cached features.

Usage (from the repo root):
    /usr/bin/python3 scripts/compare_heads.py models/reface_heads.npz \
        build/train/reface_heads.npz [--features build/features] \
        [--detected DIR ...] DIR...

Runs both sets of heads on every cached feature row of the given folders
and prints the largest and the mean difference per output (age in years,
P(male), the eight emotion probabilities) and how many rows change their
gender or top emotion.  Exits 1 when a largest difference is over the
tolerance (--age-tol years, --prob-tol probability): this is how `make
train` checks that it reproduced the committed weights.
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reface_heads  # noqa: E402
from train_heads import load_caches, new_outputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--features", default="build/features")
    ap.add_argument("--age-tol", type=float, default=0.05)
    ap.add_argument("--prob-tol", type=float, default=0.01)
    ap.add_argument("--detected", action="append", default=[],
                    help="also compare on this folder's detector crops")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    torch.set_num_threads(1)
    names = [os.path.basename(os.path.normpath(d)) for d in args.dirs]
    detected = [os.path.basename(os.path.normpath(d)) for d in args.detected]
    feats = load_caches(names, args.features, detected)["features"]
    out = []
    for path in (args.a, args.b):
        heads, _ = reface_heads.load_heads(path)
        out.append(new_outputs(heads, feats))
    (age_a, pm_a, emo_a), (age_b, pm_b, emo_b) = out
    d_age = np.abs(age_a - age_b)
    d_pm = np.abs(pm_a - pm_b)
    d_emo = np.abs(emo_a - emo_b)
    flips_g = int(((pm_a >= 0.5) != (pm_b >= 0.5)).sum())
    flips_e = int((emo_a.argmax(1) != emo_b.argmax(1)).sum())
    print("compare_heads: %d rows; age max %.3g mean %.3g years; P(male) "
          "max %.3g mean %.3g; emotions max %.3g mean %.3g; gender changes "
          "on %d rows, top emotion on %d"
          % (len(feats), d_age.max(), d_age.mean(), d_pm.max(), d_pm.mean(),
             d_emo.max(), d_emo.mean(), flips_g, flips_e))
    if (d_age.max() > args.age_tol or d_pm.max() > args.prob_tol
            or d_emo.max() > args.prob_tol):
        print("compare_heads: NOT within tolerance (age %.3g years, "
              "probabilities %.3g)" % (args.age_tol, args.prob_tol))
        sys.exit(1)
    print("compare_heads: within tolerance (age %.3g years, probabilities "
          "%.3g)" % (args.age_tol, args.prob_tol))


if __name__ == "__main__":
    main()
