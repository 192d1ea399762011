"""The rules for what a caller hands a ``Segmenter``: frames (``as_frame``) and prompts
(``prompt_boxes``, ``check_embedding``). Each input is checked here once, on its way in;
the pipeline behind it runs on arrays that are valid by construction. The table of bad
inputs and their messages is docs/bad_input.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bundle import Bundle
from ..contract.graphs import ENCODER
from ..contract.postprocess import POINT_BOX_HALF
from ..contract.shared import MAX_FRAME_PIXELS, PROMPT_COUNT_BUCKET
from ..errors import InputError
from ..ops import MAX_SIDE
from .results import ImageEmbedding, PreparedFrame

__all__ = [
    "MAX_FRAME_PIXELS",
    "as_coords",
    "as_frame",
    "check_embedding",
    "encoder_id",
    "padded_prompt_count",
    "prompt_boxes",
    "prompt_decoder_boxes",
]


def as_frame(frame: Any) -> np.ndarray:
    """The frame rule of ``Segmenter.prepare`` (see its docstring), the frame's one check:
    out comes a C-contiguous H x W x 3 uint8 array with 1 <= H, W <= ``ops.MAX_SIDE`` and
    H * W <= ``MAX_FRAME_PIXELS``, everything ``ops.kernel("letterbox")`` needs.

    Raises:
      InputError: not a numpy array, not uint8, empty, not H x W x 3 (or grey), larger
        than ``MAX_FRAME_PIXELS`` or a side over ``ops.MAX_SIDE``.
    """
    if not isinstance(frame, np.ndarray):
        raise InputError(
            f"frame must be a numpy array (H x W x 3 uint8), got {type(frame).__name__}"
        )
    if frame.dtype != np.uint8:
        raise InputError(
            f"frame must be uint8, got {frame.dtype} (scale to 0..255 and convert first; the "
            "SDK does not guess the range of 16-bit or float images)"
        )
    if frame.ndim in (2, 3) and min(frame.shape[:2]) < 1:
        raise InputError(f"frame is empty: shape {frame.shape}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        grey = frame.reshape(frame.shape[:2])
        frame = np.repeat(grey[:, :, None], 3, axis=2)  # grey: lossless to 3 channels
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = " (RGBA: pass frame[..., :3])" if frame.ndim == 3 and frame.shape[2] == 4 else ""
        raise InputError(f"frame must be H x W x 3 (or grey H x W), got shape {frame.shape}{hint}")
    h, w = frame.shape[:2]
    if h * w > MAX_FRAME_PIXELS:
        raise InputError(
            f"frame of {h} x {w} = {h * w} pixels is larger than MAX_FRAME_PIXELS "
            f"({MAX_FRAME_PIXELS}); resize it first"
        )
    if max(h, w) > MAX_SIDE:
        raise InputError(f"frame sides must be <= {MAX_SIDE}, got {h} x {w}; resize it first")
    return np.ascontiguousarray(frame)  # uint8: always aligned


def as_coords(name: str, value: Any, width: int) -> np.ndarray:
    """Prompt coordinates as float64: only real numbers (numpy integer or float dtypes, Python
    ints and floats). Strings (even "5"), bools, complex numbers, objects and ints beyond
    float range raise, so that no input is reinterpreted silently.

    Raises:
      InputError: anything else.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"{name} must be real numbers, P x {width}: {e}") from e
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"{name} must be real numbers (int or float), P x {width}; got dtype {arr.dtype}"
        )
    return arr.astype(np.float64)


def check_embedding(
    embedding: ImageEmbedding | None, last: ImageEmbedding | None, encoder: str, stride: int
) -> ImageEmbedding:
    """The embedding ``prompt`` runs on: ``embedding``, else the one set last.

    Arguments:
      encoder: the Segmenter's encoder id; an embedding of another encoder is refused.
      stride: the bundle's feature stride (the embedding's parts must agree with it).
    Raises:
      InputError: none set yet, not an ``ImageEmbedding``, made by another encoder, or
        edited (its features do not fit its letterboxed image).
    """
    if embedding is None:
        embedding = last
        if embedding is None:
            raise InputError("call set_image(frame) before prompt(), or pass its result")
    elif not isinstance(embedding, ImageEmbedding):
        raise InputError(
            f"prompt()'s first argument is the ImageEmbedding set_image returned, got "
            f"{type(embedding).__name__}; pass prompts as points=... / boxes=..."
        )
    if embedding.encoder != encoder:
        raise InputError(
            f"this embedding was made by {embedding.encoder or 'an unknown encoder'}; this "
            f"Segmenter runs {encoder}: pass a frame to its own set_image"
        )
    _check_geometry(embedding, stride)
    return embedding


