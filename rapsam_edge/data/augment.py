"""Geometric augmentation applied identically to an image and its id map (and to every frame
of a clip): scale jitter, random crop / pad to a fixed size, horizontal flip.

Images are resampled bilinearly (area filter when shrinking), id maps by nearest neighbour
with the same pixel-centre convention, so the two stay aligned. Padding is 0 in the image and
void (0) in the id map. After augmenting, ``segments.refresh_segments`` recomputes areas and
boxes (and drops segments cropped away).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentParams:
    """``scale``: resize factor from the input; ``offset`` (y, x): top-left of the output
    window in the resized image (negative = padding before it); ``flip``: mirror left-right;
    ``out_hw``: output size."""

    scale: float
    offset: tuple[int, int]
    flip: bool
    out_hw: tuple[int, int]


def sample_augment(
    rng: np.random.Generator,
    in_hw: tuple[int, int],
    *,
    out_hw: tuple[int, int],
    scale_range: tuple[float, float] = (0.75, 1.5),
    flip_prob: float = 0.5,
) -> AugmentParams:
    """Random parameters: the input is first scaled to fit ``out_hw`` (longer side), then by
    a log-uniform factor in ``scale_range``; the window position is uniform."""
    (ih, iw), (oh, ow) = in_hw, out_hw
    if min(ih, iw, oh, ow) <= 0:
        raise ValueError(f"sizes must be positive, got in {in_hw} out {out_hw}")
    lo, hi = scale_range
    scale = min(oh / ih, ow / iw) * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    rh, rw = _resized_hw(in_hw, scale)
    oy = int(rng.integers(min(0, rh - oh), max(0, rh - oh) + 1))
    ox = int(rng.integers(min(0, rw - ow), max(0, rw - ow) + 1))
    return AugmentParams(float(scale), (oy, ox), bool(rng.random() < flip_prob), (oh, ow))


def _resized_hw(in_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(in_hw[0] * scale)), max(1, round(in_hw[1] * scale))


def _window(resized: np.ndarray, params: AugmentParams, fill: int) -> np.ndarray:
    """Cut the output window out of the resized array (padding with ``fill``), then flip."""
    (oh, ow), (oy, ox) = params.out_hw, params.offset
    out = np.full((oh, ow, *resized.shape[2:]), fill, dtype=resized.dtype)
    rh, rw = resized.shape[:2]
    sy, sx = max(0, oy), max(0, ox)  # source start
    dy, dx = max(0, -oy), max(0, -ox)  # destination start
    h, w = min(rh - sy, oh - dy), min(rw - sx, ow - dx)
    if h > 0 and w > 0:
        out[dy : dy + h, dx : dx + w] = resized[sy : sy + h, sx : sx + w]
    return np.ascontiguousarray(out[:, ::-1]) if params.flip else out


def resize_ids(ids: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H x W id map with pixel-centre alignment (the source
    of output pixel i is floor((i + 0.5) * in / out)), any integer dtype."""
    (ih, iw), (oh, ow) = ids.shape[:2], out_hw
    ys = np.minimum(((np.arange(oh) + 0.5) * (ih / oh)).astype(np.int64), ih - 1)
    xs = np.minimum(((np.arange(ow) + 0.5) * (iw / ow)).astype(np.int64), iw - 1)
    return ids[ys[:, None], xs[None, :]]


def apply_augment(
    params: AugmentParams, image: np.ndarray, ids: np.ndarray, *, pad_value: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``params`` to an H x W x 3 uint8 image and its H x W id map -> (oh x ow x 3,
    oh x ow) with the same dtypes."""
    if image.shape[:2] != ids.shape:
        raise ValueError(f"image {image.shape} and ids {ids.shape} sizes differ")
    rh, rw = _resized_hw(ids.shape, params.scale)
    interp = cv2.INTER_AREA if params.scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(image, (rw, rh), interpolation=interp) if (rh, rw) != ids.shape else image
    idm = resize_ids(ids, (rh, rw)) if (rh, rw) != ids.shape else ids
    return _window(img, params, pad_value), _window(idm, params, 0)


def augment(
    image: np.ndarray,
    ids: np.ndarray,
    rng: np.random.Generator,
    *,
    out_hw: tuple[int, int],
    scale_range: tuple[float, float] = (0.75, 1.5),
    flip_prob: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, AugmentParams]:
    """Sample parameters and apply them to one image + id map."""
    params = sample_augment(
        rng, ids.shape, out_hw=out_hw, scale_range=scale_range, flip_prob=flip_prob
    )
    return (*apply_augment(params, image, ids), params)


def augment_clip(
    images: np.ndarray,
    ids: np.ndarray,
    rng: np.random.Generator,
    *,
    out_hw: tuple[int, int],
    scale_range: tuple[float, float] = (0.75, 1.5),
    flip_prob: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, AugmentParams]:
    """Same as ``augment`` for a clip (T x H x W x 3, T x H x W), with ONE set of parameters
    for all frames -> (T x oh x ow x 3, T x oh x ow, params)."""
    if images.shape[:3] != ids.shape:
        raise ValueError(f"images {images.shape} and ids {ids.shape} differ")
    params = sample_augment(
        rng, ids.shape[1:], out_hw=out_hw, scale_range=scale_range, flip_prob=flip_prob
    )
    pairs = [apply_augment(params, im, m) for im, m in zip(images, ids)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), params
