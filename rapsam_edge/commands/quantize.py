"""`rapsam-edge quantize`: an FP32 bundle (or trained weights) -> a reduced-precision bundle
that passed the accuracy gate.

    rapsam-edge quantize edge-xs-synthetic --to int8 --backend openvino \\
        --calib data/synthetic --val data/synthetic --out models/edge-xs-synthetic-ov-int8

``--to``: ``int8`` (ORT static QDQ, per-channel; or OpenVINO NNCF; or, for ``tensorrt``, the
ORT QDQ ONNX its engine builder reads as explicit quantization), ``fp16`` (fragile ops kept
in FP32), ``bf16`` (OpenVINO's inference-precision hint on CPUs that have BF16: no new file),
``mixed`` (``int8`` with ``--fallback``). The gate (``deploy.quantize.gate``) compares the
result with the FP32 source on ``--val``; when a limit is exceeded the command fails, or with
``--fallback`` reverts the graph whose FP32 copy helps most and gates again until it passes.
The bundle is built in a staging folder beside ``--out`` and moved there only once it
passed: a failure or an interrupt leaves ``--out`` as it was. Every option has a range
(``--help``); one outside it is a ConfigError before any work.
The work is done by ``rapsam_edge.deploy.quantize.pipeline.quantize_bundle``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..apps.checks import finite_float, int_in, positive_int, require, side
from ..errors import ConfigError

__all__ = [
    "add_arguments",
    "add_gate_arguments",
    "add_qat_arguments",
    "gate_sizes_from",
    "limits_from",
    "qat_from",
    "run",
]


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared with ``export/quantize_and_export.py``: calibration size, the
    gate's data size and limits, and the FP32 fallback. Each says its valid range; a value
    outside it is refused before any work (argparse for the types, ``GateLimits`` for the
    limits' ranges, a ConfigError)."""
    from ..deploy.quantize.gate import (  # numpy only: --help needs no torch
        LIMITS,
        MAX_GATE_SIZES,
        SIZE_MULTIPLE,
        GateLimits,
    )
    from ..deploy.quantize.pipeline import MAX_CALIB_SAMPLES

    parser.add_argument(
        "--calib-samples",
        type=int_in(1, MAX_CALIB_SAMPLES, what="--calib-samples"),
        default=32,
        help=f"calibration frames, 1..{MAX_CALIB_SAMPLES} (all held in memory; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--val-images",
        type=positive_int,
        default=50,
        help="validation images for the gate, >= 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="revert graphs to FP32, worst first, until the gate passes (default: off: fail)",
    )
    parser.add_argument(
        "--input-size",
        type=side,
        default=None,
        help="trained weights only: the long side to export the FP32 bundle at "
        "(default: the size the run was trained at, train_config.json image_size)",
    )
    parser.add_argument(
        "--gate-sizes",
        type=side,
        nargs="+",
        default=None,
        metavar="SIDE",
        help=f"network sides to gate at, each a multiple of {SIZE_MULTIPLE}, at most "
        f"{MAX_GATE_SIZES}, e.g. 320 640: both bundles run at each, and the bundle passes only "
        "if it passes at every one (default: the bundle's own size)",
    )
    default = GateLimits()
    for name, (flag, low, high, what) in LIMITS.items():
        parser.add_argument(
            flag,
            type=finite_float,
            default=getattr(default, name),
            help=f"gate: {what}, in [{low:g}, {high:g}] (default: %(default)s)",
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..deploy.quantize.pipeline import PRECISIONS, TARGETS

    parser.add_argument(
        "source",
        help="FP32 bundle (directory or shipped name) or trained weights (config.json + model.safetensors)",
    )
    parser.add_argument(
        "--to",
        required=True,
        choices=PRECISIONS,
        help="target precision (required): int8, fp16, bf16 (OpenVINO hint) or mixed "
        "(int8 with --fallback)",
    )
    parser.add_argument(
        "--backend",
        required=True,
        choices=tuple(TARGETS),
        help="whose tool converts and whose runtime gates (required)",
    )
    parser.add_argument(
        "--calib",
        type=Path,
        required=True,
        help="calibration images (required): COCO-panoptic / YouTube-VIS / make-data root, image folder or video",
    )
    parser.add_argument(
        "--val",
        type=Path,
        help="validation set with ground truth, make-data layout (default: --calib)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="bundle directory to write (required)"
    )
    parser.add_argument("--name", help="bundle name (default: the output directory's name)")
    from ..contract import GRAPH_NAMES

    parser.add_argument(
        "--graphs",
        nargs="+",
        default=None,
        choices=GRAPH_NAMES,
        help="graphs to convert (default: all)",
    )
    add_gate_arguments(parser)
    from ..deploy.quantize.pipeline import ACCURACY_CONTROL_RANGE

    low, high = ACCURACY_CONTROL_RANGE
    parser.add_argument(
        "--accuracy-control",
        type=finite_float,
        default=None,
        metavar="MAX_DROP",
        help="--backend openvino --to int8 / mixed only: NNCF accuracy-controlled "
        f"quantization with this max drop of prompt mask IoU, in points, in [{low:g}, {high:g}] "
        "(default: off)",
    )
    add_qat_arguments(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous bundle at --out, once the new one passed its gate (never a "
        "directory holding other files; default: off: refuse)",
    )


def add_qat_arguments(parser: argparse.ArgumentParser) -> None:
    """``--qat`` and its settings (``deploy.quantize.qat_settings.QatSettings``)."""
    from ..deploy.quantize.qat_settings import QatSettings

    qat = QatSettings()
    from ..contract import GRAPH_NAMES

    parser.add_argument(
        "--qat",
        nargs="*",
        choices=GRAPH_NAMES,
        default=None,
        metavar="GRAPH",
        help="quantization-aware distillation instead of post-training INT8 for these graphs "
        "(none named: every converted graph; the others get post-training INT8): each one's "
        "fake-quantized copy is fine-tuned against the FP32 model, then the bundle is gated "
        "as usual; SOURCE must be trained weights and --to int8 (default: off)",
    )
    parser.add_argument(
        "--qat-steps",
        type=positive_int,
        default=None,
        help=f"--qat: optimizer steps per graph, >= 1 (default: {qat.steps})",
    )
    parser.add_argument(
        "--qat-batch-size",
        type=positive_int,
        default=None,
        help=f"--qat: frames per step, >= 1 (default: {qat.batch_size})",
    )
    parser.add_argument(
        "--qat-lr",
        type=finite_float,
        default=None,
        help=f"--qat: Adam learning rate, > 0 (default: {qat.lr})",
    )
    parser.add_argument(
        "--qat-fp32-quantizers",
        type=int_in(0, 1000, what="--qat-fp32-quantizers"),
        default=None,
        help="--qat: quantizers left out (their tensors stay FP32), the most harmful ones "
        f"alone on the calibration inputs, 0..1000 (default: {qat.fp32_quantizers})",
    )
    parser.add_argument(
        "--qat-sides",
        type=side,
        nargs="+",
        default=None,
        help="--qat: network sides the training draws from, multiples of 32 (default: "
        f"{' '.join(map(str, qat.sides))})",
    )


#: the options that only --qat reads (a given one without --qat is refused, not ignored)
QAT_OPTIONS = ("qat_steps", "qat_batch_size", "qat_lr", "qat_fp32_quantizers", "qat_sides")


def qat_from(args: argparse.Namespace):
    """The QatSettings of parsed ``add_qat_arguments`` options, or None without ``--qat``.

    Raises:
      ConfigError: a ``--qat-*`` option given without ``--qat`` (it would do nothing)."""
    from ..deploy.quantize.qat_settings import QatSettings

    if args.qat is None:
        given = [o for o in QAT_OPTIONS if getattr(args, o, None) is not None]
        if given:
            flags = " ".join("--" + o.replace("_", "-") for o in given)
            raise ConfigError(
                f"{flags} without --qat: the option(s) set quantization-aware distillation",
                hint="add --qat [GRAPH ...], or drop the --qat-* options",
            )
        return None
    default = QatSettings()

    def pick(name: str, value):
        return getattr(default, name) if value is None else value

    return QatSettings(
        steps=pick("steps", args.qat_steps),
        batch_size=pick("batch_size", args.qat_batch_size),
        lr=pick("lr", args.qat_lr),
        sides=tuple(args.qat_sides or default.sides),
        fp32_quantizers=pick("fp32_quantizers", args.qat_fp32_quantizers),
        graphs=tuple(args.qat),
    )


def limits_from(args: argparse.Namespace):
    """The gate limits of parsed ``add_gate_arguments`` options.

    Raises:
      ConfigError: a limit outside its range (``GateLimits``)."""
    from ..deploy.quantize.gate import GateLimits

    return GateLimits(
        args.max_pq_drop, args.max_miou_drop, args.min_mask_iou, args.min_label_agreement
    )


def gate_sizes_from(args: argparse.Namespace) -> tuple[int, ...] | None:
    """The parsed ``--gate-sizes`` as ``QuantizeRequest.gate_sizes`` (None: not given)."""
    sizes = getattr(args, "gate_sizes", None)
    return None if sizes is None else tuple(sizes)


def run(args: argparse.Namespace) -> int:
    from ..deploy.quantize.pipeline import QuantizeRequest, quantize_bundle

    # the request checks every option (ConfigError) before any file is read or written
    request = QuantizeRequest(
        source=args.source,
        out=args.out,
        to=args.to,
        backend=args.backend,
        calib=args.calib,
        val=args.val,
        name=args.name,
        graphs=args.graphs,
        calib_samples=args.calib_samples,
        val_images=args.val_images,
        fallback=args.fallback,
        limits=limits_from(args),
        accuracy_control=args.accuracy_control,
        overwrite=args.overwrite,
        input_size=args.input_size,
        qat=qat_from(args),
        gate_sizes=gate_sizes_from(args),
    )
    require(args.calib, "--calib")
    require(args.val, "--val")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quantize_bundle(request)
    return 0
