"""`rapsam-edge convert`: an official RAP-SAM checkpoint -> our weights (arguments
torch-free; the conversion, ``model.convert``, needs torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="official mmengine checkpoint (.pth)")
    parser.add_argument(
        "--class-embeddings",
        type=Path,
        required=True,
        help="frozen CLIP class embeddings, C x E or C x P x E tensor",
    )
    parser.add_argument(
        "--classes",
        type=Path,
        default=None,
        help="the embeddings' class vocabulary: JSON list of {id, name, is_thing} or COCO "
        "categories; saved with the weights so that every exported bundle names the classes",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def run(args: argparse.Namespace) -> int:
    from .convert import run as convert

    return convert(args)