def _check_geometry(embedding: ImageEmbedding, stride: int) -> None:
    """An embedding's parts agree: ``feats`` is 1 x D x Hp/s x Wp/s for its letterboxed
    image of 1 x Hp x Wp x 3, the valid region lies in the image (an edited embedding would
    otherwise fail inside a kernel, with the kernel's words, or give misplaced masks).

    Raises:
      InputError: naming what disagrees."""
    prepared, feats = embedding.prepared, embedding.feats
    image = getattr(prepared, "image", None)
    if not isinstance(prepared, PreparedFrame) or not isinstance(image, np.ndarray):
        raise InputError(
            "this embedding's prepared frame is not a PreparedFrame: pass what set_image "
            "returned, unmodified"
        )
    hp, wp = (int(n) for n in image.shape[1:3]) if image.ndim == 4 else (0, 0)
    got = tuple(feats.shape) if isinstance(feats, np.ndarray) else None
    if (
        got is None
        or len(got) != 4
        or (got[0], got[2], got[3]) != (1, hp // stride, wp // stride)
        or image.shape != (1, hp, wp, 3)
        or not all(0 < int(v) <= m for v, m in zip(prepared.valid_hw, (hp, wp)))
    ):
        raise InputError(
            f"this embedding's feats {got} do not match its letterboxed image "
            f"{tuple(image.shape)} (feature stride {stride}: 1 x D x {hp // stride} x "
            f"{wp // stride}, valid region {tuple(prepared.valid_hw)} inside {hp} x {wp}): "
            "pass what set_image returned, unmodified"
        )


def _coords(points: Any, boxes: Any) -> list[tuple[str, np.ndarray]]:
    """The non-empty prompt arrays as (name, P x width float64), each row finite."""
    parts = []
    for name, value, width in (("points", points, 2), ("boxes", boxes, 4)):
        if value is None:
            continue
        arr = as_coords(name, value, width)
        if arr.size == 0 and (arr.ndim == 1 or arr.shape == (0, width)):
            continue
        if arr.ndim != 2 or arr.shape[1] != width:
            raise InputError(f"{name} must be P x {width} numbers, got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if bad.size:
            raise InputError(
                f"{name} must be finite numbers: {name}[{bad[0]}] = {arr[bad[0]].tolist()} "
                f"holds NaN or inf ({bad.size} of {len(arr)} rows do)"
            )
        parts.append((name, arr))
    return parts


def _point_boxes(arr: np.ndarray, w: int, h: int, scale: float) -> np.ndarray:
    outside = np.flatnonzero((arr < 0).any(1) | (arr[:, 0] > w) | (arr[:, 1] > h))
    if outside.size:
        i = outside[0]
        raise InputError(
            f"points must lie inside the {h} x {w} (H x W) frame (x in [0, {w}], y in "
            f"[0, {h}]): points[{i}] = {arr[i].tolist()} does not "
            f"({outside.size} of {len(arr)} points outside)"
        )
    centre = arr * scale
    return np.concatenate([centre - POINT_BOX_HALF, centre + POINT_BOX_HALF], 1)


def _box_boxes(arr: np.ndarray, w: int, h: int, scale: float) -> np.ndarray:
    if (arr[:, 2] <= arr[:, 0]).any() or (arr[:, 3] <= arr[:, 1]).any():
        raise InputError("boxes need x1 > x0 and y1 > y0")
    if (
        (arr[:, 2] <= 0).any()
        or (arr[:, 3] <= 0).any()
        or (arr[:, 0] >= w).any()
        or (arr[:, 1] >= h).any()
    ):
        raise InputError(f"boxes must overlap the {h} x {w} (H x W) frame")
    return np.clip(arr, 0, [w, h, w, h]) * scale


def prompt_boxes(points: Any, boxes: Any, prepared: PreparedFrame, max_prompts: int) -> np.ndarray:
    """The prompt decoder's ``boxes`` input, 1 x P x 4 float32 in network-input pixels:
    points first (each a box of 2 x ``POINT_BOX_HALF`` around it), then boxes (clipped to
    the frame). The rules are ``Segmenter.prompt``'s docstring.

    Raises:
      InputError: no prompt, malformed, non-finite, outside the frame, or more than
        ``max_prompts``.
    """
    parts = _coords(points, boxes)
    if not parts:
        raise InputError("prompt() needs at least one point or box")
    total = sum(len(a) for _, a in parts)
    if total > max_prompts:
        raise InputError(f"{total} prompts in one call; at most max_prompts={max_prompts}")
    h, w = prepared.frame_hw
    to_boxes = {"points": _point_boxes, "boxes": _box_boxes}
    out = [to_boxes[name](arr, w, h, prepared.scale) for name, arr in parts]
    return np.ascontiguousarray(np.concatenate(out)[None], dtype=np.float32)


def padded_prompt_count(n: int, max_prompts: int, bucket: int = PROMPT_COUNT_BUCKET) -> int:
    """The prompt count the decoder is run with for ``n`` prompts: ``n`` rounded up to a
    multiple of ``bucket``, but never above ``max(max_prompts, n)``."""
    return max(n, min(-(-n // bucket) * bucket, max_prompts))


def prompt_decoder_boxes(
    points: Any, boxes: Any, prepared: PreparedFrame, max_prompts: int
) -> tuple[np.ndarray, int]:
    """``prompt_boxes``, padded for the decoder: (1 x P' x 4, n), the caller's ``n`` boxes then
    the last one repeated up to P' = ``padded_prompt_count(n, max_prompts)``. Prompts do not
    interact in the prompt decoder, so its first ``n`` rows are the unpadded call's (float
    rounding) and the caller gets those; the decoder sees few distinct P (OpenVINO's static
    copies, one compile per input shape). The C++ runtime pads the same way."""
    arr = prompt_boxes(points, boxes, prepared, max_prompts)
    n = arr.shape[1]
    padded = padded_prompt_count(n, max_prompts)
    if padded > n:
        arr = np.concatenate([arr, np.repeat(arr[:, -1:], padded - n, axis=1)], axis=1)
    return arr, n


def encoder_id(bundle: Bundle) -> str:
    """The bundle and encoder files (with digests) that make an embedding."""
    files = sorted(bundle.graphs[ENCODER].files.values())
    return f"bundle {bundle.name!r}, encoder " + ", ".join(
        f"{f} sha256 {bundle.files.get(f, '?')[:12]}" for f in files
    )
