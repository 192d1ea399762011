"""Camera-like finishing of a rendered float image: lighting gradient, contrast, blur, noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .noise import gaussian_noise


@dataclass(frozen=True)
class Photometric:
    """Per-image (or per-video) photometric parameters."""

    light_angle: float  # direction of the linear lighting ramp (radians)
    light_strength: float  # ramp goes from 1 - s to 1 + s across the image
    brightness: float  # additive, in [0, 1] units
    contrast: float  # multiplicative around 0.5
    blur_sigma: float  # Gaussian blur sigma in pixels (0 = none)
    noise_sigma: float  # Gaussian sensor noise, in [0, 1] units


def sample_photometric(rng: np.random.Generator) -> Photometric:
    """Random photometric parameters (moderate: the content must stay recognisable)."""
    return Photometric(
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.3)),
        brightness=float(rng.uniform(-0.08, 0.08)),
        contrast=float(rng.uniform(0.8, 1.2)),
        blur_sigma=float(rng.choice([0.0, rng.uniform(0.5, 1.3)])),
        noise_sigma=float(rng.uniform(0.004, 0.025)) if rng.random() < 0.5 else 0.0,
    )


def lighting_gain(params: Photometric, hw: tuple[int, int]) -> np.ndarray:
    """H x W float32 multiplicative lighting ramp (1 - s .. 1 + s along the light direction)."""
    h, w = hw
    c, s = math.cos(params.light_angle), math.sin(params.light_angle)
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2) * np.float32(c / max(w, 1))
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2) * np.float32(s / max(h, 1))
    ramp = ys[:, None] + xs[None, :]  # in [-0.5, 0.5] along the light direction
    return ramp * np.float32(2.0 * params.light_strength) + np.float32(1.0)


def finish(
    image: np.ndarray,
    *,
    params: Photometric,
    rng: np.random.Generator,
    gain: np.ndarray | None = None,
) -> np.ndarray:
    """H x W x 3 float32 RGB in [0, 1] -> H x W x 3 uint8 with lighting, contrast, blur and
    noise applied (noise position drawn from ``rng``; ``gain`` = precomputed
    ``lighting_gain``, reused across the frames of a video)."""
    hw = image.shape[:2]
    if gain is None:
        gain = lighting_gain(params, hw)
    scale = gain * np.float32(255.0 * params.contrast)
    offset = np.float32(255.0 * (0.5 + params.brightness - 0.5 * params.contrast) + 0.5)
    out = np.empty_like(image)
    for i in range(3):
        np.multiply(image[..., i], scale, out=out[..., i])
        out[..., i] += offset
    if params.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma)
    if params.noise_sigma > 0:
        out += gaussian_noise(rng, hw, 3) * np.float32(255.0 * params.noise_sigma)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)
