"""The ops' argument checks, written once for both implementations.

Each op ``X`` has ``X_args(...)``: the op's public signature and defaults (the dispatched op
and the numpy twin take theirs from it), which checks every argument and returns them in
the same order, normalised: arrays of the right dtype, shape and contiguity (aligned),
pairs as tuples, scalars as Python numbers. ``checked(X_args, kernel)`` makes the public op:
the numpy kernels (``_numpy``) and the compiled core (``rapsam_edge._core``) then only
compute. Bad arguments raise ``rapsam_edge.errors.InputError`` (a ValueError) whose message
starts with the argument's name.

Checks that need the data decoded or searched (an RLE's run counts, an infeasible cost
matrix) happen where the data is read, in each implementation, with the same messages.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import numpy as np

from ..contract.postprocess import SEGMENT_DTYPE  # noqa: F401  (the contract's record)
from ..contract.shared import (
    BIRTH_SCORE,
    CLASS_CHANGE_PENALTY,
    MATCH_THRESHOLD,
    MAX_FRAME_PIXELS,
    MAX_MISSED,
    MOMENTUM,
    OVERLAP_THRESHOLD,
    PROMPT_THRESHOLD,
    SCORE_THRESHOLD,
    STABILITY_OFFSET,
)
from ..errors import InputError

MAX_SIDE = 1 << 15  # largest accepted image / output side

_P = ParamSpec("_P")
_R = TypeVar("_R")


def checked(check: Callable[_P, tuple[Any, ...]], kernel: Callable[..., _R]) -> Callable[_P, _R]:
    """The public op: ``kernel(*check(...))``, with ``check``'s signature and ``kernel``'s
    docstring and module; named after ``check`` (``letterbox_args`` -> ``letterbox``)."""

    @functools.wraps(kernel)
    def op(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return kernel(*check(*args, **kwargs))

    op.__name__ = op.__qualname__ = check.__name__.removesuffix("_args")
    # check's parameters, the kernel's return type (a compiled kernel has none to give)
    returns = getattr(kernel, "__annotations__", {}).get("return", inspect.Signature.empty)
    op.__signature__ = inspect.signature(check).replace(  # type: ignore[attr-defined]
        return_annotation=returns
    )
    del op.__wrapped__  # the signature is check's
    return op


def _finite_numpy(x: np.ndarray) -> bool:
    return bool(np.isfinite(x).all())


#: the scan behind "contains NaN or infinity": numpy's, or the compiled core's multi-threaded
#: one (``use_finite_scan``; same answer, about 10x faster on a frame's mask logits)
_all_finite: Callable[[np.ndarray], bool] = _finite_numpy


def use_finite_scan(scan: Callable[[np.ndarray], bool] | None) -> None:
    """Scan float32 arrays for NaN / inf with ``scan`` (None: numpy's)."""
    global _all_finite
    _all_finite = scan or _finite_numpy


def _aligned(x: np.ndarray) -> np.ndarray:
    return x if x.flags.aligned else x.copy()


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
    return _aligned(image)


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


def check_logits(x: object, name: str, ndim: int) -> np.ndarray:
    """float32, C-contiguous, ``ndim`` dims, every value finite."""
    x = _require_array(x, name)
    if x.dtype != np.float32:
        raise InputError(f"{name} must be float32, got {x.dtype}")
    if x.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    x = _aligned(x)
    if not _all_finite(x):
        raise InputError(f"{name} contains NaN or infinity")
    if ndim == 2 and x.shape[1] < 1:
        raise InputError(f"{name} needs at least one column, got shape {x.shape}")
    return x


def check_mask_stack(x: object, name: str, n: int | None) -> np.ndarray:
    """N x h x w float32 finite logits (N == ``n`` when given), h, w >= 1."""
    x = check_logits(x, name, ndim=3)
    if n is not None and x.shape[0] != n:
        raise InputError(f"{name} has {x.shape[0]} masks, expected {n} (one per query)")
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise InputError(f"{name} masks are empty: shape {x.shape}")
    return x


def check_int(value: object, name: str, lo: int, hi: int) -> int:
    """An integer (Python or numpy; not a bool) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
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


def _range_text(lo: float, hi: float) -> str:
    if math.isinf(lo) and math.isinf(hi):
        return "a finite number"
    if math.isinf(hi):
        return f"a finite number >= {lo:g}"
    return f"in [{lo:g}, {hi:g}]"


def check_real(value: object, name: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A finite real number (Python or numpy; not a bool) in [lo, hi], as a float: a
    threshold, a logit, a weight. NaN, infinity and a bool are errors."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be a real number, got bool")
    x = check_float(value, name)
    if not (math.isfinite(x) and lo <= x <= hi):
        raise InputError(f"{name} must be {_range_text(lo, hi)}, got {value!r}")
    return x


def check_probability(value: object, name: str) -> float:
    """A probability or a fraction (a score threshold, an overlap ratio, a blend weight):
    a finite real number in [0, 1]."""
    return check_real(value, name, 0.0, 1.0)


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


def check_masks(masks: object, name: str) -> np.ndarray:
    """H x W or N x H x W bool / uint8 masks (any strides)."""
    if not isinstance(masks, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(masks).__name__}")
    if masks.dtype not in (np.bool_, np.uint8):
        raise InputError(f"{name} must be bool or uint8, got {masks.dtype}")
    if masks.ndim not in (2, 3):
        raise InputError(f"{name} must be H x W or N x H x W, got shape {masks.shape}")
    return masks


# ---------------------------------------------------------------- the ops' arguments
def letterbox_args(
    image: np.ndarray,
    size: int | tuple[int, int],
    pad_divisor: int = 32,
    pad_value: int = 0,
    swap_rb: bool = False,
) -> tuple[np.ndarray, tuple[int, int], int, int, bool]:
    image = check_image(image, "image")
    box = check_hw(size, "size", allow_int=True)
    pad_divisor = check_int(pad_divisor, "pad_divisor", 1, 4096)
    pad_value = check_int(pad_value, "pad_value", 0, 255)
    swap_rb = check_bool(swap_rb, "swap_rb")
    channels = image.shape[2] if image.ndim == 3 else 1
    if swap_rb and channels < 3:
        raise InputError(f"swap_rb needs an image with >= 3 channels, got {channels}")
    return image, box, pad_divisor, pad_value, swap_rb


def panoptic_fuse_args(
    cls_logits: np.ndarray,
    mask_logits: np.ndarray,
    valid_hw: tuple[float, float],
    out_hw: tuple[int, int],
    is_thing: np.ndarray,
    score_threshold: float = SCORE_THRESHOLD,
    overlap_threshold: float = OVERLAP_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[int, int], np.ndarray, float, float]:
    cls_logits = check_logits(cls_logits, "cls_logits", ndim=2)
    n_queries, n_cls1 = cls_logits.shape
    mask_logits = check_mask_stack(mask_logits, "mask_logits", n_queries)
    out = check_hw(out_hw, "out_hw")
    valid = check_valid_hw(valid_hw, mask_logits.shape[1:])
    try:
        thing = np.ascontiguousarray(is_thing, dtype=bool)
    except (TypeError, ValueError):
        raise InputError(
            f"is_thing must be an array of C = {n_cls1 - 1} bools, got {is_thing!r}"
        ) from None
    if thing.shape != (n_cls1 - 1,):
        raise InputError(
            f"is_thing must have C = {n_cls1 - 1} entries (cls_logits has C+1 columns), "
            f"got shape {thing.shape}"
        )
    score = check_probability(score_threshold, "score_threshold")
    overlap = check_probability(overlap_threshold, "overlap_threshold")
    return cls_logits, mask_logits, valid, out, _aligned(thing), score, overlap


def prompt_masks_args(
    mask_logits: np.ndarray,
    valid_hw: tuple[float, float],
    out_hw: tuple[int, int],
    threshold: float = PROMPT_THRESHOLD,
    stability_offset: float = STABILITY_OFFSET,
) -> tuple[np.ndarray, tuple[float, float], tuple[int, int], float, float]:
    mask_logits = check_mask_stack(mask_logits, "mask_logits", None)
    out = check_hw(out_hw, "out_hw")
    valid = check_valid_hw(valid_hw, mask_logits.shape[1:])
    threshold = check_real(threshold, "threshold")  # a logit
    stability_offset = check_real(stability_offset, "stability_offset", lo=0.0)
    return mask_logits, valid, out, threshold, stability_offset


def masks_to_boxes_args(masks: np.ndarray) -> tuple[np.ndarray]:
    return (check_masks(masks, "masks"),)


def rle_encode_args(mask: np.ndarray) -> tuple[np.ndarray]:
    return (check_masks(mask, "mask"),)


def _rle(rle: object) -> dict[str, Any]:
    """One RLE as {"size": [H, W], "counts": bytes | list[int]} (sizes checked)."""
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
    if hw[0] < 0 or hw[1] < 0:
        raise InputError(f"rle size must be non-negative, got {size!r}")
    if hw[0] * hw[1] > MAX_FRAME_PIXELS:  # checked before the mask is allocated
        raise InputError(
            f"rle size {hw[0]} x {hw[1]} is over the frame limit of {MAX_FRAME_PIXELS} pixels",
            hint="an RLE's size is the frame it covers (contract.json frames.max_pixels)",
        )
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise InputError("rle counts string must be ASCII") from None
    if not isinstance(counts, bytes):
        try:
            counts = [int(c) for c in counts]
        except (TypeError, ValueError):
            raise InputError(
                f"rle counts must be a string or a list of integers, got {type(counts).__name__}"
            ) from None
    return {"size": hw, "counts": counts}


def rle_decode_args(
    rle: dict[str, Any] | list[dict[str, Any]],
) -> tuple[dict[str, Any] | list[dict[str, Any]]]:
    if isinstance(rle, (list, tuple)):
        if not rle:
            raise InputError("rle list is empty")
        rles = [_rle(r) for r in rle]
        total = sum(r["size"][0] * r["size"][1] for r in rles)
        if total > RLE_LIST_MAX_PIXELS:
            raise InputError(
                f"rle list of {len(rles)} masks covers {total} pixels, over the limit of "
                f"{RLE_LIST_MAX_PIXELS} (4 frames at the frame limit)",
                hint="decode the masks in smaller lists",
            )
        return (rles,)
    return (_rle(rle),)


#: most pixels one ``rle_decode`` call on a list decodes (its N x H x W bool result)
RLE_LIST_MAX_PIXELS = 4 * MAX_FRAME_PIXELS


def linear_assignment_args(cost: np.ndarray, maximize: bool = False) -> tuple[np.ndarray, bool]:
    if not isinstance(cost, np.ndarray):
        raise InputError(f"cost must be a numpy array, got {type(cost).__name__}")
    if cost.ndim != 2:
        raise InputError(f"cost must be 2-D, got shape {cost.shape}")
    if cost.dtype.kind not in "fiub":
        raise InputError(f"cost must be numeric, got {cost.dtype}")
    return cost, check_bool(maximize, "maximize")


def overlay_args(
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.5, boundary: bool = True
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    image = check_image(image, "image")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be H x W x 3 uint8, got shape {image.shape}")
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int32:
        raise InputError("labels must be an int32 numpy array")
    if labels.shape != image.shape[:2]:
        raise InputError(f"labels shape {labels.shape} must equal image H x W {image.shape[:2]}")
    alpha = check_probability(alpha, "alpha")
    return image, labels, alpha, check_bool(boundary, "boundary")


# ---------------------------------------------------------------- the online tracker
def tracker_args(
    match_threshold: float = MATCH_THRESHOLD,
    class_change_penalty: float = CLASS_CHANGE_PENALTY,
    birth_score: float = BIRTH_SCORE,
    max_missed: int = MAX_MISSED,
    momentum: float = MOMENTUM,
) -> tuple[float, float, float, int, float]:
    """The tracker's settings: ``match_threshold`` a cosine similarity in [-1, 1];
    ``class_change_penalty`` a cost >= 0 added to a cosine distance; ``birth_score`` a
    detection score in [0, 1]; ``max_missed`` frames in [0, 2**31 - 1]; ``momentum`` an EMA
    weight in [0, 1]."""
    return (
        check_real(match_threshold, "match_threshold", -1.0, 1.0),
        check_real(class_change_penalty, "class_change_penalty", lo=0.0),
        check_probability(birth_score, "birth_score"),
        check_int(max_missed, "max_missed", 0, 2**31 - 1),
        check_probability(momentum, "momentum"),
    )


def _array_of(x: object, name: str, kind: str, dtype: type[np.generic]) -> np.ndarray:
    """``x`` (an array or nested lists) as a C-contiguous array of ``dtype``; its values must
    be of numpy kind ``kind`` ("iu": integers, "iuf": real numbers), unless it is empty."""
    if x is None or isinstance(x, (str, bytes)):
        raise InputError(f"{name} must be an array, got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged lists
        raise InputError(f"{name} must be an array, got {type(x).__name__} ({e})") from None
    if a.size and (a.dtype.kind not in kind or a.dtype == np.bool_):  # [] is float64
        what = "integers" if kind == "iu" else "real numbers"
        raise InputError(f"{name} must hold {what}, got dtype {a.dtype}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: the finite check's
        return np.ascontiguousarray(a, dtype=dtype)


def tracker_update_args(
    embeddings: np.ndarray, classes: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's detections for ``update``: embeddings N x D (D >= 1) finite real numbers
    -> float32; classes N integer class indices in [0, int32 max] -> int32; scores N real
    numbers in [0, 1] (detection confidences, compared with ``birth_score``) -> float32
    (arrays or lists). A D differing from the live tracks' is checked by the tracker, which
    holds them (the same message in both implementations). Every check runs before the
    tracker changes, so a refused frame leaves it as it was (the C++ core checks the same
    again for its C++ callers: csrc/tracker.cpp)."""
    emb = _array_of(embeddings, "embeddings", "iuf", np.float32)
    if emb.ndim != 2 or emb.shape[1] < 1:
        raise InputError(f"embeddings must be N x D with D >= 1, got shape {emb.shape}")
    if not _all_finite(emb):
        raise InputError("embeddings contains NaN or infinity (or a value beyond float32)")
    n = emb.shape[0]
    raw = _array_of(classes, "classes", "iu", np.int64)
    if raw.shape != (n,):
        raise InputError(f"classes must have N = {n} entries (one per embedding), got {raw.shape}")
    top = np.iinfo(np.int32).max
    if n and not (0 <= raw.min() and raw.max() <= top):
        raise InputError(
            f"classes must be class indices in [0, {top}], got {raw.min()}..{raw.max()}"
        )
    cls = np.ascontiguousarray(raw, dtype=np.int32)
    score = _array_of(scores, "scores", "iuf", np.float32)
    if score.shape != (n,):
        raise InputError(f"scores must have N = {n} entries (one per embedding), got {score.shape}")
    if not _all_finite(score):
        raise InputError("scores contains NaN or infinity")
    if n and not (0.0 <= score.min() and score.max() <= 1.0):
        raise InputError(f"scores must be in [0, 1], got {score.min():g}..{score.max():g}")
    return emb, cls, score
