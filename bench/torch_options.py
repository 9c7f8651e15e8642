#!/usr/bin/python3
"""Times one batch-1 forward of a TorchScript model under the libtorch
options Reface could choose: torch threads 1 or 2, and with or without
torch.jit.optimize_for_inference (freezing plus oneDNN convolutions). The
configurations are measured in turns (round robin), so that a change in
the machine's load hits all of them alike. Python's torch runs the same
Debian libtorch as the server.

Which BLAS is used is the system's choice (libblas.so.3); to try OpenBLAS
without installing it, extract Debian's libopenblas0-pthread and run this
with LD_LIBRARY_PATH=<extracted>/usr/lib/x86_64-linux-gnu/openblas-pthread.

Usage: /usr/bin/python3 bench/torch_options.py MODEL.pt [ROUNDS]
"""
import statistics
import sys
import time

import torch


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    rounds = int(argv[2]) if len(argv) > 2 else 20
    base = torch.jit.load(argv[1], map_location="cpu").eval()
    configs = {}
    for opt in (False, True):
        m = torch.jit.load(argv[1], map_location="cpu").eval()
        if opt:
            m = torch.jit.optimize_for_inference(m)
        for threads in (1, 2):
            configs[(opt, threads)] = m
    x = torch.randn(1, 3, 224, 224)
    times = {k: [] for k in configs}
    with torch.inference_mode():
        for k, m in configs.items():  # warm-up: profiling runs, oneDNN
            torch.set_num_threads(k[1])
            for _ in range(3):
                m(x)
        ref = base(x)
        for k, m in configs.items():
            out = m(x)
            diff = (out - ref).abs().max().item()
            if diff > 1e-3:
                sys.exit("config %s changes the output by %g" % (k, diff))
        for _ in range(rounds):
            for k, m in configs.items():
                torch.set_num_threads(k[1])
                t = time.perf_counter()
                m(x)
                times[k].append(time.perf_counter() - t)
    blas = "unknown"
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            if "blas" in line:
                blas = line.split()[-1]
                break
    print("model %s, torch %s, BLAS %s" % (argv[1], torch.__version__, blas))
    for (opt, threads), ts in times.items():
        print("  optimize_for_inference=%-3s threads=%d: median %.1f ms, "
              "min %.1f ms" % ("yes" if opt else "no", threads,
                               1e3 * statistics.median(ts), 1e3 * min(ts)))


if __name__ == "__main__":
    main(sys.argv)
