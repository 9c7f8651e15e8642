#!/usr/bin/python3
"""Copies the FFHQ and UTKFace rows of an eval folder (default
../shared/eval/dev) into OUT with every photo upscaled SCALE times (Lanczos)
and saved as a JPEG (quality 95), labels unchanged. `make eval DIR=OUT`
then measures the server's reduced-size JPEG decode on photos large enough
to use it (at SCALE 4, a 256 px photo becomes 1024 px and is decoded at
1/2, a 200 px one 800 px, decoded at 1/2); compare with the same rows of
`make eval` on the originals.

Usage: /usr/bin/python3 bench/upscale_eval.py OUT [SCALE] [SRC]
"""
import csv
import os
import sys

from PIL import Image


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    out = argv[1]
    scale = int(argv[2]) if len(argv) > 2 else 4
    src = argv[3] if len(argv) > 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
        "eval", "dev")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(src, "labels.csv"), newline="",
              encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head, keep = rows[0], []
    for row in rows[1:]:
        if not row[0].endswith(".jpg"):
            continue
        with Image.open(os.path.join(src, row[0])) as im:
            im = im.convert("RGB")
            im.resize((im.width * scale, im.height * scale),
                      Image.LANCZOS).save(os.path.join(out, row[0]),
                                          quality=95)
        keep.append(row)
    with open(os.path.join(out, "labels.csv"), "w", newline="",
              encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(keep)
    print("upscale_eval: %d photos x%d into %s" % (len(keep), scale, out))


if __name__ == "__main__":
    main(sys.argv)
