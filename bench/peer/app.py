"""The Python peer of `make bench`: the same TorchScript model behind
FastAPI, the way such services are usually written (PIL for the image,
NumPy for the tensor, one uvicorn worker per core, started with
`uvicorn app:app --workers N`).

It is given the model-side choices Reface makes, so that the comparison
measures the serving stack and not a handicap: one torch thread per worker
(workers x threads = cores) and torch.jit.optimize_for_inference. It does
the same work as Reface's default request: the same face detector
(models/detector.pt: the photo padded at the bottom or right to a square,
resized to 512, scores and boxes out), boxes above 0.5, greedy
non-maximum suppression at IoU 0.5, the largest face cut from the photo,
padded to a square with black, resized to the card's size, ImageNet
normalisation, the attribute model. With ?detect=false it takes the
centred 0.8 crop instead, as Reface does. PIL does the decoding (with the
EXIF orientation) and every resize with its own bilinear filter. Unlike
Reface it looks once: a photo without a face gets none (Reface looks a
second time, framed smaller).

Environment: PEER_MODEL (TorchScript file; its card is the same name with
.json), PEER_DETECTOR (default: detector.pt next to the model; missing:
detection off), PEER_THREADS (default 1), PEER_TUNED (default 1; 0 leaves
torch's defaults, as most such services do: no optimize_for_inference and
as many torch threads per worker as cores).
"""
import io
import json
import os

import numpy as np
import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image, ImageOps

MODEL_PATH = os.environ.get("PEER_MODEL", "models/faceapi.pt")
DETECTOR_PATH = os.environ.get("PEER_DETECTOR", os.path.join(
    os.path.dirname(MODEL_PATH), "detector.pt"))
CROP = 0.8
DETECT_SIZE = 512
MIN_SCORE = 0.5
NMS_IOU = 0.5
TUNED = os.environ.get("PEER_TUNED", "1") != "0"

if TUNED:
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", "1")))

with open(os.path.splitext(MODEL_PATH)[0] + ".json", encoding="utf-8") as f:
    CARD = json.load(f)
SIZE = int(CARD.get("input_size", 224))
MEAN = np.array(CARD.get("mean", [0.485, 0.456, 0.406]), dtype=np.float32)
STD = np.array(CARD.get("std", [0.229, 0.224, 0.225]), dtype=np.float32)
LABELS = CARD["emotion_labels"]

model = torch.jit.load(MODEL_PATH, map_location="cpu").eval()
detector = None
if os.path.exists(DETECTOR_PATH):
    detector = torch.jit.load(DETECTOR_PATH, map_location="cpu").eval()
if TUNED:
    model = torch.jit.optimize_for_inference(model)
    if detector is not None:
        detector = torch.jit.optimize_for_inference(detector)

app = FastAPI(title="face attributes")


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    return ImageOps.exif_transpose(img).convert("RGB")


def to_model_input(img: Image.Image, box) -> torch.Tensor:
    """The box (left, top, right, bottom) cut, padded square, normalised."""
    face = img.crop(box)
    cw, ch = face.size
    side = max(cw, ch)
    square = Image.new("RGB", (side, side))
    square.paste(face, ((side - cw) // 2, (side - ch) // 2))
    square = square.resize((SIZE, SIZE), Image.BILINEAR)
    x = np.asarray(square, dtype=np.float32) / 255.0
    x = (x - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


def centre_box(img: Image.Image):
    w, h = img.size
    cw, ch = max(1, round(w * CROP)), max(1, round(h * CROP))
    left, top = (w - cw) // 2, (h - ch) // 2
    return (left, top, left + cw, top + ch)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float):
    """Indices kept by greedy non-maximum suppression, best first."""
    order = scores.argsort(descending=True)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        lt = torch.maximum(boxes[i, :2], boxes[rest, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clamp(min=0).prod(dim=1)
        overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= iou]
    return keep


def largest_face(img: Image.Image):
    """The largest detected face as a crop box in pixels, or None."""
    w, h = img.size
    side = max(w, h)
    square = Image.new("RGB", (side, side))
    square.paste(img, (0, 0))
    square = square.resize((DETECT_SIZE, DETECT_SIZE), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(square, dtype=np.float32)
                         .transpose(2, 0, 1).copy()).unsqueeze(0)
    with torch.inference_mode():
        rows = detector(x)[0].reshape(-1, 5)
    rows = rows[rows[:, 0] > MIN_SCORE]
    if rows.numel() == 0:
        return None
    # ymin, xmin, ymax, xmax -> x1, y1, x2, y2
    boxes = rows[:, [2, 1, 4, 3]] * side
    kept = boxes[nms(boxes, rows[:, 0], NMS_IOU)]
    areas = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    x1, y1, x2, y2 = kept[int(areas.argmax())].tolist()
    box = (max(0, int(x1)), max(0, int(y1)), min(w, int(x2)),
           min(h, int(y2)))
    return box if box[2] > box[0] and box[3] > box[1] else None


@app.get("/health")
async def health():
    return {"status": "ok", "model": CARD.get("name"),
            "emotion_labels": LABELS}


@app.post("/predict")
async def predict(image: UploadFile = File(...), detect: bool = True):
    data = await image.read()
    try:
        img = decode(data)
    except Exception:
        raise HTTPException(status_code=400,
                            detail="Image could not be decoded")
    if detect and detector is not None:
        box = largest_face(img)
        if box is None:
            return {"face_detected": False, "faces": []}
    else:
        box = centre_box(img)
    x = to_model_input(img, box)
    with torch.inference_mode():
        out = model(x)
    if isinstance(out, (tuple, list)):
        out = torch.stack([o.reshape(-1) for o in out], dim=1)
    row = out[0].tolist()
    age, p_male = row[0], row[1]
    emotions = dict(sorted(zip(LABELS, row[2:]), key=lambda kv: -kv[1]))
    top = next(iter(emotions))
    return {
        "face_detected": bool(detect and detector is not None),
        "box": list(box),
        "age": round(min(max(age, 0.0), 100.0), 1),
        "gender": int(p_male >= 0.5),
        "gender_name": "male" if p_male >= 0.5 else "female",
        "gender_probability": p_male,
        "emotion": top,
        "emotion_confidence": emotions[top],
        "emotions": emotions,
    }
