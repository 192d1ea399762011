"""Procedural textures (float32 RGB in [0, 1]): one family per stuff class, and random
colour/pattern fills for thing objects (random so that only the shape identifies a thing)."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from .classes import CLASS_BY_NAME
from .noise import gaussian_noise, lowfreq_noise, pixel_grid

# stuff class id -> (base hue in degrees, saturation range, value range)
_STUFF_PALETTE: dict[int, tuple[float, tuple[float, float], tuple[float, float]]] = {
    CLASS_BY_NAME["sky"].id: (210.0, (0.25, 0.7), (0.65, 0.95)),
    CLASS_BY_NAME["grass"].id: (105.0, (0.4, 0.8), (0.3, 0.7)),
    CLASS_BY_NAME["wall"].id: (18.0, (0.3, 0.7), (0.35, 0.75)),
    CLASS_BY_NAME["water"].id: (195.0, (0.4, 0.85), (0.3, 0.7)),
}
_HUE_JITTER = 25.0

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), end exclusive


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """Hue in degrees, saturation and value in [0, 1] -> RGB float32 (3,)."""
    return np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v), dtype=np.float32)


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour (any hue, most saturations and values), float32 (3,) in [0, 1]."""
    return hsv(rng.uniform(0, 360), rng.uniform(0.2, 1.0), rng.uniform(0.15, 1.0))


