"""Segment records and their statistics (area, COCO bbox) computed from a segment-id map."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One panoptic segment / instance of an id map.

    ``id``: the value of its pixels in the id map (> 0); ``class_id``: contiguous train class
    id; ``area``: pixel count; ``bbox``: COCO (x, y, w, h) of its pixels.
    """

    id: int
    class_id: int
    is_thing: bool
    area: int
    bbox: tuple[float, float, float, float]
    iscrowd: bool = False


def segment_stats(ids: np.ndarray) -> dict[int, tuple[int, tuple[int, int, int, int]]]:
    """H x W int id map -> {id: (area, (x, y, w, h))} for every id > 0 present in the map."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be H x W, got shape {ids.shape}")
    if ids.size == 0 or ids.max() <= 0:
        return {}
    height, width = ids.shape
    top = int(ids.max())
    if top < 4096:  # small ids (generated data): dense bincounts, no sort
        labels, values = ids.astype(np.int64, copy=False), np.arange(top + 1)
    else:  # arbitrary ids (e.g. COCO panoptic PNGs): compact them first
        values, inverse = np.unique(ids, return_inverse=True)
        labels = inverse.reshape(ids.shape).astype(np.int64)
    n = values.size
    areas = np.bincount(labels.ravel(), minlength=n)
    row_keys = labels + (np.arange(height, dtype=np.int64) * n)[:, None]
    col_keys = labels + (np.arange(width, dtype=np.int64) * n)[None, :]
    in_row = np.bincount(row_keys.ravel(), minlength=n * height).reshape(height, n) > 0
    in_col = np.bincount(col_keys.ravel(), minlength=n * width).reshape(width, n) > 0
    out = {}
    for k in np.flatnonzero(areas):
        sid = int(values[k])
        if sid <= 0:
            continue
        ys = np.flatnonzero(in_row[:, k])
        xs = np.flatnonzero(in_col[:, k])
        x0, y0 = int(xs[0]), int(ys[0])
        out[sid] = (int(areas[k]), (x0, y0, int(xs[-1]) - x0 + 1, int(ys[-1]) - y0 + 1))
    return out


def make_segments(
    ids: np.ndarray, classes: Mapping[int, int], *, thing_ids: Iterable[int]
) -> list[Segment]:
    """Segments of every id present in ``ids`` (sorted by id); ``classes`` maps segment id ->
    train class id, ``thing_ids`` lists the thing class ids."""
    things = set(thing_ids)
    out = []
    for sid, (area, bbox) in sorted(segment_stats(ids).items()):
        cls = classes[sid]
        out.append(Segment(sid, cls, cls in things, area, bbox))
    return out


def refresh_segments(ids: np.ndarray, segments: Iterable[Segment]) -> list[Segment]:
    """Recompute area / bbox of ``segments`` on a transformed id map (crop, resize, flip);
    segments that vanished are dropped, the order is kept."""
    stats = segment_stats(ids)
    out = []
    for seg in segments:
        if seg.id in stats:
            area, bbox = stats[seg.id]
            out.append(replace(seg, area=area, bbox=bbox))
    return out
