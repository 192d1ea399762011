"""Quantization-aware distillation: a graph's fake-quantized copy fine-tuned against the FP32
model as teacher, then exported as an INT8 graph (``rapsam-edge quantize --qat``).

Why NNCF's torch QAT (and not ``torch.ao``): the post-training path already quantizes with
NNCF 3.4 (``backends/openvino/int8.py``), so QAT places the same quantizers with the same rules
(8-bit, per-channel symmetric weights, per-tensor activations, ``preset="performance"``, CPU
target) and PTQ and QAT differ only in training: the gate compares like with like. NNCF's
quantizers export to ONNX as ``org.openvinotoolkit::FakeQuantize``, which OpenVINO reads as its
own INT8 form; for ONNX Runtime the same nodes become ``QuantizeLinear`` / ``DequantizeLinear``
pairs (``backends/onnxruntime/qdq.py``, exact where the ranges hold 0 on a step, as NNCF's do).
``torch.ao.quantization`` is deprecated in torch 2.13 in favour of ``torchao`` (not installed
here), and NNCF's own ``strip`` needs ``torchao`` too.

The method, per graph (each graph alone; the others stay FP32 while it trains):
  1. inputs: calibration frames letterboxed at a side drawn from ``sides`` (320..640 by
     default, the sizes the bundle serves), the FP32 encoder's features for the decoders and
     random clicks and boxes for the prompt decoder (as ``calibration.graph_feeds``);
  2. ``nncf.quantize`` inserts quantizers and sets their ranges from the first ``calib``
     inputs (bias correction off: the fine-tuning takes its place);
  3. Adam on the weights and the quantizer ranges for ``steps`` batches, the loss measuring the
     student against the FP32 teacher on the same inputs: class KL at temperature ``T`` and
     soft-target BCE of the mask logits (panoptic decoder) plus the relative error of the
     query embeddings the tracker matches on; soft BCE of the prompt masks plus the IoU
     head's error (prompt decoder); the relative error of the features (encoder);
  4. export to ONNX with the contract's names and dynamic axes.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...contract.graphs import ENCODER, PANOPTIC_DECODER, PROMPT_DECODER
from ...errors import ConfigError
from .qat_settings import QatSettings

__all__ = ["QatSettings", "qat_convert", "qat_graph", "qat_onnx", "write_qat_graph"]

log = logging.getLogger(__name__)


def _letterbox(frame: np.ndarray, side: int) -> np.ndarray:
    """side x side x 3 uint8: the frame scaled so its long side is ``side``, placed top-left
    on black (the runtime's placement), without the runtime's pad-to-32 (a square batch)."""
    import cv2

    h, w = frame.shape[:2]
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.zeros((side, side, 3), np.uint8)
    out[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=interp)
    return out


def _prompts(batch: int, side: int, rng: np.random.Generator) -> Tensor:
    """batch x 8 x 4 boxes: 6 clicks (as the runtime feeds points) and 2 boxes."""
    from ...contract.postprocess import POINT_BOX_HALF

    pts = rng.uniform(0.05 * side, 0.95 * side, size=(batch, 6, 2))
    clicks = np.concatenate([pts - POINT_BOX_HALF, pts + POINT_BOX_HALF], -1)
    xy = rng.uniform(0, 0.6 * side, size=(batch, 2, 2))
    wh = rng.uniform(0.1 * side, 0.4 * side, size=(batch, 2, 2))
    boxes = np.concatenate([xy, xy + wh], -1)
    return torch.from_numpy(np.concatenate([clicks, boxes], 1).astype(np.float32))


class _Inputs:
    """Batches of a graph's inputs from the frames: ``draw(n)`` -> a tuple of tensors."""

    def __init__(self, teacher: Any, graph: str, frames: Sequence[np.ndarray], s: QatSettings):
        self.teacher, self.graph, self.frames, self.s = teacher, graph, frames, s
        self.rng = np.random.default_rng(s.seed)

    @torch.no_grad()
    def draw(self, n: int, side: int | None = None) -> tuple[Tensor, ...]:
        side = side or int(self.rng.choice(self.s.sides))
        picks = self.rng.integers(0, len(self.frames), size=n)
        image = torch.from_numpy(np.stack([_letterbox(self.frames[i], side) for i in picks]))
        if self.graph == ENCODER:
            return (image,)
        feats = self.teacher.encode(image.to(torch.float32).permute(0, 3, 1, 2))
        if self.graph == PANOPTIC_DECODER:
            return (feats,)
        return feats, _prompts(n, side, self.rng)


def _rel(student: Tensor, teacher: Tensor) -> Tensor:
    return (student - teacher).pow(2).mean() / teacher.pow(2).mean().clamp_min(1e-8)


def _soft_bce(student: Tensor, teacher: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(student, torch.sigmoid(teacher))


#: weight of the class KL against the mask and embedding terms: the panoptic map keeps a
#: query when its class probability passes 0.8, so a probability error of a few hundredths
#: flips segments while the mask terms barely move (measured on edge-s-fused: with weight 1
#: the class error of the confident queries did not fall in training)
CLASS_WEIGHT = 20.0


def distill_loss(graph: str, student: Sequence[Tensor], teacher: Sequence[Tensor], T: float):
    """The student's distance to the FP32 teacher on one batch (outputs in role order)."""
    if graph == ENCODER:
        return _rel(student[0], teacher[0])
    if graph == PANOPTIC_DECODER:
        s_cls, s_mask, s_q = student
        t_cls, t_mask, t_q = teacher
        kl = (
            F.kl_div(
                F.log_softmax(s_cls / T, -1),
                F.log_softmax(t_cls / T, -1),
                log_target=True,
                reduction="batchmean",
            )
            * (T * T)
            / s_cls.shape[1]
        )
        return CLASS_WEIGHT * kl + _soft_bce(s_mask, t_mask) + _rel(s_q, t_q)
    s_mask, s_iou = student
    t_mask, t_iou = teacher
    return _soft_bce(s_mask, t_mask) + F.mse_loss(s_iou, t_iou)


#: operations of the prompt decoder left unquantized (NNCF's torch names): the prompt boxes in
#: pixels, the padded input size computed from the feature map and the boxes normalised by it
#: (8 bits over 0..640 pixels would move a click by 2.5 pixels, and a quantizer on the size's
#: 0-d scalars turns them into 1-element vectors, breaking the division's broadcast)
PROMPT_GEOMETRY_OPS = ("boxes", "/new_full/0", "/new_full/1", "/mul/0", "/div/0", "/div/1")


class _TorchQuantizeFunctions:
    """Stands in for NNCF's compiled CPU quantize extension: its pure-torch reference kernels.
    NNCF otherwise compiles a C++ extension at the first training step (a compiler, ninja and
    a minute on a 2-core machine; a compile killed half-way leaves a lock file that makes the
    next load wait for its timeout). The decoders are small enough for the torch kernels."""

    @staticmethod
    def get(name: str) -> Any:
        from nncf.torch.quantization.reference import ReferenceQuantizedFunctions

        return getattr(ReferenceQuantizedFunctions, name)


def _use_torch_quantize_functions() -> None:
    from nncf.torch.quantization import quantize_functions

    if hasattr(quantize_functions, "QuantizedFunctionsCPU"):
        quantize_functions.QuantizedFunctionsCPU = _TorchQuantizeFunctions  # type: ignore[assignment]


def _quantize(
    wrapper: torch.nn.Module, graph: str, calib: list[tuple[Tensor, ...]]
) -> torch.nn.Module:
    import nncf

    _use_torch_quantize_functions()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    ignored = PROMPT_GEOMETRY_OPS if graph == PROMPT_DECODER else ()
    return nncf.quantize(
        wrapper,
        nncf.Dataset(calib),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(calib),
        ignored_scope=nncf.IgnoredScope(names=list(ignored), validate=False),
        # NNCF's torch bias correction cannot read our fused biases; the training replaces it
        advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
    )


def qat_graph(
    model: Any,
    graph: str,
    frames: Sequence[np.ndarray],
    settings: QatSettings | None = None,
    *,
    progress: bool = True,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Quantization-aware distillation of one graph.

    Arguments:
      model: the FP32 ``RapSam`` (eval mode; not modified: the student is a copy).
      graph: a graph name of ``contract.GRAPH_NAMES``.
      frames: H x W x 3 uint8 RGB frames (calibration images).
    Returns:
      (the fake-quantized export wrapper, in eval mode; a record: settings, quantizer count,
      mean loss over the first and the last tenth of the steps, seconds).
    """
    from tqdm import tqdm

    from ..graphs import make_graph

    if graph not in (ENCODER, PANOPTIC_DECODER, PROMPT_DECODER):
        raise ConfigError(f"unknown graph {graph!r}")
    if not frames:
        raise ConfigError("QAT needs at least one calibration frame")
    settings = settings or QatSettings()
    t0 = time.perf_counter()
    teacher = make_graph(model.eval(), graph)
    student = make_graph(copy.deepcopy(model).eval(), graph)
    inputs = _Inputs(model, graph, frames, settings)
    sides = list(settings.sides)
    calib = [inputs.draw(1, sides[i % len(sides)]) for i in range(settings.calib)]
    student = _quantize(student, graph, calib).eval()  # eval: BatchNorm statistics stay frozen
    kept = _keep_sensitive_fp32(student, teacher, graph, calib, settings)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=settings.lr)
    losses: list[float] = []
    bar = tqdm(range(settings.steps), desc=f"QAT {graph}", disable=not progress, unit="step")
    for _ in bar:
        batch = inputs.draw(settings.batch_size)
        with torch.no_grad():
            target = teacher(*batch)
        loss = distill_loss(
            graph, _as_tuple(student(*batch)), _as_tuple(target), settings.temperature
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"QAT loss of {graph} is {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    tenth = max(1, len(losses) // 10)
    record = {
        "tool": f"nncf {_nncf_version()} quantization-aware distillation (torch)",
        "settings": {**asdict(settings), "sides": list(settings.sides)},
        "frames": len(frames),
        "quantizers": len(_quantizers(student)),
        "fp32_quantizers": kept,
        "loss_first": float(np.mean(losses[:tenth])),
        "loss_last": float(np.mean(losses[-tenth:])),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return student.eval(), record


def _quantizers(student: torch.nn.Module) -> list[tuple[str, Any]]:
    """(name, module) of every quantizer NNCF inserted (its hook storage's leaf modules)."""
    from nncf.torch.function_hook import get_hook_storage

    return [
        (name, mod)
        for name, mod in get_hook_storage(student).named_modules()
        if hasattr(mod, "disable_quantization")
    ]


@torch.no_grad()
def _keep_sensitive_fp32(
    student: torch.nn.Module, teacher: torch.nn.Module, graph: str, calib, settings: QatSettings
) -> list[str]:
    """Rank the quantizers by the distillation loss each one causes alone on the calibration
    inputs and switch off the ``settings.fp32_quantizers`` worst: those tensors stay FP32 in
    the exported graph (no FakeQuantize is traced for a disabled quantizer)."""
    quantizers = _quantizers(student)
    if len(quantizers) <= settings.fp32_quantizers:
        # nothing left to quantize: the "INT8" graph would be the FP32 one, gated as INT8
        raise ConfigError(
            f"QAT of {graph}: --qat-fp32-quantizers {settings.fp32_quantizers} leaves none of "
            f"its {len(quantizers)} quantizers on",
            hint=f"pass --qat-fp32-quantizers below {len(quantizers)} (0: keep all)",
        )
    if settings.fp32_quantizers <= 0:
        return []
    targets = [_as_tuple(teacher(*b)) for b in calib]

    def loss() -> float:
        return sum(
            float(distill_loss(graph, _as_tuple(student(*b)), t, settings.temperature))
            for b, t in zip(calib, targets)
        )

    for _, mod in quantizers:
        mod.disable_quantization()
    floor = loss()
    alone = []
    for name, mod in quantizers:
        mod.enable_quantization()
        alone.append((loss() - floor, name))
        mod.disable_quantization()
    worst = {name for _, name in sorted(alone, reverse=True)[: settings.fp32_quantizers]}
    for name, mod in quantizers:
        if name not in worst:
            mod.enable_quantization()
    return sorted(worst)


def _as_tuple(out: Any) -> tuple[Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _nncf_version() -> str:
    import nncf

    return str(nncf.__version__)


def qat_onnx(model: Any, graph: str, student: torch.nn.Module, example: tuple[Tensor, ...]):
    """The fake-quantized ``student`` as an ONNX ``ModelProto``: the contract's names and
    dynamic axes, ``org.openvinotoolkit::FakeQuantize`` nodes for the quantizers."""
    from ..onnx_export import pin_io_shapes, trace_wrapper

    proto = trace_wrapper(student, graph, example)
    pin_io_shapes(proto, model, graph)
    return proto


def count_fake_quantize(proto: Any) -> int:
    return sum(1 for n in proto.graph.node if n.op_type == "FakeQuantize")


def write_qat_graph(proto: Any, fmt: str, dst: Path, tmp: Path) -> dict[str, Any]:
    """Write the fake-quantized graph ``proto`` as ``dst`` in ``fmt``: an OpenVINO IR (the
    FakeQuantize nodes as OpenVINO's own, weights stored as int8 constants) or a QDQ ONNX
    file for ONNX Runtime. Returns what was written (node counts)."""
    import onnx

    fq = count_fake_quantize(proto)
    if fq == 0:
        raise ConfigError(
            f"the QAT graph {dst.name} has no FakeQuantize node: it would ship FP32 as INT8",
            hint="pass a lower --qat-fp32-quantizers, or leave the graph out of --qat",
        )
    if fmt == "openvino":
        import openvino as ov
        from openvino._offline_transformations import compress_quantize_weights_transformation

        src = tmp / f"{dst.stem}.fq.onnx"
        onnx.save(proto, str(src))
        ov_model = ov.convert_model(str(src))
        compress_quantize_weights_transformation(ov_model)
        ov.save_model(ov_model, str(dst), compress_to_fp16=False)
        kept = sum(1 for op in ov_model.get_ops() if op.get_type_name() == "FakeQuantize")
        return {"fake_quantize": fq, "ir_fake_quantize": kept}
    from ..backends.onnxruntime.qdq import fake_quantize_to_qdq

    qdq = fake_quantize_to_qdq(proto)
    onnx.checker.check_model(qdq)
    onnx.save(qdq, str(dst))
    pairs = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    return {"fake_quantize": fq, "qdq_pairs": pairs}


def qat_convert(
    model: Any,
    graphs: Sequence[str],
    frames: Sequence[np.ndarray],
    settings: QatSettings,
    *,
    fmt: str,
    names: dict[str, str],
    stage: Path,
    echo: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """QAT of each of ``graphs`` and its INT8 file ``stage / names[graph]`` in ``fmt``;
    returns each graph's record (what ``convert_graph`` returns for post-training INT8)."""
    import tempfile

    records: dict[str, dict[str, Any]] = {}
    for graph in graphs:
        student, record = qat_graph(model, graph, frames, settings)
        example = _Inputs(model, graph, frames, settings).draw(1, settings.sides[0])
        proto = qat_onnx(model, graph, student, example)
        with tempfile.TemporaryDirectory(prefix="rapsam-qat-") as tmp:
            record.update(write_qat_graph(proto, fmt, stage / names[graph], Path(tmp)))
        echo(
            f"QAT {graph}: loss {record['loss_first']:.4f} -> {record['loss_last']:.4f} "
            f"in {settings.steps} steps ({record['seconds']:.0f} s)"
        )
        records[graph] = record
    return records
