#!/usr/bin/python3
"""Writes the test-only model and images of the operations tests.

    /usr/bin/python3 tests/e2e/make_ops_models.py OUTDIR

Needs Debian's python3-torch (the same libtorch 1.13 the server links).
The tests run it themselves when OUTDIR/STAMP is missing or older than
this script; nothing it writes is committed.

Written to OUTDIR:
  slow.pt, slow.json  a TorchScript model that keeps the server's contract
                      ([N, 3, S, S] in, [N, 9] out, 7 labels, card name
                      "reface-test-slow") and whose forward burns CPU for a
                      time chosen by its input:
                        all zeros (the workers' start-up contract check):
                          0.4 s (a worker runs it three times as it starts,
                          so it is seen loading for over a second);
                        an image whose every pixel is at least light grey
                          (grey.png): 3 s, a slow request that ends;
                        pure white (white.png): 10 minutes, a request only
                          the master's deadline ends;
                        anything else (a real photo): at once.
                      The waits are on the monotonic clock (a busy loop:
                      TorchScript has no sleep), so a loaded machine does
                      not stretch them much.
  grey.png, white.png 64x64 flat images for the above
  STAMP               written last
"""

import json
import os
import sys
import time

import torch
import torch.nn as nn
from PIL import Image

LABELS = ["anger", "disgust", "fear", "happiness", "neutral", "sadness",
          "surprise"]
INPUT = 32
# Thresholds on the smallest normalised input value. With ImageNet mean and
# std, white is >= 2.25 in every channel, grey 200 >= 1.31, and a real photo
# (or the black padding of a non-square one) has values below 0.
WHITE_MIN = 2.0
GREY_MIN = 1.0
LOAD_NS = 400000000
SLOW_NS = 3000000000
HANG_NS = 600000000000


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.white_min = WHITE_MIN
        self.grey_min = GREY_MIN
        self.load_ns = LOAD_NS
        self.slow_ns = SLOW_NS
        self.hang_ns = HANG_NS
        self.register_buffer("logits", torch.arange(7, dtype=torch.float32))

    def forward(self, x):
        lo = float(x.min())
        hi = float(x.max())
        ns = 0
        if lo == 0.0 and hi == 0.0:
            ns = self.load_ns
        elif lo >= self.white_min:
            ns = self.hang_ns
        elif lo >= self.grey_min:
            ns = self.slow_ns
        # A busy wait on the monotonic clock (TorchScript has no sleep):
        # wall-clock time, however loaded the machine is.
        t0 = torch.ops.prim.TimePoint()
        spins = torch.zeros(1)
        while torch.ops.prim.TimePoint() - t0 < ns:
            spins = spins + 1.0
        batch = x.shape[0]
        # The loop's result reaches the output, so no optimiser drops it;
        # tanh keeps it bounded, so the age stays finite.
        age = torch.full((batch, 1), 30.0) + torch.tanh(spins) * 1e-6
        p_male = torch.full((batch, 1), 0.25)
        emotions = torch.softmax(self.logits, dim=0).expand(batch, 7)
        return torch.cat([age, p_male, emotions], dim=1)


def timed(model, value):
    x = torch.full((1, 3, INPUT, INPUT), value)
    t0 = time.perf_counter()
    model(x)
    return time.perf_counter() - t0


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    model = torch.jit.script(Slow()).eval()
    # The server freezes and optimises every model it loads: check that the
    # busy wait survives that and lasts what it should.
    check = torch.jit.optimize_for_inference(torch.jit.script(Slow()).eval())
    load_s = timed(check, 0.0)
    fast_s = timed(check, -0.5)
    if not (0.3 < load_s < 10.0 and fast_s < 0.5):
        sys.exit("make_ops_models: the busy wait does not work: %.2f s, "
                 "%.2f s" % (load_s, fast_s))
    model.save(os.path.join(out, "slow.pt"))
    card = {
        "name": "reface-test-slow",
        "input_size": INPUT,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "emotion_labels": LABELS,
        "notes": "test-only model of tests/e2e: slow on purpose",
    }
    with open(os.path.join(out, "slow.json"), "w") as f:
        json.dump(card, f, indent=1)

    Image.new("RGB", (64, 64), (200, 200, 200)).save(
        os.path.join(out, "grey.png"))
    Image.new("RGB", (64, 64), (255, 255, 255)).save(
        os.path.join(out, "white.png"))
    with open(os.path.join(out, "STAMP"), "w") as f:
        f.write("zeros %.2f s, photo %.3f s\n" % (load_s, fast_s))
    print("make_ops_models: wrote %s (zeros %.2f s, photo %.3f s)"
          % (out, load_s, fast_s))


if __name__ == "__main__":
    main()
