#!/usr/bin/python3
"""Scores a TorchScript face-attribute model on labelled folders, per source.

Usage: /usr/bin/python3 scripts/test_soft.py MODEL.pt FOLDER [FOLDER ...] [--limit N] [--json OUT]
Prints per source: n, age MAE, gender accuracy, emotion top-1 accuracy (each only over samples
with that label) and the mean total-variation distance between predicted and soft emotions.
The model output is read through its card (MODEL.json): age, p_male, then one probability per
emotion_labels entry. Cards listing fewer / differently named emotions are matched by name.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labels import EMOTIONS, load_folders  # noqa: E402
from preprocess import load_rgb, to_model_input  # noqa: E402

# Other models (face-api's expression net) name emotions as adjectives; map them onto ours.
ALIASES = {"angry": "anger", "disgusted": "disgust", "fearful": "fear", "happy": "happiness",
           "sad": "sadness", "surprised": "surprise", "scared": "fear", "contemptuous": "contempt"}


def load_model(path):
    """TorchScript + card. .float() because fp16-stored files must run in float32 on CPU
    (the C wrapper does the same); it is a no-op for fp32 files."""
    module = torch.jit.load(path, map_location="cpu").float().eval()
    card_file = os.path.splitext(path)[0] + ".json"
    card = {}
    if os.path.isfile(card_file):
        with open(card_file, encoding="utf-8") as f:
            card = json.load(f)
    labels = [ALIASES.get(n.lower(), n.lower()) for n in card.get("emotion_labels", EMOTIONS)]
    return module, card, labels


def to_canonical(probs, labels):
    """[N, len(labels)] model probabilities -> [N, 8] in EMOTIONS order (0 where unsupported)."""
    out = np.zeros((probs.shape[0], len(EMOTIONS)), dtype=np.float64)
    for j, name in enumerate(labels):
        if name in EMOTIONS:
            out[:, EMOTIONS.index(name)] += probs[:, j]
    return out


class Tally:
    """Running sums for one source."""

    def __init__(self):
        self.n = 0
        self.age_err, self.age_n = 0.0, 0
        self.g_ok, self.g_n = 0, 0
        self.e_ok, self.e_n = 0, 0
        self.tv, self.tv_n = 0.0, 0

    def add(self, s, age, p_male, emo8):
        self.n += 1
        if s.has_age:
            self.age_err += abs(age - s.age)
            self.age_n += 1
        if s.has_gender:
            self.g_ok += int((p_male >= 0.5) == (s.male >= 0.5))
            self.g_n += 1
        if s.emotion is not None:
            # A true label the model cannot output counts as wrong: it is a real miss.
            self.e_ok += int(EMOTIONS[int(np.argmax(emo8))] == s.emotion)
            self.e_n += 1
        if s.has_emotion:
            self.tv += 0.5 * float(np.abs(emo8 - np.asarray(s.emotions)).sum())
            self.tv_n += 1

    def result(self):
        div = lambda a, b: (a / b) if b else None  # noqa: E731
        return {"n": self.n, "age_mae": div(self.age_err, self.age_n), "age_n": self.age_n,
                "gender_acc": div(self.g_ok, self.g_n), "gender_n": self.g_n,
                "emotion_top1": div(self.e_ok, self.e_n), "emotion_n": self.e_n,
                "emotion_tv": div(self.tv, self.tv_n), "emotion_tv_n": self.tv_n}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("folders", nargs="+")
    p.add_argument("--limit", type=int, default=0, help="score at most N images (spread over sources)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)

    module, card, labels = load_model(args.model)
    samples = load_folders(args.folders, limit=args.limit or None)
    tallies = {}
    total = Tally()
    with torch.no_grad():
        for i in range(0, len(samples), args.batch_size):
            batch = samples[i:i + args.batch_size]
            x = torch.from_numpy(np.stack([to_model_input(load_rgb(s.path)) for s in batch]))
            out = module(x).double().numpy()
            if out.shape[1] != 2 + len(labels):
                sys.exit("model gives %d columns, card expects %d" % (out.shape[1], 2 + len(labels)))
            emo8 = to_canonical(out[:, 2:], labels)
            for s, row, e in zip(batch, out, emo8):
                tallies.setdefault(s.source, Tally()).add(s, row[0], row[1], e)
                total.add(s, row[0], row[1], e)

    results = {src: t.result() for src, t in sorted(tallies.items())}
    results["all"] = total.result()
    print("%-12s %5s %8s %8s %8s %8s" % ("source", "n", "age_mae", "gender", "emo_top1", "emo_tv"))
    for src, r in results.items():
        print("%-12s %5d %8s %8s %8s %8s" % (src, r["n"], fmt(r["age_mae"], ".2f"),
              fmt(r["gender_acc"], ".3f"), fmt(r["emotion_top1"], ".3f"), fmt(r["emotion_tv"], ".3f")))
    if args.json:
        doc = {"model": os.path.abspath(args.model), "model_name": card.get("name"),
               "data": [os.path.abspath(f) for f in args.folders], "limit": args.limit,
               "per_source": results}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, allow_nan=False)
            f.write("\n")
    # Non-finite predictions are a broken model, whatever the averages say.
    if any(r["age_mae"] is not None and not math.isfinite(r["age_mae"]) for r in results.values()):
        sys.exit("non-finite age predictions")


if __name__ == "__main__":
    main()
