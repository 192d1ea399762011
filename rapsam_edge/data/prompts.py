"""Interactive prompts from a segment-id map, as in RAP-SAM's "COCO-SAM" training data: a
random pixel inside a random segment (thing or stuff) is a point prompt, the segment's box
(jittered) a box prompt, and the segment's mask the target. Plus the evaluation click."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Prompts:
    """K prompts on an H x W map.

    ``points`` K x 2 int32 (x, y) pixel indices (column, row), each inside its target;
    ``boxes`` K x 4 float32 (x0, y0, x1, y1) in pixel-edge coordinates (x1/y1 exclusive, as
    ``ops.masks_to_boxes``), jittered, clipped to [0, W] x [0, H]; ``use_box`` K bool: which
    prompt type to feed; ``segment_ids`` K int32; ``masks`` K x H x W bool targets."""

    points: np.ndarray
    boxes: np.ndarray
    use_box: np.ndarray
    segment_ids: np.ndarray
    masks: np.ndarray


def sample_prompts(
    ids: np.ndarray,
    rng: np.random.Generator,
    *,
    num_prompts: int = 30,
    box_jitter: float = 0.1,
    box_fraction: float = 0.5,
) -> Prompts:
    """Sample ``num_prompts`` prompts from the H x W int id map (0 = void, never a target).

    Segments are visited in random order and cycled when K exceeds their number, so every
    segment gets a prompt when K >= #segments. Each box edge moves by U(-j, j) times the
    box side (``box_jitter`` = j). An empty map gives K = 0."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be H x W, got shape {ids.shape}")
    if num_prompts < 0 or not 0 <= box_jitter or not 0 <= box_fraction <= 1:
        raise ValueError("num_prompts >= 0, box_jitter >= 0, box_fraction in [0, 1] required")
    h, w = ids.shape
    flat = ids.ravel()
    order = np.argsort(flat, kind="stable")  # pixel indices grouped by segment id
    values, starts, counts = np.unique(flat[order], return_index=True, return_counts=True)
    keep = values > 0
    values, starts, counts = values[keep], starts[keep], counts[keep]
    n = values.size
    k = num_prompts if n else 0
    picks = np.concatenate([rng.permutation(n) for _ in range(-(-k // n))])[:k] if k else []
    picks = np.asarray(picks, dtype=np.int64)
    offsets = (rng.random(k) * counts[picks]).astype(np.int64)
    pix = order[starts[picks] + offsets]
    points = np.stack([pix % w, pix // w], axis=1).astype(np.int32).reshape(k, 2)
    seg_ids = values[picks].astype(np.int32)
    masks = ids[None] == seg_ids[:, None, None]
    boxes = np.zeros((k, 4), dtype=np.float32)
    for i in range(k):
        rows = np.flatnonzero(masks[i].any(axis=1))
        cols = np.flatnonzero(masks[i].any(axis=0))
        boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    side = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    boxes += (rng.uniform(-box_jitter, box_jitter, (k, 4)) * side).astype(np.float32)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
    # keep at least one pixel of extent after jitter and clipping
    boxes[:, 2] = np.maximum(boxes[:, 2], np.minimum(boxes[:, 0] + 1, w))
    boxes[:, 0] = np.minimum(boxes[:, 0], boxes[:, 2] - 1)
    boxes[:, 3] = np.maximum(boxes[:, 3], np.minimum(boxes[:, 1] + 1, h))
    boxes[:, 1] = np.minimum(boxes[:, 1], boxes[:, 3] - 1)
    use_box = rng.random(k) < box_fraction
    return Prompts(points, boxes, use_box, seg_ids, masks)


def click_point(mask: np.ndarray) -> tuple[int, int]:
    """The evaluation click for an H x W bool mask: (x, y) of the maximum of its distance
    transform (distance to the nearest background pixel or image border; the first maximum
    in row-major order on ties). Raises ValueError on an empty mask."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be H x W, got shape {m.shape}")
    if not m.any():
        raise ValueError("click_point needs a non-empty mask")
    padded = np.pad(m.astype(np.uint8), 1)  # the border counts as background
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)
