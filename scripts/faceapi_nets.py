"""PyTorch versions of face-api's AgeGenderNet and FaceExpressionNet.

Written from the weight manifests of @vladmandic/face-api 1.7.15 and checked
against the golden vectors (tests/python/test_parity.py).  The weights are
stored TensorFlow-style: filters as uint8 with a per-tensor scale and min,
convolutions HWIO, depthwise filters [H, W, C, 1], dense layers [in, out].
Both nets take float32 NCHW RGB in 0..255 at 112x112 (face-api's `in112`)
and normalise inside, as face-api does.

TensorFlow's "same" padding is asymmetric for stride 2 on even sizes: the
extra row/column goes to the bottom/right.  PyTorch's symmetric padding would
shift every stride-2 sample by one pixel, so stride-2 layers pad explicitly.
"""

import json
import os
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# face-api's per-channel mean (RGB, 0..255); inputs become (x - mean) / 255.
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)

# FaceExpressionNet's output order.
EXPRESSION_LABELS = ("neutral", "happy", "sad", "angry", "fearful",
                     "disgusted", "surprised")

# AgeGenderNet's gender softmax order.
GENDER_LABELS = ("male", "female")

_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8,
              "uint16": np.uint16, "bool": np.bool_}


def load_weights(manifest_path: str) -> Dict[str, np.ndarray]:
    """Read a tfjs weights manifest and its .bin shards.

    Returns {name: float32 array in the TensorFlow layout and shape}.
    Quantised tensors are dequantised as q * scale + min, computed in
    float64 and rounded once to float32 (as tfjs does in JS doubles).
    Raises ValueError if the shards do not hold exactly the listed tensors.
    """
    folder = os.path.dirname(manifest_path)
    with open(manifest_path) as f:
        manifest = json.load(f)

    out = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(folder, p), "rb").read()
                        for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            stored = quant["dtype"] if quant else w["dtype"]
            dt = np.dtype(_NP_DTYPES[stored]).newbyteorder("<")
            nbytes = count * dt.itemsize
            if pos + nbytes > len(blob):
                raise ValueError("%s: shard too short for '%s'"
                                 % (manifest_path, w["name"]))
            raw = np.frombuffer(blob, dtype=dt, count=count, offset=pos)
            pos += nbytes
            if quant:
                if "scale" not in quant or "min" not in quant:
                    raise ValueError("%s: unsupported quantisation of '%s'"
                                     % (manifest_path, w["name"]))
                val = raw.astype(np.float64) * quant["scale"] + quant["min"]
            else:
                val = raw
            out[w["name"]] = val.astype(np.float32).reshape(shape)
        if pos != len(blob):
            raise ValueError("%s: %d bytes left over in the shards"
                             % (manifest_path, len(blob) - pos))
    return out


