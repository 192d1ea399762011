"""YouTube-VIS 2019 format: writer (for generated videos) and reader (also for real data).

Layout under ``root``::

    <split>/JPEGImages/<video>/<frame>.png|.jpg
    annotations/instances_<split>.json   videos, categories, annotations

An annotation is one instance track: ``segmentations`` (one COCO RLE, compressed or not, a
list of polygons, or null per frame), ``areas`` and ``bboxes`` (null where absent). Only thing
instances are annotated. The reader checks every field (``data.ytvis_checks``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..contract.limits import MAX_IMAGE_PIXELS, MAX_VIDEO_SAMPLE_BYTES
from ..errors import DatasetError
from ..ops import rle_encode
from .coco_panoptic import contiguous_classes
from .imageio import read_rgb, write_rgb
from .jsonfile import read_json
from .segments import Segment
from .writer import AnnotationWriter
from .ytvis_checks import check_polygons, check_ytvis, decode_segmentation, video_hw


@dataclass
class VideoInstance:
    """One annotated track: ``masks`` T x H x W bool; ``areas`` / ``bboxes`` per frame (None
    where the instance is absent)."""

    class_id: int
    iscrowd: bool
    masks: np.ndarray
    areas: list[int | None]
    bboxes: list[tuple[float, float, float, float] | None]


@dataclass
class VideoSample:
    """One video: ``images`` T x H x W x 3 uint8 RGB and its instance tracks."""

    video_id: int
    name: str
    file_names: list[str]
    images: np.ndarray
    instances: list[VideoInstance]

    def ids(self) -> np.ndarray:
        """T x H x W int32 instance map: instance k (0-based, file order) has id k + 1, 0 is
        background; where annotated masks overlap, the later instance wins."""
        t, h, w = self.images.shape[:3]
        out = np.zeros((t, h, w), dtype=np.int32)
        for k, inst in enumerate(self.instances):
            out[inst.masks] = k + 1
        return out


class YtvisWriter(AnnotationWriter):
    """Streams video frames to disk; ``close()`` writes the annotation JSON. Stuff segments
    are skipped (YouTube-VIS annotates things only)."""

    ann_prefix = "instances"
    items_key = "videos"
    description = "rapsam-edge synthetic videos"
    things_only = True

    def add_video(
        self, images: np.ndarray, ids: np.ndarray, segments: Sequence[Sequence[Segment]]
    ) -> int:
        """Write one video: ``images`` T x H x W x 3 uint8 RGB, ``ids`` T x H x W int,
        ``segments`` per frame. Returns its video id."""
        length = len(images)
        if ids.shape != images.shape[:3] or len(segments) != length:
            raise ValueError("images, ids and segments must cover the same frames")
        video_id = len(self.items) + 1
        name = f"{video_id:06d}"
        file_names = []
        for t, image in enumerate(images):
            file_name = f"{name}/{t:05d}{self.image_ext}"
            write_rgb(self.root / self.split / "JPEGImages" / file_name, image)
            file_names.append(file_name)
        height, width = images.shape[1:3]
        self.items.append(
            {
                "id": video_id,
                "file_names": file_names,
                "height": height,
                "width": width,
                "length": length,
            }
        )
        tracks: dict[int, list[Segment | None]] = {}
        for t, frame in enumerate(segments):
            for s in frame:
                if s.is_thing:
                    tracks.setdefault(s.id, [None] * length)[t] = s
        for sid in sorted(tracks):
            per_frame = tracks[sid]
            first = next(s for s in per_frame if s is not None)
            rles: list[dict[str, Any] | None] = []
            for t, s in enumerate(per_frame):
                if s is None:
                    rles.append(None)
                    continue
                rle = rle_encode(ids[t] == sid)
                rles.append({"size": rle["size"], "counts": rle["counts"].decode("ascii")})
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "video_id": video_id,
                    "category_id": int(self.class_to_category[first.class_id]),
                    "iscrowd": int(first.iscrowd),
                    "height": height,
                    "width": width,
                    "length": 1,  # sic: the official 2019 files store 1 here
                    "segmentations": rles,
                    "areas": [None if s is None else int(s.area) for s in per_frame],
                    "bboxes": [None if s is None else [int(v) for v in s.bbox] for s in per_frame],
                }
            )
        return video_id


class YtvisDataset(Sequence[VideoSample]):
    """Reads a YouTube-VIS 2019 style dataset (ours or a real one) lazily, one video per item.
    Category ids map to contiguous train ids (sorted), or through ``category_map``;
    annotations of unmapped categories are skipped.

    Every field is checked when the file is opened (``data.ytvis_checks``); each video's
    frames when it is read: inside the frames folder after symbolic links are followed (a
    link out of it is refused), of the declared height x width (all of one size when none
    is declared), within the per-video memory limit before they are decoded.

    Raises:
      DatasetError: a missing or malformed field, an empty video, a frame path leaving the
        frames folder, a frame of another size, a segmentation that does not decode (the
        message names the file, video, annotation and frame)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        ann_file: str | Path | None = None,
        image_dir: str | Path | None = None,
        category_map: Mapping[int, int] | None = None,
    ) -> None:
        root = Path(root)
        self.ann_file = Path(ann_file or root / "annotations" / f"instances_{split}.json")
        self.image_dir = Path(image_dir or root / split / "JPEGImages")
        data = read_json(self.ann_file, "YouTube-VIS annotations")
        try:
            if is_mmdet_video_layout(data):
                data = from_mmdet_video_layout(data)
        except DatasetError as e:
            raise DatasetError(f"{self.ann_file}: {e}") from e
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DatasetError(
                f"{self.ann_file}: not a YouTube-VIS annotation file "
                f"({type(e).__name__}: {e}; missing or malformed field)"
            ) from e
        check_ytvis(data, self.ann_file)
        self.categories: list[dict[str, Any]] = data["categories"]
        try:
            self.cat_to_train, self.classes = contiguous_classes(self.categories, category_map)
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{self.ann_file}: {e}") from e
        self._videos: list[dict[str, Any]] = list(data["videos"])
        self._tracks: dict[int, list[dict[str, Any]]] = {}
        for ann in data.get("annotations") or []:  # absent in unannotated (test) splits
            self._tracks.setdefault(ann["video_id"], []).append(ann)

    def __len__(self) -> int:
        return len(self._videos)

    def __iter__(self) -> Iterator[VideoSample]:
        for i in range(len(self)):
            yield self[i]

    def annotated_objects(self) -> int:
        """How many annotations (instance tracks) name a video of the file."""
        return sum(len(v) for v in self._tracks.values())

    def _frame(self, vid: int, k: int, name: str, hw: tuple[int, int] | None) -> np.ndarray:
        """Frame ``k`` of video ``vid``: inside the frames folder (links followed), of size
        ``hw`` (None: any)."""
        path = self.image_dir / name
        try:
            inside = path.resolve().is_relative_to(self.image_dir.resolve())
        except (OSError, RuntimeError) as e:  # a link loop
            raise DatasetError(
                f"{self.ann_file}: video {vid}, frame {k}: cannot resolve {name!r} ({e})"
            ) from None
        if not inside:
            raise DatasetError(
                f"{self.ann_file}: video {vid}, frame {k}: {name!r} leads outside the frames "
                f"folder {str(self.image_dir)!r} (through a symbolic link)",
                hint="link or copy the whole frames folder, not files or folders inside it",
            )
        image = read_rgb(path)
        if hw is not None and image.shape[:2] != hw:
            h, w = image.shape[:2]
            raise DatasetError(
                f"{self.ann_file}: video {vid}, frame {k}: {name!r} is {w} x {h} (width x "
                f"height), the video's frames are {hw[1]} x {hw[0]} (its height / width, or "
                "its first frame)",
                hint="the annotations must belong to these frames (height / width per video)",
            )
        return image

    def _read_images(self, video: Mapping[str, Any], tracks: int) -> np.ndarray:
        vid, names = video["id"], video["file_names"]
        hw = video_hw(video)
        if hw is not None:  # what the annotations declare, checked before any frame is read
            _check_video_size(self.ann_file, vid, len(names), hw, tracks)
        first = self._frame(vid, 0, names[0], hw)
        if hw is None:
            hw = (first.shape[0], first.shape[1])
            _check_video_size(self.ann_file, vid, len(names), hw, tracks)
        images = np.empty((len(names), *first.shape), np.uint8)
        images[0] = first
        for k in range(1, len(names)):
            images[k] = self._frame(vid, k, names[k], hw)
        return images

    def _instance(
        self, ann: Mapping[str, Any], train: int, hw: tuple[int, int], t: int
    ) -> VideoInstance:
        h, w = hw
        masks = np.zeros((t, h, w), dtype=bool)
        for k, seg in enumerate(ann["segmentations"]):
            if seg is None:
                continue
            try:
                masks[k] = decode_segmentation(seg, h, w)
            except DatasetError as e:
                raise DatasetError(
                    f"{self.ann_file}: annotation {ann['id']} (video {ann['video_id']}), "
                    f"frame {k}: {e}",
                    hint=e.hint,
                ) from None
        areas = ann.get("areas") or [None] * t
        bboxes = ann.get("bboxes") or [None] * t
        return VideoInstance(
            class_id=train,
            iscrowd=bool(ann.get("iscrowd", 0)),
            masks=masks,
            areas=[None if a is None else int(a) for a in areas],
            bboxes=[None if b is None else tuple(b) for b in bboxes],
        )

    def __getitem__(self, index: int) -> VideoSample:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        video = self._videos[index]
        names = list(video["file_names"])
        tracks = self._tracks.get(video["id"], [])
        images = self._read_images(video, len(tracks))
        t, h, w = images.shape[:3]
        instances = []
        for ann in tracks:
            train = self.cat_to_train.get(ann["category_id"])
            if train is not None:
                instances.append(self._instance(ann, train, (h, w), t))
        return VideoSample(int(video["id"]), names[0].split("/")[0], names, images, instances)


