"""``rapsam-edge export``: weights (safetensors + config.json) -> model bundle.

    rapsam-edge export --weights runs/x/weights --out models/edge-s-synthetic \\
        [--name N] [--classes synthetic | FILE.json] [--formats onnx openvino]

The class vocabulary is the one saved with the weights (``config.json``); ``--classes FILE``
(a JSON list of {"id", "name", "is_thing"}, or {"classes": [...]}) or ``--classes synthetic``
(the generator's vocabulary) overrides it, e.g. for weights saved before vocabularies were.
``--provenance FILE.json`` is copied into the manifest (training data, recipe, metrics); the
manifest names the weights by their run's name and the sha256 of the files read, never by a
path of this machine (a provenance file holding one is refused). The bundle is written into
a staging folder beside ``--out`` and moved there when complete; an existing bundle at
``--out`` is replaced only then (a directory holding anything else is refused).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ..apps.checks import int_in, require, side
from ..errors import ConfigError

__all__ = ["add_arguments", "load_classes", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        help="model directory (model.safetensors + config.json) or the "
        ".safetensors file with config.json beside it",
    )
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument("--name", help="bundle name (default: the output directory's name)")
    parser.add_argument(
        "--classes",
        default=None,
        help="class vocabulary: a JSON file or 'synthetic' (default: the one saved with the weights)",
    )
    parser.add_argument(
        "--formats",
        nargs="+",
        default=["onnx", "openvino"],
        choices=["onnx", "openvino"],
        help="graph formats to write (default %(default)s)",
    )
    parser.add_argument(
        "--input-size",
        type=side,
        default=None,
        help="default long side of the network input (default: the size the run was trained "
        "at, train_config.json's image_size; without one, config.json's input_size)",
    )
    parser.add_argument(
        "--opset",
        type=int_in(7, 30),
        default=None,
        help="ONNX opset (default 17; 19 for DeformConv)",
    )
    parser.add_argument(
        "--simplifier",
        default="auto",
        choices=["auto", "onnxslim", "onnxsim", "onnxruntime-basic", "none"],
        help="ONNX graph simplifier (default %(default)s: the first one installed)",
    )
    parser.add_argument(
        "--include-weights",
        action="store_true",
        help="also ship model.safetensors (torch reference backend)",
    )
    parser.add_argument(
        "--provenance",
        type=Path,
        default=None,
        help="JSON file copied into the manifest's provenance (default: none)",
    )


def load_classes(spec: str | None, weights: str | Path | None = None) -> list[dict[str, Any]]:
    """The vocabulary for ``--classes``: None -> the one saved with ``weights``; 'synthetic' ->
    the generator's; otherwise a JSON file (``contract.read_classes_file``).

    Raises:
      ConfigError: no vocabulary anywhere. ManifestError: a malformed file.
    """
    from ..contract.manifest import read_classes_file

    if spec is None:
        from ..model.io import read_classes

        saved = read_classes(weights) if weights is not None else None
        if saved is None:
            raise ConfigError(
                f"{weights}: the weights carry no class vocabulary",
                hint="pass --classes FILE.json (or --classes synthetic for the generated data's classes)",
            )
        return saved
    if spec == "synthetic":
        from ..data.classes import CLASSES

        return [{"id": c.id, "name": c.name, "is_thing": c.is_thing} for c in CLASSES]
    return [c.to_dict() for c in read_classes_file(spec)]


def _read_provenance(path: Path) -> dict[str, Any]:
    """``--provenance``'s JSON object. Raises ConfigError: not JSON, not an object, or
    holding a path of this machine (``deploy.provenance.check_portable``)."""
    from ..contract.files import read_regular
    from ..deploy.provenance import check_portable

    data = read_regular(path, "--provenance file", ConfigError, max_bytes=1 << 20)
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ConfigError(f"--provenance {path} is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--provenance {path} is not a JSON object")
    check_portable(raw, f"--provenance {path.name}")
    return raw


def run(args: argparse.Namespace) -> int:
    require(args.weights, "--weights")
    if args.classes != "synthetic":
        require(args.classes, "--classes", "file")
    require(args.provenance, "--provenance", "file")
    extra = _read_provenance(args.provenance) if args.provenance else {}
    from ..deploy.bundle_writer import export_bundle
    from ..deploy.provenance import weights_record
    from ..deploy.staging import check_target
    from ..deploy.training_run import export_input_size
    from ..model.io import load_model

    check_target(args.out, replace=True)  # before the model is loaded
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = load_model(args.weights)
    provenance = {"weights": weights_record(args.weights), **extra}
    out = export_bundle(
        model,
        args.out,
        name=args.name or args.out.resolve().name,
        classes=load_classes(args.classes, args.weights),
        provenance=provenance,
        input_size=export_input_size(args.weights, args.input_size),
        formats=tuple(args.formats),
        opset=args.opset,
        simplifier=args.simplifier,
        include_weights=args.include_weights,
    )
    print(f"bundle written to {out}")
    return 0
