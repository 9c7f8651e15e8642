"""PyTorch version of face-api's SSD MobileNet v1 face detector.

Written from the weight manifest of @vladmandic/face-api 1.7.15 and checked
against the golden raw outputs (tests/python/test_detector_parity.py).  The
weights use the same uint8 quantisation and TensorFlow layouts as the
attribute nets, so the loaders of faceapi_nets are reused.

Input: float32 NCHW RGB in 0..255 at 512x512, the image padded with zeros
at the bottom or right only (not centred: face-api's toBatchTensor(512,
false)) and resized with the legacy bilinear rule.  The net normalises to
-1..1 inside, as face-api does.
"""

import os
from typing import List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from faceapi_nets import _Weights, _set, load_weights, tf_same_pad

INPUT_SIZE = 512
N_ANCHORS = 5118
# tfjs batchNorm's epsilon in face-api's MobileNet (the float32 of 1e-3).
BN_EPSILON = 0.0010000000474974513
# Depthwise layers of the backbone that have stride 2.
STRIDE2_LAYERS = (2, 4, 6, 12)
# Channels of MobileNet v1's 13 conv pairs (output of each pair).
BACKBONE_CHANNELS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512,
                     1024, 1024)

MODEL_FILES: List[str] = ["ssd_mobilenetv1_model-weights_manifest.json",
                          "ssd_mobilenetv1_model.bin"]

# Weights in the manifest that belong to the TensorFlow graph's plumbing
# (shapes, slice bounds, the resize size), not to the net.
def _is_plumbing(name: str) -> bool:
    return (name.startswith(("Postprocessor/", "Preprocessor/", "concat_1/"))
            or "/stack" in name or "/strided_slice/" in name)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, 0.0, 6.0)


