"""`rapsam-edge quantize`: an FP32 bundle (or trained weights) -> a reduced-precision bundle
that passed the accuracy gate.

    rapsam-edge quantize edge-xs-synthetic --to int8 --backend openvino \\
        --calib data/synthetic --val data/synthetic --out models/edge-xs-synthetic-ov-int8

``--to``: ``int8`` (ORT static QDQ, per-channel; or OpenVINO NNCF; or, for ``tensorrt``, the
ORT QDQ ONNX its engine builder reads as explicit quantization), ``fp16`` (fragile ops kept
in FP32), ``bf16`` (OpenVINO's inference-precision hint on CPUs that have BF16: no new file),
``mixed`` (``int8`` with ``--fallback``). The gate (``quantize.gate``) compares the result
with the FP32 source on ``--val``; when a limit is exceeded the command fails, or with
``--fallback`` reverts the graph whose FP32 copy helps most and gates again until it passes.
The gate numbers and the limits go into the manifest (``export.quantization``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)

#: backend name in this CLI -> (runtime backend for the gate, graph file format)
TARGETS = {
    "ort": ("ort-cpu", "onnx"),
    "openvino": ("openvino", "openvino"),
    "tensorrt": ("tensorrt", "onnx"),
}
#: what each backend can be converted to
SUPPORTED = {
    "ort": ("int8", "fp16", "mixed"),
    "openvino": ("int8", "fp16", "bf16", "mixed"),
    "tensorrt": ("int8", "fp16"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help="FP32 bundle (directory or shipped name) or trained weights (config.json + model.safetensors)",
    )
    parser.add_argument("--to", required=True, choices=("int8", "fp16", "bf16", "mixed"))
    parser.add_argument("--backend", required=True, choices=tuple(TARGETS))
    parser.add_argument(
        "--calib",
        type=Path,
        required=True,
        help="calibration images: COCO-panoptic / YouTube-VIS / make-data root, image folder or video",
    )
    parser.add_argument(
        "--val",
        type=Path,
        help="validation set with ground truth (make-data layout: coco/ ...); default --calib",
    )
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument("--name", help="bundle name (default: the output directory's name)")
    parser.add_argument(
        "--graphs", nargs="+", default=None, help="graphs to convert (default: all)"
    )
    parser.add_argument(
        "--calib-samples", type=int, default=32, help="calibration frames (default 32)"
    )
    parser.add_argument(
        "--val-images", type=int, default=50, help="validation images for the gate (default 50)"
    )
    parser.add_argument(
        "--fallback", action="store_true", help="revert graphs to FP32 until the gate passes"
    )
    parser.add_argument("--max-pq-drop", type=float, default=1.0)
    parser.add_argument("--max-miou-drop", type=float, default=1.0)
    parser.add_argument(
        "--min-mask-iou", type=float, default=0.95, help="median per-mask IoU vs FP32"
    )
    parser.add_argument("--min-label-agreement", type=float, default=0.98)
    parser.add_argument(
        "--accuracy-control",
        type=float,
        default=None,
        metavar="MAX_DROP",
        help="OpenVINO: NNCF accuracy-controlled quantization with this max drop of prompt mask IoU (points)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output directory"
    )


def _source_bundle(source: str, tmp: Path):
    from ..bundle import load_bundle

    path = Path(source)
    if (path / "config.json").is_file() and not (path / "manifest.json").is_file():
        from ..deploy.bundle_writer import export_bundle
        from ..model.io import load_model

        log.info("exporting the FP32 bundle from weights %s", path)
        return load_bundle(export_bundle(load_model(path), tmp / "fp32", name=f"{path.name}-fp32"))
    return load_bundle(source)


def _convert(
    backend: str, to: str, src: Path, dst: Path, feeds: list, options: dict[str, Any]
) -> dict[str, Any]:
    """One graph file ``src`` -> ``dst``; returns the tool's record."""
    if backend in ("ort", "tensorrt") and to in ("int8", "mixed"):
        from ..deploy.quantize.ort_int8 import quantize_with_report

        record, report = quantize_with_report(src, dst, feeds)
        return {**record, "worst_tensors": report[:5]}
    if backend in ("ort", "tensorrt") and to == "fp16":
        if backend == "tensorrt":  # the engine builder makes FP16 from the FP32 ONNX
            shutil.copy2(src, dst)
            return {"tool": "tensorrt builder (FP16 flag at engine build)"}
        from ..deploy.quantize.ort_fp16 import convert_ort_fp16

        return convert_ort_fp16(src, dst)
    if backend == "openvino" and to in ("int8", "mixed"):
        from ..deploy.quantize import ov_int8

        if options.get("accuracy_control") is not None:
            return ov_int8.quantize_ov_int8_accuracy_control_default(
                src,
                dst,
                feeds,
                max_drop=options["accuracy_control"],
                iou_outputs=options["iou_outputs"],
            )
        return ov_int8.quantize_ov_int8(src, dst, feeds)
    if backend == "openvino" and to == "fp16":
        from ..deploy.quantize.ov_fp16 import convert_ov_fp16

        return convert_ov_fp16(src, dst)
    raise ConfigError(
        f"--backend {backend} cannot convert to {to}; it supports {SUPPORTED[backend]}"
    )


