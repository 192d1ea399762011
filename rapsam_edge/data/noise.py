"""Cheap random fields: a fixed bank of Gaussian noise (cropped at random offsets) and smooth
low-frequency noise. Drawing fresh N(0, 1) samples for every pixel costs more than the rest of
a scene, so per-pixel noise is a random crop of one bank generated once from a fixed seed."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

_BANK_SIDE = 512


@lru_cache(maxsize=4)
def _bank(reps_y: int, reps_x: int) -> np.ndarray:
    """The fixed noise tile, repeated reps_y x reps_x times (read-only)."""
    tile = np.random.default_rng(0x5EED).standard_normal((_BANK_SIDE, _BANK_SIDE, 3))
    bank = np.tile(tile.astype(np.float32), (reps_y, reps_x, 1))
    bank.flags.writeable = False
    return bank


def gaussian_noise(rng: np.random.Generator, hw: tuple[int, int], channels: int = 0) -> np.ndarray:
    """N(0, 1)-distributed noise H x W (``channels`` = 0) or H x W x C (C <= 3) float32: a
    read-only view, a random crop of the fixed bank."""
    h, w = hw
    bank = _bank(-(-h // _BANK_SIDE) + 1, -(-w // _BANK_SIDE) + 1)
    oy, ox = int(rng.integers(_BANK_SIDE)), int(rng.integers(_BANK_SIDE))
    crop = bank[oy : oy + h, ox : ox + w]
    if channels == 0:
        return crop[..., int(rng.integers(3))]
    return crop[..., :channels]


def lowfreq_noise(
    rng: np.random.Generator, hw: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """Smooth noise: a (rows + 1) x (cols + 1) grid of N(0, 1) upsampled bicubically to H x W
    float32 (roughly in [-2, 2])."""
    grid = rng.standard_normal((cells[0] + 1, cells[1] + 1), dtype=np.float32)
    mid = (min(hw[0], 8 * grid.shape[0]), min(hw[1], 8 * grid.shape[1]))
    if mid != hw:  # bicubic to 8 px per cell, then bilinear: same look, 10x cheaper
        grid = cv2.resize(grid, (mid[1], mid[0]), interpolation=cv2.INTER_CUBIC)
        return cv2.resize(grid, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(grid, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)


@lru_cache(maxsize=8)
def pixel_grid(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx) H x W float32 pixel coordinates (read-only, cached)."""
    yy, xx = np.mgrid[0 : hw[0], 0 : hw[1]].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx
