"""Convert face-api's AgeGender and Expression nets into one TorchScript model.

Usage (from the repo root):
    /usr/bin/python3 scripts/convert_faceapi.py \
        --src build/npm/face-api/model --out models/faceapi.pt

Writes the scripted model to --out and its model card next to it (same name,
.json).  The server's contract is in models/README.md: forward(x) takes
float32 [N,3,224,224] ImageNet-normalised RGB (scripts/preprocess.py) and
returns float32 [N,9] = age, P(male), then 7 emotion probabilities in the
card's emotion_labels order.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faceapi_nets  # noqa: E402
from preprocess import INPUT_SIZE, MEAN, STD  # noqa: E402

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
# Pinned in scripts/fetch_faceapi.sh, which checks the tarball against it.
INTEGRITY = ("sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/"
             "Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw==")

# Our label names, in output order, and the face-api label each one reads.
EMOTION_LABELS = ["anger", "disgust", "fear", "happiness", "neutral",
                  "sadness", "surprise"]
FROM_FACEAPI = {"anger": "angry", "disgust": "disgusted", "fear": "fearful",
                "happiness": "happy", "neutral": "neutral", "sadness": "sad",
                "surprise": "surprised"}


class FaceApiAttributes(nn.Module):
    """x [N,3,224,224] ImageNet-normalised RGB -> [N,9] (see module doc).

    Both face-api nets run at 112x112.  The 224 input is a TF legacy
    bilinear resize (src = dst * in/out), so its even samples are the
    samples of a direct 112 resize, i.e. face-api's own in112: taking
    x[..., 0::2, 0::2] reproduces in112 exactly.  This was checked on
    every golden crop (max difference 0.0 before normalisation, 1.5e-5
    grey levels after the normalise/undo round trip in float32).
    """

    def __init__(self, age_gender: faceapi_nets.AgeGenderNet,
                 expression: faceapi_nets.FaceExpressionNet):
        super().__init__()
        self.age_gender = age_gender
        self.expression = expression
        self.register_buffer(
            "mean", torch.tensor(MEAN.tolist()).view(1, 3, 1, 1))
        self.register_buffer(
            "std", torch.tensor(STD.tolist()).view(1, 3, 1, 1))
        order = [faceapi_nets.EXPRESSION_LABELS.index(FROM_FACEAPI[name])
                 for name in EMOTION_LABELS]
        self.register_buffer("emotion_index",
                             torch.tensor(order, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != 224
                or x.shape[3] != 224):
            raise RuntimeError("faceapi: input must be [N,3,224,224]")
        rgb255 = (x * self.std + self.mean) * 255.0
        x112 = rgb255[:, :, 0::2, 0::2]

        age, gender_logits = self.age_gender(x112)
        p_male = F.softmax(gender_logits, dim=1)[:, 0:1]
        emotions = F.softmax(self.expression(x112), dim=1)
        emotions = emotions.index_select(1, self.emotion_index)
        return torch.cat([age.view(-1, 1), p_male, emotions], dim=1)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_card(src, out):
    files = faceapi_nets.MODEL_FILES
    return {
        "name": "faceapi-agegender-expression",
        "version": VERSION,
        "input_size": INPUT_SIZE,
        "mean": [float("%.3f" % v) for v in MEAN],
        "std": [float("%.3f" % v) for v in STD],
        "emotion_labels": EMOTION_LABELS,
        "output": "age, p_male, then one probability per emotion_labels entry",
        "source": "npm %s@%s (tarball %s), files %s"
                  % (PACKAGE, VERSION, INTEGRITY,
                     ", ".join("model/" + f for f in files)),
        "source_sha256": {f: sha256_of(os.path.join(src, f)) for f in files},
        "torchscript_sha256": sha256_of(out),
        "license": "MIT (face-api by Vladimir Mandic, weights from "
                   "justadudewhohacks/face-api.js)",
        "notes": "no contempt class: face-api's expression net has 7 classes "
                 "and no output for the dev set's contempt label. Age is the "
                 "raw regression output in years, not clipped. The nets run "
                 "at 112x112 on every second sample of the 224 input, which "
                 "equals face-api's own 112 input.",
        "accuracy": committed_accuracy(),
    }


def committed_accuracy():
    """The dev-set figures `make eval` measured through the C pipeline, as
    committed in models/faceapi.accuracy.json (empty if absent)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "models", "faceapi.accuracy.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        measured = json.load(f)
    measured["dataset"] = ("shared/eval/dev: 228 real photos (120 FFHQ with "
                           "Azure labels, 60 UTKFace, 48 FER+)")
    measured["measured_with"] = "make eval (C pipeline, reface-eval)"
    return measured


