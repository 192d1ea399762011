"""`rapsam-edge benchmark`: one table of end-to-end FPS and per-stage p50 for every model x
backend x runtime precision usable here, through the profiler (``profile.benchmark``).

    rapsam-edge benchmark                       # every shipped bundle + fresh edge-s, edge-xs
    rapsam-edge benchmark --bundle B1 B2 --no-fresh --backends openvino --out results/bench

Fresh variants are randomly initialised and exported at the benchmark's long side (speed
does not depend on the weights; exporting needs the ``train`` extra). Every bundle runs at
the same network input (``--input`` frame, letterboxed to its long side), so rows compare.
All targets of one bundle are interleaved in one process (ratios are fair). The table is
printed; ``--out OUT`` also writes it to ``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..apps.checks import nonneg_int, positive_int
from ..errors import ConfigError
from .profile import MODES, frame_size

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle",
        nargs="*",
        default=None,
        help="bundles: directories or shipped names (default: every shipped bundle)",
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["edge-s", "edge-xs"],
        help="fresh variants to export and time (default %(default)s)",
    )
    parser.add_argument(
        "--no-fresh", action="store_true", help="time only the given / shipped bundles"
    )
    parser.add_argument(
        "--backends",
        nargs="*",
        default=None,
        help="backends to time, by name (default: every usable CPU / GPU backend)",
    )
    parser.add_argument(
        "--precisions",
        nargs="*",
        default=None,
        help="runtime precisions of FP32 bundles (default: those each backend supports here)",
    )
    parser.add_argument(
        "--input",
        type=frame_size,
        default="640x480",  # a string default goes through type= too: (480, 640)
        metavar="WxH",
        help="frame size (default %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="panoptic",
        help="what is timed, as in `rapsam-edge profile --mode` (default %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=nonneg_int,
        default=10,
        help="untimed iterations per target (default %(default)s)",
    )
    parser.add_argument(
        "--iters",
        type=positive_int,
        default=50,
        help="timed iterations per target (default %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the table to OUT.md and OUT.json (default: none, printed only)",
    )


def _shipped() -> list[str]:
    """Every shipped bundle, the default one first."""
    from ..assets import DEFAULT_BUNDLE, shipped_bundles

    return sorted(shipped_bundles(), key=lambda name: (name != DEFAULT_BUNDLE, name))


def _fresh(variant: str, long_side: int, tmp: Path) -> Path:
    import torch

    from ..data.classes import CLASSES
    from ..deploy.bundle_writer import export_bundle
    from ..model import build_model

    torch.manual_seed(0)
    model = build_model(variant, deform=False).eval()
    return export_bundle(
        model,
        tmp / variant,
        name=f"{variant}-random",
        classes=CLASSES,
        input_size=long_side,
        formats=("onnx", "openvino"),
        provenance={"weights": "random init, seed 0 (speed only)"},
    )


def _command_line() -> str:
    if sys.argv[1:2] == ["benchmark"]:
        return "rapsam-edge " + " ".join(sys.argv[1:])
    return "rapsam-edge benchmark"


def run(args: argparse.Namespace) -> int:
    from ..profile import ProfileConfig
    from ..profile.benchmark import benchmark_bundle, bundle_targets, table, write_table

    if args.out is not None:  # before the run, not after it
        from ..apps.writers import check_output

        check_output(args.out.with_suffix(".md"), "the Markdown table")
        check_output(args.out.with_suffix(".json"), "the JSON table")
    h, w = args.input
    long_side = -(-max(h, w) // 32) * 32
    config = ProfileConfig(
        mode=args.mode, input_hw=(h, w), warmup=args.warmup, iters=args.iters, input_size=long_side
    )
    rows: list[dict] = []
    env: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundles = [str(b) for b in args.bundle] if args.bundle else _shipped()
        if not args.no_fresh:
            bundles += [str(_fresh(v, long_side, Path(tmp))) for v in args.variants]
        for b in bundles:
            targets = bundle_targets(b, args.backends, args.precisions)
            if targets:
                got, env = benchmark_bundle(targets, config)
                rows += got
    if not rows:
        raise ConfigError(
            "nothing to benchmark: no bundle runs on the chosen backends here",
            hint="see `rapsam-edge info` for the backends usable here",
        )
    fresh = "" if args.no_fresh else " Fresh variants are randomly initialised (speed only)."
    text = table(rows, config, env, f"command `{_command_line()}`.{fresh}")
    print(text)
    if args.out is not None:
        from ..apps.writers import check_written

        md, js = write_table(args.out, text, rows, config, env)
        print(f"wrote {check_written(md, 'the table')} and {check_written(js, 'the table')}")
    return 0
