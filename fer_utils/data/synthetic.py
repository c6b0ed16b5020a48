"""Procedurally drawn faces with AffectNet's eight expression classes (the default dataset).

These are procedurally drawn cartoon faces for pipeline demonstration and testing only:
they let every notebook, loss and metric run end to end on a machine without the licensed
datasets. Results obtained on them are never facial-expression findings.

Each face is a set of implicit shapes (face ellipse, hair, ears, eyes, brows, nose, mouth)
evaluated on a per-image transformed coordinate grid (rotation, scale, shift) with soft,
anti-aliased edges, for a whole batch at once (arrays shaped ``(B, H, W)``). Expressions move
the mouth (curvature, opening, width, a one-sided corner raise, a raised upper lip), brows
(height, inner-corner height, squeeze), eyes (opening) and add nose wrinkles / nasolabial
folds. Identity (shape, spacing, skin tone, hair, resting expression) is fixed per subject;
pose, illumination, blur, noise, occluders and expression intensity vary per image, and some
images blend in a confusable partner expression (happy/contempt, surprise/fear,
disgust/anger, neutral/sad), so the classes overlap like the real ones do.

Class counts default to paper W's Table 3 training distribution (about 41:1 max/min).

Example:
    >>> faces = make_synthetic_faces(64, size=32, seed=1)
    >>> faces.images.shape, faces.images.dtype.name, len(faces.class_names)
    ((64, 3, 32, 32), 'uint8', 8)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust",
                                "anger", "contempt")
#: Paper W Table 3 training counts (official AffectNet train minus 500 per class).
TABLE3_COUNTS: tuple[int, ...] = (74_374, 133_915, 24_959, 13_590, 5_878, 3_303, 24_382, 3_250)
TABLE3_PROPORTIONS: tuple[float, ...] = tuple(c / sum(TABLE3_COUNTS) for c in TABLE3_COUNTS)

_MIN_SIZE = 32
_ZOOM = 1.3  # face coordinates -> image: the face fills most of the frame, like a face crop
_CHUNK = 128  # images rendered together: (128, 64, 64) float32 arrays stay in cache

# Expression parameters, one column per field; each row is a class at full intensity.
_FIELDS = ("curve", "open", "width", "uni", "upper_lip", "brow_raise", "brow_inner",
           "brow_squeeze", "eye_open", "wrinkle", "fold", "teeth", "press", "frown", "uni_brow")
_F = {name: i for i, name in enumerate(_FIELDS)}
_EXPRESSIONS = {
    "neutral": {},
    "happy": dict(curve=1.0, open=0.35, width=0.2, eye_open=-0.35, fold=0.8, teeth=0.9,
                  brow_raise=0.1),
    "sad": dict(curve=-1.0, width=-0.1, brow_inner=1.0, brow_raise=-0.1, eye_open=-0.3, press=0.3),
    "surprise": dict(open=1.0, width=-0.3, brow_raise=1.0, eye_open=0.7, teeth=0.2),
    "fear": dict(open=0.55, width=0.3, curve=-0.25, brow_raise=0.6, brow_inner=0.6,
                 brow_squeeze=0.6, eye_open=0.6, teeth=0.7),
    "disgust": dict(curve=-0.5, upper_lip=1.0, wrinkle=1.0, eye_open=-0.4, brow_raise=-0.4,
                    brow_inner=-0.4, brow_squeeze=0.4, fold=0.7, teeth=0.5, frown=0.4),
    "anger": dict(curve=-0.45, width=-0.15, brow_raise=-0.7, brow_inner=-1.0, brow_squeeze=0.9,
                  eye_open=-0.35, press=1.0, frown=1.0),
    "contempt": dict(uni=1.0, uni_brow=0.6, curve=0.1, eye_open=-0.3, press=0.3),
}
_TABLE = np.array([[_EXPRESSIONS[c].get(f, 0.0) for f in _FIELDS] for c in CLASS_NAMES],
                  dtype=np.float32)
#: The confusable expression blended into some images of each class.
_PARTNER = np.array([2, 7, 0, 4, 3, 6, 5, 1])

# Nuisance and overlap at difficulty 1.0 (the calibrated default); all scale linearly.
_NUISANCE = dict(rot_deg=6.0, scale=0.06, shift=0.04, blur=0.6, light=0.25, noise=0.025,
                 occlusion=0.15, jitter=0.07, rest=0.08, blend=0.25, weak=0.4)


@dataclass(frozen=True)
class SyntheticFaces:
    """Rendered faces: uint8 RGB ``images`` (N, 3, S, S), int64 ``labels`` and ``subjects``."""

    images: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.labels)


def resolve_proportions(proportions: Sequence[float] | str | None) -> np.ndarray:
    """Normalised class weights: None -> Table 3, ``"balanced"`` -> uniform, else 8 weights."""
    if proportions is None:
        return np.array(TABLE3_PROPORTIONS)
    if isinstance(proportions, str):
        if proportions != "balanced":
            raise ValueError(f"proportions must be None, 'balanced' or {len(CLASS_NAMES)} weights, "
                             f"got {proportions!r}")
        return np.full(len(CLASS_NAMES), 1.0 / len(CLASS_NAMES))
    p = np.asarray(proportions, dtype=np.float64)
    if p.shape != (len(CLASS_NAMES),):
        raise ValueError(f"proportions needs {len(CLASS_NAMES)} weights (one per class in "
                         f"{CLASS_NAMES}), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"proportions must be finite, non-negative and not all zero, got {p.tolist()}")
    return p / p.sum()


def class_counts(n: int, proportions: Sequence[float] | str | None = None) -> np.ndarray:
    """Exact per-class counts summing to ``n`` (largest-remainder rounding).

    Every class with a positive weight gets at least one image when ``n >= 8``; the image is
    taken from the currently largest class.

    Example:
        >>> class_counts(20000).tolist()
        [5244, 9442, 1760, 958, 415, 233, 1719, 229]
    """
    _check_n(n)
    p = resolve_proportions(proportions)
    raw = n * p
    counts = np.floor(raw).astype(np.int64)
    # Largest fractional parts first; ties go to the lower class index (stable sort).
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    if n >= len(CLASS_NAMES):
        for k in np.flatnonzero((p > 0) & (counts == 0)):
            counts[np.argmax(counts)] -= 1
            counts[k] = 1
    return counts


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")


def make_synthetic_faces(n: int = 20000, *, size: int = 64, seed: int = 0,
                         proportions: Sequence[float] | str | None = None, n_subjects: int = 200,
                         difficulty: float = 1.0) -> SyntheticFaces:
    """Draw ``n`` faces with class counts following ``proportions``, in shuffled order.

    Args:
        n: number of images.
        size: image side in pixels (at least 32).
        seed: the output is a deterministic function of all arguments.
        proportions: None (paper W Table 3), ``"balanced"``, or 8 non-negative class weights.
        n_subjects: number of identities; each image draws one uniformly at random.
        difficulty: scales pose, illumination, blur, noise, occlusion and expression overlap;
            1.0 is the calibrated default (plain softmax on a small ResNet neither saturates
            nor recognises the minority classes well), 0 gives clean, full-intensity faces.
    """
    _check_n(n)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < _MIN_SIZE:
        raise ValueError(f"size must be an integer >= {_MIN_SIZE}, got {size!r}")
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        raise ValueError(f"n_subjects must be a positive integer, got {n_subjects!r}")
    if not np.isfinite(difficulty) or difficulty < 0:
        raise ValueError(f"difficulty must be a finite number >= 0, got {difficulty!r}")
    counts = class_counts(n, proportions)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), counts))
    subjects = rng.integers(0, n_subjects, size=n)
    people = _draw_subjects(rng, n_subjects, float(difficulty))
    shots = _draw_images(rng, labels, float(difficulty))
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        params = {k: v[subjects[sl]] for k, v in people.items()}
        params.update({k: v[sl] for k, v in shots.items()})
        images[sl] = _render(params, size, rng)
    return SyntheticFaces(images, labels.astype(np.int64), subjects.astype(np.int64))


def _draw_subjects(rng: np.random.Generator, m: int, difficulty: float) -> dict[str, np.ndarray]:
    """Identity parameters, one row per subject (face coordinates: x right, y down)."""
    u = lambda lo, hi, shape=m: rng.uniform(lo, hi, shape).astype(np.float32)  # noqa: E731
    tone = u(0, 1)[:, None]
    skin = (1 - tone) * np.array([0.96, 0.80, 0.68]) + tone * np.array([0.40, 0.26, 0.17])
    skin = np.clip(skin * rng.normal(1, 0.03, (m, 3)), 0, 1).astype(np.float32)
    hair_palette = np.array([[0.08, 0.06, 0.05], [0.30, 0.18, 0.10], [0.75, 0.60, 0.35],
                             [0.55, 0.25, 0.10], [0.60, 0.60, 0.60]])
    hair = hair_palette[rng.choice(5, m, p=[0.4, 0.3, 0.12, 0.08, 0.1])] * rng.normal(1, 0.08, (m, 3))
    iris_palette = np.array([[0.25, 0.15, 0.08], [0.10, 0.07, 0.05], [0.25, 0.40, 0.60],
                             [0.30, 0.40, 0.25]])
    ey, ny = u(-0.16, -0.07), u(0.2, 0.27)
    lip_mix = u(0.45, 0.75)[:, None]
    rest = _NUISANCE["rest"] * difficulty
    resting = np.zeros((m, len(_FIELDS)), dtype=np.float32)
    for f, sd in (("curve", 1.0), ("brow_raise", 1.3), ("brow_inner", 1.0), ("eye_open", 1.0),
                  ("uni", 0.5), ("width", 0.7)):
        resting[:, _F[f]] = rng.normal(0, rest * sd, m)
    return dict(
        face_a=u(0.46, 0.58), face_b=u(0.60, 0.74), skin=skin,
        hair=np.clip(hair, 0, 1).astype(np.float32), has_hair=(u(0, 1) > 0.1).astype(np.float32),
        hairline=u(0.42, 0.68), hair_side=u(-0.25, 0.55),
        clothes=u(0.05, 0.9, (m, 3)),
        eye_dx=u(0.17, 0.24), eye_y=ey, eye_w=u(0.058, 0.085), eye_aspect=u(0.5, 0.7),
        iris=iris_palette[rng.integers(0, 4, m)].astype(np.float32),
        brow_gap=u(0.085, 0.125), brow_thick=u(0.013, 0.026),
        nose_y=ey + ny, nose_w=u(0.03, 0.05),
        mouth_y=ey + ny + u(0.14, 0.2), mouth_w=u(0.13, 0.2), lip_thick=u(0.012, 0.024),
        lips=((1 - lip_mix) * skin + lip_mix * np.array([0.65, 0.22, 0.25])).astype(np.float32),
        resting=resting,
    )


def _draw_images(rng: np.random.Generator, labels: np.ndarray, d: float) -> dict[str, np.ndarray]:
    """Per-image expression (with intensity, jitter and partner blending) and nuisance."""
    n = len(labels)
    u = lambda lo, hi, shape=n: rng.uniform(lo, hi, shape).astype(np.float32)  # noqa: E731
    nz = _NUISANCE
    # Intensity: uniform on [1 - weak*d, 1]; some expressions are subtle at the default.
    intensity = 1 - np.clip(nz["weak"] * d, 0, 0.95) * u(0, 1)
    beta = np.where(u(0, 1) < min(nz["blend"] * d, 1.0), u(0, 0.45), 0).astype(np.float32)
    expr = (1 - beta)[:, None] * _TABLE[labels] + beta[:, None] * _TABLE[_PARTNER[labels]]
    expr = intensity[:, None] * expr + rng.normal(0, nz["jitter"] * d, expr.shape)
    occluder = np.where(u(0, 1) < min(nz["occlusion"] * d, 1.0), rng.integers(1, 4, n), 0)
    return dict(
        expr=expr.astype(np.float32),
        uni_side=rng.choice(np.array([-1, 1], dtype=np.float32), n),
        rot=np.deg2rad(np.clip(rng.normal(0, nz["rot_deg"] * d, n), -30, 30)).astype(np.float32),
        scale=(1 + nz["scale"] * d * u(-1, 1)).astype(np.float32),
        shift=(nz["shift"] * d * u(-1, 1, (n, 2))).astype(np.float32),
        blur=(1 + nz["blur"] * d * u(0, 1)).astype(np.float32),
        gaze=u(-1, 1, (n, 2)),
        background=u(0.05, 0.95, (n, 3)),
        light=(nz["light"] * d * u(0, 1)).astype(np.float32), light_dir=u(0, 2 * np.pi),
        gain=(1 + 0.5 * nz["light"] * d * u(-1, 1)).astype(np.float32),
        cast=(1 + 0.15 * d * u(-1, 1, (n, 3))).astype(np.float32),
        noise=(nz["noise"] * d * u(0.2, 1)).astype(np.float32),
        occluder=occluder, occ_pos=u(-1, 1, (n, 4)), occ_color=u(0.0, 1.0, (n, 3)),
    )


# ---- implicit shapes ---------------------------------------------------------------------------

def _cover(d: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of the region ``d < 0``: a linear ramp one (blurred) pixel wide."""
    a = d / px
    np.subtract(0.5, a, out=a)
    return np.clip(a, 0.0, 1.0, out=a)