def tf_same_pad(x: torch.Tensor, k: int, s: int, value: float) -> torch.Tensor:
    """Pad NCHW x as TensorFlow's "same" does for kernel k, stride s.

    Total padding is max((ceil(n/s) - 1) * s + k - n, 0) per axis; the
    smaller half goes top/left, the larger bottom/right.
    """
    h = x.shape[2]
    w = x.shape[3]
    ph = max(((h + s - 1) // s - 1) * s + k - h, 0)
    pw = max(((w + s - 1) // s - 1) * s + k - w, 0)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2],
                 mode="constant", value=value)


def _set(param: torch.Tensor, value: np.ndarray, name: str) -> None:
    t = torch.from_numpy(np.ascontiguousarray(value))
    if tuple(t.shape) != tuple(param.shape):
        raise ValueError("'%s': shape %s does not fit %s"
                         % (name, tuple(t.shape), tuple(param.shape)))
    with torch.no_grad():
        param.copy_(t)


class _Weights:
    """Hands out weights by name and remembers which ones were used."""

    def __init__(self, weights: Dict[str, np.ndarray]):
        self.weights = weights
        self.used = set()

    def take(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise KeyError("weight '%s' missing from the manifest" % name)
        self.used.add(name)
        return self.weights[name]

    def check_all_used(self) -> None:
        left = sorted(set(self.weights) - self.used)
        if left:
            raise ValueError("weights not used by the net: %s" % left)


class TfConv2d(nn.Module):
    """Dense conv + bias with TF "same" padding; filters stored HWIO."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.k = k
        self.stride = stride
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, bias=True)

    def load(self, w: _Weights, prefix: str) -> None:
        _set(self.conv.weight, w.take(prefix + "/filters").transpose(3, 2, 0, 1),
             prefix + "/filters")
        _set(self.conv.bias, w.take(prefix + "/bias"), prefix + "/bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(tf_same_pad(x, self.k, self.stride, 0.0))


class TfSeparableConv2d(nn.Module):
    """tf.separableConv2d(3x3 depthwise, 1x1 pointwise, "same") + bias.

    The stride applies to the depthwise step, as in TensorFlow.
    """

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin,
                                   bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=True)

    def load(self, w: _Weights, prefix: str) -> None:
        dw = w.take(prefix + "/depthwise_filter")      # [3, 3, C, 1]
        pw = w.take(prefix + "/pointwise_filter")      # [1, 1, C, Cout]
        _set(self.depthwise.weight, dw.transpose(2, 3, 0, 1),
             prefix + "/depthwise_filter")
        _set(self.pointwise.weight, pw.transpose(3, 2, 0, 1),
             prefix + "/pointwise_filter")
        _set(self.pointwise.bias, w.take(prefix + "/bias"), prefix + "/bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = tf_same_pad(x, 3, self.stride, 0.0)
        return self.pointwise(self.depthwise(x))


class TfDense(nn.Module):
    """Fully connected layer; weights stored [in, out]."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.fc = nn.Linear(cin, cout)

    def load(self, w: _Weights, prefix: str) -> None:
        _set(self.fc.weight, w.take(prefix + "/weights").T, prefix + "/weights")
        _set(self.fc.bias, w.take(prefix + "/bias"), prefix + "/bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class FaceApiNormalize(nn.Module):
    """(x - mean) / 255 per RGB channel on NCHW input in 0..255."""

    def __init__(self):
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(FACEAPI_MEAN_RGB, dtype=torch.float32)
            .view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / 255.0


# --- AgeGenderNet: TinyXception + two dense heads -------------------------

class ReductionBlock(nn.Module):
    """Two separable convs, 3x3/2 max-pool, plus a 1x1/2 conv shortcut."""

    def __init__(self, cin: int, cout: int, activate_input: bool):
        super().__init__()
        self.activate_input = activate_input
        self.separable_conv0 = TfSeparableConv2d(cin, cout, 1)
        self.separable_conv1 = TfSeparableConv2d(cout, cout, 1)
        self.expansion_conv = TfConv2d(cin, cout, 1, 2)

    def load(self, w: _Weights, prefix: str) -> None:
        self.separable_conv0.load(w, prefix + "/separable_conv0")
        self.separable_conv1.load(w, prefix + "/separable_conv1")
        self.expansion_conv.load(w, prefix + "/expansion_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(x) if self.activate_input else x
        out = self.separable_conv0(out)
        out = self.separable_conv1(F.relu(out))
        # Padding with -inf makes the padded cells never win, which is how
        # TensorFlow's "same" max-pool treats them.
        out = F.max_pool2d(tf_same_pad(out, 3, 2, float("-inf")), 3, 2)
        return out + self.expansion_conv(x)


class MainBlock(nn.Module):
    """Three relu + separable conv steps with an identity shortcut."""

    def __init__(self, c: int):
        super().__init__()
        self.separable_conv0 = TfSeparableConv2d(c, c, 1)
        self.separable_conv1 = TfSeparableConv2d(c, c, 1)
        self.separable_conv2 = TfSeparableConv2d(c, c, 1)

    def load(self, w: _Weights, prefix: str) -> None:
        self.separable_conv0.load(w, prefix + "/separable_conv0")
        self.separable_conv1.load(w, prefix + "/separable_conv1")
        self.separable_conv2.load(w, prefix + "/separable_conv2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.separable_conv0(F.relu(x))
        out = self.separable_conv1(F.relu(out))
        out = self.separable_conv2(F.relu(out))
        return out + x


class TinyXception(nn.Module):
    """face-api's TinyXception: [N,3,112,112] 0..255 -> [N,512,7,7]."""

    def __init__(self, num_main_blocks: int = 2):
        super().__init__()
        self.normalize = FaceApiNormalize()
        self.conv_in = TfConv2d(3, 32, 3, 2)
        self.reduction_block_0 = ReductionBlock(32, 64, False)
        self.reduction_block_1 = ReductionBlock(64, 128, True)
        self.main_blocks = nn.ModuleList(
            [MainBlock(128) for _ in range(num_main_blocks)])
        self.exit_reduction_block = ReductionBlock(128, 256, True)
        self.exit_separable_conv = TfSeparableConv2d(256, 512, 1)

    def load(self, w: _Weights) -> None:
        self.conv_in.load(w, "entry_flow/conv_in")
        self.reduction_block_0.load(w, "entry_flow/reduction_block_0")
        self.reduction_block_1.load(w, "entry_flow/reduction_block_1")
        for i, block in enumerate(self.main_blocks):
            block.load(w, "middle_flow/main_block_%d" % i)
        self.exit_reduction_block.load(w, "exit_flow/reduction_block")
        self.exit_separable_conv.load(w, "exit_flow/separable_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv_in(self.normalize(x)))
        out = self.reduction_block_0(out)
        out = self.reduction_block_1(out)
        for block in self.main_blocks:
            out = block(out)
        out = self.exit_reduction_block(out)
        return F.relu(self.exit_separable_conv(out))


class AgeGenderNet(nn.Module):
    """forward(x [N,3,112,112] RGB 0..255) -> (age [N], gender logits [N,2]).

    Gender order is [male, female]; face-api applies a softmax to it.
    """

    def __init__(self):
        super().__init__()
        self.features = TinyXception(2)
        self.fc_age = TfDense(512, 1)
        self.fc_gender = TfDense(512, 2)

    @classmethod
    def from_manifest(cls, manifest_path: str) -> "AgeGenderNet":
        net = cls()
        w = _Weights(load_weights(manifest_path))
        net.features.load(w)
        net.fc_age.load(w, "fc/age")
        net.fc_gender.load(w, "fc/gender")
        w.check_all_used()
        return net.eval()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # face-api's 7x7 average pool on a 7x7 map is a plain mean.
        pooled = self.features(x).mean(dim=(2, 3))
        age = self.fc_age(pooled).view(-1)
        return age, self.fc_gender(pooled)


# --- FaceExpressionNet: dense-block feature extractor + dense layer -------

class DenseBlock4(nn.Module):
    """Four convs, each fed the relu of the sum of all earlier outputs.

    The first conv has stride 2 and is a plain conv in the net's first
    block, a separable one in the others.
    """

    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.first = first
        if first:
            self.conv0 = TfConv2d(cin, cout, 3, 2)
        else:
            self.conv0 = TfSeparableConv2d(cin, cout, 2)
        self.conv1 = TfSeparableConv2d(cout, cout, 1)
        self.conv2 = TfSeparableConv2d(cout, cout, 1)
        self.conv3 = TfSeparableConv2d(cout, cout, 1)

    def load(self, w: _Weights, prefix: str) -> None:
        self.conv0.load(w, prefix + "/conv0")
        self.conv1.load(w, prefix + "/conv1")
        self.conv2.load(w, prefix + "/conv2")
        self.conv3.load(w, prefix + "/conv3")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + (out2 + out3)))
        return F.relu(out1 + (out2 + (out3 + out4)))


class FaceFeatureExtractor(nn.Module):
    """[N,3,112,112] 0..255 -> [N,256] (after face-api's 7x7 avg pool)."""

    def __init__(self):
        super().__init__()
        self.normalize = FaceApiNormalize()
        self.dense0 = DenseBlock4(3, 32, True)
        self.dense1 = DenseBlock4(32, 64, False)
        self.dense2 = DenseBlock4(64, 128, False)
        self.dense3 = DenseBlock4(128, 256, False)

    def load(self, w: _Weights) -> None:
        self.dense0.load(w, "dense0")
        self.dense1.load(w, "dense1")
        self.dense2.load(w, "dense2")
        self.dense3.load(w, "dense3")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dense0(self.normalize(x))
        out = self.dense1(out)
        out = self.dense2(out)
        out = self.dense3(out)
        return out.mean(dim=(2, 3))


class FaceExpressionNet(nn.Module):
    """forward(x [N,3,112,112] RGB 0..255) -> logits [N,7].

    Order: EXPRESSION_LABELS; face-api applies a softmax to it.
    """

    def __init__(self):
        super().__init__()
        self.features = FaceFeatureExtractor()
        self.fc = TfDense(256, 7)

    @classmethod
    def from_manifest(cls, manifest_path: str) -> "FaceExpressionNet":
        net = cls()
        w = _Weights(load_weights(manifest_path))
        net.features.load(w)
        net.fc.load(w, "fc")
        w.check_all_used()
        return net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def load_nets(src: str) -> Tuple[AgeGenderNet, FaceExpressionNet]:
    """Both nets from a folder holding face-api's model files."""
    ag = AgeGenderNet.from_manifest(
        os.path.join(src, "age_gender_model-weights_manifest.json"))
    ex = FaceExpressionNet.from_manifest(
        os.path.join(src, "face_expression_model-weights_manifest.json"))
    return ag, ex


def nhwc_to_nchw(a: np.ndarray) -> torch.Tensor:
    """float32 [N,H,W,C] numpy (face-api layout) -> NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


MODEL_FILES: List[str] = [
    "age_gender_model-weights_manifest.json", "age_gender_model.bin",
    "face_expression_model-weights_manifest.json", "face_expression_model.bin",
]