def run(args: argparse.Namespace) -> int:
    from ..deploy.quantize.calibration import calibration_frames, graph_feeds
    from ..deploy.quantize.derived import graph_file_names, write_derived_bundle
    from ..deploy.quantize.gate import AccuracyGateError, GateLimits, run_gate

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.to not in SUPPORTED[args.backend]:
        raise ConfigError(
            f"--backend {args.backend} cannot convert to {args.to}; it supports {SUPPORTED[args.backend]}"
        )
    if not args.calib.exists():
        raise SourceError(
            f"--calib {args.calib} does not exist",
            hint="give calibration images: a dataset root, an image folder or a video",
        )
    val = args.val or args.calib
    if not (Path(val) / "coco" / "annotations").is_dir():
        flag = "--val" if args.val else "--val (defaults to --calib)"
        raise SourceError(
            f"{flag} {val}: the gate needs a validation set with ground truth in the make-data layout (coco/annotations/...)",
            hint="pass --val DIR (e.g. `rapsam-edge make-data --split val --out DIR`)",
        )
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            raise ConfigError(f"{args.out} is not empty", hint="pass --overwrite or another --out")
        shutil.rmtree(args.out)
    fallback = args.fallback or args.to == "mixed"
    limits = GateLimits(
        args.max_pq_drop, args.max_miou_drop, args.min_mask_iou, args.min_label_agreement
    )
    gate_backend, fmt = TARGETS[args.backend]
    tag = "int8" if args.to == "mixed" else args.to
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = _source_bundle(args.source, tmp)
        graphs = args.graphs or list(source.graphs)
        unknown = sorted(set(graphs) - set(source.graphs))
        if unknown:
            raise ConfigError(f"--graphs {unknown}: the bundle has {sorted(source.graphs)}")
        stage = tmp / "stage"
        stage.mkdir()
        converted: dict[str, tuple[str, str]] = {}
        records: dict[str, Any] = {}
        if args.to == "bf16":
            converted = {
                g: (
                    source.graphs[g].files.get("openvino") or source.graphs[g].files["onnx"],
                    "bf16",
                )
                for g in graphs
            }
            fmt = (
                "openvino"
                if all("openvino" in source.graphs[g].files for g in source.graphs)
                else "onnx"
            )
            records = {
                g: {"tool": "OpenVINO INFERENCE_PRECISION_HINT=bf16 at compile time"}
                for g in graphs
            }
        else:
            frames = calibration_frames(args.calib, limit=args.calib_samples)
            feeds = graph_feeds(source, frames)
            for g in graphs:
                src = source.graph_path(g, fmt if fmt in source.graphs[g].files else "onnx")
                name = graph_file_names(g, fmt, tag)[0]
                records[g] = _convert(
                    args.backend,
                    args.to,
                    src,
                    stage / name,
                    feeds[g],
                    {
                        "accuracy_control": args.accuracy_control,
                        "graph": g,
                        # the metric of accuracy control: mask IoU (points) on mask outputs
                        "iou_outputs": [
                            t.name for t in source.graphs[g].outputs if t.role == "mask_logits"
                        ],
                    },
                )
                converted[g] = (name, tag)
        record: dict[str, Any] = {
            "to": args.to,
            "backend": args.backend,
            "calibration": str(args.calib),
            "graphs": records,
        }
        name = args.name or args.out.name
        bundle = write_derived_bundle(
            source, args.out, staged=stage, name=name, fmt=fmt, graphs=converted, record=record
        )
        available = _backend_available(gate_backend, bundle)
        if not available:
            record["gate"] = {
                "passed": None,
                "skipped": f"{gate_backend} is not usable here: not verified",
            }
            write_derived_bundle(
                source, args.out, staged=stage, name=name, fmt=fmt, graphs=converted, record=record
            )
            print(f"wrote {args.out} (NOT gated: {gate_backend} is not usable on this machine)")
            return 0
        reverted: list[str] = []
        while True:
            report = run_gate(
                source, bundle, val, backend=gate_backend, limits=limits, max_images=args.val_images
            )
            print(_gate_line(report, reverted))
            if report["passed"] or not fallback or not (set(converted) - set(reverted)):
                break
            worst = _worst_graph(
                source,
                args.out,
                stage,
                name,
                fmt,
                converted,
                reverted,
                record,
                val,
                gate_backend,
                limits,
                args.val_images,
            )
            reverted.append(worst)
            converted[worst] = (source.graphs[worst].files[fmt], source.graphs[worst].precision)
            bundle = write_derived_bundle(
                source, args.out, staged=stage, name=name, fmt=fmt, graphs=converted, record=record
            )
        record["gate"] = {**report, "reverted_to_fp32": reverted}
        if not report["passed"]:
            shutil.rmtree(args.out)
            raise AccuracyGateError(
                f"{args.to} on {args.backend} fails the gate: {'; '.join(report['failures'])} (bundle not written)"
            )
        bundle = write_derived_bundle(
            source, args.out, staged=stage, name=name, fmt=fmt, graphs=converted, record=record
        )
    print(
        f"wrote {args.out}: precision per graph { ({g: i.precision for g, i in bundle.graphs.items()}) }"
    )
    print(
        json.dumps(
            {k: report[k] for k in ("pq_drop", "miou_drop", "mask_iou_median", "label_agreement")},
            indent=1,
        )
    )
    return 0


