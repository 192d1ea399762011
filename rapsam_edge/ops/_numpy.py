"""Numpy reference twins of the compiled post-processing core (``rapsam_edge._core``).

Every function here has a C++ twin with the same name, signature and results; the parity
tests run both. The arithmetic is written so that the twins agree bit for bit on integer
outputs: coordinates and weights are computed in float64 and rounded the same way, bilinear
interpolation is done in float32 with the same operation order (horizontal then vertical,
``w0 * a + w1 * b``), and probabilities are compared in float64.

Each public twin is ``_checks.checked(X_args, _X)``: the arguments are checked once, in
``_checks`` (the same checks run before the compiled core), and the kernel ``_X`` here only
computes. Bad arguments raise ``rapsam_edge.errors.InputError`` (a ValueError) whose message
starts with the argument's name. The twins are single-threaded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from ._checks import (
    SEGMENT_DTYPE,
    checked,
    letterbox_args,
    linear_assignment_args,
    masks_to_boxes_args,
    overlay_args,
    panoptic_fuse_args,
    prompt_masks_args,
    resize_hw,
    rle_decode_args,
    rle_encode_args,
)

__all__ = [
    "SEGMENT_DTYPE",
    "letterbox",
    "linear_assignment",
    "masks_to_boxes",
    "overlay",
    "panoptic_fuse",
    "prompt_masks",
    "rle_decode",
    "rle_encode",
]

_RESIZE_BITS = 11  # fixed-point precision of the uint8 resize weights
_ROW_CHUNK = 64  # output rows per block in the float paths (bounds memory)


# ---------------------------------------------------------------- sampling grids
def sample_grid(
    out_len: int, valid_len: float, src_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source taps for resizing the first ``valid_len`` cells of a ``src_len`` axis
    to ``out_len`` samples (half-pixel centres, like cv2 INTER_LINEAR / align_corners=False).

    Returns (i0, i1, frac): int64 taps and float64 fraction of the second tap, all ``out_len``.
    """
    step = valid_len / out_len
    pos = (np.arange(out_len, dtype=np.float64) + 0.5) * step - 0.5
    pos = np.maximum(pos, 0.0)
    i0 = np.minimum(np.floor(pos).astype(np.int64), src_len - 1)
    i1 = np.minimum(i0 + 1, src_len - 1)
    frac = np.minimum(pos - i0, 1.0)
    return i0, i1, frac


