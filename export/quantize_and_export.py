"""Export trained weights to a bundle for one target device, following a recipe.

    python export/quantize_and_export.py --recipe cpu-ort-fp32 --weights runs/edge-xs \\
        --out models/edge-xs-cpu
    python export/quantize_and_export.py --recipe x86-openvino-int8 --weights runs/edge-xs \\
        --calib data/synthetic --val data/synthetic --out models/edge-xs-ov-int8 --fallback
    python export/quantize_and_export.py --list

FP32 export at the size the run was trained at (``--input-size`` to choose another), then,
for quantized recipes, the same conversion and accuracy gate as ``rapsam-edge quantize``
(``rapsam_edge.deploy.quantize.pipeline``; ``--fallback`` and the gate limits mean what they
mean there; a limit outside its range is refused before any work). Writes the bundle
(graphs, manifest with checksums; the recipe and the weights' name and sha256 are recorded
in the manifest's provenance) into a staging folder beside --out, moves it there only when
it is complete and gated (a failure or an interrupt leaves --out as it was), and checks it
before returning: the bundle loads, a quantized one passed the gate (or, for a backend this
machine lacks, says it is not verified), and the recipe's backend (when available on this
machine) runs every graph. An error the SDK raises
on purpose prints one line and a hint and exits with status 2 (``--debug``: the traceback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipes import RECIPES

from rapsam_edge.apps.checks import require
from rapsam_edge.commands.quantize import add_gate_arguments, gate_sizes_from, limits_from
from rapsam_edge.errors import RapsamEdgeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), help="target recipe (default: none: list)"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        help="run directory (model.safetensors + config.json; required with --recipe)",
    )
    parser.add_argument(
        "--out", type=Path, help="bundle directory to write (required with --recipe)"
    )
    parser.add_argument(
        "--calib", type=Path, help="calibration data (required by quantized recipes)"
    )
    parser.add_argument("--val", type=Path, help="validation set for the gate (default: --calib)")
    add_gate_arguments(parser)
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the recipes and exit (the default without --recipe)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print tracebacks of errors (default: off: one line and a hint)",
    )
    return parser


def _export(args: argparse.Namespace) -> None:
    import logging

    from rapsam_edge.deploy.provenance import weights_record
    from rapsam_edge.deploy.recipe_export import export_with_recipe
    from rapsam_edge.deploy.staging import check_target
    from rapsam_edge.deploy.training_run import export_input_size
    from rapsam_edge.model.io import load_model

    limits = limits_from(args)  # ConfigError for an impossible limit, before any work
    check_target(args.out, replace=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    size = args.input_size or RECIPES[args.recipe].input_size
    export_with_recipe(
        load_model(args.weights),
        args.out,
        recipe=args.recipe,
        calib=args.calib,
        val=args.val,
        # the weights by name and sha256: no path of this machine goes into the bundle
        provenance={"weights": weights_record(args.weights)},
        input_size=export_input_size(args.weights, size),
        fallback=args.fallback,
        limits=limits,
        calib_samples=args.calib_samples,
        val_images=args.val_images,
        gate_sizes=gate_sizes_from(args),
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list or not args.recipe:
        for name, r in RECIPES.items():
            print(f"{name:28s} formats {'+'.join(r.formats):14s} backend {r.backend:10s} {r.note}")
        return 0
    if args.weights is None or args.out is None:
        parser.error("--weights and --out are required with --recipe")
    if RECIPES[args.recipe].precision is not None and args.calib is None:
        parser.error(
            f"recipe {args.recipe} quantizes: --calib DATA is required (and --val for the gate)"
        )
    try:
        require(args.weights, "--weights")
        require(args.calib, "--calib")
        require(args.val, "--val")
        _export(args)
    except RapsamEdgeError as e:
        if args.debug:
            raise
        return _fail(parser.prog, str(e), e.hint)
    except OSError as e:  # a path given cannot be read or written (as `rapsam-edge`)
        if args.debug:
            raise
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        return _fail(parser.prog, f"{e.strerror or e}{where}", "check the paths given")
    return 0


def _fail(prog: str, message: str, hint: str | None) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    if hint:
        print(f"{prog}: hint: {hint}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
