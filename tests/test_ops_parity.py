"""Parity of the compiled core (rapsam_edge._core) with the numpy twins and the references
(pycocotools, scipy, cv2). Integer outputs must be identical; float scores within 1e-6."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rapsam_edge import _core  # a missing core must fail these tests, not skip them
from rapsam_edge.ops import _numpy as twin
from rapsam_edge.ops._checks import SEGMENT_DTYPE


# ---------------------------------------------------------------- helpers
def assert_panoptic_equal(a, b) -> None:
    (label_a, seg_a), (label_b, seg_b) = a, b
    assert label_b.dtype == np.int32 and label_b.shape == label_a.shape
    np.testing.assert_array_equal(label_a, label_b)
    assert seg_b.dtype == SEGMENT_DTYPE
    assert seg_a.shape == seg_b.shape
    for field in ("id", "class", "query", "area", "is_thing"):
        np.testing.assert_array_equal(seg_a[field], seg_b[field], err_msg=field)
    np.testing.assert_allclose(seg_a["score"], seg_b["score"], rtol=0, atol=1e-6)


def both_panoptic(*args, **kwargs) -> None:
    assert_panoptic_equal(twin.panoptic_fuse(*args, **kwargs), _core.panoptic_fuse(*args, **kwargs))


def random_panoptic(seed: int, n=12, c=5, hw=(20, 24), out=(57, 83), valid=None, smooth=False):
    rng = np.random.default_rng(seed)
    h, w = hw
    cls = (rng.standard_normal((n, c + 1)) * 3).astype(np.float32)
    if smooth:
        yy, xx = np.mgrid[0:h, 0:w]
        cy, cx = rng.uniform(0, h, (n, 1, 1)), rng.uniform(0, w, (n, 1, 1))
        r = rng.uniform(1, max(h, w) / 3, (n, 1, 1))
        masks = (r - np.hypot(yy - cy, xx - cx)).astype(np.float32)
    else:
        masks = (rng.standard_normal((n, h, w)) * 4).astype(np.float32)
    if seed % 3 == 0 and n > 1:  # exact ties: duplicated queries (same scores and logits)
        masks[1], cls[1] = masks[0], cls[0]
    if seed % 4 == 1:  # coarse values: many equal logits, zeros exactly on boundaries
        masks = np.round(masks).astype(np.float32)
    is_thing = rng.random(c) > 0.4
    if valid is None:
        valid = (h - rng.uniform(0, h / 3), w - rng.integers(0, w // 3))
    return cls, masks, valid, out, is_thing


# ---------------------------------------------------------------- panoptic_fuse
@pytest.mark.parametrize("seed", range(60))
def test_panoptic_random(seed):
    cls, masks, valid, out, is_thing = random_panoptic(seed, smooth=seed % 2 == 0)
    both_panoptic(cls, masks, valid, out, is_thing, score_threshold=0.3, overlap_threshold=0.5)


@pytest.mark.parametrize("seed", range(4))
def test_panoptic_worst_case_noise_near_ties(seed):
    """The vectorised winner search (float fast path, exact fallback): i.i.d. noise logits,
    20 kept queries with scores within 1e-6 of each other (near ties everywhere), and
    queries differing from another only in the last bits of their logits."""
    rng = np.random.default_rng(100 + seed)
    n, c, h, w = 40, 6, 48, 64
    cls = np.full((n, c + 1), -20.0, np.float32)
    cls[:, -1] = 0.0
    kept = rng.choice(n, 20, replace=False)
    cls[kept, rng.integers(0, c, 20)] = 12.0 + rng.uniform(-1e-6, 1e-6, 20).astype(np.float32)
    masks = rng.standard_normal((n, h, w)).astype(np.float32)
    masks[kept[1]] = np.nextafter(masks[kept[0]], np.float32(np.inf))
    is_thing = np.arange(c) < 4
    # 360 and 601 columns: one and several column chunks of the dense kernel (256 each), each
    # chunk in blocks of 64 columns plus a partial block (104 = 64 + 40, 89 = 64 + 25)
    for out in ((270, 360), (181, 601)):
        both_panoptic(
            cls, masks, (h - 5.5, w), out, is_thing, score_threshold=0.8, overlap_threshold=0.5
        )


@pytest.mark.parametrize("seed", range(6))
def test_panoptic_default_thresholds_and_big_output(seed):
    cls, masks, _valid, _, is_thing = random_panoptic(seed, n=30, hw=(40, 40), smooth=True)
    cls[: 10 + seed, 0] = 9.0  # several confidently kept queries
    both_panoptic(cls, masks, (30.5, 40), (241, 317), is_thing)


@pytest.mark.parametrize(
    "out", [(1, 1), (1, 7), (9, 1), (5, 6), (13, 11), (20, 24), (64, 96)], ids=str
)
def test_panoptic_output_sizes_incl_downsampling(out):
    for seed in range(4):
        cls, masks, valid, _, is_thing = random_panoptic(seed, out=out)
        both_panoptic(cls, masks, valid, out, is_thing, 0.2, 0.3)


def test_panoptic_single_query_and_all_kept():
    cls, masks, valid, out, is_thing = random_panoptic(3, n=1)
    both_panoptic(cls, masks, valid, out, is_thing, score_threshold=0.0)
    cls, masks, valid, out, is_thing = random_panoptic(4, n=9)
    both_panoptic(cls, masks, valid, out, is_thing, score_threshold=0.0, overlap_threshold=0.0)


def test_panoptic_no_kept_query_and_empty():
    cls, masks, valid, out, is_thing = random_panoptic(5)
    label, segs = _core.panoptic_fuse(cls, masks, valid, out, is_thing, score_threshold=1.0)
    assert not label.any() and segs.shape == (0,) and segs.dtype == SEGMENT_DTYPE
    both_panoptic(cls, masks, valid, out, is_thing, score_threshold=1.0)
    both_panoptic(cls[:0], masks[:0], valid, out, is_thing)  # zero queries
    # only the no-object column: no class can be kept, whatever the threshold
    both_panoptic(cls[:, :1].copy(), masks, valid, out, is_thing[:0], score_threshold=0.0)


def test_panoptic_ties_between_queries():
    rng = np.random.default_rng(7)
    masks = np.repeat(rng.standard_normal((1, 10, 10)).astype(np.float32) * 3, 4, axis=0)
    cls = np.tile(np.array([[4.0, 0.0, 0.0]], np.float32), (4, 1))
    is_thing = np.array([True, False])
    both_panoptic(cls, masks, (10, 10), (37, 41), is_thing, 0.1, 0.0)
    cls[2, 0] = 4.5  # a higher score with equal logits
    both_panoptic(cls, masks, (10, 10), (37, 41), is_thing, 0.1, 0.0)
    _label, segs = _core.panoptic_fuse(cls, masks, (10, 10), (37, 41), is_thing, 0.1, 0.0)
    assert segs["query"][0] == 2


def test_panoptic_constant_and_huge_logits():
    rng = np.random.default_rng(8)
    cls = (rng.standard_normal((6, 4)) * 3).astype(np.float32)
    is_thing = np.array([True, False, True])
    for value in (0.0, -1e-35, 1e-35, 2.0, -2.0):
        masks = np.full((6, 8, 8), value, np.float32)
        both_panoptic(cls, masks, (8, 8), (29, 31), is_thing, 0.1, 0.2)
    masks = (rng.standard_normal((6, 8, 8)) * 1e30).astype(np.float32)
    masks[0, :4] = 3e38
    masks[1, 4:] = -3e38
    both_panoptic(cls, masks, (7.5, 8), (29, 31), is_thing, 0.1, 0.2)
    cls_huge = (rng.standard_normal((6, 4)) * 1e30).astype(np.float32)
    both_panoptic(cls_huge, masks, (8, 8), (17, 19), is_thing, 0.1, 0.2)


def test_panoptic_stuff_merge_and_overlap_drop():
    cls = np.array([[0, 6, 0], [0, 7, 0], [5, 0, 0]], np.float32)
    masks = np.array([[[4, 4, -4, -4]], [[-4, -4, 4, 4]], [[3, 3, 3, -4]]], np.float32)
    is_thing = np.array([True, False])
    label, segs = _core.panoptic_fuse(cls, masks, (1, 4), (1, 4), is_thing)
    np.testing.assert_array_equal(label, [[1, 1, 1, 1]])
    assert segs.tolist() == [(1, 1, 0, pytest.approx(segs["score"][0]), 4, False)]
    assert segs["score"][0] == np.float32(np.exp(7) / (np.exp(7) + 2))
    both_panoptic(cls, masks, (1, 4), (1, 4), is_thing)
    both_panoptic(cls, masks, (1, 4), (3, 11), is_thing)


# ---------------------------------------------------------------- prompt_masks
@pytest.mark.parametrize("seed", range(20))
def test_prompt_masks_random(seed):
    rng = np.random.default_rng(100 + seed)
    n, h, w = int(rng.integers(1, 5)), int(rng.integers(1, 30)), int(rng.integers(1, 30))
    logits = (rng.standard_normal((n, h, w)) * 3).astype(np.float32)
    if seed % 3 == 0:
        logits = np.round(logits)  # values exactly on the thresholds
    valid = (h - rng.uniform(0, h / 2), float(w))
    out = (int(rng.integers(1, 90)), int(rng.integers(1, 90)))
    threshold, offset = [(0.0, 1.0), (0.5, 0.25), (-1.0, 0.0), (2.0, 3.0)][seed % 4]
    a = twin.prompt_masks(logits, valid, out, threshold, offset)
    b = _core.prompt_masks(logits, valid, out, threshold, offset)
    assert b[0].dtype == np.bool_ and b[1].dtype == np.float32
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_prompt_masks_noise_dense_and_mixed_bands(seed):
    """The dense-band path (most cells mixed) and the cell path in one mask: i.i.d. noise
    in the top half, a smooth blob below, upsampled x8 (stability counts exact too)."""
    rng = np.random.default_rng(300 + seed)
    yy, xx = np.mgrid[0:32, 0:40]
    logits = np.stack([6.0 - np.hypot(yy - 24, xx - 8 * (i + 1)) for i in range(16)])
    logits[:, :14] = rng.standard_normal((16, 14, 40)) * (1 + seed)
    logits = logits.astype(np.float32)
    for out in [(240, 320), (250, 333)]:
        a = twin.prompt_masks(logits, (31.5, 40), out)
        b = _core.prompt_masks(logits, (31.5, 40), out)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_prompt_masks_large_and_edge_values():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64]
    logits = np.stack([(20 - np.hypot(yy - 20 - i, xx - 30)) * 0.5 for i in range(3)])
    logits = logits.astype(np.float32)
    logits[2, :8] = 1e30
    logits[2, 8:16] = -1e30
    logits[1, 30:40] = 1e-38  # tiny values must not underflow to a wrong side
    for out in [(360, 640), (17, 9), (1, 1)]:
        a = twin.prompt_masks(logits, (36.25, 64), out)
        b = _core.prompt_masks(logits, (36.25, 64), out)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    empty = _core.prompt_masks(logits[:0], (64, 64), (5, 5))
    assert empty[0].shape == (0, 5, 5) and empty[1].shape == (0,)
    np.testing.assert_array_equal(
        _core.prompt_masks(np.zeros((1, 2, 2), np.float32), (2, 2), (3, 3))[1], [0.0]
    )
    assert rng is not None


# ---------------------------------------------------------------- letterbox
@pytest.mark.parametrize(
    "shape,size,div",
    [
        ((1080, 1920, 3), 640, 32),
        ((480, 640), (320, 320), 1),
        ((37, 101, 4), (64, 48), 7),
        ((5, 3, 1), 200, 32),
        ((1, 1, 3), 1, 1),
        ((300, 200, 2), (100, 500), 16),
    ],
    ids=str,
)
def test_letterbox_matches_twin(shape, size, div):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    for swap in [False, True] if image.ndim == 3 and image.shape[2] >= 3 else [False]:
        a = twin.letterbox(image, size, pad_divisor=div, pad_value=114, swap_rb=swap)
        b = _core.letterbox(image, size, pad_divisor=div, pad_value=114, swap_rb=swap)
        assert b[0].dtype == np.uint8 and b[0].shape == a[0].shape
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1] and tuple(a[2]) == tuple(b[2])
        assert isinstance(b[1], float) and isinstance(b[2], tuple)


def test_letterbox_close_to_cv2():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for shape, size in [((1080, 1920, 3), 640), ((333, 517, 3), 512), ((100, 100, 3), 250)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        padded, _, (new_h, new_w) = _core.letterbox(image, size, pad_divisor=1)
        ref = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        diff = np.abs(padded[:new_h, :new_w].astype(int) - ref.astype(int))
        assert diff.max() <= 1


# ---------------------------------------------------------------- boxes
def test_masks_to_boxes():
    rng = np.random.default_rng(1)
    masks = rng.random((6, 23, 31)) > 0.97
    masks[0] = False
    masks[1] = False
    masks[1, 22, 30] = True
    for m in (masks, masks.astype(np.uint8) * 3, masks[:, ::2, ::3], masks[:0]):
        np.testing.assert_array_equal(twin.masks_to_boxes(m), _core.masks_to_boxes(m))
    single = _core.masks_to_boxes(masks[1])
    assert single.dtype == np.int32 and single.tolist() == [30, 22, 31, 23]


# ---------------------------------------------------------------- RLE
def test_rle_known_string():
    mask = np.array([[0, 0, 1], [1, 0, 0], [1, 1, 0]], np.uint8)
    assert _core.rle_encode(mask) == {"size": [3, 3], "counts": b"12200"}


@pytest.mark.parametrize("seed", range(8))
def test_rle_vs_pycocotools(seed):
    from pycocotools import mask as coco

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 200)), int(rng.integers(1, 200))
    masks = rng.random((3, h, w)) > [0.5, 0.01, 0.999][seed % 3]
    masks[0, :, : w // 2] = True  # long runs (multi-character counts)
    ref = coco.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    ours = _core.rle_encode(masks)
    assert [r["counts"] for r in ours] == [r["counts"] for r in ref]
    assert ours == twin.rle_encode(masks)
    assert all(r["size"] == [h, w] for r in ours)
    np.testing.assert_array_equal(_core.rle_decode(ours), masks)
    np.testing.assert_array_equal(_core.rle_decode(ref), masks)
    single = {"size": [h, w], "counts": ref[1]["counts"].decode()}
    np.testing.assert_array_equal(_core.rle_decode(single), coco.decode(ref[1]).astype(bool))
    np.testing.assert_array_equal(_core.rle_decode(single), twin.rle_decode(single))


def test_rle_edge_cases():
    for mask in (
        np.ones((4, 5), bool),
        np.zeros((4, 5), bool),
        np.zeros((0, 3), bool),
        np.ones((1, 1), np.uint8),
        np.zeros((2, 0), np.uint8),
    ):
        assert _core.rle_encode(mask) == twin.rle_encode(mask)
        np.testing.assert_array_equal(_core.rle_decode(_core.rle_encode(mask)), mask.astype(bool))
    uncompressed = {"size": [2, 3], "counts": [1, 2, 0, 3]}
    np.testing.assert_array_equal(_core.rle_decode(uncompressed), twin.rle_decode(uncompressed))
    fortran = np.asfortranarray(np.eye(5, 7, dtype=bool))
    assert _core.rle_encode(fortran) == twin.rle_encode(fortran)


# ---------------------------------------------------------------- linear assignment
def _cost(a, rows, cols):
    return a[rows, cols].sum()


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 8), (8, 5), (20, 20), (7, 30), (30, 7)])
def test_linear_assignment_vs_scipy(shape):
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(sum(shape))
    for trial in range(6):
        cost = rng.random(shape)
        if trial % 2:
            cost = np.round(cost * 4)  # many ties
        for maximize in (False, True):
            rows, cols = _core.linear_assignment(cost, maximize=maximize)
            assert rows.dtype == np.int64 and cols.dtype == np.int64
            ref_r, ref_c = linear_sum_assignment(cost, maximize=maximize)
            np.testing.assert_array_equal(rows, ref_r)
            assert _cost(cost, rows, cols) == pytest.approx(_cost(cost, ref_r, ref_c), abs=1e-9)
            tr, tc = twin.linear_assignment(cost, maximize=maximize)
            np.testing.assert_array_equal(rows, tr)
            np.testing.assert_array_equal(cols, tc)  # same algorithm: identical choice


def test_linear_assignment_inf_int_and_infeasible():
    from scipy.optimize import linear_sum_assignment

    cost = np.array([[np.inf, 1, 2], [3, np.inf, 1], [1, 1, np.inf]])
    rows, cols = _core.linear_assignment(cost)
    ref = linear_sum_assignment(cost)
    assert _cost(cost, rows, cols) == _cost(cost, *ref)
    np.testing.assert_array_equal(cols, twin.linear_assignment(cost)[1])
    ints = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]], np.int32)
    np.testing.assert_array_equal(_core.linear_assignment(ints)[1], [1, 0, 2])
    np.testing.assert_array_equal(
        _core.linear_assignment(ints.T.copy(), maximize=True)[1],
        twin.linear_assignment(ints.T.copy(), maximize=True)[1],
    )
    neg = -cost
    np.testing.assert_array_equal(
        _core.linear_assignment(neg, maximize=True)[1],
        twin.linear_assignment(neg, maximize=True)[1],
    )
    infeasible = np.array([[np.inf, 1], [np.inf, 2]])
    for impl in (_core, twin):
        with pytest.raises(ValueError, match="infeasible"):
            impl.linear_assignment(infeasible)
    for empty in (np.zeros((0, 4)), np.zeros((3, 0)), np.zeros((0, 0))):
        r, c = _core.linear_assignment(empty)
        assert r.shape == c.shape == (0,) and r.dtype == np.int64


# ---------------------------------------------------------------- overlay
@pytest.mark.parametrize("alpha,boundary", [(0.5, True), (0.0, False), (1.0, True), (0.3, False)])
def test_overlay(alpha, boundary):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    labels = rng.integers(-3, 5, (37, 53)).astype(np.int32)
    labels[:10, :10] = 0
    labels[20:, 30:] = 2**31 - 1
    a = twin.overlay(image, labels, alpha, boundary)
    b = _core.overlay(image, labels, alpha, boundary)
    assert b.dtype == np.uint8 and b.shape == image.shape
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        twin.overlay(image, labels[:, ::-1]), _core.overlay(image, labels[:, ::-1])
    )


def test_core_signatures_match_twins():
    import inspect

    for name in (
        "letterbox",
        "panoptic_fuse",
        "prompt_masks",
        "masks_to_boxes",
        "rle_encode",
        "rle_decode",
        "linear_assignment",
        "overlay",
    ):
        doc = getattr(_core, name).__doc__
        assert doc and len(doc) > 80, name
        params = list(inspect.signature(getattr(twin, name)).parameters)
        assert all(f"{p}" in doc.split("\n")[0] for p in params), (name, doc.split("\n")[0])


# ---------------------------------------------------------------- thread counts
@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}threads")
def core_threads(request):
    before = _core.get_num_threads()
    _core.set_num_threads(request.param)
    yield request.param
    _core.set_num_threads(before)


def big_inputs(seed: int):
    """Inputs large enough for every threaded op to split its work (>= 2e5 outputs)."""
    cls, masks, _valid, _, is_thing = random_panoptic(seed, n=24, hw=(40, 48), smooth=True)
    for q in range(8 + seed):  # several confidently kept queries, of every class
        cls[q, q % (cls.shape[1] - 1)] = 9.0
    rng = np.random.default_rng(seed)
    prompts = (rng.standard_normal((3, 40, 48)) * 3).astype(np.float32)
    image = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    return cls, masks, is_thing, prompts, image


def run_big(impl, inputs):
    cls, masks, is_thing, prompts, image = inputs
    return (
        impl.panoptic_fuse(cls, masks, (30.5, 48), (480, 640), is_thing, 0.5, 0.5),
        impl.prompt_masks(prompts, (30.5, 48), (480, 640)),
        impl.letterbox(image, 640, swap_rb=True),
    )


def assert_big_equal(a, b) -> None:
    assert_panoptic_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1][0], b[1][0])
    np.testing.assert_array_equal(a[1][1], b[1][1])
    np.testing.assert_array_equal(a[2][0], b[2][0])
    assert a[2][1:] == b[2][1:]


@pytest.mark.parametrize("seed", range(2))
def test_parity_with_any_thread_count(core_threads, seed):
    """Bit-exact results with 1, 2 and 3 threads (the pool splits rows, never arithmetic)."""
    assert _core.get_num_threads() == core_threads
    inputs = big_inputs(seed)
    cpp = run_big(_core, inputs)
    assert_big_equal(run_big(twin, inputs), cpp)
    assert cpp[0][1].size >= 3  # a real fusion, not an empty one
    for _ in range(3):  # the persistent pool, reused
        assert_big_equal(run_big(_core, inputs), cpp)


def test_concurrent_python_callers_share_the_pool():
    """Several Python threads in the core at once (the GIL is released): same results."""
    from concurrent.futures import ThreadPoolExecutor

    before = _core.get_num_threads()
    _core.set_num_threads(3)
    try:
        inputs = [big_inputs(seed) for seed in range(2)]
        refs = [run_big(twin, x) for x in inputs]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda i: (i % 2, run_big(_core, inputs[i % 2])), range(12)))
        for seed, result in results:
            assert_big_equal(refs[seed], result)
    finally:
        _core.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_a_working_pool():
    """After fork only the forking thread exists: the child starts a fresh pool."""
    before = _core.get_num_threads()
    _core.set_num_threads(3)
    try:
        inputs = big_inputs(0)
        ref = run_big(_core, inputs)  # the parent's pool has started its workers
        pid = os.fork()
        if pid == 0:  # child: must neither hang nor differ
            code = 1
            try:
                assert_big_equal(run_big(_core, inputs), ref)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert_big_equal(run_big(_core, inputs), ref)
    finally:
        _core.set_num_threads(before)


def test_cpp_golden_file_is_current():
    """csrc/tests/data/golden.bin (what the Python-free C++ tests, e.g. on aarch64, compare
    against) is what the numpy twins give today: regenerate with tools/make_core_golden.py."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("golden", root / "tools" / "make_core_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.build() == (root / "csrc" / "tests" / "data" / "golden.bin").read_bytes()
