"""Train the age, gender and eight-way emotion heads on cached features.

Usage (from the repo root, after scripts/extract_features.py):
    /usr/bin/python3 scripts/train_heads.py --features build/features \
        --out models/reface_heads.npz [--set emotion.hidden=0 ...] \
        [--minibatch] [--detected DIR ...] DIR...

DIR names the labelled folders whose caches (FEATURES/<folder name>.npz)
are used.  The server answers from two views of a photo: the crop of the
detected face (the default) and the centred crop (detect=false).  A folder
also given with --detected adds its detector-crop cache
(FEATURES/<folder name>.detected.npz) as more rows, to the heads whose
`views` include "detected"; a photo is held out in both views or in none.
Each task uses the samples that have its label and no other: age (L1
loss in years, made smooth below 1 year) and gender (logistic loss on
P(male)) from the sources with those labels, emotion from the soft labels
(FER+ vote shares, Azure scores) with a class-weighted KL divergence, so
that the rare classes (contempt, disgust, fear) are not drowned by neutral
and happiness.

A fixed share of every source (`holdout`, chosen by a seeded permutation)
is held out of training and measured, for both the new heads and face-api's
own layers on the same features; the figures go to the heads' meta and to
--report.  Each head is linear and solved to its unique minimum
(scripts/head_solver.py), so a rerun gives the same weights, and on another
kind of CPU, whose roundings of the features differ in the last bits, the
outputs move by about 0.001 (README, Training).  --minibatch trains the
previous MLP heads with seeded minibatch AdamW instead: the same weights
on the same kind of CPU, but differences of years of age on some faces
across kinds.
"""

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import head_solver  # noqa: E402
import reface_heads  # noqa: E402
from labels import EMOTIONS  # noqa: E402

# The recorded configuration: what `make train` uses.  Every head is
# linear and solved to its unique minimum (scripts/head_solver.py), so that
# a rerun on another kind of CPU gives the same weights (README, Training).
# Chosen on the held-out share of the training set, never on the
# development set.
DEFAULT_CONFIG = {
    "seed": 8,
    "holdout": 0.1,
    "threads": 2,
    "heads": {
        "age": {"solver": "convex", "hidden": 0, "l2": 1e-3, "delta": 1.0,
                "tol": 1e-8, "max_iter": 500,
                "source_weight": {"ffhq_azure": 4.0}},
        "gender": {"solver": "convex", "hidden": 0, "l2": 1e-3, "tol": 1e-8,
                   "max_iter": 500, "source_weight": {"ffhq_azure": 4.0}},
        "emotion": {"solver": "convex", "hidden": 0, "l2": 1e-3, "tol": 1e-8,
                    "max_iter": 500, "class_weight_power": 0.5,
                    "source_weight": {"ffhq_azure": 4.0},
                    "views": ["centre", "detected"]},
    },
}

# The previous configuration (--minibatch): a 256-unit MLP per head trained
# by minibatch AdamW.  A little more accurate on the held-out share, but
# another CPU's roundings change its weights by years of age on some faces.
MINIBATCH_CONFIG = {
    "seed": 8,
    "holdout": 0.1,
    "threads": 2,
    "heads": {
        "age": {"hidden": 256, "dropout": 0.2, "epochs": 40, "lr": 1e-3,
                "weight_decay": 1e-4, "batch": 256,
                "source_weight": {"ffhq_azure": 4.0}},
        "gender": {"hidden": 256, "dropout": 0.2, "epochs": 30, "lr": 1e-3,
                   "weight_decay": 1e-4, "batch": 256,
                   "source_weight": {"ffhq_azure": 4.0}},
        "emotion": {"hidden": 256, "dropout": 0.2, "epochs": 40, "lr": 1e-3,
                    "weight_decay": 1e-4, "batch": 256,
                    "class_weight_power": 0.5,
                    "source_weight": {"ffhq_azure": 4.0},
                    "views": ["centre", "detected"]},
    },
}

# face-api's expression order -> our EMOTIONS (contempt has none).
FACEAPI_TO_OURS = {"neutral": "neutral", "happy": "happiness",
                   "sad": "sadness", "angry": "anger", "fearful": "fear",
                   "disgusted": "disgust", "surprised": "surprise"}


