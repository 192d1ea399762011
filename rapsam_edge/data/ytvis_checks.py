"""Checks of a YouTube-VIS 2019 annotation file's fields, made once when the file is opened
(before any frame is read or mask allocated), and the per-frame decoding of its
segmentations. Every failure is a ``DatasetError`` naming the file, and the video,
annotation and frame it is about.

What is refused (``check_ytvis``):

- ``videos``: not a non-empty list; a video that is not an object, whose ``id`` is not an
  integer or repeats, with no ``file_names`` (an empty video), a file name that is not a
  relative path inside the frames folder (absolute, a drive, ``..``, ``\\``, empty, NUL),
  a ``length`` other than its number of file names, a ``height`` / ``width`` that is not a
  positive integer or whose product is over the frame limit (contract.json
  ``frames.max_pixels``).
- ``categories``: not a list of objects with distinct integer ids.
- ``annotations`` (absent or null: an unannotated split): an annotation whose ``id`` is not
  an integer or repeats, whose ``video_id`` or ``category_id`` is not in the file, whose
  ``segmentations`` / ``areas`` / ``bboxes`` do not have one entry per frame of its video,
  a segmentation that is neither null, a COCO RLE (``size`` = the video's height, width;
  ``counts`` a string or a list of non-negative integers summing to height x width) nor a
  list of polygons (flat x, y lists of at least 3 points, finite, at most one frame size
  outside the frame), an area that is not a non-negative number, a box that is not 4
  finite numbers with non-negative width and height, an ``iscrowd`` other than 0 / 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import cv2
import numpy as np

from ..contract.limits import MAX_IMAGE_PIXELS
from ..errors import DatasetError, InputError
from ..ops import rle_decode

__all__ = ["check_file_name", "check_polygons", "check_ytvis", "decode_segmentation", "video_hw"]

HINT_SEG = (
    "each segmentation is null, a COCO RLE of the video's height x width "
    "(pycocotools.mask.encode) or a list of polygons [[x1, y1, x2, y2, ...], ...]"
)
HINT_VIDEO = (
    "each video has an integer id, a non-empty file_names list, and optionally length (its "
    "number of frames), height and width (its frames' size)"
)
HINT_PATH = "file_names are relative paths (with /) inside SPLIT/JPEGImages/, e.g. VIDEO/00000.jpg"


class _Bad(Exception):
    """A field check failed; the caller adds where (file, video, annotation, frame)."""


def _int(v: Any, what: str, lo: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"{what} must be an integer, got {v!r:.60}")
    if lo is not None and v < lo:
        raise _Bad(f"{what} must be at least {lo}, got {v}")
    return v


def _number(v: Any, what: str, lo: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Bad(f"{what} must be a finite number, got {v!r:.60}")
    if lo is not None and v < lo:
        raise _Bad(f"{what} must be at least {lo}, got {v}")
    return float(v)


def _list(v: Any, what: str) -> list:
    if not isinstance(v, list):
        raise _Bad(f"{what} must be a list, got {type(v).__name__}")
    return v


def check_file_name(name: Any) -> str:
    """A frame's file name as the annotations give it: a relative path that stays inside the
    frames folder (no absolute path, drive, ``..`` component, backslash, NUL or empty part).

    Raises:
      DatasetError: it is not (without a file or video named: the caller adds them)."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise DatasetError(f"file name {name!r:.80} is not a relative path", hint=HINT_PATH)
    posix, win = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or win.drive or win.is_absolute():
        raise DatasetError(f"file name {name!r:.80} is an absolute path", hint=HINT_PATH)
    if any(part == ".." for part in posix.parts) or "//" in name:
        raise DatasetError(f"file name {name!r:.80} leaves the frames folder", hint=HINT_PATH)
    return name


def video_hw(video: Mapping[str, Any]) -> tuple[int, int] | None:
    """The (height, width) a checked video declares, or None when it declares neither."""
    if video.get("height") is None and video.get("width") is None:
        return None
    return int(video["height"]), int(video["width"])


