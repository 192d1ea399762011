"""COCO panoptic format: writer (for generated data) and reader (also for real datasets).

Layout under ``root``::

    annotations/panoptic_<split>.json   images, annotations (segments_info), categories
    panoptic_<split>/<name>.png         segment ids as RGB, id = R + 256 G + 256**2 B
    <split>/<name>.png|.jpg             the images

The reader also finds the PNG folder at ``annotations/panoptic_<split>/`` (COCO's zip layout).
Category ids are mapped to contiguous train class ids (sorted by category id), unless a
``category_map`` is given (categories left out of it become void).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..contract.panoptic_ids import id_to_rgb, rgb_to_id
from ..errors import DatasetError
from .classes import ClassInfo
from .imageio import read_rgb, write_rgb
from .jsonfile import read_json
from .segments import Segment
from .writer import AnnotationWriter


@dataclass
class PanopticSample:
    """One image: ``image`` H x W x 3 uint8 RGB, ``ids`` H x W int32 segment ids (0 = void),
    ``segments`` in the file's order with train class ids."""

    image: np.ndarray
    ids: np.ndarray
    segments: list[Segment]
    image_id: int
    file_name: str


class CocoPanopticWriter(AnnotationWriter):
    """Streams images + id maps to disk; ``close()`` writes the annotation JSON.

    ``categories``: COCO category dicts (default: the synthetic table); ``class_to_category``:
    train class id -> category id (default: ``ClassInfo.coco_id``)."""

    ann_prefix = "panoptic"
    items_key = "images"
    description = "rapsam-edge synthetic panoptic"

    def add(self, image: np.ndarray, ids: np.ndarray, segments: Iterable[Segment]) -> int:
        """Write one image (H x W x 3 uint8 RGB) and its id map (H x W int); returns its id."""
        if image.shape[:2] != ids.shape:
            raise ValueError(f"image {image.shape} and ids {ids.shape} sizes differ")
        image_id = len(self.items) + 1
        stem = f"{image_id:012d}"
        file_name = stem + self.image_ext
        write_rgb(self.root / self.split / file_name, image)
        write_rgb(self.root / f"panoptic_{self.split}" / f"{stem}.png", id_to_rgb(ids))
        h, w = ids.shape
        self.items.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
        infos = [
            {
                "id": int(s.id),
                "category_id": int(self.class_to_category[s.class_id]),
                "iscrowd": int(s.iscrowd),
                "bbox": [int(v) if float(v).is_integer() else float(v) for v in s.bbox],
                "area": int(s.area),
            }
            for s in segments
        ]
        self.annotations.append(
            {"image_id": image_id, "file_name": f"{stem}.png", "segments_info": infos}
        )
        return image_id


def contiguous_classes(
    categories: Sequence[Mapping[str, Any]], category_map: Mapping[int, int] | None = None
) -> tuple[dict[int, int], list[ClassInfo]]:
    """Category dicts -> ({category id: train class id}, train classes). Default mapping:
    contiguous ids in order of category id; ``isthing`` defaults to 1 (YouTube-VIS)."""
    by_id = {int(c["id"]): c for c in categories}
    if category_map is None:
        category_map = {cid: i for i, cid in enumerate(sorted(by_id))}
    classes: dict[int, ClassInfo] = {}
    for cid, train in category_map.items():
        if cid not in by_id:
            raise ValueError(f"category_map names category {cid}, absent from the file")
        cat = by_id[cid]
        classes.setdefault(
            int(train),
            ClassInfo(int(train), str(cat.get("name", cid)), bool(cat.get("isthing", 1)), cid),
        )
    return dict(category_map), [classes[k] for k in sorted(classes)]


class CocoPanopticDataset(Sequence[PanopticSample]):
    """Reads a COCO panoptic dataset (ours or a real one) lazily, one image per item."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        ann_file: str | Path | None = None,
        image_dir: str | Path | None = None,
        panoptic_dir: str | Path | None = None,
        category_map: Mapping[int, int] | None = None,
    ) -> None:
        root = Path(root)
        self.ann_file = Path(ann_file or root / "annotations" / f"panoptic_{split}.json")
        self.image_dir = Path(image_dir or root / split)
        if panoptic_dir is None:
            panoptic_dir = root / f"panoptic_{split}"
            if not panoptic_dir.is_dir():
                panoptic_dir = root / "annotations" / f"panoptic_{split}"
        self.panoptic_dir = Path(panoptic_dir)
        data = read_json(self.ann_file, "COCO panoptic annotations")
        try:
            for key in ("categories", "images", "annotations"):
                if not isinstance(data, Mapping) or key not in data:
                    raise DatasetError(f"no {key!r} field (a COCO panoptic file lists {key})")
            self.categories: list[dict[str, Any]] = data["categories"]
            self.cat_to_train, self.classes = contiguous_classes(self.categories, category_map)
            self._thing = {c.id: c.is_thing for c in self.classes}
            self._images = {int(im["id"]): im for im in data["images"]}
            self._annotations: list[dict[str, Any]] = list(data["annotations"])
            for ann in self._annotations:
                _ = ann["image_id"], ann["file_name"], ann["segments_info"]
        except DatasetError as e:
            raise DatasetError(f"{self.ann_file}: {e}") from e
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DatasetError(
                f"{self.ann_file}: malformed COCO panoptic annotations "
                f"({type(e).__name__}: {e}; missing or malformed field)"
            ) from e

    def __len__(self) -> int:
        return len(self._annotations)

    def __iter__(self) -> Iterator[PanopticSample]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> PanopticSample:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        ann = self._annotations[index]
        info = self._images[int(ann["image_id"])]
        image = read_rgb(self.image_dir / info["file_name"])
        ids = rgb_to_id(read_rgb(self.panoptic_dir / ann["file_name"]))
        if ids.shape != image.shape[:2]:
            raise ValueError(
                f"{ann['file_name']}: panoptic PNG {ids.shape} and image {image.shape[:2]} differ"
            )
        segments = []
        for s in ann["segments_info"]:
            train = self.cat_to_train.get(int(s["category_id"]))
            if train is None:
                continue
            segments.append(
                Segment(
                    id=int(s["id"]),
                    class_id=train,
                    is_thing=self._thing[train],
                    area=int(s["area"]),
                    bbox=tuple(s["bbox"]),
                    iscrowd=bool(s.get("iscrowd", 0)),
                )
            )
        known = np.array([s.id for s in segments], dtype=np.int32)
        ids = np.where(np.isin(ids, known), ids, 0).astype(np.int32)
        return PanopticSample(image, ids, segments, int(ann["image_id"]), info["file_name"])
