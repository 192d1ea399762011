"""Numpy reference twins of the compiled post-processing core (``rapsam_edge._core``).

Every function here has a C++ twin with the same name, signature and results; the parity
tests run both. The arithmetic is written so that the twins agree bit for bit on integer
outputs: coordinates and weights are computed in float64 and rounded the same way, bilinear
interpolation is done in float32 with the same operation order (horizontal then vertical,
``w0 * a + w1 * b``), and probabilities are compared in float64.

Bad arguments raise ``rapsam_edge.errors.InputError`` (a ValueError) whose message starts
with the argument's name, as in the C++ twins. The twins are single-threaded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..contract.shared import (
    OVERLAP_THRESHOLD,
    PROMPT_THRESHOLD,
    SCORE_THRESHOLD,
    STABILITY_OFFSET,
)
from ..errors import InputError
from ._checks import (
    SEGMENT_DTYPE,
    check_bool,
    check_float,
    check_hw,
    check_image,
    check_int,
    check_logits,
    check_mask_stack,
    check_valid_hw,
    resize_hw,
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
def letterbox(
    image: np.ndarray,
    size: int | tuple[int, int],
    pad_divisor: int = 32,
    pad_value: int = 0,
    swap_rb: bool = False,
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize ``image`` (H x W x C or H x W uint8) to fit inside ``size`` (int = square box,
    or (box_h, box_w)) keeping its aspect ratio, place it top-left and pad bottom/right with
    ``pad_value`` up to multiples of ``pad_divisor``. ``swap_rb`` swaps channels 0 and 2
    (BGR <-> RGB) on the way. Returns (padded, scale, valid_hw): a network-input pixel
    (x, y) maps to the original pixel (x / scale, y / scale); ``valid_hw`` is the resized
    image's extent inside the padded one."""
    image = check_image(image, "image")
    box_h, box_w = check_hw(size, "size", allow_int=True)
    pad_divisor = check_int(pad_divisor, "pad_divisor", 1, 4096)
    pad_value = check_int(pad_value, "pad_value", 0, 255)
    swap_rb = check_bool(swap_rb, "swap_rb")
    src = image if image.ndim == 3 else image[:, :, None]
    in_h, in_w, channels = src.shape
    if swap_rb and channels < 3:
        raise InputError(f"swap_rb needs an image with >= 3 channels, got {channels}")
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


