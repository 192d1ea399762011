"""The accuracy gate: a reduced-precision bundle against its FP32 source, on a validation set
in the ``rapsam-edge make-data`` layout (``coco/`` COCO-panoptic, optionally ``ytvis/``).

Measured (both bundles on the same backend, same images):

* against the ground truth, for both: PQ (PQ_th, PQ_st) and 1-click mIoU; the drops
  (FP32 - quantized, in points) are gated;
* against FP32, per image: the prompt mask of each ground-truth segment's first click (the
  same clicks into both), and each panoptic segment of FP32 paired with the quantized one
  (``eval.agreement.label_map_agreement``): their IoUs pooled, the median gated; the pixel
  agreement of the two label maps, the mean gated.

Which numbers mean something depends on the model: a model that names no thing class (the
shipped synthetic one: PQ_th 0 in FP32) can only show PQ changes on stuff, and its panoptic
segment IoUs cover stuff only; the prompt-mask IoUs cover every object. The report says so
(``notes``).

Network sides: by default both bundles run at the bundle's own size. ``input_sizes`` (``rapsam-edge
quantize --gate-sizes 320 640``) gates at each side (a bundle with dynamic H/W serves several):
one report per size under ``sizes``, the top-level numbers the worst over them (``WORST``), and
the bundle passes only if it passes at every size. A drop or IoU that cannot be measured (NaN)
fails its limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, RapsamEdgeError

__all__ = [
    "LIMITS",
    "MAX_GATE_SIZES",
    "AccuracyGateError",
    "GateLimits",
    "check_gate_sizes",
    "run_gate",
]

#: each gate limit: (option, lowest, highest valid value, what it bounds). Drops are in
#: points of a 0-100 score (PQ, mIoU), so a max drop lies in [0, 100] (a negative one would
#: ask the quantized model to beat FP32); IoU and agreement are fractions in [0, 1].
#: ``GateLimits`` refuses anything else; the options' --help shows these ranges.
LIMITS: dict[str, tuple[str, float, float, str]] = {
    "max_pq_drop": ("--max-pq-drop", 0.0, 100.0, "largest PQ drop vs FP32, in points"),
    "max_miou_drop": (
        "--max-miou-drop",
        0.0,
        100.0,
        "largest 1-click mIoU drop vs FP32, in points",
    ),
    "min_median_mask_iou": ("--min-mask-iou", 0.0, 1.0, "smallest median per-mask IoU vs FP32"),
    "min_label_agreement": (
        "--min-label-agreement",
        0.0,
        1.0,
        "smallest label-map agreement vs FP32",
    ),
}


class AccuracyGateError(RapsamEdgeError):
    """A quantized bundle lost more accuracy than the limits allow."""

    default_hint = "use --fallback (keep the worst graphs in higher precision), more calibration data, or looser limits"


@dataclass(frozen=True)
class GateLimits:
    """Pass conditions (the issue's targets): drops in points, IoU and agreement as fractions."""

    max_pq_drop: float = 1.0
    max_miou_drop: float = 1.0
    min_median_mask_iou: float = 0.95
    min_label_agreement: float = 0.98

    def __post_init__(self) -> None:
        """Raises ConfigError: a limit that is not a finite number in its ``LIMITS`` range
        (no gate could be passed, or failed, as asked)."""
        for name, (flag, low, high, what) in LIMITS.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and low <= value <= high):
                raise ConfigError(
                    f"gate limit {name} ({flag}, {what}) must be a number in "
                    f"[{low:g}, {high:g}], got {value!r}",
                    hint=f"give {flag} a value in [{low:g}, {high:g}] (see --help)",
                )


def _metrics(seg, root: Path, split: str, max_images: int) -> dict[str, Any]:
    from ...eval.harness import evaluate_panoptic_and_prompts

    return evaluate_panoptic_and_prompts(seg, root / "coco", split, max_images=max_images)


def _agreement(fp32, quant, root: Path, split: str, max_images: int) -> dict[str, Any]:
    from ...data.coco_panoptic import CocoPanopticDataset
    from ...eval.agreement import label_map_agreement, mask_ious
    from ...eval.prompt_iou import first_clicks

    data = CocoPanopticDataset(root / "coco", split)
    prompt_ious: list[float] = []
    segment_ious: list[float] = []
    pixel_agreement: list[float] = []
    for i in range(min(len(data), max_images)):
        sample = data[i]
        a, b = fp32.panoptic(sample.image), quant.panoptic(sample.image)
        classes_a = dict(zip(a.segments["id"].tolist(), a.segments["class"].tolist()))
        classes_b = dict(zip(b.segments["id"].tolist(), b.segments["class"].tolist()))
        agree = label_map_agreement(a.panoptic_map, b.panoptic_map, 0, classes_a, classes_b)
        pixel_agreement.append(agree["pixel_agreement"])
        paired = {pa: iou for pa, _, iou in agree["pairs"]}
        segment_ious += [paired.get(int(sid), 0.0) for sid in a.segments["id"]]
        targets = [s for s in sample.segments if not s.iscrowd]
        if targets:
            gt = sample.ids[None] == np.array([s.id for s in targets])[:, None, None]
            points = first_clicks(gt).astype(np.float64) + 0.5
            points = points[(points >= 0).all(1)]
            if len(points):
                pa = fp32.prompt(fp32.set_image(sample.image), points=points)
                pb = quant.prompt(quant.set_image(sample.image), points=points)
                prompt_ious += mask_ious(pa.masks, pb.masks).tolist()
    ious = prompt_ious + segment_ious
    return {
        "mask_iou_median": float(np.median(ious)) if ious else float("nan"),
        "mask_iou_p10": float(np.percentile(ious, 10)) if ious else float("nan"),
        "prompt_mask_iou_median": float(np.median(prompt_ious)) if prompt_ious else float("nan"),
        "segment_iou_median": float(np.median(segment_ious)) if segment_ious else float("nan"),
        "num_masks": len(ious),
        "label_agreement": float(np.mean(pixel_agreement)) if pixel_agreement else float("nan"),
    }


