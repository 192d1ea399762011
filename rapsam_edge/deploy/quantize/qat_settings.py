"""The settings of quantization-aware distillation (``qat.py``), apart so that
``rapsam-edge quantize --help`` shows their defaults without importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["QatSettings"]


@dataclass(frozen=True)
class QatSettings:
    """Settings of quantization-aware distillation (``rapsam-edge quantize --qat``)."""

    steps: int = 300  # optimizer steps per graph
    batch_size: int = 4  # frames per step
    lr: float = 5e-5  # Adam learning rate (weights and quantizer ranges)
    sides: tuple[int, ...] = (320, 640)  # network sides drawn from, multiples of 32
    calib: int = 16  # inputs that set the quantizers' initial ranges
    temperature: float = 1.0  # T of the class KL
    # quantizers left out (FP32), the most harmful alone on the calibration inputs (0: none)
    fp32_quantizers: int = 32
    seed: int = 0  # frame order, sides, prompts
    # the graphs trained this way; the other converted ones get post-training INT8 (empty: all)
    graphs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (
            isinstance(self.fp32_quantizers, bool)
            or not isinstance(self.fp32_quantizers, int)
            or self.fp32_quantizers < 0
        ):
            raise ConfigError(
                f"--qat-fp32-quantizers must be an int >= 0, got {self.fp32_quantizers!r}"
            )
        for name in ("steps", "batch_size", "calib"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"--qat-{name.replace('_', '-')} must be an int >= 1, got {value!r}"
                )
        from ...contract.graphs import GRAPH_NAMES

        unknown = sorted(set(self.graphs) - set(GRAPH_NAMES))
        if unknown:
            raise ConfigError(f"--qat {' '.join(unknown)}: choose from {list(GRAPH_NAMES)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--qat-lr must be a finite number > 0, got {self.lr!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"QAT temperature must be > 0, got {self.temperature!r}")
        if not self.sides or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 32 or s % 32 or s > 2048
            for s in self.sides
        ):
            raise ConfigError(
                f"--qat-sides must be multiples of 32 in 32..2048, got {list(self.sides)}"
            )
