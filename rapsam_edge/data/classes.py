"""The synthetic vocabulary: one literal table of 12 classes (8 things, then 4 stuff).

Train class ids are the row index (0..11, things first so that the 8 thing classes keep the
same ids 0..7 in the YouTube-VIS files, which only list things); ``coco_id`` (1-based) is the
category id written to the COCO panoptic / YouTube-VIS files. Every thing class is a distinct
shape (colours are random per object, so the shape is what identifies it); every stuff class
is a distinct procedural texture family (see ``textures.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClassInfo:
    """One class: contiguous train id, name, thing/stuff flag and file-format category id."""

    id: int
    name: str
    is_thing: bool
    coco_id: int


CLASSES: tuple[ClassInfo, ...] = (
    #         id  name        is_thing  coco_id
    ClassInfo(0, "circle", True, 1),
    ClassInfo(1, "square", True, 2),
    ClassInfo(2, "triangle", True, 3),
    ClassInfo(3, "star", True, 4),
    ClassInfo(4, "ring", True, 5),
    ClassInfo(5, "cross", True, 6),
    ClassInfo(6, "ellipse", True, 7),
    ClassInfo(7, "crescent", True, 8),
    ClassInfo(8, "sky", False, 9),
    ClassInfo(9, "grass", False, 10),
    ClassInfo(10, "wall", False, 11),
    ClassInfo(11, "water", False, 12),
)

NUM_CLASSES = len(CLASSES)
THING_IDS: tuple[int, ...] = tuple(c.id for c in CLASSES if c.is_thing)
STUFF_IDS: tuple[int, ...] = tuple(c.id for c in CLASSES if not c.is_thing)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
CLASS_BY_NAME: dict[str, ClassInfo] = {c.name: c for c in CLASSES}


def coco_categories(*, things_only: bool = False) -> list[dict[str, Any]]:
    """COCO-style category dicts (id = ``coco_id``, name, supercategory, isthing, color)."""
    out = []
    for c in CLASSES:
        if things_only and not c.is_thing:
            continue
        hue = (c.id * 97) % 256
        out.append(
            {
                "id": c.coco_id,
                "name": c.name,
                "supercategory": "shape" if c.is_thing else "texture",
                "isthing": int(c.is_thing),
                "color": [hue, (hue * 7 + 80) % 256, (hue * 13 + 160) % 256],
            }
        )
    return out
