"""Procedural panoptic scenes: textured stuff regions partitioning the image, thing objects
of several shape classes on top (with partial occlusion), camera-like finishing.

Deterministic from a seed. Every returned segment has area >= ``SceneConfig.min_area``; a thing
keeps at least ``min_visible`` of its in-frame area visible (heavier occlusion is rejected at
placement), so its shape stays recognisable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .classes import STUFF_IDS, THING_IDS
from .compose import paste
from .noise import lowfreq_noise, pixel_grid
from .photometric import finish, sample_photometric
from .segments import Segment, make_segments
from .shapes import place_shape, shape_area
from .textures import ThingLook, random_colour, sample_thing_look, stuff_texture, thing_texture


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the scene generator (sizes relative to the image's shorter side)."""

    min_stuff: int = 2
    max_stuff: int = 4
    min_things: int = 1
    max_things: int = 8
    radius_range: tuple[float, float] = (0.05, 0.2)  # object radius / shorter side (log-uniform)
    min_area: int = 96  # smallest segment kept, pixels
    min_visible: float = 0.5  # fraction of a thing's in-frame area that must stay visible
    min_in_frame: float = 0.5  # fraction of a thing's area that must lie inside the frame
    min_contrast: float = 0.25  # RGB distance of a thing's colour to the background mean
    placement_tries: int = 20


@dataclass
class Scene:
    """One generated image: ``image`` H x W x 3 uint8 RGB, ``ids`` H x W int32 segment ids
    (0 = void), ``segments`` sorted by id."""

    image: np.ndarray
    ids: np.ndarray
    segments: list[Segment] = field(default_factory=list)


