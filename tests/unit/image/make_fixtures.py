#!/usr/bin/python3
"""Writes the fixtures of tests/unit/test_image.c and test_sniff.c.

Run from the repository root with Debian's python3 (numpy, PIL):

    /usr/bin/python3 tests/unit/image/make_fixtures.py [OUTDIR]

OUTDIR defaults to the folder of this script. The outputs are committed;
rerun only when a fixture has to change. For every image X it writes:

* X.rgb: PIL's decode of X, uint8 RGB rows top to bottom (the reference
  stb must match exactly for PNG, BMP and GIF, within 4 levels for JPEG);
* for the lossless files listed in TENSORS, X.t224: the output of
  scripts/preprocess.py:to_model_input on PIL's pixels, subsampled (see
  write_tensor for the layout).

Besides the images it writes files the sniffer must refuse: a WebP, a
TIFF, plain text named .jpg and the start of a PDF.
"""

import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "scripts"))
from preprocess import to_model_input  # noqa: E402

# The rows and columns of the 224x224 tensor kept in a .t224 file: every
# third one plus the last, so each file stays near 70 KB instead of 602 KB.
KEEP = sorted(set(range(0, 224, 3)) | {223})


def pattern(w, h, seed):
    """A deterministic image with smooth areas, edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 127.0 + 100.0 * np.sin(x / 3.0) * np.cos(y / 4.0)
    img = np.stack([r, g, b], axis=-1)
    img += rng.normal(0.0, 12.0, img.shape)
    img[h // 3:h // 2, w // 4:w // 2] = (250.0, 10.0, 30.0)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def smooth(w, h):
    """Gradients only: JPEG's lossy coding stays close to the original."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 40.0 + 170.0 * x / (w - 1)
    g = 60.0 + 120.0 * y / (h - 1)
    b = 128.0 + 60.0 * np.sin((x + y) / 9.0)
    return np.clip(np.rint(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


def write_rgb(path, out):
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    with open(out, "wb") as f:
        f.write(rgb.tobytes())
    return rgb


def write_tensor(rgb, out):
    """int32 n, int32 idx[n], float32 v[3][n][n] (little-endian): the
    values of to_model_input(rgb) at rows and columns idx."""
    t = to_model_input(rgb)
    sub = t[:, KEEP][:, :, KEEP].astype("<f4")
    with open(out, "wb") as f:
        f.write(struct.pack("<i", len(KEEP)))
        f.write(np.asarray(KEEP, dtype="<i4").tobytes())
        f.write(sub.tobytes())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)  # noqa: E731

    # Lossless: stb must give PIL's pixels exactly.
    Image.fromarray(pattern(37, 23, 1), "RGB").save(p("rgb37x23.png"))
    grey = pattern(20, 31, 2)[:, :, 1]
    Image.fromarray(grey, "L").save(p("grey20x31.png"))
    # 13 pixels * 3 bytes = 39: BMP rows are padded to 40, which stb skips.
    Image.fromarray(pattern(13, 9, 3), "RGB").save(p("rgb13x9.bmp"))
    pal = Image.fromarray(pattern(24, 17, 4), "RGB").quantize(colors=32)
    pal.save(p("pal24x17.gif"))
    # Lossy: 4:4:4 so that only the IDCTs differ, not chroma upsampling.
    Image.fromarray(smooth(40, 30), "RGB").save(p("photo40x30.jpg"),
                                                quality=92, subsampling=0)

    images = ["rgb37x23.png", "grey20x31.png", "rgb13x9.bmp",
              "pal24x17.gif", "photo40x30.jpg"]
    decoded = {name: write_rgb(p(name), p(name + ".rgb")) for name in images}

    # Whole images, and one rectangle of the 37x23 (x 5, y 3, 20 x 17).
    write_tensor(decoded["rgb37x23.png"], p("rgb37x23.png.t224"))
    write_tensor(decoded["grey20x31.png"], p("grey20x31.png.t224"))
    write_tensor(decoded["rgb37x23.png"][3:20, 5:25],
                 p("rgb37x23.png.rect5_3_20_17.t224"))

    # What the sniffer must refuse.
    Image.fromarray(pattern(8, 8, 5), "RGB").save(p("refuse.webp"))
    Image.fromarray(pattern(8, 8, 6), "RGB").save(p("refuse.tiff"))
    with open(p("text.jpg"), "w") as f:
        f.write("This is plain text that only claims to be a JPEG.\n")
    with open(p("refuse.pdf"), "wb") as f:
        f.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog "
                b"/Pages 2 0 R >>\nendobj\n")


if __name__ == "__main__":
    main()
