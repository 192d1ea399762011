"""Segmenter: panoptic / prompt / track / stream on an exported bundle (random edge-xs
weights, ONNX Runtime and OpenVINO), result consistency, bad input, and torch-free use."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from rapsam_edge import ops
from rapsam_edge.contract.postprocess import SATURATED_LOGIT, SEGMENT_DTYPE
from rapsam_edge.errors import InputError
from rapsam_edge.runtime.segmenter import Segmenter
from rapsam_edge.runtime.tracker import TrackerConfig


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Segmenter:
    # random weights score far below 0.8: low thresholds make segments and tracks appear
    return Segmenter(
        shipped_bundle,
        backend="onnxruntime",
        score_threshold=0.05,
        overlap_threshold=0.0,
        tracker=TrackerConfig(birth_score=0.0),
    )


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = cv2.resize(
        rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (131, 97), interpolation=cv2.INTER_LINEAR
    )
    return np.ascontiguousarray(img)


def test_panoptic_map_and_segments_agree(seg: Segmenter, frame: np.ndarray):
    res = seg.panoptic(frame)
    assert res.panoptic_map.shape == frame.shape[:2]
    assert res.panoptic_map.dtype == np.int32
    ids, counts = np.unique(res.panoptic_map, return_counts=True)
    areas = dict(zip(ids.tolist(), counts.tolist()))
    assert len(res.segments) > 0
    assert set(areas) - {0} == set(res.segments["id"].tolist())
    for s in res.segments:
        assert areas[int(s["id"])] == int(s["area"])
    assert res.query_embed.shape[0] == len(res.segments)
    assert set(res.timings) == {"prepare", "encoder", "decoder", "postprocess"}
    png, ann = res.to_coco(image_id=1, file_name="x.png")
    assert png.shape == (*frame.shape[:2], 3)
    assert len(ann["segments_info"]) == len(res.segments)


def test_panoptic_equals_the_manual_pipeline(seg: Segmenter, frame: np.ndarray):
    padded, _, valid = ops.letterbox(frame, seg.input_size, 32)
    feats = seg.graphs["encoder"].run({"image": padded[None]})["feats"]
    out = seg.graphs["panoptic_decoder"].run({"feats": feats})
    s = seg.bundle.feat_stride
    label_map, segments = ops.panoptic_fuse(
        np.ascontiguousarray(out["cls_logits"][0]),
        np.ascontiguousarray(out["mask_logits"][0]),
        (valid[0] / s, valid[1] / s),
        frame.shape[:2],
        seg.is_thing,
        0.05,
        0.0,
    )
    res = seg.panoptic(frame)
    np.testing.assert_array_equal(res.panoptic_map, label_map)
    np.testing.assert_array_equal(res.segments["query"], segments["query"])


def test_openvino_and_onnxruntime_agree(shipped_bundle, frame: np.ndarray):
    a = Segmenter(
        shipped_bundle, backend="onnxruntime", score_threshold=0.05, overlap_threshold=0.0
    ).panoptic(frame)
    b = Segmenter(
        shipped_bundle, backend="openvino", score_threshold=0.05, overlap_threshold=0.0
    ).panoptic(frame)
    assert (a.panoptic_map == b.panoptic_map).mean() > 0.99


def test_prompts_reuse_the_encoder(seg: Segmenter, frame: np.ndarray):
    fresh = Segmenter(seg.bundle, backend="onnxruntime")
    with pytest.raises(InputError, match="set_image"):
        fresh.prompt(points=[(3, 4)])
    seg.set_image(frame)
    res = seg.prompt(points=[(10, 20), (60.5, 40)], boxes=[(5, 5, 50, 60)])
    assert res.masks.shape == (3, *frame.shape[:2]) and res.masks.dtype == bool
    assert res.iou.shape == (3,) and res.stability.shape == (3,)
    # one prompt alone gives the same mask as inside a batch (prompts do not interact)
    alone = seg.prompt(points=[(60.5, 40)])
    np.testing.assert_array_equal(alone.masks[0], res.masks[1])
    assert len(res.to_rle()) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "at least one point or box"),
        ({"points": [(1, 2, 3)]}, "P x 2"),
        ({"points": [(np.nan, 2)]}, "finite"),
        ({"points": [(1000, 2)]}, "inside"),
        ({"boxes": [(5, 5, 2, 9)]}, "x1 > x0"),
    ],
)
def test_bad_prompts_raise(seg: Segmenter, frame: np.ndarray, kwargs, match):
    seg.set_image(frame)
    with pytest.raises(ValueError, match=match):
        seg.prompt(**kwargs)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((10, 10, 4), np.uint8), "H x W x 3"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        ("not an image", "numpy array"),
    ],
)
def test_bad_frames_raise(seg: Segmenter, bad, match):
    with pytest.raises(ValueError, match=match):
        seg.panoptic(bad)


def test_track_keeps_ids_on_a_repeated_frame(seg: Segmenter, frame: np.ndarray):
    seg.reset_tracks()
    first = seg.track(frame)
    assert len(first.track_ids) > 0
    for _ in range(3):
        again = seg.track(frame)
        np.testing.assert_array_equal(again.track_ids, first.track_ids)
        np.testing.assert_array_equal(again.track_map, first.track_map)
    assert again.frame_index == 3


def test_stream_from_frames_and_from_a_video_file(seg: Segmenter, frame: np.ndarray, tmp_path):
    frames = [np.roll(frame, 3 * i, axis=1) for i in range(5)]
    got = list(seg.stream(frames, task="panoptic"))
    assert len(got) == 5
    for (f, res), src in zip(got, frames):
        assert f is src
        assert res.panoptic_map.shape == frame.shape[:2]
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (131, 97))
    for f in frames:
        writer.write(f)
    writer.release()
    tracked = list(seg.stream(path, task="track", max_frames=4))
    assert [r.frame_index for _, r in tracked] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="does not exist"):
        list(seg.stream(tmp_path / "missing.mp4"))


def test_segmenter_runs_with_torch_blocked(shipped_bundle):
    code = f"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, _Block())
import numpy as np
from rapsam_edge import Segmenter
seg = Segmenter({str(shipped_bundle)!r}, backend="onnxruntime")
res = seg.panoptic(np.zeros((64, 80, 3), np.uint8))
seg.set_image(np.zeros((64, 80, 3), np.uint8))
print(res.panoptic_map.shape, seg.prompt(points=[(5, 5)]).masks.shape, "torch" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(64, 80) (1, 64, 80) False"


def test_fastest_and_per_graph_backends(shipped_bundle, frame: np.ndarray):
    fastest = Segmenter(shipped_bundle, backend="fastest")
    assert set(fastest.backend_timings) == {"encoder", "panoptic_decoder", "prompt_decoder"}
    for graph, times in fastest.backend_timings.items():
        assert {"ort-cpu", "openvino"} <= set(times)
        assert fastest.graphs[graph].name == min(times, key=times.get)
    mixed = Segmenter(
        shipped_bundle,
        backend={
            "encoder": "openvino",
            "panoptic_decoder": "ort-cpu",
            "prompt_decoder": "onnxruntime",
        },
    )
    assert (
        mixed.backend_name == "encoder=openvino, panoptic_decoder=ort-cpu, prompt_decoder=ort-cpu"
    )
    assert mixed.panoptic(frame).panoptic_map.shape == frame.shape[:2]
    # without a GPU, "auto" times the CPU backends like "fastest"
    auto = Segmenter(shipped_bundle, backend="auto")
    assert set(auto.backend_timings) == set(fastest.backend_timings)
    with pytest.raises(ValueError, match="exactly the graphs"):
        Segmenter(shipped_bundle, backend={"encoder": "openvino"})
    with pytest.raises(ValueError, match="unknown backend"):
        Segmenter(shipped_bundle, backend="tpu")


def test_ytvis_recorder_round_trips_track_masks(seg: Segmenter, frame: np.ndarray):
    from rapsam_edge.runtime.results import YtvisRecorder

    seg.reset_tracks()
    recorder = YtvisRecorder(video_id=7)
    results = [seg.track(np.roll(frame, i, axis=0)) for i in range(3)]
    for r in results:
        recorder.add(r)
    entries = recorder.results()
    assert len(entries) == len({t for r in results for t in r.track_ids.tolist()})
    tid0 = int(results[0].track_ids[0])
    entry = next(
        e
        for e in entries
        if e["segmentations"][0] is not None
        and np.array_equal(ops.rle_decode(e["segmentations"][0]), results[0].track_map == tid0)
    )
    assert entry["video_id"] == 7 and len(entry["segmentations"]) == 3
    assert 0.0 <= entry["score"] <= 1.0


def test_long_stream_keeps_memory_flat(seg: Segmenter, frame: np.ndarray):
    """An endless stream must not accumulate: bounded queue, only live tracks kept."""
    import tracemalloc

    def frames(n: int):
        rng = np.random.default_rng(1)
        for _ in range(n):  # produced on the fly, never stored
            yield np.roll(frame, int(rng.integers(0, 20)), axis=1)

    tracemalloc.start()
    try:
        sizes = []
        for i, (_, result) in enumerate(seg.stream(frames(160), task="track")):
            assert result.track_map.shape == frame.shape[:2]
            if i in (40, 159):
                sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    # live tracks are bounded by detections per frame x frames a track may go unseen
    bound = seg.bundle.num_queries * (seg.tracker.config.max_missed + 1)
    assert len(seg.tracker.tracks) <= bound
    assert sizes[1] - sizes[0] < 2_000_000, f"grew by {sizes[1] - sizes[0]} bytes"


def test_ytvis_recorder_memory_does_not_grow_with_frame_size():
    """The recorder encodes each frame as it comes: 300 640x480 frames (no track, then one
    small track) keep well under 2 KB per frame, not the 2.5 MB of two full maps."""
    import tracemalloc

    from rapsam_edge.runtime.results import PanopticResult, TrackResult, YtvisRecorder

    def result(i: int, with_track: bool) -> TrackResult:
        track_map = np.zeros((480, 640), np.int32)
        if with_track:
            track_map[100:140, 200 + i % 50 : 260 + i % 50] = 3
        pan = PanopticResult(np.zeros((480, 640), np.int32), np.zeros(0, SEGMENT_DTYPE), ())
        ids = np.array([3] if with_track else [], np.int64)
        return TrackResult(i, track_map, ids, np.zeros(len(ids), np.int64), np.ones(len(ids)), pan)

    recorder = YtvisRecorder(video_id=1)
    recorder.add(result(0, True))  # warm-up allocations
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1, 301):
        recorder.add(result(i, i > 150))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 300 * 2048, f"recorder grew {grown / 1e3:.0f} kB over 300 frames"
    (entry,) = recorder.results()
    assert len(entry["segmentations"]) == 301
    assert entry["segmentations"][1] is None and entry["segmentations"][151] is not None


def test_prompt_refuses_an_embedding_of_another_encoder(seg, shipped_bundle):
    # same shape, other weights or precision would give silently wrong masks
    from rapsam_edge.assets import resolve_bundle

    frame = np.zeros((60, 80, 3), np.uint8)
    with Segmenter(shipped_bundle, backend="onnxruntime") as twin:
        # another Segmenter of the same bundle: accepted
        assert seg.prompt(twin.set_image(frame), points=[(10, 10)]).masks.shape == (1, 60, 80)
    pytest.importorskip("openvino")
    with Segmenter(resolve_bundle("edge-s-synthetic-ov-int8"), backend="openvino") as int8:
        emb = int8.set_image(frame)
        with pytest.raises(InputError, match=r"edge-s-synthetic-ov-int8.*own set_image"):
            seg.prompt(emb, points=[(10, 10)])
        assert int8.prompt(emb, points=[(10, 10)]).masks.shape == (1, 60, 80)


def test_a_frame_is_validated_once_on_its_way_through_panoptic(seg, frame, monkeypatch):
    """The frame rule runs once (``prepare``): letterbox runs as the unchecked kernel
    (``ops.kernel``), so its image check does not run again; the graphs then run on the
    arrays the pipeline made, so the manifest feed checks do not run again
    (``run_roles(check=False)``); a prompt's embedding comes from the caller and is checked.
    Every graph output is scanned for NaN / inf once (``runtime.outputs``): the logits,
    which fusion then does not check again, and the outputs that are not logits (``feats``,
    ``query_embed``, ``iou``)."""
    import rapsam_edge.ops._checks as checks
    import rapsam_edge.runtime.base as base
    import rapsam_edge.runtime.segmenter as segmenter

    calls = {"as_frame": 0, "check_feeds": 0, "check_image": 0, "check_logits": 0, "scan": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(segmenter, "as_frame", counted("as_frame", segmenter.as_frame))
    monkeypatch.setattr(base, "check_feeds", counted("check_feeds", base.check_feeds))
    monkeypatch.setattr(checks, "check_image", counted("check_image", checks.check_image))
    monkeypatch.setattr(checks, "check_logits", counted("check_logits", checks.check_logits))
    monkeypatch.setattr(checks, "_all_finite", counted("scan", checks._all_finite))
    # the counters see the checked ops: a checked letterbox / fusion would count here
    ops.letterbox(frame, 64)
    assert calls["check_image"] == 1
    calls.update(check_image=0)

    want = seg.panoptic(frame)
    # the encoder's feats, two logits tensors (cls, mask) and query_embed, one scan each
    assert calls == {
        "as_frame": 1,
        "check_feeds": 0,
        "check_image": 0,
        "check_logits": 0,
        "scan": 4,
    }
    seg.prompt(seg.set_image(frame), points=[(10, 10)])
    # set_image's frame and feats; prompt's feeds; its mask logits and iou, one scan each
    assert calls == {
        "as_frame": 2,
        "check_feeds": 1,
        "check_image": 0,
        "check_logits": 0,
        "scan": 7,
    }
    monkeypatch.undo()
    again = seg.panoptic(frame)  # the same result as through the checked path
    assert np.array_equal(want.panoptic_map, again.panoptic_map)
    prepared = seg.prepare(frame)
    image, scale, valid = ops.letterbox(
        frame, seg.input_size, seg.bundle.input.pad_divisor, seg.bundle.input.pad_value
    )
    assert np.array_equal(prepared.image[0], image) and prepared.scale == scale
    assert prepared.valid_hw == tuple(valid)


def test_infinite_logits_take_one_scan_and_no_second_call(seg, frame, monkeypatch):
    """+inf mask logits are found by the one scan, saturated and fused once: no error
    caught, no op called a second time; the result is the one of saturated logits."""
    import rapsam_edge.ops._checks as checks

    dec = seg.graphs["panoptic_decoder"]
    name = dec.info.name_of("mask_logits")
    original = dec._run

    def with_inf(feeds):
        out = original(feeds)
        m = out[name].copy()
        m[..., :2, :] = np.inf  # the top two feature rows
        return {**out, name: m}

    saturated = {}

    def with_saturated(feeds):
        out = original(feeds)
        m = out[name].copy()
        m[..., :2, :] = SATURATED_LOGIT
        saturated[name] = True
        return {**out, name: m}

    monkeypatch.setattr(dec, "_run", with_saturated)
    want = seg.panoptic(frame)
    assert saturated

    calls = {"scan": 0, "fuse": 0, "check_logits": 0}
    kernel = ops.kernel

    def counted_kernel(op):
        fn = kernel(op)
        if op != "panoptic_fuse":
            return fn

        def fuse(*args):
            calls["fuse"] += 1
            return fn(*args)

        return fuse

    scan = checks._all_finite

    def counted_scan(a):
        calls["scan"] += 1
        return scan(a)

    check_logits = checks.check_logits

    def counted_check(*args, **kwargs):
        calls["check_logits"] += 1
        return check_logits(*args, **kwargs)

    monkeypatch.setattr(dec, "_run", with_inf)
    monkeypatch.setattr(checks, "_all_finite", counted_scan)
    monkeypatch.setattr(ops, "kernel", counted_kernel)
    monkeypatch.setattr(checks, "check_logits", counted_check)
    got = seg.panoptic(frame)
    # the encoder's feats, cls and mask logits, query_embed: one scan each
    assert calls == {"scan": 4, "fuse": 1, "check_logits": 0}
    assert np.array_equal(got.panoptic_map, want.panoptic_map)
    assert np.array_equal(got.segments, want.segments)


def test_segmenter_options_hold_every_setting_and_its_check(shipped_bundle):
    from rapsam_edge.bundle import load_bundle
    from rapsam_edge.errors import ConfigError
    from rapsam_edge.runtime.options import SegmenterOptions

    bundle = load_bundle(shipped_bundle)
    resolved = SegmenterOptions().resolve(bundle)
    assert resolved.input_size == bundle.input.long_side
    assert resolved.postprocess == bundle.postprocess
    assert SegmenterOptions(score_threshold=0.3).resolve(bundle).postprocess.score_threshold == 0.3
    with pytest.raises(ConfigError, match="color_order"):
        SegmenterOptions(color_order="bgr")  # checked at construction, no bundle needed
    with pytest.raises(ConfigError, match="resolve"):
        _ = SegmenterOptions().postprocess
    seg = Segmenter(bundle, "ort-cpu", input_size=64)
    assert seg.options.input_size == seg.input_size == 64
