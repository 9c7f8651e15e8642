"""Small trained heads on face-api's frozen trunks, and the served model.

face-api's AgeGenderNet and FaceExpressionNet end in a global average pool
and one dense layer each.  Their pooled features (512 values from the
age/gender TinyXception, 256 from the expression net) are rich enough for
heads of our own: an eight-way emotion head (with contempt, which face-api
lacks) and new age and gender heads trained on real labelled faces.

This module holds what both the training and the served model share:

* `FaceApiTrunks`: the server's 224 input -> (512 + 256) pooled features,
  exactly the path the converted model takes (undo the ImageNet
  normalisation, every second sample = face-api's own 112 input);
* `Head`: feature standardisation, then a linear layer or a one-hidden-layer
  MLP;
* `RefaceModel`: trunks + heads under the server's contract (age, P(male),
  eight emotions in `EMOTIONS` order), keeping face-api's own age or gender
  layer where the card of the trained heads says the old one is better;
* `save_heads` / `load_heads`: the committed weights as a plain .npz (no
  pickle), with the training configuration stored next to the arrays.
"""

import json
import os
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faceapi_nets  # noqa: E402
from labels import EMOTIONS  # noqa: E402
from preprocess import MEAN, STD  # noqa: E402

AG_DIM = 512   # TinyXception pooled features
EX_DIM = 256   # FaceExpressionNet pooled features
FEAT_DIM = AG_DIM + EX_DIM

# Tasks and the number of outputs of their heads.
TASK_OUTPUTS = {"age": 1, "gender": 1, "emotion": len(EMOTIONS)}


class FaceApiTrunks(nn.Module):
    """x [N,3,224,224] ImageNet-normalised -> features [N, 768].

    The first 512 columns are the age/gender trunk's pooled features, the
    last 256 the expression trunk's: the inputs of face-api's own dense
    layers, which this module keeps (`age_gender.fc_*`, `expression.fc`).
    """

    def __init__(self, age_gender: faceapi_nets.AgeGenderNet,
                 expression: faceapi_nets.FaceExpressionNet):
        super().__init__()
        self.age_gender = age_gender
        self.expression = expression
        self.register_buffer(
            "mean", torch.tensor(MEAN.tolist()).view(1, 3, 1, 1))
        self.register_buffer(
            "std", torch.tensor(STD.tolist()).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb255 = (x * self.std + self.mean) * 255.0
        x112 = rgb255[:, :, 0::2, 0::2]
        ag = self.age_gender.features(x112).mean(dim=(2, 3))
        ex = self.expression.features(x112)
        return torch.cat([ag, ex], dim=1)


class Head(nn.Module):
    """Standardise the features, then linear (hidden == 0) or MLP.

    The dense layers are 1x1 convolutions on an [N, C, 1, 1] view: Debian's
    torch has a generic BLAS, and its convolutions (oneDNN) train these
    layers about ten times faster than nn.Linear does.
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, dropout: float):
        super().__init__()
        self.register_buffer("mu", torch.zeros(n_in))
        self.register_buffer("sigma", torch.ones(n_in))
        if hidden > 0:
            self.net = nn.Sequential(nn.Conv2d(n_in, hidden, 1), nn.ReLU(),
                                     nn.Dropout(dropout),
                                     nn.Conv2d(hidden, n_out, 1))
        else:
            self.net = nn.Sequential(nn.Dropout(dropout),
                                     nn.Conv2d(n_in, n_out, 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = ((f - self.mu) / self.sigma).view(f.shape[0], f.shape[1], 1, 1)
        y = self.net(x)
        return y.view(y.shape[0], y.shape[1])


def feature_scale(both: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A head's standardisation (`mu`, `sigma`) from its training rows and
    their mirror images, in their dtype; sigma is kept 1e-3 away from 0 so
    that a feature which barely varies is not blown up."""
    return both.mean(axis=0), both.std(axis=0) + 1e-3


def make_head(task: str, cfg: Dict) -> Head:
    return Head(FEAT_DIM, TASK_OUTPUTS[task], int(cfg["hidden"]),
                float(cfg.get("dropout", 0.0)))


class RefaceModel(nn.Module):
    """x [N,3,224,224] -> [N, 10]: age, P(male), 8 emotions (EMOTIONS).

    `use_new_age` / `use_new_gender` choose, per task, the trained head or
    face-api's own dense layer on the same features; emotion always comes
    from the trained head (face-api's has no contempt).
    """

    def __init__(self, trunks: FaceApiTrunks, age: Head, gender: Head,
                 emotion: Head, use_new_age: bool, use_new_gender: bool):
        super().__init__()
        self.trunks = trunks
        self.age = age
        self.gender = gender
        self.emotion = emotion
        self.use_new_age = use_new_age
        self.use_new_gender = use_new_gender

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TorchScript reads no module globals: 224 is INPUT_SIZE, 512 AG_DIM.
        if (x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != 224
                or x.shape[3] != 224):
            raise RuntimeError("reface: input must be [N,3,224,224]")
        f = self.trunks(x)
        fa = f[:, :512]
        if self.use_new_age:
            age = self.age(f)
        else:
            age = self.trunks.age_gender.fc_age(fa)
        if self.use_new_gender:
            p_male = torch.sigmoid(self.gender(f))
        else:
            p_male = F.softmax(self.trunks.age_gender.fc_gender(fa),
                               dim=1)[:, 0:1]
        emotions = F.softmax(self.emotion(f), dim=1)
        return torch.cat([age.view(-1, 1), p_male.view(-1, 1), emotions],
                         dim=1)


def save_heads(path: str, heads: Dict[str, Head], meta: Dict) -> None:
    """Heads as float32 arrays named task/param, plus meta as JSON text.

    Written through a temporary name, so a failed run leaves no half file.
    """
    arrays = {}
    for task, head in heads.items():
        for name, t in head.state_dict().items():
            arrays["%s/%s" % (task, name)] = t.detach().cpu().numpy()
    arrays["meta_json"] = np.frombuffer(
        json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_heads(path: str) -> Tuple[Dict[str, Head], Dict]:
    """The heads and meta written by save_heads."""
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta_json"]).decode("utf-8"))
        heads = {}
        for task in TASK_OUTPUTS:
            head = make_head(task, meta["config"]["heads"][task])
            state = {k[len(task) + 1:]: torch.from_numpy(z[k].copy())
                     for k in z.files if k.startswith(task + "/")}
            head.load_state_dict(state)
            heads[task] = head.eval()
    return heads, meta


def centre_crop(img: np.ndarray, crop: float) -> np.ndarray:
    """The server's centred crop (core/preprocess.c prep_centre_rect):
    each side times `crop`, rounded half away from zero, at least 1."""
    h, w = img.shape[:2]
    cw = min(max(int(np.floor(w * crop + 0.5)), 1), w)
    ch = min(max(int(np.floor(h * crop + 0.5)), 1), h)
    x = (w - cw) // 2
    y = (h - ch) // 2
    return img[y:y + ch, x:x + cw]


def build_trunks(src: str) -> FaceApiTrunks:
    ag, ex = faceapi_nets.load_nets(src)
    return FaceApiTrunks(ag, ex).eval()


def emotion_labels() -> List[str]:
    return list(EMOTIONS)
