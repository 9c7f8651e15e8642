#!/usr/bin/python3
"""The heavy model of `make bench`: the original Reface's ResNet + CBAM
(scripts/model_architecture.py) with RANDOM weights (torch seed 0, no
training), exported by scripts/export_torchscript.py exactly as a trained
checkpoint would be. Its answers mean nothing; its cost per image is that of
the architecture, which is what the benchmark measures.

Usage: /usr/bin/python3 bench/make_heavy.py OUT.pt
"""
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "scripts")
sys.path.insert(0, SCRIPTS)
from model_architecture import build_model, count_parameters  # noqa: E402


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    out = argv[1]
    torch.manual_seed(0)
    model = build_model()
    ckpt = os.path.splitext(out)[0] + ".ckpt"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save({"model": model.state_dict(), "model_kwargs": {},
                "config": {"note": "random weights, torch seed 0"}}, ckpt)
    subprocess.run([sys.executable, os.path.join(SCRIPTS,
                                                 "export_torchscript.py"),
                    ckpt, out, "--name", "reface-cbam-resnet-random",
                    "--source", "bench/make_heavy.py: random weights, seed 0",
                    "--license", "n/a (random weights)"], check=True)
    os.remove(ckpt)
    print("make_heavy: %.2f M parameters" % (count_parameters(model) / 1e6))


if __name__ == "__main__":
    main(sys.argv)