def _check_video_size(where: Path, vid: Any, frames: int, hw: tuple[int, int], tracks: int) -> None:
    """A video of ``frames`` frames of ``hw`` with ``tracks`` instance masks must
    decode to at most ``MAX_VIDEO_SAMPLE_BYTES`` (a 4 MB JSON listing one image 100,000
    times made a reader allocate 2.7 GB and more)."""
    h, w = hw
    need = frames * h * w * (3 + tracks)
    if need > MAX_VIDEO_SAMPLE_BYTES:
        raise DatasetError(
            f"{where}: video {vid} ({frames} frames of {w} x {h}, {tracks} instances) would "
            f"decode to {need / 2**20:.0f} MiB, over the limit of "
            f"{MAX_VIDEO_SAMPLE_BYTES // 2**20} MiB per video",
            hint="split long videos into clips (fewer frames or instances per video entry)",
        )


def is_mmdet_video_layout(data: Any) -> bool:
    """True for the video layout mmdet / mmtracking write (and the RAP-SAM reference reads):
    per-frame ``images`` (``video_id``, ``frame_id``) and per-frame ``annotations``
    (``instance_id``), instead of YouTube-VIS's per-video ``file_names`` and per-track
    ``segmentations``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list):
        return False
    videos = data.get("videos") or []
    native = bool(videos) and isinstance(videos[0], Mapping) and "file_names" in videos[0]
    return not native and any(isinstance(i, Mapping) and "frame_id" in i for i in data["images"])


def _polygons_to_rle(polygons: list, h: int, w: int) -> dict[str, Any]:
    if not (0 < h and 0 < w and h * w <= MAX_IMAGE_PIXELS):  # before the mask is allocated
        raise DatasetError(
            f"a polygon segmentation on a {h} x {w} frame: the frame size must be positive "
            f"and at most {MAX_IMAGE_PIXELS} pixels"
        )
    check_polygons(polygons, (h, w))
    mask = np.zeros((h, w), np.uint8)
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    rle = rle_encode(mask.astype(bool))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def from_mmdet_video_layout(data: Mapping[str, Any]) -> dict[str, Any]:
    """Convert the mmdet / mmtracking video layout to YouTube-VIS 2019's.

    Frames of a video are ordered by ``frame_id``; each (video, ``instance_id``) becomes one
    track with a segmentation (RLE, or polygons rasterised to RLE), area and box per frame
    (None where the instance is absent); its category is its most frequent one.

    Raises:
      DatasetError: a missing or malformed field (named)."""
    images = data["images"]
    frames: dict[int, list[Mapping[str, Any]]] = {}
    for img in images:
        frames.setdefault(int(img["video_id"]), []).append(img)
    videos_meta = {int(v["id"]): v for v in data.get("videos") or []}
    videos, frame_index = [], {}
    for vid in sorted(frames):
        ordered = sorted(frames[vid], key=lambda i: int(i["frame_id"]))
        for t, img in enumerate(ordered):
            frame_index[int(img["id"])] = (vid, t, int(img["height"]), int(img["width"]))
        meta = videos_meta.get(vid, {})
        videos.append(
            {
                "id": vid,
                "file_names": [str(i["file_name"]) for i in ordered],
                "height": int(ordered[0]["height"]),
                "width": int(ordered[0]["width"]),
                "length": len(ordered),
                **({"name": meta["name"]} if "name" in meta else {}),
            }
        )
    lengths = {v["id"]: v["length"] for v in videos}
    tracks: dict[tuple[int, int], dict[str, Any]] = {}
    for ann in data.get("annotations") or []:
        image_id = int(ann["image_id"])
        if image_id not in frame_index:
            raise DatasetError(f"annotation {ann.get('id')}: image_id {image_id} is not in images")
        vid, t, h, w = frame_index[image_id]
        key = (vid, int(ann["instance_id"]))
        n = lengths[vid]
        track = tracks.setdefault(
            key,
            {
                "video_id": vid,
                "segmentations": [None] * n,
                "areas": [None] * n,
                "bboxes": [None] * n,
                "iscrowd": int(ann.get("iscrowd", 0)),
                "_cats": [],
            },
        )
        seg = ann.get("segmentation")
        if isinstance(seg, list):
            try:
                seg = _polygons_to_rle(seg, h, w)
            except DatasetError as e:
                raise DatasetError(f"annotation {ann.get('id')!r:.20}: {e}", hint=e.hint) from None
        track["segmentations"][t] = seg
        track["areas"][t] = ann.get("area")
        track["bboxes"][t] = ann.get("bbox")
        track["_cats"].append(int(ann["category_id"]))
    annotations = []
    for i, track in enumerate(tracks.values(), start=1):
        cats = track.pop("_cats")
        annotations.append({"id": i, "category_id": max(set(cats), key=cats.count), **track})
    return {"videos": videos, "annotations": annotations, "categories": data["categories"]}
