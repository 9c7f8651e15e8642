#!/usr/bin/python3
"""Writes the fixtures of tests/unit/test_orient.c (committed; rerun only to
change them): /usr/bin/python3 tests/unit/orient/make_fixtures.py [OUTDIR]

The upright picture is 320x240 in four flat quadrants (red top left, green
top right, blue bottom left, white bottom right), so that every flip and
turn gives a different picture. For each EXIF orientation o in 1..8,
orient_<o>.jpg stores the pixels turned so that applying o shows the
upright picture again, with o in its EXIF block (Make "Reface test").
upright.png is the upright picture itself.
Each JPEG is checked here with PIL's ImageOps.exif_transpose, an
independent reading of the same tag, before it is written.
"""
import io
import os
import sys

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 320, 240
COLOURS = ((230, 20, 20), (20, 200, 40), (30, 40, 220), (245, 245, 245))
# The transpose that undoes what orientation o asks a viewer to do.
UNDO = {1: None, 2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180,
        4: Image.FLIP_TOP_BOTTOM, 5: Image.TRANSPOSE, 6: Image.ROTATE_90,
        7: Image.TRANSVERSE, 8: Image.ROTATE_270}


def upright():
    a = np.zeros((H, W, 3), dtype=np.uint8)
    a[:H // 2, :W // 2] = COLOURS[0]
    a[:H // 2, W // 2:] = COLOURS[1]
    a[H // 2:, :W // 2] = COLOURS[2]
    a[H // 2:, W // 2:] = COLOURS[3]
    return Image.fromarray(a)


def main(argv):
    out = argv[1] if len(argv) > 1 else HERE
    up = upright()
    up.save(os.path.join(out, "upright.png"))
    for o in range(1, 9):
        stored = up if UNDO[o] is None else up.transpose(UNDO[o])
        exif = Image.Exif()
        exif[0x010F] = "Reface test"
        exif[0x0112] = o
        buf = io.BytesIO()
        stored.save(buf, "JPEG", quality=95, exif=exif)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"),
                               dtype=np.int16)
        diff = np.abs(shown - np.asarray(up, dtype=np.int16)).mean()
        if shown.shape != (H, W, 3) or diff > 2.0:
            sys.exit("orientation %d: PIL shows %s, mean diff %.2f"
                     % (o, shown.shape, diff))
        with open(os.path.join(out, "orient_%d.jpg" % o), "wb") as f:
            f.write(buf.getvalue())


if __name__ == "__main__":
    main(sys.argv)
