"""Parity of the converted SSD MobileNet v1 detector with face-api 1.7.15.

Run from anywhere: /usr/bin/python3 tests/python/test_detector_parity.py
Needs build/npm/face-api/model (scripts/fetch_faceapi.sh) and
models/detector.pt (scripts/convert_detector.py).  Golden data (tfjs wasm
outputs): tests/data/golden/faceapi/ssd and tests/data/golden/images.

Checks the eager net's raw outputs (box encodings, class logits) and the
scripted module's decoded boxes and scores, on a 2x2 mosaic of faces, a
600x200 strip of three faces (padding at the bottom), a single face
upscaled from 256 and a 48x48 image without a detectable face.  Prints
"ok"/"not ok" per check and "RESULT detector_parity <passed> <failed>".
"""

import os
import sys
import traceback

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import faceapi_detector  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
SRC = os.path.join(ROOT, "build", "npm", "face-api", "model")
MODEL = os.path.join(ROOT, "models", "detector.pt")
CASES = ["mosaic2x2", "strip1x3", "ffhq_00064", "ferplus_fer0028735"]

# golden README 7.5 (10-30x the spread of two correct tfjs backends).
TOL = {"box_encodings": 1e-3, "class_logits": 3e-3, "scores": 5e-5,
       "boxes": 5e-5}

results = {"passed": 0, "failed": 0}
worst = {}


def report(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok %s" % name) if ok else ("not ok %s: %s" % (name, detail)))
    sys.stdout.flush()


def compare(name, key, got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        report(name, False, "shape %s, expected %s" % (got.shape, want.shape))
        return
    d = float(np.abs(got - want).max())
    worst[key] = max(worst.get(key, 0.0), d)
    report(name, d <= TOL[key], "max abs diff %.3g > %.3g" % (d, TOL[key]))


def golden(case, part):
    return np.load(os.path.join(GOLDEN, "faceapi", "ssd",
                                "%s.%s.npy" % (case, part)))


def net_input(case):
    img = np.asarray(Image.open(os.path.join(GOLDEN, "images",
                                             case + ".png")).convert("RGB"))
    return torch.from_numpy(faceapi_detector.to_detector_input(img)[None])


def test_raw(net, case):
    enc, logits = net(net_input(case))
    compare("raw/%s/box_encodings" % case, "box_encodings",
            enc.numpy().reshape(1, -1, 1, 4), golden(case, "box_encodings"))
    compare("raw/%s/class_logits" % case, "class_logits", logits.numpy(),
            golden(case, "class_logits"))


def test_scripted(model, case):
    out = model(net_input(case)).numpy().reshape(-1, 5)
    compare("scripted/%s/scores" % case, "scores", out[:, 0],
            golden(case, "scores"))
    compare("scripted/%s/boxes" % case, "boxes", out[:, 1:],
            golden(case, "boxes"))


def test_batch(model):
    """Two images in one forward give each image's own rows."""
    x = torch.cat([net_input("mosaic2x2"), net_input("strip1x3")])
    out = model(x).numpy().reshape(2, -1, 5)
    compare("scripted/batch2/scores", "scores", out[:, :, 0],
            np.stack([golden("mosaic2x2", "scores"),
                      golden("strip1x3", "scores")]))


def test_rejects_bad_shape(model):
    try:
        model(torch.zeros(1, 3, 416, 416))
    except Exception:  # noqa: BLE001 - TorchScript raises a generic error
        report("scripted/rejects_416_input", True)
        return
    report("scripted/rejects_416_input", False, "no error for 416 input")


def run(name, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a failed check, not a crash
        traceback.print_exc(file=sys.stderr)
        report(name, False, "%s: %s" % (type(e).__name__, e))


def main():
    torch.set_grad_enabled(False)
    try:
        net = faceapi_detector.load_detector(SRC)
        report("net/load", True)
    except Exception as e:  # noqa: BLE001
        report("net/load", False, "%s (run scripts/fetch_faceapi.sh)" % e)
        net = None
    if net is not None:
        for c in CASES:
            run("raw/" + c, lambda c=c: test_raw(net, c))
    try:
        model = torch.jit.load(MODEL)
        report("scripted/load", True)
    except Exception as e:  # noqa: BLE001
        report("scripted/load", False, "%s: %s" % (MODEL, e))
        model = None
    if model is not None:
        for c in CASES:
            run("scripted/" + c, lambda c=c: test_scripted(model, c))
        run("scripted/batch2", lambda: test_batch(model))
        run("scripted/rejects", lambda: test_rejects_bad_shape(model))
    for key in sorted(worst):
        sys.stderr.write("max abs diff %-16s %.3g\n" % (key, worst[key]))
    print("RESULT detector_parity %d %d"
          % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
