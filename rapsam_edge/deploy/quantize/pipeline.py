"""An FP32 bundle (or trained weights) -> a reduced-precision bundle that passed the accuracy
gate: the library behind ``rapsam-edge quantize`` and ``export/quantize_and_export.py``.

``quantize_bundle`` checks the request, converts each graph with its backend's tool
(``deploy.backends.<backend>``), writes the derived bundle, gates it against the FP32 source
(``gate.run_gate``) and, with ``fallback``, reverts graphs to FP32 one at a time
(``policy.worst_graph``) until the gate passes. The gate numbers and the limits go into the
manifest (``export.quantization``).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError, SourceError
from .gate import AccuracyGateError, GateLimits, check_gate_sizes
from .report import gate_line

__all__ = ["PRECISIONS", "SUPPORTED", "TARGETS", "QuantizeRequest", "quantize_bundle"]

log = logging.getLogger(__name__)

#: quantize backend -> (runtime backend for the gate, graph file format)
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
#: every precision ``to`` accepts
PRECISIONS = ("int8", "fp16", "bf16", "mixed")


#: most calibration frames (``calib_samples``): they are all held in memory at once, with
#: the encoder's features for the decoders (edge-s at 640: about 5 MB a frame)
MAX_CALIB_SAMPLES = 1000
#: ``accuracy_control``'s range: a drop of mask IoU, in points
ACCURACY_CONTROL_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class QuantizeRequest:
    """What to quantize and how (the options of ``rapsam-edge quantize``). Checked when
    made (``check_options``): a request that cannot work is a ConfigError before any work."""

    source: str  # FP32 bundle (directory or shipped name) or trained weights
    out: Path
    to: str  # one of PRECISIONS
    backend: str  # one of TARGETS
    calib: Path
    val: Path | None = None  # default: calib
    name: str | None = None  # default: out's name
    graphs: Sequence[str] | None = None  # default: all
    calib_samples: int = 32  # 1..MAX_CALIB_SAMPLES
    val_images: int = 50  # >= 1
    fallback: bool = False
    limits: GateLimits = field(default_factory=GateLimits)
    accuracy_control: float | None = None  # openvino int8 / mixed only, in ACCURACY_CONTROL_RANGE
    overwrite: bool = False  # replace a previous bundle at ``out`` (never another directory)
    input_size: int | None = None  # weights only: export size (default: the trained size)
    qat: Any = None  # a qat.QatSettings: quantization-aware distillation (weights, int8 only)
    gate_sizes: tuple[int, ...] | None = None  # network sides to gate at (default: the bundle's)

    def __post_init__(self) -> None:
        # any iterable of sides -> a checked tuple, read once (ConfigError naming the option)
        object.__setattr__(self, "gate_sizes", check_gate_sizes(self.gate_sizes))
        check_options(self)


def _int_in(value: Any, low: int, high: int | None, what: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigError(f"{what} must be an integer {span}, got {value!r}")


def check_options(req: QuantizeRequest) -> None:
    """Refuse options that cannot work, before any file is read or written.

    Raises:
      ConfigError: naming the option.
    """
    from ...apps.checks import SIDE_MAX, SIDE_MIN
    from ...contract import GRAPH_NAMES

    if req.backend not in TARGETS:
        raise ConfigError(f"backend {req.backend!r}: choose from {sorted(TARGETS)}")
    if req.to not in SUPPORTED[req.backend]:
        raise ConfigError(
            f"--backend {req.backend} cannot convert to {req.to}; it supports {SUPPORTED[req.backend]}"
        )
    if not isinstance(req.limits, GateLimits):
        raise ConfigError(f"limits must be a GateLimits, got {type(req.limits).__name__}")
    _int_in(req.calib_samples, 1, MAX_CALIB_SAMPLES, "--calib-samples")
    _int_in(req.val_images, 1, None, "--val-images")
    if req.input_size is not None:
        _int_in(req.input_size, SIDE_MIN, SIDE_MAX, "--input-size")
    check_gate_sizes(req.gate_sizes)
    if req.name is not None:
        from ..provenance import check_portable

        check_portable(req.name, "--name")
    unknown = sorted(set(req.graphs or ()) - set(GRAPH_NAMES))
    if unknown or (req.graphs is not None and not req.graphs):
        raise ConfigError(f"--graphs {unknown or '[]'}: choose from {list(GRAPH_NAMES)}")
    _check_qat(req)
    ac = req.accuracy_control
    if ac is not None:
        low, high = ACCURACY_CONTROL_RANGE
        if isinstance(ac, bool) or not isinstance(ac, (int, float)) or not low <= ac <= high:
            raise ConfigError(
                f"--accuracy-control must be a drop in points in [{low:g}, {high:g}], got {ac!r}"
            )
        if req.backend != "openvino" or req.to not in ("int8", "mixed"):
            raise ConfigError(
                f"--accuracy-control applies to --backend openvino --to int8 or mixed, not "
                f"--backend {req.backend} --to {req.to}",
                hint="drop --accuracy-control, or quantize with --backend openvino --to int8",
            )


def _check_qat(req: QuantizeRequest) -> None:
    if req.qat is None:
        return
    from .qat_settings import QatSettings

    if not isinstance(req.qat, QatSettings):
        raise ConfigError(f"qat must be a QatSettings, got {type(req.qat).__name__}")
    if req.to != "int8":
        raise ConfigError(f"--qat makes INT8 graphs; --to {req.to} is not int8")
    if req.accuracy_control is not None:
        raise ConfigError("--qat and --accuracy-control exclude each other")
    outside = sorted(set(req.qat.graphs) - set(req.graphs or req.qat.graphs))
    if outside:
        raise ConfigError(
            f"--qat {' '.join(outside)}: not among the converted graphs --graphs {list(req.graphs or [])}"
        )
    source = Path(req.source)
    if not (source / "config.json").is_file() or (source / "manifest.json").is_file():
        raise ConfigError(
            f"--qat trains the model's weights; {req.source} is not a training run directory",
            hint="pass the run directory with model.safetensors and config.json",
        )


def check_request(req: QuantizeRequest) -> Path:
    """Refuse a request whose data or output cannot work, before any conversion (nothing is
    written or removed); returns the gate's data."""
    from ..staging import check_target

    if not Path(req.calib).exists():
        raise SourceError(
            f"--calib {req.calib} does not exist",
            hint="give calibration images: a dataset root, an image folder or a video",
        )
    val = Path(req.val or req.calib)
    if not (val / "coco" / "annotations").is_dir():
        flag = "--val" if req.val else "--val (defaults to --calib)"
        raise SourceError(
            f"{flag} {val}: the gate needs a validation set with ground truth in the make-data layout (coco/annotations/...)",
            hint="pass --val DIR (e.g. `rapsam-edge make-data --split val --out DIR`)",
        )
    check_target(Path(req.out), replace=req.overwrite)
    return val


