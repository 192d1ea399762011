"""`rapsam-edge variants`: parameters and GFLOPs per model variant (arguments torch-free;
the counting, ``model.flops``, needs torch)."""

from __future__ import annotations

import argparse

from ..apps.checks import side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        type=side,
        nargs=2,
        action="append",
        metavar=("H", "W"),
        help="input size(s) to count at (default: 512x512 and 1024x1024, "
        "plus edge-s at 480x640 and rapsam-r50 at 800x1344)",
    )
    parser.add_argument(
        "--variant", action="append", help="variant(s) to count, by name (default: all)"
    )


def run(args: argparse.Namespace) -> int:
    from ..model.flops import cost_table, variant_costs

    sizes = [(h, w) for h, w in args.size] if args.size else None
    print(cost_table(variant_costs(args.variant, sizes)))
    return 0
