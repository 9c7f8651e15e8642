"""Convert face-api's SSD MobileNet v1 face detector to TorchScript.

Usage (from the repo root):
    /usr/bin/python3 scripts/convert_detector.py \
        --src build/npm/face-api/model --out models/detector.pt

Writes the scripted detector to --out and its card next to it (same name,
.json).  Contract (models/README.md): forward(x) takes float32
[N,3,512,512] RGB 0..255, the image zero-padded at the bottom or right to a
square and resized with TF's legacy bilinear rule, and returns float32
[N, 5118*5]: per anchor score, ymin, xmin, ymax, xmax (fractions of the
padded square).  Non-maximum suppression is the server's job (core/detect.c).
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faceapi_detector  # noqa: E402
from convert_faceapi import (INTEGRITY, PACKAGE, VERSION,  # noqa: E402
                             save_with_card, sha256_of)


def self_check(model, scripted):
    """Scripted == eager, and a batch of 2 gives the per-image rows."""
    g = torch.Generator().manual_seed(4321)
    x = torch.rand(2, 3, 512, 512, generator=g) * 255.0
    with torch.no_grad():
        want = model(x)
        got2 = scripted(x)
        got1 = torch.cat([scripted(x[i:i + 1]) for i in range(2)])
    if tuple(got2.shape) != (2, faceapi_detector.N_ANCHORS * 5):
        raise RuntimeError("output shape %s" % (tuple(got2.shape),))
    d_script = (got2 - want).abs().max().item()
    d_batch = (got2 - got1).abs().max().item()
    if d_script > 1e-4 or d_batch > 1e-4:
        raise RuntimeError("self-check failed: scripted vs eager %.3g, "
                           "N=2 vs N=1 %.3g" % (d_script, d_batch))
    return d_script, d_batch


def card(src, out):
    files = faceapi_detector.MODEL_FILES
    return {
        "name": "faceapi-ssd-mobilenetv1",
        "version": VERSION,
        "kind": "detector",
        "input_size": faceapi_detector.INPUT_SIZE,
        "input": "float32 [N,3,512,512] RGB 0..255; image zero-padded at "
                 "the bottom or right to a square, TF legacy bilinear resize",
        "anchors": faceapi_detector.N_ANCHORS,
        "output": "float32 [N, anchors*5]: per anchor score, ymin, xmin, "
                  "ymax, xmax as fractions of the padded square",
        "nms_iou": 0.5,
        "min_score": 0.5,
        "source": "npm %s@%s (tarball %s), files %s"
                  % (PACKAGE, VERSION, INTEGRITY,
                     ", ".join("model/" + f for f in files)),
        "source_sha256": {f: sha256_of(os.path.join(src, f)) for f in files},
        "torchscript_sha256": sha256_of(out),
        "license": "MIT (face-api by Vladimir Mandic, weights from "
                   "justadudewhohacks/face-api.js)",
    }


def main():
    # Same reason as convert_faceapi.py: a fixed hash seed makes the .pt
    # byte-reproducible.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True,
                    help="folder with face-api's ssd_mobilenetv1_model* files")
    ap.add_argument("--out", required=True, help="TorchScript file to write")
    args = ap.parse_args()

    t0 = time.time()
    torch.set_grad_enabled(False)
    for f in faceapi_detector.MODEL_FILES:
        if not os.path.isfile(os.path.join(args.src, f)):
            sys.exit("convert_detector: missing '%s' (run "
                     "scripts/fetch_faceapi.sh)" % os.path.join(args.src, f))

    net = faceapi_detector.load_detector(args.src)
    model = faceapi_detector.DetectorModule(net).eval()
    scripted = torch.jit.script(model)
    d_script, d_batch = self_check(model, scripted)

    card_path = save_with_card(scripted, args.out,
                               lambda path: card(args.src, path),
                               lambda reloaded: self_check(model, reloaded))
    print("convert_detector: wrote %s (%d bytes) and %s in %.1f s; "
          "scripted vs eager %.2g, N=2 vs N=1 %.2g"
          % (args.out, os.path.getsize(args.out), card_path,
             time.time() - t0, d_script, d_batch))


if __name__ == "__main__":
    main()