def check_sizes_fit(sizes: Sequence[int] | None, pad_divisor: int) -> None:
    """Refuse gate sizes the source bundle cannot run at, before any conversion.

    Raises:
      ConfigError: a size not a multiple of the bundle's pad divisor."""
    bad = [s for s in sizes or () if s % pad_divisor]
    if bad:
        raise ConfigError(
            f"--gate-sizes {bad}: the bundle pads to multiples of {pad_divisor}",
            hint=f"give sides that are multiples of {pad_divisor}",
        )


def source_bundle(source: str, tmp: Path, input_size: int | None = None) -> Any:
    """The FP32 bundle to start from: ``source`` itself, or exported from weights (a run
    directory with ``config.json`` and no manifest) at ``input_size`` or the size the run
    was trained at."""
    from ...bundle import load_bundle

    path = Path(source)
    if (path / "config.json").is_file() and not (path / "manifest.json").is_file():
        from ...model.io import load_model
        from ..bundle_writer import export_bundle
        from ..training_run import export_input_size

        size = export_input_size(path, input_size)
        log.info("exporting the FP32 bundle from weights %s (input size %s)", path, size)
        model = load_model(path)
        return load_bundle(
            export_bundle(model, tmp / "fp32", name=f"{path.name}-fp32", input_size=size)
        )
    if input_size is not None:
        raise ConfigError(
            f"--input-size applies to trained weights; {source} is a bundle (its size is fixed)",
            hint="drop --input-size, or pass the run directory with the weights",
        )
    return load_bundle(source)


def convert_graph(
    backend: str, to: str, src: Path, dst: Path, feeds: list, options: dict[str, Any]
) -> dict[str, Any]:
    """One graph file ``src`` -> ``dst`` with the backend's tool; returns the tool's record."""
    if backend in ("ort", "tensorrt") and to in ("int8", "mixed"):
        from ..backends.onnxruntime.int8 import quantize_with_report

        record, report = quantize_with_report(src, dst, feeds)
        return {**record, "worst_tensors": report[:5]}
    if backend in ("ort", "tensorrt") and to == "fp16":
        if backend == "tensorrt":  # the engine builder makes FP16 from the FP32 ONNX
            shutil.copy2(src, dst)
            return {"tool": "tensorrt builder (FP16 flag at engine build)"}
        from ..backends.onnxruntime.fp16 import convert_ort_fp16

        return convert_ort_fp16(src, dst)
    if backend == "openvino" and to in ("int8", "mixed"):
        if options.get("accuracy_control") is not None:
            from ..backends.openvino.accuracy import quantize_ov_int8_accuracy_control_default

            return quantize_ov_int8_accuracy_control_default(
                src,
                dst,
                feeds,
                max_drop=options["accuracy_control"],
                iou_outputs=options["iou_outputs"],
            )
        from ..backends.openvino.int8 import quantize_ov_int8

        return quantize_ov_int8(src, dst, feeds)
    if backend == "openvino" and to == "fp16":
        from ..backends.openvino.fp16 import convert_ov_fp16

        return convert_ov_fp16(src, dst)
    raise ConfigError(
        f"--backend {backend} cannot convert to {to}; it supports {SUPPORTED[backend]}"
    )


