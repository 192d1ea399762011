"""Export trained weights to a bundle for one target device, following a recipe.

    python export/quantize_and_export.py --recipe cpu-ort-fp32 --weights runs/edge-xs \\
        --out models/edge-xs-cpu
    python export/quantize_and_export.py --list

Writes the bundle (graphs, manifest with checksums; the recipe is recorded in the manifest's
provenance) and checks it before returning: the bundle loads, and the recipe's backend (when
available on this machine) runs every graph.
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
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args(argv)
    if args.list or not args.recipe:
        for name, r in RECIPES.items():
            print(f"{name:28s} formats {'+'.join(r.formats):14s} backend {r.backend:10s} {r.note}")
        return 0
    if args.weights is None or args.out is None:
        parser.error("--weights and --out are required with --recipe")

    import numpy as np

    from rapsam_edge import Segmenter
    from rapsam_edge.bundle import load_bundle
    from rapsam_edge.deploy.bundle_writer import export_bundle
    from rapsam_edge.model.io import load_model
    from rapsam_edge.runtime.registry import available_backends

    recipe = RECIPES[args.recipe]
    model = load_model(args.weights)
    out = export_bundle(
        model,
        args.out,
        name=args.out.name,
        # classes: the vocabulary saved with the weights (config.json)
        formats=recipe.formats,
        input_size=recipe.input_size,
        provenance={
            "weights": str(args.weights),
            "recipe": args.recipe,
            "target_backend": recipe.backend,
        },
    )
    bundle = load_bundle(out)
    if recipe.backend in available_backends(bundle):
        seg = Segmenter(bundle, backend=recipe.backend)
        frame = np.zeros((240, 320, 3), np.uint8)
        seg.panoptic(frame)
        seg.set_image(frame)
        seg.prompt(points=[(160, 120)])
        print(f"{out}: every graph runs on {recipe.backend}")
    else:
        print(f"{out}: written; backend {recipe.backend} is not available on this machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
