"""Compose the served model: face-api's trunks + the committed trained heads.

Usage (from the repo root):
    /usr/bin/python3 scripts/compose_reface.py --src build/npm/face-api/model \
        --heads models/reface_heads.npz --card models/reface.card.json \
        --out models/reface.pt [--age new|faceapi] [--gender new|faceapi]

Writes the TorchScript module to --out and its model card next to it (same
name, .json).  Contract (models/README.md): float32 [N,3,224,224]
ImageNet-normalised RGB in, float32 [N,10] out: age, P(male), then the eight
emotions anger, contempt, disgust, fear, happiness, neutral, sadness,
surprise.  Which of the trained or face-api's own age and gender layers is
used comes from the card fragment (`use`), unless --age / --gender say
otherwise (to measure both with `make eval`).  The card quotes the dev-set
figures of models/<out name>.accuracy.json when that file exists.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reface_heads  # noqa: E402
from convert_faceapi import (INTEGRITY, PACKAGE, VERSION,  # noqa: E402
                             save_with_card, sha256_of)
from faceapi_nets import MODEL_FILES  # noqa: E402
from preprocess import INPUT_SIZE, MEAN, STD  # noqa: E402


def self_check(model, scripted):
    """Scripted == eager, batching gives the per-sample results, and the
    outputs keep the contract's ranges."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(3, 3, INPUT_SIZE, INPUT_SIZE, generator=g)
    with torch.no_grad():
        want = model(x)
        got3 = scripted(x)
        got1 = torch.cat([scripted(x[i:i + 1]) for i in range(3)])
    if tuple(got3.shape) != (3, 2 + len(reface_heads.EMOTIONS)):
        raise RuntimeError("output shape %s" % (tuple(got3.shape),))
    d_script = (got3 - want).abs().max().item()
    d_batch = (got3 - got1).abs().max().item()
    if d_script > 1e-4 or d_batch > 1e-4:
        raise RuntimeError("self-check failed: scripted vs eager %.3g, "
                           "N=3 vs N=1 %.3g" % (d_script, d_batch))
    p = got3[:, 1:]
    if not ((p >= 0) & (p <= 1)).all():
        raise RuntimeError("a probability outside 0..1")
    s = got3[:, 2:].sum(dim=1)
    if (s - 1).abs().max().item() > 1e-4:
        raise RuntimeError("emotions do not sum to 1")
    return d_script, d_batch


def accuracy_of(out):
    """The committed `make eval` figures for this model, if any."""
    path = os.path.splitext(out)[0] + ".accuracy.json"
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "models", os.path.basename(path))
    for p in (path, here):
        if os.path.isfile(p):
            with open(p) as f:
                measured = json.load(f)
            if not measured:
                return {}
            measured["dataset"] = ("shared/eval/dev: 228 real photos (120 "
                                   "FFHQ with Azure labels, 60 UTKFace, "
                                   "48 FER+)")
            measured["measured_with"] = "make eval (C pipeline, reface-eval)"
            return measured
    return {}


def model_card(fragment, meta, use, args, pt_path):
    card = {
        "name": fragment["name"],
        "version": fragment["version"],
        "input_size": INPUT_SIZE,
        "mean": [float("%.3f" % v) for v in MEAN],
        "std": [float("%.3f" % v) for v in STD],
        "emotion_labels": list(reface_heads.EMOTIONS),
        "output": "age, p_male, then one probability per emotion_labels "
                  "entry",
        "source": "trunks: npm %s@%s (tarball %s), files %s; heads: %s "
                  "(trained by make train)"
                  % (PACKAGE, VERSION, INTEGRITY,
                     ", ".join("model/" + f for f in MODEL_FILES),
                     os.path.basename(args.heads)),
        "source_sha256": dict(
            {f: sha256_of(os.path.join(args.src, f)) for f in MODEL_FILES},
            **{os.path.basename(args.heads): sha256_of(args.heads)}),
        "torchscript_sha256": sha256_of(pt_path),
        "heads_used": use,
        "license": fragment["license"],
        "training": {
            "data": fragment["training_data"],
            "config": meta["config"],
            "train_rows": meta["train_rows"],
            # Heads trained before the detector-crop view have neither.
            "train_rows_per_view": meta.get("train_rows_per_view"),
            "detected_dirs": meta.get("detected_dirs", []),
            "held_out": meta["holdout"],
        },
        "notes": fragment["notes"],
        "accuracy": accuracy_of(args.out),
    }
    return card


def main():
    # Same reason as convert_faceapi.py: a fixed hash seed makes the .pt
    # byte-identical from run to run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="build/npm/face-api/model")
    ap.add_argument("--heads", default="models/reface_heads.npz")
    ap.add_argument("--card", default="models/reface.card.json",
                    help="card fragment: name, licence, data, choice")
    ap.add_argument("--out", required=True)
    ap.add_argument("--age", choices=("new", "faceapi"))
    ap.add_argument("--gender", choices=("new", "faceapi"))
    args = ap.parse_args()

    t0 = time.time()
    torch.set_grad_enabled(False)
    for f in MODEL_FILES:
        if not os.path.isfile(os.path.join(args.src, f)):
            sys.exit("compose_reface: missing %s (run scripts/fetch_faceapi.sh)"
                     % os.path.join(args.src, f))
    with open(args.card) as f:
        fragment = json.load(f)
    use = dict(fragment["use"])
    if args.age:
        use["age"] = args.age
    if args.gender:
        use["gender"] = args.gender
    use["emotion"] = "new"

    heads, meta = reface_heads.load_heads(args.heads)
    trunks = reface_heads.build_trunks(args.src)
    model = reface_heads.RefaceModel(
        trunks, heads["age"], heads["gender"], heads["emotion"],
        use["age"] == "new", use["gender"] == "new").eval()
    scripted = torch.jit.script(model)
    d_script, d_batch = self_check(model, scripted)

    card_path = save_with_card(
        scripted, args.out,
        lambda path: model_card(fragment, meta, use, args, path),
        lambda reloaded: self_check(model, reloaded))
    print("compose_reface: wrote %s (%d bytes, age %s, gender %s) and %s in "
          "%.1f s; scripted vs eager %.2g, N=3 vs N=1 %.2g"
          % (args.out, os.path.getsize(args.out), use["age"], use["gender"],
             card_path, time.time() - t0, d_script, d_batch))


if __name__ == "__main__":
    main()
