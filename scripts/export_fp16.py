#!/usr/bin/python3
"""TorchScript (or training checkpoint) -> half-size TorchScript with float16 parameters + card.

Usage: /usr/bin/python3 scripts/export_fp16.py IN.pt OUT_fp16.pt [--images DIR] [--n 8]
float16 is only a storage format: libtorch 1.13 has no fast half convolutions on CPU, so the
C server (and every Python tool here) converts the loaded module back with .float() before
running it. This script does the same to measure the fp16-vs-fp32 output difference.
"""
import argparse
import copy
import json
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchscript import DEFAULT_LICENSE, build_card, card_path, write_card  # noqa: E402
from labels import IMAGE_EXTS  # noqa: E402
from model_architecture import build_model  # noqa: E402
from preprocess import load_rgb, to_model_input  # noqa: E402


def load_fp32_module(path):
    """A TorchScript file, or a training checkpoint scripted on the fly; returns (module, card)."""
    try:
        module = torch.jit.load(path, map_location="cpu")
        card = None
        if os.path.isfile(card_path(path)):
            with open(card_path(path), encoding="utf-8") as f:
                card = json.load(f)
        return module.float().eval(), card
    except RuntimeError:
        pass  # not a TorchScript archive: treat it as a checkpoint
    ck = torch.load(path, map_location="cpu")
    model = build_model(**ck.get("model_kwargs", {}))
    model.load_state_dict(ck["model"])
    card_args = argparse.Namespace(name="reface-cbam-resnet", version="1.0.0", source=None,
                                   license=DEFAULT_LICENSE, accuracy=None)
    return torch.jit.script(model.eval()), build_card(ck, card_args, path)


def sample_inputs(folder, n):
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))
    # Spread the picks over the (alphabetically grouped) sources instead of taking the head.
    picks = [names[int(i * len(names) / n)] for i in range(min(n, len(names)))]
    return torch.from_numpy(np.stack([to_model_input(load_rgb(os.path.join(folder, f))) for f in picks]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("input", help="fp32 TorchScript file or training checkpoint")
    p.add_argument("out", help="fp16 TorchScript file to write")
    p.add_argument("--images", default=None, help="folder of images to compare outputs on "
                   "(default: random tensors)")
    p.add_argument("--n", type=int, default=8, help="number of images to compare")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="exit 1 if max |fp16 - fp32| output difference exceeds this (0 = just report)")
    args = p.parse_args(argv)

    fp32, card = load_fp32_module(args.input)
    # Module._apply on a ScriptModule peeks at .grad of non-leaf tensors: a harmless warning.
    warnings.filterwarnings("ignore", message="The .grad attribute of a Tensor that is not a leaf")
    # copy.deepcopy keeps the fp32 module intact for the comparison below.
    fp16 = copy.deepcopy(fp32).half()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fp16.save(args.out)

    # Reload from disk and upcast exactly as the C wrapper does (module.to(float)).
    reloaded = torch.jit.load(args.out, map_location="cpu").float().eval()
    x = sample_inputs(args.images, args.n) if args.images else torch.randn(args.n, 3, 224, 224)
    with torch.no_grad():
        a, b = fp32(x), reloaded(x)
    d = (a - b).abs()
    report = {"images": int(x.shape[0]), "max_abs_diff": d.max().item(),
              "age_years": d[:, 0].max().item(), "p_male": d[:, 1].max().item(),
              "emotions": d[:, 2:].max().item()}

    if card is not None:
        card = dict(card)
        card["name"] = card.get("name", "reface") + "-fp16"
        training = dict(card.get("training") or {})
        training["export"] = {"precision": "float16 parameters; run after module.to(float32)",
                              "from": os.path.abspath(args.input), "fp16_vs_fp32": report}
        card["training"] = training
        write_card(card, args.out)

    size32 = os.path.getsize(args.input) if args.input.endswith(".pt") else float("nan")
    print("wrote %s (%.1f MB, fp32 input %.1f MB)" % (args.out, os.path.getsize(args.out) / 1e6, size32 / 1e6))
    print("fp16 vs fp32 over %d inputs: max |diff| %.3g (age %.3g years, p_male %.3g, emotions %.3g)"
          % (report["images"], report["max_abs_diff"], report["age_years"], report["p_male"],
             report["emotions"]))
    if args.tolerance > 0 and report["max_abs_diff"] > args.tolerance:
        sys.exit(1)


if __name__ == "__main__":
    main()
