"""The variants table (the only place where model shapes are defined) and ``build_model``.

* ``rapsam-r50``: the official RAP-SAM shape (ResNet-50, D=256, 100 queries, 3 stages,
  stride-4 features, deformable neck, cosine class head against 155 x 768 CLIP embeddings).
* ``rapsam-r18``: the same neck rule (widths = backbone channels / 2) and head on ResNet-18.
* ``edge-s``: Jetson / CPU real-time variant: MobileNetV2 trunk, neck on C3..C5 (stride-8
  features), D=128, 50 queries, linear class head; 2.58 GMACs = 5.15 GFLOPs for encoder +
  panoptic decoder at 640x480 (encoder 2.24, panoptic decoder 0.34 GMACs; see ``flops.py``).
  Deploy form by default (``deform=False``: plain 3x3 conv in the neck).
* ``edge-s-fused``: the real-time variant (issue 14): edge-s with its first four trunk stages
  (stride 2-16) as Fused-MBConv blocks (one dense 3x3 conv + 1x1 projection, expansion capped
  at 2) instead of 1x1 expansion + high-resolution depthwise 3x3. 6.05 vs 4.48 GOP for the
  encoder at 640x480, yet faster in INT8 on CPU (10.8 vs 11.3 ms, 71-77 % vs 51-55 % of the
  INT8 conv ceiling, ``benchmarks/results/trunk_designs.md``). Stages 5-7, neck and decoders
  have edge-s's shapes, so a trained edge-s hands them over (``rapsam-edge pretrain --teacher``).
* ``edge-xs``: tiny variant for tests and fast CPU training (MobileNetV2 x0.5, D=64,
  32 queries, stride 8).
The edge variants add matched Fourier position features to F and to the prompt queries
(``fourier.py``); the reference variants keep the reference layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import nn

from .mask_decoder import MaskDecoder
from .mobilenet import mobilenet_v2
from .neck import LiteDeformFPN
from .prompt_encoder import PromptEncoder
from .rapsam import RapSam
from .resnet import resnet18, resnet34, resnet50

__all__ = ["BACKBONES", "VARIANTS", "Variant", "build_model"]

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
}


@dataclass(frozen=True)
class Variant:
    backbone: str  # key of BACKBONES
    backbone_width: float  # width multiplier (mobile trunks only)
    frozen_bn: bool  # backbone BN statistics frozen in training
    levels: tuple[int, ...]  # backbone levels fed to the neck, finest first (2..5)
    neck_widths: tuple[int, ...]  # top-down width per level, finest first
    agg_dim: int  # neck fusion width
    dim: int  # D: query and feature width
    num_queries: int  # N
    num_stages: int
    num_heads: int
    ffn_dim: int
    class_head: str  # "cosine" (reference) or "linear"
    num_classes: int  # default C (without no-object)
    class_embed_dim: int  # E for the cosine head
    deform: bool  # DCNv2 in the neck by default
    input_size: int  # default long side of the network input
    pad_divisor: int = 32
    fourier_cycles: tuple[float, ...] = ()  # matched Fourier position features (fourier.py)
    fused_stages: int = 0  # first N MobileNetV2 stages as Fused-MBConv (mobile trunks only)
    fused_expand: int = 6  # expansion cap of those fused stages

    def trunk_kwargs(self) -> dict:
        """Keyword arguments of ``BACKBONES[self.backbone]`` (the trunk builder)."""
        kwargs: dict = {"frozen_bn": self.frozen_bn, "width": self.backbone_width}
        if self.fused_stages:
            kwargs.update(fused_stages=self.fused_stages, fused_expand=self.fused_expand)
        return kwargs

    @property
    def feat_stride(self) -> int:
        return 2 ** self.levels[0]


# Cycles per padded input of the edge variants' Fourier position features: from a half wave
# (global position) to 16 cycles (a few feature cells at stride 8 and 320 px).
EDGE_FOURIER_CYCLES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

#: edge-s, also the base of edge-s-fused (which must keep its neck and decoder shapes)
_EDGE_S = Variant(
    backbone="mobilenet_v2",
    backbone_width=1.0,
    frozen_bn=False,
    levels=(3, 4, 5),
    neck_widths=(64, 96, 160),
    agg_dim=64,
    dim=128,
    num_queries=50,
    num_stages=3,
    num_heads=4,
    ffn_dim=512,
    class_head="linear",
    num_classes=12,
    class_embed_dim=0,
    deform=False,
    input_size=640,
    fourier_cycles=EDGE_FOURIER_CYCLES,
)

VARIANTS: dict[str, Variant] = {
    "rapsam-r50": Variant(
        backbone="resnet50",
        backbone_width=1.0,
        frozen_bn=True,
        levels=(2, 3, 4, 5),
        neck_widths=(128, 256, 512, 1024),
        agg_dim=128,
        dim=256,
        num_queries=100,
        num_stages=3,
        num_heads=8,
        ffn_dim=2048,
        class_head="cosine",
        num_classes=155,
        class_embed_dim=768,
        deform=True,
        input_size=1344,
    ),
    "rapsam-r18": Variant(
        backbone="resnet18",
        backbone_width=1.0,
        frozen_bn=True,
        levels=(2, 3, 4, 5),
        neck_widths=(32, 64, 128, 256),
        agg_dim=128,
        dim=256,
        num_queries=100,
        num_stages=3,
        num_heads=8,
        ffn_dim=2048,
        class_head="cosine",
        num_classes=155,
        class_embed_dim=768,
        deform=True,
        input_size=1344,
    ),
    "edge-s": _EDGE_S,
    # edge-s with Fused-MBConv stages 1-4: every non-trunk tensor keeps edge-s's shape
    "edge-s-fused": replace(_EDGE_S, fused_stages=4, fused_expand=2),
    "edge-xs": Variant(
        backbone="mobilenet_v2",
        backbone_width=0.5,
        frozen_bn=False,
        levels=(3, 4, 5),
        neck_widths=(32, 64, 96),
        agg_dim=48,
        dim=64,
        num_queries=32,
        num_stages=3,
        num_heads=4,
        ffn_dim=256,
        class_head="linear",
        num_classes=12,
        class_embed_dim=0,
        deform=False,
        input_size=320,
        fourier_cycles=EDGE_FOURIER_CYCLES,
    ),
}


def build_model(
    variant_name: str,
    *,
    num_classes: int | None = None,
    deform: bool | None = None,
    class_prototypes: int = 1,
) -> RapSam:
    """Build a variant from the table. ``None`` = the variant's default.

    ``class_prototypes``: embeddings per class for the cosine head (reference: max over
    synonyms); ignored by linear heads.
    """
    if variant_name not in VARIANTS:
        raise KeyError(f"unknown variant {variant_name!r}; known: {sorted(VARIANTS)}")
    v = VARIANTS[variant_name]
    num_classes = v.num_classes if num_classes is None else num_classes
    deform = v.deform if deform is None else deform
    backbone = BACKBONES[v.backbone](**v.trunk_kwargs())
    in_channels = [backbone.out_channels[lvl - 2] for lvl in v.levels]
    neck = LiteDeformFPN(
        in_channels=in_channels,
        widths=v.neck_widths,
        levels=v.levels,
        agg_dim=v.agg_dim,
        out_dim=v.dim,
        deform=deform,
        fourier_cycles=v.fourier_cycles,
    )
    decoder = MaskDecoder(
        dim=v.dim,
        num_queries=v.num_queries,
        num_stages=v.num_stages,
        num_heads=v.num_heads,
        ffn_dim=v.ffn_dim,
        class_head=v.class_head,
        num_classes=num_classes,
        class_embed_dim=v.class_embed_dim,
        class_prototypes=class_prototypes,
    )
    model = RapSam(
        backbone=backbone,
        neck=neck,
        decoder=decoder,
        prompt_encoder=PromptEncoder(dim=v.dim, fourier_cycles=v.fourier_cycles),
        backbone_levels=v.levels,
        pad_divisor=v.pad_divisor,
        input_size=v.input_size,
    )
    # What ``save_model`` writes to config.json to rebuild this model.
    model.config = {
        "variant": variant_name,
        "num_classes": num_classes,
        "deform": deform,
        "class_prototypes": class_prototypes,
    }
    return model