#: most network sides one gate run measures (each size is a full FP32 + quantized evaluation)
MAX_GATE_SIZES = 4
#: the pad divisor every network side is a multiple of (the models' coarsest stride)
SIZE_MULTIPLE = 32
#: report numbers and which way is worse: "max" (a drop) or "min" (an IoU or agreement)
WORST: dict[str, str] = {
    "pq_drop": "max",
    "miou_drop": "max",
    "mask_iou_median": "min",
    "mask_iou_p10": "min",
    "prompt_mask_iou_median": "min",
    "segment_iou_median": "min",
    "label_agreement": "min",
}


def check_gate_sizes(sizes: Any, flag: str = "--gate-sizes") -> tuple[int, ...] | None:
    """``sizes`` (None, or an iterable of network sides) checked -> a tuple of ints, or None.

    Raises:
      ConfigError: naming ``flag``: not an iterable of integers, empty, more than
      ``MAX_GATE_SIZES``, a duplicate, or a side that is not a multiple of ``SIZE_MULTIPLE``
      in ``apps.checks`` SIDE_MIN..min(SIDE_MAX, the runtime's ``MAX_INPUT_SIZE``).
    """
    import itertools
    import numbers

    from ...apps.checks import SIDE_MAX, SIDE_MIN
    from ...runtime.options import MAX_INPUT_SIZE

    if sizes is None:
        return None
    high = min(SIDE_MAX, MAX_INPUT_SIZE)
    hint = (
        f"give {flag} 1 to {MAX_GATE_SIZES} distinct network sides, multiples of "
        f"{SIZE_MULTIPLE} in {SIDE_MIN}..{high} (e.g. 320 640)"
    )
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ConfigError(f"{flag} must be a list of network sides, got {sizes!r}", hint=hint)
    # never more than one past the cap is read (an endless iterator is refused, not hung on)
    out = tuple(itertools.islice(iter(sizes), MAX_GATE_SIZES + 1))
    if not 1 <= len(out) <= MAX_GATE_SIZES:
        many = f"more than {MAX_GATE_SIZES}" if out else "0"
        raise ConfigError(f"{flag}: {many} sizes; 1 to {MAX_GATE_SIZES} are allowed", hint=hint)
    for size in out:
        if (
            isinstance(size, bool)
            or not isinstance(size, numbers.Integral)
            or not SIDE_MIN <= size <= high
            or size % SIZE_MULTIPLE
        ):
            raise ConfigError(
                f"{flag}: {size!r} is not a multiple of {SIZE_MULTIPLE} in {SIDE_MIN}..{high}",
                hint=hint,
            )
    if len(set(out)) != len(out):
        raise ConfigError(f"{flag}: {list(out)} names a size twice", hint=hint)
    return tuple(int(size) for size in out)


def _failures(report: dict[str, Any], limits: GateLimits) -> list[str]:
    failures = []
    if not report["pq_drop"] <= limits.max_pq_drop:
        failures.append(f"PQ drop {report['pq_drop']:.2f} > {limits.max_pq_drop}")
    if not report["miou_drop"] <= limits.max_miou_drop:
        failures.append(f"1-click mIoU drop {report['miou_drop']:.2f} > {limits.max_miou_drop}")
    if not report["mask_iou_median"] >= limits.min_median_mask_iou:
        failures.append(
            f"median mask IoU vs FP32 {report['mask_iou_median']:.3f} < {limits.min_median_mask_iou}"
        )
    if not report["label_agreement"] >= limits.min_label_agreement:
        failures.append(
            f"label agreement {report['label_agreement']:.4f} < {limits.min_label_agreement}"
        )
    return failures


