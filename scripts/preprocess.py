"""The C server's preprocessing of a face crop, in NumPy.

It mirrors, step for step, what the server does before the model, so that
Python tools (the parity tests, the training scripts) feed models exactly
what they get in production:

1. pad the crop to a square with zeros, the face-api way (the odd extra
   line goes to the bottom/right);
2. resize the square to 224x224 with TensorFlow's legacy bilinear rule
   (align_corners=False, half_pixel_centers=False), in float32;
3. scale to 0..1 and normalise with the ImageNet mean and std, CHW float32.

Images are uint8 RGB [H, W, 3].  The server decodes with stb_image; for
JPEGs PIL (load_rgb) can differ by a few grey levels, PNGs are identical.
"""

import numpy as np

INPUT_SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_rgb(path):
    """Decode an image file to uint8 RGB [H, W, 3] with PIL (grey -> RGB)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def pad_square(img):
    """Zero-pad uint8 [H, W, C] to a square, as face-api does.

    With diff = |h - w|, round_half_up(diff / 2) lines are appended at the
    bottom (or right) and the rest prepended at the top (or left).
    """
    h, w = img.shape[:2]
    diff = abs(h - w)
    if diff == 0:
        return img.copy()
    after = (diff + 1) // 2            # Math.round(diff * 0.5), diff >= 0
    before = diff - after
    pad = [(0, 0)] * img.ndim
    if h < w:
        pad[0] = (before, after)
    else:
        pad[1] = (before, after)
    return np.pad(img, pad, mode="constant", constant_values=0)


def _legacy_axis(n_in, n_out):
    """Source indices and weights of TF's legacy bilinear rule, in float32.

    src = dst * (n_in / n_out); lo = floor(src); hi = min(lo + 1, n_in - 1);
    the weight of hi is src - lo.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.arange(n_out, dtype=np.float32) * scale
    lo = np.floor(src).astype(np.int64)
    lo = np.minimum(lo, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo.astype(np.float32)).astype(np.float32)
    return lo, hi, frac


def resize_legacy_bilinear(img, out_h, out_w):
    """Resize [H, W, C] to float32 [out_h, out_w, C], TF legacy bilinear.

    Interpolates along x first (top and bottom rows), then along y, every
    step in float32, like tf.image.resizeBilinear with alignCorners=false
    and halfPixelCenters=false.
    """
    src = np.asarray(img, dtype=np.float32)
    in_h, in_w = src.shape[:2]
    y0, y1, fy = _legacy_axis(in_h, out_h)
    x0, x1, fx = _legacy_axis(in_w, out_w)
    fx = fx[None, :, None]

    top_l = src[y0][:, x0]
    top_r = src[y0][:, x1]
    bot_l = src[y1][:, x0]
    bot_r = src[y1][:, x1]
    top = top_l + (top_r - top_l) * fx
    bot = bot_l + (bot_r - bot_l) * fx
    out = top + (bot - top) * fy[:, None, None]
    return out.astype(np.float32, copy=False)


def to_model_input(img):
    """uint8 RGB crop [H, W, 3] -> float32 [3, 224, 224] model input."""
    sq = pad_square(img)
    x = resize_legacy_bilinear(sq, INPUT_SIZE, INPUT_SIZE)
    x = (x / np.float32(255.0) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
