"""Dataset generation: synthetic scenes -> COCO panoptic, synthetic videos -> YouTube-VIS.

Back end of ``rapsam-edge make-data --seed S --out DIR [--split train|val]``. Every image and
video gets its own random stream derived from (seed, split, kind, index), so the output is
byte-identical for a seed, differs between seeds and between splits, and does not depend on
how many items are generated before it.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import ConfigError
from .classes import CLASSES
from .coco_panoptic import CocoPanopticWriter
from .scenes import generate_scene
from .video import generate_video
from .ytvis import YtvisWriter

FORMAT_VERSION = 1
#: the sides (pixels) a generated image may have: below, shapes do not fit; above, one image
#: and its id map take gigabytes
SIDE_RANGE = (32, 8192)
# per split: (num_images, num_videos, video_length); other split names use "val"
DEFAULTS: dict[str, tuple[int, int, int]] = {
    "train": (4000, 200, 12),
    "val": (500, 50, 12),
}
_KIND_IMAGE, _KIND_VIDEO = 0, 1

T = TypeVar("T")


def item_rng(seed: int, split: str, kind: int, index: int) -> np.random.Generator:
    """Independent random stream of one item (kind 0 = image, 1 = video)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = (zlib.crc32(split.encode()), kind, index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _progress(items: Iterable[T], *, total: int, desc: str, enabled: bool) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit="it")


def _check_counts(
    seed: int, num_images: int, num_videos: int, video_length: int, size: tuple[int, int]
) -> None:
    """Raises ConfigError naming the first value out of range (see ``make_dataset``)."""
    bad = [
        (seed < 0, f"seed must be >= 0, got {seed}"),
        (num_images < 0, f"num_images must be >= 0, got {num_images}"),
        (num_videos < 0, f"num_videos must be >= 0, got {num_videos}"),
        (video_length < 1, f"video_length must be >= 1, got {video_length}"),
        (
            not all(SIDE_RANGE[0] <= s <= SIDE_RANGE[1] for s in size),
            f"image_size sides must be in {SIDE_RANGE[0]}..{SIDE_RANGE[1]} pixels, got {size}",
        ),
    ]
    for failed, message in bad:
        if failed:
            raise ConfigError(message, hint="`rapsam-edge make-data --help` gives the ranges")


def make_dataset(
    out_dir: str | Path,
    *,
    seed: int,
    split: str = "train",
    num_images: int | None = None,
    num_videos: int | None = None,
    video_length: int | None = None,
    image_size: tuple[int, int] = (320, 320),
    image_ext: str = ".png",
    progress: bool = True,
) -> dict[str, Any]:
    """Generate one split under ``out_dir``::

        coco/annotations/panoptic_<split>.json, coco/panoptic_<split>/, coco/<split>/
        ytvis/annotations/instances_<split>.json, ytvis/<split>/JPEGImages/<video>/
        make_data_<split>.json   (what was generated, for provenance)

    Defaults (``DEFAULTS``): train 4000 images + 200 videos x 12 frames, val 500 + 50 x 12,
    all ``image_size`` = (H, W). Returns the provenance dict written to the last file.

    Raises:
      ConfigError: seed or a count below its minimum (seed, num_images, num_videos >= 0,
      video_length >= 1), or an image side outside ``SIDE_RANGE`` (pixels).
    """
    d_images, d_videos, d_length = DEFAULTS.get(split, DEFAULTS["val"])
    num_images = d_images if num_images is None else int(num_images)
    num_videos = d_videos if num_videos is None else int(num_videos)
    video_length = d_length if video_length is None else int(video_length)
    size = (int(image_size[0]), int(image_size[1]))
    _check_counts(seed, num_images, num_videos, video_length, size)
    out = Path(out_dir)
    start = time.perf_counter()

    coco = CocoPanopticWriter(out / "coco", split, image_ext=image_ext)
    for i in _progress(
        range(num_images), total=num_images, desc=f"{split} images", enabled=progress
    ):
        scene = generate_scene(item_rng(seed, split, _KIND_IMAGE, i), size=size)
        coco.add(scene.image, scene.ids, scene.segments)
    coco_ann = coco.close()
    t_images = time.perf_counter() - start

    vis = YtvisWriter(out / "ytvis", split, image_ext=image_ext)
    for i in _progress(
        range(num_videos), total=num_videos, desc=f"{split} videos", enabled=progress
    ):
        video = generate_video(
            item_rng(seed, split, _KIND_VIDEO, i), size=size, length=video_length
        )
        vis.add_video(video.images, video.ids, video.segments)
    vis_ann = vis.close()
    t_total = time.perf_counter() - start

    summary = {
        "format_version": FORMAT_VERSION,
        "generator": "rapsam_edge.data.generate.make_dataset",
        "seed": int(seed),
        "split": split,
        "image_size": list(size),
        "num_images": num_images,
        "num_videos": num_videos,
        "video_length": video_length,
        "classes": [
            {"id": c.id, "name": c.name, "is_thing": c.is_thing, "coco_id": c.coco_id}
            for c in CLASSES
        ],
        "coco_panoptic": {"root": "coco", "annotations": str(coco_ann.relative_to(out))},
        "ytvis": {"root": "ytvis", "annotations": str(vis_ann.relative_to(out))},
    }
    (out / f"make_data_{split}.json").write_text(json.dumps(summary, indent=1) + "\n")
    # timings are returned but not written, so that the files stay byte-identical per seed
    return {**summary, "seconds": {"images": t_images, "total": t_total}}
