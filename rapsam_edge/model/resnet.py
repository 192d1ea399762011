"""ResNet-18/34/50 backbones with torchvision parameter names (no ``fc``).

``forward`` returns the four stage outputs C2..C5 at strides 4/8/16/32. ``frozen_bn=True``
keeps every BatchNorm in eval mode (running statistics frozen, affine parameters still
trainable), which is what the reference (mmdet ``norm_eval=True``) does.
"""

from __future__ import annotations

from torch import Tensor, nn

from .trunk import Trunk

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50"]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, *, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            _downsample(in_channels, out, stride) if stride != 1 or in_channels != out else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + identity)


class Bottleneck(nn.Module):
    """torchvision ResNet v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, *, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            _downsample(in_channels, out, stride) if stride != 1 or in_channels != out else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


_SPECS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(Trunk):
    """ResNet trunk. Input B x 3 x H x W (normalised); output [C2, C3, C4, C5]."""

    def __init__(self, *, depth: int, frozen_bn: bool = False) -> None:
        super().__init__()
        block, layers = _SPECS[depth]
        self.frozen_bn = frozen_bn
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        channels = []
        for i, n in enumerate(layers):
            width = 64 * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (j == 0 and i > 0) else 1
                blocks.append(block(in_channels=cin, channels=width, stride=stride))
                cin = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            channels.append(cin)
        self.out_channels: tuple[int, ...] = tuple(channels)
        self.init_weights()

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: B x 3 x H x W -> [B x C2 x H/4 x W/4, ..., B x C5 x H/32 x W/32]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


def resnet18(*, frozen_bn: bool = False, width: float = 1.0) -> ResNet:
    del width  # ResNets have no width multiplier; accepted for a uniform builder signature.
    return ResNet(depth=18, frozen_bn=frozen_bn)


def resnet34(*, frozen_bn: bool = False, width: float = 1.0) -> ResNet:
    del width
    return ResNet(depth=34, frozen_bn=frozen_bn)


def resnet50(*, frozen_bn: bool = False, width: float = 1.0) -> ResNet:
    del width
    return ResNet(depth=50, frozen_bn=frozen_bn)
