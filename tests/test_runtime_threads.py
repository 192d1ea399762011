"""One Segmenter shared by threads gives what it gives sequentially (issue: OpenVINO's
shared infer request raised "Infer Request is busy" or returned another call's label map;
the stateful set_image + prompt mixed two users' images). 4 threads x 25 calls of
``panoptic``, ``prompt`` (each thread its own image-embedding handle) and ``track`` (each
thread its own tracker on the shared Segmenter), on ONNX Runtime and OpenVINO, on the
shipped bundle."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from rapsam_edge import Segmenter
from rapsam_edge.bundle import load_bundle
from rapsam_edge.runtime.registry import available_backends
from rapsam_edge.runtime.tracker import TrackerConfig

THREADS, CALLS = 4, 25
BACKENDS = ["ort-cpu", "openvino"]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """8 frames of the sample clip, each a different size (so a result computed on another
    thread's frame cannot even have the right shape by accident)."""
    from rapsam_edge.assets import sample_clip

    cap = cv2.VideoCapture(str(sample_clip()))
    out = []
    while len(out) < 8:
        ok, frame = cap.read()
        assert ok
        out.append(frame[: 300 + 7 * len(out), : 400 - 5 * len(out)].copy())
    cap.release()
    return out


@pytest.fixture(scope="module")
def all_things(shipped_bundle):
    """The shipped bundle with every class a thing: its confident stuff segments then make
    tracks (the shipped model names no thing class, so tracking would be vacuous)."""
    b = load_bundle(shipped_bundle)
    return dataclasses.replace(
        b, classes=tuple(dataclasses.replace(c, is_thing=True) for c in b.classes)
    )


def _segmenter(bundle, backend: str, frames: list[np.ndarray]) -> Segmenter:
    """The Segmenter in its steady state: every frame's input shapes seen twice, then
    ``settle()``, so OpenVINO's static copies (CPU default ``static_shapes="auto"``) serve
    every call below. Before they land a call runs on the dynamic model, whose results
    agree to float rounding, not bit for bit."""
    if backend not in available_backends(
        load_bundle(bundle) if not hasattr(bundle, "graphs") else bundle
    ):
        pytest.skip(f"{backend} is not installed")
    seg = Segmenter(bundle, backend, color_order="BGR", tracker=TrackerConfig(birth_score=0.3))
    for frame in frames:
        for _ in range(2):
            seg.panoptic(frame)
            seg.prompt(seg.set_image(frame), points=[(10, 10), (20, 20)])
    assert seg.settle(timeout=120)
    return seg


def _in_threads(work, n_items: int) -> list:
    """Run work(thread, call) for THREADS x CALLS calls, THREADS at a time; results in order."""
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(work, t, c) for t in range(THREADS) for c in range(n_items)]
        return [f.result() for f in futures]


@pytest.mark.parametrize("backend", BACKENDS)
def test_panoptic_from_threads_equals_sequential(shipped_bundle, frames, backend):
    seg = _segmenter(shipped_bundle, backend, frames)
    want = [seg.panoptic(f) for f in frames]
    assert sum(len(w.segments) for w in want) > 0

    def work(t: int, c: int):
        i = (t * 3 + c) % len(frames)
        return i, seg.panoptic(frames[i])

    for i, got in _in_threads(work, CALLS):
        np.testing.assert_array_equal(got.panoptic_map, want[i].panoptic_map)
        np.testing.assert_array_equal(got.segments, want[i].segments)


@pytest.mark.parametrize("backend", BACKENDS)
def test_prompt_with_own_handles_from_threads(shipped_bundle, frames, backend):
    seg = _segmenter(shipped_bundle, backend, frames)

    def clicks(i: int) -> list[tuple[float, float]]:
        h, w = frames[i].shape[:2]
        return [(w * (0.2 + 0.07 * i), h * 0.5), (w * 0.5, h * (0.8 - 0.05 * i))]

    want = [seg.prompt(seg.set_image(f), points=clicks(i)) for i, f in enumerate(frames)]

    def work(t: int, c: int):
        i = (t * 5 + c) % len(frames)
        emb = seg.set_image(frames[i])  # own handle; other threads set other images meanwhile
        return i, seg.prompt(emb, points=clicks(i))

    for i, got in _in_threads(work, CALLS):
        np.testing.assert_array_equal(got.masks, want[i].masks)
        np.testing.assert_array_equal(got.iou, want[i].iou)


@pytest.mark.parametrize("backend", BACKENDS)
def test_track_with_own_trackers_from_threads(all_things, frames, backend):
    video = [frames[0][:280, :360]] * 3 + [frames[1][:280, :360]] * 3  # one size: one video
    seg = _segmenter(all_things, backend, video[:1])
    tracker = seg.new_tracker()
    want = [seg.track(f, tracker=tracker) for f in video]
    assert tracker.tracks_started > 0, "the check needs tracks"

    def one_video(t: int, c: int):
        own = seg.new_tracker()
        return [seg.track(f, tracker=own) for f in video]

    with ThreadPoolExecutor(THREADS) as pool:
        runs = [
            f.result()
            for f in [
                pool.submit(one_video, t, 0)
                for t in range(THREADS)
                for _ in range(CALLS // len(video) + 1)
            ]
        ]
    for run in runs:
        for got, exp in zip(run, want):
            np.testing.assert_array_equal(got.track_map, exp.track_map)
            np.testing.assert_array_equal(got.track_ids, exp.track_ids)


def test_default_tracker_is_locked_and_streams_are_independent(all_things, frames):
    clip = [frames[0][:280, :360]] * 4
    seg = _segmenter(all_things, "ort-cpu", clip[:1])
    a = [r.track_ids for _, r in seg.stream(iter(clip))]
    b = [r.track_ids for _, r in seg.stream(iter(clip))]  # a new tracker: ids start over
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert a[0].size > 0


def test_backends_say_whether_they_run_concurrently(shipped_bundle):
    from rapsam_edge.runtime.registry import backend_class

    assert backend_class("ort-cpu").concurrent is True
    assert backend_class("openvino").concurrent is True
    assert backend_class("tensorrt").concurrent is False  # one context: serialised by a lock
