"""Expressions of the faces in image files, from a finished run's best model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import Split
from ..data.decode import centre_box, face_array, open_image, square_box, to_mode
from ..data.formats import IMAGE_SUFFIXES
from .evaluate import load_run
from .loop import DeviceData, predict, resolve_device


def image_files(paths: list[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in named folders."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such image or folder: {p}")
    return out


def model_and_images(paths: list[str | Path]) -> tuple[Path, list[str | Path]]:
    """``[MODEL] IMAGE...`` of the command line: the first path is the model when it is a folder
    with a config.yaml (a run directory or model folder) and images follow; otherwise every path
    is an image and the model is the one shipped with the project (``model_folder.SHIPPED``)."""
    from ..model_folder import SHIPPED, is_model_folder
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:  # a mistyped model folder must not be reported as "no model shipped"
        raise FileNotFoundError(f"no such image or folder: {', '.join(missing)}")
    first = Path(paths[0])
    if first.is_dir() and (first / "config.yaml").is_file():
        if len(paths) == 1:
            raise ValueError(f"{first} is a model; name the images to classify after it")
        return first, list(paths[1:])
    if not is_model_folder(SHIPPED):
        raise FileNotFoundError(f"no model named and no shipped model in {SHIPPED}: pass a run directory "
                                f"or model folder first (python -m fer_utils export makes one)")
    return SHIPPED, list(paths)


def face_boxes(image, detector, min_prob: float) -> list[tuple[float, float, float, float]]:
    """Every MTCNN face (x, y, w, h) at or above ``min_prob``, most confident first."""
    boxes, probs = detector.detect(image.convert("RGB"))
    if boxes is None:
        return []
    out = []
    for i in np.argsort(-np.asarray(probs, dtype=float)):
        if probs[i] >= min_prob:
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            out.append((x1, y1, x2 - x1, y2 - y1))
    return out


def predict_files(run_dir: str | Path, paths: list[str | Path], *, detect: bool = True,
                  margin: float = 0.2, min_prob: float = 0.9, device: str = "cpu") -> list[dict]:
    """One record per image: its faces (box, expression, class probabilities).

    With ``detect=False`` the centred square of each image is taken as the face
    (for images that are already face crops, like FER2013 or CK+48).
    """
    cfg, model = load_run(run_dir, device)
    names = cfg_class_names(run_dir)
    detector = _mtcnn() if detect else None
    mode = "L" if cfg.data.in_chans == 1 else "RGB"
    records = []
    for path in image_files(paths):
        image = to_mode(open_image(str(path)), mode)
        boxes = face_boxes(image, detector, min_prob) if detect else [None]
        faces = []
        for box in boxes:
            crop = square_box(box, margin) if box is not None else centre_box(*image.size)
            faces.append({"box": None if box is None else [round(v, 1) for v in box],
                          **_classify(image.crop(crop), cfg, model, names)})
        record = {"image": str(path), "faces": faces}
        if not faces:
            record["note"] = "no face detected"
        records.append(record)
    return records


@torch.no_grad()
def _classify(face, cfg, model, names) -> dict:
    """The path ``evaluate`` and training take: the same resize (``face_array``), the same
    normalisation and test-time augmentation (``loop.predict``)."""
    x = face_array(face, cfg.data.image_size)[None]
    device = resolve_device(cfg.device)
    out = predict(model, DeviceData(Split(x, np.zeros(1, dtype=np.int64)), device), cfg, device)
    prob = out["prob"][0].cpu().numpy()
    return {"expression": names[int(prob.argmax())],
            "probabilities": {n: round(float(p), 4) for n, p in zip(names, prob)}}


def cfg_class_names(run_dir: str | Path) -> list[str]:
    import json
    return json.loads((Path(run_dir) / "metrics.json").read_text())["test"]["class_names"]


def _mtcnn():
    from ..data.faces import FaceDetector
    return FaceDetector().mtcnn