def _gate_at(
    fp32_bundle: Any,
    quant_bundle: Any,
    root: Path,
    backend: str,
    limits: GateLimits,
    split: str,
    max_images: int,
    backend_options: dict[str, Any] | None,
    input_size: int | None,
) -> dict[str, Any]:
    """One gate run, both Segmenters at ``input_size`` (None: the bundle's own)."""
    from ...runtime.segmenter import Segmenter

    fp32 = Segmenter(fp32_bundle, backend, input_size=input_size)
    try:
        quant = Segmenter(
            quant_bundle, backend, backend_options=backend_options, input_size=input_size
        )
    except BaseException:
        fp32.close()
        raise
    try:
        keys = ("pq", "pq_th", "pq_st", "miou")
        m32 = _metrics(fp32, root, split, max_images)
        mq = _metrics(quant, root, split, max_images)
        report: dict[str, Any] = {
            "backend": backend,
            "input_size": quant.input_size,
            "images": min(max_images, m32.get("num_images", max_images)),
            "limits": asdict(limits),
            "fp32": {k: m32.get(k) for k in keys},
            "quantized": {k: mq.get(k) for k in keys},
            "pq_drop": m32["pq"] - mq["pq"],
            "miou_drop": m32["miou"] - mq["miou"],
            **_agreement(fp32, quant, root, split, max_images),
        }
    finally:
        fp32.close()
        quant.close()
    notes = []
    if (m32.get("pq_th") or 0.0) < 1.0:
        notes.append(
            "the FP32 model names no thing class (PQ_th < 1): PQ and segment IoUs cover stuff; "
            "the prompt-mask IoUs cover every object"
        )
    report["notes"] = notes
    report["failures"] = _failures(report, limits)
    report["passed"] = not report["failures"]
    return report


def _worst_of(per_size: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per-size reports -> one report: each ``WORST`` number the worst over sizes (NaN, which
    fails every limit, counts as worst), ``worst_size`` naming the size each came from;
    ``fp32`` / ``quantized`` from the size of the largest PQ drop; failures prefixed with
    their size; passed only if every size passed."""

    def badness(key: str, value: float) -> float:
        if value is None or math.isnan(value):
            return math.inf
        return value if WORST[key] == "max" else -value

    first = next(iter(per_size.values()))
    worst_size = {key: max(per_size, key=lambda s: badness(key, per_size[s][key])) for key in WORST}
    at_pq = per_size[worst_size["pq_drop"]]
    notes: list[str] = []
    for r in per_size.values():
        notes += [n for n in r["notes"] if n not in notes]
    failures = [f"at {s}: {f}" for s, r in per_size.items() for f in r["failures"]]
    return {
        "backend": first["backend"],
        "images": first["images"],
        "limits": first["limits"],
        "input_sizes": list(per_size),
        "fp32": at_pq["fp32"],
        "quantized": at_pq["quantized"],
        **{key: per_size[worst_size[key]][key] for key in WORST},
        "num_masks": sum(r["num_masks"] for r in per_size.values()),
        "worst_size": worst_size,
        "notes": notes,
        "failures": failures,
        "passed": all(r["passed"] for r in per_size.values()),
        "sizes": {str(s): r for s, r in per_size.items()},
    }


def run_gate(
    fp32_bundle: Any,
    quant_bundle: Any,
    data_root: str | Path,
    *,
    backend: str,
    limits: GateLimits = GateLimits(),
    split: str = "val",
    max_images: int = 50,
    backend_options: dict[str, Any] | None = None,
    input_sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Evaluate ``quant_bundle`` against ``fp32_bundle`` on ``backend``.

    Arguments:
      fp32_bundle, quant_bundle: ``Bundle``s (or paths / names).
      data_root: a make-data style root with ``coco/`` (annotations/panoptic_{split}.json).
      backend: the backend both run on (the quantized graphs' target).
      limits: pass conditions.
      backend_options: for the quantized bundle's backend (e.g. {"precision": "bf16"}).
      input_sizes: network sides to gate at, both bundles run at each (``check_gate_sizes``:
        1 to ``MAX_GATE_SIZES`` distinct multiples of 32); None: the bundle's own size only.
    Returns:
      {"passed", "failures": [...], "limits", "fp32": {pq, pq_th, pq_st, miou}, "quantized":
      {...}, "pq_drop", "miou_drop", "mask_iou_median", "label_agreement", ..., "notes",
      "input_size"}. With ``input_sizes``: the same keys, each number the worst over the sizes
      (largest drop, smallest IoU / agreement; ``worst_size`` says where each came from;
      ``fp32`` / ``quantized`` are those of the size with the largest PQ drop; ``num_masks``
      the total), ``failures`` prefixed "at SIZE: ", ``passed`` only if every size passed,
      ``input_sizes`` and ``sizes``: {"320": that size's report, ...} (no ``input_size``).

    Raises:
      ConfigError: ``input_sizes`` invalid (before any model is loaded).
    """
    sizes = check_gate_sizes(input_sizes, "input_sizes")
    root = Path(data_root)
    args = (fp32_bundle, quant_bundle, root, backend, limits, split, max_images, backend_options)
    if sizes is None:
        return _gate_at(*args, None)
    return _worst_of({size: _gate_at(*args, size) for size in sizes})