CACHE_KEYS = ("files", "source", "age", "male", "emotions", "features",
              "features_mirrored")


def load_caches(folder_names, features_dir, detected_names=()):
    """The cached rows of the folders: every centred crop first (in folder
    order), then the detector crops of `detected_names`; `view` says
    which is which."""
    parts = []
    for names, suffix, view in ((folder_names, "", "centre"),
                                (detected_names, ".detected", "detected")):
        for name in names:
            path = os.path.join(features_dir, name + suffix + ".npz")
            if not os.path.isfile(path):
                sys.exit("train_heads: no cache %s (run "
                         "scripts/extract_features.py%s)"
                         % (path, " --rects" if suffix else ""))
            with np.load(path) as z:
                part = {k: z[k] for k in CACHE_KEYS}
            part["view"] = np.full(len(part["files"]), view)
            parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def split_holdout(data, share, seed):
    """Boolean mask of held-out rows: `share` of every source, chosen by a
    seeded permutation of the centre rows sorted by file name (so the split
    does not depend on the order of the folders); a detector-crop row
    follows its photo."""
    held = np.zeros(len(data["files"]), dtype=bool)
    rng = np.random.RandomState(seed)
    centre = data["view"] == "centre"
    for src in sorted(set(data["source"].tolist())):
        idx = np.flatnonzero((data["source"] == src) & centre)
        idx = idx[np.argsort(data["files"][idx], kind="stable")]
        n = int(round(len(idx) * share))
        if len(idx) >= 2:
            n = min(max(n, 1), len(idx) - 1)
        else:
            n = 0
        held[idx[rng.permutation(len(idx))[:n]]] = True
    held_photos = set(zip(data["source"][held].tolist(),
                          data["files"][held].tolist()))
    for i in np.flatnonzero(~centre):
        held[i] = (data["source"][i], data["files"][i]) in held_photos
    return held


def task_rows(data, task, views=("centre",)):
    """Rows with the task's label, in the given views."""
    in_view = np.isin(data["view"], list(views))
    if task == "age":
        return np.isfinite(data["age"]) & in_view
    if task == "gender":
        return np.isfinite(data["male"]) & in_view
    return np.isfinite(data["emotions"]).all(axis=1) & in_view


def class_weights(targets, power):
    """(prior)^-power per emotion, normalised so the prior-weighted mean
    is 1; the prior is the soft-label mass of the training rows."""
    prior = targets.sum(axis=0) / targets.sum()
    prior = np.maximum(prior, 1e-4)
    w = prior ** -power
    return (w / (prior * w).sum()).astype(np.float32)


def loss_fn(task, out, target, weight, cw):
    if task == "age":
        per = (out.view(-1) - target).abs()
    elif task == "gender":
        per = F.binary_cross_entropy_with_logits(out.view(-1), target,
                                                 reduction="none")
    else:
        logp = F.log_softmax(out, dim=1)
        # Class-weighted KL(target || prediction): each class's term is
        # scaled by its weight; with power 0 this is the plain KL.
        t = target.clamp_min(1e-8)
        per = (cw * target * (t.log() - logp)).sum(dim=1)
    return (per * weight).sum() / weight.sum()


