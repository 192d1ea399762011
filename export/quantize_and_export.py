"""Export trained weights to a bundle for one target device, following a recipe: FP32
export, then (for quantized recipes) ``rapsam-edge quantize`` with its accuracy gate.

    python export/quantize_and_export.py --recipe cpu-ort-fp32 --weights runs/edge-xs \\
        --out models/edge-xs-cpu
    python export/quantize_and_export.py --recipe x86-openvino-int8 --weights runs/edge-xs \\
        --calib data/synthetic --val data/synthetic --out models/edge-xs-ov-int8
    python export/quantize_and_export.py --list

Writes the bundle (graphs, manifest with checksums; the recipe is recorded in the manifest's
provenance) and checks it before returning: the bundle loads, a quantized one passed the gate
(or, for a backend this machine lacks, says it is not verified), and the recipe's backend
(when available on this machine) runs every graph.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipes import RECIPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), help="target recipe")
    parser.add_argument(
        "--weights", type=Path, help="run directory (model.safetensors + config.json)"
    )
    parser.add_argument("--out", type=Path, help="bundle directory to write")
    parser.add_argument("--calib", type=Path, help="calibration data (quantized recipes)")
    parser.add_argument("--val", type=Path, help="validation set for the gate (default --calib)")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args(argv)
    if args.list or not args.recipe:
        for name, r in RECIPES.items():
            print(f"{name:28s} formats {'+'.join(r.formats):14s} backend {r.backend:10s} {r.note}")
        return 0
    if args.weights is None or args.out is None:
        parser.error("--weights and --out are required with --recipe")

    from rapsam_edge.deploy.recipe_export import export_with_recipe
    from rapsam_edge.model.io import load_model

    if RECIPES[args.recipe].precision is not None and args.calib is None:
        parser.error(
            f"recipe {args.recipe} quantizes: --calib DATA is required (and --val for the gate)"
        )
    export_with_recipe(
        load_model(args.weights),
        args.out,
        recipe=args.recipe,
        calib=args.calib,
        val=args.val,
        provenance={"weights": str(args.weights)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
