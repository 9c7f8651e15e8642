"""Heads fitted as convex problems, so that a rerun on another CPU gives
the same weights.

A head trained by minibatch AdamW is a chaotic process: the features a
CPU without AVX2 computes differ from an AVX2 one's in the last bits, and
thousands of steps later the two heads disagree by years of age on some
faces, although both are as accurate.  Here the part that is learned is
convex with a strictly convex penalty, and it is solved in float64 until
its gradient is tiny (the largest component left is reported), so the
answer is the unique minimum, near enough: it moves with the data only as
much as the data moves.

The head is the same module the served model uses (reface_heads.Head):
standardised features, then either the output layer alone (hidden == 0) or
a fixed random ReLU layer followed by the output layer.  The random layer
is drawn from the configuration's seed with numpy's legacy generator
(uniform draws only: the same numbers on every machine) and is not
trained.  The losses are the ones the minibatch training uses, made
smooth where they were not: age a pseudo-Huber loss (L1 beyond `delta`
years), gender the logistic loss, emotion the class-weighted KL
divergence to the soft labels.  Every row is used twice, as the photo and
as its mirror image, each with half its weight.
"""

import numpy as np
import torch

import reface_heads


def random_layer(hidden, n_in, seed):
    """The fixed first layer: float32 values (what the served model holds),
    weights uniform with unit variance per input, biases uniform in -1..1."""
    rng = np.random.RandomState(seed)
    scale = np.sqrt(3.0 / n_in)
    w = (rng.uniform(-1.0, 1.0, (hidden, n_in)) * scale).astype(np.float32)
    b = rng.uniform(-1.0, 1.0, hidden).astype(np.float32)
    return w, b


def design(z, w1, b1, block=8192):
    """ReLU(z w1^T + b1) in float64, in blocks (bounded memory)."""
    if w1 is None:
        return z
    out = np.empty((len(z), len(w1)), dtype=np.float64)
    w1t = w1.astype(np.float64).T.copy()
    b1 = b1.astype(np.float64)
    for i in range(0, len(z), block):
        np.maximum(z[i:i + block] @ w1t + b1, 0.0, out=out[i:i + block])
    return out


class Objective:
    """Weighted mean loss over the rows plus l2/2 |W|^2 (the bias is not
    penalised); value and gradient computed by hand, in float64."""

    def __init__(self, task, h, target, weight, cw, l2, delta):
        self.task = task
        self.h = torch.from_numpy(h)
        self.ht = self.h.t().contiguous()
        self.y = torch.from_numpy(np.asarray(target, dtype=np.float64))
        self.w = torch.from_numpy(weight / weight.sum())
        self.l2 = l2
        self.delta = delta
        if cw is not None:
            self.cw = torch.from_numpy(cw.astype(np.float64))
            t = self.y.clamp_min(1e-12)
            # sum_c cw_c t_c log t_c: the constant part of the KL, so the
            # value printed is the KL itself.
            self.const = (self.cw * self.y * t.log()).sum(dim=1)
            self.mass = (self.cw * self.y).sum(dim=1, keepdim=True)

    def __call__(self, w, b):
        s = self.h @ w + b
        if self.task == "age":
            r = s.view(-1) - self.y
            q = torch.sqrt(1.0 + (r / self.delta) ** 2)
            per = self.delta ** 2 * (q - 1.0)
            d = (r / q).view(-1, 1)
        elif self.task == "gender":
            x = s.view(-1)
            per = torch.nn.functional.softplus(x) - self.y * x
            d = (torch.sigmoid(x) - self.y).view(-1, 1)
        else:
            logp = torch.log_softmax(s, dim=1)
            per = self.const - (self.cw * self.y * logp).sum(dim=1)
            d = self.mass * logp.exp() - self.cw * self.y
        wd = d * self.w.view(-1, 1)
        value = float((per * self.w).sum()) + 0.5 * self.l2 * float(
            (w * w).sum())
        return value, self.ht @ wd + self.l2 * w, wd.sum(dim=0)


def minimise(obj, n_in, n_out, b0, max_iter, tol):
    """L-BFGS with a strong Wolfe line search from W = 0, b = b0."""
    w = torch.zeros(n_in, n_out, dtype=torch.float64, requires_grad=True)
    b = torch.full((n_out,), float(b0), dtype=torch.float64,
                   requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter,
                            history_size=20, tolerance_grad=tol,
                            tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")
    calls = [0]

    def closure():
        calls[0] += 1
        value, gw, gb = obj(w.detach(), b.detach())
        w.grad = gw
        b.grad = gb
        return torch.tensor(value, dtype=torch.float64)

    opt.step(closure)
    _, gw, gb = obj(w.detach(), b.detach())
    grad = max(float(gw.abs().max()), float(gb.abs().max()))
    return w.detach().numpy(), b.detach().numpy(), grad, calls[0]


def fit(task, cfg, feats, mirrored, target, weight, cw, seed):
    """One head (reface_heads.Head, eval mode) and a line of facts:
    the final largest gradient component and the number of evaluations."""
    both = np.concatenate([feats, mirrored]).astype(np.float64)
    mu, sigma = reface_heads.feature_scale(both)
    # The served model standardises with float32 mu and sigma: fit on the
    # same values.
    mu = mu.astype(np.float32).astype(np.float64)
    sigma = sigma.astype(np.float32).astype(np.float64)
    z = (both - mu) / sigma
    hidden = int(cfg["hidden"])
    w1 = b1 = None
    if hidden > 0:
        w1, b1 = random_layer(hidden, z.shape[1], seed)
    h = design(z, w1, b1)
    del z
    y = np.concatenate([target, target])
    wt = np.concatenate([weight, weight]).astype(np.float64)
    n_out = reface_heads.TASK_OUTPUTS[task]
    b0 = float(np.median(target)) if task == "age" else 0.0
    obj = Objective(task, h, y, wt, cw, float(cfg["l2"]),
                    float(cfg.get("delta", 1.0)))
    w2, b2, grad, calls = minimise(obj, h.shape[1], n_out, b0,
                                   int(cfg.get("max_iter", 2000)),
                                   float(cfg.get("tol", 1e-9)))

    head = reface_heads.make_head(task, cfg)
    state = head.state_dict()
    state["mu"] = torch.from_numpy(mu.astype(np.float32))
    state["sigma"] = torch.from_numpy(sigma.astype(np.float32))
    last = "net.3" if hidden > 0 else "net.1"
    if hidden > 0:
        state["net.0.weight"] = torch.from_numpy(w1).view(hidden, -1, 1, 1)
        state["net.0.bias"] = torch.from_numpy(b1)
    state[last + ".weight"] = torch.from_numpy(
        w2.T.astype(np.float32).copy()).view(n_out, -1, 1, 1)
    state[last + ".bias"] = torch.from_numpy(b2.astype(np.float32))
    head.load_state_dict(state)
    return head.eval(), {"grad_max": grad, "evaluations": calls}
