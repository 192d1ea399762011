"""`rapsam-edge` command line: one table of sub-commands, each imported only when used (so
runtime commands never import torch, and every ``--help`` works without it).

Every verb is one module of ``rapsam_edge.commands`` (``make-data`` -> ``make_data``); it exposes ``add_arguments(parser)`` and ``run(args) -> int`` and imports
torch (if at all) inside ``run``. Errors the SDK raises on purpose (``RapsamEdgeError``), a
missing optional dependency and a bad argument print one line with what to do and exit 2;
``--debug`` (anywhere on the line) prints the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

from .errors import RapsamEdgeError


class Command(NamedTuple):
    module: str  # rapsam_edge.commands.<verb>: implements add_arguments / run
    help: str
    extra: str | None  # the pip extra its run() needs beyond the runtime, if any


#: sub-command -> how it is implemented
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "rapsam_edge.commands.demo",
        "the shipped model on the shipped clip: panoptic, prompts, tracking + timings",
        None,
    ),
    "run": Command(
        "rapsam_edge.commands.run", "run a bundle on an image, a video file or a camera", None
    ),
    "profile": Command(
        "rapsam_edge.commands.profile",
        "on-device FPS profiler: per-stage latency, FPS, memory, environment, top operators",
        None,
    ),
    "benchmark": Command(
        "rapsam_edge.commands.benchmark",
        "FPS table: every shipped bundle and fresh variant x backend x precision usable here "
        "(fresh variants need torch)",
        None,
    ),
    "info": Command(
        "rapsam_edge.commands.info",
        "what a bundle holds, the ops core and the backends usable here",
        None,
    ),
    "make-data": Command(
        "rapsam_edge.commands.make_data",
        "generate a synthetic COCO-panoptic + YouTube-VIS dataset",
        None,
    ),
    "train": Command(
        "rapsam_edge.commands.train",
        "train (or fine-tune) a model; torchrun for several processes",
        "train",
    ),
    "distill": Command(
        "rapsam_edge.commands.distill",
        "train a student with a frozen teacher (dense-map KL, prompt masks, features)",
        "train",
    ),
    "pretrain": Command(
        "rapsam_edge.commands.pretrain",
        "pretrain a trunk on generated shape scenes (dense shape classification)",
        "train",
    ),
    "eval": Command(
        "rapsam_edge.commands.eval",
        "PQ, interactive mIoU / NoC and video AP of a model on a dataset",
        None,
    ),
    "quantize": Command(
        "rapsam_edge.commands.quantize",
        "FP32 bundle or weights -> INT8 / FP16 / BF16 bundle that passed the accuracy gate",
        "train",
    ),
    "variants": Command(
        "rapsam_edge.commands.variants", "parameters and GFLOPs of every model variant", "train"
    ),
    "convert": Command(
        "rapsam_edge.commands.convert", "official RAP-SAM checkpoint -> our weights", "train"
    ),
    "export": Command(
        "rapsam_edge.commands.export",
        "weights -> model bundle (ONNX + OpenVINO IR + manifest)",
        "train",
    ),
}

#: what to install for an extra (torch: a CPU build on a machine without CUDA)
EXTRA_HINT = {
    "train": "pip install 'rapsam-edge[train]' (a CPU-only torch: add "
    "--extra-index-url https://download.pytorch.org/whl/cpu, see README)",
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapsam-edge",
        description="RAP-SAM edge SDK: train, export, run and profile segmentation models.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="sub-command")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    lines = [f"  {name:12s} {cmd.help}" for name, cmd in sorted(COMMANDS.items())]
    parser.epilog = "commands:\n" + "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _fail(message: str, hint: str | None) -> int:
    print(f"rapsam-edge: error: {message}", file=sys.stderr)
    if hint:
        print(f"rapsam-edge: hint: {hint}", file=sys.stderr)
    return 2


def _run(name: str, rest: list[str]) -> int:
    """Import verb ``name``'s module, parse ``rest`` and run it (errors go to ``main``)."""
    cmd = COMMANDS[name]
    # inside main's error handling: importing a command can load the ops, which check
    # RAPSAM_EDGE_THREADS / RAPSAM_EDGE_OPS (a ConfigError, one line + hint)
    module = importlib.import_module(cmd.module)
    parser = argparse.ArgumentParser(prog=f"rapsam-edge {name}", description=cmd.help)
    module.add_arguments(parser)
    if cmd.extra:
        parser.epilog = f"needs the '{cmd.extra}' extra: {EXTRA_HINT[cmd.extra]}"
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    try:
        return _run(name, argv[1:])
    except RapsamEdgeError as e:
        if debug:
            raise
        return _fail(str(e), e.hint)
    except ModuleNotFoundError as e:
        if debug:
            raise
        extra = COMMANDS[name].extra or "train"
        return _fail(f"{e} (needed by `rapsam-edge {name}`)", EXTRA_HINT.get(extra))
    except OSError as e:  # a path the user gave cannot be read or written
        if debug:
            raise
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        return _fail(f"{e.strerror or e}{where}", "check the paths given on the command line")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