class PointwiseConv(nn.Module):
    """conv (1x1 or 3x3, "same") + bias ("convolution_bn_offset") + relu6."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.k = k
        self.stride = stride
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, bias=True)

    def load(self, w: _Weights, prefix: str) -> None:
        _set(self.conv.weight, w.take(prefix + "/weights").transpose(3, 2, 0, 1),
             prefix + "/weights")
        _set(self.conv.bias, w.take(prefix + "/convolution_bn_offset"),
             prefix + "/convolution_bn_offset")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _relu6(self.conv(tf_same_pad(x, self.k, self.stride, 0.0)))


class DepthwiseConv(nn.Module):
    """3x3 depthwise conv ("same"), inference batch norm, relu6."""

    def __init__(self, c: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(c, c, 3, stride=stride, groups=c, bias=False)
        self.register_buffer("mean", torch.zeros(1, c, 1, 1))
        self.register_buffer("factor", torch.ones(1, c, 1, 1))
        self.register_buffer("offset", torch.zeros(1, c, 1, 1))

    def load(self, w: _Weights, prefix: str) -> None:
        _set(self.conv.weight,
             w.take(prefix + "/depthwise_weights").transpose(2, 3, 0, 1),
             prefix + "/depthwise_weights")
        gamma = w.take(prefix + "/BatchNorm/gamma")
        var = w.take(prefix + "/BatchNorm/moving_variance")
        # tfjs computes scale / sqrt(var + eps) in float32 too.
        factor = (gamma / np.sqrt(var + np.float32(BN_EPSILON))).astype(
            np.float32)
        c = gamma.shape[0]
        _set(self.mean, w.take(prefix + "/BatchNorm/moving_mean")
             .reshape(1, c, 1, 1), prefix + "/BatchNorm/moving_mean")
        _set(self.factor, factor.reshape(1, c, 1, 1), prefix + "/factor")
        _set(self.offset, w.take(prefix + "/BatchNorm/beta")
             .reshape(1, c, 1, 1), prefix + "/BatchNorm/beta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(tf_same_pad(x, 3, self.stride, 0.0))
        return _relu6((out - self.mean) * self.factor + self.offset)


class ConvPair(nn.Module):
    """One MobileNet v1 step: depthwise 3x3 then pointwise 1x1."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.depthwise = DepthwiseConv(cin, stride)
        self.pointwise = PointwiseConv(cin, cout, 1, 1)

    def load(self, w: _Weights, idx: int) -> None:
        self.depthwise.load(w, "MobilenetV1/Conv2d_%d_depthwise" % idx)
        self.pointwise.load(w, "MobilenetV1/Conv2d_%d_pointwise" % idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class BoxPredictor(nn.Module):
    """Two 1x1 convs with bias: box encodings and class logits per anchor."""

    def __init__(self, cin: int, anchors: int):
        super().__init__()
        self.box = nn.Conv2d(cin, anchors * 4, 1, bias=True)
        self.cls = nn.Conv2d(cin, anchors * 3, 1, bias=True)

    def load(self, w: _Weights, prefix: str) -> None:
        for conv, name in ((self.box, "BoxEncodingPredictor"),
                           (self.cls, "ClassPredictor")):
            p = "%s/%s" % (prefix, name)
            _set(conv.weight, w.take(p + "/weights").transpose(3, 2, 0, 1),
                 p + "/weights")
            _set(conv.bias, w.take(p + "/biases"), p + "/biases")

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        # tfjs reshapes NHWC: anchors run fastest, then columns, then rows.
        box = self.box(x).permute(0, 2, 3, 1).reshape(n, -1, 4)
        cls = self.cls(x).permute(0, 2, 3, 1).reshape(n, -1, 3)
        return box, cls


class SsdMobilenetV1(nn.Module):
    """x [N,3,512,512] RGB 0..255 -> (box encodings [N,5118,4] as
    [ty, tx, th, tw], class logits [N,5118,3]; channel 1 is the face)."""

    def __init__(self):
        super().__init__()
        self.conv_0 = PointwiseConv(3, 32, 3, 2)
        pairs = []
        cin = 32
        for i, cout in enumerate(BACKBONE_CHANNELS):
            stride = 2 if (i + 1) in STRIDE2_LAYERS else 1
            pairs.append(ConvPair(cin, cout, stride))
            cin = cout
        self.pairs = nn.ModuleList(pairs)
        # The extra feature layers: 1x1 then 3x3 stride 2, four times.
        extra = [(1024, 256, 1, 1), (256, 512, 3, 2), (512, 128, 1, 1),
                 (128, 256, 3, 2), (256, 128, 1, 1), (128, 256, 3, 2),
                 (256, 64, 1, 1), (64, 128, 3, 2)]
        self.extra = nn.ModuleList(
            [PointwiseConv(a, b, k, s) for a, b, k, s in extra])
        # Feature maps the six predictors read: conv 11 (32x32, 3 anchors),
        # the backbone's end (16x16), then extra layers 1, 3, 5, 7.
        self.predictors = nn.ModuleList([
            BoxPredictor(512, 3), BoxPredictor(1024, 6), BoxPredictor(512, 6),
            BoxPredictor(256, 6), BoxPredictor(256, 6), BoxPredictor(128, 6)])

    @classmethod
    def from_manifest(cls, manifest_path: str) -> "SsdMobilenetV1":
        net = cls()
        raw = load_weights(manifest_path)
        anchors = raw.pop("Output/extra_dim")
        for name in [n for n in raw if _is_plumbing(n)]:
            del raw[name]
        w = _Weights(raw)
        net.conv_0.load(w, "MobilenetV1/Conv2d_0_pointwise")
        for i, pair in enumerate(net.pairs):
            pair.load(w, i + 1)
        for i, layer in enumerate(net.extra):
            layer.load(w, "Prediction/Conv2d_%d_pointwise" % i)
        for i, pred in enumerate(net.predictors):
            pred.load(w, "Prediction/BoxPredictor_%d" % i)
        w.check_all_used()
        net.anchors = anchors.reshape(N_ANCHORS, 4)
        return net.eval()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.conv_0(x / 127.5 - 1.0)
        conv11 = out
        for i, pair in enumerate(self.pairs):
            out = pair(out)
            if i == 10:
                conv11 = out
        maps = [conv11, out]
        e = out
        for i, layer in enumerate(self.extra):
            e = layer(e)
            if i % 2 == 1:
                maps.append(e)
        boxes = []
        logits = []
        for i, pred in enumerate(self.predictors):
            b, c = pred(maps[i])
            boxes.append(b)
            logits.append(c)
        return torch.cat(boxes, 1), torch.cat(logits, 1)


class DetectorModule(nn.Module):
    """What models/detector.pt runs: the net plus the box decoding.

    forward(x [N,3,512,512] RGB 0..255) -> [N, 5118 * 5]: per anchor,
    score (sigmoid of the face logit), then ymin, xmin, ymax, xmax as
    fractions of the padded 512 square.  One flat row per image keeps the
    server's model_forward() contract ([N, C] float32).  NMS and removing
    the padding happen in C (core/detect.c).
    """

    def __init__(self, net: SsdMobilenetV1):
        super().__init__()
        self.net = net
        a = torch.from_numpy(np.ascontiguousarray(net.anchors))
        size = a[:, 2:4] - a[:, 0:2]
        self.register_buffer("anchor_size", size)
        self.register_buffer("anchor_centre", a[:, 0:2] + size / 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != 512
                or x.shape[3] != 512):
            raise RuntimeError("detector: input must be [N,3,512,512]")
        t, logits = self.net(x)
        centre = t[:, :, 0:2] / 10.0 * self.anchor_size + self.anchor_centre
        half = torch.exp(t[:, :, 2:4] / 5.0) * self.anchor_size / 2.0
        score = torch.sigmoid(logits[:, :, 1:2])
        out = torch.cat([score, centre - half, centre + half], dim=2)
        return out.reshape(x.shape[0], -1)


def load_detector(src: str) -> SsdMobilenetV1:
    return SsdMobilenetV1.from_manifest(os.path.join(src, MODEL_FILES[0]))


def pad_bottom_right(img: np.ndarray) -> np.ndarray:
    """Zero-pad uint8 [H, W, C] to a square at the bottom or right only."""
    h, w = img.shape[:2]
    m = max(h, w)
    return np.pad(img, [(0, m - h), (0, m - w), (0, 0)], mode="constant")


def to_detector_input(img: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float32 [3, 512, 512], 0..255 (face-api's
    toBatchTensor(512, false)); what core/detect.c computes in C."""
    from preprocess import resize_legacy_bilinear

    sq = pad_bottom_right(img)
    if sq.shape[0] == INPUT_SIZE:
        x = sq.astype(np.float32)
    else:
        x = resize_legacy_bilinear(sq, INPUT_SIZE, INPUT_SIZE)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
