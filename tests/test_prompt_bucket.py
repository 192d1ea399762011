"""Prompt-count buckets (issue 27): ``Segmenter.prompt`` pads its boxes (the last one repeated)
to a multiple of ``PROMPT_COUNT_BUCKET``, at most ``max_prompts``, so the prompt decoder sees
few distinct input shapes (each a static OpenVINO copy, 25-40 MiB and a 0.2-0.5 s compile);
the caller still gets exactly its own rows, equal to an unpadded call (prompts do not
interact in RAP-SAM's prompt decoder) on the shipped bundles and backends."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rapsam_edge.contract.shared import PROMPT_COUNT_BUCKET, PROMPT_DECODER, REALTIME_BUNDLE
from rapsam_edge.runtime import inputs
from rapsam_edge.runtime.segmenter import Segmenter

HAS_OV = importlib.util.find_spec("openvino") is not None
#: float rounding of a float32 decoder run with another prompt count (measured: <= 1.8e-5
#: on the mask logits, <= 2.4e-7 on iou; INT8 graphs bit-identical)
LOGIT_TOL, IOU_TOL = 1e-4, 1e-5


def test_the_bucket_rule():
    b = PROMPT_COUNT_BUCKET
    assert b >= 1
    assert [inputs.padded_prompt_count(n, 256, 4) for n in range(1, 10)] == [4] * 4 + [8] * 4 + [12]
    assert inputs.padded_prompt_count(5, 6, 4) == 6  # never above max_prompts
    assert inputs.padded_prompt_count(6, 6, 4) == 6
    assert inputs.padded_prompt_count(7, 6, 4) == 7  # (prompt_boxes refuses n > max first)
    assert inputs.padded_prompt_count(3, 3, 4) == 3
    for n in range(1, 40):
        p = inputs.padded_prompt_count(n, 256)
        assert p % b == 0 and n <= p < n + b


def _boxes(frame_hw: tuple[int, int], n: int, seed: int) -> np.ndarray:
    h, w = frame_hw
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(0, w * 0.8, n), rng.uniform(0, h * 0.8, n)
    size = rng.uniform(8, max(h, w) * 0.6, (2, n))
    return np.stack([x0, y0, x0 + size[0], y0 + size[1]], 1)


class _Spy:
    """Records the prompt count every prompt-decoder call is fed."""

    def __init__(self, seg: Segmenter) -> None:
        self.graph = seg.graphs[PROMPT_DECODER]
        self.inner = self.graph.run_roles
        self.counts: list[int] = []

    def __call__(self, feeds, **kw):
        self.counts.append(int(feeds["boxes"].shape[1]))
        return self.inner(feeds, **kw)


def _segmenter(bundle: str, backend: str, **kw) -> Segmenter:
    opts = {"static_shapes": True} if backend == "openvino" else {}
    return Segmenter(bundle, backend=backend, backend_options=opts, **kw)


CASES = [("edge-s-synthetic", "onnxruntime")]
if HAS_OV:
    CASES += [("edge-s-synthetic", "openvino"), (f"{REALTIME_BUNDLE}-ov-int8", "openvino")]


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(27)
    img = np.zeros((240, 320, 3), np.uint8)
    for _ in range(8):  # a few flat shapes, so the masks are not empty
        x, y = rng.integers(0, 280), rng.integers(0, 200)
        img[y : y + rng.integers(20, 80), x : x + rng.integers(20, 100)] = rng.integers(0, 255, 3)
    return img


@pytest.mark.parametrize(("bundle", "backend"), CASES)
def test_padded_equals_unpadded(bundle, backend, frame, monkeypatch):
    seg = _segmenter(bundle, backend)
    spy = _Spy(seg)
    monkeypatch.setattr(spy.graph, "run_roles", spy)
    emb = seg.set_image(frame)
    for n in range(1, 10):
        boxes = _boxes(frame.shape[:2], n, seed=n)
        pts = boxes[:1, :2] + 4 if n > 2 else None  # a point first, then boxes
        got = seg.prompt(emb, points=pts, boxes=boxes[1:] if pts is not None else boxes)
        with monkeypatch.context() as m:
            m.setattr(inputs, "padded_prompt_count", lambda k, _m: k)
            ref = seg.prompt(emb, points=pts, boxes=boxes[1:] if pts is not None else boxes)
        assert spy.counts[-2:] == [-(-n // PROMPT_COUNT_BUCKET) * PROMPT_COUNT_BUCKET, n]
        assert got.masks.shape == (n, *frame.shape[:2]) and got.masks.dtype == bool
        assert got.iou.shape == got.stability.shape == (n,)
        assert got.iou.dtype == np.float32
        assert np.array_equal(got.masks, ref.masks), n
        assert np.abs(got.iou - ref.iou).max() <= IOU_TOL
        assert np.abs(got.stability - ref.stability).max() <= IOU_TOL
        assert ref.masks.any()


@pytest.mark.parametrize("max_prompts", [5, 6, 8])
def test_padding_stops_at_max_prompts(max_prompts, frame, monkeypatch):
    seg = Segmenter("edge-s-synthetic", backend="onnxruntime", max_prompts=max_prompts)
    spy = _Spy(seg)
    monkeypatch.setattr(spy.graph, "run_roles", spy)
    emb = seg.set_image(frame)
    for n in range(1, max_prompts + 1):
        res = seg.prompt(emb, boxes=_boxes(frame.shape[:2], n, seed=100 + n))
        assert res.masks.shape[0] == res.iou.shape[0] == res.stability.shape[0] == n
        assert spy.counts[-1] == min(
            -(-n // PROMPT_COUNT_BUCKET) * PROMPT_COUNT_BUCKET, max_prompts
        )
        assert n <= spy.counts[-1] <= max_prompts
