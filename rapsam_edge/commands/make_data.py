"""`rapsam-edge make-data --seed S --out DIR [--split train|val]`: synthetic COCO-panoptic +
YouTube-VIS dataset, deterministic from the seed (see ``data.generate.make_dataset``)."""

from __future__ import annotations

import argparse
import json

from ..data.generate import DEFAULTS, make_dataset


def _per_split(index: int) -> str:
    """``DEFAULTS`` column ``index`` as words: 'train 4000, val 500 (other splits: val's)'."""
    counts = ", ".join(f"{split} {values[index]}" for split, values in DEFAULTS.items())
    return f"default per split: {counts}; other splits take val's"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, required=True, help="generator seed")
    parser.add_argument("--out", required=True, help="dataset root (coco/ and ytvis/ inside)")
    parser.add_argument("--split", default="train", help="split name (default %(default)s)")
    parser.add_argument("--num-images", type=int, help=f"panoptic images ({_per_split(0)})")
    parser.add_argument("--num-videos", type=int, help=f"videos ({_per_split(1)})")
    parser.add_argument("--video-length", type=int, help=f"frames per video ({_per_split(2)})")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(320, 320),
        metavar=("H", "W"),
        help="image size in pixels (default %(default)s)",
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
    print(json.dumps({k: record[k] for k in ("split", "seed", "num_images", "num_videos")}))
    return 0
