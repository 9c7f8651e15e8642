#!/usr/bin/python3
"""Training checkpoint -> TorchScript model file + model card JSON (same basename, .json).

Usage: /usr/bin/python3 scripts/export_torchscript.py CKPT OUT.pt [--accuracy metrics.json]
The card carries the keys the C server reads (name, version, input_size, mean, std,
emotion_labels, output, source, license, accuracy) plus `training` for provenance.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labels import EMOTIONS  # noqa: E402
from model_architecture import build_model  # noqa: E402
from preprocess import INPUT_SIZE, MEAN, STD  # noqa: E402  (the card must match the server's preprocessing)

OUTPUT_DOC = "age, p_male, then one probability per emotion_labels entry"
# Every source in /work/shared/train is non-commercial / research-only, so weights trained on
# them inherit that restriction until the licence question is settled.
DEFAULT_LICENSE = ("research-only, non-commercial: trained on FER+/FER2013 (research use), "
                   "UTKFace (non-commercial research) and FFHQ with DCGM Azure labels (CC BY-NC-SA 4.0)")


def card_path(model_path):
    return os.path.splitext(model_path)[0] + ".json"


def git_commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.check_output(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                                       stderr=subprocess.DEVNULL, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_card(ck, args, ckpt_path):
    cfg = ck.get("config", {})
    state = ck.get("state", {})
    accuracy = {}
    if args.accuracy:
        with open(args.accuracy, encoding="utf-8") as f:
            accuracy = json.load(f)
    return {
        "name": args.name,
        "version": args.version,
        "input_size": INPUT_SIZE,
        "mean": [round(float(v), 6) for v in MEAN],
        "std": [round(float(v), 6) for v in STD],
        "emotion_labels": list(ck.get("emotion_labels", EMOTIONS)),
        "output": OUTPUT_DOC,
        "source": args.source or ("Reface CBAM-ResNet, trained in-house with scripts/train_ffhq_soft.py "
                                  "(repo commit %s)" % git_commit()),
        "license": args.license,
        "accuracy": accuracy,
        "training": {
            "checkpoint": os.path.abspath(ckpt_path),
            "data_folders": cfg.get("folders", []),
            "steps": state.get("step"),
            "epochs_completed": state.get("epoch"),
            "best_val_loss": state.get("best_val"),
            "last_validation": (state.get("history") or [None])[-1],
            "config": cfg,
        },
    }


def json_safe(v):
    """NaN/inf (e.g. age MAE of a validation split with no ages) become null: the C server's
    JSON parser must not meet Python's non-standard NaN/Infinity tokens."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def write_card(card, model_path):
    with open(card_path(model_path), "w", encoding="utf-8") as f:
        json.dump(json_safe(card), f, indent=2, allow_nan=False)
        f.write("\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("out", help="TorchScript file to write (e.g. models/reface.pt)")
    p.add_argument("--name", default="reface-cbam-resnet")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--source", default=None)
    p.add_argument("--license", default=DEFAULT_LICENSE)
    p.add_argument("--accuracy", default=None, help="JSON (e.g. from test_soft.py --json) for the card")
    args = p.parse_args(argv)

    ck = torch.load(args.checkpoint, map_location="cpu")
    model = build_model(**ck.get("model_kwargs", {}))
    model.load_state_dict(ck["model"])
    model.eval()  # BatchNorm running stats + no dropout: what the server must run
    scripted = torch.jit.script(model)

    # Guard against scripting changing behaviour before anything is written.
    x = torch.randn(2, 3, INPUT_SIZE, INPUT_SIZE)
    with torch.no_grad():
        diff = (scripted(x) - model(x)).abs().max().item()
    if diff > 1e-4:
        sys.exit("scripted output differs from eager by %g" % diff)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    scripted.save(args.out)
    write_card(build_card(ck, args, args.checkpoint), args.out)
    print("wrote %s (%.1f MB) and %s; scripted-vs-eager max diff %.2g"
          % (args.out, os.path.getsize(args.out) / 1e6, card_path(args.out), diff))


if __name__ == "__main__":
    main()
