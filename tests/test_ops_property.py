"""Property tests (hypothesis) of every compiled op against its numpy twin: on any valid
input the outputs are identical (floats within 1e-6); on inputs the strategies mutate into
invalid ones both raise InputError. Complements test_ops_parity's hand-made cases and
tools/fuzz_ops.py's random fuzzing (CI runs that under ASan + UBSan)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rapsam_edge import (
    _core,  # noqa: F401  (a missing core must fail these tests)
    ops,
)
from rapsam_edge.errors import InputError
from rapsam_edge.ops import _numpy as twin

CORE = ops.impl("cpp")  # the compiled core behind the argument checks, as the ops run it

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOATS = st.one_of(
    st.floats(-30, 30, width=32),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e-38, 3.0, 0.5]),
)


def both(name: str, *args):
    """Run both twins; return their outputs, or assert both raised InputError."""
    outs, errors = [], []
    for impl in (CORE, twin):
        try:
            outs.append(getattr(impl, name)(*args))
        except InputError as e:
            errors.append(e)
    assert len(errors) in (0, 2), f"{name}: one twin raised {errors}, the other returned"
    return outs


def assert_same(a, b):
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, np.ndarray) and a.dtype.names:
        for n in a.dtype.names:
            if a[n].dtype.kind == "f":
                np.testing.assert_allclose(a[n], b[n], rtol=0, atol=1e-6)
            else:
                np.testing.assert_array_equal(a[n], b[n])
    elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@st.composite
def panoptic_args(draw):
    n, c = draw(st.integers(0, 8)), draw(st.integers(1, 5))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    cls = draw(hnp.arrays(np.float32, (n, c + 1), elements=FLOATS))
    masks = draw(hnp.arrays(np.float32, (n, h, w), elements=FLOATS))
    valid = (draw(st.floats(0.5, h)), draw(st.floats(0.5, w)))
    out = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    thing = draw(hnp.arrays(bool, (c,)))
    return cls, masks, valid, out, thing, draw(st.floats(0, 1)), draw(st.floats(0, 1))


@SETTINGS
@given(panoptic_args())
def test_panoptic_fuse(args):
    outs = both("panoptic_fuse", *args)
    if outs:
        assert_same(*outs)


@SETTINGS
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=3, max_dims=3, max_side=14), elements=FLOATS),
    st.integers(1, 50),
    st.integers(1, 50),
    st.floats(-3, 3),
    st.floats(0, 3),
)
def test_prompt_masks(logits, oh, ow, threshold, offset):
    _, h, w = logits.shape
    outs = both("prompt_masks", logits, (h * 0.75 + 0.25, float(w)), (oh, ow), threshold, offset)
    if outs:
        assert_same(*outs)


@SETTINGS
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))),
    st.sampled_from([32, 64, 96]),
    st.integers(0, 255),
    st.booleans(),
)
def test_letterbox(image, size, pad_value, swap):
    outs = both("letterbox", image, size, 32, pad_value, swap)
    if outs:
        assert_same(*outs)


@SETTINGS
@given(hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=3, max_side=16)))
def test_rle_round_trip_and_boxes(masks):
    enc = both("rle_encode", masks)
    assert_same(*enc)
    dec = both("rle_decode", enc[0])
    assert_same(*dec)
    np.testing.assert_array_equal(dec[0], masks)
    if masks.ndim == 3:
        assert_same(*both("masks_to_boxes", masks))


@SETTINGS
@given(st.binary(max_size=24), st.integers(-2, 6), st.integers(-2, 6))
def test_rle_decode_of_arbitrary_bytes(counts, h, w):
    """Any bytes and size: both decode the same mask or both raise InputError."""
    outs = both("rle_decode", {"size": [h, w], "counts": counts})
    if outs:
        assert_same(*outs)


@SETTINGS
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=8),
        elements=st.floats(-1e6, 1e6),
    ),
    st.booleans(),
)
def test_linear_assignment(cost, maximize):
    outs = both("linear_assignment", cost, maximize)
    if outs:
        (ra, ca), (rb, cb) = outs
        # optimal assignments may differ on ties; their total costs may not
        assert len(ra) == len(rb) == min(cost.shape)
        np.testing.assert_allclose(cost[ra, ca].sum(), cost[rb, cb].sum(), rtol=1e-9, atol=1e-6)


@SETTINGS
@given(
    st.integers(1, 20).flatmap(
        lambda h: st.integers(1, 20).flatmap(
            lambda w: st.tuples(
                hnp.arrays(np.uint8, (h, w, 3)),
                hnp.arrays(np.int32, (h, w), elements=st.integers(0, 7)),
            )
        )
    ),
    st.floats(0, 1),
    st.booleans(),
)
def test_overlay(image_labels, alpha, boundary):
    image, labels = image_labels
    outs = both("overlay", image, labels, alpha, boundary)
    if outs:
        assert_same(*outs)


@pytest.mark.parametrize("name", ["panoptic_fuse", "prompt_masks", "letterbox", "overlay"])
@SETTINGS
@given(bad=st.sampled_from([None, "x", np.nan, -1, 10**30, [1, 2, 3], (0, 0)]))
def test_bad_sizes_are_input_errors_in_both(name, bad):
    args = {
        "panoptic_fuse": (
            np.zeros((2, 3), np.float32),
            np.zeros((2, 4, 4), np.float32),
            (4, 4),
            bad,
            np.array([True, False]),
        ),
        "prompt_masks": (np.zeros((1, 4, 4), np.float32), (4, 4), bad),
        "letterbox": (np.zeros((4, 4, 3), np.uint8), bad),
        "overlay": (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int32), bad),
    }[name]
    assert both(name, *args) == []