def _bf16_graphs(source: Any, graphs: Sequence[str]) -> tuple[dict, dict, str]:
    """BF16 is a compile-time hint: the FP32 files, marked bf16 (no conversion)."""
    converted = {
        g: (source.graphs[g].files.get("openvino") or source.graphs[g].files["onnx"], "bf16")
        for g in graphs
    }
    every_ir = all("openvino" in source.graphs[g].files for g in source.graphs)
    records = {
        g: {"tool": "OpenVINO INFERENCE_PRECISION_HINT=bf16 at compile time"} for g in graphs
    }
    return converted, records, "openvino" if every_ir else "onnx"


def _convert_graphs(
    req: QuantizeRequest, source: Any, graphs: Sequence[str], stage: Path, fmt: str
) -> tuple[dict, dict, str, dict | None]:
    """Convert each graph into ``stage``; returns (graph -> (file, tag), records, format,
    the calibration data's record: name, frame count and sha256 of the frames; None for
    bf16, which uses none)."""
    if req.to == "bf16":
        return (*_bf16_graphs(source, graphs), None)
    from ..provenance import frames_record
    from .calibration import calibration_frames, graph_feeds
    from .derived import graph_file_names

    tag = "int8" if req.to == "mixed" else req.to
    frames = calibration_frames(req.calib, limit=req.calib_samples)
    calibration = frames_record(Path(req.calib).resolve().name, frames)
    converted: dict[str, tuple[str, str]] = {}
    records: dict[str, Any] = {}
    if req.qat is not None:  # QAT for its graphs (all by default), post-training for the rest
        from ...model.io import load_model
        from .qat import qat_convert

        trained = [g for g in graphs if not req.qat.graphs or g in req.qat.graphs]
        names = {g: graph_file_names(g, fmt, tag)[0] for g in trained}
        records = qat_convert(
            load_model(req.source), trained, frames, req.qat, fmt=fmt, names=names, stage=stage
        )
        converted = {g: (names[g], tag) for g in trained}
    rest = [g for g in graphs if g not in converted]
    feeds = graph_feeds(source, frames, sizes=req.gate_sizes) if rest else {}
    for g in rest:
        src = source.graph_path(g, fmt if fmt in source.graphs[g].files else "onnx")
        name = graph_file_names(g, fmt, tag)[0]
        options = {
            "accuracy_control": req.accuracy_control,
            "graph": g,
            # the metric of accuracy control: mask IoU (points) on mask outputs
            "iou_outputs": [t.name for t in source.graphs[g].outputs if t.role == "mask_logits"],
        }
        records[g] = convert_graph(req.backend, req.to, src, stage / name, feeds[g], options)
        converted[g] = (name, tag)
    return converted, records, fmt, calibration


def _gate_with_fallback(
    req: QuantizeRequest,
    source: Any,
    write: Callable[..., Any],
    bundle: Any,
    converted: dict[str, tuple[str, str]],
    val: Path,
    fmt: str,
    echo: Callable[[str], None],
) -> tuple[dict[str, Any], list[str], Any]:
    """Gate ``bundle`` (written from ``converted``); with fallback, revert the graph whose FP32 copy helps most
    and gate again until it passes or nothing is left to revert. Returns (last gate report,
    graphs reverted, last bundle written)."""
    from .gate import run_gate
    from .policy import worst_graph

    gate_backend = TARGETS[req.backend][0]
    fallback = req.fallback or req.to == "mixed"
    reverted: list[str] = []

    def run(b: Any) -> dict[str, Any]:
        return run_gate(
            source,
            b,
            val,
            backend=gate_backend,
            limits=req.limits,
            max_images=req.val_images,
            input_sizes=req.gate_sizes,
        )

    def fp32(g: str) -> tuple[str, str]:
        return source.graphs[g].files[fmt], source.graphs[g].precision

    while True:
        report = run(bundle)
        echo(gate_line(report, reverted))
        if report["passed"] or not fallback or not (set(converted) - set(reverted)):
            return report, reverted, bundle
        candidates = [
            g
            for g in converted
            if g not in reverted and converted[g][1] != source.graphs[g].precision
        ]

        def without(g: str) -> dict[str, Any]:
            rep = run(write(graphs={**converted, g: fp32(g)}))
            log.info("reverting %s to FP32: %s", g, gate_line(rep, [*reverted, g]))
            return rep

        worst = worst_graph(candidates, without)
        if worst is None:  # every converted graph is already at its source precision
            return report, reverted, bundle
        reverted.append(worst)
        converted[worst] = fp32(worst)
        bundle = write(graphs=converted)