def panoptic_fuse(
    cls_logits: np.ndarray,
    mask_logits: np.ndarray,
    valid_hw: tuple[float, float],
    out_hw: tuple[int, int],
    is_thing: np.ndarray,
    score_threshold: float = SCORE_THRESHOLD,
    overlap_threshold: float = OVERLAP_THRESHOLD,
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
    n_queries, n_cls1 = check_logits(cls_logits, "cls_logits", ndim=2)
    mask_logits = check_mask_stack(mask_logits, "mask_logits", n_queries)
    out_h, out_w = check_hw(out_hw, "out_hw")
    check_valid_hw(valid_hw, mask_logits.shape[1:])
    try:
        is_thing_arr = np.ascontiguousarray(is_thing, dtype=bool)
    except (TypeError, ValueError):
        raise InputError(
            f"is_thing must be an array of C = {n_cls1 - 1} bools, got {is_thing!r}"
        ) from None
    is_thing = is_thing_arr
    if is_thing.shape != (n_cls1 - 1,):
        raise InputError(
            f"is_thing must have C = {n_cls1 - 1} entries (cls_logits has C+1 columns), "
            f"got shape {is_thing.shape}"
        )
    score_threshold = check_float(score_threshold, "score_threshold")
    overlap_threshold = check_float(overlap_threshold, "overlap_threshold")

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
def prompt_masks(
    mask_logits: np.ndarray,
    valid_hw: tuple[float, float],
    out_hw: tuple[int, int],
    threshold: float = PROMPT_THRESHOLD,
    stability_offset: float = STABILITY_OFFSET,
) -> tuple[np.ndarray, np.ndarray]:
    """Upsample P x h x w float32 prompt logits (valid crop) to ``out_hw`` and threshold them.

    Returns (masks P x out_h x out_w bool: logit > threshold; stability P float32: SAM's
    stability score, area(logit > threshold + offset) / area(logit > threshold - offset),
    0 where the looser mask is empty)."""
    mask_logits = check_mask_stack(mask_logits, "mask_logits", None)
    out_h, out_w = check_hw(out_hw, "out_hw")
    check_valid_hw(valid_hw, mask_logits.shape[1:])
    threshold = check_float(threshold, "threshold")
    stability_offset = check_float(stability_offset, "stability_offset")
    for name, value in (("threshold", threshold), ("stability_offset", stability_offset)):
        if not math.isfinite(value):
            raise InputError(f"{name} must be finite, got {value}")
    if stability_offset < 0:
        raise InputError(f"stability_offset must be >= 0, got {stability_offset}")
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
def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """N x H x W (or H x W) bool/uint8 masks -> N x 4 (or 4) int32 boxes (x0, y0, x1, y1),
    x1/y1 exclusive; an empty mask gives (0, 0, 0, 0)."""
    stack, single = _as_mask_stack(masks, "masks")
    boxes = np.zeros((stack.shape[0], 4), dtype=np.int32)
    rows_any = stack.any(axis=2)
    cols_any = stack.any(axis=1)
    for i in range(stack.shape[0]):
        ys = np.flatnonzero(rows_any[i])
        if ys.size == 0:
            continue
        xs = np.flatnonzero(cols_any[i])
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes[0] if single else boxes


def _as_mask_stack(masks: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    if not isinstance(masks, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(masks).__name__}")
    if masks.dtype not in (np.bool_, np.uint8):
        raise InputError(f"{name} must be bool or uint8, got {masks.dtype}")
    if masks.ndim not in (2, 3):
        raise InputError(f"{name} must be H x W or N x H x W, got shape {masks.shape}")
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


def rle_encode(mask: np.ndarray) -> dict[str, Any] | list[dict[str, Any]]:
    """H x W (or N x H x W) bool/uint8 mask -> COCO compressed RLE {"size": [H, W],
    "counts": bytes} (or a list of them), byte-identical to pycocotools.mask.encode."""
    stack, single = _as_mask_stack(mask, "mask")
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


def rle_decode(rle: dict[str, Any] | list[dict[str, Any]]) -> np.ndarray:
    """COCO RLE dict (compressed bytes/str counts, or an uncompressed list) -> H x W bool;
    a list of RLEs of one size -> N x H x W bool."""
    if isinstance(rle, (list, tuple)):
        if not rle:
            raise InputError("rle list is empty")
        masks = [rle_decode(r) for r in rle]
        if len({m.shape for m in masks}) != 1:
            raise InputError("all RLEs in a list must have the same size")
        return np.stack(masks)
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise InputError("rle must be a dict with 'size' and 'counts'")
    size = rle["size"]
    try:
        hw = [int(v) for v in size]
    except (TypeError, ValueError):
        raise InputError(
            f"rle size must be a (height, width) pair of integers, got {size!r}"
        ) from None
    if len(hw) != 2:
        raise InputError(f"rle size must be a (height, width) pair, got {size!r}")
    height, width = hw
    if height < 0 or width < 0:
        raise InputError(f"rle size must be non-negative, got {size!r}")
    if max(height, width) >= 1 << 62:
        raise InputError(f"rle size is too large, got {size!r}")
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise InputError("rle counts string must be ASCII") from None
    if isinstance(counts, bytes):
        runs = _rle_counts(counts)
    else:
        try:
            runs = [int(c) for c in counts]
        except (TypeError, ValueError):
            raise InputError(
                f"rle counts must be a string or a list of integers, got {type(counts).__name__}"
            ) from None
    if any(r < 0 for r in runs):
        raise InputError("rle counts must be non-negative")
    if sum(runs) != height * width:
        raise InputError(f"rle counts sum to {sum(runs)}, expected H*W = {height * width}")
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    return np.ascontiguousarray(flat.reshape(width, height).T)


# ---------------------------------------------------------------- linear assignment
def linear_assignment(cost: np.ndarray, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Optimal assignment on an R x C cost matrix (rectangular allowed), like
    scipy.optimize.linear_sum_assignment: returns (rows, cols) int64, rows ascending,
    min(R, C) pairs. +inf (or -inf with maximize) marks forbidden pairs; an infeasible
    matrix or a NaN raises InputError (a ValueError)."""
    if not isinstance(cost, np.ndarray):
        raise InputError(f"cost must be a numpy array, got {type(cost).__name__}")
    if cost.ndim != 2:
        raise InputError(f"cost must be 2-D, got shape {cost.shape}")
    if cost.dtype.kind not in "fiub":
        raise InputError(f"cost must be numeric, got {cost.dtype}")
    maximize = check_bool(maximize, "maximize")
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


def overlay(
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.5, boundary: bool = True
) -> np.ndarray:
    """Blend a palette colour per label id (0 = void, left untouched) into an H x W x 3 uint8
    image; with ``boundary`` the pixels whose right or lower neighbour has another label are
    painted in the label's colour at full strength. Returns a new H x W x 3 uint8 image."""
    image = check_image(image, "image")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be H x W x 3 uint8, got shape {image.shape}")
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int32:
        raise InputError("labels must be an int32 numpy array")
    if labels.shape != image.shape[:2]:
        raise InputError(f"labels shape {labels.shape} must equal image H x W {image.shape[:2]}")
    alpha = check_float(alpha, "alpha")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    boundary = check_bool(boundary, "boundary")
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
