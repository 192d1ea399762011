"""Augmentation keeps image and id map aligned, is deterministic, and shares clip params."""

from __future__ import annotations

import numpy as np

from rapsam_edge.data.augment import (
    AugmentParams,
    apply_augment,
    augment,
    augment_clip,
    resize_ids,
)
from rapsam_edge.data.scenes import generate_scene
from rapsam_edge.data.segments import refresh_segments
from rapsam_edge.data.video import generate_video
from rapsam_edge.ops._numpy import palette


def _pattern(h: int = 90, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of 30 x 30 with distinct ids (none 0) and an image coloured by the id."""
    yy, xx = np.mgrid[0:h, 0:w]
    ids = (1 + (yy // 30) * 16 + (xx // 30)).astype(np.int32)
    ids[:, : w // 2] += 1000  # left and right halves differ: a flip is detectable
    return palette(ids), ids


def _assert_aligned(image: np.ndarray, ids: np.ndarray) -> None:
    """Away from id borders, every pixel has its id's colour; padding is black and void."""
    interior = np.ones(ids.shape, bool)
    for axis in (0, 1):
        for shift in (-2, -1, 1, 2):
            interior &= np.roll(ids, shift, axis=axis) == ids
    interior &= ids != 0
    assert interior.sum() > 0.2 * (ids != 0).sum() > 0
    assert np.abs(image[interior].astype(int) - palette(ids[interior])).max() <= 2
    assert (image[ids == 0] == 0).all()


def test_augment_keeps_image_and_map_aligned():
    image, ids = _pattern()
    rng = np.random.default_rng(0)
    flips = 0
    for _ in range(12):
        out_img, out_ids, params = augment(image, ids, rng, out_hw=(64, 80), scale_range=(0.5, 2))
        assert out_img.shape == (64, 80, 3) and out_ids.shape == (64, 80)
        assert out_ids.dtype == np.int32 and out_img.dtype == np.uint8
        _assert_aligned(out_img, out_ids)
        flips += params.flip
    assert 0 < flips < 12


def test_flip_is_a_mirror_and_padding_is_void():
    image, ids = _pattern(30, 40)
    p = AugmentParams(scale=1.0, offset=(0, 0), flip=True, out_hw=(30, 40))
    img2, ids2 = apply_augment(p, image, ids)
    assert np.array_equal(ids2, ids[:, ::-1]) and np.array_equal(img2, image[:, ::-1])
    p = AugmentParams(scale=1.0, offset=(-5, -3), flip=False, out_hw=(40, 50))
    img3, ids3 = apply_augment(p, image, ids)
    assert np.array_equal(ids3[5:35, 3:43], ids) and (ids3[:5] == 0).all()
    assert (ids3[:, 43:] == 0).all() and (img3[:5] == 0).all()
    p = AugmentParams(scale=2.0, offset=(10, 20), flip=False, out_hw=(20, 20))
    _, ids4 = apply_augment(p, image, ids)
    assert np.array_equal(ids4, np.repeat(np.repeat(ids, 2, 0), 2, 1)[10:30, 20:40])


def test_resize_ids_nearest_pixel_centres():
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert np.array_equal(resize_ids(ids, (6, 8)), np.repeat(np.repeat(ids, 2, 0), 2, 1))
    assert np.array_equal(resize_ids(ids, (3, 2)), ids[:, [0, 2]] + 1)


def test_augment_generated_scene_and_refresh_segments():
    scene = generate_scene(4, size=(96, 96))
    rng = np.random.default_rng(5)
    img, ids, _ = augment(scene.image, scene.ids, rng, out_hw=(64, 64))
    segs = refresh_segments(ids, scene.segments)
    assert {s.id for s in segs} == set(np.unique(ids[ids > 0]).tolist())
    for s in segs:
        assert s.area == int((ids == s.id).sum())
    a = augment(scene.image, scene.ids, np.random.default_rng(5), out_hw=(64, 64))
    assert np.array_equal(a[0], img) and np.array_equal(a[1], ids)


def test_augment_clip_uses_one_parameter_set():
    v = generate_video(1, size=(64, 80), length=3)
    imgs, ids, params = augment_clip(v.images, v.ids, np.random.default_rng(2), out_hw=(48, 48))
    assert imgs.shape == (3, 48, 48, 3) and ids.shape == (3, 48, 48)
    for t in range(3):
        one_img, one_ids = apply_augment(params, v.images[t], v.ids[t])
        assert np.array_equal(one_img, imgs[t]) and np.array_equal(one_ids, ids[t])
