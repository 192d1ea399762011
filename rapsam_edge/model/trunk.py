"""What every backbone trunk shares: He initialisation and the frozen-BN training mode."""

from __future__ import annotations

from torch import nn


class Trunk(nn.Module):
    """Base of the backbones. Subclasses set ``frozen_bn`` and ``out_channels`` (C2..C5) and
    call ``init_weights()`` at the end of their constructor."""

    frozen_bn: bool = False

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> Trunk:
        """With ``frozen_bn`` the BatchNorm statistics stay fixed (eval mode) in training."""
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self