def _check_video(video: Any) -> None:
    if not isinstance(video, Mapping):
        raise _Bad(f"is not an object ({type(video).__name__})")
    names = _list(video.get("file_names"), "file_names")
    if not names:
        raise _Bad("has no frames (file_names is empty)")
    for k, name in enumerate(names):
        try:
            check_file_name(name)
        except DatasetError as e:
            raise _Bad(f"frame {k}: {e}") from None
    if video.get("length") is not None and _int(video["length"], "length") != len(names):
        raise _Bad(f"declares length {video['length']} but lists {len(names)} file_names")
    h, w = video.get("height"), video.get("width")
    if h is None and w is None:
        return
    h, w = _int(h, "height", 1), _int(w, "width", 1)
    if h * w > MAX_IMAGE_PIXELS:
        raise _Bad(f"declares {w} x {h} frames, over the limit of {MAX_IMAGE_PIXELS} pixels")


def _check_rle(seg: Mapping[str, Any], hw: tuple[int, int] | None) -> None:
    size = _list(seg.get("size"), "rle size")
    if len(size) != 2:
        raise _Bad(f"rle size must be [height, width], got {size!r:.60}")
    sh, sw = _int(size[0], "rle height", 1), _int(size[1], "rle width", 1)
    if hw is not None and (sh, sw) != hw:
        raise _Bad(f"rle size {sh} x {sw} (h x w) differs from the video's {hw[0]} x {hw[1]}")
    if sh * sw > MAX_IMAGE_PIXELS:
        raise _Bad(f"rle size {sh} x {sw} is over the limit of {MAX_IMAGE_PIXELS} pixels")
    counts = seg.get("counts")
    if isinstance(counts, list):
        runs = [_int(c, "rle count", 0) for c in counts]
        if sum(runs) != sh * sw:
            raise _Bad(f"rle counts sum to {sum(runs)}, not height x width = {sh * sw}")
    elif not isinstance(counts, str) or not counts.isascii():
        raise _Bad(f"rle counts must be an ASCII string or a list of integers, got {counts!r:.60}")


def _check_polygons(seg: list, hw: tuple[int, int] | None) -> None:
    if not seg:
        raise _Bad("an empty polygon list (use null for an absent object)")
    for poly in seg:
        coords = _list(poly, "a polygon")
        if len(coords) < 6 or len(coords) % 2:
            raise _Bad(f"a polygon needs x, y pairs of at least 3 points, got {len(coords)} values")
        xy = [_number(c, "a polygon coordinate") for c in coords]
        if hw is not None:
            h, w = hw
            xs, ys = xy[0::2], xy[1::2]
            if min(xs) < -w or max(xs) > 2 * w or min(ys) < -h or max(ys) > 2 * h:
                raise _Bad(f"a polygon reaches far outside the {w} x {h} frame")


def check_polygons(seg: Any, hw: tuple[int, int]) -> None:
    """A list of polygons (flat x, y lists) on an ``hw`` frame, checked as in the file checks.

    Raises:
      DatasetError: it is not (without where: the caller adds it)."""
    try:
        _check_polygons(_list(seg, "polygons"), hw)
    except _Bad as e:
        raise DatasetError(f"segmentation {e}", hint=HINT_SEG) from None


def _check_segmentation(seg: Any, hw: tuple[int, int] | None) -> None:
    if seg is None:
        return
    if isinstance(seg, Mapping):
        _check_rle(seg, hw)
    elif isinstance(seg, list):
        _check_polygons(seg, hw)
    else:
        raise _Bad(f"is neither null, an RLE nor polygons ({type(seg).__name__})")


def _check_per_frame(ann: Mapping[str, Any], hw: tuple[int, int] | None, frames: int) -> None:
    segs = _list(ann.get("segmentations"), "segmentations")
    if len(segs) != frames:
        raise _Bad(f"has {len(segs)} segmentations for the {frames} frames of its video")
    for k, seg in enumerate(segs):
        try:
            _check_segmentation(seg, hw)
        except _Bad as e:
            raise _Bad(f"frame {k}: segmentation {e}") from None
    for key in ("areas", "bboxes"):
        if ann.get(key) is not None and len(_list(ann[key], key)) != frames:
            raise _Bad(f"has {len(ann[key])} {key} for the {frames} frames of its video")
    for k, a in enumerate(ann.get("areas") or []):
        if a is not None:
            _number(a, f"frame {k}: area", 0)
    for k, b in enumerate(ann.get("bboxes") or []):
        if b is not None:
            box = _list(b, f"frame {k}: bbox")
            if len(box) != 4:
                raise _Bad(f"frame {k}: bbox must be [x, y, width, height], got {b!r:.60}")
            _, _, bw, bh = (_number(v, f"frame {k}: bbox value") for v in box)
            if bw < 0 or bh < 0:
                raise _Bad(f"frame {k}: bbox {b!r:.60} has a negative width or height")


