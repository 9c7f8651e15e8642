#!/usr/bin/python3
"""Multi-task training of the Reface CBAM-ResNet (age MSE, gender BCE, soft-emotion KL).

Usage: /usr/bin/python3 scripts/train_ffhq_soft.py --out DIR [FOLDER ...]
Each FOLDER is a labels.csv folder or an FFHQ-Features (Azure JSON) folder; missing labels are
masked out of their loss. Writes DIR/last.pt every epoch / --save-every steps and DIR/best.pt on
the best validation loss; --resume continues from DIR/last.pt (or a given checkpoint).
"""
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labels import EMOTIONS, load_folders  # noqa: E402
from model_architecture import DEFAULT_DEPTHS, DEFAULT_WIDTHS, build_model, count_parameters  # noqa: E402
# Preprocessing is shared with the C server's reference implementation: never re-implement it here.
from preprocess import load_rgb, to_model_input  # noqa: E402


# The shared training sources, so a bare `make train` needs no arguments. Never the eval sets.
DEFAULT_DATA = ["/work/shared/train/ferplus", "/work/shared/train/utkface", "/work/shared/train/ffhq_azure"]


class Progress:
    """Tiny progress bar (tqdm is not installed with Debian's python3 here). Redraws one line on
    a terminal; when logging to a file, prints a line every ~5 % so logs stay short."""

    def __init__(self, total, initial=0, out=sys.stderr):
        self.total, self.out, self.t0, self.start = max(total, 1), out, time.time(), initial
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.last_pct = -1

    def update(self, done, text=""):
        rate = (done - self.start) / max(time.time() - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        frac = done / self.total
        bar = "#" * int(frac * 30)
        line = "[%-30s] %d/%d %.2f it/s eta %dm%02ds %s" % (
            bar, done, self.total, rate, eta // 60, eta % 60, text)
        if self.tty:
            self.out.write("\r" + line[:150] + "\033[K")
        elif int(frac * 20) != self.last_pct or done == self.total:
            self.last_pct = int(frac * 20)
            self.out.write(line + "\n")
        self.out.flush()

    def newline(self):
        if self.tty:
            self.out.write("\n")
            self.out.flush()


class FaceDataset(Dataset):
    """Decodes + preprocesses one image per item; targets carry NaN-free values plus masks."""

    def __init__(self, samples, flip: bool):
        self.samples = samples
        self.flip = flip

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        img = load_rgb(s.path)
        # Flip the uint8 image, not the tensor: padding to square is asymmetric, so flipping
        # after preprocessing would put the padding on a side the server never produces.
        if self.flip and random.random() < 0.5:
            img = np.ascontiguousarray(img[:, ::-1])
        x = torch.from_numpy(np.asarray(to_model_input(img), dtype=np.float32))
        emo = s.emotions if s.has_emotion else [0.0] * len(EMOTIONS)
        return (x,
                torch.tensor(s.age if s.has_age else 0.0, dtype=torch.float32),
                torch.tensor(s.male if s.has_gender else 0.0, dtype=torch.float32),
                torch.tensor(emo, dtype=torch.float32),
                torch.tensor([s.has_age, s.has_gender, s.has_emotion], dtype=torch.bool))


class EpochSampler(Sampler):
    """Seeded per-epoch permutation that can skip the batches already done, so a mid-epoch
    --resume sees exactly the images the interrupted run had not yet seen."""

    def __init__(self, n, seed, epoch, skip):
        self.n, self.seed, self.epoch, self.skip = n, seed, epoch, skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g)[self.skip:].tolist())

    def __len__(self):
        return max(self.n - self.skip, 0)


def multitask_loss(heads, age, male, emo, mask, args):
    """Weighted sum of the three losses, each averaged only over samples that have the label."""
    age_pred, g_logit, e_logits = heads
    zero = age_pred.sum() * 0.0  # keeps the graph alive when a batch lacks a task entirely
    m_age, m_gen, m_emo = mask[:, 0], mask[:, 1], mask[:, 2]
    l_age = F.mse_loss(age_pred[m_age] / args.age_scale, age[m_age] / args.age_scale) \
        if m_age.any() else zero
    l_gen = F.binary_cross_entropy_with_logits(g_logit[m_gen], male[m_gen]) if m_gen.any() else zero
    if m_emo.any():
        t = emo[m_emo]
        # KL(target || predicted); xlogy makes 0*log(0) = 0 for the many zero soft scores.
        kl = (torch.xlogy(t, t) - t * F.log_softmax(e_logits[m_emo], dim=1)).sum(1)
        l_emo = kl.mean()
    else:
        l_emo = zero
    total = args.w_age * l_age + args.w_gender * l_gen + args.w_emotion * l_emo
    return total, (l_age.item(), l_gen.item(), l_emo.item())


