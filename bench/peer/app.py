"""The Python peer of `make bench`: the same TorchScript model behind
FastAPI, the way such services are usually written (PIL for the image,
NumPy for the tensor, one uvicorn worker per core, started with
`uvicorn app:app --workers N`).

It is given the model-side choices Reface makes, so that the comparison
measures the serving stack and not a handicap: one torch thread per worker
(workers x threads = cores) and torch.jit.optimize_for_inference. The
preprocessing follows the same idea as Reface's (EXIF orientation, centred
0.8 crop, black padding to a square, bilinear resize to the card's size,
ImageNet normalisation) with PIL's own bilinear filter.

Environment: PEER_MODEL (TorchScript file; its card is the same name with
.json), PEER_THREADS (default 1), PEER_TUNED (default 1; 0 leaves torch's
defaults, as most such services do: no optimize_for_inference and as many
torch threads per worker as cores).
"""
import io
import json
import os

import numpy as np
import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image, ImageOps

MODEL_PATH = os.environ.get("PEER_MODEL", "models/faceapi.pt")
CROP = 0.8
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
if TUNED:
    model = torch.jit.optimize_for_inference(model)

app = FastAPI(title="face attributes")


def preprocess(data: bytes) -> torch.Tensor:
    img = Image.open(io.BytesIO(data))
    img = ImageOps.exif_transpose(img).convert("RGB")
    w, h = img.size
    cw, ch = max(1, round(w * CROP)), max(1, round(h * CROP))
    left, top = (w - cw) // 2, (h - ch) // 2
    img = img.crop((left, top, left + cw, top + ch))
    side = max(cw, ch)
    square = Image.new("RGB", (side, side))
    square.paste(img, ((side - cw) // 2, (side - ch) // 2))
    square = square.resize((SIZE, SIZE), Image.BILINEAR)
    x = np.asarray(square, dtype=np.float32) / 255.0
    x = (x - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


@app.get("/health")
async def health():
    return {"status": "ok", "model": CARD.get("name"),
            "emotion_labels": LABELS}


@app.post("/predict")
async def predict(image: UploadFile = File(...)):
    data = await image.read()
    try:
        x = preprocess(data)
    except Exception:
        raise HTTPException(status_code=400,
                            detail="Image could not be decoded")
    with torch.inference_mode():
        out = model(x)
    if isinstance(out, (tuple, list)):
        out = torch.stack([o.reshape(-1) for o in out], dim=1)
    row = out[0].tolist()
    age, p_male = row[0], row[1]
    emotions = dict(sorted(zip(LABELS, row[2:]), key=lambda kv: -kv[1]))
    top = next(iter(emotions))
    return {
        "age": round(min(max(age, 0.0), 100.0), 1),
        "gender": int(p_male >= 0.5),
        "gender_name": "male" if p_male >= 0.5 else "female",
        "gender_probability": p_male,
        "emotion": top,
        "emotion_confidence": emotions[top],
        "emotions": emotions,
    }
