"""Argument checks shared by the numpy twins; the C++ bindings apply the same rules and
raise the same ``rapsam_edge.errors.InputError`` (a ValueError) with the same messages, which
start with the argument's name."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from ..contract.postprocess import SEGMENT_DTYPE  # noqa: F401  (the contract's record)
from ..errors import InputError

MAX_SIDE = 1 << 15  # largest accepted image / output side


def _require_array(x: object, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(x).__name__}")
    if not x.flags.c_contiguous:
        raise InputError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    return x


def check_image(image: object, name: str) -> np.ndarray:
    """H x W or H x W x C uint8, C-contiguous, non-empty."""
    image = _require_array(image, name)
    if image.dtype != np.uint8:
        raise InputError(f"{name} must be uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise InputError(f"{name} must be H x W or H x W x C (C <= 4), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{name} is empty: shape {image.shape}")
    if max(image.shape[:2]) > MAX_SIDE:
        raise InputError(f"{name} sides must be <= {MAX_SIDE}, got {image.shape[:2]}")
    return image


def check_hw(value: object, name: str, allow_int: bool = False) -> tuple[int, int]:
    """(h, w) positive ints <= MAX_SIDE (or one int when ``allow_int``)."""
    if allow_int and isinstance(value, (int, np.integer)):
        value = (value, value)
    if not isinstance(value, Sequence) or len(value) != 2:
        raise InputError(f"{name} must be a (height, width) pair, got {value!r}")
    h, w = value
    if not all(isinstance(v, (int, np.integer)) for v in (h, w)):
        raise InputError(f"{name} must hold integers, got {value!r}")
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise InputError(f"{name} must be in [1, {MAX_SIDE}], got {value!r}")
    return int(h), int(w)


def check_valid_hw(valid_hw: object, mask_hw: tuple[int, ...]) -> tuple[float, float]:
    """The valid (unpadded) extent in mask cells: 0 < valid <= mask size, finite."""
    if not isinstance(valid_hw, Sequence) or len(valid_hw) != 2:
        raise InputError(f"valid_hw must be a (height, width) pair, got {valid_hw!r}")
    if not all(isinstance(v, numbers.Real) for v in valid_hw):
        raise InputError(f"valid_hw must hold real numbers, got {valid_hw!r}")
    h, w = mask_hw
    try:
        vh, vw = (float(v) for v in valid_hw)
    except OverflowError:  # a huge int
        vh = vw = math.inf
    if not (math.isfinite(vh) and math.isfinite(vw) and 0 < vh <= h and 0 < vw <= w):
        raise InputError(f"valid_hw must be in (0, mask size {h} x {w}], got {valid_hw!r}")
    return vh, vw


def check_logits(x: object, name: str, ndim: int) -> tuple[int, ...]:
    """float32, C-contiguous, ``ndim`` dims, every value finite."""
    x = _require_array(x, name)
    if x.dtype != np.float32:
        raise InputError(f"{name} must be float32, got {x.dtype}")
    if x.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{name} contains NaN or infinity")
    if ndim == 2 and x.shape[1] < 1:
        raise InputError(f"{name} needs at least one column, got shape {x.shape}")
    return x.shape


def check_mask_stack(x: object, name: str, n: int | None) -> np.ndarray:
    """N x h x w float32 finite logits (N == ``n`` when given), h, w >= 1."""
    shape = check_logits(x, name, ndim=3)
    if n is not None and shape[0] != n:
        raise InputError(f"{name} has {shape[0]} masks, expected {n} (one per query)")
    if shape[1] < 1 or shape[2] < 1:
        raise InputError(f"{name} masks are empty: shape {shape}")
    return x  # type: ignore[return-value]


def check_int(value: object, name: str, lo: int, hi: int) -> int:
    """An integer (Python, numpy or bool) in [lo, hi]."""
    if not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def check_float(value: object, name: str) -> float:
    """A real number (int, float, bool or numpy scalar) as a float."""
    if not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise InputError(f"{name} is out of range, got {value}") from None


def check_bool(value: object, name: str) -> bool:
    """A bool (Python or numpy) or an integer, as a bool."""
    if not isinstance(value, (bool, np.bool_, int, np.integer)):
        raise InputError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def resize_hw(in_h: int, in_w: int, box_h: int, box_w: int) -> tuple[float, int, int]:
    """Aspect-preserving fit of in_h x in_w inside box_h x box_w: (scale, new_h, new_w)."""
    scale = min(box_h / in_h, box_w / in_w)
    new_h = min(box_h, max(1, math.floor(in_h * scale + 0.5)))
    new_w = min(box_w, max(1, math.floor(in_w * scale + 0.5)))
    return scale, new_h, new_w
