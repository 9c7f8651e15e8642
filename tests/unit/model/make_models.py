#!/usr/bin/python3
"""Writes the small TorchScript models of tests/unit/test_model.c.

    /usr/bin/python3 tests/unit/model/make_models.py OUTDIR

Needs Debian's python3-torch (the libtorch the server links is the same
1.13). test_model runs this itself, once, when OUTDIR/STAMP is missing or
older than this script; nothing it writes is committed. Every model takes
float32 [N, 3, S, S] for any S (adaptive pooling), so the cards can ask
for a small input and the test stays fast.

Written to OUTDIR (X.json is the model card beside X.pt):
  tensor.pt/.json     one tensor [N, 2+K], K = 3 labels, input 32
  tuple.pt            the original Reface layout: a tuple of 2+8 tensors
                      [N]; no card, so the defaults (224, 8 labels) apply
  tuple_card.json     8 labels at input 32, used with tensor.pt (a
                      mismatch) through the `card` setting
  half.pt/.json       tensor.pt's net with float16 weights and an int64
                      buffer (emotion order) that must stay an integer
  wrong_cols.pt/.json one tensor [N, 3] where the card needs [N, 5]
  rank1.pt/.json      one tensor [N]: not [N, C]
  short_tuple.pt      a tuple whose items hold 2 values for N = 1
  raises.pt/.json     forward raises
  const_*.pt/.json    a fixed row: age 150, age -5, P(male) 1.5, emotions
                      summing to 0.9, NaN age
  bad_card.pt/.json   a good model whose card asks for input_size 4
  corrupt.pt          random bytes, seeded
  *.expected          for tensor.pt, tuple.pt and half.pt: float32 outputs
                      for the probe input of test_model.c, [2, C] row-major
  STAMP               written last
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

PROBE_SIZE = 32
PROBE_BATCH = 2


class Net(nn.Module):
    """conv, pool, linear: age, P(male) and a softmax over k emotions."""

    def __init__(self, k):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 2 + k)

    def heads(self, x):
        h = F.relu(self.conv(x))
        h = F.adaptive_avg_pool2d(h, (4, 4)).flatten(1)
        z = self.fc(h)
        age = 30.0 + 10.0 * z[:, 0]
        p_male = torch.sigmoid(z[:, 1])
        emotions = torch.softmax(z[:, 2:], dim=1)
        return age, p_male, emotions

    def forward(self, x):
        age, p_male, emotions = self.heads(x)
        return torch.cat([age[:, None], p_male[:, None], emotions], dim=1)


class TupleNet(Net):
    """The original Reface export: one [N] tensor per output column."""

    def forward(self, x):
        age, p_male, emotions = self.heads(x)
        out = [age, p_male]
        for i in range(emotions.shape[1]):
            out.append(emotions[:, i])
        return tuple(out)


class ReorderNet(Net):
    """Net with an integer buffer, as the converted face-api model has (its
    emotion order): a float16 export must leave that buffer an integer."""

    def __init__(self, k):
        super().__init__(k)
        self.register_buffer("order", torch.arange(k - 1, -1, -1))

    def forward(self, x):
        age, p_male, emotions = self.heads(x)
        emotions = emotions.index_select(1, self.order)
        return torch.cat([age[:, None], p_male[:, None], emotions], dim=1)


class Columns(nn.Module):
    """A fixed number of columns whatever the card says."""

    def __init__(self, cols):
        super().__init__()
        self.cols = cols

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None].repeat(1, self.cols) * 0.0 + 0.5


class Rank1(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))


class ShortTuple(nn.Module):
    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        two = torch.cat([m, m])
        return (two, two, two, two, two)


class Raises(nn.Module):
    def forward(self, x):
        if x.shape[0] > 0:
            raise RuntimeError("unit test model refuses to run")
        return x


class Const(nn.Module):
    """Returns the same row for every image in the batch."""

    def __init__(self, row):
        super().__init__()
        self.register_buffer("row", torch.tensor(row, dtype=torch.float32))

    def forward(self, x):
        n = x.shape[0]
        return self.row[None, :].repeat(n, 1) + 0.0 * x.mean()


def probe(batch, size):
    """The input test_model.c builds: ((i % 17) - 8) / 8, float32."""
    i = torch.arange(batch * 3 * size * size, dtype=torch.int64)
    x = ((i % 17) - 8).to(torch.float32) / 8.0
    return x.reshape(batch, 3, size, size)


def atomic_write(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save(module, path):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    torch.jit.save(torch.jit.script(module.eval()), tmp)
    os.replace(tmp, path)


def card(path, labels, size=PROBE_SIZE, **extra):
    body = {"name": os.path.basename(path)[:-5], "input_size": size,
            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
            "emotion_labels": labels}
    body.update(extra)
    atomic_write(path, json.dumps(body, indent=2).encode())


def expected(module, path):
    with torch.no_grad():
        out = module(probe(PROBE_BATCH, PROBE_SIZE))
    if isinstance(out, tuple):
        out = torch.stack(list(out), dim=1)
    atomic_write(path, out.to(torch.float32).contiguous().numpy().tobytes())


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)  # noqa: E731
    three = ["calm", "joy", "fear"]

    torch.manual_seed(7)
    net = Net(3).eval()
    save(net, p("tensor.pt"))
    card(p("tensor.json"), three)
    expected(net, p("tensor.expected"))

    # Traced, not scripted: a tuple whose length comes from a loop cannot
    # be scripted, and the original export was traced too.
    tup = TupleNet(8).eval()
    tmp = p("tuple.pt") + ".tmp.%d" % os.getpid()
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(tup, probe(1, PROBE_SIZE)), tmp)
    os.replace(tmp, p("tuple.pt"))
    expected(tup, p("tuple.expected"))
    # The defaults' 8 labels, for tensor.pt: 5 columns where 10 are needed.
    card(p("tuple_card.json"), ["a", "b", "c", "d", "e", "f", "g", "h"])

    # Float16 weights on disk; the server computes in float32, so the
    # reference is the same rounded weights, widened.
    half = ReorderNet(3).eval()
    scripted = torch.jit.script(half)
    scripted.half()
    tmp = p("half.pt") + ".tmp.%d" % os.getpid()
    torch.jit.save(scripted, tmp)
    os.replace(tmp, p("half.pt"))
    card(p("half.json"), three)
    expected(half.half().float(), p("half.expected"))

    save(Columns(3), p("wrong_cols.pt"))
    card(p("wrong_cols.json"), three)
    save(Rank1(), p("rank1.pt"))
    card(p("rank1.json"), three)
    save(ShortTuple(), p("short_tuple.pt"))
    card(p("short_tuple.json"), three)
    save(Raises(), p("raises.pt"))
    card(p("raises.json"), three)

    consts = {
        "const_old": [150.0, 0.25, 0.2, 0.3, 0.5],
        "const_young": [-5.0, 0.75, 0.6, 0.3, 0.1],
        "const_pmale": [30.0, 1.5, 0.2, 0.3, 0.5],
        "const_sum": [30.0, 0.5, 0.5, 0.2, 0.2],
        "const_nan": [float("nan"), 0.5, 0.2, 0.3, 0.5],
    }
    for name, row in consts.items():
        save(Const(row), p(name + ".pt"))
        card(p(name + ".json"), three)

    save(Net(3), p("bad_card.pt"))
    card(p("bad_card.json"), three, size=4)

    g = torch.Generator().manual_seed(11)
    junk = torch.randint(0, 256, (4096,), generator=g, dtype=torch.uint8)
    atomic_write(p("corrupt.pt"), junk.numpy().tobytes())

    atomic_write(p("STAMP"), b"make_models.py done\n")


if __name__ == "__main__":
    main()
