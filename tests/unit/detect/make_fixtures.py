"""Copies the detector cases of the shared golden set into the repo.

Run once from the repo root with the shared folder present:
    /usr/bin/python3 tests/unit/detect/make_fixtures.py ../shared/golden
Writes tests/data/golden/images/<case>.png (lossless copies of the uint8
source images), tests/data/golden/faceapi/ssd/<case>.*.npy (raw and decoded
outputs), tiny/strip1x3.input_416.rows100_180.npy (rows 100..179 of a stored
padded+resized input: the image ends at row 138.7, so both sides of the
padding edge) and
tests/unit/detect/<case>.expected: face-api's own detections, one per line
"min_confidence score x y width height" in pixels.
"""

import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

CASES = ["mosaic2x2", "strip1x3", "ffhq_00064", "ferplus_fer0028735"]


def main():
    src = sys.argv[1]
    dst = os.path.join("tests", "data", "golden")
    manifest = json.load(open(os.path.join(src, "manifest.json")))
    ssd = manifest["models"]["faceapi_ssd_mobilenetv1"]["cases"]
    for case in CASES:
        img = np.load(os.path.join(src, "images", case + ".npy"))
        Image.fromarray(img).save(os.path.join(dst, "images", case + ".png"),
                                  optimize=True)
        for part in ("boxes", "scores", "box_encodings", "class_logits"):
            name = "%s.%s.npy" % (case, part)
            shutil.copyfile(os.path.join(src, "faceapi", "ssd", name),
                            os.path.join(dst, "faceapi", "ssd", name))
        with open(os.path.join("tests", "unit", "detect",
                               case + ".expected"), "w") as f:
            for key, dets in sorted(ssd[case]["detections"].items()):
                conf = key.split("=")[1]
                for d in dets:
                    b = d["box"]
                    f.write("%s %.9g %.9g %.9g %.9g %.9g\n"
                            % (conf, d["score"], b["x"], b["y"], b["width"],
                               b["height"]))
    full = np.load(os.path.join(src, "faceapi", "tiny",
                                "strip1x3.input_416.npy"))
    np.save(os.path.join(dst, "faceapi", "tiny",
                         "strip1x3.input_416.rows100_180.npy"),
            np.ascontiguousarray(full[0, 100:180]))


if __name__ == "__main__":
    main()
