"""ROS 2 messages of rapsam-edge's results, built without rclpy: plain dicts whose keys and
nesting are the fields of the standard message types (``msgdefs``), ready for a CDR
serialiser (the MCAP recorder) or for copying into rclpy message objects (the node).

    header = make_header(stamp_ns, "camera")             # or the input image's header
    msgs = frame_messages(header, frame, result, OutputInfo.of(seg), fps=fps)
    msgs["semantic/labels"]    # sensor_msgs/Image dict, one per "out" topic of TOPICS

Every output copies the header it is given (stamp and frame_id of the input image). The
pixel conventions (``topics.TOPICS`` says the same per topic):
  * ``panoptic/segments``: 32SC1 segment id (0 = void), the ``PanopticResult.panoptic_map``;
  * ``semantic/labels``: class id per pixel; mono8 when the bundle has at most 255 classes,
    else mono16 (at most 65535); void is the largest value (255 / 65535), vision_msgs'
    UNLABELED; more classes than mono16 holds is an ``InputError``;
  * ``semantic/confidence``: 32FC1, the score of the segment under each pixel, 0 on void;
  * ``detections``: one ``Detection2D`` per thing (per track for a ``TrackResult``): ``id``
    the track id (segment id for a ``PanopticResult``), one hypothesis whose ``class_id`` is
    the class index as text (``label_info`` maps it to the name) with its score, ``bbox`` the
    mask's box (center = middle of the pixel span, size = pixels covered, theta 0);
  * ``detections/ids``: 32SC1, each pixel the ``id`` of the detection covering it (0 none);
  * ``prompts/masks``: 32SC1, each pixel the id of the prompted object tracked there;
  * ``debug/overlay``: rgb8 / bgr8 (the Segmenter's colour order), the drawn result;
  * ``diagnostics``: one status "rapsam_edge" with fps, ``latency_ms/<stage>`` per stage,
    backend and bundle as key/values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..contract.shared import MAX_FRAME_PIXELS
from ..errors import InputError
from ..runtime.results import PanopticResult, PromptTrackResult, TrackResult
from . import msgdefs
from .topics import IMAGE_ENCODINGS, INPUT_ENCODINGS

__all__ = [
    "MONO8_UNLABELED",
    "MONO16_UNLABELED",
    "Msg",
    "check_header",
    "check_message",
    "confidence_map",
    "detections",
    "diagnostics",
    "frame_from_image",
    "image_array",
    "image_msg",
    "label_info",
    "make_header",
    "panoptic_layers",
    "prompt_masks",
    "semantic_labels",
]

#: a message: field name -> value (nested dicts and lists for nested types)
Msg = dict[str, Any]
#: vision_msgs' UNLABELED class for 8- and 16-bit label images
MONO8_UNLABELED = 255
MONO16_UNLABELED = 65535
_INT32_MAX = 2**31 - 1
#: ids up to this are looked up through a table (4 MiB of int32 at most)
_TABLE_IDS = 1 << 20
_NS = 1_000_000_000


# ------------------------------------------------------------------------------ headers
def make_header(stamp_ns: int, frame_id: str) -> Msg:
    """A ``std_msgs/Header`` at ``stamp_ns`` nanoseconds (since the epoch or since the
    clip's start).

    Raises:
      InputError: a negative stamp, one past the year 2038 (``sec`` is int32), a non-string
        frame id."""
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, (int, np.integer)):
        raise InputError(f"stamp_ns must be an integer, got {type(stamp_ns).__name__}")
    if not 0 <= int(stamp_ns) <= _INT32_MAX * _NS + _NS - 1:
        raise InputError(f"stamp_ns={stamp_ns} is outside 0 .. 2**31 s (header stamp sec is int32)")
    sec, nanosec = divmod(int(stamp_ns), _NS)
    return check_header({"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": frame_id})


def check_header(header: Mapping[str, Any]) -> Msg:
    """A checked copy of a ``std_msgs/Header`` dict (what every output of a frame carries).

    Raises:
      InputError: missing fields, ``sec`` outside int32, ``nanosec`` outside 0..1e9-1, a
        frame id that is not a string."""
    try:
        stamp, frame_id = header["stamp"], header["frame_id"]
        sec, nanosec = stamp["sec"], stamp["nanosec"]
    except (KeyError, TypeError):
        raise InputError(f"not a std_msgs/Header: {header!r}") from None
    for name, value, lo, hi in (
        ("sec", sec, -_INT32_MAX - 1, _INT32_MAX),
        ("nanosec", nanosec, 0, _NS - 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"header stamp {name} must be an integer, got {value!r}")
        if not lo <= int(value) <= hi:
            raise InputError(f"header stamp {name}={value} is outside {lo}..{hi}")
    if not isinstance(frame_id, str):
        raise InputError(f"header frame_id must be a string, got {type(frame_id).__name__}")
    return {"stamp": {"sec": int(sec), "nanosec": int(nanosec)}, "frame_id": frame_id}


def check_message(type_name: str, msg: Any) -> None:
    """Refuse a message dict whose keys are not exactly the fields of ``type_name`` (nested
    types checked too; arrays of primitives not walked). A serialiser would silently write
    zeros for a missing or misspelt key.

    Raises:
      InputError: naming the path of the first wrong key."""

    def walk(t: str, m: Any, path: str) -> None:
        if not isinstance(m, Mapping):
            raise InputError(f"{path}: expected a {t} dict, got {type(m).__name__}")
        want = {f.name: f for f in msgdefs.fields(t)}
        if set(m) != set(want):
            missing, extra = sorted(set(want) - set(m)), sorted(set(m) - set(want))
            raise InputError(f"{path} ({t}): missing fields {missing}, unknown fields {extra}")
        for name, f in want.items():
            if f.is_primitive:
                continue
            items = m[name] if f.is_array else [m[name]]
            if not isinstance(items, list):
                raise InputError(f"{path}.{name}: expected a list of {f.type}")
            for i, item in enumerate(items):
                walk(f.type, item, f"{path}.{name}[{i}]" if f.is_array else f"{path}.{name}")

    walk(msgdefs.short_name(type_name), msg, msgdefs.short_name(type_name))


# ------------------------------------------------------------------------------- images
def image_msg(header: Mapping[str, Any], array: np.ndarray, encoding: str) -> Msg:
    """A ``sensor_msgs/Image`` of ``array`` (H x W for one channel, H x W x 3 for rgb8 /
    bgr8), little-endian, rows packed (``step`` = width x bytes per pixel).

    Raises:
      InputError: an unknown encoding, or an array whose dtype / shape does not fit it."""
    if encoding not in IMAGE_ENCODINGS:
        raise InputError(f"unknown image encoding {encoding!r} (have {sorted(IMAGE_ENCODINGS)})")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(array)
    shape_ok = arr.ndim == 2 if channels == 1 else (arr.ndim == 3 and arr.shape[2] == channels)
    if arr.dtype != np.dtype(dtype) or not shape_ok:
        raise InputError(
            f"a {encoding} image needs {dtype} with {channels} channel(s), got {arr.dtype} "
            f"{arr.shape}"
        )
    height, width = arr.shape[:2]
    data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
    return {
        "header": check_header(header),
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * channels * arr.dtype.itemsize,
        "data": data,
    }


def image_array(msg: Mapping[str, Any], encodings: Sequence[str] | None = None) -> np.ndarray:
    """The pixels of a ``sensor_msgs/Image`` dict (or an rclpy Image's fields) as a numpy
    array (H x W, or H x W x 3), rows unpadded, native byte order (a copy).

    Arguments:
      encodings: the encodings accepted (default: every one ``image_msg`` writes).
    Raises:
      InputError: another encoding, a size over the frame limit, a ``step`` shorter than a
        row, or ``data`` not ``step`` x ``height`` bytes."""
    encoding = str(msg["encoding"])
    allowed = tuple(IMAGE_ENCODINGS) if encodings is None else tuple(encodings)
    if encoding not in allowed or encoding not in IMAGE_ENCODINGS:
        raise InputError(f"image encoding {encoding!r} is not one of {list(allowed)}")
    dtype_name, channels = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg["height"]), int(msg["width"]), int(msg["step"])
    if height <= 0 or width <= 0 or height * width > MAX_FRAME_PIXELS:
        raise InputError(f"image size {width} x {height} is empty or over {MAX_FRAME_PIXELS} px")
    dtype = np.dtype(dtype_name).newbyteorder(">" if int(msg["is_bigendian"]) else "<")
    row = width * channels * dtype.itemsize
    data = bytes(msg["data"]) if not isinstance(msg["data"], (bytes, bytearray)) else msg["data"]
    if step < row or len(data) != step * height:
        raise InputError(
            f"image data is {len(data)} bytes for {height} rows of step {step} (a row of "
            f"{width} {encoding} pixels is {row} bytes)"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row]
    flat = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    out = flat.astype(dtype.newbyteorder("="))
    return out[:, :, 0] if channels == 1 else out


def frame_from_image(msg: Mapping[str, Any], color_order: str) -> np.ndarray:
    """An rgb8 / bgr8 ``sensor_msgs/Image`` as an H x W x 3 uint8 frame in ``color_order``
    ("RGB" or "BGR")."""
    frame = image_array(msg, INPUT_ENCODINGS)
    if str(msg["encoding"])[:3].upper() != color_order.upper():
        frame = np.ascontiguousarray(frame[:, :, ::-1])
    return frame


# ------------------------------------------------------------------------ id lookups
def _lookup(id_map: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    """Index (0..K-1) into ``ids`` of every pixel of ``id_map``, -1 where it is 0.

    A table indexed by id when the largest id is at most ``_TABLE_IDS`` (one gather per
    pixel), else a binary search (no table the size of a hostile id).

    Raises:
      InputError: a pixel holds a negative id or one that is not in ``ids``; ``ids`` holds
        0, a negative or a repeated value."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() <= 0 or np.unique(ids).size != ids.size):
        raise InputError(f"{what}: ids must be positive and unique, got {ids.tolist()[:20]}")
    id_map = np.asarray(id_map)
    if id_map.dtype.kind not in "iu":
        raise InputError(f"{what}: ids must be integers, got {id_map.dtype}")
    top = int(ids.max()) if ids.size else 0
    lo, hi = (int(id_map.min()), int(id_map.max())) if id_map.size else (0, 0)
    if lo >= 0 and hi <= top <= _TABLE_IDS:
        table = np.full(top + 1, -2, dtype=np.int32)
        table[0] = -1
        table[ids] = np.arange(ids.size, dtype=np.int32)
        idx = table[id_map]
        found = idx != -2
    else:
        flat = id_map.astype(np.int64)
        order = np.argsort(ids)
        sorted_ids = ids[order]
        pos = np.minimum(np.searchsorted(sorted_ids, flat), max(ids.size - 1, 0))
        hit = sorted_ids[pos] == flat if ids.size else np.zeros(flat.shape, bool)
        idx = np.where(hit, order[pos] if ids.size else 0, -1).astype(np.int32)
        found = hit | (flat == 0)
    if not found.all():
        value = int(id_map[~found].flat[0])
        raise InputError(f"{what}: pixel value {value} is not one of its ids {ids.tolist()[:20]}")
    return idx


def _panoptic(result: PanopticResult | TrackResult) -> PanopticResult:
    return result.panoptic if isinstance(result, TrackResult) else result


def _segment_index(pan: PanopticResult) -> np.ndarray:
    if pan.panoptic_map.ndim != 2:
        raise InputError(f"panoptic_map must be H x W, got shape {pan.panoptic_map.shape}")
    return _lookup(pan.panoptic_map, pan.segments["id"], "panoptic_map")


def panoptic_layers(result: PanopticResult | TrackResult) -> tuple[np.ndarray, str, np.ndarray]:
    """(class id image, its encoding, confidence image) of a result, the segment of each
    pixel looked up once (``semantic_labels`` and ``confidence_map`` in one pass).

    Raises:
      InputError: more than 65535 classes, a class id outside the class list, an id in the
        map that no segment has, a map that is not H x W."""
    pan = _panoptic(result)
    n = len(pan.class_names)
    if n > MONO16_UNLABELED:
        raise InputError(
            f"{n} classes do not fit a mono16 label image (at most {MONO16_UNLABELED}; "
            f"{MONO16_UNLABELED} is vision_msgs' UNLABELED)"
        )
    small = n <= MONO8_UNLABELED
    dtype: type[np.unsignedinteger[Any]] = np.uint8 if small else np.uint16
    void, encoding = (MONO8_UNLABELED, "mono8") if small else (MONO16_UNLABELED, "mono16")
    classes = np.asarray(pan.segments["class"], dtype=np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= n):
        raise InputError(f"segment classes {classes.tolist()[:20]} outside 0..{n - 1}")
    idx = _segment_index(pan)
    labels = np.append(classes, void).astype(dtype)[idx]  # index -1 -> void
    scores = np.append(np.asarray(pan.segments["score"], dtype=np.float32), np.float32(0))
    return labels, encoding, scores[idx]


def semantic_labels(result: PanopticResult | TrackResult) -> tuple[np.ndarray, str]:
    """(H x W class ids, encoding): mono8 for at most 255 classes, else mono16; void pixels
    hold 255 / 65535 (UNLABELED). Raises as ``panoptic_layers``."""
    labels, encoding, _ = panoptic_layers(result)
    return labels, encoding


def confidence_map(result: PanopticResult | TrackResult) -> np.ndarray:
    """H x W float32: the score of the segment under each pixel, 0 on void."""
    return panoptic_layers(result)[2]


def label_info(header: Mapping[str, Any], class_names: Sequence[str], threshold: float) -> Msg:
    """``vision_msgs/LabelInfo``: class index -> name, and the score threshold.

    Raises:
      InputError: more classes than uint16 ids (65535 is UNLABELED), a threshold outside
        [0, 1]."""
    if len(class_names) > MONO16_UNLABELED:
        raise InputError(f"{len(class_names)} classes: LabelInfo ids are uint16 (< 65535)")
    if not (isinstance(threshold, (int, float)) and 0.0 <= float(threshold) <= 1.0):
        raise InputError(f"threshold must be in [0, 1], got {threshold!r}")
    return {
        "header": check_header(header),
        "class_map": [{"class_id": i, "class_name": str(c)} for i, c in enumerate(class_names)],
        "threshold": float(threshold),
    }


# --------------------------------------------------------------------------- detections
def _boxes(idx: np.ndarray, k: int) -> np.ndarray:
    """K x 4 int (x0, y0, x1, y1), exclusive max, of the pixels whose index is 0..K-1 (rows
    of -1 where an index has no pixel)."""
    out = np.full((k, 4), -1, dtype=np.int64)
    for i in range(k):
        m = idx == i
        ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if ys.size:
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out


def _detection_table(
    result: PanopticResult | TrackResult,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(id map, ids, classes, scores) of the detections: the tracks of a ``TrackResult``,
    the thing segments of a ``PanopticResult`` (stuff pixels 0 in the id map)."""
    if isinstance(result, TrackResult):
        return result.track_map, result.track_ids, result.track_classes, result.track_scores
    segs = result.segments
    things = segs[segs["is_thing"].astype(bool)]
    idx = _segment_index(result)
    is_thing = np.append(segs["is_thing"].astype(bool), False)
    id_map = np.where(is_thing[idx], result.panoptic_map, 0).astype(np.int32)
    return id_map, things["id"], things["class"], things["score"]


def detections(
    header: Mapping[str, Any], result: PanopticResult | TrackResult
) -> tuple[Msg, np.ndarray]:
    """(``vision_msgs/Detection2DArray``, H x W int32 id image): one detection per track (per
    thing segment for a ``PanopticResult``), each with the header, its id as text, one
    hypothesis (class index as text, score) and its mask's box.

    Raises:
      InputError: ids / classes / scores of different lengths, ids not positive and unique,
        a pixel id that no detection has, a class outside the class list."""
    id_map, ids, classes, scores = _detection_table(result)
    n_classes = len(_panoptic(result).class_names)
    ids, classes = np.asarray(ids, np.int64), np.asarray(classes, np.int64)
    scores = np.asarray(scores, np.float64)
    if not len(ids) == len(classes) == len(scores):
        raise InputError(f"{len(ids)} ids, {len(classes)} classes, {len(scores)} scores")
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise InputError(f"detection classes {classes.tolist()[:20]} outside 0..{n_classes - 1}")
    if id_map.ndim != 2:
        raise InputError(f"the id map must be H x W, got shape {id_map.shape}")
    boxes = _boxes(_lookup(id_map, ids, "detection id map"), len(ids))
    hdr = check_header(header)
    dets = []
    for det_id, cls, score, (x0, y0, x1, y1) in zip(ids, classes, scores, boxes.tolist()):
        if x0 < 0:  # an id with no pixel: a zero-size box at the origin, still listed
            x0 = y0 = x1 = y1 = 0
        hyp = {"class_id": str(int(cls)), "score": float(score)}
        dets.append(
            {
                "header": dict(hdr),
                "results": [{"hypothesis": hyp, "pose": _NO_POSE}],
                "bbox": {
                    "center": {"position": {"x": (x0 + x1) / 2, "y": (y0 + y1) / 2}, "theta": 0.0},
                    "size_x": float(x1 - x0),
                    "size_y": float(y1 - y0),
                },
                "id": str(int(det_id)),
            }
        )
    return {"header": hdr, "detections": dets}, np.ascontiguousarray(id_map, dtype=np.int32)


#: an image detection has no 3-D pose: identity, zero covariance
_NO_POSE: Msg = {
    "pose": {
        "position": {"x": 0.0, "y": 0.0, "z": 0.0},
        "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
    },
    "covariance": [0.0] * 36,
}


def prompt_masks(result: PromptTrackResult) -> np.ndarray:
    """H x W int32: the id of the prompted object tracked at each pixel (0 none; where two
    masks overlap, the later object's id)."""
    h, w = result.frame_hw
    out = np.zeros((h, w), dtype=np.int32)
    for obj in result.objects:
        if obj.state == "tracked":
            if obj.mask.shape != (h, w):
                raise InputError(f"object {obj.id}: mask {obj.mask.shape} is not {(h, w)}")
            out[obj.mask] = obj.id
    return out


# -------------------------------------------------------------------------- diagnostics
def check_fps(fps: Any) -> float | None:
    """``fps`` as a float: None, or a finite real number >= 0 (not a bool).

    Raises:
      InputError: anything else (NaN, inf, negative, a string)."""
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise InputError(f"fps must be a number or None, got {type(fps).__name__}")
    value = float(fps)
    if not (math.isfinite(value) and value >= 0.0):
        raise InputError(f"fps must be finite and >= 0, got {fps!r}")
    return value


def diagnostics(
    header: Mapping[str, Any],
    timings: Mapping[str, float],
    *,
    fps: float | None,
    backend: str,
    bundle: str,
) -> Msg:
    """``diagnostic_msgs/DiagnosticArray`` with one status "rapsam_edge" (level OK): fps,
    ``latency_ms/<stage>`` per stage, backend, bundle (values as text, as the type has it).
    ``fps`` None (the first frame: no rate measured yet) leaves the "fps" value out.

    Raises:
      InputError: an fps or timing that is not a finite number (fps also >= 0)."""
    values = []
    rate = check_fps(fps)
    if rate is not None:
        values.append({"key": "fps", "value": f"{rate:.2f}"})
    for stage, ms in timings.items():
        if not math.isfinite(float(ms)):
            raise InputError(f"timing {stage!r} is {ms}")
        values.append({"key": f"latency_ms/{stage}", "value": f"{float(ms):.3f}"})
    values += [
        {"key": "backend", "value": backend},
        {"key": "bundle", "value": bundle},
    ]
    status = {
        "level": 0,
        "name": "rapsam_edge",
        "message": "ok",
        "hardware_id": backend,
        "values": values,
    }
    return {"header": check_header(header), "status": [status]}