def _ellipse(x, y, cx, cy, a, b) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse: the radial level set scaled by
    the minor radius (exact at the minor axis, a little soft toward the major-axis ends)."""
    d = x - cx
    d *= 1 / np.asarray(a, dtype=np.float32)
    d *= d
    dy = y - cy
    dy *= 1 / np.asarray(b, dtype=np.float32)
    dy *= dy
    d = d + dy  # not in place: the two terms may broadcast to a larger shape
    np.sqrt(d, out=d)
    d -= 1
    d *= np.minimum(a, b)
    return d


def _segment(x, y, x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the segment p0-p1 and the position ``h`` in [0, 1] of the nearest point."""
    ex, ey = x1 - x0, y1 - y0
    px, py = x - x0, y - y0
    h = np.clip((px * ex + py * ey) / (ex * ex + ey * ey), 0, 1)
    return np.sqrt((px - h * ex) ** 2 + (py - h * ey) ** 2), h


def _paint(canvas: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend a per-image colour (B, 3) into ``canvas`` (B, 3, H, W) in place."""
    for c in range(3):
        ch = canvas[:, c]
        ch += alpha * (color[:, c, None, None] - ch)


def _shade(canvas: np.ndarray, darkness: np.ndarray) -> None:
    canvas *= (1 - darkness)[:, None]


def _col(v) -> np.ndarray:
    """(B,) -> (B, 1, 1) for broadcasting against the pixel grid."""
    return np.asarray(v, dtype=np.float32)[:, None, None]


def _render(p: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render one chunk of images described by per-image parameter arrays ``p``."""
    b = len(p["rot"])
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1)
    u, v = grid[None, None, :], grid[None, :, None]
    cos, sin, sc = _col(np.cos(p["rot"])), _col(np.sin(p["rot"])), _col(p["scale"] * _ZOOM)
    du, dv = u - _col(p["shift"][:, 0]), v - _col(p["shift"][:, 1])
    x = (cos * du + sin * dv) / sc  # face coordinates: inverse pose applied to the grid
    y = (cos * dv - sin * du) / sc
    ax = np.abs(x)  # left/right symmetric parts are drawn once on |x|
    px = _col(2.0 / size / (p["scale"] * _ZOOM) * p["blur"])
    e = {f: _col(p["expr"][:, i]) for i, f in enumerate(_FIELDS)}
    r = {f: _col(p["resting"][:, i]) for i, f in enumerate(_FIELDS)}
    e = {f: e[f] + r[f] for f in _FIELDS}
    g = {k: _col(p[k]) for k in ("face_a", "face_b", "hairline", "hair_side", "eye_dx", "eye_y",
                                 "eye_w", "eye_aspect", "brow_gap", "brow_thick", "nose_y",
                                 "nose_w", "mouth_y", "mouth_w", "lip_thick", "has_hair")}
    canvas = np.broadcast_to(p["background"][:, :, None, None], (b, 3, size, size)).copy()
    fa, fb = g["face_a"], g["face_b"]

    # Clothes and neck, back hair, ears, face, fringe.
    _paint(canvas, _cover(_ellipse(x, y, 0, fb + 0.62, 1.0, 0.45), px), p["clothes"])
    neck = np.maximum(ax - 0.55 * fa, 0.3 - y)
    _paint(canvas, _cover(neck, px), p["skin"] * 0.85)
    hair_extent = _cover(_ellipse(x, y, 0, -0.04, fa * 1.12, fb * 1.08), px) * g["has_hair"]
    _paint(canvas, hair_extent * _cover(y - g["hair_side"], px), p["hair"])
    _paint(canvas, _cover(_ellipse(ax, y, fa * 0.97, g["eye_y"] + 0.07, 0.06, 0.11), px),
           p["skin"] * 0.9)
    face = _cover(_ellipse(x, y, 0, 0, fa, fb), px)
    _paint(canvas, face, p["skin"])
    _paint(canvas, hair_extent * _cover(y + fb * g["hairline"] - 0.25 * (x / fa) ** 2, px), p["hair"])

    _draw_eyes(canvas, p, g, e, x, ax, y, px)
    _draw_brows(canvas, p, g, e, x, ax, y, px)
    _draw_nose(canvas, g, e, ax, y, px)
    _draw_mouth(canvas, p, g, e, x, y, px)
    _draw_occluders(canvas, p, x, ax, y, u, v, px, g)

    # Illumination gradient, gain and colour cast, then sensor noise.
    ld = p["light_dir"]
    light = 1 + _col(p["light"]) * (_col(np.cos(ld)) * u + _col(np.sin(ld)) * v)
    canvas *= (light * _col(p["gain"]))[:, None]
    canvas *= p["cast"][:, :, None, None]
    canvas += _noise(rng, canvas.shape) * p["noise"][:, None, None, None]
    np.clip(canvas, 0, 1, out=canvas)
    canvas *= 255
    canvas += 0.5
    return canvas.astype(np.uint8)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Gaussian pixel noise: windows at random offsets into a pool of normals (five times
    cheaper than fresh draws; a window of 3*S*S values never repeats within an image)."""
    per = int(np.prod(shape[1:]))
    pool = rng.standard_normal(per + (1 << 18), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(pool, per)
    return windows[rng.integers(0, len(windows), shape[0])].reshape(shape)


def _draw_eyes(canvas, p, g, e, x, ax, y, px) -> None:
    ew = g["eye_w"]
    eh = ew * g["eye_aspect"] * np.clip(1 + 0.75 * e["eye_open"], 0.15, 2.2)
    d = _ellipse(ax, y, g["eye_dx"], g["eye_y"], ew, eh)
    _paint(canvas, _cover(d - 0.012, px), p["skin"] * 0.35)  # lash line
    white = _cover(d, px)
    _paint(canvas, white, np.full_like(p["skin"], 0.93))
    gx, gy = _col(p["gaze"][:, 0]) * ew * 0.3, _col(p["gaze"][:, 1]) * eh * 0.2
    cx = np.sign(x) * g["eye_dx"] + gx
    iris = np.sqrt((x - cx) ** 2 + (y - g["eye_y"] - gy) ** 2) - ew * 0.52
    _paint(canvas, _cover(iris, px) * white, p["iris"])


def _draw_brows(canvas, p, g, e, x, ax, y, px) -> None:
    base = g["eye_y"] - g["brow_gap"] - 0.07 * e["brow_raise"]
    # One brow raised on the side of the raised lip corner (contempt).
    base = base - 0.05 * np.clip(e["uni_brow"], 0, None) * (x * _col(p["uni_side"]) > 0)
    x0 = g["eye_dx"] - 0.065 - 0.03 * np.clip(e["brow_squeeze"], 0, None)
    x1 = g["eye_dx"] + 0.095
    y0 = base - 0.06 * e["brow_inner"]
    y1 = base + 0.015 * e["brow_inner"] + 0.01
    arch = 0.012 + 0.02 * np.clip(e["brow_raise"], 0, None)
    # A brow is a tapered band around an arched curve y(x) (vertical distance: brows are
    # within ~30 degrees of horizontal, so this is close to the true distance).
    h = (ax - x0) * (1 / (x1 - x0))
    hc = np.clip(h, 0, 1)
    centre = y0 + (y1 - y0) * hc - arch * 4 * hc * (1 - hc)
    d = np.abs(y - centre) - g["brow_thick"] * (1.15 - 0.4 * hc)
    d = np.maximum(d, (np.abs(h - 0.5) - 0.5) * (x1 - x0))
    _paint(canvas, _cover(d, px), p["hair"] * 0.8 + 0.05)
    frown = np.clip(e["frown"], 0, 1.2)
    if np.any(frown > 0.1):  # vertical creases between the brows (anger, some disgust)
        crease = np.maximum(np.abs(ax - 0.028) - 0.005, np.abs(y - g["eye_y"] + 0.075) - 0.04)
        _shade(canvas, 0.4 * frown * _cover(crease, px))


def _draw_nose(canvas, g, e, ax, y, px) -> None:
    ny, nw = g["nose_y"], g["nose_w"]
    side, _ = _segment(ax, y, nw * 0.5, g["eye_y"] + 0.06, nw * 0.9, ny - 0.015)
    _shade(canvas, 0.18 * _cover(side - 0.008, px))
    nostril = _ellipse(ax, y, nw * 0.7, ny, 0.02, 0.011)
    _shade(canvas, 0.55 * _cover(nostril, px))
    wrinkle = np.clip(e["wrinkle"], 0, 1.5)
    if np.any(wrinkle > 0.1):  # horizontal creases across the bridge (disgust)
        yy = (y - g["eye_y"] - 0.02) / 0.1
        band = np.clip(1 - ax / 0.075, 0, 1) * np.clip(yy * (1 - yy) * 4, 0, 1)
        _shade(canvas, 0.5 * wrinkle * band * np.clip(np.cos(yy * 6 * np.pi) * 2 - 0.6, 0, 1))


def _mouth_centre(p, g, e, x) -> tuple[np.ndarray, np.ndarray]:
    mw = g["mouth_w"] * np.clip(1 + 0.3 * e["width"], 0.6, 1.5)
    t = x / mw
    t2 = np.minimum(t * t, 1.2)
    yc = g["mouth_y"] + 0.075 * e["curve"] * (0.5 - t2)
    side = _col(p["uni_side"])
    yc -= 0.14 * np.clip(e["uni"], 0, None) * np.clip(side * t, 0, 1.2) ** 2
    return yc, mw, t2


def _draw_mouth(canvas, p, g, e, x, y, px) -> None:
    yc, mw, t2 = _mouth_centre(p, g, e, x)
    se = np.sqrt(np.clip(1 - t2, 0, 1))
    opening = np.clip(e["open"], 0, None)
    up = (0.045 * opening + 0.045 * np.clip(e["upper_lip"], 0, None)) * se
    down = 0.06 * opening * se
    lt = g["lip_thick"] * (1 - 0.35 * np.clip(e["press"], 0, 1)) * (0.35 + 0.65 * se)
    past = np.abs(x) - mw
    dy = y - yc
    _paint(canvas, _cover(np.maximum(np.maximum(-up - lt - dy, dy - down - 1.2 * lt), past), px),
           p["lips"])
    cavity = np.maximum(np.maximum(-up - dy, dy - down), past + 0.01)
    _paint(canvas, _cover(cavity, px), np.broadcast_to(np.float32([0.22, 0.06, 0.07]), p["lips"].shape))
    teeth = np.clip(e["teeth"], 0, 1) * (up + down) * 0.45
    _paint(canvas, _cover(np.maximum(cavity, dy + up - teeth), px),
           np.broadcast_to(np.float32([0.95, 0.93, 0.88]), p["lips"].shape))
    uni = np.clip(e["uni"], 0, 1.2)
    if np.any(uni > 0.1):  # a dimple at the raised corner (contempt)
        corner_y = g["mouth_y"] - 0.0375 * e["curve"] - 0.14 * uni
        dimple = _ellipse(x, y, _col(p["uni_side"]) * (mw + 0.015), corner_y, 0.014, 0.026)
        _shade(canvas, 0.5 * uni * _cover(dimple, px))
    # Nasolabial folds from the nose wings to past the mouth corners; contempt deepens the
    # fold on its raised side only.
    fold = np.clip(e["fold"], 0, 1.2) + 0.8 * uni * (x * _col(p["uni_side"]) > 0)
    if np.any(fold > 0.1):
        dist, _ = _segment(np.abs(x), y, g["nose_w"] * 2.0, g["nose_y"] + 0.02, mw + 0.04,
                           g["mouth_y"] + 0.03 - 0.1 * uni)
        _shade(canvas, 0.22 * fold * _cover(dist - 0.007, px))


def _draw_occluders(canvas, p, x, ax, y, u, v, px, g) -> None:
    kind, pos, color = p["occluder"], p["occ_pos"], p["occ_color"]
    for k in (1, 2, 3):
        idx = np.flatnonzero(kind == k)
        if idx.size == 0:
            continue
        sub = canvas[idx]
        q = pos[idx]
        if k == 1:  # an object: a rotated rectangle in image coordinates
            cu, cv = _col(q[:, 0] * 0.6), _col(q[:, 1] * 0.6)
            ang = _col(q[:, 2] * np.pi)
            hw, hh = _col(0.3 + 0.15 * q[:, 3]), _col(0.18 + 0.08 * q[:, 2])
            ru = np.cos(ang) * (u - cu) + np.sin(ang) * (v - cv)
            rv = np.cos(ang) * (v - cv) - np.sin(ang) * (u - cu)
            d = np.maximum(np.abs(ru) - hw, np.abs(rv) - hh)
            _paint(sub, _cover(d, px[idx]), color[idx])
        elif k == 2:  # a hand: palm ellipse with finger creases, skin coloured
            cu, cv = _col(q[:, 0] * 0.45), _col(0.35 + 0.3 * q[:, 1])
            palm = _ellipse(u, v, cu, cv, 0.26, 0.36)
            creases = np.clip(np.cos((u - cu) / 0.26 * 2.5 * np.pi) * 3 - 2.2, 0, 1) * _cover(cv - v, px[idx])
            tone = np.clip(p["skin"][idx] * (0.9 + 0.2 * color[idx, :1]), 0, 1)
            alpha = _cover(palm, px[idx])
            _paint(sub, alpha, tone)
            _shade(sub, 0.35 * alpha * creases + 0.3 * _cover(np.abs(palm) - 0.006, px[idx]))
        else:  # glasses: rims around both eyes (filled when sunglasses) and a bridge
            ex, ey, ew = g["eye_dx"][idx], g["eye_y"][idx], g["eye_w"][idx]
            d = _ellipse(ax[idx], y[idx], ex, ey, ew * 1.9, ew * 1.45)
            dark = _col((q[:, 3] > 0).astype(np.float32) * 0.85)
            frame = color[idx] * 0.4
            _paint(sub, _cover(d, px[idx]) * dark, frame * 0.3)
            rim = np.abs(d) - 0.012
            bridge, _ = _segment(x[idx], y[idx], -(ex - ew * 1.9), ey, ex - ew * 1.9, ey)
            _paint(sub, _cover(np.minimum(rim, bridge - 0.01), px[idx]), frame)
        canvas[idx] = sub


def save_preview(path: str | Path, faces: SyntheticFaces, per_class: int = 8) -> Path:
    """Write a PNG grid with up to ``per_class`` samples of each class (one row per class)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = faces.class_names
    fig, axes = plt.subplots(len(names), per_class, figsize=(per_class * 1.1, len(names) * 1.15),
                             squeeze=False)
    for k, name in enumerate(names):
        idx = np.flatnonzero(faces.labels == k)[:per_class]
        for j, ax in enumerate(axes[k]):
            ax.set_axis_off()
            if j < len(idx):
                ax.imshow(faces.images[idx[j]].transpose(1, 2, 0), interpolation="nearest")
        axes[k, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
