#!/usr/bin/python3
"""Writes the five benchmark inputs of `make bench` into a folder.

Only small sample photos are committed (images/), so the large inputs are
made from them with PIL:

  face_1024.png    1024x1024 RGB PNG, FFHQ-like: images/ffhq_00064.jpg
                   upscaled (Lanczos) with mild noise, so that the PNG holds
                   photo-like entropy instead of a smooth upscale
  face_256.jpg     images/ffhq_00064.jpg as committed (256x256 JPEG)
  face_200.jpg     images/utkface_12dc068b2d.jpg as committed (200x200)
  gray_48.png      images/ferplus_fer0028735.png as committed (48x48 grey)
  phone_12mp.jpg   4032x3024 JPEG, quality 92, 4:2:0, sensor-like noise, an
                   EXIF block (Make, Model, Orientation 6): the pixels are
                   stored turned a quarter to the left, as a phone held
                   upright stores them, so a viewer that applies the EXIF
                   orientation shows the face upright

The noise uses a fixed seed: every run writes the same files.
Usage: /usr/bin/python3 bench/make_inputs.py OUT_DIR
"""
import os
import shutil
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(HERE, "..", "images")
ORIENTATION = 0x0112
MAKE = 0x010F
MODEL = 0x0110


def noisy(im, sigma, seed):
    rng = np.random.default_rng(seed)
    a = np.asarray(im, dtype=np.float32)
    a = a + rng.normal(0.0, sigma, a.shape).astype(np.float32)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


def phone_photo(face):
    """A 4:3 landscape-sensor frame with the face in the middle, upright
    when shown portrait: 3024 wide, 4032 tall as seen, stored 4032x3024."""
    seen_w, seen_h = 3024, 4032
    canvas = Image.new("RGB", (seen_w, seen_h), (92, 104, 118))
    side = 2600
    canvas.paste(face.resize((side, side), Image.LANCZOS),
                 ((seen_w - side) // 2, (seen_h - side) // 2))
    canvas = noisy(canvas, 6.0, 12)
    # Orientation 6 means: rotate the stored pixels 90 degrees clockwise to
    # display them. So store the upright picture turned counter-clockwise.
    stored = canvas.transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[MAKE] = "Reface"
    exif[MODEL] = "Bench Phone"
    exif[ORIENTATION] = 6
    return stored, exif


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    src = os.path.join(IMAGES, "ffhq_00064.jpg")
    with Image.open(src) as im:
        face = im.convert("RGB")
    big = noisy(face.resize((1024, 1024), Image.LANCZOS), 3.0, 1024)
    big.save(os.path.join(out, "face_1024.png"), optimize=False)
    shutil.copyfile(src, os.path.join(out, "face_256.jpg"))
    shutil.copyfile(os.path.join(IMAGES, "utkface_12dc068b2d.jpg"),
                    os.path.join(out, "face_200.jpg"))
    shutil.copyfile(os.path.join(IMAGES, "ferplus_fer0028735.png"),
                    os.path.join(out, "gray_48.png"))
    stored, exif = phone_photo(face)
    stored.save(os.path.join(out, "phone_12mp.jpg"), quality=92,
                subsampling=2, exif=exif)
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        with Image.open(path) as im:
            print("make_inputs: %-15s %5dx%-5d %-4s %8d bytes"
                  % (name, im.width, im.height, im.mode,
                     os.path.getsize(path)))


if __name__ == "__main__":
    main(sys.argv)
