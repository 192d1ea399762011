"""`rapsam-edge` command line: one table of sub-commands, each imported only when used (so
runtime commands never import torch).

Every command module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: sub-command -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "rapsam_edge.apps.demo",
        "the shipped model on the shipped clip: all three tasks + timings",
    ),
    "run": ("rapsam_edge.apps.run", "run a bundle on an image, a video file or a camera"),
    "info": ("rapsam_edge.apps.info", "what a bundle holds and which backends can run it here"),
    "make-data": (
        "rapsam_edge.data.cli",
        "generate a synthetic COCO-panoptic + YouTube-VIS dataset",
    ),
    "train": (
        "rapsam_edge.train.cli",
        "train (or fine-tune) a model; torchrun for several processes",
    ),
    "eval": (
        "rapsam_edge.eval.cli",
        "PQ, interactive mIoU / NoC and video AP of a model on a dataset",
    ),
    "variants": ("rapsam_edge.model.flops", "parameters and GFLOPs of every model variant"),
    "convert": ("rapsam_edge.model.convert", "official RAP-SAM checkpoint -> our weights"),
    "export": ("rapsam_edge.deploy.cli", "weights -> model bundle (ONNX + OpenVINO IR + manifest)"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapsam-edge",
        description="RAP-SAM edge SDK: train, export, run and profile segmentation models.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="sub-command")
    lines = [f"  {name:12s} {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    parser.epilog = "commands:\n" + "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"rapsam-edge {name}", description=help_)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
