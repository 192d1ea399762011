"""`rapsam-edge convert`: an official RAP-SAM checkpoint -> our weights and/or a bundle
(arguments torch-free; the conversion, ``model.convert``, needs torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..deploy.recipes import RECIPES

    parser.add_argument(
        "checkpoint",
        type=Path,
        help="official checkpoint: mmengine / torch .pth (read without executing it) or "
        ".safetensors; with or without state_dict / model / module. prefixes",
    )
    parser.add_argument(
        "--class-embeddings",
        type=Path,
        required=True,
        help="frozen CLIP class embeddings, C x E or C x K x E (K synonyms): .npy, "
        ".safetensors or a torch file holding one tensor",
    )
    parser.add_argument(
        "--classes",
        type=Path,
        default=None,
        help="the embeddings' class vocabulary, row order: JSON list of {name, is_thing} "
        "(or COCO categories); required with --export",
    )
    parser.add_argument(
        "--variant",
        default="auto",
        choices=["auto", "rapsam-r50", "rapsam-r18"],
        help="official-layout variant (auto: from the backbone's shapes)",
    )
    parser.add_argument(
        "--ema", action="store_true", help="convert the EMA copy (ema_state_dict) instead"
    )
    parser.add_argument("--out", type=Path, default=None, help="write our weights here")
    parser.add_argument("--export", type=Path, default=None, help="write a bundle here")
    parser.add_argument(
        "--recipe",
        default="x86-openvino-fp32",
        choices=sorted(RECIPES),
        help="target recipe of --export (default x86-openvino-fp32: ONNX + OpenVINO IR)",
    )
    parser.add_argument("--calib", type=Path, default=None, help="calibration data (INT8)")
    parser.add_argument("--val", type=Path, default=None, help="gate validation data (INT8)")


def run(args: argparse.Namespace) -> int:
    from .convert import run as convert

    return convert(args)