def lerp(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """H x W weights, two RGB (3,) colours -> H x W x 3 float32 ``c0 + t * (c1 - c0)``
    (channel by channel: numpy is slow on a trailing axis of length 3)."""
    out = np.empty((*t.shape, 3), dtype=np.float32)
    for i in range(3):
        np.multiply(t, np.float32(c1[i] - c0[i]), out=out[..., i])
        out[..., i] += np.float32(c0[i])
    return out


def _stuff_colours(class_id: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    hue, (s0, s1), (v0, v1) = _STUFF_PALETTE[class_id]
    h = hue + rng.uniform(-_HUE_JITTER, _HUE_JITTER)
    s, v = rng.uniform(s0, s1), rng.uniform(v0, v1)
    dark = hsv(h + rng.uniform(-8, 8), min(1.0, s * 1.1), v * rng.uniform(0.45, 0.7))
    return dark, hsv(h, s, v)


def _sky(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, scale: float) -> np.ndarray:
    dark, light = _stuff_colours(CLASS_BY_NAME["sky"].id, rng)
    ang = rng.uniform(-0.4, 0.4)
    extent = 320.0 * scale
    t = (yy * math.cos(ang) + xx * math.sin(ang)) * np.float32(1.0 / extent)
    base = lerp(np.clip(t, 0, 1), dark * 0.6 + light * 0.4, light)
    hw = yy.shape
    cloud = lowfreq_noise(rng, hw, (3, 4)) + 0.5 * lowfreq_noise(rng, hw, (6, 8))
    cloud = np.clip((cloud - np.float32(rng.uniform(0.0, 0.8))) * np.float32(0.6), 0.0, 0.85)
    white = hsv(rng.uniform(0, 360), rng.uniform(0, 0.08), rng.uniform(0.9, 1.0))
    for i in range(3):  # blend towards a white cloud colour
        base[..., i] += cloud * (white[i] - base[..., i])
    return base


def _grass(rng: np.random.Generator, yy: np.ndarray, _xx: np.ndarray, scale: float) -> np.ndarray:
    h, w = yy.shape
    dark, light = _stuff_colours(CLASS_BY_NAME["grass"].id, rng)
    rows = max(2, int(h / (rng.uniform(10, 20) * scale)))
    cols = max(2, int(w / (rng.uniform(1.5, 2.5) * scale)))
    t = 0.22 * lowfreq_noise(rng, (h, w), (rows, cols))  # tall thin blobs: blades of grass
    t += 0.12 * gaussian_noise(rng, (h, w))
    t += 0.5 + 0.1 * lowfreq_noise(rng, (h, w), (3, 3))
    return lerp(np.clip(t, 0, 1), dark, light)


def _wall(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, scale: float) -> np.ndarray:
    dark, light = _stuff_colours(CLASS_BY_NAME["wall"].id, rng)
    mortar = hsv(rng.uniform(0, 360), rng.uniform(0, 0.15), rng.uniform(0.6, 0.9))
    bh = rng.uniform(10, 22) * scale
    bw = bh * rng.uniform(1.8, 3.0)
    gap = max(1.0, bh * rng.uniform(0.1, 0.18))
    ys = yy + np.float32(rng.uniform(0, bh))
    row = np.floor(ys * np.float32(1 / bh))
    xs = xx + (row % 2) * np.float32(bw / 2) + np.float32(rng.uniform(0, bw))
    col = np.floor(xs * np.float32(1 / bw))
    shade = rng.random((int(row.max()) + 2, int(col.max()) + 2), dtype=np.float32)
    t = shade[row.astype(np.int32), col.astype(np.int32)] * np.float32(0.75) + np.float32(0.25)
    t += 0.08 * gaussian_noise(rng, yy.shape)
    img = lerp(np.clip(t, 0, 1), dark, light)
    joint = ((ys - row * np.float32(bh)) < gap) | ((xs - col * np.float32(bw)) < gap)
    img[joint] = mortar
    return img


def _water(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, scale: float) -> np.ndarray:
    dark, light = _stuff_colours(CLASS_BY_NAME["water"].id, rng)
    period = rng.uniform(7, 14) * scale
    ang = rng.uniform(-0.3, 0.3)
    k = np.float32(2 * math.pi / period)
    phase = (yy * np.float32(math.cos(ang)) + xx * np.float32(math.sin(ang))) * k
    phase += 1.6 * lowfreq_noise(rng, yy.shape, (4, 6))
    phase += 0.8 * np.sin(xx * (k / 6))
    wave = np.sin(phase)
    t = 0.5 + 0.4 * wave + np.clip(wave - 0.9, 0, None) * 6.0  # bright wave crests
    return lerp(np.clip(t * np.float32(1 / 1.2), 0, 1), dark, light)


_STUFF_TEXTURES = {
    CLASS_BY_NAME["sky"].id: _sky,
    CLASS_BY_NAME["grass"].id: _grass,
    CLASS_BY_NAME["wall"].id: _wall,
    CLASS_BY_NAME["water"].id: _water,
}


def stuff_texture(
    class_id: int, rng: np.random.Generator, *, frame_hw: tuple[int, int], box: Box | None = None
) -> np.ndarray:
    """Texture of stuff class ``class_id`` over ``box`` (y0, y1, x0, x1) of an H x W frame
    (whole frame by default) -> (y1 - y0) x (x1 - x0) x 3 float32 in [0, 1]."""
    y0, y1, x0, x1 = box if box is not None else (0, frame_hw[0], 0, frame_hw[1])
    yy, xx = pixel_grid(tuple(frame_hw))
    scale = min(frame_hw) / 320.0
    img = _STUFF_TEXTURES[class_id](rng, yy[y0:y1, x0:x1], xx[y0:y1, x0:x1], scale)
    return np.clip(img, 0.0, 1.0, out=img)


@dataclass(frozen=True)
class ThingLook:
    """Appearance of one thing object; the pattern is attached to the object's frame, so it
    moves, rotates and scales with the object across video frames."""

    colour: tuple[float, float, float]
    other: tuple[float, float, float]
    kind: int  # 0 flat (shaded), 1 gradient, 2 stripes, 3 spots
    angle: float  # pattern direction relative to the object
    period: float  # pattern period in units of the object radius


def sample_thing_look(rng: np.random.Generator, *, colour: np.ndarray) -> ThingLook:
    """Random pattern around ``colour`` (RGB float (3,)); the second colour is random or a
    darker shade of the first."""
    kind = int(rng.integers(4))
    if kind == 0 or rng.random() < 0.5:
        other = colour * np.float32(rng.uniform(0.4, 0.8))
    else:
        other = random_colour(rng)
    return ThingLook(
        colour=tuple(float(c) for c in colour),
        other=tuple(float(c) for c in other),
        kind=kind,
        angle=float(rng.uniform(0, 2 * math.pi)),
        period=float(rng.uniform(0.35, 0.9)),
    )


def thing_texture(
    look: ThingLook,
    *,
    hw: tuple[int, int],
    center: tuple[float, float],
    radius: float,
    angle: float,
) -> np.ndarray:
    """Render ``look`` on an h x w patch for an object centred at ``center`` (x, y in patch
    pixels) with ``radius`` and rotation ``angle`` -> h x w x 3 float32 in [0, 1]."""
    h, w = hw
    ys = (np.arange(h, dtype=np.float32) - np.float32(center[1])) / np.float32(radius)
    xs = (np.arange(w, dtype=np.float32) - np.float32(center[0])) / np.float32(radius)
    a = angle + look.angle
    c, s = np.float32(math.cos(a)), np.float32(math.sin(a))
    u = xs[None, :] * c + ys[:, None] * s  # along the pattern direction, in radii
    k = np.float32(2 * math.pi / look.period)
    if look.kind == 0:  # flat with soft shading
        t = (u + 1.0) * np.float32(0.15)
    elif look.kind == 1:  # two-colour gradient
        t = np.clip((u + 1.0) * np.float32(0.5), 0, 1)
    elif look.kind == 2:  # stripes
        t = (np.sin(u * k) > 0).astype(np.float32)
    else:  # spots
        v = ys[:, None] * c - xs[None, :] * s
        t = ((np.sin(u * k) * np.sin(v * k)) > 0.3).astype(np.float32)
    out = lerp(t, np.asarray(look.colour, np.float32), np.asarray(look.other, np.float32))
    return np.clip(out, 0.0, 1.0, out=out)
