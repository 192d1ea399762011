"""The part the dataset writers share: output folders, category tables, the annotation JSON
written by ``close()``, and use as a context manager."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .classes import CLASSES, coco_categories


class AnnotationWriter:
    """Subclasses set ``ann_prefix`` (file ``annotations/<prefix>_<split>.json``),
    ``items_key`` ("images" / "videos"), ``description`` and ``things_only`` (default
    categories), and append to ``self.items`` / ``self.annotations``."""

    ann_prefix = ""
    items_key = ""
    description = ""
    things_only = False

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        categories: Sequence[Mapping[str, Any]] | None = None,
        class_to_category: Mapping[int, int] | None = None,
        image_ext: str = ".png",
    ) -> None:
        if image_ext not in (".png", ".jpg"):
            raise ValueError(f"image_ext must be .png or .jpg, got {image_ext!r}")
        self.root = Path(root)
        self.split = split
        self.image_ext = image_ext
        self.categories = [
            dict(c) for c in (categories or coco_categories(things_only=self.things_only))
        ]
        self.class_to_category = dict(
            class_to_category
            or {c.id: c.coco_id for c in CLASSES if c.is_thing or not self.things_only}
        )
        self.items: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    @property
    def ann_file(self) -> Path:
        return self.root / "annotations" / f"{self.ann_prefix}_{self.split}.json"

    def close(self) -> Path:
        """Write the annotation JSON; returns its path."""
        body = {
            "info": {"description": f"{self.description} ({self.split})"},
            "licenses": [],
            self.items_key: self.items,
            "annotations": self.annotations,
            "categories": self.categories,
        }
        self.ann_file.parent.mkdir(parents=True, exist_ok=True)
        self.ann_file.write_text(json.dumps(body, separators=(",", ":")) + "\n")
        return self.ann_file

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
