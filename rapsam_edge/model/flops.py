"""Parameter and FLOP counts per variant.

What is counted: multiply-accumulates of every convolution (incl. transposed and depthwise),
linear layer and matrix product (mask products, mask pooling, attention), as reported by
``torch.utils.flop_counter.FlopCounterMode`` (which counts FLOPs = 2 x MACs). Element-wise ops
(BN, activations, LayerNorm, softmax, sigmoid, normalisation, bilinear upsampling) are NOT
counted. The DCNv2 matmul is counted by the counter; its bilinear sampling is added as an
approximation of 5 MACs per sampled value (4 corner weights + modulation), i.e.
5 x C_in x 9 x H x W per deformable conv. Counting runs on the meta device (no memory, no
compute), batch 1.

``rapsam-edge variants`` prints the table for every variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .dcn import ModulatedDeformConv2d
from .variants import VARIANTS, build_model

__all__ = ["ModelCost", "cost_table", "count_cost", "variant_costs"]

DCN_SAMPLING_MACS = 5  # per sampled input value (bilinear 4 + modulation 1)


@dataclass(frozen=True)
class ModelCost:
    variant: str
    height: int
    width: int
    params: int  # trainable parameters (buffers such as class embeddings excluded)
    encoder_gmacs: float  # backbone + neck
    panoptic_gmacs: float  # decode_panoptic
    prompt_gmacs: float  # decode_prompts with one prompt

    @property
    def gmacs(self) -> float:
        """Encoder + panoptic decoder."""
        return self.encoder_gmacs + self.panoptic_gmacs

    @property
    def gflops(self) -> float:
        return 2.0 * self.gmacs


def _macs(fn, model: torch.nn.Module) -> float:
    extra = [0]

    def hook(_mod, args, _out):  # bilinear sampling of the deformable conv (approximation)
        x = args[0]
        extra[0] += DCN_SAMPLING_MACS * x.shape[0] * x.shape[1] * 9 * x.shape[2] * x.shape[3]

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, ModulatedDeformConv2d)
    ]
    try:
        with FlopCounterMode(display=False) as counter:
            out = fn()
    finally:
        for h in handles:
            h.remove()
    return (counter.get_total_flops() / 2 + extra[0]) / 1e9, out


def count_cost(variant: str, height: int, width: int, *, deform: bool | None = None) -> ModelCost:
    """Parameters and GMACs of ``variant`` at input ``height`` x ``width`` (multiples of 32)."""
    with torch.device("meta"):
        model = build_model(variant, deform=deform).eval().requires_grad_(False)
        images = torch.zeros(1, 3, height, width)
        boxes = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])
    # (Gradients are disabled per parameter: FlopCounterMode's module tracker trips on
    # parameter views made under torch.no_grad.)
    enc, feats = _macs(lambda: model.encode(images), model)
    pan, _ = _macs(lambda: model.decode_panoptic(feats), model)
    prm, _ = _macs(lambda: model.decode_prompts(feats, boxes), model)
    params = sum(p.numel() for p in model.parameters())
    return ModelCost(variant, height, width, params, enc, pan, prm)


def cost_table(rows: list[ModelCost]) -> str:
    """A Markdown table of ``rows``."""
    head = (
        "| variant | input HxW | params (M) | encoder GMACs | panoptic dec GMACs | "
        "prompt dec GMACs (P=1) | enc+pan GMACs | enc+pan GFLOPs |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r.variant} | {r.height}x{r.width} | {r.params / 1e6:.2f} | "
            f"{r.encoder_gmacs:.2f} | {r.panoptic_gmacs:.2f} | {r.prompt_gmacs:.3f} | "
            f"{r.gmacs:.2f} | {r.gflops:.2f} |"
        )
    return "\n".join(lines)


#: sizes counted for every variant when none are given, (H, W)
DEFAULT_SIZES = ((512, 512), (1024, 1024))
#: (variant, H, W) rows added to the default table: each variant at its own deployment size
DEPLOYMENT_SIZES = (("edge-s", 480, 640), ("rapsam-r50", 800, 1344))


def variant_costs(
    variants: list[str] | None = None, sizes: list[tuple[int, int]] | None = None
) -> list[ModelCost]:
    """Costs of ``variants`` (default: all) at ``sizes`` (default ``DEFAULT_SIZES``); with
    neither given, the ``DEPLOYMENT_SIZES`` rows too."""
    names = variants or list(VARIANTS)
    rows = [count_cost(name, h, w) for name in names for h, w in (sizes or DEFAULT_SIZES)]
    if not variants and not sizes:
        rows += [count_cost(name, h, w) for name, h, w in DEPLOYMENT_SIZES]
    return rows