def _backend_available(name: str, bundle) -> bool:
    from ..runtime.registry import available_backends

    return name in available_backends(bundle)


def _gate_line(report: dict[str, Any], reverted: list[str]) -> str:
    state = "PASS" if report["passed"] else "FAIL"
    return (
        f"gate {state}: PQ drop {report['pq_drop']:.2f}, 1-click mIoU drop {report['miou_drop']:.2f}, "
        f"median mask IoU vs FP32 {report['mask_iou_median']:.3f}, label agreement "
        f"{report['label_agreement']:.4f}" + (f" (FP32 kept for {reverted})" if reverted else "")
    )


def _worst_graph(
    source, out, stage, name, fmt, converted, reverted, record, val, backend, limits, images
) -> str:
    """The converted graph whose FP32 copy raises the median mask IoU most (one gate per
    candidate, on the same images)."""
    from ..deploy.quantize.derived import write_derived_bundle
    from ..deploy.quantize.gate import run_gate

    best, best_score = None, -1.0
    candidates = [
        g for g in converted if g not in reverted and converted[g][1] != source.graphs[g].precision
    ]
    for g in candidates:
        trial = dict(converted)
        trial[g] = (source.graphs[g].files[fmt], source.graphs[g].precision)
        bundle = write_derived_bundle(
            source, out, staged=stage, name=name, fmt=fmt, graphs=trial, record=record
        )
        rep = run_gate(source, bundle, val, backend=backend, limits=limits, max_images=images)
        score = (
            rep["mask_iou_median"]
            + rep["label_agreement"]
            - 0.01 * (rep["pq_drop"] + rep["miou_drop"])
        )
        log.info("reverting %s to FP32: %s", g, _gate_line(rep, [*reverted, g]))
        if score > best_score:
            best, best_score = g, score
    return best
