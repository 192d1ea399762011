"""Procedural videos: a static stuff background with thing objects that move (curved paths,
slow spin and scale change), occlude each other, and enter / leave the frame.

A thing keeps one segment id for the whole video (also when it leaves and comes back); ids
are never reused by another object. Deterministic from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .classes import THING_IDS
from .photometric import finish, lighting_gain, sample_photometric
from .scenes import (
    SceneConfig,
    ThingSpec,
    as_rng,
    drop_small,
    paint_thing,
    render_background,
    sample_thing,
)
from .segments import Segment, make_segments
from .shapes import place_shape, shape_area


@dataclass(frozen=True)
class VideoConfig:
    """Knobs of the video generator (speeds in pixels per frame for a 320-pixel side)."""

    min_things: int = 2
    max_things: int = 6
    speed_range: tuple[float, float] = (0.5, 5.0)
    max_turn: float = 0.06  # heading change per frame (radians): curved paths
    max_spin: float = 0.04  # rotation per frame (radians)
    max_growth: float = 0.01  # relative scale change per frame
    enter_prob: float = 0.35  # chance that an object starts outside and moves in
    scene: SceneConfig = field(default_factory=SceneConfig)


@dataclass
class Video:
    """``images`` T x H x W x 3 uint8 RGB, ``ids`` T x H x W int32 (0 = void; an object has
    the same id in every frame), ``segments`` per frame (sorted by id), ``classes`` maps every
    segment id of the video to its class id."""

    images: np.ndarray
    ids: np.ndarray
    segments: list[list[Segment]]
    classes: dict[int, int]


@dataclass(frozen=True)
class _Track:
    spec: ThingSpec
    heading: float
    speed: float
    turn: float
    spin: float
    growth: float

    def at(self, t: int) -> ThingSpec:
        """Pose at frame ``t`` (closed form: constant turn rate gives a circular arc)."""
        x, y = self.spec.center
        if abs(self.turn) < 1e-9:
            x += self.speed * t * math.cos(self.heading)
            y += self.speed * t * math.sin(self.heading)
        else:
            r = self.speed / self.turn
            h1 = self.heading + self.turn * t
            x += r * (math.sin(h1) - math.sin(self.heading))
            y -= r * (math.cos(h1) - math.cos(self.heading))
        return replace(
            self.spec,
            center=(x, y),
            angle=self.spec.angle + self.spin * t,
            radius=self.spec.radius * (1.0 + self.growth) ** t,
        )


def _sample_track(
    rng: np.random.Generator,
    hw: tuple[int, int],
    *,
    config: VideoConfig,
    background: np.ndarray,
    length: int,
    enter: bool,
) -> _Track:
    scale = min(hw) / 320.0
    for _ in range(config.scene.placement_tries):  # big enough to be kept when in view
        spec = sample_thing(rng, hw, config=config.scene, background=background)
        area = shape_area(spec.class_id, radius=spec.radius, angle=spec.angle)
        if area >= 2 * config.scene.min_area:
            break
    speed = float(rng.uniform(*config.speed_range)) * scale
    heading = float(rng.uniform(0, 2 * math.pi))
    if enter:  # start just outside an edge, heading inwards
        h, w = hw
        edge = int(rng.integers(4))
        out = spec.radius + float(rng.uniform(0, speed * length / 3))
        x, y = spec.center
        x, y, heading = (
            (-out, y, 0.0),
            (w + out, y, math.pi),
            (x, -out, math.pi / 2),
            (x, h + out, -math.pi / 2),
        )[edge]
        heading += float(rng.uniform(-0.6, 0.6))
        spec = replace(spec, center=(x, y))
    return _Track(
        spec=spec,
        heading=heading,
        speed=speed,
        turn=float(rng.uniform(-config.max_turn, config.max_turn)),
        spin=float(rng.uniform(-config.max_spin, config.max_spin)),
        growth=float(rng.uniform(-config.max_growth, config.max_growth)),
    )


def generate_video(
    seed: int | np.random.Generator,
    *,
    size: tuple[int, int] = (320, 320),
    length: int = 12,
    config: VideoConfig | None = None,
) -> Video:
    """A random video of ``length`` frames of ``size`` (H, W), deterministic from ``seed``."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    cfg = config or VideoConfig()
    rng = as_rng(seed)
    hw = (int(size[0]), int(size[1]))
    background, stuff_ids, classes = render_background(rng, hw, config=cfg.scene)
    n = int(rng.integers(cfg.min_things, cfg.max_things + 1))
    tracks = [
        _sample_track(
            rng,
            hw,
            config=cfg,
            background=background,
            length=length,
            enter=i > 0 and rng.random() < cfg.enter_prob,  # the first one starts inside
        )
        for i in range(n)
    ]
    first = len(classes) + 1
    for i, track in enumerate(tracks):
        classes[first + i] = track.spec.class_id
    params = sample_photometric(rng)
    gain = lighting_gain(params, hw)
    images = np.empty((length, *hw, 3), dtype=np.uint8)
    ids = np.empty((length, *hw), dtype=np.int32)
    segments = []
    for t in range(length):
        frame = background.copy()
        frame_ids = stuff_ids.copy()
        for i, track in enumerate(tracks):  # list order = depth order (later ones in front)
            spec = track.at(t)
            placed = place_shape(
                spec.class_id, center=spec.center, radius=spec.radius, angle=spec.angle, frame_hw=hw
            )
            if placed is not None and placed[2].any():
                paint_thing(frame, frame_ids, spec, first + i, placed)
        segs = make_segments(frame_ids, classes, thing_ids=THING_IDS)
        segments.append(drop_small(frame_ids, segs, cfg.scene.min_area))
        ids[t] = frame_ids
        images[t] = finish(frame, params=params, rng=rng, gain=gain)
    return Video(images=images, ids=ids, segments=segments, classes=classes)