def quantize_bundle(req: QuantizeRequest, *, echo: Callable[[str], None] = print) -> Any:
    """Run ``req``: convert, write, gate (with fallback if asked). Returns the written
    ``Bundle``; ``echo`` gets the progress lines (gate results, what was written).

    The bundle is built in a staging folder beside ``req.out`` (``deploy.staging``) and
    moved onto ``req.out`` only once its gate passed (or, where the gate's backend is
    missing, with a record saying it was not verified): a failure or an interrupt
    (Ctrl-C, SIGTERM) at any point leaves ``req.out`` as it was.

    Raises:
      ConfigError / SourceError: a request that cannot work (unsupported precision for the
        backend, impossible limits, missing calibration or validation data).
      OutputExistsError: ``out`` holds something other than a bundle, or a bundle without
        ``overwrite``.
      AccuracyGateError: the gate failed (``out`` is left as it was).
    """
    from ..staging import staged_bundle

    val = check_request(req)
    out = Path(req.out)
    with (
        staged_bundle(out, replace=req.overwrite) as stage,
        tempfile.TemporaryDirectory(prefix="rapsam-quantize-") as tmp_name,
    ):
        report, verdict = _build_and_gate(req, val, stage, Path(tmp_name), echo)
    from ...bundle import load_bundle

    bundle = load_bundle(out)
    if report is None:
        echo(f"wrote {out} ({verdict})")
        return bundle
    precisions = {g: i.precision for g, i in bundle.graphs.items()}
    echo(f"wrote {out}: precision per graph {precisions}")
    keys = ("pq_drop", "miou_drop", "mask_iou_median", "label_agreement")
    echo(json.dumps({k: report[k] for k in keys}, indent=1))
    for size, at in report.get("sizes", {}).items():  # --gate-sizes: each size's numbers
        echo(f"at {size}: {gate_line(at, [])}")
    return bundle


def _build_and_gate(
    req: QuantizeRequest, val: Path, stage: Path, tmp: Path, echo: Callable[[str], None]
) -> tuple[dict[str, Any] | None, str]:
    """Convert into ``tmp``, write the derived bundle into ``stage`` and gate it; returns
    (the gate report, or None when the gate's backend is missing here, and what to say).

    Raises:
      AccuracyGateError: the gate failed.
    """
    from ...runtime.registry import available_backends
    from .derived import write_derived_bundle

    gate_backend, fmt = TARGETS[req.backend]
    source = source_bundle(req.source, tmp, req.input_size)
    check_sizes_fit(req.gate_sizes, source.input.pad_divisor)
    graphs = list(req.graphs or source.graphs)
    unknown = sorted(set(graphs) - set(source.graphs))
    if unknown:
        raise ConfigError(f"--graphs {unknown}: the bundle has {sorted(source.graphs)}")
    converted_dir = tmp / "stage"
    converted_dir.mkdir()
    converted, records, fmt, calibration = _convert_graphs(req, source, graphs, converted_dir, fmt)
    record: dict[str, Any] = {
        "to": req.to,
        "backend": req.backend,
        "calibration": calibration,
        "graphs": records,
    }
    name = req.name or Path(req.out).resolve().name

    def write(**kw: Any) -> Any:
        return write_derived_bundle(
            source, stage, staged=converted_dir, name=name, fmt=fmt, record=record, **kw
        )

    bundle = write(graphs=converted)
    if gate_backend not in available_backends(bundle):
        verdict = f"NOT gated: {gate_backend} is not usable on this machine"
        record["gate"] = {
            "passed": None,
            "skipped": f"{gate_backend} is not usable here: not verified",
        }
        write(graphs=converted)
        return None, verdict
    report, reverted, bundle = _gate_with_fallback(
        req, source, write, bundle, converted, val, fmt, echo
    )
    if not report["passed"]:
        raise AccuracyGateError(
            f"{req.to} on {req.backend} fails the gate: {'; '.join(report['failures'])} (bundle not written)"
        )
    record["gate"] = {**report, "reverted_to_fp32": reverted}
    write(graphs=converted)
    return report, "gated"
