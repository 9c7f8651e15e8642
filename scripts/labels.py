"""Dataset label loading: turns a data folder into a list of Samples with per-task masks.

Two layouts are understood:
  * labels.csv layout (shared/train/*, shared/eval/dev): columns
    file,age,gender,emotion,source,emotions_json; an empty cell means "no such label".
  * FFHQ-Features layout: a folder of images plus one Azure Face API JSON per image
    (a list of faces, each with faceAttributes.age / .gender / .emotion{anger,...}).
"""
import csv
import json
import math
import os
import re
from typing import Dict, List, Optional

EMOTIONS = ["anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class Sample:
    """One image and whatever labels it has; NaN / None mark a missing label."""

    __slots__ = ("path", "source", "age", "male", "emotions", "emotion")

    def __init__(self, path: str, source: str, age: float = math.nan, male: float = math.nan,
                 emotions: Optional[List[float]] = None, emotion: Optional[str] = None):
        self.path = path
        self.source = source
        self.age = age          # years
        self.male = male        # 1.0 male, 0.0 female
        self.emotions = emotions  # 8 probabilities in EMOTIONS order, summing to 1
        # Hard label for top-1 scoring: the dataset's own (its tie rule may differ from argmax).
        if emotion is None and emotions is not None:
            emotion = EMOTIONS[max(range(len(emotions)), key=lambda k: emotions[k])]
        self.emotion = emotion if emotion in EMOTIONS else None

    @property
    def has_age(self) -> bool:
        return not math.isnan(self.age)

    @property
    def has_gender(self) -> bool:
        return not math.isnan(self.male)

    @property
    def has_emotion(self) -> bool:
        return self.emotions is not None

    def __repr__(self):
        return "Sample(%r, %s, age=%s, male=%s, emo=%s)" % (
            os.path.basename(self.path), self.source, self.age, self.male,
            None if self.emotions is None else [round(e, 3) for e in self.emotions])


def parse_gender(text) -> float:
    t = str(text or "").strip().lower()
    if t in ("male", "m", "man"):
        return 1.0
    if t in ("female", "f", "woman"):
        return 0.0
    return math.nan


def parse_age(text) -> float:
    if text is None or str(text).strip() == "":
        return math.nan
    try:
        a = float(text)
    except ValueError:
        return math.nan
    return a if math.isfinite(a) and a >= 0 else math.nan


def normalise_emotions(scores: Optional[Dict[str, float]]) -> Optional[List[float]]:
    """8 scores -> probabilities; Azure's scores only roughly sum to 1, so renormalise.
    Returns None (missing) when absent or all zero, so the emotion loss skips the sample."""
    if not scores:
        return None
    vals = [max(float(scores.get(k, 0.0) or 0.0), 0.0) for k in EMOTIONS]
    total = sum(vals)
    if not math.isfinite(total) or total <= 0:
        return None
    return [v / total for v in vals]


def load_labels_csv(folder: str) -> List[Sample]:
    samples = []
    default_source = os.path.basename(os.path.normpath(folder))
    with open(os.path.join(folder, "labels.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ej = (row.get("emotions_json") or "").strip()
            emo = normalise_emotions(json.loads(ej)) if ej else None
            samples.append(Sample(
                path=os.path.join(folder, row["file"]),
                source=(row.get("source") or "").strip() or default_source,
                age=parse_age(row.get("age")),
                male=parse_gender(row.get("gender")),
                emotions=emo,
                emotion=(row.get("emotion") or "").strip().lower() or None))
    return samples


def _find_json(folder: str, stem: str) -> Optional[str]:
    """The JSON may sit beside the image or in json/, named like the image or by its bare
    FFHQ number (DCGM names them 00000.json while images may be called ffhq_00000.jpg)."""
    stems = [stem]
    digits = re.search(r"(\d+)$", stem)
    if digits and digits.group(1) != stem:
        stems.append(digits.group(1))
    for d in (folder, os.path.join(folder, "json")):
        for s in stems:
            p = os.path.join(d, s + ".json")
            if os.path.isfile(p):
                return p
    return None


def _main_face(faces):
    """Azure returns a list of faces; when several, the largest rectangle is the subject."""
    if isinstance(faces, dict):
        faces = [faces]
    if not isinstance(faces, list) or not faces:
        return None

    def area(face):
        r = face.get("faceRectangle") or {}
        return float(r.get("width", 0)) * float(r.get("height", 0))
    return max(faces, key=area)


def load_ffhq_features(folder: str) -> List[Sample]:
    samples = []
    source = os.path.basename(os.path.normpath(folder))
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTS:
            continue
        jpath = _find_json(folder, stem)
        if jpath is None:
            continue
        with open(jpath, encoding="utf-8") as f:
            face = _main_face(json.load(f))
        if face is None:  # Azure found no face: no labels at all, nothing to learn from
            continue
        attrs = face.get("faceAttributes") or {}
        samples.append(Sample(
            path=os.path.join(folder, name), source=source,
            age=parse_age(attrs.get("age")), male=parse_gender(attrs.get("gender")),
            emotions=normalise_emotions(attrs.get("emotion"))))
    return samples


def load_folder(folder: str) -> List[Sample]:
    if os.path.isfile(os.path.join(folder, "labels.csv")):
        return load_labels_csv(folder)
    return load_ffhq_features(folder)


def load_folders(folders: List[str], limit: Optional[int] = None) -> List[Sample]:
    """Load several folders. With a limit, take samples round-robin over folders, then over
    sources inside them, so a small limit still sees every source (not just the first folder)."""
    groups: List[List[Sample]] = []
    for folder in folders:
        by_source: Dict[str, List[Sample]] = {}
        for s in load_folder(folder):
            by_source.setdefault(s.source, []).append(s)
        groups.extend(by_source.values())
    if limit is None or limit <= 0:
        return [s for g in groups for s in g]
    out: List[Sample] = []
    i = 0
    while len(out) < limit and any(i < len(g) for g in groups):
        for g in groups:
            if i < len(g) and len(out) < limit:
                # Stride through each group so a limited run is not just its alphabetical head
                # (utkface sorts by age, so the head would be all centenarians).
                out.append(g[(i * 7919) % len(g)] if _coprime(7919, len(g)) else g[i])
        i += 1
    return out


def _coprime(a: int, b: int) -> bool:
    return math.gcd(a, b) == 1


if __name__ == "__main__":
    import sys
    ss = load_folders(sys.argv[1:], limit=None)
    print(len(ss), "samples")
    for s in ss[:5]:
        print(s)
