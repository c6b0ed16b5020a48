"""Decode once: an index's images read, converted, cropped and resized into one uint8 array.

``decode_index`` stores the array (and a content hash of every image) in the
decode-once cache under a hash of the dataset, protocol, crop, size and a
fingerprint of the files (path, size, mtime), so a changed dataset is decoded
again and an unchanged one loads memory-mapped in seconds.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .cache import cached_arrays
from .formats import DataFormatError

#: Bump when decoding changes in a way that changes the arrays.
DECODER_VERSION = 1
CROPS = ("none", "center", "box", "mtcnn")
#: Errors listed in full before "... and N more".
MAX_LISTED = 20


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL image to 8-bit ``L`` or ``RGB``.

    16-bit and 32-bit integer images are rescaled (PIL's own convert clips them);
    alpha is dropped; palette, CMYK and LA images are converted.
    """
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if (im.mode.startswith("I;16") or a.max(initial=0) > 255) else 255.0
        im = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == mode:
        return im
    if mode == "L" and im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return im.convert(mode)


def square_box(box, margin: float) -> tuple[int, int, int, int]:
    """(x, y, w, h) grown by ``margin`` of its size on every side, made square about its centre.

    Returns PIL's (left, top, right, bottom); it may extend past the image (PIL pads with 0).
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    left, top = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    side = max(1, int(round(side)))
    return left, top, left + side, top + side


def centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def open_image(path: str) -> Image.Image:
    """Open and fully load an image; a truncated or unreadable file raises ``DataFormatError``."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy() if im.mode != "P" else im.convert("RGBA")
    except FileNotFoundError:
        raise DataFormatError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise DataFormatError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated/corrupt data
        raise DataFormatError(f"{path}: cannot decode ({err})") from None


def pixels_image(text: str, where: str, side: int = 48) -> Image.Image:
    """A ``side`` x ``side`` grayscale image from space-separated uint8 values (FER2013 CSV)."""
    values = text.split()
    if len(values) != side * side:
        raise DataFormatError(f"{where}: {len(values)} pixel values, expected {side * side}")
    try:
        a = np.array(values, dtype=np.int64)
    except ValueError:
        raise DataFormatError(f"{where}: pixels are not integers") from None
    if a.min() < 0 or a.max() > 255:
        raise DataFormatError(f"{where}: pixel values outside 0..255")
    return Image.fromarray(a.astype(np.uint8).reshape(side, side), "L")


