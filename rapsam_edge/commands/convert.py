"""`rapsam-edge convert`: an official RAP-SAM checkpoint -> our weights (``model.convert``)
and/or a bundle for a target recipe (``deploy.recipe_export``); arguments torch-free."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..apps.checks import require


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
        "(or COCO categories); required with --export (default: none)",
    )
    parser.add_argument(
        "--variant",
        default="auto",
        choices=["auto", "rapsam-r50", "rapsam-r18"],
        help="official-layout variant (default %(default)s: from the backbone's shapes)",
    )
    parser.add_argument(
        "--ema", action="store_true", help="convert the EMA copy (ema_state_dict) instead"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write our weights here (default: none)"
    )
    parser.add_argument(
        "--export", type=Path, default=None, help="write a bundle here (default: none)"
    )
    parser.add_argument(
        "--recipe",
        default="x86-openvino-fp32",
        choices=sorted(RECIPES),
        help="target recipe of --export (default %(default)s: ONNX + OpenVINO IR)",
    )
    parser.add_argument(
        "--calib", type=Path, default=None, help="calibration data, INT8 recipes (default: none)"
    )
    parser.add_argument(
        "--val", type=Path, default=None, help="gate validation data, INT8 recipes (default: none)"
    )


def run(args: argparse.Namespace) -> int:
    """`rapsam-edge convert CKPT --class-embeddings E --classes NAMES.json
    (--out DIR | --export BUNDLE [--recipe R])`."""
    require(args.checkpoint, "checkpoint", "file")
    require(args.class_embeddings, "--class-embeddings", "file")
    require(args.classes, "--classes", "file")
    require(args.calib, "--calib")
    require(args.val, "--val")
    from ..model.convert import ConversionError, convert_file
    from ..model.io import save_model

    if args.out is None and args.export is None:
        raise ConversionError("nothing to write", hint="give --out DIR and/or --export BUNDLE")
    if args.export is not None and args.classes is None:
        raise ConversionError("a bundle must name its classes", hint="pass --classes NAMES.json")
    if args.export is not None:
        from ..deploy.staging import check_target

        check_target(args.export, replace=True, flag="--export")  # before the conversion
    model, vocab = convert_file(
        args.checkpoint,
        class_embeddings=args.class_embeddings,
        classes=args.classes,
        variant=args.variant,
        ema=args.ema,
    )
    n = sum(v.numel() for v in model.state_dict().values())
    print(f"converted {args.checkpoint} -> {model.config['variant']} ({n / 1e6:.2f} M values)")
    if args.out is not None:
        print(f"wrote {save_model(model, args.out, classes=vocab)}")
    if args.export is not None:
        from ..deploy.provenance import file_record
        from ..deploy.recipe_export import export_with_recipe

        # the sources by file name and sha256: no path of this machine goes into the bundle
        sources = {
            "checkpoint": file_record(args.checkpoint),
            "class_embeddings": file_record(args.class_embeddings),
            "classes": file_record(args.classes),
        }
        export_with_recipe(
            model,
            args.export,
            recipe=args.recipe,
            calib=args.calib,
            val=args.val,
            classes=vocab,
            provenance={**sources, "converted_by": "rapsam-edge convert"},
        )
    return 0