def self_check(model, scripted):
    """Scripted == eager, and batching gives the per-sample results."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(3, 3, INPUT_SIZE, INPUT_SIZE, generator=g)
    with torch.no_grad():
        want = model(x)
        got3 = scripted(x)
        got1 = torch.cat([scripted(x[i:i + 1]) for i in range(3)])
    if tuple(got3.shape) != (3, 2 + len(EMOTION_LABELS)):
        raise RuntimeError("output shape %s" % (tuple(got3.shape),))
    d_script = (got3 - want).abs().max().item()
    d_batch = (got3 - got1).abs().max().item()
    if d_script > 1e-4 or d_batch > 1e-4:
        raise RuntimeError("self-check failed: scripted vs eager %.3g, "
                           "N=3 vs N=1 %.3g" % (d_script, d_batch))
    return d_script, d_batch


def save_with_card(scripted, out, make_card, check):
    """Writes the TorchScript module `scripted` to `out` and the card that
    make_card(path of the written file) returns beside it (.json).

    Both go to temporary names first and are renamed at the end, so that a
    failed run never leaves a model without its card or a half-written file.
    check(reloaded) runs on the file as written, before it takes its name.
    Returns the card's path.
    """
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp_pt = out + ".tmp"
    card_path = os.path.splitext(out)[0] + ".json"
    tmp_card = card_path + ".tmp"
    # Saved through a buffer so that the archive's inner folder name does
    # not depend on the output file name.
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    with open(tmp_pt, "wb") as f:
        f.write(buf.getvalue())
    check(torch.jit.load(tmp_pt))
    card = make_card(tmp_pt)
    with open(tmp_card, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    os.replace(tmp_pt, out)
    os.replace(tmp_card, card_path)
    return card_path


def main():
    # TorchScript writes some attributes in set order, which follows
    # Python's string hashing: fix the seed so that the same weights give
    # a byte-identical .pt (and torchscript_sha256) on every run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True,
                    help="folder with face-api's age_gender_model* and "
                         "face_expression_model* files")
    ap.add_argument("--out", required=True, help="TorchScript file to write")
    args = ap.parse_args()

    t0 = time.time()
    torch.set_grad_enabled(False)
    for f in faceapi_nets.MODEL_FILES:
        if not os.path.isfile(os.path.join(args.src, f)):
            sys.exit("convert_faceapi: missing '%s' (run scripts/fetch_faceapi.sh)"
                     % os.path.join(args.src, f))

    age_gender, expression = faceapi_nets.load_nets(args.src)
    model = FaceApiAttributes(age_gender, expression).eval()
    scripted = torch.jit.script(model)
    d_script, d_batch = self_check(model, scripted)

    card_path = save_with_card(scripted, args.out,
                               lambda path: model_card(args.src, path),
                               lambda reloaded: self_check(model, reloaded))

    print("convert_faceapi: wrote %s (%d bytes) and %s in %.1f s; "
          "scripted vs eager %.2g, N=3 vs N=1 %.2g"
          % (args.out, os.path.getsize(args.out), card_path,
             time.time() - t0, d_script, d_batch))


if __name__ == "__main__":
    main()
