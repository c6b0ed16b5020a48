"""Face boxes for datasets that ship none: MTCNN from ``facenet-pytorch``, offline, on CPU.

The wheel ships its P/R/O-Net weights, so nothing is downloaded. Its metadata pins
old torch/numpy/Pillow, so install it without them:
``pip install --no-deps facenet-pytorch requests``. Only ``detect()`` is used (boxes
in original pixels); the default ``forward()`` returns 160 px crops normalised as
``(x - 127.5) / 128``, which the backbones do not expect.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

INSTALL_HINT = ("crop='mtcnn' needs facenet-pytorch: pip install --no-deps facenet-pytorch requests "
                "(or pass data.params.crop='center' for a detector-free centre crop)")


class FaceDetector:
    """The most confident MTCNN face of an image as (x, y, w, h), or None.

    Paths of images without a face are collected in ``no_face`` so the caller can
    list them (they are never dropped silently).
    """

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        self.mtcnn = MTCNN(min_face_size=min_face_size, thresholds=list(thresholds), device="cpu")
        self.no_face: set[str] = set()

    def __call__(self, im: Image.Image, path: str) -> tuple[float, float, float, float] | None:
        boxes, probs = self.mtcnn.detect(im.convert("RGB"))
        if boxes is None or len(boxes) == 0:
            self.no_face.add(path)
            return None
        x1, y1, x2, y2 = np.asarray(boxes[int(np.argmax(np.asarray(probs, dtype=float)))], dtype=float)
        return x1, y1, x2 - x1, y2 - y1