def train_head(task, cfg, data, rows, seed):
    """Fits one head on the given rows; returns it in eval mode, and a
    dict of facts about the fit for the log (empty for AdamW)."""
    feats = data["features"][rows]
    mirrored = data["features_mirrored"][rows]
    if task == "age":
        target = data["age"][rows]
    elif task == "gender":
        target = data["male"][rows]
    else:
        target = data["emotions"][rows]
    sw = cfg.get("source_weight", {})
    weight = np.array([sw.get(s, 1.0) for s in data["source"][rows]],
                      dtype=np.float32)
    cw = None
    if task == "emotion":
        cw = class_weights(target, float(cfg.get("class_weight_power", 0.0)))

    if cfg.get("solver", "adamw") == "convex":
        return head_solver.fit(task, cfg, feats, mirrored, target, weight,
                               cw, seed)

    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    if cw is not None:
        cw = torch.from_numpy(cw)
    head = reface_heads.make_head(task, cfg)
    mu, sigma = reface_heads.feature_scale(np.concatenate([feats, mirrored]))
    head.mu.copy_(torch.from_numpy(mu))
    head.sigma.copy_(torch.from_numpy(sigma))
    if task == "age":
        # Start the output at the mean age, so L1 does not spend epochs
        # walking the bias there.
        with torch.no_grad():
            head.net[-1].bias.fill_(float(np.median(target)))

    opt = torch.optim.AdamW(head.parameters(), lr=float(cfg["lr"]),
                            weight_decay=float(cfg["weight_decay"]))
    epochs = int(cfg["epochs"])
    batch = int(cfg["batch"])
    n = len(target)
    steps = epochs * ((n + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=float(cfg["lr"]), total_steps=steps, pct_start=0.1)
    f_t = torch.from_numpy(feats)
    m_t = torch.from_numpy(mirrored)
    y_t = torch.from_numpy(target)
    w_t = torch.from_numpy(weight)
    head.train()
    for _ in range(epochs):
        order = rng.permutation(n)
        flip = torch.from_numpy(rng.rand(n) < 0.5)
        for i in range(0, n, batch):
            idx = torch.from_numpy(order[i:i + batch])
            x = torch.where(flip[idx].view(-1, 1), m_t[idx], f_t[idx])
            loss = loss_fn(task, head(x), y_t[idx], w_t[idx], cw)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval(), {}


def old_outputs(trunks, feats):
    """face-api's own age, P(male) and emotions (8 columns, contempt 0)."""
    with torch.no_grad():
        f = torch.from_numpy(feats)
        age = trunks.age_gender.fc_age(f[:, :reface_heads.AG_DIM]).view(-1)
        p_male = F.softmax(trunks.age_gender.fc_gender(
            f[:, :reface_heads.AG_DIM]), dim=1)[:, 0]
        ex = F.softmax(trunks.expression.fc(f[:, reface_heads.AG_DIM:]),
                       dim=1)
    from faceapi_nets import EXPRESSION_LABELS
    emo = torch.zeros(len(feats), len(EMOTIONS))
    for j, name in enumerate(EXPRESSION_LABELS):
        emo[:, EMOTIONS.index(FACEAPI_TO_OURS[name])] = ex[:, j]
    return age.numpy(), p_male.numpy(), emo.numpy()


def new_outputs(heads, feats):
    with torch.no_grad():
        f = torch.from_numpy(feats)
        age = heads["age"](f).view(-1)
        p_male = torch.sigmoid(heads["gender"](f)).view(-1)
        emo = F.softmax(heads["emotion"](f), dim=1)
    return age.numpy(), p_male.numpy(), emo.numpy()


def measure(data, rows, outputs):
    """Per source and view ("source" for the centred crop, "source
    detected" for the detector crop): age MAE, gender accuracy, emotion
    top-1 (the dataset's argmax), balanced top-1 (mean recall over the
    emotions present) and mean TV distance, on the given rows."""
    age, p_male, emo = outputs
    res = {}
    groups = sorted(set(zip(data["source"][rows].tolist(),
                            data["view"][rows].tolist())))
    for src, view in groups:
        sel = rows & (data["source"] == src) & (data["view"] == view)
        r = {"n": int(sel.sum())}
        a = sel & np.isfinite(data["age"])
        if a.any():
            r["age_mae"] = float(np.abs(age[a] - data["age"][a]).mean())
        g = sel & np.isfinite(data["male"])
        if g.any():
            r["gender_accuracy"] = float(
                ((p_male[g] >= 0.5) == (data["male"][g] >= 0.5)).mean())
        e = sel & np.isfinite(data["emotions"]).all(axis=1)
        if e.any():
            truth = data["emotions"][e].argmax(axis=1)
            pred = emo[e].argmax(axis=1)
            r["emotion_top1"] = float((truth == pred).mean())
            recalls = [float((pred[truth == c] == c).mean())
                       for c in range(len(EMOTIONS)) if (truth == c).any()]
            r["emotion_balanced_top1"] = float(np.mean(recalls))
            r["emotion_tv"] = float(
                0.5 * np.abs(emo[e] - data["emotions"][e]).sum(axis=1).mean())
        res[src if view == "centre" else src + " " + view] = r
    return res


def apply_overrides(cfg, sets):
    """--set task.key=value (or key=value at the top level), JSON values."""
    for item in sets:
        key, _, text = item.partition("=")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        parts = key.split(".")
        node = cfg["heads"] if parts[0] in cfg["heads"] else cfg
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="build/features")
    ap.add_argument("--src", default="build/npm/face-api/model",
                    help="face-api's model files (for the old layers)")
    ap.add_argument("--out", required=True, help=".npz of the heads")
    ap.add_argument("--report", help="also write the held-out figures here")
    ap.add_argument("--set", action="append", default=[],
                    help="override the configuration: task.key=value")
    ap.add_argument("--epochs-scale", type=float, default=1.0,
                    help="multiply every AdamW head's epochs (smoke tests)")
    ap.add_argument("--minibatch", action="store_true",
                    help="the previous configuration: MLP heads trained by "
                    "minibatch AdamW (not reproducible across CPUs)")
    ap.add_argument("--detected", action="append", default=[],
                    help="a folder (of DIR) whose detector-crop cache is "
                    "used too")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    cfg = copy.deepcopy(MINIBATCH_CONFIG if args.minibatch
                        else DEFAULT_CONFIG)
    cfg = apply_overrides(cfg, args.set)
    for h in cfg["heads"].values():
        if "epochs" in h:
            h["epochs"] = max(1, int(round(h["epochs"] * args.epochs_scale)))
    torch.set_num_threads(int(cfg["threads"]))
    t0 = time.time()
    names = [os.path.basename(os.path.normpath(d)) for d in args.dirs]
    detected = [os.path.basename(os.path.normpath(d)) for d in args.detected]
    if not set(detected) <= set(names):
        sys.exit("train_heads: --detected names a folder not in DIR")
    data = load_caches(names, args.features, detected)
    held = split_holdout(data, float(cfg["holdout"]), int(cfg["seed"]))

    heads = {}
    facts = {}
    counts = {}
    view_counts = {}
    for k, task in enumerate(reface_heads.TASK_OUTPUTS):
        views = cfg["heads"][task].get("views", ["centre"])
        rows = task_rows(data, task, views) & ~held
        counts[task] = int(rows.sum())
        view_counts[task] = {v: int((rows & (data["view"] == v)).sum())
                             for v in views}
        if counts[task] == 0:
            sys.exit("train_heads: no training rows with a %s label" % task)
        t1 = time.time()
        heads[task], facts[task] = train_head(
            task, cfg["heads"][task], data, rows, int(cfg["seed"]) * 100 + k)
        print(" ".join(["train_heads: %s head on %d rows in %.1f s"
                        % (task, counts[task], time.time() - t1)]
                       + ["%s=%.3g" % kv for kv in facts[task].items()]),
              flush=True)

    trunks = reface_heads.build_trunks(args.src)
    feats = data["features"]
    report = {
        "holdout_rows": int(held.sum()),
        "new": measure(data, held, new_outputs(heads, feats)),
        "faceapi": measure(data, held, old_outputs(trunks, feats)),
    }
    meta = {
        "config": cfg,
        "train_dirs": names,
        "detected_dirs": detected,
        "train_rows": counts,
        "train_rows_per_view": view_counts,
        "fit": facts,
        "holdout": report,
        "emotion_labels": list(EMOTIONS),
        "feature_dim": reface_heads.FEAT_DIM,
        "seconds": round(time.time() - t0, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    reface_heads.save_heads(args.out, heads, meta)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
    for who in ("faceapi", "new"):
        for src, r in report[who].items():
            print("train_heads: held-out %-7s %-19s %s" % (
                who, src, " ".join("%s=%.4g" % (k, v)
                                   for k, v in sorted(r.items()))))
    print("train_heads: wrote %s in %.0f s" % (args.out, time.time() - t0))


if __name__ == "__main__":
    main()
