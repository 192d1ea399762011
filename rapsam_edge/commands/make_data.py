"""`rapsam-edge make-data --seed S --out DIR [--split train|val]`: synthetic COCO-panoptic +
YouTube-VIS dataset, deterministic from the seed (see ``data.generate.make_dataset``)."""

from __future__ import annotations

import argparse

from ..apps.checks import int_in, nonneg_int, positive_int
from ..data.generate import DEFAULTS, SIDE_RANGE, make_dataset


def _per_split(index: int) -> str:
    """``DEFAULTS`` column ``index`` as words: 'train 4000, val 500 (other splits: val's)'."""
    counts = ", ".join(f"{split} {values[index]}" for split, values in DEFAULTS.items())
    return f"default per split: {counts}; other splits take val's"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=nonneg_int, required=True, help="generator seed (an integer >= 0)"
    )
    parser.add_argument("--out", required=True, help="dataset root (coco/ and ytvis/ inside)")
    parser.add_argument("--split", default="train", help="split name (default %(default)s)")
    parser.add_argument(
        "--num-images", type=nonneg_int, help=f"panoptic images, >= 0 ({_per_split(0)})"
    )
    parser.add_argument("--num-videos", type=nonneg_int, help=f"videos, >= 0 ({_per_split(1)})")
    parser.add_argument(
        "--video-length", type=positive_int, help=f"frames per video, >= 1 ({_per_split(2)})"
    )
    parser.add_argument(
        "--size",
        type=int_in(*SIDE_RANGE, what="an image side in pixels"),
        nargs=2,
        default=(320, 320),
        metavar=("H", "W"),
        help=f"image height and width in pixels, each {SIDE_RANGE[0]}..{SIDE_RANGE[1]} "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--image-ext",
        default=".png",
        choices=(".png", ".jpg"),
        help="image file format (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    record = make_dataset(
        args.out,
        seed=args.seed,
        split=args.split,
        num_images=args.num_images,
        num_videos=args.num_videos,
        video_length=args.video_length,
        image_size=tuple(args.size),
        image_ext=args.image_ext,
        progress=not args.quiet,
    )
    print(summary(record, str(args.out)))
    return 0


def summary(record: dict, out: str) -> str:
    """What ``make_dataset`` wrote (its returned record), as lines for people."""
    h, w = record["image_size"]
    seconds = record.get("seconds", {}).get("total")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    return "\n".join(
        [
            f"split    {record['split']} (seed {record['seed']}), {h} x {w} pixels{took}",
            f"images   {record['num_images']} -> {out}/{record['coco_panoptic']['annotations']}",
            f"videos   {record['num_videos']} x {record['video_length']} frames -> "
            f"{out}/{record['ytvis']['annotations']}",
            f"record   {out}/make_data_{record['split']}.json",
        ]
    )