def content_hash(im: Image.Image) -> int:
    """64-bit hash of the decoded pixels (before crop/resize): equal for exact duplicates."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{im.mode}{im.size}".encode())
    h.update(im.tobytes())
    return int.from_bytes(h.digest(), "little")


def decode_one(row, size: int, mode: str, crop: str, margin: float, detector=None) -> tuple[np.ndarray, int]:
    """One index row -> ((C, size, size) uint8, content hash)."""
    if "pixels" in row and isinstance(row["pixels"], str):
        im = pixels_image(row["pixels"], row["path"])
    else:
        im = open_image(row["path"])
    im = to_mode(im, mode)
    digest = content_hash(im)
    if crop == "center":
        im = im.crop(centre_box(*im.size))
    elif crop == "box":
        im = im.crop(square_box(row["bbox"], margin))
    elif crop == "mtcnn":
        box = detector(im, row["path"])
        im = im.crop(square_box(box, margin) if box is not None else centre_box(*im.size))
    return face_array(im, size), digest


def face_array(im: Image.Image, size: int) -> np.ndarray:
    """A cropped face as the network sees it: resized (bilinear) to ``size`` x ``size``,
    uint8 (C, size, size). The one resize of both the dataset cache and ``predict``."""
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def decode_rows(df, size: int, channels: int, crop: str = "none", margin: float = 0.0,
                no_face: str = "error", progress: bool = True, desc: str = "decoding") -> dict:
    """Decode every row of ``df`` (no cache); errors are collected and raised together.

    Returns ``{"images": (N, C, size, size) uint8, "hashes": (N,) uint64}`` plus, with
    ``crop="mtcnn"``, ``"no_face"``: indices of rows where no face was found.
    """
    from tqdm import tqdm

    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; valid: {', '.join(CROPS)}")
    mode = "L" if channels == 1 else "RGB"
    detector = None
    if crop == "mtcnn":
        from .faces import FaceDetector
        detector = FaceDetector()
    images = np.zeros((len(df), channels, size, size), dtype=np.uint8)
    hashes = np.zeros(len(df), dtype=np.uint64)
    errors: list[str] = []
    records = df.to_dict("records")
    for i, row in enumerate(tqdm(records, desc=desc, disable=not progress, mininterval=1.0)):
        try:
            images[i], hashes[i] = decode_one(row, size, mode, crop, margin, detector)
        except DataFormatError as err:
            errors.append(str(err))
    if errors:
        listed = "\n  ".join(errors[:MAX_LISTED])
        more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise DataFormatError(f"{len(errors)} of {len(df)} images could not be decoded:\n  {listed}{more}")
    out = {"images": images, "hashes": hashes}
    if detector is not None:
        missed = [i for i, r in enumerate(records) if r["path"] in detector.no_face]
        if missed and no_face != "center":
            listed = "\n  ".join(records[i]["path"] for i in missed[:MAX_LISTED])
            raise DataFormatError(f"MTCNN found no face in {len(missed)} of {len(df)} images "
                                  f"(pass no_face='center' to centre-crop them instead):\n  {listed}")
        out["no_face"] = np.array(missed, dtype=np.int64)
    return out


def fingerprint(df) -> str:
    """Hash of the index (paths, labels, boxes) and of every source file's size and mtime."""
    h = hashlib.sha256()
    h.update("\n".join(df["path"].astype(str)).encode())
    h.update(np.ascontiguousarray(df["label"].to_numpy(np.int64)).tobytes())
    if "bbox" in df:
        h.update(repr(df["bbox"].tolist()).encode())
    files = df["path"].astype(str).str.split("#").str[0].unique()
    for f in sorted(files):
        try:
            st = os.stat(f)
        except FileNotFoundError:
            raise DataFormatError(f"{f}: file not found") from None
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def decode_index(name: str, df, size: int, channels: int, crop: str = "none", margin: float = 0.0,
                 no_face: str = "error", protocol: dict | None = None,
                 progress: bool = True) -> dict[str, np.ndarray]:
    """``decode_rows`` through the decode-once cache (memory-mapped on later calls)."""
    inputs = {"dataset": name, "protocol": protocol or {}, "size": size, "channels": channels,
              "crop": crop, "margin": margin if crop in ("box", "mtcnn") else 0.0,
              "no_face": no_face if crop == "mtcnn" else None,
              "n": len(df), "fingerprint": fingerprint(df), "decoder": DECODER_VERSION}
    return cached_arrays(name, inputs, lambda: decode_rows(df, size, channels, crop, margin, no_face,
                                                           progress, desc=f"decoding {name}"))


def duplicate_report(hashes: np.ndarray, parts: np.ndarray) -> dict[str, int]:
    """Exact duplicates across parts: ``"a~b"`` -> images of the later part ``b`` whose pixels
    equal an image of ``a``; ``"within"`` -> images equal to an earlier one in their own part."""
    hashes, parts = np.asarray(hashes), np.asarray(parts).astype(str)
    names = list(dict.fromkeys(parts))  # order of first appearance
    report = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            n = int(np.isin(hashes[parts == b], hashes[parts == a]).sum())
            if n:
                report[f"{a}~{b}"] = n
    within = sum(int((parts == p).sum()) - len(np.unique(hashes[parts == p])) for p in names)
    if within:
        report["within"] = within
    return report