def _float_weights(frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (1.0 - frac).astype(np.float32), frac.astype(np.float32)


def upsample_rows(
    logits: np.ndarray, valid_hw: tuple[float, float], out_hw: tuple[int, int], rows: slice
) -> np.ndarray:
    """Bilinearly upsample the valid crop of K x h x w float32 ``logits`` to ``out_hw`` and
    return output rows ``rows`` only: K x len(rows) x out_w float32."""
    _, h, w = logits.shape
    y0, y1, fy = sample_grid(out_hw[0], valid_hw[0], h)
    x0, x1, fx = sample_grid(out_hw[1], valid_hw[1], w)
    wy0, wy1 = _float_weights(fy[rows])
    wx0, wx1 = _float_weights(fx)
    y0, y1 = y0[rows], y1[rows]
    # horizontal pass on the two source rows of every output row, then vertical
    top = wx0 * logits[:, y0][:, :, x0] + wx1 * logits[:, y0][:, :, x1]
    bottom = wx0 * logits[:, y1][:, :, x0] + wx1 * logits[:, y1][:, :, x1]
    return wy0[None, :, None] * top + wy1[None, :, None] * bottom


# ---------------------------------------------------------------- letterbox
def _letterbox(
    image: np.ndarray, size: tuple[int, int], pad_divisor: int, pad_value: int, swap_rb: bool
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize ``image`` (H x W x C or H x W uint8) to fit inside ``size`` (int = square box,
    or (box_h, box_w)) keeping its aspect ratio, place it top-left and pad bottom/right with
    ``pad_value`` up to multiples of ``pad_divisor``. ``swap_rb`` swaps channels 0 and 2
    (BGR <-> RGB) on the way. Returns (padded, scale, valid_hw): a network-input pixel
    (x, y) maps to the original pixel (x / scale, y / scale); ``valid_hw`` is the resized
    image's extent inside the padded one."""
    box_h, box_w = size
    src = image if image.ndim == 3 else image[:, :, None]
    in_h, in_w, channels = src.shape
    scale, new_h, new_w = resize_hw(in_h, in_w, box_h, box_w)
    pad_h = -(-new_h // pad_divisor) * pad_divisor
    pad_w = -(-new_w // pad_divisor) * pad_divisor

    y0, y1, fy = sample_grid(new_h, float(in_h), in_h)
    x0, x1, fx = sample_grid(new_w, float(in_w), in_w)
    one = 1 << _RESIZE_BITS
    wy1 = np.floor(fy * one + 0.5).astype(np.int64)
    wx1 = np.floor(fx * one + 0.5).astype(np.int64)
    wy0, wx0 = one - wy1, one - wx1
    px = src.astype(np.int64)
    top = wx0[:, None] * px[y0][:, x0] + wx1[:, None] * px[y0][:, x1]
    bottom = wx0[:, None] * px[y1][:, x0] + wx1[:, None] * px[y1][:, x1]
    acc = wy0[:, None, None] * top + wy1[:, None, None] * bottom
    resized = ((acc + (1 << (2 * _RESIZE_BITS - 1))) >> (2 * _RESIZE_BITS)).astype(np.uint8)
    if swap_rb:
        resized[..., [0, 2]] = resized[..., [2, 0]]

    padded = np.full((pad_h, pad_w, channels), pad_value, dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    if image.ndim == 2:
        padded = padded[:, :, 0]
    return padded, scale, (new_h, new_w)


# ---------------------------------------------------------------- panoptic fusion
def _softmax64(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = np.exp(x - x.max(axis=1, keepdims=True))
    return x / x.sum(axis=1, keepdims=True)


def _panoptic_fuse(
    cls_logits: np.ndarray,
    mask_logits: np.ndarray,
    valid_hw: tuple[float, float],
    out_hw: tuple[int, int],
    is_thing: np.ndarray,
    score_threshold: float,
    overlap_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """MaskFormer panoptic fusion, upsampling only the kept queries.

    cls_logits: N x (C+1) float32 (last column = no object); mask_logits: N x h x w float32
    at the network's mask stride; valid_hw: the unpadded image extent in mask cells
    (floats, <= h, w); out_hw: output size; is_thing: C bools.
    Rules: softmax over C+1; keep queries whose best object score > score_threshold; per
    output pixel the kept query with the largest score * sigmoid(upsampled logit) wins
    (lowest index on ties); a query's pixels are those it wins where its logit >= 0; a query
    is dropped when (pixels it wins) / (pixels where its logit >= 0) < overlap_threshold;
    stuff queries of the same class merge into one segment.
    Returns (label_map out_h x out_w int32, 0 = void, segment ids 1..K; segments: K records of
    SEGMENT_DTYPE: id, class, query (first query of the segment), score (max over merged
    queries), area (pixels), is_thing).
    """
    n_queries, n_cls1 = cls_logits.shape
    out_h, out_w = out_hw

    # 1. class scores and the kept queries
    probs = _softmax64(cls_logits)[:, :-1]
    labels = probs.argmax(axis=1) if n_cls1 > 1 else np.zeros(n_queries, dtype=np.int64)
    scores = probs.max(axis=1) if n_cls1 > 1 else np.zeros(n_queries)
    # without any class (C = 0) no query can be kept, whatever the threshold
    kept = np.flatnonzero(scores > score_threshold) if n_cls1 > 1 else np.zeros(0, np.int64)
    label_map = np.zeros((out_h, out_w), dtype=np.int32)
    if kept.size == 0:
        return label_map, np.zeros(0, dtype=SEGMENT_DTYPE)
    kept_logits = mask_logits[kept]
    kept_scores = scores[kept]

    # 2. per-pixel winner (argmax of score * sigmoid), and each query's own area
    winner = np.empty((out_h, out_w), dtype=np.int64)
    winner_fg = np.empty((out_h, out_w), dtype=bool)
    own_area = np.zeros(kept.size, dtype=np.int64)
    for start in range(0, out_h, _ROW_CHUNK):
        rows = slice(start, min(start + _ROW_CHUNK, out_h))
        logit = upsample_rows(kept_logits, valid_hw, (out_h, out_w), rows)
        with np.errstate(over="ignore"):
            prob = kept_scores[:, None, None] / (1.0 + np.exp(-logit.astype(np.float64)))
        best = prob.argmax(axis=0)
        winner[rows] = best
        winner_fg[rows] = np.take_along_axis(logit, best[None], axis=0)[0] >= 0
        own_area += (logit >= 0).sum(axis=(1, 2))

    # 3. MaskFormer's walk over kept queries: overlap test, stuff merging, id assignment
    won_area = np.bincount(winner.ravel(), minlength=kept.size)
    records: list[tuple[Any, ...]] = []
    stuff_ids: dict[int, int] = {}
    for k, query in enumerate(kept):
        cls = int(labels[query])
        pixels = (winner == k) & winner_fg
        n_pixels = int(pixels.sum())
        if won_area[k] == 0 or own_area[k] == 0 or n_pixels == 0:
            continue
        if won_area[k] / own_area[k] < overlap_threshold:
            continue
        score = np.float32(kept_scores[k])
        if not is_thing[cls] and cls in stuff_ids:
            seg = stuff_ids[cls]
            label_map[pixels] = seg
            old = records[seg - 1]
            records[seg - 1] = (*old[:3], max(old[3], score), old[4] + n_pixels, old[5])
            continue
        seg = len(records) + 1
        if not is_thing[cls]:
            stuff_ids[cls] = seg
        label_map[pixels] = seg
        records.append((seg, cls, int(query), score, n_pixels, bool(is_thing[cls])))
    segments = np.zeros(len(records), dtype=SEGMENT_DTYPE)  # padding bytes zeroed too
    for i, record in enumerate(records):
        segments[i] = record
    return label_map, segments


# ---------------------------------------------------------------- prompt masks
def _prompt_masks(
    mask_logits: np.ndarray,
    valid_hw: tuple[float, float],
    out_hw: tuple[int, int],
    threshold: float,
    stability_offset: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Upsample P x h x w float32 prompt logits (valid crop) to ``out_hw`` and threshold them.

    Returns (masks P x out_h x out_w bool: logit > threshold; stability P float32: SAM's
    stability score, area(logit > threshold + offset) / area(logit > threshold - offset),
    0 where the looser mask is empty)."""
    out_h, out_w = out_hw
    t_mid = np.float32(threshold)
    t_hi = np.float32(threshold + stability_offset)
    t_lo = np.float32(threshold - stability_offset)
    n_prompts = mask_logits.shape[0]
    masks = np.empty((n_prompts, out_h, out_w), dtype=bool)
    hi = np.zeros(n_prompts, dtype=np.int64)
    lo = np.zeros(n_prompts, dtype=np.int64)
    for start in range(0, out_h, _ROW_CHUNK):
        rows = slice(start, min(start + _ROW_CHUNK, out_h))
        logit = upsample_rows(mask_logits, valid_hw, (out_h, out_w), rows)
        masks[:, rows] = logit > t_mid
        hi += (logit > t_hi).sum(axis=(1, 2))
        lo += (logit > t_lo).sum(axis=(1, 2))
    stability = np.where(lo > 0, hi / np.maximum(lo, 1), 0.0).astype(np.float32)
    return masks, stability


# ---------------------------------------------------------------- boxes
def _masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """N x H x W (or H x W) bool/uint8 masks -> N x 4 (or 4) int32 boxes (x0, y0, x1, y1),
    x1/y1 exclusive; an empty mask gives (0, 0, 0, 0)."""
    stack, single = _as_mask_stack(masks)
    boxes = np.zeros((stack.shape[0], 4), dtype=np.int32)
    rows_any = np.asarray(stack.any(axis=2))
    cols_any = np.asarray(stack.any(axis=1))
    for i in range(stack.shape[0]):
        ys = np.flatnonzero(rows_any[i])
        if ys.size == 0:
            continue
        xs = np.flatnonzero(cols_any[i])
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes[0] if single else boxes


def _as_mask_stack(masks: np.ndarray) -> tuple[np.ndarray, bool]:
    single = masks.ndim == 2
    stack = masks[None] if single else masks
    return stack.astype(bool, copy=False), single


# ---------------------------------------------------------------- COCO RLE
def _rle_string(counts: list[int]) -> bytes:
    out = bytearray()
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(c + 48)
    return bytes(out)


def _rle_counts(string: bytes) -> list[int]:
    counts: list[int] = []
    pos = 0
    while pos < len(string):
        x, shift, more = 0, 0, True
        while more:
            if pos >= len(string):
                raise InputError("rle counts string is truncated")
            c = string[pos] - 48
            if not 0 <= c < 64:
                raise InputError(f"rle counts has an invalid byte 0x{string[pos]:02x} at {pos}")
            x |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * shift)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _rle_encode(mask: np.ndarray) -> dict[str, Any] | list[dict[str, Any]]:
    """H x W (or N x H x W) bool/uint8 mask -> COCO compressed RLE {"size": [H, W],
    "counts": bytes} (or a list of them), byte-identical to pycocotools.mask.encode."""
    stack, single = _as_mask_stack(mask)
    _, height, width = stack.shape
    out = []
    for m in stack:
        flat = m.T.ravel()  # column-major, as COCO
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        bounds = np.concatenate([[0], change, [flat.size]])
        runs = np.diff(bounds).tolist()
        if flat.size and flat[0]:
            runs = [0, *runs]
        out.append({"size": [height, width], "counts": _rle_string(runs)})
    return out[0] if single else out


def _rle_decode(rle: dict[str, Any] | list[dict[str, Any]]) -> np.ndarray:
    """COCO RLE dict (compressed bytes/str counts, or an uncompressed list) -> H x W bool;
    a list of RLEs of one size -> N x H x W bool."""
    if isinstance(rle, list):
        masks = [_rle_decode(r) for r in rle]
        if len({m.shape for m in masks}) != 1:
            raise InputError("all RLEs in a list must have the same size")
        return np.stack(masks)
    height, width = rle["size"]
    counts = rle["counts"]
    runs = _rle_counts(counts) if isinstance(counts, bytes) else counts
    if any(r < 0 for r in runs):
        raise InputError("rle counts must be non-negative")
    if sum(runs) != height * width:
        raise InputError(f"rle counts sum to {sum(runs)}, expected H*W = {height * width}")
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    return np.ascontiguousarray(flat.reshape(width, height).T)


# ---------------------------------------------------------------- linear assignment
def _linear_assignment(cost: np.ndarray, maximize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Optimal assignment on an R x C cost matrix (rectangular allowed), like
    scipy.optimize.linear_sum_assignment: returns (rows, cols) int64, rows ascending,
    min(R, C) pairs. +inf (or -inf with maximize) marks forbidden pairs; an infeasible
    matrix or a NaN raises InputError (a ValueError)."""
    c = cost.astype(np.float64)
    if np.isnan(c).any():
        raise InputError("cost contains NaN")
    if maximize:
        c = -c
    if np.isposinf(-c).any():
        raise InputError("cost contains -inf (+inf with maximize)")
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    if c.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    col_of_row, row_of_col = _shortest_augmenting_path(c)
    if transposed:
        rows = np.flatnonzero(row_of_col >= 0)
        return rows.astype(np.int64), row_of_col[rows].astype(np.int64)
    return np.arange(c.shape[0], dtype=np.int64), col_of_row.astype(np.int64)


def _shortest_augmenting_path(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jonker-Volgenant style shortest augmenting paths (R <= C), one row at a time."""
    n_rows, n_cols = c.shape
    u = np.zeros(n_rows)
    v = np.zeros(n_cols)
    col_of_row = np.full(n_rows, -1, dtype=np.int64)
    row_of_col = np.full(n_cols, -1, dtype=np.int64)
    for cur_row in range(n_rows):
        shortest = np.full(n_cols, np.inf)
        path = np.full(n_cols, -1, dtype=np.int64)
        done_cols = np.zeros(n_cols, dtype=bool)
        done_rows = np.zeros(n_rows, dtype=bool)
        i, min_val, sink = cur_row, 0.0, -1
        while sink == -1:
            done_rows[i] = True
            todo = ~done_cols
            reduced = min_val + c[i] - u[i] - v
            better = todo & (reduced < shortest)
            path[better] = i
            shortest[better] = reduced[better]
            candidates = np.flatnonzero(todo)
            best = shortest[candidates].min()
            if best == np.inf:
                raise InputError("cost matrix is infeasible")
            ties = candidates[shortest[candidates] == best]
            free = ties[row_of_col[ties] == -1]
            j = int(free[0]) if free.size else int(ties[0])
            min_val = best
            done_cols[j] = True
            if row_of_col[j] == -1:
                sink = j
            else:
                i = int(row_of_col[j])
        # update duals, then augment along the path
        u[cur_row] += min_val
        others = done_rows.copy()
        others[cur_row] = False
        rows_done = np.flatnonzero(others)
        u[rows_done] += min_val - shortest[col_of_row[rows_done]]
        v[done_cols] -= min_val - shortest[done_cols]
        j = sink
        while True:
            i = int(path[j])
            row_of_col[j] = i
            col_of_row[i], j = j, int(col_of_row[i])
            if i == cur_row:
                break
    return col_of_row, row_of_col


# ---------------------------------------------------------------- overlay
def palette(ids: np.ndarray) -> np.ndarray:
    """Deterministic bright colour per integer id (... -> ... x 3 uint8); a stable track id
    keeps its colour across frames."""
    h = (np.asarray(ids).astype(np.uint64) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
    rgb = np.stack([(h >> np.uint64(s)) & np.uint64(255) for s in (16, 8, 0)], axis=-1)
    return (64 + (rgb * 3) // 4).astype(np.uint8)


def _overlay(image: np.ndarray, labels: np.ndarray, alpha: float, boundary: bool) -> np.ndarray:
    """Blend a palette colour per label id (0 = void, left untouched) into an H x W x 3 uint8
    image; with ``boundary`` the pixels whose right or lower neighbour has another label are
    painted in the label's colour at full strength. Returns a new H x W x 3 uint8 image."""
    a = math.floor(alpha * 256 + 0.5)
    colour = palette(labels).astype(np.int32)
    out = image.astype(np.int32)
    blended = (out * (256 - a) + colour * a + 128) >> 8
    fg = labels != 0
    out[fg] = blended[fg]
    if boundary:
        edge = np.zeros(labels.shape, dtype=bool)
        edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
        edge &= fg
        out[edge] = colour[edge]
    return out.astype(np.uint8)


# ---------------------------------------------------------------- the public twins
letterbox = checked(letterbox_args, _letterbox)
panoptic_fuse = checked(panoptic_fuse_args, _panoptic_fuse)
prompt_masks = checked(prompt_masks_args, _prompt_masks)
masks_to_boxes = checked(masks_to_boxes_args, _masks_to_boxes)
rle_encode = checked(rle_encode_args, _rle_encode)
rle_decode = checked(rle_decode_args, _rle_decode)
linear_assignment = checked(linear_assignment_args, _linear_assignment)
overlay = checked(overlay_args, _overlay)
