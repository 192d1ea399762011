"""MobileNetV2 trunk for the edge variants (torchvision parameter names, no classifier).

Why MobileNetV2 for CPU / Jetson real time in INT8:
  * Only Conv2d + BatchNorm + ReLU6 + residual Add. BN folds into the convs, ReLU6 bounds every
    activation to [0, 6] (easy per-tensor INT8 activation calibration), and there is no
    hard-swish, squeeze-excitation, LayerNorm or attention (MobileNetV3, EdgeNeXt, TopFormer),
    which are the usual sources of INT8 accuracy loss and of unfused / fallback kernels.
  * Every op exports to ONNX opset 13+ and runs natively in ONNX Runtime (QDQ INT8), OpenVINO
    and TensorRT (depthwise convs included), so one graph serves all deployment targets.
  * ~0.3 GMACs at 224x224 (width 1.0): about 1.6 GMACs for the stride-32 trunk at 640x480,
    which leaves room for the neck and decoder inside the edge-s budget; a width multiplier
    gives the narrower trunk used by edge-xs.
  * Layer names follow torchvision's ``mobilenet_v2`` (``features.N...``), so ImageNet weights
    in that layout load without renaming (minus the final 1x1 conv and the classifier).

``forward`` returns [C2, C3, C4, C5] at strides 4/8/16/32 (24/32/96/320 channels at width 1).
"""

from __future__ import annotations

from torch import Tensor, nn

from .trunk import Trunk

__all__ = ["FusedInvertedResidual", "MobileNetV2", "mobilenet_v2"]

# (expand ratio t, output channels c, repeats n, first stride s), torchvision's table.
_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# Index into ``features`` after which C2..C5 are taken (strides 4, 8, 16, 32).
_TAPS = (3, 6, 13, 17)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn_relu6(
    cin: int, cout: int, *, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, *, in_channels: int, out_channels: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(in_channels, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return x + y if self.use_res_connect else y


class FusedInvertedResidual(nn.Module):
    """Fused-MBConv (EfficientNetV2, Tan & Le 2021): the 1x1 expansion and the 3x3 depthwise
    conv of an inverted residual replaced by one dense 3x3 conv, then the 1x1 projection.
    More multiply-accumulates, but dense convs run near a CPU's conv ceiling where
    high-resolution depthwise convs do not (``benchmarks/bench_trunk_designs.py``)."""

    def __init__(self, *, in_channels: int, out_channels: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            _conv_bn_relu6(in_channels, hidden, stride=stride),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return x + y if self.use_res_connect else y


class MobileNetV2(Trunk):
    """MobileNetV2 trunk. Input B x 3 x H x W (normalised); output [C2, C3, C4, C5].

    ``fused_stages``: the first N stages of ``_SETTINGS`` use ``FusedInvertedResidual``
    blocks (their parameters then no longer load from torchvision's layout), with their
    expansion ratio capped at ``fused_expand`` (EfficientNetV2 uses 1-4 in fused stages)."""

    def __init__(
        self,
        *,
        width: float = 1.0,
        frozen_bn: bool = False,
        fused_stages: int = 0,
        fused_expand: int = 6,
    ) -> None:
        super().__init__()
        if not 0 <= fused_stages <= len(_SETTINGS):
            raise ValueError(f"fused_stages must be in [0, {len(_SETTINGS)}], got {fused_stages}")
        self.frozen_bn = frozen_bn
        cin = _make_divisible(32 * width)
        layers: list[nn.Module] = [_conv_bn_relu6(3, cin, stride=2)]
        for stage, (t, c, n, s) in enumerate(_SETTINGS):
            cout = _make_divisible(c * width)
            fused = stage < fused_stages
            block = FusedInvertedResidual if fused else InvertedResidual
            expand = min(t, fused_expand) if fused else t
            for i in range(n):
                layers.append(
                    block(
                        in_channels=cin, out_channels=cout, stride=s if i == 0 else 1, expand=expand
                    )
                )
                cin = cout
        self.features = nn.Sequential(*layers)
        self.out_channels: tuple[int, ...] = tuple(
            _make_divisible(c * width) for c in (24, 32, 96, 320)
        )
        self.init_weights()

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: B x 3 x H x W -> [B x C2 x H/4 x W/4, ..., B x C5 x H/32 x W/32]."""
        outs = []
        start = 0
        for tap in _TAPS:
            for layer in self.features[start : tap + 1]:
                x = layer(x)
            outs.append(x)
            start = tap + 1
        return outs


def mobilenet_v2(
    *, frozen_bn: bool = False, width: float = 1.0, fused_stages: int = 0, fused_expand: int = 6
) -> MobileNetV2:
    return MobileNetV2(
        width=width, frozen_bn=frozen_bn, fused_stages=fused_stages, fused_expand=fused_expand
    )
