"""The convex head solver (scripts/head_solver.py) on small synthetic data.

Run from anywhere: /usr/bin/python3 tests/python/test_head_solver.py
Prints "ok <name>" or "not ok <name>: detail" per check, then
"RESULT head_solver <passed> <failed>"; exits 1 if any check failed.

What `make train`'s reproducibility across CPUs rests on: the hand-written
gradients are the losses' gradients, the solver reaches the minimum, the
fixed random layer is the same numbers everywhere, the fitted module
computes what the solver found, and features that differ in their last
bits (as two CPUs compute them) give the same head.
"""

import os
import sys
import traceback

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import head_solver  # noqa: E402
import reface_heads  # noqa: E402

N_IN = reface_heads.FEAT_DIM
TASKS = ("age", "gender", "emotion")


def synthetic(task, n, seed):
    """Features with a learnable signal, and labels of the task's kind."""
    rng = np.random.RandomState(seed)
    feats = rng.randn(n, N_IN).astype(np.float32)
    mirrored = (feats + 0.1 * rng.randn(n, N_IN)).astype(np.float32)
    s = feats[:, :8] @ rng.randn(8, 8)
    if task == "age":
        target = (35 + 10 * s[:, 0] + rng.randn(n)).astype(np.float32)
    elif task == "gender":
        target = (s[:, 0] + 0.3 * rng.randn(n) > 0).astype(np.float32)
    else:
        e = np.exp(s - s.max(axis=1, keepdims=True))
        target = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    weight = (1 + (rng.rand(n) < 0.2) * 3).astype(np.float32)
    cw = (0.5 + rng.rand(8)).astype(np.float32) if task == "emotion" else None
    return feats, mirrored, target, weight, cw


def cfg(hidden):
    return {"solver": "convex", "hidden": hidden, "l2": 1e-3, "delta": 1.0,
            "tol": 1e-9, "max_iter": 2000}


def outputs(head, feats):
    with torch.no_grad():
        return head(torch.from_numpy(feats)).numpy()


def check_gradients():
    rng = np.random.RandomState(1)
    for task in TASKS:
        feats, _, target, weight, cw = synthetic(task, 200, 2)
        h = rng.randn(200, 30)
        obj = head_solver.Objective(task, h, target, weight.astype(np.float64),
                                    cw, 1e-2, 1.0)
        n_out = reface_heads.TASK_OUTPUTS[task]
        w = torch.from_numpy(0.1 * rng.randn(30, n_out))
        b = torch.from_numpy(rng.randn(n_out))
        value, gw, gb = obj(w, b)
        eps = 1e-6
        for i, j in ((0, 0), (7, n_out - 1), (29, 0)):
            w2 = w.clone()
            w2[i, j] += eps
            numeric = (obj(w2, b)[0] - obj(w - (w2 - w), b)[0]) / (2 * eps)
            assert abs(numeric - float(gw[i, j])) < 1e-6, \
                (task, i, j, numeric, float(gw[i, j]))
        b2 = b.clone()
        b2[0] += eps
        numeric = (obj(w, b2)[0] - obj(w, b - (b2 - b))[0]) / (2 * eps)
        assert abs(numeric - float(gb[0])) < 1e-6, (task, numeric, float(gb[0]))


def check_converges():
    for task in TASKS:
        feats, mirrored, target, weight, cw = synthetic(task, 300, 3)
        _, facts = head_solver.fit(task, cfg(0), feats, mirrored, target,
                                   weight, cw, 5)
        assert facts["grad_max"] <= 1e-7, (task, facts)


def check_learns():
    """The fitted heads find the signal: better than the constant answer
    on rows they did not see."""
    for task in TASKS:
        feats, mirrored, target, weight, cw = synthetic(task, 2000, 4)
        head, _ = head_solver.fit(task, cfg(0), feats[:1500], mirrored[:1500],
                                  target[:1500], weight[:1500], cw, 5)
        out = outputs(head, feats[1500:])
        t = target[1500:]
        if task == "age":
            err = np.abs(out[:, 0] - t).mean()
            base = np.abs(np.median(target[:1500]) - t).mean()
        elif task == "gender":
            err = ((out[:, 0] > 0) != (t > 0.5)).mean()
            base = min(t.mean(), 1 - t.mean())
        else:
            err = (out.argmax(axis=1) != t.argmax(axis=1)).mean()
            base = 1 - np.bincount(t.argmax(axis=1)).max() / len(t)
        assert err < 0.6 * base, (task, err, base)


def check_random_layer_is_pinned():
    """numpy's legacy generator with uniform draws: the same numbers on
    every machine. The pinned values fail if the draw ever changes."""
    w, b = head_solver.random_layer(4, N_IN, 800)
    w2, b2 = head_solver.random_layer(4, N_IN, 800)
    assert np.array_equal(w, w2) and np.array_equal(b, b2)
    assert w.dtype == np.float32 and w.shape == (4, N_IN) and b.shape == (4,)
    assert abs(float(w.std()) - np.sqrt(1.0 / N_IN)) < 0.01, float(w.std())
    got = [round(float(w[0, 0]), 6), round(float(b[3]), 6)]
    assert got == [-0.052328, -0.298538], got
    w3, _ = head_solver.random_layer(4, N_IN, 801)
    assert not np.array_equal(w, w3)


def check_module_matches_solution():
    """The served module (float32, 1x1 convolutions) gives the logits the
    float64 solution gives."""
    for hidden in (0, 32):
        feats, mirrored, target, weight, cw = synthetic("emotion", 300, 6)
        head, _ = head_solver.fit("emotion", cfg(hidden), feats, mirrored,
                                  target, weight, cw, 7)
        sd = {k: v.double().numpy() for k, v in head.state_dict().items()}
        z = (feats.astype(np.float64) - sd["mu"]) / sd["sigma"]
        if hidden:
            w1 = sd["net.0.weight"].reshape(hidden, -1)
            z = np.maximum(z @ w1.T + sd["net.0.bias"], 0)
            last = "net.3"
        else:
            last = "net.1"
        want = z @ sd[last + ".weight"].reshape(8, -1).T + sd[last + ".bias"]
        d = np.abs(outputs(head, feats) - want).max()
        assert d < 1e-4, (hidden, d)


def check_last_bits_do_not_matter():
    """Features 1e-6 apart (two CPUs' roundings) give heads within 1e-4 of
    each other on every row."""
    rng = np.random.RandomState(9)
    for task in TASKS:
        feats, mirrored, target, weight, cw = synthetic(task, 400, 8)
        wobble = lambda a: (a * (1 + 1e-6 * rng.randn(*a.shape))).astype(
            np.float32)
        a, _ = head_solver.fit(task, cfg(64), feats, mirrored, target, weight,
                               cw, 5)
        b, _ = head_solver.fit(task, cfg(64), wobble(feats), wobble(mirrored),
                               target, weight, cw, 5)
        d = np.abs(outputs(a, feats) - outputs(b, feats)).max()
        assert d < 1e-4, (task, d)


CHECKS = [check_gradients, check_converges, check_learns,
          check_random_layer_is_pinned, check_module_matches_solution,
          check_last_bits_do_not_matter]


def main():
    torch.set_num_threads(1)
    passed = failed = 0
    for check in CHECKS:
        name = check.__name__[len("check_"):]
        try:
            check()
            print("ok", name)
            passed += 1
        except Exception:  # a failed check is reported, the rest still run
            print("not ok %s: %s" % (name, traceback.format_exc(
                limit=2).strip().splitlines()[-1]))
            failed += 1
    print("RESULT head_solver %d %d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