def as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A Generator from an int seed (or the Generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(int(seed))


def stuff_layout(rng: np.random.Generator, hw: tuple[int, int], k: int) -> np.ndarray:
    """Partition H x W into ``k`` regions with wavy borders (a Voronoi diagram of spread-out
    seeds on noise-warped coordinates) -> H x W int32 region index 0..k-1."""
    h, w = hw
    side = min(h, w)
    yy, xx = pixel_grid(hw)
    amp = 0.12 * side
    wx = xx + amp * lowfreq_noise(rng, hw, (3, 3))
    wy = yy + amp * lowfreq_noise(rng, hw, (3, 3))
    best = None
    for _ in range(10):
        seeds = _spread_points(rng, hw, k, min_dist=0.35 * side)
        region = np.zeros(hw, dtype=np.int32)
        nearest = np.full(hw, np.inf, dtype=np.float32)
        for i, (sx, sy) in enumerate(seeds):
            d = np.square(wx - np.float32(sx))
            d += np.square(wy - np.float32(sy))
            closer = d < nearest
            region[closer] = i
            np.minimum(nearest, d, out=nearest)
        smallest = np.bincount(region.ravel(), minlength=k).min()
        if best is None or smallest > best[0]:
            best = (smallest, region)
        if smallest >= 0.05 * h * w:
            break
    assert best is not None
    return best[1]


def _spread_points(
    rng: np.random.Generator, hw: tuple[int, int], k: int, *, min_dist: float
) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for _ in range(200):
        if len(pts) == k:
            break
        p = (float(rng.uniform(0, hw[1])), float(rng.uniform(0, hw[0])))
        if all(math.hypot(p[0] - q[0], p[1] - q[1]) >= min_dist for q in pts):
            pts.append(p)
    while len(pts) < k:  # crowded: give up on spacing
        pts.append((float(rng.uniform(0, hw[1])), float(rng.uniform(0, hw[0]))))
    return pts


def render_background(
    rng: np.random.Generator, hw: tuple[int, int], *, config: SceneConfig
) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Stuff regions -> (H x W x 3 float32 RGB in [0, 1], H x W int32 ids 1..k,
    {segment id: stuff class id})."""
    k = int(rng.integers(config.min_stuff, config.max_stuff + 1))
    classes = rng.choice(np.array(STUFF_IDS), size=k, replace=False)
    region = stuff_layout(rng, hw, k)
    image = np.empty((*hw, 3), dtype=np.float32)
    for i, cls in enumerate(classes):
        inside = (region == i).view(np.uint8)
        x, y, w, h = cv2.boundingRect(inside)
        if w == 0:
            continue
        box = (y, y + h, x, x + w)
        tex = stuff_texture(int(cls), rng, frame_hw=hw, box=box)
        paste(image[y : y + h, x : x + w], tex, inside[y : y + h, x : x + w])
    return image, region + 1, {i + 1: int(c) for i, c in enumerate(classes)}


@dataclass(frozen=True)
class ThingSpec:
    """A thing object's class, pose and appearance."""

    class_id: int
    center: tuple[float, float]  # (x, y) pixels
    radius: float
    angle: float
    look: ThingLook


def sample_thing(
    rng: np.random.Generator,
    hw: tuple[int, int],
    *,
    config: SceneConfig,
    background: np.ndarray | None = None,
) -> ThingSpec:
    """A random object anywhere in the frame; its colour differs from the mean background
    colour under it by at least ``config.min_contrast`` when possible."""
    side = min(hw)
    lo, hi = config.radius_range
    radius = float(math.exp(rng.uniform(math.log(lo), math.log(hi))) * side)
    center = (float(rng.uniform(0, hw[1])), float(rng.uniform(0, hw[0])))
    colour = random_colour(rng)
    if background is not None:
        r = int(radius)
        x, y = int(center[0]), int(center[1])
        patch = background[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
        mean = patch.reshape(-1, 3).mean(axis=0)
        for _ in range(8):
            if np.linalg.norm(colour - mean) >= config.min_contrast:
                break
            colour = random_colour(rng)
    return ThingSpec(
        class_id=int(rng.choice(np.array(THING_IDS))),
        center=center,
        radius=radius,
        angle=float(rng.uniform(0, 2 * math.pi)),
        look=sample_thing_look(rng, colour=colour),
    )


def paint_thing(
    image: np.ndarray,
    ids: np.ndarray,
    spec: ThingSpec,
    seg_id: int,
    placed: tuple[int, int, np.ndarray],
) -> None:
    """Paint ``spec`` (already rasterised as ``placed`` = place_shape(...)) into the float
    image and the id map, in place."""
    y0, x0, mask = placed
    h, w = mask.shape
    tex = thing_texture(
        spec.look,
        hw=(h, w),
        center=(spec.center[0] - x0, spec.center[1] - y0),
        radius=spec.radius,
        angle=spec.angle,
    )
    paste(image[y0 : y0 + h, x0 : x0 + w], tex, mask)
    ids[y0 : y0 + h, x0 : x0 + w][mask] = seg_id


def _occlusion_ok(
    things: np.ndarray,
    placed: tuple[int, int, np.ndarray],
    visible: dict[int, int],
    required: dict[int, int],
) -> bool:
    y0, x0, mask = placed
    h, w = mask.shape
    covered = things[y0 : y0 + h, x0 : x0 + w][mask]
    covered = covered[covered > 0]
    if covered.size == 0:
        return True
    uniq, counts = np.unique(covered, return_counts=True)
    return all(visible[int(u)] - int(c) >= required[int(u)] for u, c in zip(uniq, counts))


def generate_scene(
    seed: int | np.random.Generator,
    *,
    size: tuple[int, int] = (320, 320),
    config: SceneConfig | None = None,
) -> Scene:
    """A random scene of ``size`` (H, W), deterministic from ``seed``."""
    cfg = config or SceneConfig()
    rng = as_rng(seed)
    hw = (int(size[0]), int(size[1]))
    image, ids, classes = render_background(rng, hw, config=cfg)
    things = np.zeros(hw, dtype=np.int32)  # thing ids only, for occlusion book-keeping
    visible: dict[int, int] = {}
    required: dict[int, int] = {}
    next_id = len(classes) + 1
    for _ in range(int(rng.integers(cfg.min_things, cfg.max_things + 1))):
        for _ in range(cfg.placement_tries):
            spec = sample_thing(rng, hw, config=cfg, background=image)
            placed = place_shape(
                spec.class_id, center=spec.center, radius=spec.radius, angle=spec.angle, frame_hw=hw
            )
            if placed is None:
                continue
            in_frame = int(np.count_nonzero(placed[2]))
            full = shape_area(spec.class_id, radius=spec.radius, angle=spec.angle)
            need = max(cfg.min_area, math.ceil(cfg.min_visible * in_frame))
            if in_frame < max(cfg.min_area, cfg.min_in_frame * full):
                continue
            if not _occlusion_ok(things, placed, visible, required):
                continue
            y0, x0, mask = placed
            covered = things[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]][mask]
            for u, c in zip(*np.unique(covered[covered > 0], return_counts=True)):
                visible[int(u)] -= int(c)
            paint_thing(image, things, spec, next_id, placed)
            visible[next_id], required[next_id] = in_frame, need
            classes[next_id] = spec.class_id
            next_id += 1
            break
    ids = np.where(things > 0, things, ids).astype(np.int32)
    segments = drop_small(ids, make_segments(ids, classes, thing_ids=THING_IDS), cfg.min_area)
    out = finish(image, params=sample_photometric(rng), rng=rng)
    return Scene(image=out, ids=ids, segments=segments)


def drop_small(ids: np.ndarray, segments: list[Segment], min_area: int) -> list[Segment]:
    """Set the pixels of segments smaller than ``min_area`` to void (0) in ``ids`` (in place)
    and return the kept segments."""
    small = [s.id for s in segments if s.area < min_area]
    if small:
        ids[np.isin(ids, small)] = 0
    return [s for s in segments if s.area >= min_area]