def lr_at(step, total, args):
    """Linear warm-up then cosine decay; a pure function of the step so resume needs no state."""
    warm = min(args.warmup, max(total // 10, 1))
    if step < warm:
        return args.lr * (step + 1) / warm
    frac = (step - warm) / max(total - warm, 1)
    return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


@torch.no_grad()
def validate(model, loader, args):
    model.eval()
    n = loss_sum = 0.0
    age_err = age_n = g_ok = g_n = e_ok = e_n = 0.0
    for x, age, male, emo, mask in loader:
        heads = model.forward_heads(x.to(args.device))
        age, male, emo, mask = age.to(args.device), male.to(args.device), emo.to(args.device), mask.to(args.device)
        loss, _ = multitask_loss(heads, age, male, emo, mask, args)
        loss_sum += loss.item() * x.shape[0]
        n += x.shape[0]
        a, g, e = heads
        age_err += (a - age).abs()[mask[:, 0]].sum().item()
        age_n += mask[:, 0].sum().item()
        g_ok += ((g > 0).float() == male)[mask[:, 1]].sum().item()
        g_n += mask[:, 1].sum().item()
        e_ok += (e.argmax(1) == emo.argmax(1))[mask[:, 2]].sum().item()
        e_n += mask[:, 2].sum().item()
    model.train()
    div = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return {"loss": div(loss_sum, n), "age_mae": div(age_err, age_n),
            "gender_acc": div(g_ok, g_n), "emotion_top1": div(e_ok, e_n), "n": int(n)}


def save_checkpoint(path, model, opt, state, args):
    """opt=None leaves the optimizer out (best.pt is only exported, never resumed: 1/3 the size)."""
    tmp = path + ".tmp"  # write-then-rename so an interrupted save never corrupts last.pt
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
                "state": state,
                "config": vars(args), "model_kwargs": {"widths": args.widths, "depths": args.depths},
                "emotion_labels": EMOTIONS}, tmp)
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="*", default=DEFAULT_DATA,
                   help="data folders (labels.csv or Azure JSON layout); default: the three "
                        "/work/shared/train sources")
    p.add_argument("--out", default="models/train", help="checkpoint directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--resume-from", default=None, metavar="CKPT", help="continue from this checkpoint")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many total steps (0 = no cap)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=0, help="use at most N images (spread over sources)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=500, help="warm-up steps (capped at 10%% of the run)")
    p.add_argument("--w-age", type=float, default=1.0)
    p.add_argument("--w-gender", type=float, default=10.0)
    p.add_argument("--w-emotion", type=float, default=5.0)
    p.add_argument("--age-scale", type=float, default=10.0,
                   help="age MSE is computed in units of this many years (10: decades), "
                        "so its size is comparable to the BCE and KL terms")
    p.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all cores)")
    p.add_argument("--save-every", type=int, default=500, help="also write last.pt every N steps")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    args.widths, args.depths = list(DEFAULT_WIDTHS), list(DEFAULT_DEPTHS)
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    samples = load_folders(args.folders, limit=args.limit or None)
    if len(samples) < 2:
        sys.exit("need at least 2 labelled images, found %d" % len(samples))
    # Seeded split, independent of --resume, so validation never leaks into training.
    order = list(range(len(samples)))
    random.Random(args.seed).shuffle(order)
    n_val = min(max(1, int(round(len(samples) * args.val_fraction))), len(samples) - 1)
    val_set = [samples[i] for i in order[:n_val]]
    train_set = [samples[i] for i in order[n_val:]]

    model = build_model(widths=args.widths, depths=args.depths).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val": float("inf"), "history": []}

    if args.resume or args.resume_from:
        path = args.resume_from or os.path.join(args.out, "last.pt")
        ck = torch.load(path, map_location=args.device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        print("resumed from %s at step %d (epoch %d)" % (path, state["step"], state["epoch"]))

    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    total = steps_per_epoch * args.epochs
    if args.max_steps > 0:
        total = min(total, args.max_steps)
    print("params %d | train %d | val %d | %d steps/epoch | %d steps total"
          % (count_parameters(model), len(train_set), len(val_set), steps_per_epoch, total))

    val_loader = DataLoader(FaceDataset(val_set, flip=False), batch_size=args.batch_size,
                            num_workers=args.workers)
    train_ds = FaceDataset(train_set, flip=not args.no_flip)

    def end_of_run_checkpoint():
        metrics = validate(model, val_loader, args)
        metrics.update(step=state["step"], epoch=state["epoch"])
        state["history"].append(metrics)
        print("val step %d: loss %.4f age_mae %.2f gender_acc %.3f emotion_top1 %.3f"
              % (state["step"], metrics["loss"], metrics["age_mae"], metrics["gender_acc"],
                 metrics["emotion_top1"]))
        if metrics["loss"] < state["best_val"]:
            state["best_val"] = metrics["loss"]
            save_checkpoint(os.path.join(args.out, "best.pt"), model, None, state, args)
        save_checkpoint(os.path.join(args.out, "last.pt"), model, opt, state, args)

    model.train()
    bar = Progress(total, initial=state["step"])
    while state["step"] < total and state["epoch"] < args.epochs:
        sampler = EpochSampler(len(train_ds), args.seed, state["epoch"],
                               state["batch_in_epoch"] * args.batch_size)
        loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler,
                            num_workers=args.workers, drop_last=False)
        for x, age, male, emo, mask in loader:
            if state["step"] >= total:
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(state["step"], total, args)
            heads = model.forward_heads(x.to(args.device))
            loss, parts = multitask_loss(heads, age.to(args.device), male.to(args.device),
                                         emo.to(args.device), mask.to(args.device), args)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            state["batch_in_epoch"] += 1
            bar.update(state["step"], "loss %.3f age %.3f gen %.3f emo %.3f" % ((loss.item(),) + parts))
            if args.save_every and state["step"] % args.save_every == 0:
                save_checkpoint(os.path.join(args.out, "last.pt"), model, opt, state, args)
        else:
            # The epoch ran out (not the step budget): validate and start the next one.
            bar.newline()
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            end_of_run_checkpoint()
            continue
        break
    bar.newline()
    if not state["history"] or state["history"][-1]["step"] != state["step"]:
        end_of_run_checkpoint()
    print("done: step %d, best val loss %.4f, checkpoints in %s" % (state["step"], state["best_val"], args.out))


if __name__ == "__main__":
    main()