def _check_annotation(ann: Any, videos: Mapping[int, Mapping[str, Any]], cats: set[int]) -> None:
    if not isinstance(ann, Mapping):
        raise _Bad(f"is not an object ({type(ann).__name__})")
    vid = _int(ann.get("video_id"), "video_id")
    if vid not in videos:
        raise _Bad(f"names video_id {vid}, which is not in videos")
    cat = _int(ann.get("category_id"), "category_id")
    if cat not in cats:
        raise _Bad(f"names category_id {cat}, which is not in categories")
    if ann.get("iscrowd") not in (None, 0, 1):
        raise _Bad(f"iscrowd must be 0 or 1, got {ann['iscrowd']!r:.60}")
    video = videos[vid]
    hw = video_hw(video)
    if hw is not None:
        for key, want in (("height", hw[0]), ("width", hw[1])):
            if ann.get(key) is not None and ann[key] != want:
                raise _Bad(f"declares {key} {ann[key]!r:.40}, its video {want}")
    _check_per_frame(ann, hw, len(video["file_names"]))


def _ids(items: list, what: str, where: Path) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for i, item in enumerate(items):
        try:
            if not isinstance(item, Mapping):
                raise _Bad(f"is not an object ({type(item).__name__})")
            key = _int(item.get("id"), "id")
        except _Bad as e:
            raise DatasetError(f"{where}: {what} #{i} {e}") from None
        if key in out:
            raise DatasetError(f"{where}: {what} id {key} appears twice")
        out[key] = item
    return out


def check_ytvis(data: Any, where: Path) -> None:
    """Check a YouTube-VIS 2019 annotation file's fields (module docstring).

    Raises:
      DatasetError: the first failure, with ``where`` and the video / annotation / frame."""
    if not isinstance(data, Mapping):
        raise DatasetError(f"{where}: not a YouTube-VIS annotation file (not a JSON object)")
    try:
        videos, cats = (
            _list(data.get("videos"), "videos"),
            _list(data.get("categories"), "categories"),
        )
        anns = data.get("annotations")  # absent or null: an unannotated split
        anns = [] if anns is None else _list(anns, "annotations")
    except _Bad as e:
        raise DatasetError(f"{where}: {e} (videos, categories and annotations)") from None
    if not videos:
        raise DatasetError(f"{where}: no videos (the videos list is empty)")
    by_id = _ids(videos, "video", where)
    for vid, video in by_id.items():
        try:
            _check_video(video)
        except _Bad as e:
            hint = HINT_PATH if "file name" in str(e) else HINT_VIDEO
            sep = ", " if str(e).startswith("frame") else " "
            raise DatasetError(f"{where}: video {vid}{sep}{e}", hint=hint) from None
    cat_ids = set(_ids(cats, "category", where))
    _ids(anns, "annotation", where)
    for ann in anns:
        try:
            _check_annotation(ann, by_id, cat_ids)
        except _Bad as e:
            raise DatasetError(
                f"{where}: annotation {ann['id']} (video {ann.get('video_id')!r:.20})"
                f"{', ' if str(e).startswith('frame') else ' '}{e}",
                hint=HINT_SEG,
            ) from None


def decode_segmentation(seg: Any, h: int, w: int) -> np.ndarray:
    """A checked segmentation (RLE or polygons) -> H x W bool on an ``h`` x ``w`` frame.

    Raises:
      DatasetError: the RLE does not decode (bad counts, size other than h x w), without
        where (the caller adds the file, annotation and frame)."""
    if isinstance(seg, list):
        mask = np.zeros((h, w), np.uint8)
        for poly in seg:
            xy = np.asarray(poly, np.float64).reshape(-1, 2)
            xy = np.clip(xy, (-w, -h), (2 * w, 2 * h))  # the checks allow this much outside
            pts = np.round(xy).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        return mask.astype(bool)
    try:
        mask = rle_decode(dict(seg))
    except (InputError, ValueError, TypeError) as e:
        raise DatasetError(f"the RLE does not decode ({e})", hint=HINT_SEG) from None
    if mask.shape != (h, w):
        raise DatasetError(
            f"the RLE's size {mask.shape[0]} x {mask.shape[1]} differs from the frames' {h} x {w}",
            hint=HINT_SEG,
        )
    return mask
